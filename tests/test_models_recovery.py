"""Recovery on histories the model was not built around (issue 9 §6): the study's hard cases.

Each case is one dataset of the recovery study (``benchmarks/attribution.py``, seed 2026): spend
always-on and correlated or a mix, 4–8% noise, logistic/exponential/Weibull response and seasonal
efficiency, none of it the model's Hill-on-adstock form. The study's scorer fits the joint Bayesian
model as ``budget fit --method bayes`` does, and scores its plans on the TRUE curves against
the exact optimum. What is asserted is what a user is promised, not a fraction of the optimum:

* the default plan does no harm: it never loses more than keeping the historical split;
* a lift test per channel brings the plan closer to the optimum than the history alone;
* the 80% intervals hold the truth for a fair share of channels (the study's target is 70–90%,
  its result 69%; here, pooled over its hardest cases, at least 45%).
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import benchmarks.attribution as study  # noqa: E402
from benchmarks.attribution import BUDGETS, run_dataset  # noqa: E402

pytestmark = pytest.mark.slow

SEED = 2026
#: Dataset 1: 4 always-on channels correlated with each other and the season, 8% noise (the one
#: where the posterior-mean plan nearly lost to the split at 2×). Dataset 2: 7 channels, a mix of
#: flighted and always-on, the study's lowest interval coverage.
HARD = (1, 2)


_RUNS: dict[int, dict] = {}


@pytest.fixture(scope="module", autouse=True)
def saved_fits(tmp_path_factory):
    """The study keeps its fits (``--models``) so that a rule can be scored again without refitting."""
    study.MODELS = str(tmp_path_factory.mktemp("fits"))
    yield Path(study.MODELS)
    study.MODELS = None


def _scored(index: int) -> dict:
    if index not in _RUNS:
        _RUNS[index] = run_dataset(index, SEED, calibrate=True)
    return _RUNS[index]


@pytest.fixture(params=HARD, ids=lambda i: f"dataset{i}")
def scored(request):
    return _scored(request.param)


def test_the_histories_are_hard(scored):
    # Not the model's own world: realistic noise and another saturation family.
    assert scored["noise"] >= 0.04
    assert any(c["family"] != "hill" for c in scored["channel_detail"])


def test_the_default_plan_never_loses_more_than_the_historical_split(scored):
    for m in BUDGETS:
        r = scored["regret"][f"{m:g}x"]
        # 0.5 point: the money a plan may leave on the table against the split through the
        # posterior's error where both are within noise of each other (dataset 1 at 2×: 0.2).
        assert r["model"] <= r["historical"] + 0.005, (m, r)
    r = scored["regret"]["1x"]
    assert r["model"] <= r["historical"], r


def test_a_lift_test_per_channel_brings_the_plan_closer_to_the_optimum(scored):
    r = scored["regret"]["1x"]
    assert r["calibrated"] < r["model"], r
    assert r["calibrated"] <= 0.05, r


def test_pooled_coverage_over_the_hard_cases():
    inside = [c["roi_p10"] <= c["true_roi"] <= c["roi_p90"] for i in HARD for c in _scored(i)["channel_detail"]]
    # The study's 69% (target 70–90%); on these two 45% (dataset 1: 3 of 4, dataset 2: 2 of 7).
    assert np.mean(inside) >= 0.45, inside


def test_a_saved_fit_scores_the_same_as_the_fit_itself(saved_fits):
    # The model JSON carries everything a plan needs (posterior draws, identification, the
    # extrapolation caps): scoring it again from the file gives every figure the fit gave.
    first = _scored(HARD[0])
    assert sorted(p.name for p in saved_fits.glob(f"{SEED}-{HARD[0]}*")) == [
        f"{SEED}-{HARD[0]}-tested-1.json", f"{SEED}-{HARD[0]}-tested-1.seconds.json",
        f"{SEED}-{HARD[0]}.json", f"{SEED}-{HARD[0]}.seconds.json"]
    again = run_dataset(HARD[0], SEED, calibrate=True)
    assert again == first
