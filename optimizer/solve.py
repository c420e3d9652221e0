"""Plan: the pipeline from a problem to an allocation, for one horizon and period by period.

A single-horizon plan is a plan of one period (:func:`optimizer.periods.one_period`), made by
the same loop (:func:`period_loop`); only exact mode's MILP on S-curves has its own
(:func:`_exact_loop`). Each planner reads top to bottom: bounds → coarse breakpoints and first targets
(:mod:`optimizer.refine`) → LP model (:mod:`optimizer.build`, :mod:`optimizer.period_model`) →
HiGHS (:mod:`optimizer.highs`) → refine until exact enough → round to the cent
(:mod:`optimizer.cents`) → report on the true curves (:mod:`optimizer.report`); an infeasible
problem is a result with a diagnosis (:mod:`optimizer.diagnose`).

Because the LP is an inner approximation, every iterate is feasible on the true curves and the
true return of the plan is at least the LP's value. Spends are then rounded to the cent so that
spend + reserve equals the budget exactly.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from models.curves import CurveSet, ResponseCurve
from optimizer import diagnose
from optimizer.build import FLOOR_MARGIN, Objective, Pieces, build_model
from optimizer.highs import solve_model
from optimizer.period_model import build_period_model, layout, segment_round, solve_period_model, write_lp
from optimizer.periods import InSpend, Interval, PeriodProblem, effective_spend, one_period
from optimizer.refine import (
    DEFAULT_TOL,
    PERIOD_TOL,
    channel_errors,
    chord_slopes,
    duality_gap,
    first_targets,
    implied_marginals,
    initial_pieces,
    pair_errors,
    pair_grid,
    pair_spacing,
    zoom,
)
from optimizer.problem import Problem, broken_limits, channel_bounds
from optimizer.report import plan_cents, empty_period_allocation, report_period_plan, report_plan, summarise_current, summarise_current_periods
from optimizer.result import Allocation, PeriodAllocation

logger = logging.getLogger(__name__)

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
        Stop once the duality bound shows the plan within this relative gap of the optimum (exact
        mode's MILP on S-curves, which has no prices: once the model error next to the solution
        is this small).
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

    if exact and not all(c.curve.is_concave for c in problem.channels):
        pieces, model, xs, rounds, solver_name, failed = _exact_loop(problem, bounds, tol, max_rounds, lp_path)
        if failed:
            base.diagnosis = diagnose.explain(problem, pieces, failed)
            base.solver_name = solver_name
            base.current = summarise_current(problem, bounds)
            return base
        lp_value = float(sum(float(v.varValue or 0.0) for v in model.y))
    else:
        pieces = [Pieces(lo=lo.value, hi=max(hi.value, lo.value), curve=c.curve if c.curve.is_concave else c.curve.envelope(),
                         breakpoints=np.array([lo.value])) for c, (lo, hi) in zip(problem.channels, bounds)]
        pp = one_period(problem, bounds)
        lo = np.array([[p.lo] for p in pieces])
        hi = np.array([[p.hi] for p in pieces])
        run = period_loop(pp, lo, hi, [p.curve for p in pieces], tol=tol, max_rounds=max_rounds, lp_path=lp_path,
                          floor_margin=FLOOR_MARGIN)
        if run.status != "optimal":
            base.diagnosis = diagnose.explain(problem, initial_pieces(problem, bounds, False), run.status)
            base.solver_name = run.solver_name
            base.current = summarise_current(problem, bounds)
            return base
        model, rounds, solver_name = run.model, run.rounds, run.solver_name
        xs = run.sol[run.L.x].ravel()
        lp_value = float(run.rnd.interpolant(np.clip(run.sol[run.L.pair_e], run.L.pair_lo, run.L.pair_hi)).sum())
    if mode == "envelope" and (problem.roi_min is not None or problem.objective == "min_spend"):
        spends = plan_cents(problem, bounds, xs) / 100.0
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


def _exact_loop(problem: Problem, bounds, tol: float, max_rounds: int, lp_path: str | None):
    """Exact mode: the MILP with binary segments on S-curves' convex parts. A MILP has no prices
    to certify with, so it is refined until the model error next to the solution is small."""
    pieces = initial_pieces(problem, bounds, True)
    coarse = [p.breakpoints.copy() for p in pieces]
    family = CurveSet([p.curve for p in pieces])
    starts = np.array([p.start for p in pieces])
    his = np.array([p.hi for p in pieces])
    first = first_targets(problem, pieces, family)
    zoom(pieces, coarse, first, tol * max(float(family.response(first).sum()), 1e-12))
    objective = Objective.for_problem(problem)
    solver_seconds, solver_name, rounds = 0.0, "", 0
    model = None
    xs = None
    for rounds in range(1, max_rounds + 1):
        model = build_model(problem, pieces, objective)
        status, secs, solver_name = solve_model(model, lp_path if rounds == max_rounds else None)
        solver_seconds += secs
        if status != "optimal":
            return pieces, model, None, rounds, solver_name, status
        xs = np.array([float(v.varValue or 0.0) for v in model.x])
        total = float(family.response(xs).sum())
        allowed = tol * max(abs(total), 1e-9 * problem.budget, 1e-12)
        gap, limit = float(channel_errors(pieces, xs).sum()), allowed
        logger.debug("round %d: gap %.3g (allowed %.3g)", rounds, gap, limit)
        if gap <= limit:
            break
        implied = model.implied_marginals()
        implied = np.where(np.isfinite(implied), implied, chord_slopes(pieces, xs))
        zoom(pieces, coarse, family.spend_at_marginal(implied, starts, his), allowed)
    if lp_path and rounds < max_rounds:
        model.rows.materialise(model.lp)
        model.lp.writeLP(lp_path)
    return pieces, model, xs, rounds, solver_name, None


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
    alloc = empty_period_allocation(problem, mode)
    lo, hi = problem.entry_bounds()
    conflicts = diagnose.period_bound_conflicts(problem, lo, hi)
    if conflicts:
        alloc.diagnosis = conflicts
        alloc.current = summarise_current_periods(problem)
        return alloc
    run = period_loop(problem, lo, hi, lp_curves, tol=tol, max_rounds=max_rounds, lp_path=lp_path,
                      floor_margin=floor_margin)
    if run.status != "optimal":
        alloc.diagnosis = diagnose.explain_periods(problem, run.L, run.grid, run.carry_base, run.status)
        alloc.solver_name = run.solver_name
        alloc.solver_seconds = time.perf_counter() - t_start
        alloc.current = summarise_current_periods(problem)
        return alloc
    L, sol, model, rnd, rounds, solver_name = run.L, run.sol, run.model, run.rnd, run.rounds, run.solver_name
    carry_base = run.carry_base
    alloc.gap_bound = run.gap_bound
    x = sol[L.x]
    alloc = report_period_plan(problem, alloc, lo, hi, x, curves, sol, model)
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


@dataclass
class PeriodRun:
    """The refinement loop's outcome: the last LP, its solution and the grid it was solved on."""

    status: str
    L: object
    sol: np.ndarray | None
    model: object
    rnd: object
    rounds: int
    solver_name: str
    carry_base: float
    grid: tuple
    gap_bound: float | None = None


def period_loop(problem: PeriodProblem, lo, hi, lp_curves, *, tol: float, max_rounds: int,
                lp_path: str | None, floor_margin: float) -> PeriodRun:
    """Refine breakpoints until the duality bound certifies the plan within ``tol`` (the one loop)."""
    L = layout(problem, lo, hi, lp_curves)
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
    heads = [Interval(a * f, z * f) for a, z, f in zip(L.pair_lo, L.pair_hi, keep)]
    first = first_targets(problem, heads, InSpend(family, keep)) / keep
    target = first
    allowed = tol * max(float(family.response(np.clip(first, L.pair_lo, L.pair_hi)).sum()), 1e-12)
    solver_seconds, rounds = 0.0, 0
    sol = None
    model = build_period_model(problem, L, carry_base, floor_margin=floor_margin)
    for rounds in range(1, max_rounds + 1):
        h = pair_spacing(family, L.pair_lo, L.pair_hi, target, allowed)
        pts, owner, P = pair_grid(L.pair_lo, L.pair_hi, target, h, extra)
        rnd = segment_round(problem, model, L, (pts, owner, family))
        status, sol, secs, solver_name = solve_period_model(model, L.pair_e, rnd, lp_path if rounds == max_rounds else None)
        solver_seconds += secs
        if status != "optimal":
            return PeriodRun(status, L, None, model, rnd, rounds, solver_name, carry_base, (pts, owner, family))
        z = np.clip(sol[L.pair_e], L.pair_lo, L.pair_hi)
        total = float(family.response(z).sum())
        implied, kappa, pi = implied_marginals(rnd, family, z)
        lp_value = model.return_weight * float(sol[model.y].sum()) + model.spend_weight * float(sol[L.x].sum())
        objective_scale = max(abs(lp_value), abs(total) * 1e-3, 1e-9 * problem.budget, 1e-12)
        if kappa:
            gap = duality_gap(rnd, family, L.pair_lo, L.pair_hi, kappa, pi)
            done = gap <= tol * objective_scale
        else:  # no price to certify with: the model error next to the solution instead
            gap = float(pair_errors(family, P, z).sum())
            done = gap <= tol * max(abs(total), 1e-12)
        gap_bound = gap / objective_scale
        allowed = tol * max(abs(total), 1e-9 * problem.budget, 1e-12)
        logger.debug("period round %d: gap bound %.3g (allowed %.3g), %d segments, LP %.3fs",
                     rounds, gap, tol * objective_scale, rnd.points.size - L.pair_e.size, secs)
        if done:
            break
        # Next window at the prices' optimum; keep the model fine where each pair is now and where
        # its last window was, since with carryover the prices of pairs that other decisions pin
        # are not unique and may swing between rounds.
        h_now = pair_spacing(family, L.pair_lo, L.pair_hi, z, allowed)[:, None]
        keep = [z[:, None] + h_now * np.array([-2.0, -1.0, 0.0, 1.0, 2.0]),
                target[:, None] + h[:, None] * np.array([-1.0, 0.0, 1.0])]
        extra = np.concatenate(([start_extra] if start_extra is not None else []) + keep, axis=1)
        target = family.spend_at_marginal(implied, L.pair_lo, L.pair_hi)
    if lp_path and rounds < max_rounds:
        write_lp(model, L.pair_e, rnd, lp_path)
    return PeriodRun("optimal", L, sol, model, rnd, rounds, solver_name, carry_base, (pts, owner, family), gap_bound)


def _floor_shortfall(problem: PeriodProblem, alloc: PeriodAllocation) -> float:
    """By what share the plan misses its ROI floor or return target on the true curves (0: it does not)."""
    short = 0.0
    if problem.roi_min is not None and alloc.spend > 0 and alloc.roi is not None and problem.roi_min > 0:
        short = max(short, 1.0 - alloc.roi / problem.roi_min)
    if problem.objective == "min_spend" and problem.target_return is not None and problem.target_return > 0:
        short = max(short, 1.0 - alloc.expected_return / problem.target_return)
    return short if short > 1e-9 else 0.0
