"""S-shaped curves: the local method peers use stops in the convex part; exact mode does not."""

import numpy as np
import pytest
from scipy.optimize import minimize

from models.curves import HillCurve
from optimizer import Channel, Problem, optimize
from optimizer.exact import grid_optimum

CURVES = [HillCurve(3.0e6, 4e5, 0.8), HillCurve(2.5e6, 4e5, 0.7), HillCurve(2.8e6, 5e5, 0.9), HillCurve(10e6, 1.6e6, 4.0)]
BUDGET = 2.0e6


def problem(current=None):
    current = current if current is not None else [BUDGET / 4] * 4
    chans = tuple(Channel(name=f"c{i}", curve=c, current=v) for i, (c, v) in enumerate(zip(CURVES, current)))
    return Problem(channels=chans, budget=BUDGET, reserve_min_share=0.0)


def slsqp_from_equal_split():
    n = len(CURVES)

    def f(x):
        return -sum(float(c.response(max(v, 0.0))) for c, v in zip(CURVES, x))

    def g(x):
        return -np.array([float(c.marginal(max(v, 1e-9))) for c, v in zip(CURVES, x)])

    res = minimize(f, np.full(n, BUDGET / n), jac=g, method="SLSQP", bounds=[(0, BUDGET)] * n,
                   constraints=[{"type": "eq", "fun": lambda x: x.sum() - BUDGET, "jac": lambda x: np.ones(n)}])
    return res.x, -res.fun


def test_local_method_stops_in_the_convex_part():
    x, value = slsqp_from_equal_split()
    _, best = grid_optimum(CURVES, BUDGET, steps=4000)
    assert x[3] < 1.0  # the S-shaped channel is abandoned
    assert value < 0.7 * best


def test_exact_mode_finds_the_global_optimum():
    grid_x, best = grid_optimum(CURVES, BUDGET, steps=8000)
    alloc = optimize(problem(), exact=True)
    assert alloc.status == "optimal" and alloc.mode == "exact"
    # The grid step (¥250) bounds the grid's own error; the MILP must be at least as good.
    assert alloc.expected_return >= best * (1 - 1e-5)
    assert alloc.spend_of("c3") == pytest.approx(grid_x[3], rel=0.01)


def test_envelope_mode_says_so_and_is_never_worse_than_current():
    alloc = optimize(problem())
    assert alloc.mode == "envelope"
    assert alloc.expected_return >= alloc.current.expected_return - 1e-6


def test_envelope_mode_warns_when_planned_in_the_linear_part():
    # A small budget keeps the S-channel below its tangent point, where the envelope is a ray.
    chans = (Channel("s", HillCurve(10e6, 1.6e6, 4.0), current=100_000), Channel("a", HillCurve(1e5, 1e6, 0.9), current=100_000))
    p = Problem(channels=chans, budget=1.0e6, reserve_min_share=0.0)
    alloc = optimize(p)
    assert any("S-shaped" in w and "--exact" in w for w in alloc.warnings)
    exact = optimize(p, exact=True)
    assert exact.expected_return >= alloc.expected_return - 1e-6


def test_return_floor_on_envelope_falls_back_to_exact():
    p = problem()
    from dataclasses import replace

    alloc = optimize(replace(p, roi_min=3.5))
    assert alloc.status == "optimal"
    assert alloc.expected_return >= 3.5 * alloc.spend * (1 - 1e-9)


def period_problem(T=2, alpha=0.0, efficiency=(1.0, 0.6)):
    from optimizer import PeriodChannel, PeriodProblem

    chans = tuple(PeriodChannel(name=f"c{i}", curve=c, alpha=alpha, efficiency=efficiency[:T], current=BUDGET / 4)
                  for i, c in enumerate(CURVES))
    return PeriodProblem(periods=tuple(str(t + 1) for t in range(T)), channels=chans, budget=BUDGET * T,
                         reserve_min_share=0.0)


def test_exact_mode_plans_period_by_period_too():
    from optimizer import optimize_periods

    p = period_problem()
    eff = p.efficiency()
    pairs = [c.curve.scaled(float(eff[i, t])) for i, c in enumerate(p.channels) for t in range(p.T)]
    _, best = grid_optimum(pairs, p.budget, steps=8000)
    envelope = optimize_periods(p)
    exact = optimize_periods(p, exact=True)
    assert envelope.mode == "envelope" and any("--exact" in w for w in envelope.warnings)
    assert exact.status == "optimal" and exact.mode == "exact"
    assert not any("S-shaped" in w for w in exact.warnings)
    # The grid step bounds the grid's own error; the MILP must be at least as good.
    assert exact.expected_return >= best * (1 - 1e-5)
    assert exact.expected_return >= envelope.expected_return - 1e-6


def test_a_one_period_plan_in_exact_mode_is_the_single_horizon_plan():
    from optimizer import from_problem, optimize_periods

    single = optimize(problem(), exact=True)
    one = optimize_periods(from_problem(problem(), 1), exact=True)
    assert one.expected_return == pytest.approx(single.expected_return, rel=1e-6)
    assert one.spend_in("c3", "1") == pytest.approx(single.spend_of("c3"), rel=1e-3)


def test_exact_mode_with_carryover_is_never_worse_than_the_envelope_plan():
    from optimizer import optimize_periods

    p = period_problem(T=3, alpha=0.4, efficiency=(1.0, 0.8, 1.2))
    exact = optimize_periods(p, exact=True)
    envelope = optimize_periods(p)
    assert exact.status == "optimal" and exact.mode == "exact"
    assert exact.expected_return >= envelope.expected_return - 1e-6
    assert exact.spend + exact.reserve == pytest.approx(p.budget, abs=1e-9)
