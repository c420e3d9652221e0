"""The report: a solved plan, rounded to the cent, told on the true curves.

One report for every plan (a single-horizon plan is a plan of one period, made by
:func:`optimizer.periods.one_period`): :func:`report` turns the LP's spends into the
:class:`~optimizer.result.Allocation` (or :class:`~optimizer.result.PeriodAllocation`) it was
handed: every channel's spend, return, ROI and marginal ROI, the groups, the current plan it is
compared with (:func:`summarise_current`), the limits that bind with their shadow prices
(``_binding``, under the LP's constraint names; a one-period plan keeps the single-horizon
names of its channel limits, ``max_spend[c]``, ``max_share[c]``, …) and the warnings a careful
reader needs (``_warnings``).
"""

from __future__ import annotations

import math

import numpy as np

from models.curves import CurveSet
from optimizer.cents import clamp_cent, period_to_cents
from optimizer.marginal import below_break_even, is_zero_curve, period_marginal_roi
from optimizer.period_model import period_max_name
from optimizer.periods import PeriodProblem, per_period, plan_returns, plan_violations
from optimizer.problem import broken_limits, channel_bounds, objective_value
from optimizer.result import (
    Allocation, Binding, ChannelResult, GroupResult, PeriodAllocation, PlanSummary, money, pct, unit_name,
)

_INF = math.inf

#: How to get the exact plan of S-shaped curves, in the words of every command that warns of the
#: envelope (only allocate and compare plan with --exact; rebalance, forecast, report do not).
EXACT_HINT = "budget allocate --exact or budget compare --exact plans them exactly"


def returns_of(problem: PeriodProblem, spends: np.ndarray, curves=None) -> dict:
    """:func:`optimizer.periods.plan_returns`, where a single-horizon plan's returns are whole:
    what a channel earns at its spend, not the increment over no spend (they differ only for a
    tabulated curve that starts above zero)."""
    ev = plan_returns(problem, spends, curves)
    if problem.origin is not None:
        curves = [c.curve for c in problem.channels] if curves is None else curves
        at_zero = CurveSet(list(curves)).response(np.zeros(len(problem.channels)))
        ev["returns"] = ev["returns"] + at_zero[:, None]
        ev["total"] += float(at_zero.sum())
    return ev


def empty_allocation(problem: PeriodProblem, mode: str) -> Allocation:
    """The result to fill: an Allocation for a one-period plan, else a PeriodAllocation."""
    fields = dict(scenario=problem.name, status="infeasible", objective=problem.objective, budget=problem.budget,
                  currency=problem.currency, mode=mode, return_unit=problem.return_unit)
    if problem.origin is not None:
        return Allocation(**fields)
    return PeriodAllocation(**fields, periods=tuple(problem.periods), count_after_horizon=problem.count_after_horizon)


def summarise_current(problem: PeriodProblem) -> PlanSummary | None:
    """The current plan on the true curves, and the limits it breaks (None when there is none)."""
    cur = problem.current()
    if cur is None:
        return None
    ev = returns_of(problem, cur)
    spend = float(cur.sum())
    if problem.origin is not None:  # in the single-horizon limits' own words
        violations = broken_limits(problem.origin, cur.ravel(), ev["returns"].ravel())
    else:
        violations = plan_violations(problem, cur, ev["total"], tol=0.5)
    return PlanSummary(spend=spend, reserve=clamp_cent(problem.budget - spend), expected_return=ev["total"],
                       roi=ev["total"] / spend if spend > 0 else None, feasible=not violations,
                       violations=tuple(violations))


def report(problem: PeriodProblem, alloc: Allocation, lo, hi, x, curves, model=None, *,
           guard_current: bool = True) -> Allocation:
    """Round the plan ``x`` (channels × periods) to the cent and report it on the true ``curves``.

    Parameters
    ----------
    problem
        The plan's problem (a one-period plan for a single horizon).
    alloc
        The empty result to fill: an Allocation, or a PeriodAllocation for its period figures.
    lo, hi
        Every entry's spend interval (what rounding must keep).
    model
        The solved LP, for the shadow prices of the limits that bind (None: no prices).
    guard_current
        Fall back to a feasible current plan that scores better, which only an envelope plan can need.
    """
    b = problem.budget
    cents = period_to_cents(problem, lo, hi, x)
    spends = cents / 100.0
    ev = returns_of(problem, spends, curves)
    current = summarise_current(problem)
    if guard_current and current is not None and current.feasible and objective_value(
        problem, float(spends.sum()), ev["total"]
    ) < objective_value(problem, current.spend, current.expected_return) - 1e-9 * max(1.0, abs(current.expected_return)):
        envelope = alloc.mode == "envelope"
        alloc.warnings.append(f"the {'envelope ' if envelope else ''}plan scored below the current plan on the true "
                              "curves; keeping the current plan" + (f" ({EXACT_HINT})" if envelope else ""))
        cents = np.rint(problem.current() * 100).astype(np.int64)
        spends = cents / 100.0
        ev = returns_of(problem, spends, curves)
    alloc.status = "optimal"
    if isinstance(alloc, PeriodAllocation):
        alloc.period_spend = spends
        alloc.period_effective = ev["effective"]
        alloc.period_return = ev["returns"]
        alloc.after_horizon = ev["after_horizon"]
        alloc.after_horizon_return = float(ev["after_horizon"].sum())
        alloc.carryover_return = ev["carryover_return"]
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
    alloc.reserve = (int(round(b * 100)) - int(cents.sum())) / 100.0
    alloc.expected_return = ret_total
    alloc.roi = ret_total / spend_total if spend_total > 0 else None
    alloc.current = current
    if current is not None and current.expected_return > 0:
        alloc.uplift = ret_total / current.expected_return - 1.0
    alloc.binding = _binding(problem, spends, alloc, model)
    alloc.warnings.extend(_warnings(problem, spends, alloc))
    return alloc


def _channel_limits(problem: PeriodProblem):
    """Per channel: (lower, its constraint names, upper, its names, locked) on its total spend.

    A one-period plan names the single-horizon limits that set its channel's interval
    (:func:`optimizer.problem.channel_bounds`); a period plan its ``min_total`` / ``max_total``.
    """
    if problem.origin is not None:
        out = []
        for ch in problem.origin.channels:
            lo, hi = channel_bounds(problem.origin, ch)
            out.append((lo.value, lo.sources, hi.value, hi.sources, ch.locked))
        return out
    return [(ch.min_total or 0.0, (f"min_total[{ch.name}]",) if ch.min_total is not None else (),
             _INF if ch.max_total is None else ch.max_total, (f"max_total[{ch.name}]",) if ch.max_total is not None else (),
             False) for ch in problem.channels]


def _binding(problem: PeriodProblem, spends: np.ndarray, alloc: Allocation, model) -> list[Binding]:
    """The limits the plan sits at, under the names of the LP's constraints, with their prices."""
    out: list[Binding] = []
    b = problem.budget
    cc = problem.currency
    tol = 0.011 + 1e-7 * b
    named = model.named if model is not None else {}

    def price(name):
        pi = getattr(named.get(name), "pi", None)
        return None if pi is None else abs(float(pi))

    if alloc.reserve <= problem.reserve_min + tol:
        # A reserve of the whole budget holds every channel at 0 through its bounds, not the
        # budget row, whose dual is then 0: no price is known (one more unit would earn a lot).
        everything = problem.reserve_min >= b - tol
        out.append(Binding("reserve_min", f"reserve held at its minimum {money(problem.reserve_min, cc)} "
                           f"({pct(problem.reserve_min_share)} of budget)", None if everything else price("budget_total")))
    if problem.reserve_max_share is not None and alloc.reserve >= problem.reserve_max_share * b - tol:
        out.append(Binding("reserve_max", f"reserve at its maximum {pct(problem.reserve_max_share)}"))
    for g in problem.group_names:
        spec = problem.group(g)
        s = float(sum(spends[i].sum() for i, c in enumerate(problem.channels) if c.group == g))
        if spec.min_share is not None and s <= spec.min_share * b + tol:
            out.append(Binding(f"group_min[{g}]", f"group {g} at its minimum {pct(spec.min_share)} ({money(s, cc)})",
                               price(f"group_min[{g}]")))
        if spec.max_share is not None and s >= spec.max_share * b - tol:
            out.append(Binding(f"group_max[{g}]", f"group {g} at its maximum {pct(spec.max_share)} ({money(s, cc)})",
                               price(f"group_max[{g}]")))
    p_lo, p_hi = problem.period_limits()
    col = spends.sum(axis=0)
    caps = per_period(problem.pacing.cap, problem.T, _INF)
    for t, label in enumerate(problem.periods):
        if p_lo[t] > 0 and col[t] <= p_lo[t] + tol:
            out.append(Binding(f"period_min[{label}]", f"period {label} at its minimum {money(p_lo[t], cc)}",
                               price(f"period_min[{label}]")))
        if math.isfinite(p_hi[t]) and col[t] >= p_hi[t] - tol:
            name = f"{period_max_name(caps[t], p_hi[t])}[{label}]"
            out.append(Binding(name, f"period {label} at its maximum {money(p_hi[t], cc)}", price(name)))
    for ch, x, (lo, lo_names, hi, hi_names, locked) in zip(problem.channels, spends.sum(axis=1), _channel_limits(problem)):
        # What set a period plan's total limits: "douyin at its minimum ¥1,459,100 (evidence[douyin])".
        src_lo, src_hi = (tuple(n for n in names if n != "budget_total") for names in ch.total_sources)
        why_lo, why_hi = (f" ({', '.join(w)})" if w else "" for w in (src_lo, src_hi))
        if x <= lo + tol:
            out += [Binding(s, f"{ch.name} at its minimum {money(lo, cc)}{why_lo}", price(s), src_lo)
                    for s in lo_names]
        if (hi > lo + tol or locked) and x >= hi - tol:
            # The budget caps every channel; a locked channel's limits are named once, as its minimum.
            out += [Binding(s, f"{ch.name} at its maximum {money(hi, cc)}{why_hi}", price(s), src_hi) for s in hi_names
                    if s != "budget_total" and not (locked and s in lo_names)]
    frac, absolute = problem.change_limits()
    for i, ch in enumerate(problem.channels):
        for t in range(1, problem.T):
            d, prev = spends[i, t] - spends[i, t - 1], spends[i, t - 1]
            limit = min(frac[i] * prev if math.isfinite(frac[i]) else _INF, absolute[i])
            if math.isfinite(limit) and abs(d) >= limit - tol and (limit > 0 or prev > 0):
                out.append(Binding(f"max_change[{ch.name},{problem.periods[t]}]",
                                   f"{ch.name} changes by {money(d, cc)} into {problem.periods[t]}, its limit"))
    if problem.roi_min is not None and alloc.spend > 0 and alloc.roi is not None and alloc.roi <= problem.roi_min * (1 + 1e-4):
        out.append(Binding("roi_min", f"overall ROI {alloc.roi:.3f} at the floor {problem.roi_min:g}", price("roi_min")))
    if problem.objective == "min_spend" and problem.target_return is not None:
        out.append(Binding("target_return", f"return reaches the target {money(problem.target_return, problem.return_currency)}",
                           price("target_return")))
    return out


def _warnings(problem: PeriodProblem, spends: np.ndarray, alloc: Allocation) -> list[str]:
    out = []
    cc = problem.currency
    origin = problem.origin
    for ch, x in zip(origin.channels if origin is not None else (), spends.ravel()):
        # Period plans say it once, for the whole plan (optimizer.solve.optimize_periods).
        if not ch.curve.is_concave and alloc.mode != "exact":
            env = float(ch.curve.envelope().response(x))
            true = float(ch.curve.response(x))
            if env - true > 1e-6 * max(1.0, env):
                out.append(f"{ch.name} has an S-shaped curve; it was planned on its concave envelope, which "
                           f"overstates its return at {money(x, cc)} by {money(env - true, problem.return_currency)} "
                           f"({EXACT_HINT})")
        if ch.max_change is not None and ch.current == 0:
            out.append(f"{ch.name}: max_change is relative to a current spend of 0, so it stays at 0")
    unspent = alloc.reserve - problem.reserve_min
    if unspent > 1.0 and problem.objective == "max_return":
        reasons = sorted({bd.name.split("[")[0] for bd in alloc.binding if bd.name != "reserve_min"})
        out.append(f"{money(unspent, cc)} above the minimum reserve is left unspent and kept in reserve"
                   + (f" (limits that bind: {', '.join(reasons)})" if reasons else ""))
    for bd in alloc.binding:
        if bd.name.startswith("extrapolation_cap["):
            out.append(f"{bd.detail}: capped at 1.5× the largest spend seen in history (extrapolation cap)")
    if not problem.count_after_horizon and any(c.alpha > 0 for c in problem.channels) and alloc.after_horizon_return > 0:
        out.append(f"{money(alloc.after_horizon_return, problem.return_currency)} of return from this plan arrives after the horizon "
                   "(carryover) and is not counted; set count_after_horizon to count it")
    if origin is not None:
        bounds = [channel_bounds(origin, ch) for ch in origin.channels]
        below = below_break_even(origin, bounds, spends.ravel(), alloc)
    else:
        below = _period_below_break_even(problem, spends, alloc) if unspent <= 1.0 else None
    if below:
        out.insert(0, below)
    return out


def _period_below_break_even(problem: PeriodProblem, spends: np.ndarray, alloc: Allocation) -> str | None:
    """A period plan maximising return whose next unit of money returns less than it costs.

    Its marginal ROI (``alloc.marginal_roi``) is the best return of one more unit among the
    channels that could take it (not locked, below their total maximum, earning something), each
    in its best period: an upper bound of the plan's own, so the warning is never given wrongly.
    A period plan's break-even budget is not searched here (``budget frontier`` sweeps budgets)."""
    tol = 0.011 + 1e-7 * problem.budget
    free = [c.marginal_roi for c, ch, (_, _, hi, _, locked), x
            in zip(alloc.channels, problem.channels, _channel_limits(problem), spends.sum(axis=1))
            if not (locked or ch.locked) and x < hi - tol and not is_zero_curve(ch.curve)]
    if not free:
        return None
    lam = max(free)
    alloc.marginal_roi = lam if np.isfinite(lam) else None
    if problem.objective != "max_return" or not problem.return_in_money or not np.isfinite(lam) or round(lam, 2) >= 1:
        return None
    unit = unit_name(problem.currency)
    return (f"at this budget one more {unit} returns at most {lam:.2f} in any channel and period (marginal ROI < 1): "
            f"part of the spend loses money; `budget frontier` sweeps budgets to show where break-even is")
