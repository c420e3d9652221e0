"""`budget allocate`: every exit code, every format, the JSON contract."""

import csv
import io
import json

import pytest
from click.testing import CliRunner

from cli import main
from scenarios import example_path

QUARTERLY = str(example_path("quarterly.toml"))

TOP_KEYS = {"scenario", "status", "objective", "budget", "return_unit", "spend", "reserve", "expected_return", "roi",
            "current", "uplift", "channels", "groups", "binding_constraints", "warnings", "solver"}
CHANNEL_KEYS = {"channel", "group", "spend", "share", "current_spend", "change", "expected_return", "roi", "marginal_roi"}


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_table_is_the_default(run):
    r = run("allocate", QUARTERLY)
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert out.startswith("2027-Q1 quarterly plan: budget ¥10,000,000 (CNY), 2027-Q1; objective max_return")
    for needle in ("recommended", "mROI", "reserve", "expected return", "Binding constraints", "reserve_min"):
        assert needle in out
    # stderr (not a terminal here) has progress lines of the fit, or nothing on a cached run.
    assert all(line.startswith(("fitting curves from history: ", "fitting 9 channels on 156 weekly",
                                "using the cached fit "))
               for line in r.stderr.splitlines()), r.stderr


def test_json_contract(run):
    r = run("allocate", QUARTERLY, "--format", "json")
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    assert TOP_KEYS <= set(d)
    assert d["return_unit"] == "money"  # revenue beside spend in yuan
    assert {"spend", "expected_return", "roi"} <= set(d["current"])
    assert {"name", "seconds"} <= set(d["solver"])
    assert all(CHANNEL_KEYS <= set(c) for c in d["channels"])
    assert all({"group", "spend", "share"} <= set(g) for g in d["groups"])
    assert d["status"] == "optimal"
    # Money adds up to the cent.
    assert round(sum(c["spend"] for c in d["channels"]) * 100) + round(d["reserve"] * 100) == round(d["budget"] * 100)
    assert d["expected_return"] >= d["current"]["expected_return"]
    assert d["uplift"] == pytest.approx(d["expected_return"] / d["current"]["expected_return"] - 1)


def test_csv_has_one_row_per_channel(run):
    r = run("allocate", QUARTERLY, "--format", "csv")
    assert r.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 9 + 2  # the channels, then reserve and total
    assert list(rows[0]) == ["channel", "label", "group", "spend", "share", "current_spend", "change",
                             "expected_return", "roi", "marginal_roi", "currency"]
    assert rows[0]["channel"] == "douyin" and rows[0]["label"] == "Douyin 抖音" and rows[0]["currency"] == "CNY"
    reserve, total = rows[-2], rows[-1]
    assert (reserve["channel"], total["channel"]) == ("reserve", "total")
    cents = lambda v: round(float(v) * 100)  # noqa: E731
    assert sum(cents(r["spend"]) for r in rows[:-1]) == cents(total["spend"])  # channels + reserve = budget
    assert sum(cents(r["current_spend"]) for r in rows[:-1]) == cents(total["current_spend"])
    assert float(total["expected_return"]) == pytest.approx(sum(float(r["expected_return"]) for r in rows[:-2]))


def test_output_file_is_written_and_stdout_stays_empty(run, tmp_path):
    target = tmp_path / "plan.json"
    r = run("allocate", QUARTERLY, "--format", "json", "--output", str(target))
    assert r.exit_code == 0 and r.stdout == ""
    assert json.loads(target.read_text(encoding="utf-8"))["status"] == "optimal"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]  # no temp file left behind


def test_budget_override(run):
    r = run("allocate", QUARTERLY, "--budget", "5000000", "--format", "json")
    d = json.loads(r.stdout)
    assert d["budget"] == 5_000_000 and d["reserve"] >= 250_000
    assert d["notes"][0].startswith("budget overridden")


def test_invalid_scenario_exits_3_listing_every_problem(run, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[budget]\ntotal = 0\n[channels.a]\ncurve = { kind = "hil" }\n', encoding="utf-8")
    r = run("allocate", str(bad))
    assert r.exit_code == 3
    assert r.stdout == ""
    assert r.stderr == (
        f"Error: {bad}: 2 problem(s)\n"
        "  - budget.total: must be > 0, got 0\n"
        "  - channels.a.curve.kind: must be one of exponential, hill, hill_mixture, points, got 'hil'\n"
    )


def test_infeasible_exits_4_with_explanation(run, tmp_path):
    text = example_path("pasted_curves.toml").read_text(encoding="utf-8")
    text = text.replace("min_spend = 600_000", "min_spend = 9_000_000")
    f = tmp_path / "tight.toml"
    f.write_text(text, encoding="utf-8")
    r = run("allocate", str(f))
    assert r.exit_code == 4
    assert r.stdout == ""
    assert r.stderr.startswith("Error: no plan satisfies every constraint of 2027-Q1 plan on pasted curves:\n  - ")
    assert "popup_stores" in r.stderr
    j = run("allocate", str(f), "--format", "json")
    assert j.exit_code == 4
    d = json.loads(j.stdout)
    assert d["status"] == "infeasible" and d["diagnosis"]


def test_usage_errors_exit_2(run):
    assert run("allocate", QUARTERLY, "--format", "xml").exit_code == 2
    assert run("allocate", "does-not-exist.toml").exit_code == 2
    r = run("allocate", QUARTERLY, "--budget", "-1")
    assert r.exit_code == 2 and "--budget" in r.stderr


def test_an_output_into_a_missing_folder_is_refused_before_any_work(run, tmp_path):
    r = run("allocate", QUARTERLY, "--output", str(tmp_path / "no" / "such" / "dir" / "x.txt"))
    assert r.exit_code == 2
    assert "--output" in r.stderr and "does not exist" in r.stderr
    assert "fitting" not in r.stderr  # refused before the fit
    assert list(tmp_path.iterdir()) == []


def test_help_has_examples_and_exit_codes(run):
    top = run("--help").stdout
    assert "Example:" in top and "Exit codes:" in top
    assert "Example:" in run("allocate", "--help").stdout


def test_exact_flag_and_lp_file(run, tmp_path):
    lp = tmp_path / "model.lp"
    r = run("allocate", QUARTERLY, "--exact", "--format", "json", "--lp-file", str(lp))
    assert r.exit_code == 0
    assert json.loads(r.stdout)["solver"]["mode"] == "exact"
    text = lp.read_text()
    assert "budget_total_0:" in text and "group_min_tools" in text


def test_two_outputs_on_one_file_are_a_usage_error_before_any_work(run, tmp_path):
    """-o same.json --lp-file same.json wrote the LP, then the plan over it; rebalance -o onto its
    own ledger would replace the ledger with the result."""
    pasted = str(example_path("pasted_curves.toml"))
    same = tmp_path / "same.json"
    r = run("allocate", pasted, "-o", str(same), "--lp-file", str(tmp_path / "." / "same.json"))
    assert r.exit_code == 2 and "--output and --lp-file name the same file" in r.stderr and not same.exists()
    ledger = tmp_path / "q1.sqlite"
    assert run("allocate", str(example_path("monthly.toml")), "--record", "--ledger", str(ledger)).exit_code == 0
    before = ledger.read_bytes()
    r = run("rebalance", str(example_path("monthly.toml")), "--actuals", str(example_path("actuals_m1_m2.csv")),
            "--ledger", str(ledger), "-o", str(ledger))
    assert r.exit_code == 2 and "--output and --ledger name the same file" in r.stderr
    assert ledger.read_bytes() == before


def test_a_small_budget_is_shown_in_cents(tmp_path):
    """A budget of 8 in normalised units printed "4 → 5, change 0" and "reserve 0" for 4.44 → 4.58
    and 0.40: under 10,000 the table shows cents."""
    path = tmp_path / "small.toml"
    path.write_text('[budget]\ntotal = 8\n[reserve]\nmin_share = 0.05\n'
                    '[channels.x1]\ncurrent = 4.44\ncurve = {kind = "hill", beta = 9, k = 3, s = 1.0}\n'
                    '[channels.x2]\ncurrent = 3.16\ncurve = {kind = "hill", beta = 5, k = 2, s = 1.0}\n',
                    encoding="utf-8")
    out = CliRunner().invoke(main, ["allocate", str(path)]).stdout
    assert "budget ¥8.00 (CNY)" in out and "4.44" in out
    reserve = next(line for line in out.splitlines() if line.startswith("reserve"))
    assert "0.40" in reserve
    big = CliRunner().invoke(main, ["allocate", str(example_path("pasted_curves.toml"))]).stdout
    assert "budget ¥10,000,000 (CNY)" in big
