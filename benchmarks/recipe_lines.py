"""Each recipe's length and the share of its code lines that check arguments.

Code lines: non-blank lines that are not comments and not docstrings. Argument-checking
lines: the lines of the file's ``_check`` helper, of every call to it, and of any other
``if ...: raise ...`` statement or bare ``raise``. The recipe contract asks for at most
10 % and at most 300 lines in all (docs/contributing.md).

    python benchmarks/recipe_lines.py [recipes/NAME.py ...]
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_SHARE, MAX_LINES = 0.10, 300


def _docstring_lines(tree: ast.Module) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node) is not None:
            first = node.body[0]
            lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def _code_lines(source: str, tree: ast.Module) -> set[int]:
    """Lines holding a token other than a comment, newline or indentation, outside docstrings."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(range(token.start[0], token.end[0] + 1))
    return lines - _docstring_lines(tree)


def _is_check_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name) and node.value.func.id.startswith("_check"))


def _check_lines(tree: ast.Module) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name.startswith("_check"):
            lines.update(range(node.lineno, node.end_lineno + 1))
        elif _is_check_call(node) or isinstance(node, ast.Raise) or (
                isinstance(node, ast.If) and all(isinstance(child, ast.Raise) for child in node.body)):
            lines.update(range(node.lineno, node.end_lineno + 1))
    return lines


def measure(path: Path) -> dict:
    """``{"lines", "code_lines", "check_lines", "check_share"}`` for one recipe file."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    code = _code_lines(source, tree)
    checks = _check_lines(tree) & code
    return {"lines": len(source.splitlines()), "code_lines": len(code), "check_lines": len(checks),
            "check_share": len(checks) / max(1, len(code))}


def main(argv: list[str]) -> int:
    paths = [Path(arg) for arg in argv] or sorted((ROOT / "recipes").glob("[!_]*.py"))
    print(f"{'recipe':<16}{'lines':>7}{'code':>7}{'checks':>8}{'share':>8}")
    failed = False
    for path in paths:
        m = measure(path)
        bad = m["lines"] > MAX_LINES or m["check_share"] > MAX_SHARE
        failed |= bad
        print(f"{path.stem:<16}{m['lines']:>7}{m['code_lines']:>7}{m['check_lines']:>8}{m['check_share']:>8.1%}"
              + ("  over" if bad else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
