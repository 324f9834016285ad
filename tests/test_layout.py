"""The package layout follows the one-way data flow of the brief.

``io -> suv -> anatomy / segment -> measure -> track -> response -> study -> report``, with
the shared foundations (``errors``, ``provenance``, ``_atomic``, ``_version``) below
everything and the composers (``batch``, ``sample``, ``_cli``, ``cli``) above. The test reads
every module's ``import`` statements with :mod:`ast` (also those inside functions, which are
imports all the same) and checks:

* no module imports a package to its right in the flow;
* no module reads the package face (``from emlesion import name`` / ``import emlesion``),
  except the face itself;
* the module-level import graph (what runs at import time, ``TYPE_CHECKING`` blocks
  excluded) has no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "emlesion"

#: Position of each top-level package or module in the flow (a module may import its own
#: level and the levels to its left). ``segment`` uses the anatomy's organ masks, so it sits
#: just right of ``anatomy``.
RANK: dict[str, float] = {
    "errors": 0, "provenance": 0, "parallel": 0, "_atomic": 0, "_version": 0,
    "io": 1, "suv": 2, "anatomy": 3, "segment": 3.5, "measure": 4, "track": 5,
    "response": 6, "study": 7, "report": 8, "batch": 9, "sample": 9, "_cli": 10, "cli": 11,
    "__main__": 12,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, *, top_level_only: bool) -> list[tuple[str, int]]:
    """``(imported emlesion module, line)`` of every import of ``tree``."""
    out: list[tuple[str, int]] = []
    package = module if (PACKAGE.parent / module.replace(".", "/")).is_dir() else \
        module.rsplit(".", 1)[0]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if top_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                     ast.Lambda)):
                continue
            if top_level_only and isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno) for a in child.names
                           if a.name.split(".")[0] == "emlesion")
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[:len(base) - (child.level - 1)]
                    name = ".".join([*base, child.module] if child.module else base)
                else:
                    name = child.module or ""
                if name.split(".")[0] != "emlesion":
                    continue
                for alias in child.names:
                    sub = f"{name}.{alias.name}"
                    is_module = ((PACKAGE.parent / sub.replace(".", "/")).is_dir()
                                 or (PACKAGE.parent / (sub.replace(".", "/") + ".py")).is_file())
                    out.append((sub if is_module else name, child.lineno))
            visit(child)

    visit(tree)
    return out


def _all_modules() -> dict[str, ast.AST]:
    return {_module_name(p): ast.parse(p.read_text(encoding="utf-8"), str(p))
            for p in sorted(PACKAGE.rglob("*.py"))}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_has_a_rank() -> None:
    tops = {_top(m) for m in _all_modules()} - {""}
    assert tops <= set(RANK), f"place {sorted(tops - set(RANK))} in RANK"


def test_no_import_to_the_right_and_no_package_face() -> None:
    bad: list[str] = []
    for module, tree in _all_modules().items():
        src = _top(module)
        for name, line in _imports(tree, module, top_level_only=False):
            dst = _top(name)
            if module == "emlesion":
                continue  # the face lazily re-exports the entry points
            if dst == "":
                bad.append(f"{module}:{line} imports the package face ({name})")
            elif dst != src and RANK[dst] > RANK[src]:
                bad.append(f"{module}:{line} imports {name} (to its right: {src} -> {dst})")
    assert not bad, "\n".join(bad)


def test_module_level_imports_have_no_cycle() -> None:
    modules = _all_modules()
    graph = {m: {n for n, _ in _imports(t, m, top_level_only=True) if n in modules and n != m}
             for m, t in modules.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            # importing a submodule first imports its package: a package -> its own child is
            # how packages are built, not a cycle
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            dfs(m)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_catches_a_violation() -> None:
    # the checks are not vacuous: an import of report from measure is to the right, and a
    # module importing __version__ from the face is caught
    tree = ast.parse("from emlesion.report import report_dict\nfrom emlesion import __version__\n")
    found = _imports(tree, "emlesion.measure.lesions", top_level_only=False)
    assert ("emlesion.report", 1) in found and ("emlesion", 2) in found
    assert RANK[_top("emlesion.report")] > RANK[_top("emlesion.measure.lesions")]
