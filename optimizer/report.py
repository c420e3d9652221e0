"""The report: a solved plan, rounded to the cent, told on the true curves.

:func:`report_plan` turns the LP's spends into an :class:`~optimizer.result.Allocation`: every
channel's spend, return, ROI and marginal ROI, the groups, the current plan it is compared with
(:func:`summarise_current`), the limits that bind with their shadow prices (``_binding``, under
the LP's constraint names) and the warnings a careful reader needs (``_warnings``).
"""

from __future__ import annotations

import math

import numpy as np

from optimizer.build import Model
from optimizer.cents import clamp_cent, period_to_cents
from optimizer.marginal import below_break_even, marginal_roi, period_marginal_roi
from optimizer.period_model import PeriodModel, period_max_name
from optimizer.periods import PeriodProblem, one_period, per_period, plan_returns, plan_violations
from optimizer.problem import Problem, broken_limits, objective_value
from optimizer.result import Allocation, Binding, ChannelResult, GroupResult, PeriodAllocation, PlanSummary, money, pct

_INF = math.inf


def summarise_current(problem: Problem, bounds) -> PlanSummary:
    spends = np.array([c.current for c in problem.channels], dtype=float)
    returns = np.array([float(c.curve.response(c.current)) for c in problem.channels])
    spend, ret = float(spends.sum()), float(returns.sum())
    violations = broken_limits(problem, spends, returns)
    return PlanSummary(
        spend=spend,
        reserve=clamp_cent(problem.budget - spend),
        expected_return=ret,
        roi=ret / spend if spend > 0 else None,
        feasible=not violations,
        violations=tuple(violations),
    )


def plan_cents(problem: Problem, bounds, xs: np.ndarray) -> np.ndarray:
    """A single-horizon plan in whole cents: the period plan's rounding, with T = 1."""
    lo = np.array([[b.value] for b, _ in bounds])
    hi = np.maximum(np.array([[b.value] for _, b in bounds]), lo)
    return period_to_cents(one_period(problem, bounds), lo, hi, np.asarray(xs, float)[:, None]).ravel()


def report_plan(problem: Problem, bounds, pieces, model: Model, xs: np.ndarray, base: Allocation,
            guard_current: bool = True) -> Allocation:
    """Round ``xs`` to the cent and report it on the true curves (``guard_current``: fall back
    to a feasible current plan that scores better, which only an envelope plan can need)."""
    alloc = base
    alloc.status = "optimal"
    current = summarise_current(problem, bounds)
    cents = plan_cents(problem, bounds, xs)
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
    below = below_break_even(problem, bounds, spends, alloc)
    if below:
        out.insert(0, below)
    return out


# --------------------------------------------------------------------------------------------
# Period plans


def empty_period_allocation(problem: PeriodProblem, mode: str) -> PeriodAllocation:
    return PeriodAllocation(
        scenario=problem.name, status="infeasible", objective=problem.objective, budget=problem.budget,
        currency=problem.currency, mode=mode, periods=tuple(problem.periods),
        count_after_horizon=problem.count_after_horizon,
    )


def summarise_current_periods(problem: PeriodProblem) -> PlanSummary | None:
    cur = problem.current()
    if cur is None:
        return None
    ev = plan_returns(problem, cur)
    spend = float(cur.sum())
    violations = plan_violations(problem, cur, ev["total"], tol=0.5)
    return PlanSummary(spend=spend, reserve=clamp_cent(problem.budget - spend), expected_return=ev["total"],
                       roi=ev["total"] / spend if spend > 0 else None, feasible=not violations,
                       violations=tuple(violations))


def report_period_plan(problem, alloc: PeriodAllocation, lo, hi, x, curves, sol, model: PeriodModel,
            guard_current: bool = True) -> PeriodAllocation:
    C, T = lo.shape
    b = problem.budget
    cents = period_to_cents(problem, lo, hi, x)
    spends = cents / 100.0
    ev = plan_returns(problem, spends, curves)
    current = summarise_current_periods(problem)
    if guard_current and current is not None and current.feasible:
        cur = problem.current()
        if objective_value(problem, float(spends.sum()), ev["total"]) < objective_value(
            problem, current.spend, current.expected_return
        ) - 1e-9 * max(1.0, abs(current.expected_return)):
            alloc.warnings.append("the plan scored below the current plan on the true curves; keeping the current plan")
            cents = np.rint(cur * 100).astype(np.int64)
            spends = cents / 100.0
            ev = plan_returns(problem, spends, curves)
    alloc.status = "optimal"
    alloc.period_spend = spends
    alloc.period_effective = ev["effective"]
    alloc.period_return = ev["returns"]
    alloc.after_horizon = ev["after_horizon"]
    alloc.after_horizon_return = float(ev["after_horizon"].sum())
    alloc.carryover_return = ev["carryover_return"]
    reserve_c = int(round(b * 100)) - int(cents.sum())
    spend_total = int(cents.sum()) / 100.0
    ret_total = ev["total"]
    margins = period_marginal_roi(problem, ev["effective"], curves)
    cur = problem.current()
    per_channel_return = ev["returns"].sum(axis=1) + (ev["after_horizon"] if problem.count_after_horizon else 0.0)
    for i, ch in enumerate(problem.channels):
        s = float(cents[i].sum()) / 100.0
        cs = float(cur[i].sum()) if cur is not None else 0.0
        r = float(per_channel_return[i])
        alloc.channels.append(ChannelResult(
            channel=ch.name, group=ch.group, spend=s, share=s / b if b else 0.0, current_spend=cs,
            change=s - cs, expected_return=r, roi=r / s if s > 0 else None,
            marginal_roi=float(margins[i]), label=ch.label,
        ))
    for g in problem.group_names:
        mask = np.array([c.group == g for c in problem.channels])
        gs = float(cents[mask].sum()) / 100.0
        gc = float(cur[mask].sum()) if cur is not None else 0.0
        alloc.groups.append(GroupResult(group=g, spend=gs, share=gs / b if b else 0.0, current_spend=gc))
    alloc.spend = spend_total
    alloc.reserve = reserve_c / 100.0
    alloc.expected_return = ret_total
    alloc.roi = ret_total / spend_total if spend_total > 0 else None
    alloc.current = current
    if current is not None and current.expected_return > 0:
        alloc.uplift = ret_total / current.expected_return - 1.0
    alloc.binding = _period_binding(problem, lo, hi, spends, alloc, model)
    alloc.warnings.extend(_period_warnings(problem, spends, alloc))
    return alloc


def _period_binding(problem, lo, hi, spends, alloc, model: PeriodModel) -> list[Binding]:
    """The limits the plan sits at, under the names of the LP's constraints, with their prices."""
    out: list[Binding] = []
    b = problem.budget
    tol = 0.011 + 1e-7 * b

    def price(name):
        pi = getattr(model.named.get(name), "pi", None)
        return None if pi is None else abs(float(pi))

    if alloc.reserve <= problem.reserve_min + tol:
        out.append(Binding("reserve_min", f"reserve held at its minimum {money(problem.reserve_min, problem.currency)} "
                           f"({pct(problem.reserve_min_share)} of budget)", price("budget_total")))
    if problem.reserve_max_share is not None and alloc.reserve >= problem.reserve_max_share * b - tol:
        out.append(Binding("reserve_max", f"reserve at its maximum {pct(problem.reserve_max_share)}"))
    for g in problem.group_names:
        spec = problem.group(g)
        s = float(sum(spends[i].sum() for i, c in enumerate(problem.channels) if c.group == g))
        if spec.min_share is not None and s <= spec.min_share * b + tol:
            out.append(Binding(f"group_min[{g}]", f"group {g} at its minimum {pct(spec.min_share)} ({money(s)})", price(f"group_min[{g}]")))
        if spec.max_share is not None and s >= spec.max_share * b - tol:
            out.append(Binding(f"group_max[{g}]", f"group {g} at its maximum {pct(spec.max_share)} ({money(s)})", price(f"group_max[{g}]")))
    p_lo, p_hi = problem.period_limits()
    col = spends.sum(axis=0)
    caps = per_period(problem.pacing.cap, problem.T, _INF)
    for t, label in enumerate(problem.periods):
        if p_lo[t] > 0 and col[t] <= p_lo[t] + tol:
            out.append(Binding(f"period_min[{label}]", f"period {label} at its minimum {money(p_lo[t])}", price(f"period_min[{label}]")))
        if math.isfinite(p_hi[t]) and col[t] >= p_hi[t] - tol:
            name = f"{period_max_name(caps[t], p_hi[t])}[{label}]"
            out.append(Binding(name, f"period {label} at its maximum {money(p_hi[t])}", price(name)))
    for i, ch in enumerate(problem.channels):
        s = float(spends[i].sum())
        if ch.min_total is not None and s <= ch.min_total + tol:
            out.append(Binding(f"min_total[{ch.name}]", f"{ch.name} at its minimum {money(ch.min_total)}", price(f"min_total[{ch.name}]")))
        if ch.max_total is not None and s >= ch.max_total - tol:
            out.append(Binding(f"max_total[{ch.name}]", f"{ch.name} at its maximum {money(ch.max_total)}", price(f"max_total[{ch.name}]")))
    frac, absolute = problem.change_limits()
    for i, ch in enumerate(problem.channels):
        for t in range(1, problem.T):
            d, prev = spends[i, t] - spends[i, t - 1], spends[i, t - 1]
            limit = min(frac[i] * prev if math.isfinite(frac[i]) else _INF, absolute[i])
            if math.isfinite(limit) and abs(d) >= limit - tol and (limit > 0 or prev > 0):
                out.append(Binding(f"max_change[{ch.name},{problem.periods[t]}]",
                                   f"{ch.name} changes by {money(d)} into {problem.periods[t]}, its limit"))
    if problem.roi_min is not None and alloc.spend > 0 and alloc.roi is not None and alloc.roi <= problem.roi_min * (1 + 1e-4):
        out.append(Binding("roi_min", f"overall ROI {alloc.roi:.3f} at the floor {problem.roi_min:g}", price("roi_min")))
    if problem.objective == "min_spend" and problem.target_return is not None:
        out.append(Binding("target_return", f"return reaches the target {money(problem.target_return)}", price("target_return")))
    return out


def _period_warnings(problem, spends, alloc) -> list[str]:
    out = []
    unspent = alloc.reserve - problem.reserve_min
    if unspent > 1.0 and problem.objective == "max_return":
        reasons = sorted({bd.name.split("[")[0] for bd in alloc.binding if bd.name != "reserve_min"})
        out.append(f"{money(unspent, problem.currency)} above the minimum reserve is left unspent and kept in reserve"
                   + (f" (limits that bind: {', '.join(reasons)})" if reasons else ""))
    if not problem.count_after_horizon and any(c.alpha > 0 for c in problem.channels) and alloc.after_horizon_return > 0:
        out.append(f"{money(alloc.after_horizon_return, problem.currency)} of return from this plan arrives after the horizon "
                   "(carryover) and is not counted; set count_after_horizon to count it")
    return out
