"""Recovery study: how well the fitted curves recover the truth, and what their plans cost.

Usage: python benchmarks/attribution.py [--datasets 24 | --quick | --only 0,3] [--seed 2026]
                                        [--jobs N] [--rows FILE] [--no-calibration] [--test-share S] [--control]
                                        [--models DIR] [--bands JSON] [--json] [--out FILE]

Data: ``--datasets`` simulated histories from :func:`models.simulate.study_world` (seeded; issue 9
§1): 4–12 channels, 104–156 weeks (dataset 10 daily, 11 monthly), noise 2–10% of the KPI, spend
flighted independently, always-on and correlated 0.3–0.8 across channels and with the season, or
a mix; small channels (≤ 3% of spend); carryover 0.1–0.7; Hill, logistic and exponential
saturation and one Weibull S-curve per world (not in every fourth); seasonal efficiency and
baseline (618, Double 11, Spring Festival); a trend break. None of it is the model's own form.

Per dataset
-----------
* **fit**: ``MediaMixModel(method="bayes")`` (the joint Bayesian model: ROI priors, the
  baseline in the model, NUTS, holdout 13) on the wide history — what ``budget fit --method
  bayes`` does; and again with one lift test per channel (:func:`models.simulate.lift_tests`: the true
  incremental return of 4 weeks at usual spend, measured with se 15%) as ``[[calibration]]``;
  ``--test-share 0.3`` makes each test a 30% holdback instead (its se that of the switch-off).
* **ROI error**: per channel, fitted / true − 1 of the steady-state ROI at the channel's mean
  spend per period, on the posterior-mean curve (``planning_curve(c, 1)`` at x̄, over x̄; the
  truth from :func:`models.simulate.true_roi_at_mean`); the dataset's median and worst error.
* **mROI error**: the same for the marginal ROI of a quarter's spend at the historical split.
* **coverage**: the share of channels whose posterior P10–P90 of that ROI holds the truth.
* **regret** at 0.5×, 1× and 2× the historical quarterly budget (13 weeks' mean spend; 91 days;
  3 months): 1 − (return on the TRUE curves of the plan) / (exact optimum on the true curves),
  for these plans (all with the extrapolation cap a scenario applies by default, no reserve):
    - *model*: what ``budget allocate`` does by default (:data:`DEFAULT_RULE`);
    - *mean*: the expected return over the posterior (the posterior-mean curves) alone;
    - *evidence*: the same with the evidence limits on poorly identified channels;
    - *guard N*: the best mean return whose worst N% of draws still gain on the current split;
    - *evidence guard N*: guard N within the evidence limits (both protections at once; scored
      and rejected, see README);
    - *checked 10*: the evidence plan, unless its worst 10% of draws lose on the current split on
      average, then guard 10's (a candidate default, scored and rejected; ``switched_10`` in the
      regrets says where it switched);
    - *calibrated*: the default rule on the fit with lift tests; *calibrated guard*: guard 10 on
      that fit's draws;
    - *oracle*: curves that know the true family, α, k and s and fit only β (NNLS) and the
      baseline's weights (least squares on its true regressors); it does not know the seasonal
      efficiency: the information limit of the data (:func:`oracle_betas`);
    - *historical*: the budget split in the history's spend shares.
  The exact optimum on the true curves is the best of the optimizer (exact mode when a curve is
  S-shaped) and bisection on the common marginal return (concave curves) or, with an S-curve, a
  4000-step grid DP whose concave channels are then re-solved exactly by bisection.
* **do-no-harm violation**: a plan loses more than the historical split at that budget.

``--control`` runs the same datasets in the model's own form (Hill s = 0.8 on the same α and k
and ROI, flighted spend, flat efficiency, no trend break, 0.5% noise; the baseline keeps its
calendar): a check on the study itself, since a fitter should nearly recover those.

Summary over the study: median regret per plan at each budget, violations, median ROI error (of
dataset medians, and over all channels), coverage, and the same by spend regime. Times: a
9-channel weekly dataset fits in ~15–40 s (the compiled sampler is cached between fits of the same
shape), the daily one in a few minutes; 24 datasets with calibration take about an hour on 2 cores.

``--models DIR`` keeps every fit in DIR (a model JSON and its fit time) and reads it back on the
next run, so another planning rule or ``--bands`` is scored on the same fits in minutes; one
folder per ``--priors`` setting. ``--bands '{"weak": 0.5}'`` scores the default rule with other
evidence bands (:data:`scenarios.evidence.BANDS`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core per fit: the machine is shared

import logging  # noqa: E402

import numpy as np  # noqa: E402
from scipy.linalg import orth  # noqa: E402
from scipy.optimize import nnls  # noqa: E402

from models.curves import HillCurve, ResponseCurve  # noqa: E402
from models.fit import MediaMixModel, adstock  # noqa: E402
from models.history import history_from_frame  # noqa: E402
from models.atomic import write_text_atomic  # noqa: E402
from models.serialize import load_model, save_model  # noqa: E402
from models.simulate import (  # noqa: E402
    SimWorld, Simulation, control_world, quarter_periods, saturation, seasonal_intensity, simulate, study_world,
    true_curve, true_roi_at_mean,
)
from optimizer import Channel, Problem, optimize, optimize_guarded  # noqa: E402
from optimizer.exact import bisection_optimum, grid_optimum  # noqa: E402
from optimizer.risk import cvar  # noqa: E402
from models.simulate import lift_tests  # noqa: E402
from scenarios.evidence import BANDS, limit_problem  # noqa: E402

BUDGETS = (0.5, 1.0, 2.0)
_BURN = {"daily": 28, "weekly": 8, "monthly": 2}  # the fitter's default burn-in
_PER_YEAR = {"daily": 365.25, "weekly": 365.25 / 7, "monthly": 12.0}


# --------------------------------------------------------------------------------------------
# Exact optimum on the true curves


def true_optimum(curves: list[ResponseCurve], budget: float) -> tuple[np.ndarray, float]:
    """Best spend of ``budget`` (all of it may be used) over ``curves``, to ~1e-7 relative.

    Concave curves: the better of bisection on the common marginal return and the optimizer.
    With S-curves: the best of the optimizer's exact (MILP) mode, a 4000-step grid DP, and the
    grid's plan with its S-curves held and the concave channels re-solved by bisection (which
    removes the grid's error on them), and every S-curve at zero with the rest by bisection.
    """
    n = len(curves)
    lo, hi = np.zeros(n), np.full(n, float(budget))
    candidates = []
    problem = Problem(channels=tuple(Channel(name=f"c{i}", curve=c) for i, c in enumerate(curves)),
                      budget=float(budget), reserve_min_share=0.0)
    concave = [c.is_concave for c in curves]
    alloc = optimize(problem, exact=not all(concave))
    candidates.append(np.array([r.spend for r in alloc.channels]))
    if all(concave):
        candidates.append(bisection_optimum(curves, lo, hi, budget)[0])
    else:
        xg, _ = grid_optimum(curves, budget, steps=4000)
        candidates.append(xg)
        idx = [i for i in range(n) if concave[i]]
        for held in (xg, np.zeros(n)):
            rest = budget - sum(held[i] for i in range(n) if not concave[i])
            x = held.copy()
            if idx and rest > 0:
                x[idx] = bisection_optimum([curves[i] for i in idx], lo[idx], np.full(len(idx), rest), rest)[0]
            candidates.append(x)
    values = [float(sum(float(c.response(v)) for c, v in zip(curves, x))) for x in candidates]
    best = int(np.argmax(values))
    return candidates[best], values[best]


def plan_value(curves: list[ResponseCurve], x) -> float:
    return float(sum(float(c.response(v)) for c, v in zip(curves, x)))


def plan(curves: list[ResponseCurve], names: list[str], budget: float, current, caps=None,
         ident: dict | None = None, samples: dict | None = None, alpha: float | None = None) -> np.ndarray:
    """The optimizer's plan of ``budget`` on ``curves`` (exact mode if any is S-shaped).

    ``ident``: each channel's identification (``MediaMixModel.channel_report_``): the plan then
    has the evidence limits ``budget allocate`` puts on fitted curves
    (:func:`scenarios.evidence.limit_problem`). ``samples`` with ``alpha``: the guarded plan over
    the curve samples (:func:`optimizer.optimize_guarded`: the best mean return whose worst-α
    gain over the current plan is not negative).
    """
    caps = caps or [None] * len(curves)
    channels = tuple(Channel(name=n, curve=c, current=float(x0), extrapolation_cap=cap)
                     for n, c, x0, cap in zip(names, curves, current, caps))
    problem = Problem(channels=channels, budget=float(budget), reserve_min_share=0.0)
    if ident:
        problem, _ = limit_problem(problem, ident)
    if samples is not None:
        alloc = optimize_guarded(problem, samples, alpha).guarded
    else:
        alloc = optimize(problem, exact=not all(c.is_concave for c in curves))
    if alloc.status != "optimal":  # pragma: no cover - no constraint here can conflict
        raise RuntimeError(f"plan is {alloc.status}")
    by = {r.channel: r.spend for r in alloc.channels}
    return np.array([by[n] for n in names])


# --------------------------------------------------------------------------------------------
# The oracle: true shapes, fitted β and baseline


def oracle_betas(sim: Simulation, history) -> dict[str, float]:
    """β by NNLS on the true-shape features, the baseline's weights by least squares.

    The oracle knows every channel's family, α, k and s, and the baseline's regressors: a trend
    with its break (a step and a change of slope on the true date), the yearly wave (sine and
    cosine of the day of the year) and the calendar's true event shapes (618 and Double 11 presale
    ramps, the Spring Festival lull). It does not know the channels' seasonal efficiency, the
    spend before the history (the fitter's warm start stands in), the noise or any β: what is left
    is what the data can tell, the information limit a model that must also learn the shapes
    cannot beat (up to noise).
    """
    world = sim.world
    freq = world.frequency
    n = history.periods
    y = history.target()
    years = np.arange(n) / _PER_YEAR[freq]
    tb = years[min(int(world.break_at * n), n - 1)]
    after = (years >= tb).astype(float)
    doy = 2 * np.pi * history.dates.day_of_year.to_numpy() / 365.25
    cal = seasonal_intensity(history.dates, freq)
    B = np.column_stack([np.ones(n), years, after, after * (years - tb), np.sin(doy), np.cos(doy),
                         cal["618"], cal["double11"], cal["spring_festival"]])
    H = np.column_stack([
        saturation(ch.family, adstock(history.spend[ch.name].to_numpy(dtype=float), ch.alpha), ch.k, ch.s)
        for ch in world.channels
    ])
    burn = _BURN[freq]
    Q = orth(B[burn:])
    Hb, yb = H[burn:], y[burn:]
    Hr = Hb - Q @ (Q.T @ Hb)
    yr = yb - Q @ (Q.T @ yb)
    beta, _ = nnls(Hr, yr, maxiter=100 * H.shape[1])
    return {ch.name: float(b) for ch, b in zip(world.channels, beta)}


# --------------------------------------------------------------------------------------------
# One dataset


def _roi_at(curve: HillCurve, x: float) -> float:
    return float(curve.response(x)) / x


def _identification(model) -> dict:
    return {r["channel"]: r["identification"] for r in model.channel_report_ if r.get("identification")}


def _roi_draws(model, c: str, x: float) -> np.ndarray:
    """Steady-state ROI at spend ``x`` per period in every curve sample of channel ``c``."""
    samples = model.samples_.get(c)
    if samples is None or not len(samples):
        return np.zeros(0)
    return np.array([_roi_at(HillCurve(beta=b, k=k * (1 - a), s=s), x) for b, k, s, a in samples])


def _roi_scores(model, world, names, xbar) -> tuple[dict, dict, dict]:
    """Per channel: ROI error of the planning (posterior-mean) curve at mean spend, whether the
    samples' P10–P90 holds the truth, and (P10, P90)."""
    errs, covered, band = {}, {}, {}
    for c in names:
        truth = true_roi_at_mean(world, c, xbar[c])
        errs[c] = _roi_at(model.planning_curve(c, 1), xbar[c]) / truth - 1
        draws = _roi_draws(model, c, xbar[c])
        if draws.size:
            p10, p90 = np.percentile(draws, [10, 90])
            covered[c] = bool(p10 <= truth <= p90)
            band[c] = (float(p10), float(p90))
        else:
            band[c] = (float("nan"), float("nan"))
    return errs, covered, band


#: The plans scored per dataset and budget, by the rule they follow (see the module docstring).
PLAN_RULES = ("model", "mean", "evidence", "guard_10", "guard_20", "guard_30", "evidence_guard_10",
              "evidence_guard_20", "checked_10", "calibrated",
              "calibrated_guard", "oracle", "historical")
#: The rule budget allocate follows by default (what "model" is): the expected return over the
#: posterior (the posterior-mean curves) with the evidence limits on poorly identified channels.
DEFAULT_RULE = "evidence"


def _plans(curves, names, B, current, caps, ident, samples) -> dict[str, np.ndarray]:
    """Each rule's plan of budget B on the fitted curves (posterior mean curves)."""
    out = {"mean": plan(curves, names, B, current, caps)}
    out["evidence"] = plan(curves, names, B, current, caps, ident)
    for alpha in (0.1, 0.2, 0.3):
        out[f"guard_{round(alpha * 100)}"] = plan(curves, names, B, current, caps, samples=samples, alpha=alpha)
    for alpha in (0.1, 0.2):  # both: the guard within the evidence limits
        out[f"evidence_guard_{round(alpha * 100)}"] = plan(curves, names, B, current, caps, ident, samples, alpha)
    # The evidence plan unless its worst 10% of draws lose on the split, then the guard's (tried as
    # a default and rejected: the draws' worst 10% lose on the split in 29 of 36 histories at 1×).
    safe = _gain_cvar(out["evidence"], current, names, samples, 0.1) >= 0
    out["checked_10"] = out["evidence"] if safe else out["guard_10"]
    out["model"] = out[DEFAULT_RULE]
    return out


def _gain_cvar(x, current, names, samples, alpha) -> float:
    """CVaR_α over the curve samples of plan ``x``'s gain over ``current``."""
    S = len(samples[names[0]])
    gain = np.zeros(S)
    for j, c in enumerate(names):
        for s, curve in enumerate(samples[c]):
            gain[s] += float(curve.response(x[j])) - float(curve.response(current[j]))
    return cvar(gain, alpha)


#: The estimator the study scores: the joint Bayesian model (``budget fit --method bayes``).
METHOD = "bayes"


#: Overrides of the joint model's priors (``--priors``; :class:`models.posterior.Priors` fields).
PRIORS: dict | None = None

#: The share of a test window's spend each simulated lift test holds back (``--test-share``):
#: 1 a switch-off, 0.3 a partial holdback of 30% (``tested_spend`` in the record).
TEST_SHARE = 1.0


#: A folder of fitted models (``--models``): each fit is read from it when there, else saved into it
#: (``NAME.json``, and the fit's time in ``NAME.seconds.json``), so that planning rules can be
#: scored again without refitting.
MODELS: str | None = None


def _fit(history, n_jobs, calibration=None, name: str | None = None):
    """The fitted model and the seconds its fit took (read from ``MODELS`` when saved there)."""
    path = os.path.join(MODELS, name) if MODELS and name else None
    if path and os.path.exists(f"{path}.json"):
        with open(f"{path}.seconds.json", encoding="utf-8") as fh:
            return load_model(f"{path}.json"), json.load(fh)["fit_seconds"]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MediaMixModel(method=METHOD, n_jobs=n_jobs, random_state=0, calibration=calibration,
                              priors=PRIORS).fit(history)
    seconds = time.perf_counter() - t0
    if path:
        save_model(model, f"{path}.json")
        write_text_atomic(f"{path}.seconds.json", json.dumps({"fit_seconds": seconds}))
    return model, seconds


def run_dataset(index: int, seed: int, n_jobs: int | None = None, control: bool = False, calibrate: bool = True) -> dict:
    world: SimWorld = study_world(index, seed)
    if control:
        world = control_world(world)
    sim = simulate(world, seed=seed * 1000 + index)
    names = world.names
    history = history_from_frame(sim.frame)
    name = f"{'control-' if control else ''}{seed}-{index}"
    model, fit_seconds = _fit(history, n_jobs, name=name)
    calibrated = None
    if calibrate:
        calibrated, calibrated_seconds = _fit(history, n_jobs, lift_tests(sim, seed=sim.seed, share=TEST_SHARE),
                                              name=f"{name}-tested-{TEST_SHARE:g}")

    Q = quarter_periods(world.frequency)
    xbar = sim.mean_spend
    shares = sim.spend_shares()

    obeta = oracle_betas(sim, history)
    roi_err, covered, band = _roi_scores(model, world, names, xbar)
    oracle_err = {c: obeta[c] / world.channel(c).beta - 1 for c in names}
    channels = []
    for c in names:
        truth = true_roi_at_mean(world, c, xbar[c])
        ch = world.channel(c)
        channels.append({"channel": c, "family": ch.family, "pattern": ch.pattern, "alpha": round(ch.alpha, 3),
                         "spend_share": round(shares[c], 4), "true_roi": round(truth, 4),
                         "fitted_roi": round(truth * (1 + roi_err[c]), 4), "roi_p10": round(band[c][0], 4),
                         "roi_p90": round(band[c][1], 4), "oracle_roi_error": round(oracle_err[c], 4)})

    # Plans at 0.5×, 1×, 2× the historical quarter's spend, scored on the true curves.
    true_q = [true_curve(world, c, Q) for c in names]
    fit_q = [model.planning_curve(c, Q) for c in names]
    samples = {c: model.planning_curve_samples(c, Q) for c in names}
    oracle_q = [true_curve(world, c, Q).scaled(obeta[c] / world.channel(c).beta) for c in names]
    caps = [model.extrapolation_cap(c, Q) for c in names]
    base_budget = Q * sum(xbar.values())
    hist_x = np.array([shares[c] for c in names]) * base_budget
    mroi_err = [float(f.marginal(x)) / float(t.marginal(x)) - 1
                for f, t, x in zip(fit_q, true_q, hist_x) if float(t.marginal(x)) > 0]
    ident = _identification(model)
    regrets = {}
    if calibrated is not None:
        cal_q = [calibrated.planning_curve(c, Q) for c in names]
        cal_samples = {c: calibrated.planning_curve_samples(c, Q) for c in names}
    for m in BUDGETS:
        B = m * base_budget
        current = hist_x * m
        _, best = true_optimum(true_q, B)
        xs = _plans(fit_q, names, B, current, caps, ident, samples)
        xs["oracle"] = plan(oracle_q, names, B, current, caps)
        xs["historical"] = current
        if calibrated is not None:  # the default rule on the calibrated fit, and the guard on its draws
            xs["calibrated"] = plan(cal_q, names, B, current, caps, ident=_identification(calibrated))
            xs["calibrated_guard"] = plan(cal_q, names, B, current, caps, samples=cal_samples, alpha=0.1)
        regrets[f"{m:g}x"] = {who: 1 - plan_value(true_q, x) / best for who, x in xs.items()}
        regrets[f"{m:g}x"]["model_spent"] = float(xs["model"].sum() / B)
        # did the check replace the evidence plan by the guard's?
        regrets[f"{m:g}x"]["switched_10"] = float(not np.allclose(xs["checked_10"], xs["evidence"]))
    cal_detail = None
    if calibrated is not None:
        cal_err, cal_cov, _ = _roi_scores(calibrated, world, names, xbar)
        cal_detail = {"roi_error_median": round(float(np.median(np.abs(list(cal_err.values())))), 4),
                      "coverage": round(sum(cal_cov.values()) / len(cal_cov), 4) if cal_cov else None,
                      "fit_seconds": round(calibrated_seconds, 1),
                      "roi_errors": {c: round(e, 4) for c, e in cal_err.items()}}

    ao = [j for j, ch in enumerate(world.channels) if ch.pattern == "always_on"]
    logx = np.column_stack([np.log1p(sim.spend[c]) for c in names])
    realised_corr = (float(np.mean(np.corrcoef(logx[:, ao].T)[np.triu_indices(len(ao), 1)]))
                     if len(ao) > 1 else None)
    abs_err = np.abs(list(roi_err.values()))
    diag = model.uncertainty().get("diagnostics", {})
    return {
        "dataset": index,
        "frequency": world.frequency,
        "periods": world.periods,
        "channels": len(names),
        "regime": "control" if control else ["flighted", "always_on", "mixed"][index % 3],
        "noise": round(world.noise, 4),
        "spend_corr": round(world.spend_corr, 3),
        "spend_corr_realised": None if realised_corr is None else round(realised_corr, 3),
        "season_corr": round(world.season_corr, 3),
        "scurve": any(ch.family == "scurve" for ch in world.channels),
        "small_channels": sum(1 for c in names if shares[c] <= 0.03),
        "fit_seconds": round(fit_seconds, 1),
        "sampler": {k: diag.get(k) for k in ("r_hat", "ess", "divergences", "seconds")},
        "r2": round(model.fit_["r2"], 4),
        "holdout_mape": None if model.fit_["holdout"]["mape"] is None else round(model.fit_["holdout"]["mape"], 4),
        "roi_error_median": round(float(np.median(abs_err)), 4),
        "roi_error_worst": round(float(np.max(abs_err)), 4),
        "roi_error_weighted": round(float(sum(shares[c] * abs(e) for c, e in roi_err.items())), 4),
        "roi_error_oracle_median": round(float(np.median(np.abs(list(oracle_err.values())))), 4),
        "mroi_error_median": round(float(np.median(np.abs(mroi_err))), 4) if mroi_err else None,
        "coverage": round(sum(covered.values()) / len(covered), 4) if covered else None,
        "zero_beta_channels": sum(1 for c in names if model.params_[c].beta <= 0),
        "regret": {k: {kk: round(vv, 5) for kk, vv in v.items()} for k, v in regrets.items()},
        "roi_errors": {c: round(e, 4) for c, e in roi_err.items()},
        "levels": {c: ident[c]["level"] for c in names if c in ident},
        "calibrated": cal_detail,
        "channel_detail": channels,
    }


# --------------------------------------------------------------------------------------------
# Summary and output


def summarise(rows: list[dict]) -> dict:
    def med(v):
        v = [x for x in v if x is not None]
        return round(float(np.median(v)), 4) if v else None

    out = {"datasets": len(rows)}
    plans = [who for who in PLAN_RULES if who in rows[0]["regret"]["1x"]]
    for m in BUDGETS:
        key = f"{m:g}x"
        out[f"regret_{key}"] = {who: med([r["regret"][key][who] for r in rows]) for who in plans}
        out[f"do_no_harm_violations_{key}"] = sum(
            1 for r in rows if r["regret"][key]["model"] > r["regret"][key]["historical"] + 1e-6)
        out[f"violations_{key}"] = {who: sum(1 for r in rows if r["regret"][key][who] > r["regret"][key]["historical"] + 1e-6)
                                    for who in plans if who != "historical"}
        out[f"worst_excess_{key}"] = {who: round(max(r["regret"][key][who] - r["regret"][key]["historical"] for r in rows), 4)
                                      for who in plans if who != "historical"}
    cal = [r["calibrated"] for r in rows if r.get("calibrated")]
    if cal:
        out["calibrated"] = {"roi_error_median_of_datasets": med([c["roi_error_median"] for c in cal]),
                             "coverage": med([c["coverage"] for c in cal]),
                             "fit_seconds_median": med([c["fit_seconds"] for c in cal])}
    graded = [(lv, abs(r["roi_errors"][c])) for r in rows for c, lv in r.get("levels", {}).items()]
    out["roi_error_by_level"] = {
        lv: {"channels": len(errs), "median": med(errs), "share_above_50pct": round(float(np.mean(np.array(errs) > 0.5)), 4)}
        for lv in ("good", "weak", "poor") if (errs := [e for g, e in graded if g == lv])}
    out["fit_seconds_median"] = med([r["fit_seconds"] for r in rows])
    out["roi_error_median_of_datasets"] = med([r["roi_error_median"] for r in rows])
    out["roi_error_median_all_channels"] = med([abs(e) for r in rows for e in r["roi_errors"].values()])
    out["roi_error_spend_weighted_median_of_datasets"] = med([r["roi_error_weighted"] for r in rows])
    out["zero_beta_share"] = round(sum(r["zero_beta_channels"] for r in rows) / sum(r["channels"] for r in rows), 4)
    detail = [c for r in rows for c in r["channel_detail"]]
    errs = np.array([c["fitted_roi"] / c["true_roi"] - 1 for c in detail])
    small = np.array([c["spend_share"] <= 0.03 for c in detail])
    out["channels"] = len(detail)
    out["share_within_25pct"] = round(float(np.mean(np.abs(errs) < 0.25)), 4)
    out["share_overestimated_2x"] = round(float(np.mean(errs > 1.0)), 4)
    out["zero_beta_share_small_channels"] = round(float(np.mean(errs[small] <= -0.999)), 4) if small.any() else None
    out["roi_error_oracle_median_all_channels"] = med([abs(c["oracle_roi_error"]) for c in detail])
    out["roi_error_worst"] = round(max(r["roi_error_worst"] for r in rows), 4)
    out["roi_error_oracle_median_of_datasets"] = med([r["roi_error_oracle_median"] for r in rows])
    out["mroi_error_median_of_datasets"] = med([r["mroi_error_median"] for r in rows])
    cov = [(r["coverage"], r["channels"]) for r in rows if r["coverage"] is not None]
    out["coverage_all_channels"] = round(sum(c * n for c, n in cov) / sum(n for _, n in cov), 4) if cov else None
    out["median_r2"] = med([r["r2"] for r in rows])
    out["median_holdout_mape"] = med([r["holdout_mape"] for r in rows])
    by = {}
    for regime in ("flighted", "always_on", "mixed", "control"):
        sub = [r for r in rows if r["regime"] == regime]
        if sub:
            by[regime] = {
                "datasets": len(sub),
                "roi_error_median": med([r["roi_error_median"] for r in sub]),
                "regret_1x": {who: med([r["regret"]["1x"][who] for r in sub]) for who in ("model", "oracle", "historical")},
                "do_no_harm_violations_1x": sum(1 for r in sub if r["regret"]["1x"]["model"] > r["regret"]["1x"]["historical"] + 1e-6),
                "coverage": med([r["coverage"] for r in sub]),
            }
    out["by_regime"] = by
    out["oracle_do_no_harm_violations_1x"] = sum(
        1 for r in rows if r["regret"]["1x"]["oracle"] > r["regret"]["1x"]["historical"] + 1e-6)
    out["model_more_than_1pt_above_oracle_1x"] = sum(
        1 for r in rows if r["regret"]["1x"]["model"] > r["regret"]["1x"]["oracle"] + 0.01)
    noise = {}
    for label, lo, hi in (("noise <= 5%", 0.0, 0.05), ("noise > 5%", 0.05, 1.0)):
        sub = [r for r in rows if lo < r["noise"] <= hi]
        if sub:
            noise[label] = {
                "datasets": len(sub),
                "roi_error_median": med([r["roi_error_median"] for r in sub]),
                "regret_1x": {who: med([r["regret"]["1x"][who] for r in sub]) for who in ("model", "oracle", "historical")},
                "do_no_harm_violations_1x": sum(1 for r in sub if r["regret"]["1x"]["model"] > r["regret"]["1x"]["historical"] + 1e-6),
            }
    out["by_noise"] = noise
    out["by_frequency"] = {
        f: {"datasets": len(sub), "regret_1x": {who: med([r["regret"]["1x"][who] for r in sub])
                                                for who in ("model", "oracle", "historical")}}
        for f in ("weekly", "daily", "monthly") if (sub := [r for r in rows if r["frequency"] == f])
    }
    return out


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def render(result: dict) -> str:
    rows = result["datasets"]
    head = (f"{'#':>2} {'freq':<7} {'n':>4} {'ch':>2} {'regime':<9} {'noise':>5} {'R²':>5} "
            f"{'ROI err med':>11} {'worst':>7} {'oracle':>7} {'cover':>6} "
            f"{'regret 0.5× model/orc/hist':>27} {'1× model/orc/hist':>24} {'2× model/orc/hist':>24}")
    lines = [head, "-" * len(head)]
    for r in rows:
        rg = r["regret"]
        cells = [f"{_pct(rg[k]['model'])}/{_pct(rg[k]['oracle'])}/{_pct(rg[k]['historical'])}" for k in ("0.5x", "1x", "2x")]
        lines.append(
            f"{r['dataset']:>2} {r['frequency']:<7} {r['periods']:>4} {r['channels']:>2} {r['regime']:<9} "
            f"{_pct(r['noise']):>5} {r['r2']:>5.2f} {_pct(r['roi_error_median']):>11} {_pct(r['roi_error_worst']):>7} "
            f"{_pct(r['roi_error_oracle_median']):>7} {_pct(r['coverage']):>6} {cells[0]:>27} {cells[1]:>24} {cells[2]:>24}")
    s = result["summary"]
    lines += [
        "",
        f"datasets: {s['datasets']} (seed {result['seed']}, {result['seconds']:.0f} s)",
        f"plans: model = budget allocate's default ({DEFAULT_RULE.replace('_', ' ')}), mean = the posterior-mean "
        "curves alone, evidence = those with the evidence bands, checked 10 = evidence unless its worst 10% of "
        "draws lose on the split, then guard 10, guard N = the best mean return whose worst N% of "
        "draws gain against the current split, calibrated = the default refitted with one lift test per channel "
        "(se 15%)",
        *[f"median regret at {k.replace('x', '×'):<4}: " + " | ".join(
            f"{who.replace('_', ' ')} {_pct(v)}" for who, v in s[f"regret_{k}"].items()) for k in ("0.5x", "1x", "2x")],
        *[f"worse than the historical split at {k.replace('x', '×'):<4}: " + " | ".join(
            f"{who.replace('_', ' ')} {v}" for who, v in s[f"violations_{k}"].items())
          + f" (of {s['datasets']}; worst excess: model {_pct(s[f'worst_excess_{k}']['model'])})" for k in ("0.5x", "1x", "2x")],
        f"ROI error (steady state at mean spend): median {_pct(s['roi_error_median_of_datasets'])} of dataset "
        f"medians, {_pct(s['roi_error_median_all_channels'])} over all channels, worst {_pct(s['roi_error_worst'])}; "
        f"oracle {_pct(s['roi_error_oracle_median_of_datasets'])} of dataset medians, "
        f"{_pct(s['roi_error_oracle_median_all_channels'])} over all channels",
        f"of {s['channels']} channels: {_pct(s['share_within_25pct'])} within 25% of the true ROI, "
        f"{_pct(s['share_overestimated_2x'])} over-estimated by more than 100%, "
        f"β = 0 for {_pct(s['zero_beta_share_small_channels'])} of the small ones (≤ 3% of spend)",
        f"ROI error weighted by spend share: median {_pct(s['roi_error_spend_weighted_median_of_datasets'])}; "
        f"channels fitted with β = 0 (no effect): {_pct(s['zero_beta_share'])}",
        f"marginal ROI error at the historical split: median {_pct(s['mroi_error_median_of_datasets'])}",
        f"80% interval coverage: {_pct(s['coverage_all_channels'])} of channels",
        f"in-sample R² median {s['median_r2']}, holdout MAPE median {_pct(s['median_holdout_mape'])}",
        "ROI error by identification grade: " + ", ".join(
            f"{lv} {b['channels']} channels median {_pct(b['median'])} ({_pct(b['share_above_50pct'])} off by > 50%)"
            for lv, b in s.get("roi_error_by_level", {}).items()),
        f"fit time median {s['fit_seconds_median']} s (holdout run included; --jobs 1 runs the two chains on one core)",
    ]
    if s.get("calibrated"):
        c = s["calibrated"]
        lines.append(f"with one lift test per channel: ROI error median {_pct(c['roi_error_median_of_datasets'])}, "
                     f"80% coverage {_pct(c['coverage'])}, fit {c['fit_seconds_median']} s")
    lines.append(f"oracle loses more than the historical split at 1× in {s['oracle_do_no_harm_violations_1x']}; "
                 f"model more than 1 point above the oracle at 1× in {s['model_more_than_1pt_above_oracle_1x']}")
    for regime, b in [*s["by_regime"].items(), *s["by_noise"].items(), *s["by_frequency"].items()]:
        lines.append(
            f"  {regime:<11} ({b['datasets']}): "
            + (f"ROI error {_pct(b['roi_error_median'])}, " if "roi_error_median" in b else "")
            + "regret 1× model "
            f"{_pct(b['regret_1x']['model'])} / oracle {_pct(b['regret_1x']['oracle'])} / historical "
            f"{_pct(b['regret_1x']['historical'])}"
            + (f", violations {b['do_no_harm_violations_1x']}" if "do_no_harm_violations_1x" in b else "")
            + (f", coverage {_pct(b['coverage'])}" if "coverage" in b else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=24, help="datasets in the study (default 24)")
    parser.add_argument("--only", default=None, help="comma-separated dataset indices instead of 0…datasets−1")
    parser.add_argument("--quick", action="store_true", help="4 weekly datasets (while developing)")
    parser.add_argument("--jobs", type=int, default=None, help="cores per fit (default: all; chains run in parallel)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")
    parser.add_argument("--rows", default=None, help="append each dataset's row to this JSON-lines file as it is done")
    parser.add_argument("--from-rows", default=None, metavar="FILE",
                        help="summarise the rows a --rows run wrote (a run resumed in pieces) without fitting; "
                             "the last row of each dataset counts")
    parser.add_argument("--control", action="store_true",
                        help="the same datasets in the model's own form (models.simulate.control_world): "
                             "Hill s = 0.8, flighted spend, flat efficiency, no break, 0.5%% noise")
    parser.add_argument("--no-calibration", action="store_true",
                        help="skip the second fit of each dataset with one lift test per channel")
    parser.add_argument("--priors", default=None, metavar="JSON",
                        help='overrides of the joint model\'s priors, e.g. \'{"roi_spread": 1.0}\' (models.posterior.Priors)')
    parser.add_argument("--test-share", type=float, default=1.0, metavar="SHARE",
                        help="each lift test holds back this share of its window's spend (default 1: a switch-off; "
                             "0.3: a partial holdback, tested_spend in the record)")
    parser.add_argument("--models", default=None, metavar="DIR",
                        help="read each fit from DIR when it is there, else save it there (JSON), to score "
                             "planning rules again without refitting (one folder per --priors setting); the times are then the load's")
    parser.add_argument("--bands", default=None, metavar="JSON",
                        help='the evidence limits\' bands instead of scenarios.evidence.BANDS, e.g. \'{"weak": 0.5}\' '
                             "(the default rule's plans; to weigh other bands against the do-no-harm count)")
    args = parser.parse_args(argv)
    if not 0.0 < args.test_share <= 1.0:
        parser.error(f"--test-share must lie in (0, 1], got {args.test_share}")
    global PRIORS, TEST_SHARE, MODELS
    MODELS = args.models
    if args.bands:
        bands = json.loads(args.bands)
        if not set(bands) <= set(BANDS):
            parser.error(f"--bands names levels {', '.join(sorted(set(bands) - set(BANDS)))}; they are {', '.join(BANDS)}")
        BANDS.update(bands)
    if MODELS:
        os.makedirs(MODELS, exist_ok=True)
    PRIORS = json.loads(args.priors) if args.priors else None
    TEST_SHARE = args.test_share
    logging.basicConfig(level=logging.ERROR)
    for noisy in ("cmdstanpy", "prophet", "models"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    indices = ([int(i) for i in args.only.split(",")] if args.only else
               list(range(4 if args.quick else args.datasets)))
    t0 = time.perf_counter()
    rows = []
    if args.from_rows:
        with open(args.from_rows, encoding="utf-8") as fh:
            latest = {r["dataset"]: r for r in map(json.loads, filter(str.strip, fh))}
        rows = [latest[i] for i in sorted(latest)]
        indices = []
    for done, i in enumerate(indices, 1):
        t = time.perf_counter()
        rows.append(run_dataset(i, args.seed, args.jobs, control=args.control, calibrate=not args.no_calibration))
        r = rows[-1]
        if args.rows:
            with open(args.rows, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"dataset {done}/{len(indices)} (#{i}): {r['frequency']} {r['channels']} channels {r['regime']}, ROI "
              f"error {_pct(r['roi_error_median'])}, regret 1× {_pct(r['regret']['1x']['model'])} "
              f"({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - t0
    if args.from_rows:  # the fits' own time, as the rows recorded it
        seconds = sum(r["fit_seconds"] + ((r.get("calibrated") or {}).get("fit_seconds") or 0) for r in rows)
    result = {"seed": args.seed, "control": args.control, "priors": PRIORS, "test_share": TEST_SHARE, "bands": BANDS,
              "seconds": round(seconds, 1),
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
