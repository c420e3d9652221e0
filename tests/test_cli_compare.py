"""`budget compare` and `--format xlsx`: exit codes, every format, broken files beside good ones,
saved plans as columns, the chart, and workbooks only where a binary file belongs."""

import csv
import io
import json

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

import cli
from cli import main
from scenarios import example_path

PASTED = str(example_path("pasted_curves.toml"))
FLOOR = str(example_path("roi_floor.toml"))


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_table_lines_up_two_scenarios_with_a_difference(run):
    r = run("compare", PASTED, FLOOR)
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert out.startswith("A = 2027-Q1 plan on pasted curves (pasted_curves.toml, scenario)\n"
                          "B = 2027-Q1 with an ROI floor of 3.0 (roi_floor.toml, scenario)\n"
                          "money in CNY (¥)\n"
                          "compared on the same curves: the differences come from the budget, limits and reserve alone\n")
    assert "B − A" in out and "Spend (share) per channel:" in out and "Spend (share) per group:" in out
    budget = next(line for line in out.splitlines() if line.startswith("budget "))
    assert budget.split() == ["budget", "10,000,000", "10,000,000", "0"]
    assert "douyin (Douyin 抖音)" in out and "Binding constraints (what limits each plan):" in out
    assert r.stderr.splitlines() == [f"comparing 1/2: {PASTED}", f"comparing 2/2: {FLOOR}"]


def test_json_is_the_library_result(run):
    r = run("compare", PASTED, FLOOR, "--format", "json")
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    assert set(d) == {"scenarios", "channels", "groups", "difference", "curves", "fits", "currency", "return_unit",
                     "errors"}
    assert d["return_unit"] == "money"
    a, b = d["scenarios"]
    assert d["difference"]["plan"]["reserve"] == pytest.approx(b["reserve"] - a["reserve"], abs=0.01)
    assert d["curves"]["same"] is True


def test_csv_one_row_per_figure(run):
    r = run("compare", PASTED, FLOOR, "--format", "csv")
    assert r.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(rows[0]) == ["section", "item", "label", "metric", "2027-Q1 plan on pasted curves",
                             "2027-Q1 with an ROI floor of 3.0", "difference"]
    spend = next(x for x in rows if x["section"] == "channel" and x["item"] == "douyin" and x["metric"] == "spend")
    a, b = float(spend["2027-Q1 plan on pasted curves"]), float(spend["2027-Q1 with an ROI floor of 3.0"])
    assert float(spend["difference"]) == pytest.approx(b - a, abs=0.01)


def test_a_broken_file_is_reported_the_rest_compared_and_exit_3(run, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[budget]\ntotal = -5\n', encoding="utf-8")
    r = run("compare", PASTED, str(bad), FLOOR, "--format", "json")
    assert r.exit_code == 3
    d = json.loads(r.stdout)
    assert [c["name"] for c in d["scenarios"]] == ["2027-Q1 plan on pasted curves", "2027-Q1 with an ROI floor of 3.0"]
    assert f"Error: {bad}: 2 problem(s)\n  - budget.total: must be > 0, got -5\n" in r.stderr


def test_only_broken_files_write_nothing(run, tmp_path):
    target = tmp_path / "cmp.json"
    r = run("compare", str(tmp_path / "missing.toml"), "--format", "json", "-o", str(target))
    assert r.exit_code == 3 and r.stdout == "" and not target.exists()
    assert f"Error: {tmp_path / 'missing.toml'}: 1 problem(s)" in r.stderr


def test_saved_plan_against_the_scenario_now(run, tmp_path):
    saved = tmp_path / "approved.json"
    assert run("allocate", PASTED, "--format", "json", "-o", str(saved)).exit_code == 0
    r = run("compare", str(saved), PASTED, "--budget", "11000000", "--format", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert [c["kind"] for c in d["scenarios"]] == ["saved plan", "scenario"]
    assert [c["name"] for c in d["scenarios"]] == ["2027-Q1 plan on pasted curves (approved.json)",
                                                   "2027-Q1 plan on pasted curves (pasted_curves.toml)"]
    assert d["difference"]["plan"]["budget"] == 1_000_000  # --budget re-plans scenarios, not saved plans
    assert d["curves"]["same"] is None


def test_infeasible_column_exits_4_after_the_comparison(run, tmp_path):
    text = open(PASTED, encoding="utf-8").read().replace("min_spend = 600_000", "min_spend = 9_900_000")
    tight = tmp_path / "tight.toml"
    tight.write_text(text, encoding="utf-8")
    r = run("compare", PASTED, str(tight))
    assert r.exit_code == 4
    assert "B: no plan satisfies every constraint:" in r.stdout
    assert "Error: no plan satisfies every constraint of 2027-Q1 plan on pasted curves (tight.toml)" in r.stderr


def test_plot_and_xlsx_files(run, tmp_path):
    chart, book = tmp_path / "cmp.png", tmp_path / "cmp.xlsx"
    r = run("compare", PASTED, FLOOR, "--format", "xlsx", "-o", str(book), "--plot", str(chart))
    assert r.exit_code == 0 and r.stdout == ""
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wb = load_workbook(book)
    assert wb.sheetnames == ["comparison", "channels", "groups"]
    assert f"wrote the comparison to {book}" in r.stderr and f"wrote the chart to {chart}" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp.png", "cmp.xlsx"]  # no temporary files left


def test_bad_plot_extension_is_refused_before_any_work(run, tmp_path):
    r = run("compare", PASTED, FLOOR, "--plot", str(tmp_path / "cmp.txt"))
    assert r.exit_code == 2 and "unknown chart format '.txt'" in r.stderr and "comparing" not in r.stderr


def test_allocate_xlsx_to_a_file(run, tmp_path):
    target = tmp_path / "plan.xlsx"
    r = run("allocate", PASTED, "--format", "xlsx", "-o", str(target))
    assert r.exit_code == 0 and r.stdout == ""
    wb = load_workbook(target)
    assert wb.sheetnames == ["summary", "channels", "groups"]
    assert wb["channels"]["A1"].value == "2027-Q1 plan on pasted curves: channels"
    names = [row[0] for row in wb["channels"].iter_rows(min_row=5, values_only=True)]
    assert names[-2:] == ["reserve", "total"] and len(names) == 11


def test_xlsx_to_a_terminal_is_a_usage_error_but_a_redirect_is_fine(run, monkeypatch):
    monkeypatch.setattr(cli, "_stdout_is_terminal", lambda: True)
    for cmd in (["allocate", PASTED], ["compare", PASTED, FLOOR]):
        r = run(*cmd, "--format", "xlsx")
        assert r.exit_code == 2
        assert "--format xlsx writes a binary workbook: give --output FILE.xlsx (or redirect stdout to a file)" in r.stderr
    monkeypatch.setattr(cli, "_stdout_is_terminal", lambda: False)
    r = run("allocate", PASTED, "--format", "xlsx")
    assert r.exit_code == 0 and r.stdout_bytes[:2] == b"PK"
    assert load_workbook(io.BytesIO(r.stdout_bytes)).sheetnames == ["summary", "channels", "groups"]


def _installed_budget():
    import os
    import shutil
    import sys

    return shutil.which("budget", path=os.path.dirname(sys.executable))


@pytest.mark.skipif(_installed_budget() is None, reason="`budget` is not installed (make test installs it)")
def test_installed_budget_json_and_xlsx_through_a_redirect(tmp_path):
    """What a scheduler sees: JSON alone on stdout, and a workbook when stdout is a file."""
    import subprocess

    exe = _installed_budget()
    r = subprocess.run([exe, "compare", PASTED, FLOOR, "--format", "json"], capture_output=True, text=True,
                       timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["curves"]["same"] is True
    target = tmp_path / "plan.xlsx"
    with open(target, "wb") as fh:
        r = subprocess.run([exe, "allocate", PASTED, "--format", "xlsx"], stdout=fh, stderr=subprocess.PIPE,
                           timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert load_workbook(target).sheetnames == ["summary", "channels", "groups"]


def test_broken_file_in_a_workbook_gets_a_problems_sheet(run, tmp_path):
    bad, book = tmp_path / "bad.toml", tmp_path / "cmp.xlsx"
    bad.write_text("name = [\n", encoding="utf-8")
    r = run("compare", PASTED, str(bad), FLOOR, "--format", "xlsx", "-o", str(book))
    assert r.exit_code == 3
    wb = load_workbook(book)
    assert wb.sheetnames == ["comparison", "channels", "groups", "problems"]
    problems = list(wb["problems"].iter_rows(min_row=5, values_only=True))
    assert problems[0][0] == str(bad) and problems[0][1].startswith("not valid TOML")


def test_infeasible_allocate_still_writes_its_workbook_and_exits_4(run, tmp_path):
    text = open(PASTED, encoding="utf-8").read().replace("min_spend = 600_000", "min_spend = 9_900_000")
    tight, book = tmp_path / "tight.toml", tmp_path / "plan.xlsx"
    tight.write_text(text, encoding="utf-8")
    r = run("allocate", str(tight), "--format", "xlsx", "-o", str(book))
    assert r.exit_code == 4 and "Error: no plan satisfies every constraint" in r.stderr
    rows = list(load_workbook(book)["summary"].iter_rows(min_row=4, values_only=True))
    assert rows[0][0] == "no plan satisfies every constraint" and len(rows) > 1


def test_a_missing_file_or_a_run_named_by_other_than_its_number_is_said_in_words(run, tmp_path):
    """They were "[Errno 2] No such file or directory: 'x.sqlite#abc'"."""
    r = run("compare", str(tmp_path / "q1.sqlite#abc"), str(tmp_path / "nothere.toml"), PASTED)
    assert r.exit_code == 3
    assert "#abc: a recorded run is named by its number" in r.stderr and "no such file" in r.stderr
    assert "Errno" not in r.stderr


def test_a_rebalance_run_is_refused_as_a_column_in_words(run, tmp_path):
    """A rebalance re-plans the rest of a horizon; comparing it crashed on its budget (a table of
    spent and remaining, not a number) or called it infeasible."""
    ledger = str(tmp_path / "q1.sqlite")
    monthly = str(example_path("monthly.toml"))
    assert run("allocate", monthly, "--record", "--ledger", ledger).exit_code == 0
    r = run("rebalance", monthly, "--actuals", str(example_path("actuals_m1_m2.csv")), "--ledger", ledger)
    assert r.exit_code == 0, r.stderr
    for fmt in ("table", "json", "csv"):
        r = run("compare", f"{ledger}#2", monthly, "--format", fmt)
        assert r.exit_code == 3, (fmt, r.stderr)
        assert f"{ledger}#2 is a rebalance (as of 2027-02), not a plan; compare plans ({ledger}#1)" in r.stderr
        assert "unexpected failure" not in r.stderr and "no plan satisfies" not in r.stderr
    assert run("compare", f"{ledger}#1", monthly, "--format", "json").exit_code == 0


def test_a_table_given_as_a_scenario_is_named_as_one(run, tmp_path):
    table = tmp_path / "plan.csv"
    table.write_text("channel,spend\ndouyin,100\n", encoding="utf-8")
    r = run("compare", str(table), PASTED)
    assert r.exit_code == 3
    assert "a scenario is a TOML file, and this is a CSV table" in r.stderr and "not valid TOML" not in r.stderr
