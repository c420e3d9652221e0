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
import signal
import sys
import unicodedata
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


class BudgetGroup(click.Group):
    """Turns :class:`Failure` into ``Error: …`` on stderr and its exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Failure as exc:
            click.echo(str(exc), err=True)
            ctx.exit(exc.code)
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


def _emit(text: str, output: str | None) -> None:
    if output:
        from models.serialize import write_text_atomic

        try:
            write_text_atomic(output, text)
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


#: Binding constraints listed in the table (a weekly plan can have hundreds; JSON has them all).
BINDING_SHOWN = 12


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
        shown = d["binding_constraints"][:BINDING_SHOWN]
        for bd in shown:
            price = bd["shadow_price"]
            extra = f"  [shadow price {price:.3f}]" if price else ""
            lines.append(f"  {bd['name']}: {bd['detail']}{extra}")
        if len(d["binding_constraints"]) > len(shown):
            lines.append(f"  … and {len(d['binding_constraints']) - len(shown)} more (all of them in --format json)")
    if d["warnings"]:
        lines.append("")
        lines.append("Warnings:")
        lines += [f"  - {w}" for w in d["warnings"]]
    if d.get("notes"):
        lines.append("")
        lines.append("Notes:")
        lines += [f"  - {n}" for n in d["notes"]]
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


def allocation_json(alloc, scenario=None, extra: dict | None = None) -> str:
    d = alloc.to_dict()
    if scenario is not None:
        d["horizon"] = scenario.horizon
    d.update(extra or {})
    return json.dumps(_json_safe(d), ensure_ascii=False, indent=2) + "\n"


def risk_table(extra: dict) -> str:
    """The spread of the plan's return over curve samples (and the risk trade-off with --risk)."""
    lines = []
    if "return_interval" in extra:
        r = extra["return_interval"]
        lines += ["", f"expected return over {r['samples']} bootstrap curve samples: P10 {_num(r['p10'])}, "
                      f"P50 {_num(r['p50'])}, P90 {_num(r['p90'])} (mean {_num(r['mean'])})"]
    if "risk" in extra:
        rk = extra["risk"]
        rows = [[name, _num(st["mean"]), _num(st["p10"]), _num(st["p50"]), _num(st["p90"]), _num(st["cvar"])]
                for name, st in (("risk-neutral (best mean)", rk["neutral"]), (f"risk-averse (best CVaR {rk['alpha']:g})", rk["averse"]))]
        lines += ["", f"Return over {rk['samples']} bootstrap curve samples (the plan above is the risk-averse one):",
                  render_table(["plan", "mean", "P10", "P50", "P90", f"CVaR {rk['alpha']:g}"], rows, right={1, 2, 3, 4, 5})]
        neutral = extra["risk_neutral"]["channels"]
        lines += ["", "risk-neutral spends: " + ", ".join(f"{c['channel']} {_num(c['spend'])}" for c in neutral)]
    return "\n".join(lines) + ("\n" if lines else "")


def period_table(alloc) -> str:
    """Spend per channel (rows) per period (columns), in thousands, with period totals."""
    d = alloc.to_dict()
    periods = d["periods"]
    if not periods:
        return ""
    names = [c["channel"] for c in d["channels"]]
    rows = []
    for i, name in enumerate(names):
        rows.append([name] + [_num(p["channels"][i]["spend"] / 1000) for p in periods])
    rows.append(["total"] + [_num(p["spend"] / 1000) for p in periods])
    rows.append(["return"] + [_num(p["expected_return"] / 1000) for p in periods])
    head = ["spend (¥k)"] + [p["period"] for p in periods]
    lines = ["", "Spend per period (¥ thousands):", render_table(head, rows, right=set(range(1, len(head))))]
    after = d.get("after_horizon_return") or 0.0
    lines.append(
        f"return earned after the horizon through carryover: {_num(after)} "
        + ("(counted in the expected return)" if d.get("count_after_horizon") else "(not counted)")
    )
    return "\n".join(lines) + "\n"


PERIOD_CSV_FIELDS = ["period", "channel", "spend", "effective_spend", "expected_return"]


def period_csv(alloc) -> str:
    """Long format: one row per period and channel."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=PERIOD_CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for p in alloc.to_dict()["periods"]:
        for c in p["channels"]:
            w.writerow({"period": p["period"], **{k: c[k] for k in PERIOD_CSV_FIELDS[1:]}})
    return buf.getvalue()


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
@click.option("--risk", "risk", metavar="cvar:ALPHA",
              help="Plan for the bad case: maximise the mean of the worst ALPHA share of outcomes over the "
                   "bootstrap curve samples (e.g. cvar:0.1), and compare with the risk-neutral plan.")
@click.option("--plot", "plot", type=click.Path(dir_okay=False),
              help="Also draw the plan against the current one to FILE (PNG, SVG, PDF; per period too).")
@click.pass_context
def allocate(ctx, scenario, budget, fmt, output, exact, lp_file, risk, plot):
    """Recommend how to split the budget of SCENARIO across its channels (and periods).

    Finds the global optimum of the scenario's objective under every constraint it states
    (budget, reserve, channel and group bounds, change limits, ROI and marginal-ROI floors),
    and compares it with the current plan. A scenario with a [horizon] table is planned
    period by period (carryover, seasonal efficiency, pacing); CSV is then one row per period
    and channel.

    \b
    Example:
      budget allocate scenarios/examples/quarterly.toml
      budget allocate plan.toml --budget 12000000 --format json -o plan.json
      budget allocate plan.toml --format csv > plan.csv
      budget allocate scenarios/examples/weekly.toml
      budget allocate scenarios/examples/quarterly.toml --risk cvar:0.1
      budget allocate scenarios/examples/weekly.toml --risk cvar:0.1
      budget allocate scenarios/examples/weekly.toml --plot plan.png
    """
    from scenarios.plan import plan_scenario

    if budget is not None and (not math.isfinite(budget) or budget <= 0):
        raise click.BadParameter(f"must be a positive number, got {budget:g}", param_hint="--budget")
    risk_alpha = None
    if risk:
        from scenarios.horizon import parse_risk

        try:
            risk_alpha = parse_risk(risk).alpha
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--risk") from None
    sc = _run(ctx, _load_scenario, scenario, budget=budget)
    plan = _run(ctx, plan_scenario, sc, exact=exact, lp_path=lp_file, risk_alpha=risk_alpha)
    alloc, extra = plan.allocation, plan.extra
    if fmt == "json":
        _emit(allocation_json(alloc, sc, extra), output)
    elif not alloc.feasible:
        pass
    elif fmt == "csv":
        _emit(period_csv(alloc) if plan.periodic else allocation_csv(alloc), output)
    else:
        text = allocation_table(alloc, sc.horizon) + (period_table(alloc) if plan.periodic else "")
        _emit(text + risk_table(extra), output)
    if not alloc.feasible:
        raise Failure(_infeasible_message(alloc), EXIT_INFEASIBLE)
    if plot:
        from models.plot import allocation_plot

        _draw(allocation_plot, alloc.to_dict(), plot, f"{sc.name}: recommended plan")


def _load_scenario(path, **kwargs):
    """Load a scenario; say so on a terminal when curves are about to be fitted (it takes a while)."""
    from scenarios import load_scenario

    with ProgressBar("fitting curves from history (bootstrap)") as bar:
        return load_scenario(path, progress=bar.update, **kwargs)


# --------------------------------------------------------------------------------------------
# fit


def fit_table(report: dict, source: str) -> str:
    """The human report of a fitted model."""
    fitq = report["fit"]
    hold = fitq.get("holdout") or {}
    lines = [
        f"{source}: {report['periods']} {report['frequency']} periods, {report['start']} to {report['end']} "
        f"({report['layout']} layout)",
        "",
    ]
    rows = []
    for c in report["channels"]:
        interval = "-"
        if c.get("roi_p10") is not None:
            interval = f"{c['roi_p10']:.2f}–{c['roi_p90']:.2f}"
        rows.append([
            c["channel"], c.get("group") or "", _num(c["spend"]), _num(c["contribution"]), _num(c["roi"], 2), interval,
            _num(c["marginal_roi"], 2), f"{c['alpha']:.2f}", _num(c["k"]), f"{c['s']:.2f}",
            _pct(c["spend_share"]), _pct(c["effect_share"]),
        ])
    lines.append(render_table(
        ["channel", "group", "spend", "contribution", "ROI", "ROI P10–P90", "mROI", "α", "k", "s", "spend %", "effect %"],
        rows, right={2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
    ))
    lines.append("")
    lines.append(f"fit in sample: R² {fitq['r2']:.3f}, MAPE {fitq['mape'] * 100:.1f}%, NRMSE {fitq['nrmse']:.3f}")
    if hold.get("r2") is not None:
        lines.append(
            f"fit on the last {hold.get('periods')} periods held out: R² {hold['r2']:.3f}, "
            f"MAPE {hold['mape'] * 100:.1f}%, NRMSE {hold['nrmse']:.3f}"
        )
    lines.append(f"ROI intervals from {report['bootstrap_samples']} block-bootstrap resamples; "
                 "mROI at the mean spend per period; α carryover, k half-saturation spend, s shape.")
    if report["warnings"]:
        lines.append("")
        lines.append("Warnings:")
        lines += [f"  - {w}" for w in report["warnings"]]
    return "\n".join(lines) + "\n"


class ProgressBar:
    """A progress bar on stderr, drawn only when stderr is a terminal; ``update(done, total)``."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None
        self.done = 0

    def __enter__(self):
        return self

    def update(self, done: int, total: int) -> None:
        if not sys.stderr.isatty():
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


def _fit_source(path: str, date, kpi, channels, layout, ignore, controls, holdout, bootstrap, seed, s_shaped):
    """What to fit: a scenario's [history] table, or a CSV read with the flags."""
    from models.history import HistorySpec
    from scenarios.schema import FIT_KEYS

    settings = {}
    if path.endswith(".toml"):
        import tomllib

        try:
            table = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("history")
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise Failure(f"Error: cannot read {path}: {exc}", EXIT_INPUT) from exc
        if not isinstance(table, dict) or "path" not in table:
            raise Failure(f"Error: {path} has no [history] table with a `path`", EXIT_INPUT)
        spec_keys = set(HistorySpec.__dataclass_fields__)
        try:
            spec = HistorySpec.from_dict({k: v for k, v in table.items() if k in spec_keys})
        except (TypeError, ValueError) as exc:
            raise Failure(f"Error: {path}: {exc}", EXIT_INPUT) from exc
        settings = {FIT_KEYS[k]: v for k, v in table.items() if k in FIT_KEYS}
        csv_path = Path(path).parent / table["path"]
    else:
        chans = None
        if channels:
            chans = channels if "*" in channels else {c.strip(): c.strip() for c in channels.split(",") if c.strip()}
        spec = HistorySpec(layout=layout, date=date, kpi=kpi, channels=chans, ignore=tuple(ignore), controls=tuple(controls))
        csv_path = Path(path)
    for key, value in (("holdout", holdout), ("n_bootstrap", bootstrap), ("random_state", seed)):
        if value is not None:
            settings[key] = value
    if s_shaped:
        settings["s_shaped"] = True
    return csv_path, spec, settings


@main.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Save the fitted model as JSON (atomically).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--holdout", type=click.IntRange(min=0), help="Last periods held out to score the fit [13].")
@click.option("--bootstrap", type=click.IntRange(min=0), help="Bootstrap resamples for ROI intervals [100].")
@click.option("--seed", type=int, help="Random seed (the same seed gives the same fit) [0].")
@click.option("--s-shaped", is_flag=True, help="Allow S-shaped curves (Hill shape up to 3).")
@click.option("--date", default="date", show_default=True, help="CSV: the date column.")
@click.option("--kpi", default="revenue", show_default=True, help="CSV: the KPI column (long layout: per-channel return).")
@click.option("--channels", help="CSV: spend columns, comma-separated, or a glob such as '*_S' (default: every other column).")
@click.option("--layout", type=click.Choice(["wide", "long"]), default="wide", show_default=True, help="CSV layout.")
@click.option("--ignore", multiple=True, help="CSV: a column (or glob) to skip; repeatable.")
@click.option("--control", "controls", multiple=True, help="CSV: a control column; repeatable.")
@click.pass_context
def fit(ctx, source, out, fmt, holdout, bootstrap, seed, s_shaped, date, kpi, channels, layout, ignore, controls):
    """Fit each channel's response curve from a history (CSV, or a scenario's [history] table).

    Carryover (adstock) and saturation (Hill) per channel, a Prophet baseline with trend,
    yearly seasonality, China's holidays and campaign days (618, Double 11, the member day),
    bootstrap intervals for ROI, and fit quality in sample and on a held-out tail.

    \b
    Example:
      budget fit scenarios/examples/history_weekly.csv --out model.json
      budget fit scenarios/examples/quarterly.toml --format json
      budget fit robyn.csv --date DATE --channels '*_S' --ignore '*_I' --control newsletter
    """
    from models.fit import MediaMixModel
    from models.history import load_history
    from models.serialize import save_model

    csv_path, spec, settings = _fit_source(source, date, kpi, channels, layout, ignore, controls,
                                           holdout, bootstrap, seed, s_shaped)
    history = _run(ctx, load_history, csv_path, spec)
    if sys.stderr.isatty():
        click.echo(f"fitting {len(history.channels)} channels on {history.periods} {history.frequency} periods …", err=True)
    with warnings.catch_warnings(), ProgressBar("bootstrap resamples") as bar:
        from models.errors import ConvergenceWarning

        # Implausible fits are listed in the report's warnings; no need to repeat them as Python warnings.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = _run(ctx, MediaMixModel(**settings).fit, history, progress=bar.update)
    report = model.report()
    if out:
        try:
            save_model(model, out)
        except OSError as exc:
            raise Failure(f"Error: cannot write {out}: {exc}", EXIT_FAILURE) from exc
        logger.info("saved the model to %s", out)
    if fmt == "json":
        click.echo(json.dumps(_json_safe(report), ensure_ascii=False, indent=2))
    else:
        click.echo(fit_table(report, str(csv_path)), nl=False)


# --------------------------------------------------------------------------------------------
# forecast


def _band_text(block: dict, i: int | None = None) -> str:
    if i is None:
        b = block["horizon"]
        return f"{_num(b['p50'])} [{_num(b['p10'])}–{_num(b['p90'])}]"
    return f"{_num(block['p50'][i])} [{_num(block['p10'][i])}–{_num(block['p90'][i])}]"


def forecast_table(fc: dict, scenario_name: str) -> str:
    plans = fc["plans"]
    lines = [f"{scenario_name}: forecast of {len(fc['periods'])} {fc['frequency']} periods "
             f"from {fc['periods'][0]} (P50 [P10–P90])", ""]
    rows = []
    for i, period in enumerate(fc["periods"]):
        rows.append([period, _band_text(fc["baseline"], i)] + [_band_text(p["total"], i) for p in plans.values()])
    rows.append(["horizon", _band_text(fc["baseline"])] + [_band_text(p["total"]) for p in plans.values()])
    lines.append(render_table(["period", "baseline"] + [f"total, {n} plan" for n in plans], rows,
                              right=set(range(1, 2 + len(plans)))))
    lines.append("")
    for name, p in plans.items():
        lines.append(f"media return, {name} plan (spend {_num(p['spend'])}): {_band_text(p['media'])}")
    lines.append("")
    lines.append("Baseline: Prophet (trend, yearly seasonality, China's holidays, 618, Double 11, member day); "
                 "its interval from the model's out-of-sample error. Media: curves with carryover from "
                 "history; interval from the bootstrap curve samples. The current plan is spread evenly over the "
                 "periods; the recommended one is the period plan when the scenario has a [horizon], else even.")
    return "\n".join(lines) + "\n"


def forecast_csv(fc: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["period", "series", "p10", "p50", "p90", "point"])
    series = [("baseline", fc["baseline"])]
    for name, p in fc["plans"].items():
        series += [(f"{name}_media", p["media"]), (f"{name}_total", p["total"])]
    for i, period in enumerate(fc["periods"]):
        for name, b in series:
            w.writerow([period, name, b["p10"][i], b["p50"][i], b["p90"][i], b["point"][i]])
    return buf.getvalue()


def _draw(draw, data: dict, path: str, title: str) -> None:
    """Draw a chart with ``models.plot``; a file that cannot be written is a clean error."""
    try:
        draw(data, path, title)
    except (OSError, ValueError) as exc:
        raise Failure(f"Error: cannot draw {path}: {exc}", EXIT_FAILURE) from exc


@main.command()
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False))
@click.option("--horizon", help="Horizon: 13w, 3m, 91d or a number of data periods [the scenario's periods].")
@FORMAT
@OUTPUT
@click.option("--plot", "plot", type=click.Path(dir_okay=False), help="Also draw the forecast to FILE (PNG, SVG, PDF).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the interval simulation.")
@click.pass_context
def forecast(ctx, scenario, horizon, fmt, output, plot, seed):
    """Forecast the horizon: baseline KPI, plus media return under the current and recommended plans.

    Needs a scenario whose curves come from history ([history] or [model]). Each series has
    P10/P50/P90, per period and over the horizon: Prophet's baseline (with the model's
    out-of-sample error) combined with the bootstrap samples of the response curves.

    \b
    Example:
      budget forecast scenarios/examples/quarterly.toml
      budget forecast scenarios/examples/quarterly.toml --horizon 3m --format csv
      budget forecast plan.toml --plot forecast.png --format json -o forecast.json
    """
    from models.forecast import parse_horizon
    from scenarios.plan import forecast_scenario

    sc = _run(ctx, _load_scenario, scenario)
    if horizon and sc.model is not None:
        try:
            periods = parse_horizon(horizon, sc.model.frequency_)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--horizon") from None
        if periods != sc.periods:
            sc = _run(ctx, _load_scenario, scenario, periods=periods)
    fc, plan = _run(ctx, forecast_scenario, sc, seed=seed)
    if not plan.allocation.feasible:
        raise Failure(_infeasible_message(plan.allocation), EXIT_INFEASIBLE)
    if fmt == "json":
        _emit(json.dumps(_json_safe(fc), ensure_ascii=False, indent=2) + "\n", output)
    elif fmt == "csv":
        _emit(forecast_csv(fc), output)
    else:
        _emit(forecast_table(fc, sc.name) + "".join(f"note: {n}\n" for n in fc["notes"]), output)
    if plot:
        from models.plot import forecast_plot

        _draw(forecast_plot, fc, plot, f"{sc.name}: forecast")


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


def run() -> None:
    """The `budget` console script: :func:`main` with stdout kept clean and Unix pipe manners.

    A reader that goes away (``budget allocate … | head -1``) ends the command quietly, as it
    does other Unix tools (SIGPIPE), instead of a BrokenPipeError traceback.
    """
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    _guard_stdout()
    try:
        main()
    except BrokenPipeError:  # platforms without SIGPIPE
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_FAILURE)


if __name__ == "__main__":  # pragma: no cover
    run()
