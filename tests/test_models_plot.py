"""Charts: Chinese channel names are drawn with a CJK font (or the user is told which to
install), the plan chart shows current and recommended spend per channel and per period, and
a file is only ever replaced whole."""

import logging
import warnings

from click.testing import CliRunner

from cli import main
from models.plot import allocation_plot, cjk_font
from optimizer import optimize
from models.curves import HillCurve
from optimizer.periods import PeriodChannel, PeriodProblem, optimize_periods
from scenarios import example_path, load_scenario

PNG = b"\x89PNG\r\n\x1a\n"


def _chinese_plan():
    sc = load_scenario(example_path("pasted_curves.toml"))
    return sc, optimize(sc.problem)


def _draw_capturing(draw, *args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draw(*args)
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_chinese_channel_names_render_or_the_missing_font_is_named(tmp_path, caplog):
    sc, plan = _chinese_plan()
    d = plan.to_dict()
    assert any("抖音" in (c["label"] or "") for c in d["channels"])
    path = tmp_path / "plan.png"
    with caplog.at_level(logging.WARNING, logger="models.plot"):
        missing = _draw_capturing(allocation_plot, d, str(path), "季度预算 plan")
    assert path.read_bytes()[:8] == PNG
    if cjk_font() is not None:  # CI installs one (.ci/run): every glyph must come out
        assert missing == []
        assert caplog.records == []
    else:
        assert missing, "matplotlib drew CJK text without a CJK font and said nothing?"
        assert "no CJK font is installed" in caplog.text and "fonts-noto-cjk" in caplog.text


def test_period_plan_chart_and_cli_plot(tmp_path):
    channels = tuple(PeriodChannel(name=n, curve=HillCurve(beta=b, k=2e4), efficiency=(1.0, 1.4, 0.8))
                     for n, b in (("抖音", 2e5), ("小红书", 1.5e5), ("企业微信", 1e5)))
    periodic = optimize_periods(PeriodProblem(periods=("10月", "11月", "12月"), channels=channels, budget=150_000.0))
    path = tmp_path / "periods.svg"
    allocation_plot(periodic.to_dict(), str(path), "by period")
    svg = path.read_text()
    assert svg.lstrip().startswith("<?xml") and "recommended spend per period" in svg

    png = tmp_path / "cli.png"
    r = CliRunner().invoke(main, ["allocate", str(example_path("pasted_curves.toml")), "--plot", str(png)])
    assert r.exit_code == 0, r.stderr
    assert png.read_bytes()[:8] == PNG


def test_a_chart_that_cannot_be_written_leaves_the_old_file_and_exits_1(tmp_path):
    target = tmp_path / "keep.png"
    target.write_bytes(b"old chart")
    r = CliRunner().invoke(main, ["allocate", str(example_path("pasted_curves.toml")), "--plot",
                                  str(tmp_path / "missing-dir" / "x.png")])
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: cannot draw")
    assert target.read_bytes() == b"old chart"
    bad = CliRunner().invoke(main, ["allocate", str(example_path("pasted_curves.toml")), "--plot", str(tmp_path / "x.nosuchformat")])
    assert bad.exit_code == 1 and "cannot draw" in bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]
