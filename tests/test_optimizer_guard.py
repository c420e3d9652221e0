"""The guarded plan over curve samples: the best mean return subject to CVaR_α of the gain over a
reference plan ≥ 0 ("do no harm"). Known answers from a brute-force search over fine grids;
invariants (money to the cent, bounds, the guard on the samples' own curves) also by hypothesis."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.curves import HillCurve
from optimizer import (
    Channel,
    GuardedPlan,
    PeriodChannel,
    PeriodProblem,
    Problem,
    ProblemError,
    channel_bounds,
    optimize,
    optimize_guarded,
    optimize_guarded_periods,
    optimize_periods,
    plan_returns,
    plan_violations,
)
from optimizer.periods import one_period
from optimizer.risk import cvar, sample_plan


def sample_returns(samples: dict, names: list[str], x: np.ndarray) -> np.ndarray:
    """R_s at spends ``x`` (plans × channels) for every sample: plans × samples, straight from the curves."""
    x = np.atleast_2d(np.asarray(x, float))
    S = len(samples[names[0]])
    return sum(np.stack([samples[n][s].response(x[:, i]) for s in range(S)], axis=1) for i, n in enumerate(names))


def spends(plan) -> np.ndarray:
    return np.array([c.spend for c in plan.channels])


def forced_guard_lp(problem: Problem, samples: dict, alpha: float, start) -> np.ndarray:
    """The guarded LP's plan (measure "guard" of the sample LP), solved even where the public
    function skips it because the mean plan already meets the guard."""
    plan = one_period(problem, [channel_bounds(problem, c) for c in problem.channels])
    curves = [samples[c.name] for c in problem.channels]
    ref = np.array([[c.current] for c in problem.channels])
    return spends(sample_plan(plan, "guard", curves, alpha, np.asarray(start)[:, None], 5e-6, 8, reference=ref))


def guard_cvar(samples, names, x, ref, alpha) -> float:
    r = sample_returns(samples, names, np.array([x, ref]))
    return cvar(r[0] - r[1], alpha)


def brute_force(samples, names, available, ref, alpha, zooms=4, n=401):
    """max mean R_s(x) s.t. CVaR_α(R_s(x) − R_s(ref)) ≥ 0 over full-budget plans, by grid search
    zoomed around the best feasible point (the feasible set is convex, the mean concave)."""
    C = len(names)
    r_ref = sample_returns(samples, names, np.array([ref]))[0]
    k = int(round(alpha * r_ref.size))
    assert abs(k - alpha * r_ref.size) < 1e-12  # the tail is whole samples: CVaR is a mean of the k worst
    centre, half = np.full(C - 1, available / 2), available / 2
    best = None
    for _ in range(zooms):
        axes = [np.linspace(c - half, c + half, n) for c in centre]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, C - 1)
        grid = np.vstack([grid, ref[:-1]]) if best is None else np.vstack([grid, best[:-1]])
        last = available - grid.sum(axis=1)
        ok = np.all(grid >= 0, axis=1) & (last >= 0)
        x = np.column_stack([grid[ok], last[ok]])
        r = sample_returns(samples, names, x)
        gain = np.sort(r - r_ref, axis=1)[:, :k].mean(axis=1)
        mean = np.where(gain >= 0, r.mean(axis=1), -np.inf)
        best = x[int(np.argmax(mean))]
        centre, half = best[:-1], 4 * half / (n - 1)
    return best, float(sample_returns(samples, names, np.array([best]))[0].mean())


def test_two_channels_match_a_brute_force_search():
    """Channel a is underfunded in every sample, but how much it pays is uncertain: the worst
    sample allows a smaller move than the mean plan makes, so the guard binds between them."""
    names = ["a", "b"]
    channels = (Channel(name="a", curve=HillCurve(8e5, 2e5, 0.8), current=150_000.0),
                Channel(name="b", curve=HillCurve(6e5, 2e5, 0.8), current=800_000.0))
    problem = Problem(channels=channels, budget=1_000_000.0)
    samples = {"a": [HillCurve(8e5 * m, 2e5, 0.8) for m in (0.3, 0.8, 1.0, 1.4, 1.8)],
               "b": [HillCurve(6e5 * m, 2e5, 0.8) for m in (1.05, 1.0, 0.95, 1.0, 1.0)]}
    ref = np.array([150_000.0, 800_000.0])
    g = optimize_guarded(problem, samples, alpha=0.2)
    x = spends(g.guarded)
    best, best_mean = brute_force(samples, names, 950_000.0, ref, 0.2)
    assert g.binds and g.reference_feasible and g.note is None
    assert ref[0] + 10_000 < x[0] < spends(g.mean)[0] - 10_000  # neither the reference nor the mean plan
    assert np.abs(x - best).max() <= 1e-5 * problem.budget
    assert g.stats["guarded"]["mean"] == pytest.approx(best_mean, rel=1e-6)
    # The guard holds at the plan on the samples' own curves (cents and LP tolerance aside).
    assert guard_cvar(samples, names, x, ref, 0.2) >= -0.05
    assert g.stats["guarded"]["cvar_gain"] >= -0.05
    assert g.stats["mean"]["cvar_gain"] < -1_000  # the mean plan does harm in the worst sample
    assert g.stats["reference"]["mean"] <= g.stats["guarded"]["mean"] <= g.stats["mean"]["mean"]
    assert any(b.name == "guard_cvar" for b in g.guarded.binding)
    assert not g.keeps_reference


def test_three_channels_match_a_brute_force_search():
    names = ["a", "b", "c"]
    rng = np.random.default_rng(2)
    S = 5
    base = {"a": (6e5, 1.5e5, 0.7), "b": (5e5, 1e5, 0.9), "c": (4e5, 1.2e5, 0.6)}
    mult = {n: np.exp(rng.normal(0.0, 0.35, S)) for n in names}
    samples = {n: [HillCurve(b * m, k, s) for m in mult[n]] for n, (b, k, s) in base.items()}
    ref = np.array([500_000.0, 250_000.0, 200_000.0])
    channels = tuple(Channel(name=n, curve=HillCurve(*base[n]), current=float(r)) for n, r in zip(names, ref))
    problem = Problem(channels=channels, budget=1_000_000.0)
    g = optimize_guarded(problem, samples, alpha=0.4)
    x = spends(g.guarded)
    best, best_mean = brute_force(samples, names, 950_000.0, ref, 0.4, zooms=5, n=161)
    assert g.binds
    assert g.stats["guarded"]["mean"] == pytest.approx(best_mean, rel=1e-6)
    # The mean is flat along the guard's boundary, so the spends agree less closely than the mean.
    assert np.abs(x - best).max() <= 5e-4 * problem.budget
    assert guard_cvar(samples, names, x, ref, 0.4) >= -0.05
    assert g.stats["reference"]["mean"] <= g.stats["guarded"]["mean"] <= g.stats["mean"]["mean"] + 0.01


def test_identical_samples_give_the_mean_plan():
    channels = (Channel(name="a", curve=HillCurve(8e5, 2e5, 0.8), current=100_000.0),
                Channel(name="b", curve=HillCurve(6e5, 1e5, 0.7), current=600_000.0),
                Channel(name="c", curve=HillCurve(3e5, 1e5, 0.9), current=250_000.0))
    problem = Problem(channels=channels, budget=1_000_000.0)
    same = {c.name: [c.curve] * 6 for c in channels}
    g = optimize_guarded(problem, same, alpha=0.2)
    assert not g.binds
    assert np.array_equal(spends(g.guarded), spends(g.mean))
    assert g.stats["guarded"] == g.stats["mean"]
    # Every sample gains the same, so every sample beats the reference plan.
    assert g.stats["guarded"]["beats_reference"] == 1.0
    gain = g.stats["guarded"]["mean"] - g.stats["reference"]["mean"]
    assert g.stats["guarded"]["cvar_gain"] == pytest.approx(gain, abs=0.02)
    # The guarded LP itself, where the guard is slack, finds the mean plan.
    assert np.abs(forced_guard_lp(problem, same, 0.2, spends(g.mean)) - spends(g.mean)).max() <= 1e-5 * problem.budget


def mirror_problem():
    """Two samples that disagree on which channel is better, mirror images of each other."""
    good, bad = HillCurve(9e5, 1.5e5, 0.8), HillCurve(3e5, 1.5e5, 0.8)
    channels = (Channel(name="a", curve=HillCurve(6e5, 1.5e5, 0.8), current=400_000.0),
                Channel(name="b", curve=HillCurve(6e5, 1.5e5, 0.8), current=550_000.0))
    samples = {"a": [good, bad], "b": [bad, good]}
    return Problem(channels=channels, budget=1_000_000.0), samples


def test_mirror_samples_keep_the_reference():
    problem, samples = mirror_problem()
    g = optimize_guarded(problem, samples)  # α = 0.2: the worse of the two samples
    assert g.binds
    assert np.allclose(spends(g.guarded), [400_000.0, 550_000.0], atol=0.005)
    # The mean plan moves money to the even split, which the sample favouring b pays for.
    assert np.allclose(spends(g.mean), [475_000.0, 475_000.0], atol=0.005)
    assert g.stats["mean"]["cvar_gain"] < 0
    assert g.stats["guarded"]["cvar_gain"] == 0.0  # within rounding of the guard's 0, said as 0
    assert g.stats["guarded"]["beats_reference"] == 0.0
    from scenarios.plan import guard_note

    assert g.keeps_reference
    assert "so the plan keeps the current plan's split: the samples do not agree" in guard_note(g, 0.2)


def test_alpha_one_guards_the_mean_gain_only():
    """With α = 1 the guard is "mean gain ≥ 0", which the mean plan meets when the reference is a
    plan of the problem: it never binds, whereas α = 0.2 on the same samples does."""
    problem, samples = mirror_problem()
    g1 = optimize_guarded(problem, samples, alpha=1.0)
    assert not g1.binds
    assert np.array_equal(spends(g1.guarded), spends(g1.mean))
    assert g1.stats["mean"]["cvar_gain"] >= 0
    assert np.abs(forced_guard_lp(problem, samples, 1.0, spends(g1.mean)) - spends(g1.mean)).max() <= 1e-5 * problem.budget
    rng = np.random.default_rng(3)
    names = ["a", "b", "c"]
    samples = {n: [HillCurve(5e5 * m, 1.5e5, 0.8) for m in np.exp(rng.normal(0.0, 0.5, 20))] for n in names}
    channels = tuple(Channel(name=n, curve=HillCurve(5e5, 1.5e5, 0.8), current=950_000.0 / 3) for n in names)
    problem = Problem(channels=channels, budget=1_000_000.0)
    assert optimize_guarded(problem, samples, alpha=0.2).binds
    g = optimize_guarded(problem, samples, alpha=1.0)
    assert not g.binds and np.array_equal(spends(g.guarded), spends(g.mean))


def limited_problem(current):
    channels = (
        Channel(name="douyin", curve=HillCurve(9e5, 2e5, 0.8), group="public", current=current[0], max_spend=420_000.0),
        Channel(name="xhs", curve=HillCurve(7e5, 1.5e5, 0.7), group="public", current=current[1], min_spend=50_000.0),
        Channel(name="wecom", curve=HillCurve(5e5, 1e5, 0.9), group="private", current=current[2], max_share=0.3),
    )
    return Problem(channels=channels, budget=1_000_000.0, reserve_min_share=0.08,
                   groups=(), roi_min=None)


def disagreeing_samples(problem, S=12, seed=0, spread=0.4):
    rng = np.random.default_rng(seed)
    return {c.name: [HillCurve(c.curve.beta * m, c.curve.k * q, c.curve.s)
                     for m, q in zip(np.exp(rng.normal(0.0, spread, S)), np.exp(rng.normal(0.0, 0.2, S)))]
            for c in problem.channels}


def assert_money_and_bounds(problem: Problem, plan):
    cents = [round(c.spend * 100) for c in plan.channels]
    assert all(abs(c.spend * 100 - k) < 1e-6 for c, k in zip(plan.channels, cents))  # whole cents
    assert sum(cents) + round(plan.reserve * 100) == round(problem.budget * 100)
    assert plan.reserve >= problem.reserve_min - 1e-9
    for ch, c in zip(problem.channels, plan.channels):
        lo, hi = channel_bounds(problem, ch)
        assert lo.value - 1e-9 <= c.spend <= hi.value + 1e-9


def test_money_to_the_cent_and_bounds_respected():
    problem = limited_problem([300_000.0, 350_000.0, 250_000.0])
    samples = disagreeing_samples(problem, seed=1)
    g = optimize_guarded(problem, samples, alpha=0.25)
    assert g.binds and g.reference_feasible
    for plan in (g.guarded, g.mean):
        assert_money_and_bounds(problem, plan)
    assert g.guarded.mode == "guarded" and g.mean.mode == "sample_mean"
    names = [c.name for c in problem.channels]
    ref = np.array([300_000.0, 350_000.0, 250_000.0])
    assert guard_cvar(samples, names, spends(g.guarded), ref, 0.25) >= -0.05
    d = g.to_dict()
    assert set(d) == {"guarded", "mean", "guard"}
    assert set(d["guard"]) >= {"alpha", "samples", "binds", "reference_feasible", "note", "guarded", "mean",
                               "reference"}
    assert set(d["guard"]["guarded"]) == {"mean", "p10", "p50", "p90", "beats_reference", "cvar_gain"}
    json.dumps(d)


@pytest.mark.parametrize("current, words", [
    ([500_000.0, 300_000.0, 100_000.0], "douyin: spend ¥500,000 is above its maximum ¥420,000 (max_spend[douyin])"),
    ([400_000.0, 350_000.0, 250_000.0], "reserve"),  # does not leave the minimum reserve
])
def test_an_infeasible_reference_is_reported_not_raised(current, words):
    problem = limited_problem(current)
    samples = disagreeing_samples(problem)
    g = optimize_guarded(problem, samples, alpha=0.25)
    assert not g.reference_feasible and not g.binds
    assert any(words in v for v in g.violations), g.violations
    assert "planned without the guard" in g.note and g.note in g.guarded.notes
    assert np.array_equal(spends(g.guarded), spends(g.mean))
    assert_money_and_bounds(problem, g.guarded)


def test_an_explicit_reference_replaces_the_current_plan():
    problem = limited_problem([500_000.0, 300_000.0, 100_000.0])  # current breaks max_spend
    samples = disagreeing_samples(problem, seed=1)
    ref = {"douyin": 300_000.0, "xhs": 350_000.0, "wecom": 250_000.0}
    g = optimize_guarded(problem, samples, alpha=0.25, reference=ref)
    assert g.reference_feasible and g.binds
    assert np.array_equal(g.reference.ravel(), [300_000.0, 350_000.0, 250_000.0])
    with pytest.raises(ProblemError, match="reference"):
        optimize_guarded(problem, samples, reference=[1.0, 2.0])


def test_a_given_point_plan_gives_the_same_plans_as_solving_it():
    """The caller's point plan (what ``budget allocate --risk guard`` already solved) starts the
    sample LPs as the one solved inside would: the same plans to the cent, single and per period."""
    problem = limited_problem([300_000.0, 350_000.0, 250_000.0])
    samples = disagreeing_samples(problem, seed=1)
    own = optimize_guarded(problem, samples, alpha=0.25)
    given = optimize_guarded(problem, samples, alpha=0.25, point=optimize(problem))
    assert own.binds and given.binds
    for a, b in ((own.guarded, given.guarded), (own.mean, given.mean)):
        assert np.array_equal(spends(a), spends(b))
    assert own.stats == given.stats
    pp = period_problem()
    ps = period_samples(pp)
    own_p = optimize_guarded_periods(pp, ps, alpha=0.2)
    given_p = optimize_guarded_periods(pp, ps, alpha=0.2, point=optimize_periods(pp))
    assert np.array_equal(own_p.guarded.period_spend, given_p.guarded.period_spend)
    assert own_p.stats == given_p.stats


# ---------------------------------------------------------------------------------------- periods


def period_problem(current=True, **kw):
    chans = (
        PeriodChannel(name="douyin", curve=HillCurve(3e5, 8e4, 0.8), alpha=0.5, carryover=3e4,
                      current=(40_000.0, 40_000.0, 40_000.0, 40_000.0) if current else None),
        PeriodChannel(name="wecom", curve=HillCurve(2.5e5, 6e4, 0.9), efficiency=(0.9, 1.2, 1.0, 1.1),
                      current=(50_000.0, 60_000.0, 50_000.0, 50_000.0) if current else None),
        PeriodChannel(name="popup", curve=HillCurve(1.5e5, 5e4, 0.7), alpha=0.3, max_per_period=40_000.0,
                      current=(25_000.0, 25_000.0, 25_000.0, 25_000.0) if current else None),
    )
    return PeriodProblem(periods=("w1", "w2", "w3", "w4"), channels=chans, budget=500_000.0, **kw)


def period_samples(problem, S=10, seed=3):
    rng = np.random.default_rng(seed)
    return {c.name: [HillCurve(c.curve.beta * m, c.curve.k, c.curve.s) for m in np.exp(rng.normal(0.0, 0.4, S))]
            for c in problem.channels}


def period_sample_returns(problem, samples, x):
    names = [c.name for c in problem.channels]
    S = len(samples[names[0]])
    return np.array([plan_returns(problem, x, [samples[n][s] for n in names])["total"] for s in range(S)])


@pytest.mark.parametrize("kw", [{}, {"count_after_horizon": True}])
def test_period_guard_with_carryover_holds_and_keeps_the_limits(kw):
    problem = period_problem(**kw)
    samples = period_samples(problem)
    g = optimize_guarded_periods(problem, samples, alpha=0.2)
    assert g.binds and g.reference_feasible
    ref = problem.current()
    r_ref = period_sample_returns(problem, samples, ref)
    for plan in (g.guarded, g.mean):
        assert plan.period_spend.shape == (3, 4)
        assert plan_violations(problem, plan.period_spend) == []
        assert round(plan.period_spend.sum() * 100) + round(plan.reserve * 100) == round(problem.budget * 100)
    r = period_sample_returns(problem, samples, g.guarded.period_spend)
    assert cvar(r - r_ref, 0.2) >= -0.05
    assert g.stats["guarded"]["mean"] == pytest.approx(r.mean(), abs=0.01)
    assert r_ref.mean() - 0.01 <= r.mean() <= g.stats["mean"]["mean"] + 0.01
    assert cvar(period_sample_returns(problem, samples, g.mean.period_spend) - r_ref, 0.2) < 0
    json.dumps(g.to_dict())


def test_period_reference_is_required_without_a_current_plan_and_checked():
    problem = period_problem(current=False)
    samples = period_samples(problem)
    with pytest.raises(ProblemError, match="reference"):
        optimize_guarded_periods(problem, samples)
    # popup's per-period maximum is 40,000: a reference above it is reported, not raised.
    ref = np.array([[35_000.0] * 4, [45_000.0] * 4, [45_000.0] * 4])
    g = optimize_guarded_periods(problem, samples, reference=ref)
    assert not g.reference_feasible and not g.binds
    assert any("popup in w1" in v for v in g.violations)
    assert plan_violations(problem, g.guarded.period_spend) == []
    ok = optimize_guarded_periods(problem, samples, reference=np.minimum(ref, 35_000.0))
    assert ok.reference_feasible


# ---------------------------------------------------------------------------------------- property


@st.composite
def guarded_cases(draw):
    C = draw(st.integers(2, 3))
    S = draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    budget = float(draw(st.sampled_from([200_000.0, 1_000_000.0])))
    objective = draw(st.sampled_from(["max_return", "max_profit"]))
    share = rng.dirichlet(np.ones(C)) * 0.9 * budget
    channels, samples = [], {}
    for c in range(C):
        beta, k, s = rng.uniform(0.3, 1.5) * budget, rng.uniform(0.05, 0.4) * budget, rng.uniform(0.5, 1.0)
        cap = float(share[c] * rng.uniform(1.0, 2.0)) if rng.random() < 0.5 else None
        floor = float(share[c] * rng.uniform(0.0, 1.0)) if rng.random() < 0.3 else None
        channels.append(Channel(name=f"c{c}", curve=HillCurve(beta, k, s), current=round(float(share[c]), 2),
                                max_spend=cap, min_spend=floor))
        samples[f"c{c}"] = [HillCurve(beta * m, k * q, s) for m, q in
                            zip(np.exp(rng.normal(0, 0.5, S)), np.exp(rng.normal(0, 0.3, S)))]
    problem = Problem(channels=tuple(channels), budget=budget, objective=objective,
                      margin=1.5 if objective == "max_profit" else None)
    alpha = draw(st.sampled_from([0.2, 0.5, 1.0]))
    return problem, samples, alpha


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(guarded_cases())
def test_property_bounds_money_and_the_guard(case):
    problem, samples, alpha = case
    g = optimize_guarded(problem, samples, alpha=alpha)
    assert isinstance(g, GuardedPlan) and g.reference_feasible
    assert_money_and_bounds(problem, g.guarded)
    names = [c.name for c in problem.channels]
    x, ref = spends(g.guarded), np.array([c.current for c in problem.channels])
    r = sample_returns(samples, names, np.array([x, ref]))
    if problem.objective == "max_profit":
        r = 1.5 * r - np.array([[x.sum()], [ref.sum()]])
    # The guard holds on the samples' own curves, so the plan does no harm in the tail.
    assert cvar(r[0] - r[1], alpha) >= -0.05
    assert r[0].mean() >= r[1].mean() - 0.05
