"""Money to the cent: a plan's spends rounded to whole cents so that spend + reserve = budget exactly.

One rounding, :func:`period_to_cents`, for every plan (a single-horizon plan is a plan of one
period): rounded down, so every upper limit holds, then the cents handed back largest
remainder first to entries where a cent breaks no limit (channel totals, periods, groups,
reserve and the change limits between periods), then lower limits left short are repaired.

Also here: :func:`json_cents` (money in the JSON contract: to the cent, never ``-0``) and
:func:`clamp_cent` (a reserve within a cent below zero is zero).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from optimizer.periods import PeriodProblem


def json_cents(v: float | None) -> float | None:
    """Money for JSON: rounded to the cent, never ``-0.0`` (None and non-finite pass through)."""
    if v is None:
        return None
    return round(float(v), 2) + 0.0  # + 0.0 turns -0.0 into 0.0


def clamp_cent(reserve: float) -> float:
    """A reserve within a cent below zero is float noise in a plan that spends the whole budget: 0."""
    return 0.0 if -0.01 <= reserve <= 0.0 else float(reserve)


def period_to_cents(problem: PeriodProblem, lo: np.ndarray, hi: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Round a plan (channels × periods) to whole cents; spend + reserve = budget exactly.

    Every entry is first rounded down (so every upper limit the LP respected still holds), then
    change limits between periods that rounding broke are repaired, then the cents lost are
    handed back one at a time, largest remainder first, to entries where a cent breaks no
    upper limit (entry, channel total, period, group, reserve, change between periods); last,
    lower limits that rounding left short get cents the same way.
    """
    C, T = x.shape
    b = problem.budget
    lo_c = np.ceil(lo * 100 - 1e-6).astype(np.int64)
    hi_c = np.maximum(np.floor(hi * 100 + 1e-6).astype(np.int64), lo_c)
    raw = x * 100
    cents = np.clip(np.floor(raw + 1e-6).astype(np.int64), lo_c, hi_c)
    budget_c = int(round(b * 100))
    total_hi = budget_c - math.ceil(problem.reserve_min * 100 - 1e-6)
    total_lo = 0 if problem.reserve_max_share is None else budget_c - math.floor(problem.reserve_max_share * b * 100 + 1e-6)
    big = 2**62  # "no limit" in cents
    row_hi = np.array([math.floor(c.max_total * 100 + 1e-6) if c.max_total is not None else big for c in problem.channels], dtype=np.int64)
    row_lo = np.array([math.ceil(c.min_total * 100 - 1e-6) if c.min_total is not None else 0 for c in problem.channels])
    p_lo, p_hi = problem.period_limits()
    col_hi = np.array([math.floor(v * 100 + 1e-6) if math.isfinite(v) else big for v in p_hi], dtype=np.int64)
    col_lo = np.ceil(p_lo * 100 - 1e-6).astype(np.int64)
    names = problem.group_names
    gidx = np.array([names.index(c.group) for c in problem.channels])
    g_hi = np.array([math.floor(problem.group(g).max_share * b * 100 + 1e-6) if problem.group(g).max_share is not None else big for g in names], dtype=np.int64)
    g_lo = np.array([math.ceil(problem.group(g).min_share * b * 100 - 1e-6) if problem.group(g).min_share is not None else 0 for g in names])
    frac, absolute = problem.change_limits()
    row, col = cents.sum(axis=1), cents.sum(axis=0)
    grp = np.bincount(gidx, row, minlength=len(names)).astype(np.int64)
    total = int(cents.sum())

    def change_ok(i, t, v):
        """Would entry (i, t) at v cents keep the change limits with both neighbours?"""
        for a, c in ((t - 1, t), (t, t + 1)):
            if a < 0 or c >= T:
                continue
            va = v if a == t else cents[i, a]
            vc = v if c == t else cents[i, c]
            if math.isfinite(frac[i]) and abs(vc - va) > frac[i] * va + 1e-6:
                # Breaking a link is refused, and so is widening one already broken.
                old = abs(cents[i, c] - cents[i, a]) - frac[i] * cents[i, a]
                if abs(vc - va) - frac[i] * va > old - 1e-9:
                    return False
            if math.isfinite(absolute[i]) and abs(vc - va) > absolute[i] * 100 + 1e-6:
                return False
        return True

    def room(i, t):  # a cent more at (i, t) breaks no upper limit but perhaps a change limit
        g = gidx[i]
        return cents[i, t] < hi_c[i, t] and row[i] < row_hi[i] and col[t] < col_hi[t] and grp[g] < g_hi[g] and total < total_hi

    def can_add(i, t):
        return room(i, t) and change_ok(i, t, cents[i, t] + 1)

    def add(i, t):
        nonlocal total
        cents[i, t] += 1
        row[i] += 1
        col[t] += 1
        grp[gidx[i]] += 1
        total += 1

    def can_take(i, t):
        g = gidx[i]
        return cents[i, t] > lo_c[i, t] and row[i] > row_lo[i] and col[t] > col_lo[t] and grp[g] > g_lo[g] and total > total_lo

    def take(i, t):
        nonlocal total
        cents[i, t] -= 1
        row[i] -= 1
        col[t] -= 1
        grp[gidx[i]] -= 1
        total -= 1

    def make_room(i, t, keep_out=None) -> bool:
        """Free a cent for (i, t) under the budget, period, group or channel cap that blocks it,
        taking it from another entry under the same caps (rounded up the most first, never one
        in ``keep_out``) where that breaks no limit."""
        if cents[i, t] >= hi_c[i, t]:
            return False
        g = gidx[i]
        scope = cents > lo_c
        if keep_out is not None:
            scope &= ~np.broadcast_to(keep_out, scope.shape)
        if col[t] >= col_hi[t]:
            scope[:, np.arange(T) != t] = False
        if grp[g] >= g_hi[g]:
            scope[gidx != g, :] = False
        if row[i] >= row_hi[i]:
            scope[np.arange(C) != i, :] = False
        scope[i, t] = False
        cand = np.argwhere(scope)
        if not cand.size:
            return False
        over = (cents - raw)[cand[:, 0], cand[:, 1]]
        for j, u in cand[np.argsort(-over, kind="stable")[:500]].tolist():
            if can_take(j, u) and change_ok(j, u, cents[j, u] - 1):
                take(j, u)
                return True
        return False

    def raise_to(i, t, need) -> None:
        while cents[i, t] < need and (room(i, t) or (make_room(i, t) and room(i, t))):
            add(i, t)

    # Lower limits rounded up to whole cents can take the total past what the minimum reserve
    # leaves: take those cents back where a cent breaks no lower limit, rounded up the most first.
    for k in np.argsort(-(cents - raw).ravel(), kind="stable").tolist() if total > total_hi else []:
        i, t = divmod(k, T)
        while total > total_hi and can_take(i, t) and change_ok(i, t, cents[i, t] - 1):
            take(i, t)
        if total <= total_hi:
            break
    # Change limits between periods (ratio and absolute): rounding both ends down can break
    # them, and along a chain of periods each at its limit (spend growing by the most it may,
    # period after period) the shortfall compounds. The LP's plan keeps every limit, so
    # rounding the earlier end of each link up where the later one needs it (backwards for
    # rises, forwards for falls) repairs a whole chain with at most a cent per entry; what
    # is left (a cap in the way) is repaired a cent at a time below.
    for i in np.nonzero(np.isfinite(frac) | np.isfinite(absolute))[0].tolist():
        f = frac[i] if math.isfinite(frac[i]) else math.inf
        step = absolute[i] * 100 if math.isfinite(absolute[i]) else math.inf
        for t in range(T - 1, 0, -1):
            raise_to(i, t - 1, max(math.ceil(cents[i, t] / (1 + f) - 1e-9), cents[i, t] - step))
        for t in range(1, T):
            raise_to(i, t, max(math.ceil((1 - f) * cents[i, t - 1] - 1e-9) if math.isfinite(f) else 0,
                               cents[i, t - 1] - step))
        for t in [t for _ in range(3) for t in range(1, T)]:  # a cent taken breaks the link before: sweep again
            for _ in range(100_000):
                a, c = cents[i, t - 1], cents[i, t]
                lim = min(f * a if math.isfinite(f) else math.inf, step)
                up, down = a + lim, a - lim
                if c > up + 1e-6:  # rose too much: raise the previous period (which lifts this
                    # one's limit by 1 + f cents, ending the chain) or else lower this one
                    if can_add(i, t - 1):
                        add(i, t - 1)
                    elif can_take(i, t):
                        take(i, t)
                    else:
                        break
                elif c < down - 1e-6:  # fell too much
                    if can_add(i, t):
                        add(i, t)
                    elif can_take(i, t - 1):
                        take(i, t - 1)
                    else:
                        break
                else:
                    break
    order = np.argsort(-(raw - cents).ravel(), kind="stable")
    want = min(max(int(round(raw.sum())), total_lo), total_hi)
    for _ in range(3):
        if total >= want:
            break
        for k in order.tolist():
            if total >= want:
                break
            i, t = divmod(k, T)
            if can_add(i, t):
                add(i, t)
    # Lower limits left short by rounding down: a cent where it breaks nothing, or else moved
    # from an entry outside the short limit but under the same cap (a period at its cash cap,
    # say, gives a cent of another group to the group below its minimum).
    channel_ix, period_ix = np.arange(C)[:, None], np.arange(T)[None, :]
    for short, outside in (
        (lambda i, t: row[i] < row_lo[i], lambda i, t: channel_ix == i),
        (lambda i, t: col[t] < col_lo[t], lambda i, t: period_ix == t),
        (lambda i, t: grp[gidx[i]] < g_lo[gidx[i]], lambda i, t: (gidx == gidx[i])[:, None]),
        (lambda i, t: total < total_lo, None),
    ):
        for k in order.tolist():
            i, t = divmod(k, T)
            while short(i, t):
                if can_add(i, t):
                    add(i, t)
                elif (outside is not None and cents[i, t] < hi_c[i, t] and change_ok(i, t, cents[i, t] + 1)
                      and make_room(i, t, outside(i, t)) and can_add(i, t)):
                    add(i, t)
                else:
                    break
    return cents
