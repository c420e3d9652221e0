"""Forecast study: does ``budget forecast`` beat the simple anchors on a held-out quarter (issue 9 §5)?

Usage: python benchmarks/forecast.py [--datasets 8 | --only 0,1,2] [--seed 2026] [--method auto]
                                     [--cache DIR] [--jobs N] [--json] [--out FILE]

Data: the recovery study's simulated histories (:func:`models.simulate.study_world`, seeded; the
first ``--datasets`` weekly ones by default, or the indices in ``--only``, any frequency). Each
history is fitted as ``budget fit`` does (``MediaMixModel(random_state=0)``: the joint Bayesian
model; ``--method least_squares`` for the other estimator), and the quarter after it
(:func:`models.simulate.quarter_periods`: 13 weeks, 91 days, 3 months) is forecast with the plan
"every channel at its historical mean spend per period" (the current plan). The truth is the
process continued (:func:`models.simulate.true_kpi`): the expected KPI under that plan, and noisy
outcomes around it (the world's noise sd; ``OUTCOMES`` draws per period).

Scores per dataset
------------------
* **MAPE** of each forecast against the true expected KPI, over the quarter's periods:
    - *ours*: the forecast's point (``plans.current.total.point``: baseline + posterior-mean media);
    - *seasonal naive*: the same periods one year earlier (52 weeks, 364 days, 12 months: lag L)
      times the year-on-year growth of the last L periods over the L before,
      ``ŷ_{n+h} = y_{n+h−L} · Σ_{t=n−L+1}^{n} y_t / Σ_{t=n−2L+1}^{n−L} y_t`` for h = 1…P, on the
      observed KPI (it needs 2L periods of history);
    - *Prophet alone*: Prophet fitted to the observed KPI with the model's settings and holiday
      table (:func:`models.baseline.fit_prophet_baseline`; the table covers the horizon too),
      its prediction at the horizon.
  ``bias``: the mean signed error of ours, relative to the truth.
* **Tails**: the share of noisy outcomes below the forecast's P10 and above its P90, per period
  (weekly) and for the horizon's total (each outcome path summed). Targets: 5–15% each.
* **Width**: the median over periods of (P90 − P10) / P50, and the same for the horizon total;
  ``noise``: the width a forecast that knew the expected KPI exactly would have (noise alone).

Summary: median MAPE of the three forecasts, how many datasets ours is at or below the better
anchor, tail shares pooled over periods and datasets (each dataset weighs the same), median
widths. Fits are cached in ``--cache`` (model JSON, keyed by seed, dataset and method) so the
forecast can be re-scored without refitting; a weekly joint fit takes about a minute.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core per fit: the machine is shared

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from models.baseline import fit_prophet_baseline, holiday_table  # noqa: E402
from models.fit import MediaMixModel  # noqa: E402
from models.forecast import forecast, horizon_dates  # noqa: E402
from models.history import history_from_frame  # noqa: E402
from models.serialize import load_model, save_model  # noqa: E402
from models.simulate import quarter_periods, simulate, study_world, true_kpi  # noqa: E402

#: Noisy outcome paths per dataset (the tails are shares of these).
OUTCOMES = 4000
#: Seasonal lag by frequency: a year, in whole weeks for daily data (the weekday repeats).
SEASON_LAG = {"daily": 364, "weekly": 52, "monthly": 12}


def seasonal_naive(y: np.ndarray, periods: int, frequency: str) -> np.ndarray:
    """The same periods a year earlier times the year-on-year growth (see the module docstring)."""
    L = SEASON_LAG[frequency]
    y = np.asarray(y, dtype=float)
    n = y.size
    if n < 2 * L or periods > L:
        raise ValueError(f"seasonal naive needs {2 * L} periods of history and a horizon ≤ {L}")
    growth = y[n - L:].sum() / y[n - 2 * L:n - L].sum()
    return y[n - L:n - L + periods] * growth


def prophet_alone(model: MediaMixModel, history, dates: pd.DatetimeIndex) -> np.ndarray:
    """Prophet on the observed KPI with the model's holiday calendar, predicted at ``dates``."""
    starts = history.dates.append(pd.DatetimeIndex(dates))
    holidays = holiday_table(starts, history.frequency, country=model.holidays, campaign_days=model.campaign_days,
                             events=model.events)
    fit = fit_prophet_baseline(history.dates, history.target(), history.frequency, holidays)
    return fit.components(dates).to_numpy().sum(axis=1)


def _mape(forecast_values, truth) -> float:
    return float(np.mean(np.abs(np.asarray(forecast_values) - truth) / np.abs(truth)))


def _fit(history, method: str, n_jobs: int | None, cache: str | None, key: str) -> MediaMixModel:
    path = os.path.join(cache, f"{key}.json") if cache else None
    if path and os.path.exists(path):
        return load_model(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MediaMixModel(random_state=0, method=method, n_jobs=n_jobs).fit(history)
    if path:
        os.makedirs(cache, exist_ok=True)
        save_model(model, path)
    return model


def run_dataset(index: int, seed: int, method: str = "auto", n_jobs: int | None = None,
                cache: str | None = None) -> dict:
    world = study_world(index, seed)
    sim = simulate(world, seed=seed * 1000 + index)
    history = history_from_frame(sim.frame)
    t0 = time.perf_counter()
    model = _fit(history, method, n_jobs, cache, f"{seed}-{index}-{method}")
    fit_seconds = time.perf_counter() - t0
    P = quarter_periods(world.frequency)
    plan = {c: np.full(P, m) for c, m in sim.mean_spend.items()}
    t1 = time.perf_counter()
    fc = forecast(model, {"current": plan}, P, seed=0)
    forecast_seconds = time.perf_counter() - t1
    truth = true_kpi(sim, plan)
    dates = horizon_dates(model, P)
    if not (dates == truth.dates).all():
        raise AssertionError("the forecast's periods are not the truth's")
    total = fc["plans"]["current"]["total"]
    point, p10, p50, p90 = (np.asarray(total[k]) for k in ("point", "p10", "p50", "p90"))
    outcomes = truth.outcomes(OUTCOMES, seed=seed * 1000 + index)
    sums = outcomes.sum(axis=1)
    h = total["horizon"]
    y = history.target()
    naive = seasonal_naive(y, P, world.frequency)
    alone = prophet_alone(model, history, dates)
    return {
        "dataset": index, "frequency": world.frequency, "periods": world.periods, "channels": len(world.names),
        "regime": ["flighted", "always_on", "mixed"][index % 3], "noise": round(world.noise, 4),
        "method": "bayes" if getattr(model, "joint_", None) is not None else "least_squares",
        "horizon_start": dates[0].date().isoformat(),
        "mape": {"ours": _mape(point, truth.expected), "seasonal_naive": _mape(naive, truth.expected),
                 "prophet_alone": _mape(alone, truth.expected), "ours_p50": _mape(p50, truth.expected)},
        "bias": float(np.mean((point - truth.expected) / truth.expected)),
        "horizon_error": float(h["point"] / truth.expected.sum() - 1),
        "tails": {"below_p10": float(np.mean(outcomes < p10[None, :])),
                  "above_p90": float(np.mean(outcomes > p90[None, :])),
                  "horizon_below_p10": float(np.mean(sums < h["p10"])),
                  "horizon_above_p90": float(np.mean(sums > h["p90"]))},
        "width": {"period": float(np.median((p90 - p10) / p50)), "horizon": float((h["p90"] - h["p10"]) / h["p50"]),
                  "period_noise": float(np.median(2 * 1.2815515655446004 * truth.noise_sd / truth.expected)),
                  "horizon_noise": float(2 * 1.2815515655446004 * truth.noise_sd * np.sqrt(P) / truth.expected.sum())},
        "fit_seconds": round(fit_seconds, 1), "forecast_seconds": round(forecast_seconds, 2),
    }


def summarise(rows: list[dict]) -> dict:
    def med(values):
        return round(float(np.median(values)), 4)

    def mean(values):
        return round(float(np.mean(values)), 4)

    better = [min(r["mape"]["seasonal_naive"], r["mape"]["prophet_alone"]) for r in rows]
    return {
        "datasets": len(rows),
        "mape_median": {k: med([r["mape"][k] for r in rows]) for k in ("ours", "seasonal_naive", "prophet_alone")},
        "mape_mean": {k: mean([r["mape"][k] for r in rows]) for k in ("ours", "seasonal_naive", "prophet_alone")},
        "ours_at_or_below_better_anchor": sum(r["mape"]["ours"] <= b for r, b in zip(rows, better)),
        "better_anchor_mape_median": med(better),
        "bias_median": med([r["bias"] for r in rows]),
        "tails": {k: mean([r["tails"][k] for r in rows]) for k in rows[0]["tails"]},
        "width_median": {k: med([r["width"][k] for r in rows]) for k in rows[0]["width"]},
    }


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def render(result: dict) -> str:
    head = (f"{'#':>2} {'freq':<7} {'n':>4} {'ch':>2} {'regime':<9} {'noise':>5} {'start':<10} "
            f"{'MAPE ours':>9} {'naive':>6} {'Prophet':>7} {'bias':>6} "
            f"{'<P10':>5} {'>P90':>5} {'hz<P10':>6} {'hz>P90':>6} {'width':>6} {'(noise)':>7} {'hz width':>8} {'(noise)':>7}")
    lines = [head, "-" * len(head)]
    for r in result["datasets"]:
        m, t, w = r["mape"], r["tails"], r["width"]
        lines.append(
            f"{r['dataset']:>2} {r['frequency']:<7} {r['periods']:>4} {r['channels']:>2} {r['regime']:<9} "
            f"{_pct(r['noise']):>5} {r['horizon_start']:<10} {_pct(m['ours']):>9} {_pct(m['seasonal_naive']):>6} "
            f"{_pct(m['prophet_alone']):>7} {_pct(r['bias']):>6} {_pct(t['below_p10']):>5} {_pct(t['above_p90']):>5} "
            f"{_pct(t['horizon_below_p10']):>6} {_pct(t['horizon_above_p90']):>6} {_pct(w['period']):>6} "
            f"{_pct(w['period_noise']):>7} {_pct(w['horizon']):>8} {_pct(w['horizon_noise']):>7}")
    s = result["summary"]
    mm, tl, wd = s["mape_median"], s["tails"], s["width_median"]
    lines += [
        "",
        f"{s['datasets']} datasets (seed {result['seed']}, {result['method']}), {result['seconds']:.0f} s",
        f"median MAPE: ours {_pct(mm['ours'])}, seasonal naive {_pct(mm['seasonal_naive'])}, Prophet alone "
        f"{_pct(mm['prophet_alone'])}; ours at or below the better anchor in {s['ours_at_or_below_better_anchor']} of "
        f"{s['datasets']} (median bias {_pct(s['bias_median'])})",
        f"tails (target 5–15% each): per period {_pct(tl['below_p10'])} below P10, {_pct(tl['above_p90'])} above P90; "
        f"horizon total {_pct(tl['horizon_below_p10'])} below, {_pct(tl['horizon_above_p90'])} above",
        f"median P10–P90 width / P50: per period {_pct(wd['period'])} (noise alone {_pct(wd['period_noise'])}), "
        f"horizon {_pct(wd['horizon'])} (noise alone {_pct(wd['horizon_noise'])})",
    ]
    return "\n".join(lines)


def _weekly(count: int) -> list[int]:
    out, i = [], 0
    while len(out) < count:
        if study_world(i).frequency == "weekly":
            out.append(i)
        i += 1
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=8, help="the first N weekly datasets of the study (default 8)")
    parser.add_argument("--only", default=None, help="comma-separated dataset indices instead (any frequency)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--method", default="auto", choices=["auto", "bayes", "least_squares"])
    parser.add_argument("--jobs", type=int, default=None, help="cores per fit (default: all)")
    parser.add_argument("--cache", default=None, help="folder of fitted models (reused when present)")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    for noisy in ("cmdstanpy", "prophet", "models"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    indices = [int(i) for i in args.only.split(",")] if args.only else _weekly(args.datasets)
    t0 = time.perf_counter()
    rows = []
    for done, i in enumerate(indices, 1):
        t = time.perf_counter()
        r = run_dataset(i, args.seed, args.method, args.jobs, args.cache)
        rows.append(r)
        print(f"dataset {done}/{len(indices)} (#{i}): MAPE ours {_pct(r['mape']['ours'])}, naive "
              f"{_pct(r['mape']['seasonal_naive'])}, Prophet {_pct(r['mape']['prophet_alone'])} "
              f"({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    result = {"seed": args.seed, "method": args.method, "seconds": round(time.perf_counter() - t0, 1),
              "summary": summarise(rows), "datasets": rows}
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1, ensure_ascii=False)
            fh.write("\n")
    print(json.dumps(result, indent=1, ensure_ascii=False) if args.json else render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
