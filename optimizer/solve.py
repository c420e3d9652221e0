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
from optimizer.build import ConvexPart, Model, Objective, Pieces, build_model
from optimizer.cents import clamp_cent, to_cents
from optimizer.highs import solve_model
from optimizer.problem import Problem, channel_bounds
from optimizer.result import Allocation, Binding, ChannelResult, GroupResult, PlanSummary, money, pct, unit_name

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
        base.current = _summarise_current(problem, bounds)
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
            base.current = _summarise_current(problem, bounds)
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
        broken = [v for v in _plan_violations(problem, spends, returns) if "ROI" in v or "target" in v]
        if broken:
            # The envelope overstates S-curves, so a return floor met on it can fail on the
            # true curves: solve exactly instead, and say so.
            alloc = optimize(problem, exact=True, tol=tol, max_rounds=max_rounds, lp_path=lp_path)
            alloc.warnings.insert(
                0, f"on the S-curves' concave envelope the plan missed a return floor ({broken[0]}); "
                "solved exactly (MILP) instead"
            )
            return alloc
    alloc = _report(problem, bounds, pieces, model, xs, base)
    alloc.solver_name = solver_name
    alloc.solver_seconds = time.perf_counter() - t_start
    alloc.iterations = rounds
    alloc.lp_return = lp_value
    return alloc


# --------------------------------------------------------------------------------------------
# Reporting


def _plan_violations(problem: Problem, spends: np.ndarray, returns: np.ndarray) -> list[str]:
    """Which constraints a plan breaks (used for the current plan), excluding change limits."""
    out = []
    b = problem.budget
    cc = problem.currency
    tol = 0.005 + 1e-9 * b
    for ch, x in zip(problem.channels, spends):
        lo, hi = channel_bounds(problem, ch)
        # Limits defined relative to the current plan hold for it by definition.
        if x < lo.value - tol and not all(s.startswith(("locked", "max_change")) for s in lo.sources):
            out.append(f"{ch.name}: spend {money(x, cc)} is below its minimum {money(lo.value, cc)}")
        if x > hi.value + tol and not all(s.startswith(("locked", "max_change")) for s in hi.sources):
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
        out.append(f"return {money(ret, cc)} is below the target {money(problem.target_return, cc)}")
    return out


def _summarise_current(problem: Problem, bounds) -> PlanSummary:
    spends = np.array([c.current for c in problem.channels], dtype=float)
    returns = np.array([float(c.curve.response(c.current)) for c in problem.channels])
    spend, ret = float(spends.sum()), float(returns.sum())
    violations = _plan_violations(problem, spends, returns)
    return PlanSummary(
        spend=spend,
        reserve=clamp_cent(problem.budget - spend),
        expected_return=ret,
        roi=ret / spend if spend > 0 else None,
        feasible=not violations,
        violations=tuple(violations),
    )


def objective_value(problem: Problem, spend: float, ret: float) -> float:
    """The objective on true curves (bigger is better for every objective)."""
    if problem.objective == "max_profit":
        return float(problem.margin) * ret - spend
    if problem.objective == "min_spend":
        return -spend
    return ret


def _report(problem: Problem, bounds, pieces, model: Model, xs: np.ndarray, base: Allocation,
            guard_current: bool = True) -> Allocation:
    """Round ``xs`` to the cent and report it on the true curves (``guard_current``: fall back
    to a feasible current plan that scores better, which only an envelope plan can need)."""
    alloc = base
    alloc.status = "optimal"
    current = _summarise_current(problem, bounds)
    cents = to_cents(problem, bounds, xs)
    spends = cents / 100.0
    returns = np.array([float(c.curve.response(x)) for c, x in zip(problem.channels, spends)])
    cur_spends = np.array([c.current for c in problem.channels], dtype=float)
    if guard_current and current.feasible and objective_value(problem, float(spends.sum()), float(returns.sum())) < objective_value(
        problem, current.spend, current.expected_return
    ) - 1e-9 * max(1.0, abs(current.expected_return)):
        # Only possible on an S-curve's envelope: never hand back a plan worse than today's.
        alloc.warnings.append(
            "the envelope plan scored below the current plan on the true curves; keeping the "
            "current plan (run with --exact for the true optimum)"
        )
        cents = np.rint(cur_spends * 100).astype(np.int64)
        spends = cents / 100.0
        returns = np.array([float(c.curve.response(x)) for c, x in zip(problem.channels, spends)])
    budget_c = int(round(problem.budget * 100))
    reserve_c = budget_c - int(cents.sum())
    spend_total, ret_total = int(cents.sum()) / 100.0, float(returns.sum())
    b = problem.budget
    for ch, x, r in zip(problem.channels, spends, returns):
        alloc.channels.append(
            ChannelResult(
                channel=ch.name,
                group=ch.group,
                spend=float(x),
                share=float(x / b) if b else 0.0,
                current_spend=float(ch.current),
                change=float(x - ch.current),
                expected_return=float(r),
                roi=float(r / x) if x > 0 else None,
                marginal_roi=marginal_roi(ch.curve, x),
                label=ch.label,
            )
        )
    for g in problem.group_names:
        mask = [c.group == g for c in problem.channels]
        gs = float(sum(x for x, m in zip(spends, mask) if m))
        gc = float(sum(x for x, m in zip(cur_spends, mask) if m))
        alloc.groups.append(GroupResult(group=g, spend=round(gs, 2), share=gs / b if b else 0.0, current_spend=gc))
    alloc.spend = spend_total
    alloc.reserve = reserve_c / 100.0
    alloc.expected_return = ret_total
    alloc.roi = ret_total / spend_total if spend_total > 0 else None
    alloc.current = current
    if current.expected_return > 0:
        alloc.uplift = ret_total / current.expected_return - 1.0
    alloc.binding = _binding(problem, bounds, model, spends, alloc)
    alloc.warnings.extend(_warnings(problem, bounds, pieces, spends, alloc))
    return alloc


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


def _binding(problem: Problem, bounds, model: Model, spends: np.ndarray, alloc: Allocation) -> list[Binding]:
    out: list[Binding] = []
    b = problem.budget
    cc = problem.currency
    tol = 0.011 + 1e-7 * b

    def price(name):
        con = model.named.get(name)
        pi = getattr(con, "pi", None) if con is not None else None
        return None if pi is None else abs(float(pi))

    if alloc.reserve <= problem.reserve_min + tol:
        out.append(
            Binding("reserve_min", f"reserve held at its minimum {money(problem.reserve_min, cc)} "
                    f"({pct(problem.reserve_min_share)} of budget)", price("budget_total"))
        )
    if problem.reserve_max_share is not None and alloc.reserve >= problem.reserve_max_share * b - tol:
        out.append(Binding("reserve_max", f"reserve at its maximum {pct(problem.reserve_max_share)}"))
    for g in problem.group_names:
        spec = problem.group(g)
        s = sum(x for c, x in zip(problem.channels, spends) if c.group == g)
        if spec.min_share is not None and s <= spec.min_share * b + tol:
            out.append(Binding(f"group_min[{g}]", f"group {g} at its minimum {pct(spec.min_share)} ({money(s, cc)})", price(f"group_min[{g}]")))
        if spec.max_share is not None and s >= spec.max_share * b - tol:
            out.append(Binding(f"group_max[{g}]", f"group {g} at its maximum {pct(spec.max_share)} ({money(s, cc)})", price(f"group_max[{g}]")))
    if problem.roi_min is not None and alloc.spend > 0:
        roi = alloc.expected_return / alloc.spend
        if roi <= problem.roi_min * (1 + 1e-4):
            out.append(Binding("roi_min", f"overall ROI {roi:.3f} at the floor {problem.roi_min:g}", price("roi_min")))
    if problem.objective == "min_spend" and problem.target_return is not None:
        out.append(Binding("target_return", f"return reaches the target {money(problem.target_return, cc)}", price("target_return")))
    for ch, x, (lo, hi) in zip(problem.channels, spends, bounds):
        if lo.sources and x <= lo.value + tol:
            for s in lo.sources:
                out.append(Binding(s, f"{ch.name} at its minimum {money(lo.value, cc)}"))
        if hi.value > lo.value + tol or ch.locked:
            for s in hi.sources:
                if s != "budget_total" and x >= hi.value - tol and not (ch.locked and s in lo.sources):
                    out.append(Binding(s, f"{ch.name} at its maximum {money(hi.value, cc)}"))
    return out


def _warnings(problem: Problem, bounds, pieces, spends: np.ndarray, alloc: Allocation) -> list[str]:
    out = []
    cc = problem.currency
    for ch, piece, x in zip(problem.channels, pieces, spends):
        if not ch.curve.is_concave and piece.convex is None:
            env = float(piece.curve.response(x))
            true = float(ch.curve.response(x))
            if env - true > 1e-6 * max(1.0, env):
                out.append(
                    f"{ch.name} has an S-shaped curve; it was planned on its concave envelope, which "
                    f"overstates its return at {money(x, cc)} by {money(env - true, cc)} (run with --exact "
                    "for the true optimum)"
                )
        if ch.max_change is not None and ch.current == 0:
            out.append(f"{ch.name}: max_change is relative to a current spend of 0, so it stays at 0")
    unspent = alloc.reserve - problem.reserve_min
    if unspent > 1.0 and problem.objective == "max_return":
        reasons = sorted({bd.name.split("[")[0] for bd in alloc.binding if bd.name != "reserve_min"})
        out.append(
            f"{money(unspent, cc)} above the minimum reserve is left unspent and kept in reserve"
            + (f" (limits that bind: {', '.join(reasons)})" if reasons else "")
        )
    for bd in alloc.binding:
        if bd.name.startswith("extrapolation_cap["):
            out.append(f"{bd.detail}: capped at 1.5× the largest spend seen in history (extrapolation cap)")
    below = _below_break_even(problem, bounds, spends, alloc)
    if below:
        out.insert(0, below)
    return out


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


def break_even_budget(problem: Problem, mroi: float = 1.0) -> float:
    """About the budget at which the plan's marginal ROI falls to ``mroi`` (1: break-even).

    For concave curves (S-curves: their concave envelope) the plan's common marginal return
    λ(B) falls as the budget B grows. At λ = ``mroi`` each channel spends where its marginal
    return is ``mroi``, clipped to its bounds at that budget, each group's total clipped to its
    share limits (:func:`_spend_at`), and the budget is that spend plus the minimum reserve.
    Share limits move with the budget, so B is found by bisection on
    ``B − reserve_min(B) − spend(B)``. A floor on overall ROI is left out, hence "about".
    Returns 0 when no channel returns ``mroi`` even on its first unit of money.
    """
    def room(budget: float) -> float:  # ≥ 0 once spending down to marginal `mroi` fits the budget
        p = problem.with_budget(budget)
        return (budget - p.reserve_min) - _spend_at(p, mroi)

    a, b = 0.0, float(problem.budget)
    while room(b) < 0 and b < 1e18:  # the plan's marginal is still above mroi: look higher
        a, b = b, 2.0 * b
    for _ in range(100):
        mid = 0.5 * (a + b)
        if room(mid) >= 0:
            b = mid
        else:
            a = mid
        if b - a <= max(0.01, 1e-9 * b):
            break
    return b


def _below_break_even(problem: Problem, bounds, spends: np.ndarray, alloc: Allocation) -> str | None:
    """A plan maximising return whose last unit of money returns less than it costs: say so, how
    much of the spend loses money, and about where break-even is (sets ``alloc.marginal_roi`` and
    ``alloc.break_even_budget``)."""
    lam = plan_marginal_roi(problem, bounds, spends)
    alloc.marginal_roi = lam
    if problem.objective != "max_return" or lam is None or round(lam, 2) >= 1.0:  # as it prints
        return None
    cc = problem.currency
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
