"""The budget frontier (issue #12 §2): known answers from curves whose break-even has a closed form,
every level's plan within every constraint and to the cent, and a budget set as a share of the
forecast KPI.

Two exponential curves r_i(x) = β_i (1 − e^(−x/k_i)) have r_i'(x) = (β_i/k_i) e^(−x/k_i), so the
spend where the marginal return is λ is x_i(λ) = k_i ln(β_i / (k_i λ)). With a 5% minimum reserve
the plan at budget B spends 0.95 B, all of it (while λ > 0), at the common marginal
λ(B) = exp((Σ k_i ln(β_i/k_i) − 0.95 B) / Σ k_i), and its marginal falls to μ at the budget
B(μ) = Σ x_i(μ) / 0.95.
"""

from __future__ import annotations

import math
from dataclasses import replace
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.curves import ExponentialCurve
from optimizer import optimize
from optimizer.problem import Channel, Group, Problem, channel_bounds
from scenarios import example_path, load_scenario
from scenarios.errors import ScenarioError
from scenarios.frontier import budget_frontier, frontier_levels, parse_level, problem_at
from scenarios.schema import Scenario

BETA = (4_000_000.0, 3_000_000.0)
K = (1_000_000.0, 500_000.0)
RESERVE = 0.05


def spend_at(mu: float) -> float:
    """Σ x_i(μ): what the two channels spend where each one's next yuan returns μ."""
    return sum(k * math.log(b / (k * mu)) for b, k in zip(BETA, K))


def budget_at(mu: float) -> float:
    return spend_at(mu) / (1 - RESERVE)


def marginal_at(budget: float) -> float:
    """λ(B): the common marginal return of the plan at budget B."""
    return math.exp((sum(k * math.log(b / k) for b, k in zip(BETA, K)) - (1 - RESERVE) * budget) / sum(K))


def two_channels(budget: float = 2_000_000.0, **problem) -> Scenario:
    channels = tuple(Channel(name=n, curve=ExponentialCurve(beta=b, k=k), current=budget * 0.45)
                     for n, b, k in zip(("search", "social"), BETA, K))
    return Scenario(name="two", path=None,
                    problem=Problem(channels=channels, budget=budget, reserve_min_share=RESERVE, **problem))


def cents(v: float) -> int:
    return int(round(v * 100))


def assert_plan_within_constraints(scenario: Scenario, row: dict) -> None:
    """Money to the cent (Σ spend + reserve = budget in whole cents) and every limit kept."""
    p = problem_at(scenario, row["budget"])
    spends = {c["channel"]: c["spend"] for c in row["channels"]}
    assert all(cents(s) == round(s * 100, 6) for s in spends.values()), "spends are whole cents"
    assert sum(cents(s) for s in spends.values()) + cents(row["reserve"]) == cents(row["budget"])
    assert cents(row["spend"]) == sum(cents(s) for s in spends.values())
    assert row["reserve"] >= p.reserve_min - 0.005
    if p.reserve_max_share is not None:
        assert row["reserve"] <= p.reserve_max_share * p.budget + 0.005
    for ch in p.channels:
        lo, hi = channel_bounds(p, ch)
        assert lo.value - 0.01 <= spends[ch.name] <= hi.value + 0.01, (ch.name, lo, hi, spends[ch.name])
    for g in p.group_names:
        spec = p.group(g)
        total = sum(spends[c.name] for c in p.channels if c.group == g)
        if spec.min_share is not None:
            assert total >= spec.min_share * p.budget - 0.01, g
        if spec.max_share is not None:
            assert total <= spec.max_share * p.budget + 0.01, g
    if p.roi_min is not None and row["spend"] > 0:
        assert row["expected_return"] >= p.roi_min * row["spend"] * (1 - 1e-9)


# --------------------------------------------------------------------------------------------
# known answers


def test_break_even_is_where_the_curves_say():
    d = budget_frontier(two_channels(), frontier_levels(0.5, 2.0, 7))
    assert d["break_even"]["budget"] == pytest.approx(budget_at(1.0), abs=0.02)  # 2,402,288.52
    assert d["break_even"]["level"] == pytest.approx(budget_at(1.0) / 2_000_000.0, rel=1e-8)
    assert d["floor"] is None


def test_each_level_has_the_closed_form_return_and_marginal_roi():
    sc = two_channels()
    d = budget_frontier(sc, [0.5, 0.8, 1.0, 1.3, 1.7, 2.0])
    for row in d["levels"]:
        lam = marginal_at(row["budget"])
        x = [k * math.log(b / (k * lam)) for b, k in zip(BETA, K)]
        expected = sum(b * -math.expm1(-xi / k) for xi, b, k in zip(x, BETA, K))
        assert row["status"] == "optimal"
        assert row["marginal_roi"] == pytest.approx(lam, rel=1e-3)
        assert row["expected_return"] == pytest.approx(expected, rel=1e-6)
        assert row["spend"] == pytest.approx((1 - RESERVE) * row["budget"], abs=0.011)
        assert [c["spend"] for c in row["channels"]] == pytest.approx(x, rel=1e-3)


def test_return_rises_and_marginal_roi_falls_with_the_budget():
    d = budget_frontier(two_channels(), frontier_levels(0.25, 3.0, 12))
    returns = [r["expected_return"] for r in d["levels"]]
    marginals = [r["marginal_roi"] for r in d["levels"]]
    assert all(b > a for a, b in zip(returns, returns[1:]))
    assert all(b < a for a, b in zip(marginals, marginals[1:]))
    # break-even sits between the last level whose last yuan earns more than it costs and the next
    be = d["break_even"]["budget"]
    above = [r["budget"] for r in d["levels"] if r["marginal_roi"] > 1]
    below = [r["budget"] for r in d["levels"] if r["marginal_roi"] < 1]
    assert max(above) < be < min(below)


def test_the_floor_is_where_the_curves_say_and_past_it_money_stays_in_reserve():
    sc = two_channels(marginal_roi_min=1.5)
    d = budget_frontier(sc, [0.8, 1.0, 1.5, 2.0])
    assert d["floor"]["marginal_roi"] == 1.5
    assert d["floor"]["budget"] == pytest.approx(budget_at(1.5), abs=0.02)  # 2,087,548.16
    assert d["break_even"]["budget"] == pytest.approx(budget_at(1.0), abs=0.02)  # without the floor
    past = [r for r in d["levels"] if r["budget"] > budget_at(1.5)]
    assert len(past) == 3
    for r in past:
        assert r["spend"] == pytest.approx(spend_at(1.5), abs=1.0)
        assert r["marginal_roi"] == pytest.approx(1.5, rel=1e-3)
        assert r["reserve"] == pytest.approx(r["budget"] - spend_at(1.5), abs=1.0)
    # with a floor, the favoured level is where the floor is reached
    assert d["favoured"]["budget"] == pytest.approx(budget_at(1.5), abs=0.02)
    assert d["favoured"]["marginal_roi_threshold"] == 1.5


@pytest.mark.parametrize("band,expected", [
    ((0.5, 2.0), budget_at(1.0)),   # break-even inside the band: the favoured level
    ((1.5, 2.0), 3_000_000.0),      # even the band's bottom loses on its last yuan: the bottom
    ((0.25, 1.0), 2_000_000.0),     # the band's top still earns more than it costs: the top
])
def test_the_favoured_level_is_break_even_clipped_to_the_band(band, expected):
    d = budget_frontier(two_channels(), frontier_levels(*band, 4))
    fav = d["favoured"]
    assert fav["budget"] == pytest.approx(expected, abs=0.02)
    assert fav["marginal_roi_threshold"] == 1.0
    assert fav["plan"]["status"] == "optimal"
    assert fav["plan"]["budget"] == fav["budget"]
    assert fav["plan"]["marginal_roi"] == pytest.approx(marginal_at(fav["budget"]), rel=1e-3)
    word = {budget_at(1.0): "the last yuan returns 1 at about ¥2,402,289 (break-even)", 3_000_000.0: "the bottom of the band",
            2_000_000.0: "the top of the band"}[expected]
    assert word in fav["reason"]


def test_a_profit_objective_favours_the_budget_where_the_last_yuan_returns_one_over_the_margin():
    d = budget_frontier(two_channels(objective="max_profit", margin=0.5), frontier_levels(0.5, 2.0, 4))
    assert d["favoured"]["marginal_roi_threshold"] == 2.0
    assert d["favoured"]["budget"] == pytest.approx(budget_at(2.0), abs=0.02)


def test_change_limits_scale_with_the_budget_as_allocate_budget_scales_the_current_plan():
    """Break-even is found with the current plan scaled to each budget tried, as the levels are
    planned; the plan at the break-even budget then has marginal ROI 1."""
    path = example_path("pasted_curves.toml")
    sc = load_scenario(path)
    d = budget_frontier(sc, [1.0, 1.5])
    be = d["break_even"]["budget"]
    alloc = optimize(load_scenario(path, budget=round(be, 2)).problem)
    assert alloc.marginal_roi == pytest.approx(1.0, abs=0.01)


# --------------------------------------------------------------------------------------------
# every level is the plan `allocate --budget` makes, within every constraint, to the cent


@pytest.mark.parametrize("name", ["pasted_curves.toml", "roi_floor.toml"])
def test_every_level_respects_every_constraint_and_conserves_money(name):
    sc = load_scenario(example_path(name))
    d = budget_frontier(sc)
    assert len(d["levels"]) == 16
    assert [r["level"] for r in d["levels"]] == pytest.approx(list(np.linspace(0.5, 2.0, 16)))
    for row in d["levels"]:
        if row["status"] == "optimal":
            assert_plan_within_constraints(sc, row)
        else:
            assert row["diagnosis"] and row["spend"] is None
    if d["favoured"]["plan"]["status"] == "optimal":
        assert_plan_within_constraints(sc, d["favoured"]["plan"])


def test_a_level_is_the_plan_allocate_makes_at_that_budget():
    path = example_path("pasted_curves.toml")
    d = budget_frontier(load_scenario(path), [1.3])
    row = d["levels"][0]
    alloc = optimize(load_scenario(path, budget=13_000_000).problem)
    assert row["expected_return"] == alloc.to_dict()["expected_return"]
    assert [c["spend"] for c in row["channels"]] == [c.spend for c in alloc.channels]
    assert row["marginal_roi"] == alloc.marginal_roi


def test_return_rises_with_the_budget_on_the_pasted_example():
    d = budget_frontier(load_scenario(example_path("pasted_curves.toml")))
    returns = [r["expected_return"] for r in d["levels"]]
    assert all(b > a for a, b in zip(returns, returns[1:]))


def test_an_roi_floor_out_of_reach_leaves_levels_infeasible_with_their_diagnosis():
    d = budget_frontier(load_scenario(example_path("roi_floor.toml")), [1.0, 2.0])
    ok, bad = d["levels"]
    assert ok["status"] == "optimal" and ok["roi"] == pytest.approx(3.0, rel=1e-6)
    assert bad["status"] == "infeasible" and "roi_min" in " ".join(bad["diagnosis"])
    assert any(n.startswith("break-even leaves the overall ROI floor out") for n in d["notes"])


def test_when_no_plan_meets_every_constraint_at_break_even_the_favoured_level_is_the_best_plan_below_it():
    # break-even (~¥13.4M) leaves the ROI floor out, and at that budget the floor cannot be met;
    # below it the group minimums under the floor make more budget earn less past ¥9M
    d = budget_frontier(load_scenario(example_path("roi_floor.toml")), frontier_levels(0.8, 1.6, 9))
    assert 1.2e7 < d["break_even"]["budget"] < 1.4e7
    feasible = {r["budget"]: r["expected_return"] for r in d["levels"] if r["status"] == "optimal"}
    assert sorted(feasible) == [8e6, 9e6, 10e6, 11e6]
    fav = d["favoured"]
    assert fav["budget"] == max(feasible, key=feasible.get) == 9_000_000
    assert fav["plan"]["status"] == "optimal" and fav["plan"]["budget"] == 9_000_000
    assert "so the level below it whose plan returns the most, ¥9,000,000" in fav["reason"]


def test_when_a_larger_budget_earns_less_the_favoured_level_is_the_best_plan():
    # the band's top still earns more than it costs on its last yuan, but under the ROI floor the
    # group minimums make ¥10M and ¥11M return less than ¥9M
    d = budget_frontier(load_scenario(example_path("roi_floor.toml")), frontier_levels(0.5, 1.1, 7))
    returns = {r["budget"]: r["expected_return"] for r in d["levels"]}
    assert returns[9e6] > returns[10e6] > returns[11e6]
    fav = d["favoured"]
    assert fav["budget"] == 9_000_000 and fav["plan"]["expected_return"] == returns[9e6]
    assert "the top of the band" in fav["reason"]
    assert "but under the scenario's other limits the plan at ¥9,000,000 returns the most" in fav["reason"]


def test_one_break_even_is_reported_not_each_plans_own():
    """A plan's own "marginal ROI < 1 … break-even at about X" holds its current plan fixed; the
    frontier's scales it, so only the frontier's is reported."""
    d = budget_frontier(load_scenario(example_path("pasted_curves.toml")), [2.0])
    row = d["levels"][0]
    assert row["marginal_roi"] < 1
    assert not any("break-even" in w for w in row["warnings"])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(2, 6), bounds=st.booleans())
def test_property_monotone_return_and_money_to_the_cent(seed, n, bounds):
    from optimizer.exact import random_problem

    p = random_problem(seed, n, with_bounds=bounds)
    sc = Scenario(name="random", path=None, problem=p)
    d = budget_frontier(sc, [0.5, 0.8, 1.0, 1.4, 2.0])
    rows = [r for r in d["levels"] if r["status"] == "optimal"]
    for r in rows:
        assert_plan_within_constraints(sc, r)
    if not bounds:  # no minimums that grow with the budget: more money never earns less
        returns = [r["expected_return"] for r in rows]
        assert all(b >= a - 1e-6 * abs(a) for a, b in zip(returns, returns[1:]))


def test_group_limits_hold_at_every_level():
    channels = (Channel("a", ExponentialCurve(5e6, 1e6), group="g1"),
                Channel("b", ExponentialCurve(2e6, 2e5), group="g2"),
                Channel("c", ExponentialCurve(1e6, 3e5), group="g2"))
    p = Problem(channels=channels, budget=2e6, groups=(Group("g1", max_share=0.5), Group("g2", min_share=0.3)))
    sc = Scenario(name="groups", path=None, problem=p)
    d = budget_frontier(sc, frontier_levels(0.3, 3.0, 6))
    for r in d["levels"]:
        assert r["status"] == "optimal"
        assert_plan_within_constraints(sc, r)


# --------------------------------------------------------------------------------------------
# levels as typed, and what a frontier refuses


@pytest.mark.parametrize("text,value", [("15%", 0.15), ("0.5", 0.5), ("2", 2.0), (" 17.5% ", 0.175), (1.5, 1.5)])
def test_parse_level(text, value):
    assert parse_level(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["abc", "-1", "0", "0%", "inf", "nan", ""])
def test_parse_level_refuses(text):
    with pytest.raises(ValueError):
        parse_level(text)


def test_frontier_levels_include_both_ends():
    assert frontier_levels(0.5, 2.0, 16)[0] == 0.5 and frontier_levels(0.5, 2.0, 16)[-1] == 2.0
    assert frontier_levels(0.15, 0.2, 3) == pytest.approx([0.15, 0.175, 0.2])
    for args in [(0.5, 2.0, 1), (2.0, 0.5, 4), (0.0, 1.0, 4)]:
        with pytest.raises(ValueError):
            frontier_levels(*args)


def test_levels_of_the_forecast_need_fitted_curves():
    with pytest.raises(ScenarioError) as exc:
        budget_frontier(load_scenario(example_path("pasted_curves.toml")), [0.15, 0.2], of_forecast=True)
    assert "forecast" in exc.value.problems[0]


def test_a_level_beyond_what_can_be_planned_is_refused():
    with pytest.raises(ScenarioError) as exc:
        budget_frontier(two_channels(), [1.0, 1e8])
    assert "outside one cent" in exc.value.problems[0]


# --------------------------------------------------------------------------------------------
# [budget] share_of_forecast


SHARE_SCENARIO = """
name = "share"
[budget]
share_of_forecast = {share}
[current.group_shares]
content = 0.6
[history]
path = "history.csv"
periods = 13
bootstrap = 0
holdout = 0
[channels.search]
group = "performance"
current = 300_000
[channels.social]
group = "content"
"""


def write(folder, text, name="s.toml"):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_share_of_forecast_and_total_are_exclusive_and_need_a_history(tmp_path):
    base = example_path("pasted_curves.toml").read_text(encoding="utf-8")
    both = write(tmp_path, base.replace("total = 10_000_000", "total = 10_000_000\nshare_of_forecast = 0.18"))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(both)
    assert "budget: give either `total` or `share_of_forecast`, not both" in exc.value.problems
    alone = write(tmp_path, base.replace("total = 10_000_000", "share_of_forecast = 0.18"))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(alone)
    assert exc.value.problems == ["budget.share_of_forecast: needs curves fitted from history ([history] or [model]) "
                                  "to forecast the KPI it is a share of; give budget.total instead"]
    for bad, message in (("1.5", "must be ≤ 1, got 1.5"), ("0", "must be > 0, got 0"), ('"x"', "must be a finite")):
        path = write(tmp_path, base.replace("total = 10_000_000", f"share_of_forecast = {bad}"))
        with pytest.raises(ScenarioError) as exc:
            load_scenario(path)
        assert any(p.startswith("budget.share_of_forecast: " + message) for p in exc.value.problems), exc.value.problems
    neither = write(tmp_path, base.replace("total = 10_000_000", ""))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(neither)
    assert any(p.startswith("budget.total: required (or `share_of_forecast`") for p in exc.value.problems)


@pytest.fixture(scope="module")
def history_dir(tmp_path_factory):
    from models.generate import GeneratorParams, TrueChannel, generate_history

    channels = (
        TrueChannel("search", "performance", 0.2, 40_000, 0.9, 300_000, 45_000, 0.8, 0.6, 1.3),
        TrueChannel("social", "content", 0.4, 60_000, 0.8, 250_000, 40_000, 0.8, 0.6, 1.2),
    )
    params = GeneratorParams(channels=channels, start="2023-01-02", periods=60, level=1_000_000.0,
                             amplitude=50_000.0, noise=0.02,
                             peaks={"618": 0.0, "double11": 0.0, "spring_festival": 0.0, "member_day": 0.0})
    d = tmp_path_factory.mktemp("history")
    generate_history(params, seed=1).to_csv(d / "history.csv", index=False)
    return d


def load_quietly(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_scenario(path, **kwargs)


@pytest.mark.slow
def test_a_share_of_forecast_budget_is_that_share_of_the_forecast_kpi(history_dir):
    from models.forecast import horizon_baseline, horizon_dates, media_returns

    sc = load_quietly(write(history_dir, SHARE_SCENARIO.format(share=0.18)))
    model = sc.model
    # the KPI by hand: Prophet's baseline over the 13 weeks after the history (with the holidays
    # that fall in them), plus each channel's media return at its mean weekly spend from the
    # carryover history left
    baseline = float(np.sum(horizon_baseline(model, horizon_dates(model, 13))))
    media, _ = media_returns(model, {c: np.full(13, model.spend_stats_[c]["mean"]) for c in model.channels_})
    kpi = baseline + float(np.sum(media))
    assert sc.forecast_kpi["total"] == pytest.approx(kpi, rel=1e-12)
    assert sc.problem.budget == round(0.18 * kpi, 2)
    assert sc.share_of_forecast == 0.18
    current = {c.name: c.current for c in sc.problem.channels}
    assert current["social"] == pytest.approx(0.6 * sc.problem.budget)  # a group share of that budget
    assert current["search"] == 300_000
    assert any("0.18 × the KPI forecast over the 13 periods" in n for n in sc.notes)

    # --budget overrides it and scales the current plan like a written total
    over = load_quietly(write(history_dir, SHARE_SCENARIO.format(share=0.18)), budget=2 * sc.problem.budget)
    assert over.problem.budget == 2 * sc.problem.budget
    assert {c.name: c.current for c in over.problem.channels}["search"] == pytest.approx(600_000)

    # a sweep of shares of the forecast: level 18% is the scenario's own budget
    d = budget_frontier(sc, [0.15, 0.18, 0.20], of_forecast=True)
    assert d["basis"] == "forecast" and d["reference"] == pytest.approx(kpi, abs=0.01)
    assert [r["budget"] for r in d["levels"]] == [round(v * kpi, 2) for v in (0.15, 0.18, 0.20)]
    assert d["levels"][1]["budget"] == pytest.approx(sc.problem.budget, abs=0.011)
    assert d["scenario_level"] == pytest.approx(0.18)
    assert d["forecast_kpi"] == sc.forecast_kpi


@pytest.mark.parametrize("limits", ["locked", "groups", "reserve"])
def test_no_break_even_is_made_up_when_the_limits_set_the_spend(limits):
    """Every channel locked, group shares that add up to the budget less the reserve, or a 100%
    reserve: the spend of any budget is set by the limits. The sweep claimed a break-even at 1×
    (locked) or "not even the first yuan earns it" where channels returned 2.5 at the margin."""
    sc = two_channels()
    p = sc.problem
    if limits == "locked":
        p = replace(p, channels=tuple(replace(c, locked=True) for c in p.channels))
    elif limits == "groups":
        chans = (replace(p.channels[0], group="a"), replace(p.channels[1], group="b"))
        p = replace(p, channels=chans, groups=(Group("a", min_share=0.55, max_share=0.55),
                                               Group("b", min_share=0.40, max_share=0.40)))
    else:
        p = replace(p, reserve_min_share=1.0)
    d = budget_frontier(replace(sc, problem=p), [1.0, 1.5, 2.0])  # locked amounts do not fit half the budget
    assert d["break_even"] is None and d["floor"] is None
    fav = d["favoured"]
    assert fav["set_by_limits"] is True and fav["budget"] == p.budget and "no break-even" in fav["reason"]
    # The sweep itself still plans every level under those limits.
    assert all(r["status"] == "optimal" for r in d["levels"])
    # Free channels: the break-even the curves give, as before.
    free = budget_frontier(sc, [0.5, 1.0, 2.0])
    assert free["favoured"]["set_by_limits"] is False
    assert free["break_even"]["budget"] == pytest.approx(budget_at(1.0), rel=1e-6)
