"""Lift tests: measured incremental returns that pin down what a total KPI cannot.

A lift test (a geo holdout, a conversion-lift study, a switch-off) measured what one channel's
spend in a window of the history earned: ``lift`` in KPI units with standard error ``se``. From
a total KPI, channels whose spend moves together or with the season are hard to tell apart (the
recovery study, ``benchmarks/attribution.py``); one such measurement per channel settles its
scale, as Robyn, Meridian and PyMC-Marketing use them.

In the fit each test is one more observation: the model's lift for the window, the channel's
return with its spend minus the return with that window dark, summed from the window's start to
the end of the history (carryover included), must match ``lift`` within ``se``. For given
carryover and shape that lift is ``β`` times a number (:func:`window_effect`), so the test is a
weighted row of the same non-negative least squares that gives β, with weight σ / se against
the history's own rows (σ: the KPI's noise). The bootstrap redraws each lift within its
standard error, so a test's own uncertainty reaches the intervals.

Tests come as plain records ``{channel, start, end, lift, se}`` (dates as ISO strings), from a
scenario's ``[[calibration]]`` list or ``budget fit --calibration FILE``;
:func:`check_lift_tests` lists every problem with where it is.

A test need not switch the channel off. ``tested_spend`` (optional) is the part of the window's
spend the test measured the return of: a holdback of 30% of the usual spend, or a test that
raised spend by that much above usual (the history then holds the raised spend). The model's lift
is then the return with the history's spend minus the return with ``tested_spend`` taken out of
the window, in proportion to each period's spend. A partial test measures the return at the
margin, where a plan moves money, but less of it: on the recovery study, with the noise of a
switch-off of the same weeks, 30% holdbacks pinned the curves less than switch-offs did (README,
"Partial holdbacks instead of switch-offs"), so a new test is best a switch-off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["LiftTest", "check_lift_tests", "normalise_lift_tests", "read_lift_tests", "resolve_lift_tests",
           "window_effect", "LIFT_KEYS", "OPTIONAL_LIFT_KEYS"]

#: The keys of one lift test record.
LIFT_KEYS = ("channel", "start", "end", "lift", "se")
#: Keys a record may have: the spend the test measured the return of (default: all the window's).
OPTIONAL_LIFT_KEYS = ("tested_spend",)


@dataclass(frozen=True)
class LiftTest:
    """One lift test placed on a history: the channel's column, the window's rows [start, stop)."""

    channel: str
    column: int
    start: int
    stop: int
    lift: float
    se: float
    #: the window's spend the test measured (None: all of it, a switch-off)
    tested_spend: float | None = None

    def as_record(self, dates: pd.DatetimeIndex) -> dict:
        out = {"channel": self.channel, "start": dates[self.start].date().isoformat(),
               "end": dates[self.stop - 1].date().isoformat(), "lift": self.lift, "se": self.se}
        if self.tested_spend is not None:
            out["tested_spend"] = self.tested_spend
        return out

    def tested(self, x: np.ndarray) -> np.ndarray:
        """The spend the test took out of the channel's spend ``x`` (periods,): the window's spend,
        or ``tested_spend`` of it in proportion to each period's spend; zero outside the window."""
        out = np.zeros(x.size)
        out[self.start:self.stop] = x[self.start:self.stop]
        if self.tested_spend is not None:
            total = float(out.sum())
            out *= min(self.tested_spend / total, 1.0) if total > 0 else 0.0
        return out


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):  # a cell of a CSV or workbook: ¥1,234.00 as 1234.0
        from models.history import number_text

        value = number_text(value)
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _date(value) -> pd.Timestamp | None:
    """A test's start or end, in the forms a history's dates take (:func:`models.dates.read_one_date`)."""
    from models.dates import read_one_date

    stamp = read_one_date(value)
    return None if stamp is None else stamp.normalize()


def check_lift_tests(records, channels: list[str] | None, dates: pd.DatetimeIndex | None = None,
                     where: str = "calibration", spend: pd.DataFrame | None = None) -> list[str]:
    """Every problem with a list of lift test records, each saying which test and which key.

    ``channels`` are the history's spend columns (None: not known yet, not checked); with
    ``dates`` (the history's period starts) each window must lie inside the history, and with
    ``spend`` (the history's spend, a column per channel) a ``tested_spend`` must not exceed what
    the channel spent in the window.
    """
    problems: list[str] = []
    if not isinstance(records, (list, tuple)):
        return [f"{where}: must be a list of tables ([[calibration]]), got {type(records).__name__}"]
    for i, rec in enumerate(records, start=1):
        at = f"{where}[{i}]"
        if not isinstance(rec, dict):
            problems.append(f"{at}: must be a table with {', '.join(LIFT_KEYS)}")
            continue
        for key in rec:
            if key not in LIFT_KEYS + OPTIONAL_LIFT_KEYS:
                problems.append(f"{at}.{key}: unknown key (expected {', '.join(LIFT_KEYS)}; optional "
                                f"{', '.join(OPTIONAL_LIFT_KEYS)})")
        for key in LIFT_KEYS:
            if key not in rec:
                problems.append(f"{at}.{key}: missing")
        if "channel" in rec and channels is not None and rec["channel"] not in channels:
            problems.append(f"{at}.channel: {rec['channel']!r} is not a channel of the history "
                            f"({', '.join(channels)})")
        start, end = (_date(rec[k]) if k in rec else None for k in ("start", "end"))
        for key, value in (("start", start), ("end", end)):
            if key in rec and value is None:
                problems.append(f"{at}.{key}: {rec[key]!r} is not a date (YYYY-MM-DD; 2024年6月3日, 2024-W23 and "
                                "an Excel serial day number read too; 03.06.2024 does not: day or month first?)")
        if start is not None and end is not None and end < start:
            problems.append(f"{at}: end {end.date()} is before start {start.date()}")
        if "lift" in rec and _number(rec["lift"]) is None:
            problems.append(f"{at}.lift: {rec['lift']!r} is not a number")
        if "se" in rec:
            se = _number(rec["se"])
            if se is None or se <= 0:
                problems.append(f"{at}.se: {rec['se']!r} must be a number above 0 (the test's standard error)")
        tested = _tested_spend(rec)
        if "tested_spend" in rec and tested is None:
            problems.append(f"{at}.tested_spend: {rec['tested_spend']!r} must be a number above 0 (the spend the "
                            "test measured the return of; leave it out for a switch-off of the whole window)")
        if dates is not None and start is not None and end is not None and not problems_in(at, problems):
            rows = _rows(dates, start, end)
            if rows is None:
                problems.append(f"{at}: the window {start.date()}…{end.date()} is not inside the history "
                                f"({dates[0].date()}…{dates[-1].date()})")
            elif tested is not None and spend is not None and rec.get("channel") in spend.columns:
                spent = float(spend[rec["channel"]].to_numpy(dtype=float)[rows[0]:rows[1]].sum())
                if tested > spent * (1 + 1e-9):
                    problems.append(f"{at}.tested_spend: {tested:,.2f} is more than {rec['channel']} spent in the "
                                    f"window ({spent:,.2f}); a test measures part or all of the window's spend")
    return problems


def _tested_spend(rec: dict) -> float | None:
    value = _number(rec["tested_spend"]) if "tested_spend" in rec else None
    return value if value is not None and value > 0 else None


def problems_in(at: str, problems: list[str]) -> bool:
    return any(p.startswith(at) for p in problems)


def _rows(dates: pd.DatetimeIndex, start: pd.Timestamp, end: pd.Timestamp) -> tuple[int, int] | None:
    """Rows [first, stop) of the periods from the one holding ``start`` to the one holding ``end``;
    None unless the whole window lies inside the history (a holdout's training part drops the
    tests that reach past it)."""
    if len(dates) < 2:
        return None
    step = dates[-1] - dates[-2]
    if start < dates[0] or end >= dates[-1] + step:
        return None
    starts = dates.to_numpy()
    first = int(np.searchsorted(starts, np.datetime64(start), side="right")) - 1
    stop = int(np.searchsorted(starts, np.datetime64(end), side="right"))
    return (first, stop) if stop > first else None


def resolve_lift_tests(records, channels: list[str], dates: pd.DatetimeIndex) -> list[LiftTest]:
    """Place checked records on a history (call :func:`check_lift_tests` first)."""
    out = []
    for rec in records or ():
        rows = _rows(dates, _date(rec["start"]), _date(rec["end"]))
        if rows is None:
            continue
        out.append(LiftTest(channel=str(rec["channel"]), column=channels.index(rec["channel"]), start=rows[0],
                            stop=rows[1], lift=_number(rec["lift"]), se=_number(rec["se"]),
                            tested_spend=_tested_spend(rec)))
    return out


def window_effect(effective: np.ndarray, window_effective: np.ndarray, start: int, saturation) -> float:
    """Σ_{t ≥ start} [f(e_t) − f(e_t − w_t)]: a test's lift per unit β.

    ``effective`` is the channel's adstocked spend e, ``window_effective`` the adstock w of the
    window's spend alone (zero elsewhere): adstock is linear, so the history with the window dark
    has effective spend e − w. ``saturation`` is the curve without β.
    """
    e = effective[start:]
    return float(np.sum(saturation(e) - saturation(np.maximum(e - window_effective[start:], 0.0))))


def normalise_lift_tests(records) -> list[dict]:
    """Checked records as plain JSON data: ISO dates, floats (the fit cache's key and the saved model)."""
    out = []
    for r in records:
        rec = {"channel": str(r["channel"]), "start": _date(r["start"]).date().isoformat(),
               "end": _date(r["end"]).date().isoformat(), "lift": _number(r["lift"]), "se": _number(r["se"])}
        if (tested := _tested_spend(r)) is not None:
            rec["tested_spend"] = tested
        out.append(rec)
    return out


def read_lift_tests(path) -> list[dict]:
    """Lift tests from a file: TOML with a ``[[calibration]]`` list, or a CSV (or workbook) with the
    columns channel, start, end, lift, se (and optionally tested_spend). Raises :class:`models.errors.HistoryError` listing every problem."""
    from pathlib import Path

    from models.errors import HistoryError

    path = Path(path)
    where = str(path)
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            with open(path, "rb") as fh:
                data = tomllib.load(fh)
            if "calibration" not in data:
                raise HistoryError(["missing: a [[calibration]] list of lift tests"], where)
            records = data["calibration"]
        else:
            from models.history import read_table

            frame = read_table(path, where)
            missing = [k for k in LIFT_KEYS if k not in frame.columns]
            if missing:
                raise HistoryError([f"columns: missing {', '.join(missing)} (expected {', '.join(LIFT_KEYS)})"], where)
            # a blank optional cell (a switch-off among partial tests) is the key left out
            records = [{k: v for k, v in rec.items()
                        if not (k in OPTIONAL_LIFT_KEYS and (v is None or (isinstance(v, float) and math.isnan(v))
                                                              or str(v).strip() == ""))}
                       for rec in frame.to_dict("records")]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, HistoryError):
            raise
        raise HistoryError([f"cannot read lift tests: {exc}"], where) from None
    problems = check_lift_tests(records, None, where="calibration" if path.suffix.lower() == ".toml" else "row")
    if problems:
        raise HistoryError(problems, where)
    return normalise_lift_tests(records)
