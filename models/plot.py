"""Charts: the forecast with its bands, and a plan against the current one, per channel.

matplotlib is imported here only, and lazily, with the Agg backend, so the rest of the engine
works without a display or matplotlib's import cost. Channel and scenario names are often
Chinese (抖音, 企业微信, 小程序): matplotlib's default font has no CJK glyphs and draws them as
boxes, so when a label needs one a CJK font goes in front of the default as a fallback:
Noto Sans CJK SC, which the ``mplfonts`` dependency ships (pip installs it; no system font
needed), else the first installed one of :data:`CJK_FONTS`. With none at all the chart is
still drawn and a warning says what to install. Files are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["CJK_FONTS", "allocation_plot", "bundled_cjk_font", "cjk_characters", "cjk_font", "compact_money",
           "comparison_plot", "forecast_plot", "frontier_plot", "group_shares_plot", "money_formatter",
           "response_curves_plot"]

#: CJK font families tried in order (Linux packages first, then macOS and Windows system fonts).
CJK_FONTS = (
    "Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "Source Han Sans CN",
    "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Droid Sans Fallback", "AR PL UMing CN",
    "PingFang SC", "Hiragino Sans GB", "Heiti SC", "Microsoft YaHei", "SimHei",
)

_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")


#: Parts of the file names of those fonts, to find one installed after matplotlib cached its list.
_CJK_FILES = ("notosanscjk", "notoserifcjk", "sourcehansans", "wqy", "droidsansfallback", "uming", "ukai",
              "pingfang", "hiragino", "msyh", "simhei", "simsun", "stheiti")


#: The Noto Sans CJK SC font that the ``mplfonts`` package ships (a dependency), so charts draw
#: Chinese names on every machine, with or without system fonts.
BUNDLED_FONT = "fonts/NotoSansCJKsc-Regular.otf"


def bundled_cjk_font() -> Path | None:
    """The Noto Sans CJK SC file the ``mplfonts`` dependency ships, or None (a damaged install).

    Found without importing ``mplfonts``, whose import pulls in its command-line helpers.
    """
    import importlib.util

    spec = importlib.util.find_spec("mplfonts")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / BUNDLED_FONT
        if path.is_file():
            return path
    return None


def cjk_characters(text: str) -> str:
    """The distinct CJK characters of ``text``, sorted (those a Latin font has no glyph for)."""
    return "".join(sorted(set(_CJK.findall(str(text)))))


def _add_bundled_font(font_manager) -> None:
    """Register the bundled CJK font with matplotlib."""
    path = bundled_cjk_font()
    if path is not None:
        try:
            font_manager.fontManager.addfont(str(path))
        except (OSError, RuntimeError, ValueError) as exc:  # a damaged install: fall back to system fonts
            logger.debug("cannot load the bundled CJK font %s: %s", path, exc)


def cjk_font() -> str | None:
    """The first installed family of :data:`CJK_FONTS`, or None.

    The font bundled through the ``mplfonts`` dependency comes first; without it (a damaged
    install) the system's fonts are searched, including ones installed after matplotlib cached
    its font list.
    """
    from matplotlib import font_manager

    def first():
        installed = {f.name for f in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FONTS if name in installed), None)

    found = first()
    if found is None:
        _add_bundled_font(font_manager)
        found = first()
    if found is None:
        known = {f.fname for f in font_manager.fontManager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in known and any(part in os.path.basename(path).lower() for part in _CJK_FILES):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):  # unreadable font file: skip it
                    continue
        found = first()
    return found


def _pyplot(texts):
    """pyplot on Agg, with a CJK fallback font when any of ``texts`` needs one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if any(_CJK.search(str(t)) for t in texts):
        font = cjk_font()
        if font is None:
            logger.warning("no CJK font is available, so Chinese names will show as boxes; reinstall the "
                           "mplfonts package (pip install mplfonts) or install a system CJK font")
        else:
            families = [font] + [f for f in matplotlib.rcParams["font.sans-serif"] if f != font]
            matplotlib.rcParams["font.sans-serif"] = families
            matplotlib.rcParams["font.family"] = "sans-serif"
            matplotlib.rcParams["axes.unicode_minus"] = False  # CJK fonts often lack U+2212
    return plt



#: Channels a stacked chart shows one by one; the rest are one stack (a legend of 45 names was cut off).
STACKED_SHOWN = 10


def largest_and_rest(names: list[str], series: list[list[float]], keep: int = STACKED_SHOWN):
    """(labels, series) for a stacked chart: the ``keep`` channels with the most spend in any
    column, in their order, then the others summed as one "other N channels" series."""
    if len(names) <= keep + 1:
        return list(names), [list(v) for v in series]
    chosen = sorted(sorted(range(len(names)), key=lambda j: -max(series[j], default=0.0))[:keep])
    kept = set(chosen)
    rest = [j for j in range(len(names)) if j not in kept]
    other = [sum(series[j][t] for j in rest) for t in range(len(series[0]))]
    return [names[j] for j in chosen] + [f"other {len(rest)} channels"], [list(series[j]) for j in chosen] + [other]


def stack_colours(shown: list[str], names: list[str]) -> list[str]:
    """One colour per stack of :func:`largest_and_rest`; the summed rest in grey."""
    out = [f"C{j % 10}" for j in range(len(shown))]
    if len(shown) != len(names):
        out[-1] = "0.7"
    return out


def _save(fig, plt, path: str) -> None:
    from models.atomic import atomic_target

    try:
        with atomic_target(path) as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)


def forecast_plot(fc: dict, path: str, title: str) -> None:
    """Baseline and each plan's total per period with P10–P90 bands (``fc`` as
    :func:`scenarios.plan.forecast_scenario` returns it), written to ``path`` (PNG, SVG, PDF).

    The x axis is the periods' dates. When ``fc`` has a ``"history"`` entry (``{"dates",
    "actual"}`` and optionally ``"fitted"``: the KPI the history recorded and the model's fit of
    it, dates as ISO strings) it is drawn before the horizon, so the forecast reads as the
    history's continuation. ``fc.get("currency")`` (an ISO code) labels the KPI axis as money,
    unless ``fc.get("return_unit")`` is "kpi" (a KPI that is not money).
    """
    import datetime as dt

    plt = _pyplot([title, *fc["plans"]])
    freq = fc.get("frequency") or "period"
    unit = _FREQUENCY_UNIT.get(freq, "period")
    dates = [dt.date.fromisoformat(d) for d in fc["periods"]]
    fig, ax = plt.subplots(figsize=(10, 4.8), layout="constrained")
    history = fc.get("history")
    if history and history.get("dates"):
        hd = [dt.date.fromisoformat(d) for d in history["dates"]]
        ax.plot(hd, history["actual"], color="0.2", lw=1.2, label="actual (history)")
        if history.get("fitted") is not None:
            ax.plot(hd, history["fitted"], color="0.55", lw=1.0, ls="--", label="model's fit of the history")
        ax.axvline(dates[0], color="0.6", lw=0.8, ls=":")
        ax.annotate("forecast →", (dates[0], 1.0), xycoords=("data", "axes fraction"), xytext=(4, -12),
                    textcoords="offset points", fontsize=8, color="0.35")
    series = [("baseline (no media)", fc["baseline"])] + [
        (f"{n} plan", p["total"]) for n, p in fc["plans"].items()]
    for name, b in series:
        line, = ax.plot(dates, b["p50"], marker="o", ms=3, label=f"{_plain(name)}: P50")
        ax.fill_between(dates, b["p10"], b["p90"], alpha=0.18, color=line.get_color(), lw=0,
                        label=f"{_plain(name)}: P10–P90")
    _date_axis(ax)
    in_money = fc.get("return_unit", "money") == "money"  # a KPI that is not money reads as a plain number
    ax.yaxis.set_major_formatter(money_formatter(fc.get("currency") if in_money else None))
    ax.set_ylabel(f"KPI per {unit}")
    ax.set_title(_plain(title))
    ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="outside lower center", ncol=min(4, len(ax.get_legend_handles_labels()[0])), fontsize=8,
               frameon=False)
    _save(fig, plt, path)


def allocation_plot(plan: dict, path: str, title: str) -> None:
    """Spend per channel, current against recommended (``plan`` is an allocation's
    ``to_dict()``), and for a period plan the recommended spend per period, stacked by
    channel; written to ``path`` (PNG, SVG, PDF)."""
    channels = plan["channels"]
    names = [c.get("label") or c["channel"] for c in channels]
    periods = plan.get("periods") or []
    plt = _pyplot([title, *names, *(p["period"] for p in periods)])
    names = [_plain(n) for n in names]
    currency = plan.get("currency")
    panels = 2 if periods else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels + 2, max(3.0, 0.4 * len(names) + 2.0)), squeeze=False,
                             layout="constrained")
    ax = axes[0][0]
    y = range(len(names))
    height = 0.4
    # current above recommended within each channel, and in the same order in the legend
    ax.barh([i - height / 2 for i in y], [c["current_spend"] for c in channels], height, label="current",
            color="0.7")
    ax.barh([i + height / 2 for i in y], [c["spend"] for c in channels], height, label="recommended",
            color="C0")
    ax.set_yticks(list(y))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(money_formatter(currency))
    ax.set_xlabel(f"spend ({currency})" if currency else "spend")
    ax.grid(axis="x", alpha=0.3)
    # below the axes, never over a bar
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    if periods:
        ax2 = axes[0][1]
        x = range(len(periods))
        bottom = [0.0] * len(periods)
        shown, stacks = largest_and_rest(names, [[p["channels"][j]["spend"] for p in periods]
                                                 for j in range(len(names))])
        for name, values, colour in zip(shown, stacks, stack_colours(shown, names)):
            ax2.bar(list(x), values, bottom=bottom, label=name, color=colour)
            bottom = [b + v for b, v in zip(bottom, values)]
        ax2.set_xticks(list(x))
        ax2.set_xticklabels([_plain(p["period"]) for p in periods], rotation=45, ha="right", fontsize=8)
        ax2.yaxis.set_major_formatter(money_formatter(currency))
        ax2.set_ylabel("recommended spend per period")
        # beside the stacks, never over them; top entry = top of the stack
        handles, labels = ax2.get_legend_handles_labels()
        ax2.legend(handles[::-1], labels[::-1], fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                   frameon=False)
    fig.suptitle(_plain(title))
    _save(fig, plt, path)


# --------------------------------------------------------------------------------------------
# Axis formatting shared by every chart: money without offsets, user text drawn as text, dates.

#: The word for one period of a history's frequency ("KPI per week").
_FREQUENCY_UNIT = {"daily": "day", "weekly": "week", "monthly": "month"}

_UNITS = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))


def _plain(text) -> str:
    """User text drawn as it is: an unescaped ``$`` would start matplotlib's math mode (and a
    label such as ``$5 promo $`` would be drawn as math or fail the chart)."""
    return str(text).replace("$", r"\$")


def _money_prefix(currency: str | None) -> str:
    if not currency:
        return ""
    from optimizer.result import currency_symbol  # the engine's one table of currency symbols

    symbol = currency_symbol(currency)
    return symbol + (" " if symbol[-1:].isalpha() else "")


def compact_money(value: float, currency: str | None = None) -> str:
    """A tick label for money: ``1_250_000`` → ``¥1.25M``, ``850_000`` → ``¥850k``, ``0`` → ``¥0``.

    Up to four significant digits, the unit (k, M, B, T) chosen per value, never scientific
    notation or an offset. ``currency`` is an ISO code (``"CNY"`` → ``¥``, ``"SEK"`` →
    ``SEK 850k``) or None for a plain number.
    """
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    prefix = _money_prefix(currency)
    a = abs(v)
    sign = "-" if v < 0 and a >= 0.005 else ""
    for div, suffix in _UNITS:
        t = float(f"{a / div:.4g}")
        if t >= 1:
            return f"{sign}{prefix}{t:,.4g}{suffix}"
    if a < 0.005:
        return f"{prefix}0"
    return f"{sign}{prefix}{a:,.2f}".rstrip("0").rstrip(".")


def money_formatter(currency: str | None = None):
    """A matplotlib ``FuncFormatter`` writing each tick with :func:`compact_money` (no "1e6")."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos=None: compact_money(v, currency))


def _date_axis(ax) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


# --------------------------------------------------------------------------------------------
# The report's charts (scenarios/report.py computes the numbers; these only draw them)


def response_curves_plot(data: dict, path: str, title: str) -> None:
    """One small panel per channel: its response curve, the P10–P90 band of its curve samples
    (posterior draws or bootstrap resamples), the history's periods as points, and the current and
    recommended spend marked.

    Parameters
    ----------
    data
        ``{"currency", "x_label", "y_label", "points_label", "band_label", "channels": [{"label", "x", "y",
        "p10", "p90", "points": {"x", "y"} or None, "current": {"spend", "return"},
        "recommended": {"spend", "return"} or None}]}``; ``p10``/``p90`` None where the curve has
        no samples (written in the scenario). An optional ``"return_currency"`` formats the
        return axis ("" for a KPI that is not money: plain numbers); else ``currency`` does.
    path
        Where to write the chart (PNG, SVG, PDF).
    title
        The figure's title.
    """
    channels = data["channels"]
    if not channels:
        raise ValueError("no channels to draw")
    plt = _pyplot([title, *(c["label"] for c in channels)])
    currency = data.get("currency")
    n = len(channels)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.1 * nrows + 1.0), squeeze=False,
                             layout="constrained")
    handles = {}
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_visible(False)
            continue
        c = channels[i]
        if c.get("p10") is not None and c.get("p90") is not None:
            handles["band"] = ax.fill_between(c["x"], c["p10"], c["p90"], color="C0", alpha=0.18, lw=0,
                                              label=_plain(data.get("band_label") or "P10–P90 of the curve samples"))
        pts = c.get("points")
        if pts and len(pts["x"]):
            handles["points"] = ax.scatter(pts["x"], pts["y"], s=7, color="0.45", alpha=0.35, lw=0,
                                           label=_plain(data.get("points_label") or "history"))
        handles["curve"], = ax.plot(c["x"], c["y"], color="C0", lw=1.8, label="response curve")
        cur = c.get("current")
        if cur is not None:
            handles["current"], = ax.plot([cur["spend"]], [cur["return"]], "o", ms=7, mfc="white", mec="0.2",
                                          mew=1.5, label="current plan")
        rec = c.get("recommended")
        if rec is not None:
            handles["recommended"], = ax.plot([rec["spend"]], [rec["return"]], "D", ms=7, color="C3",
                                              label="recommended plan")
            ax.axvline(rec["spend"], color="C3", lw=0.8, ls=":", alpha=0.8)
        ax.set_title(_plain(c["label"]), fontsize=10)
        if i >= n - ncols:  # the bottom panel of each column
            ax.set_xlabel(_plain(data.get("x_label") or "spend"), fontsize=8)
        if i % ncols == 0:
            ax.set_ylabel(_plain(data.get("y_label") or "return"), fontsize=8)
        ax.xaxis.set_major_formatter(money_formatter(currency))
        ax.yaxis.set_major_formatter(money_formatter(data.get("return_currency", currency) or None))
        ax.tick_params(labelsize=8)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.25)
    fig.suptitle(_plain(title))
    order = [k for k in ("curve", "band", "points", "current", "recommended") if k in handles]
    fig.legend([handles[k] for k in order], [handles[k].get_label() for k in order], loc="outside lower center",
               ncol=len(order), fontsize=8, frameon=False)
    _save(fig, plt, path)


def group_shares_plot(data: dict, path: str, title: str) -> None:
    """Each group's share of the budget (and the reserve's): current plan, recommended plan and
    the reference split side by side.

    Parameters
    ----------
    data
        ``{"groups": [{"label", "current", "recommended", "reference"}]}``: shares as fractions;
        ``reference`` None where the reference split names no such group.
    path, title
        As for :func:`allocation_plot`.
    """
    from matplotlib.ticker import PercentFormatter

    groups = data["groups"]
    if not groups:
        raise ValueError("no groups to draw")
    plt = _pyplot([title, *(g["label"] for g in groups)])
    fig, ax = plt.subplots(figsize=(max(6.0, 1.5 * len(groups) + 2.5), 4.4), layout="constrained")
    x = range(len(groups))
    width = 0.27
    ref = [g.get("reference") for g in groups]
    series = [("current", [g["current"] for g in groups], {"color": "0.7"}),
              ("recommended", [g["recommended"] for g in groups], {"color": "C0"})]
    if any(r is not None for r in ref):
        series.append(("reference split", [r if r is not None else 0.0 for r in ref],
                       {"color": "white", "edgecolor": "C2", "hatch": "///", "lw": 1.0}))
    offset = (len(series) - 1) / 2
    top = max(max(v) for _, v, _ in series)
    for j, (name, values, style) in enumerate(series):
        xs = [i + (j - offset) * width for i in x]
        bars = ax.bar(xs, values, width, label=name, **style)
        for b, v, r in zip(bars, values, ref if name == "reference split" else values):
            if name == "reference split" and r is None:
                continue
            ax.annotate(f"{v:.0%}", (b.get_x() + b.get_width() / 2, v), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(list(x))
    ax.set_xticklabels([_plain(g["label"]) for g in groups], fontsize=9)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylim(0, top * 1.15 + 0.01)
    ax.set_ylabel("share of the budget")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(_plain(title))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(series), frameon=False)
    _save(fig, plt, path)


# --------------------------------------------------------------------------------------------
# budget compare


def comparison_plot(cmp: dict, path: str, title: str) -> None:
    """Scenarios side by side (``cmp`` as :func:`scenarios.compare.compare_scenarios` returns it):
    spend per channel, one bar per scenario (no bar where a scenario lacks the channel), and
    each scenario's expected return with its P10–P90 range where its curves are fitted; written
    to ``path`` (PNG, SVG, PDF). Money axes read in full (no "1e6" offset)."""
    from matplotlib.ticker import FuncFormatter

    cols = cmp["scenarios"]
    names = [str(c.get("label") or c["channel"]).replace("$", r"\$") for c in cmp["channels"]]
    scen = [str(c["name"]).replace("$", r"\$") for c in cols]
    plt = _pyplot([title, *names, *scen])
    full = FuncFormatter(lambda v, _pos=None: f"{v:,.0f}")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(14, max(3.5, 0.3 * len(names) * max(2, len(cols)) + 1.5)),
                                  gridspec_kw={"width_ratios": [3, 1.2]})
    y = range(len(names))
    height = 0.8 / max(1, len(cols))
    for j, col in enumerate(cols):
        spends = [(col["channels"].get(c["channel"]) or {}).get("spend") for c in cmp["channels"]]
        pos = [i - 0.4 + height * (j + 0.5) for i in y]
        ax.barh([p for p, s in zip(pos, spends) if s is not None], [s for s in spends if s is not None], height,
                label=scen[j], color=f"C{j % 10}")
    ax.set_yticks(list(y))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(full)
    ax.set_xlabel(f"spend ({cmp.get('currency') or 'each scenario in its own currency'})")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(len(cols), 3), frameon=False)
    returns = [c.get("expected_return") or 0.0 for c in cols]
    p10 = [c.get("return_p10") for c in cols]
    p90 = [c.get("return_p90") for c in cols]
    low = [0.0 if lo is None else max(r - lo, 0.0) for r, lo in zip(returns, p10)]
    high = [0.0 if hi is None else max(hi - r, 0.0) for r, hi in zip(returns, p90)]
    x = list(range(len(cols)))
    band = any(high) or any(low)
    ax2.bar(x, returns, yerr=[low, high] if band else None, capsize=4, color=[f"C{j % 10}" for j in x])
    ax2.set_xticks(x)
    ax2.set_xticklabels(scen, rotation=30, ha="right", fontsize=8)
    ax2.yaxis.set_major_formatter(full)
    units = {c.get("return_unit", "money") for c in cols}
    ax2.set_ylabel("expected return" + ("" if units == {"money"} else " (KPI units)" if units == {"kpi"} else
                                        " (money or KPI units: see the table)") + (" (whiskers: P10–P90)" if band else ""))
    fig.suptitle(str(title).replace("$", r"\$"))
    fig.tight_layout()
    _save(fig, plt, path)


# --------------------------------------------------------------------------------------------
# budget frontier


def frontier_plot(data: dict, path: str, title: str) -> None:
    """The budget frontier (``data`` as :func:`scenarios.frontier.budget_frontier` returns it):
    expected return against the budget with its P10–P90 band, the plan's marginal ROI with the
    break-even line (1) and the scenario's floor, and the channel mix (spend per channel,
    stacked) at each level; break-even, the floor, the favoured level and the scenario's own
    budget marked. Money axes in the scenario's currency without offsets; the top axis reads the
    levels (× the budget, or % of the forecast KPI). Written to ``path`` (PNG, SVG, PDF).

    Raises
    ------
    ValueError
        No level has a plan (every one infeasible).
    """
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    rows = [r for r in data["levels"] if r["status"] == "optimal"]
    if not rows:
        raise ValueError("no level of the frontier has a feasible plan to draw")
    names = [c.get("label") or c["channel"] for c in data["channels"]]
    plt = _pyplot([title, *names])
    names = [_plain(n) for n in names]
    cc = data.get("currency")
    money = money_formatter(cc)
    ref = float(data["reference"])
    forecast = data["basis"] == "forecast"
    budgets = [r["budget"] for r in rows]
    fig, axes = plt.subplot_mosaic([["return", "mroi"], ["mix", "mix"]], figsize=(12, 8.5), layout="constrained")

    def level_axis(ax) -> None:
        top = ax.secondary_xaxis("top", functions=(lambda b: b / ref, lambda v: v * ref))
        top.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=1) if forecast
                                      else FuncFormatter(lambda v, _pos=None: f"{v:.3g}×"))
        top.set_xlabel("share of the forecast KPI" if forecast else "× the scenario's budget", fontsize=8)
        top.tick_params(labelsize=8)
        ax.xaxis.set_major_formatter(money)
        ax.grid(alpha=0.3)

    def marks(ax) -> None:
        for key, style, label in (("break_even", "--", "break-even (mROI 1)"), ("floor", ":", "mROI floor")):
            block = data.get(key)
            if block and budgets[0] <= block["budget"] <= budgets[-1]:
                ax.axvline(block["budget"], color="C3", ls=style, lw=1, label=label)
        fav = data.get("favoured")
        if fav:
            ax.axvline(fav["budget"], color="C2", lw=1.5, alpha=0.7, label="favoured level")
        own = data.get("scenario_budget")
        if own and budgets[0] <= own <= budgets[-1]:
            ax.axvline(own, color="0.5", lw=1, ls="-.", label="scenario's budget")

    ax = axes["return"]
    ax.plot(budgets, [r["expected_return"] for r in rows], marker="o", ms=3, color="C0", label="expected return")
    bands = [(r["budget"], r["return_interval"]) for r in rows if r["return_interval"]]
    if bands:
        ax.fill_between([b for b, _ in bands], [ri["p10"] for _, ri in bands], [ri["p90"] for _, ri in bands],
                        color="C0", alpha=0.2, lw=0, label="P10–P90 over curve samples")
    ax.plot(budgets, [r["spend"] for r in rows], color="0.6", lw=1, label="spend (ROI 1)")
    marks(ax)
    level_axis(ax)
    in_money = data.get("return_unit", "money") == "money"  # a KPI that is not money reads as a plain number
    ax.yaxis.set_major_formatter(money if in_money else money_formatter(None))
    ax.set_xlabel(f"budget ({cc})" if cc else "budget")
    ax.set_ylabel("expected return" if in_money else "expected return (KPI units)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)

    ax = axes["mroi"]
    m = [(r["budget"], r["marginal_roi"]) for r in rows if r["marginal_roi"] is not None]
    ax.plot([b for b, _ in m], [v for _, v in m], marker="o", ms=3, color="C1", label="marginal ROI of the plan")
    ax.axhline(1.0, color="C3", lw=0.8, alpha=0.6)
    marks(ax)
    level_axis(ax)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"budget ({cc})" if cc else "budget")
    ax.set_ylabel("return of the last unit of money")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)

    ax = axes["mix"]
    shown, stacks = largest_and_rest(names, [[r["channels"][j]["spend"] for r in rows] for j in range(len(names))])
    ax.stackplot(budgets, *stacks, labels=shown, colors=stack_colours(shown, names), alpha=0.85)
    ax.plot(budgets, budgets, color="0.3", lw=1, ls="--", label="budget (the gap above the stack is the reserve)")
    level_axis(ax)
    ax.yaxis.set_major_formatter(money)
    ax.set_xlabel(f"budget ({cc})" if cc else "budget")
    ax.set_ylabel("spend per channel")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.suptitle(_plain(title))
    _save(fig, plt, path)

