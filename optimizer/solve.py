"""Solve a :class:`~optimizer.problem.Problem`: refine the LP until it is exact enough, then report.

The loop: build the hypograph LP on a coarse set of breakpoints, solve it with HiGHS, then add
breakpoints around each channel's solution (a shrinking local window) and solve again, until
the interpolation error next to every solution is below ``tol`` of the total return. Because
the LP is an inner approximation, every iterate is feasible on the true curves and the true
return of the plan is at least the LP's value.

Spends are then rounded to the cent so that spend + reserve equals the budget exactly.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulp

from models.curves import CurveSet
from optimizer import diagnose
from optimizer.build import ConvexPart, Model, Objective, Pieces, SparseRows, build_model
from optimizer.errors import SolverError
from optimizer.problem import Problem, channel_bounds
from optimizer.result import Allocation, Binding, ChannelResult, GroupResult, PlanSummary, money, pct, unit_name

logger = logging.getLogger(__name__)

#: Default relative accuracy of the piecewise-linear model near the solution.
DEFAULT_TOL = 2e-5
#: Breakpoints on each channel's convex part in exact mode.
EXACT_CONVEX_SEGMENTS = 96
_COARSE = np.array([0.0, 1e-3, 1e-2, 0.04, 0.1, 0.2, 0.35, 0.55, 0.8, 1.0])

_banner_silenced = False


def _silence_highs_banner() -> None:
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
    row as PuLP does, and the array rows (:class:`optimizer.build.CurveRows` or
    :class:`optimizer.build.SparseRows`) in one ``addRows`` call. After the solve ``rows.duals``
    holds the array rows' duals and ``rows.col_values`` (SparseRows) the values of its columns.
    """

    def __init__(self, rows, **kwargs):
        super().__init__(**kwargs)
        self.rows = rows
        self._first_row = 0

    def createAndConfigureSolver(self, lp):
        _silence_highs_banner()  # every Highs object of ours is made here (or in bulk_solver)
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
        if self.optionsDict.get("solver") is None:
            h.setOptionValue("solver", segment_solver(lo2.size, m))
        h.setOptionValue("presolve", "off")  # it spends its time on the one-entry segment columns

    def callSolver(self, lp):
        """Solve; while the solution breaks a bound row not yet in the LP, add the broken ones
        and solve again from the last basis (dual simplex: a few pivots per round)."""
        import highspy

        h = lp.solverModel
        h.run()
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
            h.setOptionValue("solver", "simplex")
            h.run()
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
        self.sub.reduced = np.asarray(sol.col_dual, float)[self._kept.size:]
        return codes[status]


def bulk_solver(lp: pulp.LpProblem, rows, options: dict | None = None, time_limit: float | None = None):
    """HiGHS through highspy when installed, with ``rows`` (array rows) passed in bulk; else
    PuLP's bundled CBC, with the rows materialised as PuLP constraints first."""
    _silence_highs_banner()
    if pulp.HiGHS().available():
        if rows is not None and rows.constraints is None:
            return BulkHiGHS(rows, msg=False, timeLimit=time_limit, **(options or {}))
        return pulp.HiGHS(msg=False, timeLimit=time_limit, **(options or {}))
    logger.warning("HiGHS (highspy) is not available; falling back to CBC")
    if rows is not None:
        rows.materialise(lp)
    return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit)


def make_solver(model: Model, time_limit: float | None = None):
    """The solver for a single-horizon model (see :func:`bulk_solver`)."""
    # These LPs have thousands of rows of which few bind; the interior-point method (with
    # crossover, so duals and a basic solution come back) is 3-5x faster than simplex.
    options = {} if model.lp.isMIP() else {"solver": "ipm"}
    return bulk_solver(model.lp, model.rows, options, time_limit)


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


def solve_model(model: Model, lp_path: str | None = None, segments: bool = False) -> tuple[str, float, str]:
    """Solve a built model; returns (status, seconds, solver name) as :func:`run_lp` does.

    ``segments``: hand HiGHS the curves in segment form (:func:`segment_form`) when the model
    allows it (an LP, not exact mode's MILP), which leaves it the named rows only; the implied
    marginals then come from the segments' reduced costs. Elastic diagnosis models keep the
    hypograph rows: their spend may leave the breakpoints' span.
    """
    if lp_path:  # the readable LP, hypograph rows included; the solve then gets them in bulk again
        model.rows.materialise(model.lp)
        model.lp.writeLP(lp_path)
        drop_rows(model.lp, model.rows)
    sub = segment_form(model) if segments and not model.lp.isMIP() and pulp.HiGHS().available() else None
    if sub is None:
        solver = make_solver(model)
        try:
            status, seconds = run_lp(model.lp, solver)
        finally:
            model.rows.read_duals()
        return status, seconds, solver.name
    solver = SegmentHiGHS(SparseRows([]), sub, msg=False)
    status, seconds = run_lp(model.lp, solver)
    if status == "optimal" and sub.reduced is not None:
        model.marginals, _, _ = segment_prices(sub.reduced, sub.owner, sub.slope, len(model.x))
    return status, seconds, solver.name


def segment_solver(rows: int, segments: int) -> str:
    """HiGHS's method for a segment-form LP, as measured on benchmarks/optimizer.py and
    benchmarks/periods.py: dual simplex up to ~10k segments, or ~40k when many rows couple
    them (10 × 52 weeks with pacing: 0.05 s an LP against 0.3 s by IPM); the interior-point
    method beyond (1000 channels: 0.1 s against 0.25 s; 1000 × 13 periods: 1 s against 10 s)."""
    return "ipm" if segments > 40_000 or (segments > 10_000 and rows <= 100) else "simplex"


def drop_rows(lp: pulp.LpProblem, rows) -> None:
    """Take materialised array rows (CurveRows, SparseRows) out of the PuLP model again."""
    for con in rows.constraints or []:
        lp._constraints.pop(con.name, None)
    rows.constraints = None


def segment_form(model: Model) -> "Substitution | None":
    """The single-horizon model's curves in segment form: x_c = p_0 + Σ δ_j, y_c = r(p_0) + Σ a_j δ_j
    (None when a channel's rows cannot be written so)."""
    from scipy import sparse

    curves = model.rows.curves
    if not curves or len(curves) != len(model.rows.entries):
        return None
    cols, rows, segs, vals, offset, width, owner, slope = [], [], [], [], [], [], [], []
    k = 0
    for i, (x, y, p, v) in enumerate(curves):
        w, a = np.diff(p), np.diff(v) / np.diff(p)
        idx = k + np.arange(w.size)
        cols += [x, y]
        rows += [np.full(w.size, 2 * i), np.full(w.size, 2 * i + 1)]
        segs += [idx, idx]
        vals += [np.ones(w.size), a]
        offset += [p[0], v[0]]
        width.append(w)
        owner.append(np.full(w.size, i))
        slope.append(a)
        k += w.size
    M = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(segs))), shape=(len(cols), k))
    n = len(cols)
    index_of = {id(v): j for j, v in enumerate(model.x)}  # pair of each segment: its channel in model.x
    return Substitution(cols=cols, M=M, offset=np.array(offset), replaced=np.ones(n, bool),
                        bound_rows=np.arange(n) % 2 == 0, width=np.concatenate(width),
                        owner=np.array([index_of[id(x)] for x, *_ in curves])[np.concatenate(owner)],
                        slope=np.concatenate(slope))


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


def initial_pieces(problem: Problem, bounds, exact: bool) -> list[Pieces]:
    """Coarse breakpoints for every channel (and the convex grid of S-curves in exact mode)."""
    pieces = []
    for ch, (lo, hi) in zip(problem.channels, bounds):
        a, b = lo.value, max(hi.value, lo.value)
        curve = ch.curve if (exact or ch.curve.is_concave) else ch.curve.envelope()
        convex = None
        if exact and not ch.curve.is_concave:
            infl = min(max(ch.curve.concave_from, a), b)
            if infl > a:
                # Denser near the tangent point, where S-curve optima tend to sit.
                u = np.unique(np.concatenate([np.linspace(0, 1, EXACT_CONVEX_SEGMENTS + 1)]))
                grid = a + (infl - a) * u
                convex = ConvexPart(grid=grid, values=ch.curve.response(grid))
        piece = Pieces(lo=a, hi=b, curve=curve, breakpoints=np.array([a]), convex=convex)
        piece.breakpoints = _coarse_breakpoints(piece, ch.current)
        pieces.append(piece)
    return pieces


def _coarse_breakpoints(piece: Pieces, current: float) -> np.ndarray:
    a, b = piece.start, piece.hi
    if b - a <= 1e-9 * max(1.0, b):
        return np.array([a])
    pts = [a + (b - a) * _COARSE]
    knots = piece.curve.knots()
    if knots is not None:
        pts.append(knots[(knots > a) & (knots < b)])
    knee = getattr(piece.curve, "knee", None)
    if knee is not None and a < knee < b:
        pts.append([knee])
    if a < current < b:
        # The current plan sits exactly on the model, so the plan found is never worse than it.
        pts.append([current])
    return _distinct(np.concatenate([np.atleast_1d(np.asarray(p, float)) for p in pts]), a, b)


def _distinct(points: np.ndarray, a: float, b: float) -> np.ndarray:
    """Sorted points in [a, b] at least a hair apart: a near-duplicate would make a segment
    whose slope is rounding noise."""
    pts = np.unique(np.clip(points, a, b))
    gap = 1e-9 * max(abs(b), 1.0)
    keep = np.concatenate([[True], np.diff(pts) > gap])
    pts = pts[keep]
    if pts.size > 1 and pts[-1] < b:
        pts[-1] = b if b - pts[-1] <= gap else pts[-1]
    return pts


def _local_errors(pieces: list[Pieces], xs: np.ndarray) -> np.ndarray:
    """Per channel, the largest midpoint gap between curve and interpolant next to its spend.

    The midpoint gap is the exact chord error for a quadratic, and a close one for the smooth
    curves here: the error of the LP's model where the solution sits.
    """
    errs = np.zeros(len(pieces))
    for i, (piece, x) in enumerate(zip(pieces, xs)):
        p = piece.breakpoints
        if p.size < 2 or piece.curve.knots() is not None:
            continue
        j = int(np.clip(np.searchsorted(p, x, side="right") - 1, 0, p.size - 2))
        # The segment holding x; at a breakpoint, the segments on both sides of it.
        at_knot = abs(x - p[j]) <= 1e-9 * max(abs(x), 1.0)
        seg = np.arange(max(j - 1, 0) if at_knot else j, j + 1)
        k = seg.size
        r = piece.curve.response(np.concatenate([p[seg], p[seg + 1], 0.5 * (p[seg] + p[seg + 1])]))
        errs[i] = max(float(np.max(r[2 * k :] - 0.5 * (r[:k] + r[k : 2 * k]))), 0.0)
    return errs


def _chord_slopes(pieces: list[Pieces], xs: np.ndarray) -> np.ndarray:
    """Slope of the segment each spend sits on (used when the solver gives no duals)."""
    out = np.zeros(len(pieces))
    for i, (piece, x) in enumerate(zip(pieces, xs)):
        p = piece.breakpoints
        if p.size < 2:
            out[i] = float(piece.curve.marginal(x))
            continue
        j = int(np.clip(np.searchsorted(p, x, side="right") - 1, 0, p.size - 2))
        r = piece.curve.response(p[j : j + 2])
        out[i] = float((r[1] - r[0]) / (p[j + 1] - p[j]))
    return out


def _zoom(pieces: list[Pieces], coarse, target: np.ndarray, allowed: float) -> None:
    """New breakpoints: the coarse grid plus a window around where each channel's optimum should be.

    The window is fine at ``target`` (spacing h from the curvature there, so that the chord
    error h²|r''|/8 is a small share of ``allowed``) and widens geometrically away from it, so a
    target that is somewhat off still lands on an accurate part of the model.
    """
    family = CurveSet([p.curve for p in pieces])
    starts = np.array([p.start for p in pieces])
    his = np.array([p.hi for p in pieces])
    target = np.clip(target, starts, his)
    eps = np.maximum(1e-6 * np.maximum(target, 1.0), 1e-9)
    slope_up = family.marginal(target + eps)
    slope_down = family.marginal(np.maximum(target - eps, 0.0))
    curvature = np.abs(slope_down - slope_up) / (2 * eps)
    per_channel = allowed / (4.0 * max(len(pieces), 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.sqrt(8.0 * per_channel / np.maximum(curvature, 1e-300))
    span = his - starts
    h = np.clip(np.nan_to_num(h, nan=0.0, posinf=0.0), 1e-9 * np.maximum(his, 1.0), np.maximum(span / 16.0, 1e-12))
    for i, piece in enumerate(pieces):
        if span[i] <= 0 or piece.curve.knots() is not None:
            continue
        k = int(np.clip(np.ceil(np.log(max(span[i] / (8 * h[i]), 1.0)) / np.log(4.0)), 0, 30))
        steps = h[i] * np.concatenate([[0.0, 1.0, 2.0], 4.0 ** np.arange(1, k + 1)])
        window = np.concatenate([target[i] + steps, target[i] - steps])
        # Coarse points inside the window add rows and no accuracy.
        outside = coarse[i][np.abs(coarse[i] - target[i]) > steps[-1]]
        piece.breakpoints = _distinct(np.concatenate([outside, window, coarse[i][[0, -1]]]), starts[i], his[i])


def _first_targets(problem: Problem, pieces: list[Pieces], family: CurveSet) -> np.ndarray:
    """Where each channel's optimum would be if only the budget and the bounds counted.

    A root search on the common marginal return λ (each channel spends where its marginal
    equals λ, clipped to its interval). Group limits, ROI floors and other couplings move the optimum;
    the LP's own prices correct for them in the next rounds.
    """
    lo = np.array([p.start for p in pieces])
    hi = np.array([p.hi for p in pieces])
    available = problem.budget - problem.reserve_min

    def spend_at(lam: float, iterations: int = 26) -> np.ndarray:
        return family.spend_at_marginal(lam, lo, hi, iterations)

    if problem.objective == "max_profit":
        x = spend_at(1.0 / float(problem.margin))
        if x.sum() <= available:
            return x
    # The excesses are taken in logs: spend and return fall roughly as a power of λ, so they
    # are nearly straight lines in log λ, which the root search below needs few steps for.
    if problem.objective == "min_spend" and problem.target_return is not None:
        def excess(lam):  # > 0 while spending down to marginal λ still beats the target
            eps = 1e-9 * max(abs(problem.target_return), 1.0)
            got = float(family.response(spend_at(lam)).sum())
            return math.log(max(got, 0.0) + eps) - math.log(max(problem.target_return, 0.0) + eps)
    else:
        def excess(lam):  # > 0 while spending down to marginal λ costs more than is available
            eps = 1e-9 * max(abs(available), 1.0)
            return math.log(float(spend_at(lam).sum()) + eps) - math.log(max(available, 0.0) + eps)
    top = family.marginal(np.maximum(lo, 1e-9 * np.maximum(hi, 1.0)))
    top = top[np.isfinite(top) & (top > 0)]
    if top.size == 0:
        return lo
    a, b = np.log(1e-12 * float(top.min())), np.log(float(top.max())) + 1.0
    flip = problem.objective == "min_spend"
    # Both excesses fall as log λ rises: regula falsi with the Illinois fix (a few evaluations
    # where bisection needs 26), bisection steps whenever it stalls; λ to ~1e-7 relative.
    fa, fb = excess(np.exp(a)), excess(np.exp(b))
    if fa <= 0:  # even the lowest λ fits: every pair at its top
        b, fb = a, fa
    elif fb > 0:  # even the highest λ does not: every pair at its bottom
        a, fa = b, fb
    scale = 1e-9
    kept = 0  # +1 / −1: a / b moved last time (Illinois: halve the end kept twice)
    for _ in range(60):
        if b - a <= 1e-7:
            break
        mid = (a * fb - b * fa) / (fb - fa) if fa != fb else 0.5 * (a + b)
        if not a < mid < b:
            mid = 0.5 * (a + b)
        fm = excess(np.exp(mid))
        if fm > 0:
            a, fa = mid, fm
            fb = fb / 2 if kept == 1 else fb
            kept = 1
        else:
            b, fb = mid, fm
            fa = fa / 2 if kept == -1 else fa
            kept = -1
        if abs(fm) <= scale:
            a = b = mid
            break
    # max_return: the smallest λ whose spend fits (b); min_spend: the largest λ whose return
    # reaches the target (a).
    return spend_at(np.exp(a if flip else b), 80)


def optimize(
    problem: Problem,
    *,
    exact: bool = False,
    tol: float = DEFAULT_TOL,
    max_rounds: int = 14,
    lp_path: str | None = None,
) -> Allocation:
    """Find the allocation with the best objective under every constraint of ``problem``.

    Parameters
    ----------
    problem
        A validated problem.
    exact
        Solve S-shaped curves exactly (MILP with binary segments on their convex part) instead
        of on their concave envelope.
    tol
        Relative accuracy of the piecewise-linear model next to the solution.
    max_rounds
        Refinement rounds at most.
    lp_path
        Write the last LP/MILP to this file (debugging).

    Returns
    -------
    Allocation
        ``status == "infeasible"`` with a diagnosis when the constraints conflict.

    Raises
    ------
    SolverError
        When the solver fails in a way that is not infeasibility.
    """
    t_start = time.perf_counter()
    bounds = [channel_bounds(problem, ch) for ch in problem.channels]
    mode = "exact" if exact else ("concave" if all(c.curve.is_concave for c in problem.channels) else "envelope")
    base = Allocation(
        scenario=problem.name, status="infeasible", objective=problem.objective,
        budget=problem.budget, currency=problem.currency, mode=mode,
    )
    conflicts = diagnose.bound_conflicts(problem, bounds)
    if conflicts:
        base.diagnosis = conflicts
        base.current = _summarise_current(problem, bounds)
        return base

    pieces = initial_pieces(problem, bounds, exact)
    coarse = [p.breakpoints.copy() for p in pieces]
    family = CurveSet([p.curve for p in pieces])
    starts = np.array([p.start for p in pieces])
    his = np.array([p.hi for p in pieces])
    first = _first_targets(problem, pieces, family)
    _zoom(pieces, coarse, first, tol * max(float(family.response(first).sum()), 1e-12))
    objective = Objective.for_problem(problem)
    solver_seconds, solver_name, rounds = 0.0, "", 0
    model = None
    xs = None
    for rounds in range(1, max_rounds + 1):
        model = build_model(problem, pieces, objective)
        status, secs, solver_name = solve_model(model, lp_path if rounds == max_rounds else None, segments=True)
        solver_seconds += secs
        if status != "optimal":
            base.diagnosis = diagnose.explain(problem, pieces, status)
            base.solver_name, base.solver_seconds = solver_name, solver_seconds
            base.current = _summarise_current(problem, bounds)
            return base
        xs = np.array([float(v.varValue or 0.0) for v in model.x])
        total = float(family.response(xs).sum())
        errs = _local_errors(pieces, xs)
        allowed = tol * max(abs(total), 1e-9 * problem.budget, 1e-12)
        logger.debug("round %d: model error %.3g (allowed %.3g)", rounds, errs.sum(), allowed)
        if errs.sum() <= allowed:
            break
        implied = model.implied_marginals()
        implied = np.where(np.isfinite(implied), implied, _chord_slopes(pieces, xs))
        _zoom(pieces, coarse, family.spend_at_marginal(implied, starts, his), allowed)
    if lp_path and rounds < max_rounds:
        model.rows.materialise(model.lp)
        model.lp.writeLP(lp_path)
    lp_value = float(sum(float(v.varValue or 0.0) for v in model.y))
    if mode == "envelope" and (problem.roi_min is not None or problem.objective == "min_spend"):
        spends = to_cents(problem, bounds, xs) / 100.0
        returns = np.array([float(c.curve.response(x)) for c, x in zip(problem.channels, spends)])
        broken = [v for v in _plan_violations(problem, spends, returns) if "ROI" in v or "target" in v]
        if broken:
            # The envelope overstates S-curves, so a return floor met on it can fail on the
            # true curves: solve exactly instead, and say so.
            alloc = optimize(problem, exact=True, tol=tol, max_rounds=max_rounds, lp_path=lp_path)
            alloc.warnings.insert(
                0, f"on the S-curves' concave envelope the plan missed a return floor ({broken[0]}); "
                "solved exactly (MILP) instead"
            )
            return alloc
    alloc = _report(problem, bounds, pieces, model, xs, base)
    alloc.solver_name = solver_name
    alloc.solver_seconds = time.perf_counter() - t_start
    alloc.iterations = rounds
    alloc.lp_return = lp_value
    return alloc


# --------------------------------------------------------------------------------------------
# Money to the cent


def to_cents(problem: Problem, bounds, xs: np.ndarray) -> np.ndarray:
    """Round spends to whole cents inside their bounds so spend + reserve = budget exactly.

    Works in integer cents; small repairs keep the reserve and group limits that rounding could
    push over by a few cents.
    """
    lo_c = np.array([math.ceil(lo.value * 100 - 1e-6) for lo, _ in bounds], dtype=np.int64)
    hi_c = np.array([math.floor(hi.value * 100 + 1e-6) for _, hi in bounds], dtype=np.int64)
    hi_c = np.maximum(hi_c, lo_c)
    cents = np.clip(np.rint(xs * 100).astype(np.int64), lo_c, hi_c)
    budget_c = int(round(problem.budget * 100))
    reserve_min_c = math.ceil(problem.reserve_min * 100 - 1e-6)
    groups = [(g, np.array([c.group == g for c in problem.channels])) for g in problem.group_names]

    def take(mask, amount):  # remove cents from channels in mask with room above their minimum
        for i in np.argsort(-(cents - lo_c)):
            if amount <= 0:
                break
            if mask[i]:
                d = min(amount, int(cents[i] - lo_c[i]))
                cents[i] -= d
                amount -= d

    def give(mask, amount):
        for i in np.argsort(-(hi_c - cents)):
            if amount <= 0:
                break
            if mask[i]:
                d = min(amount, int(hi_c[i] - cents[i]))
                cents[i] += d
                amount -= d

    everyone = np.ones(len(cents), dtype=bool)
    deficit = reserve_min_c - (budget_c - int(cents.sum()))
    if deficit > 0:
        take(everyone, deficit)
    for g, mask in groups:
        spec = problem.group(g)
        if spec.max_share is not None:
            excess = int(cents[mask].sum()) - math.floor(spec.max_share * problem.budget * 100 + 1e-6)
            if excess > 0:
                take(mask, excess)
        if spec.min_share is not None:
            short = math.ceil(spec.min_share * problem.budget * 100 - 1e-6) - int(cents[mask].sum())
            room = budget_c - int(cents.sum()) - reserve_min_c
            if short > 0 and room > 0:
                give(mask, min(short, room))
    if problem.reserve_max_share is not None:
        over = (budget_c - int(cents.sum())) - math.floor(problem.reserve_max_share * problem.budget * 100 + 1e-6)
        if over > 0:
            give(everyone, over)
    return cents


# --------------------------------------------------------------------------------------------
# Reporting


def _plan_violations(problem: Problem, spends: np.ndarray, returns: np.ndarray) -> list[str]:
    """Which constraints a plan breaks (used for the current plan), excluding change limits."""
    out = []
    b = problem.budget
    cc = problem.currency
    tol = 0.005 + 1e-9 * b
    for ch, x in zip(problem.channels, spends):
        lo, hi = channel_bounds(problem, ch)
        # Limits defined relative to the current plan hold for it by definition.
        if x < lo.value - tol and not all(s.startswith(("locked", "max_change")) for s in lo.sources):
            out.append(f"{ch.name}: spend {money(x, cc)} is below its minimum {money(lo.value, cc)}")
        if x > hi.value + tol and not all(s.startswith(("locked", "max_change")) for s in hi.sources):
            out.append(f"{ch.name}: spend {money(x, cc)} is above its maximum {money(hi.value, cc)} ({', '.join(hi.sources)})")
    return out + shared_violations(problem, spends, float(returns.sum()), tol)


def shared_violations(problem, channel_totals: np.ndarray, ret: float, tol: float) -> list[str]:
    """Limits every plan shares (reserve, groups, ROI floor, return target), given each channel's
    total spend and the plan's total return; used for single-horizon and period plans alike."""
    out = []
    b = problem.budget
    cc = problem.currency
    reserve = clamp_cent(b - float(channel_totals.sum()))
    if reserve < problem.reserve_min - tol:
        out.append(f"reserve {money(reserve, cc)} is below the minimum {money(problem.reserve_min, cc)}")
    if problem.reserve_max_share is not None and reserve > problem.reserve_max_share * b + tol:
        out.append(f"reserve {money(reserve, cc)} is above the maximum {money(problem.reserve_max_share * b, cc)}")
    for g in problem.group_names:
        spec = problem.group(g)
        s = float(sum(x for ch, x in zip(problem.channels, channel_totals) if ch.group == g))
        if spec.min_share is not None and s < spec.min_share * b - tol:
            out.append(f"group {g}: {money(s, cc)} is below its minimum {pct(spec.min_share)}")
        if spec.max_share is not None and s > spec.max_share * b + tol:
            out.append(f"group {g}: {money(s, cc)} is above its maximum {pct(spec.max_share)}")
    spend = float(channel_totals.sum())
    if problem.roi_min is not None and spend > 0 and ret < problem.roi_min * spend * (1 - 1e-9):
        out.append(f"ROI {ret / spend:.2f} is below the floor {problem.roi_min:g}")
    if problem.objective == "min_spend" and problem.target_return is not None and ret < problem.target_return * (1 - 1e-9):
        out.append(f"return {money(ret, cc)} is below the target {money(problem.target_return, cc)}")
    return out


def clamp_cent(reserve: float) -> float:
    """A reserve within a cent below zero is float noise in a plan that spends the whole budget: 0."""
    return 0.0 if -0.01 <= reserve <= 0.0 else float(reserve)


def _summarise_current(problem: Problem, bounds) -> PlanSummary:
    spends = np.array([c.current for c in problem.channels], dtype=float)
    returns = np.array([float(c.curve.response(c.current)) for c in problem.channels])
    spend, ret = float(spends.sum()), float(returns.sum())
    violations = _plan_violations(problem, spends, returns)
    return PlanSummary(
        spend=spend,
        reserve=clamp_cent(problem.budget - spend),
        expected_return=ret,
        roi=ret / spend if spend > 0 else None,
        feasible=not violations,
        violations=tuple(violations),
    )


def objective_value(problem: Problem, spend: float, ret: float) -> float:
    """The objective on true curves (bigger is better for every objective)."""
    if problem.objective == "max_profit":
        return float(problem.margin) * ret - spend
    if problem.objective == "min_spend":
        return -spend
    return ret


def _report(problem: Problem, bounds, pieces, model: Model, xs: np.ndarray, base: Allocation,
            guard_current: bool = True) -> Allocation:
    """Round ``xs`` to the cent and report it on the true curves (``guard_current``: fall back
    to a feasible current plan that scores better, which only an envelope plan can need)."""
    alloc = base
    alloc.status = "optimal"
    current = _summarise_current(problem, bounds)
    cents = to_cents(problem, bounds, xs)
    spends = cents / 100.0
    returns = np.array([float(c.curve.response(x)) for c, x in zip(problem.channels, spends)])
    cur_spends = np.array([c.current for c in problem.channels], dtype=float)
    if guard_current and current.feasible and objective_value(problem, float(spends.sum()), float(returns.sum())) < objective_value(
        problem, current.spend, current.expected_return
    ) - 1e-9 * max(1.0, abs(current.expected_return)):
        # Only possible on an S-curve's envelope: never hand back a plan worse than today's.
        alloc.warnings.append(
            "the envelope plan scored below the current plan on the true curves; keeping the "
            "current plan (run with --exact for the true optimum)"
        )
        cents = np.rint(cur_spends * 100).astype(np.int64)
        spends = cents / 100.0
        returns = np.array([float(c.curve.response(x)) for c, x in zip(problem.channels, spends)])
    budget_c = int(round(problem.budget * 100))
    reserve_c = budget_c - int(cents.sum())
    spend_total, ret_total = int(cents.sum()) / 100.0, float(returns.sum())
    b = problem.budget
    for ch, x, r in zip(problem.channels, spends, returns):
        alloc.channels.append(
            ChannelResult(
                channel=ch.name,
                group=ch.group,
                spend=float(x),
                share=float(x / b) if b else 0.0,
                current_spend=float(ch.current),
                change=float(x - ch.current),
                expected_return=float(r),
                roi=float(r / x) if x > 0 else None,
                marginal_roi=marginal_roi(ch.curve, x),
                label=ch.label,
            )
        )
    for g in problem.group_names:
        mask = [c.group == g for c in problem.channels]
        gs = float(sum(x for x, m in zip(spends, mask) if m))
        gc = float(sum(x for x, m in zip(cur_spends, mask) if m))
        alloc.groups.append(GroupResult(group=g, spend=round(gs, 2), share=gs / b if b else 0.0, current_spend=gc))
    alloc.spend = spend_total
    alloc.reserve = reserve_c / 100.0
    alloc.expected_return = ret_total
    alloc.roi = ret_total / spend_total if spend_total > 0 else None
    alloc.current = current
    if current.expected_return > 0:
        alloc.uplift = ret_total / current.expected_return - 1.0
    alloc.binding = _binding(problem, bounds, model, spends, alloc)
    alloc.warnings.extend(_warnings(problem, bounds, pieces, spends, alloc))
    return alloc


def _finite(v: float) -> float:
    return v if math.isfinite(v) else float("inf")


def marginal_roi(curve, x: float) -> float:
    """The return of the next unit of money at spend ``x``: 0 on a curve that is identically 0
    (no detectable effect: a Hill curve with β = 0 has an infinite slope formula at 0 but earns
    nothing), ∞ only where a curve that earns something rises vertically (zero spend, s < 1)."""
    m = float(curve.marginal(x))
    if not math.isfinite(m) and is_zero_curve(curve):
        return 0.0
    return _finite(m)


def is_zero_curve(curve) -> bool:
    """True when the curve returns nothing at any spend."""
    probe = np.array([1.0, 1e3, 1e6, 1e9, 1e12, 1e15])
    return not np.any(np.asarray(curve.response(probe), dtype=float) > 0)


def _binding(problem: Problem, bounds, model: Model, spends: np.ndarray, alloc: Allocation) -> list[Binding]:
    out: list[Binding] = []
    b = problem.budget
    cc = problem.currency
    tol = 0.011 + 1e-7 * b

    def price(name):
        con = model.named.get(name)
        pi = getattr(con, "pi", None) if con is not None else None
        return None if pi is None else abs(float(pi))

    if alloc.reserve <= problem.reserve_min + tol:
        out.append(
            Binding("reserve_min", f"reserve held at its minimum {money(problem.reserve_min, cc)} "
                    f"({pct(problem.reserve_min_share)} of budget)", price("budget_total"))
        )
    if problem.reserve_max_share is not None and alloc.reserve >= problem.reserve_max_share * b - tol:
        out.append(Binding("reserve_max", f"reserve at its maximum {pct(problem.reserve_max_share)}"))
    for g in problem.group_names:
        spec = problem.group(g)
        s = sum(x for c, x in zip(problem.channels, spends) if c.group == g)
        if spec.min_share is not None and s <= spec.min_share * b + tol:
            out.append(Binding(f"group_min[{g}]", f"group {g} at its minimum {pct(spec.min_share)} ({money(s, cc)})", price(f"group_min[{g}]")))
        if spec.max_share is not None and s >= spec.max_share * b - tol:
            out.append(Binding(f"group_max[{g}]", f"group {g} at its maximum {pct(spec.max_share)} ({money(s, cc)})", price(f"group_max[{g}]")))
    if problem.roi_min is not None and alloc.spend > 0:
        roi = alloc.expected_return / alloc.spend
        if roi <= problem.roi_min * (1 + 1e-4):
            out.append(Binding("roi_min", f"overall ROI {roi:.3f} at the floor {problem.roi_min:g}", price("roi_min")))
    if problem.objective == "min_spend" and problem.target_return is not None:
        out.append(Binding("target_return", f"return reaches the target {money(problem.target_return, cc)}", price("target_return")))
    for ch, x, (lo, hi) in zip(problem.channels, spends, bounds):
        if lo.sources and x <= lo.value + tol:
            for s in lo.sources:
                out.append(Binding(s, f"{ch.name} at its minimum {money(lo.value, cc)}"))
        if hi.value > lo.value + tol or ch.locked:
            for s in hi.sources:
                if s != "budget_total" and x >= hi.value - tol and not (ch.locked and s in lo.sources):
                    out.append(Binding(s, f"{ch.name} at its maximum {money(hi.value, cc)}"))
    return out


def _warnings(problem: Problem, bounds, pieces, spends: np.ndarray, alloc: Allocation) -> list[str]:
    out = []
    cc = problem.currency
    for ch, piece, x in zip(problem.channels, pieces, spends):
        if not ch.curve.is_concave and piece.convex is None:
            env = float(piece.curve.response(x))
            true = float(ch.curve.response(x))
            if env - true > 1e-6 * max(1.0, env):
                out.append(
                    f"{ch.name} has an S-shaped curve; it was planned on its concave envelope, which "
                    f"overstates its return at {money(x, cc)} by {money(env - true, cc)} (run with --exact "
                    "for the true optimum)"
                )
        if ch.max_change is not None and ch.current == 0:
            out.append(f"{ch.name}: max_change is relative to a current spend of 0, so it stays at 0")
    unspent = alloc.reserve - problem.reserve_min
    if unspent > 1.0 and problem.objective == "max_return":
        reasons = sorted({bd.name.split("[")[0] for bd in alloc.binding if bd.name != "reserve_min"})
        out.append(
            f"{money(unspent, cc)} above the minimum reserve is left unspent and kept in reserve"
            + (f" (limits that bind: {', '.join(reasons)})" if reasons else "")
        )
    for bd in alloc.binding:
        if bd.name.startswith("extrapolation_cap["):
            out.append(f"{bd.detail}: capped at 1.5× the largest spend seen in history (extrapolation cap)")
    below = _below_break_even(problem, bounds, spends, alloc)
    if below:
        out.insert(0, below)
    return out


def plan_marginal_roi(problem: Problem, bounds, spends: np.ndarray) -> float | None:
    """The return of the plan's last unit of money: the common marginal ROI of the channels free
    to move (strictly inside their own bounds, in a group not at its limit).

    At a kink (a tabulated curve's knot) a channel's marginal is an interval from its right to
    its left derivative; the plan's marginal lies in every free channel's interval, so it is the
    largest right derivative. When no channel is free (every one at a limit, the rest of the
    money in reserve), it is the lowest return of the last cent among the channels held at
    their upper limit. Channels whose curve earns nothing are left out. None when every channel
    sits at its minimum.
    """
    b = problem.budget
    tol = 0.011 + 1e-7 * b
    at_limit = set()
    for g in problem.group_names:
        spec = problem.group(g)
        s = float(sum(x for c, x in zip(problem.channels, spends) if c.group == g))
        if (spec.min_share is not None and s <= spec.min_share * b + tol) or (
                spec.max_share is not None and s >= spec.max_share * b - tol):
            at_limit.add(g)
    # A channel that earns nothing is never where the plan's marginal is set (money it holds
    # when the reserve is above its minimum is a tie the LP may break either way).
    live = [(ch, x, lo, hi) for ch, x, (lo, hi) in zip(problem.channels, spends, bounds) if not is_zero_curve(ch.curve)]
    free = [marginal_roi(ch.curve, x) for ch, x, lo, hi in live
            if lo.value + tol < x < hi.value - tol and ch.group not in at_limit]
    if free:
        return max(free)
    capped = [marginal_roi(ch.curve, x - 0.01) for ch, x, lo, hi in live
              if x >= hi.value - tol and x > lo.value + tol]
    return min(capped) if capped else None


def _spend_at(problem: Problem, mroi: float) -> float:
    """Total spend of the plan at ``problem``'s budget whose free channels have marginal return
    ``mroi``: each channel where its marginal return is ``mroi`` (S-curves: on their concave
    envelope) clipped to its bounds, then each group's total clipped to its limits (a group
    held at its minimum or maximum share spends exactly that, whatever its channels' marginals)."""
    ends = [channel_bounds(problem, c) for c in problem.channels]
    lo = np.array([a.value for a, _ in ends])
    hi = np.maximum(np.array([b.value for _, b in ends]), lo)
    x = CurveSet([c.curve.envelope() for c in problem.channels]).spend_at_marginal(mroi, lo, hi, 80)
    groups = np.array([c.group for c in problem.channels])
    total = 0.0
    for g in problem.group_names:
        mask = groups == g
        spec = problem.group(g)
        s = float(x[mask].sum())
        if spec.min_share is not None:
            s = max(s, spec.min_share * problem.budget)
        if spec.max_share is not None:
            s = min(s, spec.max_share * problem.budget)
        total += min(max(s, float(lo[mask].sum())), float(hi[mask].sum()))
    return total


def break_even_budget(problem: Problem, mroi: float = 1.0, *, problem_at=None) -> float:
    """About the budget at which the plan's marginal ROI falls to ``mroi`` (1: break-even).

    For concave curves (S-curves: their concave envelope) the plan's common marginal return
    λ(B) falls as the budget B grows. At λ = ``mroi`` each channel spends where its marginal
    return is ``mroi``, clipped to its bounds at that budget, each group's total clipped to its
    share limits (:func:`_spend_at`), and the budget is that spend plus the minimum reserve.
    Share limits move with the budget, so B is the root of ``B − reserve_min(B) − spend(B)``,
    bracketed and then found by regula falsi with the Illinois fix (a handful of evaluations where
    plain bisection needs thirty or more; bisection steps whenever it stalls), to a cent or 1e-9
    of B. A floor on overall ROI is left out, hence "about". Returns 0 when no channel returns
    ``mroi`` even on its first unit of money.

    ``problem_at(budget)`` gives the problem at another budget (default ``problem.with_budget``),
    e.g. one whose current plan, and so its change limits, scales with the budget.
    """
    at = problem_at or problem.with_budget

    def room(budget: float) -> float:  # ≥ 0 once spending down to marginal `mroi` fits the budget
        p = at(budget)
        return (budget - p.reserve_min) - _spend_at(p, mroi)

    a, fa = 0.0, None  # room(a) < 0 (at a = 0 unknown: a budget of 0 spends nothing, so it proves nothing)
    b = float(problem.budget)
    fb = room(b)
    while fb < 0 and b < 1e18:  # the plan's marginal is still above mroi: look higher
        a, fa = b, fb
        b = 2.0 * b
        fb = room(b)
    kept = 0  # +1 / −1: b / a moved last time (Illinois: halve the weight of the end kept twice)
    for _ in range(100):
        if b - a <= max(0.01, 1e-9 * b):
            break
        mid = b - fb * (b - a) / (fb - fa) if fa is not None and fb != fa else 0.5 * (a + b)
        if not a < mid < b:
            mid = 0.5 * (a + b)
        fm = room(mid)
        if fm >= 0:
            b, fb = mid, fm
            if kept == 1 and fa is not None:
                fa /= 2
            kept = 1
        else:
            a, fa = mid, fm
            if kept == -1:
                fb /= 2
            kept = -1
    return b


def _below_break_even(problem: Problem, bounds, spends: np.ndarray, alloc: Allocation) -> str | None:
    """A plan maximising return whose last unit of money returns less than it costs: say so, how
    much of the spend loses money, and about where break-even is (sets ``alloc.marginal_roi`` and
    ``alloc.break_even_budget``)."""
    lam = plan_marginal_roi(problem, bounds, spends)
    alloc.marginal_roi = lam
    if problem.objective != "max_return" or lam is None or round(lam, 2) >= 1.0:  # as it prints
        return None
    cc = problem.currency
    be = break_even_budget(problem)
    alloc.break_even_budget = round(be, 2)
    head = f"at this budget the last {unit_name(cc)} returns {lam:.2f} (marginal ROI < 1)"
    if be <= 0.01:
        return f"{head}: no channel returns its cost even on its first {unit_name(cc)}"
    extra = float(spends.sum()) - _spend_at(problem.with_budget(be), 1.0)
    about = money(float(f"{be:.3g}"), cc)
    if extra < 0.5:
        return f"{head}; break-even (marginal ROI 1) is at a budget of about {about}"
    return f"{head}: the last {money(extra, cc)} spent loses money; break-even (marginal ROI 1) is at a budget of about {about}"
