"""The pure PHI matching (promoter.core.phi) and the gate's ``phi`` rule that reads its findings."""

from __future__ import annotations

from promoter.config import GatePolicy
from promoter.core import phi
from promoter.core.gate import ModelEvaluation, decide

SALT = b"0123456789abcdef"
BRONZE = [
    ("ssn", "912-34-5678"),
    ("first_name", "Olivia"),  # a lone word: not indexed on its own
    ("last_name", "White"),
    ("first_name + last_name", "Olivia White"),
    ("street_address", "1234 Maple St, Columbus, OH 43012"),
    ("phone", "(614) 555-0123"),
    ("mrn", "MRN00012345"),
    ("date_of_birth", "1994-03-02"),  # a bare date: every config bound would match it; not indexed
    ("member_id", "M000000042"),
    ("patient_id", "12"),  # too short to match safely
]


def index() -> phi.PhiIndex:
    return phi.PhiIndex.from_values(BRONZE, SALT, ["ssn", "first_name", "last_name", "member_id", "mrn"])


def test_the_index_holds_only_salted_digests_of_identifying_values_and_says_its_size():
    idx = index()
    assert idx.size == 6  # the lone first and last names, the bare date and the 2-character id are not indexed
    assert idx.skipped == 4
    assert "6 distinct bronze PHI values" in idx.description and "KiB" in idx.description
    assert idx.nbytes == 6 * (8 + 2)  # an 8-byte digest and a 2-byte column id per value


def test_values_are_found_in_text_whatever_the_punctuation_and_never_printed():
    idx = index()
    text = "\n".join(
        [
            "# Gate report",
            "member  912 34 5678 was scored",  # the SSN, other separators
            "call OLIVIA WHITE at home",  # the name pair, other case
            "address: 1234 maple st., columbus, OH 43012",
            "dob 1994-03-02 mrn:MRN00012345",
            "race White: roc_auc 0.81",  # a lone last name (a race category too) is not PHI here
        ]
    )
    found = phi.scan_text(idx, text, "artifact reports/gate.md")
    wheres = {f.where for f in found}
    assert "artifact reports/gate.md line 1" not in wheres
    assert "artifact reports/gate.md line 6" not in wheres
    lines = [f.line() for f in found]
    assert "artifact reports/gate.md line 2: value of PHI column ssn" in lines
    assert "artifact reports/gate.md line 3: value of PHI column first_name + last_name" in lines
    assert "artifact reports/gate.md line 4: value of PHI column street_address" in lines
    assert "artifact reports/gate.md line 5: value of PHI column mrn" in lines
    joined = "\n".join(lines)
    for _, value in BRONZE:
        assert value not in joined


def test_format_detectors_find_ssn_phone_and_email_shapes_not_in_bronze():
    found = phi.scan_lines(index(), ["ok", "ssn 123-45-6789", "call (330) 555-0199\nmail a.b@example.org"])
    assert [f.line() for f in found] == [
        "log line 2: a value that looks like an SSN",
        "log line 3: a value that looks like a phone number",
        "log line 4: a value that looks like an e-mail address",
    ]
    assert phi.count_lines(["ok", "ssn 123-45-6789", "call (330) 555-0199\nmail a.b@example.org"]) == 4


def test_names_cells_and_the_cap():
    idx = index()
    assert [f.line() for f in phi.scan_names(idx, ["score", "SSN"], "signature input")] == [
        "signature input column SSN: is a PHI column"
    ]
    cells = [(i, "ok") for i in range(1, 40)] + [(40, "M000000042"), (41, None)]
    found = phi.scan_cells(idx, cells, "table predictions column note")
    assert [f.line() for f in found] == ["table predictions column note row 40: value of PHI column member_id"]
    many = phi.scan_cells(idx, [(i, "912-34-5678") for i in range(1, 30)], "table t column c")
    assert len(many) == phi.MAX_FINDINGS + 1
    assert many[-1].line() == f"table t column c: {29 - phi.MAX_FINDINGS} more finding(s) not listed"


def test_summary_text():
    s = phi.ScanSummary(signature=True, input_example=True, artifacts=7, skipped=("plots/roc.png (binary)",))
    s = s.merge(phi.ScanSummary(tables=("predictions", "outreach"), log_lines=412))
    assert s.text() == (
        "signature, input example, 7 artifacts (1 not scanned: plots/roc.png (binary)), "
        "2 tables (predictions, outreach), 412 log lines"
    )


def _gate(**kw):
    ev = ModelEvaluation(version=1, metrics={"roc_auc": 0.8})
    return decide(GatePolicy(floors={}, ceilings={}), ev, None, **kw)


def test_the_gate_fails_on_findings_naming_where_and_passes_saying_what_was_scanned():
    found = phi.scan_text(index(), "a\nssn 912-34-5678", "artifact reports/gate.md")
    verdict = _gate(phi_found=[f.line() for f in found], phi_scanned="signature, 7 artifacts, 12 log lines")
    (reason,) = [r for r in verdict.reasons if r.rule == "phi"]
    assert verdict.status == "FAIL" and not reason.passed
    assert "artifact reports/gate.md line 2: value of PHI column ssn" in reason.message
    assert "scanned: signature, 7 artifacts, 12 log lines" in reason.message
    assert "912-34-5678" not in reason.message and "5678" not in reason.message

    ok = _gate(phi_found=[], phi_scanned="signature, input example, 7 artifacts, 2 tables, 412 log lines")
    (reason,) = [r for r in ok.reasons if r.rule == "phi"]
    assert ok.status == "PASS"
    assert reason.message == "scanned: signature, input example, 7 artifacts, 2 tables, 412 log lines; no PHI found"


def test_a_bare_date_is_too_common_to_match_on_its_own():
    """A contract bound ``min: '2000-01-01'`` is not someone's date of birth leaking."""
    idx = phi.PhiIndex.from_values([("date_of_birth", "2000-01-01"), ("date_of_birth", "01/31/1990")], SALT, [])
    assert idx.size == 0 and idx.skipped == 2
    assert phi.scan_text(idx, "min: '2000-01-01'\nseen 1990-01-31", "artifact config/settings.yml") == []
    assert phi.is_calendar_date(phi.tokens("1990 1 31")) and not phi.is_calendar_date(phi.tokens("912 34 5678"))
