"""Plan a horizon period by period: carryover, seasonal efficiency, pacing, after-horizon return.

The model, for channel c and period t = 1..T::

    e_{c,t} = x_{c,t} + α_c · e_{c,t−1}          (effective spend; e_{c,0} = carryover from history)
    y_{c,t} ≤ eff_{c,t} · r_c(e_{c,t})            (r_c concave: hypograph rows, as in build.py)

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

The LP is a PuLP model, as in :mod:`optimizer.build`: variables x, e (where α > 0), y (one
return column per pair: a (channel, period) entry; a channel's after-horizon tail is added onto
its last period's curve, of the same effective spend) and the reserve, and every limit a named
PuLP constraint under the house names (``budget_total``, ``min_total[c]``, ``max_total[c]``,
``period_min[p]``, ``period_cap[p]`` / ``period_max[p]``, ``group_min[g]``, ``group_max[g]``,
``roi_min``, ``target_return``; the elastic model of a diagnosis adds ``bounds[c,p]``,
``reserve_min``, ``reserve_max`` and ``max_change[c,p]``). The carryover recursion and the
pacing-change rows are array rows (:class:`optimizer.build.SparseRows`).

Each pair's curve has two equivalent LP forms on the same breakpoints p_j (values v_j, slopes
a_j). The readable *hypograph* form, ``y_p − a_j e_p ≤ v_j − a_j p_j``, is what ``lp_path``
writes, what CBC solves when HiGHS is missing, and what the small diagnosis LPs use. HiGHS
gets the *segment* form (:class:`_SegmentForm`, :class:`optimizer.highs.SegmentHiGHS`): e, y
and, with carryover, x = e_t − α e_{t−1} are written in the segment lengths
0 ≤ δ_j ≤ p_{j+1} − p_j, so the recursion rows vanish, no hypograph row exists, and what is
left are the coupling rows (one, the budget, when nothing else couples the pairs) over bounded
columns; the spend bounds of carryover channels are rows added only when a solution breaks
them. 1000 channels × 13 periods is then an LP of ~120k columns and a handful of rows that the
interior-point method solves in about a second, where the hypograph form (258k rows) took 20.

Accuracy: like :func:`optimizer.solve.optimize`, the LP is an inner (secant) approximation,
refined around the solution (a fine window where the LP's implied marginal return says the
optimum is, widening geometrically) until a duality bound (the LP's prices applied to the
true curves) certifies that the plan is within ``tol`` of the true optimum. The first window
sits at the budget's common marginal return found by a root search over all pairs (each curve
seen in spend units), which for the benchmark problems is close enough to certify in one or
two LPs. The breakpoint windows are built for all pairs at once with numpy.

Money is rounded to the cent afterwards so that spend + reserve = budget exactly.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import re
import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulp

from models.curves import CurveSet, ExponentialCurve, HillCurve, ResponseCurve
from optimizer.build import FLOOR_MARGIN, Objective, SparseRows, _var
from optimizer.cents import clamp_cent, period_to_cents
from optimizer.errors import ProblemError
from optimizer.problem import OBJECTIVES, BudgetMixin, Group, Problem, channel_bounds, objective_value, shared_violations
from optimizer.result import Binding, ChannelResult, GroupResult, PeriodAllocation, PlanSummary, money, pct
from optimizer.highs import SegmentHiGHS, Substitution, bulk_solver, drop_rows, run_lp, segment_prices
from optimizer.marginal import is_zero_curve
from optimizer.solve import _first_targets

logger = logging.getLogger(__name__)

__all__ = [
    "AfterHorizonCurve",
    "Pacing",
    "PeriodChannel",
    "PeriodProblem",
    "from_problem",
    "optimize_periods",
    "plan_returns",
    "plan_violations",
]

#: Relative gap at which refinement stops. The duality bound certifies it (it bounds the true gap
#: from above), so it can sit closer to the 1e-4 (0.01%) promise than the single-period
#: optimizer's 2e-5, whose stopping rule measures model error rather than the gap itself.
PERIOD_TOL = 5e-5
#: After-horizon carryover is followed until α^K falls below this.
TAIL_CUTOFF = 1e-3
#: Window spacing grows by this factor per step away from the target, and the coarse points
#: outside the window (shares of each pair's interval) are few: the LP's size is the number
#: of segments, and the duality bound only needs a fine point where the prices put each
#: optimum (measured on benchmarks/periods.py; optimizer.solve uses 4 and ten coarse points).
_WIDEN = 16.0
_COARSE = np.array([0.0, 0.1, 0.35, 1.0])
_INF = math.inf


# --------------------------------------------------------------------------------------------
# Problem


def _per_period(value, T: int, default: float) -> np.ndarray:
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
        return np.array([_per_period(c.efficiency, self.T, 1.0) for c in self.channels]).reshape(-1, self.T)

    def current(self) -> np.ndarray | None:
        """The current plan (channels × periods), or None when no channel gives one."""
        if all(c.current is None for c in self.channels):
            return None
        return np.array([_per_period(c.current, self.T, 0.0) for c in self.channels]).reshape(-1, self.T)

    def period_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-period (minimum, maximum) of total spend from the pacing shares and cash caps."""
        p, b, T = self.pacing, self.budget, self.T
        low = _per_period(p.min_share, T, 0.0) * b
        high = np.minimum(_per_period(p.max_share, T, _INF) * b, _per_period(p.cap, T, _INF))
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
            lo[i] = np.maximum(lo[i], _per_period(c.min_per_period, T, 0.0))
            hi[i] = np.minimum(hi[i], _per_period(c.max_per_period, T, _INF))
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
    )


@dataclass(frozen=True)
class _Interval:
    """Where a pair's spend can go (the interface :func:`optimizer.solve._first_targets` reads)."""

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


class _Family:
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
_ZERO = HillCurve(beta=0.0, k=1.0, s=1.0)


class _InSpend:
    """A family seen as curves of spend, ``r(x / keep)``: a constant spend x builds a steady
    effective spend x / (1 − α), so with keep = 1 − α the budget's common marginal return
    (the first targets) is found in the money the budget is counted in."""

    def __init__(self, family: _Family, keep: np.ndarray):
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
        tails = _Family([_ZERO] * len(curves), [AfterHorizonCurve(curves[i], problem.channels[i].alpha,
                                                                  problem.channels[i].tail_efficiency) for i in carry], carry)
        after = tails.response(e[:, -1]) - tails.response(e0[:, -1])
    total = float(ret.sum()) + (float(after.sum()) if problem.count_after_horizon else 0.0)
    return {"effective": e, "returns": ret, "after_horizon": after, "carryover_return": base_total, "total": total}


def plan_violations(problem: PeriodProblem, spends, returns_total: float | None = None, tol: float = 0.011) -> list[str]:
    """Which constraints a plan (channels × periods) breaks, in words; empty when none.

    ``tol`` is in money (default just over a cent: plans are rounded to cents).
    """
    x = np.asarray(spends, float).reshape(len(problem.channels), problem.T)
    b, out = problem.budget, []
    tol = tol + 1e-9 * b
    lo, hi = problem.entry_bounds()
    for i, ch in enumerate(problem.channels):
        for t, label in enumerate(problem.periods):
            if x[i, t] < lo[i, t] - tol:
                out.append(f"{ch.name} in {label}: spend {money(x[i, t])} is below its minimum {money(lo[i, t])}")
            if x[i, t] > hi[i, t] + tol:
                out.append(f"{ch.name} in {label}: spend {money(x[i, t])} is above its maximum {money(hi[i, t])}")
        total = float(x[i].sum())
        if ch.min_total is not None and total < ch.min_total - tol:
            out.append(f"{ch.name}: total {money(total)} is below its minimum {money(ch.min_total)}")
        if ch.max_total is not None and total > ch.max_total + tol:
            out.append(f"{ch.name}: total {money(total)} is above its maximum {money(ch.max_total)}")
    frac, absolute = problem.change_limits()
    for i, ch in enumerate(problem.channels):
        for t in range(1, problem.T):
            d, prev = x[i, t] - x[i, t - 1], x[i, t - 1]
            if math.isfinite(frac[i]) and abs(d) > frac[i] * prev + tol * (1 + frac[i]):
                out.append(f"{ch.name}: change {money(d)} into {problem.periods[t]} exceeds ±{pct(frac[i])} of {money(prev)}")
            if math.isfinite(absolute[i]) and abs(d) > absolute[i] + tol:
                out.append(f"{ch.name}: change {money(d)} into {problem.periods[t]} exceeds ±{money(absolute[i])}")
    p_lo, p_hi = problem.period_limits()
    col = x.sum(axis=0)
    for t, label in enumerate(problem.periods):
        if col[t] < p_lo[t] - tol:
            out.append(f"period {label}: spend {money(col[t])} is below its minimum {money(p_lo[t])}")
        if col[t] > p_hi[t] + tol:
            out.append(f"period {label}: spend {money(col[t])} is above its maximum {money(p_hi[t])}")
    if returns_total is None:
        returns_total = plan_returns(problem, x)["total"]
    return out + shared_violations(problem, x.sum(axis=1), returns_total, tol)


# --------------------------------------------------------------------------------------------
# The LP, as arrays


@dataclass
class _Layout:
    """Column indices of the LP and the pairs (horizon entries, then tails) that carry curves."""

    n_cols: int
    x: np.ndarray  # channels × periods
    e: np.ndarray  # channels × periods (== x where α = 0)
    reserve: int
    tail_pair: np.ndarray  # the pair (each such channel's last period) that carries the tail
    col_lower: np.ndarray
    col_upper: np.ndarray
    pair_e: np.ndarray  # e column of each pair
    pair_lo: np.ndarray  # interval of e each pair can take
    pair_hi: np.ndarray
    curves: list  # per pair, the curve the LP sees (the tails come on top, see _Family)
    tails: list

    def family(self) -> "_Family":
        return _Family(self.curves, self.tails, self.tail_pair)


def _layout(problem: PeriodProblem, lo: np.ndarray, hi: np.ndarray, curves) -> _Layout:
    C, T = lo.shape
    alpha = np.array([c.alpha for c in problem.channels])
    e0 = np.array([c.carryover for c in problem.channels], dtype=float)
    x = np.arange(C * T).reshape(C, T)
    n = C * T
    carry = alpha > 0
    e = x.copy()
    k = int(carry.sum())
    e[carry] = n + np.arange(k * T).reshape(k, T)
    n += k * T
    tail_channels = np.nonzero(carry)[0] if problem.count_after_horizon else np.zeros(0, int)
    reserve = n
    n += 1
    # Interval of effective spend: the recursion applied to the spend bounds.
    elo, ehi = np.empty((C, T)), np.empty((C, T))
    pl, ph = alpha * e0, alpha * e0
    for t in range(T):
        pl = lo[:, t] + pl
        ph = hi[:, t] + ph
        elo[:, t], ehi[:, t] = pl, ph
        pl, ph = alpha * pl, alpha * ph
    col_lower = np.full(n, -_INF)
    col_upper = np.full(n, _INF)
    col_lower[x.ravel()], col_upper[x.ravel()] = lo.ravel(), hi.ravel()
    col_lower[e[carry].ravel()], col_upper[e[carry].ravel()] = elo[carry].ravel(), ehi[carry].ravel()
    col_lower[reserve] = problem.reserve_min
    if problem.reserve_max_share is not None:
        col_upper[reserve] = problem.reserve_max_share * problem.budget
    eff = problem.efficiency()
    pair_curves = [curves[i].scaled(float(eff[i, t])) for i in range(C) for t in range(T)]
    tails = [AfterHorizonCurve(curves[i], problem.channels[i].alpha, problem.channels[i].tail_efficiency) for i in tail_channels]
    return _Layout(
        n_cols=n, x=x, e=e, reserve=reserve, tail_pair=tail_channels * T + T - 1,
        col_lower=col_lower, col_upper=col_upper, pair_e=e.ravel(), pair_lo=elo.ravel(),
        pair_hi=np.maximum(ehi.ravel(), elo.ravel()), curves=pair_curves, tails=tails,
    )


@dataclass
class _Model:
    """The period LP as a PuLP model: variables, named constraints and the array rows.

    ``cols`` lists the PuLP variables in column order: the layout's columns (x, e, reserve),
    then one return column y per pair. The carryover recursion and the pacing-change rows are
    fixed (``fixed``); the hypograph rows change with the breakpoints every round and are
    added by :func:`_solve_model`.
    """

    lp: pulp.LpProblem
    cols: list
    y: np.ndarray  # column of each pair's return
    fixed: SparseRows
    named: dict[str, pulp.LpConstraint] = field(default_factory=dict)
    slacks: dict[str, tuple] = field(default_factory=dict)  # key -> (slack variable, display name, side)
    return_weight: float = 1.0
    spend_weight: float = 0.0


@dataclass
class _Round:
    """One solved round: the breakpoints and what the solution says about them."""

    points: np.ndarray  # every pair's breakpoints, flattened, with their values and owners
    values: np.ndarray
    owner: np.ndarray
    row_owner: np.ndarray = None  # pair of each hypograph row (hypograph form)
    row_slope: np.ndarray = None
    rows: SparseRows = None
    first_row: int = 0
    sub: Substitution = None  # segment form (after the solve: its reduced costs)
    duals: np.ndarray = None  # hypograph form, after the solve: the rows' duals

    def interpolant(self, z: np.ndarray) -> np.ndarray:
        """Each pair's secant interpolant at ``z`` (the minimum of its segment lines)."""
        out = np.full(z.size, np.inf)
        seg = np.nonzero(self.owner[1:] == self.owner[:-1])[0]
        o = self.owner[seg]
        slope = (self.values[seg + 1] - self.values[seg]) / (self.points[seg + 1] - self.points[seg])
        np.minimum.at(out, o, self.values[seg] + slope * (z[o] - self.points[seg]))
        single = ~np.isfinite(out)
        first = np.searchsorted(self.owner, np.arange(z.size))
        out[single] = self.values[np.minimum(first[single], self.values.size - 1)]
        return out


def _model(problem: PeriodProblem, L: _Layout, carry_base: float, *, objective: Objective | None = None,
           with_floors: bool = True, elastic: bool = False, floor_margin: float = FLOOR_MARGIN,
           samples: int = 1) -> _Model:
    """Variables, named constraints and the fixed array rows of the period LP.

    ``y_p`` is the return of pair p (a (channel, period) entry; the after-horizon tail rides on
    the last period's); hypograph rows or segments (:func:`_hypograph`, :class:`_SegmentForm`)
    keep it at most the secant interpolant of the pair's curve of e_p. Returns are
    incremental, so the return floors read Σ y − carryover return ≥ ….

    With ``samples`` S > 1 (curve samples, :mod:`optimizer.risk`) every pair has S returns
    y_{p,s} (index p·S + s), one per sample curve of the same e_p, and the objective and the
    floors take their mean; ``carry_base`` is then the mean base too.
    """
    C, T = L.x.shape
    b = problem.budget
    n_pairs = L.pair_e.size
    obj = objective or Objective.for_problem(problem)
    lp = pulp.LpProblem("periods", pulp.LpMinimize if elastic else obj.sense)
    names = np.empty(L.n_cols, dtype=object)
    names[L.x.ravel()] = [f"x_{i}_{t}" for i in range(C) for t in range(T)]
    alpha = np.array([c.alpha for c in problem.channels])
    carry = np.nonzero(alpha > 0)[0]
    if carry.size:
        names[L.e[carry].ravel()] = [f"e_{i}_{t}" for i in carry.tolist() for t in range(T)]
    names[L.reserve] = "reserve"
    lower, upper = L.col_lower.copy(), L.col_upper.copy()
    xs = L.x.ravel()
    if elastic:
        # Entry bounds and the reserve become rows so their slack can be reported; e follows x.
        ent_lo, ent_hi = lower[xs].copy(), upper[xs].copy()
        lower[xs], upper[xs] = 0.0, _INF
        r_lo, r_hi = lower[L.reserve], upper[L.reserve]
        lower[L.reserve], upper[L.reserve] = 0.0, _INF
        ecols = L.e[carry].ravel()
        lower[ecols], upper[ecols] = -_INF, _INF
    cols = [_var(lp, nm, None if not math.isfinite(lo) else float(lo), None if not math.isfinite(up) else float(up))
            for nm, lo, up in zip(names.tolist(), lower.tolist(), upper.tolist())]
    S = samples
    ycols = [_var(lp, f"y_{p}" if S == 1 else f"y_{p}_{s}") for p in range(n_pairs) for s in range(S)]
    y = L.n_cols + np.arange(n_pairs * S)
    cols += ycols
    _register(lp, cols)  # columns that only appear in array rows must be known to PuLP
    model = _Model(lp=lp, cols=cols, y=y, fixed=SparseRows(cols),
                   return_weight=obj.return_weight, spend_weight=obj.spend_weight)
    X = [cols[j] for j in xs]

    def add(name: str, pairs, sense: int, rhs: float, key: str | None = None) -> None:
        key = key or name
        pairs = list(pairs)
        if elastic:
            s = _var(lp, f"s{len(model.slacks)}", 0)
            side = "lo" if sense == pulp.LpConstraintGE else "hi"
            model.slacks[key] = (s, name, side)
            pairs.append((s, 1.0 if sense == pulp.LpConstraintGE else -1.0))
        safe = re.sub(r"[^A-Za-z0-9_]", "_", key).strip("_")
        con = pulp.LpConstraint(pulp.LpAffineExpression(pairs), sense, f"{safe}_{len(model.named)}", rhs)
        lp.addConstraint(con)
        model.named[key] = con

    GE, LE = pulp.LpConstraintGE, pulp.LpConstraintLE
    # Money: every yuan is spent or kept in reserve.
    budget = [(v, 1.0) for v in X] + [(cols[L.reserve], 1.0)]
    con = pulp.LpConstraint(pulp.LpAffineExpression(budget), pulp.LpConstraintEQ, "budget_total", b)
    lp.addConstraint(con)
    model.named["budget_total"] = con
    if elastic:
        add("reserve_min", [(cols[L.reserve], 1.0)], GE, r_lo)
        if math.isfinite(r_hi):
            add("reserve_max", [(cols[L.reserve], 1.0)], LE, r_hi)
        for i, ch in enumerate(problem.channels):
            for t, label in enumerate(problem.periods):
                j = L.x[i, t]
                if ent_lo[j] > 0:
                    add(f"bounds[{ch.name},{label}]", [(cols[j], 1.0)], GE, ent_lo[j], f"bounds[{ch.name},{label}]#lo")
                if ent_hi[j] < b - problem.reserve_min:
                    add(f"bounds[{ch.name},{label}]", [(cols[j], 1.0)], LE, ent_hi[j], f"bounds[{ch.name},{label}]#hi")
    for i, ch in enumerate(problem.channels):
        row = [(cols[j], 1.0) for j in L.x[i].tolist()]
        if ch.min_total is not None:
            add(f"min_total[{ch.name}]", row, GE, ch.min_total)
        if ch.max_total is not None:
            add(f"max_total[{ch.name}]", row, LE, ch.max_total)
    p_lo, p_hi = problem.period_limits()
    caps = _per_period(problem.pacing.cap, T, _INF)
    for t, label in enumerate(problem.periods):
        col = [(cols[j], 1.0) for j in L.x[:, t].tolist()]
        if p_lo[t] > 0:
            add(f"period_min[{label}]", col, GE, p_lo[t])
        if math.isfinite(p_hi[t]):
            add(f"{_period_max_name(caps[t], p_hi[t])}[{label}]", col, LE, p_hi[t])
    for g in problem.group_names:
        spec = problem.group(g)
        members = [(cols[j], 1.0) for i, c in enumerate(problem.channels) if c.group == g for j in L.x[i].tolist()]
        if spec.min_share is not None:
            add(f"group_min[{g}]", members, GE, spec.min_share * b)
        if spec.max_share is not None:
            add(f"group_max[{g}]", members, LE, spec.max_share * b)
    # Carryover recursion (equalities): e_t − x_t − α e_{t−1} = α e0 at t = 0, else 0.
    e0 = np.array([c.carryover for c in problem.channels], dtype=float)
    if carry.size:
        rhs = alpha[carry] * e0[carry]
        model.fixed.add(rhs, rhs, np.stack([L.e[carry, 0], L.x[carry, 0]], axis=1),
                        np.tile([1.0, -1.0], (carry.size, 1)), 2)
        if T > 1:
            idx = np.stack([L.e[carry, 1:], L.x[carry, 1:], L.e[carry, :-1]], axis=2).reshape(-1, 3)
            val = np.stack([np.ones((carry.size, T - 1)), -np.ones((carry.size, T - 1)),
                            np.repeat(-alpha[carry][:, None], T - 1, axis=1)], axis=2).reshape(-1, 3)
            model.fixed.add(0.0, 0.0, idx, val, 3)
    # Pacing: change between consecutive periods.
    frac, absolute = problem.change_limits()
    if T > 1:
        for kind, chans in (("frac", np.nonzero(np.isfinite(frac))[0]), ("abs", np.nonzero(np.isfinite(absolute))[0])):
            if not chans.size:
                continue
            idx = np.stack([L.x[chans, 1:], L.x[chans, :-1]], axis=2).reshape(-1, 2)
            lim = np.repeat((frac if kind == "frac" else absolute)[chans], T - 1)
            if kind == "frac":  # x_t − (1+f) x_{t−1} ≤ 0  and  x_t − (1−f) x_{t−1} ≥ 0
                up = (-_INF, 0.0, np.stack([np.ones_like(lim), -(1 + lim)], axis=1))
                down = (0.0, _INF, np.stack([np.ones_like(lim), -(1 - lim)], axis=1))
            else:  # −a ≤ x_t − x_{t−1} ≤ a, as two rows
                ones = np.tile([1.0, -1.0], (idx.shape[0], 1))
                up, down = (-_INF, lim, ones), (-lim, _INF, ones)
            if elastic:  # named, so the elastic model can say which change limit gives way
                labels = [f"max_change[{problem.channels[i].name},{problem.periods[t]}]" for i in chans.tolist() for t in range(1, T)]
                for (lo_, up_, val), sense, tag in ((up, LE, "+"), (down, GE, "-")):
                    rhs = np.broadcast_to(np.asarray(up_ if sense == LE else lo_, float), (idx.shape[0],))
                    for r, name in enumerate(labels):
                        add(name, [(cols[idx[r, 0]], val[r, 0]), (cols[idx[r, 1]], val[r, 1])], sense, float(rhs[r]),
                            f"{name}{tag}{kind}")
            else:
                for lo_, up_, val in (up, down):
                    model.fixed.add(lo_, up_, idx, val, 2)
    Y = [(v, 1.0 / S) for v in ycols]
    # Return floors get a hair of margin (FLOOR_MARGIN, as in optimizer.build) so that rounding
    # spends to the cent cannot push the plan under them (more when it did: see optimize_periods).
    if with_floors and problem.roi_min is not None:
        add("roi_min", Y + [(v, -problem.roi_min * (1 + floor_margin)) for v in X], GE, carry_base)
    if with_floors and problem.objective == "min_spend" and problem.target_return is not None:
        add("target_return", Y, GE, problem.target_return * (1 + floor_margin) + carry_base)
    if elastic:
        # Where several limits could give way by the same amount, name the change limit: pacing
        # smooths a plan, the other limits are money the planner has or must spend.
        lp.setObjective(pulp.LpAffineExpression([(s, 0.999 if name.startswith("max_change[") else 1.0)
                                                 for s, name, _ in model.slacks.values()]))
    else:
        terms = []
        if obj.return_weight:
            terms += [(v, obj.return_weight / S) for v in ycols]
        if obj.spend_weight:
            terms += [(v, obj.spend_weight) for v in X]
        lp.setObjective(pulp.LpAffineExpression(terms))
    return model


def _period_max_name(cap: float, high: float) -> str:
    """``period_cap`` when the cash cap sets a period's maximum, else ``period_max`` (its share)."""
    return "period_cap" if cap <= high + 1e-9 else "period_max"


def _hypograph(model: _Model, e: np.ndarray, grid, values: np.ndarray | None = None) -> _Round:
    """The hypograph rows of every pair on breakpoints ``grid`` = (points, owner, family): pair
    p's return column ``model.y[p]`` under the secants of its curve in column ``e[p]``
    (``values``: the curves at the points, when already known)."""
    pts, owner, family = grid
    v = family_values(family, pts, owner) if values is None else values
    rnd = _Round(points=pts, values=v, owner=owner, rows=SparseRows(model.cols))
    rnd.rows.extend(model.fixed)
    seg = np.nonzero(owner[1:] == owner[:-1])[0]
    o = owner[seg]
    slope = (v[seg + 1] - v[seg]) / (pts[seg + 1] - pts[seg])
    # y_p − a_j e_p ≤ v_j − a_j p_j
    first_row = len(rnd.rows)
    rnd.rows.add(-_INF, v[seg] - slope * pts[seg], np.stack([model.y[o], e[o]], axis=1),
                 np.stack([np.ones_like(slope), -slope], axis=1), 2)
    # A pair fixed at one point: y_p ≤ r(p_0).
    single = np.nonzero(np.bincount(owner, minlength=e.size) == 1)[0]
    first = np.searchsorted(owner, single)
    if single.size:
        rnd.rows.add(-_INF, v[first], model.y[single][:, None], np.ones((single.size, 1)), 1)
    rnd.row_owner = np.concatenate([o, single])
    rnd.row_slope = np.concatenate([slope, np.zeros(single.size)])
    rnd.first_row = first_row
    return rnd


class _SegmentForm:
    """The curves in segment form, for :class:`optimizer.highs.SegmentHiGHS`.

    Pair p's curve column ``e[p]`` and return column ``model.y[p]`` become
    e_p = p_0 + Σ_j δ_j and y_p = r(p_0) + Σ_j a_j δ_j with 0 ≤ δ_j ≤ p_{j+1} − p_j. Concavity
    (falling slopes a_j) makes the LP fill a pair's segments in order, so y_p is the secant
    interpolant at e_p, as in the hypograph form, and no hypograph row is needed. Other
    columns that are linear in the e's can be substituted too (:meth:`substitute`).
    """

    def __init__(self, model: _Model, e: np.ndarray, grid, values: np.ndarray | None = None):
        pts, owner, family = grid
        self.model, self.pts, self.owner = model, pts, owner
        # ``values``: the curves at the points, one column per sample when pair p has several
        # returns y_{p,s} = model.y[p·S + s] (curve samples of the same e_p: one set of segments
        # serves them all, since each sample's secants are filled in the same order).
        V = (family_values(family, pts, owner) if values is None else values).reshape(pts.size, -1)
        S = V.shape[1]
        ys = model.y.reshape(e.size, S)
        seg = np.nonzero(owner[1:] == owner[:-1])[0]
        self.seg_owner = o = owner[seg]
        self.width = pts[seg + 1] - pts[seg]
        slopes = (V[seg + 1] - V[seg]) / self.width[:, None]
        self.values, self.slope = V[:, 0], slopes[:, 0]
        first = np.searchsorted(owner, np.arange(e.size))
        self.q0 = pts[first]
        k = np.arange(seg.size)
        n = len(model.cols)
        self.entries = [(e[o], k, np.ones(seg.size))] + [(ys[o, s], k, slopes[:, s]) for s in range(S)]
        self.offset = np.zeros(n)
        self.offset[e] = self.q0
        self.offset[ys] = V[first]
        self.replaced = np.zeros(n, bool)
        self.replaced[e] = self.replaced[model.y] = True
        self.bound_rows = np.zeros(n, bool)

    def substitute(self, target: np.ndarray, constant: np.ndarray, col: np.ndarray, weight: np.ndarray,
                   pair: np.ndarray) -> None:
        """Columns ``target`` = ``constant`` + Σ_i weight_i · e_{pair_i} over the terms i with
        col_i = that column. Their own bounds become rows: the segments do not imply them."""
        starts = np.searchsorted(self.seg_owner, pair, side="left")
        counts = np.searchsorted(self.seg_owner, pair, side="right") - starts
        seg = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(starts, counts)
        self.entries.append((np.repeat(col, counts), seg, np.repeat(weight, counts)))
        self.offset[target] = constant
        np.add.at(self.offset, col, weight * self.q0[pair])
        self.replaced[target] = True
        self.bound_rows[target] = True

    def round(self) -> _Round:
        from scipy import sparse

        rows, cols, vals = (np.concatenate(part) for part in zip(*self.entries))
        M = sparse.csr_matrix((vals, (rows, cols)), shape=(len(self.model.cols), self.width.size))
        sub = Substitution(cols=self.model.cols, M=M, offset=self.offset, replaced=self.replaced,
                           bound_rows=self.bound_rows, width=self.width, owner=self.seg_owner, slope=self.slope)
        return _Round(points=self.pts, values=self.values, owner=self.owner, rows=self.model.fixed, sub=sub)


def _segments(problem: PeriodProblem, model: _Model, L: _Layout, grid) -> _Round:
    """The period LP's curves in segment form; with carryover the spend columns go too,
    x_t = e_t − α e_{t−1} (the recursion rows then vanish)."""
    form = _SegmentForm(model, L.pair_e, grid)
    C, T = L.x.shape
    alpha = np.array([c.alpha for c in problem.channels])
    carry = np.nonzero(alpha > 0)[0]
    if carry.size:
        e0 = np.array([c.carryover for c in problem.channels])
        xs = L.x[carry]
        pairs = carry[:, None] * T + np.arange(T)[None, :]
        constant = np.zeros((carry.size, T))
        constant[:, 0] = -alpha[carry] * e0[carry]
        col = np.concatenate([xs.ravel(), xs[:, 1:].ravel()])
        weight = np.concatenate([np.ones(xs.size), np.repeat(-alpha[carry], T - 1)])
        pair = np.concatenate([pairs.ravel(), pairs[:, :-1].ravel()])
        form.substitute(xs.ravel(), constant.ravel(), col, weight, pair)
    return form.round()


def _solve_model(model: _Model, e: np.ndarray, rnd: _Round, lp_path: str | None = None, options: dict | None = None):
    """Solve with HiGHS through PuLP (segment form, or hypograph rows in bulk), or CBC when
    HiGHS is missing (hypograph rows as PuLP constraints); ``e`` are the pairs' curve columns.
    ``lp_path`` writes the LP in hypograph form through PuLP.

    Returns (status, column values, seconds, solver name); the round gets the duals of its
    hypograph rows or the reduced costs of its segments.
    """
    rows = rnd.rows
    if lp_path:
        write_lp(model, e, rnd, lp_path)
    opts = {} if options is None else options
    if rnd.sub is not None and pulp.HiGHS().available():
        solver = SegmentHiGHS(rows, rnd.sub, msg=False, **opts)  # it picks the method by the LP's size
    else:
        if rnd.sub is not None:  # no HiGHS: the hypograph rows, for CBC
            hyp = _hypograph(model, e, (rnd.points, rnd.owner, None), rnd.values)
            rnd.sub, rnd.rows, rnd.row_owner, rnd.row_slope, rnd.first_row = None, hyp.rows, hyp.row_owner, hyp.row_slope, hyp.first_row
            rows = rnd.rows
        solver = bulk_solver(model.lp, rows, opts)
    try:
        status, seconds = run_lp(model.lp, solver)
    finally:
        if rows.constraints is not None:
            rows.read_solution()
            drop_rows(model.lp, rows)
    if status != "optimal":
        return status, None, seconds, solver.name
    if rnd.sub is None and rows.duals is not None:
        rnd.duals = rows.duals[rnd.first_row: rnd.first_row + rnd.row_owner.size]
    return "optimal", rows.col_values, seconds, solver.name


def write_lp(model: _Model, e: np.ndarray, rnd: _Round, path: str) -> None:
    """Write a round's LP through PuLP, curves as hypograph rows (readable, whatever form HiGHS got)."""
    rows = rnd.rows if rnd.sub is None else _hypograph(model, e, (rnd.points, rnd.owner, None), rnd.values).rows
    rows.materialise(model.lp)
    model.lp.writeLP(path)
    drop_rows(model.lp, rows)


def _register(lp: pulp.LpProblem, variables: list) -> None:
    """Make PuLP know columns that only appear in array rows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if hasattr(lp, "_add_variables"):
            lp._add_variables(variables)
        else:
            lp.addVariables(variables)


def family_values(family: _Family, pts: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Each breakpoint's value on its pair's curve."""
    out = np.empty(pts.size)
    # Evaluate column by column of equal rank within each pair, so every call is one CurveSet pass.
    rank = np.arange(pts.size) - np.searchsorted(owner, owner)
    for r in range(int(rank.max()) + 1 if rank.size else 0):
        sel = np.nonzero(rank == r)[0]
        x = np.zeros(family.n)
        x[owner[sel]] = pts[sel]
        out[sel] = family.response(x)[owner[sel]]
    return out


# --------------------------------------------------------------------------------------------
# Breakpoints for all pairs at once (the refinement of optimizer.solve, vectorised)


def _grid(lo: np.ndarray, hi: np.ndarray, target: np.ndarray | None, h: np.ndarray | None, extra: np.ndarray | None):
    """Sorted distinct breakpoints per pair, flattened: (points, owner).

    Coarse points over [lo, hi] (those of :mod:`optimizer.solve`), plus, when ``target`` is
    given, a window around it: spacing ``h`` next to it, widening ×4 per step away from it
    (the window of ``optimizer.solve._zoom``); coarse points inside the window are dropped.
    """
    n = lo.size
    span = hi - lo
    cols = [lo[:, None] + span[:, None] * _COARSE[None, :]]
    if target is not None:
        target = np.clip(target, lo, hi)
        steps = np.concatenate([[0.0, 1.0], _WIDEN ** np.arange(1, 21)])
        k = np.clip(np.ceil(np.log(np.maximum(span / (8 * h), 1.0)) / np.log(_WIDEN)), 0, 20).astype(int)
        reach = h * _WIDEN ** k
        s = h[:, None] * steps[None, :]
        s = np.where(steps[None, :] <= _WIDEN ** k[:, None], s, np.nan)
        inside = np.abs(cols[0] - target[:, None]) <= reach[:, None]
        inside[:, [0, -1]] = False
        cols[0] = np.where(inside, np.nan, cols[0])
        cols += [target[:, None] + s, target[:, None] - s]
    if extra is not None:
        cols.append(extra)
    P = np.concatenate(cols, axis=1)
    P = np.where(np.isnan(P), np.nan, np.clip(P, lo[:, None], hi[:, None]))
    P.sort(axis=1)
    gap = 1e-9 * np.maximum(np.abs(hi), 1.0)
    dup = np.zeros_like(P, dtype=bool)
    dup[:, 1:] = ~(np.diff(P, axis=1) > gap[:, None])
    # A kept point just below hi would make a segment whose slope is noise; the end wins.
    P = np.where(dup, np.nan, P)
    P.sort(axis=1)
    keep = ~np.isnan(P)
    owner = np.repeat(np.arange(n), keep.sum(axis=1))
    return P[keep], owner, P


def _spacing(family: _Family, lo, hi, target, allowed: float) -> np.ndarray:
    """Window spacing h next to ``target``: chord error h²|r''|/8 a small share of ``allowed``."""
    target = np.clip(target, lo, hi)
    eps = np.maximum(1e-6 * np.maximum(target, 1.0), 1e-9)
    curvature = np.abs(family.marginal(np.maximum(target - eps, 0.0)) - family.marginal(target + eps)) / (2 * eps)
    per_pair = allowed / (2.0 * max(family.n, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.sqrt(8.0 * per_pair / np.maximum(curvature, 1e-300))
    return np.clip(np.nan_to_num(h, nan=0.0, posinf=0.0), 1e-9 * np.maximum(hi, 1.0), np.maximum((hi - lo) / 16.0, 1e-12))


def _local_errors(family: _Family, P: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Per pair, the midpoint gap between curve and chord on the segment(s) holding ``z``."""
    n = P.shape[0]
    valid = (~np.isnan(P)).sum(axis=1)
    j = np.clip((np.nan_to_num(P, nan=np.inf) <= z[:, None]).sum(axis=1) - 1, 0, np.maximum(valid - 2, 0))
    rows = np.arange(n)
    err = np.zeros(n)
    ok = valid >= 2
    for shift in (0, -1):
        jj = np.clip(j + shift, 0, np.maximum(valid - 2, 0))
        a, b = P[rows, jj], P[rows, np.minimum(jj + 1, P.shape[1] - 1)]
        a, b = np.where(ok, a, 0.0), np.where(ok, b, 0.0)
        if shift == -1:
            at_knot = np.abs(z - P[rows, j]) <= 1e-9 * np.maximum(np.abs(z), 1.0)
            use = ok & at_knot & (j > 0)
        else:
            use = ok
        mid = family.response(0.5 * (a + b)) - 0.5 * (family.response(a) + family.response(b))
        err = np.where(use, np.maximum(err, mid), err)
    return np.maximum(err, 0.0)


# --------------------------------------------------------------------------------------------
# Solve


def optimize_periods(problem: PeriodProblem, *, tol: float = PERIOD_TOL, max_rounds: int = 10,
                     lp_path: str | None = None, curves: Sequence[ResponseCurve] | None = None,
                     floor_margin: float = FLOOR_MARGIN) -> PeriodAllocation:
    """Find the per-period plan with the best objective under every constraint of ``problem``.

    Parameters
    ----------
    problem
        The horizon to plan.
    tol
        Stop once the duality bound shows the plan within this relative gap of the optimum.
    max_rounds
        Refinement rounds at most.
    lp_path
        Write the last LP to this file (debugging).
    curves
        Plan on these per-period curves instead of the channels' own (one per channel).
    floor_margin
        Relative margin on the ROI floor and the return target, so that rounding to the cent
        keeps them; raised automatically (and the plan redone) when rounding still broke one.

    Returns
    -------
    PeriodAllocation
        ``status == "infeasible"`` with a diagnosis in money terms when the constraints conflict.

    Raises
    ------
    SolverError
        When HiGHS fails in a way that is not infeasibility.
    """
    t_start = time.perf_counter()
    curves = [c.curve for c in problem.channels] if curves is None else list(curves)
    mode = "concave" if all(c.is_concave for c in curves) else "envelope"
    lp_curves = [c if c.is_concave else c.envelope() for c in curves]
    alloc = _empty(problem, mode)
    lo, hi = problem.entry_bounds()
    conflicts = bound_conflicts(problem, lo, hi)
    if conflicts:
        alloc.diagnosis = conflicts
        alloc.current = _summarise_current(problem)
        return alloc
    L = _layout(problem, lo, hi, lp_curves)
    family = L.family()
    # What the pairs' curves (after-horizon tails included) give with no spend at all: the LP's
    # returns are counted above it, as plan_returns counts them.
    carry_base = float(family.response(effective_spend(problem, np.zeros_like(lo)).ravel()).sum())
    cur = problem.current()
    extra = None
    if cur is not None:
        # The current plan sits exactly on the model, so the plan found is never worse than it.
        extra = effective_spend(problem, cur).ravel()[:, None]
    start_extra = extra
    # First targets: the common-marginal split of the budget over the (channel, period) pairs,
    # each curve seen in spend units (steady state e = x / (1 − α); the last period's spend
    # carries into nothing the horizon counts but its own tail, so there keep = 1).
    keep = np.repeat(1.0 - np.array([c.alpha for c in problem.channels])[:, None], problem.T, axis=1)
    keep[:, -1] = 1.0
    keep = keep.ravel()
    heads = [_Interval(a * f, z * f) for a, z, f in zip(L.pair_lo, L.pair_hi, keep)]
    first = _first_targets(problem, heads, _InSpend(family, keep)) / keep
    target = first
    allowed = tol * max(float(family.response(np.clip(first, L.pair_lo, L.pair_hi)).sum()), 1e-12)
    solver_seconds, rounds = 0.0, 0
    sol = None
    model = _model(problem, L, carry_base, floor_margin=floor_margin)
    for rounds in range(1, max_rounds + 1):
        h = _spacing(family, L.pair_lo, L.pair_hi, target, allowed)
        pts, owner, P = _grid(L.pair_lo, L.pair_hi, target, h, extra)
        rnd = _segments(problem, model, L, (pts, owner, family))
        status, sol, secs, solver_name = _solve_model(model, L.pair_e, rnd, lp_path if rounds == max_rounds else None)
        solver_seconds += secs
        if status != "optimal":
            alloc.diagnosis = explain(problem, L, (pts, owner, family), carry_base, status)
            alloc.solver_name = solver_name
            alloc.solver_seconds = time.perf_counter() - t_start
            alloc.current = _summarise_current(problem)
            return alloc
        z = np.clip(sol[L.pair_e], L.pair_lo, L.pair_hi)
        total = float(family.response(z).sum())
        implied, kappa, pi = _implied_marginals(rnd, family, z)
        lp_value = model.return_weight * float(sol[model.y].sum()) + model.spend_weight * float(sol[L.x].sum())
        objective_scale = max(abs(lp_value), abs(total) * 1e-3, 1e-9 * problem.budget, 1e-12)
        if kappa:
            gap = _duality_gap(rnd, family, L.pair_lo, L.pair_hi, kappa, pi)
            done = gap <= tol * objective_scale
        else:  # no price to certify with: the model error next to the solution instead
            gap = float(_local_errors(family, P, z).sum())
            done = gap <= tol * max(abs(total), 1e-12)
        alloc.gap_bound = gap / objective_scale
        allowed = tol * max(abs(total), 1e-9 * problem.budget, 1e-12)
        logger.debug("period round %d: gap bound %.3g (allowed %.3g), %d segments, LP %.3fs",
                     rounds, gap, tol * objective_scale, rnd.points.size - L.pair_e.size, secs)
        if done:
            break
        # Next window at the prices' optimum; keep the model fine where each pair is now and where
        # its last window was, since with carryover the prices of pairs that other decisions pin
        # are not unique and may swing between rounds.
        h_now = _spacing(family, L.pair_lo, L.pair_hi, z, allowed)[:, None]
        keep = [z[:, None] + h_now * np.array([-2.0, -1.0, 0.0, 1.0, 2.0]),
                target[:, None] + h[:, None] * np.array([-1.0, 0.0, 1.0])]
        extra = np.concatenate(([start_extra] if start_extra is not None else []) + keep, axis=1)
        target = family.spend_at_marginal(implied, L.pair_lo, L.pair_hi)
    if lp_path and rounds < max_rounds:
        write_lp(model, L.pair_e, rnd, lp_path)
    x = sol[L.x]
    alloc = _report(problem, alloc, lo, hi, x, curves, sol, model)
    alloc.lp_return = float(rnd.interpolant(np.clip(sol[L.pair_e], L.pair_lo, L.pair_hi)).sum()) - carry_base
    alloc.solver_name = solver_name
    alloc.iterations = rounds
    alloc.solver_seconds = time.perf_counter() - t_start
    if mode == "envelope":
        alloc.warnings.insert(0, "some curves are S-shaped; the plan was made on their concave envelope, which "
                              "overstates their return at low spend (multi-period planning has no exact mode)")
    short = _floor_shortfall(problem, alloc)
    if short > 0 and floor_margin < 1e-2:
        # Rounding to the cent (or an S-curve's envelope) took the plan under a return floor:
        # plan again with the floor raised by more than it missed.
        logger.debug("return floor missed by %.3g after rounding; planning with margin %.3g", short,
                     max(10 * floor_margin, 4 * short))
        return optimize_periods(problem, tol=tol, max_rounds=max_rounds, lp_path=lp_path, curves=curves,
                                floor_margin=max(10 * floor_margin, 4 * short))
    return alloc


def _floor_shortfall(problem: PeriodProblem, alloc: PeriodAllocation) -> float:
    """By what share the plan misses its ROI floor or return target on the true curves (0: it does not)."""
    short = 0.0
    if problem.roi_min is not None and alloc.spend > 0 and alloc.roi is not None and problem.roi_min > 0:
        short = max(short, 1.0 - alloc.roi / problem.roi_min)
    if problem.objective == "min_spend" and problem.target_return is not None and problem.target_return > 0:
        short = max(short, 1.0 - alloc.expected_return / problem.target_return)
    return short if short > 1e-9 else 0.0


def _implied_marginals(rnd: _Round, family: _Family, z: np.ndarray):
    """Each pair's marginal return as the LP prices it, the price κ of return, and the prices π of e.

    Segment form: from the segments' reduced costs (:func:`optimizer.highs.segment_prices`).

    Hypograph form: stationarity in the free column y_p makes the duals μ of pair p's rows sum
    to κ, and in e_p their slope-weighted sum π_p = Σ μ_j a_j is the price of its effective spend.
    """
    n = family.n
    fallback = family.marginal(z), None, np.zeros(n)
    if rnd.sub is not None and rnd.sub.reduced is not None:
        implied, kappa, pi = segment_prices(rnd.sub.reduced, rnd.sub.owner, rnd.sub.slope, n)
        if kappa is None:
            return fallback
        has = np.isfinite(implied)
        implied = np.where(has, implied, family.marginal(z))
        return implied, kappa, np.where(has, pi, kappa * implied)
    duals = rnd.duals
    if duals is None or duals.size != rnd.row_owner.size:
        return fallback
    w = np.abs(np.nan_to_num(duals))
    kappa_p = np.bincount(rnd.row_owner, weights=w, minlength=n)
    pi = np.bincount(rnd.row_owner, weights=w * rnd.row_slope, minlength=n)
    k = kappa_p[kappa_p > 0]
    kappa = float(np.median(k)) if k.size else None
    with np.errstate(invalid="ignore", divide="ignore"):
        implied = np.where(kappa_p > 0, pi / kappa_p, np.nan)
    implied = np.where(np.isfinite(implied), implied, family.marginal(z))
    return implied, kappa, pi


def _duality_gap(rnd: _Round, family: _Family, lo, hi, kappa: float, pi: np.ndarray) -> float:
    """How much better than the LP the true optimum can be at most (objective units).

    With the LP's prices on every row but the hypograph rows, the Lagrangian separates by
    pair; on the true curves each pair contributes max_e κ r(e) − π e, on the LP's interpolant
    max over its breakpoints of κ r(p_j) − π p_j. The LP's value plus Σ of the differences
    bounds the true optimum from above (weak duality), and the plan's true value is at least
    the LP's (inner approximation): the sum is a certificate of the gap. It is small when
    every pair's grid is fine where its price puts its optimum, however degenerate the LP's
    own solution is.
    """
    n = family.n
    e_star = family.spend_at_marginal(pi / kappa, lo, hi)
    best_true = kappa * family.response(e_star) - pi * e_star
    vals = kappa * rnd.values - pi[rnd.owner] * rnd.points
    best_lp = np.full(n, -np.inf)
    np.maximum.at(best_lp, rnd.owner, vals)
    best_lp = np.where(np.isfinite(best_lp), best_lp, best_true)
    return float(np.maximum(best_true - best_lp, 0.0).sum())


def _empty(problem: PeriodProblem, mode: str) -> PeriodAllocation:
    return PeriodAllocation(
        scenario=problem.name, status="infeasible", objective=problem.objective, budget=problem.budget,
        currency=problem.currency, mode=mode, periods=tuple(problem.periods),
        count_after_horizon=problem.count_after_horizon,
    )


# --------------------------------------------------------------------------------------------
# Reporting


def _summarise_current(problem: PeriodProblem) -> PlanSummary | None:
    cur = problem.current()
    if cur is None:
        return None
    ev = plan_returns(problem, cur)
    spend = float(cur.sum())
    violations = plan_violations(problem, cur, ev["total"], tol=0.5)
    return PlanSummary(spend=spend, reserve=clamp_cent(problem.budget - spend), expected_return=ev["total"],
                       roi=ev["total"] / spend if spend > 0 else None, feasible=not violations,
                       violations=tuple(violations))


def _report(problem, alloc: PeriodAllocation, lo, hi, x, curves, sol, model: _Model,
            guard_current: bool = True) -> PeriodAllocation:
    C, T = lo.shape
    b = problem.budget
    cents = period_to_cents(problem, lo, hi, x)
    spends = cents / 100.0
    ev = plan_returns(problem, spends, curves)
    current = _summarise_current(problem)
    if guard_current and current is not None and current.feasible:
        cur = problem.current()
        if objective_value(problem, float(spends.sum()), ev["total"]) < objective_value(
            problem, current.spend, current.expected_return
        ) - 1e-9 * max(1.0, abs(current.expected_return)):
            alloc.warnings.append("the plan scored below the current plan on the true curves; keeping the current plan")
            cents = np.rint(cur * 100).astype(np.int64)
            spends = cents / 100.0
            ev = plan_returns(problem, spends, curves)
    alloc.status = "optimal"
    alloc.period_spend = spends
    alloc.period_effective = ev["effective"]
    alloc.period_return = ev["returns"]
    alloc.after_horizon = ev["after_horizon"]
    alloc.after_horizon_return = float(ev["after_horizon"].sum())
    alloc.carryover_return = ev["carryover_return"]
    reserve_c = int(round(b * 100)) - int(cents.sum())
    spend_total = int(cents.sum()) / 100.0
    ret_total = ev["total"]
    margins = _marginals(problem, ev["effective"], curves)
    cur = problem.current()
    per_channel_return = ev["returns"].sum(axis=1) + (ev["after_horizon"] if problem.count_after_horizon else 0.0)
    for i, ch in enumerate(problem.channels):
        s = float(cents[i].sum()) / 100.0
        cs = float(cur[i].sum()) if cur is not None else 0.0
        r = float(per_channel_return[i])
        alloc.channels.append(ChannelResult(
            channel=ch.name, group=ch.group, spend=s, share=s / b if b else 0.0, current_spend=cs,
            change=s - cs, expected_return=r, roi=r / s if s > 0 else None,
            marginal_roi=float(margins[i]), label=ch.label,
        ))
    for g in problem.group_names:
        mask = np.array([c.group == g for c in problem.channels])
        gs = float(cents[mask].sum()) / 100.0
        gc = float(cur[mask].sum()) if cur is not None else 0.0
        alloc.groups.append(GroupResult(group=g, spend=gs, share=gs / b if b else 0.0, current_spend=gc))
    alloc.spend = spend_total
    alloc.reserve = reserve_c / 100.0
    alloc.expected_return = ret_total
    alloc.roi = ret_total / spend_total if spend_total > 0 else None
    alloc.current = current
    if current is not None and current.expected_return > 0:
        alloc.uplift = ret_total / current.expected_return - 1.0
    alloc.binding = _binding(problem, lo, hi, spends, alloc, model)
    alloc.warnings.extend(_warnings(problem, spends, alloc))
    return alloc


def _marginals(problem: PeriodProblem, e: np.ndarray, curves) -> np.ndarray:
    """Per channel, the return of one more yuan in its best period (carryover and tail included).

    One more yuan in period t raises e_τ by α^{τ−t} for every τ ≥ t (and the effective spend
    left at the end by α^{T−1−t}): d total / d x_t = Σ_{τ ≥ t} α^{τ−t} m_τ, the tail's marginal
    counted in the last period. Accumulated backwards over the periods for all channels at once.
    """
    C, T = e.shape
    alpha = np.array([c.alpha for c in problem.channels])
    each = CurveSet(list(curves))
    m = np.stack([each.marginal(e[:, t]) for t in range(T)], axis=1) * problem.efficiency()
    carry = np.nonzero(alpha > 0)[0]
    if problem.count_after_horizon and carry.size:
        tails = _Family([_ZERO] * C, [AfterHorizonCurve(curves[i], alpha[i], problem.channels[i].tail_efficiency)
                                      for i in carry], carry)
        m[:, -1] += tails.marginal(e[:, -1])
    acc = np.zeros(C)
    best = np.full(C, -np.inf)
    for t in range(T - 1, -1, -1):
        with np.errstate(invalid="ignore"):  # an infinite marginal (at zero spend) times α = 0
            acc = m[:, t] + np.where(alpha > 0, alpha * acc, 0.0)
        best = np.maximum(best, acc)
    # A curve that earns nothing has marginal 0 (its slope formula is ∞ at zero spend when s < 1).
    zero = np.array([is_zero_curve(c) for c in curves])
    return np.where(np.isfinite(best), best, np.where(zero, 0.0, np.inf))


def _binding(problem, lo, hi, spends, alloc, model: _Model) -> list[Binding]:
    """The limits the plan sits at, under the names of the LP's constraints, with their prices."""
    out: list[Binding] = []
    b = problem.budget
    tol = 0.011 + 1e-7 * b

    def price(name):
        pi = getattr(model.named.get(name), "pi", None)
        return None if pi is None else abs(float(pi))

    if alloc.reserve <= problem.reserve_min + tol:
        out.append(Binding("reserve_min", f"reserve held at its minimum {money(problem.reserve_min, problem.currency)} "
                           f"({pct(problem.reserve_min_share)} of budget)", price("budget_total")))
    if problem.reserve_max_share is not None and alloc.reserve >= problem.reserve_max_share * b - tol:
        out.append(Binding("reserve_max", f"reserve at its maximum {pct(problem.reserve_max_share)}"))
    for g in problem.group_names:
        spec = problem.group(g)
        s = float(sum(spends[i].sum() for i, c in enumerate(problem.channels) if c.group == g))
        if spec.min_share is not None and s <= spec.min_share * b + tol:
            out.append(Binding(f"group_min[{g}]", f"group {g} at its minimum {pct(spec.min_share)} ({money(s)})", price(f"group_min[{g}]")))
        if spec.max_share is not None and s >= spec.max_share * b - tol:
            out.append(Binding(f"group_max[{g}]", f"group {g} at its maximum {pct(spec.max_share)} ({money(s)})", price(f"group_max[{g}]")))
    p_lo, p_hi = problem.period_limits()
    col = spends.sum(axis=0)
    caps = _per_period(problem.pacing.cap, problem.T, _INF)
    for t, label in enumerate(problem.periods):
        if p_lo[t] > 0 and col[t] <= p_lo[t] + tol:
            out.append(Binding(f"period_min[{label}]", f"period {label} at its minimum {money(p_lo[t])}", price(f"period_min[{label}]")))
        if math.isfinite(p_hi[t]) and col[t] >= p_hi[t] - tol:
            name = f"{_period_max_name(caps[t], p_hi[t])}[{label}]"
            out.append(Binding(name, f"period {label} at its maximum {money(p_hi[t])}", price(name)))
    for i, ch in enumerate(problem.channels):
        s = float(spends[i].sum())
        if ch.min_total is not None and s <= ch.min_total + tol:
            out.append(Binding(f"min_total[{ch.name}]", f"{ch.name} at its minimum {money(ch.min_total)}", price(f"min_total[{ch.name}]")))
        if ch.max_total is not None and s >= ch.max_total - tol:
            out.append(Binding(f"max_total[{ch.name}]", f"{ch.name} at its maximum {money(ch.max_total)}", price(f"max_total[{ch.name}]")))
    frac, absolute = problem.change_limits()
    for i, ch in enumerate(problem.channels):
        for t in range(1, problem.T):
            d, prev = spends[i, t] - spends[i, t - 1], spends[i, t - 1]
            limit = min(frac[i] * prev if math.isfinite(frac[i]) else _INF, absolute[i])
            if math.isfinite(limit) and abs(d) >= limit - tol and (limit > 0 or prev > 0):
                out.append(Binding(f"max_change[{ch.name},{problem.periods[t]}]",
                                   f"{ch.name} changes by {money(d)} into {problem.periods[t]}, its limit"))
    if problem.roi_min is not None and alloc.spend > 0 and alloc.roi is not None and alloc.roi <= problem.roi_min * (1 + 1e-4):
        out.append(Binding("roi_min", f"overall ROI {alloc.roi:.3f} at the floor {problem.roi_min:g}", price("roi_min")))
    if problem.objective == "min_spend" and problem.target_return is not None:
        out.append(Binding("target_return", f"return reaches the target {money(problem.target_return)}", price("target_return")))
    return out


def _warnings(problem, spends, alloc) -> list[str]:
    out = []
    unspent = alloc.reserve - problem.reserve_min
    if unspent > 1.0 and problem.objective == "max_return":
        reasons = sorted({bd.name.split("[")[0] for bd in alloc.binding if bd.name != "reserve_min"})
        out.append(f"{money(unspent, problem.currency)} above the minimum reserve is left unspent and kept in reserve"
                   + (f" (limits that bind: {', '.join(reasons)})" if reasons else ""))
    if not problem.count_after_horizon and any(c.alpha > 0 for c in problem.channels) and alloc.after_horizon_return > 0:
        out.append(f"{money(alloc.after_horizon_return, problem.currency)} of return from this plan arrives after the horizon "
                   "(carryover) and is not counted; set count_after_horizon to count it")
    return out


# --------------------------------------------------------------------------------------------
# Diagnosis


def bound_conflicts(problem: PeriodProblem, lo: np.ndarray, hi: np.ndarray) -> list[str]:
    """Conflicts visible from the limits alone, in money; empty when none."""
    out = []
    b = problem.budget
    eps = 0.005 + 1e-9 * b
    available = b - problem.reserve_min
    for i, ch in enumerate(problem.channels):
        for t, label in enumerate(problem.periods):
            if lo[i, t] > hi[i, t] + eps:
                out.append(f"channel {ch.name} in {label}: its minimum {money(lo[i, t])} is above its maximum "
                           f"{money(hi[i, t])} (per-period, total, group and period limits) [bounds[{ch.name},{label}]]")
        if ch.min_total is not None and hi[i].sum() < ch.min_total - eps:
            out.append(f"channel {ch.name}: its minimum total {money(ch.min_total)} cannot be reached: its periods "
                       f"can take at most {money(hi[i].sum())} [min_total[{ch.name}]]")
        if ch.max_total is not None and lo[i].sum() > ch.max_total + eps:
            out.append(f"channel {ch.name}: its per-period minimums sum to {money(lo[i].sum())}, above its maximum "
                       f"total {money(ch.max_total)} [max_total[{ch.name}]]")
    if out:
        return out
    ch_min = np.array([max(lo[i].sum(), ch.min_total or 0.0) for i, ch in enumerate(problem.channels)])
    if ch_min.sum() > available + eps:
        out.append(f"channel minimums sum to {money(ch_min.sum())} but only {money(available)} is left after the "
                   f"{pct(problem.reserve_min_share)} reserve ({money(problem.reserve_min)}) [min_total, reserve_min]")
    p_lo, p_hi = problem.period_limits()
    caps = _per_period(problem.pacing.cap, problem.T, _INF)
    col_min = lo.sum(axis=0)
    for t, label in enumerate(problem.periods):
        if p_lo[t] > p_hi[t] + eps:
            out.append(f"period {label}: its minimum {money(p_lo[t])} is above its maximum {money(p_hi[t])} "
                       f"[period_min[{label}], {_period_max_name(caps[t], p_hi[t])}[{label}]]")
        elif col_min[t] > p_hi[t] + eps:
            out.append(f"period {label}: channel minimums need {money(col_min[t])} but the period may spend at most "
                       f"{money(p_hi[t])} (cap or max share) [{_period_max_name(caps[t], p_hi[t])}[{label}]]")
        elif hi[:, t].sum() < p_lo[t] - eps:
            out.append(f"period {label}: its minimum {money(p_lo[t])} cannot be reached: its channels can take at most "
                       f"{money(hi[:, t].sum())} [period_min[{label}]]")
    if p_lo.sum() > available + eps:
        out.append(f"per-period minimums sum to {money(p_lo.sum())} but only {money(available)} is left after the "
                   f"{pct(problem.reserve_min_share)} reserve [period_min, reserve_min]")
    if problem.reserve_max_share is not None:
        needed = b - problem.reserve_max_share * b
        room = min(float(np.minimum(p_hi, hi.sum(axis=0)).sum()), float(sum(min(hi[i].sum(), c.max_total if c.max_total is not None else _INF) for i, c in enumerate(problem.channels))))
        if room < needed - eps:
            out.append(f"at most {money(room)} can be spent (period caps and channel maximums) but at least {money(needed)} "
                       f"must be, because the reserve may hold at most {pct(problem.reserve_max_share)} [reserve_max]")
    group_min_total = 0.0
    for g in problem.group_names:
        spec = problem.group(g)
        mask = np.array([c.group == g for c in problem.channels])
        g_lo, g_hi = float(ch_min[mask].sum()), float(hi[mask].sum())
        if spec.max_share is not None and g_lo > spec.max_share * b + eps:
            out.append(f"group {g}: its channel minimums sum to {money(g_lo)}, above the group maximum "
                       f"{pct(spec.max_share)} ({money(spec.max_share * b)}) [group_max[{g}]]")
        if spec.min_share is not None:
            group_min_total += spec.min_share * b
            if g_hi < spec.min_share * b - eps:
                out.append(f"group {g}: its minimum {pct(spec.min_share)} ({money(spec.min_share * b)}) cannot be reached: "
                           f"its channels can take at most {money(g_hi)} [group_min[{g}]]")
    if group_min_total > available + eps:
        out.append(f"group minimums sum to {money(group_min_total)} but only {money(available)} is left after the "
                   f"{pct(problem.reserve_min_share)} reserve [group_min, reserve_min]")
    return out


def explain(problem: PeriodProblem, L: _Layout, grid, carry_base: float, status: str) -> list[str]:
    """Why the period LP has no solution: return floors first, then an elastic model."""
    if status == "unbounded":
        return ["the model is unbounded: a channel curve grows without limit and nothing caps its spend"]
    out: list[str] = []

    def solve(**kw):
        model = _model(problem, L, carry_base, **kw)
        rnd = _hypograph(model, L.pair_e, grid)
        # Small diagnostic LPs: dual simplex, whose vertex solutions name one limit of a tie.
        st, sol, *_ = _solve_model(model, L.pair_e, rnd, options={"solver": "simplex", "presolve": "off"})
        return model, rnd, st, sol

    def incremental(rnd, sol):
        return float(rnd.interpolant(np.clip(sol[L.pair_e], L.pair_lo, L.pair_hi)).sum()) - carry_base

    _, rnd, st, sol = solve(objective=Objective(pulp.LpMaximize, 1.0, 0.0), with_floors=False)
    if st == "optimal":
        best_return = incremental(rnd, sol)
        spend = float(sol[L.x].sum())
        if problem.roi_min is not None:
            # Best ROI by Dinkelbach: maximise Σy − ρΣx, update ρ = Σy/Σx until it stops rising.
            rho = best_return / spend if spend > 0 else None
            spend_at = spend
            for _ in range(30):
                if rho is None:
                    break
                _, rnd2, st2, s2 = solve(objective=Objective(pulp.LpMaximize, 1.0, -rho), with_floors=False)
                if st2 != "optimal":
                    break
                sx, sy = float(s2[L.x].sum()), incremental(rnd2, s2)
                if sx <= 0 or sy / sx <= rho * (1 + 1e-9):
                    break
                rho, spend_at = sy / sx, sx
            if rho is None or rho < problem.roi_min:
                out.append(f"overall ROI ≥ {problem.roi_min:g} is unreachable: the best ROI the other constraints allow is "
                           f"{(rho or 0.0):.2f} (spending {money(spend_at)}) [roi_min]")
        if problem.objective == "min_spend" and problem.target_return is not None and best_return < problem.target_return:
            out.append(f"target return {money(problem.target_return)} is unreachable: the most the constraints allow is "
                       f"{money(best_return)} [target_return]")
        if out:
            return out
    model, _, st, sol = solve(elastic=True)
    if st != "optimal":
        return [f"the constraints conflict (the elastic model is {st})"]
    for key, (var, name, side) in model.slacks.items():
        v = float(var.varValue or 0.0)
        if v > 0.005 + 1e-9 * problem.budget:
            what = "ROI" if name == "roi_min" else "money"
            direction = "its minimum" if side == "lo" else "its maximum"
            out.append(f"{name} must give way by {money(v)} ({what}, {direction}) for the rest to hold")
    return out or ["the constraints conflict (the solver found no plan, and no single limit explains it)"]
