"""Forecast the planning horizon: baseline KPI plus the media return of a plan, with intervals.

* Baseline: the fitted Prophet baseline (trend, yearly seasonality, holidays, campaign days) at
  the horizon's period starts, with the horizon's own holidays (:func:`horizon_baseline`; the
  fitted holiday table covers the history's periods only).
* Media: each channel's return per period under a plan, with carryover from the spend already
  made (``e_t = x_t + α e_{t−1}``, starting from the adstock at the end of history), for the
  point fit and for every posterior draw (joint model) or bootstrap sample of the curves.
* Intervals: simulated (seeded) and read as P10/P50/P90 per period and for the horizon's sum.
  Each draw pairs three things:

  - the baseline's forecast error, from a rolling-origin backtest of the baseline on its own
    history (:meth:`models.baseline.BaselineFit.forecast_error`): an error shared by the whole
    horizon (a level or slope Prophet got wrong) plus each period's own error (noise), so the
    horizon total's band is neither the sum of independent periods nor a period's band × P;
  - one draw of the media curves, giving the plan's media return;
  - the same draw's baseline level: the baseline was fitted to the KPI less the posterior-mean
    (point) media, so a draw that gives media more of the history's KPI leaves the baseline
    less. To first order Prophet's level absorbs the difference in the draw's average media
    return over the history, which is subtracted from that draw's baseline
    (:func:`history_media_levels`). Without this pairing the total's band counts the
    attribution's uncertainty, which the history's KPI does not have, as forecast uncertainty.

  The baseline's band is therefore wider than its forecast error alone (it carries the
  attribution's doubt), and the total's band is narrower than baseline and media bands added.

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
                  carryover: dict[str, float] | None = None, dates=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Media return per period of ``plan`` ({channel: spend per period}).

    ``carryover`` replaces the adstock each channel starts from (default: what history left,
    ``model.carryover_at_end_``, per draw for the joint model). ``dates``: the periods' starts,
    for the joint model's campaign efficiency (without them every period is at the average
    efficiency, as the planning curves are). Returns the point forecast (T,) and the curve
    samples (S, T), or None without samples; for the joint model the point is the posterior
    mean (the mean over draws), as the planning curves are.
    """
    joint = getattr(model, "joint_", None)
    if joint is not None:
        return _joint_returns(model, joint, plan, carryover, dates)
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


def _joint_returns(model, joint, plan, carryover, dates):
    from models.bayes import adstock_draws, efficiency_draws, hill_draws

    samples = None
    for channel, spends in plan.items():
        spends = np.asarray(spends, dtype=float)
        j = joint.column(channel)
        a = joint.alpha[:, j]
        carry = joint.carry_end[:, j] if carryover is None else np.full(a.size, float(carryover.get(channel, 0.0)))
        e = adstock_draws(spends, a, carry)
        z = joint.efficiency_at(pd.DatetimeIndex(dates), model.frequency_) if dates is not None else np.zeros(spends.size)
        r = hill_draws(e, joint.beta[:, j], joint.k[:, j], joint.s[:, j]) * efficiency_draws(joint.theta[:, j], z)
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


def horizon_baseline(model: MediaMixModel, dates) -> np.ndarray:
    """The baseline at future period starts ``dates``, with the horizon's holidays.

    Like ``MediaMixModel.forecast_baseline``, except that the holidays (and campaign days, and
    the model's events) falling in the horizon are mapped onto its periods, with the model's own
    calendar settings, so the fitted holiday effects recur there.

    Raises
    ------
    NotImplementedError
        The model's baseline is not Prophet (``baseline='linear'``).
    """
    from models.baseline import holiday_table

    model._check_fitted()
    dates = pd.DatetimeIndex(dates)
    total = np.zeros(len(dates))
    for block in model.blocks_:
        if block.baseline is None:
            raise NotImplementedError("forecasting needs the Prophet baseline (baseline='prophet')")
        starts = block.baseline.history_dates.append(dates).unique().sort_values()
        holidays = holiday_table(starts, model.frequency_, country=model.holidays, campaign_days=model.campaign_days,
                                 events=model.events)
        comps = block.baseline.components(dates, holidays=holidays[holidays["ds"].isin(dates)])
        total += np.column_stack([np.ones(len(dates)), comps.to_numpy()]) @ block.weights
    return total


def history_media_levels(model: MediaMixModel) -> np.ndarray | None:
    """Each media draw's average return per period over the history, less that of the media the
    baseline was fitted against (the posterior mean for the joint model, the point fit for least
    squares).

    Joint model: Σ_c ROI_c × mean spend_c, with each draw's ROI over the history (the return it
    gives the history's actual spend, seasonal efficiency included; the ROI is over the fitted
    periods, the mean spend over all of them, which differ by the burn-in only). Least squares: each
    bootstrap sample's steady-state return at the channels' mean spend (a sample carries no ROI
    of its own; this leaves out how the history's spend varied), less the point fit's. The
    order is the order of the draws :func:`media_returns` gives; None without draws.
    """
    xbar = {c: float(model.spend_stats_[c]["mean"]) for c in model.channels_}
    joint = getattr(model, "joint_", None)
    if joint is not None:
        roi = _kept_roi(joint)
        if roi is not None:
            levels = roi @ np.array([xbar[c] for c in joint.channels])
        else:
            levels = _steady_levels({c: np.column_stack([joint.beta[:, j], joint.k[:, j], joint.s[:, j],
                                                         joint.alpha[:, j]]) for j, c in enumerate(joint.channels)},
                                    xbar, None)
        return levels - levels.mean()
    rows = {c: np.asarray(v, dtype=float) for c, v in (model.samples_ or {}).items() if len(v)}
    if not rows:
        return None
    point = {c: np.array([[p["beta"], p["k"], p["s"], p["alpha"]]]) for c in rows
             for p in [model.hill_params(c)]}
    return _steady_levels(rows, xbar, model.max_lag) - _steady_levels(point, xbar, model.max_lag)[0]


def _steady_levels(rows: dict[str, np.ndarray], xbar: dict[str, float], max_lag) -> np.ndarray:
    """Σ_c β hill(x̄_c · steady adstock; k, s) for parameter rows ``[β, k, s, α]`` per channel."""
    from models.fit import hill, steady_factor

    levels = 0.0
    for c, r in rows.items():
        levels = levels + np.array([b * float(hill(xbar[c] * steady_factor(float(a), max_lag), k, s))
                                    for b, k, s, a in r])
    return np.asarray(levels, dtype=float)


def _kept_roi(joint) -> np.ndarray | None:
    """The history ROI of the kept draws (draws × channels): the fit keeps every draw's ROI but
    thins the curve draws evenly (:data:`models.bayes.DRAWS_KEPT`); None when they do not match."""
    from models.bayes import DRAWS_KEPT

    roi = np.asarray(joint.roi, dtype=float)
    if roi.ndim != 2 or roi.shape[1] != len(joint.channels):
        return None
    if roi.shape[0] == joint.draws:
        return roi
    keep = np.unique(np.linspace(0, roi.shape[0] - 1, min(DRAWS_KEPT, roi.shape[0])).round().astype(int))
    return roi[keep] if keep.size == joint.draws else None


def baseline_error(model: MediaMixModel, periods: int) -> list:
    """Each baseline block's backtested forecast error over ``periods`` periods
    (:class:`models.baseline.ForecastError`, one per target: one for a total KPI)."""
    return [block.baseline.forecast_error(periods, model.frequency_) for block in model.blocks_]


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
        Simulation draws for the intervals.
    seed
        Seed of the simulation (the same seed gives the same intervals).

    Returns
    -------
    dict
        ``{"frequency", "periods": [dates], "baseline": {"p10","p50","p90": [...], "total": {...}},
        "plans": {name: {"media": {...}, "total": {...}}}, "baseline_error": {...}}``; each block
        has per-period lists and a ``"horizon"`` entry with the horizon sums. ``baseline_error``
        says what the baseline's interval rests on: backtest ``origins``, and the sd of the
        error shared by the horizon and of each period's own, relative to the baseline's level.
        The baseline's draws, the media draws and their pairing: see the module docstring.
    """
    dates = horizon_dates(model, periods)
    base = horizon_baseline(model, dates)
    rng = np.random.default_rng(seed)
    errors = baseline_error(model, periods)
    base_draws = base[None, :] + sum(e.draws(draws, rng) for e in errors)
    levels = history_media_levels(model)
    pick = None
    if levels is not None:
        pick = rng.integers(0, levels.size, draws)
        base_draws = base_draws - levels[pick][:, None]
    out = {
        "frequency": model.frequency_,
        "periods": [d.date().isoformat() for d in dates],
        "baseline": _band(base_draws, base),
        "plans": {},
        "baseline_error": {"origins": min((e.origins for e in errors), default=0),
                           "shared_sd": _pooled(errors, "level_sd"),
                           "period_sd": _pooled(errors, "period_sd")},
    }
    for name, plan in plans.items():
        point, samples = media_returns(model, plan, dates=dates)
        if samples is None:
            media_draws = np.repeat(point[None, :], draws, axis=0)
        elif pick is not None and samples.shape[0] == levels.size:
            media_draws = samples[pick]
        else:
            media_draws = samples[rng.integers(0, samples.shape[0], draws)]
        out["plans"][name] = {
            "spend": float(sum(np.sum(v) for v in plan.values())),
            "media": _band(media_draws, point),
            "total": _band(base_draws + media_draws, base + point),
        }
    return out


def _pooled(errors: list, name: str) -> float:
    """One relative sd over the blocks (the total's, weighting each by its scale)."""
    scale = sum(e.scale for e in errors)
    return float(np.sqrt(sum((getattr(e, name) * e.scale) ** 2 for e in errors)) / scale) if scale else 0.0


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
    baseline = float(np.sum(horizon_baseline(model, dates)))
    plan = {c: np.full(periods, float(model.spend_stats_[c]["mean"])) for c in model.channels_}
    point, _ = media_returns(model, plan, dates=dates)
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
