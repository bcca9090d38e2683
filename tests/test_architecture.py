"""The module layout holds: imports point one way (no cycles; the engine knows neither portrait mode nor the facade),
no module reaches into another's private names, and the engine's functions stay short enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "style_core"
# The engine and everything under it: a plain or guided run, knowing nothing of faces, the facade or the UIs.
ENGINE_SIDE = {
    "engine", "objective", "scale_run", "networks", "losses", "stats", "frames", "backbone", "lbfgs", "graphs",
    "config", "images", "weights", "color", "devices", "tiling", "memory", "timing",
}
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _our_modules() -> dict[str, Path]:
    files = [*PACKAGE.rglob("*.py"), ROOT / "app.py", *(ROOT / "benchmarks").glob("*.py")]
    return {_module_name(p): p for p in files}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str, str]]:
    """(module, imported name or "", the name it is bound to) for each import of our modules, relative ones
    resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, "", a.asname or a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = ".".join(p for p in (base if node.level else "", node.module or "") if p)
            for alias in node.names:
                child = f"{target}.{alias.name}"
                bound = alias.asname or alias.name
                found.append((child, "", bound) if child in modules else (target, alias.name, bound))
    return [f for f in found if f[0] in modules]


def test_imports_point_one_way():
    modules = _our_modules()
    graph = {m: {imp[0] for imp in _imports(m, p, modules)} for m, p in modules.items() if m.startswith("style_core")}
    for side in ENGINE_SIDE:
        reached = {d for d in graph[f"style_core.{side}"] if d.split(".")[1] not in ENGINE_SIDE}
        assert not reached, f"style_core.{side} imports {reached}"
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in graph.get(node, ()):
            assert state.get(dep) != 1, "import cycle: " + " -> ".join([*path, node, dep])
            if dep not in state:
                visit(dep, [*path, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_no_module_reaches_into_another_modules_private_names():
    modules = _our_modules()
    offences = []
    for name, path in modules.items():
        imported = _imports(name, path, modules)
        offences += [f"{name}: from {m} import {n}" for m, n, _ in imported if n.startswith("_") and m != name]
        aliases = {bound for _, n, bound in imported if not n}  # names bound to one of our modules
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                offences.append(f"{name}:{node.lineno}: {node.value.id}.{node.attr}")
    assert not offences, offences


def test_the_engine_has_no_function_over_sixty_lines():
    long = []
    for module in ("engine", "objective", "scale_run", "networks", "api", "losses", "stats", "tiling", "memory"):
        tree = ast.parse((PACKAGE / f"{module}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {lines} lines")
    assert not long, long
