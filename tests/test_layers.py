"""The package's import graph: imports only point down the pipeline, and no modules import each other
in a circle. Every import counts, also those inside functions and under ``TYPE_CHECKING``: a lazy import
hides a dependency from the interpreter, not from the design."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "taskscout"

# Lowest first; a module belongs to the layer of its longest matching prefix, and may import modules
# of its own layer or of a lower one. The pool's storage (typed, verified entries, and the context a
# method's P1 step receives) sits below the methods; the P1 driver (pool/build.py, and anything else in
# pool/) above them, because it runs the methods.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "utilities",
        (
            "taskscout.errors",
            "taskscout.configs",
            "taskscout.io",
            "taskscout.paths",
            "taskscout.devices",
            "taskscout.progress",
            "taskscout.cluster",
        ),
    ),
    ("data", ("taskscout.data",)),
    ("encode", ("taskscout.encode",)),
    ("train", ("taskscout.train",)),
    (
        "pool storage",
        (
            "taskscout.pool.store",
            "taskscout.pool.entry",
            "taskscout.pool.schema",
            "taskscout.pool.archive",
            "taskscout.pool.config",
            "taskscout.pool.context",
        ),
    ),
    ("methods", ("taskscout.methods",)),
    ("pool build", ("taskscout.pool",)),
    ("ranking", ("taskscout.ranking",)),
    ("evaluate", ("taskscout.evaluate",)),
    ("cli", ("taskscout.cli",)),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The taskscout modules ``path`` imports (``from pkg import mod`` names the submodule)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        module = node.module if isinstance(node, ast.ImportFrom) and node.level == 0 else None
        if module is not None and module.startswith("taskscout"):
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.add(sub if sub in modules else module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("taskscout"))
    # The package root is the public facade: it imports everything (lazily) and is imported only for
    # ``__version__``; it is not part of the layering.
    found.discard("taskscout")
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) for name, path in modules.items() if name != "taskscout"}


def _layer(module: str) -> int:
    best = (-1, -1)
    for level, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = (len(prefix), level)
    assert best[1] >= 0, f"module {module} belongs to no layer; add it to LAYERS in {__file__}"
    return best[1]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_has_a_layer():
    for module in _graph():
        _layer(module)


def test_imports_only_point_down():
    upward = [
        f"{source} ({LAYERS[_layer(source)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for source, targets in sorted(_graph().items())
        for target in sorted(targets)
        if _layer(target) > _layer(source)
    ]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert not cycles, "modules importing each other in a circle:\n" + "\n".join(map(" <-> ".join, cycles))


def test_the_checks_can_fail():
    """The two checks above see what they are meant to see."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _layer("taskscout.pool.build") > _layer("taskscout.methods.base") > _layer("taskscout.pool.store")
    assert _layer("taskscout.data.readers.sword") == _layer("taskscout.data")
    modules = _modules()
    assert "taskscout.pool.context" in _imports(modules["taskscout.methods.base"], modules)
