"""Monthly rebalancing (scenarios/rebalance.py): the re-plan's known answer, money to the cent,
the ledger's idempotency, bad actuals, and the version-1 → 2 ledger upgrade."""

from __future__ import annotations

import json
import sqlite3

import pytest

from models.errors import HistoryError
from scenarios import load_scenario, render
from scenarios.errors import LedgerError, ScenarioError
from scenarios.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger, record_plan
from scenarios.plan import plan_scenario
from scenarios.rebalance import read_actuals, rebalance, run_rebalance

# Two channels on s = 1 Hill curves with the same k: per period r(x) = β x / (x + K), K = k / 3.
# With α = 0 and identical periods the remaining optimum spreads each channel evenly, and equal
# marginal returns give (x1 + K) / (x2 + K) = sqrt(β1 / β2) = 2.
SCENARIO = """
name = "two channels"
[budget]
total = 1_500_000
[reserve]
min_share = 0.05
[horizon]
periods = ["M1", "M2", "M3"]
[rebalance]
max_change = 1.0
[channels.a]
current = 700_000
curve = { kind = "hill", beta = 6_000_000, k = 300_000, s = 1.0 }
[channels.b]
current = 700_000
curve = { kind = "hill", beta = 1_500_000, k = 300_000, s = 1.0 }
"""


@pytest.fixture()
def setup(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(SCENARIO)
    sc = load_scenario(path)
    plan = plan_scenario(sc)
    por = json.loads(render.allocation_json(plan.allocation, sc, plan.extra))
    return tmp_path, path, sc, por


def _actuals(folder, text, name="actuals.csv"):
    p = folder / name
    p.write_text(text)
    return p


M1 = "period,channel,spend\nM1,a,300000\nM1,b,200000\n"


def test_known_answer_and_money_to_the_cent(setup):
    folder, _, sc, por = setup
    acts = read_actuals(_actuals(folder, M1), sc, ("M1", "M2", "M3"))
    out = rebalance(sc, acts, por)
    assert out["status"] == "ok" and out["periods_remaining"] == ["M2", "M3"]
    # remaining 1,500,000 − 500,000 − reserve 75,000 = 925,000: 462,500 a period;
    # x_b = (462,500 − 100,000) / 3, x_a = 462,500 − x_b.
    xb = (462_500 - 100_000) / 3
    for p in out["periods"]:
        spend = {c["channel"]: c["spend"] for c in p["channels"]}
        assert spend["b"] == pytest.approx(xb, rel=2e-3)
        assert spend["a"] == pytest.approx(462_500 - xb, rel=1e-3)
    b = out["budget"]
    replanned = sum(c["spend"] for p in out["periods"] for c in p["channels"])
    assert round(b["spent_to_date"] + replanned + b["reserve"], 2) == 1_500_000.00
    assert b["reserve"] == pytest.approx(75_000, abs=0.01)
    assert "not refitted" in out["model_update"] and "not rescaled" in out["model_update"]


def test_transfers_and_drift(setup):
    folder, _, sc, por = setup
    # b overspent and earned half of what its curve says; a as planned.
    planned = {c["channel"]: c["spend"] for c in por["periods"][0]["channels"]}
    a, b = planned["a"], planned["b"] * 1.5
    from models.curves import HillCurve

    ra = HillCurve(beta=2_000_000, k=100_000, s=1.0)(a)
    rb = 0.5 * HillCurve(beta=500_000, k=100_000, s=1.0)(b)
    acts = read_actuals(_actuals(folder, f"period,channel,spend,return\nM1,a,{a},{ra}\nM1,b,{b},{rb}\n"),
                        sc, ("M1", "M2", "M3"))
    out = rebalance(sc, acts, por)
    kinds = {(d["kind"], d["channel"]) for d in out["drift"]}
    assert kinds == {("spend", "b"), ("return", "b")}
    transfers = [s for s in out["suggestions"] if s["kind"] == "transfer"]
    assert transfers and all(s["from"] == "b" and s["to"] == "a" for s in transfers)
    assert all(s["amount"] % 1000 == 0 and s["expected_gain"] > 0 for s in transfers)
    assert transfers[0]["text"].startswith(f"move ¥{transfers[0]['amount']:,.0f} from b to a for M2–M3: +¥")
    level = [s for s in out["suggestions"] if s["kind"] == "level"]
    assert level and "over plan to date" in level[0]["text"]


def test_min_gain_suppresses_churn(setup):
    folder, path, _, por = setup
    path.write_text(SCENARIO.replace("max_change = 1.0", "max_change = 1.0\nmin_gain = 0.5"))
    sc = load_scenario(path)
    planned = {c["channel"]: c["spend"] for c in por["periods"][0]["channels"]}
    acts = read_actuals(_actuals(folder, f"period,channel,spend\nM1,a,{planned['a']}\nM1,b,{planned['b']}\n"),
                        sc, ("M1", "M2", "M3"))
    out = rebalance(sc, acts, por)
    assert not [s for s in out["suggestions"] if s["kind"] == "transfer"]
    assert out["drift"] == []


@pytest.mark.parametrize("text, message", [
    ("period,channel,spend\nM1,a,300000\nM1,zz,5\n", "unknown channel 'zz'"),
    ("period,channel,spend\nM9,a,300000\n", "period 'M9' is not in the plan"),
    ("period,channel,spend\nM1,a,-3\nM1,b,x\n", "spend must be a finite number ≥ 0"),
    ("period,channel,spend\nM1,a,1\nM1,a,2\n", "a in M1 appears twice"),
    ("period,channel,spend\nM2,a,1\n", "periods missing before M2: M1"),
    ("period,channel,spend,extra\nM1,a,1,2\n", "unknown column 'extra'"),
])
def test_bad_actuals_list_problems_and_record_nothing(setup, text, message):
    folder, path, sc, por = setup
    ledger = folder / "l.sqlite"
    record_plan(ledger, path, por, command="test")
    with pytest.raises(HistoryError) as err:
        run_rebalance(path, sc, _actuals(folder, text), ledger)
    assert any(message in p for p in err.value.problems), err.value.problems
    with Ledger(ledger) as book:
        assert [r.kind for r in book.runs()] == ["plan"]


def test_a_missing_row_or_column_is_a_problem_not_zero_spend(setup, tmp_path):
    """A channel left out of a period's actuals was read as spending nothing: a job then flagged
    it underspent and re-planned the money. Now it is a problem; --force takes it as 0, and says so."""
    from types import SimpleNamespace

    from models.history import HistorySpec

    folder, path, sc, por = setup
    missing = _actuals(folder, "period,channel,spend\nM1,a,300000\nM2,a,1\nM2,b,2\nM2,b,3\n")
    with pytest.raises(HistoryError) as err:
        read_actuals(missing, sc, ("M1", "M2", "M3"))
    assert [p for p in err.value.problems if "no row" in p] == [
        "period M1: no row for b: give each channel's spend, 0 where it spent nothing"]  # M2's b has rows
    acts = read_actuals(_actuals(folder, "period,channel,spend\nM1,a,300000\n"), sc, ("M1", "M2", "M3"), force=True)
    assert acts.spend[("M1", "b")] == 0.0 and any("no row for b" in n and "taken as 0" in n for n in acts.ignored)
    wide = SimpleNamespace(history_spec=HistorySpec(), problem=SimpleNamespace(
        channels=[SimpleNamespace(name="a"), SimpleNamespace(name="b")]))
    no_b = _actuals(tmp_path, "date,revenue,a\n2025-01-06,900,10\n")
    with pytest.raises(HistoryError) as err:
        read_actuals(no_b, wide, ("2025-01-06", "2025-01-13"))
    assert err.value.problems == ["no spend column for channel b: give its spend, 0 where it spent nothing"]


def test_force_skips_unknown_rows(setup):
    folder, _, sc, _ = setup
    acts = read_actuals(_actuals(folder, M1 + "M1,zz,5\n"), sc, ("M1", "M2", "M3"), force=True)
    assert acts.periods == ("M1",) and any("zz" in n for n in acts.ignored)


def test_ledger_idempotent_force_dry_run(setup):
    folder, path, sc, por = setup
    ledger = folder / "l.sqlite"
    with pytest.raises(LedgerError, match="no such ledger"):
        run_rebalance(path, sc, _actuals(folder, M1), ledger)
    Ledger(ledger).close()
    with pytest.raises(LedgerError, match="no plan of record"):
        run_rebalance(path, sc, _actuals(folder, M1), ledger)
    record_plan(ledger, path, por, command="test")
    m1 = _actuals(folder, M1)
    _, run, new = run_rebalance(path, sc, m1, ledger, dry_run=True)
    assert run is None and not new
    with Ledger(ledger) as book:
        assert len(book.runs()) == 1
    first, run1, new = run_rebalance(path, sc, m1, ledger)
    assert new and run1.as_of == "M1"
    again, run2, new = run_rebalance(path, sc, m1, ledger)
    assert not new and run2.id == run1.id and again == first
    # month 2, then a month-1 correction: refused unless --force, which supersedes
    m12 = _actuals(folder, M1 + "M2,a,300000\nM2,b,200000\n", "m12.csv")
    _, run3, new = run_rebalance(path, sc, m12, ledger)
    assert new and run3.as_of == "M2"
    fixed = _actuals(folder, M1.replace("200000", "210000") + "M2,a,300000\nM2,b,200000\n", "fixed.csv")
    with pytest.raises(LedgerError, match="change already recorded periods: b in M1"):
        run_rebalance(path, sc, fixed, ledger)
    _, run4, new = run_rebalance(path, sc, fixed, ledger, force=True)
    assert new
    with Ledger(ledger) as book:
        assert book.get(run3.id).superseded_by == run4.id
        assert len(book.runs()) == 4
        n = book.db.execute("SELECT count(*) FROM actuals WHERE run_id = ?", (run4.id,)).fetchone()[0]
        assert n == 4
        assert book.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_plan_of_record_for_other_periods(setup):
    folder, _, sc, por = setup
    acts = read_actuals(_actuals(folder, M1), sc, ("M1", "M2", "M3"))
    with pytest.raises(ScenarioError, match="plan of record is for periods"):
        rebalance(sc, acts, {**por, "periods": por["periods"][:2]})


def test_version_1_ledger_upgrades_in_place(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO runs (id, kind, command, scenario_name, scenario_hash, as_of, started, status, "
               "exit_code, version, result) VALUES (1, 'plan', 'c', 's', 'h', '', 't', 'optimal', 0, 'v', '{}')")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Ledger(path, create=False) as book:
        assert book.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        assert [r.id for r in book.runs()] == [1]
        tables = {r[0] for r in book.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"actuals", "suggestions", "drift_flags"} <= tables


def test_rebalance_table_is_validated_with_every_problem(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(SCENARIO.replace("max_change = 1.0", 'max_change = 1.5\nunit = 0\nlocked = ["zz"]\nmin_gian = 1'))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    text = "\n".join(err.value.problems)
    for needle in ("rebalance.max_change", "rebalance.unit: must be > 0", "rebalance.locked: unknown channel 'zz'",
                   "rebalance.min_gian: unknown key (did you mean `min_gain`?)"):
        assert needle in text, text
    path.write_text(SCENARIO.replace("[rebalance]\nmax_change = 1.0\n", ""))
    spec = load_scenario(path).rebalance
    assert (spec.unit, spec.max_change, spec.min_gain, spec.spend_tolerance) == (1000.0, 0.2, 0.002, 0.1)


def _with_carryover(monkeypatch, *, alpha: float, carryover: float) -> None:
    """Period plans of the test scenario as curves fitted from history make them: every channel
    with carryover ``alpha`` and a starting adstock ``carryover``."""
    from dataclasses import replace as dc_replace

    import scenarios.horizon as horizon

    real = horizon.period_problem

    def with_carryover(scenario, spec):
        p = real(scenario, spec)
        return dc_replace(p, channels=tuple(dc_replace(c, alpha=alpha, carryover=carryover) for c in p.channels))

    monkeypatch.setattr(horizon, "period_problem", with_carryover)


def test_carryover_starts_from_the_actual_spend(setup, monkeypatch):
    """With α > 0 (curves fitted from history) the remaining periods start from e = x + α e_prev."""
    folder, _, sc, por = setup
    _with_carryover(monkeypatch, alpha=0.5, carryover=40_000.0)
    acts = read_actuals(_actuals(folder, M1 + "M2,a,100000\nM2,b,50000\n"), sc, ("M1", "M2", "M3"))
    out = rebalance(sc, acts, por)
    carry = {c["channel"]: c["carryover"] for c in out["channels"]}
    # a: e1 = 300,000 + 0.5·40,000 = 320,000; e2 = 100,000 + 0.5·320,000 = 260,000
    assert carry["a"] == pytest.approx(260_000, abs=0.01)
    assert carry["b"] == pytest.approx(50_000 + 0.5 * (200_000 + 20_000), abs=0.01)
    b = out["budget"]
    replanned = sum(c["spend"] for p in out["periods"] for c in p["channels"])
    assert round(b["spent_to_date"] + replanned + b["reserve"], 2) == 1_500_000.00


def test_wide_actuals_read_like_the_history(tmp_path):
    """A scenario fitted from a wide history reads wide actuals: spend columns and the KPI."""
    from types import SimpleNamespace

    from models.history import HistorySpec

    sc = SimpleNamespace(history_spec=HistorySpec(), problem=SimpleNamespace(
        channels=[SimpleNamespace(name="a"), SimpleNamespace(name="b")]))
    periods = ("2025-01-06", "2025-01-13", "2025-01-20")
    ok = _actuals(tmp_path, "date,revenue,a,b\n2025-01-06,900,10,20\n2025/01/13,950,11,21\n")
    acts = read_actuals(ok, sc, periods)
    assert acts.periods == periods[:2] and acts.returns is None
    assert acts.spend[("2025-01-13", "b")] == 21 and acts.kpi == {"2025-01-06": 900, "2025-01-13": 950}
    bad = _actuals(tmp_path, "date,revenue,a,c\n2025-01-06,900,x,20\n2025-01-06,1,1,1\n", "bad.csv")
    with pytest.raises(HistoryError) as err:
        read_actuals(bad, sc, periods)
    text = "\n".join(err.value.problems)
    assert "unknown channel 'c'" in text and "row 2: a spend 'x' is not a number" in text
    assert "row 3: period 2025-01-06 appears twice" in text
    # A row whose period is not in the plan has its cells checked too: one run lists every problem.
    off = _actuals(tmp_path, "date,revenue,a,b\n2025-01-06,900,10,20\n2025-01-14,950,-3,21\n", "off.csv")
    with pytest.raises(HistoryError) as err:
        read_actuals(off, sc, periods)
    assert err.value.problems == ["row 3: period '2025-01-14' is not in the plan (2025-01-06, 2025-01-13, 2025-01-20); "
                                  "did you mean '2025-01-13'?", "row 3: a spend must be a finite number ≥ 0, got '-3'"]


def test_the_change_limit_binds_the_step_from_the_last_actual_period(tmp_path):
    """Pacing max_change 0.5: a channel that spent 100,000 in M1 may spend at most 150,000 in M2,
    however much the re-plan would like to give it (unlimited, M2 would get ~400,000)."""
    path = tmp_path / "paced.toml"
    path.write_text(SCENARIO.replace("[rebalance]", "[pacing]\nmax_change = 0.5\n[rebalance]"))
    sc = load_scenario(path)
    plan = plan_scenario(sc)
    por = json.loads(render.allocation_json(plan.allocation, sc, plan.extra))
    acts = read_actuals(_actuals(tmp_path, "period,channel,spend\nM1,a,100000\nM1,b,100000\n"), sc, ("M1", "M2", "M3"))
    out = rebalance(sc, acts, por)
    assert out["status"] == "ok"
    m2 = {c["channel"]: c["spend"] for c in out["periods"][0]["channels"]}
    assert 50_000 - 0.01 <= m2["a"] <= 150_000 + 0.01 and 50_000 - 0.01 <= m2["b"] <= 150_000 + 0.01
    assert m2["a"] == pytest.approx(150_000, abs=1.0)  # a, the better channel, is held back by the limit


def test_actuals_from_a_workbook_read_like_the_csv(setup):
    """Finance keeps actuals in Excel: the same rows in an .xlsx give the same rebalance."""
    from openpyxl import Workbook

    folder, _, sc, por = setup
    book = Workbook()
    for row in (line.split(",") for line in M1.strip().splitlines()):
        book.active.append([float(v) if v.isdigit() else v for v in row])
    book.save(folder / "actuals.xlsx")
    from_csv = rebalance(sc, read_actuals(_actuals(folder, M1), sc, ("M1", "M2", "M3")), por)
    from_xlsx = rebalance(sc, read_actuals(folder / "actuals.xlsx", sc, ("M1", "M2", "M3")), por)
    assert from_xlsx["periods"] == from_csv["periods"] and from_xlsx["budget"] == from_csv["budget"]


def test_actuals_on_plan_keep_the_recorded_return_with_carryover(setup, monkeypatch):
    """Spend to date as planned, no returns measured: with carryover the plan of record still expects
    what it recorded (the spend to date earns on into the remaining periods, which a re-plan's own
    returns leave out); it lost that part before (−7.5% on a Robyn-style history)."""
    folder, path, _, _ = setup
    _with_carryover(monkeypatch, alpha=0.6, carryover=150_000.0)
    sc = load_scenario(path)
    plan = plan_scenario(sc)
    por = json.loads(render.allocation_json(plan.allocation, sc, plan.extra))
    m1 = {c["channel"]: c["spend"] for c in por["periods"][0]["channels"]}
    text = "period,channel,spend\n" + "".join(f"M1,{c},{v}\n" for c, v in m1.items())
    out = rebalance(sc, read_actuals(_actuals(folder, text), sc, ("M1", "M2", "M3")), por)
    end = out["end_of_horizon"]
    assert end["return_to_come_of_spend_to_date"] > 0.01 * end["recorded_expected_return"]
    assert end["plan_of_record_expected_return"] == pytest.approx(end["recorded_expected_return"], abs=1.0)
    assert end["replan_expected_return"] >= end["plan_of_record_expected_return"] - 1.0
    assert end["change_vs_recorded"] == pytest.approx(end["replan_expected_return"] - end["recorded_expected_return"],
                                                      abs=0.02)


def test_a_drift_past_its_tolerance_is_never_printed_equal_to_it():
    """"overspent by 10%; tolerance 10%" for 10.4% read as a flag with no reason."""
    from scenarios.rebalance import _beyond

    assert _beyond(0.104, 0.10) == "10.4%" and _beyond(-0.1001, 0.10) == "10.01%"
    assert _beyond(0.25, 0.10) == "25%" and _beyond(-0.31, 0.30) == "31%"
