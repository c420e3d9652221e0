"""Explain infeasible problems in the planner's terms, with numbers.

First plain arithmetic on the bounds (a channel whose minimum exceeds its maximum; minimums
that do not fit in the budget after the reserve; groups whose limits their channels cannot
meet). Then the return floors, by solving for the best reachable ROI or return without them
(for a return target, the planner's own refined max_return plan when it has one).
Last, an elastic model: every named constraint gets a slack, the total slack is minimised, and
the constraints that needed slack are listed with the amounts.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulp

from optimizer.build import FLOOR_MARGIN, Objective, hypograph
from optimizer.period_model import Layout, build_period_model, period_max_name, solve_period_model
from optimizer.periods import PeriodProblem, per_period
from optimizer.problem import Problem
from optimizer.result import money, pct, unit_name

logger = logging.getLogger(__name__)

_INF = math.inf


def _source_text(problem: Problem, source: str, channel) -> str:
    """Turn a constraint name into words with its number."""
    cc = problem.currency
    kind = source.split("[")[0]
    b = problem.budget
    if kind == "locked":
        return f"locked at {money(channel.current, cc)}"
    if kind == "min_spend":
        return f"min_spend {money(channel.min_spend, cc)}"
    if kind == "max_spend":
        return f"max_spend {money(channel.max_spend, cc)}"
    if kind == "min_share":
        return f"min_share {pct(channel.min_share)} = {money(channel.min_share * b, cc)}"
    if kind == "max_share":
        return f"max_share {pct(channel.max_share)} = {money(channel.max_share * b, cc)}"
    if kind == "max_change":
        return f"max_change ±{pct(channel.max_change)} of current {money(channel.current, cc)}"
    if kind == "marginal_roi_min":
        return f"marginal ROI ≥ {problem.marginal_roi_min:g} (its next {unit_name(cc)} returns less beyond that)"
    if kind == "evidence":
        lo, hi = channel.evidence_range
        return f"evidence limit {money(lo, cc)}–{money(hi, cc)} (what the history supports for a poorly identified curve)"
    if kind == "extrapolation_cap":
        return f"extrapolation cap {money(channel.extrapolation_cap, cc)} (1.5× the largest spend in history)"
    if kind == "budget_total":
        return f"the budget left after the {pct(problem.reserve_min_share)} reserve"
    return source


def bound_conflicts(problem: Problem, bounds) -> list[str]:
    """Conflicts visible from the bounds alone; empty when none."""
    cc = problem.currency
    out = []
    b = problem.budget
    for ch, (lo, hi) in zip(problem.channels, bounds):
        if lo.value > hi.value + 1e-9 * max(1.0, b):
            lo_why = "; ".join(_source_text(problem, s, ch) for s in lo.sources)
            hi_why = "; ".join(_source_text(problem, s, ch) for s in hi.sources)
            out.append(
                f"channel {ch.name}: its minimum {money(lo.value, cc)} ({lo_why}) is above its "
                f"maximum {money(hi.value, cc)} ({hi_why}) [{', '.join(lo.sources + hi.sources)}]"
            )
    if out:
        return out
    lows = np.array([lo.value for lo, _ in bounds])
    highs = np.array([hi.value for _, hi in bounds])
    available = b - problem.reserve_min
    if lows.sum() > available + 0.005:
        out.append(
            f"channel minimums sum to {money(lows.sum(), cc)} but only {money(available, cc)} is left after "
            f"the {pct(problem.reserve_min_share)} reserve ({money(problem.reserve_min, cc)}) "
            f"[{_names(problem, bounds, 'lo')}, reserve_min]"
        )
    if problem.reserve_max_share is not None:
        needed = b - problem.reserve_max_share * b
        if highs.sum() < needed - 0.005:
            out.append(
                f"channel maximums sum to {money(highs.sum(), cc)} but at least {money(needed, cc)} must be spent "
                f"because the reserve may hold at most {pct(problem.reserve_max_share)} [reserve_max]"
            )
    group_min_total = 0.0
    for g in problem.group_names:
        spec = problem.group(g)
        mask = np.array([c.group == g for c in problem.channels])
        g_lo, g_hi = float(lows[mask].sum()), float(highs[mask].sum())
        if spec.max_share is not None and g_lo > spec.max_share * b + 0.005:
            out.append(
                f"group {g}: its channel minimums sum to {money(g_lo, cc)}, above the group maximum "
                f"{pct(spec.max_share)} ({money(spec.max_share * b, cc)}) [group_max[{g}]]"
            )
        if spec.min_share is not None:
            group_min_total += spec.min_share * b
            if g_hi < spec.min_share * b - 0.005:
                caps = sorted({s.split("[")[0] for (_, hi), m in zip(bounds, mask) if m for s in hi.sources})
                out.append(
                    f"group {g}: its minimum {pct(spec.min_share)} ({money(spec.min_share * b, cc)}) cannot be "
                    f"reached: its channels can take at most {money(g_hi, cc)}"
                    + (f" (capped by {', '.join(caps)})" if caps else "")
                    + f" [group_min[{g}]]"
                )
        if spec.min_share is not None and spec.max_share is not None and spec.min_share > spec.max_share:
            out.append(f"group {g}: min_share {pct(spec.min_share)} is above max_share {pct(spec.max_share)}")
    if group_min_total > available + 0.005:
        out.append(
            f"group minimums sum to {money(group_min_total, cc)} but only {money(available, cc)} is left after "
            f"the {pct(problem.reserve_min_share)} reserve [group_min, reserve_min]"
        )
    return out


def _names(problem, bounds, end) -> str:
    names = []
    for lo, hi in bounds:
        names.extend((lo if end == "lo" else hi).sources)
    names = list(dict.fromkeys(names))
    return ", ".join(names[:6]) + (", …" if len(names) > 6 else "") if names else "min"


def _limit_text(problem, name: str) -> str:
    """A named constraint in words, with its number."""
    cc = problem.currency
    rc = problem.return_currency
    b = problem.budget
    kind, _, arg = name.partition("[")
    arg = arg.rstrip("]")
    if kind == "reserve_min":
        return f"reserve ≥ {pct(problem.reserve_min_share)} ({money(problem.reserve_min, cc)})"
    if kind == "reserve_max" and problem.reserve_max_share is not None:
        return f"reserve ≤ {pct(problem.reserve_max_share)} ({money(problem.reserve_max_share * b, cc)})"
    if kind in ("group_min", "group_max"):
        spec = problem.group(arg)
        share = spec.min_share if kind == "group_min" else spec.max_share
        return f"group {arg} {'≥' if kind == 'group_min' else '≤'} {pct(share)} ({money(share * b, cc)})"
    if kind in ("min", "max"):
        return f"{arg} {'minimum' if kind == 'min' else 'maximum'}"
    if kind == "roi_min":
        return f"overall ROI ≥ {problem.roi_min:g}"
    if kind == "target_return":
        return f"return ≥ {money(problem.target_return, rc)}"
    return name


# --------------------------------------------------------------------------------------------
# Period plans


def period_bound_conflicts(problem: PeriodProblem, lo: np.ndarray, hi: np.ndarray) -> list[str]:
    """Conflicts visible from the limits alone, in money; empty when none."""
    cc = problem.currency
    out = []
    b = problem.budget
    eps = 0.005 + 1e-9 * b
    available = b - problem.reserve_min
    for i, ch in enumerate(problem.channels):
        for t, label in enumerate(problem.periods):
            if lo[i, t] > hi[i, t] + eps:
                out.append(f"channel {ch.name} in {label}: its minimum {money(lo[i, t], cc)} is above its maximum "
                           f"{money(hi[i, t], cc)} (per-period, total, group and period limits) [bounds[{ch.name},{label}]]")
        if ch.min_total is not None and hi[i].sum() < ch.min_total - eps:
            out.append(f"channel {ch.name}: its minimum total {money(ch.min_total, cc)} cannot be reached: its periods "
                       f"can take at most {money(hi[i].sum(), cc)} [min_total[{ch.name}]]")
        if ch.max_total is not None and lo[i].sum() > ch.max_total + eps:
            out.append(f"channel {ch.name}: its per-period minimums sum to {money(lo[i].sum(), cc)}, above its maximum "
                       f"total {money(ch.max_total, cc)} [max_total[{ch.name}]]")
    if out:
        return out
    ch_min = np.array([max(lo[i].sum(), ch.min_total or 0.0) for i, ch in enumerate(problem.channels)])
    if ch_min.sum() > available + eps:
        out.append(f"channel minimums sum to {money(ch_min.sum(), cc)} but only {money(available, cc)} is left after the "
                   f"{pct(problem.reserve_min_share)} reserve ({money(problem.reserve_min, cc)}) [min_total, reserve_min]")
    p_lo, p_hi = problem.period_limits()
    caps = per_period(problem.pacing.cap, problem.T, _INF)
    col_min = lo.sum(axis=0)
    for t, label in enumerate(problem.periods):
        if p_lo[t] > p_hi[t] + eps:
            out.append(f"period {label}: its minimum {money(p_lo[t], cc)} is above its maximum {money(p_hi[t], cc)} "
                       f"[period_min[{label}], {period_max_name(caps[t], p_hi[t])}[{label}]]")
        elif col_min[t] > p_hi[t] + eps:
            out.append(f"period {label}: channel minimums need {money(col_min[t], cc)} but the period may spend at most "
                       f"{money(p_hi[t], cc)} (cap or max share) [{period_max_name(caps[t], p_hi[t])}[{label}]]")
        elif hi[:, t].sum() < p_lo[t] - eps:
            out.append(f"period {label}: its minimum {money(p_lo[t], cc)} cannot be reached: its channels can take at most "
                       f"{money(hi[:, t].sum(), cc)} [period_min[{label}]]")
    if p_lo.sum() > available + eps:
        out.append(f"per-period minimums sum to {money(p_lo.sum(), cc)} but only {money(available, cc)} is left after the "
                   f"{pct(problem.reserve_min_share)} reserve [period_min, reserve_min]")
    if problem.reserve_max_share is not None:
        needed = b - problem.reserve_max_share * b
        room = min(float(np.minimum(p_hi, hi.sum(axis=0)).sum()), float(sum(min(hi[i].sum(), c.max_total if c.max_total is not None else _INF) for i, c in enumerate(problem.channels))))
        if room < needed - eps:
            out.append(f"at most {money(room, cc)} can be spent (period caps and channel maximums) but at least {money(needed, cc)} "
                       f"must be, because the reserve may hold at most {pct(problem.reserve_max_share)} [reserve_max]")
    group_min_total = 0.0
    for g in problem.group_names:
        spec = problem.group(g)
        mask = np.array([c.group == g for c in problem.channels])
        g_lo, g_hi = float(ch_min[mask].sum()), float(hi[mask].sum())
        if spec.max_share is not None and g_lo > spec.max_share * b + eps:
            out.append(f"group {g}: its channel minimums sum to {money(g_lo, cc)}, above the group maximum "
                       f"{pct(spec.max_share)} ({money(spec.max_share * b, cc)}) [group_max[{g}]]")
        if spec.min_share is not None:
            group_min_total += spec.min_share * b
            if g_hi < spec.min_share * b - eps:
                out.append(f"group {g}: its minimum {pct(spec.min_share)} ({money(spec.min_share * b, cc)}) cannot be reached: "
                           f"its channels can take at most {money(g_hi, cc)} [group_min[{g}]]")
    if group_min_total > available + eps:
        out.append(f"group minimums sum to {money(group_min_total, cc)} but only {money(available, cc)} is left after the "
                   f"{pct(problem.reserve_min_share)} reserve [group_min, reserve_min]")
    return out


def explain(problem: PeriodProblem, L: Layout, grid, carry_base: float, status: str, *,
            best_return: float | None = None) -> list[str]:
    """Why the plan's LP has no solution: the return floors first (the best ROI and return the
    other limits allow), then an elastic model, which names the limits that must give way.

    ``best_return`` is the best return the other limits allow when the planner has it from a
    refined max_return plan (:func:`optimizer.solve.best_without_floors`): the LP here, on the
    breakpoints of the round that failed, understates it, so a target could be called
    unreachable below what a max_return plan of the same limits earns.
    """
    cc = problem.currency
    rc = problem.return_currency
    if status == "unbounded":
        return ["the model is unbounded: a channel curve grows without limit and nothing caps its spend"]
    out: list[str] = []

    def solve(**kw):
        model = build_period_model(problem, L, carry_base, **kw)
        rnd = hypograph(model, L.pair_e, grid)
        # Small diagnostic LPs: dual simplex, whose vertex solutions name one limit of a tie.
        st, sol, *_ = solve_period_model(model, L.pair_e, rnd, options={"solver": "simplex", "presolve": "off"})
        return model, rnd, st, sol

    def incremental(rnd, sol):
        return float(rnd.interpolant(np.clip(sol[L.pair_e], L.pair_lo, L.pair_hi)).sum()) - carry_base

    _, rnd, st, sol = solve(objective=Objective(pulp.LpMaximize, 1.0, 0.0), with_floors=False)
    if st == "optimal":
        lp_return = incremental(rnd, sol)
        refined = best_return is not None
        if not refined:
            best_return = lp_return
        spend = float(sol[L.x].sum())
        if problem.roi_min is not None:
            # Best ROI by Dinkelbach: maximise Σy − ρΣx, update ρ = Σy/Σx until it stops rising.
            rho = lp_return / spend if spend > 0 else None
            spend_at = spend
            for _ in range(30):
                if rho is None:
                    break
                _, rnd2, st2, s2 = solve(objective=Objective(pulp.LpMaximize, 1.0, -rho), with_floors=False)
                if st2 != "optimal":
                    break
                sx, sy = float(s2[L.x].sum()), incremental(rnd2, s2)
                if sx <= 0 or sy / sx <= rho * (1 + 1e-9):
                    break
                rho, spend_at = sy / sx, sx
            if rho is None:
                out.append(f"overall ROI ≥ {problem.roi_min:g} is unreachable [roi_min]")
            elif rho < problem.roi_min:
                out.append(f"overall ROI ≥ {problem.roi_min:g} is unreachable: the best ROI the other constraints allow is "
                           f"{rho:.2f} (spending {money(spend_at, cc)}) [roi_min]")
        if problem.objective == "min_spend" and problem.target_return is not None:
            # A refined best return is itself within the planner's tolerance of the optimum, and the
            # plan's LP keeps a margin over the target: a target that close is neither reached nor refuted.
            close = FLOOR_MARGIN * abs(best_return) if refined else 0.0
            if best_return + close < problem.target_return:
                out.append(f"target return {money(problem.target_return, rc)} is unreachable: the most the constraints "
                           f"allow is {money(best_return, rc)} [target_return]")
            elif problem.roi_min is not None and best_return >= problem.target_return and not out:
                out.append(f"target return {money(problem.target_return, rc)} and overall ROI ≥ {problem.roi_min:g} "
                           "cannot both hold: reaching the target needs spend whose ROI falls below the floor "
                           "[target_return, roi_min]")
            elif refined and (problem.roi_min is None or best_return < problem.target_return):
                # A max_return plan (about) reaches the target, yet the plan's LP cannot: only the
                # margin kept for rounding to the cent and the curve model's tolerance are in the way.
                out.append(f"target return {money(problem.target_return, rc)} is within the planner's tolerance of the "
                           f"most the constraints allow ({money(best_return, rc)}); aim a little lower [target_return]")
        if out:
            return out
    model, _, st, sol = solve(elastic=True)
    if st != "optimal":
        return [f"the constraints conflict (the elastic model is {st})"]
    gives: dict[str, float] = {}
    for var, name, _side in model.slacks.values():
        v = float(var.varValue or 0.0)
        if v > 0.005 + 1e-9 * problem.budget:
            gives[name] = gives.get(name, 0.0) + v
    if len(gives) == 1:
        (name, v), = gives.items()
        unit = rc if name in ("target_return", "roi_min") else cc
        return [f"{_limit_text(problem, name)} must give way by {money(v, unit)} for the rest to hold [{name}]"]
    if gives:
        # The elastic optimum spreads the shortfall over the conflicting limits in no meaningful
        # proportion; the set of limits and the total are what matter.
        limits = "; ".join(_limit_text(problem, n) for n in gives)
        return [f"these limits cannot all hold: {limits}; together they are {money(sum(gives.values()), cc)} apart "
                f"[{', '.join(gives)}]"]
    return ["the constraints conflict (the solver found no plan, and no single limit explains it)"]
