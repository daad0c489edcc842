"""The library never imports the CLI's libraries (click, rich): only the CLI-side modules do."""

from __future__ import annotations

import ast
from pathlib import Path

import langflix_scheduler

PACKAGE = Path(langflix_scheduler.__file__).parent
#: Modules that render for the terminal; only cli.py imports them (and __main__ runs cli.py).
CLI_SIDE = {"cli.py", "_demo.py", "_progress.py", "__main__.py"}
CLI_LIBRARIES = {"click", "rich"}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_library_modules_do_not_import_click_or_rich() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(_imported_roots(path) & CLI_LIBRARIES)
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).as_posix() not in CLI_SIDE
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_cli_side_modules_are_imported_only_by_the_cli() -> None:
    cli_side = {name.removesuffix(".py") for name in CLI_SIDE}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in CLI_SIDE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = {node.module or ""} | {alias.name for alias in node.names}
                assert not {n.split(".")[-1] for n in names} & cli_side, rel
