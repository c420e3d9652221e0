"""The LP's answer against exact optima (bisection on the common marginal return) and the
invariants every plan must keep: bounds, money to the cent, monotone in budget, never worse
than a feasible current plan."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer import channel_bounds, optimize
from optimizer.exact import bisection_optimum
from tests.conftest import random_problem

GAP = 1e-4  # 0.01%


def exact_for(problem):
    bounds = [channel_bounds(problem, c) for c in problem.channels]
    lo = np.array([b[0].value for b in bounds])
    hi = np.array([b[1].value for b in bounds])
    return bisection_optimum([c.curve for c in problem.channels], lo, hi, problem.budget - problem.reserve_min)


def assert_plan_valid(problem, alloc):
    assert alloc.status == "optimal"
    # Money is conserved to the cent: whole cents, and spend + reserve == budget exactly.
    cents = [round(c.spend * 100) for c in alloc.channels]
    assert all(abs(c.spend * 100 - k) < 1e-6 for c, k in zip(alloc.channels, cents))
    assert sum(cents) + round(alloc.reserve * 100) == round(problem.budget * 100)
    assert alloc.reserve >= problem.reserve_min - 1e-9
    for ch, res in zip(problem.channels, alloc.channels):
        lo, hi = channel_bounds(problem, ch)
        assert lo.value - 0.01 <= res.spend <= hi.value + 0.01, (ch.name, lo, hi, res.spend)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 30), bounded=st.booleans())
def test_gap_to_exact_optimum_and_invariants(seed, n, bounded):
    problem = random_problem(seed, n, with_bounds=bounded)
    bounds = [channel_bounds(problem, c) for c in problem.channels]
    if sum(b[0].value for b in bounds) > problem.budget - problem.reserve_min:
        return  # infeasible draw; infeasibility has its own tests
    alloc = optimize(problem)
    assert_plan_valid(problem, alloc)
    _, best = exact_for(problem)
    assert alloc.expected_return <= best * (1 + 1e-9)
    assert (best - alloc.expected_return) / best <= GAP


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 15))
def test_return_non_decreasing_in_budget(seed, n):
    problem = random_problem(seed, n)
    returns = [optimize(problem.with_budget(problem.budget * f)).expected_return for f in (0.5, 0.8, 1.0, 1.3)]
    for a, b in zip(returns, returns[1:]):
        assert b >= a * (1 - 1e-6)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 20))
def test_never_worse_than_a_feasible_current_plan(seed, n):
    problem = random_problem(seed, n)
    alloc = optimize(problem)
    assert alloc.current.feasible
    assert alloc.expected_return >= alloc.current.expected_return - 1e-6
    assert alloc.uplift >= -1e-9


def test_current_plan_already_optimal_is_kept():
    problem = random_problem(3, 6)
    x, _ = exact_for(problem)
    from dataclasses import replace

    at_optimum = replace(problem, channels=tuple(replace(c, current=float(v)) for c, v in zip(problem.channels, x)))
    alloc = optimize(at_optimum)
    assert alloc.expected_return >= alloc.current.expected_return - 1e-6
    for res, v in zip(alloc.channels, x):
        assert res.spend == pytest.approx(v, rel=2e-3, abs=50)


@pytest.mark.parametrize("n", [10, 100, 1000])
def test_large_problems_reach_the_exact_optimum(n):
    problem = random_problem(42, n)
    alloc = optimize(problem)
    assert_plan_valid(problem, alloc)
    x, best = exact_for(problem)
    assert (best - alloc.expected_return) / best <= GAP
    # Interior channels share one marginal return at the optimum.
    free = [r.marginal_roi for r, v in zip(alloc.channels, x) if v > 1.0]
    assert max(free) / min(free) == pytest.approx(1.0, abs=0.02)


def test_equal_split_is_not_returned_when_curves_differ():
    # Peer tools' classic failure: the optimiser hands back the starting (equal) split.
    problem = random_problem(7, 8)
    from dataclasses import replace

    equal = problem.budget * (1 - problem.reserve_min_share) / 8
    problem = replace(problem, channels=tuple(replace(c, current=equal) for c in problem.channels))
    alloc = optimize(problem)
    spends = [c.spend for c in alloc.channels]
    assert max(spends) - min(spends) > 0.1 * equal
    assert alloc.uplift > 0


def test_scale_does_not_matter():
    # Bad scaling makes local optimisers stall; the LP's answer scales with the money.
    problem = random_problem(11, 12)
    from dataclasses import replace

    from models.curves import HillCurve

    def scaled(f):
        chans = []
        for c in problem.channels:
            cur = c.curve
            curve = HillCurve(cur.beta * f, cur.k * f, cur.s) if isinstance(cur, HillCurve) else type(cur)(cur.beta * f, cur.k * f)
            chans.append(replace(c, curve=curve, current=c.current * f))
        return replace(problem, channels=tuple(chans), budget=problem.budget * f)

    small, big = optimize(scaled(1e-3)), optimize(scaled(1e3))
    for a, b in zip(small.channels, big.channels):
        assert b.spend / 1e6 == pytest.approx(a.spend, rel=1e-3, abs=0.05)
    assert math.isclose(big.expected_return / 1e6, small.expected_return, rel_tol=1e-4)
