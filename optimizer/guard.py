"""The guarded plan over curve samples: the best mean return that does no harm.

When the curve samples (the bootstrap's, drawn together across channels) disagree, an exact plan
on a point estimate moves all the money the estimate asks for. The guarded plan maximises the
mean return over the samples subject to

    CVaR_α( R_s(x) − R_s(x_ref) ) ≥ 0,

the mean of the worst α share of samples of its gain over a reference plan x_ref (the current
plan by default) is not negative: money moves only as far as the samples' bad cases agree it
pays. In the LP (the sample LP of :func:`optimizer.risk.sample_plan`, measure "guard") these are
Rockafellar–Uryasev rows, η − 1/(αS) Σ u_s ≥ 0 (named ``guard_cvar``), u_s ≥ η − g_s, u_s ≥ 0.

The reference's returns R_s(x_ref) are taken on the same segments as the plan's: its effective
spends are breakpoints of every pair's grid (there the secants are the curves), and the constants
are read off each round's segments, so the reference always meets the guard row exactly and the
guard at it is the guard on the curves. The LP's returns are at most the (concave) curves, so a
plan that meets the LP's guard meets it on the samples' own curves too, cents aside; an S-shaped
sample is planned on its concave envelope, on which its guard is then read.

A reference that breaks the problem's limits cannot anchor the guard (no plan may be as good as
it in every bad case): the result says so and the guarded plan is the mean plan.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from optimizer.errors import ProblemError
from optimizer.periods import PeriodProblem, one_period, plan_violations
from optimizer.problem import Problem, channel_bounds, shared_violations
from optimizer.refine import DEFAULT_TOL, PERIOD_TOL
from optimizer.result import Allocation, money
from optimizer.risk import cvar, returns_on_samples, sample_family, sample_matrix, sample_names, sample_plan
from optimizer.solve import optimize, optimize_periods

__all__ = ["GuardedPlan", "optimize_guarded", "optimize_guarded_periods"]


@dataclass
class GuardedPlan:
    """The guarded plan (the best mean return that does no harm in the bad case), the unguarded
    mean plan, and how both and the reference plan fare over the curve samples.

    ``stats`` maps "guarded", "mean" and "reference" to the plan's ``mean``, ``p10``, ``p50``,
    ``p90`` of return (profit for ``max_profit``) over the samples, ``beats_reference`` (share
    of samples where it earns at least a cent more than the reference) and ``cvar_gain`` (the
    guard's measure: the mean of the worst ``alpha`` share of its gain over the reference), on
    the samples' own curves. ``binds``: the mean plan breaks the guard, so the guarded plan is
    another plan. ``reference_feasible`` is False (and ``note`` says why, ``violations`` which
    limits) when the reference breaks the problem's limits: the guard is then left out and the
    guarded plan is the mean plan.
    """

    guarded: Allocation
    mean: Allocation
    reference: np.ndarray  # channels × periods (one column for a single-horizon plan)
    alpha: float
    samples: int
    stats: dict
    binds: bool
    reference_feasible: bool
    note: str | None = None
    violations: tuple[str, ...] = ()
    moved: float = 0.0  # Σ |guarded − reference| over channels (and periods): the money the guarded plan moves

    @property
    def keeps_reference(self) -> bool:
        """The guarded plan is the reference to within a unit of money or 0.01% of its spend."""
        return self.moved <= max(1.0, 1e-4 * float(np.sum(self.reference)))

    @property
    def guard(self) -> dict:
        """The guard's settings and verdicts, with ``stats`` under "guarded", "mean" and "reference"."""
        return {"measure": "guard", "alpha": self.alpha, "samples": self.samples, "binds": self.binds,
                "reference_feasible": self.reference_feasible, "note": self.note,
                "violations": list(self.violations), **{k: dict(v) for k, v in self.stats.items()}}

    def to_dict(self) -> dict:
        """``{"guarded": Allocation.to_dict(), "mean": …, "guard": {...}}``."""
        return {"guarded": self.guarded.to_dict(), "mean": self.mean.to_dict(), "guard": self.guard}


def optimize_guarded(problem: Problem, samples: dict, alpha: float = 0.2, *, reference=None, point=None,
                     tol: float = DEFAULT_TOL, max_rounds: int = 8) -> GuardedPlan:
    """The plan with the best mean return over curve samples that does no harm against a reference.

    Maximise the mean over samples of R_s(x) subject to CVaR_α(R_s(x) − R_s(x_ref)) ≥ 0: the
    worst ``alpha`` share of samples must, on average, not earn less than the reference plan
    x_ref. Where the samples do not agree that moving money pays, the plan does not move it.

    Parameters
    ----------
    problem
        A single-horizon problem (``max_return`` or ``max_profit``: then the gain is in profit);
        its limits apply to every plan.
    samples
        ``{channel: [curve_1, …, curve_S]}`` for every channel of ``problem``, drawn together.
    alpha
        Tail share of the guard (1: the mean gain must not be negative).
    reference
        Spend per channel (a sequence in channel order, or ``{channel: spend}`` for every
        channel); by default the channels' ``current`` spend.
    point
        ``optimize(problem)`` when the caller already has it (the sample LPs start from it);
        solved here otherwise.
    tol, max_rounds
        The sample LPs' refinement: model error next to the plan, relative, and rounds at most.

    Returns
    -------
    GuardedPlan
        The guarded and the mean plan as Allocations (reported on the problem's own curves,
        spends to the cent) and their spread over the samples next to the reference's. A
        reference that breaks the problem's limits is reported there, not raised.

    Raises
    ------
    ProblemError
        For another objective, ``alpha`` outside (0, 1], samples missing or of unequal
        numbers, or a reference of the wrong shape.
    """
    curves = sample_matrix(sample_names(problem, alpha), samples)
    point = optimize(problem) if point is None else point
    bounds = [channel_bounds(problem, ch) for ch in problem.channels]
    plan = one_period(problem, bounds)
    start = np.array([[c.spend] for c in point.channels]) if point.feasible else None
    return _guarded_plans(plan, point, start, curves, alpha, _reference(plan, reference), tol, max_rounds)


def optimize_guarded_periods(problem: PeriodProblem, samples: dict, alpha: float = 0.2, *, reference=None,
                             point=None, tol: float = PERIOD_TOL, max_rounds: int = 8) -> GuardedPlan:
    """:func:`optimize_guarded` for a period plan: the guard is on the horizon's return.

    ``samples`` are per-period curves, each sample earning by the problem's own carryover,
    efficiencies and after-horizon setting (:func:`optimize_cvar_periods`). ``reference`` is a
    plan of channels × periods (an array, or ``{channel: spend or per-period spends}``); by
    default the channels' ``current`` spends (:meth:`PeriodProblem.current`), which a problem
    without any current spend lacks: then ``reference`` is required. ``point``:
    ``optimize_periods(problem)`` when the caller already has it.
    """
    curves = sample_matrix(sample_names(problem, alpha), samples)
    point = optimize_periods(problem) if point is None else point
    return _guarded_plans(problem, point, point.period_spend, curves, alpha, _reference(problem, reference), tol,
                          max_rounds)


def _reference(problem: PeriodProblem, reference) -> np.ndarray:
    """The reference plan as channels × periods: ``reference`` or the problem's current plan."""
    C, T = len(problem.channels), problem.T
    if reference is None:
        ref = problem.current()
        if ref is None:
            raise ProblemError("a guarded plan needs a reference plan: give the channels' current spend or `reference`")
        return np.asarray(ref, float).reshape(C, T)
    if isinstance(reference, dict):
        names = [c.name for c in problem.channels]
        unknown, missing = sorted(set(reference) - set(names)), [n for n in names if n not in reference]
        if unknown or missing:
            raise ProblemError("reference " + "; ".join(
                ([f"names unknown channels: {', '.join(unknown)}"] if unknown else [])
                + ([f"gives no spend for {', '.join(missing)}"] if missing else [])))
        rows = [np.asarray(reference[n], float) for n in names]
        rows = [np.full(T, float(r)) if r.ndim == 0 else r for r in rows]
        if any(r.shape != (T,) for r in rows):
            raise ProblemError(f"reference spends need one value per period ({T})")
        ref = np.array(rows, float)
    else:
        ref = np.asarray(reference, float)
        if ref.size != C * T:
            raise ProblemError(f"reference needs {C * T} spends (channels × periods), got {ref.size}")
    if not np.all(np.isfinite(ref)):
        raise ProblemError("reference spends must be finite numbers")
    return ref.reshape(C, T)


def _reference_violations(problem: PeriodProblem, ref: np.ndarray, mean_return: float) -> list[str]:
    """Which limits of the sample LP the reference breaks, in words (empty when none), to well
    under a cent: the guard is only sure to be met by some plan when the reference is one.
    ``mean_return``: the reference's mean return over the samples, which the LP's ROI floor reads."""
    tol = 1e-6
    if problem.origin is None:
        return plan_violations(problem, ref, mean_return, tol=tol)
    origin, out = problem.origin, []
    cc = origin.currency
    tol += 1e-9 * origin.budget
    for ch, x in zip(origin.channels, ref.ravel()):
        lo, hi = channel_bounds(origin, ch)
        if x < lo.value - tol:
            out.append(f"{ch.name}: spend {money(x, cc)} is below its minimum {money(lo.value, cc)}"
                       + (f" ({', '.join(lo.sources)})" if lo.sources else ""))
        if x > hi.value + tol:
            out.append(f"{ch.name}: spend {money(x, cc)} is above its maximum {money(hi.value, cc)} "
                       f"({', '.join(hi.sources)})")
    return out + shared_violations(origin, ref.ravel(), mean_return, tol)


def _outcomes(problem: PeriodProblem, spends: np.ndarray, curves: list[list],
              returns: np.ndarray | None = None) -> np.ndarray:
    """Each sample's return of a plan, or its profit for ``max_profit`` (the sample LPs' outcome);
    ``returns``: the returns when already known."""
    if returns is None:
        returns = returns_on_samples(problem, spends, curves, whole=problem.origin is not None)
    if problem.objective == "max_profit":
        return float(problem.margin) * returns - float(np.sum(spends))
    return returns


def _guard_stats(values: np.ndarray, ref: np.ndarray, alpha: float) -> dict:
    """A plan's figures over the samples against the reference's. Gains within rounding (a cent, or
    a millionth of the reference's mean return) count as none: a plan that is the reference to the
    cent neither "beats" it in most samples nor misses the guard by a cent."""
    gain = values - ref
    v = np.asarray(values, float)
    within = max(0.005, 1e-6 * abs(float(np.mean(ref))))
    p10, p50, p90 = np.percentile(v, [10, 50, 90])
    cvar_gain = cvar(gain, alpha)
    money_keys = {"mean": v.mean(), "p10": p10, "p50": p50, "p90": p90,
                  "cvar_gain": 0.0 if abs(cvar_gain) < within else cvar_gain}
    out = {k: round(float(x), 2) + 0.0 for k, x in money_keys.items()}
    out["beats_reference"] = float(np.mean(gain > within))
    return out


def _guarded_plans(problem: PeriodProblem, point: Allocation, start, curves: list[list], alpha: float,
                   ref: np.ndarray, tol: float, max_rounds: int) -> GuardedPlan:
    """The mean plan, then, when it breaks the guard and the reference is a plan of the problem,
    the guarded plan (:func:`optimizer.risk.sample_plan`, measure "guard"); stats on the samples' own curves."""
    S = len(curves[0])
    if point.status != "optimal":
        return GuardedPlan(guarded=point, mean=point, reference=ref, alpha=alpha, samples=S, stats={}, binds=False,
                           reference_feasible=False, note="the problem has no feasible plan; nothing was planned")
    mean = sample_plan(problem, "mean", curves, alpha, start, tol, max_rounds)
    spends = (lambda plan: np.array([[c.spend] for c in plan.channels]) if problem.origin is not None
              else plan.period_spend)
    # The guard as the LP sees it: on the curves it plans on (an S-shaped sample's envelope).
    _, own = sample_family(problem, curves)
    ret_ref = returns_on_samples(problem, ref, own, whole=problem.origin is not None)
    planned_ref = _outcomes(problem, ref, own, ret_ref)
    planned_mean = _outcomes(problem, spends(mean), own)
    violations = _reference_violations(problem, ref, float(ret_ref.mean()))
    note, binds = None, False
    if violations:
        note = ("the reference plan breaks the problem's limits (" + "; ".join(violations) + "), so it cannot be the "
                "guard's reference: planned without the guard (the guarded plan is the mean plan)")
        guarded = _relabel(mean)
    elif cvar(planned_mean - planned_ref, alpha) >= -0.005:
        guarded = _relabel(mean)  # the mean plan does no harm: the guard does not bind
    else:
        binds = True
        try:
            guarded = sample_plan(problem, "guard", curves, alpha, start, tol, max_rounds, reference=ref)
        except ProblemError:
            # The reference meets the problem's limits to within a micro-unit but not the LP's own
            # (the return floors' margin, optimizer.build.FLOOR_MARGIN, or a limit met to within rounding).
            binds = False
            note = ("the guarded LP has no solution although the reference plan meets the problem's limits (it sits "
                    "on one of them to within rounding): planned without the guard (the guarded plan is the mean plan)")
            guarded = _relabel(mean)
    true_ref = _outcomes(problem, ref, curves)
    stats = {"guarded": _guard_stats(_outcomes(problem, spends(guarded), curves), true_ref, alpha),
             "mean": _guard_stats(_outcomes(problem, spends(mean), curves), true_ref, alpha),
             "reference": _guard_stats(true_ref, true_ref, alpha)}
    # Below rounding (a cent, or 1e-8 of the return) the envelope made no difference worth a note.
    slack = max(0.005, 1e-8 * abs(stats["reference"]["mean"]))
    if binds and stats["guarded"]["cvar_gain"] < -slack and not all(c.is_concave for row in curves for c in row):
        note = (f"some curve samples are S-shaped and were planned on their concave envelopes; on their own curves the "
                f"guarded plan's CVaR of gain is {money(stats['guarded']['cvar_gain'], problem.return_currency)}")
    if note:
        guarded.notes.append(note)
    moved = float(np.abs(np.asarray(spends(guarded), float) - ref).sum()) if guarded.feasible else 0.0
    return GuardedPlan(guarded=guarded, mean=mean, reference=ref, alpha=alpha, samples=S, stats=stats, binds=binds,
                       reference_feasible=not violations, note=note, violations=tuple(violations), moved=moved)


def _relabel(plan: Allocation) -> Allocation:
    """A copy of the mean plan as the guarded plan (the guard left out or not binding)."""
    out = copy.deepcopy(plan)
    out.mode = "guarded"
    return out
