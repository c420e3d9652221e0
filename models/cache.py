"""Fit a history once: fitted models cached as JSON, keyed by the data and every setting.

``budget allocate`` on a scenario with a ``[history]`` table fits on the fly; the second run
(and every monthly job re-run on the same data) loads the cached model instead of refitting.
The key is a SHA-256 of the history file's bytes, the column mapping, the estimator settings,
the model schema version, the joint model's default priors, what method "auto" means and the
fit's revision (:data:`models.fit.FIT_REVISION`), so any change to any of them fits again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path

from models.errors import ConvergenceWarning, ModelFileError
from models.fit import MediaMixModel, naive_holdout_nrmse
from models.history import HistorySpec, load_history
from models.serialize import SCHEMA_VERSION, load_model, save_model

logger = logging.getLogger(__name__)

#: Periods above which a fit is announced as slow (about five years of daily data).
LARGE_HISTORY = 2000

#: Environment variable naming the cache folder (default: $XDG_CACHE_HOME/budget-engine).
CACHE_ENV = "BUDGET_CACHE_DIR"


def cache_dir() -> Path:
    """Where fitted models are cached."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "budget-engine"


def fit_key(path: str | Path, spec: HistorySpec, settings: dict) -> str:
    """The cache key of fitting ``path`` read with ``spec`` by an estimator with ``settings``."""
    h = hashlib.sha256()
    h.update(Path(path).read_bytes())
    # The joint model's default priors are part of what a fit means: a release that changes them
    # fits again rather than serving a model drawn under the old ones.
    from models import fit, posterior

    meta = {"spec": _plain(spec.__dict__), "settings": _plain(settings), "schema": SCHEMA_VERSION,
            "priors": posterior.Priors().as_dict(), "auto": fit.AUTO_TOTAL_KPI,
            "revision": fit.FIT_REVISION}
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def fit_history(path: str | Path, spec: HistorySpec, settings: dict | None = None, *, use_cache: bool = True,
                progress=None, check=None):
    """Load, validate and fit ``path``; reuse a cached fit of the same data and settings.

    Parameters
    ----------
    path
        History file (CSV).
    spec
        How to read it.
    settings
        Keyword arguments for :class:`models.fit.MediaMixModel`.
    use_cache
        Read and write the cache (:func:`cache_dir`).
    progress
        ``progress(done, total)`` during the bootstrap, for a progress bar.
    check
        ``check(history)`` once the history is read and valid, before any fit (a caller's own
        checks against its channels, which may raise).

    Returns
    -------
    (MediaMixModel, bool)
        The fitted model and whether it came from the cache.

    Warns
    -----
    ConvergenceWarning
        For every warning about the fit (:meth:`MediaMixModel.fit_warnings`, except the
        history's own, which :func:`load_history` logs), from the cache as from a new fit, so a
        notebook sees the same thing either way.

    Raises
    ------
    HistoryError
        The file is invalid (every problem listed); nothing is cached.
    """
    settings = dict(settings or {})
    history = load_history(path, spec)  # validates even on a cache hit: bad data never plans
    if check is not None:
        check(history)
    key = fit_key(path, spec, settings)
    target = cache_dir() / f"fit-{key}.json"
    if use_cache and target.exists():
        try:
            model = load_model(target)
            logger.info("using the cached fit %s", target)
            _score_naive(model, history)
            for message in model.fit_warnings():
                if message not in history.warnings:  # those are logged by load_history each time
                    warnings.warn(message, ConvergenceWarning, stacklevel=2)
            return model, True
        except ModelFileError as exc:
            logger.warning("ignoring an unreadable cached fit (%s); fitting again", exc)
    logger.info("fitting %d channels on %d %s periods of %s", len(history.channels), history.periods,
                history.frequency, path)
    if history.periods > LARGE_HISTORY:
        logger.warning("a large history (%d %s periods × %d channels): the fit may take many minutes; a weekly "
                       "aggregate of the same data fits in seconds and plans as well", history.periods,
                       history.frequency, len(history.channels))
    model = MediaMixModel(**settings).fit(history, progress=progress)
    if use_cache:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            save_model(model, target)
        except OSError as exc:  # a read-only cache costs time, not correctness
            logger.warning("could not cache the fit in %s: %s", target.parent, exc)
    return model, False


def _score_naive(model: MediaMixModel, history) -> None:
    """A fit cached before the naive forecast was scored on its holdout gets that score now
    (from the same history), so its quality warnings are the ones a new fit would give."""
    hold = model.fit_.get("holdout")
    if not hold or not hold.get("periods") or "naive_nrmse" in hold:
        return
    naive, method = naive_holdout_nrmse(history.target(), int(hold["periods"]), history.frequency)
    model.fit_["holdout"] = {**hold, "naive_nrmse": naive, "naive": method}
