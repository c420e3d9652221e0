"""`budget allocate --risk cvar:ALPHA` and the return interval over bootstrap curve samples."""

import json

import pytest
from click.testing import CliRunner

from cli import main
from scenarios import example_path

QUARTERLY = str(example_path("quarterly.toml"))


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.mark.slow
def test_cvar_plan_trades_mean_for_the_bad_case(runner):
    r = runner.invoke(main, ["allocate", QUARTERLY, "--risk", "cvar:0.1", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    risk = d["risk"]
    assert risk["measure"] == "cvar" and risk["alpha"] == 0.1 and risk["samples"] == 100
    neutral, averse = risk["neutral"], risk["averse"]
    assert averse["cvar"] >= neutral["cvar"] - 1e-6
    assert neutral["mean"] >= averse["mean"] - 1e-6
    for st in (neutral, averse):
        assert st["p10"] <= st["p50"] <= st["p90"]
    # The plan printed is the risk-averse one and keeps every money invariant.
    assert round(sum(c["spend"] for c in d["channels"]) * 100) + round(d["reserve"] * 100) == round(d["budget"] * 100)
    assert d["risk_neutral"]["status"] == "optimal"


@pytest.mark.slow
def test_plain_allocate_reports_the_return_interval(runner):
    d = json.loads(runner.invoke(main, ["allocate", QUARTERLY, "--format", "json"]).stdout)
    ri = d["return_interval"]
    assert ri["samples"] == 100 and ri["p10"] <= ri["p50"] <= ri["p90"]
    assert ri["p10"] <= d["expected_return"] * 1.05


def test_risk_needs_samples_and_a_valid_spec(runner):
    r = runner.invoke(main, ["allocate", str(example_path("pasted_curves.toml")), "--risk", "cvar:0.1"])
    assert r.exit_code == 3 and "risk: needs curve samples" in r.stderr
    r = runner.invoke(main, ["allocate", str(example_path("pasted_curves.toml")), "--risk", "var:2"])
    assert r.exit_code == 2 and "cvar:0.1" in r.stderr


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
