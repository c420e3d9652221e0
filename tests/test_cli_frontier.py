"""`budget frontier`: the budget sweep as people and jobs read it (table, JSON, CSV, chart)."""

import csv
import io
import json

import pytest
from click.testing import CliRunner

from cli import main
from scenarios import example_path

PASTED = str(example_path("pasted_curves.toml"))
ROI_FLOOR = str(example_path("roi_floor.toml"))
QUARTERLY = str(example_path("quarterly.toml"))

#: The JSON contract of a frontier (tests pin the keys; more may be added).
TOP_KEYS = {"scenario", "currency", "return_unit", "objective", "basis", "reference", "scenario_budget", "scenario_level",
            "forecast_kpi", "channels", "levels", "break_even", "floor", "favoured", "warnings", "notes", "seconds"}
LEVEL_KEYS = {"level", "budget", "status", "spend", "reserve", "expected_return", "return_interval", "roi",
              "marginal_roi", "channels", "binding_constraints", "warnings", "diagnosis"}


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def test_table_shows_levels_mix_break_even_and_the_favoured_level(runner):
    r = runner.invoke(main, ["frontier", PASTED, "--from", "0.8", "--to", "1.6", "--steps", "5"])
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert out.startswith("2027-Q1 plan on pasted curves: budget frontier, 0.8× to 1.6× the budget ¥10,000,000 (CNY)")
    for level in ("0.8×", "1× ←", "1.2×", "1.4×", "1.6×"):
        assert f"\n{level}" in out
    assert "Channel mix (share of each level's budget):" in out
    assert "\nbreak-even (marginal ROI 1): about ¥13,425,90" in out
    assert "\nfavoured within the band: ¥13,425,90" in out
    assert "planning budget levels" not in out  # progress goes to stderr


def test_json_keys_are_a_contract_and_money_adds_up(runner):
    r = runner.invoke(main, ["frontier", PASTED, "--format", "json", "--steps", "4"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert set(d) == TOP_KEYS
    assert d["basis"] == "budget" and d["reference"] == 10_000_000
    assert [round(x["level"], 6) for x in d["levels"]] == [0.5, 1.0, 1.5, 2.0]
    for row in d["levels"]:
        assert set(row) == LEVEL_KEYS
        assert round(sum(c["spend"] for c in row["channels"]) * 100) + round(row["reserve"] * 100) == round(row["budget"] * 100)
    assert set(d["break_even"]) == {"marginal_roi", "budget", "level"}
    assert set(d["favoured"]) == {"budget", "level", "marginal_roi_threshold", "reason", "set_by_limits", "plan"}


def test_csv_has_one_row_per_level_and_a_spend_column_per_channel(runner, tmp_path):
    out = tmp_path / "frontier.csv"
    r = runner.invoke(main, ["frontier", PASTED, "--from", "50%", "--to", "150%", "--steps", "3", "--format", "csv",
                             "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [float(x["level"]) for x in rows] == [0.5, 1.0, 1.5]
    assert [float(x["budget"]) for x in rows] == [5e6, 1e7, 1.5e7]
    assert "spend[douyin]" in rows[0] and rows[0]["currency"] == "CNY" and rows[0]["basis"] == "budget"
    for x in rows:
        spends = [float(v) for k, v in x.items() if k.startswith("spend[")]
        assert round(sum(spends) * 100) + round(float(x["reserve"]) * 100) == round(float(x["budget"]) * 100)
    assert "wrote the frontier to" in r.stderr


def test_plot_is_written(runner, tmp_path):
    chart = tmp_path / "frontier.png"
    r = runner.invoke(main, ["frontier", PASTED, "--steps", "4", "--plot", str(chart), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote the chart to {chart}" in r.stderr


@pytest.mark.parametrize("args,message", [
    (["--from", "abc"], "Invalid value for --from: must be a number such as 0.5 or a percentage such as 15%, got 'abc'"),
    (["--from", "2", "--to", "1"], "the sweep must go from a level > 0 up to a larger one, got 2 to 1"),
    (["--steps", "1"], "Invalid value for '--steps'"),
    (["--of-forecast", "--to", "150%"], "with --of-forecast a level is a share of the forecast KPI"),
    (["--plot", "chart.txt"], "unknown chart format '.txt'"),
])
def test_usage_errors_exit_2_before_any_work(runner, tmp_path, args, message):
    r = runner.invoke(main, ["frontier", PASTED, *args])
    assert r.exit_code == 2, r.output
    assert message in r.stderr


def test_levels_of_the_forecast_on_written_curves_exit_3(runner):
    r = runner.invoke(main, ["frontier", PASTED, "--of-forecast"])
    assert r.exit_code == 3
    assert "levels as shares of the forecast KPI need curves fitted from history" in r.stderr


def test_some_infeasible_levels_are_listed_and_all_infeasible_exits_4(runner):
    r = runner.invoke(main, ["frontier", ROI_FLOOR, "--from", "1", "--to", "2", "--steps", "3"])
    assert r.exit_code == 0, r.output
    assert "infeasible" in r.stdout and "no plan satisfies every constraint at 2 level(s), from 1.5×" in r.stdout
    r = runner.invoke(main, ["frontier", ROI_FLOOR, "--from", "1.5", "--to", "2", "--steps", "2", "--format", "json"])
    assert r.exit_code == 4
    assert [x["status"] for x in json.loads(r.stdout)["levels"]] == ["infeasible", "infeasible"]
    assert "Error: no level of the frontier of 2027-Q1 with an ROI floor of 3.0 has a plan" in r.stderr


@pytest.mark.slow
def test_shares_of_the_forecast_kpi_on_fitted_curves(runner):
    r = runner.invoke(main, ["frontier", QUARTERLY, "--from", "15%", "--to", "20%", "--steps", "6", "--of-forecast",
                             "--format", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    kpi = d["forecast_kpi"]["total"]
    assert d["basis"] == "forecast" and d["reference"] == pytest.approx(kpi, abs=0.01)
    assert [x["budget"] for x in d["levels"]] == [round(s * kpi, 2) for s in (0.15, 0.16, 0.17, 0.18, 0.19, 0.20)]
    assert all(x["return_interval"]["p10"] <= x["expected_return"] <= x["return_interval"]["p90"] for x in d["levels"])
    fav = d["favoured"]
    assert 0.15 * kpi - 0.01 <= fav["budget"] <= 0.20 * kpi + 0.01


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_the_installed_command_prints_only_its_result(fmt):
    """What a scheduler sees: file descriptor 1 holds the frontier and nothing else."""
    import os
    import shutil
    import subprocess
    import sys

    exe = shutil.which("budget", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("`budget` is not installed (make test installs it)")
    r = subprocess.run([exe, "frontier", PASTED, "--steps", "4", "--format", fmt], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    if fmt == "json":
        assert set(json.loads(r.stdout)) == TOP_KEYS
    elif fmt == "csv":
        assert len(list(csv.DictReader(io.StringIO(r.stdout)))) == 4
    else:
        assert r.stdout.startswith("2027-Q1 plan on pasted curves: budget frontier")


def test_a_gmv_share_without_of_forecast_is_said_to_be_a_multiple_of_the_budget(runner):
    """--from 15% --to 20% reads as 0.15× … 0.2× the budget; a planner who meant 15–20% of GMV is told."""
    monthly = str(example_path("monthly.toml"))  # written curves without minimums that 15% of the budget breaks
    r = runner.invoke(main, ["frontier", monthly, "--from", "15%", "--to", "20%", "--steps", "2", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    assert "--from 15% is 0.15× the scenario's budget" in r.stderr and "add --of-forecast" in r.stderr
    assert [lv["level"] for lv in json.loads(r.stdout)["levels"]] == [0.15, 0.2]
    plain = runner.invoke(main, ["frontier", PASTED, "--from", "0.5", "--to", "80%", "--steps", "2"])
    assert plain.exit_code == 0 and "of-forecast" not in plain.stderr
