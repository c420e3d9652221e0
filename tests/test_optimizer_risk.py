"""Plans under curve uncertainty: the spread of a plan's return over bootstrap-like samples, and
the CVaR plan's trade-off against the risk-neutral plan (better bad case, lower mean)."""

import json

import numpy as np
import pytest

from models.curves import HillCurve
from optimizer import Channel, Problem, optimize
from optimizer import Pacing, PeriodChannel, PeriodProblem, optimize_periods, plan_violations
from optimizer.risk import cvar, optimize_cvar, optimize_cvar_periods, return_distribution


def risky_problem(S=60, seed=0):
    """A risky channel (high mean, wide spread), a safe one, and a middling one."""
    rng = np.random.default_rng(seed)
    channels = (
        Channel(name="douyin", curve=HillCurve(beta=1.2e6, k=3e5, s=0.9), group="public"),
        Channel(name="wecom", curve=HillCurve(beta=9e5, k=3e5, s=0.9), group="private"),
        Channel(name="popup", curve=HillCurve(beta=7e5, k=2e5, s=0.8), group="offline"),
    )
    problem = Problem(channels=channels, budget=1_000_000.0)
    risky = np.exp(rng.normal(0.0, 0.6, S))
    risky /= risky.mean()
    shared = np.exp(rng.normal(0.0, 0.05, S))
    samples = {
        "douyin": [HillCurve(beta=1.2e6 * m, k=3e5, s=0.9) for m in risky],
        "wecom": [HillCurve(beta=9e5 * m, k=3e5, s=0.9) for m in shared],
        "popup": [HillCurve(beta=7e5 * m, k=2e5 * m, s=0.8) for m in np.exp(rng.normal(0.0, 0.1, S))],
    }
    return problem, samples


def test_cvar_of_a_list():
    assert cvar([5.0, 1.0, 3.0, 2.0, 4.0], 0.4) == pytest.approx(1.5)
    assert cvar(np.arange(10.0), 0.25) == pytest.approx((0 + 1 + 0.5 * 2) / 2.5)


def test_cvar_plan_trades_mean_for_a_better_bad_case():
    problem, samples = risky_problem()
    plans = optimize_cvar(problem, samples, alpha=0.1)
    risk = plans.risk
    n, a = risk["neutral"], risk["averse"]
    # The plans differ: the averse plan moves money away from the risky channel.
    assert plans.averse.spend_of("douyin") < plans.neutral.spend_of("douyin") - 1_000
    assert a["cvar"] >= n["cvar"] * (1 - 1e-6)
    assert a["p10"] >= n["p10"]
    assert a["mean"] <= n["mean"] * (1 + 1e-6)
    # Both plans keep the problem's money rules.
    for plan in (plans.neutral, plans.averse):
        cents = [round(c.spend * 100) for c in plan.channels]
        assert sum(cents) + round(plan.reserve * 100) == round(problem.budget * 100)
        assert plan.reserve >= problem.reserve_min - 1e-9
    d = plans.to_dict()
    assert set(d) == {"neutral", "averse", "risk"}
    assert d["risk"]["measure"] == "cvar" and d["risk"]["alpha"] == 0.1
    assert set(d["risk"]["averse"]) == {"mean", "p10", "p50", "p90", "cvar"}
    json.dumps(d)


def test_cvar_with_alpha_one_is_the_mean_plan():
    problem, samples = risky_problem(S=30, seed=3)
    plans = optimize_cvar(problem, samples, alpha=1.0)
    for c_n, c_a in zip(plans.neutral.channels, plans.averse.channels):
        assert abs(c_n.spend - c_a.spend) <= 1e-3 * problem.budget


def test_identical_samples_give_a_point_mass_at_the_plans_return():
    problem, _ = risky_problem()
    plan = optimize(problem)
    same = {c.name: [c.curve] * 20 for c in problem.channels}
    dist = return_distribution(plan, same)
    for key in ("mean", "p10", "p50", "p90", "cvar"):
        assert dist[key] == pytest.approx(plan.expected_return, abs=0.005)  # money: to the cent


def test_distribution_of_a_period_plan_follows_the_recursion():
    chans = (
        PeriodChannel(name="a", curve=HillCurve(beta=5e4, k=1e4), alpha=0.5),
        PeriodChannel(name="b", curve=HillCurve(beta=4e4, k=1e4)),
    )
    problem = PeriodProblem(periods=("1", "2", "3"), channels=chans, budget=60_000.0)
    plan = optimize_periods(problem)
    scales = [0.8, 1.0, 1.2]
    samples = {c.name: [c.curve.scaled(m) for m in scales] for c in chans}
    dist = return_distribution(plan, samples, problem=problem)
    # Scaling every curve by m scales every return by m.
    assert dist["p50"] == pytest.approx(plan.expected_return, abs=0.005)
    assert dist["mean"] == pytest.approx(plan.expected_return, abs=0.005)
    assert dist["cvar"] == pytest.approx(0.8 * plan.expected_return, abs=0.005)


def risky_periods(S=40, seed=0, **kw):
    """Three weeks; a risky channel with carryover, a safe one, a middling one with a peak."""
    rng = np.random.default_rng(seed)
    chans = (
        PeriodChannel(name="douyin", curve=HillCurve(beta=4e5, k=1e5, s=0.9), alpha=0.4, carryover=2e4),
        PeriodChannel(name="wecom", curve=HillCurve(beta=3e5, k=1e5, s=0.9)),
        PeriodChannel(name="popup", curve=HillCurve(beta=2.5e5, k=7e4, s=0.8), efficiency=(0.8, 1.4, 1.0)),
    )
    problem = PeriodProblem(periods=("w1", "w2", "w3"), channels=chans, budget=600_000.0, **kw)
    risky = np.exp(rng.normal(0.0, 0.6, S))
    risky /= risky.mean()
    samples = {
        "douyin": [chans[0].curve.scaled(m) for m in risky],
        "wecom": [chans[1].curve.scaled(m) for m in np.exp(rng.normal(0.0, 0.05, S))],
        "popup": [chans[2].curve.scaled(m) for m in np.exp(rng.normal(0.0, 0.1, S))],
    }
    return problem, samples


@pytest.mark.parametrize("kw", [{}, {"count_after_horizon": True, "roi_min": 0.5,
                                     "pacing": Pacing(max_share=0.45, max_change=0.8)}])
def test_period_cvar_plan_trades_mean_for_a_better_bad_case(kw):
    problem, samples = risky_periods(**kw)
    plans = optimize_cvar_periods(problem, samples, alpha=0.1)
    n, a = plans.risk["neutral"], plans.risk["averse"]
    assert plans.averse.spend_of("douyin") < plans.neutral.spend_of("douyin") - 1_000
    assert a["cvar"] >= n["cvar"] * (1 - 1e-5)
    assert a["p10"] >= n["p10"]
    assert a["mean"] <= n["mean"] * (1 + 1e-5)
    for plan in (plans.neutral, plans.averse):
        assert plan.period_spend.shape == (3, 3)
        assert plan_violations(problem, plan.period_spend) == []
        assert round(plan.period_spend.sum() * 100) + round(plan.reserve * 100) == round(problem.budget * 100)
    json.dumps(plans.to_dict())


def test_period_mean_plan_on_identical_samples_is_the_point_plan():
    """With every sample equal to the point curves, the sample-mean plan is the point plan and
    its return spread is a point mass (the per-sample LP adds nothing and loses nothing)."""
    problem, _ = risky_periods()
    same = {c.name: [c.curve] * 5 for c in problem.channels}
    plans = optimize_cvar_periods(problem, same, alpha=0.2)
    point = optimize_periods(problem)
    assert plans.neutral.expected_return == pytest.approx(point.expected_return, rel=5e-5)
    assert plans.averse.expected_return == pytest.approx(point.expected_return, rel=5e-5)
    st = plans.risk["neutral"]
    assert st["p10"] == pytest.approx(st["p90"], rel=1e-12)
