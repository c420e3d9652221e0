"""Plans under curve uncertainty: the spread of a plan's return, and the plan with the best bad case.

``samples`` map each channel name to S response curves (the bootstrap's, e.g.
``MediaMixModel.planning_curve_samples(channel, periods)``), sample s of every channel drawn
together. A plan's return in sample s is R_s = Σ_c r_{c,s}(x_c).

:func:`optimize_cvar` maximises CVaR_α of R (the mean of the worst α share of samples) by
Rockafellar–Uryasev::

    max η − 1/(α S) Σ_s u_s   s.t.  u_s ≥ η − R_s,  u_s ≥ 0,  R_s = Σ_c y_{c,s}

with y_{c,s} on the secant interpolant of sample s's curve (segments, :mod:`optimizer.build`),
under the same budget, reserve, channel and group limits as the risk-neutral problem. The risk-neutral plan it is compared with maximises the *mean* of R over the same
samples, so the trade-off is exact: the neutral plan has the higher mean, the averse one the
higher CVaR. The ROI floor, if any, applies to the mean return.

Both are made on the plan's LP (:func:`optimizer.period_model.build_period_model`, a
single-horizon plan as a plan of one period, :func:`optimize_cvar_periods` for a plan period by
period) with one return per (channel, period, sample). The samples of a pair share its
breakpoints: each sample's return is its own slopes on the same segment columns
(concave curves fill them in the same order), so S samples add S return columns per pair and
S CVaR rows, not S copies of the model.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulp

from optimizer.build import Objective, SegmentForm, family_values, lp_var, register_columns
from optimizer.errors import ProblemError
from optimizer.period_model import PeriodModel, layout, solve_period_model
from optimizer.period_model import build_period_model as period_model
from optimizer.periods import AfterHorizonCurve, Family, PeriodProblem, effective_spend, one_period, plan_returns
from optimizer.problem import Problem, channel_bounds
from optimizer.refine import DEFAULT_TOL, PERIOD_TOL, pair_errors, pair_grid, pair_spacing
from optimizer.report import empty_allocation, report
from optimizer.result import Allocation
from optimizer.solve import optimize, optimize_periods

logger = logging.getLogger(__name__)

_INF = math.inf

__all__ = ["RiskPlans", "optimize_cvar", "optimize_cvar_periods", "return_distribution", "cvar"]


def cvar(values, alpha: float) -> float:
    """Mean of the worst ``alpha`` share of ``values`` (fractional weight on the boundary sample)."""
    v = np.sort(np.asarray(values, float))
    S = v.size
    k = alpha * S
    whole = int(math.floor(k))
    total = v[:whole].sum() + (k - whole) * (v[whole] if whole < S else 0.0)
    return float(total / k)


def _stats(values, alpha: float) -> dict:
    """Mean, P10/P50/P90 and CVaR of returns: money, so rounded to the cent like every money key."""
    v = np.asarray(values, float)
    p10, p50, p90 = np.percentile(v, [10, 50, 90])
    out = {"mean": v.mean(), "p10": p10, "p50": p50, "p90": p90, "cvar": cvar(v, alpha)}
    return {k: round(float(x), 2) + 0.0 for k, x in out.items()}


def _sample_matrix(names: list[str], samples: dict) -> list[list]:
    missing = [n for n in names if n not in samples]
    if missing:
        raise ProblemError(f"no curve samples for {', '.join(missing)}")
    sizes = {len(samples[n]) for n in names}
    if len(sizes) != 1 or 0 in sizes:
        raise ProblemError(f"every channel needs the same, non-zero number of curve samples, got {sorted(sizes)}")
    return [list(samples[n]) for n in names]


def sample_returns(plan, samples: dict, *, problem: PeriodProblem | None = None) -> np.ndarray:
    """R_s for every sample s: the plan's return on each sample's curves.

    ``plan`` is an :class:`~optimizer.result.Allocation` (single horizon) or a
    :class:`~optimizer.result.PeriodAllocation` with its ``problem`` (the carryover recursion,
    efficiencies and after-horizon setting of the problem apply to every sample).
    """
    names = [c.channel for c in plan.channels]
    curves = _sample_matrix(names, samples)
    S = len(curves[0])
    if getattr(plan, "period_spend", None) is not None:
        if problem is None:
            raise ProblemError("a period plan needs its PeriodProblem to evaluate samples")
        return np.array([plan_returns(problem, plan.period_spend, [c[s] for c in curves])["total"] for s in range(S)])
    x = np.array([c.spend for c in plan.channels])
    return np.array([sum(float(c[s].response(v)) for c, v in zip(curves, x)) for s in range(S)])


def return_distribution(plan, samples: dict, *, problem: PeriodProblem | None = None, alpha: float = 0.1) -> dict:
    """P10 / P50 / P90, mean and CVaR_α of a plan's return across curve samples.

    Parameters
    ----------
    plan
        An Allocation, or a PeriodAllocation together with ``problem``.
    samples
        ``{channel: [curve_1, …, curve_S]}``; per-period curves for a period plan.
    alpha
        Tail share for the CVaR.

    Returns
    -------
    dict
        ``{"samples", "alpha", "mean", "p10", "p50", "p90", "cvar"}``.
    """
    values = sample_returns(plan, samples, problem=problem)
    return {"samples": int(values.size), "alpha": alpha, **_stats(values, alpha)}


@dataclass
class RiskPlans:
    """The risk-neutral and the risk-averse plan, and how their returns spread over samples."""

    neutral: Allocation
    averse: Allocation
    alpha: float
    neutral_stats: dict
    averse_stats: dict
    samples: int

    @property
    def risk(self) -> dict:
        return {"measure": "cvar", "alpha": self.alpha, "samples": self.samples,
                "neutral": dict(self.neutral_stats), "averse": dict(self.averse_stats)}

    def to_dict(self) -> dict:
        """``{"neutral": Allocation.to_dict(), "averse": …, "risk": {...}}``."""
        return {"neutral": self.neutral.to_dict(), "averse": self.averse.to_dict(), "risk": self.risk}


def _refine(model: PeriodModel, e: np.ndarray, lo: np.ndarray, hi: np.ndarray, family: Family, S: int,
            start: np.ndarray, tol: float, max_rounds: int, label: str):
    """Solve a sample LP (pairs with curve columns ``e`` in [lo, hi], S sample curves each:
    ``family`` curve p·S + s) in segment form, refining one grid per pair, fine enough for its
    most curved sample, until the model error next to the plan is within ``tol`` in every
    sample. Every sample's return is its own slopes on the pair's segment columns (concave
    curves fill them in the same order), so samples add no column or row beyond their returns.

    Returns (status, column values, rounds, seconds, solver name).
    """
    n = e.size
    lo_s, hi_s = np.repeat(lo, S), np.repeat(hi, S)
    z = start
    allowed = tol * max(abs(float(family.response(np.repeat(z, S)).sum())) / S, 1e-12)
    t0 = time.perf_counter()
    for rnd in range(1, max_rounds + 1):
        h = pair_spacing(family, lo_s, hi_s, np.repeat(z, S), allowed / S).reshape(n, S).min(axis=1)
        pts, owner, P = pair_grid(lo, hi, z, h, None)
        values = np.stack([family_values(family, pts, owner * S + s) for s in range(S)], axis=1)
        form = SegmentForm(model, e, (pts, owner, None), values=values)
        status, sol, secs, solver = solve_period_model(model, e, form.round())
        if status != "optimal":
            return status, None, rnd, time.perf_counter() - t0, solver
        z = np.clip(sol[e], lo, hi)
        err = pair_errors(family, np.repeat(P, S, axis=0), np.repeat(z, S)).reshape(n, S).sum(axis=0)
        total = float(family.response(np.repeat(z, S)).sum()) / S
        logger.debug("%s round %d: worst sample model error %.3g (allowed %.3g), LP %.3fs", label, rnd, err.max(), allowed, secs)
        allowed = tol * max(abs(total), 1e-12)
        if err.max() <= allowed:
            break
    return "optimal", sol, rnd, time.perf_counter() - t0, solver


def optimize_cvar(problem: Problem, samples: dict, alpha: float = 0.1, *, tol: float = DEFAULT_TOL,
                  max_rounds: int = 8) -> RiskPlans:
    """The plan with the best CVaR_α of return over curve samples, next to the risk-neutral plan.

    Parameters
    ----------
    problem
        A single-horizon problem (``max_return`` or ``max_profit``); its limits apply to both plans.
    samples
        ``{channel: [curve_1, …, curve_S]}`` for every channel of ``problem``.
    alpha
        Tail share (0.1 = the mean of the worst 10% of samples).

    Returns
    -------
    RiskPlans
        ``neutral`` maximises the mean return over the samples, ``averse`` the CVaR; both are
        Allocations (reported on the problem's own curves, spends to the cent), and ``risk``
        gives mean, P10, P50, P90 and CVaR of each over the samples.
    """
    curves = _sample_matrix(_checked(problem, alpha), samples)
    point = optimize(problem)
    bounds = [channel_bounds(problem, ch) for ch in problem.channels]
    start = np.array([[c.spend] for c in point.channels]) if point.feasible else None
    return _risk_plans(one_period(problem, bounds), point, start, curves, samples, alpha, tol, max_rounds)


def _checked(problem, alpha: float) -> list[str]:
    """The channel names, once the objective and ``alpha`` are ones CVaR planning takes."""
    if problem.objective not in ("max_return", "max_profit"):
        raise ProblemError("CVaR planning needs the max_return or max_profit objective")
    if not 0 < alpha <= 1:
        raise ProblemError(f"alpha must be in (0, 1], got {alpha}")
    return [c.name for c in problem.channels]


def _risk_plans(problem: PeriodProblem, point: Allocation, start, curves: list[list], samples: dict, alpha: float,
                tol: float, max_rounds: int) -> RiskPlans:
    """The mean and the CVaR plan from the point plan ``point`` (spends ``start``), with their spread."""
    if point.status != "optimal":
        return RiskPlans(neutral=point, averse=point, alpha=alpha, neutral_stats={}, averse_stats={}, samples=len(curves[0]))
    plans, stats = {}, {}
    for measure in ("mean", "cvar"):
        plans[measure] = _sample_plan(problem, measure, curves, alpha, start, tol, max_rounds)
        values = sample_returns(plans[measure], samples, problem=problem)
        if problem.objective == "max_profit":
            values = float(problem.margin) * values - plans[measure].spend
        stats[measure] = _stats(values, alpha)
    return RiskPlans(neutral=plans["mean"], averse=plans["cvar"], alpha=alpha, neutral_stats=stats["mean"],
                     averse_stats=stats["cvar"], samples=len(curves[0]))


def optimize_cvar_periods(problem: PeriodProblem, samples: dict, alpha: float = 0.1, *, tol: float = PERIOD_TOL,
                          max_rounds: int = 8) -> RiskPlans:
    """:func:`optimize_cvar` for a period plan: the best CVaR_α of the horizon's return.

    ``samples`` are per-period curves (``{channel: [curve_1, …, curve_S]}``); in sample s the
    plan earns Σ_{c,t} eff_{c,t} r_{c,s}(e_{c,t}) (plus the tails when the problem counts them)
    above what the starting carryover earns alone, with the problem's own carryover recursion,
    efficiencies and pacing. Both plans keep every limit of ``problem``; they are reported on
    its own curves, like the point plan, with their spread over the samples in ``risk``.
    """
    curves = _sample_matrix(_checked(problem, alpha), samples)
    point = optimize_periods(problem)
    return _risk_plans(problem, point, point.period_spend, curves, samples, alpha, tol, max_rounds)


def _sample_plan(problem: PeriodProblem, measure: str, curves: list[list], alpha: float, start: np.ndarray,
                 tol: float, max_rounds: int) -> Allocation:
    """The plan with the best sample mean or CVaR: the plan's LP
    (:func:`optimizer.period_model.build_period_model`) with one return per (pair, sample), curves in
    segment form; an Allocation for a one-period plan, else a PeriodAllocation."""
    C, T, S = len(problem.channels), problem.T, len(curves[0])
    lo, hi = problem.entry_bounds()
    L = layout(problem, lo, hi, [c.curve for c in problem.channels])
    eff = problem.efficiency()
    own = [[r if r.is_concave else r.envelope() for r in row] for row in curves]
    flat = [own[c][s].scaled(float(eff[c, t])) for c in range(C) for t in range(T) for s in range(S)]
    tails, tail_pair = [], []
    if problem.count_after_horizon:
        for c, ch in enumerate(problem.channels):
            if ch.alpha > 0:
                tails += [AfterHorizonCurve(own[c][s], ch.alpha, ch.tail_efficiency) for s in range(S)]
                tail_pair += [(c * T + T - 1) * S + s for s in range(S)]
    family = Family(flat, tails, tail_pair)
    none = effective_spend(problem, np.zeros_like(lo)).ravel()
    base = family.response(np.repeat(none, S)).reshape(C * T, S).sum(axis=0)  # each sample's return without spend
    objective = Objective.for_problem(problem)
    model = period_model(problem, L, float(base.mean()), objective=objective, samples=S)
    if measure == "cvar":
        # max η − 1/(αS) Σ u_s  s.t.  u_s ≥ η − outcome_s, outcome_s = m (Σ_p y_{p,s} − base_s) − w Σ x
        lp = model.lp
        eta = lp_var(lp, "eta")
        U = [lp_var(lp, f"u_{s}", 0.0) for s in range(S)]
        first = len(model.cols)
        model.cols += [eta] + U
        register_columns(lp, [eta] + U)
        m, w = objective.return_weight, -objective.spend_weight
        ys = model.y.reshape(C * T, S).T  # sample s: its C·T returns
        idx = [np.stack([first + 1 + np.arange(S), np.full(S, first)], axis=1), ys]
        val = [np.tile([1.0, -1.0], (S, 1)), np.full(ys.shape, m)]
        if w:
            idx.append(np.tile(L.x.ravel(), (S, 1)))
            val.append(np.full((S, L.x.size), -w))
        idx, val = np.concatenate(idx, axis=1), np.concatenate(val, axis=1)
        model.fixed.add(m * base, _INF, idx, val, idx.shape[1])
        lp.setObjective(pulp.LpAffineExpression([(eta, 1.0)] + [(u, -1.0 / (alpha * S)) for u in U]))
    start_e = np.clip(effective_spend(problem, start).ravel(), L.pair_lo, L.pair_hi)
    status, sol, rounds, seconds, solver = _refine(model, L.pair_e, L.pair_lo, L.pair_hi, family, S, start_e, tol,
                                                   max_rounds, f"{measure} (periods)")
    if status != "optimal":
        raise ProblemError(f"the {measure} plan over the samples is {status} although the point plan is feasible")
    alloc = empty_allocation(problem, "cvar" if measure == "cvar" else "sample_mean")
    # A plan for the bad case may well score below today's plan on the point curves: no fallback.
    alloc = report(problem, alloc, lo, hi, sol[L.x], [c.curve for c in problem.channels], model, guard_current=False)
    alloc.solver_name, alloc.iterations, alloc.solver_seconds = solver, rounds, seconds
    return alloc
