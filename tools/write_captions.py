"""Write the captions of Snakemake's HTML report from their one home, trainact.report.captions.

Snakemake reads a result's caption from a reStructuredText file named in the rule
(``report(..., caption=...)``). The files, workflow/html_report/captions/<name>.rst, are
generated here and committed, so that parsing the workflow writes nothing;
tests/workflow/test_html_report_captions.py fails when one differs from
``captions.caption_rst(name)``.

    python tools/write_captions.py        (or: make captions)
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAPTION_DIR = REPO / "workflow" / "html_report" / "captions"


def caption_files() -> dict[str, str]:
    """File name -> text, one per key of trainact.report.captions.CAPTIONS."""
    from trainact.report import captions

    return {f"{name}.rst": captions.caption_rst(name) for name in captions.CAPTIONS}


def main() -> None:
    files = caption_files()
    CAPTION_DIR.mkdir(parents=True, exist_ok=True)
    for stale in sorted({p.name for p in CAPTION_DIR.glob("*.rst")} - set(files)):
        (CAPTION_DIR / stale).unlink()
        print(f"removed {stale}")
    for name, text in files.items():
        path = CAPTION_DIR / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    main()
