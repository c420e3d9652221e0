"""Response curves: a channel's return over the plan horizon as a function of its spend.

Every curve is vectorised (``response`` and ``marginal`` take arrays), knows whether it is
concave, can give its concave envelope (what the LP optimises by default) and the largest spend
whose marginal return is still at least a floor (the marginal-ROI cap).

Curves are plain data: ``to_dict`` / ``curve_from_dict`` round-trip them through JSON and TOML.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ResponseCurve",
    "HillCurve",
    "ExponentialCurve",
    "PointsCurve",
    "LinearThenCurve",
    "HillMixture",
    "curve_from_dict",
    "CURVE_KINDS",
]

# Relative tolerance used when classifying tabulated slopes as non-increasing.
_SLOPE_RTOL = 1e-9


def _as_array(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _hill_response(beta, k, s, x: np.ndarray) -> np.ndarray:
    """β x^s/(x^s+k^s) written as β/(1+(k/x)^s) to stay finite for large and tiny x (x ≥ 0)."""
    safe = np.where(x > 0, x, 1.0)
    with np.errstate(divide="ignore", over="ignore"):
        return np.where(x > 0, beta / (1.0 + np.power(k / safe, s)), 0.0)


def _hill_inflection(k, s):
    """Where a Hill curve with s > 1 turns from convex to concave: k·((s−1)/(s+1))^(1/s)."""
    return k * ((s - 1.0) / (s + 1.0)) ** (1.0 / s)


def _hill_marginal(beta, k, s, x: np.ndarray) -> np.ndarray:
    """d/dx of :func:`_hill_response`; at 0 it is ∞ (s < 1), β/k (s = 1) or 0 (s > 1), and 0
    everywhere for β = 0 (a channel fitted with no effect returns nothing, however little is spent)."""
    safe = np.where(x > 0, x, 1.0)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        t = np.power(safe / k, s)  # (x/k)^s
        out = beta * s * t / (safe * (1.0 + t) ** 2)
        out = np.where(np.isfinite(out), out, 0.0)
    at_zero = np.where(np.asarray(beta) <= 0, 0.0,
                       np.where(np.asarray(s) < 1, math.inf, np.where(np.asarray(s) == 1, beta / k, 0.0)))
    return np.where(x > 0, out, at_zero)


def _exp_response(beta, k, x: np.ndarray) -> np.ndarray:
    """β (1 − e^(−x/k))."""
    return beta * -np.expm1(-x / k)


def _exp_marginal(beta, k, x: np.ndarray) -> np.ndarray:
    return beta / k * np.exp(-x / k)


class ResponseCurve(ABC):
    """Return as a function of spend over the planning horizon."""

    kind: str = ""

    @abstractmethod
    def response(self, x) -> np.ndarray:
        """Return for spend ``x`` (array-like, ≥ 0)."""

    @abstractmethod
    def marginal(self, x) -> np.ndarray:
        """Derivative of the return at spend ``x`` (right derivative at kinks)."""

    @property
    @abstractmethod
    def is_concave(self) -> bool:
        """True when the curve is concave on [0, ∞), so the LP hypograph is exact."""

    @abstractmethod
    def envelope(self) -> "ResponseCurve":
        """The least concave majorant on [0, ∞) (the curve itself when it is concave)."""

    @abstractmethod
    def to_dict(self) -> dict:
        """Plain-data form; ``curve_from_dict(c.to_dict())`` rebuilds an equal curve."""

    @abstractmethod
    def scaled(self, factor: float) -> "ResponseCurve":
        """The same curve with every return multiplied by ``factor`` (≥ 0)."""

    @property
    def concave_from(self) -> float:
        """Spend from which the curve is concave (0 for concave curves)."""
        return 0.0

    def knots(self) -> np.ndarray | None:
        """Exact breakpoints when the curve is piecewise linear, else None."""
        return None

    def __call__(self, x):
        return self.response(x)

    def spend_at_marginal(self, mu: float, upper: float) -> float:
        """Largest spend in [0, upper] whose marginal return is ≥ ``mu`` (0 if there is none).

        This is where a marginal-ROI floor of ``mu`` caps the channel.
        """
        upper = float(upper)
        if upper <= 0:
            return 0.0
        lo = self.concave_from
        if lo >= upper:
            # Still in the convex part: marginal rises up to `upper`.
            return upper if float(self.marginal(upper)) >= mu else 0.0
        if float(self.marginal(upper)) >= mu:
            return upper
        if float(self.marginal(lo)) < mu:
            # Beyond the inflection the marginal only falls; before it, it is lower still.
            return 0.0
        hi = upper
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if float(self.marginal(mid)) >= mu:
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-12 * max(1.0, hi):
                break
        return lo


@dataclass(frozen=True)
class HillCurve(ResponseCurve):
    """``beta · x^s / (x^s + k^s)``: concave for s ≤ 1, S-shaped for s > 1.

    ``beta`` is the saturation return, ``k`` the spend at half saturation, ``s`` the shape.
    """

    beta: float
    k: float
    s: float = 1.0
    kind = "hill"

    def response(self, x) -> np.ndarray:
        return _hill_response(self.beta, self.k, self.s, np.maximum(_as_array(x), 0.0))

    def marginal(self, x) -> np.ndarray:
        return _hill_marginal(self.beta, self.k, self.s, np.maximum(_as_array(x), 0.0))

    @property
    def is_concave(self) -> bool:
        return self.s <= 1.0

    @property
    def concave_from(self) -> float:
        if self.s <= 1.0:
            return 0.0
        return _hill_inflection(self.k, self.s)

    @property
    def tangent_point(self) -> float:
        """Where the ray from the origin touches the S-curve (0 for concave curves)."""
        if self.s <= 1.0:
            return 0.0
        return self.k * (self.s - 1.0) ** (1.0 / self.s)

    def envelope(self) -> ResponseCurve:
        if self.is_concave:
            return self
        xt = self.tangent_point
        return LinearThenCurve(base=self, knee=xt, slope=float(self.response(xt)) / xt)

    def scaled(self, factor: float) -> "HillCurve":
        return HillCurve(beta=self.beta * factor, k=self.k, s=self.s)

    def to_dict(self) -> dict:
        return {"kind": "hill", "beta": self.beta, "k": self.k, "s": self.s}


@dataclass(frozen=True)
class ExponentialCurve(ResponseCurve):
    """``beta · (1 − exp(−x / k))``: concave, saturating at ``beta``."""

    beta: float
    k: float
    kind = "exponential"

    def response(self, x) -> np.ndarray:
        return _exp_response(self.beta, self.k, np.maximum(_as_array(x), 0.0))

    def marginal(self, x) -> np.ndarray:
        return _exp_marginal(self.beta, self.k, np.maximum(_as_array(x), 0.0))

    @property
    def is_concave(self) -> bool:
        return True

    def envelope(self) -> ResponseCurve:
        return self

    def scaled(self, factor: float) -> "ExponentialCurve":
        return ExponentialCurve(beta=self.beta * factor, k=self.k)

    def to_dict(self) -> dict:
        return {"kind": "exponential", "beta": self.beta, "k": self.k}


class PointsCurve(ResponseCurve):
    """Tabulated ``[spend, return]`` pairs, linearly interpolated, flat beyond the last point.

    Spends must be strictly increasing and returns non-decreasing; ``(0, 0)`` is added when the
    table does not start at zero spend. Curves exported from other MMM tools arrive this way.
    """

    kind = "points"

    def __init__(self, spend, returns):
        xs = _as_array(spend)
        ys = _as_array(returns)
        if xs.ndim != 1 or xs.shape != ys.shape or xs.size < 1:
            raise ValueError("points need matching one-dimensional spend and return lists")
        if np.any(np.diff(xs) <= 0):
            raise ValueError("point spends must be strictly increasing")
        if np.any(np.diff(ys) < 0):
            raise ValueError("point returns must be non-decreasing in spend")
        if xs[0] < 0 or ys[0] < 0:
            raise ValueError("point spends and returns must be ≥ 0")
        if xs[0] > 0:
            xs = np.concatenate([[0.0], xs])
            ys = np.concatenate([[0.0], ys])
        self.xs = xs
        self.ys = ys
        self._slopes = np.diff(ys) / np.diff(xs) if xs.size > 1 else np.zeros(0)

    def __eq__(self, other):
        return (
            isinstance(other, PointsCurve)
            and np.array_equal(self.xs, other.xs)
            and np.array_equal(self.ys, other.ys)
        )

    def __repr__(self):
        return f"PointsCurve({len(self.xs)} points up to spend {self.xs[-1]:g})"

    def response(self, x) -> np.ndarray:
        return np.interp(np.maximum(_as_array(x), 0.0), self.xs, self.ys)

    def marginal(self, x) -> np.ndarray:
        x = np.maximum(_as_array(x), 0.0)
        if self._slopes.size == 0:
            return np.zeros_like(x)
        idx = np.searchsorted(self.xs, x, side="right") - 1
        inside = idx < self._slopes.size
        return np.where(inside, self._slopes[np.clip(idx, 0, self._slopes.size - 1)], 0.0)

    @property
    def is_concave(self) -> bool:
        d = np.diff(self._slopes)
        return bool(np.all(d <= _SLOPE_RTOL * np.maximum(1.0, np.abs(self._slopes[1:]))))

    @property
    def concave_from(self) -> float:
        if self.is_concave:
            return 0.0
        # The last knot after which slopes no longer rise.
        rising = np.nonzero(np.diff(self._slopes) > 0)[0]
        return float(self.xs[rising[-1] + 1])

    def knots(self) -> np.ndarray:
        return self.xs.copy()

    def envelope(self) -> "PointsCurve":
        if self.is_concave:
            return self
        # Upper concave hull of the knots (monotone chain), then the flat tail stays.
        hull: list[int] = []
        for i in range(len(self.xs)):
            while len(hull) >= 2:
                a, b = hull[-2], hull[-1]
                cross = (self.xs[b] - self.xs[a]) * (self.ys[i] - self.ys[a]) - (
                    self.ys[b] - self.ys[a]
                ) * (self.xs[i] - self.xs[a])
                if cross >= 0:
                    hull.pop()
                else:
                    break
            hull.append(i)
        return PointsCurve(self.xs[hull], self.ys[hull])

    def scaled(self, factor: float) -> "PointsCurve":
        return PointsCurve(self.xs, self.ys * factor)

    def to_dict(self) -> dict:
        return {"kind": "points", "points": [[float(x), float(y)] for x, y in zip(self.xs, self.ys)]}


@dataclass(frozen=True)
class LinearThenCurve(ResponseCurve):
    """A ray ``slope · x`` up to ``knee``, then ``base`` beyond: the envelope of an S-curve."""

    base: ResponseCurve
    knee: float
    slope: float
    kind = "envelope"

    def response(self, x) -> np.ndarray:
        x = np.maximum(_as_array(x), 0.0)
        return np.where(x < self.knee, self.slope * x, self.base.response(x))

    def marginal(self, x) -> np.ndarray:
        x = np.maximum(_as_array(x), 0.0)
        return np.where(x < self.knee, self.slope, self.base.marginal(x))

    @property
    def is_concave(self) -> bool:
        return True

    def envelope(self) -> ResponseCurve:
        return self

    def scaled(self, factor: float) -> "LinearThenCurve":
        return LinearThenCurve(self.base.scaled(factor), self.knee, self.slope * factor)

    def to_dict(self) -> dict:
        # The envelope is derived data; persisting the curve it came from is enough.
        return self.base.to_dict()


class HillMixture(ResponseCurve):
    """The mean of Hill curves ``β_i x^{s_i} / (x^{s_i} + k_i^{s_i})``: a posterior-mean curve.

    The expected return of spend x over posterior draws i = 1…S is the mean of each draw's
    curve at x; planning on it maximises the expected return (the plan's return is a sum over
    channels, so its mean is the sum of the channels' mean curves). Concave when its marginal
    never rises (see :attr:`concave_from`), which every draw being concave implies.
    """

    kind = "hill_mixture"

    def __init__(self, beta, k, s):
        self.beta = np.asarray(beta, dtype=float).ravel()
        self.k = np.asarray(k, dtype=float).ravel()
        self.s = np.asarray(s, dtype=float).ravel()
        if not (self.beta.size == self.k.size == self.s.size) or self.beta.size == 0:
            raise ValueError("a Hill mixture needs the same, non-zero number of beta, k and s values")
        self._concave_from: float | None = None

    def __eq__(self, other):
        return (isinstance(other, HillMixture) and np.array_equal(self.beta, other.beta)
                and np.array_equal(self.k, other.k) and np.array_equal(self.s, other.s))

    __hash__ = None

    def __repr__(self):
        return f"HillMixture({self.beta.size} draws)"

    def response(self, x) -> np.ndarray:
        x = np.maximum(_as_array(x), 0.0)
        return _hill_response(self.beta, self.k, self.s, x[..., None]).mean(axis=-1)

    def marginal(self, x) -> np.ndarray:
        x = np.maximum(_as_array(x), 0.0)
        return _hill_marginal(self.beta, self.k, self.s, x[..., None]).mean(axis=-1)

    @property
    def is_concave(self) -> bool:
        return self.concave_from == 0.0

    @property
    def concave_from(self) -> float:
        """Spend past the last rise of the mean curve's marginal (0 when it never rises).

        A mixture with S-shaped draws (s > 1) need not be S-shaped: near zero the concave draws'
        marginal (infinite at 0 for s < 1) can outweigh the S draws' rise. Every draw is concave
        past its inflection, so the mean is concave past the largest one; before it the marginal
        is read on a fine grid (log-spaced, so a bump near zero is seen).
        """
        if self._concave_from is None:
            self._concave_from = self._last_rise()
        return self._concave_from

    def _last_rise(self) -> float:
        shaped = (self.s > 1.0) & (self.beta > 0)
        if not shaped.any():
            return 0.0
        top = float(np.max(_hill_inflection(self.k[shaped], self.s[shaped])))
        xs = top * np.concatenate([np.geomspace(1e-6, 1e-2, 200, endpoint=False), np.linspace(1e-2, 1.0, 1000)])
        m = self.marginal(xs)
        finite = m[np.isfinite(m)]
        scale = float(np.max(finite)) if finite.size else 0.0
        rises = np.nonzero(np.diff(m) > 1e-12 * scale)[0]
        # The marginal rose from xs[i] to xs[i + 1]: its peak lies before xs[i + 2].
        return 0.0 if rises.size == 0 else float(xs[min(rises[-1] + 2, xs.size - 1)])

    def envelope(self) -> ResponseCurve:
        if self.is_concave:
            return self
        # Log-spaced from near zero: a concave draw (s < 1) rises steeply there, and chords on an
        # even grid would fall below the curve by up to 1% of its return.
        top = 8.0 * float(np.max(self.k))
        xs = np.concatenate([[0.0], top * np.geomspace(1e-6, 1.0, 2000)])
        return PointsCurve(xs, self.response(xs)).envelope()

    def scaled(self, factor: float) -> "HillMixture":
        return HillMixture(self.beta * factor, self.k, self.s)

    def to_dict(self) -> dict:
        return {"kind": "hill_mixture", "beta": self.beta.tolist(), "k": self.k.tolist(), "s": self.s.tolist()}


CURVE_KINDS = {
    "hill": {"required": ("beta", "k"), "optional": ("s",)},
    "exponential": {"required": ("beta", "k"), "optional": ()},
    "points": {"required": ("points",), "optional": ()},
    "hill_mixture": {"required": ("beta", "k", "s"), "optional": ()},
}


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def curve_problems(data, where: str = "curve") -> list[str]:
    """Every problem with a curve's plain-data form, each prefixed with its key path."""
    if not isinstance(data, dict):
        return [f"{where}: must be a table with a `kind`, got {data!r}"]
    kind = data.get("kind")
    if kind not in CURVE_KINDS:
        kinds = ", ".join(sorted(CURVE_KINDS))
        if "kind" in data:
            return [f"{where}.kind: must be one of {kinds}, got {kind!r}"]
        # {type = "hill", …} or {family = "hill", …}: the kind under another name
        named = next((k for k, v in data.items() if isinstance(v, str) and v in CURVE_KINDS), None)
        if named is not None:
            return [f"{where}.{named}: not a key of a curve; write kind = \"{data[named]}\""]
        return [f"{where}.kind: missing (one of {kinds})"]
    spec = CURVE_KINDS[kind]
    problems = []
    allowed = {"kind", *spec["required"], *spec["optional"]}
    for key in data:
        if key not in allowed:
            problems.append(f"{where}.{key}: unknown key for a {kind} curve")
    for key in spec["required"]:
        if key not in data:
            problems.append(f"{where}.{key}: required for a {kind} curve")
    if kind in ("hill", "exponential"):
        for key in ("beta", "k", "s"):
            if key not in data:
                continue
            value = data[key]
            if not _finite_number(value):
                problems.append(f"{where}.{key}: must be a finite number, got {value!r}")
            elif key == "beta" and value < 0:
                problems.append(f"{where}.beta: must be ≥ 0, got {value}")
            elif key in ("k", "s") and value <= 0:
                problems.append(f"{where}.{key}: must be > 0, got {value}")
    elif kind == "hill_mixture":
        lists = [data.get(key) for key in ("beta", "k", "s")]
        if all(key in data for key in ("beta", "k", "s")):
            if not all(isinstance(v, list) and v and all(_finite_number(x) for x in v) for v in lists):
                problems.append(f"{where}: beta, k and s must be non-empty lists of finite numbers")
            elif len({len(v) for v in lists}) != 1:
                problems.append(f"{where}: beta, k and s must have the same length")
            elif min(lists[0]) < 0 or min(lists[1]) <= 0 or min(lists[2]) <= 0:
                problems.append(f"{where}: beta must be ≥ 0 and k, s > 0")
    elif "points" in data:
        pts = data["points"]
        if not isinstance(pts, list) or not pts:
            problems.append(f"{where}.points: must be a non-empty list of [spend, return] pairs")
        else:
            ok = True
            for i, p in enumerate(pts):
                if not (isinstance(p, list) and len(p) == 2 and all(_finite_number(v) for v in p)):
                    problems.append(f"{where}.points[{i}]: must be [spend, return] numbers, got {p!r}")
                    ok = False
            if ok:
                try:
                    PointsCurve([p[0] for p in pts], [p[1] for p in pts])
                except ValueError as exc:
                    problems.append(f"{where}.points: {exc}")
    return problems


def curve_from_dict(data: dict) -> ResponseCurve:
    """Build a curve from its plain-data form.

    Raises
    ------
    ValueError
        With every problem found, one per line.
    """
    problems = curve_problems(data)
    if problems:
        raise ValueError("\n".join(problems))
    kind = data["kind"]
    if kind == "hill":
        return HillCurve(beta=float(data["beta"]), k=float(data["k"]), s=float(data.get("s", 1.0)))
    if kind == "exponential":
        return ExponentialCurve(beta=float(data["beta"]), k=float(data["k"]))
    if kind == "hill_mixture":
        return HillMixture(data["beta"], data["k"], data["s"])
    pts = data["points"]
    return PointsCurve([p[0] for p in pts], [p[1] for p in pts])


# --------------------------------------------------------------------------------------------
# Many curves at once: the optimizer evaluates thousands of channels per refinement round.


#: Curve classes CurveSet stacks into parameter arrays, with the parameters it stacks.
_STACKED = {HillCurve: ("beta", "k", "s"), ExponentialCurve: ("beta", "k")}


class CurveSet:
    """A fixed list of curves evaluated together: ``marginal(x)[i]`` is curve i at ``x[i]``.

    Hill and exponential curves, and the envelopes of S-shaped ones (a LinearThenCurve of
    either), are stacked into parameter arrays once, so each evaluation is a few numpy
    operations whatever the number of curves; other kinds fall back to a loop.
    """

    def __init__(self, curves: list[ResponseCurve]):
        self.curves = list(curves)
        self.n = len(self.curves)
        groups: dict[tuple, list[int]] = {}
        for i, c in enumerate(self.curves):
            # The envelope of an S-shaped curve (a ray, then the curve) is stacked too: curve
            # samples planned on their envelopes come by the thousand.
            envelope = type(c) is LinearThenCurve
            groups.setdefault((envelope, type(c.base) if envelope else type(c)), []).append(i)
        self._groups = []  # (family kernel class or None: curve by curve, envelope?, indices, params, curves)
        for (envelope, family), idx in groups.items():
            sub = [self.curves[i] for i in idx]
            if family not in _STACKED:
                self._groups.append((None, False, np.array(idx), None, sub))
                continue
            bases = [c.base for c in sub] if envelope else sub
            params = tuple(np.array([getattr(c, n) for c in bases]) for n in _STACKED[family])
            if envelope:
                params = (np.array([c.knee for c in sub]), np.array([c.slope for c in sub]), params)
            self._groups.append((family, envelope, np.array(idx), params, sub))

    def marginal(self, x) -> np.ndarray:
        return self._evaluate(x, {HillCurve: _hill_marginal, ExponentialCurve: _exp_marginal}, "marginal")

    def response(self, x) -> np.ndarray:
        return self._evaluate(x, {HillCurve: _hill_response, ExponentialCurve: _exp_response}, "response")

    def _evaluate(self, x, kernels: dict, method: str) -> np.ndarray:
        """One kernel call per stacked family (an envelope: its ray below the knee, its base's
        kernel above); other kinds call ``method`` curve by curve."""
        x = np.maximum(np.broadcast_to(_as_array(x), (self.n,)), 0.0)
        out = np.empty(self.n)
        for family, envelope, idx, params, sub in self._groups:
            xi = x[idx]
            if family is None:
                out[idx] = [float(getattr(c, method)(v)) for c, v in zip(sub, xi)]
            elif envelope:
                knee, slope, base = params
                ray = slope * xi if method == "response" else slope
                out[idx] = np.where(xi < knee, ray, kernels[family](*base, xi))
            else:
                out[idx] = kernels[family](*params, xi)
        return out

    def spend_at_marginal(self, m, lo, hi, iterations: int = 80) -> np.ndarray:
        """Per curve, the spend in [lo, hi] where the marginal equals ``m`` (clipped to the ends).

        The curves must be concave on [lo, hi] (marginal non-increasing there). ``iterations``
        halvings of [lo, hi] set the precision.
        """
        lo = np.broadcast_to(_as_array(lo), (self.n,)).astype(float)
        hi = np.broadcast_to(_as_array(hi), (self.n,)).astype(float)
        m = np.broadcast_to(_as_array(m), (self.n,))
        a, b = lo.copy(), hi.copy()
        for _ in range(iterations):
            mid = 0.5 * (a + b)
            up = self.marginal(mid) >= m
            a = np.where(up, mid, a)
            b = np.where(up, b, mid)
            if np.all(b - a <= 1e-12 * np.maximum(1.0, b)):
                break
        x = 0.5 * (a + b)
        x = np.where(self.marginal(hi) >= m, hi, x)
        return np.where(self.marginal(lo) <= m, np.minimum(lo, x), x)
