"""The report a lead would rather look at than read: one self-contained HTML file plus its charts.

:func:`write_report` plans each scenario exactly as ``budget allocate`` does (and forecasts it as
``budget forecast`` does when its curves come from history), draws the charts with
:mod:`models.plot` as PNG files, and writes ``report.html``, which embeds every chart as a
``data:`` URI: it opens from disk with no network, loads nothing and runs no script (its
Content-Security-Policy forbids both, so even a browser extension's injected markup cannot
fetch). Every piece of user text (scenario, channel and group names and labels, warnings, notes)
is HTML-escaped: a label ``<img src=x onerror=alert(1)>`` shows as those characters.

What the report shows, per scenario: the plan's totals in words and figures, the warnings and
how well the fitted model predicts in plain words, each channel's response curve with the
history's periods as points, the P10–P90 band of its curve samples and the current and
recommended spend marked, current against recommended spend per channel, group shares against
the planning documents' reference split (35/25/20/15/5), and the forecast with the actual
history before it. The budget frontier (``scenarios.frontier``) and, for several scenarios, the
side-by-side comparison (``scenarios.compare``) are added when those modules are installed; a
panel that cannot be drawn is named in the page and in :attr:`ReportFiles.omitted` with why.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scenarios.errors import ScenarioError
from scenarios.render import ratio_text

logger = logging.getLogger(__name__)

__all__ = ["REFERENCE_SPLIT", "REPORT_FILE", "ReportFiles", "forecast_chart", "write_report"]

#: The planning documents' reference split of a budget by group (the reserve included), which
#: the group chart sets each plan against.
REFERENCE_SPLIT = {"content": 0.35, "tools": 0.25, "private_domain": 0.20, "offline": 0.15, "reserve": 0.05}
#: The HTML file's name inside the report folder.
REPORT_FILE = "report.html"
#: Points on each drawn response curve.
CURVE_POINTS = 200

_UNIT = {"daily": "day", "weekly": "week", "monthly": "month"}


@dataclass
class ReportFiles:
    """What :func:`write_report` wrote.

    ``html`` is the report; ``charts`` the PNG files it embeds (also written beside it, in the
    order the page shows them); ``omitted`` says which panels were left out and why (the page
    says the same); ``infeasible`` names the scenarios with no feasible plan (their section
    explains the conflict).
    """

    html: Path
    charts: list[Path] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)
    infeasible: list[str] = field(default_factory=list)


@dataclass
class _Chart:
    path: Path
    title: str
    caption: str


@dataclass
class _Section:
    """One scenario's plan, forecast and history, and the charts drawn from them."""

    scenario: object
    plan: object
    forecast: dict | None = None
    history: object = None
    history_note: str | None = None
    frontier: dict | None = None
    charts: list[_Chart] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)


def write_report(scenarios, out_dir, *, seed: int = 0, title: str | None = None) -> ReportFiles:
    """Plan, forecast and chart each scenario; write the charts and ``report.html`` to ``out_dir``.

    Parameters
    ----------
    scenarios
        Loaded scenarios (:func:`scenarios.load_scenario`), one section each, in this order.
    out_dir
        The report folder; created if missing (its parent must exist). Every file is written
        atomically, the HTML last.
    seed
        Seed of the forecast's interval simulation (as ``budget forecast --seed``).
    title
        The page's title (default: the scenario's name, or "N scenarios compared").

    Returns
    -------
    ReportFiles

    Raises
    ------
    ScenarioError
        No scenario given.
    OSError
        The folder or a file cannot be written.
    """
    from models.atomic import write_text_atomic

    scenarios = list(scenarios)
    if not scenarios:
        raise ScenarioError(["give at least one scenario"], "report")
    out = Path(out_dir)
    out.mkdir(exist_ok=True)
    prefixes = _prefixes(scenarios)
    sections = []
    for sc, prefix in zip(scenarios, prefixes):
        section = _analyse(sc, seed)
        _draw_section(section, out, prefix)
        sections.append(section)
    cmp, overview, overview_omitted = _comparison(scenarios, out)
    page_title = title or (scenarios[0].name if len(scenarios) == 1 else f"{len(scenarios)} scenarios compared")
    html_path = out / REPORT_FILE
    write_text_atomic(html_path, _page(page_title, sections, cmp, overview, overview_omitted))
    charts = [c.path for c in overview] + [c.path for s in sections for c in s.charts]
    omitted = overview_omitted + [f"{s.scenario.name}: {o}" for s in sections for o in s.omitted]
    infeasible = [s.scenario.name for s in sections if not s.plan.allocation.feasible]
    return ReportFiles(html=html_path, charts=charts, omitted=omitted, infeasible=infeasible)


# --------------------------------------------------------------------------------------------
# numbers


def _prefixes(scenarios) -> list[str]:
    """File-name prefixes: none for a single scenario, else each file's stem (ASCII, unique)."""
    if len(scenarios) == 1:
        return [""]
    out, seen = [], set()
    for i, sc in enumerate(scenarios, 1):
        stem = Path(sc.path).stem if getattr(sc, "path", None) else f"scenario{i}"
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or f"scenario{i}"
        candidate, n = slug, 2
        while candidate in seen:
            candidate, n = f"{slug}-{n}", n + 1
        seen.add(candidate)
        out.append(candidate + "-")
    return out


def _analyse(sc, seed: int) -> _Section:
    from scenarios.plan import forecast_scenario, plan_scenario

    if sc.model is None:
        section = _Section(sc, plan_scenario(sc))
        section.omitted.append("forecast: the curves are written in the scenario, not fitted from a history, "
                               "so there is no baseline to forecast")
        section.history_note = "curves written in the scenario: no history to show"
        return section
    fc, plan = forecast_scenario(sc, seed=seed)
    section = _Section(sc, plan, forecast=fc or None)
    section.history, section.history_note = _history(sc)
    return section


def _history(sc):
    """The history the scenario's curves were fitted on, or None with why (a saved [model])."""
    from models.history import load_history
    from scenarios.schema import history_source

    if getattr(sc, "path", None) is None:
        return None, "the scenario was not read from a file: its history is unknown"
    try:
        csv_path, spec, _settings = history_source(sc.path)
    except ScenarioError:
        return None, ("curves from a saved model ([model]): its history is not in the scenario, so no past periods "
                      "are shown")
    return load_history(csv_path, spec), None


def _grid(top: float) -> np.ndarray:
    return np.linspace(0.0, top, CURVE_POINTS)


def _curves_data(section: _Section) -> dict:
    """Each channel's curve, band, history points and marked plans, in the plan's units (money
    over the horizon)."""
    from scenarios.plan import curve_samples

    sc, alloc = section.scenario, section.plan.allocation
    model, P = sc.model, sc.periods
    samples = curve_samples(sc) or {}
    recommended = {c.channel: c.spend for c in alloc.channels} if alloc.feasible else {}
    contrib = None
    if section.history is not None:
        contrib = model.decompose(section.history)
    unit = _UNIT.get(getattr(model, "frequency_", None), "period") if model is not None else "period"
    over = f"over the {P} {unit}s" if P else f"over {sc.horizon or 'the horizon'}"
    rows = []
    for ch in sc.problem.channels:
        pts = None
        if contrib is not None and ch.name in sc.fitted_channels and ch.name in contrib.columns:
            # Each past period as if it ran for the whole horizon: the planning curve is P times the
            # steady-state return of one period's spend, so these points scatter around it
            # (above where the carryover was higher than steady, below where lower).
            pts = {"x": (section.history.spend[ch.name].to_numpy(dtype=float) * P).tolist(),
                   "y": (contrib[ch.name].to_numpy(dtype=float) * P).tolist()}
        rec = recommended.get(ch.name)
        top = max([ch.current, rec or 0.0, max(pts["x"], default=0.0) if pts else 0.0])
        top = 1.15 * top if top > 0 else 1.0
        x = _grid(top)
        y = np.asarray(ch.curve.response(x), dtype=float)
        p10 = p90 = None
        chs = samples.get(ch.name) or []
        if ch.name in sc.fitted_channels and len(chs) > 1:
            ys = np.array([np.asarray(s.response(x), dtype=float) for s in chs])
            lo, hi = np.percentile(ys, [10, 90], axis=0)
            if np.any(hi - lo > 1e-9 * max(1.0, float(np.max(np.abs(y))))):
                p10, p90 = lo.tolist(), hi.tolist()
        rows.append({
            "label": ch.label or ch.name,
            "x": x.tolist(), "y": y.tolist(), "p10": p10, "p90": p90, "points": pts,
            "current": {"spend": ch.current, "return": float(ch.curve.response(ch.current))},
            "recommended": None if rec is None else {"spend": rec, "return": float(ch.curve.response(rec))},
        })
    return {
        "currency": alloc.currency,
        "return_currency": alloc.return_currency,
        "x_label": f"spend {over}",
        "y_label": f"return {over}" + ("" if alloc.return_unit == "money" else " (KPI units)"),
        "points_label": f"past {unit}s (each {unit}'s spend and modelled return × {P})" if P else "history",
        "band_label": "P10–P90 of the posterior curve draws" if model is not None and model.uses_joint()
        else "P10–P90 of the bootstrap curves",
        "channels": rows,
    }


def _groups_data(section: _Section) -> dict:
    sc, alloc = section.scenario, section.plan.allocation
    budget = alloc.budget or 1.0
    rows = []
    for g in alloc.groups:
        label = sc.problem.group(g.group).label or g.group
        rows.append({"label": label, "group": g.group, "current": g.current_spend / budget,
                     "recommended": g.spend / budget, "reference": REFERENCE_SPLIT.get(g.group)})
    current_reserve = alloc.current.reserve if alloc.current is not None else 0.0
    rows.append({"label": "reserve", "group": "reserve", "current": current_reserve / budget,
                 "recommended": alloc.reserve / budget, "reference": REFERENCE_SPLIT["reserve"]})
    return {"groups": rows}


def forecast_chart(scenario, fc: dict, history=None) -> dict:
    """What :func:`models.plot.forecast_plot` draws for a scenario's forecast: ``fc`` (from
    :func:`scenarios.plan.forecast_scenario`) with the scenario's ``currency`` and, when its curves
    were fitted from a ``[history]``, the last year or so of the recorded KPI and the model's fit
    of it (``history``: ``{"dates", "actual", "fitted"}``), so the forecast reads as the history's
    continuation. ``history`` may be given (a loaded :class:`models.history.History`) to skip
    reading it again.
    """
    out = dict(fc)
    out["currency"] = scenario.problem.currency
    h = history if history is not None else _history(scenario)[0] if scenario.model is not None else None
    if h is not None and fc.get("periods"):
        keep = min(len(h.dates), max(3 * len(fc["periods"]), 52))  # a year or so before the horizon
        fitted = scenario.model.predict(h)
        out["history"] = {
            "dates": [d.date().isoformat() for d in h.dates[-keep:]],
            "actual": [float(v) for v in h.target()[-keep:]],
            "fitted": [float(v) for v in fitted[-keep:]],
        }
    return out


def _forecast_data(section: _Section) -> dict:
    return forecast_chart(section.scenario, section.forecast, history=section.history)


# --------------------------------------------------------------------------------------------
# charts


def _draw_section(section: _Section, out: Path, prefix: str) -> None:
    from models import plot

    sc, alloc = section.scenario, section.plan.allocation
    name = sc.name
    section.charts.append(_draw(
        plot.response_curves_plot, _curves_data(section), out / f"{prefix}curves.png", f"{name}: response curves",
        "Each channel's return as a function of its spend over the horizon (the line), the P10–P90 range of the "
        "curve samples (the band: how sure the data makes us), the history's periods (points), and the "
        "current (○) and recommended (◆) spend. The plan moves money until the next unit returns the same in every "
        "channel that is free to move: compare the slopes at the marks, not the heights."))
    if alloc.feasible:
        section.charts.append(_draw(
            plot.allocation_plot, alloc.to_dict(), out / f"{prefix}allocation.png", f"{name}: current vs recommended",
            "Spend per channel: the current plan against the recommended one"
            + (" (and the recommended spend per period)" if section.plan.periodic else "") + "."))
        section.charts.append(_draw(
            plot.group_shares_plot, _groups_data(section), out / f"{prefix}groups.png",
            f"{name}: group shares",
            "Each group's share of the budget, and the reserve's, against the planning documents' reference split "
            "(content 35%, technology tools 25%, private domain 20%, offline 15%, reserve 5%). The reference is a "
            "rule of thumb; the recommended split follows the curves."))
    else:
        section.omitted.append("allocation and group charts: the plan is infeasible")
    if section.forecast:
        fc = _forecast_data(section)
        freq = fc.get("frequency") or "period"
        section.charts.append(_draw(
            plot.forecast_plot, fc, out / f"{prefix}forecast.png", f"{name}: forecast",
            f"The KPI per {_UNIT.get(freq, 'period')}: the history as recorded (and the model's fit of it), then "
            f"the {len(fc['periods'])} {_UNIT.get(freq, 'period')}s after it (from {fc['periods'][0]}) with P50 "
            "and P10–P90 for the baseline alone and for each plan."))
    elif sc.model is not None:
        section.omitted.append("forecast: the plan is infeasible")
    frontier = _frontier(section, out, prefix)
    if frontier is not None:
        section.charts.append(frontier)


def _draw(draw, data, path: Path, title: str, caption: str) -> _Chart:
    draw(data, str(path), title)
    return _Chart(path=path, title=title, caption=caption)


def _frontier(section: _Section, out: Path, prefix: str) -> _Chart | None:
    """The budget frontier (``budget frontier``'s sweep, :func:`scenarios.frontier.budget_frontier`)
    in ``section.frontier``, and its chart (:func:`models.plot.frontier_plot`); None, with why in
    ``section.omitted``, when either is missing or the sweep cannot be made."""
    from models import plot

    try:
        from scenarios.frontier import budget_frontier
    except ImportError:
        section.omitted.append("budget frontier: this installation has no scenarios.frontier")
        return None
    try:
        section.frontier = budget_frontier(section.scenario)
    except ScenarioError as exc:
        section.omitted.append("budget frontier: " + "; ".join(exc.problems))
        return None
    draw = getattr(plot, "frontier_plot", None)
    if draw is None:
        section.omitted.append("budget frontier chart: this installation has no models.plot.frontier_plot "
                               "(the sweep is in the table)")
        return None
    try:
        return _draw(draw, section.frontier, out / f"{prefix}frontier.png",
                     f"{section.scenario.name}: budget frontier",
                     "Expected return (with its P10–P90 band where the curves are fitted), ROI and marginal ROI at "
                     "each budget from half to twice this one, planned under every constraint of the scenario, as "
                     "`budget allocate --budget B` would; break-even is where the last unit of money returns 1.")
    except ValueError as exc:  # nothing to draw (no feasible level): the table says why
        section.omitted.append(f"budget frontier chart: {exc}")
        return None


def _comparison(scenarios, out: Path) -> tuple[dict | None, list[_Chart], list[str]]:
    """The side-by-side comparison of several scenarios (:func:`scenarios.compare.compare_scenarios`)
    and its chart (:func:`models.plot.comparison_plot`), or what is missing."""
    from models import plot

    if len(scenarios) < 2:
        return None, [], []
    try:
        from scenarios.compare import compare_scenarios
    except ImportError:
        return None, [], ["comparison: this installation has no scenarios.compare"]
    cmp = compare_scenarios(scenarios)
    draw = getattr(plot, "comparison_plot", None)
    if draw is None:
        return cmp, [], ["comparison chart: this installation has no models.plot.comparison_plot"]
    chart = _draw(draw, cmp, out / "comparison.png", f"{len(scenarios)} scenarios compared",
                  "Spend per channel in each scenario, and each scenario's expected return (whiskers: P10–P90 "
                  "where its curves are fitted).")
    return cmp, [chart], []


# --------------------------------------------------------------------------------------------
# words


def _e(text) -> str:
    """User text as HTML text (``<``, ``>``, ``&`` and quotes escaped)."""
    return html.escape(str(text), quote=True)


def _money(v, currency: str) -> str:
    from optimizer import money

    return money(v, currency)


def _ratio(v) -> str:
    return "—" if v is None or not math.isfinite(v) else ratio_text(v)


def _share(v) -> str:
    return "—" if v is None else f"{v:.1%}"


def _summary(section: _Section) -> str:
    """The plan in two sentences, with its figures; the total first (what a lead reads first)."""
    sc, alloc = section.scenario, section.plan.allocation
    cc, rc = alloc.currency, alloc.return_currency
    if not alloc.feasible:
        return (f"<p class=lead>No plan satisfies every constraint of {_e(sc.name)} within the budget of "
                f"<b>{_e(_money(alloc.budget, cc))}</b>:</p>")
    from scenarios.plan import return_band

    interval = return_band(section.plan.extra)
    risk = section.plan.extra.get("risk") or {}
    guard = risk.get("guarded")  # --risk guard or the scenario's risk
    band = (f" (P10–P90 {_e(_money(interval['p10'], rc))} to {_e(_money(interval['p90'], rc))} over the "
            f"{interval['samples']} curve samples)") if interval else ""
    held = "" if guard is None else (
        f" Planned to do no harm: in the worst {risk['alpha']:.0%} of the curve samples it still gains on the current "
        f"split on average, and it beats it in {guard['beats_reference']:.0%} of them.")
    cur = alloc.current
    against = ""
    if cur is not None and alloc.uplift is not None:
        against = (f" The current plan spends {_e(_money(cur.spend, cc))} for {_e(_money(cur.expected_return, rc))} "
                   f"(ROI {_ratio(cur.roi)}): the recommended plan returns "
                   + (f"<b>{alloc.uplift:.1%}</b> more." if alloc.uplift >= 0 else f"<b>{-alloc.uplift:.1%}</b> less."))
    mroi = ""
    if alloc.marginal_roi is not None and math.isfinite(alloc.marginal_roi):
        mroi = (f" Its last unit of money returns {_ratio(alloc.marginal_roi)}{'' if rc else ' KPI units'} (marginal "
                "ROI), the same in every channel free to move.")
    if not rc:
        mroi += (" The KPI is not money: returns are in its own units, and only spend, budget and reserve are "
                 "money.")
    return (f"<p class=lead>Budget <b class=total>{_e(_money(alloc.budget, cc))}</b>: spend "
            f"<b>{_e(_money(alloc.spend, cc))}</b> across {len(alloc.channels)} channels and keep "
            f"<b>{_e(_money(alloc.reserve, cc))}</b> in reserve. Expected return "
            f"<b>{_e(_money(alloc.expected_return, rc))}</b>{band}, ROI {_ratio(alloc.roi)}.{held}{against}{mroi}</p>")


def _fit_words(section: _Section) -> list[str]:
    """How well the fitted model predicts, and what that does and does not say, in sentences."""
    model = section.scenario.model
    if model is None:
        return ["The response curves are written in the scenario (pasted from another tool or set by hand); "
                "this report cannot judge how well they fit any data."]
    rep = model.report()
    fit = rep["fit"]
    unit = _UNIT.get(rep["frequency"], "period")
    unc = rep.get("uncertainty") or {"method": "bootstrap", "samples": rep["bootstrap_samples"]}
    how = (f"a joint Bayesian model with {unc['samples']} posterior draws" if unc["method"] == "posterior"
           else f"least squares with {unc['samples']} bootstrap resamples")
    out = [f"The curves were fitted on {rep['periods']} {rep['frequency']} periods of history "
           f"({rep['start']} to {rep['end']}, {how})."]
    if fit.get("r2") is not None:
        out.append(f"In sample the model explains {fit['r2']:.0%} of the variation of the KPI per {unit} and misses "
                   f"by {fit['mape']:.1%} on average (MAPE).")
    hold = fit.get("holdout") or {}
    if hold.get("r2") is not None:
        text = (f"On the last {hold['periods']} {unit}s, held out of the fit, it misses by {hold['mape']:.1%} on "
                f"average (R² {hold['r2']:.2f}, NRMSE {hold['nrmse']:.3f}")
        naive = hold.get("naive_nrmse")
        if naive is not None and math.isfinite(naive):
            verdict = "better than" if hold["nrmse"] <= naive else "worse than"
            text += f"; a naive forecast, {hold.get('naive') or 'naive'}, scores {naive:.3f}: {verdict} naive"
        out.append(text + ").")
    else:
        out.append("No periods were held out, so it has not been scored on data it did not see.")
    out.append("A good fit of the total says little about each channel's own return: the bands on the curves, "
               "and the ROI intervals in the channel table, show how far the curve samples of each channel "
               "spread. Variation in a channel's spend that no other channel or the season shares, dark periods "
               "and lift tests are what narrow them.")
    return out


def _channel_table(section: _Section) -> str:
    sc, alloc = section.scenario, section.plan.allocation
    cc, rc = alloc.currency, alloc.return_currency
    model = sc.model
    fitted_roi = {}
    if model is not None:
        for row in getattr(model, "channel_report_", []):
            if row.get("roi_p10") is not None:
                fitted_roi[row["channel"]] = (row["roi_p10"], row["roi_p90"])
    head = ("<tr><th>channel</th><th>group</th><th class=n>current</th><th class=n>recommended</th>"
            "<th class=n>change</th><th class=n>share</th><th class=n>expected return</th><th class=n>ROI</th>"
            "<th class=n>marginal ROI</th><th class=n>history's ROI P10–P90</th></tr>")
    rows = []
    for c in alloc.channels:
        name = c.label or c.channel
        roi_band = fitted_roi.get(c.channel)
        rows.append(
            f"<tr><td>{_e(name)}</td><td>{_e(sc.problem.group(c.group).label or c.group)}</td>"
            f"<td class=n>{_e(_money(c.current_spend, cc))}</td><td class=n>{_e(_money(c.spend, cc))}</td>"
            f"<td class=n>{'+' if c.change > 0.005 else ''}{_e(_money(c.change, cc))}</td>"
            f"<td class=n>{_share(c.share)}</td>"
            f"<td class=n>{_e(_money(c.expected_return, rc))}</td><td class=n>{_ratio(c.roi)}</td>"
            f"<td class=n>{_ratio(c.marginal_roi)}</td>"
            f"<td class=n>{'—' if roi_band is None else f'{_ratio(roi_band[0])}–{_ratio(roi_band[1])}'}</td></tr>")
    foot = (f"<tr class=sum><td>reserve</td><td></td>"
            f"<td class=n>{_e(_money(alloc.current.reserve, cc)) if alloc.current else ''}</td>"
            f"<td class=n>{_e(_money(alloc.reserve, cc))}</td><td></td>"
            f"<td class=n>{_share(alloc.reserve / alloc.budget)}</td>"
            "<td></td><td></td><td></td><td></td></tr>"
            f"<tr class=sum><td>total</td><td></td>"
            f"<td class=n>{_e(_money(alloc.current.spend + alloc.current.reserve, cc)) if alloc.current else ''}</td>"
            f"<td class=n>{_e(_money(alloc.budget, cc))}</td><td></td><td class=n>100%</td>"
            f"<td class=n>{_e(_money(alloc.expected_return, rc))}</td><td class=n>{_ratio(alloc.roi)}</td>"
            "<td></td><td></td></tr>")
    return f"<table>{head}{''.join(rows)}{foot}</table>"


def _frontier_html(fr: dict) -> str:
    """The sweep in words (break-even, the favoured level and why) and a table of its levels."""
    cc = fr["currency"]
    rc = cc if fr.get("return_unit", "money") == "money" else ""
    levels = fr["levels"]
    words = [f"Planned at {len(levels)} budgets from {_money(levels[0]['budget'], cc)} to "
             f"{_money(levels[-1]['budget'], cc)} under every constraint of the scenario."]
    be = fr.get("break_even")
    if be is not None:
        words.append(f"Break-even: at about {_money(be['budget'], cc)} ({be['level']:.2f}× the budget) the last unit "
                     + ("of money returns 1; past it the extra money returns less than it costs." if rc else
                        "of money returns 1 KPI unit (the KPI is not money: whether that pays depends on what a "
                        "KPI unit is worth)."))
    fav = fr.get("favoured")
    if fav is not None and fav.get("set_by_limits"):
        words.append(f"No break-even and no favoured budget: {fav['reason']}.")
    elif fav is not None:
        words.append(f"Within this band the curves favour about {_money(fav['budget'], cc)}: {fav['reason']}.")
    head = ("<tr><th class=n>budget</th><th class=n>× budget</th><th class=n>expected return</th>"
            "<th class=n>P10–P90</th><th class=n>ROI</th><th class=n>marginal ROI</th></tr>")
    rows = []
    for r in levels:
        if r["status"] != "optimal":
            rows.append(f"<tr><td class=n>{_e(_money(r['budget'], cc))}</td><td class=n>{r['level']:.2f}</td>"
                        "<td colspan=4>infeasible</td></tr>")
            continue
        band = r.get("return_interval")
        own = abs(r["budget"] - fr["scenario_budget"]) < 0.005  # the scenario's own budget, in bold
        rows.append(
            f"<tr{' class=sum' if own else ''}><td class=n>{_e(_money(r['budget'], cc))}</td>"
            f"<td class=n>{r['level']:.2f}</td>"
            f"<td class=n>{_e(_money(r['expected_return'], rc))}</td>"
            f"<td class=n>{'—' if not band else _e(_money(band['p10'], rc) + ' – ' + _money(band['p90'], rc))}</td>"
            f"<td class=n>{_ratio(r['roi'])}</td><td class=n>{_ratio(r['marginal_roi'])}</td></tr>")
    return "".join(f"<p>{_e(w)}</p>" for w in words) + f"<table>{head}{''.join(rows)}</table>"


def _comparison_html(cmp: dict) -> str:
    """The plan-level and group figures of the comparison, one column per scenario."""
    from scenarios.compare import comparison_rows

    cols = cmp["scenarios"]

    def cell(v, kind, currency):
        if v is None:
            return ""
        if kind == "money":
            return _money(v, currency) if currency else f"{v:,.0f}"
        if kind == "share":
            return f"{v:.1%}"
        if kind == "ratio":
            return _ratio(v)
        return str(v)

    two = cmp.get("difference") is not None
    head = ("<tr><th></th>" + "".join(f"<th class=n>{_e(c['name'])}</th>" for c in cols)
            + ("<th class=n>difference</th>" if two else "") + "</tr>")
    rows = []
    for r in comparison_rows(cmp):
        if (r["section"] == "channel" and r["metric"] != "spend") or r["section"] == "binding":
            continue  # channels are in the chart; each scenario's section lists what binds it
        what = r["name"] if not r["item"] else f"{r['label']}: {r['name']}"
        if r["metric"] == "source":
            r = dict(r, values=[Path(v).name if v else v for v in r["values"]])
        css = "t" if r["kind"] == "text" else "n"
        values = "".join(f"<td class={css}>{_e(cell(v, r['kind'], c.get('currency')))}</td>"
                         for v, c in zip(r["values"], cols))
        diff = ""
        if two:
            d = r.get("difference")
            diff = f"<td class=n>{_e('' if d is None else cell(d, r['kind'], cmp.get('currency')))}</td>"
        rows.append(f"<tr><td>{_e(what)}</td>{values}{diff}</tr>")
    notes = [cmp["curves"]["text"]] if (cmp.get("curves") or {}).get("text") else []
    notes += [f"{e['source']}: {'; '.join(e['problems'])}" for e in cmp.get("errors") or []]
    return f"<table>{head}{''.join(rows)}</table>" + "".join(f"<p class=note>{_e(n)}</p>" for n in notes)


def _list(items) -> str:
    return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def _figure(chart: _Chart) -> str:
    data = base64.b64encode(chart.path.read_bytes()).decode("ascii")
    return (f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{_e(chart.title)}\">"
            f"<figcaption>{_e(chart.caption)} <span class=file>({_e(chart.path.name)})</span></figcaption></figure>")


def _section_html(section: _Section, anchor: str, heading: bool = True) -> str:
    sc, alloc = section.scenario, section.plan.allocation
    parts = [f"<section id=\"{anchor}\">" + (f"<h2>{_e(sc.name)}</h2>" if heading else "")]
    meta = [m for m in (sc.horizon and f"horizon {sc.horizon}", sc.path and f"file {Path(sc.path).name}",
                        f"objective {alloc.objective}") if m]
    parts.append(f"<p class=meta>{' · '.join(_e(m) for m in meta)}</p>")
    if sc.description:
        parts.append(f"<p>{_e(sc.description)}</p>")
    parts.append(_summary(section))
    if not alloc.feasible:
        parts.append(_list(alloc.diagnosis))
    if alloc.warnings:
        parts.append("<h3>Warnings: what this plan rests on</h3>" + _list(alloc.warnings))
    parts.append("<h3>Fit quality</h3>" + "".join(f"<p>{_e(t)}</p>" for t in _fit_words(section)))
    if section.history_note:
        parts.append(f"<p class=note>{_e(section.history_note)}</p>")
    if alloc.feasible:
        parts.append("<h3>Channels</h3>" + _channel_table(section))
        if alloc.binding:
            parts.append("<h3>What limits the plan</h3>" + _list(
                f"{b.name}: {b.detail}" + (f" (shadow price {b.shadow_price:.3g}: what one more unit of this limit "
                                           "is worth)" if b.shadow_price is not None else "") for b in alloc.binding))
    parts.append("<h3>Charts</h3>" + "".join(_figure(c) for c in section.charts))
    if section.frontier is not None:
        parts.append("<h3>Budget frontier</h3>" + _frontier_html(section.frontier))
    if section.omitted:
        parts.append("<p class=note>Left out: " + "; ".join(_e(o) for o in section.omitted) + ".</p>")
    notes = list(alloc.notes) + list((section.forecast or {}).get("notes", []))
    if notes:
        parts.append("<h3>Notes</h3>" + _list(notes))
    parts.append("</section>")
    return "".join(parts)


_CSS = """
body{font-family:"budget-report-cjk",system-ui,"Segoe UI",Roboto,"Helvetica Neue",Arial,"DejaVu Sans",sans-serif;
 margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}
h3{margin-top:1.6rem;font-size:1.05rem}
.meta,.file,.note,figcaption,footer{color:#666;font-size:.9rem}
.lead{font-size:1.1rem}.total{font-size:1.25rem}
table{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}
th,td{border-bottom:1px solid #e4e4e4;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f6f6}.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.t{overflow-wrap:anywhere}
tr.sum td{font-weight:600;border-top:1px solid #bbb}
figure{margin:1.2rem 0}img{max-width:100%;height:auto;border:1px solid #eee}
li{margin:.2rem 0}nav a{margin-right:1rem}td:first-child{min-width:11em}
"""


def _page(title: str, sections: list[_Section], cmp: dict | None, overview: list[_Chart],
          overview_omitted: list[str]) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        made_by = f"budget-engine {version('budget-engine')}"
    except PackageNotFoundError:
        made_by = "budget-engine"
    anchors = [f"s{i}" for i in range(1, len(sections) + 1)]
    body = [f"<h1>{_e(title)}</h1>"]
    if len(sections) > 1:
        body.append("<nav>" + "".join(f"<a href=\"#{a}\">{_e(s.scenario.name)}</a>" for a, s in zip(anchors, sections))
                    + "</nav>")
        body.append("<h2>Comparison</h2>" + (_comparison_html(cmp) if cmp else "")
                    + "".join(_figure(c) for c in overview))
        if overview_omitted:
            body.append("<p class=note>Left out: " + "; ".join(_e(o) for o in overview_omitted) + ".</p>")
    body += [_section_html(s, a, heading=len(sections) > 1 or s.scenario.name != title)
             for s, a in zip(sections, anchors)]
    body.append(f"<footer><p>Made by {_e(made_by)} on {dt.date.today().isoformat()}. Every chart is also a PNG "
                "file beside this page.</p></footer>")
    text = "\n".join(body)
    # The policy allows inline styles, data: images and the data: font only: no script, no
    # network, whatever a label contains.
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
            "font-src data:; style-src 'unsafe-inline'\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{_font_face(title + text)}{_CSS}</style></head><body>\n"
            + text + "\n</body></html>\n")


#: The family name of the embedded CJK font (first in the page's font stack; CJK characters only).
_CJK_FAMILY = "budget-report-cjk"


def _font_face(text: str) -> str:
    """An ``@font-face`` with the bundled Noto Sans CJK SC cut down to the page's CJK characters
    (about 10 KB for a few channel names, against 16 MB whole), so Chinese names read on a
    machine without any CJK font; '' when the page has none, or the font or fontTools is missing
    (the browser then falls back to the system's fonts)."""
    from models.plot import bundled_cjk_font, cjk_characters

    chars = cjk_characters(html.unescape(re.sub(r"data:[^\"]+", "", text)))
    path = bundled_cjk_font() if chars else None
    if path is None:
        return ""
    try:
        import io

        from fontTools import subset
        from fontTools.ttLib import TTFont

        options = subset.Options()
        options.desubroutinize = True
        options.layout_features = ["*"]
        font = TTFont(str(path), lazy=True)
        subsetter = subset.Subsetter(options)
        subsetter.populate(text=chars)
        subsetter.subset(font)
        buf = io.BytesIO()
        font.save(buf)
    except Exception as exc:  # noqa: BLE001 - a font we cannot cut is a cosmetic loss, never a failed report
        logger.debug("cannot embed the CJK font: %s", exc)
        return ""
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    # First in every font stack, for exactly these characters (unicode-range): a web font that
    # comes after a system font is only looked up once that font has failed a character, and
    # Chromium then draws the first such line before the web font is ready (boxes, seen headless).
    ranges = ",".join(f"U+{ord(ch):X}" for ch in chars)
    return (f"@font-face{{font-family:\"{_CJK_FAMILY}\";src:url(data:font/otf;base64,{data}) "
            f"format(\"opentype\");unicode-range:{ranges};}}\n")
