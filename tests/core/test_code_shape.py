"""The product's functions stay short: none over 60 lines outside tests and benchmarks
(issue 11; ruff's C901 holds their complexity at 12, see pyproject.toml)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 60


def long_functions(paths: list[Path], limit: int = LIMIT, root: Path = ROOT) -> list[str]:
    """'file:line name (n lines)' for every function or method longer than ``limit``."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({n} lines)")
    return found


def product_files() -> list[Path]:
    return [
        ROOT / "main.py",
        *sorted((ROOT / "core").rglob("*.py")),
        *sorted((ROOT / "gui").rglob("*.py")),
    ]


def test_no_function_in_the_product_is_over_60_lines():
    files = product_files()
    assert len(files) > 40  # the walk found the packages
    assert long_functions(files) == []


def test_the_check_finds_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    src = tmp_path / "long.py"
    src.write_text(f"def too_long():\n{body}\n", encoding="utf-8")
    assert long_functions([src], root=tmp_path) == [f"long.py:1 too_long ({LIMIT + 1} lines)"]
    assert long_functions([src], limit=LIMIT + 1, root=tmp_path) == []
