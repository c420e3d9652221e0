"""Plans over curve samples: time of the guarded ("do no harm") and the CVaR plans.

What is measured
----------------
Random problems, seeded: ``--channels`` channels (default 9) with Hill curves of shape s in
[0.5, 0.95] (an infinite marginal return at zero spend), ``--samples`` curve samples per channel
(default 100): β scaled by a log-normal factor (σ 0.3), k by another (σ 0.2), s perturbed (σ 0.1,
kept in [0.3, 1]); in the "S-shaped" cases a ``--s-shaped`` share of samples (default 20%) has
s in [1.1, 2], planned on its concave envelope. Period cases have ``--periods`` periods
(default 13), seasonal efficiency in [0.8, 1.3] and carryover (α in [0.2, 0.6]) on every other
channel. The budget is ¥1M a single horizon (¥250k a period), 5% minimum reserve.

* **guarded s**: wall time of ``optimize_guarded`` (``optimize_guarded_periods``): the point
  plan, the mean plan over the samples, and the guarded plan when the mean plan breaks the guard
  (α = 0.2), with their spread over the samples. The reference is the point plan on the
  problem's own curves (``ref = point``: the samples disagree on where to move money from there,
  so the guard binds) or the current plan, an even split (``ref = even``: every sample gains from
  leaving it, so it does not).
* **cvar s**: wall time of ``optimize_cvar`` (``optimize_cvar_periods``), point + mean + CVaR plans.
* **rounds**: refinement LPs of the guarded plan; **binds**; **mean gain**: the guarded plan's mean
  return over the samples minus the reference's, and what the unguarded mean plan would gain;
  **cvar gain**: the guarded plan's CVaR_0.2 of its gain on the samples' own curves (≥ 0 up to
  cents on concave samples; an S-shaped sample's envelope overstates it).

Targets on a 2-core machine: ≤ 2 s single horizon, ≤ 10 s for 13 periods (9 channels, 100
samples). Times are one run (``--repeat`` for the median of several) after an untimed warm-up.

Usage::

    python benchmarks/guard.py            # table
    python benchmarks/guard.py --json     # JSON lines
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from models.curves import HillCurve  # noqa: E402
from optimizer import (  # noqa: E402
    Channel,
    PeriodChannel,
    PeriodProblem,
    Problem,
    optimize,
    optimize_cvar,
    optimize_cvar_periods,
    optimize_guarded,
    optimize_guarded_periods,
    optimize_periods,
)

ALPHA = 0.2


def _samples(rng, beta, k, s, S, s_shaped):
    m, q = np.exp(rng.normal(0.0, 0.3, S)), np.exp(rng.normal(0.0, 0.2, S))
    shape = np.where(rng.random(S) < s_shaped, rng.uniform(1.1, 2.0, S), np.clip(s + rng.normal(0.0, 0.1, S), 0.3, 1.0))
    return [HillCurve(beta * a, k * b, c) for a, b, c in zip(m, q, shape)]


def single_problem(seed: int, C: int, S: int, s_shaped: float):
    rng = np.random.default_rng(seed)
    channels, samples = [], {}
    for c in range(C):
        beta, k, s = rng.uniform(2e5, 1.5e6), rng.uniform(5e4, 4e5), rng.uniform(0.5, 0.95)
        channels.append(Channel(name=f"c{c}", curve=HillCurve(beta, k, s), current=0.95e6 / C))
        samples[f"c{c}"] = _samples(rng, beta, k, s, S, s_shaped)
    return Problem(channels=tuple(channels), budget=1e6), samples


def period_problem(seed: int, C: int, T: int, S: int, s_shaped: float):
    rng = np.random.default_rng(seed)
    budget = 2.5e5 * T
    channels, samples = [], {}
    for c in range(C):
        beta, k, s = rng.uniform(5e4, 3.75e5), rng.uniform(1.25e4, 1e5), rng.uniform(0.5, 0.95)
        alpha = float(rng.uniform(0.2, 0.6)) if c % 2 == 0 else 0.0
        channels.append(PeriodChannel(name=f"c{c}", curve=HillCurve(beta, k, s), alpha=alpha,
                                      carryover=1e4 if alpha else 0.0, efficiency=tuple(rng.uniform(0.8, 1.3, T)),
                                      current=0.95 * budget / C / T))
        samples[f"c{c}"] = _samples(rng, beta, k, s, S, s_shaped)
    periods = tuple(f"w{t + 1}" for t in range(T))
    return PeriodProblem(periods=periods, channels=tuple(channels), budget=budget), samples


def _timed(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, float(np.median(times))


def run(seed: int = 0, channels: int = 9, periods: int = 13, samples: int = 100, s_shaped: float = 0.2,
        repeat: int = 1) -> list[dict]:
    """Every case (single horizon / periods × concave / S-shaped samples × reference)."""
    p, s = single_problem(seed + 1, 3, 5, 0.0)
    optimize_guarded(p, s)  # imports, first solver start
    rows = []
    for horizon in ("single", "periods"):
        for share in (0.0, s_shaped):
            if horizon == "single":
                problem, smp = single_problem(seed, channels, samples, share)
                point = np.array([[c.spend] for c in optimize(problem).channels])
                guarded = lambda ref: optimize_guarded(problem, smp, ALPHA, reference=ref)  # noqa: E731
                risk = lambda: optimize_cvar(problem, smp, ALPHA)  # noqa: E731
            else:
                problem, smp = period_problem(seed, channels, periods, samples, share)
                point = optimize_periods(problem).period_spend
                guarded = lambda ref: optimize_guarded_periods(problem, smp, ALPHA, reference=ref)  # noqa: E731
                risk = lambda: optimize_cvar_periods(problem, smp, ALPHA)  # noqa: E731
            _, cvar_s = _timed(risk, repeat)
            for ref_name, ref in (("point", point), ("even", None)):
                g, secs = _timed(lambda: guarded(ref), repeat)
                st = g.stats
                rows.append({
                    "horizon": horizon, "channels": channels, "periods": 1 if horizon == "single" else periods,
                    "samples": samples, "s_shaped_share": share, "reference": ref_name,
                    "guarded_seconds": round(secs, 3), "cvar_seconds": round(cvar_s, 3),
                    "rounds": g.guarded.iterations, "binds": g.binds,
                    "mean_gain": round(st["guarded"]["mean"] - st["reference"]["mean"], 2),
                    "unguarded_mean_gain": round(st["mean"]["mean"] - st["reference"]["mean"], 2),
                    "cvar_gain": st["guarded"]["cvar_gain"], "mean_plan_cvar_gain": st["mean"]["cvar_gain"],
                    "beats_reference": st["guarded"]["beats_reference"],
                    "target_seconds": 2.0 if horizon == "single" else 10.0,
                })
    return rows


def format_table(rows: list[dict]) -> str:
    head = (f"{'case':34} {'ref':6} {'guarded s':>9} {'cvar s':>7} {'target':>6} {'rounds':>6} {'binds':>5} "
            f"{'mean gain':>11} {'unguarded':>11} {'cvar gain':>11} {'beats':>5}")
    lines = [head]
    for r in rows:
        case = (f"{r['channels']} ch × {r['periods']} × {r['samples']} samples"
                + (f", {r['s_shaped_share']:.0%} S" if r["s_shaped_share"] else ", concave"))
        lines.append(f"{case:34} {r['reference']:6} {r['guarded_seconds']:9.2f} {r['cvar_seconds']:7.2f} "
                     f"{r['target_seconds']:6.1f} {r['rounds']:6d} {str(r['binds']):>5} {r['mean_gain']:11,.0f} "
                     f"{r['unguarded_mean_gain']:11,.0f} {r['cvar_gain']:11,.2f} {r['beats_reference']:5.2f}")
    lines.append(f"mean gain = guarded plan's mean return over the samples − the reference's (unguarded: the mean "
                 f"plan's); cvar gain = the guarded plan's CVaR_{ALPHA} of its gain on the samples' own curves; "
                 "beats = share of samples where it earns at least a cent more than the reference")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--channels", type=int, default=9)
    parser.add_argument("--periods", type=int, default=13)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--s-shaped", type=float, default=0.2, help="share of S-shaped samples in the S cases")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the median time is shown (default 1)")
    args = parser.parse_args(argv)
    rows = run(args.seed, args.channels, args.periods, args.samples, args.s_shaped, max(args.repeat, 1))
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
