"""Fit per-channel response curves (adstock + Hill) and a Prophet baseline to a history.

Model, per period t::

    KPI_t = baseline_t + Σ_c β_c · hill(e_{c,t}; k_c, s_c) + noise_t
    e_{c,t} = x_{c,t} + α_c · e_{c,t−1}                      (geometric adstock)
    hill(e; k, s) = e^s / (e^s + k^s)                         (β_c ≥ 0)

How it is fitted (``MediaMixModel.fit``):

1. Media on a linear stand-in baseline (intercept, trend, yearly Fourier terms, holiday and
   campaign indicators, controls). The nonlinear parameters (α, k, s per channel) are searched by
   multi-start bounded least squares (Latin-hypercube starts, seeded); for every trial the linear
   coefficients are solved exactly (variable projection: baseline coefficients by least squares,
   β by non-negative least squares). Many starts, because the surface has local optima.
2. Prophet on KPI minus media; then media again, now with Prophet's components (trend, yearly,
   holidays, regressors) as the baseline basis with free weights, so a media effect that Prophet's
   trend absorbed in one round is given back in the next. ``alternations`` rounds (default 2).
3. A time-ordered holdout (last ``holdout`` periods) is fitted first, the same way, and scored
   out of sample; its solution is one more start for the full fit.
4. Uncertainty: moving-block bootstrap of the residuals; each resample refits the media
   parameters (and the baseline weights) from the fitted solution, with the Prophet components
   held fixed (refitting Prophet 100 times would dominate run time and adds little: the baseline
   shape is well determined by three years of data). Resamples run in worker processes, each
   seeded from (random_state, resample index), so results do not depend on the worker count.

With per-channel returns (long layout) every channel is fitted on its own return with its own
baseline.

Planning curves: spending X evenly over P periods gives per period x = X/P, steady-state adstock
x/(1−α) and total return P·β·hill(X/(P·(1−α))) = ``HillCurve(beta=P·β, k=k·P·(1−α), s)``; the
allocator and the decomposition therefore agree.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
import multiprocessing

import numpy as np
import pandas as pd
from scipy.linalg import orth
from scipy.optimize import least_squares, nnls
from scipy.signal import lfilter
from scipy.stats import qmc

from models.calibration import check_lift_tests, resolve_lift_tests, window_effect
from models.curves import HillCurve
from models.errors import ConvergenceWarning, HistoryError, NotFittedError
from models.history import History
from models.identify import periods_text

__all__ = ["MediaMixModel", "ChannelParams", "adstock", "hill", "fit_metrics", "naive_holdout_nrmse",
           "quality_warnings"]

logger = logging.getLogger(__name__)

# Half-saturation k is searched relative to the channel's steady-state mean adstocked spend:
# k = κ · mean(x) / (1 − α), κ in these bounds (log-scale search).
_KAPPA_BOUNDS = (0.1, 10.0)
_S_BOUNDS_CONCAVE = (0.3, 1.0)
_S_BOUNDS_S_SHAPED = (0.3, 3.0)
#: What method "auto" fits a total KPI with (part of the fit cache's key: a release that changes
#: it fits again rather than serve a cached fit made the other way).
AUTO_TOTAL_KPI = "bayes"
#: What a total KPI may be (``kpi_unit``): decided from its scale, money, or another unit.
KPI_UNITS = ("auto", "money", "other")
#: The fit's revision: raised whenever a release changes what a fit of the same data and settings
#: reports (its draws, its identification grades, its warnings). Part of the fit cache's key, so
#: a cached fit made by older code is fitted again rather than served. 2: a channel whose spend
#: lies all in the burn-in; a channel whose spend barely moves graded poor; the ROI prior of a KPI
#: that is not money in the spend's units. 3: least squares on a total KPI says what it cannot be trusted with.
FIT_REVISION = 3
#: What least squares on a total KPI cannot be trusted with (the recovery study, benchmarks/attribution.py).
LEAST_SQUARES_TOTAL_KPI = (
    "least squares on a total KPI: on the recovery study its ROIs were off by a median 100% and its 80% bands "
    "held the truth for only 53-55% of channels (narrower than the data allow); the joint model (method = "
    "\"bayes\", the default) was off by about half that with bands that hold the truth 79-83% of the time")

#: Least squares' bootstrap resamples when ``n_bootstrap`` is not given.
DEFAULT_BOOTSTRAP = 100
# Periods whose mean spend stands in for the spend before the history began (initial carryover).
_WARMUP = 4


@dataclass(frozen=True)
class ChannelParams:
    """A channel's fitted per-period curve: ``beta · hill(adstock(x; alpha); k, s)``."""

    alpha: float
    k: float
    s: float
    beta: float

    def as_dict(self) -> dict:
        return {"alpha": self.alpha, "k": self.k, "s": self.s, "beta": self.beta}


def kpi_units(history, burn: int, unit: str = "auto", *, prior: bool = True):
    """Is the KPI money in the spend's units? ``(roi_prior, in_money, warning)``.

    ``roi_prior``: the pooled log-ROI prior set from the KPI's scale when it is not
    (:func:`models.posterior.kpi_roi_prior`), else None; ``warning``: why, when ``unit`` = "auto"
    found it out (None when the user said so with "money" or "other"). ``prior`` False (least
    squares, which has no ROI prior): the warning says only what it means.
    """
    from models.posterior import MEDIA_SHARE_PRIOR, PRIOR_ROI, kpi_roi_prior

    spend = float(history.spend.to_numpy(dtype=float)[burn:].sum())
    kpi = float(np.sum(history.target()[burn:]))
    found = kpi_roi_prior(spend, kpi, unit)
    if found is None:
        return None, unit != "other", None
    roi_prior, share = found
    if unit == "other":
        return roi_prior, False, None
    median = math.exp(PRIOR_ROI[0])
    earns = f"{share:,.0f} times the whole KPI" if share > 1 else f"{share:.3%} of the KPI"
    odd = "media spend above the revenue it books" if share > 1 else "media spend under 0.1% of the revenue"
    mean, sd = MEDIA_SHARE_PRIOR
    what = (f"at the default ROI prior's median ({median:.2f} per unit of spend) paid media would earn {earns}; the "
            f"ROI prior was set from the KPI's scale instead (paid media {mean:.0%} ± {sd:.0%} of the KPI, Meridian's "
            "default for a KPI that is not revenue), so ROIs are" if prior else
            f"at an ROI of {median:.2f} per unit of spend paid media would earn {earns}, so ROIs are read as")
    return roi_prior, False, (
        f"the KPI does not look like money in the spend's units: {what} KPI units per unit of spend and plans claim "
        "no break-even. For ROIs in money give the KPI in money (conversions × revenue per conversion, or both "
        f"columns in the same currency unit); if it is money ({odd}), say kpi_unit = \"money\""
        + _one_column_to_blame(history, burn, kpi, unit))


def _one_column_to_blame(history, burn: int, kpi: float, unit: str) -> str:
    """``; but column GMV alone …`` when one spend column makes the KPI look like something other
    than money: a second KPI (GMV beside 销售额) read as a channel, whose "spend" is above the KPI."""
    from models.posterior import kpi_roi_prior

    spend = history.spend.iloc[burn:].sum()
    total = float(spend.sum())
    column = spend.idxmax()  # only one column can be half the spend
    amount = float(spend[column])
    if amount < 0.5 * total or kpi_roi_prior(total - amount, kpi, unit) is not None:
        return ""
    return (f"; but column {column} alone is {amount / total:.0%} of the spend, and without it the KPI reads "
            f"as money: if {column} is not spend (a second KPI such as GMV, a count, a ratio), leave it out "
            f"of the channels (ignore = [{json.dumps(str(column), ensure_ascii=False)}] in [history])")


def adstock(x, alpha: float, max_lag: int | None = None) -> np.ndarray:
    """Geometric adstock ``e_t = x_t + α e_{t−1}``, truncated after ``max_lag`` lags if given.

    The spend before the first period is taken as the mean of the first four periods (spend
    rarely starts the day a file does), i.e. the recursion starts from that spend's steady state.
    """
    x = np.asarray(x, dtype=float)
    prior = x[:_WARMUP].mean() if x.size else 0.0
    if max_lag is None:
        if alpha == 0.0:
            return x.copy()
        zi = np.array([alpha * prior / (1.0 - alpha)])
        out, _ = lfilter([1.0], [1.0, -alpha], x, zi=zi)
        return out
    padded = np.concatenate([np.full(max_lag, prior), x])
    weights = alpha ** np.arange(max_lag + 1)
    return np.convolve(padded, weights, mode="full")[max_lag: max_lag + x.size]


def hill(e, k: float, s: float) -> np.ndarray:
    """``e^s / (e^s + k^s)``, 0 at e = 0."""
    e = np.asarray(e, dtype=float)
    with np.errstate(divide="ignore", over="ignore"):
        return np.where(e > 0, 1.0 / (1.0 + np.power(k / np.where(e > 0, e, 1.0), s)), 0.0)


def steady_factor(alpha: float, max_lag: int | None) -> float:
    """Adstocked spend per unit of constant spend per period, in the steady state."""
    if max_lag is None:
        return 1.0 / (1.0 - alpha)
    return float(np.sum(alpha ** np.arange(max_lag + 1)))


def fit_metrics(y, yhat) -> dict:
    """R², MAPE and NRMSE (RMSE / range of y)."""
    y = np.asarray(y, dtype=float)
    yhat = np.asarray(yhat, dtype=float)
    resid = y - yhat
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else float("nan")
    nz = y != 0
    mape = float(np.mean(np.abs(resid[nz] / y[nz]))) if nz.any() else float("nan")
    span = float(np.ptp(y))
    nrmse = float(np.sqrt(np.mean(resid**2)) / span) if span > 0 else float("nan")
    return {"r2": r2, "mape": mape, "nrmse": nrmse}


#: Periods in a year per frequency: the lag of the seasonal naive forecast.
_SEASON = {"daily": 364, "weekly": 52, "monthly": 12}
#: In-sample R² below which the fit is said to explain too little of the KPI.
_LOW_R2 = 0.5


def naive_holdout_nrmse(y, holdout: int, frequency: str) -> tuple[float | None, str | None]:
    """NRMSE on the last ``holdout`` periods of a naive forecast made at the end of the rest.

    The naive forecast is the *same period last year* (the value one year, 52 weeks / 12 months
    / 364 days, earlier, stepping back whole years until it lies before the holdout) when the
    periods before the holdout cover a year, else the *last value* before the holdout. It knows
    no spend at all, so a model that predicts the holdout (knowing its spend) worse than it adds
    nothing a plan can rest on. Scaled like :func:`fit_metrics` (RMSE / range of y on the
    holdout), so the two NRMSEs compare directly.

    Returns
    -------
    (float or None, str or None)
        The naive NRMSE and which naive forecast it is (``"same period last year"`` or
        ``"last value"``); (None, None) without a holdout.
    """
    y = np.asarray(y, dtype=float)
    n, h = y.size, int(holdout or 0)
    if h <= 0 or n - h < 1:
        return None, None
    train = n - h
    lag = _SEASON.get(frequency, 0)
    if lag and train >= lag:
        idx = np.arange(train, n)
        idx = idx - lag * np.ceil((idx - train + 1) / lag).astype(int)
        naive, method = y[idx], "same period last year"
    else:
        naive, method = np.full(h, y[train - 1]), "last value"
    return fit_metrics(y[train:], naive)["nrmse"], method


def quality_warnings(fit: dict) -> list[str]:
    """Warnings about how well a fit predicts, from its metrics (a model's ``fit_``), worst first.

    Holdout R² below 0 or a holdout NRMSE above the naive forecast's
    (:func:`naive_holdout_nrmse`) comes first: plans on such curves are sketches. Then an
    in-sample R² below 0.5. Works on the metrics of a model loaded from JSON, including one
    saved before the naive forecast was scored (the holdout R² test still applies).
    """
    out = []
    hold = fit.get("holdout") or {}
    r2, nrmse, naive = hold.get("r2"), hold.get("nrmse"), hold.get("naive_nrmse")
    reasons = []
    if r2 is not None and math.isfinite(r2) and r2 < 0:
        reasons.append(f"holdout R² {r2:.2f}: worse than the held-out periods' own average")
    if nrmse is not None and naive is not None and math.isfinite(nrmse) and math.isfinite(naive) and nrmse > naive:
        reasons.append(f"NRMSE {nrmse:.3f} against {naive:.3f} for the {hold.get('naive') or 'naive'} forecast")
    if reasons:
        periods = hold.get("periods")
        what = f"the {periods} held-out periods" if periods else "the held-out periods"
        out.append(f"the fitted model predicts {what} worse than a naive forecast ({'; '.join(reasons)}): "
                   "treat a plan on these curves as a sketch, not a decision")
    r2_in = fit.get("r2")
    if r2_in is not None and math.isfinite(r2_in) and r2_in < _LOW_R2:
        out.append(f"the fitted model explains little of the KPI in sample (R² {r2_in:.2f}): the curves "
                   "may be describing noise")
    return out


# --------------------------------------------------------------------------------------------
# Media step: multi-start bounded least squares with the linear coefficients projected out.
# Plain functions on arrays so that bootstrap workers can run them without the model object.


@dataclass(frozen=True)
class _Problem:
    """One target with its spend matrix and the scales that make the search well conditioned."""

    X: np.ndarray  # periods × channels spend
    scale: np.ndarray  # mean spend per channel (k is searched relative to it)
    s_bounds: tuple[float, float]
    alpha_bounds: tuple[float, float]
    max_lag: int | None
    lifts: tuple = ()  # models.calibration.LiftTest, column = index in X
    roi_width: float | None = None  # ROI prior: N(pool, (roi_width · pool)²) per channel
    pool: float = 0.0  # the pooled ROI the prior centres on
    sigma: float = 0.0  # the KPI's noise (y units): weighs lift tests and the ROI prior against the data

    @property
    def n_channels(self) -> int:
        return self.X.shape[1]

    def bounds(self):
        lo, hi = [], []
        for _ in range(self.n_channels):
            lo += [self.alpha_bounds[0], math.log(_KAPPA_BOUNDS[0]), self.s_bounds[0]]
            hi += [self.alpha_bounds[1], math.log(_KAPPA_BOUNDS[1]), self.s_bounds[1]]
        return np.array(lo), np.array(hi)

    def unpack(self, z: np.ndarray):
        """z = [α, log κ, s] per channel → arrays α, k, s (k in spend units)."""
        z = np.asarray(z).reshape(self.n_channels, 3)
        alpha = z[:, 0]
        fac = np.array([steady_factor(a, self.max_lag) for a in alpha])
        k = np.exp(z[:, 1]) * self.scale * fac
        return alpha, k, z[:, 2]

    def pack(self, alpha, k, s) -> np.ndarray:
        fac = np.array([steady_factor(a, self.max_lag) for a in alpha])
        kappa = np.clip(np.asarray(k) / (self.scale * fac), *_KAPPA_BOUNDS)
        return np.column_stack([alpha, np.log(kappa), s]).ravel()

    def features(self, z: np.ndarray) -> np.ndarray:
        alpha, k, s = self.unpack(z)
        cols = [hill(adstock(self.X[:, c], alpha[c], self.max_lag), k[c], s[c]) for c in range(self.n_channels)]
        return np.column_stack(cols)

    def extra_rows(self, z: np.ndarray, H: np.ndarray, y_scale: float, burn_in: int):
        """Rows (A, b) added to the β least squares, in the units of y / ``y_scale``.

        A lift test: ``(σ/se) · (g β − lift)`` with g its :func:`~models.calibration.window_effect`.
        The ROI prior: each channel's ROI over the history ``β · mean(H_c) / mean(x_c)`` ~
        N(pool, (roi_width · pool)²), written as ``(σ / sd) · (β − μ)`` in β units. None without either.
        """
        if not self.lifts and not (self.roi_width and self.pool > 0 and self.sigma > 0):
            return None
        C = self.n_channels
        rows, rhs = [], []
        alpha, k, s = self.unpack(z)
        for test in self.lifts:
            j = test.column
            g = window_effect(adstock(self.X[:, j], alpha[j], self.max_lag),
                              _window_adstock(self.X[:, j], test, alpha[j], self.max_lag),
                              test.start, lambda e, j=j: hill(e, k[j], s[j]))
            w = (self.sigma / test.se) if self.sigma > 0 else 1.0
            row = np.zeros(C)
            row[j] = w * g
            rows.append(row)
            rhs.append(w * test.lift / y_scale)
        if self.roi_width and self.pool > 0 and self.sigma > 0:
            sigma_s = self.sigma / y_scale
            mean_h = H[burn_in:].mean(axis=0)
            for j in range(C):
                if mean_h[j] <= 1e-12:
                    continue
                mu = self.pool * self.scale[j] / (mean_h[j] * y_scale)
                sd = self.roi_width * mu
                row = np.zeros(C)
                row[j] = sigma_s / sd
                rows.append(row)
                rhs.append(sigma_s / self.roi_width)
        return np.array(rows), np.array(rhs)


def _window_adstock(x: np.ndarray, test, alpha: float, max_lag: int | None) -> np.ndarray:
    """Adstock of the spend a lift test took out of its window alone (no spend before the file)."""
    w = test.tested(x)
    if max_lag is None:
        return lfilter([1.0], [1.0, -alpha], w) if alpha else w
    return np.convolve(w, alpha ** np.arange(max_lag + 1))[: x.size]


def _solve_linear(H: np.ndarray, y: np.ndarray, Q: np.ndarray, extra=None):
    """β ≥ 0 and free baseline weights γ minimising ‖y − Bγ − Hβ‖, with Q an orthonormal basis of B.

    ``extra`` = (A, b): more rows ``A β ≈ b`` (lift tests, the ROI prior; see
    :meth:`_Problem.extra_rows`). Returns β, the fitted baseline part Bγ and the residual (the
    extra rows' last).
    """
    Hr = H - Q @ (Q.T @ H)
    yr = y - Q @ (Q.T @ y)
    if extra is not None:
        Hr = np.vstack([Hr, extra[0]])
        yr = np.concatenate([yr, extra[1]])
    beta, _ = nnls(Hr, yr, maxiter=50 * max(H.shape[1], 1))
    resid = yr - Hr @ beta
    base = Q @ (Q.T @ (y - H @ beta))
    return beta, base, resid


def _media_step(problem: _Problem, y: np.ndarray, B: np.ndarray, starts: list[np.ndarray],
                max_nfev: int | None = None, prior: tuple | None = None, burn_in: int = 0):
    """Best of bounded least-squares runs from ``starts``.

    ``prior`` = (center, width, sigma): adds the weakly-informative Gaussian prior
    ``(z − center) / width`` scaled by the noise level ``sigma`` (in y units), making the search a
    MAP estimate. The first ``burn_in`` periods are left out of the loss: their carryover from
    spend before the history is unknown. Returns (z, β, fitted baseline for every period, cost,
    converged, all runs' (cost, z) sorted).
    """
    y_scale = float(np.std(y)) or 1.0
    ys = y[burn_in:] / y_scale
    Q = orth(B[burn_in:])
    lo, hi = problem.bounds()
    if prior is not None:
        center, width, sigma = prior
        prior_scale = (sigma / y_scale) / width

    def residual(z):
        H = problem.features(z)
        _, _, r = _solve_linear(H[burn_in:], ys, Q, problem.extra_rows(z, H, y_scale, burn_in))
        if prior is not None:
            r = np.concatenate([r, (z - center) * prior_scale])
        return r

    runs = []
    for z0 in starts:
        z0 = np.clip(z0, lo + 1e-9, hi - 1e-9)
        try:
            res = least_squares(residual, z0, bounds=(lo, hi), method="trf", x_scale=1.0,
                                diff_step=1e-4, xtol=1e-8, ftol=1e-10, max_nfev=max_nfev)
            runs.append((float(res.cost), res.x, bool(res.status > 0)))
        except (ValueError, np.linalg.LinAlgError) as exc:  # pragma: no cover - defensive
            logger.debug("media start failed: %s", exc)
    if not runs:
        raise RuntimeError("every start of the media fit failed")
    runs.sort(key=lambda r: r[0])
    cost, z, converged = runs[0]
    H = problem.features(z)
    beta, _, _ = _solve_linear(H[burn_in:], ys, Q, problem.extra_rows(z, H, y_scale, burn_in))
    beta = beta * y_scale
    gamma, *_ = np.linalg.lstsq(B[burn_in:], y[burn_in:] - H[burn_in:] @ beta, rcond=None)
    return z, beta, B @ gamma, cost, converged, [(c, zz) for c, zz, _ in runs]


def _distinct(zs: list[np.ndarray], n: int, tol: float = 1e-3) -> list[np.ndarray]:
    """The first ``n`` solutions that differ from each other (runs often converge together)."""
    out: list[np.ndarray] = []
    for z in zs:
        if all(np.max(np.abs(z - o)) > tol for o in out):
            out.append(z)
        if len(out) == n:
            break
    return out


def _lhs_starts(problem: _Problem, n: int, seed: int) -> list[np.ndarray]:
    lo, hi = problem.bounds()
    starts = [np.clip(problem.pack(np.full(problem.n_channels, 0.3), problem.scale * 1.0 / 0.7,
                                   np.full(problem.n_channels, min(0.8, problem.s_bounds[1]))), lo, hi)]
    if n > 1:
        sampler = qmc.LatinHypercube(d=lo.size, seed=seed)
        starts += list(qmc.scale(sampler.random(n - 1), lo, hi))
    return starts


def _block_resample(resid: np.ndarray, block: int, rng: np.random.Generator) -> np.ndarray:
    """Moving-block bootstrap of residuals (keeps their autocorrelation), centred."""
    n = resid.size
    out = np.empty(n)
    pos = 0
    while pos < n:
        start = int(rng.integers(0, n - block + 1))
        take = min(block, n - pos)
        out[pos: pos + take] = resid[start: start + take]
        pos += take
    return out - out.mean() + resid.mean()


# Worker-process state for the bootstrap (set once per worker by the initializer).
_WORKER: dict = {}


def _bootstrap_init(payload: dict) -> None:
    _WORKER.clear()
    _WORKER.update(payload)


def _bootstrap_one(task: tuple[int, int]) -> tuple[int, int, np.ndarray]:
    """Resample ``i`` of block ``b``: returns per-channel rows [β, k, s, α]."""
    b, i = task
    data = _WORKER["blocks"][b]
    problem: _Problem = data["problem"]
    rng = np.random.default_rng(np.random.SeedSequence([_WORKER["random_state"], b, i]))
    burn = data["burn_in"]
    y_star = data["fitted"].copy()
    y_star[burn:] += _block_resample(data["resid"][burn:], _WORKER["block_length"], rng)
    if problem.lifts:  # each test's lift redrawn within its standard error
        problem = replace(problem, lifts=tuple(replace(t, lift=t.lift + t.se * rng.standard_normal())
                                               for t in problem.lifts))
    z, beta, _, _, _, _ = _media_step(problem, y_star, data["B"], [data["z"]], max_nfev=_WORKER["max_nfev"],
                                      prior=data["prior"], burn_in=burn)
    alpha, k, s = problem.unpack(z)
    return b, i, np.column_stack([beta, k, s, alpha])


# --------------------------------------------------------------------------------------------


@dataclass
class _Block:
    """One fitted target: the KPI (wide) or one channel's own return (long layout)."""

    name: str
    channels: list[str]
    baseline: object  # BaselineFit, or None for the linear baseline
    weights: np.ndarray  # γ over [intercept, *component columns]
    columns: list[str]


class MediaMixModel:
    """Response curves per channel from a spend/return history (scikit-learn style estimator).

    Parameters
    ----------
    max_lag : int or None
        Truncate the geometric adstock after this many lags; None = the infinite recursion
        ``e_t = x_t + α e_{t−1}`` (what multi-period planning with carryover assumes).
    alpha_bounds : (float, float)
        Range of the carryover α (default 0–0.9).
    s_shaped : bool
        Least squares: allow Hill shapes up to 3 (S-curves); by default s ≤ 1 (concave). The joint
        model (method "bayes") always has S-curves in its prior (:class:`models.posterior.Priors`
        ``shape``): its curve is S-shaped only where the posterior puts it.
    n_starts : int
        Multi-start count of the nonlinear search (≥ 1).
    alternations : int
        Prophet ↔ media rounds (0 = linear baseline only).
    baseline : {"prophet", "linear"}
        The baseline model; "linear" (trend + Fourier + holiday indicators) avoids Prophet.
    holidays : str or None
        The country whose public holidays the baseline learns: an ISO 3166 code such as "DE"
        (default "CN", China); None for none. An unknown code raises ValueError in ``fit``.
    campaign_days : bool or None
        Add 618, Double 11 and the member day (the 18th). None (default): only with China's
        calendar, since they are Chinese e-commerce events (:func:`models.baseline.holiday_table`).
    events : dict, optional
        User-defined campaign days ``{name: [dates]}``.
    holdout : int
        Last periods held out to score the fit out of sample (0 = none).
    n_bootstrap : int or None
        Least squares: block-bootstrap resamples (0 = no uncertainty; None = the default,
        100). Setting it with method "auto" asks for least squares.
    block_length : int or None
        Bootstrap block length in periods (default ⌈n^(1/3)⌉, at least 4).
    n_jobs : int or None
        Worker processes for the bootstrap (None = all cores; 1 = in this process).
    random_state : int
        Seed of every random choice; the same seed gives the same fit.
    burn_in : int or None
        First periods left out of the loss, because their carryover from spend before the history
        is unknown (default: 8 weeks, 28 days or 2 months).
    method : {"auto", "bayes", "least_squares"}
        "bayes": the joint Bayesian model of a total KPI (:mod:`models.posterior`: ROI priors,
        the baseline in the same model, NUTS), whose draws are the curve samples; "least_squares":
        multi-start least squares on a Prophet baseline with a block bootstrap (below). "auto"
        (default): the joint model for a total KPI (wide layout), least squares for per-channel
        returns (long layout) or when ``n_bootstrap`` is given. The joint model recovers the
        curves and plans better on the recovery study (benchmarks/attribution.py: ROI error 49%
        vs 100%, 80% bands holding the truth 69-75% vs 53-55% of the time, plans worse than the
        historical split 4 vs 11 in 36 at the historical budget) and forecasts better
        (benchmarks/forecast.py); it takes 30-90 s where least squares takes 5-15 s.
    warmup, draws, chains : int
        The sampler's adaptation and kept iterations per chain, and its chains (method "bayes").
    priors : dict, optional
        Overrides of :class:`models.posterior.Priors` fields (method "bayes"), e.g.
        ``{"roi": [0.5, 0.6]}`` for a pooled log-ROI prior N(0.5, 0.6).
    kpi_unit : {"auto", "money", "other"}
        Whether the KPI is money in the spend's units. "auto" (default): unless paid media at the
        money ROI prior's median would earn more than the whole KPI or under 0.1% of it; "other"
        (conversions, orders): the ROI prior is on paid media's share of the KPI (40% ± 20%) and
        plans claim no break-even; "money": never moved, whatever the ratio.
    prior_strength : float
        Least squares: weight of the weakly-informative priors on the curve parameters (α ~ N(0.4, 0.3),
        log κ ~ N(0, 1) where k = κ · mean spend/(1 − α), s ~ N(0.8, 0.3)); 0 = plain least
        squares. With 3 nonlinear parameters per channel and a few years of data, least squares
        alone overfits noise; the priors cut ROI errors roughly in half in the ground-truth tests.
    """

    def __init__(self, *, max_lag: int | None = None, alpha_bounds: tuple[float, float] = (0.0, 0.9),
                 s_shaped: bool = False, n_starts: int = 8, alternations: int = 2,
                 baseline: str = "prophet", holidays: str | None = "CN", campaign_days: bool | None = None,
                 events: dict | None = None, holdout: int = 13, n_bootstrap: int | None = None,
                 block_length: int | None = None, n_jobs: int | None = None, random_state: int = 0,
                 burn_in: int | None = None, prior_strength: float = 1.0, calibration: list | None = None,
                 roi_prior: float | None = None, method: str = "auto", warmup: int = 400, draws: int = 400,
                 chains: int = 2, priors: dict | None = None, kpi_unit: str = "auto"):
        self.max_lag = max_lag
        self.alpha_bounds = alpha_bounds
        self.s_shaped = s_shaped
        self.n_starts = n_starts
        self.alternations = alternations
        self.baseline = baseline
        self.holidays = holidays
        self.campaign_days = campaign_days
        self.events = events
        self.holdout = holdout
        self.n_bootstrap = n_bootstrap
        self.block_length = block_length
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.burn_in = burn_in
        self.prior_strength = prior_strength
        self.calibration = [dict(r) for r in calibration] if calibration else None
        self.roi_prior = roi_prior
        self.method = method
        self.warmup = warmup
        self.draws = draws
        self.chains = chains
        self.priors = dict(priors) if priors else None
        self.kpi_unit = kpi_unit

    def get_params(self) -> dict:
        return {name: getattr(self, name) for name in (
            "max_lag", "alpha_bounds", "s_shaped", "n_starts", "alternations", "baseline", "holidays",
            "campaign_days", "events", "holdout", "n_bootstrap", "block_length", "n_jobs", "random_state",
            "burn_in", "prior_strength", "calibration", "roi_prior", "method", "warmup", "draws", "chains", "priors",
            "kpi_unit")}

    @property
    def kpi_in_money(self) -> bool:
        """Whether the fitted KPI is money in the spend's units (:func:`kpi_units`; a fit saved
        before the check was made says nothing, and is taken for money)."""
        return bool(self.fit_.get("kpi_in_money", True))

    def resolved_method(self, history: History) -> str:
        """"bayes" or "least_squares": what :meth:`fit` does with ``history`` (see ``method``)."""
        if self.method != "auto":
            return self.method
        if history.kpi is None or self.n_bootstrap is not None:
            return "least_squares"
        return AUTO_TOTAL_KPI

    def uses_joint(self, history: History | None = None) -> bool:
        """Whether this estimator fits ``history`` with the joint Bayesian model (see ``method``);
        without a history, whether the fitted model came from it."""
        if history is None:
            return getattr(self, "joint_", None) is not None
        return self.resolved_method(history) == "bayes"

    @property
    def bootstrap_resamples(self) -> int:
        """Least squares' bootstrap resamples: ``n_bootstrap``, 100 when not given."""
        return DEFAULT_BOOTSTRAP if self.n_bootstrap is None else int(self.n_bootstrap)

    # ---------------------------------------------------------------- fitting

    def fit(self, history: History, progress=None) -> "MediaMixModel":
        """Fit curves, baseline, diagnostics and bootstrap intervals.

        Parameters
        ----------
        history : History
            From :func:`models.history.load_history` (already validated).
        progress : callable, optional
            ``progress(done, total)`` after each bootstrap resample (the long part), for a
            progress bar; the library never draws one itself.

        Returns
        -------
        self
        """
        self._progress = progress
        self._check_settings(history)
        if self.uses_joint(history):
            from models.bayes import fit_model_joint

            return fit_model_joint(self, history)
        self.joint_ = None
        n = history.periods
        warn_list: list[str] = list(history.warnings)
        holdout = self._holdout_periods(history, warn_list)
        self._convergence = []  # non-converged media fits, filled by _fit_blocks

        self._priors: dict = {}
        extra_starts: dict[str, ChannelParams] = {}
        holdout_metrics = None
        if holdout:
            train = history.slice(0, n - holdout)
            blocks_h, params_h, _, _, _ = self._fit_blocks(train, {})
            extra_starts = params_h
            pred = self._predict_with(blocks_h, params_h, history)[-holdout:]
            holdout_metrics = {**fit_metrics(history.target()[-holdout:], pred), "periods": holdout}
            naive, method = naive_holdout_nrmse(history.target(), holdout, history.frequency)
            holdout_metrics.update(naive_nrmse=naive, naive=method)

        blocks, params, zs, problems, fitted_parts = self._fit_blocks(history, extra_starts)
        self._set_state(history, blocks, params, zs)
        yhat = self.predict(history)
        in_sample = fit_metrics(history.target(), yhat)
        self.fit_ = {**in_sample, "holdout": holdout_metrics or {"r2": None, "mape": None, "nrmse": None,
                                                                 "periods": 0}}
        if history.layout == "wide":  # a total KPI: is it money in the spend's units?
            _, self.fit_["kpi_in_money"], said = kpi_units(history, self._burn_in(history), self.kpi_unit, prior=False)
            if said:
                warn_list.append(said)
            warn_list.append(LEAST_SQUARES_TOTAL_KPI)
        self._bootstrap(history, blocks, zs, problems, fitted_parts)
        quality = quality_warnings(self.fit_)
        for w in quality:
            warnings.warn(w, ConvergenceWarning, stacklevel=2)
        # How well the model predicts comes first; kept in warnings_ (saved with the model).
        warn_list[:0] = quality + list(dict.fromkeys(self._convergence))
        self._diagnose(history, warn_list)
        return self

    def _holdout_periods(self, history: History, warn_list: list[str]) -> int:
        """The holdout to score, 0 when it would leave fewer than 26 periods to fit (said in ``warn_list``)."""
        n = history.periods
        holdout = self.holdout if self.holdout and n - self.holdout >= 26 else 0
        if self.holdout and not holdout:
            # Said, not silently dropped: the user asked for an out-of-sample score.
            warn_list.append(f"holdout of {self.holdout} periods ignored: it would leave {max(n - self.holdout, 0)} of "
                             f"{n} periods to fit (at least 26 are needed); the fit is scored in sample only")
            logger.warning("%s", warn_list[-1])
        if holdout:
            X = history.spend
            new = [c for c in history.channels
                   if X[c].iloc[n - holdout:].sum() > 0 and not X[c].iloc[:n - holdout].sum() > 0]
            if new:
                # The holdout fit cannot know a channel that first spends in the held-out periods,
                # so its score says little about the model: said beside it.
                pronoun = "it" if len(new) == 1 else "them"
                warn_list.append(f"{', '.join(new)}: no spend before the {holdout} held-out periods, so the holdout fit "
                                 f"cannot know {pronoun}; the holdout score understates the model")
                logger.warning("%s", warn_list[-1])
        return holdout

    def _check_settings(self, history: History) -> None:
        if not isinstance(history, History):
            raise TypeError("fit expects a models.history.History (see load_history)")
        if self.method not in ("auto", "bayes", "least_squares"):
            raise ValueError(f"method must be 'auto', 'bayes' or 'least_squares', got {self.method!r}")
        if self.kpi_unit not in KPI_UNITS:
            raise ValueError(f"kpi_unit must be one of {', '.join(KPI_UNITS)}, got {self.kpi_unit!r}")
        if self.method == "bayes" and history.kpi is None:
            raise ValueError("method 'bayes' fits a total KPI (wide layout); per-channel returns use 'least_squares'")
        if min(self.warmup, self.draws, self.chains) < 1:
            raise ValueError("warmup, draws and chains must be ≥ 1")
        if self.baseline not in ("prophet", "linear"):
            raise ValueError(f"baseline must be 'prophet' or 'linear', got {self.baseline!r}")
        from models.baseline import country_problem

        problem = country_problem(self.holidays)
        if problem:
            raise ValueError(f"holidays: {problem}")
        lo, hi = self.alpha_bounds
        if not (0.0 <= lo <= hi < 1.0):
            raise ValueError(f"alpha_bounds must satisfy 0 ≤ low ≤ high < 1, got {self.alpha_bounds}")
        if self.n_starts < 1:
            raise ValueError("n_starts must be ≥ 1")
        if self.calibration:
            problems = check_lift_tests(self.calibration, list(history.channels), history.dates,
                                        spend=history.spend)
            if problems:
                raise HistoryError(problems, "calibration")

    def _burn_in(self, history: History) -> int:
        burn = self.burn_in if self.burn_in is not None else {"daily": 28, "weekly": 8, "monthly": 2}[history.frequency]
        return int(max(0, min(burn, history.periods - 26)))

    def _quick_fit(self, problem: _Problem, y: np.ndarray, B: np.ndarray, z0: np.ndarray, burn: int):
        """The KPI's noise σ and the pooled ROI (all media return / all spend) from one plain
        least-squares run: the scale of the priors and of the lift tests."""
        z, beta, base, _, _, _ = _media_step(problem, y, B, [z0], burn_in=burn)
        H = problem.features(z)
        resid = (y - base - H @ beta)[burn:]
        dof = max(resid.size - B.shape[1] - 4 * problem.n_channels, 1)
        sigma = float(np.sqrt(np.sum(resid**2) / dof))
        pool = float((H[burn:] @ beta).sum() / max(problem.X[burn:].sum(), 1e-12))
        return sigma, pool

    def _prior(self, problem: _Problem, sigma: float):
        """(center, width, sigma) of the parameter priors (None when switched off)."""
        if not self.prior_strength:
            return None
        C = problem.n_channels
        s_center = 0.8 if not self.s_shaped else 1.0
        center = np.tile([0.4, 0.0, s_center], C)
        width = np.tile([0.3, 1.0, 0.3], C) / math.sqrt(self.prior_strength)
        return center, width, sigma

    def _with_evidence(self, problem: _Problem, history: History, channels: list[str], sigma: float,
                       pool: float) -> _Problem:
        """The problem with the lift tests of its channels and, across several channels, the ROI prior."""
        lifts = tuple(resolve_lift_tests(self.calibration, list(channels), history.dates)) if self.calibration else ()
        width = self.roi_prior if self.roi_prior and len(channels) > 1 and pool > 0 else None
        return replace(problem, lifts=lifts, roi_width=width, pool=max(pool, 0.0), sigma=sigma)

    def _problem(self, X: np.ndarray) -> _Problem:
        scale = np.maximum(X.mean(axis=0), 1e-9)
        return _Problem(X=X, scale=scale, s_bounds=_S_BOUNDS_S_SHAPED if self.s_shaped else _S_BOUNDS_CONCAVE,
                        alpha_bounds=tuple(self.alpha_bounds), max_lag=self.max_lag)

    def _targets(self, history: History):
        if history.kpi is not None:
            return [("kpi", history.channels, history.kpi)]
        return [(c, [c], history.channel_returns[c].to_numpy(dtype=float)) for c in history.channels]

    def _holiday_table(self, starts: pd.DatetimeIndex, frequency: str) -> pd.DataFrame:
        from models.baseline import holiday_table

        return holiday_table(starts, frequency, country=self.holidays, campaign_days=self.campaign_days,
                             events=self.events)

    def _regressors(self, history: History) -> pd.DataFrame:
        parts = [history.controls.reset_index(drop=True), history.events.reset_index(drop=True)]
        return pd.concat(parts, axis=1) if any(p.shape[1] for p in parts) else pd.DataFrame(index=range(history.periods))

    def _linear_basis(self, history: History, holidays: pd.DataFrame) -> np.ndarray:
        from models.baseline import holiday_indicators

        n = history.periods
        t = np.arange(n) / max(n - 1, 1)
        doy = history.dates.day_of_year.to_numpy() / 365.25
        cols = [np.ones(n), t]
        order = {"daily": 5, "weekly": 3, "monthly": 2}[history.frequency]
        for j in range(1, order + 1):
            cols += [np.sin(2 * np.pi * j * doy), np.cos(2 * np.pi * j * doy)]
        ind = holiday_indicators(history.dates, holidays)
        cols += [ind[c].to_numpy() for c in ind.columns]
        reg = self._regressors(history)
        cols += [reg[c].to_numpy(dtype=float) for c in reg.columns]
        return np.column_stack(cols)

    def _fit_blocks(self, history: History, extra_starts: dict[str, ChannelParams]):
        """Fit every target.

        Returns blocks, per-channel params, per-block search solutions z, problems and the
        per-block (fitted, resid, B) used by the bootstrap. ``extra_starts`` (params from the
        holdout fit) are added to the multi-start.
        """
        holidays = self._holiday_table(history.dates, history.frequency)
        B0 = self._linear_basis(history, holidays)
        burn = self._burn_in(history)
        blocks, zs, problems, parts, params = [], {}, {}, {}, {}
        for bi, (name, channels, y) in enumerate(self._targets(history)):
            X = history.spend[channels].to_numpy(dtype=float)
            problem = self._problem(X)
            starts = _lhs_starts(problem, self.n_starts, seed=self.random_state * 1009 + bi)
            if all(c in extra_starts for c in channels):
                ps = [extra_starts[c] for c in channels]
                starts.append(problem.pack([p.alpha for p in ps], [p.k for p in ps], [p.s for p in ps]))
            sigma, pool = self._quick_fit(problem, y, B0, starts[0], burn)
            problem = self._with_evidence(problem, history, channels, sigma, pool)
            prior = self._prior(problem, sigma)
            z, beta, base, cost, converged, runs = _media_step(problem, y, B0, starts, prior=prior, burn_in=burn)
            media = problem.features(z) @ beta
            block = _Block(name=name, channels=list(channels), baseline=None,
                           weights=np.zeros(0), columns=[])
            B = B0
            if self.baseline == "prophet":
                from models.baseline import fit_prophet_baseline

                reg = self._regressors(history)
                fit_rows = slice(burn, None)
                for _ in range(max(self.alternations, 1)):
                    bfit = fit_prophet_baseline(history.dates[fit_rows], (y - media)[fit_rows], history.frequency,
                                                holidays, reg.iloc[fit_rows].reset_index(drop=True))
                    comps = bfit.components(history.dates, reg)
                    B = np.column_stack([np.ones(history.periods), comps.to_numpy()])
                    # The runner-up stays alive: with a new baseline basis it may become the best.
                    z, beta, base, cost, converged, runs = _media_step(
                        problem, y, B, _distinct([zz for _, zz in runs], 2), prior=prior, burn_in=burn)
                    media = problem.features(z) @ beta
                block.baseline = bfit
                block.columns = ["intercept", *comps.columns]
            else:
                block.columns = [f"linear{j}" for j in range(B0.shape[1])]
            self._priors[name] = prior
            # Baseline weights on the raw basis, so forecasts can rebuild the baseline.
            gamma, *_ = np.linalg.lstsq(B, base, rcond=None)
            block.weights = gamma
            if not converged:
                message = f"{name}: the media fit did not converge; results may be unreliable"
                warnings.warn(message, ConvergenceWarning, stacklevel=3)
                getattr(self, "_convergence", []).append(message)
            blocks.append(block)
            zs[name] = z
            problems[name] = problem
            fitted = base + media
            parts[name] = {"fitted": fitted, "resid": y - fitted, "B": B}
            alpha, k, s = problem.unpack(z)
            for j, c in enumerate(channels):
                params[c] = ChannelParams(alpha=float(alpha[j]), k=float(k[j]), s=float(s[j]), beta=float(beta[j]))
        return blocks, params, zs, problems, parts

    def _set_state(self, history: History, blocks, params: dict[str, ChannelParams], zs) -> None:
        self.channels_ = list(history.channels)
        self.groups_ = dict(history.groups)
        self.frequency_ = history.frequency
        self.layout_ = history.layout
        self.periods_ = history.periods
        self.start_ = history.dates[0]
        self.end_ = history.dates[-1]
        self.blocks_ = blocks
        self.params_ = {c: params[c] for c in self.channels_}
        self.alpha_ = {c: p.alpha for c, p in self.params_.items()}
        X = history.spend
        self.spend_stats_ = {
            c: {"min": float(X[c].min()), "max": float(X[c].max()), "mean": float(X[c].mean()),
                "total": float(X[c].sum())}
            for c in self.channels_
        }
        self.carryover_at_end_ = {
            c: float(adstock(X[c].to_numpy(dtype=float), p.alpha, self.max_lag)[-1]) for c, p in self.params_.items()
        }
        self._kappa_at_bound = {}
        for block in blocks:
            zz = zs[block.name].reshape(-1, 3)
            for j, c in enumerate(block.channels):
                self._kappa_at_bound[c] = bool(np.isclose(zz[j, 1], math.log(_KAPPA_BOUNDS[0]), atol=1e-3)
                                                or np.isclose(zz[j, 1], math.log(_KAPPA_BOUNDS[1]), atol=1e-3))

    # ---------------------------------------------------------------- bootstrap

    def _report_progress(self, done: int, total: int) -> None:
        callback = getattr(self, "_progress", None)
        if callback is not None:
            callback(done, total)

    def _bootstrap(self, history: History, blocks, zs, problems, parts) -> None:
        S = self.bootstrap_resamples
        self.samples_ = {}
        if S <= 0:
            return
        n = history.periods
        block_length = self.block_length or max(4, math.ceil(n ** (1 / 3)))
        payload = {
            "random_state": int(self.random_state),
            "block_length": int(block_length),
            "max_nfev": 60 * (3 * max(len(b.channels) for b in blocks) + 1),
            "blocks": [
                {"problem": problems[b.name], "fitted": parts[b.name]["fitted"], "resid": parts[b.name]["resid"],
                 "B": parts[b.name]["B"], "z": zs[b.name], "prior": self._priors.get(b.name),
                 "burn_in": self._burn_in(history)}
                for b in blocks
            ],
        }
        tasks = [(b, i) for b in range(len(blocks)) for i in range(S)]
        workers = self.n_jobs or os.cpu_count() or 1
        results: dict[tuple[int, int], np.ndarray] = {}
        if workers <= 1:
            _bootstrap_init(payload)
            try:
                for task in tasks:
                    b, i, rows = _bootstrap_one(task)
                    results[(b, i)] = rows
                    self._report_progress(len(results), len(tasks))
            finally:
                _WORKER.clear()
        else:
            # fork where the OS has it: no `if __name__ == "__main__"` guard needed in user scripts
            # and no re-import cost; the payload is plain numpy data, so spawn works elsewhere. Not
            # once JAX is loaded in this process (a joint-model fit ran here, as in `budget compare`
            # of two scenarios): its threads make fork unsafe (CPython warns of a deadlock), so a
            # fork server, started clean, forks the workers instead.
            methods = multiprocessing.get_all_start_methods()
            if "fork" in methods and "jax" not in sys.modules:
                method = "fork"
            else:
                method = "forkserver" if "forkserver" in methods else "spawn"
            ctx = multiprocessing.get_context(method)
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_bootstrap_init,
                                     initargs=(payload,)) as pool:
                chunk = max(1, len(tasks) // (4 * workers))
                for b, i, rows in pool.map(_bootstrap_one, tasks, chunksize=chunk):
                    results[(b, i)] = rows
                    self._report_progress(len(results), len(tasks))
        for bi, block in enumerate(blocks):
            stacked = np.stack([results[(bi, i)] for i in range(S)])  # S × channels × 4
            for j, c in enumerate(block.channels):
                self.samples_[c] = stacked[:, j, :].copy()

    # ---------------------------------------------------------------- using the fit

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError("this MediaMixModel is not fitted yet; call fit(history) first")

    def _contributions(self, params: dict[str, ChannelParams], history: History) -> pd.DataFrame:
        if getattr(self, "joint_", None) is not None and params is self.params_:
            from models.bayes import joint_contributions

            return joint_contributions(self.joint_, history)
        out = {}
        for c, p in params.items():
            x = history.spend[c].to_numpy(dtype=float)
            out[c] = p.beta * hill(adstock(x, p.alpha, self.max_lag), p.k, p.s)
        return pd.DataFrame(out)

    def _baseline_values(self, blocks, history: History) -> dict[str, np.ndarray]:
        out = {}
        for block in blocks:
            if block.baseline is None:
                holidays = self._holiday_table(history.dates, history.frequency)
                B = self._linear_basis(history, holidays)
            else:
                comps = block.baseline.components(history.dates, self._regressors(history))
                B = np.column_stack([np.ones(history.periods), comps.to_numpy()])
            out[block.name] = B @ block.weights
        return out

    def _predict_with(self, blocks, params: dict[str, ChannelParams], history: History) -> np.ndarray:
        """Total prediction from an intermediate fit (used for the holdout)."""
        total = self._contributions(params, history).to_numpy().sum(axis=1)
        for values in self._baseline_values(blocks, history).values():
            total = total + values
        return total

    def decompose(self, history: History) -> pd.DataFrame:
        """Per-period baseline and channel contributions for ``history``'s dates and spend.

        Returns
        -------
        pandas.DataFrame
            ``baseline`` (sum over targets) and one column per channel; rows sum to ``predict``.
        """
        self._check_fitted()
        contrib = self._contributions(self.params_, history)
        joint = getattr(self, "joint_", None)
        if joint is not None and history.periods == self.periods_ and history.dates[0] == self.start_:
            base = joint.baseline  # the joint model's own baseline over the history it fitted
        else:
            base = sum(self._baseline_values(self.blocks_, history).values())
        contrib.insert(0, "baseline", base)
        contrib.index = history.dates
        return contrib

    def predict(self, history: History) -> np.ndarray:
        """Predicted KPI (or total channel return in the long layout) for ``history``'s periods."""
        return self.decompose(history).to_numpy().sum(axis=1)

    def forecast_baseline(self, dates) -> np.ndarray:
        """The baseline (no media) at future period starts, from Prophet; regressors at their mean."""
        self._check_fitted()
        dates = pd.DatetimeIndex(dates)
        total = np.zeros(len(dates))
        for block in self.blocks_:
            if block.baseline is None:
                raise NotImplementedError("forecasting needs the Prophet baseline (baseline='prophet')")
            comps = block.baseline.components(dates)
            total += np.column_stack([np.ones(len(dates)), comps.to_numpy()]) @ block.weights
        return total

    def planning_curve(self, channel: str, periods: int) -> HillCurve:
        """Total return over ``periods`` periods when the horizon spend is spread evenly.

        Per period x = X/periods, steady-state adstock x/(1−α) and return β·hill(x/(1−α)); the
        total is ``HillCurve(beta=periods·β, k=k·periods·(1−α), s=s)``.
        """
        self._check_fitted()
        p = self._param(channel)
        if getattr(self, "joint_", None) is not None:
            from models.bayes import joint_planning_curve

            return joint_planning_curve(self.joint_, channel, periods)
        return _planning(p.beta, p.k, p.s, p.alpha, periods, self.max_lag)

    def period_curve(self, channel: str):
        """The channel's return per period as a function of its adstocked spend (period plans).

        Least squares: the fitted Hill curve. Joint model: the posterior-mean curve over the
        draws (each with its own k and s), paired with the median carryover α (``hill_params``).
        """
        self._check_fitted()
        p = self._param(channel)
        if getattr(self, "joint_", None) is not None:
            from models.bayes import joint_period_curve

            return joint_period_curve(self.joint_, channel)
        return HillCurve(beta=p.beta, k=p.k, s=p.s)

    def planning_curves(self, periods: int) -> dict[str, HillCurve]:
        """:meth:`planning_curve` for every channel."""
        self._check_fitted()
        return {c: self.planning_curve(c, periods) for c in self.channels_}

    def planning_curve_samples(self, channel: str, periods: int) -> list[HillCurve]:
        """The planning curve of every curve sample of ``channel`` (bootstrap resample or posterior
        draw; for plans over samples)."""
        self._check_fitted()
        self._param(channel)
        samples = self.samples_.get(channel)
        if samples is None or not len(samples):
            return []
        return [_planning(b, k, s, a, periods, self.max_lag) for b, k, s, a in samples]

    def hill_params(self, channel: str) -> dict:
        """Per-period curve parameters {alpha, k, s, beta} of ``channel``."""
        self._check_fitted()
        return self._param(channel).as_dict()

    def extrapolation_cap(self, channel: str, periods: int, factor: float = 1.5) -> float:
        """Largest horizon spend to plan: ``factor`` × the largest per-period spend seen × periods."""
        self._check_fitted()
        self._param(channel)
        return float(factor * self.spend_stats_[channel]["max"] * periods)

    def _param(self, channel: str) -> ChannelParams:
        try:
            return self.params_[channel]
        except KeyError:
            raise KeyError(f"unknown channel {channel!r}; the model has {', '.join(self.channels_)}") from None

    # ---------------------------------------------------------------- diagnostics

    def _diagnose(self, history: History, warn_list: list[str]) -> None:
        contrib = self._contributions(self.params_, history)
        total_contrib = float(contrib.to_numpy().sum()) or 1.0
        total_spend = float(history.spend.to_numpy().sum()) or 1.0
        rows = []
        roi = {c: float(contrib[c].sum() / max(history.spend[c].sum(), 1e-12)) for c in self.channels_}
        median_roi = float(np.median(list(roi.values())))
        s_lo, s_hi = _S_BOUNDS_S_SHAPED if self.s_shaped else _S_BOUNDS_CONCAVE
        burn = self._burn_in(history)
        roi_samples = {c: self._roi_samples(c, history) for c in self.channels_}
        evidence = self._identification(history, contrib, roi_samples)
        lifts = self._lift_checks(history)
        for c in self.channels_:
            p = self.params_[c]
            x = history.spend[c].to_numpy(dtype=float)
            mean = float(x.mean())
            channel_warnings = []
            if x.sum() > 0 and not x[burn:].sum() > 0:
                channel_warnings.append(
                    f"{c}: all its spend lies in the first {periods_text(burn, history.frequency)}, "
                    "which the fit leaves out (their carryover from before the history is unknown): its effect cannot be "
                    "measured; leave the column out (ignore) or plan it with a written curve")
            elif p.beta <= 0:
                channel_warnings.append(f"{c}: no detectable effect (β = 0); its ROI is not measurable from this history")
            if p.alpha >= self.alpha_bounds[1] - 1e-3 and self.alpha_bounds[1] > 0:
                channel_warnings.append(f"{c}: carryover α at its upper bound {self.alpha_bounds[1]:g}")
            if self._kappa_at_bound.get(c):
                channel_warnings.append(f"{c}: half-saturation k at a search bound; the curve shape is extrapolated")
            if p.s <= s_lo + 1e-3 or (self.s_shaped and p.s >= s_hi - 1e-3):
                channel_warnings.append(f"{c}: Hill shape s at its bound {p.s:.2f}")
            if len(self.channels_) >= 3 and median_roi > 0 and (roi[c] > 3 * median_roi or roi[c] < median_roi / 3):
                channel_warnings.append(
                    f"{c}: ROI {roi[c]:.2f} is far from the other channels' median {median_roi:.2f}; check its data"
                )
            samples = self.samples_.get(c)
            if samples is not None and len(samples):
                p10, p50, p90 = (float(v) for v in np.percentile(roi_samples[c], [10, 50, 90]))
                alpha_q = np.percentile(samples[:, 3], [10, 50, 90]).tolist()
                k_q = np.percentile(samples[:, 1], [10, 50, 90]).tolist()
                s_q = np.percentile(samples[:, 2], [10, 50, 90]).tolist()
                beta_q = np.percentile(samples[:, 0], [10, 50, 90]).tolist()
            else:
                p10 = p50 = p90 = None
                alpha_q = k_q = s_q = beta_q = None
            ident = evidence.get(c)
            if ident is not None and ident["level"] == "poor":
                from models.identify import identification_warning

                channel_warnings.append(identification_warning(c, ident, self.frequency_))
            for check in lifts.get(c, []):
                if abs(check["model"] - check["lift"]) > 2 * check["se"]:
                    channel_warnings.append(
                        f"{c}: the fit does not reconcile the lift test of {check['start']}…{check['end']} with the "
                        f"history (measured {check['lift']:,.0f} ± {check['se']:,.0f}, the model gives "
                        f"{check['model']:,.0f}); check the test's window and units")
            for w in channel_warnings:
                warnings.warn(w, ConvergenceWarning, stacklevel=3)
            rows.append({
                "channel": c,
                "group": self.groups_.get(c),
                "spend": float(x.sum()),
                "contribution": float(contrib[c].sum()),
                "roi": roi[c],
                "roi_p10": p10,
                "roi_p50": p50,
                "roi_p90": p90,
                "marginal_roi": float(self.planning_curve(c, 1).marginal(mean)),
                "alpha": p.alpha,
                "k": p.k,
                "s": p.s,
                "beta": p.beta,
                "alpha_p10_p50_p90": alpha_q,
                "k_p10_p50_p90": k_q,
                "s_p10_p50_p90": s_q,
                "beta_p10_p50_p90": beta_q,
                "spend_share": float(x.sum() / total_spend),
                "effect_share": float(contrib[c].sum() / total_contrib),
                "spend_min": float(x.min()),
                "spend_max": float(x.max()),
                "spend_mean": mean,
                "identification": ident,
                "lift_tests": lifts.get(c, []),
                "warnings": channel_warnings,
            })
            warn_list.extend(channel_warnings)
        self.channel_report_ = rows
        self.roi_ = roi
        self.warnings_ = warn_list

    def _identification(self, history: History, contrib: pd.DataFrame, roi_samples: dict) -> dict:
        """Per channel: how well the history identifies it (:mod:`models.identify`); total KPI only."""
        if history.kpi is None or len(self.channels_) < 1:
            return {}
        from models.identify import channel_identification

        burn = self._burn_in(history)
        spend = history.spend[self.channels_].to_numpy(dtype=float)
        effective = np.column_stack([adstock(spend[:, j], self.params_[c].alpha, self.max_lag)
                                     for j, c in enumerate(self.channels_)])
        basis = self._linear_basis(history, self._holiday_table(history.dates, history.frequency))
        resid = (history.target() - self.predict(history))[burn:]
        contribution = {c: float(contrib[c].mean()) for c in self.channels_}
        pool = float(contrib.to_numpy().sum() / max(spend.sum(), 1e-12))
        calibrated = {r["channel"] for r in self.calibration or ()}
        joint = getattr(self, "joint_", None)
        return channel_identification(spend[burn:], effective[burn:], basis[burn:], self.channels_, roi_samples,
                                      contribution, float(np.std(resid)), pool, history.frequency, calibrated,
                                      roi_sd=joint.log_roi_sd if joint is not None else None)

    def _roi_samples(self, channel: str, history: History) -> np.ndarray:
        """The channel's ROI over the history in every curve sample (empty without)."""
        if getattr(self, "joint_", None) is not None:
            return self.joint_.roi[:, self.joint_.column(channel)]
        samples = self.samples_.get(channel)
        if samples is None or not len(samples):
            return np.zeros(0)
        x = history.spend[channel].to_numpy(dtype=float)
        return np.array([float((b * hill(adstock(x, a, self.max_lag), k, s)).sum() / max(x.sum(), 1e-12))
                         for b, k, s, a in samples])

    def _lift_checks(self, history: History) -> dict[str, list[dict]]:
        """Each lift test beside the lift the fitted curves give for its window."""
        if not self.calibration:
            return {}
        out: dict[str, list[dict]] = {}
        joint = getattr(self, "joint_", None)
        for test in resolve_lift_tests(self.calibration, self.channels_, history.dates):
            if joint is not None:
                from models.bayes import joint_lift

                model_lift = joint_lift(joint, test, history)
                out.setdefault(test.channel, []).append({**test.as_record(history.dates), "model": model_lift})
                continue
            p = self.params_[test.channel]
            x = history.spend[test.channel].to_numpy(dtype=float)
            g = window_effect(adstock(x, p.alpha, self.max_lag), _window_adstock(x, test, p.alpha, self.max_lag),
                              test.start, lambda e, p=p: hill(e, p.k, p.s))
            out.setdefault(test.channel, []).append({**test.as_record(history.dates), "model": float(p.beta * g)})
        return out

    def report(self) -> dict:
        """Plain-data summary for rendering (table or JSON); keys are a contract.

        Returns
        -------
        dict
            ``frequency``, ``periods``, ``channels`` (one dict per channel), ``fit`` (in sample and
            ``holdout``) and ``warnings``.
        """
        self._check_fitted()
        return {
            "frequency": self.frequency_,
            "periods": self.periods_,
            "start": self.start_.date().isoformat(),
            "end": self.end_.date().isoformat(),
            "layout": self.layout_,
            "channels": [dict(r) for r in self.channel_report_],
            "fit": dict(self.fit_, holdout=dict(self.fit_["holdout"])),
            "bootstrap_samples": 0 if self.uses_joint() else self.bootstrap_resamples,
            "uncertainty": self.uncertainty(),
            "warnings": self.fit_warnings(),
        }

    def uncertainty(self) -> dict:
        """Where the curve samples come from: ``{"method", "samples", ...}`` — "posterior" (the
        joint model's draws, with the sampler's diagnostics and priors) or "bootstrap"."""
        self._check_fitted()
        joint = getattr(self, "joint_", None)
        if joint is not None:
            return {"method": "posterior", "samples": joint.draws, "diagnostics": dict(joint.diagnostics),
                    "priors": dict(joint.priors)}
        return {"method": "bootstrap", "samples": self.bootstrap_resamples}

    def fit_warnings(self) -> list[str]:
        """Every warning about the fit in plain words, worst first: how well it predicts
        (:func:`quality_warnings`, recomputed from ``fit_``), then the rest of ``warnings_``
        (the history's, non-convergence, each channel's). Saved models keep both, so a model
        loaded from JSON (a cached fit) gives the same list as the fit that made it."""
        self._check_fitted()
        quality = quality_warnings(self.fit_)
        return quality + [w for w in self.warnings_ if w not in quality]


def _planning(beta: float, k: float, s: float, alpha: float, periods: int, max_lag: int | None) -> HillCurve:
    if periods < 1:
        raise ValueError(f"periods must be ≥ 1, got {periods}")
    k_plan = k * periods * (1.0 - alpha) if max_lag is None else k * periods / steady_factor(alpha, max_lag)
    return HillCurve(beta=float(periods * beta), k=float(k_plan), s=float(s))
