"""Allocate a budget across channels: response curves → LP (PuLP + HiGHS) → Allocation."""

from optimizer.errors import ProblemError, SolverError
from optimizer.problem import OBJECTIVES, Channel, Group, Problem, channel_bounds
from optimizer.result import Allocation, Binding, ChannelResult, GroupResult, PeriodAllocation, PlanSummary
from optimizer.solve import optimize
from optimizer.periods import Pacing, PeriodChannel, PeriodProblem, from_problem, optimize_periods
from optimizer.risk import RiskPlans, optimize_cvar, return_distribution

__all__ = [
    "OBJECTIVES",
    "Allocation",
    "Pacing",
    "PeriodAllocation",
    "PeriodChannel",
    "PeriodProblem",
    "RiskPlans",
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
    "from_problem",
    "optimize",
    "optimize_cvar",
    "optimize_periods",
    "return_distribution",
]
