"""The run ledger: what was planned (and later, what happened), in one SQLite file.

Scheduled jobs re-run, get killed and run twice at once; the ledger is built for that:

* **One transaction per run.** A run's row and all its plan rows are written together or not at
  all (``BEGIN IMMEDIATE`` … ``COMMIT``); a job killed at any moment leaves the ledger as it was.
* **Idempotent.** A run is keyed by (kind, scenario name, as-of); recording the same content again
  returns the recorded run instead of adding one. ``force`` records a new run that supersedes the
  old one (the old one is kept: nothing is deleted).
* **Safe together.** A partial unique index allows one current run per key, so two jobs can
  never both record it; the second waits for the lock (``timeout``) and then finds the first's.
* **Never harmed by a mistake.** A file that is not a ledger, is corrupted, is read-only, is
  locked too long or was written by a newer version raises :class:`LedgerError` before anything
  is written.

The schema is versioned with SQLite's ``user_version`` and upgraded by :data:`MIGRATIONS`
(WAL journal, foreign keys on).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from scenarios.errors import LedgerError

__all__ = ["LEDGER_ENV", "LEDGER_NAME", "Ledger", "LedgerError", "Run", "content_hash", "default_ledger_path",
           "plan_rows", "product_version", "record_plan", "scenario_hashes"]

#: Environment variable naming the ledger file (a job's configuration).
LEDGER_ENV = "BUDGET_LEDGER"
#: The ledger's file name when neither --ledger nor $BUDGET_LEDGER says: beside the scenario.
LEDGER_NAME = "budget-ledger.sqlite"

#: Schema upgrades, in order; entry i takes user_version i to i + 1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        id            INTEGER PRIMARY KEY,
        kind          TEXT NOT NULL,              -- 'plan' (plan of record), later 'rebalance'
        command       TEXT NOT NULL,              -- the command line, for the record
        scenario_name TEXT NOT NULL,
        scenario_path TEXT,
        scenario_hash TEXT NOT NULL,              -- SHA-256 of the scenario file's bytes
        data_hash     TEXT,                       -- SHA-256 of the history/model the curves came from
        as_of         TEXT NOT NULL,              -- the period the run is for ('' for a plan of record)
        started       TEXT NOT NULL,
        finished      TEXT,
        status        TEXT NOT NULL,              -- 'ok' or 'infeasible'
        exit_code     INTEGER NOT NULL,
        version       TEXT NOT NULL,              -- product version that wrote it
        superseded_by INTEGER REFERENCES runs(id) DEFERRABLE INITIALLY DEFERRED,
        result        TEXT NOT NULL               -- the plan's JSON, as `--format json` prints it
    );
    CREATE UNIQUE INDEX runs_current ON runs(kind, scenario_name, as_of) WHERE superseded_by IS NULL;
    CREATE TABLE plan_rows (
        run_id          INTEGER NOT NULL REFERENCES runs(id),
        period          TEXT NOT NULL,            -- '' for a single-horizon plan
        channel         TEXT NOT NULL,
        spend           REAL NOT NULL,
        expected_return REAL NOT NULL,
        PRIMARY KEY (run_id, period, channel)
    );
    """,
    # 2: what a rebalance saw and said (scenarios/rebalance.py).
    """
    CREATE TABLE actuals (
        run_id            INTEGER NOT NULL REFERENCES runs(id),
        period            TEXT NOT NULL,
        channel           TEXT NOT NULL,
        spend             REAL NOT NULL,
        attributed_return REAL,                   -- NULL when the actuals did not give it
        PRIMARY KEY (run_id, period, channel)
    );
    CREATE TABLE suggestions (
        run_id        INTEGER NOT NULL REFERENCES runs(id),
        seq           INTEGER NOT NULL,
        kind          TEXT NOT NULL,              -- 'transfer', 'reserve_release' or 'reserve_draw'
        from_channel  TEXT,
        to_channel    TEXT,
        amount        REAL NOT NULL,
        expected_gain REAL,
        text          TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    CREATE TABLE drift_flags (
        run_id    INTEGER NOT NULL REFERENCES runs(id),
        seq       INTEGER NOT NULL,
        kind      TEXT NOT NULL,                  -- 'spend' or 'return'
        channel   TEXT NOT NULL,
        actual    REAL NOT NULL,
        expected  REAL NOT NULL,
        tolerance REAL NOT NULL,
        text      TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def content_hash(*parts: bytes | str) -> str:
    """SHA-256 (hex) of the given bytes/strings, in order."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
    return h.hexdigest()


def default_ledger_path(scenario_path: str | Path | None = None) -> Path:
    """``$BUDGET_LEDGER``, else :data:`LEDGER_NAME` beside the scenario (or here)."""
    if os.environ.get(LEDGER_ENV):
        return Path(os.environ[LEDGER_ENV])
    folder = Path(scenario_path).parent if scenario_path else Path.cwd()
    return folder / LEDGER_NAME


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Run:
    """One recorded run (a row of ``runs``)."""

    id: int
    kind: str
    command: str
    scenario_name: str
    scenario_path: str | None
    scenario_hash: str
    data_hash: str | None
    as_of: str
    started: str
    finished: str | None
    status: str
    exit_code: int
    version: str
    superseded_by: int | None
    result: dict

    def to_dict(self, with_result: bool = True) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "result"}
        if with_result:
            out["result"] = self.result
        return out


class Ledger:
    """A ledger file, opened for reading and recording.

    Parameters
    ----------
    path
        The SQLite file; created (with its schema) when missing and ``create`` is true.
    timeout
        Seconds to wait for another job's lock before giving up with :class:`LedgerError`.
    create
        Make the file when it does not exist (recording); listing a missing ledger is an error.

    Raises
    ------
    LedgerError
        Not a ledger, corrupted, newer schema, unreadable, or missing (``create=False``).
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0, create: bool = True):
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise LedgerError(f"{self.path}: no such ledger")
        if not self.path.parent.is_dir():
            raise LedgerError(f"{self.path}: the folder {self.path.parent} does not exist")
        try:
            self.db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA foreign_keys = ON")
            self._upgrade()
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise LedgerError(_explain(self.path, exc)) from None

    # -- schema ----------------------------------------------------------------------------

    def _upgrade(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LedgerError(f"{self.path}: written by a newer version of budget (ledger schema {version}, "
                              f"this version knows up to {SCHEMA_VERSION}); upgrade budget to use it")
        if version == 0 and self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise LedgerError(f"{self.path}: an SQLite file that is not a budget ledger; name another --ledger")
        if version == SCHEMA_VERSION:
            self.db.execute("PRAGMA integrity_check").fetchone()  # a damaged file fails here, not mid-run
            return
        with self._transaction():
            for step in MIGRATIONS[version:]:
                for statement in filter(str.strip, step.split(";")):
                    self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        with contextlib.suppress(sqlite3.DatabaseError):  # WAL needs a writable folder; plain journal otherwise
            self.db.execute("PRAGMA journal_mode = WAL")

    @contextlib.contextmanager
    def _transaction(self):
        """``BEGIN IMMEDIATE``: take the write lock first, so two jobs serialise instead of racing."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- writing ---------------------------------------------------------------------------

    def record(self, *, kind: str, command: str, scenario_name: str, scenario_path: str | None, scenario_hash: str,
               data_hash: str | None, as_of: str, status: str, exit_code: int, version: str, result: dict,
               rows: list[tuple[str, str, float, float]], force: bool = False,
               actuals: list[tuple[str, str, float, float | None]] = (), suggestions: list[dict] = (),
               drift: list[dict] = ()) -> tuple[Run, bool]:
        """Record a run and its plan rows (and a rebalance's actuals, suggestions and drift flags)
        in one transaction.

        Parameters
        ----------
        rows
            ``(period, channel, spend, expected_return)``; period ``""`` for a single horizon.
        actuals
            ``(period, channel, spend, attributed_return or None)``.
        suggestions, drift
            A rebalance's ``suggestions`` and ``drift`` entries, as its JSON has them.
        force
            Record even when a current run with this key exists; the new run supersedes it.

        Returns
        -------
        (Run, bool)
            The current run for the key, and whether this call recorded it (False: it was
            already there, with the same scenario content and data).

        Raises
        ------
        LedgerError
            A current run with this key was made from other content (and not ``force``), or the
            ledger cannot be written (read-only, locked too long, disk full).
        """
        started = _now()
        try:
            with self._transaction():
                old = self.db.execute("SELECT * FROM runs WHERE kind = ? AND scenario_name = ? AND as_of = ? "
                                      "AND superseded_by IS NULL", (kind, scenario_name, as_of)).fetchone()
                if old is not None and not force:
                    if old["scenario_hash"] == scenario_hash and old["data_hash"] == data_hash:
                        return _run(old), False
                    raise LedgerError(
                        f"{self.path}: run {old['id']} already records the {kind} of {scenario_name!r}"
                        + (f" as of {as_of}" if as_of else "")
                        + f" from other content (recorded {old['started']}); --force records this one and "
                          "supersedes it (nothing is deleted)")
                run_id = self.db.execute("SELECT coalesce(max(id), 0) + 1 FROM runs").fetchone()[0]
                if old is not None:
                    # The old run steps aside first: the unique index allows one current run per key
                    # (the reference to the new run is checked at COMMIT).
                    self.db.execute("UPDATE runs SET superseded_by = ? WHERE id = ?", (run_id, old["id"]))
                self.db.execute(
                    "INSERT INTO runs (id, kind, command, scenario_name, scenario_path, scenario_hash, data_hash, "
                    "as_of, started, finished, status, exit_code, version, result) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (run_id, kind, command, scenario_name, scenario_path, scenario_hash, data_hash, as_of, started,
                     None, status, exit_code, version, json.dumps(result, ensure_ascii=False, allow_nan=False)))
                self.db.executemany("INSERT INTO plan_rows VALUES (?,?,?,?,?)",
                                    [(run_id, p, c, float(s), float(r)) for p, c, s, r in rows])
                self.db.executemany("INSERT INTO actuals VALUES (?,?,?,?,?)",
                                    [(run_id, p, c, float(s), None if r is None else float(r))
                                     for p, c, s, r in actuals])
                self.db.executemany("INSERT INTO suggestions VALUES (?,?,?,?,?,?,?,?)",
                                    [(run_id, i, s["kind"], s.get("from"), s.get("to"), float(s["amount"]),
                                      s.get("expected_gain"), s["text"]) for i, s in enumerate(suggestions)])
                self.db.executemany("INSERT INTO drift_flags VALUES (?,?,?,?,?,?,?,?)",
                                    [(run_id, i, d["kind"], d["channel"], float(d["actual"]), float(d["expected"]),
                                      float(d["tolerance"]), d["text"]) for i, d in enumerate(drift)])
                self.db.execute("UPDATE runs SET finished = ? WHERE id = ?", (_now(), run_id))
        except sqlite3.DatabaseError as exc:
            raise LedgerError(_explain(self.path, exc)) from None
        return self.get(run_id), True

    # -- reading ---------------------------------------------------------------------------

    def get(self, run_id: int) -> Run:
        """One run; :class:`LedgerError` when there is none with that id."""
        row = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not row:
            raise LedgerError(f"{self.path}: no run {run_id}")
        return _run(row[0])

    def runs(self, *, scenario_name: str | None = None, current_only: bool = False,
             with_result: bool = True) -> list[Run]:
        """Every run (oldest first), optionally of one scenario and only the current ones.

        ``with_result=False`` leaves each run's stored JSON unread (``result`` is ``{}``): a
        listing of thousands of runs need not parse thousands of plans.
        """
        columns = "*" if with_result else ", ".join(
            [f for f in Run.__dataclass_fields__ if f != "result"] + ["'{}' AS result"])
        sql, args = f"SELECT {columns} FROM runs", []
        where = []
        if scenario_name is not None:
            where.append("scenario_name = ?")
            args.append(scenario_name)
        if current_only:
            where.append("superseded_by IS NULL")
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._query(sql + " ORDER BY id", tuple(args))
        return [_run(r, with_result) for r in rows]

    def plan_rows(self, run_id: int) -> list[dict]:
        """The plan rows of a run: ``{"period", "channel", "spend", "expected_return"}``."""
        rows = self._query("SELECT period, channel, spend, expected_return FROM plan_rows WHERE run_id = ? "
                           "ORDER BY rowid", (run_id,))
        return [dict(r) for r in rows]

    def current(self, kind: str, scenario_name: str, as_of: str = "") -> Run | None:
        """The current (not superseded) run with this key, or None."""
        row = self._query("SELECT * FROM runs WHERE kind = ? AND scenario_name = ? AND as_of = ? "
                          "AND superseded_by IS NULL", (kind, scenario_name, as_of))
        return _run(row[0]) if row else None

    def recorded_actuals(self, scenario_name: str) -> dict[tuple[str, str], tuple[float, float | None, int]]:
        """``(period, channel) → (spend, attributed_return, run_id)`` as the current rebalances of
        the scenario recorded them (the latest run wins)."""
        rows = self._query("SELECT a.period, a.channel, a.spend, a.attributed_return, a.run_id FROM actuals a "
                           "JOIN runs r ON r.id = a.run_id WHERE r.kind = 'rebalance' AND r.scenario_name = ? "
                           "AND r.superseded_by IS NULL ORDER BY a.run_id", (scenario_name,))
        return {(r["period"], r["channel"]): (r["spend"], r["attributed_return"], r["run_id"]) for r in rows}

    def rebalance_rows(self, run_id: int) -> dict:
        """What a rebalance run recorded besides its plan: ``actuals``, ``suggestions``, ``drift``."""
        q = {"actuals": "SELECT period, channel, spend, attributed_return FROM actuals WHERE run_id = ? ORDER BY rowid",
             "suggestions": "SELECT kind, from_channel, to_channel, amount, expected_gain, text FROM suggestions "
                            "WHERE run_id = ? ORDER BY seq",
             "drift": "SELECT kind, channel, actual, expected, tolerance, text FROM drift_flags WHERE run_id = ? "
                      "ORDER BY seq"}
        return {k: [dict(r) for r in self._query(sql, (run_id,))] for k, sql in q.items()}

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(_explain(self.path, exc)) from None

    def close(self) -> None:
        self.db.close()

    def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _run(row: sqlite3.Row, with_result: bool = True) -> Run:
    data = dict(row)
    data["result"] = json.loads(data["result"]) if with_result else {}
    return Run(**data)


def _explain(path: Path, exc: sqlite3.DatabaseError) -> str:
    """A ledger problem in words, with what to do about it."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"{path}: the ledger is locked by another job (waited for it); try again when that job ends"
    if "readonly" in text or "read-only" in text:
        return f"{path}: the ledger is read-only here; nothing was recorded"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return f"{path}: not a readable ledger ({text}); it was left untouched: restore it from a backup or name another --ledger"
    if "unable to open" in text:
        return f"{path}: cannot open the ledger ({text})"
    return f"{path}: ledger error: {text}"


def scenario_hashes(path: str | Path, overrides: dict | None = None) -> tuple[str, str | None]:
    """(scenario hash, data hash): SHA-256 of the scenario file's bytes with the command line's
    overrides (``--budget``), and of the history or model file its curves come from (None for
    written curves)."""
    import tomllib

    path = Path(path)
    raw = path.read_bytes()
    data_hash = None
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        data = {}
    for kind in ("history", "model"):
        source = data.get(kind)
        if isinstance(source, dict) and isinstance(source.get("path"), str):
            data_file = path.parent / source["path"]
            if data_file.is_file():
                data_hash = content_hash(kind, data_file.read_bytes())
    extra = json.dumps({k: v for k, v in (overrides or {}).items() if v is not None}, sort_keys=True)
    return content_hash(raw, extra if extra != "{}" else b""), data_hash


def plan_rows(plan: dict) -> list[tuple[str, str, float, float]]:
    """``(period, channel, spend, expected_return)`` rows of a plan's JSON (period "" when the
    plan has no periods)."""
    if plan.get("periods"):
        return [(p["period"], c["channel"], c["spend"], c["expected_return"])
                for p in plan["periods"] for c in p["channels"]]
    return [("", c["channel"], c["spend"], c["expected_return"]) for c in plan["channels"]]


def product_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("budget-engine")
    except PackageNotFoundError:  # a source checkout that is not installed
        return "unknown"


def record_plan(ledger_path: str | Path, scenario_path: str | Path, plan: dict, *, command: str,
                overrides: dict | None = None, force: bool = False) -> tuple[Run, bool]:
    """Record ``plan`` (the plan's JSON, as ``budget allocate --format json`` prints it) as the
    plan of record of its scenario, which later rebalances compare against. ``overrides`` (e.g.
    ``{"budget": 12e6}``) are part of what was planned, so they are part of its content hash.

    Returns
    -------
    (Run, bool)
        The plan of record and whether this call recorded it (False: the same scenario content
        and data were recorded before, and that run stands).
    """
    product = product_version()
    scenario_hash, data_hash = scenario_hashes(scenario_path, overrides)
    with Ledger(ledger_path) as ledger:
        return ledger.record(kind="plan", command=command, scenario_name=plan["scenario"],
                             scenario_path=str(Path(scenario_path).resolve()), scenario_hash=scenario_hash,
                             data_hash=data_hash, as_of="", status=plan["status"], exit_code=0, version=product,
                             result=plan, rows=plan_rows(plan), force=force)
