"""`budget`: the command line over the engine. The only module that prints, exits or logs setup.

Exit codes (documented in README and `budget --help`):
  0 ok · 1 unexpected failure · 2 usage error · 3 invalid input (every problem listed) ·
  4 infeasible plan (explained).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import sys
import tempfile
import unicodedata
import warnings
from pathlib import Path

# Third-party chatter, silenced by exact message before those libraries are imported.
logging.getLogger("cmdstanpy").disabled = True
warnings.filterwarnings("ignore", message="Importing plotly failed", module="prophet")
warnings.filterwarnings("ignore", category=DeprecationWarning, module="pulp")
warnings.filterwarnings("ignore", category=FutureWarning, module="prophet")

import click  # noqa: E402

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_INFEASIBLE = 4

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 unexpected failure; 2 usage error; 3 invalid input (every problem "
    "listed); 4 infeasible plan (the conflicting constraints are explained)."
)

logger = logging.getLogger("budget")


class Failure(Exception):
    """A failure cli.py reports as ``Error: …`` with an exit code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def _run(ctx: click.Context, fn, *args, **kwargs):
    """Call into the library; map its typed errors to messages and exit codes in one place."""
    from models.errors import HistoryError, ModelFileError
    from optimizer.errors import SolverError
    from scenarios.errors import ScenarioError

    debug = (ctx.find_root().obj or {}).get("debug", False)
    try:
        return fn(*args, **kwargs)
    except (ScenarioError, HistoryError) as exc:
        lines = [f"Error: {exc.source}: {len(exc.problems)} problem(s)"]
        lines += [f"  - {p}" for p in exc.problems]
        raise Failure("\n".join(lines), EXIT_INPUT) from exc
    except ModelFileError as exc:
        raise Failure(f"Error: {exc}", EXIT_INPUT) from exc
    except SolverError as exc:
        raise Failure(f"Error: solver failure: {exc}", EXIT_FAILURE) from exc
    except Failure:
        raise
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if debug:
            raise
        raise Failure(
            f"Error: unexpected failure: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            EXIT_FAILURE,
        ) from exc


class BudgetGroup(click.Group):
    """Turns :class:`Failure` into ``Error: …`` on stderr and its exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Failure as exc:
            click.echo(str(exc), err=True)
            ctx.exit(exc.code)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("cmdstanpy", "prophet", "matplotlib", "pulp"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


@click.group(cls=BudgetGroup, epilog=EXIT_CODES_HELP)
@click.option("-v", "--verbose", count=True, help="More log detail on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected failures.")
@click.version_option(package_name="budget-engine")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """Plan marketing budgets with response curves and a global LP optimiser.

    \b
    Example:
      budget allocate scenarios/examples/quarterly.toml
      budget allocate plan.toml --budget 12000000 --format json --output plan.json
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    _setup_logging(verbose, quiet)


# --------------------------------------------------------------------------------------------
# Output helpers


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _emit(text: str, output: str | None) -> None:
    if output:
        try:
            write_atomic(output, text)
        except OSError as exc:
            raise Failure(f"Error: cannot write {output}: {exc}", EXIT_FAILURE) from exc
        logger.info("wrote %s", output)
    else:
        click.echo(text, nl=not text.endswith("\n"))


def _json_safe(value):
    """Non-finite floats become null: JSON has no infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _width(text: str) -> int:
    """Display width: CJK characters take two terminal columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    gap = " " * max(width - _width(text), 0)
    return gap + text if right else text + gap


def render_table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    """Plain aligned columns (numbers right-aligned), CJK-aware."""
    right = right or set()
    widths = [max([_width(h)] + [_width(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(_pad(c, widths[i], i in right) for i, c in enumerate(cells)).rstrip()  # noqa: E731
    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def _num(v: float | None, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "∞" if isinstance(v, float) and v > 0 else "-"
    return f"{v:,.{digits}f}"


def _signed(v: float) -> str:
    return ("+" if v > 0.5 else "") + f"{v:,.0f}" if abs(v) >= 0.5 else "0"


def _pct(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v * 100:+.1f}%" if signed else f"{v * 100:.1f}%"


# --------------------------------------------------------------------------------------------
# allocate


def allocation_table(alloc, horizon: str | None = None) -> str:
    """The human report of an allocation."""
    d = alloc.to_dict()
    cur = d["current"] or {}
    head = f"{d['scenario']}: budget {_num(d['budget'])} {d['currency']}"
    if horizon:
        head += f", {horizon}"
    head += f"; objective {d['objective']}"
    lines = [head, ""]
    rows = []
    for c in d["channels"]:
        change = c["change"]
        rel = f" ({change / c['current_spend'] * 100:+.0f}%)" if c["current_spend"] > 0 and abs(change) >= 0.5 else ""
        rows.append([
            c["channel"], c["group"], _num(c["current_spend"]), _num(c["spend"]), _signed(change) + rel,
            _pct(c["share"]), _num(c["expected_return"]), _num(c["roi"], 2), _num(c["marginal_roi"], 2),
        ])
    lines.append(render_table(
        ["channel", "group", "current", "recommended", "change", "share", "return", "ROI", "mROI"],
        rows, right={2, 3, 4, 5, 6, 7, 8},
    ))
    lines.append("")
    b = d["budget"] or 1.0
    grows = []
    for g in d["groups"]:
        grows.append([g["group"], _num(g["current_spend"]), _pct(g["current_spend"] / b), _num(g["spend"]), _pct(g["share"])])
    grows.append(["reserve", _num(cur.get("reserve")), _pct((cur.get("reserve") or 0) / b), _num(d["reserve"]), _pct(d["reserve"] / b)])
    lines.append(render_table(["group", "current", "share", "recommended", "share"], grows, right={1, 2, 3, 4}))
    lines.append("")
    up = d["uplift"]
    lines.append(f"spend            {_num(cur.get('spend'))} → {_num(d['spend'])}")
    lines.append(
        f"expected return  {_num(cur.get('expected_return'))} → {_num(d['expected_return'])}"
        + (f" ({_pct(up, signed=True)})" if up is not None else "")
    )
    lines.append(f"ROI              {_num(cur.get('roi'), 2)} → {_num(d['roi'], 2)}")
    if cur and not cur.get("feasible", True):
        lines.append("the current plan breaks these constraints: " + "; ".join(cur["violations"]))
    if d["binding_constraints"]:
        lines.append("")
        lines.append("Binding constraints (what limits the plan):")
        for bd in d["binding_constraints"]:
            price = bd["shadow_price"]
            extra = f"  [shadow price {price:.3f}]" if price else ""
            lines.append(f"  {bd['name']}: {bd['detail']}{extra}")
    if d["warnings"]:
        lines.append("")
        lines.append("Warnings:")
        lines += [f"  - {w}" for w in d["warnings"]]
    lines.append("")
    lines.append(
        "mROI is the return of the next yuan. The plan equalises it across channels that are free "
        "to move; cut where it is lowest, not where average ROI is below average."
    )
    lines.append(f"solver: {d['solver']['name']} ({d['solver']['mode']}), {d['solver']['seconds']:.2f} s")
    return "\n".join(lines) + "\n"


ALLOCATION_CSV_FIELDS = [
    "channel", "group", "spend", "share", "current_spend", "change", "expected_return", "roi", "marginal_roi",
]


def allocation_csv(alloc) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=ALLOCATION_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for c in alloc.to_dict()["channels"]:
        w.writerow({k: ("" if c[k] is None else c[k]) for k in ALLOCATION_CSV_FIELDS})
    return buf.getvalue()


def allocation_json(alloc, scenario=None) -> str:
    d = alloc.to_dict()
    if scenario is not None:
        d["horizon"] = scenario.horizon
    return json.dumps(_json_safe(d), ensure_ascii=False, indent=2) + "\n"


def _infeasible_message(alloc) -> str:
    lines = [f"Error: no plan satisfies every constraint of {alloc.scenario}:"]
    lines += [f"  - {p}" for p in alloc.diagnosis]
    return "\n".join(lines)


FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
    help="Output format (results on stdout, or in --output).",
)
OUTPUT = click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the result to FILE (atomically).")


@main.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False))
@click.option("--budget", type=float, help="Override the scenario's total budget.")
@FORMAT
@OUTPUT
@click.option("--exact", is_flag=True, help="Solve S-shaped curves exactly (MILP) instead of on their concave envelope.")
@click.option("--lp-file", type=click.Path(dir_okay=False), help="Write the final LP model to FILE (debugging).")
@click.pass_context
def allocate(ctx, scenario, budget, fmt, output, exact, lp_file):
    """Recommend how to split the budget of SCENARIO across its channels.

    Finds the global optimum of the scenario's objective under every constraint it states
    (budget, reserve, channel and group bounds, change limits, ROI and marginal-ROI floors),
    and compares it with the current plan.

    \b
    Example:
      budget allocate scenarios/examples/quarterly.toml
      budget allocate plan.toml --budget 12000000 --format json -o plan.json
      budget allocate plan.toml --format csv > plan.csv
    """
    from optimizer import optimize
    from scenarios import load_scenario

    if budget is not None and (not math.isfinite(budget) or budget <= 0):
        raise click.BadParameter(f"must be a positive number, got {budget:g}", param_hint="--budget")
    sc = _run(ctx, load_scenario, scenario, budget=budget)
    alloc = _run(ctx, optimize, sc.problem, exact=exact, lp_path=lp_file)
    alloc.warnings[:0] = sc.notes
    if fmt == "json":
        _emit(allocation_json(alloc, sc), output)
    elif not alloc.feasible:
        pass
    elif fmt == "csv":
        _emit(allocation_csv(alloc), output)
    else:
        _emit(allocation_table(alloc, sc.horizon), output)
    if not alloc.feasible:
        raise Failure(_infeasible_message(alloc), EXIT_INFEASIBLE)


if __name__ == "__main__":  # pragma: no cover
    main()
