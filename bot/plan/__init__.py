"""Read and validate plan files."""

from bot.plan.model import Phase, Plan, PlanError, PlanInvalid, Task, Unit, UnitKind
from bot.plan.parse import load_plan, parse_plan

__all__ = [
    "Phase",
    "Plan",
    "PlanError",
    "PlanInvalid",
    "Task",
    "Unit",
    "UnitKind",
    "load_plan",
    "parse_plan",
]
