"""Where the LP reaches HiGHS: solver choice, options, bulk rows, segment substitution, output silenced.

Everything the planners hand a solver goes through here. The LP model
(:mod:`optimizer.period_model`) is a PuLP model with named constraints plus *array rows*
(:class:`optimizer.build.SparseRows`); this module passes them to HiGHS in bulk
(:class:`BulkHiGHS`) or with the curves rewritten as segment lengths (:class:`Substitution`,
:class:`SegmentHiGHS`), picks HiGHS's method by the LP's size (:func:`segment_solver`), keeps
its banner off stdout (:func:`silence_highs_banner`), falls back to CBC when highspy is
missing (:func:`bulk_solver`) and turns a solve into a status (:func:`run_lp`). It never knows
what a channel is: only columns, rows, breakpoints and slopes.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulp

from optimizer.errors import SolverError

logger = logging.getLogger(__name__)

_banner_silenced = False

#: Relative gap at which HiGHS stops exact mode's MILP (within the single-horizon LP's 5e-6).
MIP_REL_GAP = 1e-6


def silence_highs_banner() -> None:
    """highspy writes a banner to file descriptor 1 (stdout) when the first Highs object of a
    process is made (1.16: "Running HiGHS 1.16.0 …", two lines), before any option can be set
    on it; stdout carries our JSON and CSV, so make that first object with fds 1 and 2 pointed
    at /dev/null. Every solver of this module calls this before it makes a Highs object."""
    global _banner_silenced
    if _banner_silenced:
        return
    _banner_silenced = True
    try:
        import highspy
    except ImportError:
        return
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except (AttributeError, ValueError):
            pass
    saved = {}
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            try:
                saved[fd] = os.dup(fd)
                os.dup2(devnull, fd)
            except OSError:
                pass
        highspy.Highs()
    finally:
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


class BulkHiGHS(pulp.HiGHS):
    """PuLP's HiGHS interface, with the columns and the model's array rows passed in bulk.

    PuLP hands HiGHS one column and one row at a time; for the thousands of hypograph rows
    (and the tens of thousands of columns of a multi-period plan) that is most of the run
    time. Here the columns go in one ``addCols`` call, PuLP's own (named) constraints row by
    row as PuLP does, and the array rows (:class:`optimizer.build.SparseRows`) in one
    ``addRows`` call. After the solve ``rows.duals`` holds the array rows' duals and
    ``rows.col_values`` the values of its columns.
    """

    def __init__(self, rows, **kwargs):
        super().__init__(**kwargs)
        self.rows = rows
        self._first_row = 0

    def createAndConfigureSolver(self, lp):
        silence_highs_banner()  # every Highs object of ours is made here (or in bulk_solver)
        super().createAndConfigureSolver(lp)
        # msg=False sets output_flag; log_to_console too, for versions that log before reading it.
        lp.solverModel.setOptionValue("log_to_console", False)

    def buildSolverModel(self, lp):
        import highspy

        h = lp.solverModel
        inf = highspy.kHighsInf
        obj_mult = -1.0 if lp.sense == pulp.LpMaximize else 1.0
        variables = lp.variables()
        n = len(variables)
        objective = lp.objective or {}
        cost = np.fromiter((objective.get(v, 0.0) for v in variables), float, n) * obj_mult
        lower = np.fromiter((-inf if v.lowBound is None else v.lowBound for v in variables), float, n)
        upper = np.fromiter((inf if v.upBound is None else v.upBound for v in variables), float, n)
        h.addCols(n, cost, lower, upper, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
        for i, var in enumerate(variables):
            var.index = i
            if var.cat == pulp.LpInteger and self.mip:
                h.changeColIntegrality(i, highspy.HighsVarType.kInteger)
        for i, constraint in enumerate(lp._constraints.values()):
            items = [(var.index, a) for var, a in constraint.items() if a != 0]
            indices, coefficients = zip(*items) if items else ((), ())
            constraint.index = i
            lb, ub = constraint.getLb(), constraint.getUb()
            h.addRow(-inf if lb is None else lb, inf if ub is None else ub, len(indices), indices, coefficients)
        self._first_row = h.getNumRow()
        if len(self.rows):
            lower, upper, starts, idx, val = self.rows.highs_arrays()
            clip = lambda a: np.nan_to_num(np.asarray(a, float), posinf=inf, neginf=-inf)  # noqa: E731
            h.addRows(upper.size, clip(lower), clip(upper), idx.size, starts, idx, val)

    def findSolutionValues(self, lp):
        status = super().findSolutionValues(lp)
        sol = lp.solverModel.getSolution()
        if len(self.rows):
            duals = np.asarray(sol.row_dual, dtype=float)
            if duals.size >= self._first_row + len(self.rows):
                self.rows.duals = duals[self._first_row : self._first_row + len(self.rows)]
        cols = getattr(self.rows, "cols", None)
        if cols is not None:
            values = np.asarray(sol.col_value, dtype=float)
            if values.size:
                self.rows.col_values = values[np.fromiter((v.index for v in cols), np.int64, len(cols))]
        return status


@dataclass
class Substitution:
    """Columns of a PuLP model written as ``offset + M·δ`` in new columns ``0 ≤ δ ≤ width``.

    The period and CVaR planners' curves are piecewise linear in segments: a pair's effective
    spend is its first breakpoint plus the lengths of the segments it fills, and its return
    the first value plus slope × length. Handing HiGHS those segment lengths instead of the
    model's spend, effective-spend and return columns (and their hypograph rows) leaves an LP
    whose rows are only the coupling limits: a fraction of the size, with the same optimum.

    ``cols`` are the model's variables the rows of ``M`` refer to; ``replaced`` marks the
    columns that are substituted; ``bound_rows`` those whose own bounds must become rows
    (because the segments do not imply them). After a solve ``reduced`` holds the segments'
    reduced costs (HiGHS's minimising convention).
    """

    cols: list
    M: "object"  # scipy.sparse.csr_matrix, len(cols) × len(width)
    offset: np.ndarray
    replaced: np.ndarray
    bound_rows: np.ndarray
    width: np.ndarray
    owner: np.ndarray | None = None  # pair of each segment, and its slope (for segment_prices)
    slope: np.ndarray | None = None
    reduced: np.ndarray | None = None


def _retry_unknown(h) -> None:
    """When HiGHS ends with an unknown status (numerical trouble in simplex: seen on sample LPs
    whose CVaR row couples hundreds of samples), solve again with presolve, then with the
    interior-point method and crossover; a MILP or a clear verdict is left as it is."""
    import highspy

    for option, value in (("presolve", "on"), ("solver", "ipm")):
        if h.getModelStatus() != highspy.HighsModelStatus.kUnknown:
            return
        logger.debug("HiGHS status unknown; solving again with %s=%s", option, value)
        h.setOptionValue(option, value)
        h.run()


class SegmentHiGHS(BulkHiGHS):
    """HiGHS with a :class:`Substitution` applied: the model's rows are rewritten in the
    segment columns before the solve, and every variable, constraint dual and array-row dual
    is mapped back afterwards, so callers read the PuLP model as usual."""

    def __init__(self, rows, substitution: Substitution, **kwargs):
        super().__init__(rows, **kwargs)
        self.sub = substitution

    def buildSolverModel(self, lp):
        import highspy
        from scipy import sparse

        h = lp.solverModel
        inf = highspy.kHighsInf
        sub = self.sub
        variables = self._variables = lp.variables()
        n = len(variables)
        for i, var in enumerate(variables):
            var.index = i
        objective = lp.objective or {}
        obj_mult = -1.0 if lp.sense == pulp.LpMaximize else 1.0
        cost = np.fromiter((objective.get(v, 0.0) for v in variables), float, n) * obj_mult
        lower = np.fromiter((-np.inf if v.lowBound is None else v.lowBound for v in variables), float, n)
        upper = np.fromiter((np.inf if v.upBound is None else v.upBound for v in variables), float, n)
        # Every row over the model's columns: PuLP's named constraints, then the array rows.
        r_idx, c_idx, vals, row_lo, row_hi = [], [], [], [], []
        constraints = list(lp._constraints.values())
        for r, con in enumerate(constraints):
            for var, a in con.items():
                r_idx.append(r)
                c_idx.append(var.index)
                vals.append(a)
            lb, ub = con.getLb(), con.getUb()
            row_lo.append(-np.inf if lb is None else lb)
            row_hi.append(np.inf if ub is None else ub)
        A = sparse.csr_matrix((vals, (r_idx, c_idx)), shape=(len(constraints), n))
        lo_rows, hi_rows = np.array(row_lo, float), np.array(row_hi, float)
        self._first_row = len(constraints)
        if len(self.rows):
            a_lo, a_hi, starts, idx, val = self.rows.highs_arrays()
            B = sparse.csr_matrix((val, idx, np.append(starts, idx.size)), shape=(a_lo.size, n))
            A = sparse.vstack([A, B], format="csr")
            lo_rows, hi_rows = np.concatenate([lo_rows, a_lo]), np.concatenate([hi_rows, a_hi])
        # Column map G (model columns → kept columns, then segments) and offset g.
        pos = np.fromiter((v.index for v in sub.cols), np.int64, len(sub.cols))
        replaced = pos[sub.replaced]
        kept = np.setdiff1d(np.arange(n), replaced)
        m = sub.width.size
        Msub = sub.M[np.nonzero(sub.replaced)[0]].tocoo()
        G = sparse.csr_matrix(
            (np.concatenate([np.ones(kept.size), Msub.data]),
             (np.concatenate([kept, replaced[Msub.row]]), np.concatenate([np.arange(kept.size), kept.size + Msub.col]))),
            shape=(n, kept.size + m))
        g = np.zeros(n)
        g[replaced] = sub.offset[sub.replaced]
        A2 = (A @ G).tocsr()
        A2.eliminate_zeros()
        shift = A @ g
        lo2, hi2 = lo_rows - shift, hi_rows - shift
        # Rows that vanish (the recursion e = x + α e_prev once both sides are segments).
        nnz = np.diff(A2.indptr)
        scale = 1e-7 * (1.0 + np.abs(shift))
        gone = (nnz == 0) & (lo2 <= scale) & (hi2 >= -scale)
        keep_rows = np.nonzero(~gone)[0]
        self._row_map = np.full(A.shape[0], -1, np.int64)
        self._row_map[keep_rows] = np.arange(keep_rows.size)
        A2 = A2[keep_rows]
        lo2, hi2 = lo2[keep_rows], hi2[keep_rows]
        # Bounds of substituted columns that the segments do not imply become rows, added
        # only when a solution breaks them (see callSolver): few of them ever bind.
        bound_pos = pos[sub.bound_rows]
        self._bounds = (G[bound_pos].tocsr(), lower[bound_pos] - g[bound_pos], upper[bound_pos] - g[bound_pos])
        self._G, self._g, self._kept, self._A = G, g, kept, A
        c2 = G.T @ cost
        col_lo = np.concatenate([lower[kept], np.zeros(m)])
        col_hi = np.concatenate([upper[kept], sub.width])
        clip = lambda a: np.nan_to_num(np.asarray(a, float), posinf=inf, neginf=-inf)  # noqa: E731
        h.addCols(c2.size, c2, clip(col_lo), clip(col_hi), 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
        h.addRows(lo2.size, clip(lo2), clip(hi2), A2.nnz, A2.indptr[:-1].astype(np.int32),
                  A2.indices.astype(np.int32), A2.data)
        # Exact mode's binaries (S-curves' convex parts) make it a MILP: HiGHS's own choices then.
        self._integer = [j for j, i in enumerate(kept.tolist()) if variables[i].cat == pulp.LpInteger]
        for j in self._integer:
            h.changeColIntegrality(j, highspy.HighsVarType.kInteger)
        if self._integer:
            # HiGHS's default MIP gap (1e-4) is 20× looser than the LP plans' certificate.
            h.setOptionValue("mip_rel_gap", MIP_REL_GAP)
            return
        if self.optionsDict.get("solver") is None:
            h.setOptionValue("solver", segment_solver(lo2.size, m))
        h.setOptionValue("presolve", "off")  # it spends its time on the one-entry segment columns

    def callSolver(self, lp):
        """Solve; while the solution breaks a bound row not yet in the LP, add the broken ones
        and solve again from the last basis (dual simplex: a few pivots per round)."""
        import highspy

        h = lp.solverModel
        h.run()
        _retry_unknown(h)
        B, lo, hi = self._bounds
        pending = np.arange(lo.size)
        for _ in range(100):
            if not pending.size or h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                return
            act = B[pending] @ np.asarray(h.getSolution().col_value, float)
            tol = 1e-7 * np.maximum(1.0, np.abs(act))
            broken = (act < lo[pending] - tol) | (act > hi[pending] + tol)
            if not broken.any():
                return
            # Rows about to break go in too: adding some moves the solution onto the next.
            room = 0.05 * float(np.abs(act).mean())
            broken |= (act < lo[pending] + room) | (act > hi[pending] - room)
            add = pending[broken]
            pending = pending[~broken]
            rows = B[add]
            inf = highspy.kHighsInf
            clip = lambda a: np.nan_to_num(np.asarray(a, float), posinf=inf, neginf=-inf)  # noqa: E731
            h.addRows(add.size, clip(lo[add]), clip(hi[add]), rows.nnz, rows.indptr[:-1].astype(np.int32),
                      rows.indices.astype(np.int32), rows.data)
            if not self._integer:
                h.setOptionValue("solver", "simplex")
            h.run()
            _retry_unknown(h)
        raise SolverError("bound rows kept breaking after 100 rounds")  # pragma: no cover

    def findSolutionValues(self, lp):
        import highspy

        h = lp.solverModel
        S = highspy.HighsModelStatus
        status = h.getModelStatus()
        codes = {S.kOptimal: (pulp.LpStatusOptimal, pulp.LpSolutionOptimal),
                 S.kInfeasible: (pulp.LpStatusInfeasible, pulp.LpSolutionInfeasible),
                 S.kUnboundedOrInfeasible: (pulp.LpStatusInfeasible, pulp.LpSolutionInfeasible),
                 S.kUnbounded: (pulp.LpStatusUnbounded, pulp.LpSolutionUnbounded)}
        if status not in codes:
            return pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound
        if status != S.kOptimal:
            return codes[status]
        sol = h.getSolution()
        z = np.asarray(sol.col_value, float)
        values = self._g + self._G @ z
        for var, v in zip(self._variables, values.tolist()):
            var.varValue = v
        duals_new = np.asarray(sol.row_dual, float)  # the bound rows added last are not the model's rows
        duals = np.where(self._row_map >= 0, duals_new[np.maximum(self._row_map, 0)], 0.0)
        activity = self._A @ values
        for r, con in enumerate(lp._constraints.values()):
            con.pi = float(duals[r])
            act = float(activity[r])
            con.slack = -(act + con.constant) if con.sense == pulp.LpConstraintLE else act + con.constant
        if len(self.rows):
            self.rows.duals = duals[self._first_row:]
        cols = getattr(self.rows, "cols", None)
        if cols is not None:
            self.rows.col_values = values[np.fromiter((v.index for v in cols), np.int64, len(cols))]
        # A MILP has no prices: the refinement then stops on the model error instead.
        self.sub.reduced = np.asarray(sol.col_dual, float)[self._kept.size:] if sol.dual_valid else None
        return codes[status]


def bulk_solver(lp: pulp.LpProblem, rows, options: dict | None = None, time_limit: float | None = None):
    """HiGHS through highspy when installed, with ``rows`` (array rows) passed in bulk; else
    PuLP's bundled CBC, with the rows materialised as PuLP constraints first."""
    silence_highs_banner()
    if pulp.HiGHS().available():
        if rows is not None and rows.constraints is None:
            return BulkHiGHS(rows, msg=False, timeLimit=time_limit, **(options or {}))
        return pulp.HiGHS(msg=False, timeLimit=time_limit, **(options or {}))
    logger.warning("HiGHS (highspy) is not available; falling back to CBC")
    if rows is not None:
        rows.materialise(lp)
    return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit)


def run_lp(lp: pulp.LpProblem, solver) -> tuple[str, float]:
    """Solve ``lp``; returns (status, seconds) with status ``optimal``, ``infeasible`` or
    ``unbounded``. Any other outcome raises :class:`SolverError`."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            code = lp.solve(solver)
        except pulp.PulpSolverError as exc:  # pragma: no cover - solver crash
            raise SolverError(f"{solver.name} failed: {exc}") from exc
    seconds = time.perf_counter() - t0
    status = pulp.LpStatus.get(code, str(code))
    mapping = {"Optimal": "optimal", "Infeasible": "infeasible", "Unbounded": "unbounded"}
    if status not in mapping:
        raise SolverError(f"{solver.name} returned status {status!r}")
    return mapping[status], seconds


def segment_solver(rows: int, segments: int) -> str:
    """HiGHS's method for a segment-form LP, as measured on benchmarks/optimizer.py and
    benchmarks/periods.py: dual simplex up to ~10k segments, or ~40k when many rows couple
    them (10 × 52 weeks with pacing: 0.05 s an LP against 0.3 s by IPM); the interior-point
    method beyond (1000 channels: 0.1 s against 0.25 s; 1000 × 13 periods: 1 s against 10 s)."""
    return "ipm" if segments > 40_000 or (segments > 10_000 and rows <= 100) else "simplex"


def drop_rows(lp: pulp.LpProblem, rows) -> None:
    """Take materialised array rows (:class:`optimizer.build.SparseRows`) out of the PuLP model again."""
    for con in rows.constraints or []:
        lp._constraints.pop(con.name, None)
    rows.constraints = None


def segment_prices(reduced: np.ndarray, owner: np.ndarray, slope: np.ndarray, n: int):
    """Each pair's implied marginal return, the price κ of return and the prices π of its curve
    column, from the reduced costs of a segment-form LP.

    A segment j of pair p has reduced cost d_j = π_p − κ a_j (HiGHS minimises): its column
    differs from the pair's other segments only in its slope a_j, which multiplies the return's
    price κ (objective weight plus the return floors' duals). Two segments of a pair give κ,
    the same for every pair; then π_p = d_j + κ a_j, and π_p / κ is where a partly filled
    segment's slope sits. Returns (implied, κ, π) with NaN implied marginals for pairs without
    segments, or (None, None, None) when no pair prices return.
    """
    d = np.nan_to_num(reduced)
    if owner.size < 2:
        return None, None, None
    order = np.argsort(owner, kind="stable")
    o, a, dd = owner[order], slope[order], d[order]
    first = np.searchsorted(o, np.arange(n))
    last = np.searchsorted(o, np.arange(n), side="right") - 1
    ok = (last > first) & (last >= 0)
    f, l_ = first[ok], last[ok]
    ok_f = a[f] - a[l_] > 1e-9 * np.abs(a[f])
    if not ok_f.any():
        return None, None, None
    f, l_ = f[ok_f], l_[ok_f]
    kappa = float(np.median(-(dd[f] - dd[l_]) / (a[f] - a[l_])))
    if not kappa > 0:
        return None, None, None
    count = np.bincount(owner, minlength=n)
    pi = np.bincount(owner, weights=d + kappa * slope, minlength=n) / np.maximum(count, 1)
    implied = np.where(count > 0, pi / kappa, np.nan)
    return implied, kappa, pi
