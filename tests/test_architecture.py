"""The shape of the code: no import cycles inside ``crossemo_core`` (counting imports inside functions too), the core
never imports Streamlit or the app, the detector networks are trained in one loop, and scripts/README.md maps every
script."""
from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORE = REPO / "crossemo_core"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports when it runs, at module level or inside functions (absolute names)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(block.test) for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # imports for type hints only never run
            continue
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            out.add(target)
            out |= {f"{target}.{alias.name}" for alias in node.names}
    return out


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in CORE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path) if m in modules and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle between modules (packages' ``__init__`` re-exports are followed too), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles_in_the_core() -> None:
    graph = _graph()
    # a package's __init__ importing its own submodules is the usual re-export, not a cycle through the package
    for name in graph:
        graph[name] = {m for m in graph[name] if not (name.startswith(m + ".") and m in graph)}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_core_never_imports_the_app_or_streamlit() -> None:
    for path in CORE.rglob("*.py"):
        imported = _imports(path)
        assert not {m for m in imported if m.split(".")[0] in ("streamlit", "crossemo_app", "pages")}, path


def test_one_training_loop_and_one_optimiser_step() -> None:
    """SIR-HCL and every baseline train in training.Trainer; every network of the project (the readers' CNNs too)
    takes its steps through optim.optimiser_step, the one place that back-propagates."""
    sites = sorted(str(p.relative_to(REPO)) for p in CORE.rglob("*.py") if ".backward(" in p.read_text())
    assert sites == ["crossemo_core/optim.py"]
    assert not list((CORE / "baselines").glob("loop.py"))
    assert "Trainer(" not in (CORE / "experiment.py").read_text()  # runs are assembled through the methods


def test_environment_variables_are_read_in_one_place() -> None:
    """Every CROSSEMO_* variable is read (and checked) in settings.py; the others only set mediapipe's log level."""
    readers = sorted(str(p.relative_to(REPO)) for p in CORE.rglob("*.py")
                     if any(s in p.read_text() for s in ("environ.get(", "getenv(", "environ[")))
    assert readers == ["crossemo_core/settings.py"]
    from crossemo_core.settings import ENVIRONMENT

    mentioned = {name for p in CORE.rglob("*.py") for name in ENVIRONMENT if name in p.read_text()}
    assert mentioned == set(ENVIRONMENT)


def test_every_script_is_listed_in_the_scripts_readme() -> None:
    """``scripts/README.md`` is the newcomer's map of the recipes, evaluations and experiments: none may be missing."""
    listed = (REPO / "scripts" / "README.md").read_text(encoding="utf-8")
    scripts = sorted(p.name for p in (REPO / "scripts").iterdir() if p.suffix in (".py", ".sh"))
    assert scripts and [name for name in scripts if f"`{name}`" not in listed] == []
    named = set(re.findall(r"`([\w.]+\.(?:py|sh))`", listed))
    assert named - set(scripts) == set(), "scripts/README.md names scripts that do not exist"
