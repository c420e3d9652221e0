"""Each constraint the planner can state is respected, and reported as binding by name."""

from dataclasses import replace

import numpy as np
import pytest

from models.curves import ExponentialCurve, HillCurve, PointsCurve
from optimizer import Channel, Group, Problem, optimize
from optimizer.exact import bisection_optimum


def base():
    chans = (
        Channel("douyin", HillCurve(3e6, 1e6, 0.8), group="content", current=1.2e6),
        Channel("xhs", ExponentialCurve(2e6, 8e5), group="content", current=8e5),
        Channel("scrm", HillCurve(1.5e6, 5e5, 1.0), group="tools", current=9e5),
        Channel("wecom", PointsCurve([0, 2e5, 5e5, 1e6, 2e6], [0, 6e5, 1.1e6, 1.5e6, 1.7e6]), group="private_domain", current=6e5),
        Channel("popup", HillCurve(1e6, 6e5, 0.9), group="offline", current=3e5),
    )
    return Problem(channels=chans, budget=4e6)


def names(alloc):
    return {b.name for b in alloc.binding}


def spend(alloc, ch):
    return alloc.spend_of(ch)


def test_group_bounds_hold_and_bind():
    p = replace(base(), groups=(Group("content", max_share=0.30), Group("offline", min_share=0.25)))
    a = optimize(p)
    content = spend(a, "douyin") + spend(a, "xhs")
    assert content <= 0.30 * 4e6 + 0.01
    assert spend(a, "popup") >= 0.25 * 4e6 - 0.01
    assert {"group_max[content]", "group_min[offline]"} <= names(a)


def test_locked_channel_keeps_its_spend():
    p = base()
    p = replace(p, channels=tuple(replace(c, locked=True) if c.name == "scrm" else c for c in p.channels))
    a = optimize(p)
    assert spend(a, "scrm") == 9e5
    assert "locked[scrm]" in names(a)


def test_max_change_limits_moves_both_ways():
    p = base()
    p = replace(p, channels=tuple(replace(c, max_change=0.1) for c in p.channels))
    a = optimize(p)
    for c in p.channels:
        assert c.current * 0.9 - 0.01 <= spend(a, c.name) <= c.current * 1.1 + 0.01
    assert any(n.startswith("max_change[") for n in names(a))


def test_absolute_and_share_bounds():
    p = base()
    p = replace(p, channels=tuple(
        replace(c, min_spend=7e5) if c.name == "popup" else replace(c, max_share=0.1) if c.name == "douyin" else c
        for c in p.channels))
    a = optimize(p)
    assert spend(a, "popup") >= 7e5
    assert spend(a, "douyin") <= 0.1 * 4e6 + 0.01
    assert {"min_spend[popup]", "max_share[douyin]"} <= names(a)


def test_reserve_minimum_and_maximum():
    a = optimize(replace(base(), reserve_min_share=0.2))
    assert a.reserve >= 0.2 * 4e6
    # A reserve of at most 1% means spending at least 3.96M; a marginal-ROI floor μ caps each
    # channel where its marginal return falls to μ. The caps, solved by hand: xhs 8e5·ln(2.5/μ),
    # scrm √(7.5e11/μ) − 5e5, wecom the end of its last segment with slope ≥ μ, douyin and popup
    # the root of the Hill derivative (brentq):
    #   μ = 0.5: 1,193,985 + 1,287,550 + 724,745 + 1,000,000 + 441,538 = 4,647,818 ≥ 3,960,000
    #            → feasible; and since the caps exceed the whole budget, max_return spends it all.
    #   μ = 1.0:   570,802 +   733,033 + 366,025 +   500,000 + 161,923 = 2,331,783 < 3,960,000
    #            → infeasible, and the diagnosis says so in money.
    p = replace(base(), reserve_min_share=0.0, reserve_max_share=0.01, marginal_roi_min=0.5)
    a = optimize(p)
    assert a.status == "optimal", a.diagnosis
    assert a.reserve <= 0.01 * 4e6
    assert a.reserve < 1.0  # no money left idle: rounding to cents at most
    b = optimize(replace(p, marginal_roi_min=1.0))
    assert b.status == "infeasible"
    assert any("¥2,331,783" in d and "¥3,960,000" in d and "[reserve_max]" in d for d in b.diagnosis), b.diagnosis


def test_roi_floor_holds_on_the_true_curves():
    free = optimize(base())
    floor = free.roi * 1.2
    a = optimize(replace(base(), roi_min=floor))
    assert a.expected_return >= floor * a.spend * (1 - 1e-12)
    assert "roi_min" in names(a)
    assert a.reserve > free.reserve  # money that would dilute ROI stays in reserve
    assert any("left unspent" in w for w in a.warnings)


def test_marginal_roi_floor_caps_each_channel():
    """marginal_roi_min = μ: no channel spends past where its next yuan returns less than μ, so
    the last money each funded channel gets returns at least μ. Here the floor, not the budget,
    stops every channel (money is left above the minimum reserve), so each sits at its cap: the
    last ¥100 returned at least ¥100·μ and the next ¥100 would return less."""
    mu = 1.2
    a = optimize(replace(base(), marginal_roi_min=mu))
    assert a.status == "optimal"
    assert a.reserve > 0.05 * 4e6 + 1.0
    chans = {c.name: c for c in base().channels}
    for c in a.channels:
        r = chans[c.channel].curve.response
        x = c.spend
        assert x > 0
        assert c.marginal_roi >= mu - 1e-6
        assert float(r(x) - r(x - 100.0)) >= 100.0 * mu * (1 - 1e-9), c.channel
        assert float(r(x + 100.0) - r(x)) < 100.0 * mu, c.channel
        cap = chans[c.channel].curve.spend_at_marginal(mu, 4e6)
        assert c.spend <= cap + 0.01


def test_max_profit_stops_where_marginal_return_pays_the_margin_back():
    margin = 0.8
    a = optimize(replace(base(), objective="max_profit", margin=margin))
    for c in a.channels:
        if c.channel == "wecom":
            continue  # tabulated: its marginal jumps at knots
        if c.spend > 1:
            assert c.marginal_roi * margin == pytest.approx(1.0, abs=0.01)
    # Spending more than the profit optimum would lower profit: compare with max_return.
    full = optimize(base())
    assert margin * a.expected_return - a.spend >= margin * full.expected_return - full.spend - 1e-6


def test_min_spend_reaches_target_with_least_money():
    target = 4.0e6
    a = optimize(replace(base(), objective="min_spend", target_return=target))
    assert a.expected_return >= target * (1 - 1e-9)
    assert "target_return" in names(a)
    # Exact check: with the plan's spend the best possible return just reaches the target, and
    # 0.1% less money cannot reach it.
    curves = [c.curve for c in base().channels]
    lo, hi = np.zeros(len(curves)), np.full(len(curves), 4e6 * 0.95)
    _, best = bisection_optimum(curves, lo, hi, a.spend)
    _, less = bisection_optimum(curves, lo, hi, a.spend * 0.999)
    assert best == pytest.approx(target, rel=1e-4)
    assert less < target


def test_points_curve_is_used_exactly():
    a = optimize(base())
    wecom = next(c for c in a.channels if c.channel == "wecom")
    curve = next(c.curve for c in base().channels if c.name == "wecom")
    assert wecom.expected_return == pytest.approx(float(curve.response(wecom.spend)))


@pytest.mark.parametrize("kw", [{}, {"roi_min": 1.3, "groups": (Group("content", min_share=0.45),)}])
def test_segment_lp_matches_the_hypograph_lp_solved_by_cbc(monkeypatch, tmp_path, kw):
    """HiGHS gets the curves as segment columns; the LP file and CBC (no HiGHS) the readable
    hypograph rows. Same optimum both ways, and the LP file solves to the plan's LP value."""
    import highspy
    import pulp

    problem = replace(base(), **kw)
    path = tmp_path / "plan.lp"
    fast = optimize(problem, lp_path=str(path))
    assert fast.status == "optimal" and fast.solver_name == "HiGHS"
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.readModel(str(path))
    h.run()
    assert "budget_total" in path.read_text()
    assert h.getInfo().objective_function_value == pytest.approx(fast.lp_return, rel=1e-7)
    monkeypatch.setattr(pulp.HiGHS, "available", lambda self: False)
    slow = optimize(problem)
    assert slow.solver_name != fast.solver_name
    assert fast.expected_return == pytest.approx(slow.expected_return, rel=1e-5)
    for ch in problem.channels:
        assert spend(fast, ch.name) == pytest.approx(spend(slow, ch.name), abs=1e-3 * problem.budget)


def test_a_reserve_of_the_whole_budget_has_no_price_rather_than_zero():
    """Channels held at 0 by a 100% reserve return a lot on their first yuan (a 99.9% reserve is
    priced 160): the budget row's dual of 0 is not the limit's worth."""
    from models.curves import HillCurve
    from optimizer import optimize
    from optimizer.problem import Channel, Problem

    chans = (Channel(name="a", curve=HillCurve(beta=2e6, k=4e5, s=1.0), current=0.0),
             Channel(name="b", curve=HillCurve(beta=1e6, k=4e5, s=1.0), current=0.0))
    whole = optimize(Problem(channels=chans, budget=1_000_000.0, reserve_min_share=1.0))
    bind = {b.name: b for b in whole.binding}
    assert whole.spend == 0 and bind["reserve_min"].shadow_price is None
    most = optimize(Problem(channels=chans, budget=1_000_000.0, reserve_min_share=0.999))
    assert {b.name: b for b in most.binding}["reserve_min"].shadow_price > 1
