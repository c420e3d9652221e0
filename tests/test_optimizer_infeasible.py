"""Infeasible plans are results with an explanation in money terms, one per conflict type."""

from dataclasses import replace

from models.curves import HillCurve
from optimizer import Channel, Group, Problem, optimize


def problem(**kw):
    chans = (
        Channel("douyin", HillCurve(3e6, 1e6, 0.8), group="content", current=4e5),
        Channel("xhs", HillCurve(2e6, 8e5, 0.9), group="content", current=3e5),
        Channel("scrm", HillCurve(1e6, 5e5, 1.0), group="tools", current=2e5),
    )
    return replace(Problem(channels=chans, budget=1_000_000), **kw)


def with_channels(p, **changes):
    return replace(p, channels=tuple(replace(c, **changes.get(c.name, {})) for c in p.channels))


def test_channel_minimums_exceed_budget_after_reserve():
    p = with_channels(problem(), douyin={"min_spend": 500_000}, xhs={"min_spend": 400_000}, scrm={"min_spend": 220_000})
    a = optimize(p)
    assert a.status == "infeasible"
    assert a.diagnosis == [
        "channel minimums sum to ¥1,120,000 but only ¥950,000 is left after the 5% reserve (¥50,000) "
        "[min_spend[douyin], min_spend[xhs], min_spend[scrm], reserve_min]"
    ]


def test_channel_min_above_its_own_max():
    p = with_channels(problem(), douyin={"min_spend": 500_000, "max_change": 0.2})
    a = optimize(p)
    assert a.status == "infeasible"
    assert a.diagnosis == [
        "channel douyin: its minimum ¥500,000 (min_spend ¥500,000) is above its maximum ¥480,000 "
        "(max_change ±20% of current ¥400,000) [min_spend[douyin], max_change[douyin]]"
    ]


def test_locked_above_share_cap():
    p = with_channels(problem(), douyin={"locked": True, "max_share": 0.3})
    a = optimize(p)
    assert a.status == "infeasible"
    assert "locked at ¥400,000" in a.diagnosis[0] and "max_share 30% = ¥300,000" in a.diagnosis[0]


def test_group_minimum_unreachable():
    p = replace(with_channels(problem(), scrm={"max_spend": 100_000}), groups=(Group("tools", min_share=0.2),))
    a = optimize(p)
    assert a.diagnosis == [
        "group tools: its minimum 20% (¥200,000) cannot be reached: its channels can take at most "
        "¥100,000 (capped by max_spend) [group_min[tools]]"
    ]


def test_group_maximum_below_channel_minimums():
    p = replace(with_channels(problem(), douyin={"min_spend": 300_000}, xhs={"min_spend": 200_000}),
                groups=(Group("content", max_share=0.4),))
    a = optimize(p)
    assert a.diagnosis == [
        "group content: its channel minimums sum to ¥500,000, above the group maximum 40% (¥400,000) [group_max[content]]"
    ]


def test_group_minimums_exceed_budget():
    p = replace(problem(), groups=(Group("content", min_share=0.7), Group("tools", min_share=0.3)))
    a = optimize(p)
    assert a.diagnosis == [
        "group minimums sum to ¥1,000,000 but only ¥950,000 is left after the 5% reserve [group_min, reserve_min]"
    ]


def test_roi_floor_unreachable_reports_best_reachable_roi():
    p = with_channels(problem(roi_min=8.0), douyin={"min_spend": 300_000}, xhs={"min_spend": 300_000})
    a = optimize(p)
    assert a.status == "infeasible"
    assert len(a.diagnosis) == 1
    msg = a.diagnosis[0]
    assert msg.startswith("overall ROI ≥ 8 is unreachable: the best ROI the other constraints allow is ")
    best = float(msg.split("allow is ")[1].split(" ")[0])
    # Best ROI with the minimums: spend only the minimums (average ROI falls as spend grows).
    ret = float(HillCurve(3e6, 1e6, 0.8).response(3e5) + HillCurve(2e6, 8e5, 0.9).response(3e5))
    assert best == round(ret / 6e5, 2)


def test_return_target_unreachable():
    p = problem(objective="min_spend", target_return=1e9)
    a = optimize(p)
    assert a.status == "infeasible"
    assert a.diagnosis[0].startswith("target return ¥1,000,000,000 is unreachable: the most the constraints allow is ¥")


def test_reserve_maximum_cannot_absorb_budget():
    p = with_channels(problem(reserve_min_share=0.0, reserve_max_share=0.1),
                      douyin={"max_spend": 100_000}, xhs={"max_spend": 100_000}, scrm={"max_spend": 100_000})
    a = optimize(p)
    assert a.diagnosis == [
        "channel maximums sum to ¥300,000 but at least ¥900,000 must be spent because the reserve may "
        "hold at most 10% [reserve_max]"
    ]


def test_infeasible_result_keeps_the_current_plan_summary():
    p = with_channels(problem(), douyin={"min_spend": 2_000_000})
    a = optimize(p)
    assert a.status == "infeasible" and a.channels == []
    assert a.current is not None and a.current.spend == 900_000


def test_elastic_model_names_conflicts_arithmetic_cannot_see():
    # Group caps hold spend to 60% while the reserve may keep at most 10%: only the LP sees it.
    p = replace(problem(reserve_min_share=0.0, reserve_max_share=0.1),
                groups=(Group("content", max_share=0.4), Group("tools", max_share=0.2)))
    a = optimize(p)
    assert a.status == "infeasible"
    assert len(a.diagnosis) == 1
    msg = a.diagnosis[0]
    # Which limits carry the slack is the solver's choice among equal optima; the conflict and its
    # size are not.
    names = set(msg[msg.rindex(" [") + 2 : -1].split(", "))
    assert names <= {"reserve_max", "group_max[content]", "group_max[tools]"}
    assert "¥300,000" in msg
    assert "reserve ≤ 10% (¥100,000)" in msg or "group" in msg
