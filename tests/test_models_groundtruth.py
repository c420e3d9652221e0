"""Known-answer tests: fit data generated from known curves, score ROI and plans with the truth."""

import numpy as np
import pytest

from models.generate import alternative_params, bundled_params, generate_history, true_planning_curve, true_roi
from models.fit import MediaMixModel
from models.history import history_from_frame
from optimizer import Channel, Problem, optimize

pytestmark = pytest.mark.slow

PERIODS = 13  # one quarter of weeks


def allocate(curves: dict, caps: dict, budget: float) -> dict:
    """Exact optimum of separable concave curves: bisection on the common marginal return λ."""
    if sum(caps.values()) <= budget:
        return dict(caps)

    def spend(lam):
        return {c: curves[c].spend_at_marginal(lam, caps[c]) for c in curves}

    lo, hi = 0.0, max(float(curves[c].marginal(1e-9 * caps[c])) for c in curves)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if sum(spend(mid).values()) > budget:
            lo = mid
        else:
            hi = mid
    x = spend(hi)  # slightly under budget; give the remainder to the channel with room at λ
    gap = budget - sum(x.values())
    for c in sorted(curves, key=lambda c: -float(curves[c].marginal(x[c]))):
        add = min(gap, caps[c] - x[c])
        x[c] += add
        gap -= add
    return x


@pytest.fixture(scope="module", params=["bundled", "alternative"])
def world(request):
    params = bundled_params() if request.param == "bundled" else alternative_params()
    seed = 7
    frame = generate_history(params, seed)
    history = history_from_frame(frame)
    model = MediaMixModel(n_bootstrap=0, random_state=0).fit(history)
    return params, seed, frame, model


def test_fitted_roi_matches_the_truth(world):
    params, seed, _, model = world
    truth = true_roi(params, seed)
    errors = {c: model.roi_[c] / truth[c] - 1 for c in truth}
    assert all(abs(e) <= 0.15 for e in errors.values()), errors
    assert np.median(np.abs(list(errors.values()))) <= 0.10, errors


def test_true_rois_are_realistic(world):
    params, seed, _, _ = world
    assert all(1.5 <= r <= 6 for r in true_roi(params, seed).values())


def test_plan_from_fitted_curves_nearly_matches_the_true_optimum(world):
    params, _, frame, model = world
    channels = [c.channel for c in params.channels]
    budget = frame[channels].to_numpy().sum(axis=1).mean() * PERIODS
    caps = {c: model.extrapolation_cap(c, PERIODS) for c in channels}
    true_curves = {c: true_planning_curve(params, c, PERIODS) for c in channels}
    fitted_plan = allocate(model.planning_curves(PERIODS), caps, budget)
    best_plan = allocate(true_curves, caps, budget)
    assert sum(fitted_plan.values()) == pytest.approx(budget, rel=1e-9)

    def true_return(plan):
        return sum(float(true_curves[c].response(plan[c])) for c in channels)

    assert true_return(fitted_plan) >= 0.98 * true_return(best_plan)
    # And the plan beats spending the budget in the historical mix.
    mix = {c: budget * frame[c].sum() / frame[channels].to_numpy().sum() for c in channels}
    assert true_return(fitted_plan) >= true_return(mix)


@pytest.fixture(scope="module")
def joint_bundled():
    params = bundled_params()
    frame = generate_history(params, 7)
    model = MediaMixModel(method="bayes", random_state=0, holdout=0).fit(history_from_frame(frame))
    return params, frame, model


def test_joint_fit_recovers_the_bundled_world_and_plans_above_its_mix(joint_bundled):
    """The joint model on the example's own world (0.6% noise): its baseline calendar used to leave
    1.3% of the KPI unexplained, which the media absorbed (ROIs off by up to 32%, the plan below
    the historical mix); with the calendar carrying campaign days and festival weeks it must not."""
    params, frame, model = joint_bundled
    truth = true_roi(params, 7)
    errors = {c: model.roi_[c] / truth[c] - 1 for c in truth}
    assert np.median(np.abs(list(errors.values()))) <= 0.10, errors
    assert max(abs(e) for e in errors.values()) <= 0.25, errors
    channels = [c.channel for c in params.channels]
    budget = frame[channels].to_numpy().sum(axis=1).mean() * PERIODS
    caps = {c: model.extrapolation_cap(c, PERIODS) for c in channels}
    true_curves = {c: true_planning_curve(params, c, PERIODS) for c in channels}
    # The posterior-mean curves may be S-shaped (the shape prior has S-curves): the optimizer's
    # exact mode, not bisection, gives their optimum.
    fitted = model.planning_curves(PERIODS)
    problem = Problem(channels=tuple(Channel(name=c, curve=fitted[c], extrapolation_cap=caps[c]) for c in channels),
                      budget=budget, reserve_min_share=0.0)
    alloc = optimize(problem, exact=True)
    plan = {r.channel: r.spend for r in alloc.channels}
    mix = {c: budget * frame[c].sum() / frame[channels].to_numpy().sum() for c in channels}

    def true_return(p):
        return sum(float(true_curves[c].response(p[c])) for c in channels)

    assert true_return(plan) > true_return(mix)
