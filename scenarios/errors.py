"""Typed errors raised by scenarios/."""


class ScenarioError(ValueError):
    """A scenario file failed validation; ``problems`` lists every problem with its key path."""

    def __init__(self, problems: list[str], source: str = "scenario"):
        self.problems = list(problems)
        self.source = source
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n" + "\n".join(self.problems))


class LedgerError(RuntimeError):
    """The run ledger cannot be used as asked (not a ledger, corrupted, newer schema, read-only,
    locked too long, or a conflicting record); it was left as it was."""
