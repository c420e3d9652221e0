"""Spreadsheets and safe-to-open output: workbooks read back with openpyxl (numbers as numbers,
currency formats, frozen headers, reserve and total rows, name and date), and user text that
begins with a formula character never runs as a formula, in CSV or xlsx (OWASP CSV injection)."""

import csv
import datetime as dt
import io

import pytest
from openpyxl import load_workbook

from scenarios import render, scenario_from_dict
from scenarios.compare import compare_scenarios
from scenarios.plan import plan_scenario
from scenarios.sheets import allocation_workbook, comparison_workbook, money_format

HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]

SCENARIO = {
    "name": "=cmd|' /C calc'!A0",
    "budget": {"total": 1_000_000, "horizon": "2027-Q1"},
    "reserve": {"min_share": 0.1},
    "groups": {"g1": {"label": "@group"}},
    "channels": {
        "x": {"label": HOSTILE[0], "group": "g1", "current": 600_000,
              "curve": {"kind": "points", "points": [[0, 0], [500_000, 1_500_000], [1_000_000, 2_000_000]]}},
        "y": {"label": HOSTILE[2], "group": "g1", "current": 300_000,
              "curve": {"kind": "points", "points": [[0, 0], [400_000, 800_000], [1_000_000, 1_100_000]]}},
    },
}
WRITTEN = dt.date(2027, 1, 4)


@pytest.fixture(scope="module")
def planned():
    sc = scenario_from_dict(SCENARIO)
    return sc, plan_scenario(sc)


def book_of(data: bytes):
    return load_workbook(io.BytesIO(data))


def rows(sheet):
    return [list(r) for r in sheet.iter_rows(values_only=True)]


def no_formulas(book):
    for sheet in book:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{sheet.title}!{cell.coordinate} is a formula: {cell.value!r}"


def test_spreadsheet_safe_quotes_text_and_keeps_numbers():
    for text in HOSTILE:
        assert render.spreadsheet_safe(text) == "'" + text
    assert render.spreadsheet_safe("douyin") == "douyin"
    assert render.spreadsheet_safe(-1234.5) == -1234.5 and render.spreadsheet_safe(0) == 0
    assert render.spreadsheet_safe(None) is None
    # not the word "inf" a spreadsheet reads as text: a blank cell, as JSON's null
    assert render.spreadsheet_safe(float("inf")) == "" and render.spreadsheet_safe(float("nan")) == ""


def test_allocation_csv_quotes_formula_text_and_keeps_negative_numbers(planned):
    _sc, plan = planned
    out = list(csv.DictReader(io.StringIO(render.allocation_csv(plan.allocation))))
    assert out[0]["label"] == "'" + HOSTILE[0] and out[1]["label"] == "'" + HOSTILE[2]
    assert out[0]["channel"] == "x"
    # x goes 600,000 → 500,000: a negative change is a number, not quoted text
    assert float(out[0]["change"]) == pytest.approx(-100_000) and out[0]["change"].startswith("-")


def test_period_and_forecast_csv_are_safe_too():
    class Alloc:
        def to_dict(self):
            return {"periods": [{"period": "=P1", "channels": [
                {"channel": "@x", "spend": 10.0, "effective_spend": -0.5, "expected_return": 3.0}]}]}

    rows_ = list(csv.reader(io.StringIO(render.period_csv(Alloc()))))
    assert rows_[1] == ["'=P1", "'@x", "10.0", "-0.5", "3.0"]
    band = {"p10": [-1.0], "p50": [2.0], "p90": [3.0], "point": [2.0]}
    fc = {"periods": ["+2027-01"], "baseline": band, "plans": {"-cut": {"media": band, "total": band}}}
    out = list(csv.reader(io.StringIO(render.forecast_csv(fc))))
    assert out[1] == ["'+2027-01", "baseline", "-1.0", "2.0", "3.0", "2.0"]
    assert out[2][1] == "'-cut_media"


def test_comparison_csv_quotes_scenario_names(planned):
    sc, _plan = planned
    cmp = compare_scenarios([sc, sc])
    head = next(csv.reader(io.StringIO(render.comparison_csv(cmp))))
    assert all(h.startswith("'=cmd") for h in head[4:6])


def test_allocation_workbook_reads_back(planned):
    sc, plan = planned
    book = book_of(allocation_workbook(plan.allocation, sc, plan.extra, written=WRITTEN))
    assert book.sheetnames == ["summary", "channels", "groups"]
    no_formulas(book)
    ch = book["channels"]
    assert ch["A1"].value == f"{SCENARIO['name']}: channels" and ch["A1"].quotePrefix
    assert ch["A2"].value.startswith("written 2027-01-04; horizon 2027-Q1; money in CNY")
    assert ch.freeze_panes == "B5"
    table = rows(ch)[3:]
    assert table[0][:5] == ["channel", "label", "group", "current", "recommended"]
    x, y, reserve, total = table[1:5]
    assert x[0] == "x" and x[1] == HOSTILE[0] and ch["B5"].quotePrefix and ch["B5"].data_type == "s"
    assert x[4] == pytest.approx(500_000) and isinstance(x[4], (int, float))
    assert x[5] == pytest.approx(-100_000)  # the change: a negative number, not text
    assert reserve[0] == "reserve" and reserve[4] == pytest.approx(100_000)
    assert total[0] == "total" and total[4] == pytest.approx(1_000_000) and ch["A8"].font.bold
    assert ch["E6"].number_format == '"¥"#,##0.00' and ch["G6"].number_format == "0.0%"
    groups = rows(book["groups"])[4:]
    assert [r[0] for r in groups] == ["g1", "reserve", "total"]
    summary = {r[0]: r[1:] for r in rows(book["summary"])[4:] if r[0]}
    assert summary["expected return"][1] == pytest.approx(2_300_000, abs=1)
    assert summary["budget"][:2] == [1_000_000, 1_000_000]


def test_period_plan_gets_a_periods_sheet():
    data = dict(SCENARIO, horizon={"periods": ["Jan", "Feb", "Mar"]})
    sc = scenario_from_dict(data)
    plan = plan_scenario(sc)
    book = book_of(allocation_workbook(plan.allocation, sc, plan.extra, written=WRITTEN))
    assert book.sheetnames == ["summary", "channels", "groups", "periods"]
    grid = rows(book["periods"])[3:]
    assert grid[0] == ["channel", "Jan", "Feb", "Mar", "total"]
    assert [r[0] for r in grid[1:]] == ["x", "y", "total", "expected return"]
    assert grid[3][4] == pytest.approx(plan.allocation.spend, abs=0.05)


def test_comparison_workbook_reads_back(planned):
    sc, _plan = planned
    other = scenario_from_dict(dict(SCENARIO, name="bigger", budget={"total": 1_200_000}))
    cmp = compare_scenarios([sc, other])
    book = book_of(comparison_workbook(cmp, written=WRITTEN))
    assert book.sheetnames == ["comparison", "channels", "groups"]
    no_formulas(book)
    s = book["comparison"]
    assert s["A2"].value.startswith("written 2027-01-04; money in CNY; compared on the same curves")
    assert s.freeze_panes == "B5"
    figures = {r[0]: r[1:] for r in rows(s)[4:] if r[0]}
    assert figures["budget"] == [1_000_000, 1_200_000, 200_000]
    assert figures["expected return"][2] == pytest.approx(180_000, abs=1)
    head = rows(s)[3]
    assert head[1] == SCENARIO["name"] and s["B4"].quotePrefix
    ch = rows(book["channels"])[4:]
    assert ch[0][:3] == ["x", HOSTILE[0], "spend"] and ch[0][3:] == pytest.approx([500_000, 680_000, 180_000])


def test_money_format_per_currency():
    assert money_format("CNY") == '"¥"#,##0.00'
    assert money_format("USD") == '"$"#,##0.00'
    assert money_format("SEK") == '#,##0.00 "SEK"'


def test_a_rebalance_workbook_reads_back_with_money_that_adds_up(tmp_path):
    """`budget rebalance --format xlsx`: summary, suggestions, channels (with a total row) and
    periods; numbers are numbers, and spent to date + re-planned rest + reserve = the budget."""
    from click.testing import CliRunner
    from openpyxl import load_workbook

    from cli import main
    from scenarios import example_path

    ledger, book = str(tmp_path / "q1.sqlite"), tmp_path / "rebalance.xlsx"
    monthly = str(example_path("monthly.toml"))
    runner = CliRunner()
    assert runner.invoke(main, ["allocate", monthly, "--record", "--ledger", ledger]).exit_code == 0
    r = runner.invoke(main, ["rebalance", monthly, "--actuals", str(example_path("actuals_m1_m2.csv")),
                             "--ledger", ledger, "--format", "xlsx", "-o", str(book)])
    assert r.exit_code == 0, r.stderr
    wb = load_workbook(book)
    assert wb.sheetnames == ["summary", "suggestions", "channels", "periods"]
    summary = {row[0]: row[1] for row in wb["summary"].iter_rows(min_row=5, values_only=True) if row[0]}
    channels = [row for row in wb["channels"].iter_rows(min_row=5, values_only=True) if row[0]]
    assert channels[-1][0] == "total" and all(isinstance(v, (int, float)) for v in channels[-1][1:])
    spent, rest = channels[-1][2], channels[-1][5]
    assert spent == pytest.approx(summary["budget: spent to date"], abs=0.01)
    assert round((spent + rest + summary["budget: reserve"]) * 100) == round(summary["budget: total"] * 100)
    moves = [row for row in wb["suggestions"].iter_rows(min_row=5, values_only=True) if row[0] == "transfer"]
    assert moves and all(isinstance(m[3], (int, float)) and m[3] > 0 for m in moves)
    assert wb["channels"].freeze_panes == "B5"
