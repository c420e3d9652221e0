"""Monthly jobs: a rebalance's wall time, and listing a ledger with 10,000 runs (issue #11 targets).

Each case runs the installed ``budget`` as a new process (imports included, as a scheduler pays
them), median of ``--repeat`` runs:

* ``rebalance monthly (written curves)``: the bundled quarter, months 1–2 of actuals, ``--dry-run``.
* ``rebalance weekly (cached fit)``: the weekly example on fitted curves (its fit cached by a first
  run), four weeks of actuals at the plan's own spend, ``--dry-run``. Target ≤ 2 s.
* ``runs, 10,000 in the ledger``: ``budget runs --format json`` on a ledger holding 10,000 recorded
  runs (built directly with SQL, each with nine plan rows). Target ≤ 0.5 s.

Usage::

    python benchmarks/ledger.py            # table
    python benchmarks/ledger.py --json     # JSON lines
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
EXAMPLES = os.path.join(ROOT, "scenarios", "examples")


def run(argv: list[str], env: dict) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, env=env)
    if r.returncode not in (0, 5):  # 5: drift flagged, still a result
        raise SystemExit(f"{' '.join(argv)} exited {r.returncode}: {r.stderr[-800:]}")
    return r.stdout


def timed(argv: list[str], env: dict, repeat: int) -> list[float]:
    run(argv, env)  # warm: .pyc files, the fit cache
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        run(argv, env)
        out.append(time.perf_counter() - start)
    return out


def big_ledger(path: str, runs: int) -> None:
    """A ledger with ``runs`` current runs, written in one transaction (the benchmark's fixture)."""
    from scenarios.ledger import Ledger

    Ledger(path).close()  # the schema, as budget makes it
    db = sqlite3.connect(path)
    with db:
        for i in range(1, runs + 1):
            db.execute("INSERT INTO runs (id, kind, command, scenario_name, scenario_path, scenario_hash, data_hash, "
                       "as_of, started, finished, status, exit_code, version, result) "
                       "VALUES (?, 'rebalance', 'budget rebalance …', ?, NULL, ?, NULL, ?, '2026-01-01T00:00:00+00:00', "
                       "'2026-01-01T00:00:01+00:00', 'ok', 0, 'bench', '{}')",
                       (i, f"scenario {i % 40}", f"{i:064x}", f"2026-{i:05d}"))
            db.executemany("INSERT INTO plan_rows VALUES (?, '', ?, 1000.0, 2000.0)", [(i, f"c{j}") for j in range(9)])
    db.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    exe = shutil.which("budget", path=os.path.dirname(sys.executable)) or shutil.which("budget")
    if exe is None:
        raise SystemExit("the `budget` command is not installed (make demo installs it)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BUDGET_CACHE_DIR": os.environ.get("BUDGET_CACHE_DIR", os.path.join(tmp, "cache"))}
        monthly, ledger = os.path.join(EXAMPLES, "monthly.toml"), os.path.join(tmp, "q1.sqlite")
        run([exe, "allocate", monthly, "--record", "--ledger", ledger], env)
        cases = [("rebalance monthly (written curves)",
                  [exe, "rebalance", monthly, "--actuals", os.path.join(EXAMPLES, "actuals_m1_m2.csv"),
                   "--ledger", ledger, "--dry-run", "--format", "json"], None)]
        weekly, wledger = os.path.join(EXAMPLES, "weekly.toml"), os.path.join(tmp, "w.sqlite")
        plan = json.loads(run([exe, "allocate", weekly, "--record", "--ledger", wledger, "--format", "json"], env))
        names = [c["channel"] for c in plan["periods"][0]["channels"]]
        actuals = os.path.join(tmp, "weekly_actuals.csv")
        with open(actuals, "w", encoding="utf-8") as fh:
            fh.write("date," + ",".join(names) + "\n")
            for p in plan["periods"][:4]:
                fh.write(p["period"] + "," + ",".join(str(c["spend"]) for c in p["channels"]) + "\n")
        cases.append(("rebalance weekly (cached fit)",
                      [exe, "rebalance", weekly, "--actuals", actuals, "--ledger", wledger, "--dry-run",
                       "--format", "json"], 2.0))
        big = os.path.join(tmp, "big.sqlite")
        big_ledger(big, args.runs)
        cases.append((f"runs, {args.runs:,} in the ledger", [exe, "runs", "--ledger", big, "--format", "json"], 0.5))
        for name, argv, target in cases:
            times = timed(argv, env, args.repeat)
            med = statistics.median(times)
            rows.append({"case": name, "median_s": med, "min_s": min(times), "max_s": max(times), "target_s": target,
                         "meets_target": None if target is None else med <= target, "repeat": args.repeat})
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"{'case':36} {'median':>7} {'min':>6} {'max':>6} {'target':>8}")
    for r in rows:
        target = "-" if r["target_s"] is None else f"≤{r['target_s']:.1f}" + (" ✔" if r["meets_target"] else " ✘")
        print(f"{r['case']:36} {r['median_s']:7.2f} {r['min_s']:6.2f} {r['max_s']:6.2f} {target:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
