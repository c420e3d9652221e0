"""Exact optima by other means, to check the LP against (tests and benchmarks).

* :func:`bisection_optimum`: separable concave curves, box bounds and a budget. At the optimum
  every channel strictly inside its bounds has the same marginal return λ; each channel's spend
  is a decreasing function of λ, so bisection on λ finds the optimum to machine precision.
* :func:`grid_optimum`: any curves (S-shaped too), by dynamic programming over a fine spend grid.
* :func:`random_problem`: seeded random concave problems, the shared input of the property tests
  and the benchmarks.
"""

from __future__ import annotations

import numpy as np

from models.curves import CurveSet, ExponentialCurve, HillCurve, ResponseCurve
from optimizer.problem import Channel, Problem


def bisection_optimum(curves: list[ResponseCurve], lo, hi, available: float) -> tuple[np.ndarray, float]:
    """Maximise Σ r_c(x_c) subject to Σ x_c ≤ available and lo ≤ x ≤ hi (concave curves).

    Returns the spends and the total return. When Σ hi ≤ available every channel sits at its max.
    """
    lo = np.asarray(lo, float)
    hi = np.asarray(hi, float)
    if not all(c.is_concave for c in curves):
        raise ValueError("bisection needs concave curves; use grid_optimum")
    family = CurveSet(curves)
    if hi.sum() <= available:
        x = hi.copy()
    else:
        # Bisection on log λ: marginals span many orders of magnitude.
        top = family.marginal(np.maximum(lo, 1e-9 * np.maximum(hi, 1.0)))
        a, b = np.log(1e-300), np.log(max(float(np.max(top[np.isfinite(top)], initial=1.0)), 1.0)) + 1.0
        for _ in range(200):
            mid = 0.5 * (a + b)
            if family.spend_at_marginal(np.exp(mid), lo, hi).sum() > available:
                a = mid
            else:
                b = mid
            if b - a <= 1e-15:
                break
        x = family.spend_at_marginal(np.exp(b), lo, hi)
        # Hand the last sliver of budget (bisection tolerance) to the channel with most room.
        room = hi - x
        i = int(np.argmax(room))
        x[i] += min(room[i], max(available - x.sum(), 0.0))
    return x, float(family.response(x).sum())


def grid_optimum(curves: list[ResponseCurve], available: float, lo=None, hi=None, steps: int = 4000):
    """Maximise Σ r_c(x_c) with Σ x_c ≤ available by DP over a grid of ``steps`` budget units.

    Exact on the grid for any curve shape; the grid step bounds the error.
    """
    n = len(curves)
    unit = available / steps
    grid = np.arange(steps + 1) * unit
    lo = np.zeros(n) if lo is None else np.asarray(lo, float)
    hi = np.full(n, available) if hi is None else np.asarray(hi, float)
    best = np.zeros(steps + 1)  # best[b]: best return using ≤ b units on channels so far
    choice = []
    for c, a, z in zip(curves, lo, hi):
        vals = np.where((grid >= a - 1e-9) & (grid <= z + 1e-9), c.response(grid), -np.inf)
        # new[b] = max_j vals[j] + best[b - j]
        new = np.full(steps + 1, -np.inf)
        arg = np.zeros(steps + 1, dtype=int)
        for j in np.nonzero(np.isfinite(vals))[0]:
            cand = np.full(steps + 1, -np.inf)
            cand[j:] = vals[j] + best[: steps + 1 - j]
            better = cand > new
            new[better] = cand[better]
            arg[better] = j
        best = new
        choice.append(arg)
    b = int(np.argmax(best))
    total = float(best[b])
    x = np.zeros(n)
    for i in range(n - 1, -1, -1):
        j = choice[i][b]
        x[i] = grid[j]
        b -= j
    return x, total


def random_problem(seed: int, n: int, *, budget_per_channel: float = 100_000.0, reserve: float = 0.05,
                   with_bounds: bool = False, exponential_share: float = 0.3) -> Problem:
    """Seeded random concave channels (Hill s ∈ [0.4, 1] and exponential curves).

    The current plan is a random split of the budget less the reserve; ``with_bounds`` adds a
    random min and max spend per channel.
    """
    rng = np.random.default_rng(seed)
    budget = budget_per_channel * n
    current = rng.dirichlet(np.ones(n)) * budget * (1 - reserve)
    channels = []
    for i in range(n):
        if rng.random() < exponential_share:
            curve = ExponentialCurve(beta=float(rng.uniform(1e5, 1e6)), k=float(rng.uniform(2e4, 3e5)))
        else:
            curve = HillCurve(beta=float(rng.uniform(1e5, 1e6)), k=float(rng.uniform(1e4, 2e5)),
                              s=float(rng.uniform(0.4, 1.0)))
        lo = hi = None
        if with_bounds:
            lo = float(rng.uniform(0, 0.3) * budget_per_channel)
            hi = float(lo + rng.uniform(0.5, 3.0) * budget_per_channel)
        channels.append(Channel(name=f"ch{i}", curve=curve, current=float(current[i]), min_spend=lo, max_spend=hi))
    return Problem(channels=tuple(channels), budget=budget, reserve_min_share=reserve)
