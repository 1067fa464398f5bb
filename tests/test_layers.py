"""Data flows one way: each layer imports only from the layers below it (imports inside
functions count too). The README's "Layout" section draws the same stack."""

from __future__ import annotations

import ast
from pathlib import Path

from assistant import config

ROOT = config.PROJECT_ROOT

# lowest first; a module belongs to the first layer with a matching prefix
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("shared", ("assistant.config", "assistant.core")),
    ("index", ("index",)),
    ("retrieval", ("assistant.retrieval", "assistant.extract")),
    ("tools", ("assistant.tools",)),
    ("engine", ("assistant.answer", "assistant.understand", "assistant.routing", "assistant.guards",
                "assistant.conflicts", "assistant.composer", "assistant.llm", "assistant.engine", "assistant.leads",
                "assistant.answer_type")),
    ("interfaces", ("assistant", "index.__main__", "app", "evals", "benchmarks")),
]


def layer_of(module: str) -> int | None:
    if module == "index.__main__":
        return len(LAYERS) - 1  # the index's CLI is an interface
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return i
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from assistant import config" imports assistant.config, not the package's interfaces
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if layer_of(m) is not None}


def test_every_import_points_down_the_stack():
    files = [p for d in ("assistant", "index", "evals", "benchmarks") for p in (ROOT / d).rglob("*.py")]
    files.append(ROOT / "app.py")
    upward = []
    for path in files:
        me = module_name(path)
        mine = layer_of(me)
        assert mine is not None, me
        for target in project_imports(path):
            theirs = layer_of(target)
            if theirs is not None and theirs > mine:
                upward.append(f"{me} ({LAYERS[mine][0]}) imports {target} ({LAYERS[theirs][0]})")
    assert not upward, "\n".join(sorted(upward))


def test_the_check_would_catch_an_upward_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from assistant.engine import Engine\n    import index.store\n", encoding="utf-8")
    assert {"assistant.engine.Engine", "index.store"} <= project_imports(probe)
    assert layer_of("assistant.engine") > layer_of("index.chunking") > layer_of("assistant.core.reference")
    assert layer_of("index.__main__") == layer_of("app")
