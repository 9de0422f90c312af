"""The house keeps its design: layers import only downwards, no import circles, one owner of the run-folder layout.

Every import counts, the lazy ones inside functions too: a circle that only closes at run time is still a circle.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from studio.runs import RunFolder

ROOT = Path(__file__).resolve().parents[1]
# Lower layers never import higher ones; modules of one layer may import each other (without circles).
LAYERS: list[tuple[str, ...]] = [
    ("studio", "studio.errors", "studio.examples", "studio.settings"),
    ("studio.runs", "studio.presets"),
    ("studio.data",),
    ("studio.model",),
    ("studio.train",),
    ("studio.evaluate",),
    ("studio.publish",),
    ("studio.jobqueue", "studio.jobs", "studio.stages", "studio.pipeline", "studio.demo"),
    ("studio.cli", "studio.cli_train", "studio.cli_compare", "studio.cli_judge", "studio.cli_data", "studio.cli_runs",
     "studio.cli_export", "studio.__main__"),
    ("ui",),
    ("app",),
    ("bench",),
]


def module_name(path: Path) -> str:
    """studio/data/loaders.py -> studio.data.loaders; a package's __init__ is the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_files() -> dict[str, Path]:
    """Every module of studio/, ui/, bench/ and app.py."""
    files = [ROOT / "app.py", *ROOT.glob("studio/**/*.py"), *ROOT.glob("ui/**/*.py"), *ROOT.glob("bench/**/*.py")]
    return {module_name(p): p for p in files}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The project modules a file imports (module level and inside functions), resolved to module names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from studio.train import steps` imports the module studio.train.steps.
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def layer_of(module: str) -> int:
    """The index of the layer a module belongs to (its longest matching prefix)."""
    best, index = -1, -1
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, index = len(prefix), i
    assert index >= 0, f"{module} belongs to no layer; add it to LAYERS"
    return index


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = project_files()
    return {name: imports_of(path, set(files)) - {name} for name, path in files.items()}


def test_every_module_has_a_layer(graph):
    for module in graph:
        layer_of(module)


def test_lower_layers_never_import_higher_ones(graph):
    upward = [f"{module} -> {target}" for module, targets in graph.items() for target in targets
              if layer_of(target) > layer_of(module)]
    assert upward == []


def test_there_are_no_import_circles(graph):
    # A package's __init__ is where Python starts importing its children, so edges into a bare package are
    # followed only when its __init__ itself imports something.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert circles == []


def test_the_library_never_imports_gradio():
    for name, path in project_files().items():
        if name.startswith("studio"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
            assert not any(m == "gradio" or m.startswith("gradio.") for m in modules), name


def run_folder_names() -> set[str]:
    """The file and folder names RunFolder's layout spells."""
    folder = RunFolder(Path("/run"))
    paths = [getattr(folder, name) for name in dir(RunFolder)
             if isinstance(getattr(RunFolder, name, None), property) and name != "run_id"]
    return {p.name for p in paths if isinstance(p, Path)} | {folder.split_file(s).name for s in ("train", "test")}


def string_constants(tree: ast.AST) -> list[tuple[int, str]]:
    """String literals that are not docstrings, with their line numbers."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_only_runs_spells_the_run_folder_layout():
    names = run_folder_names()
    assert {"settings.json", "run.json", "metrics.jsonl", "adapter", "checkpoints", "report.html"} <= names
    spelled = []
    for module, path in project_files().items():
        if module == "studio.runs":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # A join such as `run_dir / "adapter"` or a literal file name such as "comparison.json".
        for node in ast.walk(tree):
            if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant)
                    and node.right.value in names):
                spelled.append(f"{module}:{node.lineno} / {node.right.value!r}")
        spelled += [f"{module}:{line} {text!r}" for line, text in string_constants(tree)
                    if "." in text and text in names]
    assert spelled == []
