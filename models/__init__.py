"""Response curves, history loading and fitting, forecasting."""

from models.curves import (
    CURVE_KINDS,
    ExponentialCurve,
    HillCurve,
    PointsCurve,
    ResponseCurve,
    curve_from_dict,
)

__all__ = [
    "CURVE_KINDS",
    "ExponentialCurve",
    "HillCurve",
    "PointsCurve",
    "ResponseCurve",
    "curve_from_dict",
]
