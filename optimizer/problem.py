"""What to plan: channels with their curves and limits, groups, budget, floors, objective.

A :class:`Problem` is already validated (scenarios/ validates files at the boundary); the
optimizer trusts it. :func:`channel_bounds` folds every per-channel limit into one spend
interval and remembers which named constraint each end comes from, so results can say what binds
and diagnoses can say what conflicts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from models.curves import ResponseCurve

OBJECTIVES = ("max_return", "max_profit", "min_spend")


@dataclass(frozen=True)
class Channel:
    """One channel: its response curve over the horizon and its planner-set limits.

    Shares are fractions of the total budget (spend + reserve). ``max_change`` is a fraction of
    the current spend (0.2 means ±20%).
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


@dataclass(frozen=True)
class Group:
    """A named set of channels with optional min/max share of the budget."""

    name: str
    min_share: float | None = None
    max_share: float | None = None
    label: str | None = None


class BudgetMixin:
    """What every plan over a budget shares: the budget override, the reserve and the groups.

    Needs ``budget``, ``reserve_min_share``, ``groups`` and ``channels`` (each with ``group``).
    """

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
