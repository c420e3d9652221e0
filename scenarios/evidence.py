"""Plans that respect what the data cannot tell: evidence limits on poorly identified channels.

A fitted curve is only as good as the history behind it. :mod:`models.identify` grades each
channel ("calibrated", "good", "weak", "poor"); a plan on fitted curves keeps each channel
within a band around its share of the current split, scaled to the money the plan can spend:

    reference_c = current_c × (budget − minimum reserve) / Σ current
    poor: reference_c × (1 ± 10%)    weak: × (1 ± 30%)    good: × (0 … 2)    calibrated: free

as the named limit ``evidence[c]`` (it binds, with a shadow price, like any other). Money moves
freely only through channels that a lift test pins ([[calibration]]); a channel the history
identifies well may be cut to nothing or doubled, not more, since its curve beyond twice its
usual spend is extrapolation.

Why: on the recovery study (``benchmarks/attribution.py``; 36 simulated histories with known
truth) the plan on the fitted curves alone lost more than keeping the historical split in 24 of
36 datasets at the historical budget (median regret 15.7% against the split's 12.1%, up to 39
points worse); with these limits, 11 of 36, at most 4.5 points worse (median 9.2%, next to 8.5%
for an oracle that knows every curve's shape). The bands were chosen on the first 24 datasets
among (poor, weak, good) = (0, 20%, 50%), (10%, 30%, free) and (10%, 30%, 100%), which gave 6, 7
and 6 datasets worse than the split at median regrets of 10.6%, 9.2% and 9.2%. The bootstrap
cannot give this protection on its own: its samples share the fit's bias, and in almost every
dataset every sample prefers the point plan to the current split.

``budget allocate --ignore-evidence`` plans on the fitted curves alone; the plan then says how
much of the money it moves goes through weak or poor channels (:func:`moves_warning`).
"""

from __future__ import annotations

from dataclasses import replace

__all__ = ["BANDS", "evidence_limits", "limit_problem", "moves_warning", "levels"]

#: Allowed change from the reference split, by identification level (others move freely).
BANDS = {"poor": 0.10, "weak": 0.30, "good": 1.00}


def levels(scenario) -> dict[str, dict]:
    """Identification of every fitted channel of the scenario (empty without a model)."""
    model = scenario.model
    if model is None:
        return {}
    out = {}
    for row in getattr(model, "channel_report_", []):
        ident = row.get("identification")
        if ident and row["channel"] in scenario.fitted_channels:
            out[row["channel"]] = ident
    return out


def _reference(problem) -> dict[str, float] | None:
    total = sum(c.current for c in problem.channels)
    if total <= 0:
        return None
    spendable = problem.budget - problem.reserve_min
    return {c.name: c.current * spendable / total for c in problem.channels}


def evidence_limits(scenario, problem):
    """``problem`` with an ``evidence_range`` on every fitted channel a lift test does not pin.

    Returns (problem, limited channels {name: level}); the problem unchanged when nothing is
    limited (no fitted model, every channel calibrated, no current plan to refer to).
    """
    return limit_problem(problem, levels(scenario))


def limit_problem(problem, ident: dict[str, dict]):
    """:func:`evidence_limits` given each channel's identification (``models.identify``)."""
    ref = _reference(problem)
    if not ident or ref is None:
        return problem, {}
    channels, limited = [], {}
    for c in problem.channels:
        band = BANDS.get(ident.get(c.name, {}).get("level"))
        if band is None or c.locked:
            channels.append(c)
            continue
        x = ref[c.name]
        channels.append(replace(c, evidence_range=(x * (1 - band), x * (1 + band))))
        limited[c.name] = ident[c.name]["level"]
    if not limited:
        return problem, {}
    return replace(problem, channels=tuple(channels)), limited


def limits_note(limited: dict[str, str],
                where: str = "limit evidence[channel]; a period plan holds the channel's total there") -> str:
    poor = [c for c, lv in limited.items() if lv == "poor"]
    weak = [c for c, lv in limited.items() if lv == "weak"]
    parts = []
    if poor:
        parts.append(f"{', '.join(poor)} within ±{BANDS['poor']:.0%}")
    if weak:
        parts.append(f"{', '.join(weak)} within ±{BANDS['weak']:.0%}")
    if any(lv == "good" for lv in limited.values()):
        parts.append(f"{'the other fitted channels' if parts else 'every fitted channel'} between none and twice")
    return ("evidence: a fitted curve is only as good as the history behind it, so the plan keeps "
            f"{'; '.join(parts)} of their share of the current split ({where}); a lift test ([[calibration]]) "
            "frees a channel, and --ignore-evidence plans on the fitted curves alone")


def binding_warnings(scenario, alloc, limited: dict[str, str]) -> list[str]:
    """For each channel whose evidence limit binds: the plan wanted to move it further; the test that would settle it.

    A single-horizon plan names the binding limit ``evidence[channel]``; a period plan holds the
    channel's total, whose binding limit (``min_total[channel]``) names it among its sources."""
    from models.identify import identification_warning, periods_text

    binding = {n for b in getattr(alloc, "binding", []) or [] for n in (b.name, *b.sources)}
    ident = levels(scenario)
    out = []
    freq = scenario.model.frequency_
    for c, level in limited.items():
        if f"evidence[{c}]" not in binding:
            continue
        if level == "good":
            test = ident[c]["lift_test"]
            out.append(f"evidence: {c}: the plan would spend more than twice its share of the current split, where "
                       "its curve is extrapolation; a lift test "
                       + (f"of {periods_text(test['periods'], freq)} " if test["feasible"] else "")
                       + "([[calibration]]) would show whether that pays")
        else:
            out.append("evidence: " + identification_warning(c, ident[c], freq)
                       + "; the plan would move it further if the data showed its return")
    return out


def moves_warning(scenario, alloc) -> str | None:
    """A plan that moves money mainly through weak or poor channels, said with the test that would settle it."""
    ident = levels(scenario)
    if not ident:
        return None
    current = {c.name: c.current for c in scenario.problem.channels}
    ref_total = sum(current.values())
    spent = sum(c.spend for c in alloc.channels)
    if ref_total <= 0 or spent <= 0:
        return None
    moves = {c.channel: abs(c.spend - current.get(c.channel, 0.0) * spent / ref_total) for c in alloc.channels}
    total = sum(moves.values())
    doubtful = {c: m for c, m in moves.items() if ident.get(c, {}).get("level") in ("weak", "poor")}
    share = sum(doubtful.values()) / total if total > 0 else 0.0
    if share < 0.5:
        return None
    worst = max(doubtful, key=doubtful.get)
    test = ident[worst]["lift_test"]
    from models.identify import periods_text

    how = (f"a switch-off or regional holdout test of {worst} for "
           f"{periods_text(test['periods'], scenario.model.frequency_)}" if test["feasible"]
           else f"a platform conversion-lift study of {worst}")
    return (f"evidence: {share:.0%} of the money this plan moves goes through channels the history identifies "
            f"poorly ({', '.join(sorted(doubtful))}): {how} would show whether the move pays ([[calibration]])")
