"""Forecast the planning horizon: baseline KPI plus the media return of a plan, with intervals.

* Baseline: the fitted Prophet baseline (trend, yearly seasonality, holidays, campaign days) at
  the horizon's period starts. Its interval comes from the model's out-of-sample error (holdout
  MAPE; in-sample when there is no holdout), because the baseline is Prophet's components
  re-weighted by the media fit, so Prophet's own interval does not describe it.
* Media: each channel's return per period under a plan, with carryover from the spend already
  made (``e_t = x_t + α e_{t−1}``, starting from the adstock at the end of history), for the
  point fit and for every bootstrap sample of the curve parameters.
* Intervals of the total: baseline draws and bootstrap media samples are combined by simulation
  (seeded), and P10/P50/P90 are read per period and for the horizon.

Forecast and plan answer two questions. A single-horizon plan (``budget allocate``) values each
split at its *steady state*: spend X spread evenly over P periods, sustained, so the carryover is
at the split's own level x/(1−α) from the first period (the model's planning curves). This
forecast starts from the carryover history actually left and lets it build up (or run down). The
two differ only in that starting carryover: started from a plan's own steady state,
:func:`media_returns` gives the planning curve's return exactly (:func:`steady_state_comparison`
reports both, so each output can say why the other differs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.fit import MediaMixModel

#: Normal quantile of P90 (and minus P10).
_Z90 = 1.2815515655446004
_STEP = {"daily": pd.DateOffset(days=1), "weekly": pd.DateOffset(weeks=1), "monthly": pd.DateOffset(months=1)}


def parse_horizon(text: str, frequency: str) -> int:
    """``"13w"``, ``"3m"``, ``"91d"`` or a plain number of data periods → periods of ``frequency``."""
    text = str(text).strip().lower()
    if text.isdigit():
        return int(text)
    units = {"d": 1.0, "w": 7.0, "m": 365.25 / 12}
    per = {"daily": 1.0, "weekly": 7.0, "monthly": 365.25 / 12}[frequency]
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f"horizon must look like 13w, 3m, 91d or a number of periods, got {text!r}")
    periods = int(round(int(text[:-1]) * units[text[-1]] / per))
    if periods < 1:
        raise ValueError(f"horizon {text!r} is shorter than one {frequency} period")
    return periods


def horizon_dates(model: MediaMixModel, periods: int) -> pd.DatetimeIndex:
    """The ``periods`` period starts that follow the history."""
    step = _STEP[model.frequency_]
    first = pd.Timestamp(model.end_) + step
    return pd.DatetimeIndex([first + i * step for i in range(periods)])


def _returns(params: np.ndarray, spends: np.ndarray, carry: float) -> np.ndarray:
    """Per-period return for parameter rows ``[β, k, s, α]`` (S × 4) and spends (T,) → (S, T)."""
    beta, k, s, alpha = (params[:, i][:, None] for i in range(4))
    e = np.empty((params.shape[0], spends.size))
    prev = alpha[:, 0] * 0 + carry
    for t, x in enumerate(spends):
        prev = x + alpha[:, 0] * prev
        e[:, t] = prev
    with np.errstate(divide="ignore", over="ignore"):
        return np.where(e > 0, beta / (1.0 + np.power(k / np.maximum(e, 1e-300), s)), 0.0)


def media_returns(model: MediaMixModel, plan: dict[str, np.ndarray],
                  carryover: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Media return per period of ``plan`` ({channel: spend per period}).

    ``carryover`` replaces the adstock each channel starts from (default: what history left,
    ``model.carryover_at_end_``, per draw for the joint model). Returns the point forecast (T,)
    and the curve samples (S, T), or None without samples; for the joint model the point is the
    posterior mean (the mean over draws, at the average campaign efficiency), as the planning
    curves are.
    """
    joint = getattr(model, "joint_", None)
    if joint is not None:
        return _joint_returns(joint, plan, carryover)
    point = None
    samples = None
    for channel, spends in plan.items():
        spends = np.asarray(spends, dtype=float)
        p = model.hill_params(channel)
        row = np.array([[p["beta"], p["k"], p["s"], p["alpha"]]])
        start = model.carryover_at_end_ if carryover is None else carryover
        carry = float(start.get(channel, 0.0))
        r = _returns(row, spends, carry)[0]
        point = r if point is None else point + r
        boot = model.samples_.get(channel)
        if boot is not None and len(boot):
            rs = _returns(np.asarray(boot, dtype=float), spends, carry)
            samples = rs if samples is None else samples + rs
    return point, samples


def _joint_returns(joint, plan, carryover):
    """Per-draw media returns of the joint model: each draw's adstock from its own end of history."""
    from models.bayes import adstock_draws, hill_draws

    samples = None
    for channel, spends in plan.items():
        spends = np.asarray(spends, dtype=float)
        j = joint.column(channel)
        a = joint.alpha[:, j]
        carry = joint.carry_end[:, j] if carryover is None else np.full(a.size, float(carryover.get(channel, 0.0)))
        r = hill_draws(adstock_draws(spends, a, carry), joint.beta[:, j], joint.k[:, j], joint.s[:, j])
        samples = r if samples is None else samples + r
    if samples is None:
        return None, None
    return samples.mean(axis=0), samples


def steady_state_comparison(model: MediaMixModel, plans: dict[str, dict[str, float]], periods: int) -> dict:
    """Each plan's media return over the horizon two ways: at its steady state (what a
    single-horizon plan reports) and from the carryover history left (what a forecast shows).

    Parameters
    ----------
    model
        A fitted model.
    plans
        ``{plan name: {channel: total spend over the horizon}}`` (spread evenly over ``periods``).
    periods
        Horizon length in the model's periods.

    Returns
    -------
    dict
        ``{plan name: {"spend", "steady_state", "forward", "carryover_start", "carryover_steady"}}``:
        the steady-state return (planning curves), the return from history's carryover (point
        forecast, summed over the horizon), and the adstocked spend the channels start from in
        each case (summed over channels; in money).
    """
    out = {}
    for name, totals in plans.items():
        per = {c: float(x) / periods for c, x in totals.items()}
        steady = {c: x / (1.0 - model.alpha_[c]) for c, x in per.items()}
        point, _ = media_returns(model, {c: np.full(periods, x) for c, x in per.items()})
        out[name] = {
            "spend": float(sum(totals.values())),
            "steady_state": float(sum(float(model.planning_curve(c, periods).response(x)) for c, x in totals.items())),
            "forward": float(point.sum()) if point is not None else 0.0,
            "carryover_start": float(sum(model.carryover_at_end_.get(c, 0.0) for c in totals)),
            "carryover_steady": float(sum(steady.values())),
        }
    return out


def forecast(model: MediaMixModel, plans: dict[str, dict[str, np.ndarray]], periods: int, *,
             draws: int = 4000, seed: int = 0) -> dict:
    """Baseline and per-plan totals over the next ``periods`` periods with P10/P50/P90.

    Parameters
    ----------
    model
        A fitted model with the Prophet baseline.
    plans
        ``{plan name: {channel: spend per period (length periods)}}``.
    periods
        Horizon length in the model's periods.
    draws
        Simulation draws for the combined interval.
    seed
        Seed of the simulation (the same seed gives the same intervals).

    Returns
    -------
    dict
        ``{"frequency", "periods": [dates], "baseline": {"p10","p50","p90": [...], "total": {...}},
        "plans": {name: {"media": {...}, "total": {...}}}}``; each block has per-period lists and a
        ``"horizon"`` entry with the horizon sums.
    """
    dates = horizon_dates(model, periods)
    base = model.forecast_baseline(dates)
    hold = model.fit_.get("holdout") or {}
    mape = hold.get("mape") if hold.get("mape") is not None else model.fit_.get("mape", 0.0)
    sigma = np.abs(base) * 1.2533 * float(mape or 0.0)  # mean |error| = 0.80 σ for normal errors
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((draws, periods)) * sigma
    out = {
        "frequency": model.frequency_,
        "periods": [d.date().isoformat() for d in dates],
        "baseline": _band(base[None, :] + noise, base),
        "plans": {},
    }
    for name, plan in plans.items():
        point, samples = media_returns(model, plan)
        if samples is None:
            media_draws = np.repeat(point[None, :], draws, axis=0)
        else:
            media_draws = samples[rng.integers(0, samples.shape[0], draws)]
        out["plans"][name] = {
            "spend": float(sum(np.sum(v) for v in plan.values())),
            "media": _band(media_draws, point),
            "total": _band(base[None, :] + noise + media_draws, base + point),
        }
    return out


def _band(draws: np.ndarray, point: np.ndarray) -> dict:
    """P10/P50/P90 per period and over the horizon (sums within each draw), plus the point."""
    q = np.percentile(draws, [10, 50, 90], axis=0)
    h = np.percentile(draws.sum(axis=1), [10, 50, 90])
    return {
        "point": point.tolist(), "p10": q[0].tolist(), "p50": q[1].tolist(), "p90": q[2].tolist(),
        "horizon": {"point": float(point.sum()), "p10": float(h[0]), "p50": float(h[1]), "p90": float(h[2])},
    }


def kpi_forecast(model: MediaMixModel, periods: int) -> dict:
    """The KPI the next ``periods`` periods are expected to bring if marketing goes on as it has:
    the baseline plus every fitted channel's media return at its historical run rate (its mean
    spend per period), from the carryover history left; point forecasts.

    This is the figure a budget set as a share of the forecast KPI ("marketing spend 15–20% of
    GMV") is a share of. It depends on the model and the horizon only, never on a scenario's
    own budget or current plan, so a budget derived from it cannot feed back into it.

    Parameters
    ----------
    model
        A fitted model with the Prophet baseline.
    periods
        Horizon length in the model's periods.

    Returns
    -------
    dict
        ``{"periods", "start", "end", "baseline", "media", "total", "run_rate_spend"}``: the horizon's
        first and last period start (ISO dates), the baseline and media parts of the KPI and
        their sum, and the spend at the run rate that earns the media part (money over the horizon).
    """
    dates = horizon_dates(model, periods)
    baseline = float(np.sum(model.forecast_baseline(dates)))
    plan = {c: np.full(periods, float(model.spend_stats_[c]["mean"])) for c in model.channels_}
    point, _ = media_returns(model, plan)
    media = float(np.sum(point)) if point is not None else 0.0
    return {
        "periods": int(periods),
        "start": dates[0].date().isoformat(),
        "end": dates[-1].date().isoformat(),
        "baseline": baseline,
        "media": media,
        "total": baseline + media,
        "run_rate_spend": float(sum(np.sum(v) for v in plan.values())),
    }
