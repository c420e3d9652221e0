"""Benchmark the curve fit: time, bootstrap time, peak memory and ROI error against the truth.

Usage: python benchmarks/fit.py [--bootstrap 100] [--jobs N] [--no-joint] [--json]

Data: the bundled generator (156 weeks × 9 channels, seed 7), so the true ROI is known.
Least squares (``method="least_squares"``): targets on a 2-core machine fit ≤ 20 s, 100
bootstrap resamples ≤ 120 s, peak memory ≤ 1 GB. The joint Bayesian model (the default fit of
a total KPI, as ``budget fit`` runs it: 13-week holdout refit included): fit with its
uncertainty ≤ 60 s (issue 9 §4), timed twice, the first time with the sampler's compilation
(a fresh JAX compilation cache), the second with it compiled.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from models.errors import ConvergenceWarning  # noqa: E402
from models.fit import MediaMixModel  # noqa: E402
from models.generate import BUNDLED_SEED, bundled_params, generate_history, true_roi  # noqa: E402
from models.history import history_from_frame  # noqa: E402


def _peak_mb() -> float:
    # ru_maxrss is in KiB on Linux; children = bootstrap workers and Stan processes.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


def run(n_bootstrap: int, jobs: int | None) -> dict:
    params = bundled_params()
    frame = generate_history(params, BUNDLED_SEED)
    history = history_from_frame(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        model = MediaMixModel(method="least_squares", n_bootstrap=0).fit(history)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        boot = MediaMixModel(method="least_squares", n_bootstrap=n_bootstrap, n_jobs=jobs).fit(history)
        boot_total_s = time.perf_counter() - t0
    truth = true_roi(params, BUNDLED_SEED)
    errors = {c: model.roi_[c] / truth[c] - 1 for c in truth}
    covered = sum(
        1 for r in boot.report()["channels"] if r["roi_p10"] is not None and r["roi_p10"] <= truth[r["channel"]] <= r["roi_p90"]
    )
    return {
        "periods": history.periods,
        "channels": len(history.channels),
        "fit_seconds": round(fit_s, 2),
        "bootstrap_resamples": n_bootstrap,
        "bootstrap_seconds": round(boot_total_s - fit_s, 2),
        "workers": jobs or os.cpu_count(),
        "peak_memory_mb": round(_peak_mb(), 1),
        "roi_error_median": round(float(np.median(np.abs(list(errors.values())))), 4),
        "roi_error_max": round(float(np.max(np.abs(list(errors.values())))), 4),
        "roi_truth_in_p10_p90": f"{covered}/{len(truth)}",
        "roi_error_by_channel": {c: round(e, 4) for c, e in errors.items()},
        "holdout_mape": round(model.fit_["holdout"]["mape"], 4),
        "in_sample_r2": round(model.fit_["r2"], 4),
    }


def run_joint(jobs: int | None) -> dict:
    """The joint model as ``budget fit`` runs it, twice: compiling the sampler, then compiled."""
    import tempfile
    from unittest.mock import patch

    from models.cache import CACHE_ENV

    params = bundled_params()
    history = history_from_frame(generate_history(params, BUNDLED_SEED))
    truth = true_roi(params, BUNDLED_SEED)
    seconds = []
    # A fresh compilation cache: the first fit compiles the sampler.
    with tempfile.TemporaryDirectory() as folder, patch.dict(os.environ, {CACHE_ENV: folder}), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(2):
            t0 = time.perf_counter()
            model = MediaMixModel(method="bayes", n_jobs=jobs).fit(history)
            seconds.append(time.perf_counter() - t0)
    rows = model.report()["channels"]
    errors = {r["channel"]: r["roi"] / truth[r["channel"]] - 1 for r in rows}
    covered = sum(1 for r in rows if r["roi_p10"] <= truth[r["channel"]] <= r["roi_p90"])
    return {
        "joint_fit_seconds_first": round(seconds[0], 1),
        "joint_fit_seconds": round(seconds[1], 1),
        "joint_draws": model.uncertainty()["samples"],
        "joint_roi_error_median": round(float(np.median(np.abs(list(errors.values())))), 4),
        "joint_roi_error_max": round(float(np.max(np.abs(list(errors.values())))), 4),
        "joint_roi_truth_in_p10_p90": f"{covered}/{len(truth)}",
        "joint_holdout_mape": round(model.fit_["holdout"]["mape"], 4),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=int, default=100, help="resamples (default 100)")
    parser.add_argument("--jobs", type=int, default=None, help="bootstrap worker processes (default: all cores)")
    parser.add_argument("--no-joint", action="store_true", help="skip the joint Bayesian model (the default fit)")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    args = parser.parse_args(argv)
    result = run(args.bootstrap, args.jobs)
    if not args.no_joint:
        result.update(run_joint(args.jobs))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    rows = [(k, v) for k, v in result.items() if k != "roi_error_by_channel"]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print("roi error by channel:")
    for c, e in result["roi_error_by_channel"].items():
        print(f"  {c:<{width - 2}}  {e:+.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
