"""The package's layers follow the pipeline: a module imports (at the top or lazily, inside a
function) only from its own layer and those before it. An import that runs up the order is how a
cycle starts, and it hides which part of the pipeline a change can break."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "angel_trl"
# Each top-level module or subpackage of angel_trl, in pipeline order (README: "The package follows that picture").
LAYERS = [
    "defaults", "errors", "progress", "machine", "metrics", "output_paths", "recipe_args",
    "data", "text", "modeling", "linking", "evaluation", "hybrid", "mining",
    "trainers", "training", "pretraining", "baselines", "hub", "cli",
]


def layer_of(module: str) -> str:
    """``angel_trl.text.tfidf`` -> ``text``; ``angel_trl.mining`` -> ``mining``."""
    return module.split(".")[1]


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("angel_trl."):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("angel_trl.")]
    return found


def test_every_layer_is_listed():
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert units == set(LAYERS)


def test_no_module_imports_from_a_later_layer():
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        if rel.name == "__init__" and len(rel.parts) == 2:
            continue  # the package root: __version__ and lazy names only
        own = layer_of(".".join(rel.parts))
        upward += [f"{rel}.py:{line} imports {module}" for line, module in imports(path) if rank[layer_of(module)] > rank[own]]
    assert not upward, "\n".join(upward)
