"""Plans under curve uncertainty: the spread of a plan's return, and the plan with the best bad case.

``samples`` map each channel name to S response curves (the bootstrap's, e.g.
``MediaMixModel.planning_curve_samples(channel, periods)``), sample s of every channel drawn
together. A plan's return in sample s is R_s = Σ_c r_{c,s}(x_c).

:func:`optimize_cvar` maximises CVaR_α of R (the mean of the worst α share of samples) by
Rockafellar–Uryasev::

    max η − 1/(α S) Σ_s u_s   s.t.  u_s ≥ η − R_s,  u_s ≥ 0,  R_s = Σ_c y_{c,s}

with y_{c,s} on the secant interpolant of sample s's curve (segments, :mod:`optimizer.build`),
under the same budget, reserve, channel and group limits as the risk-neutral problem. The
risk-neutral plan it is compared with maximises the *mean* of R over the same samples, so the
trade-off is exact: the neutral plan has the higher mean, the averse one the higher CVaR. The
ROI floor, if any, applies to the mean return.

Both are made on the plan's LP (:func:`optimizer.period_model.build_period_model`, a
single-horizon plan as a plan of one period, :func:`optimize_cvar_periods` for a plan period by
period) with one return per (channel, period, sample). The samples of a pair share its
breakpoints: each sample's return is its own slopes on the same segment columns
(concave curves fill them in the same order), so S samples add S return columns per pair and
S CVaR rows, not S copies of the model (:func:`sample_plan`, whose third measure, "guard", is
the do-no-harm plan of :mod:`optimizer.guard`).
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

from models.curves import CurveSet
from optimizer.build import Objective, SegmentForm, lp_var, register_columns
from optimizer.errors import ProblemError
from optimizer.period_model import PeriodModel, layout, solve_period_model
from optimizer.period_model import build_period_model as period_model
from optimizer.periods import ZERO_CURVE, AfterHorizonCurve, Family, PeriodProblem, effective_spend, one_period
from optimizer.problem import Problem, channel_bounds
from optimizer.refine import DEFAULT_TOL, PERIOD_TOL, pair_errors, pair_grid, pair_spacing
from optimizer.report import empty_allocation, report
from optimizer.result import Allocation, Binding
from optimizer.solve import optimize, optimize_periods

logger = logging.getLogger(__name__)

_INF = math.inf

__all__ = ["RiskPlans", "optimize_cvar", "optimize_cvar_periods", "return_distribution", "cvar", "returns_on_samples",
           "sample_plan"]


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


def sample_matrix(names: list[str], samples: dict) -> list[list]:
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
    curves = sample_matrix(names, samples)
    if getattr(plan, "period_spend", None) is not None:
        if problem is None:
            raise ProblemError("a period plan needs its PeriodProblem to evaluate samples")
        return returns_on_samples(problem, plan.period_spend, curves)
    x = np.array([c.spend for c in plan.channels])
    S = len(curves[0])
    return CurveSet([c for row in curves for c in row]).response(np.repeat(x, S)).reshape(len(names), S).sum(axis=0)


def returns_on_samples(problem: PeriodProblem, spends, curves: list[list], *, whole: bool = False) -> np.ndarray:
    """R_s for every sample s of a plan (channels × periods) of ``problem``: what
    :func:`optimizer.periods.plan_returns` gives as ``total`` on sample s's curves
    (``curves[c][s]``), for all samples at once; ``whole`` adds each curve's return at no spend
    (a single-horizon plan's returns are whole, see :func:`optimizer.report.returns_of`)."""
    C, T = len(problem.channels), problem.T
    x = np.asarray(spends, float).reshape(C, T)
    e = effective_spend(problem, x)
    e0 = effective_spend(problem, np.zeros_like(x))
    tails = None
    if problem.count_after_horizon:
        tails = [(ch.alpha, ch.tail_efficiency) for ch in problem.channels]
    out = _returns_at(e, curves, e0, problem.efficiency(), tails).sum(axis=0)
    if whole:
        out += CurveSet([c for row in curves for c in row]).response(0.0).reshape(C, -1).sum(axis=0)
    return out


def _returns_at(e: np.ndarray, curves: list[list], e0: np.ndarray, eff: np.ndarray, tails) -> np.ndarray:
    """Channels × samples: Σ_t eff_{c,t} (r_{c,s}(e_{c,t}) − r_{c,s}(e0_{c,t})), plus the
    after-horizon tails (``tails``: per channel (α, weight), or None) on the last period's."""
    C, T, S = e.shape[0], e.shape[1], len(curves[0])
    each = CurveSet([c for row in curves for c in row])
    out = np.zeros((C, S))
    for t in range(T):
        gain = each.response(np.repeat(e[:, t], S)) - each.response(np.repeat(e0[:, t], S))
        out += eff[:, t, None] * gain.reshape(C, S)
    carry = [c for c in range(C) if tails is not None and tails[c][0] > 0]
    if carry:
        pairs = np.array([c * S + s for c in carry for s in range(S)])
        after_curves = [AfterHorizonCurve(curves[c][s], *tails[c]) for c in carry for s in range(S)]
        family = Family([ZERO_CURVE] * (C * S), after_curves, pairs)
        after = family.response(np.repeat(e[:, -1], S)) - family.response(np.repeat(e0[:, -1], S))
        out += after.reshape(C, S)
    return out


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


def sample_values(family: Family, pts: np.ndarray, owner: np.ndarray, S: int) -> np.ndarray:
    """``values[i, s]``: sample s's curve of pair ``owner[i]`` (``family`` curve owner·S + s) at
    ``pts[i]``, for every sample in one Family pass per breakpoint rank (``owner`` sorted), as
    :func:`optimizer.build.family_values` does for one curve a pair."""
    n = family.n // S
    out = np.empty((pts.size, S))
    rank = np.arange(pts.size) - np.searchsorted(owner, owner)
    x = np.zeros((n, S))
    for r in range(int(rank.max()) + 1 if rank.size else 0):
        sel = np.nonzero(rank == r)[0]
        x[owner[sel]] = pts[sel][:, None]
        out[sel] = family.response(x.ravel()).reshape(n, S)[owner[sel]]
    return out


def _refine(model: PeriodModel, e: np.ndarray, lo: np.ndarray, hi: np.ndarray, family: Family, S: int,
            start: np.ndarray, tol: float, max_rounds: int, label: str, guard: "_GuardReference | None" = None):
    """Solve a sample LP (pairs with curve columns ``e`` in [lo, hi], S sample curves each:
    ``family`` curve p·S + s) in segment form, refining one grid per pair, fine enough for its
    most curved sample, until the model error next to the plan is within ``tol`` in every
    sample. Every sample's return is its own slopes on the pair's segment columns (concave
    curves fill them in the same order), so samples add no column or row beyond their returns.
    With a ``guard`` (:class:`_GuardReference`) the reference plan's effective spends are breakpoints
    of every round's grid, and its constants are set from each round's segments.

    Returns (status, column values, rounds, seconds, solver name).
    """
    n = e.size
    lo_s, hi_s = np.repeat(lo, S), np.repeat(hi, S)
    z = start
    allowed = tol * max(abs(float(family.response(np.repeat(z, S)).sum())) / S, 1e-12)
    t0 = time.perf_counter()
    for rnd in range(1, max_rounds + 1):
        h = pair_spacing(family, lo_s, hi_s, np.repeat(z, S), allowed / S).reshape(n, S).min(axis=1)
        pts, owner, P = pair_grid(lo, hi, z, h, None if guard is None else guard.e_ref[:, None])
        values = sample_values(family, pts, owner, S)
        if guard is not None:
            guard.update(pts, owner, values)
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
    curves = sample_matrix(sample_names(problem, alpha), samples)
    point = optimize(problem)
    bounds = [channel_bounds(problem, ch) for ch in problem.channels]
    start = np.array([[c.spend] for c in point.channels]) if point.feasible else None
    return _risk_plans(one_period(problem, bounds), point, start, curves, samples, alpha, tol, max_rounds)


def sample_names(problem, alpha: float) -> list[str]:
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
        plans[measure] = sample_plan(problem, measure, curves, alpha, start, tol, max_rounds)
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
    curves = sample_matrix(sample_names(problem, alpha), samples)
    point = optimize_periods(problem)
    return _risk_plans(problem, point, point.period_spend, curves, samples, alpha, tol, max_rounds)


def sample_family(problem: PeriodProblem, curves: list[list]) -> tuple[Family, list[list]]:
    """The curves a sample LP plans on: pair p's sample s is family curve p·S + s (S-curves on
    their concave envelope, scaled by the pair's efficiency, tails on the last period), and the
    planning curves themselves, channel by channel (``own[c][s]``)."""
    C, T, S = len(problem.channels), problem.T, len(curves[0])
    eff = problem.efficiency()
    own = [[r if r.is_concave else r.envelope() for r in row] for row in curves]
    flat = [own[c][s].scaled(float(eff[c, t])) for c in range(C) for t in range(T) for s in range(S)]
    tails, tail_pair = [], []
    if problem.count_after_horizon:
        for c, ch in enumerate(problem.channels):
            if ch.alpha > 0:
                tails += [AfterHorizonCurve(own[c][s], ch.alpha, ch.tail_efficiency) for s in range(S)]
                tail_pair += [(c * T + T - 1) * S + s for s in range(S)]
    return Family(flat, tails, tail_pair), own


def _interpolate(pts: np.ndarray, owner: np.ndarray, values: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Each pair's secant interpolant at ``z`` (pairs × the columns of ``values``), from its
    breakpoints ``pts`` (sorted within each pair, pairs in order)."""
    n = z.size
    first = np.searchsorted(owner, np.arange(n))
    last = np.searchsorted(owner, np.arange(n), side="right") - 1
    below = np.bincount(owner, weights=(pts <= z[owner]).astype(float), minlength=n).astype(np.int64)
    k = np.clip(first + below - 1, first, np.maximum(last - 1, first))
    k1 = np.minimum(k + 1, last)
    width = pts[k1] - pts[k]
    t = np.clip(np.where(width > 0, (z - pts[k]) / np.where(width > 0, width, 1.0), 0.0), 0.0, 1.0)
    return values[k] + t[:, None] * (values[k1] - values[k])


@dataclass
class _GuardReference:
    """The reference plan in a guarded LP: its effective spend per pair (a breakpoint of every
    round's grid) and one fixed column per sample holding its outcome on that round's segments,
    m·Σ_p ŷ_{p,s}(e_ref) − w·Σ x_ref, so the reference meets the guard row exactly."""

    e_ref: np.ndarray
    cols: list
    return_weight: float
    spend_term: float

    def update(self, pts: np.ndarray, owner: np.ndarray, values: np.ndarray) -> None:
        at = _interpolate(pts, owner, values, self.e_ref).sum(axis=0)
        for v, o in zip(self.cols, (self.return_weight * at - self.spend_term).tolist()):
            v.lowBound = v.upBound = o


def sample_plan(problem: PeriodProblem, measure: str, curves: list[list], alpha: float, start: np.ndarray,
                tol: float, max_rounds: int, reference: np.ndarray | None = None) -> Allocation:
    """The plan with the best sample mean, the best CVaR, or the best mean under the guard
    (``measure`` "mean", "cvar" or "guard", the last with ``reference`` spends, channels ×
    periods): the plan's LP (:func:`optimizer.period_model.build_period_model`) with one return
    per (pair, sample), curves in segment form; an Allocation for a one-period plan, else a
    PeriodAllocation.

    Sample s's outcome is o_s = m (Σ_p y_{p,s} − base_s) − w Σ x (the return, or the profit), and
    both tail measures are Rockafellar–Uryasev rows u_s ≥ η − g_s, u_s ≥ 0: "cvar" maximises
    η − 1/(αS) Σ u_s with g_s = o_s; "guard" keeps the mean objective and adds the row
    ``guard_cvar``, η − 1/(αS) Σ u_s ≥ 0, with g_s = o_s − o_s(reference) the gain over the
    reference (:class:`_GuardReference`).
    """
    C, T, S = len(problem.channels), problem.T, len(curves[0])
    lo, hi = problem.entry_bounds()
    L = layout(problem, lo, hi, [c.curve for c in problem.channels])
    family, _ = sample_family(problem, curves)
    none = effective_spend(problem, np.zeros_like(lo)).ravel()
    base = family.response(np.repeat(none, S)).reshape(C * T, S).sum(axis=0)  # each sample's return without spend
    objective = Objective.for_problem(problem)
    model = period_model(problem, L, float(base.mean()), objective=objective, samples=S)
    guard = None
    if measure in ("cvar", "guard"):
        # u_s − η + m Σ_p y_{p,s} − w Σ x ≥ m base_s (cvar: u_s ≥ η − o_s); the guard's rows have
        # the reference's outcome (plus m base_s) in a fixed column per sample instead.
        lp = model.lp
        m, w = objective.return_weight, -objective.spend_weight
        eta = lp_var(lp, "eta")
        U = [lp_var(lp, f"u_{s}", 0.0) for s in range(S)]
        R = [lp_var(lp, f"ref_{s}", 0.0, 0.0) for s in range(S)] if measure == "guard" else []
        first = len(model.cols)
        model.cols += [eta] + U + R
        register_columns(lp, [eta] + U + R)
        ys = model.y.reshape(C * T, S).T  # sample s: its C·T returns
        idx = [np.stack([first + 1 + np.arange(S), np.full(S, first)], axis=1), ys]
        val = [np.tile([1.0, -1.0], (S, 1)), np.full(ys.shape, m)]
        if w:
            idx.append(np.tile(L.x.ravel(), (S, 1)))
            val.append(np.full((S, L.x.size), -w))
        rhs = m * base
        if R:
            # The base cancels in the gain:
            # o_s − o_s(ref) = m (Σ_p y_{p,s} − Σ_p ŷ_{p,s}(e_ref)) − w (Σ x − Σ x_ref).
            idx.append((first + 1 + S + np.arange(S))[:, None])
            val.append(np.full((S, 1), -1.0))
            rhs = 0.0
            ref = np.asarray(reference, float).reshape(C, T)
            guard = _GuardReference(e_ref=np.clip(effective_spend(problem, ref).ravel(), L.pair_lo, L.pair_hi), cols=R,
                               return_weight=m, spend_term=w * float(ref.sum()))
        idx, val = np.concatenate(idx, axis=1), np.concatenate(val, axis=1)
        model.fixed.add(rhs, _INF, idx, val, idx.shape[1])
        tail = pulp.LpAffineExpression([(eta, 1.0)] + [(u, -1.0 / (alpha * S)) for u in U])
        if measure == "cvar":
            lp.setObjective(tail)
        else:
            # The reference sits on this row's boundary (its gain is 0 in every sample), so an exact 0
            # leaves HiGHS to decide feasibility within its tolerances on returns of millions: it
            # answered "infeasible" or "unknown" on sample LPs of the recovery study. A slack of
            # 1e-9 of the reference's mean return (a dime on ¥100M) is below anything a plan reports.
            ref_return = family.response(np.repeat(guard.e_ref, S)).reshape(C * T, S).sum(axis=0).mean()
            slack = 1e-9 * max(abs(float(m * ref_return)), 1.0)
            con = pulp.LpConstraint(tail, pulp.LpConstraintGE, "guard_cvar", -slack)
            lp.addConstraint(con)
            model.named["guard_cvar"] = con
    start_e = np.clip(effective_spend(problem, start).ravel(), L.pair_lo, L.pair_hi)
    status, sol, rounds, seconds, solver = _refine(model, L.pair_e, L.pair_lo, L.pair_hi, family, S, start_e, tol,
                                                   max_rounds, f"{measure} (periods)", guard)
    if status != "optimal":
        raise ProblemError(f"the {measure} plan over the samples is {status} although the point plan is feasible")
    alloc = empty_allocation(problem, {"cvar": "cvar", "mean": "sample_mean", "guard": "guarded"}[measure])
    # A plan for the bad case may well score below today's plan on the point curves: no fallback.
    alloc = report(problem, alloc, lo, hi, sol[L.x], [c.curve for c in problem.channels], model, guard_current=False)
    alloc.solver_name, alloc.iterations, alloc.solver_seconds = solver, rounds, seconds
    con = model.named.get("guard_cvar")
    tight = con is not None and con.slack is not None and con.slack <= 1e-6 * max(1.0, abs(alloc.expected_return))
    if con is not None and (abs(con.pi or 0.0) > 1e-12 or tight):
        alloc.binding.append(Binding(
            "guard_cvar", f"money moves only as far as the worst {alpha:.0%} of curve samples still gain on average "
            "over the reference plan", None if con.pi is None else abs(float(con.pi))))
    return alloc
