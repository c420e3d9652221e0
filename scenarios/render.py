"""How results read: aligned tables, CSV and JSON text for plans, fits and forecasts.

Pure functions from a result (an :class:`optimizer.Allocation`, a fit report, a forecast) to
text; ``cli.py`` prints what they return, and a notebook can call them the same way. Money
reads in the scenario's currency (``¥`` for CNY, ``$`` for USD, …), tables stay CJK-aligned.
"""

from __future__ import annotations

import csv
import io
import json
import math
import unicodedata

__all__ = [
    "allocation_csv", "allocation_json", "allocation_table", "fit_table", "forecast_csv", "forecast_table",
    "infeasible_message", "json_text", "ratio_text", "period_csv", "period_table", "render_table", "risk_table",
    "comparison_csv", "comparison_table", "spreadsheet_safe",
]


def _currency(code: str | None) -> tuple[str, str]:
    """(prefix, unit word) of an ISO currency code: ("¥", "yuan"), ("$", "dollar"), ("SEK ", "SEK")."""
    from optimizer import currency_symbol, unit_name

    symbol = currency_symbol(code or "CNY")
    return symbol + (" " if symbol[-1:].isalpha() else ""), unit_name(code or "CNY")


def units_line(currency: str, return_unit: str | None, capital: bool = True) -> str:
    """What a report's figures are in: "Money in CNY (¥)", or for curves fitted on a KPI that is
    not money (``return_unit`` "kpi") "Spend, budget and reserve in CNY (¥); returns in the KPI's
    own units" (None: the columns of a comparison differ, which the comparison says itself)."""
    symbol = _currency(currency)[0].strip()
    if return_unit == "kpi":
        text = f"Spend, budget and reserve in {currency} ({symbol}); returns in the KPI's own units"
    elif return_unit is None:
        text = f"Spend, budget and reserve in {currency} ({symbol})"
    else:
        text = f"Money in {currency} ({symbol})"
    return text if capital else text[0].lower() + text[1:]


def json_text(data) -> str:
    """Indented JSON with non-ASCII kept (channel names) and non-finite floats as null."""
    return json.dumps(_json_safe(data), ensure_ascii=False, indent=2) + "\n"


def _json_safe(value):
    """Non-finite floats become null: JSON has no infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value



def display_width(text: str) -> int:
    """Display width: CJK characters take two terminal columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    gap = " " * max(width - display_width(text), 0)
    return gap + text if right else text + gap


def render_table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    """Plain aligned columns (numbers right-aligned), CJK-aware."""
    right = right or set()
    widths = [max([display_width(h)] + [display_width(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(_pad(c, widths[i], i in right) for i, c in enumerate(cells)).rstrip()  # noqa: E731
    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def _num(v: float | None, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "∞" if isinstance(v, float) and v > 0 else "-"
    text = f"{v:,.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text  # never "-0"


def ratio_text(v: float | None) -> str:
    """An ROI or marginal ROI: two decimals, or two significant digits below 0.1 (a KPI in
    conversions or in 万 has ROIs like 0.016 or 0.00030, which two decimals print as 0.02 and 0.00)."""
    if v is None or not math.isfinite(v) or v == 0 or abs(v) >= 0.1:
        return _num(v, 2)
    return _num(v, min(8, 1 - math.floor(math.log10(abs(v)))))


def _signed(v: float, digits: int = 0) -> str:
    half = 0.5 * 10.0 ** -digits
    return ("+" if v > half else "") + f"{v:,.{digits}f}" if abs(v) >= half else "0"


def money_digits(budget: float | None) -> int:
    """Decimals for money in a plan's table: whole units, but cents for a budget under 10,000
    (a budget of 8 in normalised units printed "4 → 5, change 0" for 4.44 → 4.58)."""
    return 2 if budget is not None and 0 < abs(budget) < 10_000 else 0


def _pct(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    if abs(v) < 5e-4:  # rounds to 0.0%: never "-0.0%"
        v = 0.0
    return f"{v * 100:+.1f}%" if signed else f"{v * 100:.1f}%"



#: First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection):
#: ``=``, ``+``, ``-``, ``@``, and tab and carriage return, which some spreadsheets skip first.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A cell a spreadsheet shows as written instead of running it: text that begins with a
    formula character gets a leading ``'`` (OWASP's CSV-injection advice); numbers, negative ones
    included, stay numbers; a number that is not finite (the marginal ROI of a channel at 0 on a
    curve that is steep there) is a blank cell, as JSON's null, not the text ``inf`` a
    spreadsheet reads as a word; everything else is returned as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return value


class _SafeWriter:
    """``csv.writer`` whose text cells go through :func:`spreadsheet_safe`."""

    def __init__(self, buf, **kwargs):
        self._w = csv.writer(buf, **kwargs)

    def writerow(self, row):
        return self._w.writerow([spreadsheet_safe(v) for v in row])


class _SafeDictWriter(csv.DictWriter):
    """``csv.DictWriter`` whose text cells go through :func:`spreadsheet_safe`."""

    def writerow(self, rowdict):
        return super().writerow({k: spreadsheet_safe(v) for k, v in rowdict.items()})


#: Binding constraints listed in the table (a weekly plan can have hundreds; JSON has them all).
BINDING_SHOWN = 12


def allocation_table(alloc, horizon: str | None = None) -> str:
    """The human report of an allocation."""
    d = alloc.to_dict()
    cur = d["current"] or {}
    symbol, unit = _currency(d["currency"])
    digits = money_digits(d["budget"])

    def m(v):
        return _num(v, digits)

    head = f"{d['scenario']}: budget {symbol}{m(d['budget'])} ({d['currency']})"
    if horizon:
        head += f", {horizon}"
    head += f"; objective {d['objective']}"
    lines = [head, ""]
    if d["warnings"]:  # what the plan rests on comes before the plan
        lines.append("Warnings:")
        lines += [f"  - {w}" for w in d["warnings"]]
        lines.append("")
    rows = []
    for c in d["channels"]:
        change = c["change"]
        rel = (f" ({change / c['current_spend'] * 100:+.0f}%)"
               if c["current_spend"] > 0 and abs(change) >= 0.5 * 10.0 ** -digits else "")
        rows.append([
            c["channel"], c["group"], m(c["current_spend"]), m(c["spend"]), _signed(change, digits) + rel,
            _pct(c["share"]), m(c["expected_return"]), ratio_text(c["roi"]), ratio_text(c["marginal_roi"]),
        ])
    lines.append(render_table(
        ["channel", "group", "current", "recommended", "change", "share", "return", "ROI", "mROI"],
        rows, right={2, 3, 4, 5, 6, 7, 8},
    ))
    lines.append("")
    b = d["budget"] or 1.0
    grows = []
    for g in d["groups"]:
        grows.append([g["group"], m(g["current_spend"]), _pct(g["current_spend"] / b), m(g["spend"]), _pct(g["share"])])
    grows.append(["reserve", m(cur.get("reserve")), _pct((cur.get("reserve") or 0) / b), m(d["reserve"]), _pct(d["reserve"] / b)])
    lines.append(render_table(["group", "current", "share", "recommended", "share"], grows, right={1, 2, 3, 4}))
    lines.append("")
    up = d["uplift"]
    lines.append(f"spend            {m(cur.get('spend'))} → {m(d['spend'])}")
    lines.append(
        f"expected return  {m(cur.get('expected_return'))} → {m(d['expected_return'])}"
        + (f" ({_pct(up, signed=True)})" if up is not None else "")
    )
    lines.append(f"ROI              {ratio_text(cur.get('roi'))} → {ratio_text(d['roi'])}")
    if cur and not cur.get("feasible", True):
        lines.append("the current plan breaks these constraints: " + "; ".join(cur["violations"]))
    if d["binding_constraints"]:
        lines.append("")
        lines.append("Binding constraints (what limits the plan):")
        shown = d["binding_constraints"][:BINDING_SHOWN]
        for bd in shown:
            price = bd["shadow_price"]
            extra = f"  [shadow price {price:.3f}]" if price else ""
            lines.append(f"  {bd['name']}: {bd['detail']}{extra}")
        if len(d["binding_constraints"]) > len(shown):
            lines.append(f"  … and {len(d['binding_constraints']) - len(shown)} more (all of them in --format json)")
    if d.get("notes"):
        lines.append("")
        lines.append("Notes:")
        lines += [f"  - {n}" for n in d["notes"]]
    lines.append("")
    lines.append(
        f"{units_line(d['currency'], d['return_unit'])}. mROI is the return of the next {unit}. The plan equalises it "
        "across channels that are free to move; cut where it is lowest, not where average ROI is below average."
    )
    lines.append(f"solver: {d['solver']['name']} ({d['solver']['mode']}), {d['solver']['seconds']:.2f} s")
    return "\n".join(lines) + "\n"


ALLOCATION_CSV_FIELDS = [
    "channel", "label", "group", "spend", "share", "current_spend", "change", "expected_return", "roi",
    "marginal_roi",
]


def allocation_csv(alloc) -> str:
    """One row per channel, then ``reserve`` and ``total`` rows (spend + reserve = budget), as a
    spreadsheet user expects; the currency is in the rows' ``currency`` column."""
    d = alloc.to_dict()
    cur = d["current"] or {}
    fields = ALLOCATION_CSV_FIELDS + ["currency"]
    buf = io.StringIO()
    w = _SafeDictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for c in d["channels"]:
        row = {k: ("" if c.get(k) is None else c[k]) for k in ALLOCATION_CSV_FIELDS}
        if c.get("share") is not None:  # as the reserve and total rows: 0.117362, not 0.11736219299999999
            row["share"] = round(c["share"], 6)
        w.writerow({**row, "currency": d["currency"]})
    budget = d["budget"] or 0.0
    totals = [
        ("reserve", d["reserve"], cur.get("reserve"), None, None),
        ("total", budget, budget if cur else None, d["expected_return"], d["roi"]),
    ]
    for name, spend, current, ret, roi in totals:
        w.writerow({
            "channel": name, "label": name, "spend": spend, "share": round(spend / budget, 6) if budget else "",
            "current_spend": "" if current is None else current,
            "change": "" if current is None else round(spend - current, 2),
            "expected_return": "" if ret is None else ret, "roi": "" if roi is None else roi,
            "currency": d["currency"],
        })
    return buf.getvalue()


def allocation_json(alloc, scenario=None, extra: dict | None = None) -> str:
    d = alloc.to_dict()
    if scenario is not None:
        d["horizon"] = scenario.horizon
    d.update(extra or {})
    return json_text(d)


def infeasible_message(alloc) -> str:
    """``Error: no plan satisfies …`` with the diagnosis, one conflict a line."""
    lines = [f"Error: no plan satisfies every constraint of {alloc.scenario}:"]
    lines += [f"  - {p}" for p in alloc.diagnosis]
    return "\n".join(lines)


def risk_table(extra: dict) -> str:
    """The spread of the plan's return over curve samples (and the risk trade-off with --risk)."""
    lines = []
    if "return_interval" in extra:
        r = extra["return_interval"]
        lines += ["", f"expected return over {r['samples']} curve samples: P10 {_num(r['p10'])}, "
                      f"P50 {_num(r['p50'])}, P90 {_num(r['p90'])} (mean {_num(r['mean'])})"]
        if r.get("beats_current") is not None:
            lines.append(f"the plan returns more than the current plan in {r['beats_current']:.0%} of the samples "
                         "(they share the fit's assumptions: see the evidence notes)")
    if "risk" in extra and extra["risk"].get("measure") == "guard":
        lines += _guard_lines(extra)
    elif "risk" in extra:
        rk = extra["risk"]
        rows = [[name, _num(st["mean"]), _num(st["p10"]), _num(st["p50"]), _num(st["p90"]), _num(st["cvar"])]
                for name, st in (("risk-neutral (best mean)", rk["neutral"]), (f"risk-averse (best CVaR {rk['alpha']:g})", rk["averse"]))]
        lines += ["", f"Return over {rk['samples']} curve samples (the plan above is the risk-averse one):",
                  render_table(["plan", "mean", "P10", "P50", "P90", f"CVaR {rk['alpha']:g}"], rows, right={1, 2, 3, 4, 5})]
        neutral = extra["risk_neutral"]["channels"]
        lines += ["", "risk-neutral spends: " + ", ".join(f"{c['channel']} {_num(c['spend'])}" for c in neutral)]
    return "\n".join(lines) + ("\n" if lines else "")


def _guard_lines(extra: dict) -> list[str]:
    """The guarded plan (--risk guard:ALPHA) next to the best mean plan and the current plan."""
    rk = extra["risk"]
    if not rk.get("guarded"):  # nothing was planned
        return []
    tail = f"{rk['alpha']:.0%}"
    rows = [[name, _num(st["mean"]), _num(st["p10"]), _num(st["p50"]), _num(st["p90"]),
             f"{st['beats_reference']:.0%}" if name != "current plan" else "—",
             _num(st["cvar_gain"]) if name != "current plan" else "—"]
            for name, st in (("guarded (the plan above)", rk["guarded"]), ("best mean, unguarded", rk["mean"]),
                             ("current plan", rk["reference"]))]
    verdict = ("the guard binds: the best mean plan would lose to the current plan in the bad cases"
               if rk["binds"] else "the guard does not bind: the best mean plan is the plan")
    lines = ["", f"Return over {rk['samples']} curve samples; the plan is the best mean return whose worst {tail} of "
                 f"samples still gain on the current plan ({verdict}):",
             render_table(["plan", "mean", "P10", "P50", "P90", "beats current", f"gain, worst {tail}"], rows,
                          right={1, 2, 3, 4, 5, 6})]
    if rk["binds"]:
        lines += ["", "best-mean spends: " + ", ".join(f"{c['channel']} {_num(c['spend'])}"
                                                       for c in extra["risk_neutral"]["channels"])]
    return lines


def period_table(alloc) -> str:
    """Spend per channel (rows) per period (columns), in thousands, with period totals."""
    d = alloc.to_dict()
    periods = d["periods"]
    if not periods:
        return ""
    names = [c["channel"] for c in d["channels"]]
    rows = []
    for i, name in enumerate(names):
        rows.append([name] + [_num(p["channels"][i]["spend"] / 1000) for p in periods])
    rows.append(["total"] + [_num(p["spend"] / 1000) for p in periods])
    rows.append(["return"] + [_num(p["expected_return"] / 1000) for p in periods])
    symbol = _currency(d["currency"])[0].strip()
    head = [f"spend ({symbol}k)"] + [p["period"] for p in periods]
    lines = ["", f"Spend per period ({symbol} thousands):", render_table(head, rows, right=set(range(1, len(head))))]
    after = d.get("after_horizon_return") or 0.0
    lines.append(
        f"return earned after the horizon through carryover: {_num(after)} "
        + ("(counted in the expected return)" if d.get("count_after_horizon") else "(not counted)")
    )
    return "\n".join(lines) + "\n"


PERIOD_CSV_FIELDS = ["period", "channel", "spend", "effective_spend", "expected_return"]


def period_csv(alloc) -> str:
    """Long format: one row per period and channel."""
    buf = io.StringIO()
    w = _SafeDictWriter(buf, fieldnames=PERIOD_CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for p in alloc.to_dict()["periods"]:
        for c in p["channels"]:
            w.writerow({"period": p["period"], **{k: c[k] for k in PERIOD_CSV_FIELDS[1:]}})
    return buf.getvalue()



def _interval_source(report: dict) -> str:
    """Where a fit's ROI intervals come from, in words."""
    unc = report.get("uncertainty") or {"method": "bootstrap", "samples": report.get("bootstrap_samples", 0)}
    if unc["method"] == "posterior":
        diag = unc.get("diagnostics") or {}
        rhat = diag.get("r_hat")
        return (f"ROI P10–P90 over {unc['samples']} posterior draws (joint Bayesian model, NUTS, "
                f"{diag.get('chains', '?')} chains{f', R̂ ≤ {rhat:.2f}' if rhat is not None else ''}); ROI and mROI of "
                "the posterior-mean curve")
    if not unc.get("samples"):
        return "no ROI intervals (fitted without bootstrap resamples: --bootstrap N gives them)"
    return f"ROI intervals from {unc['samples']} block-bootstrap resamples"


def fit_table(report: dict, source: str) -> str:
    """The human report of a fitted model."""
    fitq = report["fit"]
    hold = fitq.get("holdout") or {}
    lines = [
        f"{source}: {report['periods']} {report['frequency']} periods, {report['start']} to {report['end']} "
        f"({report['layout']} layout)",
        "",
    ]
    rows = []
    for c in report["channels"]:
        interval = "-"
        if c.get("roi_p10") is not None:
            interval = f"{ratio_text(c['roi_p10'])}–{ratio_text(c['roi_p90'])}"
        rows.append([
            c["channel"], c.get("group") or "", _num(c["spend"]), _num(c["contribution"]), ratio_text(c["roi"]), interval,
            ratio_text(c["marginal_roi"]), f"{c['alpha']:.2f}", _num(c["k"]), f"{c['s']:.2f}",
            _pct(c["spend_share"]), _pct(c["effect_share"]), (c.get("identification") or {}).get("level", "-"),
        ])
    lines.append(render_table(
        ["channel", "group", "spend", "contribution", "ROI", "ROI P10–P90", "mROI", "α", "k", "s", "spend %", "effect %",
         "evidence"],
        rows, right={2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
    ))
    tests = [(c["channel"], t) for c in report["channels"] for t in c.get("lift_tests") or []]
    if tests:
        lines += ["", "Lift tests ([[calibration]]) against the fitted curves:"]
        lines.append(render_table(  # "spend tested": all of the window's (a switch-off) or tested_spend
            ["channel", "window", "spend tested", "measured", "± se", "model", "off by"],
            [[ch, f"{t['start']}…{t['end']}", "all" if t.get("tested_spend") is None else _num(t["tested_spend"]),
              _num(t["lift"]), _num(t["se"]), _num(t["model"]), f"{(t['model'] - t['lift']) / t['se']:+.1f} se"]
             for ch, t in tests],
            right={2, 3, 4, 5, 6}))
    lines.append("")
    lines.append(f"fit in sample: R² {fitq['r2']:.3f}, MAPE {fitq['mape'] * 100:.1f}%, NRMSE {fitq['nrmse']:.3f}")
    if hold.get("r2") is not None:
        lines.append(
            f"fit on the last {hold.get('periods')} periods held out: R² {hold['r2']:.3f}, "
            f"MAPE {hold['mape'] * 100:.1f}%, NRMSE {hold['nrmse']:.3f}"
        )
    posterior = (report.get("uncertainty") or {}).get("method") == "posterior"
    lines.append(f"{_interval_source(report)}; mROI at the mean spend per period; α carryover, k half-saturation "
                 f"spend, s shape{' (posterior medians)' if posterior else ''}.")
    lines.append("evidence: how well the history identifies the channel (calibrated by a lift test, good, weak, "
                 "poor); plans keep weak and poor channels near their share of the current split.")
    if report["warnings"]:
        lines.append("")
        lines.append("Warnings:")
        lines += [f"  - {w}" for w in report["warnings"]]
    return "\n".join(lines) + "\n"



def _band_text(block: dict, i: int | None = None) -> str:
    if i is None:
        b = block["horizon"]
        return f"{_num(b['p50'])} [{_num(b['p10'])}–{_num(b['p90'])}]"
    return f"{_num(block['p50'][i])} [{_num(block['p10'][i])}–{_num(block['p90'][i])}]"


def forecast_table(fc: dict, scenario_name: str) -> str:
    plans = fc["plans"]
    lines = [f"{scenario_name}: forecast of {len(fc['periods'])} {fc['frequency']} periods "
             f"from {fc['periods'][0]} (P50 [P10–P90])", ""]
    if fc.get("warnings"):  # what the forecast rests on comes first, as in a plan
        lines += ["Warnings:"] + [f"  - {w}" for w in fc["warnings"]] + [""]
    rows = []
    for i, period in enumerate(fc["periods"]):
        rows.append([period, _band_text(fc["baseline"], i)] + [_band_text(p["total"], i) for p in plans.values()])
    rows.append(["horizon", _band_text(fc["baseline"])] + [_band_text(p["total"]) for p in plans.values()])
    lines.append(render_table(["period", "baseline"] + [f"total, {n} plan" for n in plans], rows,
                              right=set(range(1, 2 + len(plans)))))
    lines.append("")
    for name, p in plans.items():
        lines.append(f"media return, {name} plan (spend {_num(p['spend'])}): {_band_text(p['media'])}")
    lines.append("")
    lines.append("Baseline: Prophet (trend, yearly seasonality, the history's holidays and campaign days); "
                 "its interval from the model's out-of-sample error. Media: curves with carryover from "
                 "history; interval from the curve samples. The current plan is spread evenly over the "
                 "periods; the recommended one is the period plan when the scenario has a [horizon], else even.")
    return "\n".join(lines) + "\n"


def forecast_csv(fc: dict) -> str:
    buf = io.StringIO()
    w = _SafeWriter(buf, lineterminator="\n")
    w.writerow(["period", "series", "p10", "p50", "p90", "point"])
    series = [("baseline", fc["baseline"])]
    for name, p in fc["plans"].items():
        series += [(f"{name}_media", p["media"]), (f"{name}_total", p["total"])]
    for i, period in enumerate(fc["periods"]):
        for name, b in series:
            w.writerow([period, name, b["p10"][i], b["p50"][i], b["p90"][i], b["point"][i]])
    return buf.getvalue()




def _compare_cell(v, kind: str) -> str:
    if v is None:
        return ""
    if kind == "money":
        return _num(v)
    if kind == "share":
        return _pct(v)
    if kind == "ratio":
        return ratio_text(v)
    return str(v)


def _compare_diff(v, kind: str) -> str:
    if v is None:
        return ""
    if kind == "money":
        return _signed(v)
    if kind == "share":
        points = 0.0 if abs(v) < 5e-4 else v * 100
        return f"{points:+.1f} pt" if points else "0 pt"
    return f"{v:+.2f}" if abs(v) >= 0.005 else "0"


def comparison_table(cmp: dict) -> str:
    """The human report of :func:`scenarios.compare.compare_scenarios`: one column per scenario,
    the plan's figures, then spend (share) per channel and per group, with the difference of two."""
    from pathlib import Path

    from scenarios.compare import comparison_rows

    cols = cmp["scenarios"]
    # Columns are lettered (scenario names are long); the legend says which is which.
    names = [_letter(i) for i in range(len(cols))]
    two = cmp.get("difference") is not None
    lines = [f"{n} = {c['name']} ("
             + ("" if c["name"].endswith(f"({Path(c['source']).name})") else f"{Path(c['source']).name}, ")
             + f"{c['kind']})" for n, c in zip(names, cols)]
    if cmp["currency"]:
        lines.append(units_line(cmp["currency"], cmp.get("return_unit", "money"), capital=False))
        if cmp.get("return_unit", "money") is None:
            kpi, money = ([n for n, c in zip(names, cols) if (c["return_unit"] == "kpi") == side] for side in (True, False))
            lines.append(f"returns of {', '.join(kpi)} in the KPI's own units (not money), of {', '.join(money)} in money: "
                         "returns and ROIs are not comparable across them" + (" (no difference for them)" if two else ""))
    else:
        lines.append(f"money in each column's own currency "
                     f"({', '.join(c['currency'] for c in cols)}): no difference column")
    lines += [cmp["curves"]["text"], ""]
    for fit in cmp["fits"]:
        shared = len(fit["scenarios"])
        how = {"new": "fitted from", "cached": "a cached fit of", "saved model": "the saved model"}.get(
            fit["fitted"], fit["fitted"])
        users = ", ".join(names[[c["name"] for c in cols].index(s)] for s in fit["scenarios"])
        lines.append(f"curves of {users}: {how} {Path(fit['source']).name}"
                     + (" (one fit, shared)" if shared > 1 else ""))
    if cmp["fits"]:
        lines.append("")
    rows = comparison_rows(cmp)
    head = ["", *names] + ([f"{names[1]} − {names[0]}"] if two else [])
    right = set(range(1, len(head)))
    plan_rows = [[r["name"], *(_compare_cell(v, r["kind"]) for v in r["values"])]
                 + ([_compare_diff(r["difference"], r["kind"])] if two else [])
                 for r in rows if r["section"] == "plan" and r["metric"] not in ("source", "curves_from", "currency")]
    lines.append(render_table(head, plan_rows, right=right))
    for section, title in (("channel", "channel"), ("group", "group")):
        by_item: dict[str, dict] = {}
        for r in rows:
            if r["section"] == section:
                by_item.setdefault(r["item"], {"label": r["label"]})[r["metric"]] = r
        table = []
        for item, metrics in by_item.items():
            spend, share = metrics["spend"], metrics["share"]
            cells = [
                "" if s is None else f"{_num(s)} ({_pct(sh)})" for s, sh in zip(spend["values"], share["values"])
            ]
            diff = ""
            if two and spend["difference"] is not None:
                diff = f"{_compare_diff(spend['difference'], 'money')} ({_compare_diff(share['difference'], 'share')})"
            name = item if metrics["label"] in (None, item) else f"{item} ({metrics['label']})"
            table.append([name, *cells] + ([diff] if two else []))
        lines += ["", f"Spend (share) per {title}:",
                  render_table([title, *names] + (head[-1:] if two else []), table, right=right)]
    lines += ["", "Binding constraints (what limits each plan):"]
    for n, c in zip(names, cols):
        shown = c["binding_constraints"][:BINDING_SHOWN]
        more = len(c["binding_constraints"]) - len(shown)
        lines.append(f"  {n}: " + (", ".join(shown) or "none")
                     + (f" … and {more} more (all of them in --format json)" if more > 0 else ""))
    infeasible = [c for c in cols if c["status"] != "optimal"]
    for c in infeasible:
        lines += ["", f"{names[cols.index(c)]}: no plan satisfies every constraint:"] + [f"  - {p}" for p in c["diagnosis"]]
    warned = [c for c in cols if c["warnings"]]
    if warned:
        lines += ["", "Warnings:"]
        for c in warned:
            lines += [f"  {names[cols.index(c)]}:"] + [f"    - {w}" for w in c["warnings"]]
    if cmp["errors"]:
        lines += ["", "Not compared (their problems are on stderr): " + ", ".join(e["source"] for e in cmp["errors"])]
    return "\n".join(lines) + "\n"


def _letter(i: int) -> str:
    """Column letters A … Z, then AA, AB, … (as a spreadsheet names columns)."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(65 + r) + out
    return out


def comparison_csv(cmp: dict) -> str:
    """One row per figure (``section, item, label, metric``), one column per scenario (its name),
    and ``difference`` with two; numbers as plain numbers (shares as fractions), text made safe
    to open in a spreadsheet."""
    from scenarios.compare import comparison_rows

    names = [c["name"] for c in cmp["scenarios"]]
    two = cmp.get("difference") is not None
    buf = io.StringIO()
    w = _SafeWriter(buf, lineterminator="\n")
    w.writerow(["section", "item", "label", "metric", *names] + (["difference"] if two else []))
    for r in comparison_rows(cmp):
        values = ["" if v is None else v for v in r["values"]]
        w.writerow([r["section"], r["item"], r["label"], r["metric"], *values]
                   + (["" if r["difference"] is None else r["difference"]] if two else []))
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# the ledger's runs

RUN_FIELDS = ["id", "kind", "scenario_name", "as_of", "started", "status", "exit_code", "superseded_by",
              "scenario_hash", "data_hash", "version"]


def runs_table(runs: list[dict]) -> str:
    """One line per recorded run."""
    if not runs:
        return "no runs recorded\n"
    rows = [[str(r["id"]), r["kind"], r["scenario_name"], r["as_of"] or "-", r["started"], r["status"],
             "-" if r["superseded_by"] is None else f"by {r['superseded_by']}", r["scenario_hash"][:12]]
            for r in runs]
    return render_table(["run", "kind", "scenario", "as of", "started (UTC)", "status", "superseded", "scenario hash"],
                        rows, right={0}) + "\n"


def runs_csv(runs: list[dict]) -> str:
    buf = io.StringIO()
    w = _SafeDictWriter(buf, fieldnames=RUN_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in runs:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in RUN_FIELDS})
    return buf.getvalue()


def run_table(run: dict, rows: list[dict], extra: dict | None = None) -> str:
    """One run: its record, then its plan rows (and a rebalance's suggestions and drift flags)."""
    lines = [f"run {run['id']}: {run['kind']} of {run['scenario_name']}"
             + (f" as of {run['as_of']}" if run["as_of"] else "") + f", {run['status']}",
             f"recorded {run['started']} by budget {run['version']}: {run['command']}",
             f"scenario {run['scenario_path']} (sha256 {run['scenario_hash'][:12]})"
             + (f", data sha256 {run['data_hash'][:12]}" if run["data_hash"] else ""), ""]
    if run["superseded_by"] is not None:
        lines.insert(1, f"superseded by run {run['superseded_by']}")
    periodic = any(r["period"] for r in rows)
    table = [([r["period"]] if periodic else []) + [r["channel"], _num(r["spend"]), _num(r["expected_return"])]
             for r in rows]
    head = (["period"] if periodic else []) + ["channel", "spend", "expected return"]
    lines.append(render_table(head, table, right=set(range(len(head) - 2, len(head)))))
    lines.append(f"total spend {_num(sum(r['spend'] for r in rows))}, expected return "
                 f"{_num(sum(r['expected_return'] for r in rows))}")
    extra = extra or {}
    if extra.get("actuals"):
        lines.append(f"actuals: {len(extra['actuals'])} rows, periods "
                     + ", ".join(dict.fromkeys(a["period"] for a in extra["actuals"])))
    for key, title in (("suggestions", "Suggestions"), ("drift", "Drift")):
        if key in extra:
            lines.append(f"{title}:" + ("" if extra[key] else " none"))
            lines += [f"  - {x['text']}" for x in extra[key]]
    return "\n".join(lines) + "\n"


def runs_export_csv(data: list[tuple[dict, list[dict]]]) -> str:
    """Every plan row of every run, long format."""
    buf = io.StringIO()
    w = _SafeWriter(buf, lineterminator="\n")
    w.writerow(["run", "kind", "scenario", "as_of", "superseded_by", "period", "channel", "spend", "expected_return"])
    for run, rows in data:
        for r in rows:
            w.writerow([run["id"], run["kind"], run["scenario_name"], run["as_of"],
                        "" if run["superseded_by"] is None else run["superseded_by"],
                        r["period"], r["channel"], r["spend"], r["expected_return"]])
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# budget frontier (scenarios.frontier.budget_frontier)


def frontier_level(level: float, basis: str) -> str:
    """A frontier level as a person reads it: ``1.25×`` (of the budget), ``17.5%`` (of the
    forecast KPI)."""
    if basis == "forecast":
        return f"{level * 100:.3g}%"
    return f"{level:.3g}×"


def _frontier_reference(d: dict) -> str:
    symbol, _ = _currency(d["currency"])
    if d["basis"] == "forecast":
        if d.get("return_unit", "money") != "money":  # the KPI is in its own units
            symbol = ""
        k = d["forecast_kpi"]
        return (f"the forecast KPI {symbol}{_num(k['total'])} over {k['periods']} periods from {k['start']} "
                f"(baseline {symbol}{_num(k['baseline'])} + media {symbol}{_num(k['media'])} at the historical "
                "run rate)")
    return f"the budget {symbol}{_num(d['scenario_budget'])}"


def frontier_table(d: dict) -> str:
    """The human report of a budget frontier: one row per level, the channel mix per level, then
    break-even, the marginal-ROI floor and the level the curves favour."""
    symbol, unit = _currency(d["currency"])
    basis = d["basis"]
    levels = d["levels"]
    of = " of" if basis == "forecast" else ""
    lines = [f"{d['scenario']}: budget frontier, {frontier_level(levels[0]['level'], basis)} to "
             f"{frontier_level(levels[-1]['level'], basis)}{of} {_frontier_reference(d)} ({d['currency']}); "
             f"objective {d['objective']}", ""]
    if d["warnings"]:
        lines.append("Warnings:")
        lines += [f"  - {w}" for w in d["warnings"]]
        lines.append("")
    here = d["scenario_level"]
    rows = []
    for r in levels:
        mark = " ←" if abs(r["level"] - here) <= 1e-9 * max(1.0, here) else ""
        if r["status"] != "optimal":
            rows.append([frontier_level(r["level"], basis) + mark, _num(r["budget"]), "infeasible", "", "", "", "",
                         ""])
            continue
        ri = r["return_interval"]
        band = f"{_num(ri['p10'])}–{_num(ri['p90'])}" if ri else "-"
        rows.append([frontier_level(r["level"], basis) + mark, _num(r["budget"]), _num(r["spend"]), _num(r["reserve"]),
                     _num(r["expected_return"]), band, ratio_text(r["roi"]), ratio_text(r["marginal_roi"])])
    lines.append(render_table(["level", "budget", "spend", "reserve", "return", "P10–P90", "ROI", "mROI"], rows,
                              right={1, 2, 3, 4, 5, 6, 7}))
    if any(abs(r["level"] - here) <= 1e-9 * max(1.0, here) for r in levels):
        lines.append("← the scenario's own budget")
    lines.append("")
    names = [c["channel"] for c in d["channels"]]
    mix = []
    for j, name in enumerate(names):
        mix.append([name] + [_pct(r["channels"][j]["share"]) if r["status"] == "optimal" else "-" for r in levels])
    mix.append(["reserve"] + [_pct(r["reserve"] / r["budget"]) if r["status"] == "optimal" and r["budget"] else "-"
                              for r in levels])
    lines.append("Channel mix (share of each level's budget):")
    lines.append(render_table(["channel"] + [frontier_level(r["level"], basis) for r in levels], mix,
                              right=set(range(1, len(levels) + 1))))
    lines.append("")
    ref = d["reference"]

    def where(block: dict) -> str:
        if block["budget"] <= 0.01:
            return f"not even the first {unit} earns it"
        return f"about {symbol}{_num(block['budget'])} ({frontier_level(block['budget'] / ref, basis)})"

    if d["break_even"] is not None:
        lines.append(f"break-even (marginal ROI 1): {where(d['break_even'])}")
    elif d["favoured"].get("set_by_limits"):
        lines.append("break-even (marginal ROI 1): none: the scenario's limits set what any budget spends")
    else:
        lines.append("break-even (marginal ROI 1): beyond any plannable budget")
    if d["floor"] is not None:
        lines.append(f"marginal-ROI floor {d['floor']['marginal_roi']:g}: {where(d['floor'])}; past it the plan "
                     "keeps the rest in reserve")
    fav = d["favoured"]
    lines.append(f"favoured within the band: {symbol}{_num(fav['budget'])} "
                 f"({frontier_level(fav['level'], basis)}): {fav['reason']}")
    bad = [r for r in levels if r["status"] != "optimal"]
    if bad:
        lines.append(f"no plan satisfies every constraint at {len(bad)} level(s), from "
                     f"{frontier_level(bad[0]['level'], basis)}" + (f": {bad[0]['diagnosis'][0]}" if bad[0]["diagnosis"]
                                                                     else ""))
    if d.get("notes"):
        lines.append("")
        lines.append("Notes:")
        lines += [f"  - {n}" for n in d["notes"]]
    lines.append("")
    lines.append(f"{units_line(d['currency'], d.get('return_unit', 'money'))}. mROI is the return of the plan's last {unit}; "
                 f"P10–P90 is the return's spread over the curve samples.")
    return "\n".join(lines) + "\n"


FRONTIER_CSV_FIELDS = [
    "level", "budget", "status", "spend", "reserve", "expected_return", "return_p10", "return_p50", "return_p90",
    "roi", "marginal_roi",
]


def frontier_csv(d: dict) -> str:
    """One row per level (``level`` a multiple of the budget, or a share of the forecast KPI, as
    ``basis`` says), then each channel's spend in a ``spend[channel]`` column and ``currency``."""
    names = [c["channel"] for c in d["channels"]]
    buf = io.StringIO()
    w = _SafeWriter(buf, lineterminator="\n")
    w.writerow(FRONTIER_CSV_FIELDS + [f"spend[{n}]" for n in names] + ["basis", "currency"])
    for r in d["levels"]:
        ri = r["return_interval"] or {}
        ok = r["status"] == "optimal"
        w.writerow([r["level"], r["budget"], r["status"]]
                   + ["" if v is None else v for v in (r["spend"], r["reserve"], r["expected_return"], ri.get("p10"),
                                                        ri.get("p50"), ri.get("p90"), r["roi"], r["marginal_roi"])]
                   + [c["spend"] if ok else "" for c in r["channels"]] + [d["basis"], d["currency"]])
    return buf.getvalue()


__all__ += ["frontier_csv", "frontier_level", "frontier_table"]


# --------------------------------------------------------------------------------------------
# rebalance


def _signed_money(sym: str, v: float) -> str:
    """``-¥20,041`` for an overspend, not ``¥-20,041``."""
    return f"-{sym}{_num(-v)}" if v < -0.005 else f"{sym}{_num(v)}"


def rebalance_table(r: dict) -> str:
    """A rebalance for a lead: what to move where, what drifted, the numbers behind it."""
    sym, _ = _currency(r.get("currency"))
    rsym = sym if r.get("return_unit", "money") == "money" else ""  # returns: money, or the KPI's units
    b = r["budget"]
    out = [f"Rebalance of {r['scenario']} as of {r['as_of']} (plan of record: run {r.get('plan_of_record_run')})",
           f"  periods done: {', '.join(r['periods_done'])}; to re-plan: "
           f"{', '.join(r['periods_remaining']) or 'none (the horizon is closed)'}",
           f"  budget {sym}{_num(b['total'])}: spent to date {sym}{_num(b['spent_to_date'])}, remaining "
           f"{_signed_money(sym, b['remaining'])}; reserve {sym}{_num(b['plan_of_record_reserve'])} in the plan of "
           f"record, {_signed_money(sym, b['reserve'])} now",
           f"  model: {r['model_update']}", ""]
    if r.get("warnings"):  # what the re-plan rests on comes before it, as in a plan
        out += ["Warnings:"] + [f"  - {w}" for w in r["warnings"]] + [""]
    if r.get("suggestions"):
        out.append("Suggestions:")
        out += [f"  - {s['text']}" for s in r["suggestions"]]
    elif r["status"] == "ok":
        out.append("Suggestions: none (keep the plan of record)")
    out.append("")
    if r["drift"]:
        out.append("Drift:")
        out += [f"  - {d['text']}" for d in r["drift"]]
    else:
        out.append("Drift: none")
    out += ["", "To date:"]
    rows = [[v["channel"], _num(v["planned_spend"]), _num(v["actual_spend"]), _signed(v["spend_variance"]),
             _num(v["planned_return"]), _num(v["expected_return_at_actual_spend"]), _num(v["actual_return"])]
            for v in r["variance"]]
    out.append(render_table(["channel", "planned", "actual", "variance", "planned return", "expected at actual",
                             "actual return"], rows, right={1, 2, 3, 4, 5, 6}))
    if r["status"] == "ok":
        out += ["", "Remaining periods:"]
        rows = [[c["channel"] + (" (locked)" if c["locked"] else ""), _num(c["plan_of_record_remaining"]),
                 _num(c["replan_remaining"]), _signed(c["change"]), ratio_text(c["marginal_roi"])]
                for c in r["channels"]]
        out.append(render_table(["channel", "plan of record", "re-plan", "change", "marginal ROI"], rows,
                                right={1, 2, 3, 4}))
        e = r["end_of_horizon"]
        out += ["", f"End of horizon: recorded expected return {rsym}{_num(e['recorded_expected_return'])}; "
                    f"with the actuals, the plan of record now expects {rsym}{_num(e['plan_of_record_expected_return'])}"
                    f" and the re-plan {rsym}{_num(e['replan_expected_return'])} "
                    f"({_signed(e['change_vs_recorded'])} vs recorded; both count "
                    f"{rsym}{_num(e['return_to_come_of_spend_to_date'])} the spend to date has still to earn)"]
    elif r["status"] == "closed":
        e = r["end_of_horizon"]
        out += ["", f"Close of the horizon: recorded expected return {rsym}{_num(e['recorded_expected_return'])}; "
                    f"returned {rsym}{_num(e['return_to_date'])}"
                    + (f" and {rsym}{_num(e['return_to_come_of_spend_to_date'])} still to come from its carryover"
                       if e["return_to_come_of_spend_to_date"] else "")
                    + f" ({_signed(e['change_vs_recorded'])} vs recorded)"]
    out += [f"Note: {n}" for n in r.get("notes", [])]
    out += [f"Ignored (--force): {n}" for n in r.get("ignored", [])]
    return "\n".join(out) + "\n"


REBALANCE_CSV_FIELDS = ["section", "channel", "period", "from", "to", "amount", "planned", "actual", "expected",
                        "change", "text"]


def rebalance_csv(r: dict) -> str:
    """One row per suggestion, drift flag, channel to date and re-planned channel and period."""
    buf = io.StringIO()
    w = _SafeDictWriter(buf, fieldnames=REBALANCE_CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    rows = [{"section": "warning", "text": w} for w in r.get("warnings", [])]
    for s in r.get("suggestions", []):
        rows.append({"section": s["kind"], "from": s["from"], "to": s["to"], "amount": s["amount"],
                     "expected": s["expected_gain"], "text": s["text"]})
    for d in r["drift"]:
        rows.append({"section": f"drift_{d['kind']}", "channel": d["channel"], "actual": d["actual"],
                     "expected": d["expected"], "text": d["text"]})
    for v in r["variance"]:
        rows.append({"section": "to_date", "channel": v["channel"], "planned": v["planned_spend"],
                     "actual": v["actual_spend"], "change": v["spend_variance"]})
    for p in r.get("periods", []):
        for c in p["channels"]:
            rows.append({"section": "replan", "channel": c["channel"], "period": p["period"], "planned": c["spend"],
                         "expected": c["expected_return"]})
    rows += [{"section": "note", "text": n} for n in r.get("notes", [])]
    for row in rows:
        w.writerow({k: "" if row.get(k) is None else row[k] for k in REBALANCE_CSV_FIELDS})
    return buf.getvalue()
