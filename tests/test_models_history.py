"""History loading: layouts, column mapping, frequency detection and every validation message."""

import json
import re
import shlex

import numpy as np
import pandas as pd
import pytest

from models.errors import HistoryError
from models.history import HistorySpec, load_history

EXAMPLE = "scenarios/examples/history_weekly.csv"


def weekly_frame(n=30, start="2024-01-01", freq="W-MON"):
    dates = pd.date_range(start, periods=n, freq=freq)
    rng = np.random.default_rng(0)
    # Text cells, as a CSV holds them, so tests can put anything in any cell.
    return pd.DataFrame({
        "date": dates.strftime("%Y-%m-%d"),
        "revenue": np.round(1_000_000 + rng.uniform(0, 100_000, n)),
        "tv": np.round(rng.uniform(10_000, 50_000, n)),
        "social": np.round(rng.uniform(5_000, 30_000, n)),
    }).astype(str)


def write(tmp_path, frame, name="history.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def problems(path, **kw):
    with pytest.raises(HistoryError) as info:
        load_history(path, **kw)
    return info.value.problems


def test_bundled_example_loads_as_weekly_nine_channels():
    h = load_history(EXAMPLE)
    assert h.frequency == "weekly"
    assert h.periods == 156
    assert h.channels == ["douyin", "xiaohongshu", "bilibili", "wechat_channels", "aigc_tools", "scrm",
                          "wecom_community", "mini_program", "popup_stores"]
    assert h.warnings == []
    # ≈ ¥770k per week across channels, ≈ ¥10M per quarter.
    assert 700_000 < h.spend.to_numpy().sum(axis=1).mean() < 840_000


@pytest.mark.parametrize("freq,expected", [("D", "daily"), ("W-MON", "weekly"), ("MS", "monthly")])
def test_frequency_is_detected(tmp_path, freq, expected):
    h = load_history(write(tmp_path, weekly_frame(40, freq=freq)))
    assert h.frequency == expected


def test_each_problem_is_reported_with_file_and_row(tmp_path):
    f = weekly_frame()
    f.loc[15, "date"] = f.loc[14, "date"]
    f.loc[3, "tv"] = "abc"
    f.loc[4, "tv"] = "-5"
    f.loc[5, "revenue"] = "0"
    f.loc[6, "social"] = "inf"
    f.loc[7, "date"] = "2024-13-45"
    f.loc[8, "social"] = ""
    f.loc[9, "revenue"] = "-3"
    assert problems(write(tmp_path, f)) == [
        "history.csv row 5: spend for tv 'abc' is not a number",
        "history.csv row 6: spend for tv must be ≥ 0, got -5",
        "history.csv row 7: revenue must be > 0, got 0",
        "history.csv row 8: spend for social is infinite",
        "history.csv row 9: date '2024-13-45' is not a date",
        "history.csv row 10: spend for social is missing",
        "history.csv row 11: revenue must be > 0, got -3",
        "history.csv row 17: date 2024-04-08 appears twice (first at row 16)",
    ]


def test_missing_and_unknown_columns(tmp_path):
    f = weekly_frame().rename(columns={"revenue": "gmv"})
    f["notes"] = "x"
    path = write(tmp_path, f)
    assert problems(path, channels={"tv": "tv", "radio": "radio_spend"}) == [
        "history.csv: KPI column 'revenue' not found (the KPI looks to be in 'gmv': say kpi = \"gmv\" in [history], "
        "or --kpi gmv); columns are: date, gmv, tv, social, notes",
        "history.csv: column 'radio_spend' for channel radio not found; columns are: date, gmv, tv, social, notes",
        "history.csv: unknown column 'gmv': map it as a channel, control or event, or list it in `ignore`",
        "history.csv: unknown column 'social': map it as a channel, control or event, or list it in `ignore`",
        "history.csv: unknown column 'notes': map it as a channel, control or event, or list it in `ignore`",
    ]


def test_too_little_history_and_never_spent_channel(tmp_path):
    f = weekly_frame(20)
    f["social"] = "0"
    assert problems(write(tmp_path, f)) == [
        "history.csv: too little history: 20 periods, at least 26 are needed to separate trend, seasonality and media",
        "history.csv: channel social is never spent on (all spend is 0); drop it or map another column",
    ]


def test_problems_of_the_files_shape_come_in_the_same_round_as_its_cells(tmp_path):
    # A bad cell no longer hides that a date is off the weekly grid and a channel is never spent
    # on: a user mending the file learns of all three at once, not of the last two on a second run.
    f = weekly_frame(40)
    f["social"] = "0"
    f.loc[3, "tv"] = "abc"
    f.loc[12, "date"] = "2024-03-28"  # a Thursday among Mondays
    assert problems(write(tmp_path, f)) == [  # the file's own problems first, then row by row
        "history.csv: channel social is never spent on (all spend is 0); drop it or map another column",
        "history.csv row 5: spend for tv 'abc' is not a number",
        "history.csv row 14: date 2024-03-28 is a Thursday but the other weekly dates fall on Mondays; weekly data "
        "needs one date per week on the same weekday (check the row, or the date format: set date_format)",
    ]
    # An unreadable date column is the problem itself: no guess at a grid from the few dates read.
    f = weekly_frame(40)
    f.loc[1:30, "date"] = "soon"
    said = problems(write(tmp_path, f))
    assert said and not any("weekday" in p or "fill only" in p for p in said)


def test_gaps_and_near_constant_spend_are_warnings(tmp_path):
    f = weekly_frame(32).drop(index=[10, 11]).reset_index(drop=True)
    f["social"] = "20000"
    f.loc[0, "social"] = "20100"
    h = load_history(write(tmp_path, f))
    assert [w for w in h.warnings if "under two years" not in w] == [
        "history.csv: gap in dates between 2024-03-04 and 2024-03-25 (2 missing weeks); "
        "carryover across the gap is approximate",
        "history.csv: channel social: spend barely varies (coefficient of variation 0.001); its curve is "
        "poorly identified and its interval will be wide",
    ]


def test_rows_are_sorted_by_date(tmp_path):
    f = weekly_frame().iloc[::-1]
    h = load_history(write(tmp_path, f))
    assert h.dates.is_monotonic_increasing
    assert h.spend["tv"].iloc[0] == float(f["tv"].iloc[-1])


def test_long_layout_keeps_each_channels_return(tmp_path):
    f = weekly_frame()
    long = pd.concat([
        pd.DataFrame({"date": f["date"], "channel": c, "spend": f[c], "revenue": f[c].astype(float) * 3})
        for c in ("tv", "social")
    ])
    h = load_history(write(tmp_path, long), layout="long")
    assert h.layout == "long" and h.kpi is None
    assert h.channels == ["tv", "social"]
    np.testing.assert_allclose(h.channel_returns["tv"], f["tv"].astype(float) * 3)


def test_long_layout_duplicate_date_per_channel(tmp_path):
    f = weekly_frame()
    long = pd.concat([
        pd.DataFrame({"date": f["date"], "channel": c, "spend": f[c], "revenue": f[c].astype(float) * 3})
        for c in ("tv", "social")
    ]).reset_index(drop=True)
    long.loc[1, "date"] = long.loc[0, "date"]
    long["clicks"] = 1
    assert problems(write(tmp_path, long), layout="long") == [
        "history.csv: unknown column 'clicks' in the long layout; list it in `ignore` to skip it",
    ]
    assert problems(write(tmp_path, long.drop(columns="clicks")), layout="long") == [
        "history.csv row 3: date 2024-01-01 appears twice for channel tv (first at row 2)",
    ]


def test_a_total_of_the_channels_is_refused_as_a_channel_in_either_layout(tmp_path):
    """A report's 总投放 column, or a 合计 row per date, was fitted as a channel: a plan then put
    42–67% of the budget into a "channel" that returns nothing."""
    f = weekly_frame()
    f["search"] = (f["social"].astype(float) * 0.7).round().astype(str)
    parts = f[["tv", "social", "search"]].astype(float)
    f["总投放"] = parts.sum(axis=1).map("{:.0f}".format)  # rounded, as a report shows it
    assert problems(write(tmp_path, f)) == [
        "history.csv: column 总投放 is the sum of the other channels' spend in every row (a total, not a "
        'channel): leave it out with ignore = ["总投放"] in [history] (budget fit --ignore \'总投放\')']
    assert load_history(write(tmp_path, f), ignore=["总投放"]).channels == ["tv", "social", "search"]
    long = pd.concat([pd.DataFrame({"date": f["date"], "channel": c, "spend": f[c],
                                    "revenue": f[c].astype(float) * 3}) for c in ("tv", "social", "search", "总投放")])
    assert problems(write(tmp_path, long), layout="long") == [
        "history.csv: channel 总投放 is the sum of the other channels' spend on every date (a total row per date): "
        "drop its rows"]
    # Spend that only sometimes adds up is three channels.
    f.loc[3, "总投放"] = str(float(f.loc[3, "总投放"]) + 5_000)
    assert load_history(write(tmp_path, f)).channels == ["tv", "social", "search", "总投放"]


def test_a_copied_spend_column_is_refused(tmp_path):
    f = weekly_frame()
    f["tv_copy"] = f["tv"]
    assert problems(write(tmp_path, f)) == [
        "history.csv: channels tv and tv_copy have the same spend in every period: one is a copy of the other, "
        'and the fit cannot tell them apart; leave it out with ignore = ["tv_copy"] in [history] '
        "(budget fit --ignore tv_copy)"]


def test_a_chinese_reports_date_and_kpi_columns_are_pointed_to(tmp_path):
    """日期 and 销售额 under the default names: the problem named only the default ('date' not
    found), not the column to give."""
    f = weekly_frame().rename(columns={"date": "日期", "revenue": "销售额"})
    assert problems(write(tmp_path, f)) == [
        "history.csv: date column 'date' not found (the dates look to be in '日期': say date = \"日期\" in [history], "
        "or --date '日期'); columns are: 日期, 销售额, tv, social",
        "history.csv: KPI column 'revenue' not found (the KPI looks to be in '销售额': say kpi = \"销售额\" in "
        "[history], or --kpi '销售额'); columns are: 日期, 销售额, tv, social"]
    assert load_history(write(tmp_path, f), date="日期", kpi="销售额").channels == ["tv", "social"]


@pytest.mark.parametrize("as_xlsx", [False, True], ids=["csv", "xlsx"])
def test_a_title_above_the_header_is_the_one_problem_named(tmp_path, as_xlsx):
    """A report's banner in row 1 made the header 'the title, Unnamed: 1, …' and the problems
    a dozen lines about unnamed columns."""
    frame = weekly_frame()
    titled = pd.concat([pd.DataFrame([frame.columns], columns=frame.columns), frame], ignore_index=True)
    titled.columns = ["2024年营销投放周报（单位：元）", "", "", ""]
    path = write_xlsx(tmp_path, titled, dates_as_cells=False) if as_xlsx else write(tmp_path, titled)
    assert problems(path) == [f"{path.name}: date column 'date' not found (its name is in row 2: the header must be "
                              "the first row; delete the row above it, such as a title)"]


def test_the_long_layouts_columns_under_other_names_are_named_with_the_keys_to_set(tmp_path):
    """渠道/花费 instead of channel/spend: the problems said to list them in `ignore`."""
    f = weekly_frame()
    long = pd.concat([pd.DataFrame({"日期": f["date"], "渠道": c, "花费": f[c], "GMV": f[c].astype(float) * 3})
                      for c in ("tv", "social")])
    found = problems(write(tmp_path, long), layout="long")
    assert [p.split(";")[0] for p in found] == [f"history.csv: column {c!r} not found" for c in
                                              ("date", "channel", "spend", "revenue")]
    assert 'name yours with channel_column = "…" in [history] (--channel-column on the command line)' in found[1]
    assert not any("ignore" in p for p in found)
    h = load_history(write(tmp_path, long), layout="long", date="日期", channel_column="渠道", spend_column="花费",
                     kpi="GMV")
    assert h.channels == ["tv", "social"]


def test_robyn_style_sample_loads_with_a_short_mapping(tmp_path):
    # Column names of Robyn's public demo data (dt_simulated_weekly).
    n = 60
    rng = np.random.default_rng(1)
    f = pd.DataFrame({
        "DATE": pd.date_range("2015-11-23", periods=n, freq="W-MON").strftime("%Y-%m-%d"),
        "revenue": rng.uniform(1e6, 3e6, n), "tv_S": rng.uniform(0, 2e5, n), "ooh_S": rng.uniform(0, 1e5, n),
        "print_S": rng.uniform(0, 5e4, n), "facebook_I": rng.uniform(0, 1e7, n),
        "search_clicks_P": rng.uniform(0, 1e5, n), "search_S": rng.uniform(0, 1e5, n),
        "competitor_sales_B": rng.uniform(1e6, 9e6, n), "facebook_S": rng.uniform(0, 1e5, n),
        "events": ["na"] * (n - 2) + ["event1", "event2"], "newsletter": rng.uniform(0, 5e4, n),
    })
    spec = HistorySpec.from_dict({
        "date": "DATE", "kpi": "revenue", "channels": "*_S",
        "controls": ["competitor_sales_B", "newsletter"], "events": ["events"],
        "ignore": ["facebook_I", "search_clicks_P"],
    })
    h = load_history(write(tmp_path, f), spec)
    assert h.channels == ["tv", "ooh", "print", "search", "facebook"]
    assert list(h.controls.columns) == ["competitor_sales_B", "newsletter"]
    assert list(h.events.columns) == ["events=event1", "events=event2"]


def test_meridian_style_sample_loads_with_a_short_mapping(tmp_path):
    # Column names of Meridian's simulated national sample.
    n = 60
    rng = np.random.default_rng(2)
    f = pd.DataFrame({"time": pd.date_range("2021-01-25", periods=n, freq="W-MON").strftime("%Y-%m-%d")})
    for i in range(3):
        f[f"Channel{i}_impression"] = rng.uniform(0, 1e6, n)
        f[f"Channel{i}_spend"] = rng.uniform(0, 1e5, n)
    f["competitor_sales_control"] = rng.uniform(0, 1, n)
    f["sentiment_score_control"] = rng.uniform(0, 1, n)
    f["conversions"] = rng.uniform(1e4, 2e4, n)
    f["revenue_per_conversion"] = 0.8
    spec = HistorySpec.from_dict({
        "date": "time", "kpi": "conversions", "channels": "*_spend",
        "controls": ["competitor_sales_control", "sentiment_score_control"],
        "ignore": ["*_impression", "revenue_per_conversion"],
    })
    h = load_history(write(tmp_path, f), spec)
    assert h.channels == ["Channel0", "Channel1", "Channel2"]
    assert h.frequency == "weekly"


def test_spec_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown key\\(s\\) chanels"):
        HistorySpec.from_dict({"chanels": "*_S"})


def geo_frame(n_dates=150, n_geos=20):
    """A geo-level file (Meridian's geo sample layout): one row per date and geo."""
    f = weekly_frame(n_dates)
    geo = pd.concat([f.assign(geo=f"geo{g}") for g in range(n_geos)], ignore_index=True)
    return geo


def test_thousands_of_repeated_dates_are_capped_and_the_layout_is_named(tmp_path):
    path = write(tmp_path, geo_frame())  # 3,000 rows, 150 dates: 2,850 repeats
    found = problems(path, ignore=["geo"])
    assert len(found) <= 10
    assert found[0] == (
        "history.csv: several rows per date (150 distinct dates, 3,000 rows): this looks like a geo or long "
        'layout; for one row per date and channel (columns date, channel, spend, revenue) use layout = "long"; '
        "geo-level data must be aggregated to one row per date first"
    )
    assert found[1] == "history.csv row 152: date 2024-01-01 appears twice (first at row 2)"
    assert found[1:6] == [line for line in found if "appears twice" in line]
    assert found[6] == "… and 2,845 more like this"
    assert len(found) == 7


def test_repeats_of_each_kind_are_capped_separately(tmp_path):
    f = weekly_frame(40)
    for i in range(8):
        f.loc[i, "tv"] = "n/a"
    for i in range(20, 27):
        f.loc[i, "social"] = "lots"
    f.loc[30, "revenue"] = "0"
    assert problems(write(tmp_path, f)) == [
        *[f"history.csv row {r}: spend for tv is missing" for r in range(2, 7)],
        "… and 3 more like this",
        *[f"history.csv row {r}: spend for social 'lots' is not a number" for r in range(22, 27)],
        "… and 2 more like this",
        "history.csv row 32: revenue must be > 0, got 0",
    ]


def test_long_layout_with_several_rows_per_date_and_channel_is_named_geo_data(tmp_path):
    f = weekly_frame(40)
    long = pd.concat([
        pd.DataFrame({"date": f["date"], "channel": c, "spend": f[c], "revenue": f[c].astype(float) * 3,
                      "geo": g})
        for g in ("north", "south", "east") for c in ("tv", "social")
    ], ignore_index=True)
    found = problems(write(tmp_path, long), layout="long", ignore=["geo"])
    assert found[0] == (
        "history.csv: several rows per date and channel (80 distinct pairs, 240 rows): this looks like "
        "geo-level data; aggregate it to one row per date and channel first"
    )
    assert found[-1] == "… and 155 more like this"
    assert len(found) == 7


def test_a_couple_of_pasted_rows_get_no_layout_hint(tmp_path):
    f = weekly_frame()
    f = pd.concat([f, f.iloc[[3, 7]]], ignore_index=True)
    assert problems(write(tmp_path, f)) == [
        "history.csv row 32: date 2024-01-22 appears twice (first at row 5)",
        "history.csv row 33: date 2024-02-19 appears twice (first at row 9)",
    ]


def test_cap_problems_keeps_order_and_counts_each_kind():
    from models.problems import cap_problems

    lines = [f"f.csv row {i}: date 2024-01-{i:02d} appears twice" for i in range(2, 10)]
    lines.insert(3, "f.csv: too little history")
    assert cap_problems(lines, limit=2) == [
        "f.csv row 2: date 2024-01-02 appears twice",
        "f.csv row 3: date 2024-01-03 appears twice",
        "… and 6 more like this",
        "f.csv: too little history",
    ]
    assert cap_problems(["a", "b"], limit=1, kinds=["x", "x"]) == ["a", "… and 1 more like this"]


def test_a_large_history_is_announced_before_a_long_fit(tmp_path, caplog, monkeypatch):
    """A 200k-row daily history used to fit for minutes without a word when stderr is no terminal."""
    import logging

    import numpy as np
    import pandas as pd

    from models import cache
    from models.fit import MediaMixModel

    days = cache.LARGE_HISTORY + 10
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"date": pd.date_range("2015-01-01", periods=days, freq="D").strftime("%Y-%m-%d"),
                          "revenue": rng.uniform(1e5, 2e5, days), "search": rng.uniform(0, 1e4, days)})
    frame.to_csv(tmp_path / "daily.csv", index=False)
    monkeypatch.setattr(MediaMixModel, "fit", lambda self, history, progress=None: self)  # the warning, not the fit
    with caplog.at_level(logging.WARNING, logger="models.cache"):
        cache.fit_history(tmp_path / "daily.csv", cache.HistorySpec(), use_cache=False)
    assert f"a large history ({days} daily periods × 1 channels)" in caplog.text


# -- Excel workbooks ------------------------------------------------------------------------------


def write_xlsx(tmp_path, frame, name="history.xlsx", dates_as_cells=True):
    """The frame as a workbook a person would save: dates as date cells, numbers as numbers."""
    import datetime as dt

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        cells = []
        for col, value in zip(frame.columns, row):
            if col == "date" and dates_as_cells:
                cells.append(dt.datetime.fromisoformat(value))
            else:
                try:
                    cells.append(float(value))
                except ValueError:
                    cells.append(value)
        sheet.append(cells)
    path = tmp_path / name
    book.save(path)
    return path


def test_xlsx_history_reads_like_the_same_csv(tmp_path):
    frame = weekly_frame()
    from_csv = load_history(write(tmp_path, frame))
    for as_cells in (True, False):
        h = load_history(write_xlsx(tmp_path, frame, dates_as_cells=as_cells))
        assert h.frequency == "weekly" and h.periods == from_csv.periods
        assert list(h.dates) == list(from_csv.dates)
        np.testing.assert_array_equal(h.spend.to_numpy(), from_csv.spend.to_numpy())
        np.testing.assert_array_equal(h.kpi, from_csv.kpi)


def test_xlsx_problems_name_the_rows_the_spreadsheet_shows(tmp_path):
    frame = weekly_frame()
    frame.loc[3, "tv"] = "lots"     # spreadsheet row 5 (the header is row 1)
    frame.loc[9, "social"] = "-5"   # row 11
    path = write_xlsx(tmp_path, frame)
    from openpyxl import load_workbook

    book = load_workbook(path)
    book.active["A20"] = None       # row 20: an empty date cell
    book.active.append([])          # empty rows after the data are not data
    book.save(path)
    found = problems(path)
    assert "history.xlsx row 5: spend for tv 'lots' is not a number" in found
    assert "history.xlsx row 11: spend for social must be ≥ 0, got -5" in found
    assert "history.xlsx row 20: date is empty" in found


def test_xlsx_dates_follow_date_format(tmp_path):
    frame = weekly_frame()
    h = load_history(write_xlsx(tmp_path, frame), date_format="%d.%m.%Y")
    assert h.dates[0] == pd.Timestamp(frame["date"][0])


def test_a_hidden_sheet_is_not_read_and_the_sheet_read_is_named(tmp_path, caplog):
    """A workbook with a hidden old version first ("旧版(勿用)", half the values) had it read,
    silently, instead of the visible data sheet."""
    from openpyxl import load_workbook

    frame = weekly_frame()
    path = write_xlsx(tmp_path, frame)
    book = load_workbook(path)
    data = book.active
    data.title = "周数据"
    old = book.copy_worksheet(data)
    old.title = "旧版(勿用)"
    old.sheet_state = "hidden"
    for row in old.iter_rows(min_row=2, min_col=3):
        for cell in row:
            cell.value = cell.value / 2
    book.move_sheet(old, offset=-1)
    book.active = 1
    book.save(path)
    assert load_workbook(path).sheetnames == ["旧版(勿用)", "周数据"]
    with caplog.at_level("INFO", logger="models.history"):
        h = load_history(path)
    np.testing.assert_array_equal(h.spend["tv"].to_numpy(), frame["tv"].astype(float).to_numpy())
    assert "history.xlsx: read sheet '周数据', the first visible one; not read: '旧版(勿用)'" in caplog.text


def test_formulas_without_saved_results_are_one_problem_that_says_so(tmp_path):
    """A workbook written by a script holds formulas Excel never computed: each read as an empty
    cell, 60 "is missing" problems with no word of formulas."""
    from openpyxl import load_workbook

    frame = weekly_frame()
    path = write_xlsx(tmp_path, frame)
    book = load_workbook(path)
    sheet = book.active
    for r in range(2, len(frame) + 2):
        sheet[f"B{r}"] = f"=3000000+C{r}*1.5"
    book.save(path)
    assert problems(path) == [
        "history.xlsx: 30 cells (B2, B3, B4 …) hold a formula with no saved result (the workbook was written by a "
        "program and never recalculated): open it in Excel or WPS and save it, or save the sheet as CSV"]


@pytest.mark.parametrize("as_xlsx", [False, True], ids=["csv", "xlsx"])
def test_a_header_cell_repeated_or_left_blank_is_refused_and_an_empty_spacer_column_dropped(tmp_path, as_xlsx):
    """A flattened two-row header writes 抖音 twice; pandas read the second as a channel 抖音.1 and a
    blank header cell as a channel "Unnamed: 3", both from CSV only. An empty column between
    the data is a spacer, not a channel."""
    frame = weekly_frame()
    frame.insert(3, "spacer", "")

    def save(columns, name):
        f = frame.copy()
        f.columns = columns
        return write_xlsx(tmp_path, f, name + ".xlsx") if as_xlsx else write(tmp_path, f, name + ".csv")

    h = load_history(save(["date", "revenue", "tv", "", "social"], "spacer"))
    assert list(h.spend.columns) == ["tv", "social"]
    frame["spacer"] = frame["tv"]
    assert problems(save(["date", "revenue", "抖音", "抖音", "social"], "twice"))[0].endswith(
        "column '抖音' appears more than once in the header")
    assert problems(save(["date", "revenue", "tv", "", "social"], "blank"))[0].endswith(
        "column D has values but no name in the header row; name it (a channel's name) or delete it")


def test_a_long_layout_or_lift_test_file_naming_a_column_twice_is_refused_not_a_crash(tmp_path):
    from models.calibration import read_lift_tests

    path = tmp_path / "long.csv"
    path.write_text("date,channel,spend,spend,revenue\n2024-01-01,tv,1,2,3\n", encoding="utf-8")
    assert problems(path, layout="long") == ["long.csv: column 'spend' appears more than once in the header"]
    lifts = tmp_path / "lifts.csv"
    lifts.write_text("channel,start,end,lift,lift,se\ntv,2024-01-01,2024-01-08,1,2,1\n", encoding="utf-8")
    with pytest.raises(HistoryError) as err:
        read_lift_tests(lifts)
    assert [p.rsplit("/", 1)[-1] for p in err.value.problems] == [
        "lifts.csv: column 'lift' appears more than once in the header"]


def test_a_file_that_is_not_a_workbook_is_one_clear_problem(tmp_path):
    path = tmp_path / "history.xlsx"
    path.write_text("date,revenue\n", encoding="utf-8")
    found = problems(path)
    assert len(found) == 1 and found[0].startswith("history.xlsx: cannot be read as an Excel workbook")


def test_a_history_under_two_years_says_its_seasonality_rests_on_one_cycle(tmp_path):
    short = load_history(write(tmp_path, weekly_frame(60)))
    assert [w for w in short.warnings if "under two years" in w] == [
        "history.csv: 420 days of history (under two years): the yearly seasonality is fitted from fewer than two "
        "cycles, so the season, the trend and the media effects are hard to tell apart"]
    two_years = load_history(write(tmp_path, weekly_frame(104)))  # 104 weeks: two years of weeks
    assert not any("under two years" in w for w in two_years.warnings)
    short_of_it = load_history(write(tmp_path, weekly_frame(103)))
    assert any("721 days of history (under two years)" in w for w in short_of_it.warnings)


def _with_decimals(frame):
    """The weekly frame with cents, so that a misread decimal mark shows."""
    out = frame.copy()
    for col in ("revenue", "tv", "social"):
        out[col] = (out[col].astype(float) + 0.25).map(lambda v: f"{v:.2f}")
    return out


def test_excel_csv_dialects_read_like_the_plain_csv(tmp_path, caplog):
    """What spreadsheets write: semicolons and decimal commas (1.234.567,25) where the decimal mark
    is a comma, tabs from a pasted table, GBK from Excel on a Chinese Windows, a byte-order mark."""
    caplog.set_level("INFO", logger="models.history")
    frame = _with_decimals(weekly_frame()).rename(columns={"tv": "抖音"})
    plain = load_history(write(tmp_path, frame))
    assert plain.kpi[0] == pytest.approx(float(frame["revenue"][0]))
    european = frame.copy()
    for col in ("revenue", "抖音", "social"):  # 1,012,345.25 → 1.012.345,25
        european[col] = european[col].map(lambda v: f"{float(v):,.2f}".translate(str.maketrans(",.", ".,")))
    assert european["revenue"][0].count(".") == 2 and european["revenue"][0].endswith(",25")  # 1.0xx.xxx,25
    european["social"] = european["social"] + " €"  # a currency format: 12.345,25 €
    files = {
        "semicolon.csv": european.to_csv(sep=";", index=False).encode("utf-8"),
        "tab.tsv": frame.to_csv(sep="\t", index=False).encode("utf-8"),
        "gbk.csv": frame.to_csv(index=False).encode("gbk"),
        "bom.csv": frame.to_csv(index=False).encode("utf-8-sig"),
        "unicode.txt": frame.to_csv(sep="\t", index=False, lineterminator="\r\n").encode("utf-16"),  # Excel's "Unicode text"
    }
    for name, raw in files.items():
        (tmp_path / name).write_bytes(raw)
        h = load_history(tmp_path / name)
        assert list(h.spend.columns) == list(plain.spend.columns), name
        np.testing.assert_array_equal(h.spend.to_numpy(), plain.spend.to_numpy(), err_msg=name)
        np.testing.assert_array_equal(h.kpi, plain.kpi, err_msg=name)
    said = [r.getMessage() for r in caplog.records if "read as" in r.getMessage()]  # how, on stderr
    assert said == ["semicolon.csv: read as semicolon-separated UTF-8 with decimal commas (1.234,5 is 1234.5)",
                    "tab.tsv: read as tab-separated UTF-8", "gbk.csv: read as comma-separated GB18030",
                    "unicode.txt: read as tab-separated UTF-16"]


def test_a_semicolon_file_with_decimal_points_is_not_misread(tmp_path):
    frame = _with_decimals(weekly_frame())
    path = tmp_path / "points.csv"
    path.write_text(frame.to_csv(sep=";", index=False), encoding="utf-8")
    assert load_history(path).kpi[0] == pytest.approx(float(frame["revenue"][0]))


def test_a_semicolon_file_with_three_decimals_reads_them_as_decimals(tmp_path, caplog):
    """123.456 in a semicolon file is 123456 where the numbers use decimal commas, and 123.456
    where any number in the file shows a decimal point (12.5): it was read as 123456 whatever the
    rest of the file said."""
    caplog.set_level("INFO", logger="models.history")
    frame = weekly_frame()
    for col in ("revenue", "tv", "social"):  # whole numbers: 1063696, not 1063696.0
        frame[col] = frame[col].map(lambda v: str(int(float(v))))
    plain = load_history(write(tmp_path, frame))
    pointed = frame.copy()
    pointed["tv"] = (pointed["tv"].astype(float) / 1000).map(lambda v: f"{v:.3f}")  # 12.345 thousand
    pointed.loc[3, "social"] = f"{float(pointed.loc[3, 'social']):.1f}"  # 5123.0: a decimal point
    path = tmp_path / "points.csv"
    path.write_text(pointed.to_csv(sep=";", index=False), encoding="utf-8")
    h = load_history(path)
    np.testing.assert_allclose(h.spend["tv"].to_numpy() * 1000, plain.spend["tv"].to_numpy())
    np.testing.assert_array_equal(h.spend["social"].to_numpy(), plain.spend["social"].to_numpy())
    said = [r.getMessage() for r in caplog.records if "read as" in r.getMessage()]
    assert said == [f"points.csv: read as semicolon-separated UTF-8 with decimal points "
                    f"({pointed.loc[3, 'social']} is a decimal number)"]
    caplog.clear()
    dotted = frame.copy()  # integers with dots between thousands, nothing to tell: Excel's way
    for col in ("revenue", "tv", "social"):
        dotted[col] = dotted[col].map(lambda v: f"{int(float(v)):,}".replace(",", "."))
    path.write_text(dotted.to_csv(sep=";", index=False), encoding="utf-8")
    h = load_history(path)
    np.testing.assert_array_equal(h.spend.to_numpy(), plain.spend.to_numpy())
    np.testing.assert_array_equal(h.kpi, plain.kpi)
    (line,) = [r.getMessage() for r in caplog.records if "read as" in r.getMessage()]
    first = next(v for v in dotted.iloc[:, 1:].to_numpy().ravel() if v.count(".") == 1)
    assert line.startswith(f"points.csv: read as semicolon-separated UTF-8 with dots between thousands ({first} is "
                           f"{first.replace('.', '')}: no number in it has a decimal comma or point to tell")


def test_excel_accounting_zero_is_zero_and_a_lone_dash_is_asked_about(tmp_path):
    """Excel's accounting format shows 0 as a dash beside the currency (¥ -), which a dark week
    of spend saved as CSV becomes; a dash alone may mean missing, so it is a problem that says how
    to write 0."""
    frame = weekly_frame()
    frame.loc[5, "tv"] = "0"
    plain = load_history(write(tmp_path, frame))
    styled = frame.copy()
    styled["tv"] = styled["tv"].map(lambda v: f"¥{float(v):,.2f}" if float(v) else " ¥ -   ")
    h = load_history(write(tmp_path, styled, "accounting.csv"))
    assert h.spend["tv"].iloc[5] == 0.0
    np.testing.assert_array_equal(h.spend.to_numpy(), plain.spend.to_numpy())
    styled.loc[5, "tv"] = "-"
    assert problems(write(tmp_path, styled, "accounting.csv")) == [
        "accounting.csv row 7: spend for tv '-' is not a number: write 0 if it means none (Excel's accounting "
        "format shows 0 as a dash)"]


def test_a_file_in_neither_utf8_nor_gbk_is_one_clear_problem(tmp_path):
    path = tmp_path / "history.csv"
    path.write_bytes(b"date,revenue,tv\n2024-01-01,\xff\xfe\xff,1\n")
    found = problems(path)
    assert len(found) == 1 and "neither UTF-8 nor GBK" in found[0]


def test_a_utf8_file_with_a_stray_byte_names_its_row_instead_of_turning_into_gbk(tmp_path):
    """One Windows ’ pasted into a remark made the whole file read as GB18030: 抖音 came out as
    鎶栭煶, and only an info line said so. A GBK file with the same names still reads."""
    frame = weekly_frame().rename(columns={"tv": "抖音", "social": "快手"})
    frame["note"] = ""
    frame.loc[6, "note"] = "VALENTINE"
    text = frame.to_csv(index=False)
    path = tmp_path / "history.csv"
    path.write_bytes(text.encode("utf-8").replace(b"VALENTINE", b"Valentine\x92s promo"))
    assert problems(path, ignore=["note"]) == [
        "history.csv row 8: a character that is not UTF-8 (shown as \ufffd) in '3.0,9988.0,Valentine\ufffds promo', though "
        "the rest of the file is UTF-8: retype it (a ’ or … pasted from another program), or save the file as CSV UTF-8"]
    path.write_bytes(text.replace("VALENTINE", "情人节").encode("gbk"))
    assert load_history(path, ignore=["note"]).channels == ["抖音", "快手"]


def test_full_width_digits_and_commas_read_as_numbers(tmp_path):
    """１３０３８２ and 1，234 (typed with a Chinese input method) were "not a number"."""
    frame = weekly_frame()
    plain = load_history(write(tmp_path, frame))
    wide = frame.copy()
    wide["tv"] = frame["tv"].map(lambda v: f"{float(v):,.0f}".translate(str.maketrans("0123456789,", "０１２３４５６７８９，")))
    read = load_history(write(tmp_path, wide))
    np.testing.assert_array_equal(read.spend.to_numpy(), plain.spend.to_numpy())


def test_amounts_in_wan_and_yi_are_multiplied_out(tmp_path):
    """345.3万 (a Chinese report's amount in ten thousands) was 60 "is not a number" problems."""
    frame = weekly_frame()
    plain = load_history(write(tmp_path, frame))
    wan = frame.copy()
    wan["revenue"] = (frame["revenue"].astype(float) / 10_000).map(lambda v: f"{v:.4f}万元")
    wan["tv"] = (frame["tv"].astype(float) / 10_000).map(lambda v: f"{v:.4f}万")
    wan.loc[0, "social"] = f"{float(frame.loc[0, 'social']) / 1e8:.8f}亿"
    read = load_history(write(tmp_path, wan))
    np.testing.assert_array_equal(read.kpi, plain.kpi)
    np.testing.assert_array_equal(read.spend.to_numpy(), plain.spend.to_numpy())
    wan.loc[3, "tv"] = "12万5"
    assert problems(write(tmp_path, wan)) == ["history.csv row 5: spend for tv '12万5' is not a number"]


def test_money_as_a_spreadsheet_formats_it_reads_as_numbers(tmp_path):
    """¥1,012,345.25 (Excel's currency format saved as CSV), 1 012 345 and 1'012'345 (other
    thousands separators), 12345元; a bad cell is still named as the file wrote it."""
    frame = _with_decimals(weekly_frame())
    plain = load_history(write(tmp_path, frame))
    styled = frame.copy()
    styled["revenue"] = styled["revenue"].map(lambda v: f"¥{float(v):,.2f}")
    styled["tv"] = styled["tv"].map(lambda v: f"{float(v):,.2f}".replace(",", "\u00a0"))
    styled["social"] = [f"{float(v):,.2f}".replace(",", "'") + ("元" if i % 2 else "") for i, v in
                        enumerate(styled["social"])]
    h = load_history(write(tmp_path, styled, "styled.csv"))
    np.testing.assert_array_equal(h.kpi, plain.kpi)
    np.testing.assert_array_equal(h.spend.to_numpy(), plain.spend.to_numpy())
    styled.loc[4, "tv"] = "¥ about 5k"
    styled.loc[7, "social"] = "1234,5"  # a decimal comma in a comma-separated file: not 12345
    assert problems(write(tmp_path, styled, "styled.csv")) == [
        "styled.csv row 6: spend for tv '¥ about 5k' is not a number",
        "styled.csv row 9: spend for social '1234,5' is not a number",
    ]


def test_what_excel_leaves_around_the_data_is_not_data(tmp_path):
    """A stray cell right of the data gives every line a trailing comma (an unnamed empty column),
    the used range gives empty lines after it, and headers come capitalised: "Date", "Revenue"."""
    frame = weekly_frame().rename(columns={"date": "Date", "revenue": " Revenue "})
    text = "".join(line + ",\n" for line in frame.to_csv(index=False).splitlines()) + ",,,,\n" * 3
    path = tmp_path / "excel.csv"
    path.write_text(text, encoding="utf-8")
    h = load_history(path)
    assert list(h.spend.columns) == ["tv", "social"] and h.periods == len(frame)
    inside = frame.to_csv(index=False).splitlines()
    inside.insert(5, ",,,")  # an empty line inside the data is still reported at its row
    path.write_text("\n".join(inside) + "\n", encoding="utf-8")
    assert "excel.csv row 6: date is empty" in problems(path)


def test_lift_tests_in_money_format_read_as_numbers(tmp_path):
    from models.calibration import read_lift_tests

    path = tmp_path / "lift.csv"
    path.write_text('channel,start,end,lift,se\ntv,2024-02-05,2024-03-04,"¥1,250,000.00","¥150,000"\n',
                    encoding="utf-8")
    (test,) = read_lift_tests(path)
    assert test["lift"] == 1_250_000.0 and test["se"] == 150_000.0


# -- Capped lists, and columns that are not spend -------------------------------------------------


def _count(found):
    """How many problems a capped list stands for, as cli.py counts them."""
    more = [re.search(r"… and ([\d,]+) more like this", p) for p in found]
    return sum(int(m.group(1).replace(",", "")) if m else 1 for m in more)


def test_capped_problems_of_one_kind_are_listed_together_with_their_count(tmp_path):
    """A dash for 0 in several columns: each column's first five, then its count, not interleaved by row."""
    f = weekly_frame(40)
    for i in range(12):
        f.loc[i, "tv"] = "-"
    for i in range(0, 18, 2):
        f.loc[i, "social"] = "-"
    f.loc[30, "revenue"] = "0"
    dash = "'-' is not a number: write 0 if it means none (Excel's accounting format shows 0 as a dash)"
    found = problems(write(tmp_path, f))
    assert found == [
        *[f"history.csv row {r}: spend for tv {dash}" for r in range(2, 7)],
        "… and 7 more like this",
        *[f"history.csv row {r}: spend for social {dash}" for r in range(2, 12, 2)],
        "… and 4 more like this",
        "history.csv row 32: revenue must be > 0, got 0",
    ]
    assert _count(found) == 12 + 9 + 1


def test_columns_whose_names_differ_only_in_digits_are_capped_apart(tmp_path):
    f = weekly_frame(40).rename(columns={"tv": "Channel0", "social": "Channel1"})
    f.loc[:9, ["Channel0", "Channel1"]] = "n/a"
    found = problems(write(tmp_path, f))
    assert found == [
        *[f"history.csv row {r}: spend for Channel0 is missing" for r in range(2, 7)],
        "… and 5 more like this",
        *[f"history.csv row {r}: spend for Channel1 is missing" for r in range(2, 7)],
        "… and 5 more like this",
    ]


def test_a_text_event_column_read_as_spend_is_one_problem_that_says_how_to_declare_it(tmp_path):
    f = weekly_frame(30)
    f["promo"] = "na"
    f.loc[[4, 17], "promo"] = "event1"
    path = write(tmp_path, f)
    assert problems(path) == [
        "history.csv column promo: holds text, not spend ('event1' in row 6; of its 30 cells 30 are not "
        'numbers): if it marks events, declare it with events = ["promo"] in [history] (budget fit --event '
        'promo); if it is not a channel, leave it out with ignore = ["promo"] in [history] (budget fit '
        "--ignore promo)",
    ]
    assert list(load_history(path, events=["promo"]).events.columns) == ["promo=event1"]
    assert load_history(path, ignore=["promo"]).channels == ["tv", "social"]


def test_a_text_column_mapped_as_a_channel_is_named_with_the_mapping_to_change(tmp_path):
    f = weekly_frame(30)
    f["promo"] = ""
    f.loc[3, "promo"] = "Double 11"
    assert problems(write(tmp_path, f), channels={"tv": "tv", "social": "social", "promo": "promo"}) == [
        "history.csv column promo: holds text, not spend ('Double 11' in row 5; of its 30 cells 1 is not a "
        'number, 29 empty): if it marks events, declare it with events = ["promo"] in [history] (budget fit --event '
        "promo) and take channel promo out of `channels`; if it is not a channel, take channel promo out "
        "of `channels`",
    ]


def test_a_spend_column_of_mostly_dashes_is_not_called_text(tmp_path):
    f = weekly_frame(30)
    f.loc[:20, "social"] = "-"
    found = problems(write(tmp_path, f))
    assert found[0].startswith("history.csv row 2: spend for social '-' is not a number: write 0")
    assert found[5:] == ["… and 16 more like this"]


@pytest.mark.parametrize("column,says", [
    ("douyin_impressions", "its name says it counts impressions"),
    ("DouyinImpressions", "its name says it counts impressions"),
    ("fb_impr", "its name says it counts impressions"),
    ("search_clicks", "its name says it counts clicks"),
    ("video_views", "its name says it counts views"),
    ("tv_GRP", "its name says it counts rating points (GRP/TRP)"),
    ("tv_grps", "its name says it counts rating points (GRP/TRP)"),
    ("fb_reach", "its name says it counts reach"),
    ("抖音曝光量", "its name says it counts impressions"),
    ("facebook_I", "its name ends in _I, Robyn's suffix for impressions"),
    ("search_clicks_P", "its name ends in _P, Robyn's suffix for paid-media volume such as clicks"),
])
def test_a_column_named_as_impressions_or_clicks_is_not_fitted_as_spend(tmp_path, column, says):
    f = weekly_frame(30)
    f[column] = (f["tv"].astype(float) * 40).astype(int).astype(str)  # 40 impressions per yuan
    f.loc[3, "social"] = "abc"
    path = write(tmp_path, f)
    found = problems(path)
    share = f[column].astype(float).sum() / (f[column].astype(float).sum() + f["tv"].astype(float).sum()
                                             + f["social"].drop(3).astype(float).sum())
    q, t = shlex.quote(column), json.dumps(column, ensure_ascii=False)
    assert found == [
        f"history.csv column {column}: {says}, not money, yet it would be fitted as a channel's spend, at "
        f"{share:.0%} of all spend; leave it out with ignore = [{t}] in [history] (budget fit --ignore {q}), or, "
        f"if it drives the KPI without being spend, declare it a control with controls = [{t}] (--control {q}); "
        "if it really is spend, rename the column or map the channels by name in `channels`",
        "history.csv row 5: spend for social 'abc' is not a number",
    ]
    f.loc[3, "social"] = "100"
    assert load_history(write(tmp_path, f), ignore=[column]).channels == ["tv", "social"]


@pytest.mark.parametrize("column", ["search", "tv", "grp_spend", "impressions_cost", "outreach", "preview",
                                    "group_buying", "clicksign", "tv_S", "tv_group"])
def test_ordinary_channel_names_are_not_taken_for_impressions(tmp_path, column):
    f = weekly_frame(30).rename(columns={"tv": column})
    assert load_history(write(tmp_path, f)).channels == [column, "social"]


def test_a_column_mapped_explicitly_is_spend_whatever_its_name(tmp_path):
    f = weekly_frame(30).rename(columns={"tv": "tv_clicks"})
    h = load_history(write(tmp_path, f), channels={"tv": "tv_clicks", "social": "social"})
    assert h.channels == ["tv", "social"]


def test_channels_as_a_list_or_names_are_those_columns_and_one_fit(tmp_path):
    """`channels = ["tv"]` in a [history] table reads tv alone (it was ignored: every column was a
    channel), and every spelling of the same choice shares one cache key."""
    from models.cache import fit_key

    frame = weekly_frame()
    frame["price"] = "9.9"
    path = write(tmp_path, frame)
    listed = HistorySpec.from_dict({"channels": ["tv", "social"], "controls": ["price"]})
    assert load_history(path, listed).channels == ["tv", "social"]
    only_tv = problems(path, spec=HistorySpec.from_dict({"channels": ["tv"], "controls": ["price"]}))
    assert any("unknown column 'social'" in p for p in only_tv)
    spellings = [listed, HistorySpec(channels="tv, social", controls=("price",)),
                 HistorySpec(channels={"tv": "tv", "social": "social"}, controls=("price",))]
    assert len({fit_key(path, s, {}) for s in spellings}) == 1
    with pytest.raises(ValueError, match="history.channels: must be a table"):
        HistorySpec.from_dict({"channels": 3})


def test_columns_whose_numbers_are_not_spend_are_named_before_a_fit(tmp_path):
    """A PyMC-Marketing-style file keeps event flags, the day of the year and a trend index beside
    its spend: found by default they would be fitted as channels (dayofyear at 67% of "spend").
    Each is one problem that says what it looks like and how to declare it; mapped by name, a
    column is spend whatever it holds."""
    frame = weekly_frame(n=60)
    dates = pd.to_datetime(frame["date"])
    frame["event_1"] = ["1" if i in (5, 30) else "0" for i in range(60)]
    frame["dayofyear"] = dates.dt.day_of_year.astype(str)
    frame["t"] = [str(i) for i in range(60)]
    path = write(tmp_path, frame)
    found = problems(path)
    assert len(found) == 3
    assert any("column event_1: holds only 0 and 1" in p and 'events = ["event_1"]' in p for p in found)
    assert any("column dayofyear: follows the calendar (the day of the year)" in p for p in found)
    assert any("column t: rises by the same 1 every row" in p and "--ignore t" in p for p in found)
    declared = HistorySpec(events=("event_1",), ignore=("dayofyear", "t"))
    assert load_history(path, declared).channels == ["tv", "social"]
    by_name = HistorySpec(channels={"tv": "tv", "social": "social", "t": "t"}, events=("event_1",),
                          ignore=("dayofyear",))
    assert load_history(path, by_name).channels == ["tv", "social", "t"]


def test_a_column_a_thousand_times_smaller_than_the_other_spend_is_named(tmp_path):
    """An ROI column (2.5 per row) or a channel's spend in 万元 beside the others' 元 was fitted
    as a channel with an ROI in the tens of thousands."""
    frame = weekly_frame(n=60)
    frame["search"] = frame["social"]
    frame["search"] = (frame["social"].astype(float) * 1.3).round().astype(str)
    frame["ROI"] = (frame["revenue"].astype(float) / 400_000).round(2).astype(str)
    found = problems(write(tmp_path, frame))
    assert len(found) == 1 and found[0].startswith("history.csv column ROI: its values (median 2.6") and (
        "so it is not spend in their unit (an ROI or a count, or spend in 万元 beside 元): leave it out with "
        'ignore = ["ROI"]') in found[0]
    frame = frame.drop(columns="ROI")
    frame["tv"] = (frame["tv"].astype(float) / 10_000).round(2).astype(str)  # in 万元
    assert [p.split(":")[0] for p in problems(write(tmp_path, frame))] == ["history.csv column tv"]
    by_name = HistorySpec(channels={"tv": "tv", "social": "social", "search": "search"})
    assert load_history(write(tmp_path, frame), by_name).channels == ["tv", "social", "search"]


def test_one_spend_column_above_the_kpi_is_named_in_the_kpi_units_warning(tmp_path):
    """A second KPI (GMV beside 销售额) read as a channel made the KPI look like something other
    than money; the warning blamed the KPI's unit and not the column."""
    from models.fit import kpi_units

    frame = weekly_frame(n=60)
    frame["GMV"] = (frame["revenue"].astype(float) * 1.15).round().astype(str)
    _, in_money, warning = kpi_units(load_history(write(tmp_path, frame)), burn=0, prior=False)
    assert not in_money and warning.startswith("the KPI does not look like money")
    assert warning.endswith("; but column GMV alone is 96% of the spend, and without it the KPI reads as money: if "
                            "GMV is not spend (a second KPI such as GMV, a count, a ratio), leave it out of the "
                            'channels (ignore = ["GMV"] in [history])')
    _, in_money, warning = kpi_units(load_history(write(tmp_path, frame.drop(columns="GMV"))), burn=0, prior=False)
    assert in_money and warning is None


def test_one_column_mapped_to_two_channels_is_a_problem(tmp_path):
    path = write(tmp_path, weekly_frame())
    found = problems(path, spec=HistorySpec(channels={"tv": "tv", "social": "social", "tv2": "tv"}))
    assert found == [f"{path.name}: column 'tv' is mapped to channel tv already, and again to tv2: two channels on "
                     "one column have the same spend, and the fit cannot tell them apart"]


def test_a_column_name_off_by_case_spaces_or_a_typo_gets_the_likely_one(tmp_path):
    path = write(tmp_path, weekly_frame())
    found = problems(path, spec=HistorySpec(kpi="Revenue ", channels={"tv": "tv", "social": "socail"}))
    assert found[0].startswith("history.csv: KPI column 'Revenue ' not found (did you mean 'revenue'?); columns are:")
    assert found[1].startswith("history.csv: column 'socail' for channel social not found (did you mean 'social'?)")
