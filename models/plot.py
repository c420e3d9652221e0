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
import os
import re
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["CJK_FONTS", "allocation_plot", "cjk_font", "comparison_plot", "forecast_plot"]

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


def _add_bundled_font(font_manager) -> None:
    """Register the bundled CJK font with matplotlib (found without importing ``mplfonts``,
    whose import pulls in its command-line helpers)."""
    import importlib.util

    spec = importlib.util.find_spec("mplfonts")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / BUNDLED_FONT
        if path.is_file():
            try:
                font_manager.fontManager.addfont(str(path))
            except (OSError, RuntimeError, ValueError) as exc:  # a damaged install: fall back to system fonts
                logger.debug("cannot load the bundled CJK font %s: %s", path, exc)
            return


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


def _save(fig, plt, path: str) -> None:
    from models.atomic import atomic_target

    try:
        with atomic_target(path) as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)


def forecast_plot(fc: dict, path: str, title: str) -> None:
    """Baseline and each plan's total per period with P10–P90 bands (``fc`` as
    :func:`scenarios.plan.forecast_scenario` returns it), written to ``path`` (PNG, SVG, PDF)."""
    plt = _pyplot([title, *fc["periods"], *fc["plans"]])
    x = range(len(fc["periods"]))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    series = [("baseline", fc["baseline"])] + [(f"{n} plan", p["total"]) for n, p in fc["plans"].items()]
    for name, b in series:
        ax.plot(x, b["p50"], label=name)
        ax.fill_between(x, b["p10"], b["p90"], alpha=0.2)
    ax.set_xticks(list(x))
    ax.set_xticklabels(fc["periods"], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("KPI per period")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    _save(fig, plt, path)


def allocation_plot(plan: dict, path: str, title: str) -> None:
    """Spend per channel, current against recommended (``plan`` is an allocation's
    ``to_dict()``), and for a period plan the recommended spend per period, stacked by
    channel; written to ``path`` (PNG, SVG, PDF)."""
    channels = plan["channels"]
    names = [c.get("label") or c["channel"] for c in channels]
    periods = plan.get("periods") or []
    plt = _pyplot([title, *names, *(p["period"] for p in periods)])
    panels = 2 if periods else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels + 2, max(3.0, 0.35 * len(names) + 1.5)), squeeze=False)
    ax = axes[0][0]
    y = range(len(names))
    height = 0.4
    ax.barh([i + height / 2 for i in y], [c["current_spend"] for c in channels], height, label="current")
    ax.barh([i - height / 2 for i in y], [c["spend"] for c in channels], height, label="recommended")
    ax.set_yticks(list(y))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xlabel(f"spend ({plan.get('currency', '')})")
    ax.legend()
    if periods:
        ax2 = axes[0][1]
        x = range(len(periods))
        bottom = [0.0] * len(periods)
        for j, name in enumerate(names):
            values = [p["channels"][j]["spend"] for p in periods]
            ax2.bar(list(x), values, bottom=bottom, label=name)
            bottom = [b + v for b, v in zip(bottom, values)]
        ax2.set_xticks(list(x))
        ax2.set_xticklabels([p["period"] for p in periods], rotation=45, ha="right", fontsize=8)
        ax2.set_ylabel("recommended spend per period")
        if len(names) <= 12:
            ax2.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
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
    ax2.set_ylabel("expected return" + (" (whiskers: P10–P90)" if band else ""))
    fig.suptitle(str(title).replace("$", r"\$"))
    fig.tight_layout()
    _save(fig, plt, path)
