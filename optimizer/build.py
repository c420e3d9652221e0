"""The curves in the LP: the building blocks of a PuLP model, and the curves' two forms.

Each pair's curve (a (channel, period) entry) enters the LP on breakpoints p_0 < … < p_m
(values v_j, slopes a_j = Δv / Δp). For a concave curve the secant interpolant is the minimum
of its segment lines, so two equivalent forms keep a return column at most the interpolant (an
*inner* approximation: return floors written on it also hold on the true curves):

* the readable *hypograph* form (:func:`hypograph`), ``y_p − a_j e_p ≤ v_j − a_j p_j``: what
  ``lp_path`` writes, what CBC solves when HiGHS is missing, what the diagnosis LPs use;
* the *segment* form (:class:`SegmentForm`), e_p = p_0 + Σ_j δ_j and y_p = v_0 + Σ_j a_j δ_j
  with 0 ≤ δ_j ≤ p_{j+1} − p_j, which HiGHS gets (:class:`optimizer.highs.SegmentHiGHS`):
  falling slopes fill the segments in order, and no hypograph row is needed.

Both are array rows or substitutions over the model's columns (:class:`SparseRows`,
:class:`optimizer.highs.Substitution`), because building tens of thousands of rows as PuLP
constraints costs far more than solving them. Also here: the objective (:class:`Objective`),
PuLP variables (:func:`lp_var`, :func:`register_columns`) and the return floors' margin.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulp

from optimizer.highs import Substitution

_INF = math.inf

#: Relative margin on return floors (ROI floor, return target): rounding spends to the cent
#: afterwards cannot push a plan that meets them exactly to a few fen below.
FLOOR_MARGIN = 1e-7


@dataclass
class Objective:
    """What the LP optimises: ``sense`` and weights on Σ y and Σ x."""

    sense: int  # pulp.LpMaximize or pulp.LpMinimize
    return_weight: float
    spend_weight: float

    @classmethod
    def for_problem(cls, problem) -> "Objective":
        """The objective of a plan's problem (its ``objective`` and ``margin``)."""
        if problem.objective == "max_profit":
            return cls(pulp.LpMaximize, float(problem.margin), -1.0)
        if problem.objective == "min_spend":
            return cls(pulp.LpMinimize, 0.0, 1.0)
        return cls(pulp.LpMaximize, 1.0, 0.0)


class SparseRows:
    """General rows ``lower ≤ Σ a·col ≤ upper`` kept as arrays, like :class:`CurveRows`.

    Columns are positions in ``cols`` (a list of PuLP variables); rows come in blocks of
    ``k`` entries each (or in CSR form), and travel to HiGHS in one ``addRows`` call through
    :class:`optimizer.highs.BulkHiGHS`. The multi-period planner keeps its carryover
    recursion, hypograph and pacing-change rows here. Rows with a ``lower == upper`` are
    equalities; a row is never finite on both sides otherwise (write two rows).
    """

    def __init__(self, cols: list):
        self.cols = cols
        self.blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.count = 0
        self.duals: np.ndarray | None = None
        self.col_values: np.ndarray | None = None
        self.constraints: list | None = None

    def __len__(self) -> int:
        return self.count

    def add(self, lower, upper, idx, val, k: int) -> np.ndarray:
        """Rows of ``k`` entries each (``idx``/``val`` shaped (rows, k)); returns their positions."""
        idx = np.asarray(idx, np.int64).reshape(-1, k)
        val = np.asarray(val, float).reshape(-1, k)
        m = idx.shape[0]
        starts = k * np.arange(m, dtype=np.int64)
        return self.add_csr(np.broadcast_to(np.asarray(lower, float), (m,)),
                            np.broadcast_to(np.asarray(upper, float), (m,)), starts, idx.ravel(), val.ravel())

    def add_csr(self, lower, upper, starts, idx, val) -> np.ndarray:
        """Rows of varying length (``starts`` into ``idx``/``val``)."""
        m = len(starts)
        self.blocks.append((np.asarray(lower, float), np.asarray(upper, float), np.asarray(starts, np.int64),
                            np.asarray(idx, np.int64), np.asarray(val, float)))
        rows = self.count + np.arange(m)
        self.count += m
        return rows

    def extend(self, other: "SparseRows") -> None:
        """Append every block of ``other`` (same ``cols``)."""
        for blk in other.blocks:
            self.blocks.append(blk)
            self.count += len(blk[2])

    def _concat(self):
        if not self.blocks:
            z = np.zeros(0)
            return z, z, np.zeros(0, np.int64), np.zeros(0, np.int64), z
        lower = np.concatenate([b[0] for b in self.blocks])
        upper = np.concatenate([b[1] for b in self.blocks])
        offs = np.cumsum([0] + [b[3].size for b in self.blocks[:-1]])
        starts = np.concatenate([b[2] + o for b, o in zip(self.blocks, offs)])
        idx = np.concatenate([b[3] for b in self.blocks])
        val = np.concatenate([b[4] for b in self.blocks])
        return lower, upper, starts, idx, val

    def highs_arrays(self):
        """(lower, upper, starts, index, value), columns by ``var.index`` (set by the solver)."""
        lower, upper, starts, idx, val = self._concat()
        colmap = np.fromiter((v.index for v in self.cols), np.int64, len(self.cols))
        return lower, upper, starts.astype(np.int32), colmap[idx].astype(np.int32), val

    def materialise(self, lp: pulp.LpProblem) -> None:
        """Add the rows to the PuLP model as constraints (slow; other solvers, LP files)."""
        if self.constraints is not None:
            return
        self.constraints = []
        lower, upper, starts, idx, val = self._concat()
        ends = np.append(starts[1:], idx.size)
        for r in range(lower.size):
            expr = pulp.LpAffineExpression([(self.cols[j], a) for j, a in zip(idx[starts[r]:ends[r]].tolist(), val[starts[r]:ends[r]].tolist())])
            lo, up = float(lower[r]), float(upper[r])
            if lo == up:
                con = pulp.LpConstraint(expr, pulp.LpConstraintEQ, f"r{r}", lo)
            elif np.isfinite(up):
                con = pulp.LpConstraint(expr, pulp.LpConstraintLE, f"r{r}", up)
            else:
                con = pulp.LpConstraint(expr, pulp.LpConstraintGE, f"r{r}", lo)
            lp.addConstraint(con)
            self.constraints.append(con)

    def read_solution(self) -> None:
        """Duals and column values from a solve through PuLP (materialised rows)."""
        if self.constraints is not None:
            self.duals = np.array([c.pi if c.pi is not None else np.nan for c in self.constraints])
        self.col_values = np.array([float(v.varValue) if v.varValue is not None else np.nan for v in self.cols])


def lp_var(lp: pulp.LpProblem, name: str, low=None, up=None, cat=pulp.LpContinuous) -> pulp.LpVariable:
    """A variable attached to ``lp`` (PuLP ≥ 3.3 API; older PuLP builds it directly)."""
    if hasattr(lp, "add_variable"):
        return lp.add_variable(name, low, up, cat=cat)
    return pulp.LpVariable(name, low, up, cat=cat)


def register_columns(lp: pulp.LpProblem, variables: list) -> None:
    """Make PuLP know columns that only appear in array rows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if hasattr(lp, "_add_variables"):
            lp._add_variables(variables)
        else:
            lp.addVariables(variables)


@dataclass
class Round:
    """One solved round: the breakpoints and what the solution says about them."""

    points: np.ndarray  # every pair's breakpoints, flattened, with their values and owners
    values: np.ndarray
    owner: np.ndarray
    row_owner: np.ndarray = None  # pair of each hypograph row (hypograph form)
    row_slope: np.ndarray = None
    rows: SparseRows = None
    first_row: int = 0
    sub: Substitution = None  # segment form (after the solve: its reduced costs)
    duals: np.ndarray = None  # hypograph form, after the solve: the rows' duals

    def interpolant(self, z: np.ndarray) -> np.ndarray:
        """Each pair's secant interpolant at ``z`` (the minimum of its segment lines)."""
        out = np.full(z.size, np.inf)
        seg = np.nonzero(self.owner[1:] == self.owner[:-1])[0]
        o = self.owner[seg]
        slope = (self.values[seg + 1] - self.values[seg]) / (self.points[seg + 1] - self.points[seg])
        np.minimum.at(out, o, self.values[seg] + slope * (z[o] - self.points[seg]))
        single = ~np.isfinite(out)
        first = np.searchsorted(self.owner, np.arange(z.size))
        out[single] = self.values[np.minimum(first[single], self.values.size - 1)]
        return out


def hypograph(model, e: np.ndarray, grid, values: np.ndarray | None = None) -> Round:
    """The hypograph rows of every pair on breakpoints ``grid`` = (points, owner, family): pair
    p's return column ``model.y[p]`` under the secants of its curve in column ``e[p]``
    (``values``: the curves at the points, when already known)."""
    pts, owner, family = grid
    v = family_values(family, pts, owner) if values is None else values
    rnd = Round(points=pts, values=v, owner=owner, rows=SparseRows(model.cols))
    rnd.rows.extend(model.fixed)
    seg = np.nonzero(owner[1:] == owner[:-1])[0]
    o = owner[seg]
    slope = (v[seg + 1] - v[seg]) / (pts[seg + 1] - pts[seg])
    # y_p − a_j e_p ≤ v_j − a_j p_j
    first_row = len(rnd.rows)
    rnd.rows.add(-_INF, v[seg] - slope * pts[seg], np.stack([model.curve_y[o], e[o]], axis=1),
                 np.stack([np.ones_like(slope), -slope], axis=1), 2)
    # A pair fixed at one point: y_p ≤ r(p_0).
    single = np.nonzero(np.bincount(owner, minlength=e.size) == 1)[0]
    first = np.searchsorted(owner, single)
    if single.size:
        rnd.rows.add(-_INF, v[first], model.curve_y[single][:, None], np.ones((single.size, 1)), 1)
    rnd.row_owner = np.concatenate([o, single])
    rnd.row_slope = np.concatenate([slope, np.zeros(single.size)])
    rnd.first_row = first_row
    return rnd


class SegmentForm:
    """The curves in segment form, for :class:`optimizer.highs.SegmentHiGHS`.

    Pair p's curve column ``e[p]`` and return column ``model.y[p]`` become
    e_p = p_0 + Σ_j δ_j and y_p = r(p_0) + Σ_j a_j δ_j with 0 ≤ δ_j ≤ p_{j+1} − p_j. Concavity
    (falling slopes a_j) makes the LP fill a pair's segments in order, so y_p is the secant
    interpolant at e_p, as in the hypograph form, and no hypograph row is needed. Other
    columns that are linear in the e's can be substituted too (:meth:`substitute`).
    """

    def __init__(self, model, e: np.ndarray, grid, values: np.ndarray | None = None):
        pts, owner, family = grid
        self.model, self.pts, self.owner = model, pts, owner
        # ``values``: the curves at the points, one column per sample when pair p has several
        # returns y_{p,s} = model.y[p·S + s] (curve samples of the same e_p: one set of segments
        # serves them all, since each sample's secants are filled in the same order).
        V = (family_values(family, pts, owner) if values is None else values).reshape(pts.size, -1)
        S = V.shape[1]
        ys = model.curve_y.reshape(e.size, S)
        seg = np.nonzero(owner[1:] == owner[:-1])[0]
        self.seg_owner = o = owner[seg]
        self.width = pts[seg + 1] - pts[seg]
        slopes = (V[seg + 1] - V[seg]) / self.width[:, None]
        self.values, self.slope = V[:, 0], slopes[:, 0]
        first = np.searchsorted(owner, np.arange(e.size))
        self.q0 = pts[first]
        k = np.arange(seg.size)
        n = len(model.cols)
        self.entries = [(e[o], k, np.ones(seg.size))] + [(ys[o, s], k, slopes[:, s]) for s in range(S)]
        self.offset = np.zeros(n)
        self.offset[e] = self.q0
        self.offset[ys] = V[first]
        self.replaced = np.zeros(n, bool)
        self.replaced[e] = self.replaced[model.curve_y] = True
        self.bound_rows = np.zeros(n, bool)

    def substitute(self, target: np.ndarray, constant: np.ndarray, col: np.ndarray, weight: np.ndarray,
                   pair: np.ndarray) -> None:
        """Columns ``target`` = ``constant`` + Σ_i weight_i · e_{pair_i} over the terms i with
        col_i = that column. Their own bounds become rows: the segments do not imply them."""
        starts = np.searchsorted(self.seg_owner, pair, side="left")
        counts = np.searchsorted(self.seg_owner, pair, side="right") - starts
        seg = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(starts, counts)
        self.entries.append((np.repeat(col, counts), seg, np.repeat(weight, counts)))
        self.offset[target] = constant
        np.add.at(self.offset, col, weight * self.q0[pair])
        self.replaced[target] = True
        self.bound_rows[target] = True

    def round(self) -> Round:
        from scipy import sparse

        rows, cols, vals = (np.concatenate(part) for part in zip(*self.entries))
        M = sparse.csr_matrix((vals, (rows, cols)), shape=(len(self.model.cols), self.width.size))
        sub = Substitution(cols=self.model.cols, M=M, offset=self.offset, replaced=self.replaced,
                           bound_rows=self.bound_rows, width=self.width, owner=self.seg_owner, slope=self.slope)
        return Round(points=self.pts, values=self.values, owner=self.owner, rows=self.model.fixed, sub=sub)


def family_values(family, pts: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Each breakpoint's value on its pair's curve."""
    out = np.empty(pts.size)
    # Evaluate column by column of equal rank within each pair, so every call is one CurveSet pass.
    rank = np.arange(pts.size) - np.searchsorted(owner, owner)
    for r in range(int(rank.max()) + 1 if rank.size else 0):
        sel = np.nonzero(rank == r)[0]
        x = np.zeros(family.n)
        x[owner[sel]] = pts[sel]
        out[sel] = family.response(x)[owner[sel]]
    return out
