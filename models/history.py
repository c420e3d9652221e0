"""Spend/return history files: settings, loading and validation.

Two layouts are read by one loader, :func:`load_history`:

* ``wide``: a date column, a KPI column (total revenue, GMV or conversions), one spend column per
  channel, optional control and event columns. Column names are mapped, not assumed (see
  :class:`HistorySpec`); with no channel mapping every column that is not the date, the KPI, a
  control, an event or ignored is a channel whose id is the column name.
* ``long``: ``date, channel, spend, revenue`` rows, where ``revenue`` is the return attributed to
  that channel (platform-attributed); each channel's curve is then fitted on its own return.

Dates label the *start* of each period. They are read in one format per column and never guessed
between day-first and month-first (:mod:`models.dates`; ``date_format`` makes the format
explicit). The frequency (daily, weekly or monthly) is detected from the spacing of the dates,
which must then lie on a regular grid: weekly dates on one weekday, and most periods of the span
present. Dates off that grid are usually a misread format, not data.

Validation happens once, here: every problem is collected with the file and row it was found in
(rows are numbered as a spreadsheet shows them, the header being row 1), then one
:class:`~models.errors.HistoryError` is raised. Problems of one kind are listed a few times and
then counted (:func:`models.problems.cap_problems`), each kind's examples and count together, so
a systematic fault (several rows per date) does not bury the rest; such a fault also gets one line
saying what the file looks like, as does a column that would be read as spend but holds text (an
event column) or, by its name, counts something other than money (impressions, clicks). Problems
that do not stop a fit (gaps in the dates, spend that barely varies, unused columns) are returned
as ``History.warnings`` and logged.
"""

from __future__ import annotations

import csv
import difflib
import fnmatch
import io
import itertools
import json
import logging
import math
import os
import re
import shlex
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

import numpy as np
import pandas as pd

from models.dates import read_dates
from models.errors import HistoryError
from models.problems import REPEATS_SHOWN, cap_problems, problem_kind

__all__ = ["HistorySpec", "History", "load_history", "history_from_frame", "MIN_PERIODS"]

logger = logging.getLogger(__name__)

#: Fewer periods than this cannot identify a trend, a yearly pattern and the media curves.
MIN_PERIODS = 26

#: Spend whose coefficient of variation is below this barely moves: its curve is poorly identified.
NEAR_CONSTANT_CV = 0.1

#: Event cells that mean "no event" when an event column holds labels rather than numbers.
_NO_EVENT = {"", "na", "n/a", "none", "null", "nan", "0", "false", "no"}

#: Number cells (lower-cased) that mean "no value": reported as missing, not as text.
_MISSING_CELLS = {"", "nan", "na", "n/a", "null", "none"}

#: Name words of a column that counts something other than money. Such a column read as spend
#: dwarfs the real spend (a yuan buys dozens of impressions) and with it the KPI's scale against
#: the spend, so it is refused by name unless the channels are mapped explicitly.
_NOT_MONEY_WORDS = {
    **dict.fromkeys(("impressions", "impression", "impr", "imps"), "impressions"),
    **dict.fromkeys(("clicks", "click"), "clicks"),
    "views": "views",
    **dict.fromkeys(("grp", "grps", "trp", "trps"), "rating points (GRP/TRP)"),
    "reach": "reach",
}
#: The same in Chinese column names, which have no word breaks: 曝光/展现 impressions, 点击 clicks,
#: 播放/浏览 plays and views.
_NOT_MONEY_CHINESE = {"曝光": "impressions", "展现": "impressions", "点击": "clicks", "播放": "views",
                      "浏览": "views"}
#: Robyn's column suffixes for media that is not spend (``facebook_I``, ``search_clicks_P``).
_ROBYN_NOT_MONEY = {"_I": "impressions", "_P": "paid-media volume such as clicks"}
#: Name words that say a column is money after all (``impressions_cost``, Robyn's ``tv_S``).
_MONEY_WORDS = {"spend", "spends", "spending", "spent", "cost", "costs", "budget", "investment", "invest"}
_MONEY_CHINESE = ("花费", "消耗", "费用", "成本", "金额", "预算", "投入")

# Nominal period length in days and the widest spacing that still counts as "no gap".
_FREQUENCIES = {"daily": (1, 1), "weekly": (7, 7), "monthly": (30.4, 31)}

#: Dates filling less than this share of the periods in their span are not a series with gaps but
#: a misread (day and month swapped turn monthly data into a dozen days a year).
MIN_COVERAGE = 0.5


def channel_mapping(value) -> dict[str, str] | str | None:
    """A ``channels`` setting in its one spelling: ``{channel: column}``, a glob with one ``*``, or None.

    A list of column names (``["x1", "x2"]``) or a comma-separated string of them (``"x1,x2"``, as
    ``budget fit --channels`` takes) is the mapping of each column to itself, so every spelling
    of the same choice reads the same columns and shares one cached fit.

    Raises
    ------
    ValueError
        Anything else (a number, a list with a non-text item).
    """
    if value is None or (isinstance(value, str) and "*" in value):
        return value
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    names = [c for c in value.split(",") if c.strip()] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(c, str) and c.strip() for c in names):
        raise ValueError(f"history.channels: must be a table of channel = \"column\", a list of column names or a "
                         f"glob such as \"*_S\", got {value!r}")
    return {c.strip(): c.strip() for c in names if c.strip()}


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
        every remaining column is a channel named after its column. A column found by default or
        by a glob whose name says it is not money (``*_impressions``, ``*_clicks``, ``*_grp``,
        Robyn's ``*_I`` and ``*_P``) is an error: list it in ``ignore``, or map it by name if it
        really is spend. A column of text (event labels) is an error that says so.
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
    date_format : str or None
        A strftime pattern every date must match, such as ``"%d.%m.%Y"``. None (the default)
        reads ISO dates (``2024-03-04``, ``2024/03/04``, with or without a time) and dates with
        month names as they are, and ``03.04.2024``-style dates day-first or month-first only
        when some value settles it for the whole column (a field above 12); otherwise the file
        is refused and the message says which pattern to give.
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
    date_format: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "channels", channel_mapping(self.channels))

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
        fmt = kw.get("date_format")
        if fmt is not None and (not isinstance(fmt, str) or "%" not in fmt):
            raise ValueError(f'date_format must be a strftime pattern such as "%d.%m.%Y", got {fmt!r}')
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
    """Read and validate a history file (CSV or .xlsx).

    Parameters
    ----------
    path : str or os.PathLike
        CSV file (UTF-8, a header row), or an Excel workbook (``.xlsx``: its first visible sheet, the
        header in row 1; date cells as dates or text).
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
    return history_from_frame(read_table(path, source, spec.date_format), spec, source=source)


#: File endings read as Excel workbooks (the first visible sheet) instead of CSV.
XLSX_SUFFIXES = (".xlsx", ".xlsm")


def _xlsx_text(value, date_format: str | None) -> str:
    """A cell as the text a CSV of the same sheet would hold: numbers in full, date cells in
    ``date_format`` (else ISO, with the time only when there is one), empty cells empty."""
    import datetime as dt

    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, dt.datetime):
        if date_format:
            return value.strftime(date_format)
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.strftime(date_format) if date_format else value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_table(path, source: str | None = None, date_format: str | None = None) -> pd.DataFrame:
    """A CSV file, or the first visible sheet of a workbook (.xlsx, .xlsm), as a frame of text cells.

    Everything as text: numbers are checked cell by cell by the caller, so that a bad cell can be
    reported with its row instead of silently turning a column into strings. Used for histories
    and for the tables laid out like them (actuals, lift tests).

    Raises
    ------
    HistoryError
        The file is missing or cannot be read as a table.
    """
    source = source or os.path.basename(os.fspath(path))
    if os.fspath(path).lower().endswith(XLSX_SUFFIXES):
        return _one_name_each(_read_xlsx(path, source, date_format), source)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise HistoryError([f"{source}: file not found"], source) from None
    except OSError as exc:
        raise HistoryError([f"{source}: cannot be read ({exc.strerror or exc})"], source) from None
    text, encoding = _decode(raw, source)
    sep = _separator(text)
    try:
        cells = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True,
                            header=None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise HistoryError([f"{source}: cannot be read as CSV ({exc})"], source) from None
    # The header as written, as the workbook reader takes it: pandas' own header would rename a
    # second 抖音 to 抖音.1 (a flattened two-row header), which then reads as a channel of its own.
    header = ["" if pd.isna(h) else str(h) for h in cells.iloc[0]]
    frame = cells.iloc[1:].reset_index(drop=True)
    frame.columns = [h or f"Unnamed: {i}" for i, h in enumerate(header)]
    frame = _trim(frame)
    marks = ""
    if sep == ";":  # Excel's CSV where the decimal mark is a comma (1.234.567,89), or not
        cells = pd.Series(frame.to_numpy().ravel(), dtype=object).dropna().astype(str)  # row by row
        comma = _first(cells, _COMMA_FRACTION)
        point = None if comma is not None else _first(cells, _POINT_FRACTION)
        dotted = None if comma is not None or point is not None else _first(cells, _DOTTED_THOUSAND)
        if point is not None:
            marks = f" with decimal points ({point} is a decimal number)"
        else:
            frame = frame.apply(lambda col: col.str.replace(_DECIMAL_COMMA, _decimal_point, regex=True))
            marks = (f" with dots between thousands ({dotted} is {dotted.replace('.', '')}: no number in it has a "
                     "decimal comma or point to tell, so as Excel writes it beside decimal commas)" if dotted
                     else " with decimal commas (1.234,5 is 1234.5)")
    if sep != "," or encoding != "utf-8":
        logger.info("%s: read as %s-separated %s%s", source, _SEPARATOR_NAMES[sep], encoding.upper(), marks)
    return _one_name_each(frame, source)


def _one_name_each(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """``frame``, unless a header names a column twice (a flattened two-row header): every reader
    looks columns up by name."""
    twice = _repeated([str(c) for c in frame.columns])
    if twice:
        raise HistoryError([f"{source}: column {c!r} appears more than once in the header" for c in twice], source)
    return frame


def _repeated(columns: list[str]) -> list[str]:
    """The names a header gives more than one column, sorted."""
    return sorted({c for c in columns if columns.count(c) > 1})


def _first(cells: pd.Series, pattern: str) -> str | None:
    """The first of ``cells`` that is all ``pattern``, stripped; None if none is."""
    found = cells[cells.str.fullmatch(pattern)]
    return None if found.empty else str(found.iloc[0]).strip()


#: Field separators a CSV may use, by name: Excel writes semicolons where the decimal mark is a
#: comma, and a table pasted from a spreadsheet is tab-separated.
_SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
#: The currencies a spreadsheet writes with a number: a sign before it, a sign (or 元) after it,
#: a code on either side. Every pattern below that allows a currency is made of these.
_SIGN = r"[¥￥$€£]"
_CODE = r"CNY|RMB|USD|EUR|GBP|JPY"
_SUFFIX = r"(?:[¥￥$€£元]|" + _CODE + ")"
#: Around a number: a sign and a currency before it, a currency after it.
_LEAD = r"\s*[+-]?\s*(?:" + _SIGN + r"\s*)?"
_BEFORE = _LEAD + r"[+-]?"
_AFTER = r"\s*" + _SUFFIX + r"?\s*"
#: Whole numbers with dots between thousands (1.234.567).
_DOTTED = r"\d{1,3}(?:\.\d{3})+"
#: A number written with a decimal comma (and dots between thousands): 1.234.567,89, -0,5, 12,
#: also with a currency before or after it (€ 1.234,50, 1.234,50 €), which is kept for the number
#: reader (:func:`number_texts`) to take out.
_DECIMAL_COMMA = r"^(" + _LEAD + r")([+-]?(?:" + _DOTTED + r"|\d+))(?:,(\d+))?(" + _AFTER + r")$"
#: A number whose comma can only be a decimal comma (12,5; 1.234,56).
_COMMA_FRACTION = _BEFORE + r"(?:" + _DOTTED + r"|\d+),\d+" + _AFTER
#: A number whose dot can only be a decimal point: not three digits after it (12.5, 0.1234),
#: more than three before it (1234.567), a leading zero (0.125), or commas between thousands
#: before it (1,234.567). A month written 2024.03 is none of them.
_POINT_FRACTION = (r"(?!\s*(?:19|20)\d\d\.\d\d?\s*$)" + _BEFORE
                   + r"(?:\d+\.(?:\d{1,2}|\d{4,})|\d{4,}\.\d+|0\.\d+|\d{1,3}(?:,\d{3})+\.\d+)" + _AFTER)


#: One dot between thousands and no other mark (123.456): a decimal point or a thousands dot.
_DOTTED_THOUSAND = _BEFORE + r"\d{1,3}\.\d{3}" + _AFTER


#: The name a header cell left blank gets (both readers name it so).
_UNNAMED = re.compile(r"Unnamed: (\d+)")


def _trim(frame: pd.DataFrame) -> pd.DataFrame:
    """What a spreadsheet leaves around the data: empty rows at the end, and columns with no
    header and no value (a stray comma on every line, an empty spacer column). An empty row
    inside the data stays, to be reported at its row."""
    empty = frame.fillna("").astype(str).apply(lambda col: col.str.strip() == "")  # short rows: NaN
    blank = empty.all(axis=1).to_numpy()
    end = len(frame)
    while end and blank[end - 1]:
        end -= 1
    frame, empty = frame.iloc[:end], empty.iloc[:end]
    spacer = [bool(_UNNAMED.fullmatch(str(col))) and bool(empty.iloc[:, i].all()) for i, col in enumerate(frame.columns)]
    return frame.loc[:, [not s for s in spacer]]


def _decimal_point(match) -> str:
    before, whole, fraction, after = match.group(1), match.group(2).replace(".", ""), match.group(3), match.group(4)
    return before + (f"{whole}.{fraction}" if fraction else whole) + after


def _decode(raw: bytes, source: str) -> tuple[str, str]:
    """The file's text: UTF-8 (with or without a byte-order mark), UTF-16 with its mark (Excel's
    "Unicode text", tab-separated), else GB18030, the superset of the GBK that Excel on a Chinese
    Windows writes; anything else is an error.

    A UTF-8 file with a few stray bytes (a Windows ’ pasted into a remark) is not GB18030: read
    so, every Chinese name in it would turn into other characters (抖音 into 鎶栭煶). Its rows with
    those bytes are the problems instead."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text": UTF-16 with its byte-order mark
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    _stray_bytes(raw, source)
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding), encoding.removesuffix("-sig")
        except UnicodeDecodeError:
            continue
    raise HistoryError([f"{source}: cannot be read as text: neither UTF-8 nor GBK/GB18030 (save it as CSV UTF-8)"],
                       source)


#: Rows with stray bytes listed before "and N more rows".
_STRAY_ROWS_SHOWN = 5


def _stray_bytes(raw: bytes, source: str) -> None:
    """Raise when ``raw`` is UTF-8 but for a few bytes: more of its characters beyond ASCII decode
    as UTF-8 than fail to (in GBK text most of them fail)."""
    try:
        raw.decode("utf-8")
        return
    except UnicodeDecodeError:
        pass
    text = raw.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    good = sum(1 for ch in text if ord(ch) > 127) - bad
    if good <= bad:
        return
    rows = [(i, line) for i, line in enumerate(text.splitlines(), 1) if "\ufffd" in line]
    problems = []
    for i, line in rows[:_STRAY_ROWS_SHOWN]:
        at = line.index("\ufffd")
        problems.append(f"{source} row {i}: a character that is not UTF-8 (shown as \ufffd) in "
                        f"{line[max(0, at - 20):at + 20].strip()!r}, though the rest of the file is UTF-8: "
                        "retype it (a ’ or … pasted from another program), or save the file as CSV UTF-8")
    if len(rows) > _STRAY_ROWS_SHOWN:
        problems.append(f"{source}: and {len(rows) - _STRAY_ROWS_SHOWN:,} more rows like these")
    raise HistoryError(problems, source)


def _separator(text: str) -> str:
    """The separator that splits the header line into the most fields (a comma on a tie)."""
    head = text.split("\n", 1)[0]
    counts = {sep: len(next(csv.reader([head], delimiter=sep), [])) for sep in _SEPARATOR_NAMES}
    return max(_SEPARATOR_NAMES, key=lambda sep: (counts[sep], sep == ","))


def _read_xlsx(path, source: str, date_format: str | None) -> pd.DataFrame:
    """The first visible sheet of a workbook as text cells, header in row 1 (a hidden sheet is an
    old version or a lookup table nobody sees; which sheet was read is logged when there are more).

    Every sheet row stays a frame row (an empty row inside the data is reported at its row), so
    the rows in problems are the ones the spreadsheet shows; empty rows after the data are
    dropped. Formulas are read as the values the spreadsheet last computed.
    """
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError:
        raise HistoryError([f"{source}: file not found"], source) from None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise HistoryError([f"{source}: cannot be read as an Excel workbook ({exc})"], source) from None
    try:
        visible = [sheet for sheet in book.worksheets if sheet.sheet_state == "visible"] or book.worksheets
        sheet = visible[0]
        if len(book.worksheets) > 1:
            others = [s.title for s in book.worksheets if s is not sheet]
            logger.info("%s: read sheet %r, the first visible one; not read: %s", source, sheet.title,
                        ", ".join(repr(t) for t in others))
        rows = [[_xlsx_text(v, date_format) for v in row] for row in sheet.iter_rows(values_only=True)]
        title = sheet.title
    finally:
        book.close()
    if any(cell == "" for row in rows[1:] for cell in row):
        _unsaved_formulas(path, title, rows, source)
    while rows and not any(rows[-1]):
        rows.pop()
    if not rows or not any(rows[0]):
        raise HistoryError([f"{source}: the first visible sheet has no header row (row 1 names the columns)"], source)
    width = max(len(r) for r in rows)
    header = rows[0] + [""] * (width - len(rows[0]))
    while header and not header[-1] and not any(len(r) >= len(header) and r[len(header) - 1] for r in rows[1:]):
        header.pop()
    header = [h or f"Unnamed: {i}" for i, h in enumerate(header)]
    body = [(r + [""] * (len(header) - len(r)))[:len(header)] for r in rows[1:]]
    return _trim(pd.DataFrame(body, columns=header, dtype=str))


def _unsaved_formulas(path, title: str, rows: list[list[str]], source: str) -> None:
    """Raise when the empty cells of the sheet hold formulas: a workbook written by a program and
    never opened in a spreadsheet has no computed values to read, and each such cell would be
    reported as missing, with nothing to say why."""
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    book = load_workbook(path, read_only=True, data_only=False)
    try:
        found = [f"{get_column_letter(j + 1)}{i + 1}"
                 for i, row in enumerate(book[title].iter_rows(values_only=True))
                 for j, value in enumerate(row)
                 if isinstance(value, str) and value.startswith("=") and i < len(rows) and j < len(rows[i])
                 and rows[i][j] == ""]
    finally:
        book.close()
    if found:
        raise HistoryError([f"{source}: {len(found):,} cell{'s' if len(found) != 1 else ''} ({', '.join(found[:3])}"
                            f"{' …' if len(found) > 3 else ''}) hold a formula with no saved result (the workbook was "
                            "written by a program and never recalculated): open it in Excel or WPS and save it, or "
                            "save the sheet as CSV"], source)


def history_from_frame(frame: pd.DataFrame, spec: HistorySpec | None = None, source: str = "history",
                       **overrides) -> History:
    """Validate an in-memory table laid out like a history file (see :func:`load_history`).

    Row numbers in messages assume the frame's first row is the file's second line.
    """
    spec = _spec_with(spec, overrides)
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    for name in (spec.date, spec.kpi):  # "Date" and "Revenue" for the default date and revenue
        same = [c for c in frame.columns if c.casefold() == str(name).casefold()]
        if name not in frame.columns and len(same) == 1:
            frame = frame.rename(columns={same[0]: name})
    checker = _Checker(source)
    if spec.layout == "wide":
        history = _read_wide(frame, spec, checker)
    elif spec.layout == "long":
        history = _read_long(frame, spec, checker)
    else:
        raise HistoryError([f"{source}: layout must be 'wide' or 'long', got {spec.layout!r}"], source)
    if checker.errors or history is None:
        problems, kinds = _kinds_together(*_by_row(checker.errors, checker.error_kinds, source))
        raise HistoryError(cap_problems(problems, kinds=kinds), source)
    short = short_history_warning(history.dates, history.frequency)
    if short:
        history.warnings.append(f"{source}: {short}")
    warnings, kinds = _kinds_together(history.warnings, [problem_kind(w) for w in history.warnings])
    history.warnings[:] = cap_problems(warnings, kinds=kinds)
    for message in history.warnings:
        logger.warning("%s", message)
    return history


#: Days of history below which the yearly wave is fitted from less than two cycles: 104 weeks (two
#: years as weekly data counts them; 24 months and 730 days cover it too).
TWO_YEARS_DAYS = 728


def short_history_warning(dates: pd.DatetimeIndex, frequency: str) -> str | None:
    """Why a history under two years makes the seasonality doubtful, or None.

    With one cycle of the year a seasonal peak and a trend step look alike, so the baseline (and
    with it every channel's share of the KPI) rests on the fitted yearly wave. Prophet says the
    same on its log; the plan carries it instead.
    """
    if len(dates) < 2:
        return None
    step = {"daily": 1, "weekly": 7, "monthly": 30}.get(frequency, 0)
    days = int((dates[-1] - dates[0]).days) + step
    if days >= TWO_YEARS_DAYS:
        return None
    return (f"{days} days of history (under two years): the yearly seasonality is fitted from fewer than two "
            "cycles, so the season, the trend and the media effects are hard to tell apart")


def _by_row(problems: list[str], kinds: list, source: str) -> tuple[list[str], list]:
    """File-level problems first, then by row (stable, so a row's problems keep their order);
    ``kinds`` (parallel to ``problems``) are reordered with them."""
    prefix = f"{source} row "

    def key(item) -> int:
        p = item[0]
        if p.startswith(prefix):
            digits = p[len(prefix):].split(":", 1)[0]
            if digits.isdigit():
                return int(digits)
        return 0

    pairs = sorted(zip(problems, kinds), key=key)
    return [p for p, _ in pairs], [k for _, k in pairs]


def _kinds_together(problems: list[str], kinds: list, limit: int = REPEATS_SHOWN) -> tuple[list[str], list]:
    """Each kind that will be capped (more than ``limit`` problems) moved together to where its
    first problem is; the other problems keep their places.

    :func:`~models.problems.cap_problems` puts a kind's "… and N more like this" after its last
    example. In a list by row, kinds that repeat on the same rows (a dash for 0 in several
    columns) interleave, and their counts would land between examples of other kinds.
    """
    counts = Counter(kinds)
    first: dict = {}
    for i, kind in enumerate(kinds):
        first.setdefault(kind, i)
    order = sorted(range(len(problems)), key=lambda i: (first[kinds[i]] if counts[kinds[i]] > limit else i, i))
    return [problems[i] for i in order], [kinds[i] for i in order]


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
    """Collects errors and warnings, each prefixed with the source and the row or column."""

    def __init__(self, source: str):
        self.source = source
        self.errors: list[str] = []
        #: What each error is, for capping repeats: a name given by the check, else the message
        #: with its values masked (:func:`models.problems.problem_kind`).
        self.error_kinds: list = []
        self.warnings: list[str] = []

    def error(self, message: str, row: int | None = None, *, column: str | None = None,
              kind: str | None = None) -> None:
        from models.problems import problem_kind

        self.errors.append(self._where(row, column) + message)
        self.error_kinds.append(kind or problem_kind(self.errors[-1]))

    def warn(self, message: str, row: int | None = None) -> None:
        self.warnings.append(self._where(row) + message)

    def _where(self, row: int | None, column: str | None = None) -> str:
        if row is not None:
            return f"{self.source} row {row}: "
        if column is not None:
            return f"{self.source} column {column}: "
        return f"{self.source}: "


def _date_label(spec: HistorySpec) -> str:
    return "date" if spec.date == "date" else f"date ({spec.date})"


def _row(i: int) -> int:
    """Spreadsheet row of data row ``i`` (0-based): the header is row 1."""
    return i + 2


def _matches(column: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(column, p) for p in patterns)


def _parse_dates(values: pd.Series, spec: HistorySpec, check: _Checker) -> pd.Series:
    """The date column in one format (:func:`models.dates.read_dates`); problems to ``check``."""
    parsed = read_dates(values, spec.date_format, label=_date_label(spec), first_row=_row(0))
    for message in parsed.column_problems:
        check.error(message, column=spec.date)
    for i, message in parsed.row_problems:
        check.error(message, _row(i))
    if parsed.format and not parsed.column_problems:
        logger.debug("%s: dates read as %s", check.source, parsed.format)
    return parsed.dates


#: What a spreadsheet writes around and inside a number: a currency sign or code before it
#: (¥1,234.00, -$5, CNY 12), a currency after it (1,234元, 12 RMB), and thousands separated by
#: commas, spaces (also non-breaking) or apostrophes (1,234,567; 1 234 567; 1'234'567). A comma
#: that does not separate thousands (1234,5: a decimal comma in a comma-separated file) is left,
#: so the cell is reported as not a number rather than read as 12345.
_CURRENCY_BEFORE = r"^([+-]?)\s*(?:" + _SIGN + r"|(?:" + _CODE + r")\s)\s*"
_CURRENCY_AFTER = r"\s*" + _SUFFIX + r"$"
#: How Excel's accounting format shows zero: a dash beside a currency (¥ -, -元, $ - ). A dash alone
#: is not read: it may as well mean "missing".
_ACCOUNTING_ZERO = r"(?:" + _SIGN + r"|" + _CODE + r")\s*[-–—]\s*|[-–—]\s*" + _SUFFIX
_GROUPING = r"(?<=\d)[,\s\u00a0\u202f'’](?=\d{3}(?!\d))"


#: A number in 万 (ten thousand) or 亿 (a hundred million), as Chinese reports write amounts:
#: 345.3万 is 3,453,000 (万元 once the 元 is taken out).
_CJK_MAGNITUDE = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*([万亿])$")
_CJK_FACTORS = {"万": 10_000, "亿": 100_000_000}


def _cjk_magnitude(cell: str) -> str:
    found = _CJK_MAGNITUDE.match(cell)
    return str(Decimal(found[1]) * _CJK_FACTORS[found[2]]) if found else cell  # exact: 1.1万 is 11000


def number_texts(values: pd.Series) -> pd.Series:
    """Cells as ``float()`` reads them: full-width characters as their ASCII forms (what a Chinese
    input method types: １２３，４５６), the currency and the thousands separators taken out,
    Excel's accounting zero (``¥ -``: a dash with a currency) read as 0, and 万 and 亿 multiplied
    out (1.2万 is 12000)."""
    text = values.astype(str).str.strip()
    wide = text.str.contains("[\uff01-\uff5e]", regex=True)  # full-width digits, commas, signs (１，２３４)
    if wide.any():
        text = text.mask(wide, text[wide].map(lambda cell: unicodedata.normalize("NFKC", cell)))
    text = text.mask(text.str.fullmatch(_ACCOUNTING_ZERO), "0")
    text = text.str.replace(_CURRENCY_BEFORE, r"\1", regex=True).str.replace(_CURRENCY_AFTER, "", regex=True)
    text = text.str.replace(_GROUPING, "", regex=True)
    cjk = text.str.contains("[万亿]", regex=True)
    if cjk.any():
        text = text.mask(cjk, text[cjk].map(_cjk_magnitude))
    return text


def number_text(cell) -> str:
    """One cell as :func:`number_texts` reads it."""
    return number_texts(pd.Series([cell], dtype=object)).iloc[0]


def _parse_numbers(values: pd.Series, what: str, check: _Checker, *, rows=None,
                   nonnegative=False, positive=False, empty_is_zero=False) -> np.ndarray:
    """Cell-by-cell numbers; every bad cell is reported with its row, as the file wrote it.

    Each problem's kind (for capping) is the column's label and what is wrong, so columns whose
    names differ only in digits (Channel0, Channel1) are counted apart.
    """
    rows = np.arange(len(values)) if rows is None else np.asarray(rows)
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        text = number_texts(values)
        if empty_is_zero:
            text = text.where(text != "", "0")
        numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        raw = values.astype(str).str.strip().to_numpy()
    else:
        numbers = values.to_numpy(dtype=float)
        raw = numbers.astype(str)
    for j, (x, cell) in enumerate(zip(numbers, raw)):
        row = _row(int(rows[j]))
        cell_l = str(cell).lower()
        if math.isnan(x):
            if cell_l in _MISSING_CELLS:
                check.error(f"{what} is missing", row, kind=(what, "missing"))
            elif cell in ("-", "–", "—"):
                check.error(f"{what} {cell!r} is not a number: write 0 if it means none (Excel's accounting "
                            "format shows 0 as a dash)", row, kind=(what, "dash"))
            else:
                check.error(f"{what} {cell!r} is not a number", row, kind=(what, "not a number"))
        elif math.isinf(x):
            check.error(f"{what} is infinite", row, kind=(what, "infinite"))
        elif positive and x <= 0:
            check.error(f"{what} must be > 0, got {x:g}", row, kind=(what, "not positive"))
        elif nonnegative and x < 0:
            check.error(f"{what} must be ≥ 0, got {x:g}", row, kind=(what, "negative"))
    return numbers


def _frequency(dates: pd.DatetimeIndex, check: _Checker, rows: np.ndarray, column: str) -> str | None:
    """Detect daily/weekly/monthly from the typical spacing; refuse dates off a regular grid
    (usually a misread format); warn about gaps.

    ``rows`` are the spreadsheet rows of ``dates`` (sorted, unique), for messages.
    """
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
    if not _on_grid(dates, freq, check, rows, column):
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


def _on_grid(dates: pd.DatetimeIndex, freq: str, check: _Checker, rows: np.ndarray, column: str) -> bool:
    """Whether the dates form a regular series (with gaps allowed); errors to ``check`` if not.

    Weekly dates must share a weekday: a week labelled by a Thursday among Mondays is a wrong
    row or a misread date. And the dates must fill most of their span: day and month swapped turn
    monthly data into twelve days a year, "daily" data that is nearly all gaps.
    """
    ok = True
    if freq == "weekly":
        weekday = dates.day_of_week.to_numpy()
        usual = int(np.bincount(weekday, minlength=7).argmax())
        usual_name = pd.Timestamp("2024-01-01").replace(day=1 + usual).day_name()  # 2024-01-01 is a Monday
        for i in np.nonzero(weekday != usual)[0]:
            check.error(
                f"date {dates[i].date()} is a {dates[i].day_name()} but the other weekly dates fall on "
                f"{usual_name}s; weekly data needs one date per week on the same weekday (check the row, "
                "or the date format: set date_format)",
                int(rows[i]), kind="weekly date off its weekday",
            )
            ok = False
    span = (dates[-1] - dates[0]).days
    nominal = _FREQUENCIES[freq][0]
    expected = int(round(span / nominal)) + 1
    if len(dates) < MIN_COVERAGE * expected:
        check.error(
            f"{len(dates)} dates from {dates[0].date()} to {dates[-1].date()} fill only {len(dates)} of the "
            f"{expected:,} {freq} periods in that span, which is not a regular daily, weekly or monthly "
            "series; check the date format (set date_format)",
            column=column,
        )
        ok = False
    return ok


def _check_totals_and_copies(spend: pd.DataFrame, check: _Checker, spec: HistorySpec) -> None:
    """A spend column that is the sum of the others in every period (a report's 总投放 column, or a
    合计 row per date in the long layout) or a copy of another is not a channel: fitted, it would
    take a share of every plan with nothing to show for it."""
    x = spend.to_numpy(dtype=float)
    if x.shape[1] < 2 or not np.isfinite(x).all():
        return  # bad cells are reported cell by cell
    names = list(spend.columns)
    long = spec.layout == "long"
    copied: set[str] = set()
    for i, j in itertools.combinations(range(len(names)), 2):
        a = x[:, i]
        if a.mean() > 0 and a.std() / a.mean() >= NEAR_CONSTANT_CV and np.allclose(a, x[:, j], rtol=1e-9, atol=0.005):
            copied.add(names[j])
            check.error(f"channels {names[i]} and {names[j]} have the same spend in every period: one is a copy of the "
                        "other, and the fit cannot tell them apart; "
                        + ("drop the rows of one of them" if long else _leave_out(names[j])))
    if x.shape[1] < 3:
        return
    for j, c in enumerate(names):
        rest = x.sum(axis=1) - x[:, j]
        if c in copied or not rest.any():
            continue
        if np.all(np.abs(x[:, j] - rest) <= np.maximum(1.0, 1e-3 * rest)):
            where = ("on every date (a total row per date): drop its rows" if long else
                     f"in every row (a total, not a channel): {_leave_out(c)}")
            check.error(f"{'channel' if long else 'column'} {c} is the sum of the other channels' spend {where}")


def _check_length_and_spend(spend: pd.DataFrame, check: _Checker, spec: HistorySpec) -> None:
    _check_totals_and_copies(spend, check, spec)
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


def _shape_of_rows_read(dates: pd.Series, check: _Checker, spec: HistorySpec,
                        spend: pd.DataFrame | None = None) -> None:
    """With problems in cells already found, the checks of the file's shape on the rows that were
    read (dates on a grid, enough periods, channels never spent), so one round lists them all
    rather than a second run after the cells are mended. Warnings are not kept: the file is
    refused anyway, and a gap may be only a row whose date was unreadable."""
    read = dates.notna().to_numpy()
    if read.sum() >= max(2, 0.5 * len(dates)):  # else the date column itself is the problem
        rows = np.nonzero(read)[0]
        values = dates.to_numpy()[read]
        order = np.argsort(values, kind="stable")
        idx = pd.DatetimeIndex(values[order])
        first = ~idx.duplicated()
        warnings_before = list(check.warnings)
        _frequency(idx[first], check, _row(rows[order][first]), spec.date)
        check.warnings[:] = warnings_before
    if spend is not None and len(spend.columns):
        _check_length_and_spend(spend, check, spec)


def _events_frame(frame: pd.DataFrame, columns, order: np.ndarray, check: _Checker) -> pd.DataFrame:
    out = {}
    for col in columns:
        values = frame[col].astype(str).str.strip()
        numeric = pd.to_numeric(number_texts(values).where(values != "", "0"), errors="coerce")
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


def _text_cells(values: pd.Series) -> tuple[int, str, int, int] | None:
    """Whether a column read as spend holds text rather than numbers with a few bad cells: most
    cells are not numbers and one of them has letters without meaning "missing" (``event1`` among
    ``na``). Then (index of the first such cell, the cell, how many cells are neither numbers nor
    empty, how many are empty), else None.

    Usually an event or label column left to be read as a channel: one problem for the column says
    so, where a "not a number" per row would not. A column of dashes for 0 is not text.
    """
    if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
        return None
    text = values.astype(str).str.strip()
    not_number = pd.to_numeric(number_texts(values), errors="coerce").isna().to_numpy()
    if not_number.sum() * 2 <= len(text):
        return None
    words = (not_number & text.str.contains(r"[^\W\d_]", regex=True).to_numpy()
             & ~text.str.lower().isin(_MISSING_CELLS).to_numpy())
    if not words.any():
        return None
    i = int(np.argmax(words))
    empty = (text == "").to_numpy()
    return i, str(text.iloc[i]), int((not_number & ~empty).sum()), int(empty.sum())


def _leave_out(column: str) -> str:
    """How to keep a column out of the channels, in a [history] table and on the command line."""
    return (f"leave it out with ignore = [{json.dumps(column, ensure_ascii=False)}] in [history] "
            f"(budget fit --ignore {shlex.quote(column)})")


def _text_column_problem(column: str, channel: str, found: tuple[int, str, int, int], cells: int,
                         spec: HistorySpec) -> str:
    """The one problem for a spend column of text (:func:`_text_cells`): an example, and how to
    declare it as events or leave it out."""
    i, cell, not_numbers, empty = found
    declare = (f"if it marks events, declare it with events = [{json.dumps(column, ensure_ascii=False)}] in "
               f"[history] (budget fit --event {shlex.quote(column)})")
    if isinstance(spec.channels, dict):  # mapped by name: ignore would not take it out
        declare += f" and take channel {channel} out of `channels`"
        leave = f"take channel {channel} out of `channels`"
    else:
        leave = _leave_out(column)
    blank = f", {empty:,} empty" if empty else ""
    text = "1 is not a number" if not_numbers == 1 else f"{not_numbers:,} are not numbers"
    return (f"holds text, not spend ({cell!r} in row {_row(i)}; of its {cells:,} cells {text}{blank}): {declare}; "
            f"if it is not a channel, {leave}")


def _not_money(column: str) -> str | None:
    """What a column's name says it counts when that is not money ("its name says it counts
    impressions"), else None. Whole words only: ``grp`` in ``tv_grp``, not in ``group``."""
    for suffix, what in _ROBYN_NOT_MONEY.items():
        if column.endswith(suffix):
            return f"its name ends in {suffix}, Robyn's suffix for {what}"
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", re.sub(r"(?<=[a-z])(?=[A-Z])", " ", column))]
    if column.endswith("_S") or _MONEY_WORDS.intersection(words) or any(w in column for w in _MONEY_CHINESE):
        return None
    for word in words:
        if word in _NOT_MONEY_WORDS:
            return f"its name says it counts {_NOT_MONEY_WORDS[word]}"
    for word, what in _NOT_MONEY_CHINESE.items():
        if word in column:
            return f"its name says it counts {what}"
    return None


def _check_not_money(frame: pd.DataFrame, mapping: dict[str, str], not_money: dict[str, str],
                     spend: dict[str, np.ndarray], check: _Checker) -> None:
    """One problem per channel column whose name says it is not money (``not_money``: channel →
    what the name says), with the share of all spend it would take."""
    if not not_money:
        return
    totals = {c: _finite_sum(v) for c, v in spend.items()}
    for channel in not_money:
        totals[channel] = _finite_sum(pd.to_numeric(number_texts(frame[mapping[channel]]), errors="coerce")
                                      .to_numpy(dtype=float))
    everything = sum(totals.values())
    for channel, says in not_money.items():
        col = mapping[channel]
        share = f", at {totals[channel] / everything:.0%} of all spend" if totals[channel] > 0 else ""
        quoted, flag = json.dumps(col, ensure_ascii=False), shlex.quote(col)
        check.error(
            f"{says}, not money, yet it would be fitted as a channel's spend{share}; {_leave_out(col)}, or, if it "
            f"drives the KPI without being spend, declare it a control with controls = [{quoted}] (--control "
            f"{flag}); if it really is spend, rename the column or map the channels by name in `channels`",
            column=col,
        )


#: Fewest rows a content check (:func:`_not_spend`) judges a column on.
_CONTENT_ROWS = 8


def _not_spend(values: np.ndarray, dates: pd.Series) -> tuple[str, str] | None:
    """What a spend column found by default or by a glob holds when its numbers say it is not
    spend, and how to declare it ("events" or "ignore"); else None. A PyMC-Marketing sample, for
    one, keeps event flags, the day of the year and a trend index beside its spend columns."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    if ok.sum() < _CONTENT_ROWS:
        return None
    x = v[ok]
    if np.isin(x, (0.0, 1.0)).all() and 0 < x.sum() < x.size:
        return "holds only 0 and 1, as an event flag does", "events"
    steps = np.diff(x)
    if ok.all() and steps[0] > 0 and np.allclose(steps, steps[0]):
        return f"rises by the same {steps[0]:g} every row, as a trend index does", "ignore"
    when = pd.DatetimeIndex(pd.to_datetime(dates, errors="coerce"))
    if len(when) == len(v) and not when.isna().any():
        calendar = {"the day of the year": when.day_of_year, "the week of the year": when.isocalendar().week,
                    "the month": when.month}
        for what, idx in calendar.items():
            idx = np.asarray(idx, dtype=float)[ok]
            if any(np.mean(np.abs(x - (idx + shift)) <= 0.5) >= 0.9 for shift in (-1.0, 0.0)):
                return f"follows the calendar ({what})", "ignore"
    return None


def _check_not_spend(mapping: dict[str, str], spend: dict[str, np.ndarray], dates: pd.Series,
                     check: _Checker) -> set[str]:
    """One problem per channel column whose numbers say it is not spend (:func:`_not_spend`);
    the channels named."""
    named = set()
    for channel, values in spend.items():
        found = _not_spend(values, dates)
        if found is None:
            continue
        named.add(channel)
        says, kind = found
        col = mapping[channel]
        quoted, flag = json.dumps(col, ensure_ascii=False), shlex.quote(col)
        how = (f"declare it an event with events = [{quoted}] in [history] (budget fit --event {flag})"
               if kind == "events" else
               f"the baseline models trend and season itself: {_leave_out(col)}, or make it a control with "
               f"controls = [{quoted}] (--control {flag})")
        check.error(f"{says}, not spend, yet it would be fitted as a channel: {how}; if it really is spend, "
                    "map the channels by name in `channels`", column=col)
    return named


#: A spend column whose typical value is under this share of the other columns' is not spend in
#: their unit: an ROI or a count read as a channel, or spend in 万元 beside spend in 元.
SPEND_SCALE_FLOOR = 1e-3


def _check_spend_scale(mapping: dict[str, str], spend: dict[str, np.ndarray], check: _Checker) -> None:
    """One problem per channel column whose numbers are a thousand times smaller than the others'."""
    typical = {}
    for channel, values in spend.items():
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v) & (v > 0)]
        if v.size:
            typical[channel] = float(np.median(v))
    for channel, m in typical.items():
        others = [t for c, t in typical.items() if c != channel]
        if len(others) < 2 or m >= SPEND_SCALE_FLOOR * (usual := float(np.median(others))):
            continue
        col = mapping[channel]
        check.error(f"its values (median {m:,.4g}) are under {SPEND_SCALE_FLOOR:.1%} of the other spend columns' "
                    f"(median {usual:,.0f}), so it is not spend in their unit (an ROI or a count, "
                    f"or spend in 万元 beside 元): {_leave_out(col)}, or give it in the others' unit; if it really is "
                    "spend, map the channels by name in `channels`", column=col)


def _finite_sum(values: np.ndarray) -> float:
    """The sum of the finite, non-negative values (bad cells are reported elsewhere)."""
    values = np.asarray(values, dtype=float)
    return float(values[np.isfinite(values) & (values >= 0)].sum())


def _close(name: str, columns: list[str]) -> str:
    """`` (did you mean 'revenue'?)`` for a column name typed with another case, spaces or a typo."""
    folded = {c.strip().casefold(): c for c in columns}
    if name.strip().casefold() in folded:
        return f" (did you mean {folded[name.strip().casefold()]!r}?)"
    close = difflib.get_close_matches(name, columns, n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _header_lower_down(frame: pd.DataFrame, col: str) -> str:
    """`` (it is in row 3: …)`` when the column's name sits in one of the first rows below the
    header, under a report's title banner ("2024年营销投放周报（单位：元）") or a two-row header."""
    for i in range(min(5, len(frame))):
        if col in [str(v).strip() for v in frame.iloc[i]]:
            return (f" (its name is in row {i + 2}: the header must be the first row; delete the "
                    f"row{'s' if i else ''} above it, such as a title)")
    return ""


#: Column names a KPI goes by in the reports this reads (revenue, sales, GMV; 销售额, 营收, 成交额 …).
_KPI_NAMES = re.compile(r"revenue|sales|gmv|kpi|conversions|销售|营收|收入|成交|营业额|流水", re.IGNORECASE)


def _likely_column(frame: pd.DataFrame, what: str) -> str:
    """`` (the dates look to be in '日期': date = "日期" …)`` for a date or KPI column named otherwise
    than the default (a Chinese report's 日期 and 销售额); empty when none stands out."""
    from models.dates import read_one_date

    if what == "date":
        found = [c for c in frame.columns
                 if (cells := [v for v in frame[c].astype(str).str.strip().head(5) if v]) and
                 all(read_one_date(v) is not None and not v.replace(".", "").isdigit() for v in cells)]
        key, flag = "date", "--date"
    else:
        found = [c for c in frame.columns if _KPI_NAMES.search(str(c))]
        key, flag = "kpi", "--kpi"
    if len(found) != 1:
        return ""
    col = found[0]
    return (f" (the {'dates look to be' if what == 'date' else 'KPI looks to be'} in {col!r}: say {key} = "
            f"{json.dumps(str(col), ensure_ascii=False)} in [history], or {flag} {shlex.quote(str(col))})")


def _resolve_channels(columns: list[str], spec: HistorySpec, used: set[str], check: _Checker) -> dict[str, str]:
    """Channel id → column for the wide layout."""
    if isinstance(spec.channels, dict):
        mapping = {str(k): str(v) for k, v in spec.channels.items()}
        first: dict[str, str] = {}
        for channel, col in mapping.items():
            if col not in columns:
                check.error(f"column {col!r} for channel {channel} not found{_close(col, columns)}; columns are: "
                            f"{', '.join(columns)}")
            elif col in first:
                check.error(f"column {col!r} is mapped to channel {first[col]} already, and again to {channel}: two "
                            "channels on one column have the same spend, and the fit cannot tell them apart")
            first.setdefault(col, channel)
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
    lower = "" if spec.date in columns else _header_lower_down(frame, spec.date)
    if lower:  # a title above the header: every other problem would follow from it
        check.error(f"date column {spec.date!r} not found{lower}")
        return None
    for what, col in (("date", spec.date), ("KPI", spec.kpi)):
        if col not in columns:
            likely = _close(col, columns) or _likely_column(frame, what)
            check.error(f"{what} column {col!r} not found{likely}; columns are: {', '.join(columns)}")
    for kind, cols in (("control", spec.controls), ("event", spec.events)):
        for col in cols:
            if col not in columns:
                check.error(f"{kind} column {col!r} not found{_close(col, columns)}; columns are: "
                            f"{', '.join(columns)}")
    for col in _repeated(columns):
        check.error(f"column {col!r} appears more than once in the header")
    for col in columns:
        blank = _UNNAMED.fullmatch(str(col))  # values under a blank header cell (empty columns are dropped)
        if blank and not _matches(col, spec.ignore):
            from openpyxl.utils import get_column_letter

            check.error(f"column {get_column_letter(int(blank[1]) + 1)} has values but no name in the header row; "
                        "name it (a channel's name) or delete it")
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

    dates = _parse_dates(frame[spec.date], spec, check)
    kpi = _parse_numbers(frame[spec.kpi], spec.kpi, check, positive=True)
    # Mapped by name, a column is spend whatever it is called; found by default or by a glob, a
    # column named as impressions or clicks is not.
    not_money = {} if isinstance(spec.channels, dict) else {
        channel: says for channel, col in mapping.items() if (says := _not_money(col))}
    spend = {}
    for channel, col in mapping.items():
        text = _text_cells(frame[col])
        if text is not None:
            check.error(_text_column_problem(col, channel, text, len(frame), spec), column=col)
            not_money.pop(channel, None)  # one problem per column: the text says more
        elif channel not in not_money:
            label = f"spend for {channel} ({col})" if col != channel else f"spend for {channel}"
            spend[channel] = _parse_numbers(frame[col], label, check, nonnegative=True)
    _check_not_money(frame, mapping, not_money, spend, check)
    if not isinstance(spec.channels, dict):  # mapped by name, a column is spend whatever it holds
        named = _check_not_spend(mapping, spend, dates, check)
        _check_spend_scale(mapping, {c: v for c, v in spend.items() if c not in named}, check)
    controls = {col: _parse_numbers(frame[col], f"control {col}", check) for col in spec.controls}
    _check_duplicate_dates(dates, check, spec=spec)
    if check.errors:
        _shape_of_rows_read(dates, check, spec, pd.DataFrame(spend))
        return None
    order = np.argsort(dates.to_numpy(), kind="stable")
    idx = pd.DatetimeIndex(dates.to_numpy()[order])
    spend_df = pd.DataFrame({c: v[order] for c, v in spend.items()})
    events = _events_frame(frame, spec.events, order, check)
    freq = _frequency(idx, check, _row(order), spec.date)
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


def _check_duplicate_dates(dates: pd.Series, check: _Checker, channels: pd.Series | None = None, *,
                           spec: HistorySpec) -> None:
    """Each date once (per channel in the long layout); when most dates repeat, say what the file
    looks like, because thousands of "appears twice" lines do not."""
    key = dates if channels is None else pd.Series(list(zip(dates, channels)))
    first_seen: dict = {}
    repeated: set = set()
    for i, k in enumerate(key):
        if isinstance(k, tuple):
            if pd.isna(k[0]):
                continue
        elif pd.isna(k):
            continue
        if k in first_seen:
            repeated.add(k)
            if channels is None:
                check.error(f"date {k.date()} appears twice (first at row {first_seen[k]})", _row(i),
                            kind="date appears twice")
            else:
                check.error(
                    f"date {k[0].date()} appears twice for channel {k[1]} (first at row {first_seen[k]})", _row(i),
                    kind="date appears twice for a channel",
                )
        else:
            first_seen[k] = _row(i)
    # A few repeats are pasted rows; most keys repeating is a layout (one row per geo, per channel).
    if len(repeated) < max(2, len(first_seen) / 2):
        return
    rows = sum(1 for k in key if not pd.isna(k[0] if isinstance(k, tuple) else k))
    if channels is None:
        check.error(
            f"several rows per date ({len(first_seen):,} distinct dates, {rows:,} rows): this looks like a geo or "
            f'long layout; for one row per date and channel (columns {spec.date}, {spec.channel_column}, '
            f'{spec.spend_column}, {spec.kpi}) use layout = "long"; geo-level data must be aggregated to one '
            "row per date first"
        )
    else:
        check.error(
            f"several rows per date and channel ({len(first_seen):,} distinct pairs, {rows:,} rows): this looks "
            "like geo-level data; aggregate it to one row per date and channel first"
        )


def _read_long(frame: pd.DataFrame, spec: HistorySpec, check: _Checker) -> History | None:
    columns = list(frame.columns)
    required = {spec.date: ("date", "--date"), spec.channel_column: ("channel_column", "--channel-column"),
                spec.spend_column: ("spend_column", "--spend-column"), spec.kpi: ("kpi", "--kpi")}
    missing = [col for col in required if col not in columns]
    for col in missing:
        key, flag = required[col]
        check.error(
            f"column {col!r} not found{_close(col, columns)}; the long layout needs a date, a channel, a spend and a "
            f"return column: name yours with {key} = \"…\" in [history] ({flag} on the command line); columns are: "
            f"{', '.join(columns)}"
        )
    if not missing:  # else the unknown columns are most likely the ones to name
        for col in columns:
            if col not in required and not _matches(col, spec.ignore):
                check.error(f"unknown column {col!r} in the long layout; list it in `ignore` to skip it")
    if spec.controls or spec.events:
        check.error("controls and events are only supported in the wide layout")
    if check.errors:
        return None
    dates = _parse_dates(frame[spec.date], spec, check)
    channels = frame[spec.channel_column].astype(str).str.strip()
    for i in np.nonzero((channels == "").to_numpy())[0]:
        check.error("channel is empty", _row(int(i)))
    spend = _parse_numbers(frame[spec.spend_column], "spend", check, nonnegative=True)
    revenue = _parse_numbers(frame[spec.kpi], spec.kpi, check, nonnegative=True)
    _check_duplicate_dates(dates, check, channels, spec=spec)
    if check.errors:
        _shape_of_rows_read(dates, check, spec)
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
    # The first row of each date, for messages about a date.
    first_rows = _row(pd.Series(np.arange(len(long))).groupby(long["date"].to_numpy()).min().reindex(idx).to_numpy())
    freq = _frequency(idx, check, first_rows, spec.date)
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
