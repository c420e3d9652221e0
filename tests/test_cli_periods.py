"""Period-by-period plans from scenario files: [horizon], [pacing], per-channel period keys."""

import csv
import io
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from scenarios import ScenarioError, example_path, load_scenario

CONCAVE = """
name = "months"
[budget]
total = 3_000_000
[channels.a]
group = "content"
current = 1_000_000
curve = { kind = "hill", beta = 6e6, k = 1.5e6, s = 0.8 }
[channels.b]
group = "tools"
current = 1_000_000
curve = { kind = "exponential", beta = 3e6, k = 8e5 }
[channels.c]
group = "offline"
current = 850_000
curve = { kind = "points", points = [[0, 0], [5e5, 1.2e6], [1e6, 2e6], [2e6, 2.6e6]] }
"""


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def write(tmp_path, text):
    p = tmp_path / "s.toml"
    p.write_text(text, encoding="utf-8")
    return str(p)


def run_json(runner, *args):
    r = runner.invoke(main, ["allocate", *args, "--format", "json"])
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_flat_months_equal_the_single_period_plan_split_evenly(runner, tmp_path):
    single = run_json(runner, write(tmp_path, CONCAVE))
    months = run_json(runner, write(tmp_path, CONCAVE + '[horizon]\nperiods = ["2027-01", "2027-02", "2027-03"]\n'))
    assert [p["period"] for p in months["periods"]] == ["2027-01", "2027-02", "2027-03"]
    for s, m in zip(single["channels"], months["channels"]):
        assert m["spend"] == pytest.approx(s["spend"], rel=1e-3, abs=50)
        per = [p["channels"][months["channels"].index(m)]["spend"] for p in months["periods"]]
        assert max(per) - min(per) <= 1e-3 * max(s["spend"], 1.0) + 0.05
    assert months["expected_return"] == pytest.approx(single["expected_return"], rel=1e-4)


def test_efficiency_peak_pulls_spend_into_that_month(runner, tmp_path):
    text = CONCAVE.replace('curve = { kind = "hill"', 'efficiency = [1.0, 1.6, 1.0]\ncurve = { kind = "hill"')
    d = run_json(runner, write(tmp_path, text + '[horizon]\nperiods = ["Jan", "Feb", "Mar"]\n'))
    a = [p["channels"][0]["spend"] for p in d["periods"]]
    assert a[1] > 1.2 * a[0] and a[1] > 1.2 * a[2]


def test_pacing_caps_and_money_to_the_cent(runner, tmp_path):
    text = CONCAVE + '[horizon]\nperiods = ["Jan", "Feb", "Mar"]\n[pacing]\ncap = [500_000, 2_000_000, 2_000_000]\n'
    d = run_json(runner, write(tmp_path, text))
    assert d["periods"][0]["spend"] <= 500_000 + 0.01
    cents = sum(round(c["spend"] * 100) for p in d["periods"] for c in p["channels"])
    assert cents + round(d["reserve"] * 100) == round(d["budget"] * 100)


def test_period_keys_are_validated(tmp_path):
    bad = CONCAVE.replace('curve = { kind = "hill"', 'efficiency = [1.0, 1.2]\ncurve = { kind = "hill"')
    bad += '[horizon]\nperiods = ["Jan", "Feb", "Mar"]\nefficiency = "seasonal"\n[pacing]\nmax_share = 1.5\n'
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, bad))
    assert err.value.problems == [
        'horizon.efficiency: "seasonal" needs curves fitted from history ([history] or [model])',
        "pacing.max_share: must be ≤ 1, got 1.5",
        "channels.a.efficiency: needs one value per period (3), got 2",
    ]
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, CONCAVE + "[pacing]\ncap = 1\n"))
    assert err.value.problems == ["pacing: only meaningful with a [horizon] table (a period-by-period plan)"]


@pytest.mark.slow
def test_weekly_example_on_fitted_curves(runner):
    d = run_json(runner, str(example_path("weekly.toml")))
    assert len(d["periods"]) == 13 and d["count_after_horizon"] is True
    spends = np.array([[c["spend"] for c in p["channels"]] for p in d["periods"]])  # periods × channels
    assert spends.sum() == pytest.approx(d["spend"], abs=0.05)
    assert (spends.sum(axis=1) <= 0.12 * d["budget"] + 0.01).all()
    prev, nxt = spends[:-1], spends[1:]
    assert (np.abs(nxt - prev) <= 0.6 * prev + 0.02).all()
    assert d["expected_return"] >= d["current"]["expected_return"]
    r = runner.invoke(main, ["allocate", str(example_path("weekly.toml")), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 13 * 9 and list(rows[0]) == ["period", "channel", "spend", "effective_spend", "expected_return"]
    t = runner.invoke(main, ["allocate", str(example_path("weekly.toml"))])
    assert "Spend per period" in t.stdout and "counted in the expected return" in t.stdout


def test_exact_mode_plans_s_curves_period_by_period(runner, tmp_path):
    # The pasted-curves example (an S-shaped pop-up curve) over three months: without --exact the
    # plan is made on the S-curve's concave envelope and says so; with it, the MILP plans the true
    # curve, says nothing of an envelope, and its return on the true curves is no lower.
    path = tmp_path / "months.toml"
    path.write_text(example_path("pasted_curves.toml").read_text(encoding="utf-8")
                    + '\n[horizon]\nperiods = ["M1", "M2", "M3"]\n', encoding="utf-8")
    envelope = json.loads(runner.invoke(main, ["allocate", str(path), "--format", "json"]).output)
    result = runner.invoke(main, ["allocate", str(path), "--format", "json", "--exact"])
    assert result.exit_code == 0, result.output
    exact = json.loads(result.output)
    assert exact["solver"]["mode"] == "exact"
    assert any("concave envelope" in w for w in envelope["warnings"])
    assert not any("concave envelope" in w for w in exact["warnings"])
    assert sum(c["spend"] for c in exact["channels"]) + exact["reserve"] == pytest.approx(exact["budget"], abs=0.005)
    assert exact["expected_return"] >= envelope["expected_return"] * (1 - 2 * exact["solver"]["gap_bound"])


def test_the_weekly_examples_horizon_sees_the_spring_festival_in_it():
    """The period planner's seasonal efficiency is the baseline forecast over the horizon with the
    holidays that fall in it: the bundled history's festival weeks sell more, and the next
    quarter's festival (29 January 2025) must show, not just the history's own festivals."""
    import warnings

    import pandas as pd

    from models.forecast import horizon_dates
    from scenarios.horizon import seasonal_efficiency

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_scenario(example_path("weekly.toml")).model
    dates = horizon_dates(model, 13)
    efficiency = seasonal_efficiency(model, dates)
    festival = int(np.searchsorted(dates.values, pd.Timestamp("2025-01-29").to_datetime64(), side="right") - 1)
    assert dates[festival] == pd.Timestamp("2025-01-27")
    others = np.delete(efficiency, festival)
    assert efficiency[festival] > 1.05 and efficiency[festival] > others.max() + 0.05, efficiency
    assert efficiency.mean() == pytest.approx(1.0)


@pytest.mark.slow
def test_a_horizon_on_fitted_curves_has_the_fits_periods_and_its_cap_in_each(runner, tmp_path):
    """Month labels on the weekly history planned the quarter's budget into three weeks (ROI 1.05
    where the quarter's plan makes 3.3), two weeks of it at four times the largest weekly spend
    the history saw; now the length is a problem, and the cap holds in every period."""
    text = example_path("weekly.toml").read_text(encoding="utf-8")
    text = text.replace('path = "history_weekly.csv"', f'path = "{example_path("history_weekly.csv").as_posix()}"')
    assert "[horizon]" in text
    months = re.sub(r"\[horizon\]\n", '[horizon]\nperiods = ["2025-01", "2025-02", "2025-03"]\n', text, count=1)
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, months))
    assert err.value.problems == [
        "horizon.periods: 3 period(s), but the budget covers 13 weekly periods ([history] periods = 13); on curves "
        "fitted from a weekly history each horizon period is one week: plan 13 periods, or set [history] periods = 3 "
        "for a budget of 3 weeks"]
    # Twice the budget on the 13 weeks: the fitted channels' caps bind, in each week.
    sc = load_scenario(write(tmp_path, text))
    d = run_json(runner, str(write(tmp_path, text)), "--budget", str(3 * sc.problem.budget))
    history = sc.model.spend_stats_
    assert any("extrapolation cap" in n for n in d["notes"])
    for p in d["periods"]:
        for c in p["channels"]:
            assert c["spend"] <= 1.5 * history[c["channel"]]["max"] + 0.01, (p["period"], c)
    most = max(c["spend"] / (1.5 * history[c["channel"]]["max"]) for p in d["periods"] for c in p["channels"])
    assert most > 0.999  # the cap is what binds somewhere


def test_a_period_plan_past_break_even_says_so(runner):
    """The same file without [horizon] warned at ¥50M that the last ¥39M loses money; the period
    plan said nothing and had no marginal ROI."""
    monthly = str(example_path("monthly.toml"))
    d = run_json(runner, monthly, "--budget", "50000000")
    best = max(c["marginal_roi"] for c in d["channels"])
    assert d["marginal_roi"] == pytest.approx(best) and best < 1
    assert d["warnings"][0].startswith(f"at this budget one more yuan returns at most {best:.2f} in any channel and "
                                       "period (marginal ROI < 1)")
    # At the file's own budget every channel still earns more than its cost: no warning.
    d = run_json(runner, monthly)
    assert d["marginal_roi"] > 1 and not any("marginal ROI < 1" in w for w in d["warnings"])
