"""`budget allocate --risk cvar:ALPHA` and `--risk guard:ALPHA`, and the return interval over curve samples."""

import csv
import io
import json

import pytest
from click.testing import CliRunner

from cli import main
from scenarios import example_path

QUARTERLY = str(example_path("quarterly.toml"))


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def n_samples():
    """How many curve samples the example's fit has (posterior draws for the default fit)."""
    from scenarios import load_scenario

    unc = load_scenario(QUARTERLY).model.uncertainty()
    assert unc["method"] == "posterior" and unc["samples"] >= 100
    return unc["samples"]


@pytest.mark.slow
def test_cvar_plan_trades_mean_for_the_bad_case(runner, n_samples):
    r = runner.invoke(main, ["allocate", QUARTERLY, "--risk", "cvar:0.1", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    risk = d["risk"]
    assert risk["measure"] == "cvar" and risk["alpha"] == 0.1 and risk["samples"] == n_samples
    neutral, averse = risk["neutral"], risk["averse"]
    assert averse["cvar"] >= neutral["cvar"] - 1e-6
    assert neutral["mean"] >= averse["mean"] - 1e-6
    for st in (neutral, averse):
        assert st["p10"] <= st["p50"] <= st["p90"]
    # The plan printed is the risk-averse one and keeps every money invariant.
    assert round(sum(c["spend"] for c in d["channels"]) * 100) + round(d["reserve"] * 100) == round(d["budget"] * 100)
    assert d["risk_neutral"]["status"] == "optimal"


@pytest.mark.slow
def test_plain_allocate_reports_the_return_interval(runner, n_samples):
    d = json.loads(runner.invoke(main, ["allocate", QUARTERLY, "--format", "json"]).stdout)
    ri = d["return_interval"]
    assert ri["samples"] == n_samples and ri["p10"] <= ri["p50"] <= ri["p90"]
    assert ri["p10"] <= d["expected_return"] * 1.05


def test_risk_needs_samples_and_a_valid_spec(runner):
    r = runner.invoke(main, ["allocate", str(example_path("pasted_curves.toml")), "--risk", "cvar:0.1"])
    assert r.exit_code == 3 and "risk: needs curve samples" in r.stderr
    r = runner.invoke(main, ["allocate", str(example_path("pasted_curves.toml")), "--risk", "var:2"])
    assert r.exit_code == 2 and "cvar:0.1" in r.stderr and "guard:0.1" in r.stderr
    r = runner.invoke(main, ["allocate", str(example_path("pasted_curves.toml")), "--risk", "guard:1.5"])
    assert r.exit_code == 2 and "guard:0.1" in r.stderr
    # The plans over samples are not the LP --lp-file would write: asking for both is refused, not ignored.
    r = runner.invoke(main, ["allocate", str(example_path("pasted_curves.toml")), "--risk", "cvar:0.1",
                             "--lp-file", "model.lp"])
    assert r.exit_code == 2 and "--lp-file" in r.stderr


def _guard_holds(d: dict) -> None:
    """What a guarded plan promises over the curve samples, and the money invariants."""
    rk = d["risk"]
    guarded, mean, current = rk["guarded"], rk["mean"], rk["reference"]
    slack = max(0.01, 1e-8 * current["mean"])
    # Its worst ALPHA share of samples gains on the current split on average, so its mean does too;
    # it never beats the unguarded best mean.
    assert guarded["cvar_gain"] >= -slack
    assert guarded["mean"] >= current["mean"] - slack
    assert guarded["mean"] <= mean["mean"] + slack
    for st in (guarded, mean, current):
        assert st["p10"] <= st["p50"] <= st["p90"]
    if rk["binds"]:
        assert mean["cvar_gain"] < -slack
    assert round(sum(c["spend"] for c in d["channels"]) * 100) + round(d["reserve"] * 100) == round(d["budget"] * 100)
    assert d["risk_neutral"]["status"] == "optimal"


@pytest.mark.slow
def test_guarded_plan_on_the_example_does_no_harm(runner, n_samples):
    r = runner.invoke(main, ["allocate", QUARTERLY, "--risk", "guard:0.1", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["risk"]["measure"] == "guard" and d["risk"]["alpha"] == 0.1 and d["risk"]["samples"] == n_samples
    assert d["risk"]["reference_feasible"]
    _guard_holds(d)
    # The guard stands in for the evidence limits, and says so.
    assert any("evidence limits are not applied" in n for n in d["notes"])
    assert not any(n.startswith("evidence:") for n in d["notes"])
    t = runner.invoke(main, ["allocate", QUARTERLY, "--risk", "guard:0.1"])
    assert t.exit_code == 0 and "gain, worst 10%" in t.stdout and "current plan" in t.stdout


@pytest.mark.slow
def test_guarded_period_plan_for_a_weekly_horizon(runner):
    """The guard on a [horizon] scenario is on the whole horizon's return, every week planned."""
    r = runner.invoke(main, ["allocate", str(example_path("weekly.toml")), "--risk", "guard:0.2", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["risk"]["measure"] == "guard" and d["risk"]["alpha"] == 0.2
    _guard_holds(d)
    assert len(d["periods"]) == 13 and len(d["risk_neutral"]["periods"]) == 13
    cents = sum(round(c["spend"] * 100) for p in d["periods"] for c in p["channels"])
    assert cents + round(d["reserve"] * 100) == round(d["budget"] * 100)


@pytest.fixture(scope="module")
def disputed(tmp_path_factory):
    """A scenario on a joint-model fit of a recovery-study history (5 channels, mixed spend) whose
    posterior disagrees about where money should go: its best mean plan loses to the current
    split in the worst tenth of the draws. The budget is 13 weeks at the history's run rate, a
    little off the current plan's total after rounding (the guard compares at the plan's spend)."""
    import warnings

    from models.errors import ConvergenceWarning
    from models.fit import MediaMixModel
    from models.history import history_from_frame
    from models.serialize import save_model
    from models.simulate import simulate, study_world

    sim = simulate(study_world(5, 2026), seed=2026 * 1000 + 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MediaMixModel(method="bayes", warmup=150, draws=150, holdout=0).fit(history_from_frame(sim.frame))
    folder = tmp_path_factory.mktemp("disputed")
    save_model(model, folder / "model.json")
    budget = round(13 * sum(sim.mean_spend.values()))
    path = folder / "scenario.toml"
    path.write_text(f'[budget]\ntotal = {budget}\n\n[reserve]\nmin_share = 0\n\n[model]\npath = "model.json"\n'
                    "periods = 13\n", encoding="utf-8")
    return str(path)


@pytest.mark.slow
def test_guard_holds_back_a_plan_the_posterior_disputes(runner, disputed):
    plain = json.loads(runner.invoke(main, ["allocate", disputed, "--ignore-evidence", "--format", "json"]).stdout)
    r = runner.invoke(main, ["allocate", disputed, "--risk", "guard:0.1", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["risk"]["binds"] and d["risk"]["reference_feasible"]
    _guard_holds(d)
    # The unguarded best mean is the plain plan on the posterior-mean curves (up to the sample LP's
    # refinement tolerance, 1e-4 of the return, and the envelope of S-shaped draws); the guard
    # moves less money away from the current split than it does.
    assert d["risk_neutral"]["expected_return"] == pytest.approx(plain["expected_return"], rel=1e-3)
    current = {c["channel"]: c["current_spend"] for c in d["channels"]}
    moved = lambda plan: sum(abs(c["spend"] - current[c["channel"]]) for c in plan["channels"])  # noqa: E731
    assert moved(d) < moved(plain)


def test_guard_needs_a_current_plan(runner, tmp_path):
    """Without the channels' current spend there is nothing to do no harm against."""
    lines = example_path("quarterly.toml").read_text(encoding="utf-8").splitlines()
    # current = 0 for every channel (left out, a fitted channel would keep its run rate)
    text = "\n".join("current = 0" if line.startswith("current =") else line for line in lines)
    assert text.count("current = 0\n") == sum(line.startswith("current =") for line in lines) > 0
    text = text.replace('path = "history_weekly.csv"', f'path = "{example_path("history_weekly.csv").as_posix()}"')
    path = tmp_path / "no_current.toml"
    path.write_text(text, encoding="utf-8")
    r = runner.invoke(main, ["allocate", str(path), "--risk", "guard:0.1"])
    assert r.exit_code == 3 and "guard compares the plan with the current one" in r.stderr


@pytest.mark.slow
def test_cvar_period_plan_for_a_weekly_horizon(runner):
    """`--risk` on a [horizon] scenario plans every week for the bad case of the whole horizon."""
    r = runner.invoke(main, ["allocate", str(example_path("weekly.toml")), "--risk", "cvar:0.1", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    neutral, averse = d["risk"]["neutral"], d["risk"]["averse"]
    assert averse["cvar"] >= neutral["cvar"] * (1 - 1e-5)
    assert neutral["mean"] >= averse["mean"] * (1 - 1e-5)
    assert len(d["periods"]) == 13 and len(d["risk_neutral"]["periods"]) == 13
    cents = sum(round(c["spend"] * 100) for p in d["periods"] for c in p["channels"])
    assert cents + round(d["reserve"] * 100) == round(d["budget"] * 100)
    t = runner.invoke(main, ["allocate", str(example_path("weekly.toml")), "--risk", "cvar:0.1"])
    assert t.exit_code == 0 and "Spend per period" in t.stdout and "risk-averse (best CVaR 0.1)" in t.stdout


@pytest.mark.slow
def test_a_scenario_can_ask_for_the_guard_itself(runner, disputed):
    """`risk = "guard:0.1"` in the file: every command that plans it plans as --risk would (a
    monthly job needs no flag), the plan says why, --risk overrides it, and the frontier plans each
    level as allocate --budget B does, over the samples."""
    from pathlib import Path

    guarded = Path(disputed).with_name("guarded.toml")
    guarded.write_text('name = "guarded"\nrisk = "guard:0.1"\n' + Path(disputed).read_text(encoding="utf-8"),
                       encoding="utf-8")
    flag = json.loads(runner.invoke(main, ["allocate", disputed, "--risk", "guard:0.1", "--format", "json"]).stdout)
    r = runner.invoke(main, ["allocate", str(guarded), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["risk"]["measure"] == "guard" and d["risk"]["alpha"] == 0.1 and d["risk"]["binds"]
    assert [c["spend"] for c in d["channels"]] == [c["spend"] for c in flag["channels"]]
    assert 'planned over the curve samples as the scenario\'s risk = "guard:0.1" asks' in d["notes"][1]
    cvar = json.loads(runner.invoke(main, ["allocate", str(guarded), "--risk", "cvar:0.2", "--format", "json"]).stdout)
    assert cvar["risk"]["measure"] == "cvar" and cvar["risk"]["alpha"] == 0.2
    assert not any("scenario's risk" in n for n in cvar["notes"])
    cmp = json.loads(runner.invoke(main, ["compare", disputed, str(guarded), "--format", "json"]).stdout)
    plain, held = cmp["scenarios"]
    assert {c: v["spend"] for c, v in held["channels"].items()} == {c["channel"]: c["spend"] for c in d["channels"]}
    assert (held["return_p10"], held["return_p90"]) == (d["risk"]["guarded"]["p10"], d["risk"]["guarded"]["p90"])
    assert any(abs(plain["channels"][c]["spend"] - v["spend"]) > 1 for c, v in held["channels"].items())
    fr = json.loads(runner.invoke(main, ["frontier", str(guarded), "--from", "0.5", "--to", "1", "--steps", "2",
                                         "--format", "json"]).stdout)
    assert any('planned over the curve samples as the scenario\'s risk = "guard:0.1" asks' in n for n in fr["notes"])
    at_1 = fr["levels"][1]
    assert at_1["budget"] == d["budget"]
    assert {c["channel"]: c["spend"] for c in at_1["channels"]} == {c["channel"]: c["spend"] for c in d["channels"]}
    half = json.loads(runner.invoke(main, ["allocate", str(guarded), "--budget", str(fr["levels"][0]["budget"]),
                                           "--format", "json"]).stdout)
    assert {c["channel"]: c["spend"] for c in fr["levels"][0]["channels"]} == \
        {c["channel"]: c["spend"] for c in half["channels"]}
    r = runner.invoke(main, ["allocate", str(guarded), "--lp-file", str(guarded.with_suffix(".lp"))])
    assert r.exit_code == 2 and "this scenario plans over curve samples" in r.stderr
    r = runner.invoke(main, ["report", str(guarded), "--out", str(guarded.with_name("report"))])
    assert r.exit_code == 0, r.stderr
    lead = guarded.with_name("report").joinpath("report.html").read_text(encoding="utf-8").split("<p class=lead>")[1]
    beats = round(100 * d["risk"]["guarded"]["beats_reference"])
    assert f"Planned to do no harm: in the worst 10% of the curve samples it still gains on the current split on " \
           f"average, and it beats it in {beats}% of them." in lead
    assert f"{d['expected_return']:,.0f}" in lead.split("</p>")[0]  # the guarded plan's return, not another's


def test_a_scenario_risk_setting_is_checked_where_it_is_written(runner, tmp_path):
    written = '[budget]\ntotal = 1e6\n[channels.a]\ncurrent = 5e5\ncurve = { kind = "hill", beta = 2e6, k = 4e5, s = 1.0 }\n'
    for risk, says in (('"guard:2"', "must look like cvar:0.1 or guard:0.1"), ("0.1", "got '0.1'"),
                       ('"median"', "must look like"), ('"guard:0.1"', "only curves fitted from history have")):
        path = tmp_path / "s.toml"
        path.write_text(f"risk = {risk}\n" + written, encoding="utf-8")
        r = runner.invoke(main, ["allocate", str(path)])
        assert r.exit_code == 3 and "  - risk: " in r.stderr and says in r.stderr, (risk, r.stderr)


@pytest.mark.slow
def test_rebalance_re_plans_a_fitted_scenario_as_allocate_plans_it(runner, disputed):
    """The monthly re-plan of fitted curves keeps the evidence limits allocate puts on poorly
    identified channels (it used to plan on the curves alone: a poor channel's total went to
    ¥0.85M against a band of ¥1.46–1.78M); its warnings (the curves', and the lift test for each
    channel held at its limit) reach its JSON, table and CSV, as a period plan's now do; and a
    scenario's risk = "guard:0.1" re-plans over the curve samples against the plan of record."""
    from pathlib import Path

    from scenarios import evidence as ev
    from scenarios import load_scenario

    folder = Path(disputed).parent
    text = Path(disputed).read_text(encoding="utf-8") + '\n[horizon]\nefficiency = "flat"\n\n[rebalance]\nmax_change = 1.0\n'
    path = folder / "rebalance.toml"
    path.write_text('name = "rebalanced"\n' + text, encoding="utf-8")
    ledger = str(folder / "rebalance.sqlite")
    rec = runner.invoke(main, ["allocate", str(path), "--record", "--ledger", ledger, "--format", "json"])
    assert rec.exit_code == 0, rec.stderr
    plan = json.loads(rec.stdout)
    held = [w for w in plan["warnings"] if w.startswith("evidence:")]
    assert held, plan["warnings"]  # a period plan held at an evidence limit says so, with the test
    # … and its binding limits say which limit holds the channel's total
    why = {b["detail"].rsplit("(", 1)[-1].rstrip(")") for b in plan["binding_constraints"] if "(evidence[" in b["detail"]}
    assert why == {f"evidence[{w.split(':')[1].strip()}]" for w in held}
    actuals = folder / "rebalance_actuals.csv"
    actuals.write_text("period,channel,spend\n" + "".join(
        f"{p['period']},{c['channel']},{c['spend']}\n" for p in plan["periods"][:4] for c in p["channels"]))
    args = ["rebalance", str(path), "--actuals", str(actuals), "--ledger", ledger, "--dry-run"]
    r = runner.invoke(main, args + ["--format", "json"])
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    sc = load_scenario(path)
    limited_problem, limited = ev.evidence_limits(sc, sc.problem)
    assert "poor" in limited.values()
    spent = {v["channel"]: v["actual_spend"] for v in d["variance"]}
    for c in limited_problem.channels:
        if c.name in limited:
            total = spent[c.name] + next(x["replan_remaining"] for x in d["channels"] if x["channel"] == c.name)
            lo, hi = c.evidence_range
            assert lo - 0.01 <= total <= hi + 0.01, (c.name, total, c.evidence_range)
    assert [w for w in d["warnings"] if w.startswith("evidence:")] == held
    assert any(w.startswith("curves: ") for w in d["warnings"])
    assert any(n.startswith("evidence: ") for n in d["notes"]) and "risk" not in d
    table = runner.invoke(main, args).stdout
    assert table.index("Warnings:") < table.index("Suggestions") and held[0] in table
    rows = list(csv.DictReader(io.StringIO(runner.invoke(main, args + ["--format", "csv"]).stdout)))
    assert [x["text"] for x in rows if x["section"] == "warning"] == d["warnings"]

    guarded = folder / "rebalance_guarded.toml"
    guarded.write_text('name = "rebalanced, guarded"\nrisk = "guard:0.1"\n' + text, encoding="utf-8")
    ledger_g = str(folder / "rebalance_guarded.sqlite")
    assert runner.invoke(main, ["allocate", str(guarded), "--record", "--ledger", ledger_g]).exit_code == 0
    g = runner.invoke(main, ["rebalance", str(guarded), "--actuals", str(actuals), "--ledger", ledger_g, "--dry-run",
                             "--format", "json"])
    assert g.exit_code == 0, g.stderr
    d = json.loads(g.stdout)
    rk = d["risk"]
    assert rk["measure"] == "guard" and rk["alpha"] == 0.1 and rk["reference_feasible"]
    slack = max(0.01, 1e-8 * rk["reference"]["mean"])
    assert rk["guarded"]["mean"] >= rk["reference"]["mean"] - slack
    assert rk["guarded"]["cvar_gain"] >= -slack or "concave envelopes" in rk["note"]
    assert any("re-planned over the curve samples as the scenario's risk = \"guard:0.1\"" in n for n in d["notes"])
    assert not any(n.startswith("evidence: ") for n in d["notes"])
    b = d["budget"]
    cents = sum(round(c["spend"] * 100) for p in d["periods"] for c in p["channels"])
    assert round(b["spent_to_date"] * 100) + cents + round(b["reserve"] * 100) == round(b["total"] * 100)
