"""Plan a loaded scenario: the one call behind ``budget allocate`` and ``budget forecast``.

A scenario may be single-horizon or period by period (``[horizon]``), on written curves or on
curves fitted from history; with a fitted model the plan also gets the spread of its return over
the bootstrap curve samples, and optionally a risk-averse (CVaR) plan. Notebook users call
:func:`plan_scenario` and :func:`forecast_scenario` exactly as the CLI does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scenarios.errors import ScenarioError


@dataclass
class ScenarioPlan:
    """The recommended allocation plus what else the scenario asked for.

    ``extra`` holds the JSON blocks added to the allocation: ``return_interval`` (P10/P50/P90 of
    the return over curve samples), or ``risk`` and ``risk_neutral`` with a CVaR plan.
    """

    allocation: object
    periodic: bool
    period_problem: object = None
    extra: dict = field(default_factory=dict)


def curve_samples(scenario, per_period: bool = False) -> dict | None:
    """Bootstrap curve samples per channel (None without any); written curves repeat themselves.

    ``per_period``: per-period curves (for period plans) instead of horizon planning curves.
    """
    from models.curves import HillCurve

    model = scenario.model
    boot = getattr(model, "bootstrap_", None) if model is not None else None
    if not boot or not any(len(v) for v in boot.values()):
        return None
    S = max(len(v) for v in boot.values())
    out = {}
    for c in scenario.problem.channels:
        if c.name in scenario.fitted_channels and len(boot.get(c.name, ())) == S:
            if per_period:
                out[c.name] = [HillCurve(beta=float(b), k=float(k), s=float(sh)) for b, k, sh, _a in boot[c.name]]
            else:
                out[c.name] = model.planning_curve_samples(c.name, scenario.periods)
        else:
            out[c.name] = [c.curve] * S
    return out


def _period_samples(scenario, problem, samples: dict) -> dict:
    """Per-period curve samples for every channel of a period problem: a channel with written
    curves enters with its (split) curve in every sample."""
    S = len(next(iter(samples.values())))
    out = dict(samples)
    for c in problem.channels:
        if c.name not in scenario.fitted_channels:
            out[c.name] = [c.curve] * S
    return out


def plan_scenario(scenario, *, exact: bool = False, lp_path: str | None = None,
                  risk_alpha: float | None = None) -> ScenarioPlan:
    """Solve a scenario (single horizon or period by period).

    Parameters
    ----------
    scenario
        From :func:`scenarios.load_scenario`.
    exact
        Solve S-curves exactly (single horizon).
    lp_path
        Write the final LP to this file.
    risk_alpha
        Plan for the bad case: maximise CVaR at this level over the bootstrap curve samples
        (over the whole horizon for a period plan).

    Raises
    ------
    ScenarioError
        ``risk_alpha`` without curve samples.
    """
    from optimizer import optimize
    from optimizer.periods import optimize_periods
    from optimizer.risk import optimize_cvar, optimize_cvar_periods, return_distribution
    from scenarios.horizon import period_problem

    periodic = scenario.horizon_spec is not None
    if risk_alpha is not None:
        samples = curve_samples(scenario, per_period=periodic)
        if samples is None:
            raise ScenarioError(["risk: needs curve samples: fit the curves from history ([history] or [model]) "
                                 "with bootstrap > 0"], scenario.name)
        if periodic:
            problem = period_problem(scenario, scenario.horizon_spec)
            plans = optimize_cvar_periods(problem, _period_samples(scenario, problem, samples), risk_alpha)
            plans.averse.notes.extend(problem.notes)
        else:
            problem = None
            plans = optimize_cvar(scenario.problem, samples, risk_alpha)
        result = ScenarioPlan(plans.averse, periodic, period_problem=problem,
                              extra={"risk": plans.risk, "risk_neutral": plans.neutral.to_dict()})
    elif periodic:
        problem = period_problem(scenario, scenario.horizon_spec)
        alloc = optimize_periods(problem, lp_path=lp_path)
        alloc.notes.extend(problem.notes)
        result = ScenarioPlan(alloc, True, period_problem=problem)
    else:
        result = ScenarioPlan(optimize(scenario.problem, exact=exact, lp_path=lp_path), False)
    alloc = result.allocation
    alloc.notes[:0] = scenario.notes
    alloc.warnings[:0] = scenario.warnings
    if alloc.feasible and "risk" not in result.extra:
        samples = curve_samples(scenario, per_period=periodic)
        if samples is not None:
            if periodic:
                samples = _period_samples(scenario, result.period_problem, samples)
                result.extra["return_interval"] = return_distribution(alloc, samples, problem=result.period_problem)
            else:
                result.extra["return_interval"] = return_distribution(alloc, samples)
    return result


def forecast_scenario(scenario, *, seed: int = 0) -> tuple[dict, ScenarioPlan]:
    """Forecast the scenario's horizon under its current and recommended plans.

    Returns the forecast (see :func:`models.forecast.forecast`, plus ``scenario`` and ``notes``)
    and the plan it used; an infeasible plan is returned with an empty forecast.

    Raises
    ------
    ScenarioError
        The scenario's curves do not come from history.
    """
    from models.forecast import forecast

    model = scenario.model
    if model is None:
        raise ScenarioError(["forecasting needs curves fitted from history: add a [history] or [model] table"],
                            scenario.name)
    plan = plan_scenario(scenario)
    alloc = plan.allocation
    if not alloc.feasible:
        return {}, plan
    fitted = set(model.channels_)
    if plan.periodic:
        periods = len(alloc.periods)
        recommended = {c.channel: alloc.period_spend[i] for i, c in enumerate(alloc.channels) if c.channel in fitted}
    else:
        periods = scenario.periods
        recommended = {c.channel: np.full(periods, c.spend / periods) for c in alloc.channels if c.channel in fitted}
    plans = {
        "current": {c.name: np.full(periods, c.current / periods) for c in scenario.problem.channels if c.name in fitted},
        "recommended": recommended,
    }
    fc = forecast(model, plans, periods, seed=seed)
    fc["scenario"] = scenario.name
    fc["notes"] = []
    if plan.periodic and plan.period_problem is not None and np.any(np.abs(plan.period_problem.efficiency() - 1.0) > 1e-9):
        fc["notes"].append(
            "the period plan was made with a seasonal efficiency per period (see allocate's notes); the media "
            "return here is the fitted model's, which has no such multiplier, so the two differ by it"
        )
    if plan.periodic and alloc.count_after_horizon:
        fc["notes"].append(
            f"the recommended period plan also earns {alloc.after_horizon_return:,.0f} after the horizon through "
            "carryover (its scenario counts it); this forecast shows the horizon only"
        )
    return fc, plan
