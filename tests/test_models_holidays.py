"""Holiday calendars: China's plus its e-commerce campaign days by default, any country on request."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from models.baseline import holiday_table
from models.errors import ConvergenceWarning
from models.fit import MediaMixModel
from models.history import history_from_frame

WEEKS = pd.date_range("2024-01-01", periods=52, freq="W-MON")
CAMPAIGN = {"618", "double11", "member_day"}


def test_default_is_china_with_its_campaign_days():
    names = set(holiday_table(WEEKS, "weekly")["holiday"])
    assert {"Chinese New Year (Spring Festival)", "National Day"} <= names
    assert CAMPAIGN <= names


def test_another_country_gets_its_own_holidays_and_no_chinese_campaign_days():
    table = holiday_table(WEEKS, "weekly", country="DE")
    names = set(table["holiday"])
    assert {"German Unity Day", "Christmas Day", "Easter Monday"} <= names
    assert not names & (CAMPAIGN | {"Chinese New Year (Spring Festival)", "National Day"})
    # Tag der Deutschen Einheit (Thursday 3 October 2024) lands in the week starting Monday 30 September.
    assert table.loc[table.holiday == "German Unity Day", "ds"].tolist() == [pd.Timestamp("2024-09-30")]


def test_campaign_days_can_be_asked_for_in_another_country():
    names = set(holiday_table(WEEKS, "weekly", country="DE", campaign_days=True)["holiday"])
    assert CAMPAIGN <= names and "German Unity Day" in names


@pytest.mark.parametrize("code,message", [
    ("XX", "unknown country code 'XX' (holiday calendars use ISO 3166 codes such as \"CN\", \"DE\", \"US\")"),
    ("de", "unknown country code 'de' (did you mean \"DE\"?)"),
    ("Germany", "unknown country code 'Germany' (did you mean \"DE\"?)"),
    (49, "must be a country code such as \"DE\", got 49"),
])
def test_unknown_country_codes_are_named(code, message):
    from models.baseline import country_problem

    assert country_problem(code) == message


def test_known_codes_and_none_pass():
    from models.baseline import country_problem

    assert country_problem("CN") is None
    assert country_problem("DE") is None
    assert country_problem("USA") is None
    assert country_problem(None) is None


def test_an_unknown_country_is_a_clear_error_before_any_fitting():
    with pytest.raises(ValueError, match="^holidays: unknown country code 'XX'"):
        holiday_table(WEEKS, "weekly", country="XX")
    h = history_from_frame(_frame(60))
    with pytest.raises(ValueError, match="^holidays: unknown country code 'XX'"):
        MediaMixModel(holidays="XX", baseline="linear", n_starts=1, holdout=0, n_bootstrap=0).fit(h)


def test_scenario_history_table_refuses_an_unknown_country(tmp_path):
    from scenarios.errors import ScenarioError
    from scenarios.schema import scenario_from_dict

    (tmp_path / "h.csv").write_text("date,revenue\n")
    data = {"budget": {"total": 1e6}, "history": {"path": "h.csv", "holidays": "XX"}}
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data, base=tmp_path)
    assert [p for p in info.value.problems if p.startswith("history")] == [
        "history.holidays: unknown country code 'XX' (holiday calendars use ISO 3166 codes such as "
        "\"CN\", \"DE\", \"US\")",
    ]


def test_scenario_history_table_passes_holidays_and_date_format_to_the_fit(monkeypatch, tmp_path):
    import models.cache
    from scenarios.schema import scenario_from_dict

    seen = {}

    def fake_fit(path, spec, settings, **kw):
        seen.update(spec=spec, settings=settings)
        raise RuntimeError("stop here")

    monkeypatch.setattr(models.cache, "fit_history", fake_fit)
    (tmp_path / "h.csv").write_text("date,revenue\n")  # the scenario checks that its history exists
    data = {"budget": {"total": 1e6},
            "history": {"path": "h.csv", "holidays": "DE", "campaign_days": True, "date_format": "%d.%m.%Y"}}
    with pytest.raises(RuntimeError, match="stop here"):
        scenario_from_dict(data, base=tmp_path)
    assert seen["settings"] == {"holidays": "DE", "campaign_days": True}
    assert seen["spec"].date_format == "%d.%m.%Y"


def test_the_country_changes_the_fit_cache_key(tmp_path):
    from models.cache import fit_key
    from models.history import HistorySpec

    path = tmp_path / "h.csv"
    path.write_text("date,revenue\n")
    keys = {fit_key(path, HistorySpec(), {}), fit_key(path, HistorySpec(), {"holidays": "DE"}),
            fit_key(path, HistorySpec(date_format="%d.%m.%Y"), {})}
    assert len(keys) == 3


def test_new_default_priors_change_the_fit_cache_key(tmp_path, monkeypatch):
    """A release whose joint model draws under other priors must not serve the old fits."""
    from dataclasses import dataclass

    from models import posterior
    from models.cache import fit_key
    from models.history import HistorySpec

    path = tmp_path / "h.csv"
    path.write_text("date,revenue\n")
    before = fit_key(path, HistorySpec(), {"method": "bayes"})
    assert fit_key(path, HistorySpec(), {"method": "bayes"}) == before

    @dataclass(frozen=True)
    class Wider(posterior.Priors):
        shape: tuple[float, float] = (0.0, 0.8)

    monkeypatch.setattr(posterior, "Priors", Wider)
    assert fit_key(path, HistorySpec(), {"method": "bayes"}) != before


def test_a_new_meaning_of_auto_changes_the_fit_cache_key(tmp_path, monkeypatch):
    """A cached "auto" fit made by least squares must not be served once auto means the joint model."""
    from models import fit
    from models.cache import fit_key
    from models.history import HistorySpec

    path = tmp_path / "h.csv"
    path.write_text("date,revenue\n")
    before = fit_key(path, HistorySpec(), {})
    monkeypatch.setattr(fit, "AUTO_TOTAL_KPI", "least_squares")
    assert fit_key(path, HistorySpec(), {}) != before


def test_a_new_fit_revision_changes_the_fit_cache_key(tmp_path, monkeypatch):
    """A release that changes what a fit reports (grades, warnings, draws) must not serve old fits."""
    from models import fit
    from models.cache import fit_key
    from models.history import HistorySpec

    path = tmp_path / "h.csv"
    path.write_text("date,revenue\n")
    before = fit_key(path, HistorySpec(), {})
    monkeypatch.setattr(fit, "FIT_REVISION", fit.FIT_REVISION + 1)
    assert fit_key(path, HistorySpec(), {}) != before


def _frame(n):
    dates = pd.date_range("2022-01-03", periods=n, freq="W-MON")
    rng = np.random.default_rng(3)
    tv = rng.uniform(10_000, 50_000, n)
    revenue = 1_000_000 + 4 * tv + rng.normal(0, 10_000, n)
    return pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "revenue": revenue.round(), "tv": tv.round()}).astype(str)


def test_a_german_fit_puts_german_holidays_in_prophet_and_the_json_keeps_them():
    from models.serialize import model_from_dict, model_to_dict

    h = history_from_frame(_frame(104))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MediaMixModel(method="least_squares", holidays="DE", n_starts=1, alternations=1, holdout=0, n_bootstrap=0,
                              n_jobs=1).fit(h)
    prophet_names = set(model.blocks_[0].baseline.model.holidays["holiday"])
    assert {"German Unity Day", "Christmas Day"} <= prophet_names
    assert not prophet_names & (CAMPAIGN | {"National Day"})

    data = json.loads(json.dumps(model_to_dict(model)))
    loaded = model_from_dict(data)
    assert loaded.holidays == "DE"
    assert "German Unity Day" in set(loaded.blocks_[0].baseline.model.holidays["holiday"])
    # A model file written before the setting existed loads as China's calendar.
    del data["settings"]["holidays"]
    assert model_from_dict(data).holidays == "CN"
