"""`budget`: the command line over the engine. The only module that prints, exits or logs setup.

Each command parses its flags, checks every output path before any work, calls one library
function and renders the result with :mod:`scenarios.render`. Results go to stdout (or
``--output``), everything else to stderr.

Exit codes (documented in README and `budget --help`):
  0 ok · 1 unexpected failure · 2 usage error · 3 invalid input (every problem listed) ·
  4 infeasible plan (explained) · 5 drift flagged · 130 interrupted (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import logging
import math
import os
import re
import signal
import sys
import warnings
from pathlib import Path

# Third-party chatter, silenced by exact message before those libraries are imported.
PLOTLY_NOTICE = "Importing plotly failed. Interactive plots will not work."


class _DropExact(logging.Filter):
    """Drops one log message, matched exactly."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.text


logging.getLogger("cmdstanpy").disabled = True
logging.getLogger("prophet.plot").addFilter(_DropExact(PLOTLY_NOTICE))
warnings.filterwarnings("ignore", message="Importing plotly failed", module="prophet")
# PuLP 3.x announces its 4.0 API; the optimizer already uses it where it exists.
warnings.filterwarnings("ignore", message=r"Constructing LpVariable\(name, \.\.\.\) directly is deprecated",
                        category=DeprecationWarning)
warnings.filterwarnings("ignore", message="Using LpProblem.constraints as a dict mapping is deprecated",
                        category=DeprecationWarning)
warnings.filterwarnings("ignore", message="PULP_CBC_CMD is deprecated", category=DeprecationWarning)

import click  # noqa: E402

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_INFEASIBLE = 4
EXIT_DRIFT = 5
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C; SIGTERM unwinds the same way

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 unexpected failure; 2 usage error; 3 invalid input (every problem "
    "listed); 4 infeasible plan (the conflicting constraints are explained); 5 drift flagged "
    "(rebalance --fail-on-drift; the run is recorded unless --dry-run); 130 interrupted (Ctrl-C or "
    "SIGTERM; temporary files removed, outputs left as they were)."
)

#: Chart formats ``--plot`` writes (chosen by the file's extension).
PLOT_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg")
#: Problems listed before the rest are counted instead (a file can have thousands).
PROBLEMS_SHOWN = 40

logger = logging.getLogger("budget")


class Failure(Exception):
    """A failure cli.py reports as ``Error: …`` with an exit code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def _count(problems: list[str]) -> int:
    """How many problems a (possibly capped) list stands for: "… and 2,940 more like this"."""
    more = [re.search(r"… and ([\d,]+) more like this", p) for p in problems]
    return sum(int(m.group(1).replace(",", "")) if m else 1 for m in more)


def _problem_lines(source: str, problems: list[str]) -> str:
    lines = [f"Error: {source}: {_count(problems):,} problem(s)"]
    lines += [f"  - {p}" for p in problems[:PROBLEMS_SHOWN]]
    if len(problems) > PROBLEMS_SHOWN:
        lines.append(f"  … and {len(problems) - PROBLEMS_SHOWN:,} more")
    return "\n".join(lines)


def _run(ctx: click.Context, fn, *args, **kwargs):
    """Call into the library; map its typed errors to messages and exit codes in one place.

    The error classes are imported only when something fails: a command that reads the ledger
    need not import the optimizer (numpy, PuLP) to start.
    """
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        from models.errors import HistoryError, ModelFileError
        from optimizer import SolverError
        from scenarios.errors import LedgerError, ScenarioError

        if isinstance(exc, (ScenarioError, HistoryError)):
            raise Failure(_problem_lines(exc.source, exc.problems), EXIT_INPUT) from exc
        if isinstance(exc, (LedgerError, ModelFileError)):
            raise Failure(f"Error: {exc}", EXIT_INPUT) from exc
        if isinstance(exc, SolverError):
            raise Failure(f"Error: solver failure: {exc}", EXIT_FAILURE) from exc
        raise


class BudgetGroup(click.Group):
    """Turns :class:`Failure` into ``Error: …`` on stderr and its exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Failure as exc:
            click.echo(str(exc), err=True)
            ctx.exit(exc.code)
        except KeyboardInterrupt:  # click would say "Aborted!" and exit 1, its code for a failure
            click.echo("\nAborted!", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - never a traceback unless asked for
            if (ctx.obj or {}).get("debug"):
                raise
            click.echo(
                f"Error: unexpected failure: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
                err=True,
            )
            ctx.exit(EXIT_FAILURE)


# --------------------------------------------------------------------------------------------
# stderr: logs, Python warnings, progress


class _Format(logging.Formatter):
    """``warning: …`` for our own warnings; the logger's name only at -vv."""

    def __init__(self, detailed: bool):
        super().__init__()
        self.detailed = detailed

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if self.detailed:
            return f"{record.levelname} {record.name}: {message}"
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        return message


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python warnings become log lines: plain words, no source paths (-q silences them)."""
    logging.getLogger("py.warnings").warning("%s", message)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Format(detailed=verbose >= 2))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("cmdstanpy", "prophet", "matplotlib", "pulp"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # What the user should know even without -v: files written, progress of long work.
    # "fitting 9 channels on 156 weekly periods …"; "h.csv: read as semicolon-separated UTF-8 …";
    # "reading dates day-first (%d.%m.%Y) …"
    for ours in (logger, *map(logging.getLogger, ("models.cache", "models.history", "models.dates"))):
        ours.setLevel(logging.ERROR if quiet else min(level, logging.INFO))
    warnings.showwarning = _show_warning


def _say(message: str, *args) -> None:
    """A line for the person at the terminal or the job's log (stderr; -q silences it)."""
    logger.info(message, *args)


class ProgressBar:
    """Progress on stderr: a bar on a terminal, else a line every 10% (for a job's log).

    ``update(done, total)``; -q silences the lines.
    """

    def __init__(self, label: str):
        self.label = label
        self.bar = None
        self.done = 0
        self.next_line = 0.0

    def __enter__(self):
        return self

    def update(self, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            if total and done / total >= self.next_line:
                _say("%s: %d/%d", self.label, done, total)
                self.next_line = math.floor(done / total * 10 + 1) / 10
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False


# --------------------------------------------------------------------------------------------
# the group


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
      budget allocate scenarios/examples/quarterly.toml --budget 12000000 --format json -o plan.json
      budget fit scenarios/examples/history_weekly.csv -o model.json
      budget forecast scenarios/examples/quarterly.toml --format csv
    """
    ctx.ensure_object(dict)
    ctx.obj.update(debug=debug, verbose=verbose, quiet=quiet)
    _setup_logging(verbose, quiet)


def _late_logging(ctx: click.Context, param: click.Parameter, value):
    """-v, -q and --debug given after the command (``budget allocate s.toml -q``) count as before it."""
    if value:
        obj = ctx.find_root().obj
        obj[param.name] = obj.get(param.name, 0) + value if param.name == "verbose" else True
        _setup_logging(obj.get("verbose", 0), obj.get("quiet", False))
    return value


def _accept_logging_options(group: click.Group) -> None:
    """Give every command the group's -v/-q/--debug, so they work on either side of its name."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _accept_logging_options(command)
        names = {n for p in command.params for n in p.opts}
        for param in main.params:
            if isinstance(param, click.Option) and not names & set(param.opts) and param.name != "version":
                command.params.append(click.Option(param.opts, count=param.count, is_flag=param.is_flag and not param.count,
                                                   expose_value=False, callback=_late_logging, help=param.help))


# --------------------------------------------------------------------------------------------
# output


def _not_empty(ctx, param, value):
    """An empty name (``--ledger "$LEDGER"`` with LEDGER unset) is a usage error, not the default
    place: a job would record into, or write, somewhere it did not mean to."""
    if value is not None and not str(value).strip():
        raise click.BadParameter("an empty name; " + ("give one" if param.required else
                                                      "leave the option out for the default"), ctx=ctx, param=param)
    return value


def _check_output(path: str | None, option: str, formats: tuple[str, ...] | None = None) -> None:
    """Refuse an output path that cannot be written, before any work is done (exit 2).

    An empty path (``-o "$OUT"`` with OUT unset) is refused rather than read as "stdout"; a device
    or a pipe (``-o /dev/null``) is written in place; for a file, the folder it lands in (through
    a symlink, the target's) must take a new file, which is tried: as root, permission bits and
    read-only file systems such as /proc do not show in ``os.access``."""
    if path is None or (option == "--output" and _is_stdout(path)):
        return
    if not path.strip():
        raise click.BadParameter("an empty file name; leave the option out to print to stdout", param_hint=option)
    if _is_stdout(path):  # "-" was written as a file named "-"; stdout carries the results
        raise click.BadParameter(f"{path}: stdout carries the results (--output); give a file name", param_hint=option)
    from models.atomic import is_special

    target = Path(path)
    if formats is not None and target.suffix.lower().lstrip(".") not in formats:
        raise click.BadParameter(
            f"{path}: unknown chart format {target.suffix or '(no extension)'!r}; use one of "
            + ", ".join(f".{f}" for f in formats), param_hint=option)
    if target.is_dir():
        raise click.BadParameter(f"{path} is a folder; give a file name", param_hint=option)
    if is_special(target):
        if not os.access(target, os.W_OK):
            raise click.BadParameter(f"{path}: cannot write to it (permission denied)", param_hint=option)
        return
    _check_folder(Path(os.path.realpath(target)).parent, path, option)


#: Output paths that mean stdout: ``-o -`` and the device names of file descriptor 1 (fd 1 itself
#: carries the libraries' chatter to stderr while a command runs: see :func:`_guard_stdout`).
STDOUT_NAMES = ("-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1")


def _is_stdout(path: str | None) -> bool:
    return path is not None and path.strip() in STDOUT_NAMES


def _check_folder(folder: Path, path: str, option: str) -> None:
    """``folder`` exists and takes a new file (one is made and removed), else a usage error."""
    if not folder.is_dir():
        raise click.BadParameter(f"{path}: the folder {folder} does not exist", param_hint=option)
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(prefix=".budget-check-", dir=folder)
    except OSError as exc:
        why = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc)).lower()
        raise click.BadParameter(f"{path}: cannot write in the folder {folder} ({why})", param_hint=option) from None
    os.close(fd)
    os.unlink(probe)


def _check_distinct(**paths: str | None) -> None:
    """Refuse two outputs given the same file (the second written would replace the first; exit 2).
    Keyword names are the options with underscores (``lp_file`` for ``--lp-file``)."""
    seen: dict[Path, str] = {}
    for name, path in paths.items():
        if not path or _is_stdout(path):
            continue
        option = "--" + name.replace("_", "-")
        key = Path(path).absolute().resolve()
        if key in seen:
            raise click.UsageError(f"{seen[key]} and {option} name the same file ({path}); give each its own")
        seen[key] = option


def _emit(text: str, output: str | None, what: str = "result") -> None:
    if output and not _is_stdout(output):
        from models.atomic import write_text_atomic

        try:
            write_text_atomic(output, text)
        except OSError as exc:
            raise Failure(f"Error: cannot write {output}: {exc}", EXIT_FAILURE) from exc
        _say("wrote the %s to %s", what, output)
    else:
        click.echo(text, nl=not text.endswith("\n"))


def _draw(draw, data: dict, path: str, title: str) -> None:
    """Draw a chart with ``models.plot``; a file that cannot be written is a clean error."""
    try:
        draw(data, path, title)
    except (OSError, ValueError) as exc:
        raise Failure(f"Error: cannot draw {path}: {exc}", EXIT_FAILURE) from exc
    _say("wrote the chart to %s", path)


FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
    help="Output format (results on stdout, or in --output).",
)
OUTPUT = click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the result to FILE (atomically).")
SHEET_FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv", "xlsx"]), default="table", show_default=True,
    help="Output format (results on stdout, or in --output; xlsx needs --output or a redirected stdout).",
)


def _stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def _check_sheet(fmt: str, output: str | None) -> None:
    """An Excel workbook is binary: to a file, or to a stdout that is not a terminal (``> plan.xlsx``)."""
    if fmt == "xlsx" and (not output or _is_stdout(output)) and _stdout_is_terminal():
        raise click.UsageError("--format xlsx writes a binary workbook: give --output FILE.xlsx "
                               "(or redirect stdout to a file)")


def _emit_bytes(data: bytes, output: str | None, what: str = "result") -> None:
    """Binary output (a workbook): written atomically to ``output``, else to stdout as it is."""
    if output and not _is_stdout(output):
        from models.atomic import atomic_target, sync

        try:
            with atomic_target(output) as tmp:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                    sync(fh)
        except OSError as exc:
            raise Failure(f"Error: cannot write {output}: {exc}", EXIT_FAILURE) from exc
        _say("wrote the %s to %s", what, output)
    else:
        click.echo(data, nl=False)
NO_CACHE = click.option("--no-cache", is_flag=True, help="Fit the history again instead of reusing a cached fit.")


def _load_scenario(path, **kwargs):
    """Load a scenario, with progress while curves are fitted from history (it takes a while).

    The fit's ConvergenceWarnings are not repeated on stderr: the plan carries every one of
    them in its warnings (table and JSON), in plain words.
    """
    from models.errors import ConvergenceWarning
    from scenarios import load_scenario

    with warnings.catch_warnings(), ProgressBar("fitting curves from history") as bar:
        warnings.simplefilter("ignore", ConvergenceWarning)
        return load_scenario(path, progress=bar.update, **kwargs)


# --------------------------------------------------------------------------------------------
# allocate


@main.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False))
@click.option("--budget", type=float, help="Override the scenario's total budget (the current plan keeps its split).")
@SHEET_FORMAT
@OUTPUT
@click.option("--exact", is_flag=True, help="Solve S-shaped curves exactly (MILP) instead of on their concave envelope.")
@click.option("--lp-file", type=click.Path(dir_okay=False), help="Write the final LP model to FILE (debugging).")
@click.option("--risk", "risk", metavar="cvar:ALPHA|guard:ALPHA",
              help="Plan for the bad case over the curve samples and compare with the risk-neutral plan: "
                   "cvar:0.1 maximises the mean of the worst 10% of outcomes; guard:0.1 (do no harm) is the "
                   "best mean return whose worst 10% of samples still gain on the current split, in place "
                   "of the evidence limits.")
@click.option("--plot", "plot", type=click.Path(dir_okay=False),
              help="Also draw the plan against the current one to FILE (.png, .svg, .pdf, .jpg; per period too).")
@click.option("--ignore-evidence", is_flag=True,
              help="Plan on the fitted curves alone: do not keep channels the history identifies poorly near "
                   "their share of the current split (the plan then warns how much money moves through them).")
@NO_CACHE
@click.option("--record", is_flag=True, help="Record this plan as the plan of record in the ledger (for rebalances).")
@click.option("--ledger", type=click.Path(dir_okay=False), callback=_not_empty,
              help="The ledger (SQLite) for --record [$BUDGET_LEDGER, else budget-ledger.sqlite beside SCENARIO].")
@click.option("--force", is_flag=True, help="With --record: record even if another plan of record exists "
                                            "(it is superseded, not deleted).")
@click.pass_context
def allocate(ctx, scenario, budget, fmt, output, exact, lp_file, risk, plot, ignore_evidence, no_cache, record, ledger,
             force):
    """Recommend how to split the budget of SCENARIO across its channels (and periods).

    Finds the global optimum of the scenario's objective under every constraint it states
    (budget, reserve, channel and group bounds, change limits, ROI and marginal-ROI floors),
    and compares it with the current plan. On curves fitted from history, channels the history
    identifies poorly are kept near their share of the current split (limit evidence[channel];
    the notes say which, a lift test in [[calibration]] frees them). A scenario with a [horizon] table is planned
    period by period (carryover, seasonal efficiency, pacing); CSV is then one row per period
    and channel. An infeasible plan exits 4 and says which constraints conflict (with
    --format json the JSON is still printed, with "status": "infeasible"). --format xlsx
    writes an Excel workbook (sheets summary, channels, groups, and periods for a period
    plan) to --output, or to stdout when it is not a terminal.

    \b
    Example:
      budget allocate scenarios/examples/quarterly.toml
      budget allocate scenarios/examples/quarterly.toml --budget 12000000 --format json -o plan.json
      budget allocate scenarios/examples/pasted_curves.toml --format csv > plan.csv
      budget allocate scenarios/examples/weekly.toml
      budget allocate scenarios/examples/quarterly.toml --risk cvar:0.1
      budget allocate scenarios/examples/weekly.toml --risk cvar:0.1
      budget allocate scenarios/examples/quarterly.toml --risk guard:0.1
      budget allocate scenarios/examples/weekly.toml --plot plan.png
      budget allocate scenarios/examples/weekly.toml --format xlsx -o plan.xlsx
      budget allocate scenarios/examples/quarterly.toml --record --ledger q1.sqlite
    """
    from scenarios import render
    from scenarios.plan import plan_scenario

    if budget is not None:
        from scenarios.schema import MAX_MONEY, MIN_BUDGET

        if not math.isfinite(budget) or budget < MIN_BUDGET or budget > MAX_MONEY:
            raise click.BadParameter(f"must be between {MIN_BUDGET:g} (a cent) and {MAX_MONEY:g}, got {budget:g}",
                                     param_hint="--budget")
    risk_spec = None
    if risk:
        from scenarios.horizon import parse_risk

        try:
            risk_spec = parse_risk(risk)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--risk") from None
        if lp_file:
            raise click.UsageError("--lp-file writes the LP of a plan on the fitted curves; the plans over curve "
                                   "samples of --risk are other LPs (leave one of the two out)")
    _check_output(output, "--output")
    _check_sheet(fmt, output)
    _check_output(lp_file, "--lp-file")
    _check_output(plot, "--plot", PLOT_FORMATS)
    if record:
        from scenarios.ledger import default_ledger_path

        ledger = ledger or str(default_ledger_path(scenario))
        _check_output(ledger, "--ledger")
    elif ledger or force:
        raise click.UsageError("--ledger and --force go with --record")
    _check_distinct(output=output, lp_file=lp_file, plot=plot, ledger=ledger)

    sc = _run(ctx, _load_scenario, scenario, budget=budget, use_cache=not no_cache)
    if lp_file and sc.risk is not None and risk_spec is None:
        raise click.UsageError(f"--lp-file writes the LP of a plan on the fitted curves; this scenario plans over "
                               f"curve samples (risk = \"{sc.risk.measure}:{sc.risk.alpha:g}\"), which are other LPs")
    plan = _run(ctx, plan_scenario, sc, exact=exact, lp_path=lp_file, risk_alpha=risk_spec and risk_spec.alpha,
                risk_measure=risk_spec.measure if risk_spec else "cvar", evidence=not ignore_evidence)
    alloc, extra = plan.allocation, plan.extra
    if record and alloc.feasible:  # before any output: a plan that could not be recorded writes nothing
        _record_plan(ctx, ledger, scenario, render.allocation_json(alloc, sc, extra), {"budget": budget}, force)
    if lp_file:
        _say("wrote the LP model to %s", lp_file)
    if plot and alloc.feasible:
        from models.plot import allocation_plot

        _draw(allocation_plot, alloc.to_dict(), plot, f"{sc.name}: recommended plan")
    if fmt == "json":
        _emit(render.allocation_json(alloc, sc, extra), output, "plan")
    elif fmt == "xlsx":  # like JSON, an infeasible plan's workbook is still written (its diagnosis)
        from scenarios.sheets import allocation_workbook

        _emit_bytes(allocation_workbook(alloc, sc, extra), output, "plan")
    elif not alloc.feasible:
        pass
    elif fmt == "csv":
        _emit(render.period_csv(alloc) if plan.periodic else render.allocation_csv(alloc), output, "plan")
    else:
        text = render.allocation_table(alloc, sc.horizon) + (render.period_table(alloc) if plan.periodic else "")
        _emit(text + render.risk_table(extra), output, "plan")
    if not alloc.feasible:
        raise Failure(render.infeasible_message(alloc), EXIT_INFEASIBLE)


def _record_plan(ctx, ledger: str, scenario: str, plan_json: str, overrides: dict, force: bool) -> None:
    import json

    from scenarios.ledger import record_plan

    run, new = _run(ctx, record_plan, ledger, scenario, json.loads(plan_json), command=" ".join(sys.argv),
                    overrides=overrides, force=force)
    if new:
        _say("recorded the plan of record as run %d in %s", run.id, ledger)
    else:
        _say("the plan of record is already run %d in %s (recorded %s, same scenario and data); nothing new "
             "recorded (--force records it again)", run.id, ledger, run.started)


# --------------------------------------------------------------------------------------------
# fit


def _fit_source(path: str, date, kpi, channels, layout, ignore, controls, events, date_format, channel_column,
                spend_column):
    """What to fit: a scenario's [history] table, or a CSV read with the flags."""
    from models.history import HistorySpec

    if path.endswith(".toml"):
        from scenarios.schema import history_source

        return history_source(path)
    spec = HistorySpec(layout=layout, date=date, kpi=kpi, channels=channels or None, ignore=tuple(ignore),
                       controls=tuple(controls), events=tuple(events), date_format=date_format,
                       channel_column=channel_column, spend_column=spend_column)
    return Path(path), spec, {}


def _country(ctx, param, value):
    """--holidays: a country code Prophet's holiday calendars know ("none" for no holidays)."""
    if value is None:
        return None
    if value.lower() == "none":
        return False
    from models.baseline import country_problem

    problem = country_problem(value)
    if problem:
        raise click.BadParameter(problem)
    return value


@main.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--output", "-o", "--out", "out", type=click.Path(dir_okay=False),
              help="Save the fitted model as JSON (atomically), for a scenario's [model] table.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Format of the fit report on stdout.")
@click.option("--holdout", type=click.IntRange(min=0), help="Last periods held out to score the fit [13].")
@click.option("--method", type=click.Choice(["auto", "bayes", "least-squares"]), default=None,
              help="bayes: the joint Bayesian model (ROI priors, baseline in the model, NUTS); least-squares: "
                   "least squares with a bootstrap. [auto: bayes for a total KPI, least squares for the long "
                   "layout or with --bootstrap]")
@click.option("--draws", type=click.IntRange(min=50, max=100_000),
              help="bayes: posterior draws per chain after warm-up [400].")
@click.option("--kpi-unit", type=click.Choice(["auto", "money", "other"]), default=None,
              help="Is the KPI money in the spend's units? other (conversions, orders): ROIs in KPI units, the "
                   "ROI prior on paid media's share of the KPI, no break-even claimed. [auto: decided from the "
                   "KPI's scale against the spend's, and said]")
@click.option("--bootstrap", type=click.IntRange(min=0),
              help="Least squares with this many bootstrap resamples for the ROI intervals (asks for least "
                   "squares unless --method says otherwise) [100].")
@click.option("--seed", type=int, help="Random seed (the same seed gives the same fit) [0].")
@click.option("--s-shaped", is_flag=True, help="Allow S-shaped curves (Hill shape up to 3).")
@click.option("--date", default="date", show_default=True, help="CSV: the date column.")
@click.option("--kpi", default="revenue", show_default=True, help="CSV: the KPI column (long layout: per-channel return).")
@click.option("--channels", help="CSV: spend columns, comma-separated, or a glob such as '*_S' (default: every other column).")
@click.option("--layout", type=click.Choice(["wide", "long"]), default="wide", show_default=True, help="CSV layout.")
@click.option("--channel-column", default="channel", show_default=True, help="CSV, long layout: the channel column.")
@click.option("--spend-column", default="spend", show_default=True, help="CSV, long layout: the spend column.")
@click.option("--ignore", multiple=True, help="CSV: a column (or glob) to skip; repeatable.")
@click.option("--control", "controls", multiple=True, help="CSV: a control column; repeatable.")
@click.option("--event", "events", multiple=True, help="CSV: an event column (0/1 or labels); repeatable.")
@click.option("--date-format", help="CSV: the dates' strftime pattern, e.g. '%d.%m.%Y' (needed when day and "
                                    "month could be read either way).")
@click.option("--holidays", callback=_country, metavar="CODE",
              help="Country whose holidays the baseline knows (Prophet's calendars: CN, DE, US, …; 'none') [CN].")
@click.option("--campaign-days/--no-campaign-days", default=None,
              help="Add 618, Double 11 and the member day (default: with China's holidays only).")
@click.option("--calibration", type=click.Path(exists=True, dir_okay=False),
              help="Lift tests the fit must agree with: TOML with a [[calibration]] list, or CSV with the "
                   "columns channel,start,end,lift,se (replaces a scenario's own list).")
@NO_CACHE
@click.pass_context
def fit(ctx, source, out, fmt, method, draws, kpi_unit, holdout, bootstrap, seed, s_shaped, date, kpi, channels, layout,
        channel_column, spend_column, ignore, controls, events, date_format, holidays, campaign_days, calibration,
        no_cache):
    """Fit each channel's response curve from a history (CSV or .xlsx, or a scenario's [history] table).

    Carryover (adstock) and saturation per channel and the baseline (trend, yearly seasonality,
    a country's holidays: China's by default, with the campaign days 618, Double 11 and the
    member day; --holidays DE for Germany's) in one Bayesian model of the KPI: ROI priors pooled
    across channels, NUTS; its posterior draws give the ROI intervals and the curve samples
    plans are scored on (30-90 s for three years of weekly data; a progress bar on stderr). Fit
    quality in sample and on a held-out tail. --method least-squares (or --bootstrap N) fits by
    least squares on a Prophet baseline with a block bootstrap instead (5-15 s): on the recovery
    study its ROIs were off twice as much and its plans worse than the historical split three
    times as often (README, "How well curves are recovered"). Per-channel returns (--layout long)
    are always fitted by least squares. Lift tests (--calibration, or a scenario's
    [[calibration]] list) pin the channels a total KPI cannot tell apart; the report says per
    channel how well the history identifies it and which test would settle it. The fit is cached
    (see `budget cache`): a scenario that plans on the same history and settings reuses it
    instead of fitting again.

    \b
    Example:
      budget fit scenarios/examples/history_weekly.csv -o model.json
      budget fit scenarios/examples/quarterly.toml --format json
      budget fit scenarios/examples/history_weekly.csv --holidays DE --bootstrap 20
      budget fit scenarios/examples/history_weekly.csv --calibration scenarios/examples/lift_tests.csv
      budget fit scenarios/examples/history_weekly.csv --method least-squares --format json
      budget fit dt_simulated_weekly.csv --date DATE --channels '*_S' --control competitor_sales_B \\
          --control newsletter --event events --ignore '*_I' --ignore '*_P'
      budget fit national_media.csv --date time --kpi conversions --kpi-unit other --channels '*_spend' \\
          --ignore '*_impression' --ignore revenue_per_conversion --control sentiment_score_control \\
          --control competitor_activity_score_control --holdout 0
      budget fit 渠道周报.csv --layout long --date 日期 --channel-column 渠道 --spend-column 花费 --kpi GMV
    """
    from models.cache import fit_history
    from scenarios import render

    _check_output(out, "--output")
    csv_path, spec, settings = _run(ctx, _fit_source, source, date, kpi, channels, layout, ignore, controls, events,
                                    date_format, channel_column, spend_column)
    for key, value in (("holdout", holdout), ("n_bootstrap", bootstrap), ("random_state", seed),
                       ("holidays", holidays), ("campaign_days", campaign_days), ("draws", draws),
                       ("kpi_unit", kpi_unit),
                       ("method", method.replace("-", "_") if method else None)):
        if value is not None:
            settings[key] = value
    if s_shaped:
        settings["s_shaped"] = True
    if calibration:
        from models.calibration import read_lift_tests

        settings["calibration"] = _run(ctx, read_lift_tests, calibration)
    from models.errors import ConvergenceWarning

    with warnings.catch_warnings(), ProgressBar("fitting curves") as bar:
        warnings.simplefilter("ignore", ConvergenceWarning)  # the report lists them, in plain words
        model, cached = _run(ctx, fit_history, csv_path, spec, settings, use_cache=not no_cache,
                             progress=bar.update)
    if cached:
        _say("(--no-cache fits again)")
    report = model.report()
    if out:
        from models.serialize import save_model

        try:
            save_model(model, out)
        except OSError as exc:
            raise Failure(f"Error: cannot write {out}: {exc}", EXIT_FAILURE) from exc
        _say("wrote the model to %s", out)
    if fmt == "json":
        click.echo(render.json_text(report), nl=False)
    else:
        click.echo(render.fit_table(report, str(csv_path)), nl=False)


# --------------------------------------------------------------------------------------------
# forecast


@main.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False))
@click.option("--horizon", help="Horizon: 13w, 3m, 91d or a number of data periods [the scenario's periods]; the "
                                "scenario's budget is planned over it as written (the notes say what that does).")
@FORMAT
@OUTPUT
@click.option("--plot", "plot", type=click.Path(dir_okay=False), help="Also draw the forecast to FILE (.png, .svg, .pdf, .jpg).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the interval simulation.")
@NO_CACHE
@click.pass_context
def forecast(ctx, scenario, horizon, fmt, output, plot, seed, no_cache):
    """Forecast the horizon: baseline KPI, plus media return under the current and recommended plans.

    Needs a scenario whose curves come from history ([history] or [model]). Each series has
    P10/P50/P90, per period and over the horizon: Prophet's baseline (with the model's
    out-of-sample error) combined with the curve samples of the fit (posterior draws of the joint
    model, or the least-squares bootstrap's).

    \b
    Example:
      budget forecast scenarios/examples/quarterly.toml
      budget forecast scenarios/examples/quarterly.toml --horizon 3m --format csv
      budget forecast scenarios/examples/quarterly.toml --plot forecast.png --format json -o forecast.json
    """
    from models.forecast import parse_horizon
    from scenarios import render
    from scenarios.plan import forecast_scenario

    _check_output(output, "--output")
    _check_output(plot, "--plot", PLOT_FORMATS)
    _check_distinct(output=output, plot=plot)
    if horizon is not None:
        try:
            parse_horizon(horizon, "weekly")  # the syntax, before any work; periods once the model is known
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--horizon") from None
    sc = _run(ctx, _load_scenario, scenario, use_cache=not no_cache)
    own = None
    if horizon and sc.model is not None:
        try:
            periods = parse_horizon(horizon, sc.model.frequency_)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--horizon") from None
        if periods < 1:
            raise click.BadParameter(f"{horizon!r} is less than one {sc.model.frequency_} period", param_hint="--horizon")
        if periods != sc.periods:
            own = sc.periods
            sc = _run(ctx, _load_scenario, scenario, periods=periods, use_cache=not no_cache)
    fc, plan = _run(ctx, forecast_scenario, sc, seed=seed, own_periods=own)
    if not plan.allocation.feasible:
        raise Failure(render.infeasible_message(plan.allocation), EXIT_INFEASIBLE)
    if plot:
        from models.plot import forecast_plot
        from scenarios.report import forecast_chart

        _draw(forecast_plot, _run(ctx, forecast_chart, sc, fc), plot, f"{sc.name}: forecast")
    if fmt == "json":
        _emit(render.json_text(fc), output, "forecast")
    elif fmt == "csv":
        _emit(render.forecast_csv(fc), output, "forecast")
    else:
        _emit(render.forecast_table(fc, sc.name) + "".join(f"note: {n}\n" for n in fc["notes"]), output, "forecast")


# --------------------------------------------------------------------------------------------
# report


def _check_output_dir(path: str, option: str) -> None:
    """Refuse a report folder that cannot be made or written, before any work is done (exit 2)."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise click.BadParameter(f"{path} is a file; give a folder (it is created if missing)", param_hint=option)
    _check_folder(target if target.is_dir() else target.absolute().parent, path, option)


@main.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), callback=_not_empty,
              help="Folder for report.html and its charts (created if missing; its parent must exist).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the forecast's interval simulation.")
@NO_CACHE
@click.pass_context
def report(ctx, scenarios, out, seed, no_cache):
    """Write a report of SCENARIO(s): one HTML page with every chart in it, and the charts as PNG.

    Per scenario: the plan's totals, warnings and fit quality in words, each channel's response
    curve (history's periods as points, P10–P90 band, current and recommended spend marked),
    current against recommended spend, group shares against the reference split 35/25/20/15/5,
    and the forecast after the history. The page is self-contained: it opens from disk, loads
    nothing and runs no script. An infeasible plan is still reported (its conflict explained),
    then the command exits 4.

    \b
    Example:
      budget report scenarios/examples/quarterly.toml --out report
      budget report scenarios/examples/quarterly.toml scenarios/examples/pasted_curves.toml --out comparison
    """
    from scenarios.report import write_report

    _check_output_dir(out, "--out")
    loaded = [_run(ctx, _load_scenario, path, use_cache=not no_cache) for path in scenarios]
    try:
        files = _run(ctx, write_report, loaded, out, seed=seed)
    except OSError as exc:
        raise Failure(f"Error: cannot write the report in {out}: {exc}", EXIT_FAILURE) from exc
    for chart in files.charts:
        _say("wrote the chart to %s", chart)
    for reason in files.omitted:
        _say("left out: %s", reason)
    _say("wrote the report to %s", files.html)
    if files.infeasible:
        raise Failure("Error: no plan satisfies every constraint of " + ", ".join(files.infeasible)
                      + f" (the report explains why: {files.html})", EXIT_INFEASIBLE)


# --------------------------------------------------------------------------------------------
# compare


@main.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--budget", type=float, help="Plan every scenario file at this total budget (saved plans keep theirs).")
@SHEET_FORMAT
@OUTPUT
@click.option("--plot", "plot", type=click.Path(dir_okay=False),
              help="Also draw spend per channel and expected return, side by side, to FILE (.png, .svg, .pdf, .jpg).")
@click.option("--exact", is_flag=True, help="Solve S-shaped curves exactly (MILP) instead of on their concave envelope.")
@click.pass_context
def compare(ctx, sources, budget, fmt, output, plot, exact):
    """Compare scenario files (and saved plans) side by side: one column each.

    Each SOURCE is a scenario (.toml), planned as `budget allocate` plans it, a saved plan
    (.json from `budget allocate --format json -o plan.json`), or a plan recorded in a ledger
    (LEDGER.sqlite#RUN, or LEDGER.sqlite for its plan of record), shown as it was saved: "the
    plan we approved vs what the model says now". Per column: budget, spend, reserve, expected return
    (P10–P90 on fitted curves), ROI, marginal ROI, uplift over its own current plan, spend and
    share per channel and group (lined up by name, blank where a column lacks one), binding
    constraints; with two columns, the second minus the first. The output says whether the
    columns were planned on the same curves. Scenarios on the same history share one fit.
    A file that cannot be read is reported on stderr with its problems, the others are still
    compared, and the command exits 3; an infeasible scenario is a column with its diagnosis
    (exit 4).

    \b
    Example:
      budget compare scenarios/examples/pasted_curves.toml scenarios/examples/roi_floor.toml
      budget compare scenarios/examples/quarterly.toml scenarios/examples/weekly.toml --format json
      budget allocate scenarios/examples/quarterly.toml --format json -o approved.json
      budget compare approved.json scenarios/examples/quarterly.toml --budget 11000000 --plot compare.png
      budget compare scenarios/examples/pasted_curves.toml scenarios/examples/roi_floor.toml --format xlsx -o compare.xlsx
    """
    from models.errors import ConvergenceWarning
    from scenarios import render
    from scenarios.compare import compare_scenarios

    if budget is not None:
        from scenarios.schema import MAX_MONEY, MIN_BUDGET

        if not math.isfinite(budget) or budget < MIN_BUDGET or budget > MAX_MONEY:
            raise click.BadParameter(f"must be between {MIN_BUDGET:g} (a cent) and {MAX_MONEY:g}, got {budget:g}",
                                     param_hint="--budget")
    _check_output(output, "--output")
    _check_sheet(fmt, output)
    _check_output(plot, "--plot", PLOT_FORMATS)
    _check_distinct(output=output, plot=plot)

    def announce(i, total, name):
        _say("comparing %d/%d: %s", i, total, name)

    with warnings.catch_warnings(), ProgressBar("fitting curves from history") as bar:
        warnings.simplefilter("ignore", ConvergenceWarning)  # each column's warnings list them
        cmp = _run(ctx, compare_scenarios, sources, budget=budget, exact=exact, fit_progress=bar.update,
                   on_scenario=announce)
    for fit in cmp["fits"]:
        if len(fit["scenarios"]) > 1:
            _say("one fit of %s, shared by %d columns", fit["source"], len(fit["scenarios"]))
    problems = "\n".join(_problem_lines(e["source"], e["problems"]) for e in cmp["errors"])
    if cmp["scenarios"]:
        if plot:
            from models.plot import comparison_plot

            _draw(comparison_plot, cmp, plot, "Scenarios side by side")
        if fmt == "json":
            _emit(render.json_text(cmp), output, "comparison")
        elif fmt == "csv":
            _emit(render.comparison_csv(cmp), output, "comparison")
        elif fmt == "xlsx":
            from scenarios.sheets import comparison_workbook

            _emit_bytes(comparison_workbook(cmp), output, "comparison")
        else:
            _emit(render.comparison_table(cmp), output, "comparison")
    if problems:
        raise Failure(problems, EXIT_INPUT)
    infeasible = [c["name"] for c in cmp["scenarios"] if c["status"] != "optimal"]
    if infeasible:
        raise Failure("Error: no plan satisfies every constraint of " + ", ".join(infeasible)
                      + " (the diagnosis is in the comparison)", EXIT_INFEASIBLE)


# --------------------------------------------------------------------------------------------
# frontier


def _levels(start: str | None, stop: str | None, steps: int, of_forecast: bool) -> list[float]:
    """--from/--to/--steps as the sweep's levels (usage errors before any work)."""
    from scenarios.frontier import DEFAULT_FORECAST_LEVELS, DEFAULT_LEVELS, frontier_levels, parse_level

    lo, hi, _ = DEFAULT_FORECAST_LEVELS if of_forecast else DEFAULT_LEVELS
    try:
        lo = parse_level(start) if start is not None else lo
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--from") from None
    try:
        hi = parse_level(stop) if stop is not None else hi
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from None
    if of_forecast and hi > 1:
        raise click.BadParameter(f"with --of-forecast a level is a share of the forecast KPI (15% or 0.15), "
                                 f"got {stop!r}", param_hint="--to")
    for option, text, value in (("--from", start, lo), ("--to", stop, hi)):
        if not of_forecast and text is not None and str(text).strip().endswith("%") and value <= 0.3:
            logger.warning("%s %s is %g× the scenario's budget; for a share of the forecast KPI (\"marketing "
                           "spend 15–20%% of GMV\") add --of-forecast", option, text.strip(), value)
    try:
        return frontier_levels(lo, hi, steps)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--from/--to") from None


@main.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False))
@click.option("--from", "start", metavar="LEVEL",
              help="Lowest level: a multiple of the scenario's budget (0.5, or 50%), or with --of-forecast a share "
                   "of the forecast KPI (15%) [0.5; 15%].")
@click.option("--to", "stop", metavar="LEVEL", help="Highest level, likewise [2.0; 20%].")
@click.option("--steps", type=click.IntRange(2, 1000), default=16, show_default=True,
              help="Levels in the sweep, both ends included.")
@click.option("--of-forecast", is_flag=True,
              help="Levels are shares of the horizon's forecast KPI (baseline + media at the historical run rate; "
                   "curves fitted from history), as in \"marketing spend 15–20% of GMV\".")
@FORMAT
@OUTPUT
@click.option("--plot", "plot", type=click.Path(dir_okay=False),
              help="Also draw the frontier to FILE (.png, .svg, .pdf, .jpg): return with P10–P90, marginal ROI, channel mix.")
@NO_CACHE
@click.pass_context
def frontier(ctx, scenario, start, stop, steps, of_forecast, fmt, output, plot, no_cache):
    """Sweep the budget of SCENARIO: what each level buys under its constraints.

    Plans the scenario at each level as `budget allocate --budget B` would (every constraint; the
    current plan scaled to keep its split) and reports the expected return (P10–P90 where the
    curves are fitted), ROI, the plan's marginal ROI and the channel mix per level; the budget
    where marginal ROI falls to 1 (break-even) and to the scenario's marginal-ROI floor; and the
    level within the band the curves favour: the largest budget whose last unit of money still
    earns the scenario's threshold (its marginal-ROI floor, else 1), i.e. that threshold's budget
    clipped to the band. Levels are multiples of the budget, or with --of-forecast shares of
    the horizon's forecast KPI. Levels no plan satisfies are listed as infeasible; if none has a
    plan the command exits 4.

    \b
    Example:
      budget frontier scenarios/examples/pasted_curves.toml
      budget frontier scenarios/examples/quarterly.toml --from 15% --to 20% --of-forecast
      budget frontier scenarios/examples/quarterly.toml --from 0.8 --to 1.6 --steps 9 --format csv -o frontier.csv
      budget frontier scenarios/examples/pasted_curves.toml --format json --plot frontier.png
    """
    from scenarios import render
    from scenarios.frontier import budget_frontier

    levels = _levels(start, stop, steps, of_forecast)
    _check_output(output, "--output")
    _check_output(plot, "--plot", PLOT_FORMATS)
    _check_distinct(output=output, plot=plot)
    sc = _run(ctx, _load_scenario, scenario, use_cache=not no_cache)
    with ProgressBar("planning budget levels") as bar:
        data = _run(ctx, budget_frontier, sc, levels, of_forecast=of_forecast, progress=bar.update)
    feasible = [r for r in data["levels"] if r["status"] == "optimal"]
    if plot and feasible:
        from models.plot import frontier_plot

        _draw(frontier_plot, data, plot, f"{sc.name}: budget frontier")
    if fmt == "json":
        _emit(render.json_text(data), output, "frontier")
    elif fmt == "csv":
        _emit(render.frontier_csv(data), output, "frontier")
    else:
        _emit(render.frontier_table(data), output, "frontier")
    if not feasible:
        first = data["levels"][0]
        raise Failure(f"Error: no level of the frontier of {sc.name} has a plan that satisfies every constraint"
                      + (f": {first['diagnosis'][0]}" if first["diagnosis"] else ""), EXIT_INFEASIBLE)


# --------------------------------------------------------------------------------------------
# cache


@main.group()
def cache() -> None:
    """The cache of fitted models (shared by `budget fit` and scenarios with [history]).

    \b
    Example:
      budget cache info
      budget cache clear
    """


@cache.command("info")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def cache_info(fmt) -> None:
    """Where fitted models are cached ($BUDGET_CACHE_DIR), and how many.

    \b
    Example:
      budget cache info --format json
    """
    from models.cache import cache_dir
    from scenarios import render

    folder = cache_dir()
    files = sorted(folder.glob("fit-*.json")) if folder.is_dir() else []
    compiled = [f for f in (folder / "jax").rglob("*") if f.is_file()] if (folder / "jax").is_dir() else []
    info = {"path": str(folder), "fits": len(files), "bytes": sum(f.stat().st_size for f in files),
            "compiled_samplers": len(compiled), "compiled_bytes": sum(f.stat().st_size for f in compiled)}
    if fmt == "json":
        click.echo(render.json_text(info), nl=False)
    else:
        click.echo(f"{info['path']}: {info['fits']} cached fit(s), {info['bytes'] / 1e6:.1f} MB; "
                   f"compiled samplers {info['compiled_bytes'] / 1e6:.1f} MB ({info['compiled_samplers']} file(s))")


@cache.command("clear")
def cache_clear() -> None:
    """Delete every cached fit (the next plan on a history fits again) and the compiled samplers.

    \b
    Example:
      budget cache clear
    """
    from models.cache import cache_dir

    import shutil

    folder = cache_dir()
    files = sorted(folder.glob("fit-*.json")) if folder.is_dir() else []
    for f in files:
        f.unlink(missing_ok=True)
    # The Bayesian fit's compiled samplers (JAX): kept only to start the next fit sooner.
    shutil.rmtree(folder / "jax", ignore_errors=True)
    click.echo(f"removed {len(files)} cached fit(s) from {folder}")


# --------------------------------------------------------------------------------------------
# rebalance


@main.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False))
@click.option("--actuals", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Spend (and attributed return) per channel and period so far, laid out like the history.")
@click.option("--as-of", "as_of", metavar="PERIOD", help="The last closed period to use [the last in --actuals].")
@click.option("--ledger", type=click.Path(dir_okay=False), callback=_not_empty,
              help="The ledger with the plan of record [$BUDGET_LEDGER, else budget-ledger.sqlite beside SCENARIO].")
@SHEET_FORMAT
@OUTPUT
@click.option("--dry-run", is_flag=True, help="Compute and print, record nothing.")
@click.option("--force", is_flag=True, help="Accept actuals outside the plan or changing recorded periods, and record "
                                            "a new run that supersedes the recorded one (nothing is deleted).")
@click.option("--fail-on-drift", is_flag=True, help=f"Exit {EXIT_DRIFT} when drift is flagged (after recording).")
@NO_CACHE
@click.pass_context
def rebalance(ctx, scenario, actuals, as_of, ledger, fmt, output, dry_run, force, fail_on_drift, no_cache):
    """Re-plan the rest of SCENARIO's horizon from actuals; suggest transfers; flag drift.

    The periods in --actuals are fixed at their actual spend; the remaining budget (budget −
    spend to date, the reserve kept) is planned over the remaining periods from the carryover
    that spend built, within the scenario's limits and its [rebalance] change limits, and
    compared with the plan of record (budget allocate --record). Each rebalance is one
    transaction in the ledger, keyed by scenario and as-of period: running it again with the
    same actuals prints the recorded result (exit 0). Exit 5 with --fail-on-drift when drift
    is flagged.

    \b
    Example:
      budget allocate scenarios/examples/monthly.toml --record --ledger q1.sqlite
      budget rebalance scenarios/examples/monthly.toml --actuals scenarios/examples/actuals_m1_m2.csv \\
          --ledger q1.sqlite
      budget rebalance scenarios/examples/monthly.toml --actuals scenarios/examples/actuals_m1_m2.csv \\
          --ledger q1.sqlite --format xlsx -o rebalance.xlsx
    """
    from scenarios import render
    from scenarios.ledger import default_ledger_path
    from scenarios.rebalance import run_rebalance

    _check_sheet(fmt, output)
    _check_output(output, "--output")
    ledger = ledger or str(default_ledger_path(scenario))
    _check_distinct(output=output, ledger=ledger)
    sc = _run(ctx, _load_scenario, scenario, use_cache=not no_cache)
    result, run, new = _run(ctx, run_rebalance, scenario, sc, actuals, ledger, as_of=as_of, force=force,
                            dry_run=dry_run, command=" ".join(sys.argv), fail_on_drift=fail_on_drift)
    if dry_run:
        _say("dry run: nothing recorded")
    elif new:
        _say("recorded the rebalance as of %s as run %d in %s", result["as_of"], run.id, ledger)
    else:
        _say("this rebalance is already run %d in %s (recorded %s, same scenario, plan of record and actuals); "
             "printing the recorded result (--force records it again)", run.id, ledger, run.started)
    if fmt == "json":
        _emit(render.json_text(result), output, "rebalance")
    elif fmt == "xlsx":
        from scenarios.sheets import rebalance_workbook

        _emit_bytes(rebalance_workbook(result), output, "rebalance")
    elif fmt == "csv":
        _emit(render.rebalance_csv(result), output, "rebalance")
    else:
        _emit(render.rebalance_table(result), output, "rebalance")
    if result["status"] == "infeasible":
        raise Failure("Error: the remaining periods cannot be planned within the limits:\n"
                      + "\n".join(f"  - {d}" for d in result.get("diagnosis", [])), EXIT_INFEASIBLE)
    if fail_on_drift and result["drift"]:
        raise Failure(f"Error: drift flagged ({len(result['drift'])}): "
                      + "; ".join(d["text"] for d in result["drift"]), EXIT_DRIFT)


# --------------------------------------------------------------------------------------------
# runs (the ledger)


LEDGER_OPTION = click.option("--ledger", type=click.Path(dir_okay=False), callback=_not_empty,
                             help="The ledger [$BUDGET_LEDGER, else budget-ledger.sqlite here].")


def _open_ledger(ctx, path: str | None):
    from scenarios.ledger import Ledger, default_ledger_path

    return _run(ctx, Ledger, path or default_ledger_path(), create=False)


@main.group(invoke_without_command=True)
@LEDGER_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Also runs that a later run superseded.")
@click.pass_context
def runs(ctx, ledger, fmt, show_all):
    """List the runs recorded in a ledger (plans of record and rebalances).

    \b
    Example:
      budget runs --ledger q1.sqlite
      budget runs show 1 --ledger q1.sqlite --format json
      budget runs export --ledger q1.sqlite -o runs.csv
    """
    if ctx.invoked_subcommand is not None:
        return
    from scenarios import render

    with _open_ledger(ctx, ledger) as book:
        items = [r.to_dict(with_result=False) for r in _run(ctx, book.runs, current_only=not show_all,
                                                             with_result=False)]
    if fmt != "json":  # the command line is long: JSON keeps it, the table and CSV leave it out
        for r in items:
            r.pop("command", None)
    if fmt == "json":
        click.echo(render.json_text(items), nl=False)
    elif fmt == "csv":
        click.echo(render.runs_csv(items), nl=False)
    else:
        click.echo(render.runs_table(items), nl=False)


@runs.command("show")
@click.argument("run_id", type=int)
@LEDGER_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def runs_show(ctx, run_id, ledger, fmt):
    """Print one recorded run: what was run, and the plan it recorded (a rebalance: also its
    actuals, suggestions and drift flags).

    \b
    Example:
      budget runs show 1 --ledger q1.sqlite
    """
    from scenarios import render

    with _open_ledger(ctx, ledger) as book:
        run = _run(ctx, book.get, run_id)
        rows = book.plan_rows(run_id)
        extra = _run(ctx, book.rebalance_rows, run_id) if run.kind == "rebalance" else {}
    if fmt == "json":
        click.echo(render.json_text({**run.to_dict(), "plan_rows": rows, **extra}), nl=False)
    else:
        click.echo(render.run_table(run.to_dict(with_result=False), rows, extra), nl=False)


@runs.command("export")
@LEDGER_OPTION
@OUTPUT
@click.pass_context
def runs_export(ctx, ledger, output):
    """Write every recorded plan row as CSV (run, scenario, as-of, period, channel, spend, return).

    \b
    Example:
      budget runs export --ledger q1.sqlite -o runs.csv
    """
    from scenarios import render

    _check_output(output, "--output")
    _check_distinct(output=output, ledger=ledger)
    with _open_ledger(ctx, ledger) as book:
        data = [(r.to_dict(with_result=False), book.plan_rows(r.id)) for r in _run(ctx, book.runs, with_result=False)]
    _emit(render.runs_export_csv(data), output, "runs")


# --------------------------------------------------------------------------------------------
# the console script


def _guard_stdout() -> None:
    """Keep file descriptor 1 for our results only.

    Native libraries write to fd 1 behind Python's back (a solver banner, cmdstan's chatter),
    and whatever they write there corrupts the JSON or CSV a scheduler reads. So fd 1 becomes a
    copy of stderr for everyone else, and ``sys.stdout`` alone writes to the real stdout.
    """
    try:
        sys.stdout.flush()
        real = os.dup(1)
        os.dup2(2, 1)
    except (OSError, ValueError, AttributeError):
        return
    old = sys.stdout
    sys.stdout = open(real, "w", encoding=getattr(old, "encoding", None) or "utf-8",  # noqa: SIM115
                      errors=getattr(old, "errors", None) or "strict",
                      buffering=1 if os.isatty(real) else -1, closefd=True)


def _terminate(signum, frame) -> None:
    """SIGTERM unwinds like Ctrl-C, so temporary files are removed and nothing is half-written."""
    raise KeyboardInterrupt


def run() -> None:
    """The `budget` console script: :func:`main` with stdout kept clean and Unix manners.

    A reader that goes away (``budget allocate … | head -1``) ends the command quietly, as it
    does other Unix tools (SIGPIPE), instead of a BrokenPipeError traceback; SIGTERM cleans up
    like Ctrl-C ("Aborted!", exit 130).
    """
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, _terminate)
    _guard_stdout()
    try:
        main()
    except BrokenPipeError:  # platforms without SIGPIPE
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_FAILURE)


_accept_logging_options(main)

if __name__ == "__main__":  # pragma: no cover
    run()
