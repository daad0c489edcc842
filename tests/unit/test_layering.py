"""Layering rules, checked on the source (every import, including those inside functions):

* the library never imports the CLI's libraries (click, rich): only ``cli/`` (and ``__main__``,
  which runs it) does, and nothing outside ``cli/`` imports ``cli/``;
* ``cli/`` (the demo and the progress display included) never imports SQLAlchemy, alembic or
  Google's libraries, and uses only the public library API: no ``db`` package, no private
  (``_``-prefixed) library module;
* outside ``youtube/`` (and the type-only import of the ``testing`` fake) nothing imports
  Google's libraries.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import langflix_scheduler

PACKAGE = Path(langflix_scheduler.__file__).parent
CLI_LIBRARIES = {"click", "rich"}
GOOGLE_LIBRARIES = {"google", "googleapiclient", "google_auth_oauthlib", "httplib2"}
DATABASE_LIBRARIES = {"sqlalchemy", "alembic"}
#: Library subpackages/modules the CLI must not reach into (internal, may change any time).
PRIVATE_LIBRARY = {"db"}


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _is_cli_side(rel: str) -> bool:
    return rel.startswith("cli/") or rel == "__main__.py"


def _modules() -> Iterator[tuple[str, ast.AST]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield _rel(path), ast.parse(path.read_text(encoding="utf-8"))


def _absolute_imports(tree: ast.AST) -> set[str]:
    """Top-level names of third-party/stdlib imports (``import x.y`` / ``from x import y``)."""
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def _package_imports(rel: str, tree: ast.AST) -> set[str]:
    """Dotted names (relative to the package) of the langflix_scheduler modules ``rel`` imports;
    ``from . import x`` yields ``<package>.x``."""
    here = rel.removesuffix(".py").split("/")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = here[: len(here) - (node.level - 1)] if node.level > 1 else list(here)
            module = base + (node.module.split(".") if node.module else [])
            if node.module:
                found.add(".".join(module))
            else:
                found.update(".".join([*module, alias.name]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "langflix_scheduler":
                found.add(".".join(node.module.split(".")[1:]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "langflix_scheduler":
                    found.add(".".join(alias.name.split(".")[1:]))
    return found


def test_library_modules_do_not_import_click_or_rich() -> None:
    offenders = {
        rel: sorted(_absolute_imports(tree) & CLI_LIBRARIES)
        for rel, tree in _modules()
        if not _is_cli_side(rel)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_cli_modules_are_imported_only_by_the_cli() -> None:
    offenders = {
        rel: sorted(m for m in _package_imports(rel, tree) if m.split(".")[0] == "cli")
        for rel, tree in _modules()
        if not _is_cli_side(rel)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_cli_never_imports_database_or_google_libraries() -> None:
    offenders = {
        rel: sorted(_absolute_imports(tree) & (DATABASE_LIBRARIES | GOOGLE_LIBRARIES))
        for rel, tree in _modules()
        if _is_cli_side(rel)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_cli_uses_only_the_public_library_api() -> None:
    def private(module: str) -> bool:
        parts = module.split(".")
        if parts[0] == "cli":
            return False  # the CLI's own modules
        return parts[0] in PRIVATE_LIBRARY or any(p.startswith("_") for p in parts if p)

    offenders = {
        rel: sorted(m for m in _package_imports(rel, tree) if private(m))
        for rel, tree in _modules()
        if _is_cli_side(rel)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_youtube_imports_google_libraries() -> None:
    allowed = ("youtube/", "testing/fake_youtube.py")
    offenders = {
        rel: sorted(_absolute_imports(tree) & GOOGLE_LIBRARIES)
        for rel, tree in _modules()
        if not rel.startswith(allowed)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_cli_package_exists_and_the_rules_see_it() -> None:
    """Guard against the rules passing vacuously (a moved package, a changed layout)."""
    cli = {rel for rel, _ in _modules() if rel.startswith("cli/")}
    assert {"cli/__init__.py", "cli/_app.py", "cli/_demo.py", "cli/_progress.py"} <= cli
    demo = dict(_modules())["cli/_demo.py"]
    assert "manager" in _package_imports("cli/_demo.py", demo)
    assert "cli._progress" in _package_imports("cli/_demo.py", demo)
