"""Monthly rebalancing: re-plan the rest of a period plan from actuals, suggest transfers, flag drift.

A scheduled job runs this after each month closes (``budget rebalance``). Top to bottom:

1. :func:`read_actuals`: spend (and, when known, attributed return) per channel and period, read
   with the scenario's history layout and mapping; every problem listed, then one
   :class:`~models.errors.HistoryError`.
2. :func:`rebalance`: the periods to date are fixed at their actual spend; the carryover that
   spend built (e_t = x_t + α e_{t−1}, from the plan's starting carryover) starts a
   :class:`optimizer.PeriodProblem` over the remaining periods with the remaining budget
   (budget − actual spend; the reserve kept as money), under the scenario's limits and the
   ``[rebalance]`` change limits; then the re-plan is compared with the plan of record and
   turned into transfers a lead can act on, and drift is flagged.
3. :func:`run_rebalance`: the above against a ledger, idempotent, in one transaction.

**How the model is updated.** The curves are not refitted with the new periods (a refit takes
minutes and a month of data barely moves it). When the actuals give attributed returns, each
channel's curve is rescaled by actual ÷ expected return to date (the level, β, recalibrated;
shape and carryover kept); otherwise the curves stay as fitted. Drift flags say when a refit is
due.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from scenarios.errors import ScenarioError

__all__ = ["Actuals", "read_actuals", "rebalance", "run_rebalance", "MODEL_UPDATE", "DRIFT_BASIS"]

#: Said in every result: which way the model was updated, and why.
MODEL_UPDATE = {
    "scaled": "curves not refitted with the new periods (a refit takes minutes and one month barely moves it); "
              "each channel's curve rescaled by actual ÷ expected attributed return to date (level only; "
              "shape and carryover kept); drift flags say when a refit is due",
    "none": "curves not refitted with the new periods and not rescaled (the actuals give no attributed "
            "return); drift flags say when a refit is due",
}
#: What the return drift flags compare. The KPI is tested against the forecast P10–P90 for the
#: spend made when the model can forecast it (curves fitted from history, a KPI in the actuals).
DRIFT_BASIS = ("actual attributed return vs the model's expected return at the actual spend, to date, "
               "beyond [rebalance] return_tolerance")
#: A channel's rescaling factor is kept within these bounds (one bad month is not a new world).
SCALE_BOUNDS = (0.1, 10.0)


@dataclass(frozen=True)
class Actuals:
    """Validated actuals: ``spend`` and ``returns`` are ``{(period, channel): value}`` (returns
    None when the file gives none); ``periods`` in plan order, the first ones of the plan."""

    periods: tuple[str, ...]
    channels: tuple[str, ...]
    spend: dict
    returns: dict | None
    content: bytes
    source: str
    ignored: tuple[str, ...] = ()
    kpi: dict | None = None  # {period: KPI}, wide layout only


def _label(value: str, plan_periods: tuple[str, ...]) -> str | None:
    """The plan period a cell names: the same text, or the same date written another way."""
    text = value.strip()
    if text in plan_periods:
        return text
    try:
        import pandas as pd

        iso = pd.Timestamp(text).date().isoformat()
    except (ValueError, TypeError):
        return None
    return iso if iso in plan_periods else None


def read_actuals(path: str | Path, scenario, plan_periods: tuple[str, ...], *, force: bool = False) -> Actuals:
    """Read actuals for ``scenario``'s plan periods.

    Layout and column names are the scenario's history's (``[history]``: wide = one row per
    period with a spend column per channel; long = one row per period and channel with spend and
    attributed return). A scenario on written curves reads the long layout with columns
    ``period, channel, spend[, return]``. In the long layout the return column is optional.

    Raises
    ------
    HistoryError
        Every problem with its row: unreadable numbers, negative spend, duplicate rows, unknown
        columns; and, unless ``force`` (then they are skipped and listed in ``ignored``), periods
        outside the plan and unknown channels. Periods must be the plan's first ones, without gaps.
    """
    from models.errors import HistoryError
    from models.history import number_text, read_table

    path = Path(path)
    source = path.name
    spec = scenario.history_spec
    channels = tuple(c.name for c in scenario.problem.channels)
    if spec is not None:
        layout, date_col, ret_col = spec.layout, spec.date, spec.kpi
        chan_col, spend_col = spec.channel_column, spec.spend_column
    else:
        layout, date_col, ret_col, chan_col, spend_col = "long", "period", "return", "channel", "spend"
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise HistoryError([f"{source}: file not found"], source) from None
    # CSV, or Excel: finance keeps actuals in workbooks.
    frame = read_table(path, source, spec.date_format if spec is not None else None)
    problems: list[str] = []
    ignored: list[str] = []
    spend: dict = {}
    returns: dict = {}
    kpi: dict = {}

    def number(cell: str, what: str, row: int) -> float | None:
        try:
            v = float(number_text(cell))
        except ValueError:
            problems.append(f"row {row}: {what} {cell!r} is not a number")
            return None
        if not math.isfinite(v) or v < 0:
            problems.append(f"row {row}: {what} must be a finite number ≥ 0, got {cell!r}")
            return None
        return v

    def period_of(cell: str, row: int) -> str | None:
        p = _label(str(cell), plan_periods)
        if p is None:
            close = difflib.get_close_matches(str(cell).strip(), plan_periods, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            msg = f"row {row}: period {cell!r} is not in the plan ({', '.join(plan_periods)}){hint}"
            (ignored if force else problems).append(msg)
        return p

    columns = list(frame.columns)
    if date_col not in columns:
        raise HistoryError([f"column {date_col!r} not found; columns are: {', '.join(columns)}"], source)
    if layout == "long":
        for col in (chan_col, spend_col):
            if col not in columns:
                problems.append(f"column {col!r} not found; the long layout needs {date_col}, {chan_col}, "
                                f"{spend_col}[, {ret_col}]; columns are: {', '.join(columns)}")
        for col in columns:
            if col not in (date_col, chan_col, spend_col, ret_col) and not _ignored(col, spec):
                problems.append(f"unknown column {col!r}")
        if problems:
            raise HistoryError(problems, source)
        has_ret = ret_col in columns
        rowed: set = set()  # (period, channel) with a row, readable or not
        for i, r in frame.iterrows():
            row = int(i) + 2  # the header is row 1
            p = period_of(r[date_col], row)
            ch = str(r[chan_col]).strip()
            if ch not in channels:
                msg = f"row {row}: unknown channel {ch!r} (the scenario has {', '.join(channels)})"
                (ignored if force else problems).append(msg)
                continue
            x = number(r[spend_col], "spend", row)
            y = number(r[ret_col], ret_col, row) if has_ret and str(r[ret_col]).strip() != "" else None
            rowed.add((p, ch))
            if p is None or x is None:
                continue
            if (p, ch) in spend:
                problems.append(f"row {row}: {ch} in {p} appears twice")
                continue
            spend[(p, ch)] = x
            if y is not None:
                returns[(p, ch)] = y
    else:
        mapping = _wide_channels(columns, spec, date_col, channels, problems, ignored, force)
        rows_of: set[str] = set()
        for i, r in frame.iterrows():
            row = int(i) + 2
            p = period_of(r[date_col], row)
            if p is None:
                if not force:  # the row's other cells are checked too: one run lists every problem
                    for col in mapping.values():
                        number(r[col], f"{col} spend", row)
                continue
            if p in rows_of:
                problems.append(f"row {row}: period {p} appears twice")
                continue
            rows_of.add(p)
            for ch, col in mapping.items():
                x = number(r[col], f"{col} spend", row)
                if x is not None:
                    spend[(p, ch)] = x
            if spec.kpi in columns and str(r[spec.kpi]).strip() != "":
                y = number(r[spec.kpi], spec.kpi, row)
                if y is not None:
                    kpi[p] = y
    seen = [p for p in plan_periods if any(q == p for q, _ in spend)]
    if not seen and not problems:
        problems.append("no actuals for any period of the plan")
    if seen and tuple(seen) != plan_periods[:len(seen)]:
        missing = [p for p in plan_periods[:plan_periods.index(seen[-1]) + 1] if p not in seen]
        problems.append(f"periods missing before {seen[-1]}: {', '.join(missing)} (actuals start with the plan's "
                        "first period and have no gaps)")
    if layout == "long":  # a missing row is not read as no spend: it is how money gets lost
        for p in seen:
            absent = [ch for ch in channels if (p, ch) not in rowed]
            if absent:
                _no_spend(f"period {p}: no row for {', '.join(absent)}: give each channel's spend", problems, ignored,
                          force)
    if problems:
        raise HistoryError(problems, source)
    for p in seen:  # --force: a channel with no row or column in a period is taken as not spending
        for ch in channels:
            spend.setdefault((p, ch), 0.0)
    return Actuals(periods=tuple(seen), channels=channels, spend=spend, returns=returns or None,
                   content=content, source=source, ignored=tuple(ignored), kpi=kpi or None)


def _no_spend(what: str, problems: list, ignored: list, force: bool) -> None:
    """Spend the actuals do not give: a problem, or with ``force`` taken as 0 and listed."""
    what += ", 0 where it spent nothing"
    (ignored if force else problems).append(what + (" (taken as 0)" if force else ""))


def _ignored(col: str, spec) -> bool:
    import fnmatch

    return spec is not None and any(fnmatch.fnmatch(col, pat) for pat in spec.ignore)


def _wide_channels(columns, spec, date_col, channels, problems, ignored, force) -> dict[str, str]:
    """Channel → spend column of a wide actuals file, mapped as the history is."""
    import fnmatch

    rest = [c for c in columns if c != date_col and c != spec.kpi and c not in spec.controls
            and c not in spec.events and not _ignored(c, spec)]
    if isinstance(spec.channels, dict):
        mapping = {ch: col for ch, col in spec.channels.items() if col in columns}
        for ch, col in spec.channels.items():
            if col not in columns and ch in channels:
                _no_spend(f"column {col!r} (channel {ch}) not found: give its spend", problems, ignored, force)
    elif isinstance(spec.channels, str):
        pre, _, post = spec.channels.partition("*")
        mapping = {c[len(pre):len(c) - len(post)]: c for c in rest if fnmatch.fnmatch(c, spec.channels)}
    else:
        mapping = {c: c for c in rest}
    for ch, col in list(mapping.items()):
        if ch not in channels:
            msg = f"column {col!r}: unknown channel {ch!r} (the scenario has {', '.join(channels)})"
            (ignored if force else problems).append(msg)
            del mapping[ch]
    if not isinstance(spec.channels, dict):
        for ch in channels:
            if ch not in mapping:
                _no_spend(f"no spend column for channel {ch}: give its spend", problems, ignored, force)
    return mapping


# --------------------------------------------------------------------------------------------
# the re-plan


def _slice(value, k: int):
    """A per-period setting for the periods from ``k`` on (scalars and None apply to all)."""
    if value is None or np.isscalar(value):
        return value
    return list(value)[k:]


def _link_to_last_actual(channel, pacing, last: float, mn, mx, periods: int):
    """Per-period bounds of the re-planned periods with the change limit from the last actual
    period to the first re-planned one: the re-plan's own LP only links its own periods, so the
    scenario's ``max_change`` / ``max_change_abs`` (the channel's, else the pacing's) bind that
    step here, as bounds on the first period's spend."""
    frac = channel.max_change if channel.max_change is not None else pacing.max_change
    absolute = channel.max_change_abs if channel.max_change_abs is not None else pacing.max_change_abs
    if frac is None and absolute is None:
        return mn, mx
    per = lambda v: [v] * periods if v is None or np.isscalar(v) else list(v)  # noqa: E731
    mn, mx = per(mn), per(mx)
    lows = [b for b in (mn[0], None if frac is None else last * (1 - frac),
                        None if absolute is None else last - absolute) if b is not None]
    highs = [b for b in (mx[0], None if frac is None else last * (1 + frac),
                         None if absolute is None else last + absolute) if b is not None]
    mn[0] = max(0.0, *lows) if lows else None
    mx[0] = min(highs) if highs else None
    return mn, mx


def _scale(value, factor: float):
    if value is None:
        return None
    if np.isscalar(value):
        return float(value) * factor
    return [None if v is None else float(v) * factor for v in value]


def _matrix(plan: dict, channels, periods) -> tuple[np.ndarray, np.ndarray]:
    """(spend, expected return) channels × periods of a recorded period plan's JSON."""
    x = np.zeros((len(channels), len(periods)))
    r = np.zeros_like(x)
    where = {p["period"]: p for p in plan.get("periods") or []}
    for t, label in enumerate(periods):
        for c in where[label]["channels"]:
            if c["channel"] in channels:
                i = channels.index(c["channel"])
                x[i, t], r[i, t] = c["spend"], c["expected_return"]
    return x, r


def _cents(v: float) -> float:
    return round(float(v), 2) + 0.0


def _beyond(deviation: float, tolerance: float) -> str:
    """|deviation| as a percentage with the decimals it takes to show it is past ``tolerance``
    ("10.4%", not "10%" beside "tolerance 10%")."""
    for digits in (0, 1, 2):
        text = f"{abs(deviation):.{digits}%}"
        if text != f"{tolerance:.{digits}%}":
            return text
    return text


def periods_up_to(periods, as_of: str | None, name: str) -> tuple:
    """The actuals' periods up to ``--as-of`` (all without it); an as-of the actuals do not
    cover is a :class:`ScenarioError` with the closest period named."""
    periods = tuple(periods)
    if as_of is None:
        return periods
    if as_of not in periods:
        close = difflib.get_close_matches(as_of.strip(), periods, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ScenarioError([f"--as-of {as_of}: no actuals for it (actuals cover {', '.join(periods)}){hint}"], name)
    return periods[:periods.index(as_of) + 1]


def rebalance(scenario, actuals: Actuals, plan_of_record: dict, *, plan_run_id: int | None = None,
              as_of: str | None = None) -> dict:
    """Re-plan the rest of ``scenario``'s horizon from ``actuals`` and compare with the plan of record.

    Parameters
    ----------
    scenario
        A loaded scenario with a ``[horizon]`` (:func:`scenarios.load_scenario`).
    actuals
        From :func:`read_actuals`.
    plan_of_record
        The recorded plan's JSON (``budget allocate --format json``) for the same periods.
    plan_run_id
        The plan of record's run id in the ledger, for the record.
    as_of
        The last actual period to use (default: the last one in ``actuals``).

    Returns
    -------
    dict
        JSON-ready: ``status``, ``as_of``, ``model_update``, ``budget`` (``spent_to_date``,
        ``remaining``, ``reserve``), ``variance`` per channel to date, ``end_of_horizon``,
        ``channels`` (remaining spend: plan of record vs re-plan), ``periods`` (the re-plan),
        ``suggestions``, ``drift``, ``notes``. Money to the cent: ``spent_to_date`` + the
        re-plan's spend + its reserve = the budget.

    Raises
    ------
    ScenarioError
        No [horizon]; the plan of record is for other periods.
    """
    from optimizer import Group, Pacing, money, optimize_periods, plan_returns
    from scenarios import evidence as ev
    from scenarios.horizon import period_problem
    from scenarios.plan import curve_warnings

    name = scenario.name
    if scenario.horizon_spec is None:
        raise ScenarioError(["rebalance needs a period plan: add a [horizon] table (see weekly.toml, monthly.toml)"],
                            name)
    base = period_problem(scenario, scenario.horizon_spec)
    periods, T = tuple(base.periods), base.T
    recorded = tuple(p["period"] for p in plan_of_record.get("periods") or [])
    if recorded != periods:
        raise ScenarioError([f"the plan of record is for periods {', '.join(recorded) or '(none: not a period plan)'}"
                             f", the scenario now plans {', '.join(periods)}; record the plan again "
                             "(budget allocate --record --force)"], name)
    done = periods_up_to(actuals.periods, as_of, name)
    k = len(done)
    closed = k >= T  # every period has actuals: the horizon is closed, nothing is re-planned
    cur, rc = base.currency, base.return_currency  # money; returns (KPI units when the KPI is not money)
    names = [c.name for c in base.channels]
    spec = scenario.rebalance
    B = float(base.budget)
    X_por, R_por = _matrix(plan_of_record, names, periods)
    X_act = np.array([[actuals.spend[(p, c)] for p in done] for c in names]).reshape(len(names), k)
    has_ret = actuals.returns is not None
    Y_act = (np.array([[actuals.returns.get((p, c), 0.0) for p in done] for c in names]).reshape(len(names), k)
             if has_ret else None)

    # What the model expects of the actual spend (returns at t depend on spend up to t only).
    X_full = np.concatenate([X_act, X_por[:, k:]], axis=1)
    modelled = plan_returns(base, X_full)
    expected_act = modelled["returns"][:, :k]
    # Carryover the actual spend built, from the plan's starting carryover.
    carry = modelled["effective"][:, k - 1]
    scale = np.ones(len(names))
    if has_ret:
        for i in range(len(names)):
            e = expected_act[i].sum()
            if e > 0 and X_act[i].sum() > 0:
                scale[i] = float(np.clip(Y_act[i].sum() / e, *SCALE_BOUNDS))
    model_update = MODEL_UPDATE["scaled" if has_ret else "none"]

    spent = _cents(X_act.sum())
    remaining = _cents(B - spent)
    por_reserve = float(plan_of_record.get("reserve", B - X_por.sum()))
    locked = set(spec.locked) | {c.name for c in base.channels if c.locked}
    notes: list[str] = []
    warnings = list(dict.fromkeys(curve_warnings(scenario) + list(scenario.warnings)))
    head = len(warnings)  # the evidence's warnings follow the curves', as in allocate
    risk = scenario.risk
    # The evidence limits allocate puts on poorly identified channels hold the re-plan too, on each
    # channel's horizon total (what is left of it after the spend to date); the guard stands in
    # for them, as in allocate.
    evidence, limited = {}, {}
    if risk is None or risk.measure != "guard":
        held, limited = ev.evidence_limits(scenario, scenario.problem)
        evidence = {c.name: c.evidence_range for c in held.channels if c.name in limited and c.name not in locked}
    eff = base.efficiency()

    def remaining_channels(ranges: dict) -> tuple[list, dict]:
        """The channels over the remaining periods, held to the evidence ranges ``ranges`` of their
        horizon totals; and the channels they hold ({channel: (low, high) of its remaining spend})."""
        out, applied = [], {}
        tol = 0.01 + 1e-9 * remaining
        for i, c in enumerate(base.channels):
            por_rem = X_por[i, k:]
            spent_c = X_act[i].sum()
            lo = None if c.min_total is None else max(0.0, c.min_total - spent_c)
            hi = None if c.max_total is None else max(0.0, c.max_total - spent_c)
            lo_ch, hi_ch = por_rem.sum() * (1 - spec.max_change), por_rem.sum() * (1 + spec.max_change)
            lo = lo_ch if lo is None else max(lo, lo_ch)
            hi = hi_ch if hi is None else min(hi, hi_ch)
            lo = min(lo, hi)
            sources = ((), ())  # the evidence where it sets a limit, for the binding constraints' names
            if c.name in ranges:
                e_lo, e_hi = (max(0.0, v - spent_c) for v in ranges[c.name])
                if max(lo, e_lo) <= min(hi, e_hi):  # else the spend to date already left the range
                    applied[c.name] = (e_lo, e_hi)
                    held = (f"evidence[{c.name}]",)
                    sources = (held if e_lo > lo + tol else (), held if e_hi < hi - tol else ())
                    lo, hi = max(lo, e_lo), min(hi, e_hi)
            mn, mx = _slice(c.min_per_period, k), _slice(c.max_per_period, k)
            if c.name in locked:
                mn = mx = [float(v) for v in por_rem]
                lo = hi = None
            else:
                mn, mx = _link_to_last_actual(c, base.pacing, float(X_act[i, k - 1]), mn, mx, len(periods) - k)
            out.append(replace(
                c, carryover=float(carry[i]), efficiency=[float(v) * scale[i] for v in eff[i, k:]],
                min_total=lo, max_total=hi, min_per_period=mn, max_per_period=mx,
                current=[float(v) for v in por_rem], locked=False, total_sources=sources))
        return out, applied

    alloc, risk_out, applied = None, None, {}
    if not closed:  # the re-plan of the periods left
        f = B / remaining if remaining > 0 else 1.0
        groups = []
        for g in base.groups:
            spent_g = sum(X_act[i].sum() for i, c in enumerate(base.channels) if c.group == g.name)
            gmin = None if g.min_share is None else min(1.0, max(0.0, (g.min_share * B - spent_g) / remaining))
            gmax = None if g.max_share is None else min(1.0, max(0.0, (g.max_share * B - spent_g) / remaining))
            groups.append(Group(name=g.name, min_share=gmin, max_share=gmax, label=g.label))
        p = base.pacing
        pacing = Pacing(min_share=_scale(_slice(p.min_share, k), f), max_share=_scale(_slice(p.max_share, k), f),
                        cap=_slice(p.cap, k), max_change=p.max_change, max_change_abs=p.max_change_abs)
        if base.roi_min is not None:
            notes.append("the ROI floor applies to the remaining periods' spend on its own")
        reserve_min = min(1.0, base.reserve_min_share * f)
        reserve_max = None if base.reserve_max_share is None else min(1.0, max(reserve_min, base.reserve_max_share * f))

        def remaining_problem(ranges: dict):
            chans, applied = remaining_channels(ranges)
            return replace(base, periods=periods[k:], channels=tuple(chans), budget=remaining, groups=tuple(groups),
                           reserve_min_share=reserve_min, reserve_max_share=reserve_max, pacing=pacing,
                           target_return=None, notes=()), applied

        rem, applied = remaining_problem(evidence)
        alloc = optimize_periods(rem)
        if applied and not alloc.feasible:  # the evidence conflicts with the re-plan's own limits
            rem, applied = remaining_problem({})
            alloc = optimize_periods(rem)
            if alloc.feasible:
                warnings.insert(head, "evidence: the limits on poorly identified channels conflict with the re-plan's "
                                      "own; re-planned without them")
        if risk is not None and alloc.feasible:
            alloc, risk_out = _replan_on_samples(scenario, rem, alloc, X_por[:, k:], risk, warnings, notes)
        if applied:
            left = {c: lv for c, lv in limited.items() if c in applied}
            notes.append(ev.limits_note(left, "on each channel's total over the horizon, its spend to date included"))
            if alloc.feasible:
                warnings[head:head] = ev.binding_warnings(scenario, alloc, left)
        if alloc.feasible:  # the re-plan's own (S-curve envelopes, return after the horizon …)
            warnings += [w for w in alloc.warnings if w not in warnings]

    # Variance to date and drift.
    variance, drift = [], []
    for i, c in enumerate(names):
        planned, actual = float(X_por[i, :k].sum()), float(X_act[i].sum())
        row = {"channel": c, "planned_spend": _cents(planned), "actual_spend": _cents(actual),
               "spend_variance": _cents(actual - planned),
               "planned_return": _cents(R_por[i, :k].sum()),
               "expected_return_at_actual_spend": _cents(expected_act[i].sum()),
               "actual_return": _cents(Y_act[i].sum()) if has_ret else None,
               "return_variance": _cents(Y_act[i].sum() - R_por[i, :k].sum()) if has_ret else None}
        variance.append(row)
        dev = (actual - planned) / planned if planned > 0 else (math.inf if actual > 0 else 0.0)
        if abs(dev) > spec.spend_tolerance:
            way = "over" if actual > planned else "under"
            drift.append({"kind": "spend", "channel": c, "actual": _cents(actual), "expected": _cents(planned),
                          "deviation": None if math.isinf(dev) else round(dev, 4), "tolerance": spec.spend_tolerance,
                          "text": f"{c}: spent {money(actual, cur)} to date against {money(planned, cur)} planned "
                                  f"({way}spent by {'all of it' if math.isinf(dev) else _beyond(dev, spec.spend_tolerance)}; "
                                  f"tolerance {spec.spend_tolerance:.0%})"})
        if has_ret and expected_act[i].sum() > 0:
            e, y = float(expected_act[i].sum()), float(Y_act[i].sum())
            dev_r = (y - e) / e
            if abs(dev_r) > spec.return_tolerance:
                drift.append({"kind": "return", "channel": c, "actual": _cents(y), "expected": _cents(e),
                              "deviation": round(dev_r, 4), "tolerance": spec.return_tolerance,
                              "text": f"{c}: returned {money(y, rc)} to date, the model expected {money(e, rc)} "
                                      f"at that spend ({'+' if dev_r > 0 else '-'}{_beyond(dev_r, spec.return_tolerance)}; "
                                      f"tolerance ±{spec.return_tolerance:.0%}): "
                                      "its curve no longer fits; refit with the new periods"})

    basis = [DRIFT_BASIS] if has_ret else []
    kpi_rows = _kpi_drift(scenario, base, X_full, actuals, done, rc, drift, notes)
    if kpi_rows is not None:
        basis.insert(0, "the KPI per period vs the forecast P10–P90 for the spend actually made (baseline "
                        "+ media over the fit's curve samples)")
    out = {
        "scenario": name, "status": "closed" if closed else "ok" if alloc.feasible else "infeasible",
        "as_of": done[-1],
        "currency": cur, "return_unit": base.return_unit, "plan_of_record_run": plan_run_id,
        "periods_done": list(done), "periods_remaining": list(periods[k:]),
        "model_update": model_update,
        "drift_basis": "; ".join(basis) or "spend to date vs the plan of record only (the actuals give no "
                                           "attributed return, and no KPI the model can forecast)",
        "kpi": kpi_rows or [],
        "budget": {"total": _cents(B), "spent_to_date": spent, "remaining": remaining,
                   "plan_of_record_reserve": _cents(por_reserve), "reserve": remaining if closed else _cents(alloc.reserve)},
        "variance": variance, "drift": drift, "warnings": warnings, "notes": notes,
        "ignored": list(actuals.ignored),
    }
    if risk_out is not None:
        out["risk"] = risk_out
    if not closed and not alloc.feasible:
        out.update({"diagnosis": list(alloc.diagnosis), "channels": [], "periods": [], "suggestions": [],
                    "end_of_horizon": None, "gain": None})
        return out
    to_date = float(Y_act.sum()) if has_ret else float(expected_act.sum())
    # The spend to date keeps earning after the periods done (its carryover, and after the horizon
    # when that counts): the re-plan's returns are what new spend adds beyond that carryover, so
    # it is counted here once, for both plans, each channel's as its curve is scaled.
    alone = plan_returns(base, np.concatenate([X_act, np.zeros_like(X_por[:, k:])], axis=1))
    later = alone["returns"][:, k:].sum(axis=1) + (alone["after_horizon"] if base.count_after_horizon else 0.0)
    to_come = float(np.dot(scale, later))
    recorded_total = float(plan_of_record.get("expected_return", R_por.sum()))

    def end_of_horizon(rem_por: float, rem_new: float) -> dict:
        return {"recorded_expected_return": _cents(recorded_total), "return_to_date": _cents(to_date),
                "return_to_come_of_spend_to_date": _cents(to_come),
                "plan_of_record_expected_return": _cents(to_date + to_come + rem_por),
                "replan_expected_return": _cents(to_date + to_come + rem_new),
                "change_vs_recorded": _cents(to_date + to_come + rem_new - recorded_total)}

    if closed:
        left = (f"the budget overspent by {money(-remaining, cur)}" if remaining < 0 else
                f"{money(remaining, cur)} of the budget unspent")
        notes.append("every period of the horizon has actuals: it is closed and nothing is re-planned; the spend and "
                     f"return against the plan of record and the drift are its close ({left})")
        out.update({"channels": [], "periods": [], "suggestions": [], "end_of_horizon": end_of_horizon(0.0, 0.0),
                    "gain": 0.0, "min_gain": 0.0})
        return out

    X_new = np.asarray(alloc.period_spend, float)
    X_rem = X_por[:, k:]
    # The plan of record's remaining spend at the re-plan's level: what is left once the spend to
    # date and the reserve are settled, split as the plan of record splits it. Transfers between
    # channels are measured from it, so their gain is what moving money earns, not what the level
    # change costs.
    level = float(X_new.sum()) / float(X_rem.sum()) if X_rem.sum() > 0 else 1.0
    X_base = X_rem * level
    rem_por = plan_returns(rem, X_rem)["total"]
    rem_base = plan_returns(rem, X_base)["total"]
    rem_new = plan_returns(rem, X_new)["total"]
    gain = rem_new - rem_base
    out["end_of_horizon"] = end_of_horizon(rem_por, rem_new)
    out["gain"] = _cents(gain)
    out["channels"] = [{"channel": c, "plan_of_record_remaining": _cents(X_rem[i].sum()),
                        "replan_remaining": _cents(X_new[i].sum()),
                        "change": _cents(X_new[i].sum() - X_rem[i].sum()), "locked": c in locked,
                        "carryover": _cents(carry[i]), "scale": round(float(scale[i]), 4),
                        "marginal_roi": _marginal(rem, X_rem, i)}
                       for i, c in enumerate(names)]
    R_new = np.asarray(alloc.period_return, float)
    out["periods"] = [{"period": lab, "channels": [{"channel": c, "spend": _cents(X_new[i, t]),
                                                   "expected_return": _cents(R_new[i, t])}
                                                  for i, c in enumerate(names)]}
                      for t, lab in enumerate(periods[k:])]
    suggestions = _level(X_rem, X_new, periods[k:], cur, spec.unit, unspent=float(X_por[:, :k].sum() - X_act.sum()),
                         por_reserve=por_reserve, new_reserve=float(alloc.reserve), cost=rem_base - rem_por,
                         return_currency=rc)
    threshold = spec.min_gain * max(rem_por, 0.0)
    out["min_gain"] = _cents(threshold)
    if gain < threshold:
        notes.append(f"no transfer between channels suggested: the re-plan gains {money(gain, rc)}, below the "
                     f"minimum {money(threshold, rc)} ({spec.min_gain:.1%} of the remaining expected return)")
    else:
        suggestions += _transfers(rem, X_base, X_new, names, spec.unit, cur, periods[k:])
    out["suggestions"] = suggestions
    return out


def _replan_on_samples(scenario, rem, point, X_rem: np.ndarray, risk, warnings: list, notes: list):
    """The re-plan as the scenario's ``risk`` asks, over the fitted curves' samples: guard (the best
    mean plan whose worst ``alpha`` share of samples still gains on the plan of record's remaining
    split, at the re-plan's spend) or CVaR. Returns (allocation, the JSON ``risk`` figures)."""
    from optimizer import optimize_cvar_periods, optimize_guarded_periods
    from scenarios.plan import _period_samples, guard_note, required_samples

    samples = _period_samples(scenario, rem, required_samples(scenario, per_period=True))
    said = f"re-planned over the curve samples as the scenario's risk = \"{risk.measure}:{risk.alpha:g}\" asks"
    if risk.measure == "cvar":
        plans = optimize_cvar_periods(rem, samples, risk.alpha)
        notes.append(f"{said}: the best CVaR of the remaining return")
        return plans.averse, plans.risk
    spent = float(np.sum(point.period_spend))
    reference = X_rem * (spent / float(X_rem.sum())) if X_rem.sum() > 0 else X_rem
    plans = optimize_guarded_periods(rem, samples, risk.alpha, reference=reference, point=point)
    notes.append(said)
    if not plans.reference_feasible:
        warnings.append(f"guard: {plans.note}")
    else:
        notes.append(guard_note(plans, risk.alpha, "re-plan", "the plan of record's remaining split"))
    return plans.guarded, plans.guard


def _level(X_rem, X_new, periods, cur, unit, *, unspent, por_reserve, new_reserve, cost, return_currency) -> list[dict]:
    """What settles the level of the remaining spend: the spend to date off plan, and the reserve."""
    from optimizer import money

    out = []
    change = float(X_new.sum() - X_rem.sum())
    if abs(change) >= unit / 2:
        rounded = round(abs(change) / unit) * unit
        why = []
        if abs(unspent) >= 0.005:
            why.append(f"{money(abs(unspent), cur)} {'under' if unspent > 0 else 'over'} plan to date")
        if abs(new_reserve - por_reserve) >= 0.005:
            why.append(f"the reserve {'released' if new_reserve < por_reserve else 'raised'} by "
                       f"{money(abs(new_reserve - por_reserve), cur)}")
        text = (f"spend {money(rounded, cur)} {'more' if change > 0 else 'less'} over {_span(periods)} than the "
                f"plan of record ({'; '.join(why) or 'the remaining budget'}), split as the plan of record splits it: "
                f"{'+' if cost >= 0 else '−'}{money(abs(cost), return_currency)} expected")
        out.append({"kind": "level", "from": None, "to": None, "amount": float(rounded), "exact_amount": _cents(change),
                    "periods": list(periods), "expected_gain": _cents(cost), "text": text})
    if abs(new_reserve - por_reserve) >= unit / 2:
        rounded = round(abs(new_reserve - por_reserve) / unit) * unit
        release = new_reserve < por_reserve
        text = (f"{'release' if release else 'add'} {money(rounded, cur)} {'of' if release else 'to'} the reserve "
                f"({money(por_reserve, cur)} in the plan of record, {money(new_reserve, cur)} now)")
        out.append({"kind": "reserve_release" if release else "reserve_draw", "from": None, "to": None,
                    "amount": float(rounded), "exact_amount": _cents(new_reserve - por_reserve),
                    "periods": list(periods), "expected_gain": None, "text": text})
    return out


def _kpi_drift(scenario, base, X_full, actuals, done, kpi_currency, drift, notes) -> list[dict] | None:
    """Flag periods whose KPI fell outside the forecast P10–P90 for the spend actually made
    (``kpi_currency``: the currency, or "" for a KPI that is not money).

    Needs a fitted model (the baseline forecast) and a KPI per period (wide actuals); returns
    the rows (period, actual, p10, p90), or None when the test cannot be made.
    """
    from optimizer import money

    if not actuals.kpi or scenario.model is None:
        if actuals.kpi:
            notes.append("the KPI per period is not tested: written curves have no baseline forecast")
        return None
    from models.forecast import forecast

    model = scenario.model
    fitted = set(model.channels_)
    names = [c.name for c in base.channels]
    plan = {c: X_full[i] for i, c in enumerate(names) if c in fitted}
    fc = forecast(model, {"actual": plan}, base.T, seed=0)
    if tuple(fc["periods"]) != tuple(base.periods):
        notes.append("the KPI per period is not tested: the plan's periods are not the model's next periods")
        return None
    band = fc["plans"]["actual"]["total"]
    rows = []
    for t, p in enumerate(done):
        if p not in actuals.kpi:
            continue
        y, lo, hi = actuals.kpi[p], band["p10"][t], band["p90"][t]
        rows.append({"period": p, "actual": _cents(y), "p10": _cents(lo), "p90": _cents(hi)})
        if not lo <= y <= hi:
            drift.append({"kind": "kpi", "channel": "", "period": p, "actual": _cents(y),
                          "expected": _cents(band["p50"][t]), "deviation": round((y - band["p50"][t]) / band["p50"][t], 4)
                          if band["p50"][t] else None, "tolerance": 0.8,
                          "text": f"KPI in {p}: {money(y, kpi_currency)}, outside the forecast P10–P90 for the spend made "
                                  f"({money(lo, kpi_currency)}–{money(hi, kpi_currency)}): the model no longer explains the new periods"})
    return rows


def _marginal(problem, X: np.ndarray, i: int) -> float | None:
    """Marginal ROI of channel ``i`` at plan ``X``: return of one more unit spread like its plan."""
    from optimizer import plan_returns

    h = max(1.0, X[i].sum() * 1e-4)
    share = X[i] / X[i].sum() if X[i].sum() > 0 else np.full(X.shape[1], 1.0 / X.shape[1])
    bumped = X.copy()
    bumped[i] += h * share
    return round((plan_returns(problem, bumped)["total"] - plan_returns(problem, X)["total"]) / h, 4)


def _span(periods) -> str:
    return periods[0] if len(periods) == 1 else f"{periods[0]}–{periods[-1]}"


def _transfers(problem, X0, X1, names, unit, cur, periods) -> list[dict]:
    """Pair decreases with increases (largest first) into transfers rounded to ``unit``; each
    transfer's gain is exact: the plan moved that far toward the re-plan, on the updated curves."""
    from optimizer import money, plan_returns

    delta = X1.sum(axis=1) - X0.sum(axis=1)
    sources = sorted([[i, -d] for i, d in enumerate(delta) if d <= -unit / 2], key=lambda s: -s[1])
    sinks = sorted([[i, d] for i, d in enumerate(delta) if d >= unit / 2], key=lambda s: -s[1])
    X = X0.copy()
    moved = np.zeros(len(names))
    mroi = {i: _marginal(problem, X0, i) for i in range(len(names))}
    out = []
    while sources and sinks:
        a, b = sources[0], sinks[0]
        amount = min(a[1], b[1])
        before = plan_returns(problem, X)["total"]
        for i in (a[0], b[0]):
            moved[i] += amount
            X[i] = X0[i] + min(1.0, moved[i] / abs(delta[i])) * (X1[i] - X0[i])
        gain = plan_returns(problem, X)["total"] - before
        a[1] -= amount
        b[1] -= amount
        if a[1] < unit / 2:
            sources.pop(0)
        if b[1] < unit / 2:
            sinks.pop(0)
        rounded = round(amount / unit) * unit
        if rounded <= 0:
            continue
        src, dst = names[a[0]], names[b[0]]
        text = (f"move {money(rounded, cur)} from {src} to {dst} for {_span(periods)}: "
                f"{'+' if gain >= 0 else '−'}{money(abs(gain), problem.return_currency)} expected; marginal ROI "
                f"{mroi[a[0]]:.2f} → {mroi[b[0]]:.2f}")
        out.append({"kind": "transfer", "from": src, "to": dst, "amount": float(rounded),
                    "exact_amount": _cents(amount), "periods": list(periods), "expected_gain": _cents(gain),
                    "marginal_roi_from": mroi[a[0]], "marginal_roi_to": mroi[b[0]], "text": text})
    return out


# --------------------------------------------------------------------------------------------
# against a ledger


def _at_recorded_budget(scenario_path, scenario, plan_run):
    """The scenario at the budget its plan of record was approved at (``allocate --budget N
    --record``), with a note saying so; as it is, and None, when the file's budget is that one.
    Re-planned at the file's budget, the rest of the horizon lost the approved difference and
    the spend to date read as drift."""
    recorded = plan_run.result.get("budget")
    if not isinstance(recorded, (int, float)) or abs(float(recorded) - scenario.problem.budget) <= 0.005:
        return scenario, None
    from optimizer import money
    from scenarios.schema import load_scenario

    cc = scenario.problem.currency
    again = load_scenario(scenario_path, budget=float(recorded))
    return again, (f"re-planned at the plan of record's budget, {money(float(recorded), cc)} (run {plan_run.id} was "
                   f"recorded at it); the scenario file says {money(scenario.problem.budget, cc)}")


def run_rebalance(scenario_path: str | Path, scenario, actuals_path: str | Path, ledger_path: str | Path, *,
                  as_of: str | None = None, force: bool = False, dry_run: bool = False,
                  command: str = "budget rebalance", fail_on_drift: bool = False) -> tuple[dict, object, bool]:
    """Read the actuals, rebalance against the plan of record in ``ledger_path`` and record it.

    Returns
    -------
    (dict, Run or None, bool)
        The result (as recorded), the run (None with ``dry_run``), and whether this call
        recorded it (False: the same scenario, plan of record and actuals were recorded before,
        and that run's result is returned as it was).

    Raises
    ------
    LedgerError
        No ledger or no plan of record; actuals that change a recorded period (unless ``force``).
    HistoryError
        Bad actuals (nothing recorded).
    """
    from scenarios.errors import LedgerError
    from scenarios.ledger import Ledger, product_version, content_hash, scenario_hashes

    if not Path(ledger_path).exists():
        raise LedgerError(f"{ledger_path}: no such ledger; record the plan of record first "
                          "(budget allocate SCENARIO --record --ledger PATH)")
    with Ledger(ledger_path, create=False) as ledger:
        plan_run = ledger.current("plan", scenario.name)
        if plan_run is None:
            raise LedgerError(f"{ledger_path}: no plan of record for {scenario.name!r}; record one first "
                              "(budget allocate SCENARIO --record)")
        scenario, budget_note = _at_recorded_budget(scenario_path, scenario, plan_run)
        periods = tuple(p["period"] for p in plan_run.result.get("periods") or [])
        actuals = read_actuals(actuals_path, scenario, periods, force=force)
        upto = periods_up_to(actuals.periods, as_of, scenario.name)  # before a recorded run is returned
        key = upto[-1] if upto else ""
        scenario_hash, data_hash = scenario_hashes(scenario_path)
        used = repr(sorted((k, v, (actuals.returns or {}).get(k)) for k, v in actuals.spend.items() if k[0] in upto))
        data_hash = content_hash(data_hash or "", f"plan run {plan_run.id}", used)
        old = ledger.current("rebalance", scenario.name, key)
        if old is not None and not force and old.scenario_hash == scenario_hash and old.data_hash == data_hash:
            return old.result, old, False
        if not force:
            changed = []
            for (p, c), (s, r, run_id) in ledger.recorded_actuals(scenario.name).items():
                if p in upto and (p, c) in actuals.spend and (
                        abs(actuals.spend[(p, c)] - s) > 0.005
                        or (r is not None and actuals.returns is not None
                            and abs(actuals.returns.get((p, c), 0.0) - r) > 0.005)):
                    changed.append(f"{c} in {p} (run {run_id})")
            if changed:
                raise LedgerError(f"{ledger_path}: the actuals change already recorded periods: "
                                  + ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10
                                                               else "")
                                  + "; --force records them (the old runs are kept)")
        result = rebalance(scenario, actuals, plan_run.result, plan_run_id=plan_run.id, as_of=as_of)
        if budget_note:
            result["notes"] = [budget_note, *result.get("notes", [])]
        if dry_run:
            return result, None, False
        rows = [(p["period"], c["channel"], c["spend"], c["expected_return"]) for p in result["periods"] for c in p["channels"]]
        acts = [(p, c, actuals.spend[(p, c)], None if actuals.returns is None else actuals.returns.get((p, c)))
                for p in upto for c in actuals.channels]
        run, new = ledger.record(
            kind="rebalance", command=command, scenario_name=scenario.name,
            scenario_path=str(Path(scenario_path).resolve()), scenario_hash=scenario_hash, data_hash=data_hash,
            as_of=key, status=result["status"],
            # The exit code the command gives for this result (5: drift, with --fail-on-drift).
            exit_code=4 if result["status"] == "infeasible" else 5 if fail_on_drift and result["drift"] else 0,
            version=product_version(), result=result, rows=rows, force=force, actuals=acts,
            suggestions=result["suggestions"], drift=result["drift"])
        return run.result, run, new
