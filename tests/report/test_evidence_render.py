"""The evidence pack renderer: every section always present, escaping, and the docs' mapping table in sync."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from promoter.report import evidence

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_an_empty_pack_still_has_every_section_and_says_what_is_missing():
    md = evidence.markdown({"decision": {"kind": "rollback", "registered_model": "m-prod", "candidate_version": 3}})
    for title in evidence.section_titles():
        assert f"## {title}" in md
    assert "No model_card.yml" in md and "No held-out evaluation" in md and "Change ticket: none given." in md


def test_html_escapes_what_teams_write():
    pack = {
        "decision": {"kind": "gate", "verdict": "PASS"},
        "card": {"intended_use": "<script>alert(1)</script> & more"},
    }
    page = evidence.html_document(pack)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page

    class Ids(HTMLParser):
        ids: list[str] = []

        def handle_starttag(self, tag, attrs):
            if tag == "section":
                self.ids.append(dict(attrs)["id"])

    parser = Ids()
    parser.feed(page)
    assert parser.ids == [sid for sid, *_ in evidence.SECTIONS]


def test_the_docs_table_maps_every_section():
    doc = (ROOT / "docs" / "evidence-pack.md").read_text()
    for i, (_, title, chai, hti) in enumerate(evidence.SECTIONS, 1):
        assert f"| {i} | {title} | {chai} | {hti} |" in doc, title
