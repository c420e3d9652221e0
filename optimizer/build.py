"""Curves → a PuLP model: the hypograph LP (and the MILP pieces for exact S-curves).

For a concave curve r and breakpoints p_0 < … < p_m on the channel's spend interval, the
piecewise-linear interpolant is the minimum of its segment lines, so

    y_c ≤ r(p_j) + a_j · (x_c − p_j)   for every segment j,   a_j = Δr / Δp

makes ``y_c`` at most the interpolant, which never exceeds r (an *inner* approximation). Return
constraints (ROI floor, return target) written on ``y`` therefore also hold on the true curves,
and maximising Σ y pushes each y_c onto its interpolant. No segment variables, no binaries.

S-curves in exact mode: the convex part [lo, inflection] gets incremental segments with
binaries that force them to fill in order; the concave part beyond is a hypograph again.

Every constraint has a stable human name (``budget_total``, ``group_max[content]``, …).
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, field

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulp

from models.curves import ResponseCurve
from optimizer.problem import Problem

logger = logging.getLogger(__name__)

#: Relative margin on return floors (ROI floor, return target), see build_model.
FLOOR_MARGIN = 1e-7


@dataclass
class ConvexPart:
    """The binary-segment representation of an S-curve's convex part, for exact mode."""

    grid: np.ndarray  # breakpoints lo = g_0 < … < g_n = inflection (clipped to the interval)
    values: np.ndarray  # true returns at the grid


@dataclass
class Pieces:
    """How one channel enters the model: its interval, curve and breakpoints."""

    lo: float
    hi: float
    curve: ResponseCurve  # the curve the LP sees (the envelope unless exact)
    breakpoints: np.ndarray  # concave part: secant breakpoints within [start, hi]
    convex: ConvexPart | None = None

    @property
    def start(self) -> float:
        """Where the hypograph part begins."""
        return float(self.convex.grid[-1]) if self.convex is not None else self.lo


@dataclass
class Objective:
    """What the LP optimises: ``sense`` and weights on Σ y and Σ x."""

    sense: int  # pulp.LpMaximize or pulp.LpMinimize
    return_weight: float
    spend_weight: float

    @classmethod
    def for_problem(cls, problem: Problem) -> "Objective":
        if problem.objective == "max_profit":
            return cls(pulp.LpMaximize, float(problem.margin), -1.0)
        if problem.objective == "min_spend":
            return cls(pulp.LpMinimize, 0.0, 1.0)
        return cls(pulp.LpMaximize, 1.0, 0.0)


@dataclass
class Model:
    """A built PuLP model with handles on its variables and named constraints."""

    lp: pulp.LpProblem
    x: list
    y: list
    reserve: pulp.LpVariable
    named: dict[str, pulp.LpConstraint] = field(default_factory=dict)
    slacks: dict[str, pulp.LpVariable] = field(default_factory=dict)
    rows: "CurveRows" = None

    def implied_marginals(self) -> np.ndarray:
        """Each channel's marginal return as the LP prices it (NaN where the solver gave no duals).

        Stationarity in y_c makes the hypograph duals of channel c sum to its objective weight;
        in x_c their slope-weighted sum is the price of spend. Their ratio, a convex combination
        of the active segment slopes, is the marginal return the LP sees.
        """
        out = np.full(len(self.x), np.nan)
        duals = self.rows.duals
        if duals is None:
            return out
        w = np.abs(duals)
        num = np.bincount(self.rows.owner_per_row, weights=w * self.rows.all_slopes, minlength=len(self.x))
        den = np.bincount(self.rows.owner_per_row, weights=w, minlength=len(self.x))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / den, np.nan)


class CurveRows:
    """The hypograph rows ``y − a·x ≤ c`` of every channel, kept as arrays.

    A 1000-channel model has tens of thousands of these rows; building each as a PuLP
    constraint and handing it to HiGHS row by row costs far more than solving. So they are
    handed to HiGHS in one ``addRows`` call (:class:`optimizer.highs.BulkHiGHS`), and become
    ordinary PuLP constraints only for another solver or when the LP file is written.
    """

    def __init__(self):
        self.entries: list[tuple[int, object, object, np.ndarray, np.ndarray]] = []
        self.duals: np.ndarray | None = None
        self.constraints: list | None = None  # set once materialised into PuLP

    def add(self, owner: int, y, x, slopes: np.ndarray, rhs: np.ndarray) -> None:
        self.entries.append((owner, y, x, np.asarray(slopes, float), np.asarray(rhs, float)))

    def __len__(self) -> int:
        return int(sum(e[3].size for e in self.entries))

    @property
    def owner_per_row(self) -> np.ndarray:
        return np.concatenate([np.full(e[3].size, e[0]) for e in self.entries]) if self.entries else np.zeros(0, int)

    @property
    def all_slopes(self) -> np.ndarray:
        return np.concatenate([e[3] for e in self.entries]) if self.entries else np.zeros(0)

    def highs_arrays(self):
        """(lower, upper, starts, index, value) for :class:`optimizer.highs.BulkHiGHS`."""
        upper, starts, idx, val = self.arrays()
        return np.full(upper.size, -np.inf), upper, starts, idx, val

    def arrays(self):
        """(upper, starts, index, value) in HiGHS's row-wise form; columns by ``var.index``."""
        m = len(self)
        upper = np.concatenate([e[4] for e in self.entries]) if m else np.zeros(0)
        idx = np.empty(2 * m, dtype=np.int32)
        val = np.empty(2 * m)
        pos = 0
        for _, y, x, a, _c in self.entries:
            k = a.size
            idx[pos : pos + 2 * k : 2] = y.index
            idx[pos + 1 : pos + 2 * k : 2] = x.index
            val[pos : pos + 2 * k : 2] = 1.0
            val[pos + 1 : pos + 2 * k : 2] = -a
            pos += 2 * k
        starts = np.arange(0, 2 * m, 2, dtype=np.int32)
        return upper, starts, idx, val

    def materialise(self, lp: pulp.LpProblem) -> None:
        """Add the rows to the PuLP model as named constraints (slow; other solvers, LP files)."""
        if self.constraints is not None:
            return
        self.constraints = []
        for owner, y, x, slopes, rhs in self.entries:
            for j, (a, c) in enumerate(zip(slopes.tolist(), rhs.tolist())):
                con = pulp.LpConstraint(pulp.LpAffineExpression([(y, 1.0), (x, -a)]), pulp.LpConstraintLE, f"h{owner}_{y.name}_{j}", c)
                lp.addConstraint(con)
                self.constraints.append(con)

    def read_duals(self) -> None:
        """Collect duals from materialised constraints (after a solve through PuLP)."""
        if self.constraints is not None:
            self.duals = np.array([c.pi if c.pi is not None else np.nan for c in self.constraints])


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
            expr = _expr([(self.cols[j], a) for j, a in zip(idx[starts[r]:ends[r]].tolist(), val[starts[r]:ends[r]].tolist())])
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


def _expr(pairs, constant: float = 0.0) -> pulp.LpAffineExpression:
    return pulp.LpAffineExpression(pairs, constant=constant)


def build_model(
    problem: Problem,
    pieces: list[Pieces],
    objective: Objective,
    *,
    with_roi: bool = True,
    with_target: bool = True,
    elastic: bool = False,
) -> Model:
    """Build the allocation model.

    Parameters
    ----------
    problem
        The validated problem (budget, groups, reserve, floors).
    pieces
        One entry per channel, in ``problem.channels`` order.
    objective
        What to optimise.
    with_roi, with_target
        Include the ROI floor / return target (diagnosis drops them to find the best reachable).
    elastic
        Give every named constraint a non-negative slack and minimise their total, so an
        infeasible problem still solves and the slacks say which constraints conflict.
    """
    lp = pulp.LpProblem("allocation", pulp.LpMinimize if elastic else objective.sense)
    n = len(problem.channels)
    b = problem.budget
    xs, ys = [], []
    for i, piece in enumerate(pieces):
        if elastic:
            # Channel bounds become named constraints so their slack can be reported.
            xs.append(lp_var(lp, f"x{i}", 0))
        else:
            xs.append(lp_var(lp, f"x{i}", piece.lo, piece.hi))
        ys.append(lp_var(lp, f"y{i}"))
    reserve = lp_var(
        lp,
        "reserve",
        0.0 if elastic else problem.reserve_min,
        None if (elastic or problem.reserve_max_share is None) else problem.reserve_max_share * b,
    )
    model = Model(lp=lp, x=xs, y=ys, reserve=reserve, rows=CurveRows())
    with warnings.catch_warnings():
        # Every column must reach HiGHS even when it appears only in the bulk rows (y in the
        # elastic model, whose objective is the slacks); PuLP 3.3 calls addVariables deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        lp.addVariables(xs + ys + [reserve])

    def add(name: str, pairs, sense: int, rhs: float, soft: bool = True) -> None:
        """Add a named constraint ``Σ pairs (sense) rhs``; in elastic mode with a slack."""
        pairs = list(pairs)
        if elastic and soft:
            s = lp_var(lp, f"s{len(model.slacks)}", 0)
            model.slacks[name] = s
            # The slack always relaxes: ≥ gets +s, ≤ gets −s; = gets both directions.
            if sense == pulp.LpConstraintEQ:
                s2 = lp_var(lp, f"s{len(model.slacks)}m", 0)
                model.slacks[name + "#neg"] = s2
                pairs = pairs + [(s, 1.0), (s2, -1.0)]
            else:
                pairs = pairs + [(s, 1.0 if sense == pulp.LpConstraintGE else -1.0)]
        # The LP file shows the human name (ASCII-safe, numbered to stay unique).
        safe = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_")
        con = pulp.LpConstraint(_expr(pairs), sense, f"{safe}_{len(model.named)}", rhs)
        lp.addConstraint(con)
        model.named[name] = con

    # Money: every yuan is either spent or kept in reserve.
    add("budget_total", [(x, 1.0) for x in xs] + [(reserve, 1.0)], pulp.LpConstraintEQ, b, soft=False)
    if elastic:
        add("reserve_min", [(reserve, 1.0)], pulp.LpConstraintGE, problem.reserve_min)
        if problem.reserve_max_share is not None:
            add("reserve_max", [(reserve, 1.0)], pulp.LpConstraintLE, problem.reserve_max_share * b)
        for i, (piece, ch) in enumerate(zip(pieces, problem.channels)):
            add(f"min[{ch.name}]", [(xs[i], 1.0)], pulp.LpConstraintGE, piece.lo)
            add(f"max[{ch.name}]", [(xs[i], 1.0)], pulp.LpConstraintLE, piece.hi)

    for g in problem.group_names:
        members = [(xs[i], 1.0) for i, c in enumerate(problem.channels) if c.group == g]
        spec = problem.group(g)
        if spec.min_share is not None:
            add(f"group_min[{g}]", members, pulp.LpConstraintGE, spec.min_share * b)
        if spec.max_share is not None:
            add(f"group_max[{g}]", members, pulp.LpConstraintLE, spec.max_share * b)

    # Return floors get a hair of margin (FLOOR_MARGIN, relative) so that rounding spends to the
    # cent afterwards cannot push a plan that meets them exactly to a few fen below.
    if with_roi and problem.roi_min is not None:
        rho = problem.roi_min * (1 + FLOOR_MARGIN)
        add("roi_min", [(y, 1.0) for y in ys] + [(x, -rho) for x in xs], pulp.LpConstraintGE, 0.0)
    if with_target and problem.objective == "min_spend" and problem.target_return is not None:
        add("target_return", [(y, 1.0) for y in ys], pulp.LpConstraintGE, problem.target_return * (1 + FLOOR_MARGIN))

    for i, piece in enumerate(pieces):
        _add_curve(model, i, xs[i], ys[i], piece)

    if elastic:
        lp.setObjective(_expr([(s, 1.0 / max(b, 1.0)) for s in model.slacks.values()]))
    else:
        terms = []
        if objective.return_weight:
            terms += [(y, objective.return_weight) for y in ys]
        if objective.spend_weight:
            terms += [(x, objective.spend_weight) for x in xs]
        lp.setObjective(_expr(terms))
    logger.debug("built model: %d channels, %d named rows, %d curve rows", n, lp.numConstraints(), len(model.rows))
    return model


def _hypograph(model: Model, owner: int, y, x, p: np.ndarray, v: np.ndarray, offset: float = 0.0) -> None:
    """Rows ``y ≤ v_j + a_j (x + offset − p_j)``, one per segment of breakpoints ``p``."""
    slopes = np.diff(v) / np.diff(p)
    model.rows.add(owner, y, x, slopes, v[:-1] + slopes * (offset - p[:-1]))


def _add_curve(model: Model, i: int, x, y, piece: Pieces) -> None:
    """Tie y_i to the curve of channel i (hypograph rows, plus binaries for a convex part)."""
    lp = model.lp
    if piece.convex is None:
        p = piece.breakpoints
        v = piece.curve.response(p)
        if p.size == 1:
            y.upBound = float(v[0])
            return
        _hypograph(model, i, y, x, p, v)
        return
    # Exact mode: x = lo + Σ w_j δ_j + u, with δ filled in order (binaries z_j) and u > 0 only
    # once the convex part is full; y ≤ r(lo) + Σ Δr_j δ_j + v, v on the concave part's hypograph.
    g, gv = piece.convex.grid, piece.convex.values
    widths, rises = np.diff(g), np.diff(gv)
    m = widths.size
    deltas = [lp_var(lp, f"d{i}_{j}", 0, 1) for j in range(m)]
    zs = [lp_var(lp, f"z{i}_{j}", 0, 1, cat=pulp.LpBinary) for j in range(m)]
    for j in range(m):
        lp.addConstraint(pulp.LpConstraint(_expr([(zs[j], 1.0), (deltas[j], -1.0)]), pulp.LpConstraintLE, f"zd{i}_{j}", 0))
        if j + 1 < m:
            lp.addConstraint(
                pulp.LpConstraint(_expr([(deltas[j + 1], 1.0), (zs[j], -1.0)]), pulp.LpConstraintLE, f"dz{i}_{j}", 0)
            )
    start = float(g[-1])
    room = max(piece.hi - start, 0.0)
    u = lp_var(lp, f"u{i}", 0, room)
    v = lp_var(lp, f"v{i}")
    if m:
        lp.addConstraint(pulp.LpConstraint(_expr([(u, 1.0), (zs[-1], -room)]), pulp.LpConstraintLE, f"uz{i}", 0))
    lp.addConstraint(
        pulp.LpConstraint(
            _expr([(x, 1.0), (u, -1.0)] + [(d, -w) for d, w in zip(deltas, widths.tolist())]),
            pulp.LpConstraintEQ,
            f"xs{i}",
            float(g[0]),
        )
    )
    lp.addConstraint(
        pulp.LpConstraint(
            _expr([(y, 1.0), (v, -1.0)] + [(d, -r) for d, r in zip(deltas, rises.tolist())]),
            pulp.LpConstraintLE,
            f"ys{i}",
            float(gv[0]),
        )
    )
    p = piece.breakpoints
    if p.size < 2:
        v.upBound = 0.0
        return
    # v ≤ (r(p_j) − r(start)) + a_j ((start + u) − p_j)
    vals = piece.curve.response(p) - float(piece.curve.response(start))
    _hypograph(model, i, v, u, p, vals, offset=start)
