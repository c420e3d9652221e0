"""Plan a horizon period by period: carryover, seasonal efficiency, pacing, after-horizon return.

The model, for channel c and period t = 1..T::

    e_{c,t} = x_{c,t} + α_c · e_{c,t−1}          (effective spend; e_{c,0} = carryover from history)
    y_{c,t} ≤ eff_{c,t} · r_c(e_{c,t})            (r_c concave: secants, optimizer/build.py)

x is what is spent in the period, e what works in it, r_c the channel's *per-period* curve and
eff_{c,t} a seasonal multiplier (a campaign peak raises it, Spring Festival lowers it). The
recursion is linear and eff·r stays concave, so the whole plan is one LP.

After the horizon, the effective spend left at T keeps earning: e_{c,T+k} = α^k e_{c,T} with no
new spend. With ``count_after_horizon`` that tail is counted as one more concave curve of
e_{c,T}, ``R_c(e) = w_c Σ_{k=1..K} r_c(α^k e)`` with α^K < 1e-3 (:class:`AfterHorizonCurve`; w_c
is ``tail_efficiency``, 1 by default). It is exactly the sum of the K extra zero-spend periods of
the recursion, written as a single curve of a single LP variable, so it adds one hypograph per
channel instead of K.

Returns are *incremental*: ``expected_return`` is what the horizon's spend earns beyond what
the starting carryover would earn on its own (``carryover_return``); the ROI floor and the return
target use the same definition, so they are not flattered by spend made before the plan.

The LP for it is :mod:`optimizer.period_model`; :func:`optimizer.optimize_periods` plans it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from models.curves import CurveSet, ExponentialCurve, HillCurve, ResponseCurve
from optimizer.errors import ProblemError
from optimizer.problem import OBJECTIVES, BudgetMixin, Group, Problem, channel_bounds, shared_violations
from optimizer.result import money, pct

logger = logging.getLogger(__name__)

__all__ = [
    "AfterHorizonCurve",
    "Pacing",
    "PeriodChannel",
    "PeriodProblem",
    "from_problem",
    "plan_returns",
    "plan_violations",
]

#: After-horizon carryover is followed until α^K falls below this.
TAIL_CUTOFF = 1e-3
_INF = math.inf


# --------------------------------------------------------------------------------------------
# Problem


def per_period(value, T: int, default: float) -> np.ndarray:
    """A scalar, None or a per-period sequence (None entries = default) as a float array of T."""
    if value is None:
        return np.full(T, default, dtype=float)
    if np.isscalar(value):
        return np.full(T, float(value))
    vals = list(value)
    if len(vals) != T:
        raise ProblemError(f"expected {T} per-period values, got {len(vals)}")
    return np.array([default if v is None else float(v) for v in vals], dtype=float)


@dataclass(frozen=True)
class PeriodChannel:
    """One channel over the horizon.

    ``curve`` is the return *in one period* as a function of the effective spend in that period
    (for a fitted model: ``HillCurve(beta, k, s)`` from ``MediaMixModel.hill_params``).
    Per-period values (``efficiency``, ``min_per_period``, ``max_per_period``, ``current``) are
    a scalar (every period), a sequence with one entry per period (None = no limit / default),
    or None.
    """

    name: str
    curve: ResponseCurve
    group: str = "other"
    alpha: float = 0.0
    carryover: float = 0.0
    efficiency: float | Sequence[float] | None = None
    min_total: float | None = None
    max_total: float | None = None
    min_per_period: float | Sequence[float | None] | None = None
    max_per_period: float | Sequence[float | None] | None = None
    current: float | Sequence[float] | None = None
    locked: bool = False
    max_change: float | None = None
    max_change_abs: float | None = None
    tail_efficiency: float = 1.0
    label: str | None = None
    #: What set ``min_total`` and ``max_total`` (the single-horizon limits' names, such as
    #: ``evidence[douyin]``), for the plan's binding constraints; empty when not known.
    total_sources: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())


@dataclass(frozen=True)
class Pacing:
    """Limits on how spend is spread over the periods.

    ``min_share`` / ``max_share``: each period's spend as a share of the total budget (scalar or
    per period). ``cap``: cash available per period (money; scalar or per period).
    ``max_change``: a channel's spend may change by at most this fraction of its previous
    period's spend; ``max_change_abs``: by at most this amount. A channel's own ``max_change`` /
    ``max_change_abs`` overrides these.
    """

    min_share: float | Sequence[float | None] | None = None
    max_share: float | Sequence[float | None] | None = None
    cap: float | Sequence[float | None] | None = None
    max_change: float | None = None
    max_change_abs: float | None = None


@dataclass(frozen=True)
class PeriodProblem(BudgetMixin):
    """A horizon of ``periods`` to plan; fields as in :class:`optimizer.problem.Problem`.

    ``budget`` is the total over the horizon; the reserve and group shares are shares of it.
    ``origin`` is the single-horizon problem a one-period plan was made from
    (:func:`one_period`): its report and diagnosis name that problem's limits.
    """

    periods: tuple[str, ...]
    channels: tuple[PeriodChannel, ...]
    budget: float
    groups: tuple[Group, ...] = ()
    reserve_min_share: float = 0.05
    reserve_max_share: float | None = None
    roi_min: float | None = None
    objective: str = "max_return"
    margin: float | None = None
    target_return: float | None = None
    pacing: Pacing = field(default_factory=Pacing)
    count_after_horizon: bool = False
    name: str = "plan"
    currency: str = "CNY"
    notes: tuple[str, ...] = ()
    origin: Problem | None = field(default=None, compare=False, repr=False)
    #: As :attr:`optimizer.problem.Problem.return_in_money`: False for a KPI that is not money.
    return_in_money: bool = True

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ProblemError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if not self.periods:
            raise ProblemError("a period problem needs at least one period")
        for ch in self.channels:
            if not 0.0 <= ch.alpha < 1.0:
                raise ProblemError(f"{ch.name}: carryover alpha must be in [0, 1), got {ch.alpha}")

    @property
    def T(self) -> int:
        return len(self.periods)

    # Per-period arrays (channels × periods).

    def efficiency(self) -> np.ndarray:
        return np.array([per_period(c.efficiency, self.T, 1.0) for c in self.channels]).reshape(-1, self.T)

    def current(self) -> np.ndarray | None:
        """The current plan (channels × periods), or None when no channel gives one."""
        if all(c.current is None for c in self.channels):
            return None
        return np.array([per_period(c.current, self.T, 0.0) for c in self.channels]).reshape(-1, self.T)

    def period_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-period (minimum, maximum) of total spend from the pacing shares and cash caps."""
        p, b, T = self.pacing, self.budget, self.T
        low = per_period(p.min_share, T, 0.0) * b
        high = np.minimum(per_period(p.max_share, T, _INF) * b, per_period(p.cap, T, _INF))
        return low, high

    def change_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Per channel (fraction, absolute) limit on the change between consecutive periods (inf = none)."""
        frac = np.array([
            _INF if (c.max_change if c.max_change is not None else self.pacing.max_change) is None
            else float(c.max_change if c.max_change is not None else self.pacing.max_change)
            for c in self.channels
        ])
        absolute = np.array([
            _INF if (c.max_change_abs if c.max_change_abs is not None else self.pacing.max_change_abs) is None
            else float(c.max_change_abs if c.max_change_abs is not None else self.pacing.max_change_abs)
            for c in self.channels
        ])
        return frac, absolute

    def entry_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per (channel, period) spend interval from every limit that concerns one entry alone."""
        T, b = self.T, self.budget
        cur = self.current()
        lo = np.zeros((len(self.channels), T))
        hi = np.full((len(self.channels), T), b - self.reserve_min)
        p_lo, p_hi = self.period_limits()
        hi = np.minimum(hi, p_hi[None, :])
        for i, c in enumerate(self.channels):
            lo[i] = np.maximum(lo[i], per_period(c.min_per_period, T, 0.0))
            hi[i] = np.minimum(hi[i], per_period(c.max_per_period, T, _INF))
            if c.max_total is not None:
                hi[i] = np.minimum(hi[i], c.max_total)
            spec = self.group(c.group)
            if spec.max_share is not None:
                hi[i] = np.minimum(hi[i], spec.max_share * b)
            if c.locked and cur is not None:
                lo[i] = cur[i]
                hi[i] = cur[i]
        return lo, hi


def from_problem(problem: Problem, periods: int | Sequence[str]) -> PeriodProblem:
    """Split a single-horizon problem evenly into periods (α = 0, efficiency 1).

    Each channel's per-period curve is r(T·x)/T (the horizon curve with spend and return spread
    evenly), its total bounds are its single-horizon bounds (:func:`channel_bounds`), and its
    current plan is split evenly. By symmetry and concavity the even split of the single-horizon
    optimum is optimal here too, which tests use as a known answer.
    """
    labels = tuple(str(i + 1) for i in range(periods)) if isinstance(periods, int) else tuple(periods)
    T = len(labels)
    channels = []
    for ch in problem.channels:
        lo, hi = channel_bounds(problem, ch)
        channels.append(PeriodChannel(
            name=ch.name,
            curve=_spread(ch.curve, T),
            group=ch.group,
            min_total=lo.value if lo.value > 0 else None,
            max_total=hi.value,
            current=ch.current / T,
            label=ch.label,
        ))
    return PeriodProblem(
        periods=labels, channels=tuple(channels), budget=problem.budget, groups=problem.groups,
        reserve_min_share=problem.reserve_min_share, reserve_max_share=problem.reserve_max_share,
        roi_min=problem.roi_min, objective=problem.objective, margin=problem.margin,
        target_return=problem.target_return, name=problem.name, currency=problem.currency,
        return_in_money=problem.return_in_money,
    )


def one_period(problem: Problem, bounds) -> PeriodProblem:
    """The single-horizon problem as a plan of one period (T = 1: the curves as they are)."""
    channels = tuple(PeriodChannel(name=c.name, curve=c.curve, group=c.group, min_per_period=lo.value,
                                   max_per_period=max(hi.value, lo.value), current=c.current, label=c.label)
                     for c, (lo, hi) in zip(problem.channels, bounds))
    return PeriodProblem(
        periods=("1",), channels=channels, budget=problem.budget, groups=problem.groups,
        reserve_min_share=problem.reserve_min_share, reserve_max_share=problem.reserve_max_share,
        roi_min=problem.roi_min, objective=problem.objective, margin=problem.margin,
        target_return=problem.target_return, name=problem.name, currency=problem.currency, origin=problem,
        return_in_money=problem.return_in_money,
    )


@dataclass(frozen=True)
class Interval:
    """Where a pair's spend can go (the interface :func:`optimizer.refine.first_targets` reads)."""

    start: float
    hi: float


def _spread(curve: ResponseCurve, T: int) -> ResponseCurve:
    """r(T·x)/T as a curve of the same family where possible."""
    if isinstance(curve, HillCurve):
        return HillCurve(beta=curve.beta / T, k=curve.k / T, s=curve.s)
    if isinstance(curve, ExponentialCurve):
        return ExponentialCurve(beta=curve.beta / T, k=curve.k / T)
    raise ProblemError(f"cannot split a {curve.kind} curve into periods; give per-period curves")


class AfterHorizonCurve(ResponseCurve):
    """Return after the horizon from effective spend e left at its end: ``w Σ_{k=1..K} r(α^k e)``."""

    kind = "after_horizon"

    def __init__(self, base: ResponseCurve, alpha: float, weight: float = 1.0, cutoff: float = TAIL_CUTOFF):
        self.base = base
        self.alpha = float(alpha)
        self.weight = float(weight)
        K = int(math.ceil(math.log(cutoff) / math.log(alpha))) if 0 < alpha < 1 else 0
        self.factors = self.alpha ** np.arange(1, K + 1, dtype=float)

    def response(self, x) -> np.ndarray:
        x = np.asarray(x, float)
        if not self.factors.size:
            return np.zeros_like(x)
        return self.weight * self.base.response(np.multiply.outer(x, self.factors)).sum(axis=-1)

    def marginal(self, x) -> np.ndarray:
        x = np.asarray(x, float)
        if not self.factors.size:
            return np.zeros_like(x)
        return self.weight * (self.factors * self.base.marginal(np.multiply.outer(x, self.factors))).sum(axis=-1)

    @property
    def is_concave(self) -> bool:
        return self.base.is_concave

    def envelope(self) -> ResponseCurve:
        return self if self.is_concave else AfterHorizonCurve(self.base.envelope(), self.alpha, self.weight)

    def scaled(self, factor: float) -> "AfterHorizonCurve":
        return AfterHorizonCurve(self.base, self.alpha, self.weight * factor)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "base": self.base.to_dict(), "alpha": self.alpha, "weight": self.weight}


class Family:
    """Many pair curves evaluated together (through CurveSet), with after-horizon tails.

    A tail is a curve of the effective spend left at the end of the horizon, the same
    variable as its channel's last period, so it is added onto that pair (``tail_pair``):
    the pair's curve becomes eff·r(e) + R(e), still concave, and the LP needs no extra column
    or row for it. Each tail is expanded into its K scaled copies of the base curve so that
    one CurveSet call evaluates all of them; a bincount sums them back onto their pairs.
    """

    def __init__(self, curves: list[ResponseCurve], tails: Sequence[AfterHorizonCurve] = (), tail_pair=()):
        self.head = CurveSet(curves)
        self.n = len(curves)
        owner, mult, expanded = [], [], []
        for pair, tail in zip(np.asarray(tail_pair, int).tolist(), tails):
            k = tail.factors.size
            owner.append(np.full(k, pair))
            mult.append(tail.factors)
            expanded.extend([tail.base.scaled(tail.weight)] * k)
        self.tail_owner = np.concatenate(owner) if owner else np.zeros(0, int)
        self.tail_mult = np.concatenate(mult) if mult else np.zeros(0)
        self.tail_set = CurveSet(expanded) if expanded else None

    def response(self, x) -> np.ndarray:
        x = np.broadcast_to(np.asarray(x, float), (self.n,))
        out = self.head.response(x)
        if self.tail_set is not None:
            v = self.tail_set.response(x[self.tail_owner] * self.tail_mult)
            out = out + np.bincount(self.tail_owner, v, minlength=self.n)
        return out

    def marginal(self, x) -> np.ndarray:
        x = np.broadcast_to(np.asarray(x, float), (self.n,))
        out = self.head.marginal(x)
        if self.tail_set is not None:
            v = self.tail_mult * self.tail_set.marginal(x[self.tail_owner] * self.tail_mult)
            out = out + np.bincount(self.tail_owner, v, minlength=self.n)
        return out

    # The bisection of CurveSet only needs ``n`` and ``marginal``: reuse it as is.
    spend_at_marginal = CurveSet.spend_at_marginal


#: A curve that returns nothing (a pair that only carries a tail).
ZERO_CURVE = HillCurve(beta=0.0, k=1.0, s=1.0)


class InSpend:
    """A family seen as curves of spend, ``r(x / keep)``: a constant spend x builds a steady
    effective spend x / (1 − α), so with keep = 1 − α the budget's common marginal return
    (the first targets) is found in the money the budget is counted in."""

    def __init__(self, family: Family, keep: np.ndarray):
        self.family, self.keep, self.n = family, keep, family.n

    def response(self, x) -> np.ndarray:
        return self.family.response(np.asarray(x, float) / self.keep)

    def marginal(self, x) -> np.ndarray:
        return self.family.marginal(np.asarray(x, float) / self.keep) / self.keep

    spend_at_marginal = CurveSet.spend_at_marginal


# --------------------------------------------------------------------------------------------
# Evaluating a plan on the true curves


def effective_spend(problem: PeriodProblem, spends: np.ndarray) -> np.ndarray:
    """e_{c,t} = x_{c,t} + α_c e_{c,t−1}, from each channel's starting carryover."""
    alpha = np.array([c.alpha for c in problem.channels])
    e = np.empty_like(np.asarray(spends, float))
    prev = np.array([c.carryover for c in problem.channels], dtype=float)
    for t in range(problem.T):
        prev = spends[:, t] + alpha * prev
        e[:, t] = prev
    return e


def plan_returns(problem: PeriodProblem, spends, curves=None) -> dict:
    """A plan's incremental returns on the true curves (or on ``curves``, one per channel).

    Returns
    -------
    dict
        ``effective`` and ``returns`` (channels × periods), ``after_horizon`` (per channel,
        computed whether or not it counts), ``carryover_return`` (what the starting carryover
        earns on its own, excluded from the other figures) and ``total`` (horizon returns, plus
        the after-horizon return when ``count_after_horizon``).
    """
    x = np.asarray(spends, float).reshape(len(problem.channels), problem.T)
    curves = [c.curve for c in problem.channels] if curves is None else list(curves)
    eff = problem.efficiency()
    e = effective_spend(problem, x)
    e0 = effective_spend(problem, np.zeros_like(x))
    each = CurveSet(curves)
    with_plan = np.stack([each.response(e[:, t]) for t in range(problem.T)], axis=1) * eff
    alone = np.stack([each.response(e0[:, t]) for t in range(problem.T)], axis=1) * eff
    ret = with_plan - alone
    base_total = float(alone.sum())
    carry = np.nonzero([ch.alpha > 0 for ch in problem.channels])[0]
    after = np.zeros(len(curves))
    if carry.size:
        tails = Family([ZERO_CURVE] * len(curves), [AfterHorizonCurve(curves[i], problem.channels[i].alpha,
                                                                  problem.channels[i].tail_efficiency) for i in carry], carry)
        after = tails.response(e[:, -1]) - tails.response(e0[:, -1])
    total = float(ret.sum()) + (float(after.sum()) if problem.count_after_horizon else 0.0)
    return {"effective": e, "returns": ret, "after_horizon": after, "carryover_return": base_total, "total": total}


def plan_violations(problem: PeriodProblem, spends, returns_total: float | None = None, tol: float = 0.011) -> list[str]:
    """Which constraints a plan (channels × periods) breaks, in words; empty when none.

    ``tol`` is in money (default just over a cent: plans are rounded to cents).
    """
    x = np.asarray(spends, float).reshape(len(problem.channels), problem.T)
    b, out, cc = problem.budget, [], problem.currency
    tol = tol + 1e-9 * b
    lo, hi = problem.entry_bounds()
    for i, ch in enumerate(problem.channels):
        for t, label in enumerate(problem.periods):
            if x[i, t] < lo[i, t] - tol:
                out.append(f"{ch.name} in {label}: spend {money(x[i, t], cc)} is below its minimum {money(lo[i, t], cc)}")
            if x[i, t] > hi[i, t] + tol:
                out.append(f"{ch.name} in {label}: spend {money(x[i, t], cc)} is above its maximum {money(hi[i, t], cc)}")
        total = float(x[i].sum())
        if ch.min_total is not None and total < ch.min_total - tol:
            out.append(f"{ch.name}: total {money(total, cc)} is below its minimum {money(ch.min_total, cc)}")
        if ch.max_total is not None and total > ch.max_total + tol:
            out.append(f"{ch.name}: total {money(total, cc)} is above its maximum {money(ch.max_total, cc)}")
    frac, absolute = problem.change_limits()
    for i, ch in enumerate(problem.channels):
        for t in range(1, problem.T):
            d, prev = x[i, t] - x[i, t - 1], x[i, t - 1]
            if math.isfinite(frac[i]) and abs(d) > frac[i] * prev + tol * (1 + frac[i]):
                out.append(f"{ch.name}: change {money(d, cc)} into {problem.periods[t]} exceeds ±{pct(frac[i])} of {money(prev, cc)}")
            if math.isfinite(absolute[i]) and abs(d) > absolute[i] + tol:
                out.append(f"{ch.name}: change {money(d, cc)} into {problem.periods[t]} exceeds ±{money(absolute[i], cc)}")
    p_lo, p_hi = problem.period_limits()
    col = x.sum(axis=0)
    for t, label in enumerate(problem.periods):
        if col[t] < p_lo[t] - tol:
            out.append(f"period {label}: spend {money(col[t], cc)} is below its minimum {money(p_lo[t], cc)}")
        if col[t] > p_hi[t] + tol:
            out.append(f"period {label}: spend {money(col[t], cc)} is above its maximum {money(p_hi[t], cc)}")
    if returns_total is None:
        returns_total = plan_returns(problem, x)["total"]
    return out + shared_violations(problem, x.sum(axis=1), returns_total, tol)
