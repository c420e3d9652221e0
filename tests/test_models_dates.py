"""Date columns: one format per column, day-first vs month-first decided by the data or refused.

Issue #8: ``dd.mm.yyyy`` histories were read month-first wherever the day was ≤ 12 (and
day-first elsewhere), so weeks were scrambled and the fit still exited 0.
"""

import numpy as np
import pandas as pd
import pytest

from models.errors import HistoryError
from models.history import HistorySpec, load_history


def frame(dates, n=None):
    """A valid wide history with the given date texts (one row each)."""
    n = len(dates)
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "date": list(dates),
        "revenue": np.round(1_000_000 + rng.uniform(0, 100_000, n)),
        "tv": np.round(rng.uniform(10_000, 50_000, n)),
        "social": np.round(rng.uniform(5_000, 30_000, n)),
    }).astype(str)


def write(tmp_path, f, name="history.csv"):
    path = tmp_path / name
    f.to_csv(path, index=False)
    return path


def problems(path, spec=None, **kw):
    with pytest.raises(HistoryError) as info:
        load_history(path, spec, **kw)
    return info.value.problems


# Monthly data labelled on the 1st: every day field is 01, every month field ≤ 12, so each
# value reads as a valid date both ways. Nothing in the column can settle the order.
MONTHS = pd.date_range("2022-01-01", periods=36, freq="MS")
# Weekly Mondays over a year: plenty of days above 12.
WEEKS = pd.date_range("2024-01-01", periods=40, freq="W-MON")


def test_day_first_dates_that_never_exceed_12_are_refused_not_guessed(tmp_path):
    path = write(tmp_path, frame(MONTHS.strftime("%d.%m.%Y")))
    assert problems(path) == [
        'history.csv column date: dates such as 01.02.2022 (row 3) can be read day-first or month-first; '
        'set date_format ("%d.%m.%Y" for day first, "%m.%d.%Y" for month first)',
    ]


def test_the_same_file_with_date_format_reads_the_right_dates(tmp_path):
    path = write(tmp_path, frame(MONTHS.strftime("%d.%m.%Y")))
    h = load_history(path, date_format="%d.%m.%Y")
    assert h.frequency == "monthly"
    assert list(h.dates) == list(MONTHS)
    assert h.warnings == []


def test_date_format_is_a_history_key_and_rows_that_do_not_match_are_listed(tmp_path):
    f = frame(MONTHS.strftime("%d.%m.%Y"))
    f.loc[4, "date"] = "2022-05-01"
    spec = HistorySpec.from_dict({"date_format": "%d.%m.%Y"})
    assert problems(write(tmp_path, f), spec) == [
        "history.csv row 6: date '2022-05-01' does not match date_format '%d.%m.%Y'",
    ]


def test_date_format_must_be_a_strftime_pattern():
    with pytest.raises(ValueError, match="date_format must be a strftime pattern"):
        HistorySpec.from_dict({"date_format": "dd.mm.yyyy"})


def test_a_day_above_12_settles_day_first_for_the_whole_column(tmp_path):
    h = load_history(write(tmp_path, frame(WEEKS.strftime("%d.%m.%Y"))))
    assert list(h.dates) == list(WEEKS)
    assert h.frequency == "weekly"
    assert [w for w in h.warnings if "under two years" not in w] == []


def test_a_second_field_above_12_settles_month_first(tmp_path):
    h = load_history(write(tmp_path, frame(WEEKS.strftime("%m/%d/%Y"))))
    assert list(h.dates) == list(WEEKS)


def test_iso_dates_with_slashes_or_times_still_read_as_before(tmp_path):
    texts = list(WEEKS.strftime("%Y/%m/%d"))
    texts[3] = WEEKS[3].strftime("%Y/%m/%d 00:00:00")
    h = load_history(write(tmp_path, frame(texts)))
    assert list(h.dates) == list(WEEKS)


def test_both_orders_in_one_column_are_refused(tmp_path):
    texts = list(WEEKS.strftime("%d.%m.%Y"))
    texts[20] = WEEKS[20].strftime("%m.%d.%Y")  # 05.20.2024: only month-first works
    assert problems(write(tmp_path, frame(texts))) == [
        "history.csv column date: dates such as 15.01.2024 (row 4) only work day-first and dates such as "
        "05.20.2024 (row 22) only month-first; write every date the same way (or set date_format and fix "
        "the rows that do not match it)",
    ]


def test_mixed_formats_are_refused_with_their_rows(tmp_path):
    texts = list(WEEKS.strftime("%Y-%m-%d"))
    for i in (30, 31, 32, 35):
        texts[i] = WEEKS[i].strftime("%d.%m.%Y")
    assert problems(write(tmp_path, frame(texts))) == [
        "history.csv column date: mixed date formats: 36 rows like 2024-01-01 (rows 2–31, 35–36, 38–41), "
        "4 rows like 29.07.2024 (rows 32–34, 37); write every date the same way (or set date_format and "
        "fix the rows that do not match it)",
    ]


def test_unreadable_dates_are_listed_by_row(tmp_path):
    texts = list(WEEKS.strftime("%d.%m.%Y"))
    texts[5] = "31.02.2024"
    texts[6] = "next week"
    texts[7] = ""
    assert problems(write(tmp_path, frame(texts))) == [
        "history.csv row 7: date '31.02.2024' is not a date",
        "history.csv row 8: date 'next week' is not a date",
        "history.csv row 9: date is empty",
    ]


def test_weekly_dates_off_the_weekday_grid_are_an_error(tmp_path):
    texts = list(WEEKS.strftime("%Y-%m-%d"))
    texts[10] = "2024-03-14"  # a Thursday among Mondays
    assert problems(write(tmp_path, frame(texts))) == [
        "history.csv row 12: date 2024-03-14 is a Thursday but the other weekly dates fall on Mondays; "
        "weekly data needs one date per week on the same weekday (check the row, or the date format: "
        "set date_format)",
    ]


def test_dates_that_cover_too_little_of_their_span_are_refused(tmp_path):
    # Read with the wrong order, monthly dates become 1–12 January of each year: "daily" data
    # with most days missing. That is a misread, not a history with gaps.
    path = write(tmp_path, frame(MONTHS.strftime("%d.%m.%Y")))
    assert problems(path, date_format="%m.%d.%Y") == [
        "history.csv column date: 36 dates from 2022-01-01 to 2024-01-12 fill only 36 of the 742 daily "
        "periods in that span, which is not a regular daily, weekly or monthly series; check the date "
        "format (set date_format)",
    ]


def test_a_format_of_its_own_is_refused_with_the_pattern_to_give(tmp_path):
    path = write(tmp_path, frame(WEEKS.strftime("%d.%m.%y")))
    found = problems(path)
    assert found[0] == (
        "history.csv column date: no date is in a format read without date_format (2024-03-04, 03.04.2024, "
        '4 Mar 2024); set date_format to the file\'s strftime pattern, such as "%d.%m.%y" for 01.01.24'
    )
    assert found[1] == "history.csv row 2: date '01.01.24' is not a date"
    assert list(load_history(path, date_format="%d.%m.%y").dates) == list(WEEKS)


@pytest.mark.parametrize("style", ["%Y年%m月%d日", "{y}年{m}月{d}日", "%G-W%V", "%GW%V"])
def test_cjk_dates_and_iso_weeks_read_as_the_days_they_name(tmp_path, style):
    """2024年1月8日 as a Chinese spreadsheet shows a date; 2024-W02 as a weekly report labels a
    week (its Monday)."""
    texts = [style.format(y=d.year, m=d.month, d=d.day) if "{" in style else d.strftime(style) for d in WEEKS]
    h = load_history(write(tmp_path, frame(texts)))
    assert list(h.dates) == list(WEEKS) and h.frequency == "weekly"


def test_cjk_months_read_as_monthly_and_bad_ones_are_named_as_written(tmp_path):
    texts = [f"{d.year}年{d.month}月" for d in MONTHS]
    h = load_history(write(tmp_path, frame(texts)))
    assert list(h.dates) == list(MONTHS) and h.frequency == "monthly"
    days = [f"{d.year}年{d.month}月{d.day}日" for d in WEEKS]
    days[4] = "2024年2月30日"
    weeks = list(WEEKS.strftime("%G-W%V"))
    weeks[2] = "2024-W54"
    assert problems(write(tmp_path, frame(days))) == ["history.csv row 6: date '2024年2月30日' is not a date"]
    assert problems(write(tmp_path, frame(weeks))) == ["history.csv row 4: date '2024-W54' is not a date"]


@pytest.mark.parametrize("style", ["{a:%Y-%m-%d}~{b:%Y-%m-%d}", "{a:%Y/%m/%d}至{b:%m/%d}", "{a:%Y年%m月%d日}～{b:%Y年%m月%d日}"])
def test_a_week_written_as_its_first_and_last_day_reads_as_its_first(tmp_path, style):
    """A weekly report labels each row 2024-01-01~2024-01-07; every row was "not a date"."""
    texts = [style.format(a=d, b=d + pd.Timedelta(days=6)) for d in WEEKS]
    h = load_history(write(tmp_path, frame(texts)))
    assert list(h.dates) == list(WEEKS) and h.frequency == "weekly"


def test_an_excel_serial_among_dates_is_named_as_one(tmp_path):
    texts = list(WEEKS.strftime("%Y-%m-%d"))
    texts[3] = "45313"  # 2024-01-22, the cell left formatted as a number
    assert problems(write(tmp_path, frame(texts))) == [
        "history.csv row 5: date '45313' is not a date: it looks like an Excel serial day number (2024-01-22), a cell "
        "formatted as a number among cells formatted as dates; format the whole column as dates"]


def test_excel_month_format_reads_as_months_and_a_date_without_a_year_is_refused(tmp_path):
    """Excel's "mmm-yy" saved as text (Jan-22) is January 2022; dateutil read it as 22 January of
    year 1, which could not be stored and ended the run with exit 1."""
    h = load_history(write(tmp_path, frame(MONTHS.strftime("%b-%y"))))
    assert list(h.dates) == list(MONTHS) and h.frequency == "monthly"
    assert list(load_history(write(tmp_path, frame(MONTHS.strftime("%B %y")))).dates) == list(MONTHS)
    found = problems(write(tmp_path, frame(WEEKS.strftime("%d-%b"))))  # Excel's "d-mmm": no year
    assert found[0].startswith("history.csv column date: no date is in a format read without date_format")
    assert found[1] == "history.csv row 2: date '01-Jan' is not a date"


def test_excel_serial_day_numbers_read_as_the_days_they_count(tmp_path, caplog):
    """A workbook saved as CSV with its date column formatted as General writes 45292 for
    2024-01-01 (Excel counts from 1900-01-01 as day 1, with a 29 February 1900); it was "not a
    date" on every row. Five-digit numbers outside 1970–2099 are not taken for dates."""
    caplog.set_level("INFO", logger="models.dates")
    serials = [str((d - pd.Timestamp("1899-12-30")).days) for d in WEEKS]
    assert serials[0] == "45292"  # =DATE(2024,1,1) in Excel
    h = load_history(write(tmp_path, frame(serials)))
    assert list(h.dates) == list(WEEKS) and h.frequency == "weekly"
    assert [r.getMessage() for r in caplog.records if "serial" in r.getMessage()] == [
        "reading dates as Excel serial day numbers (45292 is 2024-01-01): the column was saved unformatted"]
    with_time = [f"{s}.5" for s in serials]  # a date and time cell: the day is kept
    assert list(load_history(write(tmp_path, frame(with_time))).dates) == list(WEEKS)
    codes = [str(10000 + i) for i in range(len(WEEKS))]  # store codes, not dates
    assert problems(write(tmp_path, frame(codes)))[0] == "history.csv row 2: date '10000' is not a date"
