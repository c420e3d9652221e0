"""The period plan's LP: a PuLP model with named constraints, and the curves in two forms.

The LP is a PuLP model, as in :mod:`optimizer.build`: variables x, e (where α > 0), y (one
return column per pair: a (channel, period) entry; a channel's after-horizon tail is added onto
its last period's curve, of the same effective spend) and the reserve, and every limit a named
PuLP constraint under the house names (``budget_total``, ``min_total[c]``, ``max_total[c]``,
``period_min[p]``, ``period_cap[p]`` / ``period_max[p]``, ``group_min[g]``, ``group_max[g]``,
``roi_min``, ``target_return``; the elastic model of a diagnosis adds ``bounds[c,p]``,
``reserve_min``, ``reserve_max`` and ``max_change[c,p]``). The carryover recursion and the
pacing-change rows are array rows (:class:`optimizer.build.SparseRows`).

Each pair's curve has two equivalent LP forms on the same breakpoints p_j (values v_j, slopes
a_j). The readable *hypograph* form, ``y_p − a_j e_p ≤ v_j − a_j p_j``, is what ``lp_path``
writes, what CBC solves when HiGHS is missing, and what the small diagnosis LPs use. HiGHS
gets the *segment* form (:class:`SegmentForm`, :class:`optimizer.highs.SegmentHiGHS`): e, y
and, with carryover, x = e_t − α e_{t−1} are written in the segment lengths
0 ≤ δ_j ≤ p_{j+1} − p_j, so the recursion rows vanish, no hypograph row exists, and what is
left are the coupling rows (one, the budget, when nothing else couples the pairs) over bounded
columns; the spend bounds of carryover channels are rows added only when a solution breaks
them. 1000 channels × 13 periods is then an LP of ~120k columns and a handful of rows that the
interior-point method solves in about a second, where the hypograph form (258k rows) took 20.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulp

from optimizer.build import FLOOR_MARGIN, Objective, SparseRows, lp_var, register_columns
from optimizer.highs import SegmentHiGHS, Substitution, bulk_solver, drop_rows, run_lp
from optimizer.periods import AfterHorizonCurve, Family, PeriodProblem, per_period

_INF = math.inf


@dataclass
class Layout:
    """Column indices of the LP and the pairs (horizon entries, then tails) that carry curves."""

    n_cols: int
    x: np.ndarray  # channels × periods
    e: np.ndarray  # channels × periods (== x where α = 0)
    reserve: int
    tail_pair: np.ndarray  # the pair (each such channel's last period) that carries the tail
    col_lower: np.ndarray
    col_upper: np.ndarray
    pair_e: np.ndarray  # e column of each pair
    pair_lo: np.ndarray  # interval of e each pair can take
    pair_hi: np.ndarray
    curves: list  # per pair, the curve the LP sees (the tails come on top, see Family)
    tails: list

    def family(self) -> "Family":
        return Family(self.curves, self.tails, self.tail_pair)


def layout(problem: PeriodProblem, lo: np.ndarray, hi: np.ndarray, curves) -> Layout:
    C, T = lo.shape
    alpha = np.array([c.alpha for c in problem.channels])
    e0 = np.array([c.carryover for c in problem.channels], dtype=float)
    x = np.arange(C * T).reshape(C, T)
    n = C * T
    carry = alpha > 0
    e = x.copy()
    k = int(carry.sum())
    e[carry] = n + np.arange(k * T).reshape(k, T)
    n += k * T
    tail_channels = np.nonzero(carry)[0] if problem.count_after_horizon else np.zeros(0, int)
    reserve = n
    n += 1
    # Interval of effective spend: the recursion applied to the spend bounds.
    elo, ehi = np.empty((C, T)), np.empty((C, T))
    pl, ph = alpha * e0, alpha * e0
    for t in range(T):
        pl = lo[:, t] + pl
        ph = hi[:, t] + ph
        elo[:, t], ehi[:, t] = pl, ph
        pl, ph = alpha * pl, alpha * ph
    col_lower = np.full(n, -_INF)
    col_upper = np.full(n, _INF)
    col_lower[x.ravel()], col_upper[x.ravel()] = lo.ravel(), hi.ravel()
    col_lower[e[carry].ravel()], col_upper[e[carry].ravel()] = elo[carry].ravel(), ehi[carry].ravel()
    col_lower[reserve] = problem.reserve_min
    if problem.reserve_max_share is not None:
        col_upper[reserve] = problem.reserve_max_share * problem.budget
    eff = problem.efficiency()
    pair_curves = [curves[i].scaled(float(eff[i, t])) for i in range(C) for t in range(T)]
    tails = [AfterHorizonCurve(curves[i], problem.channels[i].alpha, problem.channels[i].tail_efficiency) for i in tail_channels]
    return Layout(
        n_cols=n, x=x, e=e, reserve=reserve, tail_pair=tail_channels * T + T - 1,
        col_lower=col_lower, col_upper=col_upper, pair_e=e.ravel(), pair_lo=elo.ravel(),
        pair_hi=np.maximum(ehi.ravel(), elo.ravel()), curves=pair_curves, tails=tails,
    )


@dataclass
class PeriodModel:
    """The period LP as a PuLP model: variables, named constraints and the array rows.

    ``cols`` lists the PuLP variables in column order: the layout's columns (x, e, reserve),
    then one return column y per pair. The carryover recursion and the pacing-change rows are
    fixed (``fixed``); the hypograph rows change with the breakpoints every round and are
    added by :func:`solve_period_model`.
    """

    lp: pulp.LpProblem
    cols: list
    y: np.ndarray  # column of each pair's return
    fixed: SparseRows
    named: dict[str, pulp.LpConstraint] = field(default_factory=dict)
    slacks: dict[str, tuple] = field(default_factory=dict)  # key -> (slack variable, display name, side)
    return_weight: float = 1.0
    spend_weight: float = 0.0


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


def build_period_model(problem: PeriodProblem, L: Layout, carry_base: float, *, objective: Objective | None = None,
           with_floors: bool = True, elastic: bool = False, floor_margin: float = FLOOR_MARGIN,
           samples: int = 1) -> PeriodModel:
    """Variables, named constraints and the fixed array rows of the period LP.

    ``y_p`` is the return of pair p (a (channel, period) entry; the after-horizon tail rides on
    the last period's); hypograph rows or segments (:func:`hypograph`, :class:`SegmentForm`)
    keep it at most the secant interpolant of the pair's curve of e_p. Returns are
    incremental, so the return floors read Σ y − carryover return ≥ ….

    With ``samples`` S > 1 (curve samples, :mod:`optimizer.risk`) every pair has S returns
    y_{p,s} (index p·S + s), one per sample curve of the same e_p, and the objective and the
    floors take their mean; ``carry_base`` is then the mean base too.
    """
    C, T = L.x.shape
    b = problem.budget
    n_pairs = L.pair_e.size
    obj = objective or Objective.for_problem(problem)
    lp = pulp.LpProblem("periods", pulp.LpMinimize if elastic else obj.sense)
    names = np.empty(L.n_cols, dtype=object)
    names[L.x.ravel()] = [f"x_{i}_{t}" for i in range(C) for t in range(T)]
    alpha = np.array([c.alpha for c in problem.channels])
    carry = np.nonzero(alpha > 0)[0]
    if carry.size:
        names[L.e[carry].ravel()] = [f"e_{i}_{t}" for i in carry.tolist() for t in range(T)]
    names[L.reserve] = "reserve"
    lower, upper = L.col_lower.copy(), L.col_upper.copy()
    xs = L.x.ravel()
    if elastic:
        # Entry bounds and the reserve become rows so their slack can be reported; e follows x.
        ent_lo, ent_hi = lower[xs].copy(), upper[xs].copy()
        lower[xs], upper[xs] = 0.0, _INF
        r_lo, r_hi = lower[L.reserve], upper[L.reserve]
        lower[L.reserve], upper[L.reserve] = 0.0, _INF
        ecols = L.e[carry].ravel()
        lower[ecols], upper[ecols] = -_INF, _INF
    cols = [lp_var(lp, nm, None if not math.isfinite(lo) else float(lo), None if not math.isfinite(up) else float(up))
            for nm, lo, up in zip(names.tolist(), lower.tolist(), upper.tolist())]
    S = samples
    ycols = [lp_var(lp, f"y_{p}" if S == 1 else f"y_{p}_{s}") for p in range(n_pairs) for s in range(S)]
    y = L.n_cols + np.arange(n_pairs * S)
    cols += ycols
    register_columns(lp, cols)  # columns that only appear in array rows must be known to PuLP
    model = PeriodModel(lp=lp, cols=cols, y=y, fixed=SparseRows(cols),
                   return_weight=obj.return_weight, spend_weight=obj.spend_weight)
    X = [cols[j] for j in xs]

    def add(name: str, pairs, sense: int, rhs: float, key: str | None = None) -> None:
        key = key or name
        pairs = list(pairs)
        if elastic:
            s = lp_var(lp, f"s{len(model.slacks)}", 0)
            side = "lo" if sense == pulp.LpConstraintGE else "hi"
            model.slacks[key] = (s, name, side)
            pairs.append((s, 1.0 if sense == pulp.LpConstraintGE else -1.0))
        safe = re.sub(r"[^A-Za-z0-9_]", "_", key).strip("_")
        con = pulp.LpConstraint(pulp.LpAffineExpression(pairs), sense, f"{safe}_{len(model.named)}", rhs)
        lp.addConstraint(con)
        model.named[key] = con

    GE, LE = pulp.LpConstraintGE, pulp.LpConstraintLE
    # Money: every yuan is spent or kept in reserve.
    budget = [(v, 1.0) for v in X] + [(cols[L.reserve], 1.0)]
    con = pulp.LpConstraint(pulp.LpAffineExpression(budget), pulp.LpConstraintEQ, "budget_total_0", b)
    lp.addConstraint(con)
    model.named["budget_total"] = con
    if elastic:
        add("reserve_min", [(cols[L.reserve], 1.0)], GE, r_lo)
        if math.isfinite(r_hi):
            add("reserve_max", [(cols[L.reserve], 1.0)], LE, r_hi)
        for i, ch in enumerate(problem.channels):
            for t, label in enumerate(problem.periods):
                j = L.x[i, t]
                if ent_lo[j] > 0:
                    add(f"bounds[{ch.name},{label}]", [(cols[j], 1.0)], GE, ent_lo[j], f"bounds[{ch.name},{label}]#lo")
                if ent_hi[j] < b - problem.reserve_min:
                    add(f"bounds[{ch.name},{label}]", [(cols[j], 1.0)], LE, ent_hi[j], f"bounds[{ch.name},{label}]#hi")
    for i, ch in enumerate(problem.channels):
        row = [(cols[j], 1.0) for j in L.x[i].tolist()]
        if ch.min_total is not None:
            add(f"min_total[{ch.name}]", row, GE, ch.min_total)
        if ch.max_total is not None:
            add(f"max_total[{ch.name}]", row, LE, ch.max_total)
    p_lo, p_hi = problem.period_limits()
    caps = per_period(problem.pacing.cap, T, _INF)
    for t, label in enumerate(problem.periods):
        col = [(cols[j], 1.0) for j in L.x[:, t].tolist()]
        if p_lo[t] > 0:
            add(f"period_min[{label}]", col, GE, p_lo[t])
        if math.isfinite(p_hi[t]):
            add(f"{period_max_name(caps[t], p_hi[t])}[{label}]", col, LE, p_hi[t])
    for g in problem.group_names:
        spec = problem.group(g)
        members = [(cols[j], 1.0) for i, c in enumerate(problem.channels) if c.group == g for j in L.x[i].tolist()]
        if spec.min_share is not None:
            add(f"group_min[{g}]", members, GE, spec.min_share * b)
        if spec.max_share is not None:
            add(f"group_max[{g}]", members, LE, spec.max_share * b)
    # Carryover recursion (equalities): e_t − x_t − α e_{t−1} = α e0 at t = 0, else 0.
    e0 = np.array([c.carryover for c in problem.channels], dtype=float)
    if carry.size:
        rhs = alpha[carry] * e0[carry]
        model.fixed.add(rhs, rhs, np.stack([L.e[carry, 0], L.x[carry, 0]], axis=1),
                        np.tile([1.0, -1.0], (carry.size, 1)), 2)
        if T > 1:
            idx = np.stack([L.e[carry, 1:], L.x[carry, 1:], L.e[carry, :-1]], axis=2).reshape(-1, 3)
            val = np.stack([np.ones((carry.size, T - 1)), -np.ones((carry.size, T - 1)),
                            np.repeat(-alpha[carry][:, None], T - 1, axis=1)], axis=2).reshape(-1, 3)
            model.fixed.add(0.0, 0.0, idx, val, 3)
    # Pacing: change between consecutive periods.
    frac, absolute = problem.change_limits()
    if T > 1:
        for kind, chans in (("frac", np.nonzero(np.isfinite(frac))[0]), ("abs", np.nonzero(np.isfinite(absolute))[0])):
            if not chans.size:
                continue
            idx = np.stack([L.x[chans, 1:], L.x[chans, :-1]], axis=2).reshape(-1, 2)
            lim = np.repeat((frac if kind == "frac" else absolute)[chans], T - 1)
            if kind == "frac":  # x_t − (1+f) x_{t−1} ≤ 0  and  x_t − (1−f) x_{t−1} ≥ 0
                up = (-_INF, 0.0, np.stack([np.ones_like(lim), -(1 + lim)], axis=1))
                down = (0.0, _INF, np.stack([np.ones_like(lim), -(1 - lim)], axis=1))
            else:  # −a ≤ x_t − x_{t−1} ≤ a, as two rows
                ones = np.tile([1.0, -1.0], (idx.shape[0], 1))
                up, down = (-_INF, lim, ones), (-lim, _INF, ones)
            if elastic:  # named, so the elastic model can say which change limit gives way
                labels = [f"max_change[{problem.channels[i].name},{problem.periods[t]}]" for i in chans.tolist() for t in range(1, T)]
                for (lo_, up_, val), sense, tag in ((up, LE, "+"), (down, GE, "-")):
                    rhs = np.broadcast_to(np.asarray(up_ if sense == LE else lo_, float), (idx.shape[0],))
                    for r, name in enumerate(labels):
                        add(name, [(cols[idx[r, 0]], val[r, 0]), (cols[idx[r, 1]], val[r, 1])], sense, float(rhs[r]),
                            f"{name}{tag}{kind}")
            else:
                for lo_, up_, val in (up, down):
                    model.fixed.add(lo_, up_, idx, val, 2)
    Y = [(v, 1.0 / S) for v in ycols]
    # Return floors get a hair of margin (FLOOR_MARGIN, as in optimizer.build) so that rounding
    # spends to the cent cannot push the plan under them (more when it did: see optimize_periods).
    if with_floors and problem.roi_min is not None:
        add("roi_min", Y + [(v, -problem.roi_min * (1 + floor_margin)) for v in X], GE, carry_base)
    if with_floors and problem.objective == "min_spend" and problem.target_return is not None:
        add("target_return", Y, GE, problem.target_return * (1 + floor_margin) + carry_base)
    if elastic:
        # Where several limits could give way by the same amount, name the change limit: pacing
        # smooths a plan, the other limits are money the planner has or must spend.
        lp.setObjective(pulp.LpAffineExpression([(s, 0.999 if name.startswith("max_change[") else 1.0)
                                                 for s, name, _ in model.slacks.values()]))
    else:
        terms = []
        if obj.return_weight:
            terms += [(v, obj.return_weight / S) for v in ycols]
        if obj.spend_weight:
            terms += [(v, obj.spend_weight) for v in X]
        lp.setObjective(pulp.LpAffineExpression(terms))
    return model


def period_max_name(cap: float, high: float) -> str:
    """``period_cap`` when the cash cap sets a period's maximum, else ``period_max`` (its share)."""
    return "period_cap" if cap <= high + 1e-9 else "period_max"


def hypograph(model: PeriodModel, e: np.ndarray, grid, values: np.ndarray | None = None) -> Round:
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
    rnd.rows.add(-_INF, v[seg] - slope * pts[seg], np.stack([model.y[o], e[o]], axis=1),
                 np.stack([np.ones_like(slope), -slope], axis=1), 2)
    # A pair fixed at one point: y_p ≤ r(p_0).
    single = np.nonzero(np.bincount(owner, minlength=e.size) == 1)[0]
    first = np.searchsorted(owner, single)
    if single.size:
        rnd.rows.add(-_INF, v[first], model.y[single][:, None], np.ones((single.size, 1)), 1)
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

    def __init__(self, model: PeriodModel, e: np.ndarray, grid, values: np.ndarray | None = None):
        pts, owner, family = grid
        self.model, self.pts, self.owner = model, pts, owner
        # ``values``: the curves at the points, one column per sample when pair p has several
        # returns y_{p,s} = model.y[p·S + s] (curve samples of the same e_p: one set of segments
        # serves them all, since each sample's secants are filled in the same order).
        V = (family_values(family, pts, owner) if values is None else values).reshape(pts.size, -1)
        S = V.shape[1]
        ys = model.y.reshape(e.size, S)
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
        self.replaced[e] = self.replaced[model.y] = True
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


def segment_round(problem: PeriodProblem, model: PeriodModel, L: Layout, grid) -> Round:
    """The period LP's curves in segment form; with carryover the spend columns go too,
    x_t = e_t − α e_{t−1} (the recursion rows then vanish)."""
    form = SegmentForm(model, L.pair_e, grid)
    C, T = L.x.shape
    alpha = np.array([c.alpha for c in problem.channels])
    carry = np.nonzero(alpha > 0)[0]
    if carry.size:
        e0 = np.array([c.carryover for c in problem.channels])
        xs = L.x[carry]
        pairs = carry[:, None] * T + np.arange(T)[None, :]
        constant = np.zeros((carry.size, T))
        constant[:, 0] = -alpha[carry] * e0[carry]
        col = np.concatenate([xs.ravel(), xs[:, 1:].ravel()])
        weight = np.concatenate([np.ones(xs.size), np.repeat(-alpha[carry], T - 1)])
        pair = np.concatenate([pairs.ravel(), pairs[:, :-1].ravel()])
        form.substitute(xs.ravel(), constant.ravel(), col, weight, pair)
    return form.round()


def solve_period_model(model: PeriodModel, e: np.ndarray, rnd: Round, lp_path: str | None = None, options: dict | None = None):
    """Solve with HiGHS through PuLP (segment form, or hypograph rows in bulk), or CBC when
    HiGHS is missing (hypograph rows as PuLP constraints); ``e`` are the pairs' curve columns.
    ``lp_path`` writes the LP in hypograph form through PuLP.

    Returns (status, column values, seconds, solver name); the round gets the duals of its
    hypograph rows or the reduced costs of its segments.
    """
    rows = rnd.rows
    if lp_path:
        write_lp(model, e, rnd, lp_path)
    opts = {} if options is None else options
    if rnd.sub is not None and pulp.HiGHS().available():
        solver = SegmentHiGHS(rows, rnd.sub, msg=False, **opts)  # it picks the method by the LP's size
    else:
        if rnd.sub is not None:  # no HiGHS: the hypograph rows, for CBC
            hyp = hypograph(model, e, (rnd.points, rnd.owner, None), rnd.values)
            rnd.sub, rnd.rows, rnd.row_owner, rnd.row_slope, rnd.first_row = None, hyp.rows, hyp.row_owner, hyp.row_slope, hyp.first_row
            rows = rnd.rows
        solver = bulk_solver(model.lp, rows, opts)
    try:
        status, seconds = run_lp(model.lp, solver)
    finally:
        if rows.constraints is not None:
            rows.read_solution()
            drop_rows(model.lp, rows)
    if status != "optimal":
        return status, None, seconds, solver.name
    if rnd.sub is None and rows.duals is not None:
        rnd.duals = rows.duals[rnd.first_row: rnd.first_row + rnd.row_owner.size]
    return "optimal", rows.col_values, seconds, solver.name


def write_lp(model: PeriodModel, e: np.ndarray, rnd: Round, path: str) -> None:
    """Write a round's LP through PuLP, curves as hypograph rows (readable, whatever form HiGHS got)."""
    rows = rnd.rows if rnd.sub is None else hypograph(model, e, (rnd.points, rnd.owner, None), rnd.values).rows
    rows.materialise(model.lp)
    model.lp.writeLP(path)
    drop_rows(model.lp, rows)


def family_values(family: Family, pts: np.ndarray, owner: np.ndarray) -> np.ndarray:
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
