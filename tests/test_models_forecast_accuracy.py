"""The forecast against the truth: the simulator's continuation is exact, and ``forecast`` on a
held-out quarter beats the simple anchors with bands that hold the outcomes (issue 9 §5).

The truth after a history is :func:`models.simulate.true_kpi`; the study that scores the forecast
on more histories is ``benchmarks/forecast.py``.
"""

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from models.baseline import ForecastError, fit_prophet_baseline, holiday_table
from models.simulate import SimChannel, SimWorld, quarter_periods, simulate, study_world, true_kpi


def _world(**kw) -> SimWorld:
    channels = (
        SimChannel("a", "content", "hill", alpha=0.5, k=120_000, s=0.7, beta=400_000, mean_spend=60_000),
        SimChannel("b", "content", "logistic", alpha=0.2, k=50_000, s=1.0, beta=150_000, mean_spend=40_000,
                   pattern="always_on", cv=0.4),
        SimChannel("c", "offline", "scurve", alpha=0.65, k=80_000, s=2.2, beta=300_000, mean_spend=70_000),
    )
    return SimWorld(channels=channels, **kw)


# --------------------------------------------------------------------------------------------
# The truth continued past the history


@pytest.mark.parametrize("frequency,periods", [("weekly", 130), ("daily", 400), ("monthly", 40)])
def test_the_truth_of_the_historys_own_spend_is_the_history(frequency, periods):
    sim = simulate(_world(frequency=frequency, periods=periods), seed=7)
    truth = true_kpi(sim, sim.spend, start=0)
    np.testing.assert_array_equal(truth.expected, sim.baseline + sum(sim.contribution.values()))
    np.testing.assert_array_equal(truth.baseline, sim.baseline)
    for c in sim.world.names:
        np.testing.assert_array_equal(truth.contribution[c], sim.contribution[c])
        np.testing.assert_array_equal(truth.efficiency[c], sim.efficiency[c])
    assert (truth.dates == sim.dates).all()
    # From any period on, with the spend before it as history had it.
    k = periods // 2
    later = true_kpi(sim, {c: v[k:] for c, v in sim.spend.items()}, start=k)
    np.testing.assert_array_equal(later.expected, truth.expected[k:])


def test_the_quarter_after_the_history_continues_the_same_process():
    sim = simulate(_world(), seed=3)
    n, P = sim.world.periods, 13
    plan = {c: np.full(P, 1.2 * m) for c, m in sim.mean_spend.items()}
    after = true_kpi(sim, plan)
    assert after.dates[0] == sim.dates[-1] + pd.Timedelta(weeks=1) and len(after.dates) == P
    # One run over history and quarter gives the history exactly and the same quarter: the
    # efficiency keeps the history's normalisation and the adstock carries on from its end.
    both = true_kpi(sim, {c: np.concatenate([sim.spend[c], plan[c]]) for c in sim.world.names}, start=0)
    np.testing.assert_array_equal(both.expected[:n], sim.baseline + sum(sim.contribution.values()))
    np.testing.assert_allclose(both.expected[n:], after.expected, rtol=1e-12)
    assert after.noise_sd == pytest.approx(sim.world.noise * np.mean(sim.baseline + sum(sim.contribution.values())))


def test_the_trend_goes_on_after_the_break_and_adstock_decays_without_spend():
    world = replace(_world(), yearly=0.0, peaks={}, break_at=0.5, break_level=0.1, break_growth=0.2, growth=0.05)
    sim = simulate(world, seed=1)
    n, per_year = world.periods, 365.25 / 7
    dark = true_kpi(sim, {c: np.zeros(5) for c in world.names})
    years = (n + np.arange(5)) / per_year
    tb = int(0.5 * n) / per_year
    np.testing.assert_allclose(dark.baseline, world.level * (1 + 0.05 * years + 0.1 + 0.2 * (years - tb)), rtol=1e-12)
    for ch in world.channels:  # e_t = α e_{t−1} from the history's last adstock
        acc = sim.carry_in[ch.name]
        for x in sim.spend[ch.name]:
            acc = x + ch.alpha * acc
        e = acc * ch.alpha ** np.arange(1, 6)
        from models.simulate import saturation

        np.testing.assert_allclose(dark.contribution[ch.name],
                                   dark.efficiency[ch.name] * ch.beta * saturation(ch.family, e, ch.k, ch.s), rtol=1e-12)


def test_noisy_outcomes_scatter_by_the_worlds_noise():
    sim = simulate(_world(noise=0.05), seed=2)
    truth = true_kpi(sim, {c: np.full(13, m) for c, m in sim.mean_spend.items()})
    paths = truth.outcomes(20_000, seed=0)
    assert paths.shape == (20_000, 13)
    np.testing.assert_allclose(paths.mean(axis=0), truth.expected, rtol=3 * truth.noise_sd / np.sqrt(2e4) / truth.expected.min())
    assert paths.std(axis=0).mean() == pytest.approx(truth.noise_sd, rel=0.02)
    np.testing.assert_array_equal(truth.outcomes(10, seed=0), truth.outcomes(10, seed=0))


def test_simulate_draws_are_unchanged():
    # The recovery study depends on identical histories for a seed (the truth's extra state,
    # carry_in, takes no draws): dataset 0's history as it was drawn before true_kpi existed.
    frame = simulate(study_world(0, 2026), seed=2026 * 1000).frame
    assert frame.shape == (155, 11) and int(frame["revenue"].sum()) == 1_242_628_907
    assert frame.iloc[0].tolist()[1:] == [7375694, 0, 0, 22180, 44384, 24049, 16089, 118767, 76262, 94905]
    assert frame.iloc[-1].tolist()[1:] == [7953905, 14983, 77210, 0, 67070, 0, 0, 0, 40061, 121522]


# --------------------------------------------------------------------------------------------
# The baseline's forecast: horizon holidays and backtested error


def test_the_horizon_gets_its_own_holidays():
    # A weekly series with a strong Double 11 week: forecast the year after, with and without
    # the horizon's holiday table.
    dates = pd.date_range("2021-01-04", periods=156, freq="W-MON")
    table = holiday_table(dates, "weekly")
    d11 = set(table.loc[table["holiday"] == "double11", "ds"])
    y = 1000.0 + 300.0 * np.array([d in d11 for d in dates]) + np.random.default_rng(0).normal(0, 5, 156)
    fit = fit_prophet_baseline(dates, y, "weekly", table)
    ahead = pd.date_range(dates[-1] + pd.Timedelta(weeks=1), periods=52, freq="W-MON")
    future = holiday_table(dates.append(ahead), "weekly")
    with_days = fit.components(ahead, holidays=future[future["ds"].isin(ahead)]).sum(axis=1).to_numpy()
    without = fit.components(ahead).sum(axis=1).to_numpy()
    week = int(np.flatnonzero(ahead == future.loc[future["holiday"] == "double11", "ds"].max())[0])
    assert with_days[week] - without[week] == pytest.approx(300.0, rel=0.1)
    others = np.delete(with_days - without, week)
    assert np.max(np.abs(others)) < 150  # only weeks with other holidays (member days, National Day) move
    # The fitted model's own table is left as it was.
    np.testing.assert_allclose(fit.components(ahead).sum(axis=1).to_numpy(), without)


def test_backtest_error_parts_are_recovered_from_known_errors():
    rng = np.random.default_rng(0)
    shared, own = 0.03, 0.08
    errors = rng.normal(0, shared, (20_000, 1)) + rng.normal(0, own, (20_000, 13))
    e = ForecastError.from_backtest(errors, scale=100.0)
    assert e.level_sd == pytest.approx(shared, rel=0.05) and e.period_sd == pytest.approx(own, rel=0.02)
    paths = e.draws(50_000, np.random.default_rng(1))
    # The horizon total's spread is the backtests' (shared and own combined), not P × a period's.
    assert paths.sum(axis=1).std() == pytest.approx(100 * np.sqrt(13**2 * shared**2 + 13 * own**2), rel=0.02)
    # Without a shared part the estimate does not invent one (floored at zero, never negative).
    iid = ForecastError.from_backtest(rng.normal(0, own, (5, 13)), scale=1.0)
    assert iid.level_sd >= 0.0


# --------------------------------------------------------------------------------------------
# Accuracy on held-out quarters of the study's histories

#: Datasets of the study (seed 2026) the slow test scores: the eight weekly ones of README's
#: forecast study (benchmarks/forecast.py). It scored the first three (one per spend regime),
#: where ours beat the better anchor on one and the mean cleared it by 0.14 points: a change of
#: prior moved that mean 0.3 points and the eight's by 0.1, the eight still beating the anchors.
ACCURACY_DATASETS = tuple(range(8))


@pytest.fixture(scope="module")
def scored():
    from benchmarks.forecast import run_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [run_dataset(i, 2026) for i in ACCURACY_DATASETS]


@pytest.mark.slow
def test_forecast_beats_the_better_anchor(scored):
    """Weekly MAPE at or below the better of seasonal naive and Prophet alone (issue 9 §5): on
    average over the histories, and in at least half of them."""
    ours = np.array([r["mape"]["ours"] for r in scored])
    better = np.array([min(r["mape"]["seasonal_naive"], r["mape"]["prophet_alone"]) for r in scored])
    assert ours.mean() <= better.mean(), (ours, better)
    assert np.sum(ours <= better) * 2 >= len(scored), (ours, better)


@pytest.mark.slow
def test_forecast_bands_hold_the_outcomes(scored):
    tails = {k: np.mean([r["tails"][k] for r in scored]) for k in scored[0]["tails"]}
    for k in ("below_p10", "above_p90"):
        assert 0.02 <= tails[k] <= 0.25, tails
    # The horizon total's band: at least as wide as the noise alone makes it (else no point
    # forecast could be covered), and not the sum of the periods' bands (the old, independent
    # baseline noise with unpaired media draws was 6–7 × the noise's width).
    for r in scored:
        w = r["width"]
        assert w["horizon_noise"] <= w["horizon"] <= 3 * w["horizon_noise"], w
    # Each horizon tail holds some outcomes (the old band held all of them on one side) and not
    # most: three horizon totals are three draws of the forecast's bias, so the band is loose.
    for k in ("horizon_below_p10", "horizon_above_p90"):
        assert 0.02 <= tails[k] <= 0.40, tails
