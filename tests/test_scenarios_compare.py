"""`compare_scenarios`: known answers on curves planned by hand, saved plans as columns, broken
files beside good ones, the same-curves verdict, and one fit shared by scenarios on one history."""

import json

import pytest

from scenarios.compare import compare_scenarios, comparison_rows

# Two channels on piecewise-linear curves, so the optimum is arithmetic:
#   x: slope 3 up to 500,000, then 1 up to 1,000,000;  y: slope 2 up to 400,000, then 0.5.
# A: budget 1,000,000, reserve ≥ 10% → 900,000 to spend: x 500,000 (1,500,000) + y 400,000
#    (800,000) = 2,300,000; current x 450,000 (1,350,000) + y 450,000 (825,000) = 2,175,000.
# B: budget 1,200,000 → 1,080,000: x 680,000 (1,680,000) + y 400,000 (800,000) = 2,480,000;
#    current x 540,000 (1,540,000) + y 540,000 (870,000) = 2,410,000.
SCENARIO = """name = "{name}"
[budget]
total = {budget}
[reserve]
min_share = 0.1
[groups.g1]
label = "Group one"
[groups.g2]
label = "Group two"
[channels.x]
label = "Channel X"
group = "g1"
current = {current}
curve = {{ kind = "points", points = [[0, 0], [500_000, 1_500_000], [1_000_000, 2_000_000]] }}
[channels.y]
group = "g2"
current = {current}
curve = {{ kind = "points", points = [[0, 0], [400_000, 800_000], [1_000_000, {y_top}]] }}
"""


def scenario(tmp_path, name, budget, current, y_top=1_100_000, file=None):
    path = tmp_path / (file or f"{name}.toml")
    path.write_text(SCENARIO.format(name=name, budget=budget, current=current, y_top=y_top), encoding="utf-8")
    return path


@pytest.fixture
def pair(tmp_path):
    return scenario(tmp_path, "A", 1_000_000, 450_000), scenario(tmp_path, "B", 1_200_000, 540_000)


def test_two_scenarios_known_answers_and_difference(pair):
    cmp = compare_scenarios(pair)
    a, b = cmp["scenarios"]
    assert (a["name"], b["name"]) == ("A", "B")
    assert a["channels"]["x"]["spend"] == pytest.approx(500_000, abs=0.01)
    assert a["channels"]["y"]["spend"] == pytest.approx(400_000, abs=0.01)
    assert a["expected_return"] == pytest.approx(2_300_000, abs=1)
    assert a["current_expected_return"] == pytest.approx(2_175_000, abs=1)
    assert b["channels"]["x"]["spend"] == pytest.approx(680_000, abs=0.01)
    assert b["expected_return"] == pytest.approx(2_480_000, abs=1)
    assert b["current_expected_return"] == pytest.approx(2_410_000, abs=1)
    d = cmp["difference"]
    assert d["plan"]["budget"] == 200_000
    assert d["plan"]["spend"] == pytest.approx(180_000, abs=0.01)
    assert d["plan"]["reserve"] == pytest.approx(20_000, abs=0.01)
    assert d["plan"]["expected_return"] == pytest.approx(180_000, abs=1)
    assert d["plan"]["current_expected_return"] == pytest.approx(235_000, abs=1)
    assert d["plan"]["roi"] == pytest.approx(2_480_000 / 1_080_000 - 2_300_000 / 900_000, abs=1e-5)
    assert d["plan"]["uplift"] == pytest.approx((2_480_000 / 2_410_000 - 1) - (2_300_000 / 2_175_000 - 1), abs=1e-5)
    assert d["channels"]["x"]["spend"] == pytest.approx(180_000, abs=0.01)
    assert d["channels"]["x"]["share"] == pytest.approx(680_000 / 1_200_000 - 0.5, abs=1e-6)
    assert d["channels"]["y"]["spend"] == pytest.approx(0, abs=0.01)
    assert d["channels"]["y"]["share"] == pytest.approx(400_000 / 1_200_000 - 0.4, abs=1e-6)
    assert d["groups"]["g1"]["spend"] == pytest.approx(180_000, abs=0.01)
    assert cmp["curves"]["same"] is True
    assert cmp["curves"]["text"].startswith("compared on the same curves")
    assert cmp["currency"] == "CNY" and cmp["errors"] == [] and cmp["fits"] == []
    json.dumps(cmp)  # JSON-ready


def test_rows_line_up_by_channel_with_blanks(tmp_path, pair):
    extra = tmp_path / "C.toml"
    extra.write_text(SCENARIO.format(name="C", budget=1_000_000, current=450_000, y_top=1_100_000)
                     + '[channels.z]\ngroup = "g2"\ncurrent = 0\ncurve = { kind = "hill", beta = 1e6, k = 5e5, s = 1.0 }\n',
                     encoding="utf-8")
    cmp = compare_scenarios([*pair, extra])
    assert [c["channel"] for c in cmp["channels"]] == ["x", "y", "z"]
    assert cmp["difference"] is None  # three columns: no single difference
    z = [r for r in comparison_rows(cmp) if r["item"] == "z" and r["metric"] == "spend"][0]
    assert z["values"][:2] == [None, None] and z["values"][2] is not None
    assert "do not plan the same channels" in cmp["curves"]["text"]
    assert cmp["curves"]["same"] is False  # z is in one column only: not the budget and limits alone
    assert "the channels the columns share have the same curves" in cmp["curves"]["text"]


def test_columns_that_share_no_channel_are_not_on_the_same_curves(tmp_path, pair):
    alone = tmp_path / "D.toml"
    alone.write_text('name = "D"\n[budget]\ntotal = 1_000_000\n[channels.z]\ncurrent = 500_000\n'
                     'curve = { kind = "hill", beta = 1e6, k = 5e5, s = 1.0 }\n', encoding="utf-8")
    cmp = compare_scenarios([pair[0], alone])
    assert cmp["curves"]["same"] is False
    assert cmp["curves"]["text"].startswith("not compared on the same curves: A and D share no channel")


def test_different_curves_are_said(tmp_path, pair):
    other = scenario(tmp_path, "C", 1_000_000, 450_000, y_top=1_300_000)
    cmp = compare_scenarios([pair[0], other])
    assert cmp["curves"]["same"] is False
    assert cmp["curves"]["differ"] == [{"channel": "y", "between": ["A", "C"]}]
    assert cmp["curves"]["text"].startswith("not compared on the same curves: the curves of y differ between A and C")


def test_a_saved_plan_stands_as_a_column(tmp_path, pair):
    from click.testing import CliRunner

    from cli import main

    saved = tmp_path / "approved.json"
    r = CliRunner().invoke(main, ["allocate", str(pair[0]), "--format", "json", "-o", str(saved)])
    assert r.exit_code == 0, r.stderr
    direct = compare_scenarios(pair)
    cmp = compare_scenarios([saved, pair[1]])
    assert cmp["scenarios"][0]["kind"] == "saved plan"
    assert cmp["scenarios"][0]["name"] == "A"
    assert cmp["difference"] == direct["difference"]
    assert cmp["curves"]["same"] is None and "a saved or recorded plan does not keep its curves" in cmp["curves"]["text"]


def test_a_broken_file_is_reported_and_the_others_compare(tmp_path, pair):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[budget]\ntotal = -5\n', encoding="utf-8")
    not_a_plan = tmp_path / "notes.json"
    not_a_plan.write_text('{"hello": 1}', encoding="utf-8")
    cmp = compare_scenarios([pair[0], bad, not_a_plan, pair[1]])
    assert [c["name"] for c in cmp["scenarios"]] == ["A", "B"]
    assert cmp["difference"]["plan"]["budget"] == 200_000
    assert [e["source"] for e in cmp["errors"]] == [str(bad), str(not_a_plan)]
    assert "budget.total: must be > 0, got -5" in cmp["errors"][0]["problems"]
    assert "not a saved plan (from `budget allocate --format json`): missing key 'scenario'" in cmp["errors"][1]["problems"]


def test_an_infeasible_scenario_is_a_column_with_its_diagnosis(tmp_path, pair):
    text = SCENARIO.format(name="tight", budget=1_000_000, current=450_000, y_top=1_100_000)
    text = text.replace('group = "g1"\n', 'group = "g1"\nmin_spend = 990_000\n')
    path = tmp_path / "tight.toml"
    path.write_text(text, encoding="utf-8")
    cmp = compare_scenarios([pair[0], path])
    assert cmp["scenarios"][1]["status"] == "infeasible" and cmp["scenarios"][1]["diagnosis"]
    assert cmp["difference"] is None


@pytest.mark.slow
def test_scenarios_on_one_history_are_fitted_once(tmp_path, monkeypatch):
    """The fit cache is keyed by the data and settings: the second scenario reads the first's fit."""
    import shutil

    from models.cache import CACHE_ENV
    from models.fit import MediaMixModel
    from scenarios import example_path

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    shutil.copy(example_path("history_weekly.csv"), tmp_path / "h.csv")
    fits = []
    original = MediaMixModel.fit
    monkeypatch.setattr(MediaMixModel, "fit", lambda self, *a, **k: fits.append(1) or original(self, *a, **k))
    head = '[history]\npath = "h.csv"\nbootstrap = 0\nholdout = 0\nperiods = 13\n[channels.douyin]\ncurrent = 1_000_000\n'
    paths = []
    for name, budget in (("base", 10_000_000), ("more", 12_000_000)):
        p = tmp_path / f"{name}.toml"
        p.write_text(f'name = "{name}"\n[budget]\ntotal = {budget}\n' + head, encoding="utf-8")
        paths.append(p)
    from models.errors import ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match="least squares on a total KPI"):  # bootstrap = 0 asks for it
        cmp = compare_scenarios(paths)
    assert len(fits) == 1
    assert cmp["fits"] == [{"source": str((tmp_path / "h.csv").resolve()), "scenarios": ["base", "more"],
                            "fitted": "new"}]
    assert cmp["curves"]["same"] is True
    assert [c["curves_from"] for c in cmp["scenarios"]] == ["fitted from h.csv", "fitted from h.csv (cached fit)"]
    from scenarios.render import comparison_table

    assert "curves of A, B: fitted from h.csv (one fit, shared)\n" in comparison_table(cmp)
    # A saved plan of the same name beside its scenario: both columns renamed, the fit named after them.
    from click.testing import CliRunner

    from cli import main

    saved = tmp_path / "base.json"
    assert CliRunner().invoke(main, ["allocate", str(paths[0]), "--format", "json", "-o", str(saved)]).exit_code == 0
    cmp = compare_scenarios([saved, paths[0]])
    assert [c["name"] for c in cmp["scenarios"]] == ["base (base.json)", "base (base.toml)"]
    assert cmp["fits"][0]["scenarios"] == ["base (base.toml)"] and cmp["fits"][0]["fitted"] == "cached"
    assert len(fits) == 1


def test_a_recorded_plan_in_the_ledger_stands_as_a_column(tmp_path, pair):
    from scenarios.ledger import record_plan
    from scenarios.plan import plan_scenario
    from scenarios.schema import load_scenario

    ledger = tmp_path / "q1.sqlite"
    plan = plan_scenario(load_scenario(pair[0]))
    run, _new = record_plan(ledger, pair[0], json.loads(json.dumps(plan.allocation.to_dict())), command="test")
    direct = compare_scenarios(pair)
    for source in (f"{ledger}#{run.id}", ledger):
        cmp = compare_scenarios([source, pair[1]])
        assert cmp["errors"] == []
        assert cmp["scenarios"][0]["kind"] == "recorded plan"
        assert cmp["scenarios"][0]["source"] == f"{ledger}#{run.id}"
        assert cmp["difference"] == direct["difference"]
    cmp = compare_scenarios([f"{ledger}#99", pair[1], tmp_path / "none.sqlite"])
    assert [e["problems"] for e in cmp["errors"]] == [[f"{ledger}: no run 99"],
                                                      [f"{tmp_path / 'none.sqlite'}: no such ledger"]]


def test_a_scenario_against_itself_differs_by_nothing(pair):
    cmp = compare_scenarios([pair[0], pair[0]])
    assert [c["name"] for c in cmp["scenarios"]] == ["A (A.toml)", "A (A.toml)"]
    assert cmp["curves"]["same"] is True
    for block in (cmp["difference"]["plan"], *cmp["difference"]["channels"].values(), *cmp["difference"]["groups"].values()):
        assert all(v is None or v == 0 for v in block.values())
