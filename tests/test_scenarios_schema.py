"""Scenario files: the bundled examples, and validation that lists every problem at once."""

import pytest

from scenarios import ScenarioError, example_path, load_scenario

VALID = """
name = "t"
[budget]
total = 1_000_000
[channels.a]
group = "content"
current = 400_000
curve = { kind = "hill", beta = 2e6, k = 5e5, s = 0.8 }
[channels.b]
group = "tools"
current = 500_000
curve = { kind = "exponential", beta = 1e6, k = 3e5 }
"""


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def problems_of(tmp_path, text):
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, text))
    return err.value.problems


def test_quarterly_example_current_plan_is_the_reference_split():
    sc = load_scenario(example_path("quarterly.toml"))
    p = sc.problem
    assert len(p.channels) >= 8
    assert {c.group for c in p.channels} == {"content", "tools", "private_domain", "offline"}
    shares = {}
    for c in p.channels:
        shares[c.group] = shares.get(c.group, 0.0) + c.current / p.budget
    assert shares == pytest.approx({"content": 0.35, "tools": 0.25, "private_domain": 0.20, "offline": 0.15})
    assert 1 - sum(shares.values()) == pytest.approx(p.reserve_min_share) == pytest.approx(0.05)


@pytest.mark.parametrize("name", ["quarterly.toml", "pasted_curves.toml", "roi_floor.toml"])
def test_every_bundled_example_loads(name):
    assert load_scenario(example_path(name)).problem.channels


def test_valid_minimal_file_uses_documented_defaults(tmp_path):
    p = load_scenario(write(tmp_path, VALID)).problem
    assert p.reserve_min_share == 0.05 and p.objective == "max_return" and p.currency == "CNY"
    assert [c.name for c in p.channels] == ["a", "b"]


def test_all_problems_are_listed_with_their_key_paths(tmp_path):
    text = VALID.replace("total = 1_000_000", "total = -5\ncurrencyy = \"CNY\"")
    text += """
[channels.c]
group = "offline"
max_share = 1.4
min_spend = 300
max_spend = 200
locked = "yes"
curve = { kind = "hill", beta = 1e6, k = 0 }
[reserve]
min_share = 0.5
max_share = 0.2
"""
    assert problems_of(tmp_path, text) == [
        "budget.currencyy: unknown key (did you mean `currency`?)",
        "budget.total: must be > 0, got -5",
        "reserve.min_share: must be ≤ max_share (0.2), got 0.5",
        "channels.c.min_spend: must be ≤ max_spend (200), got 300",
        "channels.c.max_share: must be ≤ 1, got 1.4",
        "channels.c.locked: must be true or false, got 'yes'",
        "channels.c.curve.k: must be > 0, got 0",
    ]


def test_unknown_top_level_key_and_objective(tmp_path):
    text = 'objectve = "max_return"\n' + VALID
    assert problems_of(tmp_path, text) == ["objectve: unknown key (did you mean `objective`?)"]
    text = 'objective = "max_profit"\n' + VALID
    assert problems_of(tmp_path, text) == [
        'margin: required when objective = "max_profit" (profit per unit of return, e.g. 0.35)'
    ]


def test_numbers_must_be_finite(tmp_path):
    text = VALID.replace("current = 400_000", "current = nan").replace("beta = 1e6", "beta = inf")
    assert problems_of(tmp_path, text) == [
        "channels.a.current: must be a finite number, got nan",
        "channels.b.curve.beta: must be a finite number, got inf",
    ]


def test_toml_syntax_error_is_reported_not_raised(tmp_path):
    probs = problems_of(tmp_path, "name = \n")
    assert len(probs) == 1 and probs[0].startswith("not valid TOML: ")


def test_missing_curve_and_budget(tmp_path):
    assert problems_of(tmp_path, "[channels.a]\ngroup = 'x'\n") == [
        "budget: required: a table with `total` (and optionally `currency`, `horizon`)",
        'channels.a.curve: required: e.g. { kind = "hill", beta = 3e6, k = 1e6, s = 0.8 }',
    ]


def test_points_curve_must_be_monotone(tmp_path):
    text = VALID.replace('{ kind = "exponential", beta = 1e6, k = 3e5 }', "{ kind = \"points\", points = [[0, 0], [10, 5], [20, 4]] }")
    assert problems_of(tmp_path, text) == ["channels.b.curve.points: point returns must be non-decreasing in spend"]


def test_current_plan_as_group_shares(tmp_path):
    text = VALID.replace("current = 400_000\n", "").replace("current = 500_000\n", "")
    text += "[current]\ngroup_shares = { content = 0.6, tools = 0.35 }\n"
    p = load_scenario(write(tmp_path, text)).problem
    assert [c.current for c in p.channels] == [600_000, 350_000]


def test_group_shares_written_as_percentages_read_as_the_shares(tmp_path):
    # "70%" is a share everywhere else; here it crashed (the raw text went to float()).
    text = VALID.replace("current = 400_000\n", "").replace("current = 500_000\n", "")
    p = load_scenario(write(tmp_path, text + '[current]\ngroup_shares = { content = "60%", tools = "35%" }\n')).problem
    assert [c.current for c in p.channels] == [600_000, 350_000]
    bad = text + '[current]\ngroup_shares = { content = "sixty", tools = 0.35 }\n'
    assert [q.split(":")[0] for q in problems_of(tmp_path, bad)] == ["current.group_shares.content"]


def test_amounts_written_in_wan_read_as_money(tmp_path):
    text = VALID.replace("current = 400_000", 'current = "40万"').replace("current = 500_000", 'current = "50万元"')
    assert [c.current for c in load_scenario(write(tmp_path, text)).problem.channels] == [400_000, 500_000]


def test_group_share_and_channel_current_conflict(tmp_path):
    text = VALID + "[current]\ngroup_shares = { content = 0.6 }\n"
    assert problems_of(tmp_path, text) == [
        "channels.a.current: given twice: group content already has a share in current.group_shares"
    ]


def test_budget_override_scales_the_current_plan(tmp_path):
    sc = load_scenario(write(tmp_path, VALID), budget=2_000_000)
    assert sc.problem.budget == 2_000_000
    assert [c.current for c in sc.problem.channels] == [800_000, 1_000_000]
    assert "budget overridden" in sc.notes[0]


def test_unreadable_file(tmp_path):
    """Said in words, not as "[Errno 2] No such file or directory: '…'"."""
    with pytest.raises(ScenarioError) as err:
        load_scenario(tmp_path / "missing.toml")
    assert err.value.problems == ["no such file"] and err.value.source.endswith("missing.toml")
    with pytest.raises(ScenarioError) as err:
        load_scenario(tmp_path)
    assert err.value.problems == ["is a folder, not a file"]


def test_a_scenario_saved_by_a_chinese_windows_editor_loads(tmp_path):
    """TOML is UTF-8, but Notepad adds a byte-order mark and a Chinese system's editors save GBK;
    both are read. Bytes that are neither are one problem that says how to save the file."""
    text = ('name = "抖音 Q1"\n[budget]\ntotal = 1_000_000\n[channels.douyin]\nlabel = "抖音"\ncurrent = 500_000\n'
            'curve = { kind = "hill", beta = 2_000_000, k = 400_000, s = 1.0 }\n')
    for encoding in ("utf-8-sig", "gbk"):
        path = tmp_path / f"{encoding}.toml"
        path.write_bytes(text.encode(encoding))
        sc = load_scenario(path)
        assert sc.name == "抖音 Q1" and sc.problem.channels[0].label == "抖音", encoding
    path = tmp_path / "bad.toml"
    path.write_bytes(b'name = "\xff\xfe\xff"\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.problems == ["cannot read the file: it is not UTF-8 (invalid start byte at byte 8); save it as UTF-8"]


def test_shares_may_be_written_as_percentages_and_35_for_35_percent_says_how(tmp_path):
    curve = 'curve = { kind = "hill", beta = 2_000_000, k = 400_000, s = 1.0 }\n'
    path = tmp_path / "s.toml"
    path.write_text('[budget]\ntotal = 1_000_000\n[reserve]\nmin_share = "5%"\n[groups.content]\nmax_share = "60 %"\n'
                    f'[channels.a]\ngroup = "content"\ncurrent = 500_000\n{curve}'
                    f'[channels.b]\ncurrent = 400_000\n{curve}', encoding="utf-8")
    sc = load_scenario(path)
    assert sc.problem.reserve_min_share == 0.05 and sc.problem.group("content").max_share == 0.6
    path.write_text('[budget]\ntotal = 1_000_000\n[reserve]\nmin_share = 5\nmax_share = "150%"\n'
                    f'[channels.a]\ncurrent = 500_000\n{curve}', encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.problems == ['reserve.min_share: must be ≤ 1 (a share: write 0.05 or "5%"), got 5',
                                   "reserve.max_share: must be ≤ 1, got 1.5"]


@pytest.mark.slow
def test_a_fitted_channel_named_without_current_keeps_its_run_rate(tmp_path):
    """Naming a fitted channel to give it one limit must not zero its current plan: without a
    written `current` it keeps the historical run rate a channel left out of [channels] has."""
    text = example_path("quarterly.toml").read_text(encoding="utf-8")
    text = text.replace('path = "history_weekly.csv"', f'path = "{example_path("history_weekly.csv").as_posix()}"')
    no_current = text.replace("current = 1_400_000\n", "", 1)
    assert no_current != text
    sc = load_scenario(write(tmp_path, no_current))
    current = {c.name: c.current for c in sc.problem.channels}
    run_rate = round(float(sc.model.spend_stats_["douyin"]["mean"]) * sc.periods, 2)
    assert run_rate > 0 and current["douyin"] == run_rate
    assert current["xiaohongshu"] == 1_000_000  # written amounts stay as written
    assert any(n.startswith("douyin: no `current` written") for n in sc.notes)
    zero = load_scenario(write(tmp_path, text.replace("current = 1_400_000", "current = 0", 1), "zero.toml"))
    assert {c.name: c.current for c in zero.problem.channels}["douyin"] == 0
    assert not any("no `current` written" in n for n in zero.notes)
