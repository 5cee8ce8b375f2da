"""The layers point one way: commands -> use cases (runs/) -> engine / stores / api -> errors. Checked on
the source, so a new import that crosses a layer fails here rather than in review."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "nanobanana_cli"


def imported_modules(path: Path) -> set[str]:
    """Every nanobanana_cli module a file imports, at any depth (lazy imports inside functions included)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = f"{base}.{node.module}" if node.level and node.module else (node.module or base)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_command_module_imports_another():
    commands = {f"nanobanana_cli.commands.{path.stem}" for path in (PACKAGE / "commands").glob("*.py")}
    shared = {"nanobanana_cli.commands.options", "nanobanana_cli.commands"}
    for path in (PACKAGE / "commands").glob("*.py"):
        others = (imported_modules(path) & commands) - shared - {f"nanobanana_cli.commands.{path.stem}"}
        assert not others, f"{path.name} imports {sorted(others)}: move what they share into runs/"


def test_use_cases_import_neither_typer_nor_a_command():
    for path in (PACKAGE / "runs").glob("*.py"):
        modules = imported_modules(path)
        assert not any(m == "typer" or m.startswith(("typer.", "click", "nanobanana_cli.commands")) for m in modules), path.name


def test_lower_layers_never_import_a_use_case_or_a_command():
    for layer in ("engine", "stores", "api"):
        for path in (PACKAGE / layer).glob("*.py"):
            modules = imported_modules(path)
            upward = [m for m in modules if m.startswith(("nanobanana_cli.commands", "nanobanana_cli.runs", "typer"))]
            assert not upward, f"{layer}/{path.name} imports {upward}"


def test_command_signatures_are_not_strings():
    """Typer reads every parameter's annotation when it builds a command: written as objects they cost
    nothing, as strings (`from __future__ import annotations`) each is evaluated again (~3 ms for
    `generate`'s options, before every job's submit)."""
    for path in (PACKAGE / "commands").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        future = [node for node in tree.body if isinstance(node, ast.ImportFrom) and node.module == "__future__"]
        assert path.name == "options.py" or not future, f"commands/{path.name}: drop `from __future__ import annotations`"
