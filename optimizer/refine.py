"""The refinement: breakpoints, where to put them, and when the LP is exact enough.

The LPs are inner (secant) approximations of the curves on breakpoints: every plan they give is
feasible on the true curves and earns at least the LP's value. Accuracy comes from putting
breakpoints where the optimum is: a first target from a root search on the common marginal
return (:func:`first_targets`), then a window fine at each target and widening geometrically
away from it, moved each round to where the LP's prices say the optimum is.

One loop for every plan (:func:`optimizer.solve.period_loop`; a single-horizon plan is a plan of
one period) and one stopping rule: the duality bound (:func:`duality_gap`), the LP's prices
applied to the true curves, certifies the plan within ``tol`` of the true optimum
(``DEFAULT_TOL`` for one horizon, ``PERIOD_TOL`` period by period). It places the same windows
for all (channel, period) pairs at once with numpy (:func:`pair_grid`, :func:`pair_spacing`).
A model solved without prices (exact mode's MILP; CBC when HiGHS is missing) stops on the model
error next to the solution instead (:func:`pair_errors`).

The first targets put most plans within tolerance in one or two LPs; the windows are moved
to where the LP's implied marginal returns say the optimum is, and the model is kept fine where
each pair is now and where its last window was (with carryover the prices of pairs that other
decisions pin are not unique and may swing between rounds).
"""

from __future__ import annotations

import math

import numpy as np

from optimizer.build import Round
from optimizer.highs import segment_prices
from optimizer.periods import Family, PeriodProblem

#: Relative gap (certified by the duality bound) at which a single-horizon plan's refinement stops:
#: tighter than period plans' (it costs no extra LP on the benchmarks), so that a plan at a
#: return floor sits within 1e-6 of it, as the one-horizon planner's plans always have.
DEFAULT_TOL = 5e-6
#: The same for period plans: the bound is an upper bound of the true gap, so it can sit this
#: close to the 1e-4 (0.01%) promise (one horizon: ``DEFAULT_TOL``).
PERIOD_TOL = 5e-5
#: Coarse breakpoints (shares of each pair's interval), and the dense ones a return floor may
#: need: the LP understates each curve, least where its breakpoints are dense, and a plan at an
#: ROI floor spends where returns are steep (low spend).
PAIR_COARSE = np.array([0.0, 0.1, 0.35, 1.0])
DENSE_COARSE = np.array([0.0, 1e-3, 1e-2, 0.04, 0.1, 0.2, 0.35, 0.55, 0.8, 1.0])
#: Window spacing grows by this factor per step away from the target, and the coarse points
#: outside the window (shares of each pair's interval) are few: the LP's size is the number
#: of segments, and the duality bound only needs a fine point where the prices put each
#: optimum (measured on benchmarks/periods.py).
WIDEN = 16.0


def first_targets(problem: PeriodProblem, pieces, family) -> np.ndarray:
    """Where each channel's optimum would be if only the budget and the bounds counted.

    A root search on the common marginal return λ (each channel spends where its marginal
    equals λ, clipped to its interval). Group limits, ROI floors and other couplings move the optimum;
    the LP's own prices correct for them in the next rounds.
    """
    lo = np.array([p.start for p in pieces])
    hi = np.array([p.hi for p in pieces])
    available = problem.budget - problem.reserve_min

    def spend_at(lam: float, iterations: int = 26) -> np.ndarray:
        return family.spend_at_marginal(lam, lo, hi, iterations)

    if problem.objective == "max_profit":
        x = spend_at(1.0 / float(problem.margin))
        if x.sum() <= available:
            return x
    # The excesses are taken in logs: spend and return fall roughly as a power of λ, so they
    # are nearly straight lines in log λ, which the root search below needs few steps for.
    if problem.objective == "min_spend" and problem.target_return is not None:
        def excess(lam):  # > 0 while spending down to marginal λ still beats the target
            eps = 1e-9 * max(abs(problem.target_return), 1.0)
            got = float(family.response(spend_at(lam)).sum())
            return math.log(max(got, 0.0) + eps) - math.log(max(problem.target_return, 0.0) + eps)
    else:
        def excess(lam):  # > 0 while spending down to marginal λ costs more than is available
            eps = 1e-9 * max(abs(available), 1.0)
            return math.log(float(spend_at(lam).sum()) + eps) - math.log(max(available, 0.0) + eps)
    top = family.marginal(np.maximum(lo, 1e-9 * np.maximum(hi, 1.0)))
    top = top[np.isfinite(top) & (top > 0)]
    if top.size == 0:
        return lo
    a, b = np.log(1e-12 * float(top.min())), np.log(float(top.max())) + 1.0
    flip = problem.objective == "min_spend"
    # Both excesses fall as log λ rises: regula falsi with the Illinois fix (a few evaluations
    # where bisection needs 26), bisection steps whenever it stalls; λ to ~1e-7 relative.
    fa, fb = excess(np.exp(a)), excess(np.exp(b))
    if fa <= 0:  # even the lowest λ fits: every pair at its top
        b, fb = a, fa
    elif fb > 0:  # even the highest λ does not: every pair at its bottom
        a, fa = b, fb
    scale = 1e-9
    kept = 0  # +1 / −1: a / b moved last time (Illinois: halve the end kept twice)
    for _ in range(60):
        if b - a <= 1e-7:
            break
        mid = (a * fb - b * fa) / (fb - fa) if fa != fb else 0.5 * (a + b)
        if not a < mid < b:
            mid = 0.5 * (a + b)
        fm = excess(np.exp(mid))
        if fm > 0:
            a, fa = mid, fm
            fb = fb / 2 if kept == 1 else fb
            kept = 1
        else:
            b, fb = mid, fm
            fa = fa / 2 if kept == -1 else fa
            kept = -1
        if abs(fm) <= scale:
            a = b = mid
            break
    # max_return: the smallest λ whose spend fits (b); min_spend: the largest λ whose return
    # reaches the target (a).
    return spend_at(np.exp(a if flip else b), 80)


def dense_grid(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """:data:`DENSE_COARSE` over every pair's interval (pairs × points), for :func:`pair_grid`'s ``extra``."""
    return lo[:, None] + (hi - lo)[:, None] * DENSE_COARSE[None, :]


def pair_grid(lo: np.ndarray, hi: np.ndarray, target: np.ndarray | None, h: np.ndarray | None, extra: np.ndarray | None):
    """Sorted distinct breakpoints per pair, flattened: (points, owner).

    Coarse points over [lo, hi] (:data:`PAIR_COARSE`), plus, when ``target`` is given, a window
    around it: spacing ``h`` next to it, widening ×:data:`WIDEN` per step away from it; coarse
    points inside the window are dropped.
    """
    n = lo.size
    span = hi - lo
    cols = [lo[:, None] + span[:, None] * PAIR_COARSE[None, :]]
    if target is not None:
        target = np.clip(target, lo, hi)
        steps = np.concatenate([[0.0, 1.0], WIDEN ** np.arange(1, 21)])
        k = np.clip(np.ceil(np.log(np.maximum(span / (8 * h), 1.0)) / np.log(WIDEN)), 0, 20).astype(int)
        reach = h * WIDEN ** k
        s = h[:, None] * steps[None, :]
        s = np.where(steps[None, :] <= WIDEN ** k[:, None], s, np.nan)
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


def pair_spacing(family: Family, lo, hi, target, allowed: float) -> np.ndarray:
    """Window spacing h next to ``target``: chord error h²|r''|/8 a small share of ``allowed``."""
    target = np.clip(target, lo, hi)
    eps = np.maximum(1e-6 * np.maximum(target, 1.0), 1e-9)
    curvature = np.abs(family.marginal(np.maximum(target - eps, 0.0)) - family.marginal(target + eps)) / (2 * eps)
    per_pair = allowed / (2.0 * max(family.n, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.sqrt(8.0 * per_pair / np.maximum(curvature, 1e-300))
    return np.clip(np.nan_to_num(h, nan=0.0, posinf=0.0), 1e-9 * np.maximum(hi, 1.0), np.maximum((hi - lo) / 16.0, 1e-12))


def pair_errors(family: Family, P: np.ndarray, z: np.ndarray) -> np.ndarray:
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


def implied_marginals(rnd: Round, family: Family, z: np.ndarray):
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


def duality_gap(rnd: Round, family: Family, lo, hi, kappa: float, pi: np.ndarray) -> float:
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
