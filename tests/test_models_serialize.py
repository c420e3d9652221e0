"""Saving and loading fitted models: JSON round trip, clear errors, atomic writes."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from models.errors import ModelFileError, NotFittedError
from models.fit import MediaMixModel
from models.history import load_history
from models.serialize import SCHEMA_VERSION, load_model, save_model

EXAMPLE = "scenarios/examples/history_weekly.csv"


@pytest.fixture(scope="module")
def history():
    return load_history(EXAMPLE)


@pytest.fixture(scope="module")
def model(history):
    # Prophet baseline (the default), kept cheap: one alternation, few starts, a small bootstrap.
    return MediaMixModel(method="least_squares", n_starts=2, alternations=1, holdout=13, n_bootstrap=5,
                         n_jobs=1).fit(history)


def test_round_trip_predicts_identically(model, history, tmp_path):
    path = tmp_path / "model.json"
    save_model(model, path)
    loaded = load_model(path)
    np.testing.assert_allclose(loaded.predict(history), model.predict(history), rtol=1e-9, atol=0)
    for c in model.channels_:
        for periods in (1, 13):
            a, b = model.planning_curve(c, periods), loaded.planning_curve(c, periods)
            assert (a.beta, a.k, a.s) == pytest.approx((b.beta, b.k, b.s), rel=1e-9)
        np.testing.assert_array_equal(loaded.samples_[c], model.samples_[c])
    assert loaded.carryover_at_end_ == model.carryover_at_end_
    assert loaded.report() == json.loads(json.dumps(model.report()))
    future = pd.date_range(history.dates[-1] + pd.Timedelta(weeks=1), periods=13, freq="W-MON")
    np.testing.assert_allclose(loaded.forecast_baseline(future), model.forecast_baseline(future), rtol=1e-9)


def test_file_is_json_with_schema_version(model, tmp_path):
    path = tmp_path / "model.json"
    save_model(model, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema_version"] == SCHEMA_VERSION
    assert set(data["params"]) == set(model.channels_)


def test_save_is_atomic_and_leaves_no_temp_files(model, tmp_path):
    path = tmp_path / "model.json"
    path.write_text("old")
    save_model(model, path)
    assert os.listdir(tmp_path) == ["model.json"]
    assert path.read_text(encoding="utf-8").startswith("{")


def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(NotFittedError):
        save_model(MediaMixModel(), tmp_path / "m.json")
    assert not os.listdir(tmp_path)


def test_bad_files_raise_clear_errors(model, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelFileError, match=r"bad.json: not valid JSON"):
        load_model(bad)
    good = tmp_path / "good.json"
    save_model(model, good)
    data = json.loads(good.read_text())
    data["schema_version"] = 99
    good.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match=r"good.json: schema_version 99 is not supported \(expected 2\)"):
        load_model(good)
    data["schema_version"] = SCHEMA_VERSION
    del data["params"], data["samples"]
    good.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match=r"good.json: missing key\(s\) params, samples"):
        load_model(good)
    with pytest.raises(ModelFileError, match="missing.json: file not found"):
        load_model(tmp_path / "missing.json")
