"""Spend/return history files: settings, loading and validation.

Two layouts are read by one loader, :func:`load_history`:

* ``wide``: a date column, a KPI column (total revenue, GMV or conversions), one spend column per
  channel, optional control and event columns. Column names are mapped, not assumed (see
  :class:`HistorySpec`); with no channel mapping every column that is not the date, the KPI, a
  control, an event or ignored is a channel whose id is the column name.
* ``long``: ``date, channel, spend, revenue`` rows, where ``revenue`` is the return attributed to
  that channel (platform-attributed); each channel's curve is then fitted on its own return.

Dates label the *start* of each period. The frequency (daily, weekly or monthly) is detected from
the spacing of the dates.

Validation happens once, here: every problem is collected with the file and row it was found in
(rows are numbered as a spreadsheet shows them, the header being row 1), then one
:class:`~models.errors.HistoryError` is raised. Problems that do not stop a fit (gaps in the dates,
spend that barely varies, unused columns) are returned as ``History.warnings`` and logged.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from models.errors import HistoryError

__all__ = ["HistorySpec", "History", "load_history", "history_from_frame", "MIN_PERIODS"]

logger = logging.getLogger(__name__)

#: Fewer periods than this cannot identify a trend, a yearly pattern and the media curves.
MIN_PERIODS = 26

#: Spend whose coefficient of variation is below this barely moves: its curve is poorly identified.
NEAR_CONSTANT_CV = 0.1

#: Event cells that mean "no event" when an event column holds labels rather than numbers.
_NO_EVENT = {"", "na", "n/a", "none", "null", "nan", "0", "false", "no"}

# Nominal period length in days and the widest spacing that still counts as "no gap".
_FREQUENCIES = {"daily": (1, 1), "weekly": (7, 7), "monthly": (30.4, 31)}


@dataclass(frozen=True)
class HistorySpec:
    """How to read a history file.

    Parameters
    ----------
    layout : {"wide", "long"}
        ``wide``: one row per period, one spend column per channel. ``long``: one row per
        period and channel with ``spend`` and channel-attributed ``revenue``.
    date : str
        Name of the date column (period start).
    kpi : str
        Wide layout: the KPI column (revenue, GMV, conversions). Long layout: the column with the
        return attributed to each channel.
    channels : dict or str or None
        Wide layout. ``{channel_id: column}``; or a glob pattern such as ``"*_S"`` or
        ``"*_spend"`` where the part matched by ``*`` becomes the channel id; or None, meaning
        every remaining column is a channel named after its column.
    controls : tuple of str
        Numeric columns that shift the KPI but are not media (prices, competitor sales).
    events : tuple of str
        Event columns: numbers (0/1 or intensities) or labels (each distinct label other than
        empty/"na"/"none" becomes its own 0/1 event).
    ignore : tuple of str
        Columns (glob patterns allowed) to skip. Any other column that is not mapped is an error,
        because an unmapped column is usually a typo in the mapping.
    groups : dict
        Optional ``{channel_id: group}`` carried into reports.
    channel_column, spend_column : str
        Long layout column names.
    min_periods : int
        Fewer periods than this is an error.
    """

    layout: Literal["wide", "long"] = "wide"
    date: str = "date"
    kpi: str = "revenue"
    channels: dict[str, str] | str | None = None
    controls: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    groups: dict[str, str] = field(default_factory=dict)
    channel_column: str = "channel"
    spend_column: str = "spend"
    min_periods: int = MIN_PERIODS

    @classmethod
    def from_dict(cls, data: dict) -> "HistorySpec":
        """Build from plain data (a ``[history]`` TOML table); unknown keys raise ValueError."""
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(
                "history: unknown key(s) " + ", ".join(unknown) + "; allowed: " + ", ".join(sorted(allowed))
            )
        kw = dict(data)
        for key in ("controls", "events", "ignore"):
            if key in kw:
                value = kw[key]
                kw[key] = (value,) if isinstance(value, str) else tuple(value)
        if "channels" in kw and isinstance(kw["channels"], dict):
            kw["channels"] = dict(kw["channels"])
        return cls(**kw)


@dataclass(frozen=True, eq=False)
class History:
    """A validated history: aligned, sorted periods; trust it inside the library.

    Attributes
    ----------
    dates : pandas.DatetimeIndex
        Period starts, sorted, unique.
    frequency : {"daily", "weekly", "monthly"}
    spend : pandas.DataFrame
        Periods × channels, spend per period (≥ 0, finite).
    kpi : numpy.ndarray or None
        Wide layout: the KPI per period. None in the long layout.
    channel_returns : pandas.DataFrame or None
        Long layout: the return attributed to each channel, periods × channels.
    controls : pandas.DataFrame
        Periods × control columns.
    events : pandas.DataFrame
        Periods × event indicators.
    groups : dict
        Channel → group for channels that have one.
    warnings : list of str
        Problems that did not stop loading.
    source : str
        File name (or "history") used in messages.
    """

    dates: pd.DatetimeIndex
    frequency: str
    spend: pd.DataFrame
    kpi: np.ndarray | None
    channel_returns: pd.DataFrame | None
    controls: pd.DataFrame
    events: pd.DataFrame
    groups: dict[str, str]
    warnings: list[str]
    source: str = "history"

    @property
    def channels(self) -> list[str]:
        return list(self.spend.columns)

    @property
    def periods(self) -> int:
        return len(self.dates)

    @property
    def layout(self) -> str:
        return "wide" if self.kpi is not None else "long"

    def target(self) -> np.ndarray:
        """The total return per period: the KPI, or the sum of channel returns (long layout)."""
        if self.kpi is not None:
            return self.kpi
        return self.channel_returns.to_numpy(dtype=float).sum(axis=1)

    def slice(self, start: int, stop: int) -> "History":
        """Periods ``start:stop`` as a new History (used for holdouts and refits)."""
        sl = slice(start, stop)
        return History(
            dates=self.dates[sl],
            frequency=self.frequency,
            spend=self.spend.iloc[sl],
            kpi=None if self.kpi is None else self.kpi[sl],
            channel_returns=None if self.channel_returns is None else self.channel_returns.iloc[sl],
            controls=self.controls.iloc[sl],
            events=self.events.iloc[sl],
            groups=dict(self.groups),
            warnings=list(self.warnings),
            source=self.source,
        )


def load_history(path, spec: HistorySpec | None = None, **overrides) -> History:
    """Read and validate a history CSV.

    Parameters
    ----------
    path : str or os.PathLike
        CSV file (UTF-8, a header row).
    spec : HistorySpec, optional
        Reading settings; keyword ``overrides`` replace its fields (``load_history(p,
        layout="long")``).

    Returns
    -------
    History

    Raises
    ------
    HistoryError
        With every problem found, each naming the file and row.
    """
    spec = _spec_with(spec, overrides)
    source = os.path.basename(os.fspath(path))
    try:
        # Everything as text first: numbers are checked cell by cell so that a bad cell can be
        # reported with its row instead of silently turning a column into strings.
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise HistoryError([f"{source}: file not found"], source) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise HistoryError([f"{source}: cannot be read as CSV ({exc})"], source) from None
    return history_from_frame(frame, spec, source=source)


def history_from_frame(frame: pd.DataFrame, spec: HistorySpec | None = None, source: str = "history",
                       **overrides) -> History:
    """Validate an in-memory table laid out like a history file (see :func:`load_history`).

    Row numbers in messages assume the frame's first row is the file's second line.
    """
    spec = _spec_with(spec, overrides)
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    checker = _Checker(source)
    if spec.layout == "wide":
        history = _read_wide(frame, spec, checker)
    elif spec.layout == "long":
        history = _read_long(frame, spec, checker)
    else:
        raise HistoryError([f"{source}: layout must be 'wide' or 'long', got {spec.layout!r}"], source)
    if checker.errors or history is None:
        raise HistoryError(_by_row(checker.errors, source), source)
    for message in history.warnings:
        logger.warning("%s", message)
    return history


def _by_row(problems: list[str], source: str) -> list[str]:
    """File-level problems first, then by row (stable, so a row's problems keep their order)."""
    prefix = f"{source} row "

    def key(p: str) -> int:
        if p.startswith(prefix):
            digits = p[len(prefix):].split(":", 1)[0]
            if digits.isdigit():
                return int(digits)
        return 0

    return sorted(problems, key=key)


def _spec_with(spec: HistorySpec | None, overrides: dict) -> HistorySpec:
    spec = spec or HistorySpec()
    if overrides:
        from dataclasses import replace

        for key in ("controls", "events", "ignore"):
            if isinstance(overrides.get(key), str):
                overrides[key] = (overrides[key],)
            elif key in overrides:
                overrides[key] = tuple(overrides[key])
        spec = replace(spec, **overrides)
    return spec


class _Checker:
    """Collects errors and warnings, each prefixed with the source and row."""

    def __init__(self, source: str):
        self.source = source
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, message: str, row: int | None = None) -> None:
        self.errors.append(self._where(row) + message)

    def warn(self, message: str, row: int | None = None) -> None:
        self.warnings.append(self._where(row) + message)

    def _where(self, row: int | None) -> str:
        return f"{self.source} row {row}: " if row is not None else f"{self.source}: "


def _date_label(spec: HistorySpec) -> str:
    return "date" if spec.date == "date" else f"date ({spec.date})"


def _row(i: int) -> int:
    """Spreadsheet row of data row ``i`` (0-based): the header is row 1."""
    return i + 2


def _matches(column: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(column, p) for p in patterns)


def _parse_dates(values: pd.Series, name: str, check: _Checker) -> pd.Series:
    text = values.astype(str).str.strip()
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
    retry = parsed.isna() & (text != "")
    if retry.any():
        # Other common spellings (2024/03/04, 04.03.2024) one cell at a time.
        parsed.loc[retry] = pd.to_datetime(text[retry], errors="coerce", format="mixed")
    for i in np.nonzero(parsed.isna().to_numpy())[0]:
        raw = text.iloc[i]
        if raw == "":
            check.error(f"{name} is empty", _row(i))
        else:
            check.error(f"{name} {raw!r} is not a date", _row(i))
    return parsed.dt.normalize()


def _parse_numbers(values: pd.Series, what: str, check: _Checker, *, rows=None,
                   nonnegative=False, positive=False, empty_is_zero=False) -> np.ndarray:
    """Cell-by-cell numbers; every bad cell is reported with its row."""
    rows = np.arange(len(values)) if rows is None else np.asarray(rows)
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        text = values.astype(str).str.strip().str.replace(",", "", regex=False)
        if empty_is_zero:
            text = text.where(text != "", "0")
        numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        raw = text.to_numpy()
    else:
        numbers = values.to_numpy(dtype=float)
        raw = numbers.astype(str)
    for j, (x, cell) in enumerate(zip(numbers, raw)):
        row = _row(int(rows[j]))
        cell_l = str(cell).lower()
        if math.isnan(x):
            if cell_l in ("", "nan", "na", "n/a", "null", "none"):
                check.error(f"{what} is missing", row)
            else:
                check.error(f"{what} {cell!r} is not a number", row)
        elif math.isinf(x):
            check.error(f"{what} is infinite", row)
        elif positive and x <= 0:
            check.error(f"{what} must be > 0, got {x:g}", row)
        elif nonnegative and x < 0:
            check.error(f"{what} must be ≥ 0, got {x:g}", row)
    return numbers


def _frequency(dates: pd.DatetimeIndex, check: _Checker) -> str | None:
    """Detect daily/weekly/monthly from the typical spacing; warn about gaps."""
    if len(dates) < 2:
        return None
    days = np.diff(dates.values).astype("timedelta64[D]").astype(int)
    typical = float(np.median(days))
    if typical <= 1.5:
        freq = "daily"
    elif 6 <= typical <= 8:
        freq = "weekly"
    elif 27 <= typical <= 32:
        freq = "monthly"
    else:
        check.error(
            f"cannot tell the frequency: dates are typically {typical:g} days apart "
            "(expected daily, weekly or monthly)"
        )
        return None
    nominal, widest = _FREQUENCIES[freq]
    unit = {"daily": "day", "weekly": "week", "monthly": "month"}[freq]
    for a, b, d in zip(dates[:-1], dates[1:], days):
        if d > widest:
            missing = int(round(d / nominal)) - 1
            check.warn(
                f"gap in dates between {a.date()} and {b.date()} "
                f"({max(missing, 1)} missing {unit}{'s' if missing != 1 else ''}); "
                "carryover across the gap is approximate"
            )
        elif d < (nominal if freq != "monthly" else 28):
            check.warn(f"dates {a.date()} and {b.date()} are only {d} days apart in {freq} data")
    return freq


def _check_length_and_spend(spend: pd.DataFrame, check: _Checker, spec: HistorySpec) -> None:
    n = len(spend)
    if n < spec.min_periods:
        check.error(
            f"too little history: {n} periods, at least {spec.min_periods} are needed to separate "
            "trend, seasonality and media"
        )
    for channel in spend.columns:
        x = spend[channel].to_numpy(dtype=float)
        if not np.all(np.isfinite(x)):
            continue  # already reported cell by cell
        if np.all(x <= 0):
            check.error(f"channel {channel} is never spent on (all spend is 0); drop it or map another column")
            continue
        mean = x.mean()
        cv = x.std() / mean if mean > 0 else 0.0
        if cv < NEAR_CONSTANT_CV:
            check.warn(
                f"channel {channel}: spend barely varies (coefficient of variation {cv:.3f}); its curve "
                "is poorly identified and its interval will be wide"
            )


def _events_frame(frame: pd.DataFrame, columns, order: np.ndarray, check: _Checker) -> pd.DataFrame:
    out = {}
    for col in columns:
        values = frame[col].astype(str).str.strip()
        numeric = pd.to_numeric(values.str.replace(",", "", regex=False).where(values != "", "0"), errors="coerce")
        if numeric.notna().all():
            arr = numeric.to_numpy(dtype=float)
            bad = ~np.isfinite(arr)
            for i in np.nonzero(bad)[0]:
                check.error(f"event {col} is infinite", _row(int(i)))
            out[col] = arr
        else:
            labels = values.str.lower()
            for label in sorted(set(labels) - _NO_EVENT):
                out[f"{col}={label}"] = (labels == label).to_numpy(dtype=float)
    return pd.DataFrame(out, index=range(len(frame))).iloc[order].reset_index(drop=True)


def _resolve_channels(columns: list[str], spec: HistorySpec, used: set[str], check: _Checker) -> dict[str, str]:
    """Channel id → column for the wide layout."""
    if isinstance(spec.channels, dict):
        mapping = {str(k): str(v) for k, v in spec.channels.items()}
        for channel, col in mapping.items():
            if col not in columns:
                check.error(f"column {col!r} for channel {channel} not found; columns are: {', '.join(columns)}")
        return {c: col for c, col in mapping.items() if col in columns}
    candidates = [c for c in columns if c not in used and not _matches(c, spec.ignore)]
    if isinstance(spec.channels, str):
        pattern = spec.channels
        if pattern.count("*") != 1:
            check.error(f"channels pattern {pattern!r} must contain exactly one '*'")
            return {}
        head, tail = pattern.split("*")
        mapping = {}
        for col in candidates:
            if fnmatch.fnmatchcase(col, pattern):
                mapping[col[len(head): len(col) - len(tail) if tail else None]] = col
        if not mapping:
            check.error(f"no column matches the channels pattern {pattern!r}; columns are: {', '.join(columns)}")
        return mapping
    return {c: c for c in candidates}


def _read_wide(frame: pd.DataFrame, spec: HistorySpec, check: _Checker) -> History | None:
    columns = list(frame.columns)
    for what, col in (("date", spec.date), ("KPI", spec.kpi)):
        if col not in columns:
            check.error(f"{what} column {col!r} not found; columns are: {', '.join(columns)}")
    for kind, cols in (("control", spec.controls), ("event", spec.events)):
        for col in cols:
            if col not in columns:
                check.error(f"{kind} column {col!r} not found; columns are: {', '.join(columns)}")
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    for col in dupes:
        check.error(f"column {col!r} appears more than once in the header")
    used = {spec.date, spec.kpi, *spec.controls, *spec.events}
    mapping = _resolve_channels(columns, spec, used, check)
    if not mapping and not check.errors:
        check.error("no spend columns: map channels with `channels` or add one column per channel")
    mapped = used | set(mapping.values())
    for col in columns:
        if col not in mapped and not _matches(col, spec.ignore):
            check.error(
                f"unknown column {col!r}: map it as a channel, control or event, or list it in `ignore`"
            )
    if check.errors:
        return None

    dates = _parse_dates(frame[spec.date], _date_label(spec), check)
    kpi = _parse_numbers(frame[spec.kpi], spec.kpi, check, positive=True)
    spend = {
        channel: _parse_numbers(frame[col], f"spend for {channel} ({col})" if col != channel else f"spend for {channel}",
                                check, nonnegative=True)
        for channel, col in mapping.items()
    }
    controls = {col: _parse_numbers(frame[col], f"control {col}", check) for col in spec.controls}
    _check_duplicate_dates(dates, check)
    if check.errors:
        return None
    order = np.argsort(dates.to_numpy(), kind="stable")
    idx = pd.DatetimeIndex(dates.to_numpy()[order])
    spend_df = pd.DataFrame({c: v[order] for c, v in spend.items()})
    events = _events_frame(frame, spec.events, order, check)
    freq = _frequency(idx, check)
    _check_length_and_spend(spend_df, check, spec)
    if check.errors or freq is None:
        return None
    return History(
        dates=idx,
        frequency=freq,
        spend=spend_df,
        kpi=kpi[order],
        channel_returns=None,
        controls=pd.DataFrame({c: v[order] for c, v in controls.items()}),
        events=events,
        groups={c: g for c, g in spec.groups.items() if c in spend_df.columns},
        warnings=check.warnings,
        source=check.source,
    )


def _check_duplicate_dates(dates: pd.Series, check: _Checker, channels: pd.Series | None = None) -> None:
    key = dates if channels is None else pd.Series(list(zip(dates, channels)))
    first_seen: dict = {}
    for i, k in enumerate(key):
        if isinstance(k, tuple):
            if pd.isna(k[0]):
                continue
        elif pd.isna(k):
            continue
        if k in first_seen:
            if channels is None:
                check.error(f"date {k.date()} appears twice (first at row {first_seen[k]})", _row(i))
            else:
                check.error(
                    f"date {k[0].date()} appears twice for channel {k[1]} (first at row {first_seen[k]})", _row(i)
                )
        else:
            first_seen[k] = _row(i)


def _read_long(frame: pd.DataFrame, spec: HistorySpec, check: _Checker) -> History | None:
    columns = list(frame.columns)
    required = [spec.date, spec.channel_column, spec.spend_column, spec.kpi]
    for col in required:
        if col not in columns:
            check.error(
                f"column {col!r} not found; the long layout needs "
                f"{', '.join(required)}; columns are: {', '.join(columns)}"
            )
    for col in columns:
        if col not in required and not _matches(col, spec.ignore):
            check.error(f"unknown column {col!r} in the long layout; list it in `ignore` to skip it")
    if spec.controls or spec.events:
        check.error("controls and events are only supported in the wide layout")
    if check.errors:
        return None
    dates = _parse_dates(frame[spec.date], _date_label(spec), check)
    channels = frame[spec.channel_column].astype(str).str.strip()
    for i in np.nonzero((channels == "").to_numpy())[0]:
        check.error("channel is empty", _row(int(i)))
    spend = _parse_numbers(frame[spec.spend_column], "spend", check, nonnegative=True)
    revenue = _parse_numbers(frame[spec.kpi], spec.kpi, check, nonnegative=True)
    _check_duplicate_dates(dates, check, channels)
    if check.errors:
        return None
    long = pd.DataFrame({"date": dates, "channel": channels, "spend": spend, "revenue": revenue})
    idx = pd.DatetimeIndex(sorted(long["date"].unique()))
    # A channel with no row on a date did not spend and earned nothing that period.
    spend_df = long.pivot(index="date", columns="channel", values="spend").reindex(idx).fillna(0.0)
    ret_df = long.pivot(index="date", columns="channel", values="revenue").reindex(idx).fillna(0.0)
    order = list(dict.fromkeys(channels))  # first-appearance order, stable for reports
    spend_df = spend_df[order].reset_index(drop=True)
    ret_df = ret_df[order].reset_index(drop=True)
    spend_df.columns.name = ret_df.columns.name = None
    freq = _frequency(idx, check)
    _check_length_and_spend(spend_df, check, spec)
    for channel in order:
        if np.all(ret_df[channel].to_numpy() <= 0):
            check.error(f"channel {channel} never has a positive {spec.kpi}; its curve cannot be fitted")
    if check.errors or freq is None:
        return None
    return History(
        dates=idx,
        frequency=freq,
        spend=spend_df,
        kpi=None,
        channel_returns=ret_df,
        controls=pd.DataFrame(index=range(len(idx))),
        events=pd.DataFrame(index=range(len(idx))),
        groups={c: g for c, g in spec.groups.items() if c in order},
        warnings=check.warnings,
        source=check.source,
    )
