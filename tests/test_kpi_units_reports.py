"""A KPI that is not money (conversions) reaches every report as KPI units, never beside the
currency sign: the HTML report, forecast, frontier, compare, rebalance, workbooks, infeasible
plans. Spend, budget and reserve stay money; a plan in money is written as before."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from io import BytesIO

import pandas as pd
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from cli import main
from models.errors import ConvergenceWarning
from scenarios import example_path, load_scenario, render
from scenarios.plan import plan_scenario
from test_scenarios_rebalance import SCENARIO as TWO_CHANNELS  # two written curves over three months

WRITTEN = str(example_path("pasted_curves.toml"))


@pytest.fixture(scope="module")
def conversions(tmp_path_factory):
    """The quarterly example fitted on conversions (revenue ÷ 100), said to be "other" than money;
    least squares with a few resamples keeps it quick."""
    folder = tmp_path_factory.mktemp("conversions")
    frame = pd.read_csv(example_path("history_weekly.csv"))
    frame["revenue"] = frame["revenue"] / 100.0
    frame.to_csv(folder / "conversions.csv", index=False)
    text = example_path("quarterly.toml").read_text(encoding="utf-8")
    text = text.replace('path = "history_weekly.csv"  # relative to this file',
                        'path = "conversions.csv"\nkpi_unit = "other"\nmethod = "least_squares"\nbootstrap = 20')
    assert "kpi_unit" in text
    path = folder / "conversions.toml"
    path.write_text(text.replace('name = "2027-Q1 quarterly plan"', 'name = "conversions plan"'), encoding="utf-8")
    return path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_the_html_report_writes_returns_as_kpi_units_and_spend_as_money(conversions, tmp_path):
    alloc = plan_scenario(load_scenario(conversions)).allocation
    assert alloc.return_unit == "kpi" and alloc.return_currency == ""
    r = run("report", conversions, "--out", tmp_path / "rep")
    assert r.exit_code == 0, r.stderr
    page = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    lead = re.search(r"<p class=lead>(.*?)</p>", page, re.S).group(1)
    assert re.search(r"Budget <b class=total>¥10,000,000</b>", lead)  # money stays money
    expected = re.search(r"Expected return <b>([^<]*)</b>", lead).group(1)
    assert expected == f"{alloc.expected_return:,.0f}"  # no currency sign on a count of conversions
    assert "The KPI is not money" in lead and "KPI units (marginal ROI)" in lead
    assert re.search(r"returns 0\.0\d\d KPI units", lead)  # the marginal ROI, not rounded to 0.02
    # Break-even in the frontier section says what it means for a KPI in its own units.
    assert "returns 1 KPI unit" in page and "the last unit of money returns 1; past it" not in page


def test_the_html_report_of_a_plan_in_money_keeps_the_currency(tmp_path):
    r = run("report", WRITTEN, "--out", tmp_path / "rep")
    assert r.exit_code == 0, r.stderr
    lead = re.search(r"<p class=lead>(.*?)</p>", (tmp_path / "rep" / "report.html").read_text(encoding="utf-8"),
                     re.S).group(1)
    assert re.search(r"Expected return <b>¥[\d,]+</b>", lead) and "The KPI is not money" not in lead


def test_forecast_says_its_unit_and_writes_returns_without_the_currency(conversions):
    r = run("forecast", conversions, "--format", "json")
    assert r.exit_code == 0, r.stderr
    fc = json.loads(r.stdout)
    assert fc["currency"] == "CNY" and fc["return_unit"] == "kpi"
    steady = fc["plans"]["current"]["steady_state_return"]
    note = fc["notes"][0]
    assert f"{steady:,.0f} for the current plan" in note and f"¥{steady:,.0f}" not in note
    assert re.search(r"\(¥[\d,]+ of past spend", note)  # spend is money


def test_frontier_says_its_unit_and_what_its_break_even_rests_on(conversions):
    r = run("frontier", conversions, "--steps", "4", "--format", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["return_unit"] == "kpi"
    assert "break-even only if a KPI unit is worth that much" in d["favoured"]["reason"]
    table = run("frontier", conversions, "--steps", "4").stdout
    assert "Spend, budget and reserve in CNY (¥); returns in the KPI's own units" in table
    money = json.loads(run("frontier", WRITTEN, "--steps", "4", "--format", "json").stdout)
    assert money["return_unit"] == "money" and "KPI unit" not in money["favoured"]["reason"]


def test_compare_does_not_subtract_kpi_units_from_money(conversions):
    quarterly = str(example_path("quarterly.toml"))
    mixed = json.loads(run("compare", conversions, quarterly, "--format", "json").stdout)
    assert [c["return_unit"] for c in mixed["scenarios"]] == ["kpi", "money"] and mixed["return_unit"] is None
    diff = mixed["difference"]["plan"]
    assert diff["expected_return"] is None and diff["roi"] is None and diff["marginal_roi"] is None
    assert diff["spend"] == pytest.approx(mixed["scenarios"][1]["spend"] - mixed["scenarios"][0]["spend"], abs=0.01)
    assert all(v["expected_return"] is None and v["spend"] is not None for v in mixed["difference"]["channels"].values())
    table = run("compare", conversions, quarterly).stdout
    assert "returns of A in the KPI's own units (not money), of B in money" in table
    row = next(line for line in table.splitlines() if line.startswith("expected return "))
    assert len(row.split()) == 4  # "expected return", A, B and no difference
    from scenarios.compare import compare_scenarios
    from scenarios.sheets import KPI_FORMAT, comparison_workbook

    sheet = load_workbook(BytesIO(comparison_workbook(compare_scenarios([conversions, quarterly]))))["comparison"]
    row = next(r for r in sheet.iter_rows() if r[0].value == "expected return")
    assert [c.number_format for c in row[1:3]] == [KPI_FORMAT, KPI_FORMAT]  # one is not money: neither has ¥
    assert "returns in money in some columns, in KPI units in others" in sheet["A2"].value
    same = json.loads(run("compare", conversions, conversions, "--format", "json").stdout)
    assert same["return_unit"] == "kpi" and same["difference"]["plan"]["expected_return"] == 0.0


def test_an_allocation_workbook_formats_kpi_returns_as_plain_numbers(conversions):
    from scenarios.sheets import KPI_FORMAT, allocation_workbook, money_format

    with pytest.warns(ConvergenceWarning, match="least squares on a total KPI"):  # the fixture's fit
        sc = load_scenario(conversions)
    plan = plan_scenario(sc)
    book = load_workbook(BytesIO(allocation_workbook(plan.allocation, sc, plan.extra)))
    ch = book["channels"]
    head = [c.value for c in ch[4]]
    first = ch[5]
    assert first[head.index("return")].number_format == KPI_FORMAT
    assert first[head.index("recommended")].number_format == money_format("CNY")
    assert "returns in the KPI's own units" in ch["A2"].value


def test_rebalance_writes_kpi_returns_without_the_currency(tmp_path):
    """The rebalance test scenario (two written curves, three months), its return taken as KPI
    units: spend and transfers stay money, gains and returns do not."""
    from scenarios.rebalance import read_actuals, rebalance

    path = tmp_path / "two.toml"
    path.write_text(TWO_CHANNELS)
    sc = load_scenario(path)
    sc.problem = replace(sc.problem, return_in_money=False)
    plan = plan_scenario(sc)
    assert plan.allocation.return_unit == "kpi"
    por = json.loads(render.allocation_json(plan.allocation, sc, plan.extra))
    planned = {c["channel"]: c["spend"] for c in por["periods"][0]["channels"]}
    a, b = planned["a"], planned["b"] * 1.5
    actuals = tmp_path / "actuals.csv"
    actuals.write_text(f"period,channel,spend,return\nM1,a,{a},1000000\nM1,b,{b},100000\n")
    out = rebalance(sc, read_actuals(actuals, sc, ("M1", "M2", "M3")), por)
    assert out["return_unit"] == "kpi"
    transfer = next(s for s in out["suggestions"] if s["kind"] == "transfer")
    assert re.match(r"move ¥[\d,]+ from b to a for M2–M3: \+[\d,]+ expected", transfer["text"]), transfer["text"]
    drifted = [d["text"] for d in out["drift"] if d["kind"] == "return"]
    assert drifted and all(re.search(r": returned [\d,]+ to date, the model expected [\d,]+ at that spend", t)
                           and "¥" not in t for t in drifted), drifted
    end = next(line for line in render.rebalance_table(out).splitlines() if line.startswith("End of horizon"))
    assert "¥" not in end


def test_an_infeasible_plan_explains_itself_in_its_own_currency_and_units():
    from models.curves import HillCurve
    from optimizer import Channel, Problem, optimize

    def problem(**kw):
        return Problem(channels=(Channel("douyin", HillCurve(3e6, 1e6, 0.8), current=4e5, **kw.pop("douyin", {})),
                                 Channel("xhs", HillCurve(2e6, 8e5, 0.9), current=3e5, **kw.pop("xhs", {}))),
                       budget=1_000_000, **kw)

    usd = problem(currency="USD", douyin={"min_spend": 600_000}, xhs={"min_spend": 400_000})
    text = " ".join(optimize(usd).diagnosis)
    assert "$1,000,000" in text and "$950,000" in text and "¥" not in text
    from optimizer import from_problem, plan_violations

    periods = from_problem(problem(currency="USD"), 3)
    periods = replace(periods, channels=(replace(periods.channels[0], max_total=300_000), *periods.channels[1:]))
    text = " ".join(plan_violations(periods, [[200_000] * 3, [100_000] * 3]))
    assert "douyin: total $600,000 is above its maximum $300,000" in text and "¥" not in text
    short = problem(objective="min_spend", target_return=9e9, return_in_money=False)
    text = " ".join(optimize(short).diagnosis)
    assert re.search(r"target return 9,000,000,000 is unreachable: the most the constraints allow is [\d,]+ ", text), text
    assert "¥" not in text
