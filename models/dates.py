"""Read a column of dates in one format, never guessing between day-first and month-first.

With an explicit ``date_format`` (a strftime pattern such as ``"%d.%m.%Y"``) every value must
match it. Without one, each value is put in a style:

* **year first**: ``2024-03-04``, ``2024/03/04``, ``2024.03.04``, optionally with a time, and the
  other ISO 8601 forms (``2024-03``, ``20240304``). Unambiguous.
* **day and month first**: ``03.04.2024``, ``03/04/2024``, ``03-04-2024`` (four-digit year),
  optionally with a time. Either field may be the day. The *whole column* decides: a first field
  above 12 anywhere makes every value day-first, a second field above 12 makes every value
  month-first; if no value settles it, the column is refused and the message says which
  ``date_format`` to give. It is never decided value by value: that is how ``dd.mm.yyyy`` files
  came out month-first wherever the day was ≤ 12, with their weeks scrambled (issue #8).
* **written out**: values with a month name (``4 Mar 2024``, ``March 4, 2024``). Unambiguous.

Year-first dates as Chinese and Japanese spreadsheets show them (``2024年3月4日``, ``2024年3月``)
and ISO weeks (``2024-W10``, its Monday; ``2024-W10-3``, its Wednesday) are read as the ISO dates
they name. A column of whole numbers between 25569 and 73050 only (``45355``) is Excel's serial day
numbers, which a date cell becomes when its workbook is saved as CSV with the column formatted as
General (day 1 is 1900-01-01 and Excel counts a 29 February 1900, so 45355 is 2024-03-04); said on
stderr. Five-digit numbers outside that range (1970 to 2099) are not taken for dates.

One column holds one style: a column that mixes them (some ISO rows pasted into a dotted file)
is refused with the rows of each.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["ParsedDates", "read_dates"]

logger = logging.getLogger(__name__)

# An optional time after the date (with seconds, fractions, AM/PM or a UTC offset). Periods are
# days, so the time is checked for form and then dropped.
_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[AaPp][Mm])?\s*(?:Z|[+-]\d{2}:?\d{2})?)?"
_YEAR_FIRST = re.compile(rf"^(?P<y>\d{{4}})(?P<sep>[-/.])(?P<m>\d{{1,2}})(?P=sep)(?P<d>\d{{1,2}})(?P<time>{_TIME})$")
_DAY_MONTH = re.compile(rf"^(?P<a>\d{{1,2}})(?P<sep>[-/.])(?P<b>\d{{1,2}})(?P=sep)(?P<y>\d{{4}})(?P<time>{_TIME})$")
_DAY_MONTH_SHORT = re.compile(r"^\d{1,2}([-/.])\d{1,2}\1\d{2}$")  # 03.04.24: which field is the year?
_STARTS_WITH_YEAR = re.compile(r"^\d{4}")
_HAS_LETTERS = re.compile(r"[^\W\d_]")
# 2024年3月4日 (a time may follow), 2024年3月: year first, as a CJK spreadsheet shows a date.
_CJK_DATE = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月(?:\s*(\d{1,2})\s*[日号])?")
_ISO_WEEK = re.compile(r"^(\d{4})-?W(\d{2})(?:-?([1-7]))?$", re.IGNORECASE)
#: Excel's "mmm-yy" month format saved as text (Jan-25, Sep 24): dateutil reads it as the 25th of
#: January in year 1.
_MONTH_TWO_DIGIT_YEAR = re.compile(r"^(?P<m>[A-Za-z]{3,9})\.?[-\s/']+(?P<y>\d{2})$")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# Excel's serial day number, with the time of day as a fraction (45355, 45355.5, 45355.0).
_EXCEL_SERIAL = re.compile(r"^(\d{5})(?:\.\d*)?$")
#: The serial numbers read as dates: 1970-01-01 to 2099-12-31.
EXCEL_SERIALS = (25569, 73050)
_EXCEL_EPOCH = pd.Timestamp("1899-12-30")  # serial 0, as Excel counts (it has a 29 Feb 1900)

# Ranges of rows listed in a "mixed formats" message before the rest are counted.
_RANGES_SHOWN = 3


@dataclass
class ParsedDates:
    """The dates of a column and what was wrong with it.

    Attributes
    ----------
    dates : pandas.Series
        datetime64 (midnight), NaT where a value could not be read or the column was refused.
    row_problems : list of (int, str)
        ``(position, message)`` for values that are not dates (position 0 = the first value).
    column_problems : list of str
        Problems of the column as a whole (ambiguous order, mixed formats).
    format : str or None
        The pattern used or settled on (``"%d.%m.%Y"``, ``"ISO 8601"``), for the log.
    """

    dates: pd.Series
    row_problems: list[tuple[int, str]] = field(default_factory=list)
    column_problems: list[str] = field(default_factory=list)
    format: str | None = None


def read_dates(values: pd.Series, date_format: str | None = None, *, label: str = "date",
               first_row: int = 2) -> ParsedDates:
    """Parse a column of date texts in one format (see the module docstring).

    Parameters
    ----------
    values : pandas.Series
        The cells as text.
    date_format : str, optional
        A strftime pattern every value must match; None detects the format.
    label : str
        How row problems name the column (``"date"``, ``"date (DATE)"``).
    first_row : int
        The spreadsheet row of the first value, for rows named in column problems.

    Returns
    -------
    ParsedDates
    """
    text = values.astype(str).str.strip().reset_index(drop=True)
    result = ParsedDates(dates=pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]"))
    for i in np.nonzero((text == "").to_numpy())[0]:
        result.row_problems.append((int(i), f"{label} is empty"))
    filled = text[text != ""]
    if date_format is not None:
        _read_with_format(filled, date_format, label, result)
    else:
        _detect_and_read(filled, label, first_row, result)
    result.row_problems.sort(key=lambda p: p[0])
    result.dates = result.dates.dt.normalize()
    return result


def _read_with_format(text: pd.Series, date_format: str, label: str, result: ParsedDates) -> None:
    try:
        parsed = pd.to_datetime(text, format=date_format, errors="coerce")
    except ValueError as exc:  # a pattern strptime rejects outright, e.g. "%Q"
        result.column_problems.append(f"date_format {date_format!r} is not a valid strftime pattern ({exc})")
        return
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)  # keep the local calendar day the file wrote
    for i in parsed.index[parsed.isna()]:
        result.row_problems.append((int(i), f"{label} {text[i]!r} does not match date_format {date_format!r}"))
    result.dates.loc[parsed.index] = parsed
    result.format = date_format


def read_one_date(value) -> pd.Timestamp | None:
    """One date on its own (a lift test's start or end), in any form a history column reads
    without a column to settle it: a date object, year first (2024-06-03, 2024/6/3, with a time),
    2024年6月3日, an ISO week (2024-W23), an Excel serial day number, a month name with a year
    (3 Jun 2024). None for anything else, day-first or month-first (03.06.2024) included: one
    value cannot say which."""
    if isinstance(value, (dt.datetime, dt.date, pd.Timestamp)):
        return _naive(pd.Timestamp(value))
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    text = str(value).strip()
    serial = _EXCEL_SERIAL.match(text)
    if serial:
        days = int(serial[1])
        return _EXCEL_EPOCH + pd.Timedelta(days=days) if EXCEL_SERIALS[0] <= days <= EXCEL_SERIALS[1] else None
    text = _iso_text(text)
    ymd = _YEAR_FIRST.match(text)
    if ymd:
        try:
            return pd.Timestamp(year=int(ymd["y"]), month=int(ymd["m"]), day=int(ymd["d"]))
        except ValueError:
            return None
    if _STARTS_WITH_YEAR.match(text):
        try:
            return _naive(pd.Timestamp(text))
        except (ValueError, OverflowError):
            return None
    if _HAS_LETTERS.search(text):
        stamp = _written_out(text)
        return None if pd.isna(stamp) else stamp
    return None


#: A period written as its first and last day (2024-01-01~2024-01-07, 2024/1/1至2024/1/7): a
#: weekly report's label. Read as its first day, the period's start, as every date here is.
_RANGE = re.compile(r"^(\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?)\s*[~～至—–]\s*(?:\d{4}[-/.年])?\d{1,2}[-/.月]\d{1,2}日?$")


def _iso_text(value: str) -> str:
    """The ISO form of a CJK or ISO-week date (``2024年3月4日`` → ``2024-03-04``, ``2024-W10`` →
    ``2024-03-04``), and a range's first day; any other value as it is."""
    span = _RANGE.match(value)
    if span:
        value = span[1]
    week = _ISO_WEEK.match(value)
    if week:
        try:
            return dt.date.fromisocalendar(int(week[1]), int(week[2]), int(week[3] or 1)).isoformat()
        except ValueError:  # W54: not a week of that year
            return value
    cjk = _CJK_DATE.match(value)
    if cjk:
        day = f"-{int(cjk[3]):02d}" if cjk[3] else ""
        return f"{cjk[1]}-{int(cjk[2]):02d}{day}" + value[cjk.end():]
    return value


def _detect_and_read(text: pd.Series, label: str, first_row: int, result: ParsedDates) -> None:
    if _excel_serials(text, result):
        return
    shown = text  # the values as the file wrote them, for messages
    text = text.map(_iso_text)
    year_first = text.str.extract(_YEAR_FIRST)
    day_month = text.str.extract(_DAY_MONTH)
    is_ymd = year_first["y"].notna()
    is_dm = day_month["a"].notna()
    is_iso_other = ~is_ymd & ~is_dm & text.str.match(_STARTS_WITH_YEAR)
    # A value with letters counts as written out only if it reads as a date ("next week" does not:
    # it is a bad row, not a second format).
    written = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    candidates = text.index[~is_ymd & ~is_dm & ~is_iso_other & text.str.contains(_HAS_LETTERS)]
    written.loc[candidates] = [_written_out(text[i]) for i in candidates]
    is_text = written.notna()

    # One style per column; day-month values with different separators are different styles
    # because two sources may well have used different orders.
    styles: dict[str, pd.Index] = {}
    if (is_ymd | is_iso_other).any():
        styles["iso"] = text.index[is_ymd | is_iso_other]
    for sep in sorted(day_month["sep"].dropna().unique()):
        styles[f"dm{sep}"] = text.index[day_month["sep"] == sep]
    if is_text.any():
        styles["text"] = text.index[is_text]
    unknown = text.index[~(is_ymd | is_dm | is_iso_other | is_text)]
    for i in unknown:
        result.row_problems.append((int(i), _not_a_date(label, shown[i])))
    if len(styles) > 1:
        parts = [f"{len(rows):,} row{'s' if len(rows) != 1 else ''} like {shown[rows[0]]} "
                 f"({_row_ranges(rows, first_row)})" for rows in sorted(styles.values(), key=lambda r: r[0])]
        result.column_problems.append("mixed date formats: " + ", ".join(parts) + "; " + _ONE_FORMAT)
        return
    if not styles:
        if len(unknown):
            # Every value unreadable: the file has a format of its own (03.04.24, 4-Mar-24 …).
            first = shown[unknown[0]]
            short = _DAY_MONTH_SHORT.match(first)
            example = f', such as "%d{short[1]}%m{short[1]}%y" for {first}' if short else ""
            result.column_problems.append(
                "no date is in a format read without date_format (2024-03-04, 03.04.2024, 4 Mar 2024); "
                f"set date_format to the file's strftime pattern{example}"
            )
        return

    (style, rows), = styles.items()
    if style == "iso":
        parsed = _ymd(year_first.loc[rows[is_ymd[rows].to_numpy()]], "y", "m", "d")
        other = rows[is_iso_other[rows].to_numpy()]
        if len(other):
            parsed = pd.concat([parsed, pd.to_datetime(text[other], format="ISO8601", errors="coerce", utc=True)
                                .dt.tz_localize(None)])
        result.format = "ISO 8601"
    elif style == "text":
        parsed = written.loc[rows]
        result.format = "written out"
    else:
        order = _day_month_order(text, day_month.loc[rows], style[2:], first_row, result)
        if order is None:
            return
        parts = day_month.loc[rows]
        parsed = _ymd(parts, "y", "b", "a") if order == "day" else _ymd(parts, "y", "a", "b")
    for i in parsed.index[parsed.isna()]:
        result.row_problems.append((int(i), _not_a_date(label, shown[i])))
    result.dates.loc[parsed.index] = parsed


def _not_a_date(label: str, value: str) -> str:
    """The problem of a value that is not a date; an Excel serial day number among dates is named
    as one (a cell left formatted as a number)."""
    serial = read_one_date(value) if _EXCEL_SERIAL.match(str(value).strip()) else None
    return f"{label} {value!r} is not a date" + (
        f": it looks like an Excel serial day number ({serial.date().isoformat()}), a cell formatted as a number "
        "among cells formatted as dates; format the whole column as dates" if serial is not None else "")


def _excel_serials(text: pd.Series, result: ParsedDates) -> bool:
    """Read the column as Excel serial day numbers if every value is one (see the module docstring)."""
    serial = text.str.extract(_EXCEL_SERIAL)[0]
    if not len(text) or serial.isna().any():
        return False
    days = serial.astype(int)
    lo, hi = EXCEL_SERIALS
    if not days.between(lo, hi).all():
        return False
    result.dates.loc[text.index] = _EXCEL_EPOCH + pd.to_timedelta(days, unit="D")
    result.format = "Excel serial day numbers"
    first = text.index[0]
    logger.info("reading dates as Excel serial day numbers (%s is %s): the column was saved unformatted",
                text[first], result.dates[first].date().isoformat())
    return True


_ONE_FORMAT = "write every date the same way (or set date_format and fix the rows that do not match it)"


def _day_month_order(text: pd.Series, parts: pd.DataFrame, sep: str, first_row: int,
                     result: ParsedDates) -> str | None:
    """"day" or "month" (which field comes first), settled by the whole column; None = refused."""
    a = parts["a"].astype(int)
    b = parts["b"].astype(int)
    only_day_first = parts.index[(a > 12).to_numpy()]
    only_month_first = parts.index[(b > 12).to_numpy()]

    def example(index) -> str:
        return f"{text[index[0]]} (row {index[0] + first_row})"

    if len(only_day_first) and len(only_month_first):
        result.column_problems.append(
            f"dates such as {example(only_day_first)} only work day-first and dates such as "
            f"{example(only_month_first)} only month-first; {_ONE_FORMAT}"
        )
        return None
    day_first = f"%d{sep}%m{sep}%Y"
    month_first = f"%m{sep}%d{sep}%Y"
    if len(only_day_first):
        logger.info("reading dates day-first (%s): %s cannot be month-first", day_first, example(only_day_first))
        result.format = day_first
        return "day"
    if len(only_month_first):
        logger.info("reading dates month-first (%s): %s cannot be day-first", month_first, example(only_month_first))
        result.format = month_first
        return "month"
    differ = parts.index[(a != b).to_numpy()]
    if not len(differ):
        result.format = day_first
        return "day"  # 01.01.2024, 02.02.2024 …: both readings are the same date
    time = parts.loc[differ[0], "time"] or ""
    time_format = {1: " %H:%M", 2: " %H:%M:%S"}.get(time.count(":"), "") if time else ""
    result.column_problems.append(
        f"dates such as {example(differ)} can be read day-first or month-first; set date_format "
        f'("{day_first}{time_format}" for day first, "{month_first}{time_format}" for month first)'
    )
    return None


def _ymd(parts: pd.DataFrame, year: str, month: str, day: str) -> pd.Series:
    """Dates from year/month/day text columns; NaT where the day does not exist (31.02)."""
    if parts.empty:
        return pd.Series([], dtype="datetime64[ns]")
    frame = pd.DataFrame({"year": parts[year].astype(int), "month": parts[month].astype(int),
                          "day": parts[day].astype(int)})
    return pd.to_datetime(frame, errors="coerce")


def _written_out(value: str) -> pd.Timestamp:
    """A date with a month name; NaT when it is not one. Only reached by values with letters, so
    dateutil's own month-first guess never decides a numeric date.

    ``Jan-25`` is Excel's month format (January 2025; two-digit years as Excel reads them, 00–29
    in the 2000s). A value without a year (``25-Jan``, ``Jan``) is not a date: dateutil would put it
    in year 1."""
    month_year = _MONTH_TWO_DIGIT_YEAR.match(value.strip())
    month = month_year["m"][:3].lower() if month_year else None
    if month in _MONTHS:
        yy = int(month_year["y"])
        return pd.Timestamp(year=(2000 if yy < 30 else 1900) + yy, month=_MONTHS.index(month) + 1, day=1)
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, OverflowError, TypeError):
        return pd.NaT
    if not 1900 <= stamp.year <= 2200:
        return pd.NaT
    return _naive(stamp)


def _naive(stamp: pd.Timestamp) -> pd.Timestamp:
    """The stamp without its time zone: the local calendar day the file wrote."""
    return stamp.tz_localize(None) if stamp.tzinfo is not None else stamp


def _row_ranges(index: pd.Index, first_row: int) -> str:
    """``rows 2–31, 36–37, 39–41`` (first few runs of consecutive rows, then how many more)."""
    rows = np.asarray(index) + first_row
    breaks = np.nonzero(np.diff(rows) != 1)[0]
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(rows) - 1]])
    runs = [f"{rows[s]}" if s == e else f"{rows[s]}–{rows[e]}" for s, e in zip(starts, ends)]
    shown = ", ".join(runs[:_RANGES_SHOWN])
    if len(runs) > _RANGES_SHOWN:
        shown += f" and {len(runs) - _RANGES_SHOWN:,} more runs"
    return ("row " if len(rows) == 1 else "rows ") + shown
