"""Benchmark the curve fit: time, bootstrap time, peak memory and ROI error against the truth.

Usage: python benchmarks/fit.py [--bootstrap 100] [--jobs N] [--json]

Data: the bundled generator (156 weeks × 9 channels, seed 7), so the true ROI is known.
Targets on a 2-core machine: fit ≤ 20 s, 100 bootstrap resamples ≤ 120 s, peak memory ≤ 1 GB.
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
        model = MediaMixModel(n_bootstrap=0).fit(history)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        boot = MediaMixModel(n_bootstrap=n_bootstrap, n_jobs=jobs).fit(history)
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=int, default=100, help="resamples (default 100)")
    parser.add_argument("--jobs", type=int, default=None, help="bootstrap worker processes (default: all cores)")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    args = parser.parse_args(argv)
    result = run(args.bootstrap, args.jobs)
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
