"""The workflow's rules as text, for tests that check what the rule files declare."""

from __future__ import annotations

import re
from pathlib import Path

RULES_DIR = Path(__file__).resolve().parents[1] / "workflow" / "rules"


def rule_bodies() -> dict[str, tuple[Path, str]]:
    """Rule name -> (its .smk file, the text of its definition up to the next rule)."""
    found = {}
    for path in sorted(RULES_DIR.glob("*.smk")):
        # re.split with one group: [text before, name1, body1, name2, body2, ...]
        parts = re.split(r"^\s*rule (\w+):", path.read_text(), flags=re.M)
        for name, body in zip(parts[1::2], parts[2::2]):
            found[name] = (path, body)
    return found
