"""Shared fixtures: random concave problems and the bundled examples."""

import numpy as np
import pytest

from models.curves import ExponentialCurve, HillCurve
from optimizer import Channel, Problem


def random_problem(seed: int, n: int, *, budget_per_channel: float = 100_000.0, reserve: float = 0.05,
                   with_bounds: bool = False, exponential_share: float = 0.3) -> Problem:
    """Random concave channels with a current plan that spends the budget less the reserve."""
    rng = np.random.default_rng(seed)
    budget = budget_per_channel * n
    channels = []
    current = rng.dirichlet(np.ones(n)) * budget * (1 - reserve)
    for i in range(n):
        if rng.random() < exponential_share:
            curve = ExponentialCurve(beta=float(rng.uniform(1e5, 1e6)), k=float(rng.uniform(2e4, 3e5)))
        else:
            curve = HillCurve(beta=float(rng.uniform(1e5, 1e6)), k=float(rng.uniform(1e4, 2e5)),
                              s=float(rng.uniform(0.4, 1.0)))
        lo = hi = None
        if with_bounds:
            lo = float(rng.uniform(0, 0.3) * budget / n)
            hi = float(lo + rng.uniform(0.5, 3.0) * budget / n)
        channels.append(Channel(name=f"ch{i}", curve=curve, current=float(current[i]), min_spend=lo, max_spend=hi))
    return Problem(channels=tuple(channels), budget=budget, reserve_min_share=reserve)


@pytest.fixture
def make_problem():
    return random_problem


@pytest.fixture(autouse=True, scope="session")
def _isolated_fit_cache(tmp_path_factory):
    """Fits are cached per test session, never in the user's cache folder."""
    import os

    from models.cache import CACHE_ENV

    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("fit-cache"))
    yield
    if old is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = old
