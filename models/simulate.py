"""Realistic synthetic histories with known truth, for the recovery study (issue 9 §1).

:mod:`models.generate` draws histories in the model's own form (Hill on geometric adstock,
independent flighting, campaign peaks on the estimator's own calendar), so a correct fitter must
recover them. This module draws the histories that make attribution hard, as real ones do, and
keeps everything needed to score a fit against the truth:

* 4–12 channels, some of them small (≤ 3% of the spend);
* 104–156 weeks, or a daily (two years) or monthly (four years) history;
* spend that is **flighted** (bursts on and off, independent per channel), **always-on** (log
  spend driven by a shared factor, so channels correlate with each other at ``spend_corr`` and
  with the season at ``season_corr``) or a mix;
* carryover α ∈ [0.1, 0.7]; saturation families the model does not assume (``SATURATIONS``);
* channel efficiency and the baseline both seasonal: 618 and Double 11 presale ramps, the
  Spring Festival dip, a yearly wave, each spread over the days they span (not the estimator's
  one-period indicators);
* a trend break (a level shift and a change of slope on a date the estimator is not told);
* noise 2–10% of the mean KPI.

The process, per period t and channel c::

    e_{c,t}  = x_{c,t} + α_c e_{c,t−1}                          (geometric adstock; a year of spend
                                                                  before the file starts)
    KPI_t    = baseline_t + Σ_c η_{c,t} β_c f_c(e_{c,t}; k_c, s_c) + ε_t,   ε_t ~ N(0, (noise·mean KPI)²)

where f_c is the channel's saturation family, scaled so that ``f(k) = 1/2`` for every family
(``k`` is the adstocked spend per period at half saturation), and η_{c,t} is the channel's
seasonal efficiency, 1 on average over the history.

Ground truth (all "steady state": spend x per period held long enough that e = x/(1−α), at the
history's average efficiency η = 1):

* :func:`true_curve` — the return of spend X spread evenly over ``periods`` periods,
  ``periods · β · f(X / (periods · (1−α)))``, as a :class:`~models.curves.ResponseCurve` the
  optimizer accepts (the same definition as ``MediaMixModel.planning_curve``, so fitted and true
  curves compare one to one). ``quarter_periods(frequency)`` periods make a 13-week quarter.
* :func:`true_roi_at_mean` — ``true_curve(periods=1)`` at the channel's mean spend, divided by it.
* :func:`true_marginal_roi` — the true curve's slope at a plan's spend.

Every draw comes from one ``numpy`` generator seeded by the caller: the same seed gives the same
world and the same history. :func:`study_world` is the design of the recovery study
(``benchmarks/attribution.py``): dataset i of a seeded sequence that cycles through the spend
regimes, sizes and frequencies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from models.curves import ExponentialCurve, HillCurve, LinearThenCurve, ResponseCurve
from models.baseline import spring_festivals

__all__ = [
    "SATURATIONS",
    "SimChannel",
    "SimWorld",
    "Simulation",
    "TanhCurve",
    "WeibullCurve",
    "saturation",
    "random_world",
    "study_world",
    "simulate",
    "Truth",
    "true_kpi",
    "true_curve",
    "true_roi_at_mean",
    "true_marginal_roi",
    "quarter_periods",
    "seasonal_intensity",
    "true_roi_at_mean_channel",
    "with_noise",
    "control_world",
    "true_lift",
    "lift_tests",
]

#: Saturation families, each scaled so that f(k) = 1/2. "hill" (s ≤ 1, concave), "logistic"
#: (PyMC-Marketing's (1 − e^{−λe})/(1 + e^{−λe}) = tanh(λe/2)), "exponential" (1 − 2^{−e/k}) and
#: "scurve" (Weibull CDF 1 − exp(−ln2·(e/k)^s) with s > 1: S-shaped, not concave).
SATURATIONS = ("hill", "logistic", "exponential", "scurve")

_ATANH_HALF = math.atanh(0.5)  # tanh(c) = 1/2
_LN2 = math.log(2.0)
#: Periods per year and per 13-week quarter, by frequency.
_PER_YEAR = {"daily": 365.25, "weekly": 365.25 / 7, "monthly": 12.0}
_QUARTER = {"daily": 91, "weekly": 13, "monthly": 3}
_PANDAS_FREQ = {"daily": "D", "weekly": "W-MON", "monthly": "MS"}
_PERIOD_DAYS = {"daily": 1, "weekly": 7, "monthly": 31}


def quarter_periods(frequency: str) -> int:
    """Periods in a 13-week quarter: 91 days, 13 weeks or 3 months."""
    return _QUARTER[frequency]


# --------------------------------------------------------------------------------------------
# Saturation families and their planning curves


def saturation(family: str, e, k: float, s: float = 1.0) -> np.ndarray:
    """The family's saturation of adstocked spend ``e`` (≥ 0), in [0, 1), with f(k) = 1/2."""
    e = np.maximum(np.asarray(e, dtype=float), 0.0)
    if family == "hill":
        return HillCurve(beta=1.0, k=k, s=s).response(e)
    if family == "logistic":
        return np.tanh(_ATANH_HALF * e / k)
    if family == "exponential":
        return -np.expm1(-_LN2 * e / k)
    if family == "scurve":
        return -np.expm1(-_LN2 * np.power(e / k, s))
    raise ValueError(f"unknown saturation family {family!r}; one of {', '.join(SATURATIONS)}")


@dataclass(frozen=True)
class TanhCurve(ResponseCurve):
    """``beta · tanh(x / scale)``: the logistic saturation (concave, saturating at ``beta``)."""

    beta: float
    scale: float
    kind = "tanh"

    def response(self, x) -> np.ndarray:
        return self.beta * np.tanh(np.maximum(np.asarray(x, dtype=float), 0.0) / self.scale)

    def marginal(self, x) -> np.ndarray:
        t = np.tanh(np.maximum(np.asarray(x, dtype=float), 0.0) / self.scale)
        return self.beta / self.scale * (1.0 - t * t)

    @property
    def is_concave(self) -> bool:
        return True

    def envelope(self) -> ResponseCurve:
        return self

    def scaled(self, factor: float) -> "TanhCurve":
        return TanhCurve(beta=self.beta * factor, scale=self.scale)

    def to_dict(self) -> dict:
        return _tabulated(self, 4.0 * self.scale)


@dataclass(frozen=True)
class WeibullCurve(ResponseCurve):
    """``beta · (1 − exp(−ln2 · (x/k)^s))`` with s > 1: an S-curve (Weibull CDF), half at ``k``."""

    beta: float
    k: float
    s: float
    kind = "weibull"

    def _u(self, x) -> np.ndarray:
        return _LN2 * np.power(np.maximum(np.asarray(x, dtype=float), 0.0) / self.k, self.s)

    def response(self, x) -> np.ndarray:
        return -self.beta * np.expm1(-self._u(x))

    def marginal(self, x) -> np.ndarray:
        x = np.maximum(np.asarray(x, dtype=float), 0.0)
        u = self._u(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = self.beta * self.s * u / np.where(x > 0, x, 1.0) * np.exp(-u)
        return np.where(x > 0, out, 0.0 if self.s > 1 else (self.beta * _LN2 / self.k if self.s == 1 else math.inf))

    @property
    def is_concave(self) -> bool:
        return self.s <= 1.0

    @property
    def concave_from(self) -> float:
        """The inflection: u = ln2·(x/k)^s = (s−1)/s."""
        if self.s <= 1.0:
            return 0.0
        return self.k * ((self.s - 1.0) / (self.s * _LN2)) ** (1.0 / self.s)

    @property
    def tangent_point(self) -> float:
        """Where the ray from the origin touches the curve: 1 − e^{−u} = s·u·e^{−u}."""
        if self.s <= 1.0:
            return 0.0
        u = brentq(lambda u: -math.expm1(-u) - self.s * u * math.exp(-u), 1e-9 + (self.s - 1) / self.s, 50.0)
        return self.k * (u / _LN2) ** (1.0 / self.s)

    def envelope(self) -> ResponseCurve:
        if self.is_concave:
            return self
        xt = self.tangent_point
        return LinearThenCurve(base=self, knee=xt, slope=float(self.response(xt)) / xt)

    def scaled(self, factor: float) -> "WeibullCurve":
        return WeibullCurve(beta=self.beta * factor, k=self.k, s=self.s)

    def to_dict(self) -> dict:
        return _tabulated(self, 4.0 * self.k)


def _tabulated(curve: ResponseCurve, upto: float, n: int = 200) -> dict:
    """A ``points`` table of the curve (the families here are not among the file formats)."""
    xs = np.linspace(0.0, upto, n + 1)
    return {"kind": "points", "points": [[float(x), float(y)] for x, y in zip(xs, curve.response(xs))]}


def _family_curve(family: str, beta: float, k: float, s: float) -> ResponseCurve:
    """``beta · f(x; k, s)`` as a curve object."""
    if family == "hill":
        return HillCurve(beta=beta, k=k, s=s)
    if family == "logistic":
        return TanhCurve(beta=beta, scale=k / _ATANH_HALF)
    if family == "exponential":
        return ExponentialCurve(beta=beta, k=k / _LN2)
    if family == "scurve":
        return WeibullCurve(beta=beta, k=k, s=s)
    raise ValueError(f"unknown saturation family {family!r}")


# --------------------------------------------------------------------------------------------
# The world


@dataclass(frozen=True)
class SimChannel:
    """One channel's truth and how it was spent.

    ``beta`` is the saturation return per period, ``k`` the adstocked spend per period at half
    saturation, ``s`` the shape (Hill: ≤ 1; S-curve: > 1; unused by logistic and exponential),
    ``alpha`` the carryover. ``efficiency`` is the amplitude of its seasonal efficiency (0 = flat).
    Spend: ``mean_spend`` per period; ``pattern`` "flighted" (on in a share ``on_share`` of
    periods, log-normal level with coefficient of variation ``cv``, ``campaign_boost`` × in
    campaign periods) or "always_on" (log-normal around the world's shared spend factor, ``cv``).
    """

    name: str
    group: str
    family: str
    alpha: float
    k: float
    s: float
    beta: float
    mean_spend: float
    pattern: str = "flighted"
    on_share: float = 0.75
    cv: float = 0.5
    campaign_boost: float = 1.3
    efficiency: float = 0.3


@dataclass(frozen=True)
class SimWorld:
    """Everything that defines a simulated history (see the module docstring for the process)."""

    channels: tuple[SimChannel, ...]
    frequency: str = "weekly"
    periods: int = 156
    start: str = "2022-01-03"
    level: float = 4_000_000.0  # baseline per period at the start
    growth: float = 0.08  # per year, relative to level, before the break
    break_at: float = 0.6  # share of the history where the trend breaks
    break_level: float = -0.08  # relative level shift at the break
    break_growth: float = 0.05  # change of the yearly growth at the break
    yearly: float = 0.06  # amplitude of the yearly wave, relative to level
    phase: float = 1.2
    peaks: dict = field(default_factory=lambda: {"618": 0.25, "double11": 0.40, "spring_festival": -0.20})
    noise: float = 0.03  # sd relative to the mean KPI
    spend_corr: float = 0.5  # correlation of always-on log spend between channels
    season_corr: float = 0.4  # correlation of always-on log spend with the season
    spend_ar: float = 0.7  # persistence of the shared and own spend factors
    spend_growth: float = 0.05  # per year

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.channels]

    def channel(self, name: str) -> SimChannel:
        for c in self.channels:
            if c.name == name:
                return c
        raise KeyError(f"unknown channel {name!r}; the world has {', '.join(self.names)}")


@dataclass
class Simulation:
    """A simulated history and the truth behind it.

    ``frame`` is the wide history (``date, revenue, <channel>…``, whole CNY), ready for
    :func:`models.history.history_from_frame`. The arrays cover the reported periods only:
    ``spend`` per channel, ``contribution`` per channel (with carryover from the unseen spend before
    the file), ``efficiency`` per channel, ``baseline`` and ``season`` (the standardised seasonal
    intensity that always-on spend follows). ``carry_in``: each channel's adstocked spend in the
    period before the file (what the unseen spend left), from which :func:`true_kpi` continues.
    """

    world: SimWorld
    seed: int
    frame: pd.DataFrame
    dates: pd.DatetimeIndex
    spend: dict[str, np.ndarray]
    contribution: dict[str, np.ndarray]
    efficiency: dict[str, np.ndarray]
    baseline: np.ndarray
    season: np.ndarray
    carry_in: dict[str, float] = field(default_factory=dict)

    @property
    def mean_spend(self) -> dict[str, float]:
        """Mean spend per period in the history, per channel."""
        return {c: float(v.mean()) for c, v in self.spend.items()}

    def spend_shares(self) -> dict[str, float]:
        """Each channel's share of the history's spend (the historical split)."""
        total = sum(float(v.sum()) for v in self.spend.values())
        return {c: float(v.sum()) / total for c, v in self.spend.items()}


# --------------------------------------------------------------------------------------------
# Ground truth


def true_curve(world: SimWorld, channel: str, periods: int, efficiency: float = 1.0) -> ResponseCurve:
    """True return of spend X spread evenly over ``periods`` periods, in the steady state.

    ``periods · efficiency · β · f(X / (periods · (1 − α)))``; ``efficiency`` 1 is the history's
    average. The same definition as ``MediaMixModel.planning_curve`` (infinite adstock).
    """
    ch = world.channel(channel)
    if periods < 1:
        raise ValueError(f"periods must be ≥ 1, got {periods}")
    return _family_curve(ch.family, periods * efficiency * ch.beta, ch.k * periods * (1.0 - ch.alpha), ch.s)


def true_roi_at_mean(world: SimWorld, channel: str, mean_spend: float | None = None) -> float:
    """Steady-state ROI at the mean spend per period: ``β f(x̄/(1−α)) / x̄``.

    ``mean_spend`` defaults to the channel's planned mean (``SimChannel.mean_spend``); pass the
    history's realised mean (``Simulation.mean_spend``) to score a fit of that history.
    """
    x = world.channel(channel).mean_spend if mean_spend is None else float(mean_spend)
    return float(true_curve(world, channel, 1).response(x)) / x


def true_marginal_roi(world: SimWorld, channel: str, spend: float, periods: int) -> float:
    """Slope of the true planning curve over ``periods`` periods at horizon spend ``spend``."""
    return float(true_curve(world, channel, periods).marginal(spend))


# --------------------------------------------------------------------------------------------
# Calendar




def _daily_intensity(days: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """Per day: 618 and Double 11 presale ramps (0 → 1 on the day), Spring Festival (1 around it).

    618 ramps up from 1 June, Double 11 from 20 October (the presale seasons), each with a short
    tail after the day; Spring Festival covers a week before to ten days after New Year's Day,
    when logistics stop.
    """
    years = range(days[0].year - 1, days[-1].year + 2)
    out = {k: np.zeros(len(days)) for k in ("618", "double11", "spring_festival")}
    t = days.values.astype("datetime64[D]").astype(np.int64)

    def ramp(name, peak: pd.Timestamp, lead: int, tail: int):
        p = np.datetime64(peak.date(), "D").astype(np.int64)
        up = (t >= p - lead) & (t <= p)
        out[name][up] = np.maximum(out[name][up], 1.0 - (p - t[up]) / lead * 0.8)
        down = (t > p) & (t <= p + tail)
        out[name][down] = np.maximum(out[name][down], 0.4 * (1 - (t[down] - p) / (tail + 1)))

    for y in years:
        ramp("618", pd.Timestamp(y, 6, 18), 17, 2)
        ramp("double11", pd.Timestamp(y, 11, 11), 22, 3)
    for d in spring_festivals(years):
        p = np.datetime64(d.date(), "D").astype(np.int64)
        out["spring_festival"][(t >= p - 7) & (t <= p + 10)] = 1.0
    return out


def seasonal_intensity(dates: pd.DatetimeIndex, frequency: str) -> dict[str, np.ndarray]:
    """The calendar per period (labelled by its start): mean daily intensity of each event over
    the period's days, and ``yearly``, a sine wave of the day of the year (phase 0)."""
    step = _PERIOD_DAYS[frequency]
    if frequency == "monthly":
        ends = (dates + pd.offsets.MonthBegin(1))
    else:
        ends = dates + pd.Timedelta(days=step)
    days = pd.date_range(dates[0], ends[-1] - pd.Timedelta(days=1), freq="D")
    daily = _daily_intensity(days)
    idx = np.searchsorted(days.values, dates.values)
    idx_end = np.searchsorted(days.values, ends.values)
    out = {}
    for name, v in daily.items():
        c = np.concatenate([[0.0], np.cumsum(v)])
        out[name] = (c[idx_end] - c[idx]) / np.maximum(idx_end - idx, 1)
    out["yearly"] = np.sin(2 * np.pi * dates.day_of_year.to_numpy() / 365.25)
    return out


# --------------------------------------------------------------------------------------------
# Simulation


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """Stationary AR(1) with unit variance."""
    e = rng.normal(size=n)
    out = np.empty(n)
    out[0] = e[0]
    scale = math.sqrt(1 - phi * phi)
    for t in range(1, n):
        out[t] = phi * out[t - 1] + scale * e[t]
    return out


def _standardise(v: np.ndarray) -> np.ndarray:
    sd = float(v.std())
    return (v - v.mean()) / sd if sd > 0 else v * 0.0


def _flighting(rng: np.random.Generator, n: int, on_share: float) -> np.ndarray:
    on = np.ones(n, dtype=bool)
    if on_share >= 1.0:
        return on
    t, state = 0, rng.random() < on_share
    while t < n:
        mean_len = 4.0 * (on_share if state else 1 - on_share) / min(on_share, 1 - on_share)
        length = max(1, int(rng.geometric(1.0 / max(mean_len, 1.0))))
        on[t: t + length] = state
        t += length
        state = not state
    return on


def simulate(world: SimWorld, seed: int) -> Simulation:
    """Draw a history from ``world``.

    Parameters
    ----------
    world : SimWorld
        The truth.
    seed : int
        Seed of every draw (spend, noise): the same seed gives the same history.

    Returns
    -------
    Simulation
    """
    rng = np.random.default_rng(seed)
    freq = world.frequency
    per_year = _PER_YEAR[freq]
    burn = int(round(per_year))  # a year of spend before the file: the first periods carry over
    n = world.periods + burn
    start = pd.Timestamp(world.start)
    all_dates = pd.date_range(start, periods=world.periods, freq=_PANDAS_FREQ[freq])
    before = pd.date_range(end=all_dates[0], periods=burn + 1, freq=_PANDAS_FREQ[freq])[:-1]
    full = before.append(all_dates)
    cal = seasonal_intensity(full, freq)
    campaign = np.maximum(cal["618"], cal["double11"])
    years = (np.arange(n) - burn) / per_year

    # The season that always-on spend follows: the campaigns, the festival lull, the yearly wave.
    season = _standardise(cal["618"] + cal["double11"] - 0.5 * cal["spring_festival"]
                          + 0.3 * np.sin(2 * np.pi * full.day_of_year.to_numpy() / 365.25 + world.phase))
    rho = world.spend_corr
    a = min(world.season_corr / math.sqrt(rho), 1.0) if rho > 0 else 0.0
    shared = a * season + math.sqrt(1 - a * a) * _ar1(rng, n, world.spend_ar)

    spend, contribution, efficiency, carry_in = {}, {}, {}, {}
    for ch in world.channels:
        if ch.pattern == "always_on":
            own = _ar1(rng, n, world.spend_ar)
            u = math.sqrt(rho) * shared + math.sqrt(1 - rho) * own
            sigma = math.sqrt(math.log(1 + ch.cv**2))
            x = np.exp(sigma * u - sigma**2 / 2)
        elif ch.pattern == "flighted":
            on = _flighting(rng, n, ch.on_share)
            sigma = math.sqrt(math.log(1 + ch.cv**2))
            x = rng.lognormal(-sigma**2 / 2, sigma, n) * (1 + (ch.campaign_boost - 1) * campaign) * on
        else:
            raise ValueError(f"{ch.name}: pattern must be 'flighted' or 'always_on', got {ch.pattern!r}")
        x = x * (1 + world.spend_growth * years)
        x = np.round(x * ch.mean_spend / max(x[burn:].mean(), 1e-12))
        eta = _raw_efficiency(ch, cal, full)
        eta = eta / eta[burn:].mean()  # 1 on average over the reported periods
        e = np.empty(n)
        acc = 0.0
        for t in range(n):
            acc = x[t] + ch.alpha * acc
            e[t] = acc
        spend[ch.name] = x[burn:]
        carry_in[ch.name] = float(e[burn - 1])
        efficiency[ch.name] = eta[burn:]
        contribution[ch.name] = (eta * ch.beta * saturation(ch.family, e, ch.k, ch.s))[burn:]

    base = _baseline(world, all_dates, {k: v[burn:] for k, v in cal.items()})
    media = sum(contribution.values())
    mean_kpi = float(np.mean(base + media))
    kpi = base + media + rng.normal(0.0, world.noise * mean_kpi, world.periods)
    frame = pd.DataFrame({"date": all_dates.strftime("%Y-%m-%d"), "revenue": np.round(kpi).astype(np.int64)})
    for c in world.names:
        frame[c] = spend[c].astype(np.int64)
    return Simulation(world=world, seed=seed, frame=frame, dates=all_dates, spend=spend, contribution=contribution,
                      efficiency=efficiency, baseline=base, season=season[burn:], carry_in=carry_in)


def _raw_efficiency(ch: SimChannel, cal: dict[str, np.ndarray], dates: pd.DatetimeIndex) -> np.ndarray:
    """Efficiency before its normalisation: up in the presale seasons, down over the festival, a
    gentle yearly wave (``cal`` is :func:`seasonal_intensity` of ``dates``)."""
    eta = 1 + ch.efficiency * (cal["618"] + 1.2 * cal["double11"] - 0.8 * cal["spring_festival"]
                               + 0.25 * np.sin(2 * np.pi * dates.day_of_year.to_numpy() / 365.25 + 2.0))
    return np.maximum(eta, 0.05)


def _baseline(world: SimWorld, dates: pd.DatetimeIndex, cal: dict[str, np.ndarray], first: int = 0) -> np.ndarray:
    """Trend with a break, a yearly wave and the campaign calendar, all relative to ``level``.

    ``dates`` are periods ``first, first + 1, …`` of the history (0 its first period; past its
    end the trend goes on as it was after the break, which stays where the history put it).
    """
    n = world.periods
    per_year = _PER_YEAR[world.frequency]
    years = (first + np.arange(len(dates))) / per_year
    tb = min(int(world.break_at * n), n - 1) / per_year
    after = years >= tb
    trend = 1 + world.growth * years + after * (world.break_level + world.break_growth * (years - tb))
    wave = world.yearly * np.sin(2 * np.pi * dates.day_of_year.to_numpy() / 365.25 + world.phase)
    events = sum(world.peaks.get(name, 0.0) * cal[name] for name in ("618", "double11", "spring_festival"))
    return world.level * (trend + wave + events)


# --------------------------------------------------------------------------------------------
# The truth after (or within) a history


@dataclass(frozen=True)
class Truth:
    """What a spend plan truly brings in the periods it covers (see :func:`true_kpi`).

    ``dates`` the periods' starts; ``baseline``, ``contribution`` (per channel, with its seasonal
    efficiency and the carryover of everything spent before) and ``expected`` = baseline + Σ
    contribution, the expected KPI; ``noise_sd`` the sd of the KPI's noise around it (the world's
    ``noise`` × the history's mean expected KPI, as in :func:`simulate`).
    """

    dates: pd.DatetimeIndex
    baseline: np.ndarray
    contribution: dict[str, np.ndarray]
    efficiency: dict[str, np.ndarray]
    expected: np.ndarray
    noise_sd: float

    def outcomes(self, draws: int, seed: int = 0) -> np.ndarray:
        """``draws`` noisy KPI paths (draws × periods): the expected KPI plus independent noise."""
        rng = np.random.default_rng(seed)
        return self.expected[None, :] + rng.normal(0.0, self.noise_sd, (int(draws), self.expected.size))


def true_kpi(sim: Simulation, plan: dict[str, np.ndarray], start: int | None = None) -> Truth:
    """The true expected KPI of a spend plan, continuing the process of :func:`simulate`.

    Parameters
    ----------
    sim : Simulation
        The history the plan follows.
    plan : dict
        ``{channel: spend per period}`` (all the same length T ≥ 1); a channel left out spends
        nothing.
    start : int, optional
        The period the plan starts in, counted from the history's first period (0); the default,
        ``world.periods``, is the period after the history. Spend before ``start`` is the
        history's (and before the file, the unseen spend :func:`simulate` drew).

    Returns
    -------
    Truth
        For the T periods from ``start``: the baseline (its trend going on as after the break,
        its calendar at the periods' dates), each channel's return with its seasonal efficiency η
        (normalised by the same constant as in the history, so η means what it meant there) and
        adstock carried over from the spend before, and their sum. With ``start=0`` and the
        history's own spend it gives ``sim.baseline + Σ sim.contribution``.

    Raises
    ------
    ValueError
        ``start`` outside the history, an unknown channel, or plans of different or zero length.
    """
    world = sim.world
    n = world.periods
    start = n if start is None else int(start)
    if not 0 <= start <= n:
        raise ValueError(f"start must be 0–{n} (a period of the history or the one after it), got {start}")
    unknown = sorted(set(plan) - set(world.names))
    if unknown:
        raise ValueError(f"unknown channel(s) {', '.join(unknown)}; the world has {', '.join(world.names)}")
    lengths = {np.asarray(v).size for v in plan.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"every channel's plan must have the same number of periods (≥ 1), got {sorted(lengths)}")
    T = lengths.pop()
    freq = world.frequency
    burn = int(round(_PER_YEAR[freq]))
    # The calendar over the same span simulate() used, extended: the history's part is the same.
    dates = pd.date_range(pd.Timestamp(world.start), periods=max(n, start + T), freq=_PANDAS_FREQ[freq])
    before = pd.date_range(end=dates[0], periods=burn + 1, freq=_PANDAS_FREQ[freq])[:-1]
    full = before.append(dates)
    cal = seasonal_intensity(full, freq)
    rows = slice(burn + start, burn + start + T)
    contribution, efficiency = {}, {}
    for ch in world.channels:
        raw = _raw_efficiency(ch, cal, full)
        eta = raw[rows] / raw[burn:burn + n].mean()
        x = np.asarray(plan.get(ch.name, np.zeros(T)), dtype=float)
        acc = sim.carry_in[ch.name]
        for value in sim.spend[ch.name][:start]:
            acc = value + ch.alpha * acc
        e = np.empty(T)
        for t in range(T):
            acc = x[t] + ch.alpha * acc
            e[t] = acc
        efficiency[ch.name] = eta
        contribution[ch.name] = eta * ch.beta * saturation(ch.family, e, ch.k, ch.s)
    base = _baseline(world, full[rows], {k: v[rows] for k, v in cal.items()}, first=start)
    expected = base + sum(contribution.values())
    mean_kpi = float(np.mean(sim.baseline + sum(sim.contribution.values())))
    return Truth(dates=full[rows], baseline=base, contribution=contribution, efficiency=efficiency,
                 expected=expected, noise_sd=world.noise * mean_kpi)


# --------------------------------------------------------------------------------------------
# Random worlds and the study's design

_CHANNEL_NAMES = [
    ("douyin", "content"), ("xiaohongshu", "content"), ("bilibili", "content"), ("wechat_channels", "content"),
    ("kuaishou", "content"), ("tmall_search", "performance"), ("jd_search", "performance"),
    ("aigc_tools", "tools"), ("scrm", "tools"), ("wecom_community", "private_domain"),
    ("mini_program", "private_domain"), ("popup_stores", "offline"),
]


def random_world(seed: int, *, n_channels: int | None = None, frequency: str = "weekly", periods: int | None = None,
                 regime: str | None = None, noise: float | None = None, scurve: bool = True,
                 small_channels: int | None = None) -> SimWorld:
    """A world drawn from the ranges of issue 9 §1, seeded.

    Parameters
    ----------
    seed : int
        Seed of every draw.
    n_channels : int, optional
        4–12 (drawn when not given).
    frequency : {"weekly", "daily", "monthly"}
    periods : int, optional
        Default: 104–156 weeks, 730 days or 48 months.
    regime : {"flighted", "always_on", "mixed"}, optional
        How spend moves (drawn when not given). "mixed": about half the channels always-on.
    noise : float, optional
        Noise sd relative to the mean KPI (drawn from 2–10% when not given).
    scurve : bool
        Give one channel (the largest offline/popup one, else a random one) an S-curve.
    small_channels : int, optional
        Channels with ≤ 3% of the spend (1–2 drawn when not given; 0 allowed).

    Returns
    -------
    SimWorld
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 9_1]))
    C = int(n_channels if n_channels is not None else rng.integers(4, 13))
    if not 2 <= C <= len(_CHANNEL_NAMES):
        raise ValueError(f"n_channels must be 2–{len(_CHANNEL_NAMES)}, got {C}")
    if periods is None:
        periods = {"weekly": int(rng.integers(104, 157)), "daily": 730, "monthly": 48}[frequency]
    regime = regime or str(rng.choice(["flighted", "always_on", "mixed"]))
    noise = float(noise if noise is not None else rng.uniform(0.02, 0.10))
    n_small = int(small_channels if small_channels is not None else rng.integers(1, 3))
    n_small = min(n_small, C - 2)

    picks = sorted(rng.choice(len(_CHANNEL_NAMES), size=C, replace=False))
    names = [_CHANNEL_NAMES[i] for i in picks]
    # Spend shares: Dirichlet for the large channels, 1–3% for the small ones.
    small = set(rng.choice(C, size=n_small, replace=False).tolist()) if n_small else set()
    small_share = {i: float(rng.uniform(0.01, 0.03)) for i in small}
    rest = 1.0 - sum(small_share.values())
    big = [i for i in range(C) if i not in small]
    w = rng.dirichlet(np.full(len(big), 2.0))
    w = np.maximum(w, 0.04)
    w = w / w.sum() * rest
    shares = np.zeros(C)
    for i, s in small_share.items():
        shares[i] = s
    for i, s in zip(big, w):
        shares[i] = s
    per_period = {"weekly": 800_000.0, "daily": 800_000.0 / 7, "monthly": 800_000.0 * 52 / 12}[frequency]
    per_period *= float(rng.uniform(0.5, 2.0))

    families = list(rng.choice(["hill", "logistic", "exponential"], size=C))
    if scurve:
        offline = [i for i, (_, g) in enumerate(names) if g == "offline" and i not in small]
        j = offline[0] if offline else int(rng.choice(big))
        families[j] = "scurve"
    if regime == "always_on":
        patterns = ["always_on"] * C
    elif regime == "flighted":
        patterns = ["flighted"] * C
    elif regime == "mixed":
        patterns = [str(p) for p in rng.choice(["always_on", "flighted"], size=C)]
        patterns[0], patterns[-1] = "always_on", "flighted"
    else:
        raise ValueError(f"regime must be flighted, always_on or mixed, got {regime!r}")

    channels = []
    for i, ((name, group), fam) in enumerate(zip(names, families)):
        alpha = float(rng.uniform(0.1, 0.7))  # per period, whatever the frequency
        mean = float(shares[i] * per_period)
        # Half saturation relative to the steady-state mean adstock: around the spend, well
        # above it (little saturation) or below it (strongly saturated), as real channels are.
        kappa = float(np.exp(rng.uniform(math.log(0.4), math.log(3.0))))
        s = float(rng.uniform(0.5, 1.0)) if fam == "hill" else (float(rng.uniform(1.6, 2.6)) if fam == "scurve" else 1.0)
        if fam == "scurve":
            kappa = float(rng.uniform(0.6, 1.2))  # funded near its knee, as an offline channel that works
        k = kappa * mean / (1 - alpha)
        roi = float(np.exp(rng.normal(math.log(1.6), 0.6)))  # steady-state ROI at mean spend
        f = float(saturation(fam, mean / (1 - alpha), k, s))
        beta = roi * mean / max(f, 1e-12)
        pattern = patterns[i]
        channels.append(SimChannel(
            name=name, group=group, family=fam, alpha=alpha, k=k, s=s, beta=beta, mean_spend=mean,
            pattern=pattern, on_share=float(rng.uniform(0.55, 0.9)),
            cv=float(rng.uniform(0.35, 0.6)) if pattern == "flighted" else float(rng.uniform(0.25, 0.5)),
            campaign_boost=float(rng.uniform(1.0, 1.8)), efficiency=float(rng.uniform(0.1, 0.5)),
        ))
    rho = float(rng.uniform(0.3, 0.8))
    season_corr = float(rng.uniform(0.3, min(0.8, math.sqrt(rho))))
    media_mean = sum(c.mean_spend * true_roi_at_mean_channel(c) for c in channels)
    media_share = float(rng.uniform(0.15, 0.35))  # media's share of the KPI
    level = media_mean * (1 - media_share) / media_share
    start = pd.Timestamp(2021, 1, 4) + pd.Timedelta(weeks=int(rng.integers(0, 52)))
    if frequency == "monthly":
        start = start.replace(day=1)
    return SimWorld(
        channels=tuple(channels), frequency=frequency, periods=int(periods), start=start.strftime("%Y-%m-%d"),
        level=float(level), growth=float(rng.uniform(0.0, 0.15)), break_at=float(rng.uniform(0.4, 0.8)),
        break_level=float(rng.choice([-1, 1]) * rng.uniform(0.04, 0.12)), break_growth=float(rng.uniform(-0.08, 0.08)),
        yearly=float(rng.uniform(0.03, 0.10)), phase=float(rng.uniform(0, 2 * math.pi)),
        peaks={"618": float(rng.uniform(0.1, 0.3)), "double11": float(rng.uniform(0.2, 0.5)),
               "spring_festival": -float(rng.uniform(0.1, 0.3))},
        noise=noise, spend_corr=rho, season_corr=season_corr, spend_ar=float(rng.uniform(0.5, 0.85)),
        spend_growth=float(rng.uniform(0.0, 0.15)),
    )


def true_roi_at_mean_channel(ch: SimChannel) -> float:
    """Steady-state ROI of one channel at its planned mean spend (see :func:`true_roi_at_mean`)."""
    x = ch.mean_spend
    return float(ch.beta * saturation(ch.family, x / (1 - ch.alpha), ch.k, ch.s)) / x


#: The study's regimes in turn: every third dataset has independent flighting, always-on
#: correlated spend or a mix.
_REGIMES = ("flighted", "always_on", "mixed")


def study_world(index: int, seed: int = 2026) -> SimWorld:
    """Dataset ``index`` of the recovery study (``benchmarks/attribution.py``).

    Regimes cycle flighted → always-on → mixed; channel counts and noise are drawn; dataset 10
    (and every 24th after it) is daily, dataset 11 (and every 24th after) monthly, the rest weekly;
    one channel per world has an S-curve except in every fourth world, so concave-only worlds are
    scored too.
    """
    frequency = {10: "daily", 11: "monthly"}.get(index % 24, "weekly")
    n_channels = None
    if frequency == "daily":
        n_channels = 6  # keeps the daily fit affordable
    elif frequency == "monthly":
        n_channels = 5  # 48 months cannot carry 12 channels' curves
    return random_world(seed * 1000 + index, n_channels=n_channels, frequency=frequency,
                        regime=_REGIMES[index % 3], scurve=index % 4 != 3)


def with_noise(world: SimWorld, noise: float) -> SimWorld:
    """The same world with another noise level (0 for exact tests)."""
    return replace(world, noise=float(noise))


def control_world(world: SimWorld) -> SimWorld:
    """The same world in the model's own form: a check on the study, not a study case.

    Every channel becomes a Hill curve with s = 0.8 on the same α and k, its β set so that its
    steady-state ROI at mean spend is unchanged; spend is flighted independently; efficiency is
    flat; the trend does not break; noise is 0.5% of the KPI. The baseline keeps its calendar.
    A fitter that cannot recover this world has a problem the hard cases do not explain.
    """
    channels = []
    for ch in world.channels:
        f = float(saturation("hill", ch.mean_spend / (1 - ch.alpha), ch.k, 0.8))
        channels.append(replace(ch, family="hill", s=0.8, efficiency=0.0, pattern="flighted",
                                beta=true_roi_at_mean_channel(ch) * ch.mean_spend / f))
    return replace(world, channels=tuple(channels), noise=0.005, break_level=0.0, break_growth=0.0)


# --------------------------------------------------------------------------------------------
# Lift tests on a simulated history


def true_lift(sim: Simulation, channel: str, start: int, stop: int, share: float = 1.0) -> float:
    """What ``share`` of the channel's spend in periods ``start``…``stop − 1`` truly earned, carryover included.

    The return with the history's spend minus the return with that share of those periods'
    spend taken out (all of it: the window dark), summed from ``start`` to the end of the
    history, at each period's seasonal efficiency: what a holdout test of that window measures.
    The effective spend before the file is taken as the steady state of the mean spend (its
    carryover is gone long before a window in the last year).
    """
    ch = sim.world.channel(channel)
    x = sim.spend[channel].astype(float)
    dark = x.copy()
    dark[start:stop] *= 1.0 - share
    warm = float(x.mean()) / (1.0 - ch.alpha) * ch.alpha

    def effective(v: np.ndarray) -> np.ndarray:
        out, acc = np.empty(v.size), warm
        for t, value in enumerate(v):
            acc = value + ch.alpha * acc
            out[t] = acc
        return out

    on = saturation(ch.family, effective(x), ch.k, ch.s)
    off = saturation(ch.family, effective(dark), ch.k, ch.s)
    return float(np.sum((sim.efficiency[channel] * ch.beta * (on - off))[start:]))


def lift_tests(sim: Simulation, *, channels: list[str] | None = None, relative_se: float = 0.15,
               seed: int = 0, share: float = 1.0) -> list[dict]:
    """One simulated lift test per channel, as a ``[[calibration]]`` list would give them.

    Each test covers the 4 weeks (28 days, 2 months) of the last year whose spend is nearest the
    channel's usual spend (tests are run at business-as-usual levels), and reports the true lift
    (:func:`true_lift`) plus measurement noise with a standard error of ``relative_se`` × the
    truth: ``{channel, start, end, lift, se}`` with ISO dates. ``share`` < 1 makes each a partial
    holdback of that share of the window's spend (``tested_spend`` in the record): the return at
    the margin of usual spend rather than of all of it. Its standard error stays that of the
    switch-off of the same window (the measurement's noise is the KPI's, not the effect's), so a
    partial test is the less precise one relative to what it measures.
    """
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must lie in (0, 1], got {share}")
    freq = sim.world.frequency
    width = {"daily": 28, "weekly": 4, "monthly": 2}[freq]
    last_year = int(round(_PER_YEAR[freq]))
    rng = np.random.default_rng(seed)
    out = []
    for c in channels or sim.world.names:
        x = sim.spend[c].astype(float)
        n = x.size
        first = max(0, n - last_year)
        sums = np.array([x[i:i + width].sum() for i in range(first, n - width + 1)])
        start = first + int(np.argmin(np.abs(sums - width * x.mean())))
        truth = true_lift(sim, c, start, start + width, share)
        whole = truth if share == 1.0 else true_lift(sim, c, start, start + width)
        se = max(relative_se * abs(whole), 1e-6 * float(np.mean(sim.baseline)))
        test = {"channel": c, "start": sim.dates[start].date().isoformat(),
                "end": sim.dates[start + width - 1].date().isoformat(),
                "lift": float(truth + rng.normal(0.0, se)), "se": float(se)}
        if share < 1.0 and x[start:start + width].sum() > 0:
            test["tested_spend"] = float(share * x[start:start + width].sum())
        out.append(test)
    return out
