"""Scenario validation of held-out bad inputs (issue #8): a channel's group that no [groups] table
declares, amounts and ratios too large (or a budget too small) to plan, and files that start
with a UTF-8 byte-order mark. Each problem is named with its key path, all of them at once."""

import pytest

from scenarios import ScenarioError, load_scenario
from scenarios.plan import plan_scenario
from scenarios.schema import MAX_MONEY, MAX_RATIO, MIN_BUDGET

BASE = """
[budget]
total = 1_000_000
[channels.douyin]
group = "g1"
current = 400_000
curve = { kind = "hill", beta = 2e6, k = 5e5, s = 0.8 }
[channels.scrm]
group = "g2"
current = 500_000
curve = { kind = "exponential", beta = 1e6, k = 3e5 }
"""
LIMITED_GROUPS = """
[groups.g1]
max_share = 0.3
[groups.g2]
label = "tools"
"""
LABEL_GROUPS = """
[groups.g1]
label = "content"
[groups.g2]
label = "tools"
"""
MONEY_WHY = "ten trillion: larger amounts cannot be planned to the cent"
RATIO_WHY = "a ratio above a million is not a plausible plan"
CENT_WHY = "one cent, the unit plans are rounded to"


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def problems_of(tmp_path, text, **kw):
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, text), **kw)
    return err.value.problems


# --- a channel's group that no [groups] table declares ----------------------------------------

def test_a_typo_of_a_group_with_limits_is_an_error_with_did_you_mean(tmp_path):
    text = BASE.replace('group = "g1"', 'group = "g11"') + LIMITED_GROUPS
    assert problems_of(tmp_path, text) == ['channels.douyin.group: unknown group "g11" (did you mean "g1"?)']


def test_an_undeclared_group_without_a_close_name_lists_the_declared_ones(tmp_path):
    text = BASE.replace('group = "g2"', 'group = "tools"') + LIMITED_GROUPS
    assert problems_of(tmp_path, text) == [
        'channels.scrm.group: unknown group "tools" (declared: g1, g2; add a [groups.tools] table for a new group)'
    ]


def test_a_limit_on_a_group_that_fails_validation_still_makes_typos_errors(tmp_path):
    # The limits of g1 are invalid, but the file meant to limit it: a typo must not slip through.
    text = BASE.replace('group = "g1"', 'group = "g11"') + LIMITED_GROUPS.replace("0.3", "1.3")
    assert problems_of(tmp_path, text) == [
        "groups.g1.max_share: must be ≤ 1, got 1.3",
        'channels.douyin.group: unknown group "g11" (did you mean "g1"?)',
    ]


def test_with_only_labelled_groups_a_typo_is_a_warning_that_reaches_the_plan(tmp_path):
    text = BASE.replace('group = "g1"', 'group = "g11"') + LABEL_GROUPS
    sc = load_scenario(write(tmp_path, text))
    warning = 'channels.douyin.group: unknown group "g11" (did you mean "g1"?); it is planned as a group of its own'
    assert sc.warnings == [warning]
    assert {c.name: c.group for c in sc.problem.channels} == {"douyin": "g11", "scrm": "g2"}
    alloc = plan_scenario(sc).allocation
    assert alloc.feasible
    assert alloc.warnings[0] == warning
    assert alloc.to_dict()["warnings"][0] == warning


def test_scenarios_without_groups_use_group_names_as_free_labels(tmp_path):
    sc = load_scenario(write(tmp_path, BASE))
    assert sc.warnings == []
    assert [c.group for c in sc.problem.channels] == ["g1", "g2"]


def test_a_channel_without_a_group_stays_in_the_default_group_without_limits(tmp_path):
    """Unchanged meaning: no `group` key (or the default name, "other") is the group "other",
    which has no limits unless a [groups.other] table gives some."""
    text = BASE.replace('group = "g1"\n', "").replace('group = "g2"', 'group = "other"') + LIMITED_GROUPS
    sc = load_scenario(write(tmp_path, text))
    assert sc.warnings == []
    assert [c.group for c in sc.problem.channels] == ["other", "other"]
    assert [g.name for g in sc.problem.groups] == ["g1", "g2"]
    assert sc.problem.group("other").min_share is None and sc.problem.group("other").max_share is None


def test_the_declared_group_limit_holds_once_the_typo_is_fixed(tmp_path):
    """What the typo used to cost: g1's max_share silently did not apply to douyin."""
    sc = load_scenario(write(tmp_path, BASE + LIMITED_GROUPS))
    alloc = plan_scenario(sc).allocation
    assert alloc.feasible
    assert alloc.spend_of("douyin") <= 0.3 * 1_000_000 + 0.01
    assert "group_max[g1]" in {b.name for b in alloc.binding}


# --- magnitudes ----------------------------------------------------------------------------------

def test_documented_limits():
    assert (MAX_MONEY, MIN_BUDGET, MAX_RATIO) == (1e13, 0.01, 1e6)
    assert MAX_MONEY * 100 < 2 ** 53  # every cent up to MAX_MONEY is a distinct double


@pytest.mark.parametrize("total,problem", [
    ("1e300", f"budget.total: must be ≤ 1e+13 ({MONEY_WHY}), got 1e+300"),
    ("1e20", f"budget.total: must be ≤ 1e+13 ({MONEY_WHY}), got 1e+20"),
    ("10_000_000_000_001", f"budget.total: must be ≤ 1e+13 ({MONEY_WHY}), got 1e+13"),
    ("1e-9", f"budget.total: must be ≥ 0.01 ({CENT_WHY}), got 1e-09"),
    ("0.009", f"budget.total: must be ≥ 0.01 ({CENT_WHY}), got 0.009"),
    ("0", "budget.total: must be > 0, got 0"),
])
def test_budget_out_of_range_is_named_with_the_reason(tmp_path, total, problem):
    assert problems_of(tmp_path, BASE.replace("1_000_000", total, 1)) == [problem]


def test_the_largest_and_smallest_budgets_are_planned(tmp_path):
    for total, spend in ((MAX_MONEY, 0.95 * MAX_MONEY), (MIN_BUDGET, 0.0)):
        sc = load_scenario(write(tmp_path, BASE.replace("1_000_000", repr(total), 1)))
        alloc = plan_scenario(sc).allocation
        assert alloc.status == "optimal"
        assert alloc.spend == pytest.approx(spend, abs=0.01)
        assert round((alloc.spend + alloc.reserve) * 100) == round(total * 100)


@pytest.mark.parametrize("budget,problem", [
    (1e300, f"budget (override): must be ≤ 1e+13 ({MONEY_WHY}), got 1e+300"),
    (1e-9, f"budget (override): must be ≥ 0.01 ({CENT_WHY}), got 1e-09"),
    (-5.0, "budget (override): must be > 0, got -5"),
    (float("nan"), "budget (override): must be a finite number, got nan"),
])
def test_budget_override_gets_the_same_checks(tmp_path, budget, problem):
    assert problems_of(tmp_path, BASE, budget=budget) == [problem]


def test_budget_override_at_the_limit_is_accepted(tmp_path):
    sc = load_scenario(write(tmp_path, BASE), budget=MAX_MONEY)
    assert sc.problem.budget == MAX_MONEY


def test_every_amount_and_ratio_is_bounded_and_all_are_listed_at_once(tmp_path):
    text = 'objective = "max_profit"\nmargin = 1e300\ntarget_return = 2e13\n' + BASE.replace(
        "current = 400_000", "current = 1e14\nmin_spend = 1e300\nmax_spend = 1e19\nmax_change = 1e7"
    ) + "[constraints]\nroi_min = 1e300\nmarginal_roi_min = 2e6\n"
    assert problems_of(tmp_path, text) == [
        f"margin: must be ≤ 1e+06 ({RATIO_WHY}), got 1e+300",
        f"target_return: must be ≤ 1e+13 ({MONEY_WHY}), got 2e+13",
        f"constraints.roi_min: must be ≤ 1e+06 ({RATIO_WHY}), got 1e+300",
        f"constraints.marginal_roi_min: must be ≤ 1e+06 ({RATIO_WHY}), got 2e+06",
        f"channels.douyin.current: must be ≤ 1e+13 ({MONEY_WHY}), got 1e+14",
        f"channels.douyin.min_spend: must be ≤ 1e+13 ({MONEY_WHY}), got 1e+300",
        f"channels.douyin.max_spend: must be ≤ 1e+13 ({MONEY_WHY}), got 1e+19",
        f"channels.douyin.max_change: must be ≤ 1e+06 ({RATIO_WHY}), got 1e+07",
    ]


def test_amounts_and_ratios_of_a_period_plan_are_bounded_each_with_its_period(tmp_path):
    text = BASE.replace(
        "current = 400_000", "current = 400_000\nmin_per_period = [0, 2e13, 0]\nmax_per_period = 1e300\nefficiency = [1, 1, 1e300]"
    ) + '[horizon]\nperiods = 3\nefficiency = "flat"\n[pacing]\ncap = [1e300, 5e5, 5e5]\nmax_change_abs = 1e14\nmax_change = 1e9\n'
    assert problems_of(tmp_path, text) == [
        f"pacing.cap[0]: must be ≤ 1e+13 ({MONEY_WHY}), got 1e+300",
        f"pacing.max_change_abs: must be ≤ 1e+13 ({MONEY_WHY}), got 1e+14",
        f"pacing.max_change: must be ≤ 1e+06 ({RATIO_WHY}), got 1e+09",
        f"channels.douyin.min_per_period[1]: must be ≤ 1e+13 ({MONEY_WHY}), got 2e+13",
        f"channels.douyin.max_per_period: must be ≤ 1e+13 ({MONEY_WHY}), got 1e+300",
        f"channels.douyin.efficiency[2]: must be ≤ 1e+06 ({RATIO_WHY}), got 1e+300",
    ]


def test_a_period_plan_within_the_limits_loads(tmp_path):
    text = BASE.replace("current = 400_000", "current = 400_000\nmax_per_period = 1e13\nefficiency = [1, 1e6, 1]") + (
        '[horizon]\nperiods = 3\nefficiency = "flat"\n[pacing]\ncap = 1e13\nmax_change_abs = 1e13\nmax_change = 1e6\n')
    assert load_scenario(write(tmp_path, text)).horizon_spec.pacing["cap"] == 1e13


# --- a UTF-8 byte-order mark (Windows Notepad) -------------------------------------------------

BOM = b"\xef\xbb\xbf"


def test_a_byte_order_mark_is_accepted(tmp_path):
    text = 'name = "t"\n' + BASE
    p = tmp_path / "notepad.toml"
    p.write_bytes(BOM + text.encode("utf-8"))
    assert load_scenario(p).problem == load_scenario(write(tmp_path, text)).problem


def test_with_a_byte_order_mark_errors_keep_their_true_line_and_column(tmp_path):
    text = 'name = "t"\nbudget = \n'
    p = tmp_path / "notepad.toml"
    p.write_bytes(BOM + text.encode("utf-8"))
    with pytest.raises(ScenarioError) as err:
        load_scenario(p)
    assert err.value.problems == problems_of(tmp_path, text)
    assert err.value.problems[0].startswith("not valid TOML: ") and "(at line 2, column 10)" in err.value.problems[0]


def test_all_kinds_of_problem_are_listed_at_once(tmp_path):
    """A BOM file with a group typo, an amount too large, a budget too small and an unknown key:
    one error with four problems, in file order."""
    text = BASE.replace("1_000_000", "1e-9", 1).replace('group = "g1"', 'group = "g11"').replace(
        "current = 500_000", "current = 5e15\ncurent = 1") + LIMITED_GROUPS
    p = tmp_path / "all.toml"
    p.write_bytes(BOM + text.encode("utf-8"))
    with pytest.raises(ScenarioError) as err:
        load_scenario(p)
    assert err.value.problems == [
        f"budget.total: must be ≥ 0.01 ({CENT_WHY}), got 1e-09",
        'channels.douyin.group: unknown group "g11" (did you mean "g1"?)',
        "channels.scrm.curent: unknown key (did you mean `current`?)",
        f"channels.scrm.current: must be ≤ 1e+13 ({MONEY_WHY}), got 5e+15",
    ]
    assert str(err.value).startswith(f"{p}: 4 problem(s)\n")


def test_an_empty_channel_table_is_a_channel_without_a_curve(tmp_path):
    """[channels.a] with nothing under it was skipped: alone it crashed the optimizer with a
    ValueError (exit 1), beside another channel it vanished from the plan."""
    alone = "[budget]\ntotal = 1000\n[channels.a]\n"
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, alone))
    assert info.value.problems == ['channels.a.curve: required: e.g. { kind = "hill", beta = 3e6, k = 1e6, s = 0.8 }']
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, BASE + "[channels.a]\n"))
    assert [p.split(":")[0] for p in info.value.problems] == ["channels.a.curve"]


def test_change_limits_and_ratios_may_be_percentages_as_shares_are(tmp_path):
    """TOML has no percent literal: max_change = "50%" was "must be a finite number"."""
    text = BASE.replace('current = 400_000\n', 'current = 400_000\nmax_change = "50%"\n') + (
        '[constraints]\nroi_min = "120%"\n')
    sc = load_scenario(write(tmp_path, text))
    douyin = next(c for c in sc.problem.channels if c.name == "douyin")
    assert douyin.max_change == 0.5 and sc.problem.roi_min == 1.2
    plan = plan_scenario(sc).allocation
    spend = next(c.spend for c in plan.channels if c.channel == "douyin")
    assert 200_000 - 0.01 <= spend <= 600_000 + 0.01


def test_a_missing_history_or_model_file_is_named_with_its_key_and_where_it_was_looked_for(tmp_path):
    """It was "nope.csv: file not found", naming neither the key nor the folder it looked in."""
    (tmp_path / "sub").mkdir()
    for kind in ("history", "model"):
        text = f'[budget]\ntotal = 1000\n[{kind}]\npath = "nope.csv"\n'
        path = tmp_path / "sub" / "s.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ScenarioError) as err:
            load_scenario(path)
        found = err.value.problems
        assert found == [f"{kind}.path: 'nope.csv': no such file (looked for {tmp_path / 'sub' / 'nope.csv'}; a relative "
                         "path is relative to the scenario file)"], found


def test_channel_names_that_differ_only_in_case_or_spaces_are_one_channel_typed_twice(tmp_path):
    text = BASE + ('[channels.Douyin]\ncurrent = 100_000\ncurve = { kind = "hill", beta = 1e6, k = 5e5, s = 1.0 }\n'
                   '[channels." scrm"]\ncurrent = 0\ncurve = { kind = "hill", beta = 1e6, k = 5e5, s = 1.0 }\n')
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, text))
    found = err.value.problems
    assert "channels.Douyin: differs from channels.douyin only in case or spaces" in found[0]
    assert any(p.startswith("channels. scrm: the name has spaces before or after it") for p in found)
    assert any(p.startswith('channels. scrm: differs from channels.scrm only in case or spaces (" scrm" and "scrm")')
               for p in found)
    assert len(found) == 3


@pytest.mark.parametrize("written, code", [("RMB", "CNY"), ("人民币", "CNY"), ("usd", "USD"), ("SEK", "SEK")])
def test_a_currency_is_an_iso_code_and_rmb_is_the_yuan(tmp_path, written, code):
    sc = load_scenario(write(tmp_path, BASE.replace("total = 1_000_000", f'total = 1_000_000\ncurrency = "{written}"')))
    assert sc.problem.currency == code
    assert any("read as CNY" in n for n in sc.notes) == (written in ("RMB", "人民币"))


@pytest.mark.parametrize("written", ["", "US$", "元", "yuan"])
def test_a_currency_that_is_not_a_code_is_a_problem(tmp_path, written):
    text = BASE.replace("total = 1_000_000", f'total = 1_000_000\ncurrency = "{written}"')
    assert problems_of(tmp_path, text) == [f"budget.currency: must be a three-letter ISO 4217 code such as CNY, USD or "
                                           f"EUR, got {written!r}"]


def test_a_channel_share_and_amount_that_cannot_both_hold_are_a_problem_of_the_file(tmp_path):
    """min_share above max_spend (or min_spend above max_share) of one channel is the file's
    contradiction: listed with the other problems (exit 3), not left to the solver (exit 4)."""
    text = (BASE.replace("current = 400_000", "current = 400_000\nmin_share = 0.6\nmax_spend = 100_000")
            .replace("current = 500_000", "current = 500_000\nmin_spend = 500_000\nmax_share = \"30%\""))
    assert problems_of(tmp_path, text) == [
        "channels.douyin.min_share: 0.6 of the budget is ¥600,000, above max_spend ¥100,000",
        "channels.scrm.min_spend: ¥500,000 is above max_share 0.3 of the budget (¥300,000)"]
    fine = BASE.replace("current = 400_000", "current = 400_000\nmin_share = 0.1\nmax_spend = 100_000")
    assert load_scenario(write(tmp_path, fine, "fine.toml")).problem.budget == 1_000_000


def test_money_written_as_a_spreadsheet_shows_it(tmp_path):
    """`total = "¥12,000,000"` is 12,000,000, as the history reader reads such a cell; a string that
    is not an amount says how to write one."""
    sc = load_scenario(write(tmp_path, BASE.replace("total = 1_000_000", 'total = "¥1,000,000"')
                             .replace("current = 400_000", 'current = "400,000.50"')))
    assert sc.problem.budget == 1_000_000 and sc.problem.channels[0].current == 400_000.5
    found = problems_of(tmp_path, BASE.replace("total = 1_000_000", 'total = "1m"'))
    assert found == ["budget.total: must be an amount of money, got '1m': write it as a number, such as 12_000_000 "
                     "or 1.2e7 (no quotes), or as \"¥12,000,000\""]


def test_min_above_max_reads_as_money_not_scientific_notation(tmp_path):
    text = BASE.replace("current = 400_000", "current = 400_000\nmin_spend = 2_000_000\nmax_spend = 1_000_000")
    assert problems_of(tmp_path, text)[0] == "channels.douyin.min_spend: must be ≤ max_spend (1,000,000), got 2,000,000"


@pytest.mark.parametrize("header, quoted", [("[channels.抖音]", '[channels."抖音"]'),
                                            ("[channels.tv spots]", '[channels."tv spots"]')])
def test_a_table_name_toml_cannot_take_bare_says_to_quote_it(tmp_path, header, quoted):
    text = BASE + f'{header}\ncurrent = 1\ncurve = {{ kind = "hill", beta = 1e6, k = 5e5, s = 1.0 }}\n'
    found = problems_of(tmp_path, text)
    assert len(found) == 1 and found[0].startswith("not valid TOML: ")
    assert found[0].endswith(f"(a name with characters other than A-Z, 0-9, _ and - must be quoted: {quoted})")
    assert load_scenario(write(tmp_path, text.replace(header, quoted), "ok.toml")).problem.channels[-1].name == \
        quoted.split(".", 1)[1].strip('"]')


def test_the_scenario_and_its_history_file_are_checked_in_one_round(tmp_path):
    """A scenario with problems of its own still has its history file read, so one run lists the
    file's problems (and [channels] it lacks) with them, instead of in a second round."""
    import numpy as np
    import pandas as pd

    dates = pd.date_range("2024-01-01", periods=60, freq="W-MON")
    rng = np.random.default_rng(0)
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "revenue": rng.uniform(9e5, 1e6, 60).round(),
                  "tv": rng.uniform(1e4, 5e4, 60).round(), "social": rng.uniform(5e3, 3e4, 60).round()}
                 ).to_csv(tmp_path / "h.csv", index=False)
    text = ('[budget]\ntotal = 1_000_000\n[history]\npath = "h.csv"\nkpi = "revenu"\nperiods = 0\n'
            '[channels.tiktok]\ncurrent = 5\n')
    found = problems_of(tmp_path, text)
    assert found[0] == "history.periods: must be a whole number of data periods ≥ 1, got 0"
    assert found[1].startswith("h.csv: KPI column 'revenu' not found (did you mean 'revenue'?)")
    assert len(found) == 2  # [channels] are checked against a history that can be read
    fixed = text.replace('kpi = "revenu"', 'kpi = "revenue"')
    assert problems_of(tmp_path, fixed)[1:] == [
        "channels.tiktok: not in the fitted model (it has: tv, social)"]


# --- ratios and amounts of a period plan as a planning sheet writes them ----------------------


def test_period_amounts_and_ratios_take_percentages_and_money_text(tmp_path):
    """README: ratios take "50%" and amounts "¥12,000" everywhere; a period plan's efficiency and
    per-period amounts refused them ("must be a finite number, got '120%'")."""
    text = BASE.replace("current = 400_000", 'current = 400_000\nefficiency = ["100%", "120%", "80%"]\n'
                                             'max_per_period = "¥300,000"') + (
        '[horizon]\nperiods = 3\nefficiency = "flat"\n[pacing]\nmax_change = "20%"\nmax_change_abs = "¥50,000"\n')
    spec = load_scenario(write(tmp_path, text)).horizon_spec
    assert spec.channel_keys["douyin"] == {"efficiency": [1.0, 1.2, 0.8], "max_per_period": 300_000.0}
    assert spec.pacing == {"max_change_abs": 50_000.0, "max_change": 0.2}


def test_a_seasonal_index_where_100_is_normal_is_refused_as_an_efficiency(tmp_path):
    # Read as multipliers, it made the channel's return 100 times the usual (ROI 100, no warning).
    text = BASE.replace("current = 400_000", "current = 400_000\nefficiency = [100, 120, 80]") + (
        '[horizon]\nperiods = 3\nefficiency = "flat"\n')
    assert problems_of(tmp_path, text) == [
        "channels.douyin.efficiency: is 80 or more in every period: efficiency multiplies the channel's return (1 is "
        "as usual), so this reads as at least that many times the usual return; for an index where 100 is normal "
        'write 1.2 or "120%" for 120']
    spiky = BASE.replace("current = 400_000", "current = 400_000\nefficiency = [1, 12, 1]") + (
        '[horizon]\nperiods = 3\nefficiency = "flat"\n')
    assert load_scenario(write(tmp_path, spiky)).horizon_spec.channel_keys["douyin"]["efficiency"] == [1, 12, 1]


def test_a_change_limit_written_as_a_percentage_number_is_warned_about(tmp_path):
    """max_change = 10 (for 10%) is ±1000%: no limit at all, and the plan said nothing."""
    sc = load_scenario(write(tmp_path, BASE.replace("current = 400_000", "current = 400_000\nmax_change = 10")))
    assert sc.warnings == ['channels.douyin.max_change = 10 lets spend change by up to 1000% (it is a fraction: 0.1 '
                           'is 10%); for 10% write 0.1 or "10%"']
    assert load_scenario(write(tmp_path, BASE.replace("current = 400_000", "current = 400_000\nmax_change = 1.5"))
                         ).warnings == []
    paced = BASE + '[horizon]\nperiods = 3\nefficiency = "flat"\n[pacing]\nmax_change = 60\n'
    assert [w.split(" =")[0] for w in load_scenario(write(tmp_path, paced)).warnings] == ["pacing.max_change"]


def test_a_quoted_number_or_a_full_width_percent_sign_is_read_or_said_how_to_write(tmp_path):
    text = BASE + '[reserve]\nmin_share = "5％"\n'
    assert load_scenario(write(tmp_path, text)).problem.reserve_min_share == 0.05
    assert problems_of(tmp_path, BASE + '[reserve]\nmin_share = "0.05"\n') == [
        "reserve.min_share: must be a finite number, got '0.05': write it without the quotes"]
