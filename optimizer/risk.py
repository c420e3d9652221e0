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

import numpy as np

from optimizer.errors import ProblemError
from optimizer.periods import (
    PeriodProblem,
    _Built,
    _Family,
    _grid,
    _local_errors,
    _Rows,
    _solve,
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


def _plan_for(problem: Problem, measure: str, curves: list[list], alpha: float, start: np.ndarray,
              tol: float, max_rounds: int) -> tuple[str, np.ndarray | None]:
    """Solve the sample LP for ``measure`` ("mean" or "cvar"); returns (status, spends)."""
    C, S = len(curves), len(curves[0])
    bounds = [channel_bounds(problem, ch) for ch in problem.channels]
    lo = np.array([b[0].value for b in bounds])
    hi = np.maximum(np.array([b[1].value for b in bounds]), lo)
    flat = [curves[c][s] if curves[c][s].is_concave else curves[c][s].envelope() for c in range(C) for s in range(S)]
    family = _Family(flat, [])
    pair_lo, pair_hi = np.repeat(lo, S), np.repeat(hi, S)
    x = np.clip(start, lo, hi)
    allowed = tol * max(float(family.response(np.repeat(x, S)).sum()) / S, 1e-12)
    margin = float(problem.margin) if problem.objective == "max_profit" else 1.0
    spend_weight = 1.0 if problem.objective == "max_profit" else 0.0
    b = problem.budget
    for rnd in range(1, max_rounds + 1):
        z = np.repeat(x, S)
        h = _spacing(family, pair_lo, pair_hi, z, allowed / S)
        pts, owner, P = _grid(pair_lo, pair_hi, z, h, None)
        v = _values(family, pts, owner)
        seg = np.nonzero(owner[1:] == owner[:-1])[0]
        width = pts[seg + 1] - pts[seg]
        slope = (v[seg + 1] - v[seg]) / width
        seg_owner = owner[seg]
        first = np.searchsorted(owner, np.arange(C * S))
        base = v[first]
        # Columns: x (C), reserve, η, u (S), δ (segments).
        X, R, ETA = np.arange(C), C, C + 1
        U = C + 2 + np.arange(S)
        D = C + 2 + S + np.arange(seg.size)
        n = C + 2 + S + seg.size
        col_lower = np.concatenate([lo, [problem.reserve_min, -np.inf], np.zeros(S), np.zeros(seg.size)])
        r_hi = problem.reserve_max_share * b if problem.reserve_max_share is not None else np.inf
        col_upper = np.concatenate([hi, [r_hi, np.inf], np.full(S, np.inf), width])
        rows = _Rows()
        rows.add_one("budget_total", b, b, np.concatenate([X, [R]]), np.ones(C + 1))
        # Each (channel, sample): x_c − Σ δ = p_0.
        counts = np.bincount(seg_owner, minlength=C * S)
        has = np.nonzero(counts > 0)[0]
        pair_c = np.arange(C * S) // S
        pair_s = np.arange(C * S) % S
        if has.size:
            lengths = counts[has] + 1
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            idx = np.empty(int(lengths.sum()), np.int64)
            val = np.empty(idx.size)
            idx[starts], val[starts] = X[pair_c[has]], 1.0
            row_of = np.full(C * S, -1)
            row_of[has] = np.arange(has.size)
            pos = starts[row_of[seg_owner]] + 1 + (np.arange(seg.size) - np.searchsorted(seg_owner, seg_owner))
            idx[pos], val[pos] = D, -1.0
            rows.add_csr(pts[first[has]], pts[first[has]], starts, idx, val)
        for g in problem.group_names:
            spec = problem.group(g)
            members = np.array([i for i, c in enumerate(problem.channels) if c.group == g])
            if spec.min_share is not None or spec.max_share is not None:
                rows.add_one(f"group[{g}]", spec.min_share * b if spec.min_share is not None else -np.inf,
                             spec.max_share * b if spec.max_share is not None else np.inf, X[members], np.ones(members.size))
        seg_s = pair_s[seg_owner]
        base_s = np.bincount(pair_s, base, minlength=S)
        if problem.roi_min is not None:
            # Mean return over samples ≥ ρ · spend.
            rows.add_one("roi_min", -base_s.mean(), np.inf, np.concatenate([D, X]),
                         np.concatenate([slope / S, -problem.roi_min * np.ones(C)]))
        cost = np.zeros(n)
        if measure == "cvar":
            # u_s − η + margin·Σ a δ_{·,s} − w Σ x ≥ −margin·Σ base_s   (u_s ≥ η − outcome_s)
            order = np.argsort(seg_s, kind="stable")
            cnt = np.bincount(seg_s, minlength=S)
            lengths = cnt + 2 + C * (spend_weight > 0)
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            idx = np.empty(int(lengths.sum()), np.int64)
            val = np.empty(idx.size)
            for s in range(S):
                k = starts[s]
                idx[k], val[k] = U[s], 1.0
                idx[k + 1], val[k + 1] = ETA, -1.0
                segs = order[np.searchsorted(seg_s[order], s): np.searchsorted(seg_s[order], s, side="right")]
                idx[k + 2: k + 2 + segs.size], val[k + 2: k + 2 + segs.size] = D[segs], margin * slope[segs]
                if spend_weight:
                    idx[k + 2 + segs.size: k + lengths[s]], val[k + 2 + segs.size: k + lengths[s]] = X, -spend_weight
            rows.add_csr(-margin * base_s, np.full(S, np.inf), starts, idx, val)
            cost[ETA] = 1.0
            cost[U] = -1.0 / (alpha * S)
        else:
            cost[D] = margin * slope / S
            cost[X] = -spend_weight
        col_lower[ETA] = -np.inf if measure == "cvar" else 0.0
        col_upper[ETA] = np.inf if measure == "cvar" else 0.0
        built = _Built(rows=rows, n_cols=n, cost=cost, col_lower=col_lower, col_upper=col_upper, maximise=True,
                       seg_cols=D, seg_owner=seg_owner, seg_slope=slope, seg_width=width,
                       pair_rows=np.full(C * S, -1), pair_base=base)
        status, sol, _, secs, _ = _solve(built)
        if status != "optimal":
            return status, None
        x = sol[X]
        z = np.repeat(x, S)
        err = _local_errors(family, P, z).reshape(C, S).sum(axis=0)  # model error per sample
        total = float(family.response(z).sum()) / S
        logger.debug("%s round %d: worst sample model error %.3g (allowed %.3g), LP %.3fs", measure, rnd, err.max(), allowed, secs)
        allowed = tol * max(abs(total), 1e-12)
        if err.max() <= allowed:
            break
    return "optimal", x


def _values(family: _Family, pts, owner):
    from optimizer.periods import family_values

    return family_values(family, pts, owner)


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
