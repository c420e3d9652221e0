"""Typed errors raised by optimizer/.

An infeasible plan is *not* an exception: it is an :class:`~optimizer.result.Allocation` with
``status == "infeasible"`` and a diagnosis. Exceptions are for things that should not happen.
"""


class SolverError(RuntimeError):
    """The LP/MILP solver failed (not available, crashed, or returned an unusable status)."""


class ProblemError(ValueError):
    """A problem object is malformed in a way validation should have caught."""
