"""Process wall time of the commands people and jobs run most: what a user waits for.

Each case runs the installed ``budget`` as a new process (imports included, as a scheduler
pays them), ``--repeat`` times, and reports the median, min and max in seconds next to its
target from issue #8: ``budget --help`` ≤ 0.2 s, a plan on written curves ≤ 0.9 s.

Usage::

    python benchmarks/latency.py              # table
    python benchmarks/latency.py --json       # JSON lines
    python benchmarks/latency.py --repeat 9
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "scenarios", "examples")


def cases(out_dir: str) -> list[tuple[str, list[str], float]]:
    """(name, arguments, target seconds)."""
    pasted = os.path.join(EXAMPLES, "pasted_curves.toml")
    return [
        ("budget --help", ["--help"], 0.2),
        ("budget --version", ["--version"], 0.2),
        ("allocate written curves, json -o", ["allocate", pasted, "--format", "json", "-o",
                                               os.path.join(out_dir, "plan.json")], 0.9),
        ("allocate written curves, table", ["allocate", pasted], 0.9),
        ("allocate weekly (13 periods), csv", ["allocate", os.path.join(EXAMPLES, "weekly.toml"), "--format", "csv",
                                               "-o", os.path.join(out_dir, "weekly.csv")], None),
    ]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {r.returncode}: {r.stderr[-500:]}")
    return elapsed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="one JSON object per case")
    args = ap.parse_args(argv)
    exe = shutil.which("budget", path=os.path.dirname(sys.executable)) or shutil.which("budget")
    if exe is None:
        raise SystemExit("the `budget` command is not installed (make demo installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for name, extra, target in cases(tmp):
            timed([exe, *extra])  # warm the file system cache and .pyc files
            runs = [timed([exe, *extra]) for _ in range(args.repeat)]
            rows.append({"case": name, "median_s": statistics.median(runs), "min_s": min(runs), "max_s": max(runs),
                         "target_s": target, "repeat": args.repeat,
                         "meets_target": None if target is None else statistics.median(runs) <= target})
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"{'case':38} {'median':>7} {'min':>6} {'max':>6} {'target':>7}")
    for r in rows:
        target = "-" if r["target_s"] is None else f"≤{r['target_s']:.1f}" + (" ✔" if r["meets_target"] else " ✘")
        print(f"{r['case']:38} {r['median_s']:7.2f} {r['min_s']:6.2f} {r['max_s']:6.2f} {target:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
