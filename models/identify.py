"""How well a history identifies each channel's return, and the lift test that would settle it.

From a total KPI a channel's effect is told apart from the rest only by how its spend moves on
its own: spend that moves with another channel's, or with the season the baseline also follows,
or hardly moves at all, leaves its return to the priors and to chance (the recovery study,
``benchmarks/attribution.py``, measures how far). Per channel:

* ``corr_channel`` / ``with``: the largest correlation of its effective (adstocked) spend with
  another channel's;
* ``corr_season``: the multiple correlation of its effective spend with the baseline's own
  regressors (trend, yearly waves, holidays and campaign days, controls);
* ``dark_share``: the share of periods it did not spend (on/off variation helps);
* ``variation``: the coefficient of variation of its spend; below
  :data:`models.history.NEAR_CONSTANT_CV` the spend barely moves, so its return cannot be told
  from the baseline's level at all: "poor" whatever the other figures say (a posterior can still
  look narrower than its prior there, narrowed by the baseline's priors, not by the data);
* ``spread``: the width of its ROI interval, (P90 − P10) / P50 over the curve samples;
* ``learned`` (the joint Bayesian model): how much the data narrowed the prior on its ROI,
  1 − posterior sd / prior sd of log ROI (0: the data taught nothing, the ROI is the prior's);
  ``prior_sd`` and ``posterior_sd`` beside it;
* ``level``: "calibrated" (a lift test pins it), "good", "weak" or "poor", from the figures above
  (:data:`WEAK` and :data:`POOR` thresholds);
* ``lift_test``: the switch-off test that would measure it to about ±50% (z ≈ 2): how many
  periods, and the spend those periods would hold back.

A plan that moves money mainly through weak or poor channels says so and names the test
(:func:`scenarios.plan.evidence_warnings`).
"""

from __future__ import annotations

import math

import numpy as np

from models.history import NEAR_CONSTANT_CV

__all__ = ["WEAK", "POOR", "PERIOD_WORD", "channel_identification", "identification_warning", "lift_test_size",
           "periods_text"]

#: Thresholds of a "weak" channel: any of these.
WEAK = {"corr_channel": 0.6, "corr_season": 0.6, "spread": 0.6}
#: Thresholds of a "poor" channel (or no detectable effect).
POOR = {"corr_channel": 0.8, "corr_season": 0.8, "spread": 1.2}
#: With a posterior: "weak" below this share of the prior's width learned, "poor" below the other.
LEARNED_WEAK, LEARNED_POOR = 0.5, 0.25
#: Longest test worth proposing, in periods per frequency (a quarter).
_LONGEST = {"daily": 91, "weekly": 13, "monthly": 3}
_SHORTEST = {"daily": 14, "weekly": 2, "monthly": 1}


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() <= 0 or b.std() <= 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _multiple_corr(v: np.ndarray, basis: np.ndarray) -> float:
    """Correlation of ``v`` with its least-squares fit on ``basis`` (which holds an intercept)."""
    if v.std() <= 0:
        return 1.0  # constant spend: indistinguishable from the baseline's intercept
    coef, *_ = np.linalg.lstsq(basis, v, rcond=None)
    fitted = basis @ coef
    return max(0.0, min(1.0, _corr(v, fitted)))


def lift_test_size(contribution_per_period: float, noise: float, mean_spend: float, frequency: str) -> dict:
    """The switch-off test that measures a channel's return to z ≈ 2 (about ±50%).

    Switching a channel off for n periods removes about n · c of return, against noise of about
    σ · √n in the KPI over those periods: z = c √n / σ ≥ 2 needs n ≥ (2σ / c)². Returns
    ``{"periods", "spend", "feasible"}``; ``feasible`` is False when that takes longer than a
    quarter (the channel is too small for the KPI to show: a platform's conversion-lift study or
    a geo test with many regions is the way).
    """
    shortest, longest = _SHORTEST[frequency], _LONGEST[frequency]
    if contribution_per_period <= 0 or noise <= 0:
        n = longest + 1
    else:
        n = math.ceil((2.0 * noise / contribution_per_period) ** 2)
    periods = max(shortest, min(n, longest))
    return {"periods": int(periods), "spend": float(periods * mean_spend), "feasible": bool(n <= longest)}


def channel_identification(spend: np.ndarray, effective: np.ndarray, basis: np.ndarray, channels: list[str],
                           roi_samples: dict, contribution: dict, noise: float, pool_roi: float,
                           frequency: str, calibrated: set[str], roi_sd: dict | None = None) -> dict[str, dict]:
    """Per channel, the figures of the module docstring.

    ``spend`` and ``effective`` are periods × channels (raw and adstocked at the fitted α),
    ``basis`` the baseline's regressors (periods × k, with an intercept), ``roi_samples`` the
    bootstrap ROI per channel (may be empty), ``contribution`` the fitted mean return per period,
    ``noise`` the KPI's residual standard deviation, ``pool_roi`` all media return over all spend
    (stands in for a channel whose own return is 0, to size its test). ``roi_sd``: per channel
    (prior sd, posterior sd) of log ROI (the joint model); the share learned then grades the
    channel in place of the interval's width.
    """
    out = {}
    C = len(channels)
    for j, c in enumerate(channels):
        e = effective[:, j]
        others = [(abs(_corr(e, effective[:, i])), channels[i]) for i in range(C) if i != j]
        corr_channel, partner = max(others) if others else (0.0, None)
        corr_season = _multiple_corr(e, basis)
        dark = float(np.mean(spend[:, j] <= 0))
        mean_spend = float(spend[:, j].mean())
        variation = float(spend[:, j].std() / mean_spend) if mean_spend > 0 else None
        samples = np.asarray(roi_samples.get(c, ()), dtype=float)
        spread = None
        if samples.size >= 5:
            p10, p50, p90 = np.percentile(samples, [10, 50, 90])
            spread = float((p90 - p10) / p50) if p50 > 0 else math.inf
        reasons = []
        level = "good"
        learned = prior_sd = post_sd = None
        if roi_sd and c in roi_sd:
            prior_sd, post_sd = (float(v) for v in roi_sd[c])
            learned = max(0.0, 1.0 - post_sd / prior_sd) if prior_sd > 0 else None
        checks = [("corr_channel", corr_channel), ("corr_season", corr_season)]
        if learned is None:
            checks.append(("spread", spread))
        for name, value in checks:
            if value is None:
                continue
            if value >= POOR[name]:
                level = "poor"
                reasons.append(name)
            elif value >= WEAK[name]:
                level = "weak" if level == "good" else level
                reasons.append(name)
        if learned is not None:
            if learned < LEARNED_POOR:
                level = "poor"
                reasons.append("learned")
            elif learned < LEARNED_WEAK:
                level = "weak" if level == "good" else level
                reasons.append("learned")
        if variation is not None and variation < NEAR_CONSTANT_CV:
            level = "poor"
            reasons.append("constant")
        if contribution.get(c, 0.0) <= 0:
            level = "poor"
            reasons.append("no_effect")
        if c in calibrated:
            level = "calibrated"
        per_period = contribution.get(c, 0.0)
        if per_period <= 0:
            per_period = pool_roi * mean_spend
        out[c] = {
            "level": level,
            "reasons": reasons,
            "corr_channel": round(corr_channel, 3),
            "with": partner,
            "corr_season": round(corr_season, 3),
            "dark_share": round(dark, 3),
            "variation": None if variation is None else round(variation, 3),
            "spread": None if spread is None else (round(spread, 3) if math.isfinite(spread) else None),
            "learned": None if learned is None else round(learned, 3),
            "prior_sd": None if prior_sd is None else round(prior_sd, 3),
            "posterior_sd": None if post_sd is None else round(post_sd, 3),
            "lift_test": lift_test_size(per_period, noise, mean_spend, frequency),
        }
    return out


PERIOD_WORD = {"daily": "days", "weekly": "weeks", "monthly": "months"}


def periods_text(n: int, frequency: str) -> str:
    """``n`` periods in words: "3 weeks", "1 month"."""
    word = PERIOD_WORD[frequency]
    return f"{n} {word[:-1] if n == 1 else word}"


def identification_warning(channel: str, ident: dict, frequency: str) -> str:
    """A poorly (or weakly) identified channel in words, with the lift test that would settle it."""
    why = []
    if "no_effect" in ident["reasons"]:
        why.append("no effect detected")
    if "constant" in ident["reasons"]:
        why.append(f"its spend barely varies (coefficient of variation {ident['variation']:.2f}), so its return "
                   "cannot be told from the baseline's level")
    if "corr_channel" in ident["reasons"] and ident.get("with"):
        why.append(f"its spend moves with {ident['with']}'s (ρ {ident['corr_channel']:.2f})")
    if "corr_season" in ident["reasons"]:
        why.append(f"with the season (R {ident['corr_season']:.2f})")
    if "spread" in ident["reasons"] and ident.get("spread") is not None:
        why.append(f"its ROI's P10–P90 spans {ident['spread']:.0%} of its median")
    if "learned" in ident.get("reasons", ()) and ident.get("learned") is not None:
        why.append(f"the data narrowed the prior on its ROI by only {ident['learned']:.0%}")
    test = ident["lift_test"]
    if test["feasible"]:
        advice = (f"a switch-off (or regional holdout) test of {periods_text(test['periods'], frequency)}, holding back "
                  f"about {test['spend']:,.0f} of spend, would settle it ([[calibration]])")
    else:
        advice = ("it is too small for the KPI to show within a quarter: a platform conversion-lift study or a "
                  "many-region geo test would settle it ([[calibration]])")
    how = "weakly" if ident.get("level") == "weak" else "poorly"  # as the fit grades it, and its band (±30% / ±10%)
    return f"{channel}: {how} identified by this history ({'; '.join(why) or 'see its figures'}): {advice}"
