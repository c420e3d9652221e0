"""Spreadsheets: plans and comparisons as Excel workbooks (``--format xlsx``), for finance.

One sheet per view (summary, channels, groups, periods of a period plan; or comparison,
channels, groups of ``budget compare``). Every sheet says what it is in its first rows (the
scenario's name, the date it was written, the currency), then a header row that stays in view
(frozen panes) over the figures. Numbers are numbers, never text: money in the scenario's
currency format (``"¥"#,##0.00``), shares as percentages, ROI with two decimals, so a lead can
sum, chart and pivot them. The reserve and total rows close the channel and group sheets.

Safe to open: names, labels and scenario names are user text, and text that begins with ``=``,
``+``, ``-`` or ``@`` (or tab or carriage return) would otherwise be a formula to a spreadsheet
(OWASP's CSV-injection advice). Such cells are written as text with Excel's quote prefix (what
typing ``'`` before it does: shown as written, never run, the ``'`` not part of the value);
numbers, negative ones included, stay numbers. No cell holds a formula.

Functions return the workbook's bytes; ``cli.py`` writes them atomically.
"""

from __future__ import annotations

import datetime as dt
import io

__all__ = ["allocation_workbook", "comparison_workbook", "money_format"]

SHARE_FORMAT = "0.0%"
RATIO_FORMAT = "0.00"
#: Returns in the units of a KPI that is not money: a plain number, no currency.
KPI_FORMAT = "#,##0.00"
#: First row of the header: rows 1–2 say what the sheet is, row 3 is blank.
HEADER_ROW = 4


def money_format(currency: str | None) -> str:
    """Excel's number format for money in ``currency``: ``"¥"#,##0.00`` for CNY,
    ``"$"#,##0.00`` for USD, ``#,##0.00 "SEK"`` for a code without a symbol."""
    from optimizer import currency_symbol

    symbol = currency_symbol(currency or "CNY").replace('"', "")
    if symbol[-1:].isalpha():
        return f'#,##0.00 "{symbol}"'
    return f'"{symbol}"#,##0.00'


def return_format(currency: str | None, return_unit: str | None) -> str:
    """The number format of a return: money when ``return_unit`` is "money" and there is one
    currency, else :data:`KPI_FORMAT` (a KPI that is not money, or columns that differ in it)."""
    return money_format(currency) if return_unit == "money" and currency else KPI_FORMAT


def _units(currency: str | None, return_unit: str | None) -> str:
    """The subtitle's words for the units: "money in CNY", then how returns read when they are not
    money. None for either: the columns of a comparison differ in it."""
    text = f"money in {currency}" if currency else "money in each column's own currency"
    if return_unit == "kpi":
        return text + "; returns in the KPI's own units"
    return text + ("; returns in money in some columns, in KPI units in others" if return_unit is None else "")


def _texts(sheet, result: dict) -> None:
    """A result's warnings, then its notes, each under its title, one a row."""
    for title in ("warnings", "notes"):
        if result.get(title):
            sheet.gap()
            sheet.add([title], bold=True)
            for text in result[title]:
                sheet.add([text])


def _cents(v):
    """Money computed here (a change, a total) to the cent, like every money figure of a plan."""
    return None if v is None else round(float(v), 2) + 0.0


def _today(written) -> dt.date:
    return written or dt.datetime.now(dt.timezone.utc).date()


class _Sheet:
    """One worksheet: a title block, a frozen header row, then rows of typed cells."""

    def __init__(self, book, title: str, heading: str, subtitle: str, first: bool = False):
        from openpyxl.styles import Font

        self.ws = book.active if first else book.create_sheet()
        self.ws.title = title
        self.bold = Font(bold=True)
        self._text(self.ws.cell(row=1, column=1), heading).font = Font(bold=True, size=13)
        self._text(self.ws.cell(row=2, column=1), subtitle)
        self.row = HEADER_ROW
        self.widths: dict[int, int] = {}

    @staticmethod
    def _text(cell, value: str):
        """A text cell that never runs: typed as text, quote-prefixed when it looks like a formula."""
        from scenarios.render import FORMULA_PREFIXES

        cell.value = value
        cell.data_type = "s"
        if value.startswith(FORMULA_PREFIXES):
            cell.quotePrefix = True
        return cell

    def header(self, names: list[str], freeze_columns: int = 1) -> None:
        for j, name in enumerate(names, 1):
            self._text(self.ws.cell(row=self.row, column=j), name).font = self.bold
            self._width(j, name)
        self.ws.freeze_panes = self.ws.cell(row=self.row + 1, column=freeze_columns + 1)
        self.row += 1

    def add(self, cells: list, formats: list[str | None] | None = None, bold: bool = False) -> None:
        """A row: str cells are text, numbers are numbers (with ``formats[j]``), None is blank."""
        formats = formats or [None] * len(cells)
        for j, (value, fmt) in enumerate(zip(cells, formats), 1):
            cell = self.ws.cell(row=self.row, column=j)
            if value is None:
                continue
            if isinstance(value, str):
                self._text(cell, value)
                self._width(j, value)
            elif isinstance(value, bool):
                self._text(cell, "yes" if value else "no")
            else:
                cell.value = float(value) if not isinstance(value, int) else value
                if fmt:
                    cell.number_format = fmt
                self._width(j, f"{value:,.2f}" if isinstance(value, (int, float)) else str(value))
            if bold:
                cell.font = self.bold
        self.row += 1

    def gap(self) -> None:
        self.row += 1

    def _width(self, j: int, text: str) -> None:
        from scenarios.render import display_width

        self.widths[j] = max(self.widths.get(j, 8), min(display_width(text) + 2, 60))

    def finish(self) -> None:
        from openpyxl.utils import get_column_letter

        for j, w in self.widths.items():
            self.ws.column_dimensions[get_column_letter(j)].width = w


def _bytes(book) -> bytes:
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def allocation_workbook(alloc, scenario=None, extra: dict | None = None, *, written: dt.date | None = None) -> bytes:
    """A plan as a workbook: ``summary`` (the plan's figures against the current plan, the
    return's P10–P90 where the curves are fitted, binding constraints, warnings and notes),
    ``channels`` (one row per channel, then reserve and total), ``groups`` (then reserve and
    total) and, for a period plan, ``periods`` (spend per channel and period, with totals).

    Parameters
    ----------
    alloc
        An :class:`optimizer.Allocation` (or a period allocation); an infeasible one gives the
        summary with its diagnosis only.
    scenario
        The loaded scenario, for its horizon.
    extra
        The plan's extra blocks (:attr:`scenarios.plan.ScenarioPlan.extra`), for
        ``return_interval``.
    written
        The date written in each sheet (default: today, UTC).
    """
    from openpyxl import Workbook

    d = alloc.to_dict()
    extra = extra or {}
    cur = d["current"] or {}
    money = money_format(d["currency"])
    ret = return_format(d["currency"], d["return_unit"])
    horizon = getattr(scenario, "horizon", None) or d.get("horizon")
    subtitle = (f"written {_today(written).isoformat()}" + (f"; horizon {horizon}" if horizon else "")
                + f"; {_units(d['currency'], d['return_unit'])}; objective {d['objective']}")
    book = Workbook()

    s = _Sheet(book, "summary", f"{d['scenario']}: plan", subtitle, first=True)
    if not alloc.feasible:
        s.header(["no plan satisfies every constraint"])
        for p in d["diagnosis"]:
            s.add([p])
        s.finish()
        return _bytes(book)
    s.header(["figure", "current", "recommended", "change"])
    for name, key, fmt in (("budget", "budget", money), ("spend", "spend", money), ("reserve", "reserve", money),
                           ("expected return", "expected_return", ret), ("ROI", "roi", RATIO_FORMAT)):
        now, then = cur.get(key, d["budget"] if key == "budget" and cur else None), d[key]
        change = None if now is None or then is None else (then - now if key == "roi" else _cents(then - now))
        s.add([name, now, then, change], [None, fmt, fmt, fmt])
    s.add(["uplift over the current plan", None, d["uplift"]], [None, None, SHARE_FORMAT])
    s.add(["marginal ROI (return of the next unit)", None, d["marginal_roi"]], [None, None, RATIO_FORMAT])
    if d.get("break_even_budget") is not None:
        s.add(["break-even budget (marginal ROI 1)", None, d["break_even_budget"]], [None, None, money])
    interval = extra.get("return_interval")
    if interval:
        for q in ("p10", "p50", "p90"):
            s.add([f"expected return {q.upper()} ({interval['samples']} curve samples)", None, interval[q]],
                  [None, None, ret])
    if d["binding_constraints"]:
        s.gap()
        s.add(["binding constraint", "detail", "shadow price"], bold=True)
        for b in d["binding_constraints"]:
            s.add([b["name"], b["detail"], b["shadow_price"]], [None, None, "0.000"])
    _texts(s, d)
    s.widths[1] = min(max(s.widths.get(1, 8), 40), 60)
    s.finish()

    c = _Sheet(book, "channels", f"{d['scenario']}: channels", subtitle)
    c.header(["channel", "label", "group", "current", "recommended", "change", "share", "return", "ROI", "mROI"])
    fmts = [None, None, None, money, money, money, SHARE_FORMAT, ret, RATIO_FORMAT, RATIO_FORMAT]
    for ch in d["channels"]:
        c.add([ch["channel"], ch.get("label") or ch["channel"], ch["group"], ch["current_spend"], ch["spend"],
               ch["change"], ch["share"], ch["expected_return"], ch["roi"], ch["marginal_roi"]], fmts)
    budget = d["budget"] or 0.0
    cur_reserve = cur.get("reserve")
    c.add(["reserve", "reserve", None, cur_reserve, d["reserve"],
           None if cur_reserve is None else _cents(d["reserve"] - cur_reserve),
           d["reserve"] / budget if budget else None], fmts)
    c.add(["total", "total", None, budget if cur else None, budget, 0.0 if cur else None, 1.0 if budget else None,
           d["expected_return"], d["roi"]], fmts, bold=True)
    c.finish()

    g = _Sheet(book, "groups", f"{d['scenario']}: groups", subtitle)
    g.header(["group", "current", "current share", "recommended", "share", "change"])
    gf = [None, money, SHARE_FORMAT, money, SHARE_FORMAT, money]
    for gr in d["groups"]:
        g.add([gr["group"], gr["current_spend"], gr["current_spend"] / budget if budget else None, gr["spend"],
               gr["share"], _cents(gr["spend"] - gr["current_spend"])], gf)
    g.add(["reserve", cur_reserve, None if cur_reserve is None or not budget else cur_reserve / budget,
           d["reserve"], d["reserve"] / budget if budget else None,
           None if cur_reserve is None else _cents(d["reserve"] - cur_reserve)], gf)
    g.add(["total", budget if cur else None, 1.0 if cur and budget else None, budget, 1.0 if budget else None,
           0.0 if cur else None], gf, bold=True)
    g.finish()

    periods = d.get("periods") or []
    if periods:
        p = _Sheet(book, "periods", f"{d['scenario']}: spend per period", subtitle)
        p.header(["channel", *(per["period"] for per in periods), "total"])
        pf = [None] + [money] * (len(periods) + 1)
        for i, ch in enumerate(d["channels"]):
            values = [per["channels"][i]["spend"] for per in periods]
            p.add([ch["channel"], *values, round(sum(values), 2)], pf)
        spends = [per["spend"] for per in periods]
        p.add(["total", *spends, round(sum(spends), 2)], pf, bold=True)
        returns = [per["expected_return"] for per in periods]
        p.add(["expected return", *returns, round(sum(returns), 2)], pf)
        p.finish()
    return _bytes(book)


def comparison_workbook(cmp: dict, *, written: dt.date | None = None) -> bytes:
    """A comparison (:func:`scenarios.compare.compare_scenarios`) as a workbook: ``comparison``
    (each column's figures, the difference of two, how the curves compare, which fits were
    shared), ``channels`` and ``groups`` (every figure per channel and group, one column per
    scenario), and ``problems`` when a file could not be compared."""
    from openpyxl import Workbook

    from scenarios.compare import RETURN_FIGURES, comparison_rows

    cols = cmp["scenarios"]
    names = [c["name"] for c in cols]
    two = cmp.get("difference") is not None
    currency = cmp.get("currency")
    money = money_format(currency) if currency else KPI_FORMAT
    ret = return_format(currency, cmp.get("return_unit", "money"))
    kinds = {"money": money, "share": SHARE_FORMAT, "ratio": RATIO_FORMAT, "text": None}

    def fmt_of(r):  # returns are money only when every column's are
        return ret if r["kind"] == "money" and r["metric"] in RETURN_FIGURES else kinds[r["kind"]]

    subtitle = (f"written {_today(written).isoformat()}; {_units(currency, cmp.get('return_unit', 'money'))}; "
                f"{cmp['curves']['text']}")
    heading = f"Comparison of {len(cols)} plan(s): " + " | ".join(names)
    rows = comparison_rows(cmp)
    book = Workbook()
    diff_head = [f"{names[1]} − {names[0]}"] if two else []

    s = _Sheet(book, "comparison", heading, subtitle, first=True)
    s.header(["figure", *names, *diff_head])
    for r in rows:
        if r["section"] in ("plan", "binding"):
            fmt = fmt_of(r)
            s.add([r["name"], *r["values"], *([r["difference"]] if two else [])], [None] + [fmt] * (len(cols) + 1))
    if cmp["fits"]:
        s.gap()
        s.add(["curves from", "shared by"], bold=True)
        for fit in cmp["fits"]:
            s.add([f"{fit['source']} ({fit['fitted']})", ", ".join(fit["scenarios"])])
    s.finish()

    for section, title in (("channel", "channels"), ("group", "groups")):
        sh = _Sheet(book, title, f"{heading}: {title}", subtitle)
        head = [section] + (["label"] if section == "channel" else []) + ["figure", *names, *diff_head]
        sh.header(head, freeze_columns=len(head) - len(names) - len(diff_head))
        for r in rows:
            if r["section"] != section:
                continue
            fmt = fmt_of(r)
            lead = [r["item"]] + ([r["label"]] if section == "channel" else []) + [r["name"]]
            sh.add([*lead, *r["values"], *([r["difference"]] if two else [])],
                   [None] * len(lead) + [fmt] * (len(cols) + 1))
        sh.finish()

    if cmp["errors"]:
        e = _Sheet(book, "problems", "Files not compared", subtitle)
        e.header(["file", "problem"])
        for err in cmp["errors"]:
            for p in err["problems"]:
                e.add([err["source"], p])
        e.finish()
    return _bytes(book)


def rebalance_workbook(result: dict, *, written: dt.date | None = None) -> bytes:
    """A rebalance (:func:`scenarios.rebalance.run_rebalance`'s result) as a workbook: ``summary``
    (budget to date, end-of-horizon return, drift flags), ``suggestions`` (the transfers, in
    words and amounts), ``channels`` (variance to date and the remaining spend, plan of record
    against the re-plan, with a total row) and ``periods`` (the re-planned spend)."""
    from openpyxl import Workbook

    currency, unit = result.get("currency") or "CNY", result.get("return_unit", "money")
    money = money_format(currency)
    ret = return_format(currency, unit)
    heading = f"{result['scenario']}: rebalance as of {result['as_of']}"
    subtitle = (f"written {_today(written).isoformat()}; {_units(currency, unit)}; "
                f"periods done {', '.join(result['periods_done'])}; remaining {', '.join(result['periods_remaining'])}")
    book = Workbook()

    s = _Sheet(book, "summary", heading, subtitle, first=True)
    s.header(["figure", "value"])
    for key, value in result["budget"].items():
        s.add([f"budget: {key.replace('_', ' ')}", _cents(value)], [None, money])
    for key, value in result["end_of_horizon"].items():
        s.add([f"end of horizon: {key.replace('_', ' ')}", _cents(value)], [None, ret])
    s.add(["model update", str(result.get("model_update", ""))])
    if result["drift"]:
        s.gap()
        s.add(["drift flags", ""], bold=True)
        for d in result["drift"]:
            s.add([d["kind"], d["text"]])
    _texts(s, result)
    s.finish()

    t = _Sheet(book, "suggestions", f"{heading}: suggestions", subtitle)
    t.header(["kind", "from", "to", "amount", "expected gain", "suggestion"])
    for g in result["suggestions"]:
        t.add([g["kind"], g.get("from") or "", g.get("to") or "", _cents(g.get("amount")),
               _cents(g.get("expected_gain")), g["text"]], [None, None, None, money, ret, None])
    t.finish()

    c = _Sheet(book, "channels", f"{heading}: channels", subtitle)
    c.header(["channel", "planned spend to date", "actual spend to date", "spend variance",
              "remaining (plan of record)", "remaining (re-plan)", "change"])
    remaining = {ch["channel"]: ch for ch in result["channels"]}
    totals = [0.0] * 6
    for v in result["variance"]:
        ch = remaining.get(v["channel"], {})
        row = [v["planned_spend"], v["actual_spend"], v["spend_variance"], ch.get("plan_of_record_remaining"),
               ch.get("replan_remaining"), ch.get("change")]
        totals = [t_ + (x or 0.0) for t_, x in zip(totals, row)]
        c.add([v["channel"], *map(_cents, row)], [None] + [money] * 6)
    c.add(["total", *map(_cents, totals)], [None] + [money] * 6, bold=True)
    c.finish()

    if result.get("periods"):
        p = _Sheet(book, "periods", f"{heading}: re-planned spend per period", subtitle)
        p.header(["period", "channel", "spend"], freeze_columns=2)
        for period in result["periods"]:
            for ch in period["channels"]:
                p.add([period["period"], ch["channel"], _cents(ch.get("spend"))], [None, None, money])
        p.finish()
    return _bytes(book)
