"""What to plan: channels with their curves and limits, groups, budget, floors, objective.

A :class:`Problem` is already validated (scenarios/ validates files at the boundary); the
optimizer trusts it. :func:`channel_bounds` folds every per-channel limit into one spend
interval and remembers which named constraint each end comes from, so results can say what binds
and diagnoses can say what conflicts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from models.curves import ResponseCurve
from optimizer.cents import clamp_cent
from optimizer.result import money, pct

OBJECTIVES = ("max_return", "max_profit", "min_spend")


@dataclass(frozen=True)
class Channel:
    """One channel: its response curve over the horizon and its planner-set limits.

    Shares are fractions of the total budget (spend + reserve). ``max_change`` is a fraction of
    the current spend (0.2 means ±20%). ``evidence_range`` is the (low, high) spend the data
    behind a fitted curve supports (named ``evidence[c]``; see :func:`scenarios.plan.evidence_limits`).
    """

    name: str
    curve: ResponseCurve
    group: str = "other"
    current: float = 0.0
    min_spend: float | None = None
    max_spend: float | None = None
    min_share: float | None = None
    max_share: float | None = None
    locked: bool = False
    max_change: float | None = None
    extrapolation_cap: float | None = None
    label: str | None = None
    evidence_range: tuple[float, float] | None = None


@dataclass(frozen=True)
class Group:
    """A named set of channels with optional min/max share of the budget."""

    name: str
    min_share: float | None = None
    max_share: float | None = None
    label: str | None = None


class BudgetMixin:
    """What every plan over a budget shares: the budget override, the reserve and the groups.

    Needs ``budget``, ``reserve_min_share``, ``groups``, ``channels`` (each with ``group``),
    ``currency`` and ``return_in_money``.
    """

    @property
    def return_unit(self) -> str:
        """"money", or "kpi" for a return in the units of a KPI that is not money."""
        return "money" if self.return_in_money else "kpi"

    @property
    def return_currency(self) -> str:
        """What a return is written with (:func:`optimizer.money`): the currency, or "" (a plain
        number) for a KPI that is not money."""
        return self.currency if self.return_in_money else ""

    def with_budget(self, budget: float):
        """The same problem with another total budget (shares keep their meaning)."""
        return replace(self, budget=float(budget))

    @property
    def reserve_min(self) -> float:
        return self.reserve_min_share * self.budget

    @property
    def group_names(self) -> list[str]:
        """Declared groups first, then any group a channel names without declaring it."""
        names = [g.name for g in self.groups]
        for c in self.channels:
            if c.group not in names:
                names.append(c.group)
        return names

    def group(self, name: str) -> "Group":
        for g in self.groups:
            if g.name == name:
                return g
        return Group(name=name)


@dataclass(frozen=True)
class Problem(BudgetMixin):
    """A single-horizon allocation problem."""

    channels: tuple[Channel, ...]
    budget: float
    groups: tuple[Group, ...] = ()
    reserve_min_share: float = 0.05
    reserve_max_share: float | None = None
    roi_min: float | None = None
    marginal_roi_min: float | None = None
    objective: str = "max_return"
    margin: float | None = None
    target_return: float | None = None
    name: str = "plan"
    currency: str = "CNY"
    #: False when the return is in KPI units that are not money (conversions, orders): a marginal
    #: ROI below 1 then says nothing about whether spend pays (see optimizer.marginal).
    return_in_money: bool = True


@dataclass(frozen=True)
class Bound:
    """One end of a channel's spend interval and the named constraints that set it."""

    value: float
    sources: tuple[str, ...]


def channel_bounds(problem: Problem, channel: Channel) -> tuple[Bound, Bound]:
    """Fold every per-channel limit into ``(lower, upper)`` with the constraints that set each.

    The upper end is never above what the budget leaves after the minimum reserve. The lower
    end may exceed the upper end: that is an infeasible problem, which :mod:`optimizer.diagnose`
    explains.
    """
    b = problem.budget
    c = channel.name
    lows: list[tuple[float, str]] = [(0.0, "")]
    highs: list[tuple[float, str]] = [(b - problem.reserve_min, "budget_total")]
    if channel.locked:
        lows.append((channel.current, f"locked[{c}]"))
        highs.append((channel.current, f"locked[{c}]"))
    if channel.min_spend is not None:
        lows.append((channel.min_spend, f"min_spend[{c}]"))
    if channel.max_spend is not None:
        highs.append((channel.max_spend, f"max_spend[{c}]"))
    if channel.min_share is not None:
        lows.append((channel.min_share * b, f"min_share[{c}]"))
    if channel.max_share is not None:
        highs.append((channel.max_share * b, f"max_share[{c}]"))
    if channel.max_change is not None:
        lows.append((channel.current * (1 - channel.max_change), f"max_change[{c}]"))
        highs.append((channel.current * (1 + channel.max_change), f"max_change[{c}]"))
    if channel.extrapolation_cap is not None:
        highs.append((channel.extrapolation_cap, f"extrapolation_cap[{c}]"))
    if channel.evidence_range is not None:
        lows.append((channel.evidence_range[0], f"evidence[{c}]"))
        highs.append((channel.evidence_range[1], f"evidence[{c}]"))
    if problem.marginal_roi_min is not None:
        cap_upper = min(v for v, _ in highs)
        cap = channel.curve.spend_at_marginal(problem.marginal_roi_min, max(cap_upper, 0.0))
        highs.append((cap, f"marginal_roi_min[{c}]"))
    return _tightest(lows, max), _tightest(highs, min)


def _tightest(candidates: list[tuple[float, str]], pick) -> Bound:
    value = pick(v for v, _ in candidates)
    tol = 1e-9 * max(1.0, abs(value))
    sources = tuple(dict.fromkeys(s for v, s in candidates if s and abs(v - value) <= tol))
    return Bound(float(value), sources)


# --------------------------------------------------------------------------------------------
# Scoring a plan against the problem


def objective_value(problem: Problem, spend: float, ret: float) -> float:
    """The objective on true curves (bigger is better for every objective)."""
    if problem.objective == "max_profit":
        return float(problem.margin) * ret - spend
    if problem.objective == "min_spend":
        return -spend
    return ret


def broken_limits(problem: Problem, spends: np.ndarray, returns: np.ndarray) -> list[str]:
    """Which constraints a plan breaks (used for the current plan), excluding change limits."""
    out = []
    b = problem.budget
    cc = problem.currency
    tol = 0.005 + 1e-9 * b
    for ch, x in zip(problem.channels, spends):
        lo, hi = channel_bounds(problem, ch)
        # Limits defined relative to the current plan hold for it by definition.
        if x < lo.value - tol and not all(s.startswith(("locked", "max_change", "evidence")) for s in lo.sources):
            out.append(f"{ch.name}: spend {money(x, cc)} is below its minimum {money(lo.value, cc)}")
        if x > hi.value + tol and not all(s.startswith(("locked", "max_change", "evidence")) for s in hi.sources):
            out.append(f"{ch.name}: spend {money(x, cc)} is above its maximum {money(hi.value, cc)} ({', '.join(hi.sources)})")
    return out + shared_violations(problem, spends, float(returns.sum()), tol)


def shared_violations(problem, channel_totals: np.ndarray, ret: float, tol: float) -> list[str]:
    """Limits every plan shares (reserve, groups, ROI floor, return target), given each channel's
    total spend and the plan's total return; used for single-horizon and period plans alike."""
    out = []
    b = problem.budget
    cc = problem.currency
    reserve = clamp_cent(b - float(channel_totals.sum()))
    if reserve < problem.reserve_min - tol:
        out.append(f"reserve {money(reserve, cc)} is below the minimum {money(problem.reserve_min, cc)}")
    if problem.reserve_max_share is not None and reserve > problem.reserve_max_share * b + tol:
        out.append(f"reserve {money(reserve, cc)} is above the maximum {money(problem.reserve_max_share * b, cc)}")
    for g in problem.group_names:
        spec = problem.group(g)
        s = float(sum(x for ch, x in zip(problem.channels, channel_totals) if ch.group == g))
        if spec.min_share is not None and s < spec.min_share * b - tol:
            out.append(f"group {g}: {money(s, cc)} is below its minimum {pct(spec.min_share)}")
        if spec.max_share is not None and s > spec.max_share * b + tol:
            out.append(f"group {g}: {money(s, cc)} is above its maximum {pct(spec.max_share)}")
    spend = float(channel_totals.sum())
    if problem.roi_min is not None and spend > 0 and ret < problem.roi_min * spend * (1 - 1e-9):
        out.append(f"ROI {ret / spend:.2f} is below the floor {problem.roi_min:g}")
    if problem.objective == "min_spend" and problem.target_return is not None and ret < problem.target_return * (1 - 1e-9):
        rc = problem.return_currency
        out.append(f"return {money(ret, rc)} is below the target {money(problem.target_return, rc)}")
    return out
