"""The baseline's regressors for the Bayesian model, and the campaign signal of media efficiency.

The joint model (:mod:`models.posterior`) fits the baseline and the media together, with priors
on both, instead of alternating with Prophet. Its baseline is linear in these columns:

* **trend**: an intercept, a slope over the history (time scaled to 0…1) and hinge functions
  ``max(0, t − c_j)`` at evenly spaced changepoints over the first 85% of the history, like
  Prophet's; their slope changes get a Gaussian prior (scale 0.1 of the mean KPI per history
  length), so a trend break is carried by one or two of them and a smooth trend by none;
* **yearly wave**: Fourier terms of the day of the year (order 4 weekly, 6 daily, 2 monthly), and
  a weekly wave in daily data;
* **calendar** (each the share of the period's days inside a window, so a week holding two days
  of a campaign gets 2/7): for China's calendar the e-commerce campaigns with their presale
  seasons (618: presale 1–17 June, the day 18 June and its tail 19–20 June; Double 11: presale
  21 October – 10 November, the day, and its tail 12–13 November), the monthly member day (the 18th; not in monthly data, where
  every period holds one) and the Spring Festival season (a week before New Year's Day to two
  weeks after, when logistics stop); every public holiday of the country's calendar by name
  (``holidays`` package, Prophet's own dependency, offline); the user's events. In the baseline
  each calendar column is scaled to a largest value of 1 over the fitted periods, so the prior on
  its coefficient is on the effect in the period that holds most of the window; in weekly data a
  window shorter than a week also gets a 0/1 column of the weeks that hold any of its days, so
  its effect may follow its days or the whole week;
* **the history's own columns**: event columns as they are, controls standardised.

Windows, not one-day indicators: campaigns spread over weeks (presale, tails) and a period
labelled by its start holds the days that follow it.

``efficiency`` is the campaign signal that media efficiency follows in the joint model (channel
efficiency rises in presale seasons and falls over the festival): the 618 and Double 11 windows
minus the Spring Festival season, centred on the fitted periods and scaled to a largest absolute
value of 1. None without China's campaign calendar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.baseline import spring_festivals

__all__ = ["Design", "baseline_design", "calendar_windows", "campaign_signal", "period_ends"]

#: Days in a period, for periods labelled by their start (monthly: to the next month's start).
_PERIOD_DAYS = {"daily": 1, "weekly": 7}
_FOURIER = {"daily": 6, "weekly": 4, "monthly": 2}
_CHANGEPOINTS = {"daily": 25, "weekly": 15, "monthly": 8}
#: Share of the history, from its start, where trend changepoints may fall (Prophet uses 80%).
_CHANGEPOINT_RANGE = 0.85

#: The e-commerce campaign windows of China's calendar: name → (month, day, first, last offset in days).
#: The day itself is a window of its own: sales concentrate on it, and in weekly data a week holding
#: the day and one holding only the tail differ by more than their share of the three days.
CAMPAIGN_WINDOWS = {
    "618 presale": (6, 18, -17, -1),
    "618": (6, 18, 0, 0),
    "618 tail": (6, 18, 1, 2),
    "Double 11 presale": (11, 11, -21, -1),
    "Double 11": (11, 11, 0, 0),
    "Double 11 tail": (11, 11, 1, 2),
}
#: Spring Festival season around Chinese New Year's Day: (first, last) offset in days.
SPRING_FESTIVAL = (-7, 14)


@dataclass(frozen=True)
class Design:
    """The baseline's columns over a history (see the module docstring).

    ``t`` is time scaled to 0…1, ``hinges`` the changepoint columns (periods × m) at
    ``changepoints`` (in t), ``seasonal`` the other columns (periods × k) named ``names``, and
    ``efficiency`` the campaign signal (periods,) or None: ``(campaign_signal − center) / top``.
    """

    t: np.ndarray
    hinges: np.ndarray
    changepoints: np.ndarray
    seasonal: np.ndarray
    names: tuple[str, ...]
    efficiency: np.ndarray | None
    efficiency_center: float = 0.0
    efficiency_top: float = 1.0

    def basis(self) -> np.ndarray:
        """Every column with an intercept: ``[1, t, hinges, seasonal]`` (for correlations)."""
        n = self.t.size
        return np.column_stack([np.ones(n), self.t, self.hinges, self.seasonal])


def period_ends(dates: pd.DatetimeIndex, frequency: str) -> pd.DatetimeIndex:
    """The day after each period labelled by its start."""
    if frequency == "monthly":
        return dates + pd.offsets.MonthBegin(1)
    return dates + pd.Timedelta(days=_PERIOD_DAYS[frequency])


def _share(days: pd.DatetimeIndex, on: np.ndarray, dates: pd.DatetimeIndex, ends: pd.DatetimeIndex) -> np.ndarray:
    """Share of each period's days where ``on`` (a 0/1 array over ``days``) holds."""
    first = np.searchsorted(days.values, dates.values)
    last = np.searchsorted(days.values, ends.values)
    csum = np.concatenate([[0.0], np.cumsum(on)])
    return (csum[last] - csum[first]) / np.maximum(last - first, 1)


def calendar_windows(dates: pd.DatetimeIndex, frequency: str, country: str | None = "CN",
                     campaign_days: bool | None = None, events: dict | None = None) -> pd.DataFrame:
    """Per period, the share of its days in each calendar window (columns named by the window).

    Parameters
    ----------
    dates : DatetimeIndex
        Period starts (history and, for a forecast, the horizon).
    frequency : {"daily", "weekly", "monthly"}
    country : str or None
        ISO 3166 code of the public holidays (default China); None for none. Validated upstream
        (:func:`models.baseline.country_problem`).
    campaign_days : bool or None
        The Chinese e-commerce campaigns, member day and Spring Festival season; None: only with
        China's calendar.
    events : dict, optional
        ``{name: [date, ...]}``: the user's campaign days (one day each).

    Returns
    -------
    pandas.DataFrame
        Periods × windows; windows that never occur in ``dates`` are dropped.
    """
    if campaign_days is None:
        campaign_days = country == "CN"
    ends = period_ends(dates, frequency)
    days = pd.date_range(dates[0], ends[-1] - pd.Timedelta(days=1), freq="D")
    day_no = days.values.astype("datetime64[D]").astype(np.int64)
    years = list(range(days[0].year - 1, days[-1].year + 2))
    cols: dict[str, np.ndarray] = {}

    def around(centres, first: int, last: int) -> np.ndarray:
        on = np.zeros(len(days))
        for c in centres:
            p = np.datetime64(pd.Timestamp(c).date(), "D").astype(np.int64)
            on[(day_no >= p + first) & (day_no <= p + last)] = 1.0
        return on

    if campaign_days:
        for name, (month, day, first, last) in CAMPAIGN_WINDOWS.items():
            cols[name] = _share(days, around([pd.Timestamp(y, month, day) for y in years], first, last), dates, ends)
        if frequency != "monthly":
            cols["member day"] = _share(days, (days.day == 18).astype(float), dates, ends)
        cols["Spring Festival season"] = _share(days, around(spring_festivals(years), *SPRING_FESTIVAL), dates, ends)
    if country:
        import holidays as calendars

        named: dict[str, list] = {}
        for d, name in calendars.country_holidays(country, years=years).items():
            name = str(name).replace(" (observed)", "")
            if name.startswith("Day off (substituted"):
                continue  # one-off shifted days off: each occurs once, nothing to learn
            named.setdefault(name, []).append(d)
        for name in sorted(named):
            cols[f"holiday: {name}"] = _share(days, around(named[name], 0, 0), dates, ends)
    for name, when in (events or {}).items():
        cols[f"event: {name}"] = _share(days, around(when, 0, 0), dates, ends)
    frame = pd.DataFrame(cols, index=range(len(dates)))
    return frame.loc[:, frame.to_numpy().max(axis=0, initial=0.0) > 0] if len(frame.columns) else frame


def campaign_signal(dates: pd.DatetimeIndex, frequency: str) -> np.ndarray:
    """The raw campaign signal per period: the shares of days in the 618 and Double 11 windows
    (presale and days) minus the share in the Spring Festival season (China's calendar)."""
    cal = calendar_windows(dates, frequency, country=None, campaign_days=True)
    up = sum(cal[name].to_numpy(dtype=float) for name in CAMPAIGN_WINDOWS if name in cal)
    down = cal["Spring Festival season"].to_numpy(dtype=float) if "Spring Festival season" in cal else 0.0
    return np.asarray(up - down, dtype=float) + np.zeros(len(dates))


def _fourier(dates: pd.DatetimeIndex, order: int, period_days: float, prefix: str) -> dict[str, np.ndarray]:
    days = (dates - pd.Timestamp("2000-01-01")).days.to_numpy(dtype=float)
    out = {}
    for j in range(1, order + 1):
        w = 2 * np.pi * j * days / period_days
        out[f"{prefix} sin {j}"] = np.sin(w)
        out[f"{prefix} cos {j}"] = np.cos(w)
    return out


def baseline_design(history, *, country: str | None = "CN", campaign_days: bool | None = None,
                    events: dict | None = None, fitted_from: int = 0) -> Design:
    """The baseline's columns for ``history`` (a :class:`models.history.History`).

    ``fitted_from``: the first period in the likelihood (after the burn-in); the efficiency
    signal and the controls are centred and scaled on the periods from there.
    """
    n = history.periods
    dates = history.dates
    freq = history.frequency
    t = np.arange(n) / max(n - 1, 1)
    m = min(_CHANGEPOINTS[freq], max(n // 8, 1))
    changepoints = np.linspace(0.0, _CHANGEPOINT_RANGE, m + 2)[1:-1]
    hinges = np.maximum(0.0, t[:, None] - changepoints[None, :])
    cols = _fourier(dates, _FOURIER[freq], 365.25, "yearly")
    if freq == "daily":
        cols.update(_fourier(dates, 3, 7.0, "weekly"))
    cal = calendar_windows(dates, freq, country, campaign_days, events)
    rows = slice(fitted_from, None)
    whole = freq == "weekly"
    for name in cal.columns:
        # Scaled to a largest value of 1 over the fitted periods, so the coefficients' prior is on
        # the effect in the period holding most of the window: as a share of the period's days a
        # one-day window is at most 1/7 of a week, and the prior would allow it 1/7 of the effect.
        v = cal[name].to_numpy(dtype=float)
        top = float(v[rows].max(initial=0.0))
        cols[name] = v / top if top > 0 else v
        if whole and 0 < top < 1:
            # A short window (a holiday, a campaign day) in weekly data: whether its effect follows
            # its share of the week's days or lifts the whole week that holds it (the shopping
            # before Spring Festival, a campaign week) is the data's to say, so both are columns.
            held = (v > 0).astype(float)
            if np.any(np.abs(held[rows] - cols[name][rows]) > 1e-9):
                cols[f"{name} (week)"] = held
    for name in history.events.columns:
        cols[f"event: {name}"] = history.events[name].to_numpy(dtype=float)
    for name in history.controls.columns:
        v = history.controls[name].to_numpy(dtype=float)
        sd = float(v[rows].std())
        cols[f"control: {name}"] = (v - v[rows].mean()) / sd if sd > 0 else v * 0.0
    keep = {k: v for k, v in cols.items() if np.ptp(v[rows]) > 0}
    seasonal = np.column_stack(list(keep.values())) if keep else np.zeros((n, 0))
    efficiency, center, top = None, 0.0, 1.0
    if campaign_days if campaign_days is not None else country == "CN":
        raw = campaign_signal(dates, freq)
        center = float(raw[rows].mean())
        top = float(np.abs(raw[rows] - center).max())
        if top > 0:
            efficiency = (raw - center) / top
        else:
            center, top = 0.0, 1.0
    return Design(t=t, hinges=hinges, changepoints=changepoints, seasonal=seasonal, names=tuple(keep),
                  efficiency=efficiency, efficiency_center=center, efficiency_top=top)
