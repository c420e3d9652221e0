"""Typed errors and warnings raised by models/."""


class HistoryError(ValueError):
    """A history file failed validation; ``problems`` lists every problem with its place."""

    def __init__(self, problems: list[str], source: str = "history"):
        self.problems = list(problems)
        self.source = source
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n" + "\n".join(self.problems))


class NotFittedError(RuntimeError):
    """A model was used before ``fit`` was called."""


class ModelFileError(ValueError):
    """A saved model file could not be read (bad JSON, wrong schema_version, missing keys)."""


class ConvergenceWarning(UserWarning):
    """Numerical trouble while fitting: a parameter at its bound, an optimiser that did not converge."""
