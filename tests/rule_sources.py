"""The workflow's rules as text, for tests that check what the rule files declare."""

from __future__ import annotations

import re
from pathlib import Path

RULES_DIR = Path(__file__).resolve().parents[1] / "workflow" / "rules"


def rule_bodies() -> dict[str, tuple[Path, str]]:
    """Rule name -> (its .smk file, the text of its definition up to the next rule).

    A rule made with ``use rule BASE as NAME with:`` gets BASE's text followed by its own
    (what it does not override, such as ``resources``, it inherits)."""
    found, derived = {}, {}
    for path in sorted(RULES_DIR.glob("*.smk")):
        # re.split with two groups: [text before, base1, name1, body1, ...]; a plain rule has
        # no base (None) and its name in the second group
        pattern = r"^\s*(?:use rule (\w+) as (\w+) with|rule (\w+)):"
        parts = re.split(pattern, path.read_text(), flags=re.M)
        for base, alias, name, body in zip(parts[1::4], parts[2::4], parts[3::4], parts[4::4]):
            if base is None:
                found[name] = (path, body)
            else:
                derived[alias] = (base, path, body)
    for alias, (base, path, body) in derived.items():
        found[alias] = (path, found[base][1] + body)
    return found
