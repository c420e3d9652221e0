"""Response curves: derivatives, envelopes, the marginal-ROI cap, plain-data round trips."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.curves import (
    CurveSet, ExponentialCurve, HillCurve, HillMixture, PointsCurve, curve_from_dict, curve_problems,
)

CURVES = [
    HillCurve(3e6, 1e6, 0.8),
    HillCurve(2e6, 5e5, 1.0),
    HillCurve(5e6, 1.4e6, 2.5),
    ExponentialCurve(2e6, 8e5),
    PointsCurve([2e5, 5e5, 1e6, 2e6], [6e5, 1.1e6, 1.5e6, 1.7e6]),
]


@pytest.mark.parametrize("curve", CURVES[:4])
def test_marginal_is_the_derivative(curve):
    x = np.linspace(1e4, 4e6, 50)
    h = 1e-3 * x
    numeric = (curve.response(x + h) - curve.response(x - h)) / (2 * h)
    assert curve.marginal(x) == pytest.approx(numeric, rel=1e-5)


@pytest.mark.parametrize("curve", CURVES)
def test_envelope_is_concave_and_above(curve):
    env = curve.envelope()
    x = np.linspace(0, 5e6, 2001)
    assert env.is_concave
    assert (env.response(x) >= curve.response(x) - 1e-6).all()
    slopes = np.diff(env.response(x)) / np.diff(x)
    assert (np.diff(slopes) <= 1e-9 * np.abs(slopes[1:]).max()).all()
    if curve.is_concave:
        assert env is curve


def test_s_curve_envelope_touches_at_the_tangent_point():
    c = HillCurve(5e6, 1.4e6, 2.5)
    xt = c.tangent_point
    assert c.envelope().response(xt) == pytest.approx(c.response(xt))
    assert c.marginal(xt) == pytest.approx(c.response(xt) / xt, rel=1e-9)
    assert 0 < c.concave_from < xt


@pytest.mark.parametrize("curve", CURVES)
def test_spend_at_marginal_is_the_last_spend_worth_mu(curve):
    mu = 0.9
    cap = curve.spend_at_marginal(mu, 5e6)
    assert float(curve.marginal(cap * (1 - 1e-6))) >= mu - 1e-6 or cap == 0
    beyond = np.linspace(cap * 1.001 + 1, 5e6, 50)
    assert (curve.marginal(beyond) < mu + 1e-9).all()


@settings(max_examples=40, deadline=None)
@given(beta=st.floats(1e3, 1e8), k=st.floats(1e2, 1e7), s=st.floats(0.2, 3.0), x=st.floats(0, 1e8))
def test_curve_set_matches_each_curve(beta, k, s, x):
    curves = [HillCurve(beta, k, s), ExponentialCurve(beta, k), PointsCurve([k, 2 * k], [beta / 2, beta])]
    fam = CurveSet(curves)
    xs = np.full(3, x)
    assert fam.response(xs) == pytest.approx([float(c.response(x)) for c in curves], rel=1e-12, abs=1e-9)
    assert fam.marginal(xs) == pytest.approx([float(c.marginal(x)) for c in curves], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("curve", CURVES)
def test_plain_data_round_trip(curve):
    again = curve_from_dict(curve.to_dict())
    x = np.linspace(0, 3e6, 17)
    assert again.response(x) == pytest.approx(curve.response(x))


def test_points_validation_messages():
    assert curve_problems({"kind": "points", "points": [[0, 0], [1, 2], [1, 3]]}, "c") == [
        "c.points: point spends must be strictly increasing"
    ]
    assert curve_problems({"kind": "hill", "beta": -1, "k": 1, "shape": 2}, "c") == [
        "c.shape: unknown key for a hill curve",
        "c.beta: must be ≥ 0, got -1",
    ]
    # the kind under another key, or none at all
    assert curve_problems({"type": "hill", "beta": 1, "k": 1, "s": 1}, "c") == [
        'c.type: not a key of a curve; write kind = "hill"']
    assert curve_problems({"beta": 1, "k": 1}, "c") == ["c.kind: missing (one of exponential, hill, hill_mixture, points)"]
    assert curve_problems({"kind": "points", "points": [[0, "x"]]}, "c") == [
        "c.points[0]: must be [spend, return] numbers, got [0, 'x']"
    ]


def test_a_curve_without_effect_has_marginal_zero_even_at_zero_spend():
    """β = 0 (a channel fitted with no detectable effect): its next yuan returns 0, not ∞."""
    import numpy as np

    from models.curves import HillCurve

    flat = HillCurve(beta=0.0, k=1e5, s=0.7)
    assert flat.marginal(np.array([0.0, 1.0, 1e6])).tolist() == [0.0, 0.0, 0.0]
    assert HillCurve(beta=1e6, k=1e5, s=0.7).marginal(np.array([0.0]))[0] == float("inf")


def _marginal_rises(curve, top: float) -> bool:
    """Brute force: does the marginal rise anywhere on a very fine grid up to ``top``?"""
    x = top * np.concatenate([np.geomspace(1e-7, 1e-3, 400, endpoint=False), np.linspace(1e-3, 1.5, 20000)])
    m = curve.marginal(x)
    return bool((np.diff(m) > 1e-9 * np.max(m[np.isfinite(m)])).any())


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), shaped=st.floats(0.0, 1.0))
def test_a_posterior_mean_curve_is_concave_exactly_when_its_marginal_never_rises(seed, shaped):
    """Posterior draws mix concave and S-shaped Hill curves; the mean curve is S-shaped only
    where the S draws outweigh the concave ones, and the planner must know where."""
    rng = np.random.default_rng(seed)
    n = 60
    s = np.where(rng.random(n) < shaped, rng.uniform(1.05, 3.5, n), rng.uniform(0.4, 1.0, n))
    mix = HillMixture(rng.uniform(1e5, 1e6, n), rng.uniform(1e5, 2e6, n), s)
    top = 2e6 * 1.5
    assert mix.is_concave == (not _marginal_rises(mix, top))
    if not mix.is_concave:
        # Concave from there on, and not from much earlier: the marginal rises just before it.
        past = mix.concave_from * np.linspace(1.0, 20.0, 4000)
        assert (np.diff(mix.marginal(past)) <= 1e-9 * mix.marginal(past).max()).all()
        before = mix.concave_from * np.linspace(0.95, 1.0, 400)
        assert (np.diff(mix.marginal(before)) > 0).any()
        env = mix.envelope()
        xs = np.linspace(0, 4e6, 801)
        assert (env.response(xs) >= mix.response(xs) - 1e-5 * mix.response(xs).max()).all()


def test_concave_draws_and_a_few_weak_s_draws_still_make_a_concave_mean():
    concave = HillMixture([1e6] * 9 + [1e4], [5e5] * 9 + [5e5], [0.6] * 9 + [2.0])
    assert concave.is_concave and concave.concave_from == 0.0
    s_heavy = HillMixture([1e4, 1e6], [5e5, 5e5], [0.6, 2.0])
    assert not s_heavy.is_concave
    assert s_heavy.concave_from <= 5e5 * (1 / 3) ** 0.5 * 1.001  # the S draw's inflection bounds it
