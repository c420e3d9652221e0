"""The run ledger: idempotent records, supersede-never-delete, and a file that bad luck cannot
damage (killed jobs, two jobs at once, corrupted or newer files are refused untouched)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from scenarios import example_path
from scenarios.ledger import SCHEMA_VERSION, Ledger, LedgerError, plan_rows, record_plan

PASTED = str(example_path("pasted_curves.toml"))
BUDGET = shutil.which("budget", path=os.path.dirname(sys.executable)) or shutil.which("budget")


def plan(budget=1000.0, channels=("a", "b")) -> dict:
    share = budget * 0.95 / len(channels)
    return {"scenario": "Q1", "status": "optimal", "budget": budget,
            "channels": [{"channel": c, "spend": share, "expected_return": 2 * share} for c in channels]}


def record(ledger, p: dict, scenario_file, **kw):
    return record_plan(ledger, scenario_file, p, command="test", **kw)


@pytest.fixture
def scenario_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[budget]\ntotal = 1000\n', encoding="utf-8")
    return path


def test_recording_the_same_plan_twice_keeps_one_run(tmp_path, scenario_file):
    ledger = tmp_path / "l.sqlite"
    first, new1 = record(ledger, plan(), scenario_file)
    again, new2 = record(ledger, plan(), scenario_file)
    assert (new1, new2) == (True, False) and again.id == first.id
    with Ledger(ledger) as book:
        assert [r.id for r in book.runs()] == [first.id]
        assert book.plan_rows(first.id) == [
            {"period": "", "channel": "a", "spend": 475.0, "expected_return": 950.0},
            {"period": "", "channel": "b", "spend": 475.0, "expected_return": 950.0}]


def test_other_content_needs_force_and_supersedes_without_deleting(tmp_path, scenario_file):
    ledger = tmp_path / "l.sqlite"
    first, _ = record(ledger, plan(), scenario_file)
    with pytest.raises(LedgerError, match=r"run 1 already records the plan of 'Q1' from other content"):
        record(ledger, plan(2000.0), scenario_file, overrides={"budget": 2000.0})
    second, new = record(ledger, plan(2000.0), scenario_file, overrides={"budget": 2000.0}, force=True)
    assert new and second.id == first.id + 1
    with Ledger(ledger) as book:
        runs = book.runs()
        assert [(r.id, r.superseded_by) for r in runs] == [(1, 2), (2, None)]
        assert [r.id for r in book.runs(current_only=True)] == [2]
        assert book.get(1).result["budget"] == 1000.0  # the old record is still there, whole
        assert len(book.plan_rows(1)) == 2


def test_period_plans_record_one_row_per_period_and_channel():
    p = {"channels": [{"channel": "a"}], "periods": [
        {"period": "W1", "channels": [{"channel": "a", "spend": 1.0, "expected_return": 2.0}]},
        {"period": "W2", "channels": [{"channel": "a", "spend": 3.0, "expected_return": 4.0}]}]}
    assert plan_rows(p) == [("W1", "a", 1.0, 2.0), ("W2", "a", 3.0, 4.0)]


def test_a_newer_schema_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "l.sqlite"
    Ledger(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    with pytest.raises(LedgerError, match="written by a newer version of budget"):
        Ledger(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("content", [b"this is not sqlite at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000])
def test_a_corrupted_file_is_refused_and_left_untouched(tmp_path, content):
    path = tmp_path / "l.sqlite"
    path.write_bytes(content)
    with pytest.raises(LedgerError, match="not a readable ledger"):
        Ledger(path)
    assert path.read_bytes() == content


def test_another_sqlite_database_is_not_taken_for_a_ledger(tmp_path):
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers (id INTEGER)")
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="not a budget ledger"):
        Ledger(path)


def test_a_ledger_locked_by_another_job_is_a_clear_error_after_the_timeout(tmp_path, scenario_file):
    path = tmp_path / "l.sqlite"
    Ledger(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another job in the middle of its run
    try:
        with pytest.raises(LedgerError, match="locked by another job"):
            with Ledger(path, timeout=0.2) as book:
                book.record(kind="plan", command="t", scenario_name="Q1", scenario_path=None, scenario_hash="h",
                            data_hash=None, as_of="", status="optimal", exit_code=0, version="t", result={}, rows=[])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with Ledger(path) as book:
        assert book.runs() == []


def _integrity(path) -> None:
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        current = db.execute("SELECT kind, scenario_name, as_of, count(*) FROM runs WHERE superseded_by IS NULL "
                             "GROUP BY 1, 2, 3").fetchall()
        assert all(n == 1 for *_, n in current)
        for (run_id,) in db.execute("SELECT id FROM runs").fetchall():  # no run without its rows
            assert db.execute("SELECT count(*) FROM plan_rows WHERE run_id = ?", (run_id,)).fetchone()[0] == 9
    finally:
        db.close()


@pytest.mark.skipif(BUDGET is None, reason="the `budget` command is not installed (make test installs it)")
def test_jobs_killed_at_random_moments_leave_a_whole_ledger_and_whole_outputs(tmp_path):
    path = tmp_path / "l.sqlite"
    out = tmp_path / "plan.json"
    rng = random.Random(20)
    subprocess.run([BUDGET, "allocate", PASTED, "--record", "--ledger", str(path)], check=True, capture_output=True)
    for i in range(20):
        proc = subprocess.Popen([BUDGET, "allocate", PASTED, "--record", "--force", "--ledger", str(path),
                                 "--format", "json", "-o", str(out)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _integrity(path)
        if out.exists():
            assert json.loads(out.read_text(encoding="utf-8"))["status"] == "optimal"  # whole or absent
    r = subprocess.run([BUDGET, "allocate", PASTED, "--format", "json", "-o", str(out)], capture_output=True)
    assert r.returncode == 0
    assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []  # leftovers of killed runs cleaned


@pytest.mark.skipif(BUDGET is None, reason="the `budget` command is not installed (make test installs it)")
def test_two_jobs_at_once_record_one_plan(tmp_path):
    path = tmp_path / "l.sqlite"
    procs = [subprocess.Popen([BUDGET, "allocate", PASTED, "--record", "--ledger", str(path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert [code for code, _ in results] == [0, 0], results
    messages = [err for _, err in results]
    assert sum("recorded the plan of record as run 1" in m for m in messages) == 1
    assert sum("the plan of record is already run 1" in m for m in messages) == 1
    _integrity(path)
    with Ledger(path) as book:
        assert [r.id for r in book.runs()] == [1]
