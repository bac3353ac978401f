"""Lines per module and the longest functions of ``src/trainact`` (for the notes of layout changes).

python tools/code_measures.py [SRC] [--top N]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def functions(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


def main() -> None:
    args = sys.argv[1:]
    top = 10
    if "--top" in args:
        at = args.index("--top")
        top = int(args[at + 1])
        del args[at : at + 2]
    src = Path(args[0] if args else Path(__file__).resolve().parents[1] / "src")
    package = src / "trainact"
    rows, funcs = [], []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        lines = len(path.read_text().splitlines())
        found = list(functions(path))
        longest = max(found, key=lambda f: f[2], default=("-", 0, 0))
        rows.append((lines, str(relative), longest))
        funcs += [(n, f"{relative}:{line}:{name}") for name, line, n in found]
    print("| module | lines | longest function |\n| --- | --- | --- |")
    for lines, relative, (name, _, n) in sorted(rows, reverse=True):
        print(f"| `{relative}` | {lines} | `{name}` {n} |")
    print(
        f"\nmodules: {len(rows)}, lines: {sum(r[0] for r in rows)}, over 500 lines: "
        f"{sum(r[0] > 500 for r in rows)}, functions over 60 lines: {sum(n > 60 for n, _ in funcs)}"
    )
    print(f"\nlongest {top} functions:")
    for n, where in sorted(funcs, reverse=True)[:top]:
        print(f"- {where} {n}")


if __name__ == "__main__":
    main()
