"""Allocate a budget across channels: response curves → LP (PuLP + HiGHS) → Allocation."""

from optimizer.errors import ProblemError, SolverError
from optimizer.problem import OBJECTIVES, Channel, Group, Problem, channel_bounds
from optimizer.result import Allocation, Binding, ChannelResult, GroupResult, PlanSummary
from optimizer.solve import optimize

__all__ = [
    "OBJECTIVES",
    "Allocation",
    "Binding",
    "Channel",
    "ChannelResult",
    "Group",
    "GroupResult",
    "PlanSummary",
    "Problem",
    "ProblemError",
    "SolverError",
    "channel_bounds",
    "optimize",
]
