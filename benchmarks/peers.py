"""PyMC-Marketing side by side: its MMM on recovery-study datasets, scored with the study's metrics.

Usage: .venv-bench/bin/python benchmarks/peers.py [--datasets 0,1,2,3,4,5] [--seed 2026]
                                                 [--draws 1000] [--tune 1000] [--chains 2]
                                                 [--cores 1] [--target-accept 0.8] [--l-max 8]
                                                 [--json] [--out FILE]

Needs the optional ``bench`` extra (``pip install -e '.[bench]'``, kept in its own venv,
``.venv-bench``); ``make test`` never imports it. Issue 9: "where PyMC-Marketing is installed,
run it on a subset side by side and print both". The JSON (default
``benchmarks/results/peers_pymc.json``) has the per-dataset key names of
``benchmarks/attribution.py`` where they mean the same thing, so the study can merge it.

Data: the study's datasets, :func:`models.simulate.study_world` ``(index, seed)`` simulated with
``seed * 1000 + index``. The default subset is the weekly datasets 0–5: two of each spend regime
(``index % 3``: flighted, always-on, mixed). Datasets 10 and 11 (daily, monthly) run only when
asked for.

The peer
--------
``pymc_marketing.mmm.multidimensional.MMM`` (the current class; ``pymc_marketing.mmm.MMM`` is
deprecated for removal in 0.20) with its defaults: ``GeometricAdstock(l_max=8)`` (normalised
weights, ``ConvMode.After``), ``LogisticSaturation()``, max-abs scaling of every channel and of
the target, its default priors, ``yearly_seasonality=2``, one control column ``t`` (0 → 1 over
the history: a linear trend), the ``date`` column; fitted by PyMC's NUTS (``pm.sample`` defaults:
1000 draws after 1000 tuning steps, 2 chains on this 2-core machine; ``--cores 1`` runs them one
after the other so a fit uses one core, as the study's fits do). ``fit_seconds`` is the wall time
of ``MMM.fit`` (model build, compilation, sampling, deterministics).

Its curves
----------
Per draw d and channel c, in original units (``s_c`` the channel's scale, the max of its spend;
``s_y`` the target's, the max of the KPI), the per-period contribution over the history is::

    a_t   = Σ_{i<L} w_i x_{t−i} / s_c,   w_i = α^i / Σ_{j<L} α^j     (normalised geometric adstock)
    C_t   = s_y · β · (1 − e^{−λ a_t}) / (1 + e^{−λ a_t})            (logistic saturation)

Spend x held every period gives a = x / s_c (the weights sum to 1: carryover moves the effect in
time but not its size), so the steady-state response per period is
``r_d(x) = s_y β (1 − e^{−λx/s_c}) / (1 + e^{−λx/s_c})``: the same definition as the study's
planning curves. The **posterior-mean curve** is the mean of r_d over the draws.

* ROI at the history's mean spend x̄: posterior-mean r(x̄)/x̄ against
  :func:`models.simulate.true_roi_at_mean`; coverage: whether the draws' P10–P90 of r_d(x̄)/x̄
  holds the truth.
* Plans: over a quarter of Q periods, ``R(X) = Q · r(X/Q)``, tabulated as a
  :class:`models.curves.PointsCurve` on 2001 points from 0 to 3 × the channel's largest quarterly
  spend (Q × its largest spend per period); planned by the study's :func:`attribution.plan` with
  the study's extrapolation cap (1.5 × the largest spend per period seen × Q) and no evidence
  limits, i.e. the study's ``curves_only`` plan; scored on the true curves against
  :func:`attribution.true_optimum`, at 0.5×, 1× and 2× the historical quarterly budget, next to
  the historical split.

How the reconstruction is checked (every dataset; ``reconstruction_error`` in the JSON)
-------------------------------------------------------------------------------------
1. The formula for C_t above, evaluated in numpy per draw on the history's spend and averaged over
   the draws, against PyMC-Marketing's own ``MMM.compute_mean_contributions_over_time()``
   channel columns (its ``channel_contribution`` deterministic × ``target_scale``, posterior
   mean): the largest |difference| over all periods, as a share of the channel's mean
   contribution. In the saved run (6 datasets, 2 × 1000 draws each) it was at most 1.4e-15;
   a run stops with an error above 1%.
2. The steady state: PyMC-Marketing's own ``geometric_adstock`` and ``logistic_saturation``
   (``pymc_marketing.mmm.transformers``, evaluated with pytensor) on 3·L periods of constant
   spend x̄ at the posterior-mean α, λ, β, against r(x̄) at the same parameters
   (``reconstruction_error.steady_state``; at most 4.4e-16 in the saved run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(_HERE))
sys.path.insert(0, _HERE)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core per chain: the machine is shared

import logging  # noqa: E402
from importlib.metadata import version  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from attribution import BUDGETS, _pct, plan, plan_value, true_optimum  # noqa: E402
from models.curves import PointsCurve  # noqa: E402
from models.simulate import quarter_periods, simulate, study_world, true_curve, true_roi_at_mean  # noqa: E402

DEFAULT_DATASETS = (0, 1, 2, 3, 4, 5)
GRID_POINTS = 2001
CAP_FACTOR = 1.5  # the study's extrapolation cap (MediaMixModel.extrapolation_cap's default)
TOLERANCE = 0.01  # largest allowed reconstruction error


# --------------------------------------------------------------------------------------------
# Fitting the peer


def fit_peer(frame: pd.DataFrame, names: list[str], *, l_max: int, yearly: int, draws: int, tune: int,
             chains: int, cores: int, seed: int, target_accept: float | None = None):
    """PyMC-Marketing's MMM fitted by NUTS on a wide history (``date, revenue, <channel>...``)."""
    from pymc_marketing.mmm import GeometricAdstock, LogisticSaturation
    from pymc_marketing.mmm.multidimensional import MMM

    X = frame[["date", *names]].copy()
    X["date"] = pd.to_datetime(X["date"])
    X[names] = X[names].astype(float)
    X["t"] = np.linspace(0.0, 1.0, len(X))
    y = frame["revenue"].astype(float).rename("revenue")
    mmm = MMM(date_column="date", channel_columns=list(names), target_column="revenue",
              adstock=GeometricAdstock(l_max=l_max), saturation=LogisticSaturation(),
              control_columns=["t"], yearly_seasonality=yearly)
    extra = {} if target_accept is None else {"target_accept": target_accept}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmm.fit(X, y, progressbar=False, random_seed=seed, draws=draws, tune=tune, chains=chains, cores=cores,
                **extra)
    return mmm, time.perf_counter() - t0


def posterior_params(mmm, names: list[str]) -> dict:
    """Per-draw α, λ, β (draws × channels, in the channel order ``names``) and the scales."""
    post = mmm.idata.posterior.stack(sample=("chain", "draw"))
    const = mmm.idata.constant_data

    def get(var):
        return post[var].transpose("sample", "channel").sel(channel=names).to_numpy()

    return {
        "alpha": get("adstock_alpha"),
        "lam": get("saturation_lam"),
        "beta": get("saturation_beta"),
        "x_scale": const["channel_scale"].sel(channel=names).to_numpy().astype(float),
        "y_scale": float(const["target_scale"].to_numpy()),
        "l_max": int(mmm.adstock.l_max),
        "normalize": bool(mmm.adstock.normalize),
    }


def _logistic(z):
    return -np.expm1(-z) / (1.0 + np.exp(-z))


def _weights(alpha: np.ndarray, l_max: int, normalize: bool) -> np.ndarray:
    """Adstock weights per draw: draws × l_max."""
    w = np.power(alpha[:, None], np.arange(l_max)[None, :])
    return w / w.sum(axis=1, keepdims=True) if normalize else w


def steady_response(p: dict, j: int, x) -> np.ndarray:
    """Per-draw steady-state response per period of channel j at spend per period ``x``: draws × len(x)."""
    x = np.atleast_1d(np.asarray(x, dtype=float))
    carry = _weights(p["alpha"][:, j], p["l_max"], p["normalize"]).sum(axis=1)  # 1 when normalised
    a = carry[:, None] * x[None, :] / p["x_scale"][j]
    return p["y_scale"] * p["beta"][:, j, None] * _logistic(p["lam"][:, j, None] * a)


def history_contributions(p: dict, spend: np.ndarray) -> np.ndarray:
    """Posterior-mean contribution per period (periods × channels) on the history's spend."""
    n, m = spend.shape
    out = np.zeros((n, m))
    for j in range(m):
        w = _weights(p["alpha"][:, j], p["l_max"], p["normalize"])  # draws × L
        xs = spend[:, j] / p["x_scale"][j]
        lagged = np.stack([np.concatenate([np.zeros(i), xs[: n - i]]) for i in range(p["l_max"])], axis=1)
        a = w @ lagged.T  # draws × periods
        out[:, j] = (p["y_scale"] * p["beta"][:, j, None] * _logistic(p["lam"][:, j, None] * a)).mean(axis=0)
    return out


def check_reconstruction(mmm, p: dict, names: list[str], spend: np.ndarray, xbar: np.ndarray) -> dict:
    """Our contributions against PyMC-Marketing's own, and our steady state against its transforms."""
    import xarray as xr
    from pymc_marketing.mmm.transformers import geometric_adstock, logistic_saturation

    ours = history_contributions(p, spend)
    theirs = mmm.compute_mean_contributions_over_time()[names].to_numpy(dtype=float)
    scale = np.maximum(np.abs(theirs).mean(axis=0), 1e-12)
    history_err = float(np.max(np.abs(ours - theirs) / scale))
    steady_err = 0.0
    L = p["l_max"]
    for j in range(len(names)):
        a, lam, beta = (float(p[k][:, j].mean()) for k in ("alpha", "lam", "beta"))
        x = xr.DataArray(np.full(3 * L, xbar[j] / p["x_scale"][j]), dims=("date",))
        e = geometric_adstock(x, alpha=a, l_max=L, dim="date", normalize=p["normalize"])
        theirs_ss = p["y_scale"] * beta * float(logistic_saturation(e, lam=lam).eval()[-1])
        one = {"alpha": np.array([[a]]), "lam": np.array([[lam]]), "beta": np.array([[beta]]),
               "x_scale": p["x_scale"][j:j + 1], "y_scale": p["y_scale"], "l_max": L, "normalize": p["normalize"]}
        ours_ss = float(steady_response(one, 0, xbar[j])[0, 0])
        steady_err = max(steady_err, abs(ours_ss / theirs_ss - 1))
    return {"history": history_err, "steady_state": steady_err}


def diagnostics(mmm) -> dict:
    import arviz as az

    idata = mmm.idata
    var_names = ["adstock_alpha", "saturation_lam", "saturation_beta"]
    rhat = az.rhat(idata, var_names=var_names)
    ess = az.ess(idata, var_names=var_names)
    return {
        "divergences": int(idata.sample_stats["diverging"].sum()),
        "r_hat_max": round(float(max(rhat[v].max() for v in var_names)), 4),
        "ess_bulk_min": round(float(min(ess[v].min() for v in var_names)), 1),
    }


# --------------------------------------------------------------------------------------------
# One dataset


def run_dataset(index: int, seed: int, args) -> dict:
    world = study_world(index, seed)
    sim = simulate(world, seed=seed * 1000 + index)
    mmm, fit_seconds = fit_peer(sim.frame, world.names, l_max=args.l_max, yearly=args.yearly_seasonality,
                                draws=args.draws, tune=args.tune, chains=args.chains, cores=args.cores,
                                seed=seed * 1000 + index, target_accept=args.target_accept)
    return {"dataset": index, **score(mmm, sim, fit_seconds), "regime": ["flighted", "always_on", "mixed"][index % 3]}


def score(mmm, sim, fit_seconds: float) -> dict:
    """The study's metrics for a fitted peer on its simulation (the row's keys but ``dataset``, ``regime``)."""
    world = sim.world
    names = world.names
    frame = sim.frame
    spend = frame[names].to_numpy(dtype=float)
    p = posterior_params(mmm, names)
    xbar_d = sim.mean_spend
    xbar = np.array([xbar_d[c] for c in names])
    shares = sim.spend_shares()

    check = check_reconstruction(mmm, p, names, spend, xbar)
    if check["history"] > TOLERANCE or check["steady_state"] > TOLERANCE:
        raise RuntimeError(f"curve reconstruction off by {check} (> {TOLERANCE:.0%})")

    # In-sample fit of the posterior-mean components.
    parts = mmm.compute_mean_contributions_over_time().drop(columns=["date"])
    fitted = parts.sum(axis=1).to_numpy(dtype=float)
    y = frame["revenue"].to_numpy(dtype=float)
    r2 = 1 - float(np.sum((y - fitted) ** 2) / np.sum((y - y.mean()) ** 2))

    # Steady-state ROI at the mean spend: posterior-mean curve, draws' P10–P90.
    roi_err, covered, channels = {}, {}, []
    for j, c in enumerate(names):
        truth = true_roi_at_mean(world, c, xbar[j])
        sroi = steady_response(p, j, xbar[j])[:, 0] / xbar[j]
        roi = float(sroi.mean())
        p10, p90 = np.percentile(sroi, [10, 90])
        roi_err[c] = roi / truth - 1
        covered[c] = bool(p10 <= truth <= p90)
        ch = world.channel(c)
        channels.append({"channel": c, "family": str(ch.family), "pattern": str(ch.pattern), "alpha": round(ch.alpha, 3),
                         "fitted_alpha": round(float(p["alpha"][:, j].mean()), 3),
                         "spend_share": round(shares[c], 4), "true_roi": round(truth, 4), "fitted_roi": round(roi, 4),
                         "roi_p10": round(float(p10), 4), "roi_p90": round(float(p90), 4)})

    # Plans at 0.5×, 1×, 2× the historical quarter's spend, scored on the true curves.
    Q = quarter_periods(world.frequency)
    true_q = [true_curve(world, c, Q) for c in names]
    peak = spend.max(axis=0)
    fit_q = []
    for j in range(len(names)):
        grid = np.linspace(0.0, 3.0 * Q * peak[j], GRID_POINTS)
        fit_q.append(PointsCurve(grid, np.maximum.accumulate(Q * steady_response(p, j, grid / Q).mean(axis=0))))
    caps = [CAP_FACTOR * peak[j] * Q for j in range(len(names))]
    base_budget = Q * float(xbar.sum())
    hist_x = np.array([shares[c] for c in names]) * base_budget
    regrets = {}
    for m in BUDGETS:
        B = m * base_budget
        current = hist_x * m
        _, best = true_optimum(true_q, B)
        x_model = plan(fit_q, names, B, current, caps)
        regrets[f"{m:g}x"] = {
            "model": round(1 - plan_value(true_q, x_model) / best, 5),
            "historical": round(1 - plan_value(true_q, current) / best, 5),
            "model_spent": round(float(x_model.sum() / B), 5),
        }

    abs_err = np.abs(list(roi_err.values()))
    return {
        "frequency": world.frequency,
        "periods": world.periods,
        "channels": len(names),
        "noise": round(world.noise, 4),
        "fit_seconds": round(fit_seconds, 1),
        "r2": round(r2, 4),
        "roi_error_median": round(float(np.median(abs_err)), 4),
        "roi_error_worst": round(float(np.max(abs_err)), 4),
        "coverage": round(sum(covered.values()) / len(covered), 4),
        "regret": regrets,
        "roi_errors": {c: round(e, 4) for c, e in roi_err.items()},
        "sampler": diagnostics(mmm),
        "reconstruction_error": {k: float(f"{v:.3g}") for k, v in check.items()},
        "channel_detail": channels,
    }


# --------------------------------------------------------------------------------------------
# Summary and output


def summarise(rows: list[dict]) -> dict:
    def med(v):
        return round(float(np.median(v)), 4)

    out = {"datasets": len(rows)}
    for m in BUDGETS:
        key = f"{m:g}x"
        out[f"regret_{key}"] = {who: med([r["regret"][key][who] for r in rows]) for who in ("model", "historical")}
        out[f"do_no_harm_violations_{key}"] = sum(
            1 for r in rows if r["regret"][key]["model"] > r["regret"][key]["historical"] + 1e-6)
    out["roi_error_median_of_datasets"] = med([r["roi_error_median"] for r in rows])
    out["roi_error_median_all_channels"] = med([abs(e) for r in rows for e in r["roi_errors"].values()])
    out["roi_error_worst"] = round(max(r["roi_error_worst"] for r in rows), 4)
    out["coverage_all_channels"] = round(sum(r["coverage"] * r["channels"] for r in rows)
                                         / sum(r["channels"] for r in rows), 4)
    out["fit_seconds_median"] = med([r["fit_seconds"] for r in rows])
    out["median_r2"] = med([r["r2"] for r in rows])
    out["divergences"] = sum(r["sampler"]["divergences"] for r in rows)
    out["r_hat_max"] = max(r["sampler"]["r_hat_max"] for r in rows)
    return out


def render(result: dict) -> str:
    rows = result["datasets"]
    head = (f"{'#':>2} {'freq':<7} {'n':>4} {'ch':>2} {'regime':<9} {'R²':>5} {'ROI err med':>11} {'worst':>7} "
            f"{'cover':>6} {'regret 0.5× peer/hist':>22} {'1× peer/hist':>15} {'2× peer/hist':>15} "
            f"{'fit s':>6} {'div':>4} {'r̂ max':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        rg = r["regret"]
        cells = [f"{_pct(rg[k]['model'])}/{_pct(rg[k]['historical'])}" for k in ("0.5x", "1x", "2x")]
        lines.append(
            f"{r['dataset']:>2} {r['frequency']:<7} {r['periods']:>4} {r['channels']:>2} {r['regime']:<9} "
            f"{r['r2']:>5.2f} {_pct(r['roi_error_median']):>11} {_pct(r['roi_error_worst']):>7} "
            f"{_pct(r['coverage']):>6} {cells[0]:>22} {cells[1]:>15} {cells[2]:>15} {r['fit_seconds']:>6.0f} "
            f"{r['sampler']['divergences']:>4} {r['sampler']['r_hat_max']:>6.3f}")
    s = result["summary"]
    st = result["settings"]
    cells = [f"{_pct(s[f'regret_{k}']['model'])}/{_pct(s[f'regret_{k}']['historical'])}" for k in ("0.5x", "1x", "2x")]
    lines.append("-" * len(head))
    lines.append(f"{'median':<30} {s['median_r2']:>5.2f} {_pct(s['roi_error_median_of_datasets']):>11} "
                 f"{_pct(s['roi_error_worst']):>7} {_pct(s['coverage_all_channels']):>6} {cells[0]:>22} "
                 f"{cells[1]:>15} {cells[2]:>15} {s['fit_seconds_median']:>6.0f} {s['divergences']:>4} "
                 f"{s['r_hat_max']:>6.3f}")
    lines += [
        "",
        f"PyMC-Marketing {result['versions']['pymc-marketing']} (PyMC {result['versions']['pymc']}): "
        f"GeometricAdstock(l_max={st['l_max']}) + LogisticSaturation, yearly_seasonality={st['yearly_seasonality']}, "
        f"trend control; NUTS {st['chains']} chains × {st['draws']} draws ({st['tune']} tune) on {st['cores']} core(s)",
        f"datasets: {s['datasets']} (seed {result['seed']}, {result['seconds']:.0f} s); in the median row the "
        "worst ROI error is the worst, coverage pooled over all channels, divergences summed, r̂ the worst",
        f"ROI error over all channels: median {_pct(s['roi_error_median_all_channels'])}; "
        "plans: the study's optimizer on the posterior-mean quarterly curves, cap 1.5× the largest spend "
        "(the study's curves_only plan)",
        "worse than the historical split: " + ", ".join(
            f"{k.replace('x', '×')} {s[f'do_no_harm_violations_{k}']}" for k in ("0.5x", "1x", "2x"))
        + f" (of {s['datasets']})",
    ]
    return "\n".join(lines)


def _datasets(text: str) -> list[int]:
    try:
        out = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--datasets: comma-separated integers, got {text!r}") from None
    if not out:
        raise argparse.ArgumentTypeError("--datasets: at least one dataset")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=_datasets, default=list(DEFAULT_DATASETS),
                        help="comma-separated study datasets (default 0,1,2,3,4,5: weekly, two per spend regime)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--draws", type=int, default=1000, help="NUTS draws per chain (pm.sample's default 1000)")
    parser.add_argument("--tune", type=int, default=1000, help="NUTS tuning steps per chain (default 1000)")
    parser.add_argument("--chains", type=int, default=2, help="chains (pm.sample's default on 2 cores: 2)")
    parser.add_argument("--cores", type=int, default=1, help="chains run in parallel on this many cores (default 1)")
    parser.add_argument("--target-accept", type=float, default=None,
                        help="NUTS target acceptance (default: PyMC's, 0.8)")
    parser.add_argument("--l-max", type=int, default=8, help="GeometricAdstock's l_max (default 8)")
    parser.add_argument("--yearly-seasonality", type=int, default=2, help="Fourier modes (default 2)")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--out", default=os.path.join(_HERE, "results", "peers_pymc.json"),
                        help="also write the JSON to this file (default benchmarks/results/peers_pymc.json)")
    args = parser.parse_args(argv)
    try:
        import pymc_marketing  # noqa: F401
    except ImportError:
        print("benchmarks/peers.py needs PyMC-Marketing: pip install -e '.[bench]' (in its own venv, "
              ".venv-bench)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR)
    for noisy in ("pymc", "pytensor", "pymc_marketing", "cmdstanpy", "prophet"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    t0 = time.perf_counter()
    rows = []
    for k, i in enumerate(args.datasets):
        t = time.perf_counter()
        rows.append(run_dataset(i, args.seed, args))
        r = rows[-1]
        print(f"dataset {i} ({k + 1}/{len(args.datasets)}): {r['frequency']} {r['channels']} channels {r['regime']}, "
              f"ROI error {_pct(r['roi_error_median'])}, regret 1× {_pct(r['regret']['1x']['model'])}, "
              f"{r['sampler']['divergences']} divergences ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    result = {
        "peer": "pymc-marketing",
        "versions": {pkg: version(pkg) for pkg in ("pymc-marketing", "pymc", "pytensor", "arviz", "numpy")},
        "seed": args.seed,
        "settings": {"model": "pymc_marketing.mmm.multidimensional.MMM", "adstock": "GeometricAdstock",
                     "l_max": args.l_max, "adstock_normalize": True, "saturation": "LogisticSaturation",
                     "yearly_seasonality": args.yearly_seasonality, "controls": ["t"], "priors": "defaults",
                     "draws": args.draws, "tune": args.tune, "chains": args.chains, "cores": args.cores,
                     "target_accept": args.target_accept or 0.8,
                     "plan": "attribution.plan on posterior-mean quarterly curves, cap 1.5x largest spend, "
                             "no evidence limits (the study's curves_only)"},
        "seconds": round(time.perf_counter() - t0, 1),
        "summary": summarise(rows),
        "datasets": rows,
    }
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1, ensure_ascii=False)
            fh.write("\n")
    print(json.dumps(result, indent=1, ensure_ascii=False) if args.json else render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
