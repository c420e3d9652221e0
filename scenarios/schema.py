"""Scenario files (TOML): what to plan. Load, validate every key, build a Problem.

Validation collects *every* problem with its key path and value (``channels.douyin.max_share:
must be ≤ 1, got 1.4``) and raises one :class:`ScenarioError`. Unknown keys are errors: they
are usually typos. The full schema is documented in README.md ("Scenario files").
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from models.curves import curve_from_dict, curve_problems
from optimizer import OBJECTIVES, Channel, Group, Problem
from scenarios.errors import ScenarioError
from scenarios.horizon import check_horizon, parse_risk

TOP_KEYS = {
    "name", "description", "objective", "margin", "target_return", "risk",
    "budget", "reserve", "constraints", "current", "groups", "channels", "history", "model",
    "horizon", "pacing", "rebalance", "calibration",
}
#: ``[rebalance]``: limits on what ``budget rebalance`` suggests (scenarios/rebalance.py).
REBALANCE_KEYS = {"unit", "max_change", "min_gain", "locked", "spend_tolerance", "return_tolerance"}
BUDGET_KEYS = {"total", "share_of_forecast", "currency", "horizon"}
RESERVE_KEYS = {"min_share", "max_share"}
CONSTRAINT_KEYS = {"roi_min", "marginal_roi_min"}
CURRENT_KEYS = {"group_shares"}
GROUP_KEYS = {"label", "min_share", "max_share"}
CHANNEL_KEYS = {
    "label", "group", "current", "min_spend", "max_spend", "min_share", "max_share",
    "locked", "max_change", "curve", "efficiency", "min_per_period", "max_per_period",
}
DEFAULT_RESERVE_SHARE = 0.05
#: Curve settings shared by [history] and [model]: how many data periods the plan covers and the
#: extrapolation cap (× the largest spend per period seen; false turns it off).
SOURCE_KEYS = {"path", "periods", "extrapolation_cap"}
#: [history] keys that configure the estimator, with the MediaMixModel argument each sets.
FIT_KEYS = {"holdout": "holdout", "bootstrap": "n_bootstrap", "s_shaped": "s_shaped", "seed": "random_state",
            "holidays": "holidays", "campaign_days": "campaign_days", "calibration": "calibration",
            "method": "method", "draws": "draws", "kpi_unit": "kpi_unit"}
#: The estimators a [history] table may ask for (models.fit.MediaMixModel's ``method``).
FIT_METHODS = ("auto", "bayes", "least_squares")
#: Default horizon, in data periods, when a scenario does not say: one quarter.
QUARTER_PERIODS = {"daily": 91, "weekly": 13, "monthly": 3}
#: Largest amount of money (or return) a scenario may state: ten trillion. Plans are solved as an
#: LP in double precision and rounded to the cent; a double holds every cent exactly only below
#: 2**53 cents (about 9e13), and HiGHS's tolerances are relative (1e-7), so far larger amounts
#: come back as solver failures or crashes instead of plans (a budget of 1e20 crashed, 1e300 was
#: "solver failure"). 1e13 keeps headroom under 9e13 for sums of several such amounts.
MAX_MONEY = 1e13
MAX_MONEY_WHY = "ten trillion: larger amounts cannot be planned to the cent"
#: Smallest positive budget: one cent, the unit plans are rounded to (a smaller one plans nothing).
MIN_BUDGET = 0.01
#: Largest ratio (ROI floors, margin, change fractions, per-period efficiency). A return of a
#: million per unit spent is not a plan but a typo, and a ratio times MAX_MONEY must stay within
#: what the LP can tell apart (roi_min = 1e300 crashed; 1e6 with a budget of 1e13 solves).
MAX_RATIO = 1e6
MAX_RATIO_WHY = "a ratio above a million is not a plausible plan"
#: The group of a channel that names none: a group of its own without limits unless declared.
DEFAULT_GROUP = "other"


@dataclass
class Scenario:
    """A loaded, validated scenario: the problem to solve plus what the file said about it."""

    name: str
    path: Path | None
    problem: Problem
    horizon: str | None = None
    description: str | None = None
    notes: list[str] = field(default_factory=list)
    #: Doubtful but valid things in the file, with their key path (e.g. a channel's group that no
    #: [groups] table declares); :func:`scenarios.plan.plan_scenario` puts them first in the
    #: plan's warnings.
    warnings: list[str] = field(default_factory=list)
    #: The fitted model the curves came from ([history] or [model]), else None.
    model: object = None
    #: Data periods the plan covers (when curves come from a model).
    periods: int | None = None
    #: Channels whose curves came from the model (not written in the file).
    fitted_channels: frozenset = frozenset()
    #: The [horizon] plan, when the scenario plans period by period (scenarios.horizon.HorizonSpec).
    horizon_spec: object = None
    #: ``[rebalance]`` (always set: the defaults when the file has no such table).
    rebalance: object = None
    #: How the scenario's history is read (models.history.HistorySpec); actuals are read the same way.
    history_spec: object = None
    #: ``[budget] share_of_forecast``: the budget as this share of the horizon's forecast KPI.
    share_of_forecast: float | None = None
    #: The KPI forecast that share was taken of (:func:`models.forecast.kpi_forecast`), else None.
    forecast_kpi: dict | None = None
    #: ``risk = "guard:0.1"`` (or ``"cvar:0.1"``): how every plan of the scenario is made, as
    #: ``--risk`` (scenarios.horizon.RiskSpec), which overrides it; None: the expected-best plan.
    risk: object = None


_PERCENT = re.compile(r"\s*\d+(?:\.\d+)?\s*[%％]\s*")  # ％: the full-width sign a Chinese IME types


def _is_percent(value) -> bool:
    """A percentage written as text: "35%", "2.5 %" (TOML has no percent literal)."""
    return isinstance(value, str) and _PERCENT.fullmatch(value) is not None


def _is_number_text(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _percent(value: str) -> float:
    return float(value.strip().rstrip("%％").strip()) / 100.0


class _Checker:
    """Collects problems; each helper returns the value when valid, else None."""

    def __init__(self):
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def table(self, path: str, value, allowed: set[str]) -> dict:
        if not isinstance(value, dict):
            self.add(path, f"must be a table, got {value!r}")
            return {}
        for key in value:
            if key not in allowed:
                hint = difflib.get_close_matches(key, sorted(allowed), n=1)
                self.add(f"{path}.{key}" if path else key,
                         "unknown key" + (f" (did you mean `{hint[0]}`?)" if hint else
                                          f" (allowed: {', '.join(sorted(allowed))})"))
        return value

    def number(self, path: str, value, *, minimum=None, maximum=None, positive=False):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            quoted = isinstance(value, str) and _is_number_text(value)
            self.add(path, f"must be a finite number, got {value!r}" + (": write it without the quotes" if quoted else ""))
            return None
        if positive and value <= 0:
            self.add(path, f"must be > 0, got {value:g}")
            return None
        if minimum is not None and value < minimum:
            self.add(path, f"must be ≥ {minimum:g}, got {value:g}")
            return None
        if maximum is not None and value > maximum:
            self.add(path, f"must be ≤ {maximum:g}, got {value:g}")
            return None
        return float(value)

    def share(self, path: str, value):
        """A share in [0, 1], also written as a percentage string ("35%" is 0.35); 35 for 35% is a
        problem that says how to write it."""
        if _is_percent(value):
            return self.number(path, _percent(value), minimum=0.0, maximum=1.0)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 2 <= value <= 100:  # 35 for 35%
            self.add(path, f"must be ≤ 1 (a share: write {value / 100:g} or \"{value:g}%\"), got {value:g}")
            return None
        return self.number(path, value, minimum=0.0, maximum=1.0)

    def money(self, path: str, value, *, positive: bool = False):
        """An amount of money (or return): ≥ 0 (> 0 if ``positive``) and ≤ :data:`MAX_MONEY`; also
        written as a spreadsheet shows it ("¥12,000,000" is 12000000, as in a history file)."""
        if isinstance(value, str):
            from models.history import number_text

            try:
                value = float(number_text(value))
            except ValueError:
                self.add(path, f"must be an amount of money, got {value!r}: write it as a number, such as "
                               "12_000_000 or 1.2e7 (no quotes), or as \"¥12,000,000\"")
                return None
        value = self.number(path, value, minimum=None if positive else 0.0, positive=positive)
        return self.at_most(path, value, MAX_MONEY, MAX_MONEY_WHY)

    def ratio(self, path: str, value, *, positive: bool = False):
        """A ratio (ROI, margin, fraction): ≥ 0 (> 0 if ``positive``) and ≤ :data:`MAX_RATIO`; also
        written as a percentage string ("50%" is 0.5, as for shares)."""
        if _is_percent(value):
            value = _percent(value)
        value = self.number(path, value, minimum=None if positive else 0.0, positive=positive)
        return self.at_most(path, value, MAX_RATIO, MAX_RATIO_WHY)

    def budget_total(self, path: str, value):
        """A total budget: money, and at least one cent (:data:`MIN_BUDGET`)."""
        value = self.money(path, value, positive=True)
        if value is not None and value < MIN_BUDGET:
            self.add(path, f"must be ≥ {MIN_BUDGET:g} (one cent, the unit plans are rounded to), got {value:g}")
            return None
        return value

    def at_most(self, path: str, value, limit: float, why: str):
        """``value`` if it is None or ≤ ``limit``; else a problem saying why, and None."""
        if value is not None and value > limit:
            self.add(path, f"must be ≤ {limit:g} ({why}), got {value:g}")
            return None
        return value

    def text(self, path: str, value, default=None):
        if value is None:
            return default
        if not isinstance(value, str):
            self.add(path, f"must be a string, got {value!r}")
            return default
        return value

    def ordered(self, path_lo: str, lo, path_hi: str, hi) -> None:
        if lo is not None and hi is not None and lo > hi:
            self.add(path_lo, f"must be ≤ {path_hi.rsplit('.', 1)[-1]} ({hi:,.10g}), got {lo:,.10g}")


@dataclass(frozen=True)
class RebalanceSpec:
    """``[rebalance]``: what a monthly rebalance may suggest (defaults as documented in README).

    ``unit``: transfers are rounded to this amount; ``max_change``: a channel's remaining spend
    moves at most this share of its remaining planned spend in one rebalance; ``min_gain``: no
    transfer is suggested when the re-plan gains less than this share of the remaining expected
    return (no churn for a small gain); ``locked``: channels held to the plan of record;
    ``spend_tolerance`` / ``return_tolerance``: drift when actual spend / attributed return departs
    from the plan by more than this share.
    """

    unit: float = 1000.0
    max_change: float = 0.2
    min_gain: float = 0.002
    locked: tuple[str, ...] = ()
    spend_tolerance: float = 0.1
    return_tolerance: float = 0.2


def check_rebalance(ck, raw, channels: set[str]) -> RebalanceSpec:
    """Validate ``[rebalance]`` (every problem into ``ck``); the defaults where a key is missing."""
    r = ck.table("rebalance", raw, REBALANCE_KEYS)
    d = RebalanceSpec()
    unit = ck.money("rebalance.unit", r.get("unit"), positive=True)
    max_change = ck.share("rebalance.max_change", r.get("max_change"))
    min_gain = ck.share("rebalance.min_gain", r.get("min_gain"))
    spend_tol = ck.share("rebalance.spend_tolerance", r.get("spend_tolerance"))
    return_tol = ck.share("rebalance.return_tolerance", r.get("return_tolerance"))
    locked = r.get("locked", [])
    if not isinstance(locked, list) or not all(isinstance(x, str) for x in locked):
        ck.add("rebalance.locked", f"must be a list of channel names, got {locked!r}")
        locked = []
    for name in locked:
        if name not in channels:
            ck.add("rebalance.locked", f"unknown channel {name!r}")
    return RebalanceSpec(
        unit=d.unit if unit is None else float(unit),
        max_change=d.max_change if max_change is None else float(max_change),
        min_gain=d.min_gain if min_gain is None else float(min_gain),
        locked=tuple(locked),
        spend_tolerance=d.spend_tolerance if spend_tol is None else float(spend_tol),
        return_tolerance=d.return_tolerance if return_tol is None else float(return_tol),
    )


def load_scenario(path: str | Path, *, budget: float | None = None, use_cache: bool = True,
                  periods: int | None = None, progress=None) -> Scenario:
    """Read and validate a scenario file.

    Parameters
    ----------
    path
        The TOML file.
    budget
        Override ``budget.total`` (shares keep their meaning; the current plan keeps its split).
    use_cache
        Reuse a cached fit when the scenario fits curves from ``[history]``.
    periods
        Override the number of data periods the plan covers (``[history]``/``[model]`` only).
    progress
        ``progress(done, total)`` while a ``[history]`` fit bootstraps (for a progress bar).

    Raises
    ------
    ScenarioError
        With every problem found (file unreadable, TOML syntax, or any key).
    HistoryError
        The ``[history]`` file is invalid (every problem listed with its row).
    ModelFileError
        The ``[model]`` file cannot be read.
    """
    path = Path(path)
    data = read_toml(path)
    scenario = scenario_from_dict(data, source=str(path), default_name=path.stem, budget=budget,
                                  base=path.parent, use_cache=use_cache, periods=periods, progress=progress)
    scenario.path = path
    return scenario


def unreadable(exc: OSError | UnicodeDecodeError) -> str:
    """Why a file cannot be read, in words rather than an errno."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(exc, PermissionError):
        return "cannot read the file: permission denied"
    return f"cannot read the file: {getattr(exc, 'strerror', None) or exc}"


#: Files that hold tables, not scenarios (said plainly when one is given as a scenario).
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xls")


def read_toml(path: Path) -> dict:
    """The TOML data of a scenario file; unreadable or invalid is a ScenarioError."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError([unreadable(exc)], str(path)) from None
    try:
        # utf-8-sig: Windows Notepad starts UTF-8 files with a byte-order mark, which tomllib
        # would report as an error at line 1, column 1.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:  # TOML is UTF-8, but a Chinese Windows editor saves GBK: read it, as histories are
            text = raw.decode("gb18030")
        except UnicodeDecodeError:
            raise ScenarioError([f"cannot read the file: it is not UTF-8 ({exc.reason} at byte {exc.start}); save it "
                                 "as UTF-8"], str(path)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        if path.suffix.lower() in TABLE_SUFFIXES:  # a history or actuals table given where a scenario goes
            raise ScenarioError([f"a scenario is a TOML file, and this is a {path.suffix.lower()[1:].upper()} table: "
                                 "a history is named in a scenario's [history] path, actuals with --actuals"],
                                str(path)) from None
        raise ScenarioError([f"not valid TOML: {exc}{_toml_hint(text, exc)}"], str(path)) from None


#: A bare TOML key: ASCII letters, digits, _ and -; anything else must be quoted.
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_hint(text: str, exc) -> str:
    """How to mend a table header whose name TOML cannot take bare ([channels.抖音]): quote it."""
    lineno = getattr(exc, "lineno", None)  # Python 3.14; before it, only the message says where
    if lineno is None:
        found = re.search(r"at line (\d+)", str(exc))
        lineno = int(found.group(1)) if found else None
    lines = text.splitlines()
    if not lineno or lineno > len(lines):
        return ""
    line = lines[lineno - 1].strip()
    m = re.match(r"^(\[\[?)\s*([^\]]+?)\s*(\]\]?)", line)
    if not m:
        return ""
    parts = [p.strip() for p in m.group(2).split(".")]
    bare = [not p or bool(_BARE_KEY.match(p)) or p.startswith(('"', "'")) for p in parts]
    if all(bare):
        return ""
    quoted = ".".join(p if ok else f'"{p}"' for p, ok in zip(parts, bare))
    return (f" (a name with characters other than A-Z, 0-9, _ and - must be quoted: {m.group(1)}{quoted}"
            f"{m.group(3)})")


def scenario_from_dict(
    data: dict,
    *,
    source: str = "scenario",
    default_name: str = "scenario",
    budget: float | None = None,
    base: Path | None = None,
    use_cache: bool = True,
    periods: int | None = None,
    progress=None,
) -> Scenario:
    """Validate a parsed scenario (see :func:`load_scenario`); paths are relative to ``base``."""
    where = source
    base = base or Path(".")
    ck = _Checker()
    ck.table("", data, TOP_KEYS)
    name = ck.text("name", data.get("name"), default_name)
    description = ck.text("description", data.get("description"))

    objective = data.get("objective", "max_return")
    if objective not in OBJECTIVES:
        ck.add("objective", f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        objective = "max_return"
    margin = ck.ratio("margin", data.get("margin"), positive=True)
    target = ck.money("target_return", data.get("target_return"), positive=True)
    if objective == "max_profit" and margin is None and "margin" not in data:
        ck.add("margin", "required when objective = \"max_profit\" (profit per unit of return, e.g. 0.35)")
    if objective == "min_spend" and target is None and "target_return" not in data:
        ck.add("target_return", "required when objective = \"min_spend\"")
    risk = None
    if "risk" in data:  # as --risk: the plan over the curve samples (guard: do no harm)
        try:
            risk = parse_risk(data["risk"]) if isinstance(data["risk"], str) else parse_risk(repr(data["risk"]))
        except ValueError as exc:
            ck.add("risk", str(exc))

    if "budget" in data:
        b = ck.table("budget", data["budget"], BUDGET_KEYS)
    else:
        b = {}
        ck.add("budget", "required: a table with `total` (and optionally `currency`, `horizon`)")
    total = ck.budget_total("budget.total", b.get("total"))
    # The budget as a share of the horizon's forecast KPI ("marketing spend 15–20% of GMV"): known
    # only once the curves are fitted, so the total and the current plan's amounts that depend on
    # it are settled after the channels are read (see _share_of_forecast).
    share_fc = ck.number("budget.share_of_forecast", b.get("share_of_forecast"), positive=True, maximum=1.0)
    if "total" in b and "share_of_forecast" in b:
        ck.add("budget", "give either `total` or `share_of_forecast`, not both")
    elif b and "total" not in b and "share_of_forecast" not in b:
        ck.add("budget.total", "required (or `share_of_forecast`: the budget as a share of the horizon's forecast KPI)")
    notes = []
    if budget is not None:
        budget = ck.budget_total("budget (override)", budget)
    scale = 1.0
    if "share_of_forecast" not in b:
        total, scale = _override(total, budget, notes)
    currency = _currency(ck, ck.text("budget.currency", b.get("currency"), "CNY"), notes)
    horizon = ck.text("budget.horizon", b.get("horizon"))

    r = ck.table("reserve", data.get("reserve", {}), RESERVE_KEYS)
    reserve_min = ck.share("reserve.min_share", r.get("min_share", DEFAULT_RESERVE_SHARE))
    reserve_max = ck.share("reserve.max_share", r.get("max_share"))
    ck.ordered("reserve.min_share", reserve_min, "reserve.max_share", reserve_max)

    c = ck.table("constraints", data.get("constraints", {}), CONSTRAINT_KEYS)
    roi_min = ck.ratio("constraints.roi_min", c.get("roi_min"))
    mroi_min = ck.ratio("constraints.marginal_roi_min", c.get("marginal_roi_min"))

    groups = []
    raw_groups = data.get("groups", {})
    if not isinstance(raw_groups, dict):
        ck.add("groups", f"must be a table of [groups.NAME] tables, got {raw_groups!r}")
        raw_groups = {}
    for gname, graw in raw_groups.items():
        g = ck.table(f"groups.{gname}", graw, GROUP_KEYS)
        lo = ck.share(f"groups.{gname}.min_share", g.get("min_share"))
        hi = ck.share(f"groups.{gname}.max_share", g.get("max_share"))
        ck.ordered(f"groups.{gname}.min_share", lo, f"groups.{gname}.max_share", hi)
        groups.append(Group(name=gname, min_share=lo, max_share=hi, label=ck.text(f"groups.{gname}.label", g.get("label"))))

    source = _check_source(ck, data)
    if source is not None and isinstance(source[1].get("path"), str):
        kind, found = source[0], (base / source[1]["path"]).resolve()
        if not found.is_file():  # said with the key and where it was looked for, before any work
            ck.add(f"{kind}.path", f"{source[1]['path']!r}: {'no such file' if not found.exists() else 'not a file'} "
                                   f"(looked for {found}; a relative path is relative to the scenario file)")
    horizon_spec = check_horizon(ck, data, has_model=source is not None)
    rebalance = check_rebalance(ck, data.get("rebalance", {}), set(data.get("channels") or {}))
    history_spec = None
    if source is not None and source[0] == "history" and "history" in data:
        try:
            history_spec = _history_spec(data["history"])
        except (TypeError, ValueError):
            pass  # already reported by _check_source
    if source is not None and periods is not None:
        source = (source[0], {**source[1], "periods": periods})
    has_source = source is not None
    if "share_of_forecast" in b and not has_source and "model" not in data and "history" not in data:
        ck.add("budget.share_of_forecast", "needs curves fitted from history ([history] or [model]) to forecast the "
                                           "KPI it is a share of; give budget.total instead")
    raw_channels = data.get("channels")
    if raw_channels is None and has_source:
        raw_channels = {}
    elif raw_channels is None:
        ck.add("channels", "required: at least one [channels.NAME] table")
        raw_channels = {}
    elif not isinstance(raw_channels, dict) or (not raw_channels and not has_source):
        ck.add("channels", "must hold at least one [channels.NAME] table")
        raw_channels = {}
    _check_channel_names(ck, raw_channels)

    cur = ck.table("current", data.get("current", {}), CURRENT_KEYS)
    group_shares = cur.get("group_shares", {})
    if not isinstance(group_shares, dict):
        ck.add("current.group_shares", f"must be a table of group = share, got {group_shares!r}")
        group_shares = {}
    channel_groups = {
        n: (ch.get("group", "other") if isinstance(ch, dict) else "other") for n, ch in raw_channels.items()
    }
    shares_total = 0.0
    valid_shares: dict[str, float] = {}  # as read ("70%" is 0.7); a share in error is left out
    for gname, share in group_shares.items():
        v = ck.share(f"current.group_shares.{gname}", share)
        if v is not None:
            valid_shares[gname] = v
        members = [n for n, g in channel_groups.items() if g == gname]
        if not members:
            ck.add(f"current.group_shares.{gname}", "no channel belongs to this group")
        for n in members:
            if isinstance(raw_channels[n], dict) and "current" in raw_channels[n]:
                ck.add(f"channels.{n}.current", f"given twice: group {gname} already has a share in current.group_shares")
        shares_total += v or 0.0
    if shares_total > 1.0 + 1e-9:
        ck.add("current.group_shares", f"shares sum to {shares_total:.4g}, above 1")

    channels = []
    scenario_warnings: list[str] = []
    if horizon_spec is not None:
        _warn_percent_as_fraction(scenario_warnings, "pacing.max_change", horizon_spec.pacing.get("max_change"))
    pending: dict[str, tuple[str, float]] = {}  # share_of_forecast: current amounts settled with the total
    run_rate: set[str] = set()  # fitted channels without a written `current`: their historical run rate
    for cname, craw in raw_channels.items():
        p = f"channels.{cname}"
        ch = ck.table(p, craw, CHANNEL_KEYS)
        if not isinstance(craw, dict):  # an empty table is a channel with nothing said (no curve)
            continue
        group = ck.text(f"{p}.group", ch.get("group"), "other")
        if "group" in ch:
            _check_group(ck, scenario_warnings, f"{p}.group", group, raw_groups)
        if group in valid_shares and (total is not None or share_fc is not None):
            members = [n for n, g in channel_groups.items() if g == group]
            if total is None:
                pending[cname] = ("share", valid_shares[group] / len(members))
            current = valid_shares[group] * (total or 0.0) / len(members)
        else:
            current = ck.money(f"{p}.current", ch.get("current", 0.0))
            if current is not None and ch.get("locked") is not True:
                current *= scale
                if share_fc is not None:
                    pending[cname] = ("scale", 1.0)
        min_spend = ck.money(f"{p}.min_spend", ch.get("min_spend"))
        max_spend = ck.money(f"{p}.max_spend", ch.get("max_spend"))
        ck.ordered(f"{p}.min_spend", min_spend, f"{p}.max_spend", max_spend)
        min_share = ck.share(f"{p}.min_share", ch.get("min_share"))
        max_share = ck.share(f"{p}.max_share", ch.get("max_share"))
        ck.ordered(f"{p}.min_share", min_share, f"{p}.max_share", max_share)
        if total is not None:  # a share and an amount of one channel that cannot both hold
            _check_share_against_amount(ck, p, total, currency, min_share, max_spend, min_spend, max_share)
        locked = ch.get("locked", False)
        if not isinstance(locked, bool):
            ck.add(f"{p}.locked", f"must be true or false, got {locked!r}")
            locked = False
        if locked and "current" not in ch and group_shares.get(group) is None:
            ck.add(f"{p}.locked", "a locked channel needs its `current` spend (the amount it is held at)")
        max_change = ck.ratio(f"{p}.max_change", ch.get("max_change"))
        _warn_percent_as_fraction(scenario_warnings, f"{p}.max_change", max_change)
        curve = None
        if "curve" not in ch and not has_source:
            ck.add(f"{p}.curve", "required: e.g. { kind = \"hill\", beta = 3e6, k = 1e6, s = 0.8 }")
        elif "curve" not in ch:
            pass  # from the fitted model, resolved below
        else:
            found = curve_problems(ch["curve"], f"{p}.curve")
            for item in found:
                ck.problems.append(item)
            if not found:
                curve = curve_from_dict(ch["curve"])
        if current is None or (curve is None and "curve" in ch):
            continue
        if has_source and "curve" not in ch and "current" not in ch and group_shares.get(group) is None:
            run_rate.add(cname)  # a fitted channel named to set a limit: its current is still the history's
        channels.append(
            Channel(
                name=cname, curve=curve, group=group, current=current,
                min_spend=min_spend, max_spend=max_spend, min_share=min_share, max_share=max_share,
                locked=locked, max_change=max_change, label=ck.text(f"{p}.label", ch.get("label")),
            )
        )
    if risk is not None and not has_source:
        ck.add("risk", "plans over curve samples, which only curves fitted from history have: add a [history] or "
                       "[model] table, or leave risk out")
    if ck.problems:
        if source is not None and source[0] == "history":  # its file's problems too: one run lists them all
            ck.problems += _history_problems(source[1], base, channels)
        raise ScenarioError(ck.problems, where)
    model, periods = None, None
    fitted = frozenset()
    kpi = None
    if share_fc is not None:
        model = _source_model(source, base, notes, use_cache, progress, channels, where)
        total, scale, kpi, channels = _share_of_forecast(share_fc, model, source, budget, channels, pending, notes,
                                                         where, currency)
    if has_source:
        explicit = {c.name for c in channels if c.curve is not None}
        model, periods, channels = _resolve_source(source, channels, base, notes, where, use_cache, progress,
                                                   scale=scale, model=model, run_rate=run_rate)
        fitted = frozenset(c.name for c in channels if c.name not in explicit)
        _check_horizon_length(horizon_spec, fitted, model, periods, source, where)
    problem = Problem(
        channels=tuple(channels),
        budget=float(total),
        groups=tuple(groups),
        reserve_min_share=reserve_min,
        reserve_max_share=reserve_max,
        roi_min=roi_min,
        marginal_roi_min=mroi_min,
        objective=objective,
        margin=margin,
        target_return=target,
        name=name,
        currency=currency,
        # A fit that found its KPI not to be money (models.bayes: the ROI prior set from the KPI's scale).
        return_in_money=model is None or model.kpi_in_money,
    )
    return Scenario(name=name, path=None, problem=problem, horizon=horizon, description=description, notes=notes,
                    warnings=scenario_warnings,
                    model=model, periods=periods, fitted_channels=fitted, horizon_spec=horizon_spec,
                    rebalance=rebalance, history_spec=history_spec,
                    share_of_forecast=share_fc, forecast_kpi=kpi, risk=risk)


def _check_horizon_length(spec, fitted, model, periods: int, source, where: str) -> None:
    """A period plan on fitted curves plans one period of the history per horizon period: its
    length must be the `periods` the budget covers (month labels on a weekly history planned the
    quarter's budget into three weeks, at three times the largest weekly spend ever seen)."""
    if spec is None or not fitted:
        return
    T = len(spec.labels) if spec.labels is not None else (spec.count or periods)
    if T == periods:
        return
    unit = {"daily": "day", "weekly": "week", "monthly": "month"}.get(model.frequency_, "period")
    given = "" if source[1].get("periods") else " by default, a quarter"
    raise ScenarioError([f"horizon.periods: {T} period(s), but the budget covers {periods} {model.frequency_} periods "
                         f"([{source[0]}] periods = {periods}{given}); on curves fitted from a {model.frequency_} "
                         f"history each horizon period is one {unit}: plan {periods} periods, or set "
                         f"[{source[0]}] periods = {T} for a budget of {T} {unit}s"], where)


def _override(total, budget, notes: list):
    """(total, scale) once ``--budget`` overrides ``total``: the current plan is compared at the
    new budget with the same split, scaled by ``scale``; locked channels keep their amounts."""
    if budget is None:
        return total, 1.0
    scale = 1.0
    if total is not None and total > 0 and budget != total:
        scale = budget / total
        notes.append(
            f"budget overridden: {total:,.0f} → {budget:,.0f}; the current plan is scaled by "
            f"{scale:.4g} to keep its split (locked channels keep their amounts)"
        )
    return budget, scale


def _share_of_forecast(share: float, model, source, budget, channels: list, pending: dict, notes: list, where: str,
                       currency: str):
    """``[budget] share_of_forecast``: the total as that share of the horizon's forecast KPI
    (:func:`models.forecast.kpi_forecast`, over the plan's periods) in whole cents, then the
    ``--budget`` override, and the current amounts that depend on the total (group shares; written
    amounts scaled by an override). Returns (total, scale, kpi, channels)."""
    from dataclasses import replace

    from models.forecast import kpi_forecast
    from optimizer import money

    periods = source[1].get("periods") or QUARTER_PERIODS.get(model.frequency_, 13)
    try:
        kpi = kpi_forecast(model, periods)
    except NotImplementedError as exc:  # a model fitted without the Prophet baseline
        raise ScenarioError([f"budget.share_of_forecast: cannot forecast the KPI: {exc}"], where) from None
    total = round(share * kpi["total"], 2)
    if not MIN_BUDGET <= total <= MAX_MONEY:
        raise ScenarioError([f"budget.share_of_forecast: {share:g} of the forecast KPI {kpi['total']:,.2f} is a budget "
                             f"of {total:,.2f}, outside one cent … {MAX_MONEY:g}"], where)
    notes.append(
        f"budget {money(total, currency)}: {share:.4g} × the KPI forecast over the {periods} periods from "
        f"{kpi['start']} ({money(kpi['total'], currency)}: baseline {money(kpi['baseline'], currency)} + media "
        f"{money(kpi['media'], currency)} with every channel at its historical run rate)"
    )
    total, scale = _override(total, budget, notes)
    out = []
    for c in channels:
        how, factor = pending.get(c.name, (None, 1.0))
        if how == "share":
            c = replace(c, current=factor * total)
        elif how == "scale":
            c = replace(c, current=c.current * scale)
        out.append(c)
    return total, scale, kpi, out


def _check_group(ck: _Checker, warnings: list, path: str, group: str, raw_groups: dict) -> None:
    """A channel's ``group`` that no ``[groups]`` table declares.

    When any declared group has limits (``min_share``/``max_share``) this is an error: a typo
    (``g11`` for ``g1``) would silently take the channel out of its group's limits. Declared
    groups without limits only name and label groups, so it is a warning then. A scenario without
    ``[groups]`` uses group names as free labels, and a channel without ``group`` (or with the
    default, ``other``) belongs to the default group: neither is checked.
    """
    if group == DEFAULT_GROUP or group in raw_groups or not raw_groups:
        return
    hint = difflib.get_close_matches(group, sorted(raw_groups), n=1)
    message = f'unknown group "{group}"' + (
        f' (did you mean "{hint[0]}"?)' if hint
        else f" (declared: {', '.join(sorted(raw_groups))}; add a [groups.{group}] table for a new group)")
    if any(isinstance(g, dict) and ("min_share" in g or "max_share" in g) for g in raw_groups.values()):
        ck.add(path, message)
    else:
        warnings.append(f"{path}: {message}; it is planned as a group of its own")


#: A change limit this large or larger was most likely meant as a percentage (10 for 10%).
PERCENT_LIKE_CHANGE = 2.0


def _warn_percent_as_fraction(warnings: list[str], path: str, value: float | None) -> None:
    """``max_change = 10`` is ±1000%: no limit at all, where 10% was most likely meant."""
    if value is not None and value >= PERCENT_LIKE_CHANGE:
        warnings.append(f"{path} = {value:g} lets spend change by up to {value:.0%} (it is a fraction: 0.1 is 10%); "
                        f"for {value:g}% write {value / 100:g} or \"{value:g}%\"")


def _check_source(ck: _Checker, data: dict):
    """Validate [history] / [model]; returns ("history"|"model", table) or None."""
    present = [k for k in ("history", "model") if k in data]
    if "calibration" in data and "history" not in data:
        ck.add("calibration", "lift tests calibrate a fit: they need a [history] table (a saved [model] was "
                              "fitted already; pass them to `budget fit --calibration`)")
    if len(present) == 2:
        ck.add("model", "give either [history] (fit curves) or [model] (a saved fit), not both")
        return None
    if not present:
        return None
    from models.history import HistorySpec  # pandas: only for scenarios that fit curves
    kind = present[0]
    spec_keys = set(HistorySpec.__dataclass_fields__) if kind == "history" else set()
    allowed = SOURCE_KEYS | spec_keys | (set(FIT_KEYS) - {"calibration"} if kind == "history" else set())
    table = ck.table(kind, data[kind], allowed)
    if not table:
        return None
    if not isinstance(table.get("path"), str):
        ck.add(f"{kind}.path", f"required: the {'history CSV' if kind == 'history' else 'model JSON'} file, "
                               "relative to this scenario")
    periods = table.get("periods")
    if periods is not None and (isinstance(periods, bool) or not isinstance(periods, int) or periods < 1):
        ck.add(f"{kind}.periods", f"must be a whole number of data periods ≥ 1, got {periods!r}")
    cap = table.get("extrapolation_cap", 1.5)
    if cap is not False:
        ck.number(f"{kind}.extrapolation_cap", cap, minimum=1.0)
    if kind == "history":
        for key in ("holdout", "bootstrap", "seed"):
            v = table.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                ck.add(f"history.{key}", f"must be a whole number ≥ 0, got {v!r}")
        if "method" in table and table["method"] not in FIT_METHODS:
            ck.add("history.method", f"must be one of {', '.join(FIT_METHODS)}, got {table['method']!r}")
        from models.fit import KPI_UNITS

        if "kpi_unit" in table and table["kpi_unit"] not in KPI_UNITS:
            ck.add("history.kpi_unit", f"must be one of {', '.join(KPI_UNITS)} (is the KPI money in the spend's "
                                       f"units?), got {table['kpi_unit']!r}")
        draws = table.get("draws")
        if draws is not None and (isinstance(draws, bool) or not isinstance(draws, int) or not 50 <= draws <= 100_000):
            ck.add("history.draws", f"must be a whole number of posterior draws per chain, 50–100,000, got {draws!r}")
        for key in ("s_shaped", "campaign_days"):
            if key in table and not isinstance(table[key], bool):
                ck.add(f"history.{key}", f"must be true or false, got {table[key]!r}")
        if "holidays" in table:
            from models.baseline import country_problem

            problem = country_problem(table["holidays"])
            if problem:
                ck.add("history.holidays", problem)
        try:
            _history_spec(table)
        except (TypeError, ValueError) as exc:
            key, _, message = str(exc).partition(": ")  # "history.channels: …" names its key
            if key.startswith("history."):
                ck.add(key, message)
            else:
                ck.add("history", str(exc))
        if "calibration" in data:
            from models.calibration import check_lift_tests, normalise_lift_tests

            problems = check_lift_tests(data["calibration"], None)
            for problem in problems:
                path, _, message = problem.partition(": ")
                ck.add(path, message)
            if not problems and data["calibration"]:
                table = {**table, "calibration": normalise_lift_tests(data["calibration"])}
    return kind, table


#: Everyday names of a currency that are not its ISO 4217 code.
CURRENCY_ALIASES = {"RMB": "CNY", "人民币": "CNY"}  # not 元 or ¥: yuan of Taiwan and Hong Kong, the yen


def _currency(ck: _Checker, text: str, notes: list) -> str:
    """``budget.currency`` as an ISO 4217 code: three letters, upper case (``usd`` is USD; ``RMB``,
    the everyday name of the yuan, is CNY and said in the notes); else a problem."""
    code = text.strip().upper()
    if code in CURRENCY_ALIASES:
        notes.append(f"currency {text.strip()} read as {CURRENCY_ALIASES[code]}, its ISO 4217 code")
        return CURRENCY_ALIASES[code]
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        ck.add("budget.currency", f"must be a three-letter ISO 4217 code such as CNY, USD or EUR, got {text!r}")
        return "CNY"
    return code


def _check_share_against_amount(ck: _Checker, p: str, total: float, currency: str, min_share, max_spend,
                                min_spend, max_share) -> None:
    """A channel's minimum share above its maximum amount, or its minimum amount above its maximum
    share, at the budget: no plan can meet both, which is the file's mistake, not the plan's."""
    from optimizer import money

    if min_share is not None and max_spend is not None and min_share * total > max_spend + 0.005:
        ck.add(f"{p}.min_share", f"{min_share:.4g} of the budget is {money(min_share * total, currency)}, above "
                                 f"max_spend {money(max_spend, currency)}")
    if min_spend is not None and max_share is not None and min_spend > max_share * total + 0.005:
        ck.add(f"{p}.min_spend", f"{money(min_spend, currency)} is above max_share {max_share:.4g} of the budget "
                                 f"({money(max_share * total, currency)})")


def _quoted(name: str) -> str:
    """A name in quotes, so that spaces around it show."""
    return json.dumps(name, ensure_ascii=False)


def _check_channel_names(ck: _Checker, channels: dict) -> None:
    """Channel names that differ only in case or spaces are one platform typed twice (its money
    would be split between them); a name with spaces around it is a copy-paste slip."""
    seen: dict[str, str] = {}
    for name in channels:
        if name != name.strip():
            ck.add(f"channels.{name}", "the name has spaces before or after it; write it without them")
        key = " ".join(name.split()).casefold()
        if key in seen:
            ck.add(f"channels.{name}", f"differs from channels.{seen[key]} only in case or spaces ({_quoted(name)} and "
                                       f"{_quoted(seen[key])}): one channel twice would split its money; give each "
                                       "channel one name")
        seen.setdefault(key, name)


def _history_spec(table: dict):
    """The HistorySpec a ``[history]`` table states (its other keys are the estimator's)."""
    from models.history import HistorySpec

    return HistorySpec.from_dict({k: v for k, v in table.items() if k in HistorySpec.__dataclass_fields__})


def _fit_arguments(table: dict, base: Path):
    """(history file, HistorySpec, MediaMixModel settings) of a validated ``[history]`` table."""
    settings = {FIT_KEYS[k]: v for k, v in table.items() if k in FIT_KEYS}
    return (base / table["path"]).resolve(), _history_spec(table), settings


def history_source(path: str | Path):
    """What ``budget fit SCENARIO.toml`` fits: the scenario's ``[history]`` table, validated.

    Returns
    -------
    (Path, HistorySpec, dict)
        The history file, how to read it, and the estimator settings — the same three a plan
        of this scenario fits with, so both share one cached fit.

    Raises
    ------
    ScenarioError
        The file is unreadable, or has no valid ``[history]`` table (every problem listed).
    """
    path = Path(path)
    data = read_toml(path)
    ck = _Checker()
    source = _check_source(ck, data) if "history" in data else None
    if source is None and not ck.problems:
        ck.add("history", "missing: this scenario has no [history] table to fit")
    if ck.problems:
        raise ScenarioError(ck.problems, str(path))
    return _fit_arguments(source[1], path.parent)


def _source_model(source, base: Path, notes: list, use_cache: bool, progress, channels=(), where: str = ""):
    """The fitted model of a validated [history] (fitted, or from the cache) or [model] table.

    ``channels`` (of [channels]) that need a fitted curve are checked against the history's
    channels once it is read, before a fit of minutes."""
    from models.cache import fit_history
    from models.serialize import load_model

    kind, table = source
    if kind == "history":
        path, spec, settings = _fit_arguments(table, base)

        def check(history) -> None:
            problems = _not_fitted(channels, history.channels)
            if problems:
                raise ScenarioError(problems, where)

        model, cached = fit_history(path, spec, settings, use_cache=use_cache, progress=progress, check=check)
        notes.append(f"curves fitted from {table['path']}" + (" (cached fit)" if cached else ""))
    else:
        model = load_model((base / table["path"]).resolve())
        notes.append(f"curves from the saved model {table['path']}")
    if not model.kpi_in_money:
        notes.append("the KPI is not money (kpi_unit, or its scale against the spend's): returns, ROIs and marginal "
                     "ROIs are KPI units (per unit of money); only spend, budget and reserve are money")
    return model


def _history_problems(table: dict, base: Path, channels: list) -> list[str]:
    """The problems of a valid [history] table's file (each names the file, row and column) and the
    [channels] it lacks, for a scenario that has problems of its own: listed together, one run
    shows them all instead of the file's in a second round."""
    from models.errors import HistoryError
    from models.history import load_history

    path, spec, _ = _fit_arguments(table, base)
    if not path.is_file():  # said at history.path already
        return []
    try:
        history = load_history(path, spec)
    except HistoryError as exc:
        return list(exc.problems)
    return _not_fitted(channels, history.channels)


def _not_fitted(channels: list, fitted) -> list[str]:
    """One problem per [channels] table without a curve whose name the history or model does not have."""
    fitted = list(fitted)
    out = []
    for c in channels:
        if c.curve is None and c.name not in fitted:
            close = difflib.get_close_matches(c.name, fitted, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            out.append(f"channels.{c.name}: not in the fitted model ({hint}it has: {', '.join(fitted)})")
    return out


def _resolve_source(source, channels: list, base: Path, notes: list, where: str, use_cache: bool, progress,
                    scale: float = 1.0, model=None, run_rate: set = frozenset()):
    """Curves (and missing channels) from a fitted model: fit [history] (cached) or load [model]
    (``model``: already loaded). A fitted channel not in [channels], or in ``run_rate`` (named
    there without a `current`), is planned from its historical run rate."""
    from dataclasses import replace

    kind, table = source
    if model is None:
        model = _source_model(source, base, notes, use_cache, progress, channels, where)
    periods = table.get("periods") or QUARTER_PERIODS.get(model.frequency_, 13)
    factor = table.get("extrapolation_cap", 1.5)
    known = {c.name for c in channels}
    problems = _not_fitted(channels, model.channels_)
    if problems:
        raise ScenarioError(problems, where)
    def rate(name: str) -> float:  # the run rate, in whole cents, scaled like written currents by --budget
        return round(float(model.spend_stats_[name]["mean"]) * periods * scale, 2)

    resolved = []
    for c in channels:
        if c.curve is not None:
            resolved.append(c)
            continue
        cap = model.extrapolation_cap(c.name, periods, factor) if factor is not False else None
        current = rate(c.name) if c.name in run_rate else c.current
        resolved.append(replace(c, curve=model.planning_curve(c.name, periods), extrapolation_cap=cap, current=current))
    named = sorted(run_rate & set(model.channels_))
    if named:
        notes.append(f"{', '.join(named)}: no `current` written, so {'each is' if len(named) > 1 else 'it is'} "
                     f"planned from {'their' if len(named) > 1 else 'its'} historical run rate, as channels not "
                     "in [channels] are (write current = 0 for a channel that spends nothing now)")
    model_groups = getattr(model, "groups_", {}) or {}
    for name in model.channels_:
        if name in known:
            continue
        # A channel in the history but not in [channels]: plan it at its historical run rate.
        cap = model.extrapolation_cap(name, periods, factor) if factor is not False else None
        resolved.append(Channel(name=name, curve=model.planning_curve(name, periods),
                                group=model_groups.get(name, "other"), current=rate(name), extrapolation_cap=cap))
    return model, periods, resolved
