"""Scenario tables for period-by-period plans: ``[horizon]``, ``[pacing]``; and ``--risk``'s spec.

``[horizon]`` turns a scenario into a :class:`optimizer.periods.PeriodProblem`: decisions per
channel per period, with carryover (α and the carryover history has built, from a fitted model),
seasonal efficiency per period, pacing limits and, optionally, the return earned after the
horizon. Validation follows scenarios/schema.py: every problem with its key path, then one error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HORIZON_KEYS = {"periods", "count_after_horizon", "efficiency"}
PACING_KEYS = {"min_share", "max_share", "cap", "max_change", "max_change_abs"}
#: Per-channel keys that only make sense with a [horizon].
CHANNEL_PERIOD_KEYS = {"efficiency", "min_per_period", "max_per_period"}


@dataclass(frozen=True)
class HorizonSpec:
    """What the scenario said about the horizon (validated)."""

    labels: tuple[str, ...] | None  # None: the model's next periods (dates)
    count: int | None
    count_after_horizon: bool
    efficiency: str  # "seasonal" | "flat"
    pacing: dict
    channel_keys: dict  # channel → {efficiency, min_per_period, max_per_period}


@dataclass(frozen=True)
class RiskSpec:
    measure: str = "cvar"
    alpha: float = 0.1


#: ``--risk`` measures: the best CVaR of return, or the best mean return whose worst share of
#: samples still gains on the current split (:func:`optimizer.optimize_guarded`).
RISK_MEASURES = ("cvar", "guard")


def parse_risk(text: str) -> RiskSpec:
    """``cvar:0.1`` or ``guard:0.1`` → RiskSpec; raises ValueError with the accepted forms."""
    measure, _, level = str(text).partition(":")
    try:
        alpha = float(level) if level else 0.1
    except ValueError:
        alpha = -1.0
    if measure not in RISK_MEASURES or not 0.0 < alpha <= 1.0:
        raise ValueError("must look like cvar:0.1 or guard:0.1 (the worst share of outcomes, in (0, 1]), "
                         f"got {text!r}")
    return RiskSpec(measure, alpha)


def check_horizon(ck, data: dict, has_model: bool) -> HorizonSpec | None:
    """Validate [horizon], [pacing] and per-channel period keys; None when there is no [horizon]."""
    channels = data.get("channels") if isinstance(data.get("channels"), dict) else {}
    per_channel = {n: {k: v for k, v in c.items() if k in CHANNEL_PERIOD_KEYS}
                   for n, c in channels.items() if isinstance(c, dict)}
    if "horizon" not in data:
        for n, keys in per_channel.items():
            for k in keys:
                ck.add(f"channels.{n}.{k}", "only meaningful with a [horizon] table (a period-by-period plan)")
        if "pacing" in data:
            ck.add("pacing", "only meaningful with a [horizon] table (a period-by-period plan)")
        return None
    h = ck.table("horizon", data["horizon"], HORIZON_KEYS)
    labels, count = None, None
    periods = h.get("periods")
    if isinstance(periods, list) and periods and all(isinstance(p, str) for p in periods):
        labels = tuple(periods)
        if len(set(labels)) != len(labels):
            ck.add("horizon.periods", "period labels must be distinct")
    elif isinstance(periods, int) and not isinstance(periods, bool) and periods >= 1:
        count = periods
        if not has_model:
            labels = tuple(f"P{i + 1}" for i in range(periods))
    elif periods is None and has_model:
        pass  # the [history]/[model] `periods`, dated from the end of history
    else:
        ck.add("horizon.periods", "must be a list of period labels (e.g. [\"2027-01\", \"2027-02\", \"2027-03\"]) "
                                  f"or a number of periods, got {periods!r}")
    after = h.get("count_after_horizon", False)
    if not isinstance(after, bool):
        ck.add("horizon.count_after_horizon", f"must be true or false, got {after!r}")
        after = False
    eff = h.get("efficiency", "seasonal" if has_model else "flat")
    if eff not in ("seasonal", "flat"):
        ck.add("horizon.efficiency", f"must be \"seasonal\" (from the forecast baseline) or \"flat\", got {eff!r}")
    if eff == "seasonal" and not has_model:
        ck.add("horizon.efficiency", "\"seasonal\" needs curves fitted from history ([history] or [model])")
    T = len(labels) if labels is not None else count
    pacing = ck.table("pacing", data.get("pacing", {}), PACING_KEYS)
    clean_pacing = {}
    for key in ("min_share", "max_share"):
        if key in pacing:
            clean_pacing[key] = _per_period(ck, f"pacing.{key}", pacing[key], T, ck.share)
    if "cap" in pacing:
        clean_pacing["cap"] = _per_period(ck, "pacing.cap", pacing["cap"], T, ck.money)
    if "max_change_abs" in pacing:
        clean_pacing["max_change_abs"] = ck.money("pacing.max_change_abs", pacing["max_change_abs"])
    if "max_change" in pacing:
        clean_pacing["max_change"] = ck.ratio("pacing.max_change", pacing["max_change"])
    clean_channels = {}
    for n, keys in per_channel.items():
        out = {}
        for k, v in keys.items():
            out[k] = _per_period(ck, f"channels.{n}.{k}", v, T, ck.ratio if k == "efficiency" else ck.money)
        if out.get("efficiency") is not None:
            _check_index(ck, f"channels.{n}.efficiency", out["efficiency"])
        clean_channels[n] = out
    return HorizonSpec(labels, count, after, eff, clean_pacing, clean_channels)


#: Efficiencies all at this or above are an index where 100 is normal, not multipliers.
INDEX_LIKE_EFFICIENCY = 10.0


def _check_index(ck, path: str, value) -> None:
    """Efficiency multiplies the return: a planning sheet's seasonal index (100 = normal, 120 in
    a peak) read as is multiplies it a hundredfold."""
    values = value if isinstance(value, list) else [value]
    if min(values) >= INDEX_LIKE_EFFICIENCY:
        ck.add(path, f"is {min(values):g} or more in every period: efficiency multiplies the channel's return (1 is "
                     "as usual), so this reads as at least that many times the usual return; for an index where 100 "
                     "is normal write 1.2 or \"120%\" for 120")


def _per_period(ck, path: str, value, T: int | None, read):
    """A number or a list of T numbers, each read by ``read`` (a share, an amount of money or a
    ratio, written as the rest of the file writes them: "35%", "¥12,000")."""
    if isinstance(value, list):
        if T is not None and len(value) != T:
            ck.add(path, f"needs one value per period ({T}), got {len(value)}")
            return None
        vals = [read(f"{path}[{i}]", v) for i, v in enumerate(value)]
        return None if any(v is None for v in vals) else vals
    return read(path, value)


def seasonal_efficiency(model, dates) -> np.ndarray:
    """Each period's demand relative to the horizon's average: forecast baseline ÷ its mean.

    A period whose baseline (season, holidays, campaign days) is 20% above the horizon's mean is
    assumed to make media 20% more effective, and a dip (a holiday lull) less. The mean is 1, so
    seasonality moves money *within* the horizon without changing the level of the fitted curves
    (which are averages over history). This is the planner's assumption, stated in the plan's
    notes; give ``efficiency`` per channel to override it.
    """
    import pandas as pd

    from models.forecast import horizon_baseline

    # With the horizon's own holidays and campaign days (a Spring Festival next quarter is a lull).
    ahead = np.asarray(horizon_baseline(model, pd.DatetimeIndex(dates)), float)
    return ahead / float(np.mean(ahead))


def period_problem(scenario, spec: HorizonSpec):
    """The scenario's plan as a :class:`optimizer.periods.PeriodProblem` (one decision per channel
    per period); single-horizon limits (bounds, change limits, caps) apply to channel totals."""
    from optimizer import Pacing, PeriodChannel, PeriodProblem, channel_bounds

    problem, model = scenario.problem, scenario.model
    if spec.labels is not None:
        labels = spec.labels
        dates = None
    else:
        from models.forecast import horizon_dates

        dates = horizon_dates(model, spec.count or scenario.periods)
        labels = tuple(d.date().isoformat() for d in dates)
    T = len(labels)
    seasonal = None
    if spec.efficiency == "seasonal":
        from models.forecast import horizon_dates

        seasonal = seasonal_efficiency(model, dates if dates is not None else horizon_dates(model, T))
    channels, capped = [], []
    for c in problem.channels:
        lo, hi = channel_bounds(problem, c)
        keys = spec.channel_keys.get(c.name, {})
        fitted = c.name in scenario.fitted_channels
        if fitted:
            p = model.hill_params(c.name)
            curve = model.period_curve(c.name)
            alpha, carry = float(p["alpha"]), float(model.carryover_at_end_.get(c.name, 0.0))
        else:
            curve = _split(c.curve, T)
            alpha, carry = 0.0, 0.0
        eff = keys.get("efficiency")
        if eff is None and seasonal is not None:
            eff = seasonal.tolist()
        most = keys.get("max_per_period")
        if fitted and c.extrapolation_cap is not None:
            # the cap holds in each period, not only over the horizon: a seasonal peak is no reason
            # to plan beyond what the history saw (the horizon has the fit's periods: _check_horizon_length)
            most = _at_most(most, c.extrapolation_cap / T)
            capped.append(c.name)
        channels.append(PeriodChannel(
            name=c.name, curve=curve, group=c.group, alpha=alpha, carryover=carry, efficiency=eff,
            min_total=lo.value if lo.value > 0 else None, max_total=hi.value,
            min_per_period=keys.get("min_per_period"), max_per_period=most,
            current=c.current / T, locked=c.locked, label=c.label, total_sources=(lo.sources, hi.sources),
        ))
    notes = []
    if capped:
        notes.append("in each period, fitted channels spend at most their extrapolation cap's share (the "
                     "[history]/[model] extrapolation_cap × the largest spend per period the history saw)")
    if seasonal is not None:
        notes.append("seasonal efficiency per period = forecast baseline ÷ its mean over the horizon: "
                     + ", ".join(f"{v:.2f}" for v in seasonal))
    return PeriodProblem(
        periods=tuple(labels), channels=tuple(channels), budget=problem.budget, groups=problem.groups,
        reserve_min_share=problem.reserve_min_share, reserve_max_share=problem.reserve_max_share,
        roi_min=problem.roi_min, objective=problem.objective, margin=problem.margin,
        target_return=problem.target_return, pacing=Pacing(**spec.pacing),
        count_after_horizon=spec.count_after_horizon, name=problem.name, currency=problem.currency,
        notes=tuple(notes), return_in_money=problem.return_in_money,
    )


def _at_most(value, cap: float):
    """A per-period maximum (None, a number or a list with None for "no limit") held to ``cap``."""
    if value is None:
        return cap
    if isinstance(value, (list, tuple)):
        return [cap if v is None else min(float(v), cap) for v in value]
    return min(float(value), cap)


def _split(curve, T: int):
    """A horizon curve as a per-period curve: r(T·x)/T (spend and return spread evenly)."""
    from models.curves import ExponentialCurve, HillCurve, PointsCurve

    if isinstance(curve, HillCurve):
        return HillCurve(beta=curve.beta / T, k=curve.k / T, s=curve.s)
    if isinstance(curve, ExponentialCurve):
        return ExponentialCurve(beta=curve.beta / T, k=curve.k / T)
    return PointsCurve(curve.xs / T, curve.ys / T)
