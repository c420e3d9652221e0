"""The estimator: contract, planning curves, carryover, determinism, bootstrap, report keys."""

import warnings

import numpy as np
import pandas as pd
import pytest

from models.baseline import holiday_table
from models.curves import HillCurve
from models.errors import ConvergenceWarning, NotFittedError
from models.fit import MediaMixModel, adstock, hill
from models.generate import alternative_params, generate_history, true_contributions, true_roi
from models.history import history_from_frame, load_history

EXAMPLE = "scenarios/examples/history_weekly.csv"
# Cheap settings for behaviour tests (the ground-truth tests use the defaults).
FAST = dict(method="least_squares", baseline="linear", n_starts=2, holdout=0, n_bootstrap=0)


@pytest.fixture(scope="module")
def history():
    return load_history(EXAMPLE)


@pytest.fixture(scope="module")
def fast_model(history):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MediaMixModel(**{**FAST, "n_bootstrap": 8, "n_jobs": 1}).fit(history)


def test_init_only_stores_arguments():
    m = MediaMixModel(n_starts=3, random_state=5)
    assert m.get_params()["n_starts"] == 3 and m.get_params()["random_state"] == 5
    assert not [a for a in vars(m) if a.endswith("_")]


@pytest.mark.parametrize("use", [
    lambda m: m.planning_curve("douyin", 13), lambda m: m.planning_curves(13), lambda m: m.report(),
    lambda m: m.extrapolation_cap("douyin", 13), lambda m: m.predict(None),
])
def test_unfitted_model_raises(use):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        use(MediaMixModel())


def test_fit_returns_self_and_sets_trailing_underscore_attributes(history):
    m = MediaMixModel(**FAST)
    assert m.fit(history) is m
    for name in ("params_", "alpha_", "carryover_at_end_", "spend_stats_", "roi_", "fit_", "samples_"):
        assert hasattr(m, name)


def test_adstock_is_the_geometric_recursion_from_a_steady_start():
    x = np.array([10.0, 0, 0, 5, 20, 0])
    alpha = 0.6
    e_prev = x[:4].mean() / (1 - alpha)
    expected = []
    for v in x:
        e_prev = v + alpha * e_prev
        expected.append(e_prev)
    np.testing.assert_allclose(adstock(x, alpha), expected)
    # Truncated: only max_lag lags carry over.
    np.testing.assert_allclose(adstock(np.array([0, 0, 0, 0, 8.0, 0, 0, 0]), 0.5, max_lag=2)[4:],
                               [8.0, 4.0, 2.0, 0.0])


def test_planning_curve_is_the_steady_state_of_even_spend(fast_model):
    p = fast_model.params_["douyin"]
    curve = fast_model.planning_curve("douyin", 13)
    assert curve == HillCurve(beta=13 * p.beta, k=p.k * 13 * (1 - p.alpha), s=p.s)
    # Simulate a long constant spend: per-period return converges to the curve / periods.
    X = 2_600_000.0
    x = np.full(400, X / 13)
    e = np.zeros_like(x)
    acc = 0.0
    for t, v in enumerate(x):
        acc = v + p.alpha * acc
        e[t] = acc
    per_period = p.beta * hill(e[-1], p.k, p.s)
    assert float(curve.response(X)) == pytest.approx(13 * per_period, rel=1e-9)


def test_carryover_and_spend_range_are_exposed(fast_model, history):
    x = history.spend["bilibili"].to_numpy()
    assert fast_model.carryover_at_end_["bilibili"] == pytest.approx(
        adstock(x, fast_model.alpha_["bilibili"])[-1])
    assert fast_model.spend_stats_["bilibili"]["max"] == x.max()
    assert fast_model.extrapolation_cap("bilibili", 13) == pytest.approx(1.5 * x.max() * 13)
    assert fast_model.hill_params("bilibili") == fast_model.params_["bilibili"].as_dict()


def test_decomposition_sums_to_prediction_and_agrees_with_planning(fast_model, history):
    parts = fast_model.decompose(history)
    np.testing.assert_allclose(parts.to_numpy().sum(axis=1), fast_model.predict(history))
    # A steady spend's contribution per period equals the 1-period planning curve.
    p = fast_model.params_["scrm"]
    steady = fast_model.planning_curve("scrm", 1).response(50_000.0)
    assert float(steady) == pytest.approx(p.beta * hill(50_000.0 / (1 - p.alpha), p.k, p.s), rel=1e-12)


def test_same_seed_same_fit_and_bootstrap_independent_of_workers(history):
    """Also once JAX runs in the process (a joint-model fit ran here): the workers are then not
    forked from it, which JAX warns may deadlock (its threads)."""
    import jax.numpy as jnp

    jnp.zeros(1).block_until_ready()  # JAX's backend and its threads are up, as after a fit

    kw = {**FAST, "n_bootstrap": 6}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("error", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        a = MediaMixModel(**kw, n_jobs=1, random_state=3).fit(history)
        b = MediaMixModel(**kw, n_jobs=2, random_state=3).fit(history)
    assert a.params_ == b.params_
    for c in a.channels_:
        np.testing.assert_array_equal(a.samples_[c], b.samples_[c])
        assert a.samples_[c].shape == (6, 4)


def test_report_has_the_documented_keys(fast_model):
    r = fast_model.report()
    assert {"frequency", "periods", "channels", "fit", "warnings"} <= set(r)
    assert r["frequency"] == "weekly" and r["periods"] == 156
    assert {"r2", "mape", "nrmse", "holdout"} <= set(r["fit"])
    assert set(r["fit"]["holdout"]) == {"r2", "mape", "nrmse", "periods"}
    row = r["channels"][0]
    assert {"channel", "group", "spend", "contribution", "roi", "roi_p10", "roi_p50", "roi_p90", "marginal_roi",
            "alpha", "k", "s", "spend_share", "effect_share", "warnings"} <= set(row)
    assert row["roi_p10"] <= row["roi_p50"] <= row["roi_p90"]
    assert sum(c["spend_share"] for c in r["channels"]) == pytest.approx(1.0)
    assert sum(c["effect_share"] for c in r["channels"]) == pytest.approx(1.0)
    assert r["fit"]["r2"] > 0.9


def test_holdout_is_scored_out_of_sample(history):
    m = MediaMixModel(**{**FAST, "holdout": 13}).fit(history)
    assert m.report()["fit"]["holdout"]["periods"] == 13
    assert m.report()["fit"]["holdout"]["mape"] < 0.1


def test_long_layout_fits_each_channel_on_its_own_return():
    params = alternative_params()
    frame = generate_history(params, 7)
    contrib = true_contributions(params, 7)
    rng = np.random.default_rng(0)
    rows = []
    for ch in params.channels:
        organic = 20_000 + 3_000 * np.sin(np.arange(len(frame)) * 2 * np.pi / 52)
        rows.append(pd.DataFrame({"date": frame["date"], "channel": ch.channel, "spend": frame[ch.channel],
                                  "revenue": contrib[ch.channel] + organic + rng.normal(0, 2_000, len(frame))}))
    history = history_from_frame(pd.concat(rows), layout="long")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = MediaMixModel(**FAST).fit(history)
    truth = true_roi(params, 7)
    for c, r in truth.items():
        assert m.roi_[c] == pytest.approx(r, rel=0.15), c
    assert len(m.blocks_) == len(params.channels)
    # Per-channel returns are what least squares fits well; only a total KPI gets the warning.
    assert not any(w.startswith("least squares on a total KPI") for w in m.fit_warnings())


def test_least_squares_on_a_total_kpi_says_what_it_cannot_be_trusted_with(fast_model):
    from models.fit import LEAST_SQUARES_TOTAL_KPI

    assert LEAST_SQUARES_TOTAL_KPI in fast_model.fit_warnings()
    assert "53-55%" in LEAST_SQUARES_TOTAL_KPI


def test_implausible_fits_raise_convergence_warnings(history):
    frame = pd.read_csv(EXAMPLE)
    frame["noise_channel"] = np.random.default_rng(0).uniform(10_000, 12_000, len(frame)).round()
    h = history_from_frame(frame.astype(str))
    with pytest.warns(ConvergenceWarning):
        m = MediaMixModel(**FAST).fit(h)
    assert any("noise_channel" in w for w in m.report()["warnings"])


def test_china_holidays_and_campaign_days_map_to_their_weeks():
    weeks = pd.date_range("2024-01-01", periods=52, freq="W-MON")
    table = holiday_table(weeks, "weekly")
    names = set(table["holiday"])
    assert {"Chinese New Year (Spring Festival)", "National Day", "618", "double11", "member_day"} <= names
    assert table.loc[table.holiday == "618", "ds"].tolist() == [pd.Timestamp("2024-06-17")]
    assert table.loc[table.holiday == "double11", "ds"].tolist() == [pd.Timestamp("2024-11-11")]
    monthly = holiday_table(pd.date_range("2024-01-01", periods=24, freq="MS"), "monthly")
    assert "member_day" not in set(monthly["holiday"])


@pytest.mark.slow
def test_prophet_fit_is_deterministic():
    history = history_from_frame(generate_history(alternative_params(), 7))
    a = MediaMixModel(method="least_squares", n_bootstrap=4, holdout=0, n_jobs=1).fit(history)
    b = MediaMixModel(method="least_squares", n_bootstrap=4, holdout=0, n_jobs=2).fit(history)
    assert a.params_ == b.params_
    for c in a.channels_:
        np.testing.assert_array_equal(a.samples_[c], b.samples_[c])


def test_a_channel_new_in_the_holdout_is_named_beside_the_holdout_score(history):
    """The holdout fit never sees a channel that first spends in the held-out periods: its poor
    score is the channel's absence, and the fit says so rather than only "worse than naive"."""
    frame = pd.read_csv(EXAMPLE)
    spend = frame["mini_program"].to_numpy(copy=True)
    spend[:-10] = 0.0
    frame["mini_program"] = spend
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MediaMixModel(**{**FAST, "holdout": 13}).fit(history_from_frame(frame))
    said = [w for w in model.fit_warnings() if "held-out periods" in w]
    assert said == ["mini_program: no spend before the 13 held-out periods, so the holdout fit cannot know it; "
                    "the holdout score understates the model"]
    # A channel that spent before the holdout is not named.
    plain = MediaMixModel(**{**FAST, "holdout": 13})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain.fit(history)
    assert not [w for w in plain.fit_warnings() if "held-out periods, so" in w]


def test_least_squares_says_when_the_kpi_is_not_money_in_the_spends_units():
    """No ROI prior to move, but the same reading: plans on it must not claim a money break-even."""
    frame = pd.read_csv(EXAMPLE)
    frame["revenue"] = frame["revenue"] / 100.0  # conversions at ¥100 each
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MediaMixModel(method="least_squares", n_bootstrap=0, holdout=0).fit(history_from_frame(frame))
    assert model.fit_["kpi_in_money"] is False
    said = [w for w in model.fit_warnings() if w.startswith("the KPI does not look like money")]
    assert len(said) == 1 and "14 times the whole KPI" in said[0] and "prior" not in said[0]
