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
from optimizer import PeriodChannel, PeriodProblem, optimize_periods
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


def test_chinese_channel_names_render_with_the_bundled_font(tmp_path, caplog):
    """No system font is assumed: the CJK font comes with a pip dependency (mplfonts)."""
    sc, plan = _chinese_plan()
    d = plan.to_dict()
    assert any("抖音" in (c["label"] or "") for c in d["channels"])
    assert cjk_font() == "Noto Sans CJK SC"
    path = tmp_path / "plan.png"
    with caplog.at_level(logging.WARNING, logger="models.plot"):
        missing = _draw_capturing(allocation_plot, d, str(path), "季度预算 plan")
    assert path.read_bytes()[:8] == PNG
    assert missing == []
    assert caplog.records == []


def test_without_any_cjk_font_the_chart_is_drawn_and_the_fix_is_named(tmp_path, caplog, monkeypatch):
    import matplotlib

    import models.plot

    monkeypatch.setattr(models.plot, "cjk_font", lambda: None)
    monkeypatch.setitem(matplotlib.rcParams, "font.sans-serif", ["DejaVu Sans"])  # as before any CJK chart
    sc, plan = _chinese_plan()
    path = tmp_path / "plan.png"
    with caplog.at_level(logging.WARNING, logger="models.plot"):
        missing = _draw_capturing(allocation_plot, plan.to_dict(), str(path), "季度预算 plan")
    assert path.read_bytes()[:8] == PNG
    assert missing, "matplotlib drew CJK text without a CJK font and said nothing?"
    assert "no CJK font is available" in caplog.text and "pip install mplfonts" in caplog.text


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


def test_a_bad_chart_path_is_refused_before_any_work_and_nothing_is_written(tmp_path, monkeypatch):
    """Bad chart paths are refused before any work; a chart that fails half-way through being
    written leaves the old chart whole. Either way --output keeps the old plan and no temporary
    file is left behind. (Each old file checked is the target of the --plot that failed.)"""
    import matplotlib.figure

    plan = tmp_path / "plan.json"
    plan.write_text("old plan")
    odd = tmp_path / "chart.nosuchformat"
    odd.write_bytes(b"old chart")
    args = ["allocate", str(example_path("pasted_curves.toml")), "--format", "json", "-o", str(plan), "--plot"]
    for bad, says in ((tmp_path / "missing-dir" / "chart.png", "does not exist"), (odd, "unknown chart format")):
        r = CliRunner().invoke(main, [*args, str(bad)])
        assert r.exit_code == 2, r.stderr
        assert "--plot" in r.stderr and says in r.stderr
        assert plan.read_text() == "old plan"  # --output untouched: the command failed
    assert odd.read_bytes() == b"old chart"

    chart = tmp_path / "chart.png"
    chart.write_bytes(b"old chart")

    def disk_full(fig, fname, *args, **kwargs):
        with open(fname, "wb") as fh:
            fh.write(PNG)  # the start of a chart, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", disk_full)
    r = CliRunner().invoke(main, [*args, str(chart)])
    assert r.exit_code == 1, r.stderr
    assert r.stderr.startswith(f"Error: cannot draw {chart}: ") and "No space left on device" in r.stderr
    assert chart.read_bytes() == b"old chart"
    assert plan.read_text() == "old plan"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chart.nosuchformat", "chart.png", "plan.json"]


def test_the_command_says_where_it_wrote_the_chart(tmp_path):
    chart = tmp_path / "chart.svg"
    r = CliRunner().invoke(main, ["allocate", str(example_path("pasted_curves.toml")), "--plot", str(chart)])
    assert r.exit_code == 0, r.stderr
    assert f"wrote the chart to {chart}" in r.stderr
    assert chart.read_text().lstrip().startswith("<?xml")
