"""Benchmark the allocator against the exact optimum and against SciPy's SLSQP.

Usage: python benchmarks/optimizer.py [--sizes 10 100 1000] [--bounded-sizes 100] [--seed 1]
                                      [--repeat 3] [--slsqp-max-size 1000]
                                      [--slsqp-time-limit 120] [--json]

What is measured
----------------
Random concave problems, seeded: about 70% Hill curves ``beta·x^s/(x^s+k^s)`` with s in
[0.4, 1] and 30% exponential curves ``beta·(1−exp(−x/k))``, beta in ¥100k–1M, k in ¥10k–300k,
a budget of ¥100k per channel and a 5% minimum reserve (the same family as
:func:`optimizer.exact.random_problem`, shared with the tests). The "plain" scenario has no other limits; the "bounds"
scenario adds a random min and max spend per channel. For every problem and method:

* **seconds**: wall time, the median of ``--repeat`` runs on the same problem. For
  ``optimizer.optimize`` this is build + solve of the whole call (``solver s`` is the
  allocation's own ``solver_seconds`` and ``rounds`` its LP refinement ``iterations``). A tiny
  problem is solved once beforehand so one-off import costs are not counted.
* **gap**: ``(exact − achieved) / exact`` on the true curves, where ``exact`` is the optimum by
  bisection on the common marginal return (``optimizer.exact.bisection_optimum`` with each
  channel's bounds from ``channel_bounds``: ``[0, budget − reserve]`` in the plain scenario) and
  ``achieved`` is the return of the method's plan (the optimizer's is rounded to the cent).
* **SLSQP**: ``scipy.optimize.minimize(method="SLSQP")``, the method peer MMM tools use, on the
  smooth problem: maximise Σ r_c(x_c) subject to Σ x = budget − reserve and each channel within
  its bounds, analytic gradients from ``curve.marginal``, started from the equal split (clipped
  to the bounds), default tolerances, ``maxiter=1000``. Its ``status`` is SciPy's verdict
  (``ok`` when it reports success, else its message); ``budget err`` is how far its plan misses
  the budget equation, relative to the budget (the optimizer's plan meets it to the cent).
  Each SLSQP iteration solves a dense QP, so it is skipped above ``--slsqp-max-size`` channels
  and stopped after ``--slsqp-time-limit`` seconds; a stopped run is reported as where it got
  to, with status ``stopped``, and is not repeated. Hill curves with s < 1 have an infinite
  marginal return at zero spend; an SLSQP step that lands a channel there breaks its QP, which
  is what "Inequality constraints incompatible" means in these runs.
* **time ×** and **gap ×**: SLSQP's seconds and gap divided by the optimizer's (above 1: the
  optimizer is faster / closer to the optimum).

Targets on a 2-core machine: gap ≤ 0.01% (1e-4) at every size, and 1000 channels built and
solved in ≤ 1 s. Times depend on the machine and on whatever else is using the CPU. BLAS
runs single-threaded unless ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``
are set.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Single-threaded BLAS unless the caller says otherwise: SLSQP's small dense QPs gain nothing
# from BLAS threads, and on a busy 2-core machine threads that wait for each other made SLSQP
# at 100 channels up to 100× slower (and the optimizer ~30% slower). Set before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import periods  # noqa: E402  (benchmarks/periods.py: the multi-period cases)
from scipy.optimize import minimize  # noqa: E402

from models.curves import CurveSet  # noqa: E402
from optimizer import Problem, channel_bounds, optimize  # noqa: E402
from optimizer.exact import bisection_optimum  # noqa: E402
from optimizer.exact import random_problem as shared_random_problem  # noqa: E402

#: Largest acceptable relative gap to the exact optimum (0.01%).
TARGET_GAP = 1e-4
#: Build + solve seconds allowed at :data:`TARGET_SIZE` channels.
TARGET_SECONDS = 1.0
TARGET_SIZE = 1000
RESERVE_SHARE = 0.05
BUDGET_PER_CHANNEL = 100_000.0
EXPONENTIAL_SHARE = 0.3
SCENARIOS = ("plain", "bounds")


def random_problem(seed: int, n: int, *, with_bounds: bool = False) -> Problem:
    """The shared random concave problem (:func:`optimizer.exact.random_problem`) at this script's sizes."""
    return shared_random_problem(seed, n, budget_per_channel=BUDGET_PER_CHANNEL, reserve=RESERVE_SHARE,
                                 with_bounds=with_bounds, exponential_share=EXPONENTIAL_SHARE)


def spend_limits(problem: Problem) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-channel spend bounds and the money to allocate (budget less the minimum reserve).

    Returns
    -------
    lo, hi : numpy.ndarray
        Lower and upper spend of every channel, as the optimizer sees them.
    available : float
        ``budget − reserve``.
    """
    bounds = [channel_bounds(problem, ch) for ch in problem.channels]
    lo = np.array([b.value for b, _ in bounds])
    hi = np.array([b.value for _, b in bounds])
    return lo, hi, problem.budget - problem.reserve_min


def exact_return(problem: Problem) -> float:
    """The optimal total return, by bisection on the common marginal return."""
    lo, hi, available = spend_limits(problem)
    _, value = bisection_optimum([c.curve for c in problem.channels], lo, hi, available)
    return value


def run_optimizer(problem: Problem) -> dict:
    """Solve with :func:`optimizer.optimize`; wall seconds, return and solver statistics."""
    t0 = time.perf_counter()
    alloc = optimize(problem)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "return": alloc.expected_return,
        "solver_seconds": alloc.solver_seconds,
        "iterations": alloc.iterations,
        "status": "ok" if alloc.status == "optimal" else alloc.status,
        "budget_error": 0.0,
    }


class _Deadline:
    """SLSQP callback that stops the run (``StopIteration``) once ``limit`` seconds have passed."""

    def __init__(self, limit: float):
        self.limit = limit
        self.start = time.perf_counter()
        self.hit = False

    def __call__(self, intermediate_result) -> None:
        if time.perf_counter() - self.start > self.limit:
            self.hit = True
            raise StopIteration


def run_slsqp(problem: Problem, time_limit: float) -> dict:
    """Solve the smooth problem with SciPy's SLSQP (see the module docstring for the setup).

    Parameters
    ----------
    problem
        A problem with concave curves.
    time_limit
        Stop after the first iteration that ends later than this many seconds.

    Returns
    -------
    dict
        Wall seconds, return of the plan reached, iterations, status (``ok``, ``stopped`` or
        SciPy's message), the relative budget error of the plan and how many of its channels sit
        where the marginal return is infinite (zero spend on a Hill curve with s < 1).
    """
    family = CurveSet([c.curve for c in problem.channels])
    lo, hi, available = spend_limits(problem)
    n = len(problem.channels)
    ones = np.ones((1, n))
    deadline = _Deadline(time_limit)
    result = minimize(
        lambda x: -float(family.response(x).sum()),
        np.clip(np.full(n, available / n), lo, hi),
        jac=lambda x: -family.marginal(x),
        method="SLSQP",
        bounds=list(zip(lo, hi)),
        constraints=[{"type": "eq", "fun": lambda x: np.array([x.sum() - available]), "jac": lambda x: ones}],
        options={"maxiter": 1000},
        callback=deadline,
    )
    seconds = time.perf_counter() - deadline.start
    if deadline.hit:
        status = "stopped"
    else:
        status = "ok" if result.success else str(result.message)
    return {
        "seconds": seconds,
        "return": float(family.response(result.x).sum()),
        "iterations": int(result.nit),
        "status": status,
        "budget_error": abs(float(result.x.sum()) - available) / problem.budget,
        "infinite_marginals": int(np.isinf(family.marginal(result.x)).sum()),
    }


def repeated(solve: Callable[[], dict], repeat: int) -> dict:
    """Run ``solve`` up to ``repeat`` times; the last run's result with median times.

    Every ``*seconds`` entry is the median over the runs; the rest (return, iterations, status)
    is the same in every run, as the methods are deterministic. A run stopped by its time limit
    is not repeated: the next would stop at the same place.
    """
    runs = []
    for _ in range(repeat):
        runs.append(solve())
        if runs[-1]["status"] == "stopped":
            break
    times = {k: statistics.median(r[k] for r in runs) for k in runs[-1] if k.endswith("seconds")}
    return {**runs[-1], **times, "runs": len(runs)}


def measure(scenario: str, n: int, args: argparse.Namespace) -> dict:
    """One row: both methods on the ``scenario`` problem with ``n`` channels."""
    problem = random_problem(args.seed, n, with_bounds=scenario == "bounds")
    best = exact_return(problem)
    row: dict = {"scenario": scenario, "channels": n, "seed": args.seed, "exact_return": best}
    methods = {"optimizer": lambda: run_optimizer(problem)}
    if n <= args.slsqp_max_size:
        methods["slsqp"] = lambda: run_slsqp(problem, args.slsqp_time_limit)
    for name, solve in methods.items():
        stats = repeated(solve, args.repeat)
        stats["gap"] = (best - stats["return"]) / best
        row.update({f"{name}_{key}": value for key, value in stats.items()})
    if "slsqp_gap" in row:
        row["time_ratio"] = row["slsqp_seconds"] / row["optimizer_seconds"]
        row["gap_ratio"] = row["slsqp_gap"] / row["optimizer_gap"] if row["optimizer_gap"] > 0 else None
    row["meets_gap_target"] = row["optimizer_gap"] <= TARGET_GAP
    if n == TARGET_SIZE:
        row["meets_time_target"] = row["optimizer_seconds"] <= TARGET_SECONDS
    return row


def _num(value, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


COLUMNS = [  # header, row key, format
    ("scenario", "scenario", ""),
    ("n", "channels", "d"),
    ("opt s", "optimizer_seconds", ".3f"),
    ("solver s", "optimizer_solver_seconds", ".3f"),
    ("rounds", "optimizer_iterations", "d"),
    ("opt gap", "optimizer_gap", ".1e"),
    ("SLSQP s", "slsqp_seconds", ".2f"),
    ("nit", "slsqp_iterations", "d"),
    ("SLSQP status", "slsqp_status", ""),
    ("budget err", "slsqp_budget_error", ".0e"),
    ("SLSQP gap", "slsqp_gap", ".1e"),
    ("time ×", "time_ratio", ".3g"),
    ("gap ×", "gap_ratio", ".2g"),
]


def format_table(rows: list[dict], args: argparse.Namespace) -> str:
    """The rows as an aligned text table, with the targets and how to read it."""
    cells = [[h for h, _, _ in COLUMNS]]
    cells += [[_num(r.get(key), fmt) for _, key, fmt in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    # Text columns (no number format) align left, numbers right.
    lines = ["  ".join(c.rjust(w) if fmt else c.ljust(w) for c, w, (_, _, fmt) in zip(line, widths, COLUMNS))
             for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    gap_ok = all(r["meets_gap_target"] for r in rows)
    worst = max(r["optimizer_gap"] for r in rows)
    lines += [
        "",
        f"seed {args.seed}; times are the median of {args.repeat} run(s); gap = (exact − achieved) / exact; "
        "time × and gap × are SLSQP / optimizer",
        f"target gap ≤ 0.01% (1e-4) at every size: {'met' if gap_ok else 'MISSED'} (worst {worst:.1e})",
    ]
    for r in rows:
        if "meets_time_target" in r:
            lines.append(f"target {TARGET_SIZE} channels build + solve ≤ {TARGET_SECONDS:g} s ({r['scenario']}): "
                         f"{'met' if r['meets_time_target'] else 'MISSED'} ({r['optimizer_seconds']:.3f} s)")
    for r in rows:
        if r.get("slsqp_status") == "stopped":
            lines.append(f"SLSQP at {r['channels']} channels ({r['scenario']}) was stopped after "
                         f"{r['slsqp_seconds']:.0f} s (--slsqp-time-limit), at iteration {r['slsqp_iterations']}; "
                         "its gap is where it got to")
        elif r.get("slsqp_status", "ok") != "ok":
            lines.append(f"SLSQP did not report success at {r['channels']} channels ({r['scenario']}): "
                         f"{r['slsqp_status']} after {r['slsqp_iterations']} iterations, with "
                         f"{r['slsqp_infinite_marginals']} channel(s) at zero spend where the marginal "
                         "return is infinite; its gap is that of the plan it returned")
        elif "slsqp_status" not in r:
            lines.append(f"SLSQP skipped at {r['channels']} channels (--slsqp-max-size {args.slsqp_max_size})")
    lines.append(f"machine: {os.cpu_count()} cores; other processes may have been using the CPU")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000],
                        help="channel counts of the plain scenario (default 10 100 1000)")
    parser.add_argument("--bounded-sizes", type=int, nargs="*", default=[100],
                        help="channel counts of the scenario with min/max spend per channel (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the problems (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per problem; the median time is shown (default 3)")
    parser.add_argument("--slsqp-max-size", type=int, default=1000,
                        help="largest channel count SLSQP is run on (default 1000)")
    parser.add_argument("--slsqp-time-limit", type=float, default=120.0,
                        help="stop SLSQP after this many seconds and report where it got to (default 120)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of rows instead of the table")
    parser.add_argument("--no-periods", action="store_true",
                        help="skip the multi-period cases (benchmarks/periods.py: 1000 channels × 13 periods, 10 × 52 weeks, …)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    optimize(random_problem(0, 2))  # warm-up: imports and the solver's first start are not timed
    plan = [("plain", n) for n in args.sizes] + [("bounds", n) for n in args.bounded_sizes]
    rows = [measure(scenario, n, args) for scenario, n in plan]
    period_rows = [] if args.no_periods else [{"scenario": "periods", **r} for r in periods.run(args.seed, args.repeat)]
    if args.json:
        print(json.dumps(rows + period_rows, indent=2))
    else:
        print(format_table(rows, args))
        if period_rows:
            print()
            print(periods.format_table(period_rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
