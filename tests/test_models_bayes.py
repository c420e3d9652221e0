"""The joint Bayesian model (the default for a total KPI): contract, curves from draws, lift tests,
persistence, the sampler's warnings."""

import warnings

import numpy as np
import pandas as pd
import pytest

from models.bayes import DRAWS_KEPT
from models.errors import ConvergenceWarning
from models.fit import MediaMixModel
from models.history import history_from_frame, load_history
from models.serialize import model_from_dict, model_to_dict
from models.simulate import lift_tests, simulate, study_world, true_lift

EXAMPLE = "scenarios/examples/history_weekly.csv"
# Enough draws for the behaviour below, few enough to keep the suite quick.
QUICK = dict(method="bayes", warmup=150, draws=150, holdout=0)


def _fit(history, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MediaMixModel(**{**QUICK, **kw}).fit(history)


@pytest.fixture(scope="module")
def history():
    return load_history(EXAMPLE)


@pytest.fixture(scope="module")
def model(history):
    return _fit(history, holdout=13)


def test_the_joint_model_is_the_default_for_a_total_kpi_only(history):
    assert MediaMixModel(method="bayes").uses_joint(history)
    # auto: the joint model for a total KPI, unless a bootstrap (least squares' own) is asked for.
    assert MediaMixModel().uses_joint(history)
    assert not MediaMixModel(n_bootstrap=20).uses_joint(history)
    assert not MediaMixModel(n_bootstrap=0).uses_joint(history)
    assert MediaMixModel(method="bayes", n_bootstrap=20).uses_joint(history)
    assert not MediaMixModel(method="least_squares").uses_joint(history)
    long = pd.DataFrame({"date": ["2024-01-01", "2024-01-08"] * 1, "channel": ["a", "a"], "spend": [1, 2],
                         "revenue": [3, 4]})
    long = history_from_frame(pd.concat([long] * 20).assign(
        date=pd.date_range("2024-01-01", periods=40, freq="W-MON").strftime("%Y-%m-%d")), layout="long")
    assert not MediaMixModel().uses_joint(long)  # per-channel returns: least squares
    with pytest.raises(ValueError, match="method 'bayes' fits a total KPI"):
        MediaMixModel(method="bayes").fit(long)


def test_fit_keeps_draws_and_says_where_its_intervals_come_from(model, history):
    assert model.joint_ is not None
    unc = model.uncertainty()
    assert unc["method"] == "posterior" and unc["samples"] == min(DRAWS_KEPT, 2 * 150)
    assert unc["diagnostics"]["chains"] == 2 and unc["diagnostics"]["draws"] == 300
    for c in model.channels_:
        assert model.samples_[c].shape == (unc["samples"], 4)
        row = next(r for r in model.report()["channels"] if r["channel"] == c)
        assert row["roi_p10"] < row["roi_p50"] < row["roi_p90"]
        ident = row["identification"]
        assert 0.0 <= ident["learned"] <= 1.0 and ident["posterior_sd"] < ident["prior_sd"]
    assert model.report()["bootstrap_samples"] == 0


def test_the_planning_curve_is_the_posterior_mean_of_the_draws_curves(model):
    for c in model.channels_:
        curve = model.planning_curve(c, 13)
        draws = model.planning_curve_samples(c, 13)
        for x in (0.0, 1e5, 1e6, 1e7):
            assert float(curve.response(x)) == pytest.approx(np.mean([float(d.response(x)) for d in draws]), rel=1e-12)


def test_decomposition_adds_up_and_matches_the_fit(model, history):
    parts = model.decompose(history)
    assert np.allclose(parts.sum(axis=1).to_numpy(), model.predict(history))
    assert np.allclose(parts["baseline"].to_numpy(), model.joint_.baseline)
    # the fit explains the bundled history (0.6% noise) well in and out of sample
    assert model.fit_["r2"] > 0.9 and model.fit_["holdout"]["mape"] < 0.05


def test_same_seed_same_draws(history):
    a = _fit(history, random_state=4)
    b = _fit(history, random_state=4)
    for c in a.channels_:
        np.testing.assert_array_equal(a.samples_[c], b.samples_[c])


def test_round_trip_keeps_curves_decomposition_and_draws(model, history):
    loaded = model_from_dict(model_to_dict(model))
    for c in model.channels_:
        assert loaded.planning_curve(c, 13) == model.planning_curve(c, 13)
        np.testing.assert_array_equal(loaded.joint_.theta, model.joint_.theta)
    pd.testing.assert_frame_equal(loaded.decompose(history), model.decompose(history))
    assert loaded.uncertainty() == model.uncertainty()


def test_a_lift_test_enters_the_likelihood_and_pins_its_channel():
    world = study_world(1, 2026)
    sim = simulate(world, seed=2026 * 1000 + 1)
    history = history_from_frame(sim.frame)
    channel = world.names[0]
    test = lift_tests(sim, channels=[channel], relative_se=0.05, seed=1)[0]
    plain = _fit(history)
    tested = _fit(history, calibration=[test])
    start = history.dates.get_loc(pd.Timestamp(test["start"]))
    stop = history.dates.get_loc(pd.Timestamp(test["end"])) + 1
    truth = true_lift(sim, channel, start, stop)
    check = next(r for r in tested.channel_report_ if r["channel"] == channel)["lift_tests"][0]
    # The model's lift for the window agrees with the measurement within two of its errors ...
    assert abs(check["model"] - test["lift"]) < 2 * test["se"]
    assert abs(check["model"] - truth) < 3 * test["se"]
    # ... and the data have narrowed what the model knows about that channel's return.
    sd = {m: m.joint_.log_roi_sd[channel][1] for m in (plain, tested)}
    assert sd[tested] < 0.7 * sd[plain]


def test_a_partial_lift_test_is_the_return_of_the_spend_it_held_back():
    # A 30% holdback measures about a fifth of what a switch-off of the same window would: the
    # model must compare it with its own lift for that share of the spend, not for all of it.
    world = study_world(1, 2026)
    sim = simulate(world, seed=2026 * 1000 + 1)
    history = history_from_frame(sim.frame)
    channel = world.names[0]
    test = lift_tests(sim, channels=[channel], relative_se=0.05, seed=1, share=0.3)[0]
    tested = _fit(history, calibration=[test])
    start = history.dates.get_loc(pd.Timestamp(test["start"]))
    stop = history.dates.get_loc(pd.Timestamp(test["end"])) + 1
    truth = true_lift(sim, channel, start, stop, share=0.3)
    assert truth < 0.5 * true_lift(sim, channel, start, stop)
    check = next(r for r in tested.channel_report_ if r["channel"] == channel)["lift_tests"][0]
    assert check["tested_spend"] == pytest.approx(test["tested_spend"])
    assert abs(check["model"] - test["lift"]) < 2 * test["se"]
    assert abs(check["model"] - truth) < 3 * test["se"]


def test_too_few_draws_are_said_in_the_fit_warnings(history):
    with pytest.warns(ConvergenceWarning):
        m = MediaMixModel(method="bayes", warmup=15, draws=15, holdout=0).fit(history)
    said = " ".join(m.fit_warnings())
    assert "posterior sampler" in said or "effective posterior draws" in said


def test_an_s_curve_is_funded_past_its_inflection_in_the_prior():
    """The daily study history put its largest channel at about a third of its inflection, and the plan
    dropped the channel: the prior keeps an S-shaped draw's usual spend past its inflection."""
    from models.posterior import inflection_penalty

    kappa = np.array([3.0, 1.0, 0.5, 3.0, 0.9])
    s = np.array([0.8, 1.0, 2.5, 2.4, 2.5])
    w = np.asarray(inflection_penalty(kappa, s))
    # Concave draws and an S draw whose inflection (0.5 · 0.71 of the usual adstock) lies below
    # the usual spend: no weight at all.
    assert w[0] == 0.0 and w[1] == 0.0 and w[2] == 0.0
    # Inflection at 2.1× the usual adstock: ruled out; at 0.9 · 0.71 ≈ 0.64 of it: free.
    assert w[3] < -20.0
    assert w[4] == 0.0
    # The weight grows with how far past the usual spend the inflection lies.
    farther = np.asarray(inflection_penalty(np.array([1.5, 2.0, 4.0]), np.full(3, 2.5)))
    assert farther[0] > farther[1] > farther[2]


def test_daily_carryover_is_read_from_the_data_short_or_long():
    """Daily data can tell a carryover of a day from none, where weekly data cannot: the daily prior
    (a half-life in days) lets a flighted history show a short one and a long one alike. The prior
    it replaced (the weekly Beta(2, 3) carried over, α_day = α_week^(1/7)) kept α_day above 0.65
    in 99% of its mass and read the 0.15 channel here as 0.37."""
    from models.simulate import SimChannel, SimWorld

    truth = {"douyin": 0.9, "wecom": 0.4, "popup_stores": 0.15}  # half-lives 6.6, 0.8 and 0.4 days
    channels = tuple(SimChannel(name=name, group="content", family="hill", alpha=a, k=60_000 / (1 - a), s=0.8,
                                beta=beta, mean_spend=mean, pattern="flighted", on_share=0.6, cv=0.6, efficiency=0.0)
                     for (name, a), beta, mean in zip(truth.items(), (150_000, 90_000, 60_000), (50_000, 30_000, 30_000)))
    world = SimWorld(channels=channels, frequency="daily", periods=365, level=400_000, noise=0.03)
    m = _fit(history_from_frame(simulate(world, seed=11).frame))
    for name, a in truth.items():
        fitted = float(np.median(m.joint_.alpha[:, m.joint_.column(name)]))
        assert abs(fitted - a) < 0.1, (name, a, fitted)


def test_a_channel_that_spent_only_before_the_fitted_periods_neither_breaks_the_sampler_nor_claims_an_roi():
    """All of a channel's spend in the burn-in (the first 8 weeks, left out of the likelihood):
    its half-saturation was scaled by a mean spend of 0, the gradient was NaN and nearly every
    transition divergent, for all channels, and its ROI band was the prior's beside an ROI of 0."""
    frame = pd.read_csv(EXAMPLE)
    spend = frame["mini_program"].to_numpy(copy=True)
    spend[6:] = 0.0
    frame["mini_program"] = spend
    model = _fit(history_from_frame(frame))
    diag = model.uncertainty()["diagnostics"]
    assert diag["divergences"] <= 0.05 * diag["draws"], diag
    row = next(r for r in model.report()["channels"] if r["channel"] == "mini_program")
    assert row["roi"] == 0.0 and row["roi_p10"] == 0.0 and row["roi_p90"] == 0.0
    assert any(w.startswith("mini_program: all its spend lies in the first 8 weeks") for w in model.fit_warnings())
    # The other channels are still read from the data (bands, not zeros).
    others = [r for r in model.report()["channels"] if r["channel"] != "mini_program"]
    assert all(0.0 < r["roi_p10"] < r["roi_p90"] for r in others)


def test_a_channel_whose_spend_never_moves_is_graded_poor_and_named_with_its_test():
    """Spend fixed at one level every week cannot be told from the baseline's level. The joint
    model's posterior on its ROI was still narrower than the prior (58% "learned", from the
    baseline's priors, not the data), so the channel was graded "good" and the plan could move
    its money freely: it is "poor", for the reason in words, with the switch-off test to run."""
    frame = pd.read_csv(EXAMPLE)
    frame["scrm"] = 50_000.0
    model = _fit(history_from_frame(frame))
    rows = {r["channel"]: r for r in model.report()["channels"]}
    ident = rows["scrm"]["identification"]
    assert ident["level"] == "poor" and "constant" in ident["reasons"] and ident["variation"] == 0.0
    warning = next(w for w in model.fit_warnings() if w.startswith("scrm: poorly identified"))
    assert "spend barely varies" in warning and "switch-off" in warning
    # A channel whose spend does move keeps its grade from the other figures.
    assert "constant" not in rows["douyin"]["identification"]["reasons"]
    assert rows["douyin"]["identification"]["variation"] > 0.1


def test_the_roi_prior_follows_the_kpi_when_it_is_not_money_in_the_spends_units():
    """Meridian's default for a KPI that is not revenue: paid media's share of the KPI, mean 40%."""
    import math

    from models.posterior import PRIOR_ROI, kpi_roi_prior

    # KPI in money beside spend in the same units (the bundled history: spend ~ 20% of revenue).
    assert kpi_roi_prior(2e6, 1e7) is None
    # Said, not checked: "money" never moves the prior, "other" always puts it on the share.
    assert kpi_roi_prior(2e6, 1e3, "money") is None
    (mean, sd), _ = kpi_roi_prior(2e6, 1e7, "other")
    assert math.exp(mean + sd ** 2 / 2) * 2e6 / 1e7 == pytest.approx(0.4)
    for spend, kpi in ((2e6, 1e5), (2e6, 1e3), (2e2, 1e7)):  # conversions; a KPI in 万; spend in 万
        (mean, sd), share = kpi_roi_prior(spend, kpi)
        assert share == pytest.approx(math.exp(PRIOR_ROI[0]) * spend / kpi)
        # paid media's share of the KPI at the prior: log-normal with mean 40% and sd 20%
        assert math.exp(mean + sd ** 2 / 2) * spend / kpi == pytest.approx(0.4)
        assert math.sqrt(math.exp(sd ** 2) - 1) * 0.4 == pytest.approx(0.2)


def test_a_kpi_in_wan_is_fitted_on_its_own_scale_and_says_so(model, history):
    """The bundled history with its KPI in 万 (units of ¥10,000) beside spend in yuan: the true
    ROIs (~3e-4) lay 9 prior sd below the money prior's median, and the fit did not converge
    (R̂ 1.53, 2 effective draws, every ROI printed as 0.00). Now it finds the ROIs it finds on
    revenue, ÷ 10,000, converged, and says why the prior moved."""
    frame = pd.read_csv(EXAMPLE)
    frame["revenue"] = frame["revenue"] / 1e4
    wan = _fit(history_from_frame(frame))
    assert any(w.startswith("the KPI does not look like money") for w in wan.fit_warnings())
    assert not any(w.startswith("the KPI does not look like money") for w in model.fit_warnings())
    assert wan.uncertainty()["diagnostics"]["r_hat"] < 1.1  # 150 draws a chain here; 1.015 with the default 400
    money = {r["channel"]: r["roi"] for r in model.report()["channels"]}
    for r in wan.report()["channels"]:
        assert r["roi"] * 1e4 == pytest.approx(money[r["channel"]], rel=0.15), r["channel"]
    assert wan.fit_["kpi_in_money"] is False and model.fit_["kpi_in_money"] is True


def test_a_plan_on_a_kpi_that_is_not_money_claims_no_break_even(tmp_path):
    """A saved fit of a conversions KPI planned through [model]: its marginal ROI (~0.02
    conversions per yuan) used to read as "the last ¥6.5M spent loses money"."""
    from models.serialize import save_model
    from scenarios import load_scenario
    from scenarios.plan import plan_scenario

    frame = pd.read_csv(EXAMPLE)
    frame["revenue"] = frame["revenue"] / 100.0
    save_model(_fit(history_from_frame(frame)), tmp_path / "conversions.json")
    text = open("scenarios/examples/quarterly.toml", encoding="utf-8").read()
    head, rest = text.split("[history]", 1)
    rest = rest[rest.index("\n[", 0):]  # the [history] table's keys dropped
    (tmp_path / "plan.toml").write_text(head + '[model]\npath = "conversions.json"\nperiods = 13\n' + rest,
                                        encoding="utf-8")
    scenario = load_scenario(tmp_path / "plan.toml")
    assert scenario.problem.return_in_money is False
    alloc = plan_scenario(scenario).allocation
    assert alloc.feasible and alloc.marginal_roi < 1 and alloc.break_even_budget is None
    assert not any("loses money" in w for w in alloc.warnings)
    assert any("KPI units, not money" in w for w in alloc.warnings)
    assert any(w.startswith("curves: the KPI does not look like money") for w in alloc.warnings)
    assert any(n.startswith("the KPI is not money") and "only spend, budget and reserve are money" in n
               for n in alloc.notes)
    assert alloc.to_dict()["return_unit"] == "kpi"
    # The table prints ROIs of a few hundredths with two significant digits, not as 0.02 or 0.00,
    # and says which figures are money.
    from scenarios.render import allocation_table

    assert "returns in the KPI's own units" in allocation_table(alloc)

    douyin = next(c for c in alloc.channels if c.channel == "douyin")
    row = next(line for line in allocation_table(alloc).splitlines() if line.startswith("douyin "))
    digits = 1 - int(np.floor(np.log10(douyin.marginal_roi)))
    assert row.split()[-1] == f"{douyin.marginal_roi:.{digits}f}" and digits >= 3
    from scenarios.frontier import budget_frontier

    frontier = budget_frontier(scenario, levels=[0.5, 1.0])
    assert any(n.startswith("the KPI is not money") for n in frontier["notes"])
