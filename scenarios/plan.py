"""Plan a loaded scenario: the one call behind ``budget allocate`` and ``budget forecast``.

A scenario may be single-horizon or period by period (``[horizon]``), on written curves or on
curves fitted from history; with a fitted model the plan also gets the spread of its return over
the curve samples, and optionally a risk-averse (CVaR) plan. Notebook users call
:func:`plan_scenario` and :func:`forecast_scenario` exactly as the CLI does.

What a plan rests on is in the plan: every warning about the fitted curves (how well the model
predicts its holdout, channels without a detectable effect, implausible ROI, parameters at their
bounds, a fit that did not converge) is in the allocation's ``warnings``, first, whether the fit
is new or cached (:func:`curve_warnings`). A single-horizon plan values each split at its steady
state; its ``media_forecast`` block and a note give the same plans' media return over the
horizon from the carryover history left, which is what ``forecast`` shows (and forecast's notes
say the same from the other side), so the two outputs never differ without saying why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scenarios.errors import ScenarioError


@dataclass
class ScenarioPlan:
    """The recommended allocation plus what else the scenario asked for.

    ``extra`` holds the JSON blocks added to the allocation: ``return_interval`` (P10/P50/P90 of
    the return over curve samples), or ``risk`` and ``risk_neutral`` with a CVaR plan, and, for a
    single-horizon plan on fitted curves, ``media_forecast``: ``periods``, ``channels`` (the
    fitted ones it covers), ``current`` and ``recommended`` (each ``spend``,
    ``steady_state_return`` as in the plan, ``media_return`` over the horizon from the carryover
    history left, as ``forecast`` shows), ``uplift`` (of the media return), ``carryover_start``
    (past spend still at work when the horizon starts) and ``carryover_steady`` (the same once
    the recommended plan has been running).
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
    boot = getattr(model, "samples_", None) if model is not None else None
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


def curve_warnings(scenario) -> list[str]:
    """Every warning about the fitted curves this scenario plans on, prefixed ``curves:``.

    How well the model predicts comes first (a holdout predicted worse than a naive forecast
    makes the plan a sketch), then the history's and the fit's own, then each fitted channel's
    (channels whose curves the scenario writes itself are left out). Derived from the model's
    saved state (:meth:`models.fit.MediaMixModel.fit_warnings` and its channel report), so a
    cached fit gives the same list as a new one. Empty without a fitted model.
    """
    model = scenario.model
    if model is None:
        return []
    per_channel = {row["channel"]: list(row.get("warnings") or []) for row in getattr(model, "channel_report_", [])}
    of_channels = {w for ws in per_channel.values() for w in ws}
    out = [w for w in model.fit_warnings() if w not in of_channels]
    for c in model.channels_:
        if c not in scenario.fitted_channels:
            continue
        for w in per_channel.get(c, []):
            if w.startswith(f"{c}: no detectable effect") and model.params_[c].beta <= 0:
                w += " — its plan rests on nothing the data shows"
            out.append(w)
    return [f"curves: {w}" for w in dict.fromkeys(out)]


def _media_forecast(scenario, alloc) -> dict | None:
    """The ``media_forecast`` block of a single-horizon plan on fitted curves: the current and
    recommended plans' media return over the horizon from the carryover history left (fitted
    channels only), beside their steady-state return; None without fitted channels."""
    model, fitted = scenario.model, scenario.fitted_channels
    if model is None or not fitted or scenario.periods is None:
        return None
    from models.forecast import steady_state_comparison  # scipy and Prophet's kin: fitted curves only
    plans = {
        "current": {c.name: c.current for c in scenario.problem.channels if c.name in fitted},
        "recommended": {c.channel: c.spend for c in alloc.channels if c.channel in fitted},
    }
    cmp = steady_state_comparison(model, plans, scenario.periods)
    cur, rec = cmp["current"], cmp["recommended"]
    return {
        "periods": scenario.periods,
        "channels": sorted(fitted),
        **{name: {"spend": _cents(row["spend"]), "steady_state_return": _cents(row["steady_state"]),
                  "media_return": _cents(row["forward"])} for name, row in (("current", cur), ("recommended", rec))},
        "uplift": rec["forward"] / cur["forward"] - 1.0 if cur["forward"] > 0 else None,
        "carryover_start": _cents(cur["carryover_start"]),
        "carryover_steady": _cents(rec["carryover_steady"]),
    }


def _cents(v: float) -> float:
    return round(float(v), 2) + 0.0


def _money(v: float, currency: str) -> str:
    from optimizer import money

    return money(v, currency)


def _uplift_text(a: float, b: float) -> str:
    return f" ({b / a - 1.0:+.1%})" if a > 0 else ""


def _written_text(scenario) -> str:
    written = [c.name for c in scenario.problem.channels if c.name not in scenario.fitted_channels]
    if not written:
        return ""
    return f" (fitted channels only; the forecast does not cover the written curves of {', '.join(written)})"


def plan_scenario(scenario, *, exact: bool = False, lp_path: str | None = None,
                  risk_alpha: float | None = None, risk_measure: str = "cvar", evidence: bool = True) -> ScenarioPlan:
    """Solve a scenario (single horizon or period by period).

    Parameters
    ----------
    scenario
        From :func:`scenarios.load_scenario`.
    exact
        Solve S-curves exactly (MILP), single-horizon and period plans alike.
    lp_path
        Write the final LP to this file.
    risk_alpha, risk_measure
        Plan for the bad case over the curve samples (over the whole horizon for a period plan;
        None: the scenario's own ``risk`` setting, if any):
        ``"cvar"`` maximises CVaR at level ``risk_alpha``; ``"guard"`` (do no harm) maximises the
        mean return subject to the worst ``risk_alpha`` share of samples gaining, on average, on the
        current plan (:func:`optimizer.optimize_guarded`). The guard stands in for the evidence
        limits: it holds back money the samples do not agree should move, so they are not applied.
    evidence
        Keep channels the history identifies poorly near their share of the current split
        (:mod:`scenarios.evidence`); False plans on the fitted curves alone and says how much of
        the money it moves goes through such channels.

    Raises
    ------
    ScenarioError
        ``risk_alpha`` without curve samples; ``"guard"`` without a current plan.
    """
    from dataclasses import replace

    from scenarios import evidence as ev

    from_scenario = risk_alpha is None and getattr(scenario, "risk", None) is not None
    if from_scenario:
        risk_alpha, risk_measure = scenario.risk.alpha, scenario.risk.measure
    guard = risk_alpha is not None and risk_measure == "guard"
    limited: dict = {}
    if evidence and not guard:
        limited_problem, limited = ev.evidence_limits(scenario, scenario.problem)
        if limited:
            result = _plan(replace(scenario, problem=limited_problem), exact, lp_path, risk_alpha)
            if result.allocation.feasible:
                result.allocation.notes.append(ev.limits_note(limited))
                result.allocation.warnings[:0] = ev.binding_warnings(scenario, result.allocation, limited)
            else:
                limited = {}
                result = _plan(scenario, exact, lp_path, risk_alpha)
                if result.allocation.feasible:
                    result.allocation.warnings.insert(0, "evidence: the limits on poorly identified channels conflict "
                                                         "with the scenario's own; planned without them")
            scenario_plan = result
        else:
            scenario_plan = _plan(scenario, exact, lp_path, risk_alpha)
    else:
        scenario_plan = _plan(scenario, exact, lp_path, risk_alpha, risk_measure)
    alloc = scenario_plan.allocation
    if alloc.feasible and not limited:
        moved = ev.moves_warning(scenario, alloc)
        if moved:
            alloc.warnings.insert(0, moved)
    if from_scenario:
        alloc.notes.insert(0, f"planned over the curve samples as the scenario's risk = \"{risk_measure}:{risk_alpha:g}\" "
                              "asks (`--risk` overrides it)")
    return _finish(scenario, scenario_plan)


def plan_over_samples(scenario, samples: dict, alpha: float, measure: str):
    """The single-horizon plan of ``scenario`` over the given curve samples, as a ``risk`` setting
    makes it (``"guard"`` or ``"cvar"`` at ``alpha``; see :func:`plan_scenario`): an Allocation.
    The frontier plans each level so with the samples it drew once."""
    from dataclasses import replace

    return _plan(replace(scenario, horizon_spec=None), False, None, alpha, measure, samples=samples).allocation


def _plan(scenario, exact: bool, lp_path: str | None, risk_alpha: float | None,
          risk_measure: str = "cvar", samples: dict | None = None) -> ScenarioPlan:
    """The plan of ``scenario`` as given (see :func:`plan_scenario`), before its notes and warnings."""
    from optimizer import optimize, optimize_cvar, optimize_cvar_periods, optimize_periods
    from scenarios.horizon import period_problem

    periodic = scenario.horizon_spec is not None
    if risk_alpha is not None:
        if samples is None:
            samples = required_samples(scenario, per_period=periodic)
        if risk_measure == "guard":
            return _guarded(scenario, samples, risk_alpha, periodic)
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
        alloc = optimize_periods(problem, exact=exact, lp_path=lp_path)
        alloc.notes.extend(problem.notes)
        result = ScenarioPlan(alloc, True, period_problem=problem)
    else:
        result = ScenarioPlan(optimize(scenario.problem, exact=exact, lp_path=lp_path), False)
    return result


def _guarded(scenario, samples: dict, alpha: float, periodic: bool) -> ScenarioPlan:
    """The guarded plan (``--risk guard:ALPHA``): the best mean return over the curve samples whose
    worst ``alpha`` share still gains, on average, on the current plan; with the unguarded best
    mean beside it (``risk_neutral``) and how both and the current plan fare (``risk``)."""
    from optimizer import optimize, optimize_guarded, optimize_guarded_periods, optimize_periods
    from scenarios.horizon import period_problem

    problem = None
    if periodic:
        problem = period_problem(scenario, scenario.horizon_spec)
        point = optimize_periods(problem)
        given = problem.current()
        current = np.asarray(given if given is not None else 0.0, float)
        spent = float(np.sum(point.period_spend)) if point.feasible else 0.0
    else:
        point = optimize(scenario.problem)
        current = np.array([float(c.current or 0.0) for c in scenario.problem.channels])
        spent = sum(c.spend for c in point.channels) if point.feasible else 0.0
    if not float(current.sum()) > 0:
        raise ScenarioError(["risk: guard compares the plan with the current one: give the channels' `current` "
                             "spend (or use cvar:ALPHA)"], scenario.name)
    # "Do no harm" is against keeping the current split: at the plan's spend, not the current
    # plan's total (a budget that differs from it would otherwise void the guard or make it moot).
    scale = spent / float(current.sum()) if spent > 0 else 1.0
    reference = current * scale
    if periodic:
        plans = optimize_guarded_periods(problem, _period_samples(scenario, problem, samples), alpha,
                                         reference=reference, point=point)
        plans.guarded.notes.extend(problem.notes)
    else:
        plans = optimize_guarded(scenario.problem, samples, alpha, reference=reference, point=point)
    alloc = plans.guarded
    if alloc.feasible:
        cc = alloc.currency
        if abs(spent - float(current.sum())) >= max(1.0, 1e-3 * spent):  # more than rounding
            alloc.notes.append(f"guard: the current plan spends {_money(float(current.sum()), cc)}; the guard compares "
                               f"with its split scaled to the plan's {_money(spent, cc)}")
        if not plans.reference_feasible:
            alloc.warnings.append(f"guard: {plans.note}")
        else:
            alloc.notes.append(guard_note(plans, alpha))
    return ScenarioPlan(alloc, periodic, period_problem=problem,
                        extra={"risk": plans.guard, "risk_neutral": plans.mean.to_dict()})


def required_samples(scenario, per_period: bool = False) -> dict:
    """:func:`curve_samples`, which planning over samples (a ``risk`` setting) cannot do without."""
    samples = curve_samples(scenario, per_period=per_period)
    if samples is None:
        raise ScenarioError(["risk: needs curve samples: fit the curves from history ([history] or [model]) "
                             "with method = \"bayes\" or bootstrap > 0"], scenario.name)
    return samples


def guard_note(plans, alpha: float, plan: str = "plan", reference: str = "the current plan") -> str:
    """What the guard did to the best mean ``plan`` (a GuardedPlan whose reference is a plan of
    the problem), against ``reference``."""
    share = f"{alpha:.0%}"
    if plans.binds and plans.keeps_reference:
        return (f"guard: the best mean {plan} loses to {reference} in the worst {share} of the curve samples, and so "
                f"does every move of money, so the {plan} keeps {reference}'s split: the samples do not agree that "
                "moving money pays (a lift test would let it move; the evidence limits are not applied)")
    if plans.binds:
        return (f"guard: the best mean {plan} loses to {reference} in the worst {share} of the curve samples, so "
                f"the {plan} moves less money: it is the best mean return whose worst {share} of samples still "
                f"gains on {reference} (the evidence limits are not applied)")
    return (f"guard: the best mean {plan} already gains on {reference} in the worst {share} of the curve samples; "
            "the guard does not bind (the evidence limits are not applied)")


def return_band(extra: dict) -> dict | None:
    """The plan's P10 / P50 / P90 of return over the curve samples (``samples`` too): its return
    interval, or for a plan made over the samples (--risk, a scenario's risk) the figures of the
    plan it chose; None without samples."""
    if extra.get("return_interval"):
        return extra["return_interval"]
    risk = extra.get("risk") or {}
    chosen = risk.get("guarded") or risk.get("averse")
    return {**chosen, "samples": risk.get("samples")} if chosen else None


def _finish(scenario, result: ScenarioPlan) -> ScenarioPlan:
    """Notes, warnings, the media forecast and the return interval of a solved plan."""
    from optimizer import return_distribution

    periodic = result.periodic
    alloc = result.allocation
    alloc.notes[:0] = scenario.notes
    if alloc.feasible and not periodic:
        block = _media_forecast(scenario, alloc)
        if block is not None:
            result.extra["media_forecast"] = block
            cur, rec, rc = block["current"], block["recommended"], alloc.return_currency
            alloc.notes.append(
                f"expected return is each plan's steady-state return over {block['periods']} periods (the split "
                f"sustained, its carryover at its own level); from the carryover history left, the fitted channels' "
                f"media return over the same periods is {_money(cur['media_return'], rc)} for the current plan and "
                f"{_money(rec['media_return'], rc)} for the recommended one"
                f"{_uplift_text(cur['media_return'], rec['media_return'])}, as `forecast` shows"
                f"{_written_text(scenario)}"
            )
    alloc.warnings[:0] = scenario.warnings
    alloc.warnings[:0] = curve_warnings(scenario)
    if alloc.feasible and "risk" not in result.extra:
        samples = curve_samples(scenario, per_period=periodic)
        if samples is not None:
            if periodic:
                samples = _period_samples(scenario, result.period_problem, samples)
                result.extra["return_interval"] = return_distribution(alloc, samples, problem=result.period_problem)
            else:
                result.extra["return_interval"] = return_distribution(alloc, samples)
                result.extra["return_interval"]["beats_current"] = _beats_current(scenario, alloc, samples)
    return result


def _beats_current(scenario, alloc, samples: dict) -> float | None:
    """Share of curve samples in which the plan returns more than the current plan (single horizon)."""
    current = {c.name: c.current for c in scenario.problem.channels}
    if not any(current.values()):
        return None
    S = len(next(iter(samples.values())))
    spend = {c.channel: c.spend for c in alloc.channels}
    wins = 0
    for s in range(S):
        plan = sum(float(samples[c][s].response(x)) for c, x in spend.items() if c in samples)
        cur = sum(float(samples[c][s].response(x)) for c, x in current.items() if c in samples)
        wins += plan > cur
    return wins / S


def forecast_scenario(scenario, *, seed: int = 0, own_periods: int | None = None) -> tuple[dict, ScenarioPlan]:
    """Forecast the scenario's horizon under its current and recommended plans.

    ``own_periods``: the periods the scenario file plans, when the scenario was loaded for a
    longer or shorter horizon (``budget forecast --horizon``); the notes then say what that did.

    Returns the forecast (see :func:`models.forecast.forecast`, plus ``scenario``, ``notes``,
    ``currency`` and ``return_unit``: "money", or "kpi" for a KPI that is not money;
    for a single-horizon plan each entry of ``plans`` also has ``steady_state_return``, the
    figure ``allocate`` reports, and a note says why the two differ) and the plan it used; an
    infeasible plan is returned with an empty forecast.

    Raises
    ------
    ScenarioError
        The scenario's curves do not come from history.
    """
    from models.forecast import forecast, steady_state_comparison

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
    fc["currency"], fc["return_unit"] = alloc.currency, alloc.return_unit  # the KPI is money, or KPI units
    fc["warnings"] = list(alloc.warnings)  # what the curves and the scenario rest on, as in allocate
    fc["notes"] = []
    cc, rc = alloc.currency, alloc.return_currency
    if own_periods is not None and own_periods != periods:
        spend = sum(float(np.sum(v)) for v in plans["current"].values())
        fc["notes"].append(
            f"the horizon is {periods} periods where the scenario plans {own_periods}: its budget "
            f"({_money(scenario.problem.budget, cc)}) and the amounts it writes are planned over the {periods} "
            f"periods as they stand, while channels with no `current` written run at their historical rate "
            f"for all {periods} (the fitted channels' current plan spends {_money(spend, cc)}); to plan the "
            f"budget of {periods} periods, write it in the scenario (`total`, and `periods` in [history] or [model])")
    if not plan.periodic:
        cmp = steady_state_comparison(model, {name: {c: float(np.sum(v)) for c, v in p.items()}
                                              for name, p in plans.items()}, periods)
        for name, row in cmp.items():
            fc["plans"][name]["steady_state_return"] = _cents(row["steady_state"])
        cur, rec = cmp["current"], cmp["recommended"]
        whose = ("allocate's expected return" if own_periods in (None, periods) else
                 f"the expected return `budget allocate` gives a {periods}-period scenario")
        fc["notes"].append(
            f"{whose} is a steady-state figure (each plan sustained, its carryover at its own "
            f"level): {_money(cur['steady_state'], rc)} for the current plan and {_money(rec['steady_state'], rc)} "
            f"for the recommended one{_uplift_text(cur['steady_state'], rec['steady_state'])}{_written_text(scenario)}. "
            f"This forecast starts from the carryover history left ({_money(rec['carryover_start'], cc)} of past spend "
            f"still at work in the fitted channels, against {_money(rec['carryover_steady'], cc)} once the recommended "
            f"plan has been running) and lets it {'build up' if rec['carryover_start'] < rec['carryover_steady'] else 'run down'} "
            f"over the {periods} periods, so their media return is {_money(cur['forward'], rc)} and "
            f"{_money(rec['forward'], rc)}{_uplift_text(cur['forward'], rec['forward'])}. Started from each plan's own "
            "steady-state carryover, the forecast would give allocate's figures exactly"
        )
    else:
        fitted_rows = [i for i, c in enumerate(alloc.channels) if c.channel in fitted]
        horizon_part = float(np.sum(alloc.period_return[fitted_rows])) if fitted_rows else 0.0
        forward = float(np.sum(fc["plans"]["recommended"]["media"]["point"]))
        fc["notes"].append(
            f"allocate's return for the recommended period plan is incremental: its {_money(horizon_part, rc)} over "
            f"the horizon (fitted channels) leaves out the {_money(alloc.carryover_return, rc)} that carryover from "
            f"history earns in the horizon on its own; this forecast's media return ({_money(forward, rc)}) "
            "includes it"
        )
    if plan.periodic and plan.period_problem is not None and np.any(np.abs(plan.period_problem.efficiency() - 1.0) > 1e-9):
        fc["notes"].append(
            "the period plan was made with a seasonal efficiency per period (see allocate's notes); the media "
            "return here is the fitted model's, which has no such multiplier, so the two differ by it"
        )
    if plan.periodic and alloc.count_after_horizon:
        fc["notes"].append(
            f"the recommended period plan also earns {_money(alloc.after_horizon_return, rc)} after the horizon through "
            "carryover (its scenario counts it); this forecast shows the horizon only"
        )
    return fc, plan
