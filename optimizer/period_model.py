"""The plan's LP: a PuLP model with named constraints, for every plan (one horizon is one period).

Variables x, e (where α > 0), y (one return column per pair: a (channel, period) entry; a
channel's after-horizon tail is added onto its last period's curve, of the same effective spend)
and the reserve (:func:`layout`), and every limit a named PuLP constraint under the house names
(``budget_total``, ``min_total[c]``, ``max_total[c]``, ``period_min[p]``, ``period_cap[p]`` /
``period_max[p]``, ``group_min[g]``, ``group_max[g]``, ``roi_min``, ``target_return``; the
elastic model of a diagnosis adds ``bounds[c,p]`` (a one-period plan: ``min[c]``, ``max[c]``),
``reserve_min``, ``reserve_max`` and ``max_change[c,p]``) (:func:`build_period_model`). The
carryover recursion and the pacing-change rows are array rows
(:class:`optimizer.build.SparseRows`).

The curves enter as hypograph rows or segments (:mod:`optimizer.build`); HiGHS gets segments,
and with carryover the spend columns too, x_t = e_t − α e_{t−1} (:func:`segment_round`), so the
recursion rows vanish and what is left are the coupling rows over bounded columns: 1000
channels × 13 periods is an LP of ~120k columns and a handful of rows that the interior-point
method solves in about a second, where the hypograph form (258k rows) took 20.

Exact mode (:class:`ConvexParts`, :func:`add_convex_parts`): an S-curve pair's convex part, up
to its inflection, is a MILP of incremental segments filled in order by binaries; its concave
part beyond is a curve column like any other pair's.
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

from optimizer.build import (
    FLOOR_MARGIN,
    Objective,
    Round,
    SegmentForm,
    SparseRows,
    family_values,
    hypograph,
    lp_var,
    register_columns,
)
from optimizer.highs import SegmentHiGHS, bulk_solver, drop_rows, run_lp
from optimizer.periods import AfterHorizonCurve, Family, PeriodProblem, per_period

_INF = math.inf
#: Segments on each S-curve's convex part in exact mode.
EXACT_CONVEX_SEGMENTS = 96


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
    convex: "ConvexParts | None" = None  # exact mode: the S-curve pairs' convex parts

    def family(self) -> "Family":
        return Family(self.curves, self.tails, self.tail_pair)


@dataclass
class ConvexParts:
    """Exact mode: each S-curve pair's convex part, for the MILP of :func:`add_convex_parts`.

    Such a pair's effective spend ``e`` (its column in the layout's ``e``) is its lowest spend
    plus incremental segments over ``grids[k]`` (up to the curve's inflection, ``grids[k][-1]``),
    filled in order by binaries, plus what lies in the concave part beyond. The refinement only
    sees that concave part: the pair's curve column (``pair_e``) is a column of its own on
    [inflection, top], and its return column there (``curve_y``) is added into the pair's return.
    """

    pairs: np.ndarray
    e: np.ndarray  # each pair's effective-spend column
    grids: list


def layout(problem: PeriodProblem, lo: np.ndarray, hi: np.ndarray, curves, *, exact: bool = False) -> Layout:
    """Columns and pairs of the period LP; S-curves on their concave envelope, or, in ``exact``
    mode, with their convex part as a MILP (:class:`ConvexParts`) and their concave part as usual."""
    if not exact:
        curves = [c if c.is_concave else c.envelope() for c in curves]
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
    # An S-curve's after-horizon tail has inflections all along its range: exact mode plans the
    # tail (return after the horizon) on its envelope, and the horizon's own curve exactly.
    tails = [AfterHorizonCurve(curves[i], problem.channels[i].alpha, problem.channels[i].tail_efficiency).envelope()
             for i in tail_channels]
    L = Layout(
        n_cols=n, x=x, e=e, reserve=reserve, tail_pair=tail_channels * T + T - 1,
        col_lower=col_lower, col_upper=col_upper, pair_e=e.ravel().copy(), pair_lo=elo.ravel(),
        pair_hi=np.maximum(ehi.ravel(), elo.ravel()), curves=pair_curves, tails=tails,
    )
    if exact:
        _split_convex_parts(L)
    return L


def _split_convex_parts(L: Layout) -> None:
    """Give every S-curve pair whose interval starts below its inflection a convex part (a grid
    of EXACT_CONVEX_SEGMENTS segments, knots of a points curve included) and a curve column of
    its own for the concave part beyond."""
    pairs, grids = [], []
    for p, curve in enumerate(L.curves):
        a, b = float(L.pair_lo[p]), float(L.pair_hi[p])
        start = min(max(curve.concave_from, a), b)
        if curve.is_concave or start <= a:
            continue
        grid = a + (start - a) * np.linspace(0.0, 1.0, EXACT_CONVEX_SEGMENTS + 1)
        knots = curve.knots()
        if knots is not None:
            grid = np.unique(np.concatenate([grid, knots[(knots > a) & (knots < start)]]))
        pairs.append(p)
        grids.append(grid)
    if not pairs:
        return
    pairs = np.array(pairs)
    L.convex = ConvexParts(pairs=pairs, e=L.pair_e[pairs].copy(), grids=grids)
    new = L.n_cols + np.arange(pairs.size)
    L.n_cols += pairs.size
    L.col_lower = np.append(L.col_lower, [g[-1] for g in grids])
    L.col_upper = np.append(L.col_upper, L.pair_hi[pairs])
    L.pair_e[pairs] = new
    L.pair_lo = L.pair_lo.copy()
    L.pair_lo[pairs] = [g[-1] for g in grids]


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
    curve_y: np.ndarray = None  # the return column each pair's curve form ties (y, or its concave part's)

    def __post_init__(self):
        if self.curve_y is None:
            self.curve_y = self.y


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
    if L.convex is not None:
        names[L.pair_e[L.convex.pairs]] = [f"k_{p}" for p in L.convex.pairs.tolist()]
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
    if L.convex is not None:
        add_convex_parts(model, L)

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
                # A one-period plan names its channel's interval as the single-horizon model did.
                low, high = ((f"min[{ch.name}]", f"max[{ch.name}]") if problem.origin is not None
                             else (f"bounds[{ch.name},{label}]",) * 2)
                if ent_lo[j] > 0:
                    add(low, [(cols[j], 1.0)], GE, ent_lo[j], f"{low}#lo")
                if ent_hi[j] < b - problem.reserve_min:
                    add(high, [(cols[j], 1.0)], LE, ent_hi[j], f"{high}#hi")
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


def add_convex_parts(model: PeriodModel, L: Layout) -> None:
    """Exact mode's MILP for the S-curve pairs (:class:`ConvexParts`), as incremental segments.

    e = g_0 + Σ_j δ_j + (k − g_m), with segments 0 ≤ δ_j ≤ w_j (money, so that the solver's
    tolerances are in money too) filled in order (binary z_j: w_j z_j ≤ δ_j and
    δ_{j+1} ≤ w_{j+1} z_j) and the concave part's column k above g_m only once the convex part is
    full; the pair's return y ≤ r(g_0) + Σ_j a_j δ_j + (y_k − r(g_m)) with a_j = Δr_j / w_j,
    where y_k is the concave part's return, tied to k by the curve form like any other pair's.
    """
    lp, cols = model.lp, model.cols
    family = L.family()
    model.curve_y = model.y.copy()
    LE, EQ = pulp.LpConstraintLE, pulp.LpConstraintEQ

    def row(name, terms, sense, rhs):
        lp.addConstraint(pulp.LpConstraint(pulp.LpAffineExpression(terms), sense, name, rhs))

    for p, e, g in zip(L.convex.pairs.tolist(), L.convex.e.tolist(), L.convex.grids):
        v = family_values(family, g, np.full(g.size, p))
        k, y = cols[L.pair_e[p]], cols[model.y[p]]
        y_k = lp_var(lp, f"yk_{p}")
        model.curve_y[p] = len(cols)
        cols.append(y_k)
        widths = np.diff(g).tolist()
        slopes = (np.diff(v) / np.diff(g)).tolist()
        m = len(widths)
        d = [lp_var(lp, f"d_{p}_{j}", 0, widths[j]) for j in range(m)]
        z = [lp_var(lp, f"z_{p}_{j}", 0, 1, cat=pulp.LpBinary) for j in range(m)]
        for j in range(m):
            row(f"zd_{p}_{j}", [(z[j], widths[j]), (d[j], -1.0)], LE, 0.0)
            if j + 1 < m:
                row(f"dz_{p}_{j}", [(d[j + 1], 1.0), (z[j], -widths[j + 1])], LE, 0.0)
        room = float(L.pair_hi[p] - g[-1])
        row(f"kz_{p}", [(k, 1.0), (z[-1], -room)], LE, float(g[-1]))
        row(f"es_{p}", [(cols[e], 1.0), (k, -1.0)] + [(dj, -1.0) for dj in d], EQ, float(g[0] - g[-1]))
        row(f"ys_{p}", [(y, 1.0), (y_k, -1.0)] + [(dj, -a) for dj, a in zip(d, slopes)], LE, float(v[0] - v[-1]))


def period_max_name(cap: float, high: float) -> str:
    """``period_cap`` when the cash cap sets a period's maximum, else ``period_max`` (its share)."""
    return "period_cap" if cap <= high + 1e-9 else "period_max"


def segment_round(problem: PeriodProblem, model: PeriodModel, L: Layout, grid) -> Round:
    """The period LP's curves in segment form; with carryover the spend columns go too,
    x_t = e_t − α e_{t−1} (the recursion rows then vanish)."""
    form = SegmentForm(model, L.pair_e, grid)
    C, T = L.x.shape
    alpha = np.array([c.alpha for c in problem.channels])
    if L.convex is not None:  # an S-curve pair's segments are its concave part's, not its effective spend's
        alpha[np.unique(L.convex.pairs // T)] = 0.0
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
