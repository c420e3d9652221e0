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


# --------------------------------------------------------------------------------------------
# Chart quality (issue #12 §3): money reads as money, legends hide nothing, Chinese names draw.


def _figures(monkeypatch):
    """Keep each drawn figure (laid out) instead of only writing it."""
    import models.plot

    kept = []
    real = models.plot._save

    def save(fig, plt, path):
        fig.canvas.draw()
        kept.append(fig)
        close, plt.close = plt.close, lambda *a: None  # keep the figure open: _save closes it
        try:
            real(fig, plt, path)
        finally:
            plt.close = close

    monkeypatch.setattr(models.plot, "_save", save)
    return kept


def _tick_texts(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]


def _big_plan() -> dict:
    """A plan in the tens of millions, where matplotlib's default axis writes "1e7"."""
    channels = [{"channel": c, "label": label, "group": g, "spend": s, "current_spend": cur}
                for c, label, g, s, cur in (("douyin", "Douyin 抖音", "content", 18_000_000.0, 14_000_000.0),
                                            ("wecom", "企业微信社群", "private_domain", 12_500_000.0, 12_000_000.0),
                                            ("popup", "Pop-up stores 快闪店", "offline", 9_000_000.0, 15_000_000.0))]
    return {"currency": "CNY", "channels": channels}


def test_money_tick_labels_known_answers():
    from models.plot import compact_money

    assert [compact_money(v, "CNY") for v in (0, 850_000, 1_250_000, 999_999.7, 31_250_000, 2e9, -1_500_000, 12.5)] == [
        "¥0", "¥850k", "¥1.25M", "¥1M", "¥31.25M", "¥2B", "-¥1.5M", "¥12.5"]
    assert compact_money(2_500_000, "USD") == "$2.5M" and compact_money(2_500_000, "SEK") == "SEK 2.5M"
    assert compact_money(2_500_000) == "2.5M" and compact_money(-1e-9, "CNY") == "¥0"


def test_money_axes_have_no_offset_and_no_scientific_notation(tmp_path, monkeypatch):
    from models.plot import allocation_plot, forecast_plot, group_shares_plot, response_curves_plot

    kept = _figures(monkeypatch)
    allocation_plot(_big_plan(), str(tmp_path / "a.png"), "plan")
    periods = ["2025-01-06", "2025-01-13", "2025-01-20"]
    band = {"p10": [6.9e6, 7.0e6, 7.1e6], "p50": [7.2e6, 7.3e6, 7.4e6], "p90": [7.5e6, 7.6e6, 7.7e6]}
    forecast_plot({"frequency": "weekly", "periods": periods, "currency": "CNY", "baseline": band,
                   "plans": {"recommended": {"total": band}},
                   "history": {"dates": ["2024-12-16", "2024-12-23", "2024-12-30"], "actual": [7.1e6, 6.8e6, 7.0e6]}},
                  str(tmp_path / "f.png"), "forecast")
    xs = [i * 2e5 for i in range(50)]
    response_curves_plot({"currency": "CNY", "channels": [
        {"label": "Douyin 抖音", "x": xs, "y": [3e7 * x / (x + 2e6) for x in xs], "p10": None, "p90": None,
         "points": {"x": [1e6, 2e6], "y": [1e7, 1.4e7]}, "current": {"spend": 1.4e6, "return": 1.2e7},
         "recommended": {"spend": 1.8e6, "return": 1.4e7}}]}, str(tmp_path / "c.png"), "curves")
    assert len(kept) == 3
    money_axes = [kept[0].axes[0].xaxis, kept[1].axes[0].yaxis, kept[2].axes[0].xaxis, kept[2].axes[0].yaxis]
    for axis in money_axes:
        labels = _tick_texts(axis)
        assert labels and all(t.lstrip("-−").startswith("¥") for t in labels), labels
        assert axis.get_offset_text().get_text() == "", axis.get_offset_text().get_text()
        assert not [t for t in labels if "e+" in t or "e6" in t or "e7" in t]
    # the forecast's x axis is dates, history included: no period index numbers
    assert any(t in ("Jan", "2025", "Dec", "2024") for t in _tick_texts(kept[1].axes[0].xaxis))


def _overlaps(fig, legend, patches) -> list:
    renderer = fig.canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    return [p for p in patches if p.get_height() and p.get_width() and box.overlaps(p.get_window_extent(renderer))]


def test_legends_cover_no_bars(tmp_path, monkeypatch):
    """The legend of every bar chart sits outside the bars (it used to sit on the longest ones)."""
    from models.plot import allocation_plot, group_shares_plot

    kept = _figures(monkeypatch)
    allocation_plot(_big_plan(), str(tmp_path / "a.png"), "plan")
    group_shares_plot({"groups": [{"label": "内容 content", "current": 0.35, "recommended": 0.44, "reference": 0.35},
                                  {"label": "offline", "current": 0.6, "recommended": 0.51, "reference": 0.6},
                                  {"label": "reserve", "current": 0.05, "recommended": 0.05, "reference": None}]},
                      str(tmp_path / "g.png"), "groups")
    for fig in kept:
        for ax in fig.axes:
            legend = ax.get_legend()
            assert legend is not None
            assert _overlaps(fig, legend, ax.patches) == []


def test_report_charts_draw_chinese_names_and_dollar_signs_as_text(tmp_path, caplog):
    """Every glyph of a Chinese name is in the font used (no boxes); a label with two `$` is text,
    not matplotlib math (which would fail the chart or draw it in italics)."""
    from models.plot import group_shares_plot, response_curves_plot

    xs = [i * 1e4 for i in range(20)]
    data = {"currency": "CNY", "channels": [
        {"label": label, "x": xs, "y": [2 * x for x in xs], "p10": [x for x in xs], "p90": [3 * x for x in xs],
         "points": None, "current": {"spend": 5e4, "return": 1e5}, "recommended": None}
        for label in ("抖音", "$5 promo$ 小红书", "企业微信社群")]}
    with caplog.at_level(logging.WARNING, logger="models.plot"):
        missing = _draw_capturing(response_curves_plot, data, str(tmp_path / "c.png"), "曲线 $x$")
        missing += _draw_capturing(group_shares_plot, {"groups": [
            {"label": "私域 private domain", "current": 0.2, "recommended": 0.25, "reference": 0.2}]},
            str(tmp_path / "g.png"), "分组")
    assert missing == [] and caplog.records == []
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG and (tmp_path / "g.png").read_bytes()[:8] == PNG


def test_many_channels_stack_as_the_largest_ten_and_the_rest():
    """45 channels' legend was cut off beside the frontier's mix panel and a period chart stacked
    45 bars in a repeating 10-colour cycle with no legend."""
    from models.plot import largest_and_rest, stack_colours

    names = [f"ch{j:02d}" for j in range(45)]
    series = [[float(j), float(j % 7)] for j in range(45)]  # the largest by its most in any column: ch35…ch44
    shown, stacks = largest_and_rest(names, series)
    assert shown == [f"ch{j}" for j in range(35, 45)] + ["other 35 channels"]
    total = [sum(v[t] for v in series) for t in range(2)]
    assert [sum(v[t] for v in stacks) for t in range(2)] == total  # nothing lost
    colours = stack_colours(shown, names)
    assert colours[-1] == "0.7" and len(set(colours[:-1])) == 10
    # Up to eleven channels each keep their own stack.
    few, same = largest_and_rest(names[:11], series[:11])
    assert few == names[:11] and same == series[:11] and "0.7" not in stack_colours(few, names[:11])
