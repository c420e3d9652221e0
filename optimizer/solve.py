"""Plan: the pipeline from a problem to an allocation, one horizon or period by period.

A single-horizon plan is a plan of one period (:func:`optimizer.periods.one_period`), and every
plan, exact mode's MILP on S-curves included, is made by the same steps (:func:`_plan`): bounds →
layout and LP model (:mod:`optimizer.period_model`, curves in :mod:`optimizer.build`) → first
targets and breakpoints (:mod:`optimizer.refine`) → HiGHS (:mod:`optimizer.highs`) → refine
until the duality bound certifies the plan (:func:`period_loop`) → round to the cent
(:mod:`optimizer.cents`) → report on the true curves (:mod:`optimizer.report`); an infeasible
problem is a result with a diagnosis (:mod:`optimizer.diagnose`).

Because the LP is an inner approximation, every iterate is feasible on the true curves and the
true return of the plan is at least the LP's value. Spends are then rounded to the cent so that
spend + reserve equals the budget exactly.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from models.curves import ResponseCurve
from optimizer import diagnose
from optimizer.build import FLOOR_MARGIN
from optimizer.period_model import build_period_model, layout, segment_round, solve_period_model, write_lp
from optimizer.periods import InSpend, Interval, PeriodProblem, effective_spend, one_period, plan_returns
from optimizer.refine import (
    DEFAULT_TOL,
    PERIOD_TOL,
    dense_grid,
    duality_gap,
    first_targets,
    implied_marginals,
    pair_errors,
    pair_grid,
    pair_spacing,
)
from optimizer.problem import Problem, broken_limits, channel_bounds
from optimizer.report import EXACT_HINT, empty_allocation, report, summarise_current
from optimizer.result import Allocation, PeriodAllocation

logger = logging.getLogger(__name__)


def optimize(problem: Problem, *, exact: bool = False, tol: float = DEFAULT_TOL, max_rounds: int = 14,
             lp_path: str | None = None) -> Allocation:
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
        mode's MILP, which has no prices: once the model error next to the solution is this small).
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
    plan = one_period(problem, bounds)
    curves = [c.curve for c in problem.channels]
    base = empty_allocation(plan, _mode(curves, exact))
    conflicts = diagnose.bound_conflicts(problem, bounds)
    if conflicts:
        base.diagnosis = conflicts
        base.current = summarise_current(plan)
        return base
    lo = np.array([[b.value] for b, _ in bounds])
    hi = np.maximum(np.array([[b.value] for _, b in bounds]), lo)
    alloc = _plan(plan, base, lo, hi, curves, exact=exact, tol=tol, max_rounds=max_rounds, lp_path=lp_path,
                  floor_margin=FLOOR_MARGIN, t_start=t_start)
    if alloc.mode == "envelope" and alloc.feasible:
        spends = np.array([c.spend for c in alloc.channels])
        returns = np.array([c.expected_return for c in alloc.channels])
        broken = [v for v in broken_limits(problem, spends, returns) if "ROI" in v or "target" in v]
        if broken:
            # The envelope overstates S-curves, so a return floor met on it can fail on the
            # true curves: solve exactly instead, and say so.
            alloc = optimize(problem, exact=True, tol=tol, max_rounds=max_rounds, lp_path=lp_path)
            alloc.warnings.insert(0, f"on the S-curves' concave envelope the plan missed a return floor ({broken[0]}); "
                                  "solved exactly (MILP) instead")
    return alloc


def optimize_periods(problem: PeriodProblem, *, exact: bool = False, tol: float = PERIOD_TOL, max_rounds: int = 10,
                     lp_path: str | None = None, curves: Sequence[ResponseCurve] | None = None,
                     floor_margin: float = FLOOR_MARGIN) -> PeriodAllocation:
    """Find the per-period plan with the best objective under every constraint of ``problem``.

    Parameters
    ----------
    problem
        The horizon to plan.
    exact
        Solve S-shaped curves exactly (MILP with binary segments on their convex part) instead
        of on their concave envelope.
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
    alloc = empty_allocation(problem, _mode(curves, exact))
    lo, hi = problem.entry_bounds()
    conflicts = diagnose.period_bound_conflicts(problem, lo, hi)
    if conflicts:
        alloc.diagnosis = conflicts
        alloc.current = summarise_current(problem)
        return alloc
    alloc = _plan(problem, alloc, lo, hi, curves, exact=exact, tol=tol, max_rounds=max_rounds, lp_path=lp_path,
                  floor_margin=floor_margin, t_start=t_start)
    if alloc.mode == "envelope" and alloc.feasible:
        alloc.warnings.insert(0, "some curves are S-shaped; the plan was made on their concave envelope, which "
                              f"overstates their return at low spend ({EXACT_HINT})")
    short = _floor_shortfall(problem, alloc)
    if short > 0 and floor_margin < 1e-2:
        # Rounding to the cent (or an S-curve's envelope) took the plan under a return floor:
        # plan again with the floor raised by more than it missed.
        logger.debug("return floor missed by %.3g after rounding; planning with margin %.3g", short,
                     max(10 * floor_margin, 4 * short))
        return optimize_periods(problem, exact=exact, tol=tol, max_rounds=max_rounds, lp_path=lp_path, curves=curves,
                                floor_margin=max(10 * floor_margin, 4 * short))
    return alloc


def _mode(curves, exact: bool) -> str:
    if exact:
        return "exact"
    return "concave" if all(c.is_concave for c in curves) else "envelope"


def _plan(problem: PeriodProblem, alloc: Allocation, lo, hi, curves, *, exact: bool, tol: float, max_rounds: int,
          lp_path: str | None, floor_margin: float, t_start: float) -> Allocation:
    """Refine, then report the plan, or diagnose why there is none, into ``alloc``."""
    run = period_loop(problem, lo, hi, curves, exact=exact, tol=tol, max_rounds=max_rounds, lp_path=lp_path,
                      floor_margin=floor_margin)
    alloc.solver_name = run.solver_name
    if run.status != "optimal":
        alloc.diagnosis = diagnose.explain(problem, *run.diagnosis_inputs(), run.status,
                                           best_return=None if run.best is None else run.best.value)
        alloc.current = summarise_current(problem)
    else:
        alloc = report(problem, alloc, lo, hi, run.sol[run.L.x], curves, run.model)
        alloc.lp_return = run.lp_return()
        alloc.iterations = run.rounds
        if isinstance(alloc, PeriodAllocation):
            alloc.gap_bound = run.gap_bound
    alloc.solver_seconds = time.perf_counter() - t_start
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
    problem: PeriodProblem
    curves: list  # the true curves, one per channel
    gap_bound: float | None = None
    best: "BestPlan | None" = None  # a return target's LP was infeasible: the best plan without the floors

    def lp_return(self) -> float:
        """The LP's own value of the plan: each pair's secant interpolant (an S-curve pair's
        return column in exact mode), less what the carryover earns without spend."""
        L, sol = self.L, self.sol
        values = self.rnd.interpolant(np.clip(sol[L.pair_e], L.pair_lo, L.pair_hi))
        if L.convex is not None:
            values[L.convex.pairs] = sol[self.model.y[L.convex.pairs]]
        return float(values.sum()) - self.carry_base

    def diagnosis_inputs(self):
        """(layout, grid, carry base) for the diagnosis: exact mode's MILP is diagnosed on the
        concave envelope, an LP, since its elastic and best-ROI models must be LPs."""
        if self.L.convex is None:
            return self.L, self.grid, self.carry_base
        lo, hi = self.L.col_lower[self.L.x], self.L.col_upper[self.L.x]
        L = layout(self.problem, lo, hi, self.curves)
        family = L.family()
        extra = dense_grid(L.pair_lo, L.pair_hi)
        if self.best is not None:  # where the other limits let the return go furthest
            extra = np.concatenate([extra, self.best.effective[:, None]], axis=1)
        pts, owner, _ = pair_grid(L.pair_lo, L.pair_hi, None, None, extra)
        return L, (pts, owner, family), _carry_base(self.problem, family)


@dataclass
class BestPlan:
    """The best plan the limits allow without the return floors (:func:`best_without_floors`)."""

    value: float  # its return on the true curves, counted as the target is (above the carryover's own)
    effective: np.ndarray  # its effective spend per pair
    points: np.ndarray  # the same in the plan LP's curve columns (exact mode: an S-curve's concave part)


def best_without_floors(problem: PeriodProblem, lo, hi, curves, *, exact: bool, tol: float,
                        max_rounds: int) -> BestPlan | None:
    """The max_return plan of ``problem`` without its ROI floor and return target, refined like any
    plan; None when the other limits leave no plan either."""
    free = replace(problem, objective="max_return", target_return=None, roi_min=None)
    run = period_loop(free, lo, hi, curves, exact=exact, tol=tol, max_rounds=max_rounds, lp_path=None,
                      floor_margin=0.0)
    if run.status != "optimal":
        return None
    value = plan_returns(problem, run.sol[run.L.x], curves)["total"]
    return BestPlan(value=value, effective=run.sol[run.L.e.ravel()],
                    points=np.clip(run.sol[run.L.pair_e], run.L.pair_lo, run.L.pair_hi))


def period_loop(problem: PeriodProblem, lo, hi, curves, *, exact: bool = False, tol: float, max_rounds: int,
                lp_path: str | None, floor_margin: float) -> PeriodRun:
    """Refine breakpoints until the duality bound certifies the plan within ``tol`` (the one loop)."""
    L = layout(problem, lo, hi, curves, exact=exact)
    family = L.family()
    carry_base = _carry_base(problem, family)
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
    best = None
    retried = False
    model = build_period_model(problem, L, carry_base, floor_margin=floor_margin)
    for rounds in range(1, max_rounds + 1):
        h = pair_spacing(family, L.pair_lo, L.pair_hi, target, allowed)
        pts, owner, P = pair_grid(L.pair_lo, L.pair_hi, target, h, extra)
        rnd = segment_round(problem, model, L, (pts, owner, family))
        status, sol, secs, solver_name = solve_period_model(model, L.pair_e, rnd, lp_path if rounds == max_rounds else None)
        solver_seconds += secs
        if status == "infeasible" and not retried and _has_floor(problem) and rounds < max_rounds:
            # The LP understates every curve (inner approximation): on a coarse grid a return
            # floor the plan can meet may look out of reach. Try again on a dense grid, and with
            # a return target also at the best plan without the floors: on breakpoints there the
            # LP reaches that plan's return, so every target up to the most the limits allow.
            retried = True
            more = [dense_grid(L.pair_lo, L.pair_hi)]
            if _has_target(problem):
                best = best_without_floors(problem, lo, hi, curves, exact=exact, tol=tol, max_rounds=max_rounds)
                if best is not None:
                    more.append(best.points[:, None])
            if best is None or best.value >= problem.target_return:  # (above it, no grid can help)
                logger.debug("period round %d: infeasible on a coarse grid; again on a dense one", rounds)
                extra = np.concatenate(([extra] if extra is not None else []) + more, axis=1)
                start_extra = extra
                continue
        if status != "optimal":
            return PeriodRun(status, L, None, model, rnd, rounds, solver_name, carry_base, (pts, owner, family),
                             problem, curves, best=best)
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
    return PeriodRun("optimal", L, sol, model, rnd, rounds, solver_name, carry_base, (pts, owner, family),
                     problem, curves, gap_bound)


def _has_floor(problem: PeriodProblem) -> bool:
    return problem.roi_min is not None or _has_target(problem)


def _has_target(problem: PeriodProblem) -> bool:
    return problem.objective == "min_spend" and problem.target_return is not None


def _carry_base(problem: PeriodProblem, family) -> float:
    """What the pairs' curves (after-horizon tails included) give with no spend at all: the LP's
    returns are counted above it, as plan_returns counts them."""
    return float(family.response(effective_spend(problem, np.zeros((len(problem.channels), problem.T))).ravel()).sum())


def _floor_shortfall(problem: PeriodProblem, alloc: PeriodAllocation) -> float:
    """By what share the plan misses its ROI floor or return target on the true curves (0: it does not)."""
    short = 0.0
    if problem.roi_min is not None and alloc.spend > 0 and alloc.roi is not None and problem.roi_min > 0:
        short = max(short, 1.0 - alloc.roi / problem.roi_min)
    if problem.objective == "min_spend" and problem.target_return is not None and problem.target_return > 0:
        short = max(short, 1.0 - alloc.expected_return / problem.target_return)
    return short if short > 1e-9 else 0.0
