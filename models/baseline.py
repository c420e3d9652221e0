"""The non-media baseline: Prophet trend, yearly seasonality, holidays and campaign days.

Only this module imports prophet (lazily, inside functions, so the rest of the library and the
bootstrap workers start fast). Holidays come from Prophet's built-in country holidays
(``make_holidays_df(country=...)``, which reads the offline ``holidays`` package) for one
country, China ("CN") by default, any ISO 3166 code on request (``holidays = "DE"`` in a
``[history]`` table, ``MediaMixModel(holidays="DE")``). China's calendar comes with the Chinese
e-commerce campaign days: 618 (June 18), Double 11 (November 11) and the monthly member day (the
18th); other countries' calendars do not, unless ``campaign_days=True`` asks for them (a brand
selling abroad on Tmall Global might). Users add their own events as ``{name: [dates]}``.

History dates label period starts, so in weekly or monthly data a holiday is assigned to the
period that contains it; otherwise Prophet would never see it. That is why the country's days
are passed as Prophet ``holidays`` mapped to periods rather than through
``Prophet.add_country_holidays``, whose features match exact dates only. For the same reason a
forecast passes the horizon's own holiday table to :meth:`BaselineFit.components`.

How far the baseline's forecasts stray is measured, not assumed: :meth:`BaselineFit.forecast_error`
backtests the fitted Prophet at earlier origins of its own history (a fit at its MAP has no
parameter uncertainty, and its simulated trend changes are of the size of its fitted
changepoints, which its prior shrinks to almost nothing: a 13-week trend sd of 0.04% of the level
on the study's histories, against errors of several percent).
"""

from __future__ import annotations

import json
import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["holiday_table", "BaselineFit", "ForecastError", "fit_prophet_baseline", "CAMPAIGN_DAYS", "PERIOD_DAYS",
           "DEFAULT_COUNTRY", "country_problem"]

logger = logging.getLogger(__name__)

#: Length of a period in days, used to assign a day to the period (labelled by start) containing it.
PERIOD_DAYS = {"daily": 1, "weekly": 7, "monthly": 31}

#: Campaign days of the Chinese e-commerce calendar: (month, day); month None = every month.
CAMPAIGN_DAYS = {"618": (6, 18), "double11": (11, 11), "member_day": (None, 18)}

#: The holiday calendar when none is named, and the one whose campaign days are added by default.
DEFAULT_COUNTRY = "CN"

# Fourier order of the yearly seasonality by frequency: enough for a peak season, few enough
# that three years of weekly data do not let seasonality soak up media effects.
_YEARLY_ORDER = {"daily": 10, "weekly": 5, "monthly": 3}

# Exact texts of third-party notices silenced around Prophet calls (never globally).
_PANDAS_INPLACE = r"The inplace keyword in DataFrame\.\w+ is deprecated"
_PANDAS_READ_JSON = r"The 'convert_dates' keyword in read_json is deprecated"
_PLOTLY_NOTICE = "Importing plotly failed. Interactive plots will not work."
#: Prophet's log line for a yearly seasonality on under two years; the history's own warning
#: (:func:`models.history.short_history_warning`) says it in the plan instead.
_SHORT_YEARLY = ("Yearly seasonality is enabled with less than 730 days (approximately 2 years) of history. The model "
                 "may be under-identified, and the trend/seasonality decomposition can be unstable and dependent on "
                 "the Prophet/Stan version. Consider disabling yearly seasonality or providing more history.")


class _DropMessage(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.text


def _drop_plotly_notice() -> None:
    """Prophet logs the plotly notice when it is first imported, wherever that happens."""
    for name, text in (("prophet.plot", _PLOTLY_NOTICE), ("prophet", _SHORT_YEARLY)):
        target = logging.getLogger(name)
        if not any(isinstance(f, _DropMessage) and f.text == text for f in target.filters):
            target.addFilter(_DropMessage(text))


_drop_plotly_notice()


@contextmanager
def _quiet_prophet():
    """Silence cmdstanpy, prophet's plotly notice and pandas deprecations raised inside prophet."""
    logging.getLogger("cmdstanpy").disabled = True
    _drop_plotly_notice()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PANDAS_INPLACE, module=r"prophet(\..*)?")
        warnings.filterwarnings("ignore", message=_PANDAS_READ_JSON, module=r"prophet(\..*)?")
        warnings.filterwarnings("ignore", message=r".*all arguments of \w+ will be keyword-only",
                                module=r"prophet(\..*)?")
        yield


def _period_of(days: pd.DatetimeIndex, starts: pd.DatetimeIndex, period_days: int) -> pd.DatetimeIndex:
    """The period start containing each day; NaT when the day falls outside every period."""
    pos = np.searchsorted(starts.values, days.values, side="right") - 1
    ok = pos >= 0
    out = np.full(len(days), np.datetime64("NaT"), dtype="datetime64[ns]")
    out[ok] = starts.values[pos[ok]]
    within = (days.values - out) < np.timedelta64(period_days, "D")
    out[~within] = np.datetime64("NaT")
    return pd.DatetimeIndex(out)


def country_problem(country) -> str | None:
    """Why ``country`` cannot name a holiday calendar, or None when it can.

    Parameters
    ----------
    country : str or None
        An ISO 3166 code known to the ``holidays`` package that Prophet uses ("CN", "DE", "USA");
        None or False means no country holidays.

    Returns
    -------
    str or None
        A message without a place (the caller knows the key: ``history.holidays``).
    """
    if country is None or country is False:
        return None
    if not isinstance(country, str):
        return f'must be a country code such as "DE", got {country!r}'
    import holidays as calendars  # offline; Prophet's own dependency

    codes = calendars.list_supported_countries()
    if country in codes:
        return None
    guess = country.upper() if country.upper() in codes else None
    if guess is None:
        # A calendar's class name such as "Germany": the package's (lazy) class knows its code.
        code = getattr(getattr(calendars, country, None), "country", None)
        guess = code if isinstance(code, str) and code in codes else None
    if guess:
        return f'unknown country code {country!r} (did you mean "{guess}"?)'
    return f'unknown country code {country!r} (holiday calendars use ISO 3166 codes such as "CN", "DE", "US")'


def holiday_table(starts: pd.DatetimeIndex, frequency: str, country: str | None = DEFAULT_COUNTRY,
                  campaign_days: bool | None = None, events: dict[str, list] | None = None) -> pd.DataFrame:
    """Prophet holidays (``ds, holiday``) mapped onto the periods in ``starts``.

    Parameters
    ----------
    starts : DatetimeIndex
        Period starts covering history *and* any horizon to be forecast.
    frequency : {"daily", "weekly", "monthly"}
    country : str or None
        Prophet built-in country holidays, an ISO 3166 code (default China, "CN"); None for none.
    campaign_days : bool or None
        Add 618, Double 11 and the monthly member day (skipped for monthly data, where every
        period contains an 18th). None (default): only with China's calendar, because they are
        Chinese e-commerce events.
    events : dict, optional
        ``{name: [date, ...]}`` user-defined campaign days.

    Raises
    ------
    ValueError
        ``country`` is not a known code (``holidays: unknown country code 'XX' (…)``).
    """
    problem = country_problem(country)
    if problem:
        raise ValueError(f"holidays: {problem}")
    if campaign_days is None:
        campaign_days = country == DEFAULT_COUNTRY
    period_days = PERIOD_DAYS[frequency]
    years = list(range(starts[0].year - 1, starts[-1].year + 2))
    rows: list[tuple[pd.Timestamp, str]] = []
    if country:
        from prophet.make_holidays import make_holidays_df

        with _quiet_prophet():
            table = make_holidays_df(year_list=years, country=country)
        for ds, name in zip(pd.to_datetime(table["ds"]), table["holiday"].astype(str)):
            if name.startswith("Day off (substituted"):
                continue  # one-off shifted days off: each name occurs once, so it cannot be learned
            rows.append((ds, name.replace(" (observed)", "")))
    if campaign_days:
        for name, (month, day) in CAMPAIGN_DAYS.items():
            if month is None and frequency == "monthly":
                continue
            months = range(1, 13) if month is None else (month,)
            rows.extend((pd.Timestamp(y, m, day), name) for y in years for m in months)
    for name, dates in (events or {}).items():
        rows.extend((pd.Timestamp(d), str(name)) for d in dates)
    if not rows:
        return pd.DataFrame({"ds": pd.DatetimeIndex([]), "holiday": pd.Series([], dtype=str)})
    days = pd.DatetimeIndex([r[0] for r in rows])
    mapped = _period_of(days, starts, period_days)
    frame = pd.DataFrame({"ds": mapped, "holiday": [r[1] for r in rows]})
    frame = frame.dropna().drop_duplicates().sort_values(["ds", "holiday"]).reset_index(drop=True)
    if frequency == "monthly":
        # A holiday that lands in every period of the data is a constant, not an effect.
        counts = frame.groupby("holiday")["ds"].nunique()
        frame = frame[frame["holiday"].map(counts) < len(starts)].reset_index(drop=True)
    return frame


def holiday_indicators(starts: pd.DatetimeIndex, holidays: pd.DataFrame) -> pd.DataFrame:
    """Periods × holiday-name 0/1 table (the linear stand-in for Prophet's holiday effects)."""
    out = pd.DataFrame(0.0, index=starts, columns=sorted(holidays["holiday"].unique()))
    for ds, name in zip(holidays["ds"], holidays["holiday"]):
        if ds in out.index:
            out.loc[ds, name] = 1.0
    keep = out.columns[out.to_numpy().sum(axis=0) > 0]
    return out[keep].reset_index(drop=True)


def spring_festivals(years) -> list[pd.Timestamp]:
    """Each year's Spring Festival: the first day of Chinese New Year in China's calendar."""
    import holidays  # a Prophet dependency; works offline

    out = []
    for year in years:
        days = [pd.Timestamp(d) for d, name in holidays.country_holidays("CN", years=year).items()
                if name.startswith("Chinese New Year")]
        if days:
            out.append(min(days))
    return out


#: Periods per year by frequency (a backtest's fit sees at least a year and a horizon).
_PER_YEAR = {"daily": 365.25, "weekly": 365.25 / 7, "monthly": 12.0}


@dataclass(frozen=True)
class ForecastError:
    """How far a baseline forecast of ``periods`` periods strays, measured by backtesting.

    Errors are relative to ``scale`` (the series' mean absolute level over its last year) and
    split in two parts: ``level_sd``, an error shared by every period of a horizon (a level or
    slope the fit got wrong, which does not average out over the horizon), and ``period_sd``,
    each period's own error (the series' noise and what the fit misses period by period).
    ``origins`` is the number of backtest forecasts they come from (0: no backtest was possible,
    and ``period_sd`` is Prophet's in-sample noise).
    """

    periods: int
    level_sd: float
    period_sd: float
    scale: float
    origins: int

    def draws(self, draws: int, rng: np.random.Generator) -> np.ndarray:
        """Error paths (draws × periods, in the series' units): a shared and a per-period part."""
        shared = rng.standard_normal((int(draws), 1)) * self.level_sd
        own = rng.standard_normal((int(draws), self.periods)) * self.period_sd
        return (shared + own) * self.scale

    @classmethod
    def from_backtest(cls, errors: np.ndarray, scale: float) -> "ForecastError":
        """The two parts from backtest errors (origins × periods, relative to ``scale``).

        With e_{o,h} = L_o + ε_{o,h}: the per-period variance from the spread within each
        origin's forecast, the shared variance from the origins' mean errors (their mean square
        about zero, less the per-period part's share of a mean over ``periods``, floored at 0).
        A backtest that was biased therefore widens the band rather than moving it, and the
        horizon total's variance is the backtests' own (or the per-period part's, if larger).
        """
        errors = np.atleast_2d(np.asarray(errors, dtype=float))
        K, P = errors.shape
        means = errors.mean(axis=1)
        if P > 1:
            within = float(np.sum((errors - means[:, None]) ** 2) / (K * (P - 1)))
            shared = max(float(np.mean(means**2)) - within / P, 0.0)
        else:  # one period: the two parts cannot be told apart; all of it is the period's own
            within, shared = float(np.mean(errors**2)), 0.0
        return cls(periods=P, level_sd=float(np.sqrt(shared)), period_sd=float(np.sqrt(within)), scale=float(scale),
                   origins=K)


@dataclass
class BaselineFit:
    """A fitted Prophet baseline and the names of its additive components.

    ``components(dates, regressors)`` returns the periods × component table (``trend``,
    ``yearly``, ``holidays`` and one column per extra regressor) that the media fit re-weights.
    """

    prophet_json: str
    regressors: list[str]
    regressor_means: dict[str, float]
    _model: object = None
    _errors: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def model(self):
        if self._model is None:
            from prophet.serialize import model_from_json

            with _quiet_prophet():
                self._model = model_from_json(self.prophet_json)
        return self._model

    def components(self, dates: pd.DatetimeIndex, regressors: pd.DataFrame | None = None,
                   holidays: pd.DataFrame | None = None) -> pd.DataFrame:
        """Additive components at ``dates``; missing regressors are held at their historical mean.

        ``holidays``: a holiday table (``ds, holiday``, as :func:`holiday_table` makes) for dates
        after the history. The fitted table maps days onto the history's periods only, so
        without it the horizon's periods carry no holiday effect (Prophet sees holidays only on
        the dates its table lists); names the fit never saw are ignored, as Prophet does.
        """
        future = pd.DataFrame({"ds": pd.DatetimeIndex(dates)})
        for name in self.regressors:
            if regressors is not None and name in regressors:
                future[name] = np.asarray(regressors[name], dtype=float)
            else:
                future[name] = self.regressor_means[name]
        model = self.model
        fitted_table = model.holidays
        if holidays is not None and len(holidays) and fitted_table is not None:
            extra = pd.DataFrame({"ds": pd.to_datetime(holidays["ds"]), "holiday": holidays["holiday"].astype(str)})
            model.holidays = (pd.concat([fitted_table, extra], ignore_index=True)
                              .drop_duplicates(["ds", "holiday"]).reset_index(drop=True))
        try:
            with _quiet_prophet():
                fc = model.predict(future)
        finally:
            model.holidays = fitted_table
        cols = {"trend": fc["trend"].to_numpy(dtype=float)}
        for name in ("yearly", "weekly", "holidays"):
            if name in fc:
                cols[name] = fc[name].to_numpy(dtype=float)
        for name in self.regressors:
            cols[f"regressor:{name}"] = fc[name].to_numpy(dtype=float)
        return pd.DataFrame(cols)

    @property
    def history_dates(self) -> pd.DatetimeIndex:
        """The period starts Prophet was fitted on."""
        return pd.DatetimeIndex(self.model.history["ds"])

    @property
    def noise_sd(self) -> float:
        """Prophet's observation noise (``sigma_obs``, MAP) in the KPI's units: the sd of what the
        fitted components leave unexplained in the series it was fitted to."""
        m = self.model
        return float(np.asarray(m.params["sigma_obs"]).ravel()[0]) * float(m.y_scale)

    def forecast_error(self, periods: int, frequency: str, max_origins: int = 8) -> ForecastError:
        """How far this baseline's forecasts of ``periods`` periods strayed in its own history.

        A rolling-origin backtest (Prophet's ``cross_validation``, done here so each origin is
        exact in periods): Prophet, with this fit's settings, holidays and regressors
        (``prophet.diagnostics.prophet_copy``), is refitted on the series up to an origin and
        forecasts the ``periods`` after it; origins step back from the last one that leaves a
        whole horizon (``periods`` before the end) by a third of a horizon, at most
        ``max_origins`` of them, each fit seeing at least a year and a horizon (when the history
        is too short for that: the one origin of a holdout). Each origin's errors are taken
        relative to the series' mean absolute level over its last year, so a growing series
        compares like with like. Deterministic (MAP fits); computed once per ``periods``.

        Returns
        -------
        ForecastError
        """
        key = (int(periods), frequency, int(max_origins))
        if key in self._errors:
            return self._errors[key]
        m = self.model
        hist = m.history
        y = hist["y"].to_numpy(dtype=float)
        n, P = len(hist), int(periods)
        year = int(round(_PER_YEAR[frequency]))
        scale = float(np.mean(np.abs(y[-year:]))) or 1.0
        first = n - P
        least = min(year + P, first)
        step = max(1, int(round(P / 3)))
        origins = [c for c in range(first, least - 1, -step)][:int(max_origins)] if first >= max(least, 2) else []
        if not origins:
            out = ForecastError(periods=P, level_sd=0.0, period_sd=self.noise_sd / scale, scale=scale, origins=0)
            self._errors[key] = out
            return out
        from prophet.diagnostics import prophet_copy

        columns = ["ds", "y", *m.extra_regressors]
        errors = []
        with _quiet_prophet():
            for c in origins:
                refit = prophet_copy(m, cutoff=hist["ds"].iloc[c - 1])
                refit.fit(hist[columns].iloc[:c].reset_index(drop=True), **(m.fit_kwargs or {}))
                ahead = refit.predict(hist[columns[:1] + columns[2:]].iloc[c:c + P].reset_index(drop=True))
                level = float(np.mean(np.abs(y[max(0, c - year):c]))) or scale
                errors.append((y[c:c + P] - ahead["yhat"].to_numpy(dtype=float)) / level)
        out = ForecastError.from_backtest(np.array(errors), scale)
        logger.debug("baseline backtest over %d origins: shared sd %.4f, per-period sd %.4f", len(origins),
                     out.level_sd, out.period_sd)
        self._errors[key] = out
        return out

    def to_dict(self) -> dict:
        # Prophet's own JSON serialisation (no pickle): keeps the fitted Stan parameters so the
        # loaded model forecasts any horizon exactly as the fitted one did.
        return {"prophet": json.loads(self.prophet_json), "regressors": list(self.regressors),
                "regressor_means": dict(self.regressor_means)}

    @classmethod
    def from_dict(cls, data: dict) -> "BaselineFit":
        return cls(prophet_json=json.dumps(data["prophet"]), regressors=list(data["regressors"]),
                   regressor_means={k: float(v) for k, v in data["regressor_means"].items()})


def fit_prophet_baseline(dates: pd.DatetimeIndex, y: np.ndarray, frequency: str, holidays: pd.DataFrame,
                         regressors: pd.DataFrame | None = None) -> BaselineFit:
    """Fit Prophet (MAP, no uncertainty sampling: deterministic and fast) to ``y``.

    ``y`` is the KPI minus the current media estimate; the caller alternates.
    """
    with _quiet_prophet():
        from prophet import Prophet
        from prophet.serialize import model_to_json

        model = Prophet(
            growth="linear",
            yearly_seasonality=_YEARLY_ORDER[frequency],
            weekly_seasonality=frequency == "daily",
            daily_seasonality=False,
            holidays=holidays if len(holidays) else None,
            uncertainty_samples=0,
        )
        frame = pd.DataFrame({"ds": pd.DatetimeIndex(dates), "y": np.asarray(y, dtype=float)})
        names: list[str] = []
        means: dict[str, float] = {}
        if regressors is not None:
            for name in regressors.columns:
                values = regressors[name].to_numpy(dtype=float)
                if np.ptp(values) == 0:
                    continue  # constant: nothing to learn, and Prophet would reject it
                model.add_regressor(name)
                frame[name] = values
                names.append(name)
                means[name] = float(values.mean())
        model.fit(frame, algorithm="LBFGS")
        text = model_to_json(model)
    return BaselineFit(prophet_json=text, regressors=names, regressor_means=means, _model=model)
