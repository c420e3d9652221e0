"""Scenario files (TOML): load and validate what to plan; bundled examples."""

from importlib import resources
from pathlib import Path

from scenarios.errors import ScenarioError
from scenarios.schema import Scenario, load_scenario, scenario_from_dict

__all__ = ["Scenario", "ScenarioError", "example_path", "load_scenario", "scenario_from_dict"]


def example_path(name: str = "quarterly.toml") -> Path:
    """Path of a bundled example file (installed as package data)."""
    return Path(str(resources.files("scenarios") / "examples" / name))
