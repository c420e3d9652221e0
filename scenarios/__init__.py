"""Scenario files (TOML): load and validate what to plan; bundled examples.

The loader (and with it numpy, PuLP and the optimizer) is imported on first use, so commands
that only read the run ledger start fast.
"""

from importlib import resources
from pathlib import Path

from scenarios.errors import ScenarioError

__all__ = ["Scenario", "ScenarioError", "example_path", "load_scenario", "scenario_from_dict"]

_LAZY = {"Scenario", "load_scenario", "scenario_from_dict"}


def __getattr__(name: str):
    if name in _LAZY:
        from scenarios import schema

        return getattr(schema, name)
    raise AttributeError(f"module 'scenarios' has no attribute {name!r}")


def example_path(name: str = "quarterly.toml") -> Path:
    """Path of a bundled example file (installed as package data)."""
    return Path(str(resources.files("scenarios") / "examples" / name))
