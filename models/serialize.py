"""Save and load fitted models as JSON (never pickle).

The file keeps the minimum learned state: the settings, each channel's curve parameters, the
spend range, the carryover at the end of history, the curve samples (bootstrap resamples, or the
joint model's kept posterior draws with their campaign efficiency, ROI draws, posterior-mean
baseline and sampler diagnostics under ``joint``), the diagnostics shown by ``report()`` and,
per fitted target, the baseline weights plus Prophet's own JSON
serialisation (``prophet.serialize.model_to_json``). Prophet is stored as a model rather than as
fitted values because the planner needs the baseline for horizons not known at fit time; its
JSON is plain data and reproduces Prophet's predictions exactly.

Writes are atomic: a temporary file in the same directory, then ``os.replace``.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd

from models.atomic import write_text_atomic
from models.errors import ModelFileError, NotFittedError
from models.fit import ChannelParams, MediaMixModel, _Block

__all__ = ["SCHEMA_VERSION", "save_model", "load_model", "model_to_dict", "model_from_dict", "write_text_atomic"]

# 2: curve samples under "samples" (was "bootstrap"), the joint model's fit under "joint".
SCHEMA_VERSION = 2

_REQUIRED = ("schema_version", "settings", "channels", "groups", "frequency", "layout", "periods", "start",
             "end", "params", "spend_stats", "carryover_at_end", "samples", "joint", "blocks", "fit",
             "channel_report", "warnings")


def _plain(value):
    """numpy scalars/arrays → JSON-ready Python values (non-finite floats → None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return value


def model_to_dict(model: MediaMixModel) -> dict:
    """The fitted state of ``model`` as plain JSON-ready data."""
    if not hasattr(model, "params_"):
        raise NotFittedError("only a fitted model can be saved; call fit(history) first")
    settings = model.get_params()
    if settings.get("events"):
        settings["events"] = {k: [pd.Timestamp(d).date().isoformat() for d in v] for k, v in settings["events"].items()}
    return _plain({
        "schema_version": SCHEMA_VERSION,
        "settings": settings,
        "channels": model.channels_,
        "groups": model.groups_,
        "frequency": model.frequency_,
        "layout": model.layout_,
        "periods": model.periods_,
        "start": model.start_,
        "end": model.end_,
        "params": {c: p.as_dict() for c, p in model.params_.items()},
        "spend_stats": model.spend_stats_,
        "carryover_at_end": model.carryover_at_end_,
        "kappa_at_bound": model._kappa_at_bound,
        "roi": model.roi_,
        "samples": {c: np.asarray(v).tolist() for c, v in model.samples_.items()},
        "joint": model.joint_.to_dict() if getattr(model, "joint_", None) is not None else None,
        "blocks": [
            {"name": b.name, "channels": b.channels, "columns": b.columns, "weights": np.asarray(b.weights).tolist(),
             "baseline": b.baseline.to_dict() if b.baseline is not None else None}
            for b in model.blocks_
        ],
        "fit": model.fit_,
        "channel_report": model.channel_report_,
        "warnings": model.warnings_,
    })


def model_from_dict(data: dict, source: str = "model") -> MediaMixModel:
    """Rebuild a fitted model from :func:`model_to_dict` output.

    Raises
    ------
    ModelFileError
        Wrong ``schema_version`` or missing/malformed keys.
    """
    if not isinstance(data, dict):
        raise ModelFileError(f"{source}: expected a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ModelFileError(
            f"{source}: schema_version {version!r} is not supported (expected {SCHEMA_VERSION}); refit the model"
        )
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ModelFileError(f"{source}: missing key(s) {', '.join(missing)}")
    try:
        settings = dict(data["settings"])
        if settings.get("alpha_bounds") is not None:
            settings["alpha_bounds"] = tuple(settings["alpha_bounds"])
        model = MediaMixModel(**settings)
        model.channels_ = list(data["channels"])
        model.groups_ = dict(data["groups"])
        model.frequency_ = str(data["frequency"])
        model.layout_ = str(data["layout"])
        model.periods_ = int(data["periods"])
        model.start_ = pd.Timestamp(data["start"])
        model.end_ = pd.Timestamp(data["end"])
        model.params_ = {c: ChannelParams(**{k: float(v) for k, v in data["params"][c].items()})
                         for c in model.channels_}
        model.alpha_ = {c: p.alpha for c, p in model.params_.items()}
        model.spend_stats_ = {c: {k: float(v) for k, v in d.items()} for c, d in data["spend_stats"].items()}
        model.carryover_at_end_ = {c: float(v) for c, v in data["carryover_at_end"].items()}
        model._kappa_at_bound = {c: bool(v) for c, v in data.get("kappa_at_bound", {}).items()}
        model.roi_ = {c: float(v) for c, v in data.get("roi", {}).items()}
        model.samples_ = {c: np.asarray(v, dtype=float).reshape(-1, 4) for c, v in data["samples"].items()}
        if data["joint"] is not None:
            from models.bayes import JointFit

            model.joint_ = JointFit.from_dict(data["joint"])
        else:
            model.joint_ = None
        blocks = []
        for b in data["blocks"]:
            baseline = None
            if b["baseline"] is not None:
                from models.baseline import BaselineFit

                baseline = BaselineFit.from_dict(b["baseline"])
            blocks.append(_Block(name=b["name"], channels=list(b["channels"]), baseline=baseline,
                                 weights=np.asarray(b["weights"], dtype=float), columns=list(b["columns"])))
        model.blocks_ = blocks
        model.fit_ = dict(data["fit"])
        model.channel_report_ = [dict(r) for r in data["channel_report"]]
        model.warnings_ = list(data["warnings"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{source}: malformed model file ({type(exc).__name__}: {exc})") from None
    unknown = set(model.params_) ^ set(model.channels_)
    if unknown:
        raise ModelFileError(f"{source}: params and channels disagree on {', '.join(sorted(unknown))}")
    return model


def save_model(model: MediaMixModel, path) -> None:
    """Write ``model`` as JSON to ``path`` atomically (:func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(model_to_dict(model), ensure_ascii=False, allow_nan=False))


def load_model(path) -> MediaMixModel:
    """Read a model saved by :func:`save_model`.

    Raises
    ------
    ModelFileError
        The file is missing, not JSON, of another schema version, or lacks keys.
    """
    source = os.path.basename(os.fspath(path))
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise ModelFileError(f"{source}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{source}: not valid JSON ({exc})") from None
    return model_from_dict(data, source)
