"""The optimizer's rooms keep their walls (issue 10): a newcomer can rely on them.

- no module imports an optimizer module's underscore names;
- no import circles between the optimizer's modules;
- cli.py and scenarios/ reach the optimizer through its public face, ``optimizer``;
- every module can be read in one sitting;
- only the optimizer imports pulp, and only its backend (highs.py) reaches highspy.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPTIMIZER = sorted((ROOT / "optimizer").glob("*.py"))
MAX_LINES = 500


def _imports(path: Path):
    """(module, names) of every import in ``path``, outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []


def _python_files():
    for folder in ("optimizer", "scenarios", "models", "benchmarks"):
        yield from sorted((ROOT / folder).glob("*.py"))
    yield ROOT / "cli.py"


def test_nothing_imports_an_optimizer_modules_private_names():
    offences = []
    for path in _python_files():
        for module, names in _imports(path):
            if module.split(".")[0] != "optimizer":
                continue
            for name in names:
                if name.startswith("_") and not name.startswith("__"):
                    offences.append(f"{path.relative_to(ROOT)}: from {module} import {name}")
    assert offences == []


def test_no_import_circles_in_the_optimizer():
    graph = {}
    for path in OPTIMIZER:
        here = f"optimizer.{path.stem}" if path.stem != "__init__" else "optimizer"
        deps = set()
        for module, names in _imports(path):
            if module == "optimizer":  # `from optimizer import diagnose` names a module
                deps.update(f"optimizer.{n}" for n in names if (ROOT / "optimizer" / f"{n}.py").exists())
            elif module.startswith("optimizer."):
                deps.add(module)
        graph[here] = deps - {here}
    graph.pop("optimizer")  # the public face imports everything; nothing imports it back
    seen, stack, circles = set(), [], []

    def visit(node):
        if node in stack:
            circles.append(" → ".join(stack[stack.index(node):] + [node]))
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            visit(dep)
        stack.pop()

    for node in sorted(graph):
        visit(node)
    assert circles == []


def test_cli_and_scenarios_use_the_public_face_only():
    offences = []
    for path in [ROOT / "cli.py", *sorted((ROOT / "scenarios").glob("*.py"))]:
        for module, names in _imports(path):
            if module.startswith("optimizer."):
                offences.append(f"{path.relative_to(ROOT)}: from {module} import {', '.join(names)}")
    assert offences == []


def test_every_optimizer_module_reads_in_one_sitting():
    long = {p.name: n for p in OPTIMIZER if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_only_the_optimizer_imports_pulp_and_only_its_backend_imports_highspy():
    pulp, highspy = [], []
    for path in _python_files():
        for module, _ in _imports(path):
            where = str(path.relative_to(ROOT))
            if module.split(".")[0] == "pulp" and not where.startswith("optimizer/"):
                pulp.append(where)
            if module.split(".")[0] == "highspy" and where != "optimizer/highs.py":
                highspy.append(where)
    assert (pulp, highspy) == ([], [])
