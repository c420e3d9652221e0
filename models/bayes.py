"""A total KPI fitted with the joint Bayesian model: what ``MediaMixModel(method="bayes")`` keeps.

:func:`fit_joint` runs :mod:`models.posterior` on a wide history (a holdout run first, scored out
of sample on the periods it did not see, then the full run), and returns a :class:`JointFit`:
the draws the plans use (thinned to :data:`DRAWS_KEPT`), each channel's ROI over the history per
draw, the posterior-mean baseline, the campaign signal's scaling and the sampler's diagnostics.
Everything a plan or a forecast needs from the fit is computed from the draws:

* the **planning curve** of a channel is the posterior-mean curve, the mean over draws of each
  draw's steady-state curve (a :class:`models.curves.HillMixture`), so a plan maximises the
  expected return, never a curve of averaged parameters;
* the **decomposition** is the posterior mean of each channel's contribution, with its
  campaign efficiency, and the posterior-mean baseline: the same numbers the curves come from;
* the **forecast's baseline** is Prophet, fitted on the KPI less the posterior-mean media (Prophet
  stays the forecaster; the joint model's own baseline is for attribution).

The library's other estimator (least squares with a bootstrap, :mod:`models.fit`) remains for
per-channel returns (the long layout) and on request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from models.curves import _hill_response
from models.design import baseline_design, campaign_signal

__all__ = ["DRAWS_KEPT", "JointFit", "fit_joint", "adstock_draws", "efficiency_draws", "hill_draws"]

logger = logging.getLogger(__name__)

#: Posterior draws kept with the model (thinned evenly): plans, intervals and forecasts use them.
DRAWS_KEPT = 200
_WARM = 4


@dataclass
class JointFit:
    """The joint model's fit (draws × channels arrays, channels in ``channels`` order).

    ``alpha``, ``k`` (per-period adstocked spend at half saturation), ``s``, ``beta`` (per period)
    and ``theta`` (campaign efficiency) per kept draw; ``carry_end`` the adstocked spend of the
    history's last period per draw; ``roi`` the ROI over the history per draw (all draws);
    ``baseline`` the posterior-mean baseline per period; ``sigma`` the posterior-mean noise;
    ``efficiency_center`` / ``efficiency_top`` the campaign signal's scaling (``efficiency`` False
    without one); ``log_roi_sd`` prior and posterior sd of log ROI per channel; ``diagnostics``
    the sampler's; ``priors`` the prior settings.
    """

    channels: list
    alpha: np.ndarray
    k: np.ndarray
    s: np.ndarray
    beta: np.ndarray
    theta: np.ndarray
    carry_end: np.ndarray
    roi: np.ndarray
    baseline: np.ndarray
    sigma: float
    efficiency: bool
    efficiency_center: float
    efficiency_top: float
    log_roi_sd: dict
    diagnostics: dict
    priors: dict
    in_sample: np.ndarray | None = None  # posterior-mean prediction over the history (not saved)
    design: object = None  # the baseline's columns (not saved)

    @property
    def draws(self) -> int:
        return int(self.alpha.shape[0])

    def column(self, channel: str) -> int:
        return self.channels.index(channel)

    def to_dict(self) -> dict:
        arrays = ("alpha", "k", "s", "beta", "theta", "carry_end", "roi")
        return {
            "channels": list(self.channels),
            **{name: np.asarray(getattr(self, name)).tolist() for name in arrays},
            "baseline": np.asarray(self.baseline).tolist(),
            "sigma": float(self.sigma), "efficiency": bool(self.efficiency),
            "efficiency_center": float(self.efficiency_center), "efficiency_top": float(self.efficiency_top),
            "log_roi_sd": {c: list(v) for c, v in self.log_roi_sd.items()},
            "diagnostics": dict(self.diagnostics), "priors": dict(self.priors),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "JointFit":
        arrays = {name: np.asarray(data[name], dtype=float) for name in ("alpha", "k", "s", "beta", "theta",
                                                                          "carry_end", "roi")}
        return cls(channels=list(data["channels"]), **arrays, baseline=np.asarray(data["baseline"], dtype=float),
                   sigma=float(data["sigma"]), efficiency=bool(data["efficiency"]),
                   efficiency_center=float(data["efficiency_center"]), efficiency_top=float(data["efficiency_top"]),
                   log_roi_sd={c: tuple(float(x) for x in v) for c, v in data["log_roi_sd"].items()},
                   diagnostics=dict(data["diagnostics"]), priors=dict(data["priors"]))

    def efficiency_at(self, dates, frequency: str) -> np.ndarray:
        """The campaign signal z at ``dates`` (zeros without one), scaled as in the fit."""
        if not self.efficiency:
            return np.zeros(len(dates))
        return (campaign_signal(dates, frequency) - self.efficiency_center) / self.efficiency_top


def adstock_draws(x: np.ndarray, alpha: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Adstocked spend ``x`` (periods,) for each draw's α (draws,), starting from adstock
    ``before`` (draws,) in the period before ``x``: draws × periods."""
    x = np.asarray(x, dtype=float)
    out = np.empty((alpha.size, x.size))
    for i, (a, b) in enumerate(zip(alpha, before)):
        out[i], _ = lfilter([1.0], [1.0, -a], x, zi=[a * b])
    return out


def efficiency_draws(theta: np.ndarray, z: np.ndarray) -> np.ndarray:
    """η per draw and period: max(0.05, 1 + θ z) (draws × periods)."""
    return np.maximum(1.0 + np.outer(theta, z), 0.05)


def _lifts(calibration, channels, dates, spend: np.ndarray) -> list:
    from models.calibration import resolve_lift_tests

    out = []
    n = spend.shape[0]
    for test in resolve_lift_tests(calibration, list(channels), dates) if calibration else ():
        j = test.column
        window = test.tested(spend[:, j])
        after = np.zeros(n)
        after[test.start:] = 1.0
        out.append((j, window, after, float(test.lift), float(test.se)))
    return out


def _run(history, mask: np.ndarray, settings: dict, design, lifts, *, warmup: int, draws: int, seed: int,
         progress=None):
    from models.posterior import PosteriorData, sample_posterior

    y = history.target()
    scale = float(np.mean(np.abs(y[mask > 0]))) or 1.0
    data = PosteriorData(spend=history.spend.to_numpy(dtype=float), y=y, mask=mask, design=design, scale=scale,
                         daily=history.frequency == "daily", lifts=lifts)
    return sample_posterior(data, settings.get("priors"), warmup=warmup, draws=draws, chains=settings["chains"],
                            cores=settings.get("cores"), seed=seed, progress=progress)


def _predict(post, history, z: np.ndarray) -> np.ndarray:
    """Posterior-mean prediction of the KPI for every period of ``history`` (the fitted one)."""
    X = history.spend.to_numpy(dtype=float)
    media = np.zeros(X.shape[0])
    for j in range(X.shape[1]):
        media += _channel_media(post.alpha[:, j], post.k[:, j], post.s[:, j], post.beta[:, j], post.theta[:, j],
                                X[:, j], z).mean(axis=0)
    return post.baseline.mean(axis=0) + media


def _channel_media(alpha, k, s, beta, theta, x, z, warm: float | None = None) -> np.ndarray:
    """Per-draw contribution (draws × periods) of spend ``x`` from the warm start of a history
    (``warm``: the mean spend per period before it; default the mean of ``x``'s first periods)."""
    if warm is None:
        warm = float(np.mean(x[:_WARM])) if x.size else 0.0
    e = adstock_draws(x, alpha, warm / (1.0 - alpha))
    return hill_draws(e, beta, k, s) * efficiency_draws(theta, z)


def hill_draws(e: np.ndarray, beta, k, s) -> np.ndarray:
    """Each draw's Hill response (draws × periods) to its adstocked spend ``e``."""
    return _hill_response(np.asarray(beta)[:, None], np.asarray(k)[:, None], np.asarray(s)[:, None], e)


def fit_joint(history, settings: dict, progress=None):
    """Fit the joint model to a wide history.

    Parameters
    ----------
    history : History
        Wide layout (a total KPI), validated.
    settings : dict
        ``burn_in`` (periods), ``holdout`` (periods, 0 = none), ``country``, ``campaign_days``,
        ``events``, ``calibration`` (lift-test records), ``warmup``, ``draws``, ``chains``,
        ``cores``, ``seed``, ``priors`` (a :class:`models.posterior.Priors` or None).
    progress : callable, optional
        ``progress(done, total)`` over both runs, in sampler iterations.

    Returns
    -------
    (JointFit, dict or None)
        The fit, and the holdout's predictions ``{"prediction", "periods"}`` (None without a holdout).
    """
    n = history.periods
    burn = int(settings["burn_in"])
    design = baseline_design(history, country=settings.get("country"), campaign_days=settings.get("campaign_days"),
                             events=settings.get("events"), fitted_from=burn)
    spend = history.spend.to_numpy(dtype=float)
    lifts = _lifts(settings.get("calibration"), history.channels, history.dates, spend)
    holdout = int(settings.get("holdout") or 0)
    warmup, draws, chains = int(settings["warmup"]), int(settings["draws"]), int(settings["chains"])
    hold_warmup, hold_draws = max(warmup // 2, 100), max(draws // 2, 100)
    total = chains * ((hold_warmup + hold_draws if holdout else 0) + warmup + draws)
    offset = [0]

    def report(done, _total):
        if progress:
            progress(offset[0] + done, total)

    z = design.efficiency if design.efficiency is not None else np.zeros(n)
    held = None
    if holdout:
        mask = np.ones(n)
        mask[:burn] = 0.0
        mask[n - holdout:] = 0.0
        # The holdout's lift tests must lie in the periods the run sees.
        seen = [t for t in lifts if t[1][n - holdout:].sum() == 0]
        post_h = _run(history, mask, settings, design, seen, warmup=hold_warmup, draws=hold_draws,
                      seed=int(settings["seed"]) + 1, progress=report)
        held = {"prediction": _predict(post_h, history, z)[n - holdout:], "periods": holdout}
        offset[0] = chains * (hold_warmup + hold_draws)
    mask = np.ones(n)
    mask[:burn] = 0.0
    post = _run(history, mask, settings, design, lifts, warmup=warmup, draws=draws, seed=int(settings["seed"]),
                progress=report)
    keep = np.unique(np.linspace(0, post.draws - 1, min(DRAWS_KEPT, post.draws)).round().astype(int))
    C = spend.shape[1]
    alpha, k, s, beta, theta = (getattr(post, a)[keep] for a in ("alpha", "k", "s", "beta", "theta"))
    carry_end = np.empty_like(alpha)
    for j in range(C):
        x = spend[:, j]
        warm = float(np.mean(x[:_WARM]))
        carry_end[:, j] = adstock_draws(x, alpha[:, j], warm / (1.0 - alpha[:, j]))[:, -1]
    log_roi = np.log(np.maximum(post.roi, 1e-12))
    # A channel with no spend in the fitted periods returns nothing there (β = 0 in every draw):
    # its ROI parameter was its prior alone, so its ROI is the curve's, 0, for every reader of it
    # (the report's band, the forecast's media levels).
    unfitted = ~(spend[mask > 0].sum(axis=0) > 0)
    fit = JointFit(
        channels=list(history.channels), alpha=alpha, k=k, s=s, beta=beta, theta=theta, carry_end=carry_end,
        roi=np.where(unfitted[None, :], 0.0, post.roi), baseline=post.baseline.mean(axis=0), sigma=float(post.sigma.mean()),
        efficiency=design.efficiency is not None, efficiency_center=design.efficiency_center,
        efficiency_top=design.efficiency_top,
        log_roi_sd={c: (post.log_roi_prior_sd, float(log_roi[:, j].std())) for j, c in enumerate(history.channels)},
        diagnostics=post.diagnostics, priors=post.priors,
    )
    fit.in_sample = _predict(post, history, z)
    fit.design = design
    return fit, held


# --------------------------------------------------------------------------------------------
# The estimator's state from the joint fit (MediaMixModel delegates here when it uses the joint model)


def _sampler_warnings(diagnostics: dict) -> list[str]:
    """The sampler's trouble in words: chains that disagree (R̂), divergent transitions, few effective draws."""
    out = []
    rhat, div, draws, ess = (diagnostics.get(k) for k in ("r_hat", "divergences", "draws", "ess"))
    if rhat is not None and rhat > 1.05:
        out.append(f"the posterior sampler's chains disagree (R̂ up to {rhat:.2f}): ROI intervals and plans may "
                   "shift from one fit to the next; fit again with more draws (draws = 1000)")
    if div and draws and div > 0.01 * draws:
        out.append(f"the posterior sampler hit {div} divergent transitions in {draws} draws: parts of the posterior "
                   "may be missed; treat the intervals as rough")
    if ess is not None and ess < 100:
        out.append(f"only {ess:.0f} effective posterior draws for the least settled parameter: intervals are rough; "
                   "fit again with more draws")
    return out


def fit_model_joint(model, history):
    """Fit ``model`` (a :class:`models.fit.MediaMixModel`) with the joint model; returns it.

    Sets the estimator's fitted attributes the way the least-squares fit does (``params_`` are
    the posterior medians, ``samples_`` the kept draws as [β, k, s, α] rows) plus ``joint_``.
    """
    import warnings

    from models.errors import ConvergenceWarning
    from models.fit import ChannelParams, fit_metrics, kpi_units, naive_holdout_nrmse, quality_warnings, _Block
    from models.posterior import Priors

    n = history.periods
    warn_list: list[str] = list(history.warnings)
    holdout = model._holdout_periods(history, warn_list)
    burn = model._burn_in(history)
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in (model.priors or {}).items()}
    roi_prior, in_money, said = kpi_units(history, burn, model.kpi_unit)
    if roi_prior is not None and "roi" not in given:
        given["roi"] = roi_prior
    if said:
        warn_list.append(said)
    settings = {
        "burn_in": burn, "holdout": holdout, "country": model.holidays, "campaign_days": model.campaign_days,
        "events": model.events, "calibration": model.calibration, "warmup": model.warmup, "draws": model.draws,
        "chains": model.chains, "cores": model.n_jobs, "seed": model.random_state, "priors": Priors(**given),
    }
    joint, held = fit_joint(history, settings, progress=getattr(model, "_progress", None))
    model.joint_ = joint
    channels = list(history.channels)
    model.channels_ = channels
    model.groups_ = dict(history.groups)
    model.frequency_ = history.frequency
    model.layout_ = history.layout
    model.periods_ = n
    model.start_ = history.dates[0]
    model.end_ = history.dates[-1]
    model.params_ = {c: ChannelParams(alpha=float(np.median(joint.alpha[:, j])), k=float(np.median(joint.k[:, j])),
                                      s=float(np.median(joint.s[:, j])), beta=float(np.median(joint.beta[:, j])))
                     for j, c in enumerate(channels)}
    model.alpha_ = {c: p.alpha for c, p in model.params_.items()}
    X = history.spend
    model.spend_stats_ = {c: {"min": float(X[c].min()), "max": float(X[c].max()), "mean": float(X[c].mean()),
                              "total": float(X[c].sum())} for c in channels}
    model.carryover_at_end_ = {c: float(joint.carry_end[:, j].mean()) for j, c in enumerate(channels)}
    model._kappa_at_bound = {}
    model.samples_ = {c: np.column_stack([joint.beta[:, j], joint.k[:, j], joint.s[:, j], joint.alpha[:, j]])
                      for j, c in enumerate(channels)}
    y = history.target()
    media = joint.in_sample - joint.baseline
    model.blocks_ = [_forecast_baseline(model, history, y - media, burn)] if model.baseline == "prophet" else []
    holdout_metrics = {"r2": None, "mape": None, "nrmse": None, "periods": 0}
    if held is not None:
        holdout_metrics = {**fit_metrics(y[-holdout:], held["prediction"]), "periods": holdout}
        naive, method = naive_holdout_nrmse(y, holdout, history.frequency)
        holdout_metrics.update(naive_nrmse=naive, naive=method)
    model.fit_ = {**fit_metrics(y, joint.in_sample), "holdout": holdout_metrics, "kpi_in_money": in_money}
    quality = quality_warnings(model.fit_)
    sampler = _sampler_warnings(joint.diagnostics)
    for w in quality + sampler:
        warnings.warn(w, ConvergenceWarning, stacklevel=3)
    warn_list[:0] = quality + sampler
    model._diagnose(history, warn_list)
    return model


def _forecast_baseline(model, history, base: np.ndarray, burn: int):
    """Prophet on the KPI less the posterior-mean media: the baseline ``budget forecast`` extends."""
    from models.baseline import fit_prophet_baseline
    from models.fit import _Block

    holidays = model._holiday_table(history.dates, history.frequency)
    reg = model._regressors(history)
    rows = slice(burn, None)
    bfit = fit_prophet_baseline(history.dates[rows], base[rows], history.frequency, holidays,
                                reg.iloc[rows].reset_index(drop=True))
    comps = bfit.components(history.dates, reg)
    # Prophet's own prediction is the sum of its components: weight 1 each, no extra intercept.
    weights = np.concatenate([[0.0], np.ones(comps.shape[1])])
    return _Block(name="kpi", channels=list(history.channels), baseline=bfit, weights=weights,
                  columns=["intercept", *comps.columns])


def joint_contributions(joint: JointFit, history):
    """Posterior-mean contribution per period and channel of ``history``'s spend (a DataFrame),
    with each period's campaign efficiency and the warm start of the fitted history."""
    import pandas as pd

    z = joint.efficiency_at(history.dates, history.frequency)
    out = {}
    for c in history.channels:
        if c not in joint.channels:
            continue
        j = joint.column(c)
        x = history.spend[c].to_numpy(dtype=float)
        out[c] = _channel_media(joint.alpha[:, j], joint.k[:, j], joint.s[:, j], joint.beta[:, j], joint.theta[:, j],
                                x, z).mean(axis=0)
    return pd.DataFrame(out)


def joint_planning_curve(joint: JointFit, channel: str, periods: int):
    """The posterior-mean planning curve: spend X spread evenly over ``periods`` periods, each
    draw at its steady state, ``periods · β · hill(X / (periods (1 − α)); k, s)``, averaged."""
    from models.curves import HillMixture

    if periods < 1:
        raise ValueError(f"periods must be ≥ 1, got {periods}")
    j = joint.column(channel)
    a = joint.alpha[:, j]
    return HillMixture(periods * joint.beta[:, j], joint.k[:, j] * periods * (1.0 - a), joint.s[:, j])


def joint_period_curve(joint: JointFit, channel: str):
    """Per-period return of adstocked spend, averaged over the draws (each its own k and s)."""
    from models.curves import HillMixture

    j = joint.column(channel)
    return HillMixture(joint.beta[:, j], joint.k[:, j], joint.s[:, j])


def joint_lift(joint: JointFit, test, history) -> float:
    """The posterior-mean lift the model gives a lift test's window (as the likelihood measures it)."""
    j = joint.column(test.channel)
    x = history.spend[test.channel].to_numpy(dtype=float)
    z = joint.efficiency_at(history.dates, history.frequency)
    on = _channel_media(joint.alpha[:, j], joint.k[:, j], joint.s[:, j], joint.beta[:, j], joint.theta[:, j], x, z)
    dark = x - test.tested(x)
    # the same warm start as the full spend (the window does not change the spend before the file)
    off = _channel_media(joint.alpha[:, j], joint.k[:, j], joint.s[:, j], joint.beta[:, j], joint.theta[:, j], dark, z,
                         warm=float(np.mean(x[:_WARM])))
    return float((on - off)[:, test.start:].sum(axis=1).mean())
