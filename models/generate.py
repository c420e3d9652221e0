"""Synthetic spend/return history from known response curves (ground truth for tests and demos).

The data-generating process is the model's own form, so a correct fitter must recover it:

    revenue_t = baseline_t + Σ_c β_c · hill(e_{c,t}; k_c, s_c) + noise_t,
    e_{c,t}   = x_{c,t} + α_c · e_{c,t−1}            (geometric adstock),
    baseline_t = level · (1 + growth · years_t) + amplitude · sin(2π · day_of_year / 365.25 + phase)
                 + campaign peaks (618, Double 11, Spring Festival, member day on the 18th),
    noise_t ~ Normal(0, noise · level).

Spend follows each channel's own flighting (weeks on and off, log-normal week-to-week variation,
extra spend in campaign weeks), drawn independently per channel so that channels are
identifiable, as they are when budgets move between channels over three years.

Run ``python -m models.generate --out scenarios/examples/history_weekly.csv`` to rebuild the
bundled example (seed 7).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.curves import HillCurve

__all__ = [
    "TrueChannel",
    "GeneratorParams",
    "bundled_params",
    "alternative_params",
    "generate_history",
    "true_contributions",
    "true_lift",
    "true_roi",
    "true_planning_curve",
    "campaign_weeks",
]

#: Seed of the bundled example file.
BUNDLED_SEED = 7


@dataclass(frozen=True)
class TrueChannel:
    """One channel's true curve (per period) and how it was spent.

    ``beta`` is the saturation return per period (CNY), ``k`` the adstocked spend per period at
    half saturation (CNY), ``s`` the Hill shape, ``alpha`` the carryover. Spend: ``mean_spend``
    per period on average, active in a share ``on_share`` of periods, log-normal variation
    ``cv`` and ``campaign_boost`` × spend in campaign weeks.
    """

    channel: str
    group: str
    alpha: float
    k: float
    s: float
    beta: float
    mean_spend: float
    on_share: float = 1.0
    cv: float = 0.5
    campaign_boost: float = 1.0


@dataclass(frozen=True)
class GeneratorParams:
    """Everything that defines a synthetic history; documented in scenarios/examples/HISTORY.md."""

    channels: tuple[TrueChannel, ...]
    start: str = "2022-01-03"
    periods: int = 156
    freq: str = "W-MON"
    level: float = 4_000_000.0
    growth: float = 0.10  # per year, relative to level
    amplitude: float = 350_000.0  # yearly seasonality, CNY per period
    phase: float = 1.2
    peaks: dict[str, float] = field(
        default_factory=lambda: {"618": 900_000.0, "double11": 1_600_000.0, "spring_festival": 600_000.0,
                                 "member_day": 120_000.0}
    )
    noise: float = 0.006  # sd of the noise relative to level
    spend_growth: float = 0.08  # per year


def bundled_params() -> GeneratorParams:
    """The nine channels of the bundled example (≈ ¥770k per week, ≈ ¥10M per quarter)."""
    ch = [
        # channel, group, alpha, k, s, beta, mean_spend, on_share, cv, campaign_boost
        TrueChannel("douyin", "content", 0.30, 260_000, 0.80, 1_000_000, 150_000, 0.85, 0.50, 1.8),
        TrueChannel("xiaohongshu", "content", 0.50, 180_000, 0.70, 700_000, 70_000, 0.75, 0.55, 1.5),
        TrueChannel("bilibili", "content", 0.60, 160_000, 0.90, 330_000, 40_000, 0.65, 0.60, 1.3),
        TrueChannel("wechat_channels", "content", 0.40, 120_000, 0.75, 460_000, 50_000, 0.70, 0.50, 1.4),
        TrueChannel("aigc_tools", "tools", 0.55, 400_000, 0.85, 620_000, 80_000, 0.60, 0.60, 1.0),
        TrueChannel("scrm", "tools", 0.50, 500_000, 0.95, 680_000, 110_000, 0.65, 0.55, 1.0),
        TrueChannel("wecom_community", "private_domain", 0.50, 150_000, 0.65, 900_000, 85_000, 0.75, 0.50, 1.2),
        TrueChannel("mini_program", "private_domain", 0.30, 90_000, 0.80, 480_000, 70_000, 0.70, 0.50, 1.3),
        TrueChannel("popup_stores", "offline", 0.20, 220_000, 1.00, 640_000, 115_000, 0.50, 0.40, 1.5),
    ]
    return GeneratorParams(channels=tuple(ch))


def alternative_params() -> GeneratorParams:
    """A different world for ground-truth tests: five channels, other shapes, more noise, 130 weeks."""
    ch = [
        TrueChannel("search", "performance", 0.10, 40_000, 1.00, 260_000, 45_000, 0.75, 0.60, 1.6),
        TrueChannel("social", "content", 0.55, 150_000, 0.55, 420_000, 60_000, 0.85, 0.60, 1.3),
        TrueChannel("video", "content", 0.75, 600_000, 0.90, 900_000, 90_000, 0.75, 0.45, 1.2),
        TrueChannel("crm", "private_domain", 0.35, 50_000, 0.70, 260_000, 35_000, 0.75, 0.60, 1.0),
        TrueChannel("events", "offline", 0.00, 120_000, 0.95, 400_000, 50_000, 0.50, 0.35, 1.0),
    ]
    return GeneratorParams(
        channels=tuple(ch), start="2021-06-07", periods=130, level=1_500_000.0, growth=0.15,
        amplitude=200_000.0, phase=-0.4,
        peaks={"618": 300_000.0, "double11": 500_000.0, "spring_festival": -150_000.0, "member_day": 0.0},
        noise=0.01, spend_growth=0.0,
    )


def _spring_festival_days(years) -> list[pd.Timestamp]:
    import holidays  # a Prophet dependency; works offline

    out = []
    for year in years:
        for day, name in holidays.country_holidays("CN", years=year).items():
            if name.startswith("Chinese New Year"):
                out.append(pd.Timestamp(day))  # every festival day: the peak spans the holiday
    return out


def campaign_weeks(dates: pd.DatetimeIndex, period_days: int = 7) -> dict[str, np.ndarray]:
    """0/1 indicators of the periods (labelled by their start) that contain each campaign day."""
    years = range(dates[0].year - 1, dates[-1].year + 2)
    days = {
        "618": [pd.Timestamp(y, 6, 18) for y in years],
        "double11": [pd.Timestamp(y, 11, 11) for y in years],
        "spring_festival": _spring_festival_days(years),
        "member_day": [pd.Timestamp(y, m, 18) for y in years for m in range(1, 13)],
    }
    starts = dates.values
    out = {}
    for name, ds in days.items():
        flag = np.zeros(len(dates))
        for d in ds:
            i = np.searchsorted(starts, np.datetime64(d), side="right") - 1
            if 0 <= i < len(dates) and (d - dates[i]).days < period_days:
                flag[i] = 1.0
        out[name] = flag
    return out


def _adstock(x: np.ndarray, alpha: float) -> np.ndarray:
    e = np.empty_like(x)
    acc = 0.0
    for t, v in enumerate(x):
        acc = v + alpha * acc
        e[t] = acc
    return e


def _hill(e: np.ndarray, k: float, s: float) -> np.ndarray:
    return np.where(e > 0, 1.0 / (1.0 + np.power(k / np.maximum(e, 1e-300), s)), 0.0)


def _spend_paths(params: GeneratorParams, rng: np.random.Generator, burn_in: int) -> dict[str, np.ndarray]:
    n = params.periods + burn_in
    dates = pd.date_range(params.start, periods=n, freq=params.freq) - pd.Timedelta(weeks=burn_in)
    camp = campaign_weeks(dates)
    is_campaign = np.maximum(camp["618"], camp["double11"])
    years = (np.arange(n) - burn_in) / 52.18
    out = {}
    for ch in params.channels:
        # Flighting: bursts of 2–6 periods on, then off, so spend moves independently per channel.
        on = np.ones(n, dtype=bool)
        if ch.on_share < 1.0:
            t = 0
            state = rng.random() < ch.on_share
            while t < n:
                mean_len = 4.0 * (ch.on_share if state else 1 - ch.on_share) / min(ch.on_share, 1 - ch.on_share)
                length = max(1, int(rng.geometric(1.0 / max(mean_len, 1.0))))
                on[t: t + length] = state
                t += length
                state = not state
        sigma = math.sqrt(math.log(1 + ch.cv**2))
        level = rng.lognormal(-sigma**2 / 2, sigma, n)
        boost = np.where(is_campaign > 0, ch.campaign_boost, 1.0)
        x = ch.mean_spend * level * boost * (1 + params.spend_growth * years) * on
        # Scale so the average over the reported periods hits mean_spend.
        x *= ch.mean_spend / max(x[burn_in:].mean(), 1e-9)
        out[ch.channel] = np.round(x)
    return out


def generate_history(params: GeneratorParams | None = None, seed: int = BUNDLED_SEED) -> pd.DataFrame:
    """A wide-layout history (``date, revenue, <channel spend>...``) from known curves.

    Parameters
    ----------
    params : GeneratorParams, optional
        The true world; :func:`bundled_params` by default.
    seed : int
        Seed of every random draw: the same seed gives the same table.

    Returns
    -------
    pandas.DataFrame
        ``date`` as ISO strings, ``revenue`` and one spend column per channel, rounded to whole CNY.
    """
    params = params or bundled_params()
    rng = np.random.default_rng(seed)
    burn_in = 52  # spend before the file starts, so the first periods already carry over
    spend = _spend_paths(params, rng, burn_in)  # first draws: true_contributions replays them
    dates = pd.date_range(params.start, periods=params.periods, freq=params.freq)
    media = np.zeros(params.periods)
    for ch in params.channels:
        e = _adstock(spend[ch.channel], ch.alpha)[burn_in:]
        media += ch.beta * _hill(e, ch.k, ch.s)
    base = baseline(params, dates)
    noise = rng.normal(0.0, params.noise * params.level, params.periods)
    revenue = np.round(base + media + noise)
    frame = pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "revenue": revenue.astype(np.int64)})
    for ch in params.channels:
        frame[ch.channel] = spend[ch.channel][burn_in:].astype(np.int64)
    return frame


def baseline(params: GeneratorParams, dates: pd.DatetimeIndex) -> np.ndarray:
    """The true non-media revenue per period."""
    years = (dates - dates[0]).days.to_numpy() / 365.25
    doy = dates.day_of_year.to_numpy()
    out = params.level * (1 + params.growth * years) + params.amplitude * np.sin(
        2 * np.pi * doy / 365.25 + params.phase
    )
    for name, flag in campaign_weeks(dates).items():
        out = out + params.peaks.get(name, 0.0) * flag
    return out


def true_contributions(params: GeneratorParams, seed: int = BUNDLED_SEED) -> dict[str, np.ndarray]:
    """Each channel's true contribution per period in ``generate_history(params, seed)``.

    Includes the carryover of the spend before the file starts (which a fitter cannot see).
    """
    rng = np.random.default_rng(seed)
    burn_in = 52
    spend = _spend_paths(params, rng, burn_in)
    return {ch.channel: ch.beta * _hill(_adstock(spend[ch.channel], ch.alpha)[burn_in:], ch.k, ch.s)
            for ch in params.channels}


def true_lift(params: GeneratorParams, channel: str, start: int, stop: int, seed: int = BUNDLED_SEED) -> float:
    """What ``channel``'s spend in periods ``start``…``stop − 1`` of the history truly earned.

    The return with the history's spend minus the return with those periods dark, from ``start``
    to the end of the history (carryover included): what a lift test of that window measures.
    """
    rng = np.random.default_rng(seed)
    burn_in = 52
    spend = _spend_paths(params, rng, burn_in)
    ch = next(c for c in params.channels if c.channel == channel)
    x = spend[channel]
    dark = x.copy()
    dark[burn_in + start: burn_in + stop] = 0.0
    on = _hill(_adstock(x, ch.alpha)[burn_in:], ch.k, ch.s)
    off = _hill(_adstock(dark, ch.alpha)[burn_in:], ch.k, ch.s)
    return float(ch.beta * np.sum((on - off)[start:]))


def true_roi(params: GeneratorParams, seed: int = BUNDLED_SEED) -> dict[str, float]:
    """Historical ROI (contribution / spend) of each channel in ``generate_history(params, seed)``."""
    frame = generate_history(params, seed)
    contrib = true_contributions(params, seed)
    return {c: float(v.sum() / frame[c].sum()) for c, v in contrib.items()}


def true_planning_curve(params: GeneratorParams, channel: str, periods: int) -> HillCurve:
    """The true steady-state return of spend spread evenly over ``periods`` (see models.fit)."""
    ch = next(c for c in params.channels if c.channel == channel)
    return HillCurve(beta=periods * ch.beta, k=ch.k * periods * (1 - ch.alpha), s=ch.s)


def monthly_actuals(planned: dict, params: GeneratorParams | None = None, *, quarter_weeks: int = 13,
                    months: int = 3, drifting: str = "popup_stores", efficiency: float = 0.55,
                    overspend: float = 1.25, noise: float = 0.02, seed: int = BUNDLED_SEED) -> pd.DataFrame:
    """Actuals for the first months of a month-by-month plan, from the true curves.

    ``planned`` is ``{(period, channel): spend}`` (the plan of record's months to generate).
    Each channel spends its plan ± ``noise`` and earns the true monthly curve (the quarter's
    steady-state curve over ``quarter_weeks`` weeks, split evenly over ``months``) at that spend;
    ``drifting`` spends ``overspend`` × its plan and earns only ``efficiency`` × its curve (its
    efficiency fell), so a rebalance has a transfer to suggest and a drift to flag.

    Returns
    -------
    pandas.DataFrame
        Long layout: ``period, channel, spend, return`` (CNY, to the cent).
    """
    params = params or bundled_params()
    rng = np.random.default_rng(seed)
    rows = []
    for (period, channel), x in planned.items():
        curve = true_planning_curve(params, channel, quarter_weeks)
        spend = x * (overspend if channel == drifting else 1.0) * (1 + noise * rng.standard_normal())
        ret = float(curve.beta / months * _hill(np.array([spend]), curve.k / months, curve.s)[0])
        ret *= (efficiency if channel == drifting else 1.0) * (1 + noise * rng.standard_normal())
        rows.append({"period": period, "channel": channel, "spend": round(spend, 2), "return": round(ret, 2)})
    return pd.DataFrame(rows)


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic weekly history from known curves.")
    parser.add_argument("--out", required=True, help="CSV file to write")
    parser.add_argument("--seed", type=int, default=BUNDLED_SEED)
    parser.add_argument("--alternative", action="store_true", help="use the five-channel test world")
    args = parser.parse_args(argv)
    params = alternative_params() if args.alternative else bundled_params()
    generate_history(params, args.seed).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
