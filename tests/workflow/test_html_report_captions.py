"""The captions of Snakemake's HTML report: committed files generated from their one home,
trainact.report.captions (tools/write_captions.py, `make captions`), so that parsing the
workflow writes nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CAPTION_DIR = REPO / "workflow" / "html_report" / "captions"


def _writer():
    spec = importlib.util.spec_from_file_location("write_captions", REPO / "tools" / "write_captions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_captions_are_trainact_report_captions_text():
    expected = _writer().caption_files()
    found = {path.name: path.read_text() for path in CAPTION_DIR.glob("*.rst")}
    stale = sorted(name for name in found if found[name] != expected.get(name))
    missing = sorted(set(expected) - set(found))
    assert (stale, missing) == ([], []), "run `make captions` (tools/write_captions.py)"


def test_the_caption_files_hold_no_jinja_markup():
    """Snakemake renders a caption file as a Jinja template before reading it as rst."""
    for path in CAPTION_DIR.glob("*.rst"):
        assert "{{" not in path.read_text() and "{%" not in path.read_text(), path.name
