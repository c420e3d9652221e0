"""The joint Bayesian model of a total KPI: media curves and baseline with priors, sampled by NUTS.

Per period t and channel c (money in units of the mean KPI)::

    KPI_t = baseline_t + Σ_c η_{c,t} β_c hill(e_{c,t}; k_c, s_c) + ε_t,    ε_t ~ N(0, σ²)
    e_{c,t} = x_{c,t} + α_c e_{c,t−1}                                    (geometric adstock)
    η_{c,t} = max(0.05, 1 + θ_c z_t)                                     (campaign efficiency)
    baseline_t = b_0 + g_0 t + Σ_j δ_j max(0, t − c_j) + Σ_i γ_i S_{t,i}  (models.design)

Priors (each channel the same; nothing here is centred on a test world):

* **ROI** over the history, ``Σ_t η β hill / Σ_t x``, log-normal and pooled across channels
  (hierarchical): log ROI_c = μ + τ z_c with μ ~ N(log 1.22, 0.9) — Meridian's default ROI prior,
  LogNormal(0.2, 0.9) — τ ~ HalfNormal(1), z_c ~ N(0, 1). β follows from the ROI, so a channel
  the data cannot tell apart keeps an ROI near the channels' typical one rather than 0 or a
  free-floating β. τ is how far channels' ROIs stray from each other: HalfNormal(1) (median
  0.67) is about the spread Meridian's per-channel prior allows (sd 0.9 around a common
  median). It was HalfNormal(0.5) (median 0.34: channels within ×1.4 of each other), which drew
  low-ROI channels up to the others: on the recovery study the truth lay below the 80% band
  for 23% of channels and above it for 7%, and the bands held it for 69% / 76% of channels on
  its two seeds; with HalfNormal(1), 79% / 83%, the plans as good (benchmarks/results/
  attribution_bayes_spread*.json; README "Wider ROI spread"). The prior assumes the KPI is money (revenue, GMV) in the spend's units. When
  the data say otherwise — at the prior's median ROI paid media would earn more than the whole
  KPI, or under 0.1% of it (conversions or orders, a KPI in 万 beside spend in yuan) — the prior is
  set from the KPI's scale instead (:func:`kpi_roi_prior`: paid media's share of the KPI 40% ± 20%,
  Meridian's default for a KPI that is not revenue), and the fit says so; ``kpi_unit`` = "money"
  or "other" says which it is instead of the check.
* carryover α ~ Beta(2, 3) per period (mean 0.4); in daily data the prior is on the half-life
  in days instead, log h ~ N(log 3, 1.1²) on 0.1–90 days, α_day = 2^(−1/h) (80% of it from 0.7 to
  12 days: digital channels' carryover of a day or two and offline's of weeks alike). It used to
  be the weekly prior carried over (α_day = α_week^(1/7)), which put 99% of its mass on
  α_day > 0.65 (half-lives over 1.6 days) — half-lives a week's data cannot tell from zero but a
  day's can; on the study's daily history (α_day 0.1–0.7) the posterior could not reach them;
* half saturation k = κ · (mean steady-state adstock), κ ~ LogNormal(0, 0.8);
* shape log s ~ N(0, 0.5²) truncated to s ∈ [0.3, 4]: median 1 (Michaelis–Menten), concave and
  S-shaped alike. A concave-only prior (s ≤ 1, as this model had) rises steeply from zero, so it
  reads the spend's local effect as a high average ROI: on the recovery study, whose curves are
  logistic, exponential and Weibull, it overstated the channels' total return by a median 41%;
  the planning curve is the draws' mean, concave or not (:class:`models.curves.HillMixture`).
  An S-shaped draw's usual spend must lie past its inflection (log of inflection ÷ mean
  adstock, where positive, ~ half-N(0, 0.1²)): a channel funded for years in the convex part of
  its curve is not what planned spend shows, and on daily data whose carryover the prior
  misjudged the posterior put the largest channel there and the plan dropped it;
* campaign efficiency θ_c ~ N(0, 0.3) on the calendar's campaign signal (618 and Double 11 up,
  Spring Festival down; :attr:`models.design.Design.efficiency`), when the calendar has one;
* baseline: b_0 ~ N(1, 1), g_0 ~ N(0, 0.5), δ_j ~ N(0, 0.1²) (trend changes), γ_i ~ N(0, 0.2²);
  noise σ ~ HalfNormal(0.2). Being linear with Gaussian priors, the baseline's coefficients are
  integrated out of the likelihood exactly and drawn afterwards (see :func:`_model`).

**Lift tests** enter the likelihood: a test of channel c over periods [a, b) measured
``lift ± se``; the model's lift is what the channel earns from period a to the end of the history
with its spend in [a, b) against with that spend removed, ``Σ_{t≥a} η β (hill(e) − hill(e − W w))``,
and ``lift ~ N(model lift, se²)``.

Sampling: NUTS (NumPyro on JAX, CPU), two chains on two cores when the machine has them,
``warmup`` + ``draws`` iterations each, seeded. The first ``burn_in`` periods are in the adstock
but not the likelihood (their carryover from spend before the file is unknown; the spend before
the file is taken as the mean of the first four periods, in its steady state).

Why NumPyro: NUTS is the field's reference sampler (PyMC-Marketing, LightweightMMM), and JAX
compiles the model once, so 156 weeks × 9 channels sample in well under a minute on two cores.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Priors", "PosteriorData", "Posterior", "sample_posterior", "PRIOR_ROI", "kpi_roi_prior"]

logger = logging.getLogger(__name__)

#: Meridian's default ROI prior: LogNormal(0.2, 0.9) (median ROI 1.22).
PRIOR_ROI = (0.2, 0.9)
#: For a KPI that is not money in the spend's units, Meridian's default instead: paid media's
#: total share of the KPI with mean 40% and standard deviation 20%.
MEDIA_SHARE_PRIOR = (0.4, 0.2)
#: Paid media's share of the KPI at the default prior's median ROI, within which the KPI is taken
#: for money in the spend's units: above it media would earn more than the whole KPI; below it
#: less than 0.1% (spend in 万 beside a KPI in yuan, say), which no history could show.
MONEY_SHARE_RANGE = (0.001, 1.0)
_WARM = 4  # periods whose mean spend stands for the spend before the history
#: Where the Hill shape s may lie: from strongly concave to a steep S-curve.
SHAPE_RANGE = (0.3, 4.0)
#: Where a daily channel's carryover half-life may lie, in days.
HALF_LIFE_RANGE = (0.1, 90.0)
#: How far (log scale, one sd) an S-shaped draw's inflection may lie past the usual spend.
INFLECTION_SD = 0.1


def kpi_roi_prior(spend_total: float, kpi_total: float,
                  unit: str = "auto") -> tuple[tuple[float, float], float] | None:
    """The pooled log-ROI prior for a KPI that is not money in the spend's units, or None.

    ``share`` = (the default prior's median ROI) × spend / KPI over the fitted periods: the share
    of the KPI paid media would earn at that ROI. Outside :data:`MONEY_SHARE_RANGE` the default
    cannot be the KPI's (a KPI of conversions beside spend in yuan gives thousands of times the
    KPI), so the prior is put on the share instead, log-normal with :data:`MEDIA_SHARE_PRIOR`'s
    mean and sd: log ROI ~ N(log(KPI / spend) + m, v) for that share's log mean m and sd v.
    ``unit``: "auto" decides by ``share``; "money" never moves the prior, "other" always does.
    Returns ``((mean, sd), share)``, or None when the default stands.
    """
    if unit == "money" or not (spend_total > 0 and kpi_total > 0):
        return None
    share = math.exp(PRIOR_ROI[0]) * spend_total / kpi_total
    if unit == "auto" and MONEY_SHARE_RANGE[0] <= share <= MONEY_SHARE_RANGE[1]:
        return None
    mean, sd = MEDIA_SHARE_PRIOR
    var = math.log1p((sd / mean) ** 2)
    return (math.log(mean) - var / 2 + math.log(kpi_total / spend_total), math.sqrt(var)), share


@dataclass(frozen=True)
class Priors:
    """The model's prior settings (see the module docstring); defaults are the documented ones."""

    roi: tuple[float, float] = PRIOR_ROI  # (mean, sd) of the pooled log ROI
    roi_spread: float = 1.0  # HalfNormal scale of τ, the channels' spread around the pooled ROI
    roi_df: float | None = None  # Student-t degrees of freedom of the channels' deviations (None: normal)
    alpha: tuple[float, float] = (2.0, 3.0)
    kappa_sd: float = 0.8
    efficiency_sd: float = 0.3
    changepoint_scale: float = 0.1
    seasonal_sd: float = 0.2
    noise_scale: float = 0.2
    shape: tuple[float, float] = (0.0, 0.5)  # (mean, sd) of log s, truncated to [SHAPE_RANGE]
    daily_half_life: tuple[float, float] = (3.0, 1.1)  # daily data: (median days, sd of log days)

    def as_dict(self) -> dict:
        return {"roi": list(self.roi), "roi_spread": self.roi_spread, "alpha": list(self.alpha),
                "roi_df": self.roi_df, "kappa_sd": self.kappa_sd, "efficiency_sd": self.efficiency_sd,
                "changepoint_scale": self.changepoint_scale, "seasonal_sd": self.seasonal_sd,
                "noise_scale": self.noise_scale, "shape": list(self.shape),
                "daily_half_life": list(self.daily_half_life)}


@dataclass(frozen=True)
class PosteriorData:
    """Arrays the model is conditioned on, in units of the mean KPI (``scale``).

    ``spend`` periods × channels, ``y`` periods, ``mask`` 1 for periods in the likelihood,
    ``design`` a :class:`models.design.Design`, ``lifts`` a list of (column, window spend
    (periods,), after (0/1 periods, 1 from the window's start), lift, se), all scaled.
    """

    spend: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    design: object
    scale: float
    daily: bool = False
    lifts: list = field(default_factory=list)


@dataclass
class Posterior:
    """Draws of the model's parameters (numpy, draws first) and how the sampler went.

    Per channel (columns in the order of the spend matrix): ``alpha``, ``k`` (per-period
    adstocked spend at half saturation, money), ``s``, ``beta`` (per period, money), ``theta``
    (campaign efficiency; zeros without a campaign signal), ``roi`` (over the history). Per period:
    ``baseline`` (money), and ``sigma`` (money) per draw. ``diagnostics``: max R̂ and min effective
    sample size over the curve parameters, divergent transitions, chains, draws, seconds.
    """

    alpha: np.ndarray
    k: np.ndarray
    s: np.ndarray
    beta: np.ndarray
    theta: np.ndarray
    roi: np.ndarray
    baseline: np.ndarray
    sigma: np.ndarray
    log_roi_prior_sd: float
    diagnostics: dict
    priors: dict

    @property
    def draws(self) -> int:
        return int(self.alpha.shape[0])


def _import_jax(devices: int):
    """Import JAX with ``devices`` CPU devices (parallel chains), quietly."""
    flag = f"--xla_force_host_platform_device_count={devices}"
    if "jax" not in __import__("sys").modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_force_host_platform_device_count" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " " + flag).strip()
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)
    import jax

    _compilation_cache(jax)
    return jax


def _compilation_cache(jax) -> None:
    """Keep JAX's compiled samplers on disk beside the fit cache (unless the user set a place).

    Compiling the sampler costs more than sampling a small history (about 18 s against 4 s for
    100 draws of 155 weeks × 10 channels on a busy machine); a fit of data with the same shape
    (a refit, another seed, another scenario on the same history) then starts at once.
    """
    if getattr(jax.config, "jax_compilation_cache_dir", None):
        return
    try:
        from models.cache import cache_dir

        folder = cache_dir() / "jax"
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only cache costs time, not correctness
        logger.debug("no JAX compilation cache: %s", exc)
        return
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def _adstock(X, alpha, before):
    """Geometric adstock of the columns of ``X`` (periods × channels): e_t = x_t + α e_{t−1},
    with e_{−1} = ``before``. A sequential scan: on a CPU it beats a parallel prefix scan and the
    lag-matrix product by 8–25× at 155 periods (gradient timings, December)."""
    from jax import lax

    def step(carry, x):
        carry = x + alpha * carry
        return carry, carry

    return lax.scan(step, before, X)[1]


def _model(data: dict, priors: Priors):
    """The NumPyro model (see the module docstring); ``data`` holds jnp arrays (:func:`_arrays`).

    The baseline is linear in its coefficients with Gaussian priors, so they are integrated out:
    given the media, y − media ~ N(B m₀, σ² I + B Σ₀ Bᵀ) over the fitted periods (Woodbury, with
    an eigendecomposition of the prior-scaled BᵀB done once). NUTS then moves only through the media
    parameters and σ, whose posterior is far better conditioned than the joint one with the
    baseline's ridges (on the bundled history: chains that agreed instead of R̂ 2.9 at the same
    cost); :func:`baseline_draws` draws the coefficients from their exact conditional afterwards.
    """
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    X, mask = data["X"], data["mask"]
    n, C = X.shape
    a0, b0 = priors.alpha
    if data["daily"]:
        median, sd = priors.daily_half_life
        low_h, high_h = (math.log(v) for v in HALF_LIFE_RANGE)
        log_h = numpyro.sample("log_half_life", dist.TruncatedNormal(math.log(median), sd, low=low_h, high=high_h)
                               .expand([C]))
        alpha = numpyro.deterministic("alpha", jnp.exp(-math.log(2.0) * jnp.exp(-log_h)))
    else:
        alpha = numpyro.sample("alpha", dist.Beta(a0, b0).expand([C]))
    kappa = numpyro.sample("kappa", dist.LogNormal(0.0, priors.kappa_sd).expand([C]))
    low, high = (math.log(v) for v in SHAPE_RANGE)
    log_s = numpyro.sample("log_s", dist.TruncatedNormal(*priors.shape, low=low, high=high).expand([C]))
    s = numpyro.deterministic("s", jnp.exp(log_s))
    mu = numpyro.sample("roi_mu", dist.Normal(*priors.roi))
    tau = numpyro.sample("roi_tau", dist.HalfNormal(priors.roi_spread))
    if priors.roi_df:
        z = numpyro.sample("roi_z", dist.StudentT(priors.roi_df, 0.0, 1.0).expand([C]))
    else:
        z = numpyro.sample("roi_z", dist.Normal(0.0, 1.0).expand([C]))
    roi = numpyro.deterministic("roi", jnp.exp(mu + tau * z))

    e = _adstock(X, alpha, data["warm"] / (1.0 - alpha))
    k = kappa * data["xbar"] / (1.0 - alpha)
    numpyro.factor("funded_past_inflection", jnp.sum(inflection_penalty(kappa, s)))
    f = 1.0 / (1.0 + jnp.power(k[None, :] / jnp.maximum(e, 1e-12), s[None, :]))
    if data["z"] is not None:
        theta = numpyro.sample("theta", dist.Normal(0.0, priors.efficiency_sd).expand([C]))
        eta = jnp.maximum(1.0 + data["z"][:, None] * theta[None, :], 0.05)
    else:
        eta = jnp.ones((1, C))
    fe = f * eta
    spent = jnp.sum(X * mask[:, None], axis=0)
    beta = numpyro.deterministic("beta", roi * spent / jnp.maximum(jnp.sum(fe * mask[:, None], axis=0), 1e-12))
    media = fe @ beta
    numpyro.deterministic("media", media)

    sigma = numpyro.sample("sigma", dist.HalfNormal(priors.noise_scale))
    rows = data["rows"]
    B = data["B"]  # fitted rows × k
    r = data["y"][rows] - media[rows] - B @ data["m0"]
    var = sigma * sigma
    # With W = Σ₀^{1/2} BᵀB Σ₀^{1/2} = V Λ Vᵀ (once, in _arrays) and g = Vᵀ Σ₀^{1/2} Bᵀ r, the
    # conditional mean of the coefficients is c = Σ₀^{1/2} V g / (σ² + Λ); then
    # rᵀ(σ²I + BΣ₀Bᵀ)⁻¹r = ‖r − Bc‖²/σ² + cᵀΣ₀⁻¹c (from the residual: no cancellation in float32)
    # and log|σ²I + BΣ₀Bᵀ| = m log σ² + Σ log(1 + λ/σ²): matrix-vector products only.
    lam = data["lam"]
    g = data["G"] @ r
    c = data["sd0"] * (data["V"] @ (g / (var + lam)))
    m = r.shape[0]
    resid = r - B @ c
    quad = resid @ resid / var + jnp.sum(c * c / (data["sd0"] ** 2))
    logdet = m * jnp.log(var) + jnp.sum(jnp.log1p(lam / var))
    numpyro.factor("y", -0.5 * (quad + logdet + m * jnp.log(2.0 * jnp.pi)))
    for j, (c, window, after, lift, se) in enumerate(data["lifts"]):
        e_off = e[:, c] - _adstock(window[:, None], alpha[c:c + 1], jnp.zeros(1))[:, 0]
        f_off = 1.0 / (1.0 + jnp.power(k[c] / jnp.maximum(e_off, 1e-12), s[c]))
        model_lift = beta[c] * jnp.sum((f[:, c] - f_off) * eta[:, c] * after)
        numpyro.sample(f"lift_{j}", dist.Normal(model_lift, se), obs=lift)


def inflection_penalty(kappa, s):
    """Log prior weight that an S-shaped curve's usual spend lies past its inflection (0 there).

    A channel funded for years in the convex part of its curve (where each next yuan returns
    more than the last) is not what a history of planned spend shows, and a posterior mean that
    says so has the planner drop the channel. With k = κ · (mean steady-state adstock), the
    inflection over that adstock is κ·((s−1)/(s+1))^(1/s) for s > 1 (none for s ≤ 1); where it
    exceeds 1, its log gets a half-normal of sd :data:`INFLECTION_SD`. JAX or numpy arrays (the
    formula of ``models.curves._hill_inflection``, written with jnp.where so s ≤ 1 has a gradient).
    """
    import jax.numpy as jnp

    bend = jnp.where(s > 1.0, kappa * jnp.power(jnp.clip((s - 1.0) / (s + 1.0), 1e-12, 1.0), 1.0 / s), 0.0)
    return -0.5 * jnp.square(jnp.log(jnp.maximum(bend, 1.0)) / INFLECTION_SD)


def _basis(design) -> np.ndarray:
    """The baseline's columns ``[1, t, hinges, seasonal]`` (periods × k)."""
    return design.basis()


def _prior_moments(design, priors: Priors) -> tuple[np.ndarray, np.ndarray]:
    """Prior means and precisions of the baseline coefficients, in the order of :func:`_basis`:
    intercept N(1, 1), slope N(0, 0.5²), changepoints N(0, scale²), seasonal N(0, sd²)."""
    m = design.hinges.shape[1]
    k = design.seasonal.shape[1]
    mean = np.concatenate([[1.0, 0.0], np.zeros(m + k)])
    sd = np.concatenate([[1.0, 0.5], np.full(m, priors.changepoint_scale), np.full(k, priors.seasonal_sd)])
    return mean, 1.0 / sd**2


def usual_spend(spend, mask) -> np.ndarray:
    """Each channel's mean spend per fitted period (in ``spend``'s units): the scale of its
    half-saturation k.

    A channel with no spend in the fitted periods (all of it in the burn-in, or after the
    training periods of the holdout run) takes its mean over the periods it did spend in, 1 if it
    never spent: with k = 0 the sampler's gradient was NaN (0^s · log 0) and every transition
    divergent, for all channels. Its β is 0 either way, having spent nothing where the model is fitted.
    """
    X = np.asarray(spend, dtype=float)
    fitted = X[np.asarray(mask) > 0].mean(axis=0)
    active = (X > 0).sum(axis=0)
    anywhere = np.where(active > 0, X.sum(axis=0) / np.maximum(active, 1), 1.0)
    return np.where(fitted > 0, fitted, anywhere)


def _arrays(data: PosteriorData, priors: Priors) -> dict:
    import jax.numpy as jnp

    X = np.asarray(data.spend, dtype=float) / data.scale
    d = data.design
    rows = np.nonzero(np.asarray(data.mask) > 0)[0]
    B = _basis(d)[rows]
    m0, prec0 = _prior_moments(d, priors)
    sd0 = 1.0 / np.sqrt(prec0)
    lam, V = np.linalg.eigh((sd0[:, None] * (B.T @ B)) * sd0[None, :])
    lam = np.maximum(lam, 0.0)
    G = V.T @ (sd0[:, None] * B.T)
    f32 = lambda a: jnp.asarray(a, dtype=jnp.float32)  # noqa: E731
    y = np.asarray(data.y, dtype=float) / data.scale
    return {
        "X": f32(X), "y": f32(y), "mask": f32(data.mask), "rows": jnp.asarray(rows),
        "warm": f32(X[:_WARM].mean(axis=0)), "xbar": f32(usual_spend(X, data.mask)),
        "B": f32(B), "m0": f32(m0), "sd0": f32(sd0), "lam": f32(lam), "V": f32(V), "G": f32(G),
        "z": None if d.efficiency is None else f32(d.efficiency), "daily": data.daily,
        "lifts": [(int(c), f32(np.asarray(w) / data.scale), f32(a), float(lift) / data.scale, float(se) / data.scale)
                  for c, w, a, lift, se in data.lifts],
    }


def baseline_draws(data: PosteriorData, priors: Priors, media: np.ndarray, sigma: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Baseline per draw and period (money): coefficients drawn from their Gaussian conditional
    given each draw's media (draws × periods, in KPI units ÷ scale) and noise σ."""
    d = data.design
    rows = np.nonzero(np.asarray(data.mask) > 0)[0]
    Bfull = _basis(d)
    B = Bfull[rows]
    m0, prec0 = _prior_moments(d, priors)
    y = np.asarray(data.y, dtype=float)[rows] / data.scale
    BtB = B.T @ B
    out = np.empty((media.shape[0], Bfull.shape[0]))
    for i in range(media.shape[0]):
        var = float(sigma[i]) ** 2
        A = np.diag(prec0) + BtB / var
        L = np.linalg.cholesky(A)
        rhs = prec0 * m0 + B.T @ (y - media[i, rows]) / var
        mean = np.linalg.solve(A, rhs)
        coef = mean + np.linalg.solve(L.T, rng.standard_normal(mean.size))
        out[i] = Bfull @ coef
    return out * data.scale


def sample_posterior(data: PosteriorData, priors: Priors | None = None, *, warmup: int = 400, draws: int = 400,
                     chains: int = 2, cores: int | None = None, seed: int = 0, progress=None) -> Posterior:
    """Sample the model's posterior with NUTS.

    Parameters
    ----------
    data : PosteriorData
    priors : Priors, optional
    warmup, draws : int
        Iterations per chain (adaptation, then kept).
    chains : int
        Chains; run in parallel on up to ``cores`` CPU cores (None: all), else one after another.
    seed : int
        The same seed and data give the same draws.
    progress : callable, optional
        ``progress(done, total)`` in iterations of all chains.

    Returns
    -------
    Posterior
    """
    priors = priors or Priors()
    cores = max(1, min(chains, cores or os.cpu_count() or 1))
    jax = _import_jax(cores)
    from numpyro.diagnostics import summary
    from numpyro.infer import MCMC, NUTS, init_to_median

    parallel = cores > 1 and jax.local_device_count() >= chains
    arrays = _arrays(data, priors)
    # Depth 7 (≤ 127 leapfrog steps): the posterior of a weakly identified mix has long ridges and
    # depth 8 doubles the time for about the same effective draws (measured on the study's worlds).
    kernel = NUTS(_model, init_strategy=init_to_median(num_samples=15), target_accept_prob=0.85, max_tree_depth=7)
    total = chains * (warmup + draws)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="There are not enough devices to run parallel chains")
        mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=chains,
                    chain_method="parallel" if parallel else "sequential", progress_bar=False)
        t0 = time.perf_counter()
        # One run: each separate run (warm-up, chunks of draws) compiles the sampler again,
        # which cost more than the sampling itself; progress is reported before and after.
        if progress:
            progress(0, total)
        mcmc.run(jax.random.PRNGKey(seed), arrays, priors, extra_fields=("diverging",))
        if progress:
            progress(total, total)
        seconds = time.perf_counter() - t0
    by_chain = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    by_chain["diverging"] = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["diverging"])
    del mcmc
    # Every compiled sampler holds its machine code in memory mappings that XLA only releases
    # with its caches: ~1,300 mappings a fit, so a process that fits ~50 models (a notebook, the
    # recovery study, the test suite) reaches the kernel's limit (vm.max_map_count, 65,530) and
    # LLVM fails with "Cannot allocate memory". The next fit reloads from the persistent cache.
    jax.clear_caches()
    keys = [k for k in ("alpha", "kappa", "log_s", "roi_z", "roi_mu", "roi_tau", "theta") if k in by_chain]
    summ = summary({k: by_chain[k] for k in keys}, group_by_chain=True)
    rhat = max(float(np.nanmax(np.atleast_1d(v["r_hat"]))) for v in summ.values())
    ess = min(float(np.nanmin(np.atleast_1d(v["n_eff"]))) for v in summ.values())
    flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in by_chain.items()}
    scale = data.scale
    alpha = flat["alpha"].astype(float)
    xbar = usual_spend(data.spend, data.mask)
    k = flat["kappa"].astype(float) * xbar[None, :] / (1.0 - alpha)
    theta = flat["theta"].astype(float) if "theta" in flat else np.zeros_like(alpha)
    diagnostics = {"r_hat": rhat, "ess": ess, "divergences": int(flat["diverging"].sum()), "chains": chains,
                   "draws": int(alpha.shape[0]), "warmup": warmup, "seconds": round(seconds, 2),
                   "parallel": bool(parallel)}
    logger.info("NUTS: %d chains × %d draws in %.1f s (R̂ ≤ %.3f, ESS ≥ %.0f, %d divergent)", chains, draws, seconds,
                rhat, ess, diagnostics["divergences"])
    baseline = baseline_draws(data, priors, flat["media"].astype(float), flat["sigma"].astype(float),
                              np.random.default_rng(seed))
    return Posterior(alpha=alpha, k=k, s=flat["s"].astype(float), beta=flat["beta"].astype(float) * scale,
                     theta=theta, roi=flat["roi"].astype(float), baseline=baseline,
                     sigma=flat["sigma"].astype(float) * scale,
                     log_roi_prior_sd=float(math.hypot(priors.roi[1], priors.roi_spread)),
                     diagnostics=diagnostics, priors=priors.as_dict())
