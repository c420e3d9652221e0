"""Ground truth of the recovery study's generator (models/simulate.py) is what it says it is.

The study (benchmarks/attribution.py) scores fits and plans against ``true_curve`` and
``true_roi_at_mean``; if those were wrong, every figure in README's recovery section would be.
The checks here compute the truth another way: by running spend through the process period by
period with the families written out independently.
"""

import math
from dataclasses import replace

import numpy as np
import pytest

from benchmarks.attribution import true_optimum
from models.history import history_from_frame
from models.simulate import (
    SATURATIONS, SimChannel, SimWorld, WeibullCurve, control_world, random_world, simulate, study_world,
    true_curve, true_roi_at_mean, with_noise,
)
from optimizer import Channel, Problem, optimize
from optimizer.exact import grid_optimum


def _f(family, e, k, s):
    """The families from their definitions (each half-saturated at k), not from the module."""
    e = np.asarray(e, float)
    if family == "hill":
        return e**s / (e**s + k**s)
    if family == "logistic":  # (1 − e^{−λe}) / (1 + e^{−λe}) with λk = ln 3 so that f(k) = 1/2
        a = np.exp(-math.log(3.0) * e / k)
        return (1 - a) / (1 + a)
    if family == "exponential":
        return 1 - 2.0 ** (-e / k)
    if family == "scurve":
        return 1 - 2.0 ** (-((e / k) ** s))
    raise AssertionError(family)


def _world(**kw) -> SimWorld:
    channels = (
        SimChannel("a", "content", "hill", alpha=0.5, k=120_000, s=0.7, beta=400_000, mean_spend=60_000),
        SimChannel("b", "content", "logistic", alpha=0.2, k=50_000, s=1.0, beta=150_000, mean_spend=40_000),
        SimChannel("c", "tools", "exponential", alpha=0.65, k=300_000, s=1.0, beta=500_000, mean_spend=90_000),
        SimChannel("d", "offline", "scurve", alpha=0.1, k=80_000, s=2.2, beta=300_000, mean_spend=70_000),
    )
    return SimWorld(channels=channels, **kw)


def test_true_roi_and_quarter_curve_match_spend_run_through_the_process():
    world = _world()
    for ch in world.channels:
        x = 1.3 * ch.mean_spend  # any spend: held constant until the carryover settles
        e, acc = None, 0.0
        for _ in range(400):
            acc = x + ch.alpha * acc
            e = acc
        per_period = ch.beta * _f(ch.family, e, ch.k, ch.s)
        assert true_roi_at_mean(world, ch.name, x) == pytest.approx(per_period / x, rel=1e-9)
        # A quarter: 13 periods at X/13 each, in the steady state.
        X = 13 * x
        assert float(true_curve(world, ch.name, 13).response(X)) == pytest.approx(13 * per_period, rel=1e-9)
        # Its slope is the slope of the process, by a central difference.
        h = 1e-3 * X
        up = 13 * ch.beta * _f(ch.family, (X + h) / 13 / (1 - ch.alpha), ch.k, ch.s)
        down = 13 * ch.beta * _f(ch.family, (X - h) / 13 / (1 - ch.alpha), ch.k, ch.s)
        assert float(true_curve(world, ch.name, 13).marginal(X)) == pytest.approx((up - down) / (2 * h), rel=1e-5)


def test_zero_noise_history_is_baseline_plus_the_documented_contributions():
    world = with_noise(_world(periods=156), 0.0)
    world = replace(world, channels=tuple(replace(c, efficiency=0.0) for c in world.channels))
    sim = simulate(world, seed=3)
    total = sim.baseline + sum(sim.contribution.values())
    assert np.abs(sim.frame["revenue"].to_numpy() - total).max() <= 0.5  # whole CNY
    # After the unseen carryover has died out, each contribution is β f(adstock of the file's spend).
    for ch in world.channels:
        x = sim.frame[ch.name].to_numpy(float)
        e, acc = np.empty_like(x), 0.0
        for t, v in enumerate(x):
            acc = v + ch.alpha * acc
            e[t] = acc
        direct = ch.beta * _f(ch.family, e, ch.k, ch.s)
        np.testing.assert_allclose(sim.contribution[ch.name][60:], direct[60:], rtol=1e-8, atol=1e-6 * ch.beta)


def test_seasonal_efficiency_averages_one_and_peaks_in_the_presales():
    world = _world(periods=156, start="2022-01-03")
    sim = simulate(world, seed=1)
    for c, eta in sim.efficiency.items():
        assert eta.mean() == pytest.approx(1.0, rel=1e-12)
        d11 = (sim.dates.month == 11) & (sim.dates.day <= 11)
        assert eta[d11].mean() > eta.mean() * 1.05
    assert sim.baseline[(sim.dates.month == 11) & (sim.dates.day <= 11)].mean() > np.median(sim.baseline)


def test_s_curve_optimum_on_a_fine_grid_is_at_least_the_envelope_plan():
    world = _world()
    names = world.names
    curves = [true_curve(world, c, 13) for c in names]
    assert not curves[3].is_concave
    for budget in (0.3e6, 2.0e6):  # the S-channel priced out; funded past its knee
        problem = Problem(channels=tuple(Channel(name=n, curve=c) for n, c in zip(names, curves)),
                          budget=budget, reserve_min_share=0.0)
        envelope_plan = [r.spend for r in optimize(problem).channels]  # the LP on the concave envelope
        on_truth = sum(float(c.response(x)) for c, x in zip(curves, envelope_plan))
        _, grid_best = grid_optimum(curves, budget, steps=1500)
        assert grid_best >= on_truth * (1 - 1e-5)  # the grid's own step is the only slack
    # The study's reference optimum is at least as good as every way of getting there.
    _, best = true_optimum(curves, budget)
    assert best >= max(grid_best, on_truth) * (1 - 1e-9)


def test_weibull_envelope_touches_at_the_tangent_and_lies_above():
    curve = WeibullCurve(beta=1e6, k=2e5, s=2.4)
    xt = curve.tangent_point
    assert float(curve.response(xt)) / xt == pytest.approx(float(curve.marginal(xt)), rel=1e-9)
    env = curve.envelope()
    xs = np.linspace(0, 1e6, 2001)
    assert np.all(env.response(xs) >= curve.response(xs) - 1e-6)
    assert np.all(np.diff(env.response(xs), 2) <= 1e-6)  # concave
    assert curve.concave_from < xt


def test_always_on_spend_has_the_asked_correlation():
    base = random_world(11, n_channels=6, regime="always_on")
    world = replace(base, periods=3000, spend_corr=0.6, season_corr=0.45, spend_growth=0.0)
    sim = simulate(world, seed=4)
    logx = np.column_stack([np.log(sim.spend[c]) for c in world.names])
    pairs = np.corrcoef(logx.T)[np.triu_indices(len(world.names), 1)]
    assert pairs.mean() == pytest.approx(0.6, abs=0.07)
    with_season = [np.corrcoef(logx[:, j], sim.season)[0, 1] for j in range(len(world.names))]
    assert np.mean(with_season) == pytest.approx(0.45, abs=0.07)


def test_flighted_spend_moves_independently_and_goes_dark():
    world = replace(random_world(12, n_channels=6, regime="flighted"), periods=1500)
    sim = simulate(world, seed=5)
    X = np.column_stack([sim.spend[c] for c in world.names])
    pairs = np.corrcoef(X.T)[np.triu_indices(X.shape[1], 1)]
    assert np.abs(pairs).mean() < 0.15
    assert (X == 0).mean() > 0.05  # dark weeks


def test_study_covers_what_issue_9_asks_for():
    worlds = [study_world(i) for i in range(24)]
    assert {w.frequency for w in worlds} == {"weekly", "daily", "monthly"}
    weekly = [w for w in worlds if w.frequency == "weekly"]
    assert min(w.periods for w in weekly) >= 104 and max(w.periods for w in weekly) <= 156
    assert min(len(w.channels) for w in worlds) >= 4 and max(len(w.channels) for w in worlds) <= 12
    assert all(0.02 <= w.noise <= 0.10 for w in worlds)
    assert all(0.3 <= w.spend_corr <= 0.8 and 0.3 <= w.season_corr <= 0.8 for w in worlds)
    assert all(0.1 <= c.alpha <= 0.7 for w in worlds for c in w.channels)
    assert {c.family for w in worlds for c in w.channels} == set(SATURATIONS)
    assert all(sum(c.family == "scurve" for c in w.channels) <= 1 for w in worlds)
    assert {c.pattern for w in worlds for c in w.channels} == {"flighted", "always_on"}
    assert all(w.break_level != 0 for w in worlds)
    small = 0
    for w in worlds:
        total = sum(c.mean_spend for c in w.channels)
        small += sum(c.mean_spend / total <= 0.03 for c in w.channels)
    assert small >= 24


@pytest.mark.parametrize("index", [0, 10, 11])  # weekly, daily, monthly
def test_histories_are_seeded_and_load_as_history_files(index):
    world = study_world(index)
    a, b = simulate(world, seed=1), simulate(world, seed=1)
    assert a.frame.equals(b.frame)
    assert not a.frame.equals(simulate(world, seed=2).frame)
    history = history_from_frame(a.frame)
    assert history.frequency == world.frequency
    assert history.periods == world.periods
    assert history.channels == world.names
    shares = a.spend_shares()
    for c in world.channels:  # the planned spend is the realised spend
        assert a.mean_spend[c.name] == pytest.approx(c.mean_spend, rel=1e-3)
    assert sum(shares.values()) == pytest.approx(1.0)


def test_oracle_recovers_beta_exactly_from_a_noiseless_history():
    # Known shapes, the baseline's true regressors, no noise and flat efficiency: nothing is left
    # to estimate badly, so the study's information limit must hit every β (the unseen carryover
    # before the file is the only error, and the burn-in drops most of it).
    from benchmarks.attribution import oracle_betas

    world = with_noise(_world(periods=130), 0.0)
    world = replace(world, channels=tuple(replace(c, efficiency=0.0) for c in world.channels))
    sim = simulate(world, seed=8)
    betas = oracle_betas(sim, history_from_frame(sim.frame))
    for ch in world.channels:
        assert betas[ch.name] == pytest.approx(ch.beta, rel=0.01)


def test_control_world_is_the_model_form_with_the_same_rois():
    world = study_world(0)
    control = control_world(world)
    assert {c.family for c in control.channels} == {"hill"} and {c.pattern for c in control.channels} == {"flighted"}
    assert control.noise == 0.005 and control.break_level == 0.0
    for a, b in zip(world.channels, control.channels):
        assert true_roi_at_mean(control, b.name) == pytest.approx(true_roi_at_mean(world, a.name), rel=1e-9)
