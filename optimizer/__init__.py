"""Allocate a budget across channels: response curves → LP (PuLP + HiGHS) → Allocation.

The public face: notebook users, cli.py and scenarios/ import from here only
(``from optimizer import Problem, optimize``). Inside there is one planner, a plan period by
period (a single-horizon plan is the plan of one period), one concept a module:

* what to plan: problem.py (one horizon), periods.py (period by period, and one_period);
* the LP: period_model.py (columns, named constraints, exact mode's MILP), build.py (the curves
  as hypograph rows or segments), highs.py (where the LP reaches HiGHS);
* the pipeline: solve.py (optimize, optimize_periods and the one refinement loop), refine.py
  (breakpoints and the duality-bound stopping rule), cents.py (money to the cent), report.py
  and marginal.py (the report), diagnose.py (infeasibility);
* beside it: risk.py (CVaR over curve samples, and the sample LP), guard.py (the plan that does
  no harm against a reference over curve samples), result.py (results and their JSON), exact.py
  (exact optima for tests and benchmarks).
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
from optimizer.marginal import break_even_budget, spend_is_set_by_limits
from optimizer.periods import AfterHorizonCurve, Pacing, PeriodChannel, PeriodProblem, effective_spend, from_problem, plan_returns, plan_violations
from optimizer.solve import optimize, optimize_periods
from optimizer.risk import RiskPlans, optimize_cvar, optimize_cvar_periods, return_distribution
from optimizer.guard import GuardedPlan, optimize_guarded, optimize_guarded_periods

__all__ = [
    "AfterHorizonCurve",
    "Allocation",
    "Binding",
    "Channel",
    "ChannelResult",
    "Group",
    "GroupResult",
    "GuardedPlan",
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
    "spend_is_set_by_limits",
    "channel_bounds",
    "currency_symbol",
    "effective_spend",
    "from_problem",
    "money",
    "optimize",
    "optimize_cvar",
    "optimize_cvar_periods",
    "optimize_guarded",
    "optimize_guarded_periods",
    "optimize_periods",
    "plan_returns",
    "plan_violations",
    "return_distribution",
    "unit_name",
]
