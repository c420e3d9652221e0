"""Scenarios side by side: one column per scenario (or saved plan), lined up by channel and group.

"Base" vs "more private domain" vs "cut offline", or "the plan we approved vs what the model says
now": :func:`compare_scenarios` plans each scenario file as ``budget allocate`` would (a saved
plan, the JSON ``budget allocate --format json`` writes, stands in a column as it is), then lines
the results up: budget, reserve, spend, expected return (with P10–P90 where curves are fitted),
ROI, marginal ROI, uplift over each column's own current plan, spend and share per channel and
per group, the binding constraints; with two columns, the second minus the first.

A file that cannot be read or validated is reported with its name and every problem, and the
others are still compared. Scenarios that fit the same history share one fit: the fit cache
(:mod:`models.cache`) is keyed by the data and the settings, so the first fits and the rest read
it (``fits`` says which scenarios shared which fit). Whether the columns were planned on the same
curves is worked out channel by channel and said in ``curves``: only then is a difference
between two columns the effect of the budget, limits or reserve alone.

The result is JSON-ready (the ``budget compare --format json`` contract); :func:`comparison_rows`
flattens it into the rows every other format shows (table, CSV, xlsx).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from scenarios.errors import ScenarioError
from scenarios.schema import unreadable

logger = logging.getLogger(__name__)

__all__ = ["compare_scenarios", "comparison_rows", "recorded_plan_column", "saved_plan_column", "PLAN_METRICS"]

#: Plan-level figures, in the order shown: (key, label, kind). ``kind`` says how a figure reads:
#: money (the currency), share (a percentage), ratio (ROI), or text.
PLAN_METRICS = (
    ("budget", "budget", "money"),
    ("spend", "spend", "money"),
    ("reserve", "reserve", "money"),
    ("expected_return", "expected return", "money"),
    ("return_p10", "expected return P10", "money"),
    ("return_p90", "expected return P90", "money"),
    ("roi", "ROI", "ratio"),
    ("marginal_roi", "marginal ROI", "ratio"),
    ("current_expected_return", "current plan's return", "money"),
    ("uplift", "uplift over its current plan", "share"),
)
#: What each column is, shown above its figures: (key, label).
TEXT_METRICS = (("source", "file"), ("kind", "kind"), ("status", "status"), ("currency", "currency"),
                ("horizon", "horizon"), ("curves_from", "curves"))
#: Per channel and per group: (key, label, kind).
CHANNEL_METRICS = (("spend", "spend", "money"), ("share", "share", "share"),
                   ("expected_return", "return", "money"), ("marginal_roi", "mROI", "ratio"))
GROUP_METRICS = (("spend", "spend", "money"), ("share", "share", "share"))
#: The figures in the KPI's units (money, or KPI units for a KPI that is not money): a column in
#: money and one in KPI units have no difference in them.
RETURN_FIGURES = frozenset({"expected_return", "return_p10", "return_p90", "current_expected_return", "roi",
                            "marginal_roi"})

#: File endings of a run ledger (:mod:`scenarios.ledger`); ``LEDGER#ID`` names one recorded run.
LEDGER_SUFFIXES = (".sqlite", ".sqlite3", ".db")

#: Keys a saved plan (``budget allocate --format json``) must have to stand in a column.
SAVED_PLAN_KEYS = ("scenario", "status", "budget", "currency", "channels", "groups")


def compare_scenarios(sources, *, budget: float | None = None, use_cache: bool = True, exact: bool = False,
                      fit_progress=None, on_scenario=None) -> dict:
    """Plan every source and line the results up, one column each.

    Parameters
    ----------
    sources
        Scenario files (``.toml``), saved plans (``.json`` from ``budget allocate --format json``),
        recorded plans in a run ledger (``q1.sqlite#3`` for run 3, ``q1.sqlite`` for its one
        current plan of record), or already loaded :class:`scenarios.Scenario` objects, in
        column order (at least one).
    budget
        Plan every scenario file at this total instead of its own (saved plans keep theirs).
    use_cache
        Reuse cached fits (scenarios sharing a history then fit it once).
    exact
        Solve S-shaped curves exactly (as ``budget allocate --exact``).
    fit_progress
        ``fit_progress(done, total)`` while a history is fitted (bootstrap), for a progress bar.
    on_scenario
        ``on_scenario(index, total, name)`` before each source is read and planned (1-based).

    Returns
    -------
    dict
        ``scenarios``: one column per source that could be read, each with ``name``,
        ``source``, ``kind`` ("scenario", "period plan", "saved plan" or "recorded plan"), ``status``,
        ``currency``, ``horizon``, the :data:`PLAN_METRICS` keys, ``channels`` and ``groups``
        (``{name: {"label", "group", "spend", "share", "expected_return", "marginal_roi"}}``),
        ``binding_constraints`` (names), ``warnings``, ``diagnosis`` (when infeasible) and
        ``curves_from``. ``channels`` and ``groups``: every name in column order of first
        appearance, with its label (``[{"channel", "label", "group"}]``, ``[{"group", "label"}]``).
        ``difference``: with exactly two feasible columns in one currency, the second minus the
        first for every figure (``plan``, ``channels``, ``groups``; None where either is blank;
        shares in points, as fractions), else None. ``curves``: ``{"same": True/False/None,
        "text": …, "differ": [...]}``. ``fits``: one entry per history or saved model the
        columns' curves came from (``{"source", "scenarios", "fitted": "new"|"cached"}``).
        ``currency``: the columns' currency, or None when they differ. ``return_unit``: the
        columns' ("money", or "kpi" for curves fitted on a KPI that is not money), or None when
        they differ (the difference then leaves the :data:`RETURN_FIGURES` blank). ``errors``: one entry per
        source that could not be compared (``{"source", "problems"}``).

    Raises
    ------
    ScenarioError
        ``sources`` is empty.
    """
    sources = list(sources)
    if not sources:
        raise ScenarioError(["give at least one scenario file or saved plan to compare"], "compare")
    columns, errors, curve_sets, fits = [], [], [], {}
    for i, src in enumerate(sources, 1):
        label = _source_name(src)
        if on_scenario is not None:
            on_scenario(i, len(sources), label)
        try:
            column, curves, fit = _column(src, budget=budget, use_cache=use_cache, exact=exact,
                                          fit_progress=fit_progress)
        except Exception as exc:  # noqa: BLE001 - typed input errors are reported; see _problems
            problems = _problems(exc)
            if problems is None:
                raise
            errors.append({"source": label, "problems": problems})
            continue
        columns.append(column)
        curve_sets.append(curves)
        if fit is not None:
            entry = fits.setdefault(fit["key"], {"source": fit["source"], "scenarios": [], "fitted": fit["fitted"]})
            entry["scenarios"].append(column)
    _unique_names(columns)
    for entry in fits.values():  # named once every column has its final (unique) name
        entry["scenarios"] = [c["name"] for c in entry["scenarios"]]
    currencies = {c["currency"] for c in columns}
    currency = currencies.pop() if len(currencies) == 1 else None
    units = {c["return_unit"] for c in columns}
    return_unit = units.pop() if len(units) == 1 else None
    return {
        "scenarios": columns,
        "channels": _union(columns, "channels"),
        "groups": _union(columns, "groups"),
        "difference": _difference(columns, returns=return_unit is not None) if currency is not None else None,
        "curves": _curves_verdict(columns, curve_sets),
        "fits": list(fits.values()),
        "currency": currency,
        "return_unit": return_unit,
        "errors": errors,
    }


def _source_name(src) -> str:
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    return getattr(src, "name", None) or "scenario"


def _problems(exc: Exception) -> list[str] | None:
    """The problems of a typed input error (None for anything else: a bug is not input)."""
    from models.errors import HistoryError, ModelFileError

    if isinstance(exc, (ScenarioError, HistoryError)):
        return list(exc.problems)  # a history's problems name its file and row already
    from scenarios.errors import LedgerError

    if isinstance(exc, (ModelFileError, LedgerError)):
        return [str(exc)]
    return None


def _column(src, *, budget, use_cache, exact, fit_progress):
    """(column, curves, fit) of one source; curves None when unknown (a saved plan)."""
    from scenarios.schema import Scenario, load_scenario

    if isinstance(src, Scenario):
        scenario = src
    else:
        path = Path(src)
        if path.suffix.lower() == ".json":
            return saved_plan_column(path), None, None
        ledger = _ledger_source(src)
        if ledger is not None:
            return recorded_plan_column(*ledger), None, None
        scenario = load_scenario(path, budget=budget, use_cache=use_cache, progress=fit_progress)
    return _scenario_column(scenario, exact=exact), _curves_of(scenario), _fit_of(scenario)


def _scenario_column(scenario, *, exact: bool) -> dict:
    from scenarios.plan import plan_scenario

    plan = plan_scenario(scenario, exact=exact)
    d = plan.allocation.to_dict()
    column = _from_plan_dict(d, plan.extra, kind="period plan" if plan.periodic else "scenario")
    column["source"] = os.fspath(scenario.path) if scenario.path is not None else scenario.name
    column["horizon"] = scenario.horizon
    column["curves_from"] = _curves_from(scenario)
    return column


def saved_plan_column(path) -> dict:
    """A column from a saved plan: the JSON ``budget allocate --format json`` writes.

    Raises
    ------
    ScenarioError
        The file cannot be read, is not JSON, or is not a saved plan (every missing key listed).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([unreadable(exc)], str(path)) from None
    except json.JSONDecodeError as exc:
        raise ScenarioError([f"not valid JSON: {exc}"], str(path)) from None
    if not isinstance(data, dict):
        raise ScenarioError(["not a saved plan: expected the JSON object `budget allocate --format json` writes"],
                            str(path))
    missing = [k for k in SAVED_PLAN_KEYS if k not in data]
    if missing:
        raise ScenarioError([f"not a saved plan (from `budget allocate --format json`): missing key {k!r}"
                             for k in missing], str(path))
    bad = [f"channels[{i}]: missing 'channel' or 'spend'" for i, c in enumerate(data["channels"] or [])
           if not isinstance(c, dict) or "channel" not in c or "spend" not in c]
    if bad:
        raise ScenarioError(bad, str(path))
    extra = {k: data[k] for k in ("return_interval", "risk") if isinstance(data.get(k), dict)}
    column = _from_plan_dict(data, extra, kind="saved plan")
    column["source"] = os.fspath(path)
    column["horizon"] = data.get("horizon")
    column["curves_from"] = "the saved plan's (not in the file)"
    return column


def _ledger_source(src) -> tuple[Path, int | None] | None:
    """(ledger file, run id or None) when ``src`` names a ledger (``q1.sqlite`` or ``q1.sqlite#3``)."""
    text = os.fspath(src)
    path, sep, run = text.rpartition("#")
    if sep and path.lower().endswith(LEDGER_SUFFIXES):
        if not run.isdigit():
            raise ScenarioError([f"#{run}: a recorded run is named by its number ({path}#3; `budget runs --ledger "
                                 f"{path}` lists them)"], text)
        return Path(path), int(run)
    if text.lower().endswith(LEDGER_SUFFIXES):
        return Path(text), None
    return None


def recorded_plan_column(ledger, run_id: int | None = None) -> dict:
    """A column from a plan recorded in a run ledger (``budget allocate --record``).

    Parameters
    ----------
    ledger
        The ledger file.
    run_id
        The run; None takes the ledger's current plan of record (there must be exactly one
        scenario with one, else the runs to choose from are listed).

    Raises
    ------
    LedgerError
        No such ledger or run, several plans of record to choose from, or an unreadable ledger.
    """
    from scenarios.errors import LedgerError
    from scenarios.ledger import Ledger

    path = Path(ledger)
    with Ledger(path, create=False) as book:
        if run_id is None:
            current = [r for r in book.runs(current_only=True) if r.kind == "plan"]
            if not current:
                raise LedgerError(f"{path}: no plan of record")
            if len(current) > 1:
                runs = ", ".join(f"{path}#{r.id} ({r.scenario_name})" for r in current)
                raise LedgerError(f"{path}: several plans of record; name one run: {runs}")
            run = current[0]
        else:
            run = book.get(run_id)
            if run.kind != "plan":  # a rebalance re-plans the rest of a horizon: not a plan to set beside one
                plans = [f"{path}#{r.id}" for r in book.runs() if r.kind == "plan"]
                raise LedgerError(f"{path}#{run.id} is a {run.kind} (as of {run.as_of}), not a plan; compare plans "
                                  f"({', '.join(plans) or 'none recorded'}), or see the rebalance with "
                                  f"`budget runs show {run.id} --ledger {path}`")
    plan = run.result
    extra = {k: plan[k] for k in ("return_interval", "risk") if isinstance(plan.get(k), dict)}
    column = _from_plan_dict(plan, extra, kind="recorded plan")
    column["source"] = f"{path}#{run.id}"
    column["horizon"] = plan.get("horizon")
    column["curves_from"] = f"the recorded plan's (run {run.id}, recorded {run.started})"
    return column


def _from_plan_dict(d: dict, extra: dict, kind: str) -> dict:
    """A column from an allocation's ``to_dict()`` (a new plan or a saved one)."""
    from scenarios.plan import return_band

    cur = d.get("current") or {}
    interval = return_band(extra) or {}
    labels = {}
    channels = {}
    for c in d.get("channels") or []:
        channels[c["channel"]] = {
            "label": c.get("label"), "group": c.get("group"), "spend": c.get("spend"), "share": c.get("share"),
            "expected_return": c.get("expected_return"), "marginal_roi": c.get("marginal_roi"),
        }
        labels[c["channel"]] = c.get("label")
    groups = {g["group"]: {"spend": g.get("spend"), "share": g.get("share")} for g in d.get("groups") or []}
    return {
        "name": d.get("scenario") or "plan",
        "kind": kind,
        "status": d.get("status", "optimal"),
        "currency": d.get("currency") or "CNY",
        "return_unit": d.get("return_unit") or "money",
        "budget": d.get("budget"),
        "spend": d.get("spend"),
        "reserve": d.get("reserve"),
        "expected_return": d.get("expected_return"),
        "return_p10": interval.get("p10"),
        "return_p90": interval.get("p90"),
        "roi": d.get("roi"),
        "marginal_roi": d.get("marginal_roi"),
        "current_expected_return": cur.get("expected_return"),
        "uplift": d.get("uplift"),
        "channels": channels,
        "groups": groups,
        "binding_constraints": [b["name"] for b in d.get("binding_constraints") or [] if isinstance(b, dict)],
        "warnings": list(d.get("warnings") or []),
        "diagnosis": list(d.get("diagnosis") or []),
    }


def _unique_names(columns: list[dict]) -> None:
    """Two columns of the same name (a scenario and its saved plan) get their file's name added."""
    seen: dict[str, int] = {}
    for c in columns:
        seen[c["name"]] = seen.get(c["name"], 0) + 1
    for c in columns:
        if seen[c["name"]] > 1:
            c["name"] = f"{c['name']} ({Path(c['source']).name})"


def _union(columns: list[dict], key: str) -> list[dict]:
    """Every channel (or group) of any column, in order of first appearance, with a label."""
    out: dict[str, dict] = {}
    for col in columns:
        for name, row in col[key].items():
            if key == "channels":
                entry = out.setdefault(name, {"channel": name, "label": None, "group": None})
                entry["label"] = entry["label"] or row.get("label")
                entry["group"] = entry["group"] or row.get("group")
            else:
                out.setdefault(name, {"group": name})
    return list(out.values())


def _difference(columns: list[dict], returns: bool = True) -> dict | None:
    """The second column minus the first, for every figure both have (money to the cent); with
    ``returns`` False (one column's returns are money, the other's KPI units) none of the
    :data:`RETURN_FIGURES`."""
    feasible = [c for c in columns if c["status"] == "optimal"]
    if len(columns) != 2 or len(feasible) != 2:
        return None
    a, b = columns

    def diff(x, y, kind, key):
        if x is None or y is None or (not returns and key in RETURN_FIGURES):
            return None
        v = float(y) - float(x)
        return round(v, 2) + 0.0 if kind == "money" else v

    out = {"plan": {k: diff(a.get(k), b.get(k), kind, k) for k, _, kind in PLAN_METRICS}, "channels": {}, "groups": {}}
    for key, metrics in (("channels", CHANNEL_METRICS), ("groups", GROUP_METRICS)):
        for name in dict.fromkeys([*a[key], *b[key]]):
            ra, rb = a[key].get(name), b[key].get(name)
            out[key][name] = {k: diff(ra.get(k) if ra else None, rb.get(k) if rb else None, kind, k)
                              for k, _, kind in metrics}
    return out


# -- curves -----------------------------------------------------------------------------------


def _curves_of(scenario) -> dict:
    """Each channel's planning curve, as plain data (fitted ones included: their Hill parameters)."""
    return {c.name: json.dumps(c.curve.to_dict(), sort_keys=True, default=str) for c in scenario.problem.channels}


def _curves_from(scenario) -> str:
    fitted = len(scenario.fitted_channels)
    written = len(scenario.problem.channels) - fitted
    model = next((n for n in scenario.notes if n.startswith(("curves fitted from", "curves from the saved model"))), None)
    if model is None:
        return "written in the scenario"
    return model.removeprefix("curves ") + (f" ({written} channel(s) written in the scenario)" if written else "")


def _fit_of(scenario) -> dict | None:
    """Which fit the scenario's curves came from: a history's cache key, or a saved model's path."""
    model = scenario.model
    if model is None or scenario.path is None:
        return None
    from scenarios.schema import read_toml

    data = read_toml(Path(scenario.path))
    if "history" in data:
        from models.cache import fit_key
        from scenarios.schema import history_source

        path, spec, settings = history_source(scenario.path)
        cached = any(n.endswith("(cached fit)") for n in scenario.notes)
        return {"key": fit_key(path, spec, settings), "source": os.fspath(path),
                "fitted": "cached" if cached else "new"}
    path = (Path(scenario.path).parent / data["model"]["path"]).resolve()
    return {"key": f"model:{path}", "source": os.fspath(path), "fitted": "saved model"}


def _curves_verdict(columns: list[dict], curve_sets: list[dict | None]) -> dict:
    """Were the columns planned on the same curves? Channel by channel, for channels they share."""
    if len(columns) < 2:
        return {"same": None, "text": "one column: nothing to compare curves with", "differ": []}
    unknown = [c["name"] for c, cv in zip(columns, curve_sets) if cv is None]  # saved or recorded plans
    differ = []
    known = [(c["name"], cv) for c, cv in zip(columns, curve_sets) if cv is not None]
    for i, (name_a, a) in enumerate(known):
        for name_b, b in known[i + 1:]:
            for ch in a:
                if ch in b and a[ch] != b[ch]:
                    differ.append({"channel": ch, "between": [name_a, name_b]})
    channel_sets = {frozenset(c["channels"]) for c in columns}
    parts = []
    if differ:
        chans = list(dict.fromkeys(d["channel"] for d in differ))
        pairs = list(dict.fromkeys(" and ".join(d["between"]) for d in differ))
        parts.append(f"not compared on the same curves: the curves of {', '.join(chans)} differ between "
                     + "; ".join(pairs) + ", so the differences are not those of the budget, limits or reserve alone")
        same = False
    elif unknown:
        parts.append("whether the columns share curves is not known: "
                     + ", ".join(unknown) + (" is a saved plan" if len(unknown) == 1 else " are saved plans")
                     + " (a saved or recorded plan does not keep its curves)")
        same = None
    elif len(channel_sets) > 1:
        disjoint = [f"{a['name']} and {b['name']}" for i, a in enumerate(columns) for b in columns[i + 1:]
                    if not set(a["channels"]) & set(b["channels"])]
        parts.append(("not compared on the same curves: " + "; ".join(disjoint) + " share no channel") if disjoint else
                     "the channels the columns share have the same curves, but the columns do not plan the same "
                     "channels, so the differences come from that too")
        same = False
    else:
        parts.append("compared on the same curves: the differences come from the budget, limits and reserve alone")
        same = True
    kinds = {c["kind"] for c in columns} - {"saved plan", "recorded plan"}
    if len(kinds) > 1:
        parts.append("some columns are planned over one horizon and others period by period (carryover and "
                     "efficiency per period), so their figures are not computed the same way")
    if len(channel_sets) > 1:
        parts.append("the columns do not plan the same channels (blank where a column lacks one)")
    return {"same": same, "text": "; ".join(parts), "differ": differ}


# -- rows for table, CSV and xlsx ---------------------------------------------------------------


def comparison_rows(cmp: dict) -> list[dict]:
    """The comparison as rows: one per figure, a value per column, and the difference.

    Each row is ``{"section": "plan"|"channel"|"group"|"binding", "item": channel or group name
    ("" for the plan), "label": its label, "metric": key, "name": how the figure reads,
    "kind": "money"|"share"|"ratio"|"text", "values": [one per column, None where blank],
    "difference": number or None}``.
    """
    cols = cmp["scenarios"]
    diff = cmp.get("difference") or {}
    rows = [{"section": "plan", "item": "", "label": "", "metric": key, "name": name, "kind": "text",
             "values": [c.get(key) for c in cols], "difference": None} for key, name in TEXT_METRICS]
    for key, name, kind in PLAN_METRICS:
        values = [c.get(key) for c in cols]
        if key in ("return_p10", "return_p90") and all(v is None for v in values):
            continue  # no column has curve samples
        rows.append({"section": "plan", "item": "", "label": "", "metric": key, "name": name, "kind": kind,
                     "values": values, "difference": (diff.get("plan") or {}).get(key)})
    for section, key, metrics, entries in (("channel", "channels", CHANNEL_METRICS, cmp["channels"]),
                                           ("group", "groups", GROUP_METRICS, cmp["groups"])):
        for entry in entries:
            item = entry[section]
            for metric, name, kind in metrics:
                values = [(c[key].get(item) or {}).get(metric) for c in cols]
                d = ((diff.get(key) or {}).get(item) or {}).get(metric)
                rows.append({"section": section, "item": item, "label": entry.get("label") or item,
                             "metric": metric, "name": name, "kind": kind, "values": values, "difference": d})
    rows.append({"section": "binding", "item": "", "label": "", "metric": "binding_constraints",
                 "name": "binding constraints", "kind": "text",
                 "values": ["; ".join(c["binding_constraints"]) for c in cols], "difference": None})
    return rows
