"""`budget fit` and scenarios that plan on curves fitted from history (Prophet, cached)."""

import json

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from models.cache import cache_dir
from models.generate import bundled_params, true_planning_curve
from scenarios import example_path, load_scenario

HISTORY = str(example_path("history_weekly.csv"))


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.mark.slow
def test_fit_csv_table_json_and_saved_model(runner, tmp_path):
    out = tmp_path / "model.json"
    r = runner.invoke(main, ["fit", HISTORY, "--bootstrap", "10", "--out", str(out), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["frequency"] == "weekly" and report["periods"] == 156
    assert [c["channel"] for c in report["channels"]][:2] == ["douyin", "xiaohongshu"]
    assert {"roi", "roi_p10", "roi_p90", "marginal_roi", "alpha", "k", "s"} <= set(report["channels"][0])
    assert {"r2", "mape", "nrmse", "holdout"} <= set(report["fit"])
    # --bootstrap asks for least squares (the bootstrap is its way to intervals).
    assert report["uncertainty"] == {"method": "bootstrap", "samples": 10}
    saved = json.loads(out.read_text())
    assert saved["schema_version"] == 2
    t = runner.invoke(main, ["fit", HISTORY, "--bootstrap", "0"])
    assert t.exit_code == 0
    assert "fit on the last 13 periods held out" in t.stdout and "wecom_community" in t.stdout


@pytest.mark.slow
def test_a_total_kpi_is_fitted_by_the_joint_model_unless_least_squares_is_asked_for(runner):
    r = runner.invoke(main, ["fit", HISTORY, "--format", "json"])
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["uncertainty"]["method"] == "posterior" and report["bootstrap_samples"] == 0
    assert report["uncertainty"]["samples"] >= 100
    r = runner.invoke(main, ["fit", HISTORY, "--method", "least-squares", "--bootstrap", "0", "--holdout", "0",
                             "--format", "json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["uncertainty"] == {"method": "bootstrap", "samples": 0}


def test_fit_rejects_a_bad_history_with_every_problem(runner, tmp_path):
    bad = tmp_path / "h.csv"
    bad.write_text("date,revenue,tv\n2024-01-01,100,5\n2024-01-01,-3,x\n", encoding="utf-8")
    r = runner.invoke(main, ["fit", str(bad)])
    assert r.exit_code == 3
    assert r.stdout == ""
    assert r.stderr == (
        "Error: h.csv: 4 problem(s)\n"  # the file's length with its cells, in one round
        "  - h.csv: too little history: 2 periods, at least 26 are needed to separate trend, seasonality and media\n"
        "  - h.csv row 3: revenue must be > 0, got -3\n"
        "  - h.csv row 3: spend for tv 'x' is not a number\n"
        "  - h.csv row 3: date 2024-01-01 appears twice (first at row 2)\n"
    )


def test_fit_names_a_long_layouts_channel_and_spend_columns_from_the_command_line(runner, tmp_path):
    """渠道/花费 could only be named in a scenario's [history]; budget fit had no flags for them."""
    import pandas as pd

    wide = pd.read_csv(HISTORY)
    long = pd.concat([pd.DataFrame({"日期": wide["date"], "渠道": c, "花费": wide[c], "GMV": wide[c] * 3})
                      for c in ("douyin", "scrm")])
    path = tmp_path / "渠道周报.csv"
    long.to_csv(path, index=False)
    r = runner.invoke(main, ["fit", str(path), "--layout", "long", "--format", "json", "--no-cache"])
    assert r.exit_code == 3 and "--channel-column on the command line" in r.stderr
    r = runner.invoke(main, ["fit", str(path), "--layout", "long", "--date", "日期", "--channel-column", "渠道",
                             "--spend-column", "花费", "--kpi", "GMV", "--format", "json", "--no-cache"])
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["layout"] == "long" and [c["channel"] for c in report["channels"]] == ["douyin", "scrm"]


@pytest.mark.slow
def test_quarterly_scenario_fits_once_then_uses_the_cache():
    path = example_path("quarterly.toml")
    first = load_scenario(path)
    assert first.periods == 13 and first.model is not None
    assert any(f.name.startswith("fit-") for f in cache_dir().iterdir())
    second = load_scenario(path)
    assert second.notes[-1].endswith("(cached fit)")
    # The cached fit plans exactly like the fresh one.
    for a, b in zip(first.problem.channels, second.problem.channels):
        assert a.curve == b.curve and a.extrapolation_cap == b.extrapolation_cap
    # Fitted planning curves are close to the true ones at the planned spend level.
    truth = bundled_params()
    for ch in first.problem.channels:
        true_curve = true_planning_curve(truth, ch.name, 13)
        x = ch.current
        assert float(ch.curve.response(x)) == pytest.approx(float(true_curve.response(x)), rel=0.2)


@pytest.mark.slow
def test_allocate_on_fitted_curves_respects_the_extrapolation_cap(runner):
    r = runner.invoke(main, ["allocate", str(example_path("quarterly.toml")), "--format", "json", "--budget", "60000000"])
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    sc = load_scenario(example_path("quarterly.toml"))
    caps = {c.name: c.extrapolation_cap for c in sc.problem.channels}
    for c in d["channels"]:
        assert c["spend"] <= caps[c["channel"]] + 0.01
    assert any(b["name"].startswith("extrapolation_cap[") for b in d["binding_constraints"])
    assert any("extrapolation cap" in w for w in d["warnings"])


def test_model_table_in_a_scenario(tmp_path, runner):
    pytest.importorskip("prophet")
    out = tmp_path / "m.json"
    r = runner.invoke(main, ["fit", HISTORY, "--bootstrap", "0", "--holdout", "0", "--out", str(out), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    sc = tmp_path / "s.toml"
    sc.write_text(f'[budget]\ntotal = 10_000_000\n[model]\npath = "{out.name}"\n[channels.douyin]\ngroup = "content"\ncurrent = 2_000_000\n', encoding="utf-8")
    loaded = load_scenario(sc)
    names = [c.name for c in loaded.problem.channels]
    assert names[0] == "douyin" and len(names) == 9  # the rest planned at their historical run rate
    assert loaded.problem.channels[0].current == 2_000_000


def test_unknown_channel_against_the_model(tmp_path, runner):
    out = tmp_path / "m.json"
    assert runner.invoke(main, ["fit", HISTORY, "--bootstrap", "0", "--holdout", "0", "--out", str(out)]).exit_code == 0
    sc = tmp_path / "s.toml"
    sc.write_text(f'[budget]\ntotal = 1e7\n[model]\npath = "{out.name}"\n[channels.tiktok]\ncurrent = 1\n', encoding="utf-8")
    r = runner.invoke(main, ["allocate", str(sc)])
    assert r.exit_code == 3
    assert "channels.tiktok: not in the fitted model (it has: douyin, xiaohongshu" in r.stderr


def test_an_unknown_channel_of_a_history_is_said_before_the_fit(tmp_path, runner):
    """[channels.douyn] beside [history]: the history's channels are known once it is read, so the
    typo is reported at once (with the likely name), not after a fit of a minute."""
    sc = tmp_path / "s.toml"
    sc.write_text(f'[budget]\ntotal = 1e7\n[history]\npath = "{Path(HISTORY).as_posix()}"\n'
                  '[channels.douyn]\ncurrent = 1\n', encoding="utf-8")
    r = runner.invoke(main, ["-v", "allocate", str(sc), "--no-cache"])
    assert r.exit_code == 3
    assert "channels.douyn: not in the fitted model (did you mean 'douyin'? it has: douyin, xiaohongshu" in r.stderr
    assert "fitting" not in r.stderr


def test_kpi_unit_says_what_the_kpi_is_instead_of_the_scale_check(runner, tmp_path):
    """--kpi-unit / [history] kpi_unit: conversions worth about a yuan each pass the scale check as
    money; a business spending more on media than the revenue it books fails it. Saying wins."""
    import pandas as pd

    frame = pd.read_csv(HISTORY)
    frame["revenue"] = frame["revenue"] / 100.0  # conversions: the check calls them "not money"
    path = tmp_path / "conversions.csv"
    frame.to_csv(path, index=False)
    base = ["fit", str(path), "--method", "least-squares", "--bootstrap", "0", "--holdout", "0", "--format", "json",
            "--no-cache"]
    said = {}
    for unit in ("auto", "money", "other"):
        r = runner.invoke(main, base + ["--kpi-unit", unit])
        assert r.exit_code == 0, r.stderr
        report = json.loads(r.stdout)
        said[unit] = (report["fit"]["kpi_in_money"],
                      any(w.startswith("the KPI does not look like money") for w in report["warnings"]))
    assert said == {"auto": (False, True), "money": (True, False), "other": (False, False)}
    r = runner.invoke(main, ["fit", HISTORY, "--kpi-unit", "yuan"])
    assert r.exit_code == 2 and "auto" in r.stderr and "money" in r.stderr
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'name = "s"\n[budget]\ntotal = 1_000_000\n[history]\npath = "{path.name}"\n'
                        'kpi_unit = "dollars"\n', encoding="utf-8")
    r = runner.invoke(main, ["allocate", str(scenario)])
    assert r.exit_code == 3 and "history.kpi_unit: must be one of auto, money, other" in r.stderr
