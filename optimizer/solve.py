"""Solve a :class:`~optimizer.problem.Problem`: refine the LP until it is exact enough, then report.

The loop: build the hypograph LP on a coarse set of breakpoints, solve it with HiGHS, then add
breakpoints around each channel's solution (a shrinking local window) and solve again, until
the interpolation error next to every solution is below ``tol`` of the total return. Because
the LP is an inner approximation, every iterate is feasible on the true curves and the true
return of the plan is at least the LP's value.

Spends are then rounded to the cent so that spend + reserve equals the budget exactly.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from models.curves import CurveSet
from optimizer import diagnose
from optimizer.build import ConvexPart, Objective, Pieces, build_model
from optimizer.cents import to_cents
from optimizer.highs import solve_model
from optimizer.problem import Problem, broken_limits, channel_bounds
from optimizer.report import report_plan, summarise_current
from optimizer.result import Allocation

logger = logging.getLogger(__name__)

#: Default relative accuracy of the piecewise-linear model near the solution.
DEFAULT_TOL = 2e-5
#: Breakpoints on each channel's convex part in exact mode.
EXACT_CONVEX_SEGMENTS = 96
_COARSE = np.array([0.0, 1e-3, 1e-2, 0.04, 0.1, 0.2, 0.35, 0.55, 0.8, 1.0])


def initial_pieces(problem: Problem, bounds, exact: bool) -> list[Pieces]:
    """Coarse breakpoints for every channel (and the convex grid of S-curves in exact mode)."""
    pieces = []
    for ch, (lo, hi) in zip(problem.channels, bounds):
        a, b = lo.value, max(hi.value, lo.value)
        curve = ch.curve if (exact or ch.curve.is_concave) else ch.curve.envelope()
        convex = None
        if exact and not ch.curve.is_concave:
            infl = min(max(ch.curve.concave_from, a), b)
            if infl > a:
                # Denser near the tangent point, where S-curve optima tend to sit.
                u = np.unique(np.concatenate([np.linspace(0, 1, EXACT_CONVEX_SEGMENTS + 1)]))
                grid = a + (infl - a) * u
                convex = ConvexPart(grid=grid, values=ch.curve.response(grid))
        piece = Pieces(lo=a, hi=b, curve=curve, breakpoints=np.array([a]), convex=convex)
        piece.breakpoints = _coarse_breakpoints(piece, ch.current)
        pieces.append(piece)
    return pieces


def _coarse_breakpoints(piece: Pieces, current: float) -> np.ndarray:
    a, b = piece.start, piece.hi
    if b - a <= 1e-9 * max(1.0, b):
        return np.array([a])
    pts = [a + (b - a) * _COARSE]
    knots = piece.curve.knots()
    if knots is not None:
        pts.append(knots[(knots > a) & (knots < b)])
    knee = getattr(piece.curve, "knee", None)
    if knee is not None and a < knee < b:
        pts.append([knee])
    if a < current < b:
        # The current plan sits exactly on the model, so the plan found is never worse than it.
        pts.append([current])
    return _distinct(np.concatenate([np.atleast_1d(np.asarray(p, float)) for p in pts]), a, b)


def _distinct(points: np.ndarray, a: float, b: float) -> np.ndarray:
    """Sorted points in [a, b] at least a hair apart: a near-duplicate would make a segment
    whose slope is rounding noise."""
    pts = np.unique(np.clip(points, a, b))
    gap = 1e-9 * max(abs(b), 1.0)
    keep = np.concatenate([[True], np.diff(pts) > gap])
    pts = pts[keep]
    if pts.size > 1 and pts[-1] < b:
        pts[-1] = b if b - pts[-1] <= gap else pts[-1]
    return pts


def _local_errors(pieces: list[Pieces], xs: np.ndarray) -> np.ndarray:
    """Per channel, the largest midpoint gap between curve and interpolant next to its spend.

    The midpoint gap is the exact chord error for a quadratic, and a close one for the smooth
    curves here: the error of the LP's model where the solution sits.
    """
    errs = np.zeros(len(pieces))
    for i, (piece, x) in enumerate(zip(pieces, xs)):
        p = piece.breakpoints
        if p.size < 2 or piece.curve.knots() is not None:
            continue
        j = int(np.clip(np.searchsorted(p, x, side="right") - 1, 0, p.size - 2))
        # The segment holding x; at a breakpoint, the segments on both sides of it.
        at_knot = abs(x - p[j]) <= 1e-9 * max(abs(x), 1.0)
        seg = np.arange(max(j - 1, 0) if at_knot else j, j + 1)
        k = seg.size
        r = piece.curve.response(np.concatenate([p[seg], p[seg + 1], 0.5 * (p[seg] + p[seg + 1])]))
        errs[i] = max(float(np.max(r[2 * k :] - 0.5 * (r[:k] + r[k : 2 * k]))), 0.0)
    return errs


def _chord_slopes(pieces: list[Pieces], xs: np.ndarray) -> np.ndarray:
    """Slope of the segment each spend sits on (used when the solver gives no duals)."""
    out = np.zeros(len(pieces))
    for i, (piece, x) in enumerate(zip(pieces, xs)):
        p = piece.breakpoints
        if p.size < 2:
            out[i] = float(piece.curve.marginal(x))
            continue
        j = int(np.clip(np.searchsorted(p, x, side="right") - 1, 0, p.size - 2))
        r = piece.curve.response(p[j : j + 2])
        out[i] = float((r[1] - r[0]) / (p[j + 1] - p[j]))
    return out


def _zoom(pieces: list[Pieces], coarse, target: np.ndarray, allowed: float) -> None:
    """New breakpoints: the coarse grid plus a window around where each channel's optimum should be.

    The window is fine at ``target`` (spacing h from the curvature there, so that the chord
    error h²|r''|/8 is a small share of ``allowed``) and widens geometrically away from it, so a
    target that is somewhat off still lands on an accurate part of the model.
    """
    family = CurveSet([p.curve for p in pieces])
    starts = np.array([p.start for p in pieces])
    his = np.array([p.hi for p in pieces])
    target = np.clip(target, starts, his)
    eps = np.maximum(1e-6 * np.maximum(target, 1.0), 1e-9)
    slope_up = family.marginal(target + eps)
    slope_down = family.marginal(np.maximum(target - eps, 0.0))
    curvature = np.abs(slope_down - slope_up) / (2 * eps)
    per_channel = allowed / (4.0 * max(len(pieces), 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.sqrt(8.0 * per_channel / np.maximum(curvature, 1e-300))
    span = his - starts
    h = np.clip(np.nan_to_num(h, nan=0.0, posinf=0.0), 1e-9 * np.maximum(his, 1.0), np.maximum(span / 16.0, 1e-12))
    for i, piece in enumerate(pieces):
        if span[i] <= 0 or piece.curve.knots() is not None:
            continue
        k = int(np.clip(np.ceil(np.log(max(span[i] / (8 * h[i]), 1.0)) / np.log(4.0)), 0, 30))
        steps = h[i] * np.concatenate([[0.0, 1.0, 2.0], 4.0 ** np.arange(1, k + 1)])
        window = np.concatenate([target[i] + steps, target[i] - steps])
        # Coarse points inside the window add rows and no accuracy.
        outside = coarse[i][np.abs(coarse[i] - target[i]) > steps[-1]]
        piece.breakpoints = _distinct(np.concatenate([outside, window, coarse[i][[0, -1]]]), starts[i], his[i])


def _first_targets(problem: Problem, pieces: list[Pieces], family: CurveSet) -> np.ndarray:
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


def optimize(
    problem: Problem,
    *,
    exact: bool = False,
    tol: float = DEFAULT_TOL,
    max_rounds: int = 14,
    lp_path: str | None = None,
) -> Allocation:
    """Find the allocation with the best objective under every constraint of ``problem``.

    Parameters
    ----------
    problem
        A validated problem.
    exact
        Solve S-shaped curves exactly (MILP with binary segments on their convex part) instead
        of on their concave envelope.
    tol
        Relative accuracy of the piecewise-linear model next to the solution.
    max_rounds
        Refinement rounds at most.
    lp_path
        Write the last LP/MILP to this file (debugging).

    Returns
    -------
    Allocation
        ``status == "infeasible"`` with a diagnosis when the constraints conflict.

    Raises
    ------
    SolverError
        When the solver fails in a way that is not infeasibility.
    """
    t_start = time.perf_counter()
    bounds = [channel_bounds(problem, ch) for ch in problem.channels]
    mode = "exact" if exact else ("concave" if all(c.curve.is_concave for c in problem.channels) else "envelope")
    base = Allocation(
        scenario=problem.name, status="infeasible", objective=problem.objective,
        budget=problem.budget, currency=problem.currency, mode=mode,
    )
    conflicts = diagnose.bound_conflicts(problem, bounds)
    if conflicts:
        base.diagnosis = conflicts
        base.current = summarise_current(problem, bounds)
        return base

    pieces = initial_pieces(problem, bounds, exact)
    coarse = [p.breakpoints.copy() for p in pieces]
    family = CurveSet([p.curve for p in pieces])
    starts = np.array([p.start for p in pieces])
    his = np.array([p.hi for p in pieces])
    first = _first_targets(problem, pieces, family)
    _zoom(pieces, coarse, first, tol * max(float(family.response(first).sum()), 1e-12))
    objective = Objective.for_problem(problem)
    solver_seconds, solver_name, rounds = 0.0, "", 0
    model = None
    xs = None
    for rounds in range(1, max_rounds + 1):
        model = build_model(problem, pieces, objective)
        status, secs, solver_name = solve_model(model, lp_path if rounds == max_rounds else None, segments=True)
        solver_seconds += secs
        if status != "optimal":
            base.diagnosis = diagnose.explain(problem, pieces, status)
            base.solver_name, base.solver_seconds = solver_name, solver_seconds
            base.current = summarise_current(problem, bounds)
            return base
        xs = np.array([float(v.varValue or 0.0) for v in model.x])
        total = float(family.response(xs).sum())
        errs = _local_errors(pieces, xs)
        allowed = tol * max(abs(total), 1e-9 * problem.budget, 1e-12)
        logger.debug("round %d: model error %.3g (allowed %.3g)", rounds, errs.sum(), allowed)
        if errs.sum() <= allowed:
            break
        implied = model.implied_marginals()
        implied = np.where(np.isfinite(implied), implied, _chord_slopes(pieces, xs))
        _zoom(pieces, coarse, family.spend_at_marginal(implied, starts, his), allowed)
    if lp_path and rounds < max_rounds:
        model.rows.materialise(model.lp)
        model.lp.writeLP(lp_path)
    lp_value = float(sum(float(v.varValue or 0.0) for v in model.y))
    if mode == "envelope" and (problem.roi_min is not None or problem.objective == "min_spend"):
        spends = to_cents(problem, bounds, xs) / 100.0
        returns = np.array([float(c.curve.response(x)) for c, x in zip(problem.channels, spends)])
        broken = [v for v in broken_limits(problem, spends, returns) if "ROI" in v or "target" in v]
        if broken:
            # The envelope overstates S-curves, so a return floor met on it can fail on the
            # true curves: solve exactly instead, and say so.
            alloc = optimize(problem, exact=True, tol=tol, max_rounds=max_rounds, lp_path=lp_path)
            alloc.warnings.insert(
                0, f"on the S-curves' concave envelope the plan missed a return floor ({broken[0]}); "
                "solved exactly (MILP) instead"
            )
            return alloc
    alloc = report_plan(problem, bounds, pieces, model, xs, base)
    alloc.solver_name = solver_name
    alloc.solver_seconds = time.perf_counter() - t_start
    alloc.iterations = rounds
    alloc.lp_return = lp_value
    return alloc
