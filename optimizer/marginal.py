"""The plan's marginal ROI and the break-even budget: what the next unit of money returns.

A channel's marginal ROI is its curve's slope at its spend (:func:`marginal_roi`); the plan's
is the common slope of the channels free to move (:func:`plan_marginal_roi`). When that falls
below 1 the last money spent loses, and :func:`break_even_budget` says about where the budget
would stop losing (:func:`below_break_even` words it for the plan's warnings).
"""

from __future__ import annotations

import math

import numpy as np

from models.curves import CurveSet
from optimizer.periods import ZERO_CURVE, AfterHorizonCurve, Family, PeriodProblem
from optimizer.problem import Problem, channel_bounds
from optimizer.result import Allocation, money, unit_name


def _finite(v: float) -> float:
    return v if math.isfinite(v) else float("inf")


def marginal_roi(curve, x: float) -> float:
    """The return of the next unit of money at spend ``x``: 0 on a curve that is identically 0
    (no detectable effect: a Hill curve with β = 0 has an infinite slope formula at 0 but earns
    nothing), ∞ only where a curve that earns something rises vertically (zero spend, s < 1)."""
    m = float(curve.marginal(x))
    if not math.isfinite(m) and is_zero_curve(curve):
        return 0.0
    return _finite(m)


def is_zero_curve(curve) -> bool:
    """True when the curve returns nothing at any spend."""
    probe = np.array([1.0, 1e3, 1e6, 1e9, 1e12, 1e15])
    return not np.any(np.asarray(curve.response(probe), dtype=float) > 0)


def plan_marginal_roi(problem: Problem, bounds, spends: np.ndarray) -> float | None:
    """The return of the plan's last unit of money: the common marginal ROI of the channels free
    to move (strictly inside their own bounds, in a group not at its limit).

    At a kink (a tabulated curve's knot) a channel's marginal is an interval from its right to
    its left derivative; the plan's marginal lies in every free channel's interval, so it is the
    largest right derivative. When no channel is free (every one at a limit, the rest of the
    money in reserve), it is the lowest return of the last cent among the channels held at
    their upper limit. Channels whose curve earns nothing are left out. None when every channel
    sits at its minimum.
    """
    b = problem.budget
    tol = 0.011 + 1e-7 * b
    at_limit = set()
    for g in problem.group_names:
        spec = problem.group(g)
        s = float(sum(x for c, x in zip(problem.channels, spends) if c.group == g))
        if (spec.min_share is not None and s <= spec.min_share * b + tol) or (
                spec.max_share is not None and s >= spec.max_share * b - tol):
            at_limit.add(g)
    # A channel that earns nothing is never where the plan's marginal is set (money it holds
    # when the reserve is above its minimum is a tie the LP may break either way).
    live = [(ch, x, lo, hi) for ch, x, (lo, hi) in zip(problem.channels, spends, bounds) if not is_zero_curve(ch.curve)]
    free = [marginal_roi(ch.curve, x) for ch, x, lo, hi in live
            if lo.value + tol < x < hi.value - tol and ch.group not in at_limit]
    if free:
        return max(free)
    capped = [marginal_roi(ch.curve, x - 0.01) for ch, x, lo, hi in live
              if x >= hi.value - tol and x > lo.value + tol]
    return min(capped) if capped else None


def spend_is_set_by_limits(problem: Problem) -> bool:
    """Whether the limits alone set how much is spent at this budget, whatever the curves' marginal
    returns: every channel locked, group shares that add up to the budget less the reserve, or a
    100% reserve. The spend is then the same for a threshold near 0 and a huge one, and no
    marginal ROI (break-even, a floor) picks a budget."""
    tol = 0.01 + 1e-9 * float(problem.budget)
    return abs(_spend_at(problem, 1e-12) - _spend_at(problem, 1e12)) <= tol


def _spend_at(problem: Problem, mroi: float) -> float:
    """Total spend of the plan at ``problem``'s budget whose free channels have marginal return
    ``mroi``: each channel where its marginal return is ``mroi`` (S-curves: on their concave
    envelope) clipped to its bounds, then each group's total clipped to its limits (a group
    held at its minimum or maximum share spends exactly that, whatever its channels' marginals)."""
    ends = [channel_bounds(problem, c) for c in problem.channels]
    lo = np.array([a.value for a, _ in ends])
    hi = np.maximum(np.array([b.value for _, b in ends]), lo)
    x = CurveSet([c.curve.envelope() for c in problem.channels]).spend_at_marginal(mroi, lo, hi, 80)
    groups = np.array([c.group for c in problem.channels])
    total = 0.0
    for g in problem.group_names:
        mask = groups == g
        spec = problem.group(g)
        s = float(x[mask].sum())
        if spec.min_share is not None:
            s = max(s, spec.min_share * problem.budget)
        if spec.max_share is not None:
            s = min(s, spec.max_share * problem.budget)
        total += min(max(s, float(lo[mask].sum())), float(hi[mask].sum()))
    return total


def break_even_budget(problem: Problem, mroi: float = 1.0, *, problem_at=None) -> float:
    """About the budget at which the plan's marginal ROI falls to ``mroi`` (1: break-even).

    For concave curves (S-curves: their concave envelope) the plan's common marginal return
    λ(B) falls as the budget B grows. At λ = ``mroi`` each channel spends where its marginal
    return is ``mroi``, clipped to its bounds at that budget, each group's total clipped to its
    share limits (:func:`_spend_at`), and the budget is that spend plus the minimum reserve.
    Share limits move with the budget, so B is the root of ``B − reserve_min(B) − spend(B)``,
    bracketed and then found by regula falsi with the Illinois fix (a handful of evaluations where
    plain bisection needs thirty or more; bisection steps whenever it stalls), to a cent or 1e-9
    of B. A floor on overall ROI is left out, hence "about". Returns a cent (0.01) when no channel
    returns ``mroi`` even on its first unit of money.

    ``problem_at(budget)`` gives the problem at another budget (default ``problem.with_budget``),
    e.g. one whose current plan, and so its change limits, scales with the budget.
    """
    at = problem_at or problem.with_budget

    def room(budget: float) -> float:  # ≥ 0 once spending down to marginal `mroi` fits the budget
        p = at(budget)
        return (budget - p.reserve_min) - _spend_at(p, mroi)

    a, fa = 0.0, None  # room(a) < 0 (at a = 0 unknown: a budget of 0 spends nothing, so it proves nothing)
    b = float(problem.budget)
    fb = room(b)
    while fb < 0 and b < 1e18:  # the plan's marginal is still above mroi: look higher
        a, fa = b, fb
        b = 2.0 * b
        fb = room(b)
    if fa is None and b > 0.01 and room(0.01) >= 0:
        # Nothing is spent at marginal `mroi`: the root is within a cent of 0, which halving
        # down from the budget would take some twenty evaluations to find.
        return 0.01
    kept = 0  # +1 / −1: b / a moved last time (Illinois: halve the weight of the end kept twice)
    for _ in range(100):
        if b - a <= max(0.01, 1e-9 * b):
            break
        mid = b - fb * (b - a) / (fb - fa) if fa is not None and fb != fa else 0.5 * (a + b)
        if not a < mid < b:
            mid = 0.5 * (a + b)
        fm = room(mid)
        if fm >= 0:
            b, fb = mid, fm
            if kept == 1 and fa is not None:
                fa /= 2
            kept = 1
        else:
            a, fa = mid, fm
            if kept == -1:
                fb /= 2
            kept = -1
    return b


def below_break_even(problem: Problem, bounds, spends: np.ndarray, alloc: Allocation) -> str | None:
    """A plan maximising return whose last unit of money returns less than it costs: say so, how
    much of the spend loses money, and about where break-even is (sets ``alloc.marginal_roi`` and
    ``alloc.break_even_budget``). A return in KPI units that are not money
    (``problem.return_in_money`` False) has no break-even: the warning says what would decide it."""
    lam = plan_marginal_roi(problem, bounds, spends)
    alloc.marginal_roi = lam
    if problem.objective != "max_return" or lam is None:
        return None
    cc = problem.currency
    if not problem.return_in_money:  # KPI units: no break-even without a KPI unit's value
        return (f"at this budget the last {unit_name(cc)} returns {lam:.3g} KPI units, not money (see the "
                f"notes): whether that is worth a {unit_name(cc)} depends on what a KPI unit is "
                f"worth; give it as `margin` with objective = \"max_profit\", or set a `marginal_roi_min` in KPI units "
                f"per {unit_name(cc)}")
    if round(lam, 2) >= 1.0:  # as it prints
        return None
    be = break_even_budget(problem)
    alloc.break_even_budget = round(be, 2)
    head = f"at this budget the last {unit_name(cc)} returns {lam:.2f} (marginal ROI < 1)"
    if be <= 0.01:
        return f"{head}: no channel returns its cost even on its first {unit_name(cc)}"
    extra = float(spends.sum()) - _spend_at(problem.with_budget(be), 1.0)
    about = money(float(f"{be:.3g}"), cc)
    if extra < 0.5:
        return f"{head}; break-even (marginal ROI 1) is at a budget of about {about}"
    return f"{head}: the last {money(extra, cc)} spent loses money; break-even (marginal ROI 1) is at a budget of about {about}"


def period_marginal_roi(problem: PeriodProblem, e: np.ndarray, curves) -> np.ndarray:
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
        tails = Family([ZERO_CURVE] * C, [AfterHorizonCurve(curves[i], alpha[i], problem.channels[i].tail_efficiency)
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
