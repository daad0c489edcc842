"""Layering rules of the database layer, checked on the source: SQLAlchemy only in ``db/``
(listed exceptions), and no private names imported across layers (the CLI's rules are in
``test_layering.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "langflix_scheduler"

#: Modules outside ``db/`` allowed to import SQLAlchemy, the only names they may import from
#: it (``(module, name)``), and why.
SQLALCHEMY_ALLOWED: dict[str, set[tuple[str, str]]] = {
    # Public signature takes an Engine (ScheduleManager(engine=...)); its SQL lives in db/.
    "manager.py": {("sqlalchemy.engine", "Engine")},
    # Parses database URLs (make_url) to describe them; no queries.
    "diagnosis.py": {("sqlalchemy.engine", "make_url")},
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "_alembic" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """``(module, names, level)`` of every import in ``path`` (nested ones included)."""
    out: list[tuple[str, list[str], int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.extend((alias.name, [], 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.append((node.module or "", [a.name for a in node.names], node.level))
    return out


def test_sqlalchemy_only_in_db() -> None:
    offenders = []
    for path in _modules():
        rel = _rel(path)
        if rel.startswith("db/") or rel in SQLALCHEMY_ALLOWED:
            continue
        for module, _names, level in _imports(path):
            if level == 0 and (module == "sqlalchemy" or module.startswith("sqlalchemy.")):
                offenders.append(f"{rel} imports {module}")
    assert offenders == []


@pytest.mark.parametrize("rel", sorted(SQLALCHEMY_ALLOWED))
def test_the_exceptions_import_only_what_they_are_allowed(rel: str) -> None:
    """An exception imports from SQLAlchemy only the names listed for it (no ``import
    sqlalchemy``, no star import): anything more is SQL that belongs in ``db/``."""
    extra = []
    for module, names, level in _imports(PACKAGE / rel):
        if level != 0 or module.split(".")[0] != "sqlalchemy":
            continue
        if not names:
            extra.append(f"import {module}")
        extra += [
            f"from {module} import {n}" for n in names if (module, n) not in SQLALCHEMY_ALLOWED[rel]
        ]
    assert extra == [], f"{rel} imports more of SQLAlchemy than listed: {extra}"


def test_the_exceptions_still_need_to_be_exceptions() -> None:
    """An exception that no longer imports SQLAlchemy is dropped from the list, and a listed
    name it no longer imports is dropped from its entry."""
    for rel, allowed in SQLALCHEMY_ALLOWED.items():
        uses = {
            (m, n)
            for m, names, level in _imports(PACKAGE / rel)
            if level == 0 and m.split(".")[0] == "sqlalchemy"
            for n in names
        }
        assert uses, f"{rel} no longer imports SQLAlchemy: remove it from SQLALCHEMY_ALLOWED"
        unused = allowed - uses
        assert not unused, f"{rel} no longer imports {sorted(unused)}: remove it from the list"


def _package_of(rel: str) -> str:
    """The layer a module belongs to: its top-level package, or the module itself."""
    return rel.split("/", maxsplit=1)[0].removesuffix(".py")


def _target(rel: str, module: str, level: int) -> str:
    """The module path (relative to the package) an import refers to."""
    if level == 0:
        return module.removeprefix("langflix_scheduler.").replace(".", "/")
    base = Path(rel).parent
    for _ in range(level - 1):
        base = base.parent
    joined = (base / module.replace(".", "/")) if module else base
    return joined.as_posix().lstrip("./")


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_no_private_names_across_layers(path: Path) -> None:
    """``from <other layer> import _private`` is refused (a module's leading-underscore names
    are its own, or its package's). Private modules (``_time``, ``_backoff``) are shared
    helpers and may be imported; their public names only."""
    rel = _rel(path)
    here = _package_of(rel)
    bad = []
    for module, names, level in _imports(path):
        if level == 0 and not module.startswith("langflix_scheduler"):
            continue
        target = _target(rel, module, level)
        if _package_of(target) == here:
            continue
        bad += [f"{target}.{n}" for n in names if n.startswith("_") and n != "__version__"]
    assert bad == [], f"{rel} imports private names of another layer: {bad}"
