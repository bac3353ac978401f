"""Which command families' code digests change when one module of ``src/trainact`` is edited.

For every module (and each kind of edit: a line of code, a docstring word, a comment) this
copies the package, edits the copy and asks the copy's own ``trainact.sourcegraph`` which
families' digests changed. Also the two text edits the rerun promise names: a figure caption
and a claim threshold. Prints a Markdown table; used for the notes of layout changes.

    python tools/digest_matrix.py [SRC]     (default: this repository's src/)
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import tempfile
from pathlib import Path

EDITS = {
    "code": lambda text: text + "\n_DIGEST_PROBE = 1\n",
    "docstring": lambda text: re.sub(r'"""', '"""Probe. ', text, count=1),
    "comment": lambda text: text + "\n# probe\n",
}
# (label, text that identifies the file, old, new)
TEXT_EDITS = [
    (
        "Figure 9 caption",
        "global best particle",
        "Test and training accuracy of the global best",
        "Test and training accuracies of the global best",
    ),
    (
        "claim threshold",
        "MIN_SEEDS_FOR_VERDICT = 3",
        "MIN_SEEDS_FOR_VERDICT = 3",
        "MIN_SEEDS_FOR_VERDICT = 4",
    ),
]


def load_sourcegraph(package: Path):
    spec = importlib.util.spec_from_file_location(f"sg{id(package)}", package / "sourcegraph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def digests(package: Path) -> dict[str, str]:
    sg = load_sourcegraph(package)
    return {family: sg.code_digest(family, package=package) for family in sg.FAMILY_ENTRY}


def changed(src: Path, relative: Path, edit) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "trainact"
        shutil.copytree(src / "trainact", copy)
        before = digests(copy)
        path = copy / relative
        path.write_text(edit(path.read_text()))
        after = digests(copy)
    return [f for f in before if before[f] != after[f]]


def main() -> None:
    src = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "src")
    package = src / "trainact"
    families = list(digests(package))
    print(f"families: {', '.join(families)}\n")
    print("| module | code | docstring | comment |\n| --- | --- | --- | --- |")
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        cells = []
        for name, edit in EDITS.items():
            if name == "docstring" and '"""' not in path.read_text():
                cells.append("(none)")
                continue
            hit = changed(src, relative, edit)
            cells.append(f"{len(hit)}: {' '.join(hit)}" if hit else "0")
        print(f"| `{relative}` | " + " | ".join(cells) + " |")
    print()
    for label, marker, old, new in TEXT_EDITS:
        for path in sorted(package.rglob("*.py")):
            if marker in path.read_text():
                hit = changed(src, path.relative_to(package), lambda t, old=old, new=new: t.replace(old, new))
                print(
                    f"- {label} (`{path.relative_to(package)}`): {len(hit)} families: {' '.join(hit) or '-'}"
                )


if __name__ == "__main__":
    main()
