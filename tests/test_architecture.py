"""The dependency direction, made executable: domain code is pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "qtrader"
IO_LIBRARIES = {"ccxt", "duckdb", "redis", "requests", "typer", "loguru", "pandas", "tenacity"}
IO_LAYERS = ("qtrader.store", "qtrader.exchange", "qtrader.sources", "qtrader.steps", "qtrader.cli",
             "qtrader.runner", "qtrader.config", "qtrader.logs", "qtrader.alerts", "qtrader.publish")  # fmt: skip


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((PACKAGE / "domain").glob("*.py")), ids=lambda p: p.name)
def test_domain_imports_no_io(path):
    imported = imports_of(path)
    assert not {name.split(".")[0] for name in imported} & IO_LIBRARIES, imported
    assert not [name for name in imported if name.startswith(IO_LAYERS)], imported


@pytest.mark.parametrize("path", sorted((PACKAGE / "exchange").glob("*.py")) + sorted((PACKAGE / "store").glob("*.py")),
                         ids=lambda p: p.name)  # fmt: skip
def test_adapters_never_import_the_cli_or_steps(path):
    assert not [
        n
        for n in imports_of(path)
        if n.startswith(("qtrader.cli", "qtrader.steps", "qtrader.runner"))
    ]
