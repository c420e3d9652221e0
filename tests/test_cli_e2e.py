"""What a scheduler sees: the installed `budget` run as a subprocess, its stdout parsed.

CliRunner tests cannot see file descriptor 1 (a native library printing a banner there), exit
codes as the shell gets them, or broken pipes; these tests can. Every command × format, on
success and on failure, must leave on stdout exactly the result asked for and nothing else.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from scenarios import example_path

BUDGET = shutil.which("budget", path=os.path.dirname(sys.executable)) or shutil.which("budget")
EXAMPLES = example_path("quarterly.toml").parent
PASTED = str(EXAMPLES / "pasted_curves.toml")
QUARTERLY = str(EXAMPLES / "quarterly.toml")
WEEKLY = str(EXAMPLES / "weekly.toml")
HISTORY = str(EXAMPLES / "history_weekly.csv")
MONTHLY = str(EXAMPLES / "monthly.toml")
ACTUALS = str(EXAMPLES / "actuals_m1_m2.csv")

pytestmark = pytest.mark.skipif(BUDGET is None, reason="the `budget` console script is not installed "
                                                       "(make test installs it)")


def budget(*args, cwd=None, timeout=600):
    """Run the installed command; stdout and stderr apart, as a scheduler gets them."""
    return subprocess.run([BUDGET, *args], capture_output=True, text=True, encoding="utf-8", cwd=cwd,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def parse(fmt: str, text: str):
    """The whole of stdout in the format asked for; fails on any stray line."""
    if fmt == "json":
        return json.loads(text)
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        assert rows and all(len(r) == len(rows[0]) for r in rows), text[:300]
        return rows
    assert text.strip(), "an empty table"
    return text


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and 'File "' not in stderr, stderr[-2000:]


@pytest.fixture(scope="module")
def infeasible(tmp_path_factory) -> str:
    """The pasted-curves plan with an ROI floor no channel reaches."""
    text = Path(PASTED).read_text(encoding="utf-8")
    assert "[constraints]" not in text
    path = tmp_path_factory.mktemp("infeasible") / "infeasible.toml"
    path.write_text(text + "\n[constraints]\nroi_min = 50.0\n", encoding="utf-8")
    return str(path)


@pytest.mark.slow
def test_guarded_plan_on_stdout_and_a_bad_spec_on_stderr():
    r = budget("allocate", QUARTERLY, "--risk", "guard:0.1", "--format", "json")
    assert r.returncode == 0, r.stderr
    no_traceback(r.stderr)
    out = parse("json", r.stdout)
    assert out["status"] == "optimal" and out["risk"]["measure"] == "guard"
    assert out["risk"]["guarded"]["cvar_gain"] >= -0.01
    assert round(sum(c["spend"] for c in out["channels"]) * 100) + round(out["reserve"] * 100) \
        == round(out["budget"] * 100)
    bad = budget("allocate", QUARTERLY, "--risk", "guard:0", "--format", "json")
    assert bad.returncode == 2 and bad.stdout == "" and "guard:0.1" in bad.stderr
    no_traceback(bad.stderr)


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
@pytest.mark.parametrize("scenario", [PASTED, WEEKLY], ids=["single", "periods"])
def test_allocate_prints_only_its_result(fmt, scenario):
    r = budget("allocate", scenario, "--format", fmt)
    assert r.returncode == 0, r.stderr
    out = parse(fmt, r.stdout)
    if fmt == "json":
        assert out["status"] == "optimal"
        assert round(sum(c["spend"] for c in out["channels"]) * 100) + round(out["reserve"] * 100) \
            == round(out["budget"] * 100)
    if fmt == "csv":
        assert out[0][:3] in (["channel", "label", "group"], ["period", "channel", "spend"])
    no_traceback(r.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_allocate_on_fitted_curves_prints_only_its_result(fmt):
    r = budget("allocate", QUARTERLY, "--format", fmt)
    assert r.returncode == 0, r.stderr
    out = parse(fmt, r.stdout)
    if fmt == "json":
        assert out["return_interval"]["p10"] <= out["return_interval"]["p90"]
    no_traceback(r.stderr)


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_an_infeasible_plan_exits_4_and_json_is_still_parseable(fmt, infeasible):
    r = budget("allocate", infeasible, "--format", fmt)
    assert r.returncode == 4, r.stderr
    assert "Error: no plan satisfies every constraint" in r.stderr
    if fmt == "json":
        d = json.loads(r.stdout)
        assert d["status"] == "infeasible" and d["diagnosis"]
    else:
        assert r.stdout == ""
    no_traceback(r.stderr)


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_bad_scenario_exits_3_with_nothing_on_stdout(fmt, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[budget]\ntotal = -5\n[channels.douyin]\nmax_share = 1.4\ncurve = { kind = "hill", beta = 1 }\n',
                   encoding="utf-8")
    r = budget("allocate", str(bad), "--format", fmt)
    assert r.returncode == 3
    assert r.stdout == ""
    assert r.stderr.startswith(f"Error: {bad}: ")
    assert "budget.total" in r.stderr and "channels.douyin.max_share" in r.stderr
    no_traceback(r.stderr)


def test_usage_errors_exit_2(tmp_path):
    for args in (["allocate", PASTED, "--format", "xml"], ["allocate", str(tmp_path / "none.toml")],
                 ["allocate", PASTED, "--budget", "-1"], ["nosuchcommand"],
                 ["allocate", PASTED, "--plot", str(tmp_path / "x.bmpx")],
                 ["allocate", PASTED, "--lp-file", str(tmp_path / "missing" / "model.lp")],
                 ["allocate", PASTED, "-o", str(tmp_path)],
                 ["forecast", QUARTERLY, "--plot", str(tmp_path / "missing" / "f.png")]):
        r = budget(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stdout == ""
        no_traceback(r.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_fit_prints_only_its_report_and_the_model_loads(fmt, tmp_path):
    model = tmp_path / "model.json"
    r = budget("fit", HISTORY, "--format", fmt, "-o", str(model), "--bootstrap", "4")
    assert r.returncode == 0, r.stderr
    out = parse(fmt, r.stdout)
    if fmt == "json":
        assert {c["channel"] for c in out["channels"]} >= {"douyin", "popup_stores"}
    assert json.loads(model.read_text(encoding="utf-8"))["schema_version"]
    assert f"wrote the model to {model}" in r.stderr
    no_traceback(r.stderr)


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_fit_on_a_bad_history_exits_3_listing_rows(fmt, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("date,revenue,douyin\n2024-01-01,100,5\n2024-01-01,abc,-3\n", encoding="utf-8")
    r = budget("fit", str(bad), "--format", fmt)
    assert r.returncode == 3
    assert r.stdout == ""
    assert "row 3" in r.stderr
    no_traceback(r.stderr)


LIFTS = str(EXAMPLES / "lift_tests.csv")


@pytest.mark.slow
def test_fit_with_lift_tests_reports_each_beside_the_model_and_grades_every_channel(tmp_path):
    r = budget("fit", HISTORY, "--calibration", LIFTS, "--format", "json", "--bootstrap", "4")
    assert r.returncode == 0, r.stderr
    out = parse("json", r.stdout)
    rows = {c["channel"]: c for c in out["channels"]}
    tested = {"xiaohongshu", "popup_stores", "mini_program"}
    for c, row in rows.items():
        level = row["identification"]["level"]
        assert level == "calibrated" if c in tested else level in ("good", "weak", "poor"), (c, level)
        assert len(row["lift_tests"]) == (c in tested)
    for c in tested:
        t = rows[c]["lift_tests"][0]
        assert abs(t["model"] - t["lift"]) <= 3 * t["se"], t
    table = budget("fit", HISTORY, "--calibration", LIFTS, "--bootstrap", "4")
    assert "Lift tests ([[calibration]]) against the fitted curves:" in parse("table", table.stdout)
    no_traceback(r.stderr + table.stderr)


@pytest.mark.parametrize("content, where", [
    ("channel,start,end,lift,se\nxiaohongshu,2024-04-22,2024-05-13,lots,0\n", "row[1].lift"),
    ("channel,start,end,lift,se\ntiktok,2024-04-22,2024-05-13,1000,100\n", "calibration[1].channel"),
    ("channel,start,end,lift,se\ndouyin,2030-01-07,2030-02-04,1000,100\n", "calibration[1]: the window"),
])
def test_fit_with_bad_lift_tests_exits_3_naming_the_row(content, where, tmp_path):
    bad = tmp_path / "lifts.csv"
    bad.write_text(content, encoding="utf-8")
    r = budget("fit", HISTORY, "--calibration", str(bad), "--bootstrap", "0")
    assert r.returncode == 3, r.stderr
    assert r.stdout == ""
    assert where in r.stderr
    no_traceback(r.stderr)


@pytest.mark.slow
def test_allocate_keeps_evidence_limits_unless_told_to_ignore_them():
    default = parse("json", budget("allocate", QUARTERLY, "--format", "json").stdout)
    free = budget("allocate", QUARTERLY, "--format", "json", "--ignore-evidence")
    assert free.returncode == 0, free.stderr
    free = parse("json", free.stdout)
    assert any(n.startswith("evidence:") for n in default["notes"])
    assert not any(n.startswith("evidence:") for n in free["notes"])
    assert 0 <= default["return_interval"]["beats_current"] <= 1
    no_traceback("")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_forecast_prints_only_its_result(fmt):
    r = budget("forecast", QUARTERLY, "--format", fmt)
    assert r.returncode == 0, r.stderr
    out = parse(fmt, r.stdout)
    if fmt == "json":
        assert len(out["periods"]) == 13
    no_traceback(r.stderr)


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_forecast_without_history_exits_3(fmt):
    r = budget("forecast", PASTED, "--format", fmt)
    assert r.returncode == 3
    assert r.stdout == "" and "forecasting needs curves fitted from history" in r.stderr


def test_forecast_horizon_zero_is_a_usage_error():
    r = budget("forecast", QUARTERLY, "--horizon", "0")
    assert r.returncode == 2 and "--horizon" in r.stderr and r.stdout == ""


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_cache_info(fmt, tmp_path):
    env_dir = tmp_path / "cache"
    r = subprocess.run([BUDGET, "cache", "info", "--format", fmt], capture_output=True, text=True,
                       env={**os.environ, "BUDGET_CACHE_DIR": str(env_dir)})
    assert r.returncode == 0, r.stderr
    out = parse(fmt, r.stdout)
    if fmt == "json":
        assert out == {"path": str(env_dir), "fits": 0, "bytes": 0, "compiled_samplers": 0, "compiled_bytes": 0}
    (env_dir / "jax" / "xla").mkdir(parents=True)
    (env_dir / "jax" / "xla" / "sampler-a").write_bytes(b"x" * 3000)
    (env_dir / "fit-0123.json").write_text("{}")
    r = subprocess.run([BUDGET, "cache", "info", "--format", fmt], capture_output=True, text=True,
                       env={**os.environ, "BUDGET_CACHE_DIR": str(env_dir)})
    if fmt == "json":  # the compiled samplers are counted apart from the fits
        assert parse(fmt, r.stdout) == {"path": str(env_dir), "fits": 1, "bytes": 2, "compiled_samplers": 1,
                                        "compiled_bytes": 3000}
    else:
        assert "1 cached fit(s)" in r.stdout and "(1 file(s))" in r.stdout


def test_output_file_gets_the_umask_mode_and_no_temporary_is_left(tmp_path):
    target = tmp_path / "plan.json"
    r = subprocess.run(["sh", "-c", f'umask 022 && "{BUDGET}" allocate "{PASTED}" --format json -o "{target}"'],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    target.chmod(0o640)  # a mode the user chose is kept when the file is replaced
    assert budget("allocate", PASTED, "--format", "json", "-o", str(target)).returncode == 0
    assert oct(target.stat().st_mode & 0o777) == oct(0o640)
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_a_closed_pipe_ends_the_command_quietly():
    """`budget allocate … | head -1`: no BrokenPipeError traceback, like other Unix tools."""
    proc = subprocess.Popen([BUDGET, "allocate", WEEKLY, "--format", "csv"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader goes away after one line
    _, err = proc.communicate(timeout=120)
    assert first.startswith(b"period,channel")
    assert b"Traceback" not in err and b"BrokenPipe" not in err
    assert proc.returncode in (0, -signal.SIGPIPE)


def test_help_is_fast_to_reach_and_every_command_has_examples():
    for args in ([], ["allocate"], ["fit"], ["forecast"], ["cache"], ["cache", "info"], ["cache", "clear"]):
        r = budget(*args, "--help")
        assert r.returncode == 0
        assert "Example:" in r.stdout, args
    assert "Exit codes:" in budget("--help").stdout


def test_quiet_silences_everything_but_errors(tmp_path):
    target = tmp_path / "plan.json"
    loud = budget("allocate", PASTED, "--format", "json", "-o", str(target))
    assert loud.returncode == 0 and f"wrote the plan to {target}" in loud.stderr
    quiet = budget("-q", "allocate", PASTED, "--format", "json", "-o", str(target))
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""
    failed = budget("-q", "allocate", str(tmp_path / "missing.toml"))
    assert failed.returncode == 2 and "Error" in failed.stderr


def test_logging_options_work_after_the_command_too(tmp_path):
    target = tmp_path / "plan.json"
    quiet = budget("allocate", PASTED, "--format", "json", "-o", str(target), "-q")
    assert quiet.returncode == 0 and quiet.stderr == "" and target.exists()
    verbose = budget("allocate", PASTED, "--format", "json", "-vv")
    assert verbose.returncode == 0 and "DEBUG " in verbose.stderr
    assert json.loads(verbose.stdout)["status"] == "optimal"
    nested = budget("cache", "info", "-q")  # a group's subcommands take them as well
    assert nested.returncode == 0 and nested.stderr == ""


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_runs_list_show_and_export(fmt, tmp_path):
    ledger = str(tmp_path / "q1.sqlite")
    rec = budget("allocate", PASTED, "--record", "--ledger", ledger, "--format", "json")
    assert rec.returncode == 0 and json.loads(rec.stdout)["status"] == "optimal"
    assert f"recorded the plan of record as run 1 in {ledger}" in rec.stderr
    listed = budget("runs", "--ledger", ledger, "--format", fmt)
    assert listed.returncode == 0, listed.stderr
    out = parse(fmt, listed.stdout)
    if fmt == "json":
        assert [r["id"] for r in out] == [1] and out[0]["kind"] == "plan"
    shown = budget("runs", "show", "1", "--ledger", ledger, "--format", "json" if fmt == "json" else "table")
    assert shown.returncode == 0
    if fmt == "json":
        d = json.loads(shown.stdout)
        assert len(d["plan_rows"]) == 9 and d["result"]["status"] == "optimal"
    exported = budget("runs", "export", "--ledger", ledger)
    rows = parse("csv", exported.stdout)
    assert rows[0][:3] == ["run", "kind", "scenario"] and len(rows) == 1 + 9


def test_a_missing_or_corrupted_ledger_exits_3_untouched(tmp_path):
    r = budget("runs", "--ledger", str(tmp_path / "none.sqlite"))
    assert r.returncode == 3 and "no such ledger" in r.stderr and r.stdout == ""
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a ledger" * 50)
    for args in (["runs", "--ledger", str(bad)], ["allocate", PASTED, "--record", "--ledger", str(bad)]):
        r = budget(*args)
        assert r.returncode == 3 and "not a readable ledger" in r.stderr and r.stdout == ""
        no_traceback(r.stderr)
    assert bad.read_bytes() == b"not a ledger" * 50


@pytest.mark.slow
def test_budget_fit_then_allocate_fits_once(tmp_path):
    """`budget fit SCENARIO.toml` fills the cache the plan reads: one fit, not two."""
    shutil.copy(HISTORY, tmp_path / "history.csv")
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        '[budget]\ntotal = 10_000_000\n[history]\npath = "history.csv"\nbootstrap = 0\nholdout = 500\n',
        encoding="utf-8")
    env = {**os.environ, "BUDGET_CACHE_DIR": str(tmp_path / "cache")}
    run = lambda *a: subprocess.run([BUDGET, *a], capture_output=True, text=True, env=env)  # noqa: E731
    fitted = run("fit", str(scenario), "--format", "json")
    assert fitted.returncode == 0, fitted.stderr
    assert "fitting 9 channels on 156 weekly periods" in fitted.stderr
    # A holdout longer than the history allows is said, in the report too, never silently dropped.
    assert "holdout of 500 periods ignored" in fitted.stderr
    assert any("holdout of 500 periods ignored" in w for w in json.loads(fitted.stdout)["warnings"])
    planned = run("allocate", str(scenario), "--format", "json")
    assert planned.returncode == 0, planned.stderr
    assert "using the cached fit" in planned.stderr and "fitting 9 channels" not in planned.stderr
    assert any("holdout of 500 periods ignored" in w for w in json.loads(planned.stdout)["warnings"])
    assert len(list((tmp_path / "cache").glob("fit-*.json"))) == 1


def test_rebalance_month_by_month_as_a_scheduler_runs_it(tmp_path):
    """Record, month 1, month 2, a re-run (idempotent), --dry-run, --force, --fail-on-drift."""
    import sqlite3

    ledger = str(tmp_path / "q1.sqlite")
    r = budget("rebalance", MONTHLY, "--actuals", ACTUALS, "--ledger", ledger)
    assert r.returncode == 3 and "record the plan of record first" in r.stderr and r.stdout == ""
    assert budget("allocate", MONTHLY, "--record", "--ledger", ledger).returncode == 0
    m1 = budget("rebalance", MONTHLY, "--actuals", ACTUALS, "--as-of", "2027-01", "--ledger", ledger,
                "--format", "json")
    assert m1.returncode == 0, m1.stderr
    d1 = json.loads(m1.stdout)
    assert d1["as_of"] == "2027-01" and d1["periods_remaining"] == ["2027-02", "2027-03"]
    assert "recorded the rebalance as of 2027-01 as run 2" in m1.stderr
    m2 = budget("rebalance", MONTHLY, "--actuals", ACTUALS, "--ledger", ledger, "--format", "json")
    assert m2.returncode == 0, m2.stderr
    d2 = json.loads(m2.stdout)
    assert d2["as_of"] == "2027-02"
    assert any(s["kind"] == "transfer" and s["from"] == "popup_stores" for s in d2["suggestions"])
    assert {(d["kind"], d["channel"]) for d in d2["drift"]} >= {("return", "popup_stores")}
    b = d2["budget"]
    spent = b["spent_to_date"] + sum(c["spend"] for p in d2["periods"] for c in p["channels"]) + b["reserve"]
    assert round(spent, 2) == b["total"]
    again = budget("rebalance", MONTHLY, "--actuals", ACTUALS, "--ledger", ledger, "--format", "json")
    assert again.returncode == 0 and json.loads(again.stdout) == d2 and "already run 3" in again.stderr
    # A mistyped --as-of is refused even with a recorded run to print (it printed that run, exit 0).
    typo = budget("rebalance", MONTHLY, "--actuals", ACTUALS, "--ledger", ledger, "--as-of", "2027-1")
    assert typo.returncode == 3 and "--as-of 2027-1: no actuals for it" in typo.stderr and typo.stdout == ""
    assert "did you mean '2027-01'" in typo.stderr or "did you mean '2027-02'" in typo.stderr
    dry = budget("rebalance", MONTHLY, "--actuals", ACTUALS, "--ledger", ledger, "--dry-run", "--format", "csv")
    assert dry.returncode == 0 and "nothing recorded" in dry.stderr
    parse("csv", dry.stdout)
    drift = budget("rebalance", MONTHLY, "--actuals", ACTUALS, "--ledger", ledger, "--fail-on-drift")
    assert drift.returncode == 5 and "drift flagged" in drift.stderr and "Suggestions:" in drift.stdout
    forced = budget("rebalance", MONTHLY, "--actuals", ACTUALS, "--ledger", ledger, "--force")
    assert forced.returncode == 0 and "as run 4" in forced.stderr
    shown = json.loads(budget("runs", "show", "4", "--ledger", ledger, "--format", "json").stdout)
    assert len(shown["actuals"]) == 8 and shown["suggestions"] and shown["drift"]
    assert "Suggestions:" in budget("runs", "show", "4", "--ledger", ledger).stdout
    db = sqlite3.connect(ledger)
    rows = db.execute("SELECT id, kind, as_of, superseded_by FROM runs ORDER BY id").fetchall()
    assert rows == [(1, "plan", "", None), (2, "rebalance", "2027-01", None), (3, "rebalance", "2027-02", 4),
                    (4, "rebalance", "2027-02", None)]
    assert db.execute("SELECT count(*) FROM drift_flags WHERE run_id = 4").fetchone()[0] >= 1
    db.close()


def test_the_monthly_job_closes_the_quarter_with_exit_0(tmp_path):
    """The third month's actuals leave nothing to re-plan: the job closes the horizon (spend and
    return against the plan of record, drift) with exit 0 (5 with --fail-on-drift), and records it,
    instead of asking for a person every quarter (it exited 3)."""
    ledger = str(tmp_path / "q1.sqlite")
    assert budget("allocate", MONTHLY, "--record", "--ledger", ledger).returncode == 0
    text = Path(ACTUALS).read_text(encoding="utf-8")
    march = [line.replace("2027-02", "2027-03", 1) for line in text.splitlines() if line.startswith("2027-02")]
    actuals = tmp_path / "q1_actuals.csv"
    actuals.write_text(text.rstrip("\n") + "\n" + "\n".join(march) + "\n", encoding="utf-8")
    r = budget("rebalance", MONTHLY, "--actuals", str(actuals), "--ledger", ledger, "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["status"] == "closed" and d["periods_remaining"] == [] and d["suggestions"] == []
    assert d["periods_done"] == ["2027-01", "2027-02", "2027-03"]
    b, e = d["budget"], d["end_of_horizon"]
    assert round(b["spent_to_date"] + b["reserve"], 2) == b["total"]  # what is left (or overspent) is the reserve
    assert b["spent_to_date"] == round(sum(v["actual_spend"] for v in d["variance"]), 2)
    assert e["return_to_date"] == round(sum(v["actual_return"] for v in d["variance"]), 2)
    assert e["change_vs_recorded"] == round(e["return_to_date"] + e["return_to_come_of_spend_to_date"]
                                            - e["recorded_expected_return"], 2)
    assert "recorded the rebalance as of 2027-03" in r.stderr
    table = budget("rebalance", MONTHLY, "--actuals", str(actuals), "--ledger", ledger)
    assert table.returncode == 0 and "Close of the horizon: recorded expected return" in table.stdout
    assert "to re-plan: none (the horizon is closed)" in table.stdout
    drift = budget("rebalance", MONTHLY, "--actuals", str(actuals), "--ledger", ledger, "--fail-on-drift")
    assert drift.returncode == 5 and "drift flagged" in drift.stderr


def test_rebalance_bad_actuals_exit_3_and_leave_the_ledger_alone(tmp_path):
    ledger = tmp_path / "q1.sqlite"
    assert budget("allocate", MONTHLY, "--record", "--ledger", str(ledger)).returncode == 0
    before = ledger.read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text("period,channel,spend,return\n2027-01,douyin,abc,1\n2027-07,douyin,5,1\n2027-01,tiktok,5,1\n")
    r = budget("rebalance", MONTHLY, "--actuals", str(bad), "--ledger", str(ledger), "--format", "json")
    assert r.returncode == 3 and r.stdout == ""
    no_traceback(r.stderr)
    assert "3 problem(s)" in r.stderr and "row 2" in r.stderr and "tiktok" in r.stderr and "2027-07" in r.stderr
    assert ledger.read_bytes() == before


def test_rebalance_on_fitted_weekly_curves_flags_a_kpi_outside_its_band(tmp_path):
    """Curves fitted from history: carryover from the actual spend, and the KPI tested against the
    forecast P10–P90 for that spend (a KPI far below it is drift: exit 5 with --fail-on-drift)."""
    ledger = str(tmp_path / "w.sqlite")
    rec = budget("allocate", WEEKLY, "--record", "--ledger", ledger, "--format", "json")
    assert rec.returncode == 0, rec.stderr
    plan = json.loads(rec.stdout)
    names = [c["channel"] for c in plan["periods"][0]["channels"]]
    lines = ["date,revenue," + ",".join(names)]
    for p in plan["periods"][:4]:
        lines.append(p["period"] + ",1000000," + ",".join(str(c["spend"]) for c in p["channels"]))
    actuals = tmp_path / "actuals.csv"
    actuals.write_text("\n".join(lines) + "\n")
    r = budget("rebalance", WEEKLY, "--actuals", str(actuals), "--ledger", ledger, "--format", "json",
               "--fail-on-drift")
    assert r.returncode == 5, r.stderr
    recorded = json.loads(budget("runs", "--ledger", ledger, "--format", "json").stdout)
    assert [(x["kind"], x["exit_code"]) for x in recorded] == [("plan", 0), ("rebalance", 5)]  # as the job exited
    d = json.loads(r.stdout)
    assert d["as_of"] == plan["periods"][3]["period"] and len(d["periods_remaining"]) == 9
    assert [f["kind"] for f in d["drift"]] == ["kpi"] * 4 and "P10–P90" in d["drift_basis"]
    assert all(c["carryover"] > 0 for c in d["channels"] if c["channel"] in ("douyin", "wecom_community"))
    b = d["budget"]
    total = b["spent_to_date"] + sum(c["spend"] for p in d["periods"] for c in p["channels"]) + b["reserve"]
    assert round(total, 2) == b["total"]


def test_rebalance_killed_at_any_moment_or_run_twice_at_once_leaves_one_whole_record(tmp_path):
    """SIGKILL mid-run leaves the ledger as it was (integrity ok, no half run) and the output file
    whole or absent; two jobs at once record one run between them."""
    import sqlite3
    import time

    ledger = str(tmp_path / "q1.sqlite")
    assert budget("allocate", MONTHLY, "--record", "--ledger", ledger).returncode == 0
    out = tmp_path / "rebalance.json"
    args = [BUDGET, "rebalance", MONTHLY, "--actuals", ACTUALS, "--ledger", ledger, "--format", "json", "-o", str(out)]
    rng = random.Random(11)
    for _ in range(20):  # --force: every run writes (supersedes), so a kill can land mid-transaction
        p = subprocess.Popen(args + ["--force"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 1.2))
        p.send_signal(signal.SIGKILL)
        p.wait()
        db = sqlite3.connect(ledger)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        runs = db.execute("SELECT id FROM runs WHERE kind = 'rebalance' AND superseded_by IS NULL").fetchall()
        assert len(runs) <= 1
        for (run_id,) in runs:  # a recorded run is whole: its rows came with it
            assert db.execute("SELECT count(*) FROM actuals WHERE run_id = ?", (run_id,)).fetchone()[0] == 8
        db.close()
        if out.exists():
            json.loads(out.read_text(encoding="utf-8"))
    ledger = str(tmp_path / "fresh.sqlite")  # two jobs at once on a ledger with no rebalance yet
    assert budget("allocate", MONTHLY, "--record", "--ledger", ledger).returncode == 0
    args = [BUDGET, "rebalance", MONTHLY, "--actuals", ACTUALS, "--ledger", ledger, "--format", "json"]
    jobs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             text=True) for _ in range(2)]
    results = [(j.communicate(timeout=300), j.returncode) for j in jobs]
    results = [(rc, o, e) for (o, e), rc in results]
    assert [rc for rc, _, _ in results] == [0, 0], results
    assert json.loads(results[0][1]) == json.loads(results[1][1])
    db = sqlite3.connect(ledger)
    assert db.execute("SELECT count(*) FROM runs WHERE kind = 'rebalance'").fetchone()[0] == 1
    db.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_command_exits_130_and_writes_nothing(tmp_path, sig):
    """Ctrl-C (SIGINT) and a scheduler's SIGTERM mid-fit: exit 130 as the README's table says
    (click's own "Aborted!" exits 1, the code of an unexpected failure), no traceback, and no
    output file, whole or half."""
    out = tmp_path / "fit.json"
    env = {**os.environ, "BUDGET_CACHE_DIR": str(tmp_path / "cache")}
    # A job started in the background (a CI runner, `make test &`) inherits SIGINT ignored, and so
    # would the command: a small launcher gives it the disposition a terminal gives, as a user's
    # Ctrl-C finds it, then becomes the command (exec), with no fork of this JAX-threaded process.
    launch = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
              "os.execv(sys.argv[1], sys.argv[1:])")
    proc = subprocess.Popen([sys.executable, "-c", launch, BUDGET, "fit", HISTORY, "--method", "least-squares",
                             "--bootstrap", "200", "--no-cache", "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, env=env)
    seen = []
    while not any("fitting" in line for line in seen):  # the fit has started
        line = proc.stderr.readline()
        assert line, "".join(seen)
        seen.append(line)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(seen) + stderr
    assert "Aborted!" in stderr and stdout == ""
    no_traceback(stderr)
    assert not out.exists() and not list(tmp_path.glob("*.tmp*"))


def test_output_to_a_pipe_is_written_in_place_and_a_symlink_through(tmp_path):
    """-o on a FIFO (as on /dev/null) writes into it: a rename over it would replace the node for
    every other program. -o on a symlink replaces the file it points to and keeps the link."""
    fifo = tmp_path / "plan.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text(encoding="utf-8")))
    reader.start()
    r = budget("allocate", PASTED, "--format", "json", "-o", str(fifo))
    reader.join(timeout=60)
    assert r.returncode == 0, r.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert json.loads(got[0])["status"] == "optimal"

    real = tmp_path / "shared" / "q1.json"
    real.parent.mkdir()
    real.write_text("old", encoding="utf-8")
    link = tmp_path / "plan.json"
    link.symlink_to(real)
    r = budget("allocate", PASTED, "--format", "json", "-o", str(link))
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and json.loads(real.read_text(encoding="utf-8"))["status"] == "optimal"
    assert [p.name for p in real.parent.iterdir()] == ["q1.json"]  # no temporary left beside it


@pytest.mark.parametrize("name", ["-", "/dev/stdout"])
def test_output_dash_or_dev_stdout_is_stdout(name):
    r = budget("allocate", PASTED, "--format", "json", "-o", name)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "optimal"


def test_an_infinite_marginal_roi_is_a_blank_csv_cell_and_null_in_json(tmp_path):
    # All money in the reserve: channel a sits at 0 on a curve with s < 1, infinitely steep there.
    path = tmp_path / "s.toml"
    path.write_text('[budget]\ntotal = 1_000_000\n[reserve]\nmin_share = 1.0\n'
                    '[channels.a]\ncurrent = 0\ncurve = {kind = "hill", beta = 2e6, k = 4e5, s = 0.8}\n'
                    '[channels.b]\ncurrent = 0\ncurve = {kind = "hill", beta = 1e6, k = 4e5, s = 1.0}\n',
                    encoding="utf-8")
    r = budget("allocate", str(path), "--format", "csv")
    assert r.returncode == 0, r.stderr
    rows = {row["channel"]: row for row in csv.DictReader(io.StringIO(r.stdout))}
    assert rows["a"]["marginal_roi"] == "" and float(rows["b"]["marginal_roi"]) == pytest.approx(2.5)
    assert "inf" not in r.stdout
    r = budget("allocate", str(path), "--format", "json")
    a = next(c for c in json.loads(r.stdout)["channels"] if c["channel"] == "a")
    assert a["marginal_roi"] is None


@pytest.mark.parametrize("args", [("report", PASTED, "--out", ""), ("allocate", MONTHLY, "--record", "--ledger", ""),
                                  ("runs", "--ledger", " "),
                                  ("rebalance", MONTHLY, "--actuals", ACTUALS, "--ledger", "")])
def test_an_empty_folder_or_ledger_name_is_a_usage_error_not_the_default_place(args, tmp_path):
    """--out "$DIR" or --ledger "$LEDGER" with the variable unset wrote the report into the
    working folder and recorded into budget-ledger.sqlite."""
    r = budget(*args, cwd=tmp_path)
    assert r.returncode == 2 and "an empty name" in r.stderr and r.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--lp-file", "--plot"])
def test_a_side_output_to_stdout_is_refused_not_written_as_a_file_named_dash(option, tmp_path):
    r = budget("allocate", PASTED, "--format", "json", option, "-", cwd=tmp_path)
    assert r.returncode == 2 and "stdout carries the results" in r.stderr and r.stdout == ""
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("path, says", [("", "an empty file name"),
                                        ("/proc/plan.json", "cannot write in the folder /proc")])
def test_an_output_that_cannot_be_written_is_refused_before_any_work(path, says):
    """An unset variable (-o "$OUT") is not stdout; a folder no file can be made in (even as root,
    for whom permission bits do not count) is a usage error, not a failure after the plan."""
    if path.startswith("/proc") and not os.path.isdir("/proc"):
        pytest.skip("no /proc on this platform")
    r = budget("allocate", PASTED, "--format", "json", "-o", path)
    assert r.returncode == 2 and says in r.stderr and r.stdout == ""


def test_rebalance_replans_at_the_budget_the_plan_of_record_was_approved_at(tmp_path):
    """allocate --budget 6000000 --record, then the monthly job: it re-planned on the file's ¥5M,
    read the approved extra spend as drift, and called the rest infeasible (exit 4)."""
    ledger = str(tmp_path / "q1.sqlite")
    assert budget("allocate", MONTHLY, "--record", "--ledger", ledger, "--budget", "6000000").returncode == 0
    r = budget("rebalance", MONTHLY, "--actuals", ACTUALS, "--ledger", ledger, "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["budget"]["total"] == 6_000_000
    assert d["notes"][0] == ("re-planned at the plan of record's budget, ¥6,000,000 (run 1 was recorded at it); "
                             "the scenario file says ¥5,000,000")
    spent = d["budget"]["spent_to_date"] + sum(c["spend"] for p in d["periods"] for c in p["channels"])
    assert round(spent + d["budget"]["reserve"], 2) == 6_000_000
