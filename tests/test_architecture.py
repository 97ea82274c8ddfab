"""The shape of the code, checked: no module-level import cycle, and no runtime function
over 60 lines outside the Numba kernels (the import rules themselves are import-linter
contracts in pyproject.toml, checked by ``make lint``)."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "sources", "sinks")
MAX_FUNCTION_LINES = 60
KERNEL_DIR = REPO / "pipeline" / "infer" / "kernels"


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        on_stack.add(m)
        for n in graph.find_modules_directly_imported_by(m):
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in on_stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            component = []
            while True:
                n = stack.pop()
                on_stack.discard(n)
                component.append(n)
                if n == m:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_level_import_cycle():
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def _is_kernel(node: ast.FunctionDef, path: Path) -> bool:
    """Numba kernels: @njit functions, and the CUDA kernels compiled with cuda.jit(fn)."""
    decorators = [ast.unparse(d) for d in node.decorator_list]
    return any("njit" in d or "jit" in d for d in decorators) or (path.parent == KERNEL_DIR and path.stem == "cuda"
                                                                   and node.name.startswith("_"))


def test_no_runtime_function_over_60_lines():
    long = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not _is_kernel(node, path):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_old_postprocess_import_still_works_with_a_deprecation_warning():
    import importlib
    import sys

    import pytest

    sys.modules.pop("pipeline.postprocess", None)
    with pytest.warns(DeprecationWarning, match="pipeline.infer"):
        old = importlib.import_module("pipeline.postprocess")
    from pipeline.infer import postprocess_segmentation

    assert old.postprocess_segmentation is postprocess_segmentation
