"""The budget frontier: seconds for a sweep of 16 levels on the 9-channel examples.

Each case loads its scenario once (a history's fit comes from the cache, or is fitted first and
not timed) and times :func:`scenarios.frontier.budget_frontier` alone: 16 plans, each within
every constraint of the scenario and to the cent, their P10–P90 over the bootstrap curve samples
where the curves are fitted, break-even, the favoured level and its plan. Target from issue #12
§2: ≤ 2 s. The last row is the whole ``budget frontier`` process (imports and loading included)
on the pasted-curves example, what a user waits for.

Usage::

    python benchmarks/frontier.py              # table
    python benchmarks/frontier.py --json       # JSON lines
    python benchmarks/frontier.py --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scenarios import example_path, load_scenario  # noqa: E402
from scenarios.frontier import budget_frontier  # noqa: E402

TARGET_S = 2.0


def cases() -> list[tuple[str, str, dict]]:
    """(name, example file, budget_frontier keyword arguments)."""
    return [
        ("pasted curves, 0.5×–2× (written, S-curve, knots)", "pasted_curves.toml", {}),
        ("ROI floor 3.0, 0.5×–2× (9 of 16 levels infeasible)", "roi_floor.toml", {}),
        ("quarterly, 0.5×–2× (fitted, P10–P90 over 100 samples)", "quarterly.toml", {}),
        ("quarterly, 15%–20% of the forecast KPI", "quarterly.toml", {"of_forecast": True}),
    ]


def process_seconds(repeat: int) -> list[float] | None:
    exe = shutil.which("budget", path=os.path.dirname(sys.executable)) or shutil.which("budget")
    if exe is None:
        return None
    argv = [exe, "frontier", str(example_path("pasted_curves.toml")), "--format", "json"]
    runs = []
    for i in range(repeat + 1):
        start = time.perf_counter()
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {r.returncode}: {r.stderr[-500:]}")
        if i:  # the first run warms the file system cache and .pyc files
            runs.append(time.perf_counter() - start)
    return runs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="one JSON object per case")
    args = ap.parse_args(argv)
    rows = []
    for name, example, kwargs in cases():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc = load_scenario(example_path(example))
        budget_frontier(sc, **kwargs)  # warm: imports, Prophet's first prediction
        runs, d = [], None
        for _ in range(args.repeat):
            start = time.perf_counter()
            d = budget_frontier(sc, **kwargs)
            runs.append(time.perf_counter() - start)
        med = statistics.median(runs)
        rows.append({"case": name, "levels": len(d["levels"]), "channels": len(d["channels"]),
                     "feasible": sum(r["status"] == "optimal" for r in d["levels"]),
                     "median_s": med, "min_s": min(runs), "max_s": max(runs), "target_s": TARGET_S,
                     "meets_target": med <= TARGET_S, "break_even": (d["break_even"] or {}).get("budget"),
                     "favoured": d["favoured"]["budget"], "repeat": args.repeat})
    proc = process_seconds(args.repeat)
    if proc:
        rows.append({"case": "`budget frontier` process, pasted curves", "levels": 16, "channels": 9, "feasible": 16,
                     "median_s": statistics.median(proc), "min_s": min(proc), "max_s": max(proc), "target_s": None,
                     "meets_target": None, "break_even": None, "favoured": None, "repeat": args.repeat})
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"{'case':56} {'levels':>6} {'chan':>4} {'median':>7} {'min':>6} {'max':>6} {'target':>7}  break-even")
    for r in rows:
        target = "-" if r["target_s"] is None else f"≤{r['target_s']:.0f}" + (" ✔" if r["meets_target"] else " ✘")
        be = "-" if r["break_even"] is None else f"{r['break_even']:,.0f}"
        print(f"{r['case']:56} {r['levels']:6d} {r['channels']:4d} {r['median_s']:7.2f} {r['min_s']:6.2f} "
              f"{r['max_s']:6.2f} {target:>7}  {be}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
