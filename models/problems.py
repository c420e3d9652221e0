"""Keep long problem lists readable: a few examples of each kind, then a count.

A file with one systematic fault (several rows per date in a geo-level file, a column of text)
produces thousands of problems that say the same thing. Listing them all buries every other
problem and the hint about what is wrong. :func:`cap_problems` keeps the first few of each kind
and replaces the rest with one line, ``… and 2,845 more like this``, right after the last one
shown.

Used for history files (:mod:`models.history`); usable for any list of ``place: message``
problems, such as a scenario's.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence

__all__ = ["cap_problems", "problem_kind", "REPEATS_SHOWN"]

#: Problems of one kind listed before the rest are counted.
REPEATS_SHOWN = 5

# A problem's place and the values in it vary between problems of the same kind.
_ROW = re.compile(r"\brows? \d[\d,–-]*")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"[-+]?\d[\d,.:/-]*")


def problem_kind(problem: str) -> str:
    """What a problem says once its row numbers, quoted values and numbers are masked.

    ``"h.csv row 17: date 2024-03-04 appears twice (first at row 3)"`` and ``"h.csv row 18: date
    2024-03-11 appears twice (first at row 4)"`` are the same kind: ``"h.csv row #: date #
    appears twice (first at row #)"``.
    """
    text = _ROW.sub("row #", problem)
    text = _QUOTED.sub("#", text)
    return _NUMBER.sub("#", text)


def cap_problems(problems: Sequence[str], limit: int = REPEATS_SHOWN,
                 kinds: Sequence[Hashable] | None = None) -> list[str]:
    """The first ``limit`` problems of each kind, each kind's rest counted in one line.

    Parameters
    ----------
    problems : sequence of str
        In the order they should be shown.
    limit : int
        Problems of one kind listed in full (≥ 1).
    kinds : sequence, optional
        The kind of each problem (parallel to ``problems``); by default :func:`problem_kind`.

    Returns
    -------
    list of str
        The kept problems in their order; after the last one kept of a kind that had more, the
        line ``… and N more like this``.
    """
    if limit < 1:
        raise ValueError(f"limit must be ≥ 1, got {limit}")
    if kinds is None:
        kinds = [problem_kind(p) for p in problems]
    elif len(kinds) != len(problems):
        raise ValueError(f"{len(kinds)} kinds for {len(problems)} problems")
    seen: dict[Hashable, int] = {}
    last_shown: dict[Hashable, int] = {}  # kind → position in `kept` of its last problem shown
    kept: list[str] = []
    for problem, kind in zip(problems, kinds):
        seen[kind] = seen.get(kind, 0) + 1
        if seen[kind] <= limit:
            kept.append(problem)
            last_shown[kind] = len(kept) - 1
    hidden = {kind: n - limit for kind, n in seen.items() if n > limit}
    # Insert from the back so earlier positions stay valid.
    for kind in sorted(hidden, key=lambda k: last_shown[k], reverse=True):
        kept.insert(last_shown[kind] + 1, f"… and {hidden[kind]:,} more like this")
    return kept
