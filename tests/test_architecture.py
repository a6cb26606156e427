"""The shape of the code: dependencies point down, from the faces through the stages to the base.

Read from the source's imports (every `import`, also the ones inside functions and under TYPE_CHECKING:
a type is a dependency too). A unit is a subpackage of `sagelab` or a module at its top level.
"""

from __future__ import annotations

import ast
import collections
from pathlib import Path

import sagelab

SOURCE = Path(sagelab.__file__).resolve().parent
#: Who may know the composition root: the faces, and the entry points that start a server or read its faces.
KNOWS_THE_PLATFORM = {"sagelab.api", "sagelab.server", "sagelab.cli", "sagelab.support_table", "sagelab.platform"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> set[str]:
    """Every `sagelab...` module name the file imports, resolved (relative imports included)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("sagelab.")}


def _unit(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _imports_by_module() -> dict[str, set[str]]:
    return {_module_name(path): _imported(path) for path in SOURCE.rglob("*.py")}


def _unit_graph() -> dict[str, dict[str, set[str]]]:
    """unit -> unit it imports -> the modules that import it (for the failure message)."""
    graph: dict[str, dict[str, set[str]]] = collections.defaultdict(lambda: collections.defaultdict(set))
    for module, imported in _imports_by_module().items():
        for name in imported:
            source, target = _unit(module), _unit(name)
            if source != target and target != "sagelab":
                graph[source][target].add(module)
    return graph


def _module_graph() -> dict[str, dict[str, set[str]]]:
    """module -> module it imports (a name imported from a module counts as that module)."""
    imports = _imports_by_module()
    graph: dict[str, dict[str, set[str]]] = collections.defaultdict(lambda: collections.defaultdict(set))
    for module, imported in imports.items():
        for name in imported:
            while name and name not in imports:
                name = name.rpartition(".")[0]
            # A package's own __init__ is not a dependency of the modules inside it.
            if name and name != module and not module.startswith(name + "."):
                graph[module][name].add(module)
    return graph


def _cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """The strongly connected components with more than one unit (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, {}):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_stage_module_imports_the_platform():
    offenders = sorted(module for module, imported in _imports_by_module().items()
                       if "sagelab.platform" in imported and _unit(module) not in KNOWS_THE_PLATFORM)
    assert not offenders, (f"{offenders} import sagelab.platform: a stage service is given the parts it uses "
                           "(the resource store, the blobs, the engine, an Account...) by the Platform instead.")


def test_packages_import_each_other_without_a_cycle():
    graph = _unit_graph()
    cycles = _cycles(graph)
    explained = [" -> ".join(cycle) + ": " + "; ".join(
        f"{a} -> {b} (in {', '.join(sorted(graph[a][b]))})" for a in cycle for b in cycle if b in graph[a])
        for cycle in cycles]
    assert not cycles, "import cycles between packages:\n" + "\n".join(explained)


def test_modules_import_each_other_without_a_cycle():
    cycles = _cycles(_module_graph())
    assert not cycles, "import cycles between modules: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_checks_see_a_cycle_and_an_import_of_the_platform():
    """The two checks above would fail on the code as it was: read a graph with a cycle through a stage."""
    graph = {"sagelab.training": {"sagelab.platform": {"sagelab.training.runner"}},
             "sagelab.platform": {"sagelab.training": {"sagelab.platform"}}}
    assert _cycles(graph) == [["sagelab.platform", "sagelab.training"]]
    assert _unit("sagelab.training.runner") not in KNOWS_THE_PLATFORM
