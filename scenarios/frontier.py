"""The budget frontier: what each budget level buys under a scenario's constraints.

``budget frontier`` answers "what does the next ¥1M buy?" and "is 15% or 20% of GMV the better
budget?": the scenario is planned at a sweep of budgets, each level exactly as ``budget allocate
--budget B`` would plan it (every constraint of the file; the current plan scaled to keep its
split, locked channels at their amounts), so any row can be reproduced with that command.

Each level reports its expected return (with P10/P50/P90 over the curve samples when
the curves are fitted), ROI, the plan's marginal ROI (the return of its last unit of money) and
the channel mix. Besides the levels the frontier gives:

* **break-even**: about the budget at which the plan's marginal ROI falls to 1
  (:func:`optimizer.solve.break_even_budget`, under the scenario's constraints but its own
  marginal-ROI floor, which would stop the plan short of it); past it the last money returns less
  than it costs;
* **floor**: with ``[constraints] marginal_roi_min = μ``, the budget at which the marginal ROI
  falls to μ, past which the plan keeps the rest in reserve;
* **favoured**: the level within the swept band that the curves favour: the largest budget whose
  last unit of money still earns the scenario's threshold (its marginal-ROI floor if it has one;
  else 1/margin when it maximises profit; else 1, break-even), i.e. the threshold's budget
  clipped to the band. Below it, more money earns more than it costs; above it, the extra money
  loses. It is continuous, not one of the swept levels, and is planned like them; when no plan
  there meets every constraint, or a smaller swept level's plan scores as well or better (an
  overall ROI floor, which the threshold leaves out, can make more budget earn less), it is the
  swept level below it whose plan scores best (return; profit for ``max_profit``), and its
  reason says so.

Levels are multiples of the scenario's budget, or (``of_forecast``) shares of the horizon's
forecast KPI (:func:`models.forecast.kpi_forecast`: the baseline plus the media return at the
historical run rate; the planning documents set marketing spend at 15–20% of GMV).

A scenario with a ``[horizon]`` is swept on its single-horizon form (the horizon's totals on the
steady-state planning curves), where break-even is defined; the result says so in its notes.

Speed: the scenario and its curves are loaded once and every level reuses them and the curve
samples; each level is one LP (two or three on S-curves), whose first breakpoints sit at the
level's own common marginal return (a root search), which is what a warm start would buy.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from scenarios.errors import ScenarioError

__all__ = ["DEFAULT_LEVELS", "DEFAULT_FORECAST_LEVELS", "budget_frontier", "forecast_kpi", "frontier_levels",
           "parse_level", "problem_at"]

#: How a plan's warning that its last money loses starts (optimizer.solve._below_break_even).
_BELOW_BREAK_EVEN = "at this budget the last "
#: The default sweep: 0.5× to 2× the scenario's budget in 16 levels.
DEFAULT_LEVELS = (0.5, 2.0, 16)
#: The default sweep with ``of_forecast``: 15% to 20% of the forecast KPI (the planning documents'
#: "marketing spend 15–20% of GMV"), in 16 levels.
DEFAULT_FORECAST_LEVELS = (0.15, 0.20, 16)


def parse_level(text: str | float) -> float:
    """A level as typed: ``"15%"`` → 0.15, ``"0.5"`` → 0.5, ``1.5`` → 1.5.

    Raises
    ------
    ValueError
        Not a finite number > 0 (with or without ``%``).
    """
    raw = str(text).strip()
    percent = raw.endswith("%")
    try:
        value = float(raw[:-1] if percent else raw)
    except ValueError:
        raise ValueError(f"must be a number such as 0.5 or a percentage such as 15%, got {raw!r}") from None
    if percent:
        value /= 100.0
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be > 0, got {raw!r}")
    return value


def frontier_levels(start: float, stop: float, steps: int) -> list[float]:
    """``steps`` evenly spaced levels from ``start`` to ``stop`` (both included).

    Raises
    ------
    ValueError
        ``steps`` < 2, or not 0 < start < stop.
    """
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    if not (0 < start < stop) or not math.isfinite(stop):
        raise ValueError(f"the sweep must go from a level > 0 up to a larger one, got {start:g} to {stop:g}")
    return [float(v) for v in np.round(np.linspace(start, stop, steps), 12)]


def forecast_kpi(scenario) -> dict:
    """The horizon's forecast KPI a share-of-forecast level is a share of (see
    :func:`models.forecast.kpi_forecast`): the one the scenario's ``share_of_forecast`` budget was
    taken of, else computed over the scenario's periods.

    Raises
    ------
    ScenarioError
        The scenario's curves do not come from history, or its model has no forecasting baseline.
    """
    if scenario.forecast_kpi is not None:
        return scenario.forecast_kpi
    if scenario.model is None:
        raise ScenarioError(["levels as shares of the forecast KPI need curves fitted from history "
                             "([history] or [model]) to forecast it"], scenario.name)
    from models.forecast import kpi_forecast

    try:
        return kpi_forecast(scenario.model, scenario.periods)
    except NotImplementedError as exc:
        raise ScenarioError([f"cannot forecast the KPI: {exc}"], scenario.name) from None


def problem_at(scenario, budget: float, *, floor: bool = True, evidence: bool = True):
    """The scenario's problem at another total budget, as ``budget allocate --budget`` plans it:
    shares keep their meaning, the current plan is scaled to keep its split (so change limits move
    with it), locked channels keep their amounts and fitted channels get the evidence limits
    allocate puts on them (:mod:`scenarios.evidence`, around the scaled split; ``evidence=False``
    leaves them out, as a guarded plan does). ``floor=False`` drops the marginal-ROI floor."""
    from scenarios.evidence import levels, limit_problem

    base = scenario.problem
    scale = budget / base.budget if base.budget > 0 else 1.0
    channels = tuple(c if c.locked else replace(c, current=c.current * scale) for c in base.channels)
    problem = replace(base, budget=float(budget), channels=channels)
    if evidence:
        problem, _ = limit_problem(problem, levels(scenario))
    return problem if floor else replace(problem, marginal_roi_min=None)


def _plan_at(scenario, budget: float, samples):
    """The scenario's plan at ``budget``: over the curve samples when the scenario sets a ``risk``
    (the guard without the evidence limits, as allocate plans it), else on the fitted curves."""
    from optimizer import optimize

    risk = scenario.risk
    if risk is None:
        return optimize(problem_at(scenario, budget))
    from scenarios.plan import plan_over_samples

    problem = problem_at(scenario, budget, evidence=risk.measure != "guard")
    return plan_over_samples(replace(scenario, problem=problem), samples, risk.alpha, risk.measure)


def _threshold_budget(scenario, mroi: float) -> float | None:
    """About the budget at which the plan's marginal ROI falls to ``mroi``, each budget tried
    with the current plan scaled to it (change limits are relative to it), as the levels are
    planned; without the scenario's own marginal-ROI floor. None beyond any plannable budget."""
    from optimizer import break_even_budget
    from scenarios.schema import MAX_MONEY

    def at(budget: float):
        return problem_at(scenario, budget, floor=False)

    b = break_even_budget(at(float(scenario.problem.budget)), mroi, problem_at=at)
    if b <= 0.01:
        return 0.0
    return round(b, 2) if b <= MAX_MONEY else None


def _row(scenario, level: float, budget: float, samples) -> dict:
    """One level: the scenario planned at ``budget``."""
    from optimizer import return_distribution

    alloc = _plan_at(scenario, budget, samples)
    d = alloc.to_dict()
    row = {
        "level": level,
        "budget": d["budget"],
        "status": d["status"],
        "spend": d["spend"] if alloc.feasible else None,
        "reserve": d["reserve"] if alloc.feasible else None,
        "expected_return": d["expected_return"] if alloc.feasible else None,
        "return_interval": None,
        "roi": d["roi"],
        "marginal_roi": d["marginal_roi"],
        "channels": [{k: c[k] for k in ("channel", "spend", "share", "expected_return", "marginal_roi")}
                     for c in d["channels"]],
        "binding_constraints": [b["name"] for b in d["binding_constraints"]],
        # The plan's own "marginal ROI < 1 … break-even at about X" holds the current plan at this
        # level's scale while the frontier scales it with every budget it tries: one break-even
        # (the frontier's) is reported, not two that differ where change limits bind.
        "warnings": [w for w in d["warnings"] if not w.startswith(_BELOW_BREAK_EVEN)],
        "diagnosis": list(d["diagnosis"]),
    }
    if alloc.feasible and samples is not None:
        row["return_interval"] = return_distribution(alloc, samples)
    return row


#: The threshold's reason when the KPI is not money and the scenario gives no value for it.
KPI_BREAK_EVEN = "one KPI unit per unit of money, which is break-even only if a KPI unit is worth that much"


def _threshold(scenario) -> tuple[float, str]:
    """The marginal ROI below which the scenario's last money is not worth spending, and why."""
    p = scenario.problem
    if p.marginal_roi_min is not None:
        return float(p.marginal_roi_min), "the scenario's marginal-ROI floor"
    if p.objective == "max_profit" and p.margin:
        return 1.0 / float(p.margin), f"1/margin (a unit of return is worth {p.margin:g} in profit)"
    if not p.return_in_money:
        return 1.0, KPI_BREAK_EVEN
    return 1.0, "break-even"


def _score(problem, row: dict) -> float:
    """What a level's plan is worth by the scenario's objective (profit for max_profit, else return)."""
    if problem.objective == "max_profit" and problem.margin:
        return float(problem.margin) * row["expected_return"] - row["spend"]
    return row["expected_return"]


def _favoured(scenario, band: tuple[float, float], reference: float, threshold: tuple[float, str],
              at_threshold: float | None, samples, rows: list[dict]) -> dict:
    """The level in ``band`` (budgets) the curves favour: the threshold's budget clipped to it."""
    from optimizer import money, unit_name

    lo, hi = band
    t, why = threshold
    cc = scenario.problem.currency
    last = f"the last {unit_name(cc)}"
    if at_threshold is None or at_threshold > hi:
        budget = hi
        top = next((r for r in reversed(rows) if r["marginal_roi"] is not None), None)
        reason = (f"the top of the band: there {last} still returns {top['marginal_roi']:.3g} ≥ {t:.4g} ({why})"
                  if top else "the top of the band")
        reason += (f"; the curves would take more, up to about {money(at_threshold, cc)}" if at_threshold
                   else "; the curves would take more than any plannable budget")
    elif at_threshold < lo:
        budget = lo
        low = next((r for r in rows if r["marginal_roi"] is not None), None)
        reason = (f"the bottom of the band: even there {last} returns {low['marginal_roi']:.3g} < {t:.4g} ({why})"
                  if low else "the bottom of the band")
        reason += (f", reached at about {money(at_threshold, cc)}" if at_threshold > 0.01
                   else f"; no channel earns it even on its first {unit_name(cc)}")
    else:
        budget = at_threshold
        reason = (f"{last} returns {t:.4g} at about {money(budget, cc)} ({why}): below that budget more money earns "
                  "more than it costs, above it the extra money loses")
    budget = round(budget, 2)
    plan = _row(scenario, budget / reference, budget, samples)
    # Limits the threshold leaves out (an overall ROI floor; share minimums under it) can make a
    # larger budget earn less, or nothing more, or leave no plan at all: then the swept level
    # below it whose plan scores best (the smallest budget on a tie to the cent) is favoured.
    problem = scenario.problem
    below = [r for r in rows if r["status"] == "optimal" and r["budget"] < budget]
    candidates = below + ([plan] if plan["status"] == "optimal" else [])
    if candidates:
        best = max(candidates, key=lambda r: (round(_score(problem, r), 2), -r["budget"]))
        what = "earns the most profit" if problem.objective == "max_profit" else "returns the most"
        if plan["status"] != "optimal":
            why_not = f" ({plan['diagnosis'][0]})" if plan["diagnosis"] else ""
            reason += (f"; no plan at that budget satisfies every constraint{why_not}, so the level below it whose "
                       f"plan {what}, {money(best['budget'], cc)}")
        elif best is not plan:
            reason += (f"; but under the scenario's other limits the plan at {money(best['budget'], cc)} {what} "
                       "(a larger budget buys nothing more), so that level")
        plan, budget = best, best["budget"]
    else:
        why_not = f" ({plan['diagnosis'][0]})" if plan["diagnosis"] else ""
        reason += f"; but no plan at that budget satisfies every constraint{why_not}"
    return {"budget": budget, "level": budget / reference, "marginal_roi_threshold": t, "reason": reason,
            "set_by_limits": False, "plan": plan}


#: The favoured level's reason when the limits, not the curves, set every budget's spend.
SET_BY_LIMITS = ("the scenario's limits set how much of any budget is spent, and by which groups or locked channels, "
                 "whatever the curves return (locked channels, group shares that add up to the budget, or the "
                 "reserve): no marginal ROI picks a budget, so there is no break-even; this is the scenario's own "
                 "budget, and the levels show what each budget returns")


def _set_by_limits(scenario, reference: float, threshold: tuple[float, str], samples) -> dict:
    budget = round(float(scenario.problem.budget), 2)
    plan = _row(scenario, budget / reference, budget, samples)
    return {"budget": budget, "level": budget / reference, "marginal_roi_threshold": threshold[0],
            "reason": SET_BY_LIMITS, "set_by_limits": True, "plan": plan}


def budget_frontier(scenario, levels=None, *, of_forecast: bool = False, progress=None) -> dict:
    """Plan ``scenario`` at each budget level and find break-even and the favoured level.

    Parameters
    ----------
    scenario
        From :func:`scenarios.load_scenario`.
    levels
        Multiples of the scenario's budget (default 0.5 … 2 in 16 steps), or with ``of_forecast``
        shares of the horizon's forecast KPI (default 15% … 20% in 16 steps); any order, each > 0.
    of_forecast
        Levels are shares of the forecast KPI (:func:`forecast_kpi`).
    progress
        ``progress(done, total)`` after each level (for a progress bar).

    Returns
    -------
    dict
        ``{"scenario", "currency", "objective", "basis" ("budget" | "forecast"), "reference" (the
        amount a level multiplies: the scenario's budget or the forecast KPI), "scenario_budget",
        "scenario_level" (the scenario's budget as a level), "forecast_kpi" (None unless
        ``of_forecast`` or the budget is a share of it), "channels": [{"channel", "label", "group"}],
        "levels": [{"level", "budget", "status", "spend", "reserve", "expected_return",
        "return_interval" (None, or {"samples", "alpha", "mean", "p10", "p50", "p90", "cvar"}),
        "roi", "marginal_roi", "channels": [{"channel", "spend", "share", "expected_return",
        "marginal_roi"}], "binding_constraints": [names], "warnings" (the plan's own, but for its
        "marginal ROI < 1" one: the frontier's break-even replaces it), "diagnosis"}],
        "break_even": {"marginal_roi": 1.0, "budget", "level"} | None,
        "floor": {"marginal_roi", "budget", "level"} | None, "favoured": {"budget", "level",
        "marginal_roi_threshold", "reason", "set_by_limits", "plan": a level row}, "warnings", "notes", "seconds"}``.
        Money is rounded to the cent; each feasible level's spend + reserve is its budget exactly.
        A level no plan satisfies has ``"status": "infeasible"`` and its ``diagnosis``.
        ``break_even`` and ``floor`` are None when the curves never reach that marginal ROI below
        a plannable budget (``budget`` 0: not even the first unit of money earns it), and when
        the limits alone set what any budget spends (the favoured level is then the scenario's
        own budget, its reason :data:`SET_BY_LIMITS`).

    Raises
    ------
    ScenarioError
        ``of_forecast`` without a forecast (curves not from history), or a level whose budget is
        outside one cent … 1e13.
    """
    from scenarios.plan import curve_samples, curve_warnings, required_samples
    from scenarios.schema import MAX_MONEY, MIN_BUDGET

    t0 = time.perf_counter()
    if levels is None:
        levels = frontier_levels(*(DEFAULT_FORECAST_LEVELS if of_forecast else DEFAULT_LEVELS))
    levels = sorted(float(v) for v in levels)
    if not levels or levels[0] <= 0 or not all(math.isfinite(v) for v in levels):
        raise ScenarioError([f"frontier: levels must be finite and > 0, got {levels}"], scenario.name)
    problem = scenario.problem
    kpi = forecast_kpi(scenario) if of_forecast or scenario.forecast_kpi is not None else None
    reference = kpi["total"] if of_forecast else float(problem.budget)
    budgets = [round(v * reference, 2) for v in levels]
    bad = [f"frontier: level {v:g} is a budget of {b:,.2f}, outside one cent … {MAX_MONEY:g}"
           for v, b in zip(levels, budgets) if not MIN_BUDGET <= b <= MAX_MONEY]
    if bad:
        raise ScenarioError(bad, scenario.name)

    samples = required_samples(scenario) if scenario.risk is not None else curve_samples(scenario)
    rows = []
    for i, (v, b) in enumerate(zip(levels, budgets)):
        rows.append(_row(scenario, v, b, samples))
        if progress is not None:
            progress(i + 1, len(levels))

    def at(mroi: float | None) -> dict | None:
        if mroi is None:
            return None
        b = _threshold_budget(scenario, mroi)
        return None if b is None else {"marginal_roi": mroi, "budget": b, "level": b / reference}

    from optimizer import spend_is_set_by_limits

    threshold = _threshold(scenario)
    if spend_is_set_by_limits(problem_at(scenario, float(problem.budget), floor=False)):
        # a threshold would be "found" where the limits, not the curves, put it
        break_even = floor = None
        favoured = _set_by_limits(scenario, reference, threshold, samples)
    else:
        break_even = at(1.0)
        floor = at(problem.marginal_roi_min) if problem.marginal_roi_min is not None else None
        if threshold[0] == 1.0:
            at_threshold = break_even["budget"] if break_even else None
        elif floor is not None and threshold[0] == floor["marginal_roi"]:
            at_threshold = floor["budget"]
        else:
            found = at(threshold[0])
            at_threshold = found["budget"] if found else None
        favoured = _favoured(scenario, (budgets[0], budgets[-1]), reference, threshold, at_threshold, samples, rows)

    notes = list(scenario.notes)
    if scenario.horizon_spec is not None:
        notes.append("this scenario plans period by period; the frontier sweeps its single-horizon form (the "
                     "horizon's totals on the steady-state planning curves), where break-even is defined")
    notes.append("each level is planned as `budget allocate --budget B` plans it: every constraint of the scenario, "
                 "the current plan scaled to keep its split (locked channels keep their amounts)")
    if scenario.risk is not None:
        notes.append(f"each level is planned over the curve samples as the scenario's risk = "
                     f"\"{scenario.risk.measure}:{scenario.risk.alpha:g}\" asks; "
                     "break-even and the favoured level's threshold are the mean curves' marginal ROI")
    if threshold[1] == KPI_BREAK_EVEN:
        notes.append("the KPI is not money (see the warnings): break-even here is where one more unit of money "
                     "returns one KPI unit, not where spend stops paying; set `marginal_roi_min` (KPI units a unit of "
                     "money must still return) or objective = \"max_profit\" with `margin` (a KPI unit's value)")
    if problem.roi_min is not None:
        notes.append("break-even leaves the overall ROI floor out (it is about the last unit of money); the levels "
                     "respect it, and the favoured level is the best plan that does")
    d = {
        "scenario": scenario.name,
        "currency": problem.currency,
        "return_unit": problem.return_unit,
        "objective": problem.objective,
        "basis": "forecast" if of_forecast else "budget",
        "reference": round(reference, 2),
        "scenario_budget": round(float(problem.budget), 2),
        "scenario_level": float(problem.budget) / reference,
        "forecast_kpi": kpi,
        "channels": [{"channel": c.name, "label": c.label, "group": c.group} for c in problem.channels],
        "levels": rows,
        "break_even": break_even,
        "floor": floor,
        "favoured": favoured,
        "warnings": list(dict.fromkeys(curve_warnings(scenario) + list(scenario.warnings))),
        "notes": notes,
    }
    d["seconds"] = time.perf_counter() - t0
    return d

