"""Allocate a budget across channels: response curves → LP (PuLP + HiGHS) → Allocation.

The public face: notebook users, cli.py and scenarios/ import from here only. Inside, one
concept a module: problem.py / periods.py (what to plan), build.py / period_model.py (the LP),
highs.py (where the LP reaches HiGHS), refine.py (breakpoints and stopping rules), solve.py (the
planners, top to bottom), cents.py (money to the cent), report.py and marginal.py (the report),
diagnose.py (infeasibility), risk.py (CVaR over curve samples).
"""

from optimizer.errors import ProblemError, SolverError
from optimizer.problem import OBJECTIVES, Channel, Group, Problem, channel_bounds
from optimizer.result import (
    Allocation,
    Binding,
    ChannelResult,
    GroupResult,
    PeriodAllocation,
    PlanSummary,
    currency_symbol,
    money,
    unit_name,
)
from optimizer.marginal import break_even_budget
from optimizer.periods import AfterHorizonCurve, Pacing, PeriodChannel, PeriodProblem, effective_spend, from_problem, plan_returns, plan_violations
from optimizer.solve import optimize, optimize_periods
from optimizer.risk import RiskPlans, optimize_cvar, optimize_cvar_periods, return_distribution

__all__ = [
    "AfterHorizonCurve",
    "Allocation",
    "Binding",
    "Channel",
    "ChannelResult",
    "Group",
    "GroupResult",
    "OBJECTIVES",
    "Pacing",
    "PeriodAllocation",
    "PeriodChannel",
    "PeriodProblem",
    "PlanSummary",
    "Problem",
    "ProblemError",
    "RiskPlans",
    "SolverError",
    "break_even_budget",
    "channel_bounds",
    "currency_symbol",
    "effective_spend",
    "from_problem",
    "money",
    "optimize",
    "optimize_cvar",
    "optimize_cvar_periods",
    "optimize_periods",
    "plan_returns",
    "plan_violations",
    "return_distribution",
    "unit_name",
]
