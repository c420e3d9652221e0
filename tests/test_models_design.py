"""The joint model's baseline columns: scaled for their prior, and able to carry a holiday's effect
whether it follows the holiday's days or lifts the whole week that holds them."""

import numpy as np
import pandas as pd
import pytest

from models.design import baseline_design
from models.history import history_from_frame

WEEKS = pd.date_range("2022-01-03", periods=156, freq="W-MON")


def _history(dates):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"date": dates, "revenue": 1e6 + rng.normal(0, 1e4, len(dates)),
                          "douyin": rng.uniform(1e4, 5e4, len(dates))})
    return history_from_frame(frame)


def _residual_sd(design, target):
    basis = design.basis()
    coef, *_ = np.linalg.lstsq(basis, target, rcond=None)
    return float(np.std(target - basis @ coef))


def test_calendar_columns_peak_at_one_so_their_prior_is_on_the_peak_period():
    design = baseline_design(_history(WEEKS))
    calendar = [j for j, n in enumerate(design.names) if not n.startswith("yearly")]
    assert calendar, design.names
    tops = design.seasonal[:, calendar].max(axis=0)
    assert np.allclose(tops, 1.0), dict(zip(np.array(design.names)[calendar], tops))
    # The one-day windows used to top out at 1/7 of a week: a prior of 0.2 allowed them 3%.
    assert "618" in design.names and "member day" in design.names


@pytest.mark.parametrize("form", ["the whole week", "its days"])
def test_a_campaign_effect_is_carried_whether_it_lifts_the_week_or_follows_its_days(form):
    design = baseline_design(_history(WEEKS))
    effect = np.zeros(len(WEEKS))
    for y in range(WEEKS[0].year, WEEKS[-1].year + 1):
        days = [pd.Timestamp(f"{y}-11-11")] if form == "the whole week" else pd.date_range(f"{y}-11-11", periods=3)
        for day in days:
            i = _week_of(day)
            if 0 <= i < len(WEEKS):
                effect[i] += 1.0 if form == "the whole week" else 1 / 3
    assert effect.max() > 0
    # 30% of the KPI in Double 11's week(s): the design's columns reproduce it exactly.
    assert _residual_sd(design, 0.3 * effect) < 1e-9


def test_every_week_holding_a_spring_festival_day_can_rise_as_a_whole():
    import holidays

    design = baseline_design(_history(WEEKS))
    lift = np.zeros(len(WEEKS))
    for day, name in holidays.country_holidays("CN", years=range(2021, 2026)).items():
        i = _week_of(pd.Timestamp(day))
        if name.startswith("Chinese New Year") and 0 <= i < len(WEEKS):
            lift[i] = 1.0
    # 2023's festival (Sunday 22 January on) spans two weeks, one with a single festival day.
    assert lift.sum() > 3
    assert _residual_sd(design, 0.2 * lift) < 1e-9


def _week_of(day):
    """Index of the week holding ``day`` (−1 outside the history)."""
    i = int(np.searchsorted(WEEKS.values, day.to_datetime64(), side="right") - 1)
    return i if i >= 0 and (day - WEEKS[i]).days < 7 else -1
