"""Plans under curve uncertainty: the spread of a plan's return, and the plan with the best bad case.

``samples`` map each channel name to S response curves (the bootstrap's, e.g.
``MediaMixModel.planning_curve_samples(channel, periods)``), sample s of every channel drawn
together. A plan's return in sample s is R_s = Σ_c r_{c,s}(x_c).

:func:`optimize_cvar` maximises CVaR_α of R (the mean of the worst α share of samples) by
Rockafellar–Uryasev::

    max η − 1/(α S) Σ_s u_s   s.t.  u_s ≥ η − R_s,  u_s ≥ 0,  R_s = Σ_c y_{c,s}

with y_{c,s} on the secant interpolant of sample s's curve (as in :mod:`optimizer.periods`, by
segments), under the same budget, reserve, channel and group limits as the risk-neutral
problem. The risk-neutral plan it is compared with maximises the *mean* of R over the same
samples, so the trade-off is exact: the neutral plan has the higher mean, the averse one the
higher CVaR. The ROI floor, if any, applies to the mean return.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulp

from optimizer.errors import ProblemError
from optimizer.build import SparseRows, _var
from optimizer.periods import (
    _INF,
    PeriodProblem,
    _Family,
    _grid,
    _local_errors,
    _Model,
    _register,
    _SegmentForm,
    _solve_model,
    _spacing,
    plan_returns,
)
from optimizer.problem import Problem, channel_bounds
from optimizer.result import Allocation
from optimizer.solve import DEFAULT_TOL, _report, initial_pieces, optimize, to_cents

logger = logging.getLogger(__name__)

__all__ = ["RiskPlans", "optimize_cvar", "return_distribution", "cvar"]


def cvar(values, alpha: float) -> float:
    """Mean of the worst ``alpha`` share of ``values`` (fractional weight on the boundary sample)."""
    v = np.sort(np.asarray(values, float))
    S = v.size
    k = alpha * S
    whole = int(math.floor(k))
    total = v[:whole].sum() + (k - whole) * (v[whole] if whole < S else 0.0)
    return float(total / k)


def _stats(values, alpha: float) -> dict:
    v = np.asarray(values, float)
    p10, p50, p90 = (float(q) for q in np.percentile(v, [10, 50, 90]))
    return {"mean": float(v.mean()), "p10": p10, "p50": p50, "p90": p90, "cvar": cvar(v, alpha)}


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


class _NoPrices:
    """Stands in for a PuLP model in :func:`optimizer.solve._report` (no shadow prices here)."""

    named: dict = {}


def _model(problem: Problem, measure: str, curves: list[list], alpha: float, lo: np.ndarray, hi: np.ndarray) -> _Model:
    """The sample LP as a PuLP model: x per channel, the reserve, η and u per sample (CVaR), and
    per (channel, sample) pair a curve column e (= x, by a row) and its return y.

    Named constraints as everywhere (``budget_total``, ``group_min[g]``, ``group_max[g]``,
    ``roi_min`` on the mean return); the linking rows and the CVaR rows
    ``u_s − η + m Σ_c y_{c,s} − w Σ x ≥ 0`` are array rows.
    """
    C, S = len(curves), len(curves[0])
    b = problem.budget
    margin = float(problem.margin) if problem.objective == "max_profit" else 1.0
    spend_weight = 1.0 if problem.objective == "max_profit" else 0.0
    lp = pulp.LpProblem(f"{measure}_over_samples", pulp.LpMaximize)
    X = [_var(lp, f"x_{i}", float(lo[i]), float(hi[i])) for i in range(C)]
    r_hi = problem.reserve_max_share * b if problem.reserve_max_share is not None else None
    R = _var(lp, "reserve", problem.reserve_min, r_hi)
    cvar_on = measure == "cvar"
    ETA = _var(lp, "eta", None if cvar_on else 0.0, None if cvar_on else 0.0)
    U = [_var(lp, f"u_{s}", 0.0) for s in range(S)]
    E = [_var(lp, f"e_{c}_{s}", float(lo[c]), float(hi[c])) for c in range(C) for s in range(S)]
    Y = [_var(lp, f"y_{c}_{s}") for c in range(C) for s in range(S)]
    cols = X + [R, ETA] + U + E + Y
    _register(lp, cols)
    first_e = C + 2 + S
    e_idx = first_e + np.arange(C * S)
    y_idx = first_e + C * S + np.arange(C * S)
    model = _Model(lp=lp, cols=cols, y=y_idx, fixed=SparseRows(cols))

    def named(key: str, terms, sense, rhs: float) -> None:
        con = pulp.LpConstraint(pulp.LpAffineExpression(terms), sense, f"c{len(model.named)}_{key.split('[')[0]}", rhs)
        lp.addConstraint(con)
        model.named[key] = con

    named("budget_total", [(v, 1.0) for v in X] + [(R, 1.0)], pulp.LpConstraintEQ, b)
    for g in problem.group_names:
        spec = problem.group(g)
        members = [(X[i], 1.0) for i, c in enumerate(problem.channels) if c.group == g]
        if spec.min_share is not None:
            named(f"group_min[{g}]", members, pulp.LpConstraintGE, spec.min_share * b)
        if spec.max_share is not None:
            named(f"group_max[{g}]", members, pulp.LpConstraintLE, spec.max_share * b)
    if problem.roi_min is not None:  # mean return over the samples ≥ ρ · spend
        named("roi_min", [(v, 1.0 / S) for v in Y] + [(v, -problem.roi_min) for v in X], pulp.LpConstraintGE, 0.0)
    pair_c = np.repeat(np.arange(C), S)
    model.fixed.add(0.0, 0.0, np.stack([e_idx, pair_c], axis=1), np.tile([1.0, -1.0], (C * S, 1)), 2)  # e_{c,s} = x_c
    if cvar_on:
        ys = y_idx.reshape(C, S).T  # sample s: its C returns
        idx = np.concatenate([np.stack([C + 2 + np.arange(S), np.full(S, C + 1)], axis=1), ys]
                             + ([np.tile(np.arange(C), (S, 1))] if spend_weight else []), axis=1)
        val = np.concatenate([np.tile([1.0, -1.0], (S, 1)), np.full((S, C), margin)]
                             + ([np.full((S, C), -spend_weight)] if spend_weight else []), axis=1)
        model.fixed.add(0.0, _INF, idx, val, idx.shape[1])
        lp.setObjective(pulp.LpAffineExpression([(ETA, 1.0)] + [(u, -1.0 / (alpha * S)) for u in U]))
    else:
        lp.setObjective(pulp.LpAffineExpression([(v, margin / S) for v in Y] + [(v, -spend_weight) for v in X]))
    return model


def _plan_for(problem: Problem, measure: str, curves: list[list], alpha: float, start: np.ndarray,
              tol: float, max_rounds: int) -> tuple[str, np.ndarray | None]:
    """Solve the sample LP for ``measure`` ("mean" or "cvar"); returns (status, spends).

    The curves go to HiGHS in segment form (:class:`optimizer.periods._SegmentForm`), refined
    around the plan until the model error next to it is within ``tol`` in every sample.
    """
    C, S = len(curves), len(curves[0])
    bounds = [channel_bounds(problem, ch) for ch in problem.channels]
    lo = np.array([b[0].value for b in bounds])
    hi = np.maximum(np.array([b[1].value for b in bounds]), lo)
    flat = [curves[c][s] if curves[c][s].is_concave else curves[c][s].envelope() for c in range(C) for s in range(S)]
    family = _Family(flat)
    pair_lo, pair_hi = np.repeat(lo, S), np.repeat(hi, S)
    x = np.clip(start, lo, hi)
    allowed = tol * max(float(family.response(np.repeat(x, S)).sum()) / S, 1e-12)
    model = _model(problem, measure, curves, alpha, lo, hi)
    e_cols = C + 2 + S + np.arange(C * S)
    for rnd in range(1, max_rounds + 1):
        z = np.repeat(x, S)
        h = _spacing(family, pair_lo, pair_hi, z, allowed / S)
        pts, owner, P = _grid(pair_lo, pair_hi, z, h, None)
        form = _SegmentForm(model, e_cols, (pts, owner, family))
        status, sol, secs, _ = _solve_model(model, e_cols, form.round())
        if status != "optimal":
            return status, None
        x = sol[:C]
        z = np.repeat(x, S)
        err = _local_errors(family, P, z).reshape(C, S).sum(axis=0)  # model error per sample
        total = float(family.response(z).sum()) / S
        logger.debug("%s round %d: worst sample model error %.3g (allowed %.3g), LP %.3fs", measure, rnd, err.max(), allowed, secs)
        allowed = tol * max(abs(total), 1e-12)
        if err.max() <= allowed:
            break
    return "optimal", x


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
    if problem.objective not in ("max_return", "max_profit"):
        raise ProblemError("CVaR planning needs the max_return or max_profit objective")
    if not 0 < alpha <= 1:
        raise ProblemError(f"alpha must be in (0, 1], got {alpha}")
    names = [c.name for c in problem.channels]
    curves = _sample_matrix(names, samples)
    point = optimize(problem)
    if point.status != "optimal":
        return RiskPlans(neutral=point, averse=point, alpha=alpha, neutral_stats={}, averse_stats={}, samples=len(curves[0]))
    start = np.array([c.spend for c in point.channels])
    plans = {}
    for measure in ("mean", "cvar"):
        status, x = _plan_for(problem, measure, curves, alpha, start, tol, max_rounds)
        if status != "optimal":
            raise ProblemError(f"the {measure} plan is {status} although the point plan is feasible")
        plans[measure] = _allocation(problem, x, measure)
    stats = {}
    for measure, plan in plans.items():
        values = sample_returns(plan, samples)
        if problem.objective == "max_profit":
            values = float(problem.margin) * values - plan.spend
        stats[measure] = _stats(values, alpha)
    return RiskPlans(neutral=plans["mean"], averse=plans["cvar"], alpha=alpha, neutral_stats=stats["mean"],
                     averse_stats=stats["cvar"], samples=len(curves[0]))


def _allocation(problem: Problem, x: np.ndarray, measure: str) -> Allocation:
    """An Allocation for spends ``x`` (rounded to the cent), reported like optimizer.optimize does."""
    bounds = [channel_bounds(problem, ch) for ch in problem.channels]
    pieces = initial_pieces(problem, bounds, exact=False)
    base = Allocation(scenario=problem.name, status="optimal", objective=problem.objective, budget=problem.budget,
                      currency=problem.currency, mode="cvar" if measure == "cvar" else "sample_mean")
    alloc = _report(problem, bounds, pieces, _NoPrices(), to_cents(problem, bounds, x) / 100.0, base)
    alloc.solver_name = "HiGHS"
    return alloc
