"""The layering of docs/architecture.md, checked on the source: imports go one way, bottom to top, with no cycles.

Every ``import`` / ``from ... import`` inside ``cllstr/`` is read from the AST (including imports inside functions,
which are imports all the same), reduced to the importing and imported *units* (a subpackage such as ``train`` or a
top-level module such as ``recognizer``), and checked against :data:`LEVELS`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cllstr"

#: Unit → level; a unit may import units of a lower level, and of its own level only where :data:`SAME_LEVEL` says.
LEVELS = {
    "scripts": 0, "atomic": 0, "interrupt": 0, "config_io": 0, "_C": 0,
    "text": 1, "ops": 1, "device": 1,
    "models": 2,
    "checkpoint": 3, "decoding": 3, "data": 3,
    "synth": 4, "scoring": 4,
    "train": 5, "eval": 5,
    "recognizer": 6, "interop": 6, "deploy": 6, "study": 6,
    "cli": 7,
}
#: Same-level imports that are allowed (importer, imported).
SAME_LEVEL = {("recognizer", "deploy"), ("deploy", "recognizer"), ("study", "recognizer")}


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "cllstr" or len(parts) < 2 or parts[1] == "__init__":
        return None
    unit = parts[1]
    is_unit = unit == "_C" or (PACKAGE / unit).is_dir() or (PACKAGE / f"{unit}.py").is_file()
    return unit if is_unit else None  # ``from cllstr import __version__`` names no unit


def _imports() -> list[tuple[str, str, str]]:
    """``(file, importing unit, imported unit)`` for every import of another unit inside the package."""
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent)
        module = ".".join(rel.with_suffix("").parts)
        src = _unit(module)
        if src is None:  # cllstr/__init__.py: the public facade, lazily importing every layer
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names] if node.module == "cllstr" \
                    else [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                dst = _unit(name)
                if dst is not None and dst != src:
                    edges.append((str(rel), src, dst))
    return edges


def test_every_unit_has_a_level():
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").is_file())}
    units |= {"_C"}
    assert units - LEVELS.keys() == set(), "give every new unit of cllstr/ a level in LEVELS (and in the docs)"


def test_imports_go_bottom_to_top():
    bad = [f"{file}: {src} (level {LEVELS[src]}) imports {dst} (level {LEVELS[dst]})"
           for file, src, dst in _imports()
           if LEVELS[dst] > LEVELS[src] or (LEVELS[dst] == LEVELS[src] and (src, dst) not in SAME_LEVEL)]
    assert bad == []


@pytest.mark.parametrize("a,b", [("train", "eval"), ("eval", "train")])
def test_train_and_eval_do_not_import_each_other(a, b):
    assert [f for f, src, dst in _imports() if (src, dst) == (a, b)] == []


def test_inference_imports_neither_train_nor_eval():
    assert [f"{f} imports {dst}" for f, src, dst in _imports()
            if src in ("recognizer", "deploy") and dst in ("train", "eval")] == []


def test_no_cycles_between_units():
    graph: dict[str, set[str]] = {}
    for _, src, dst in _imports():
        graph.setdefault(src, set()).add(dst)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    assert sorted(u for u in graph if reaches(u, u, set())) == []
