"""Anchors: the chain's head kept outside the tracking server, checked against the chain (pure)."""

from __future__ import annotations

import pytest

from promoter.core import audit
from promoter.core.audit import GENESIS, Anchor, CorruptRecord, Record, anchor_of, check_anchors, verify

MODEL = "hrob-risk-prod"
KINDS = ["gate", "alias_move", "scoring", "rollback", "hold"]


def _chain(n: int, *, edit_at: int | None = None, model: str = MODEL) -> list[Record]:
    """A consistent chain of ``n`` records; ``edit_at``: that record's verdict rewritten and
    every hash from there on recomputed (what an attacker with write access can do)."""
    out: list[Record] = []
    prev = GENESIS
    for i in range(n):
        rec = audit.build(
            seq=i,
            prev_hash=prev,
            kind=KINDS[i % len(KINDS)],
            environment="prod",
            registered_model=model,
            created_at=f"2026-03-01T10:00:{i:02d}+00:00",
            record_id=f"r{i}",
            candidate_version=i + 1,
            verdict="FAIL" if i == edit_at else "PASS",
        )
        out.append(rec)
        prev = rec.hash
    return out


def _anchors(records: list[Record]) -> list[Anchor]:
    return [anchor_of(r, f"2026-03-01T10:01:{r.seq:02d}+00:00") for r in records]


INTACT = _chain(5)
ANCHORS = _anchors(INTACT)


def _kinds(problems: list[audit.AnchorProblem]) -> list[tuple[int | None, str]]:
    return [(p.seq, p.problem.split(" (")[0].split(":")[0]) for p in problems]


@pytest.mark.parametrize(
    ("name", "records", "anchors", "expected"),
    [
        ("intact, every record anchored", INTACT, ANCHORS, []),
        ("intact, only some heads anchored", INTACT, [ANCHORS[1], ANCHORS[4]], []),
        ("an anchor twice (a re-run) is one anchor", INTACT, [*ANCHORS, ANCHORS[4]], []),
        (
            "a rewritten record (and every hash after it recomputed)",
            _chain(5, edit_at=2),
            ANCHORS,
            [(2, "rewritten"), (3, "rewritten"), (4, "rewritten")],
        ),
        ("truncated: the newest records deleted", INTACT[:3], ANCHORS, [(3, "truncated"), (4, "truncated")]),
        ("a hole in the chain under an anchor", [*INTACT[:2], *INTACT[3:]], ANCHORS, [(2, "missing record")]),
        ("missing anchors store", INTACT, None, [(None, "anchors store missing or unreadable")]),
        ("an empty store for a chain with records", INTACT, [], [(None, "no anchors for a chain of 5 record(s)")]),
        ("an empty chain and no anchors", [], [], []),
        ("records after the newest anchor", INTACT, ANCHORS[:3], [(3, "not anchored")]),
        (
            "anchors of another model's chain are not this chain's",
            INTACT,
            [*ANCHORS, *_anchors(_chain(7, model="other-prod"))],
            [],
        ),
    ],
)
def test_check_anchors_cases(name, records, anchors, expected):
    problems = check_anchors(records, anchors, store="git", chain=MODEL, environment="prod")
    assert _kinds(problems) == expected, name
    assert all(p.store == "git" and p.chain == MODEL and p.environment == "prod" for p in problems)


def test_a_chain_and_head_rewritten_together_pass_verify_but_not_the_anchors():
    forged = _chain(5, edit_at=1)
    # the attacker also recomputed the head tag: plain verify cannot tell
    assert verify(forged, head=(forged[-1].seq, forged[-1].hash)).ok
    problems = check_anchors(forged, ANCHORS, store="lake")
    assert [p.seq for p in problems] == [1, 2, 3, 4]
    assert all("rewritten" in p.problem for p in problems)
    text = str(problems[0])
    assert MODEL in text and "(prod)" in text and "seq 1" in text and "[lake]" in text


def test_a_truncated_and_rehashed_chain_is_named_at_the_first_missing_seq():
    short = INTACT[:2]
    problems = check_anchors(short, ANCHORS, store="git")
    assert [p.seq for p in problems] == [2, 3, 4]
    assert "the chain ends at seq 1" in problems[0].problem


def test_anchors_must_be_monotone_and_agree_with_each_other():
    # the anchor of seq 1 recorded after the one of seq 3: the anchors store was edited (or a clock lied)
    swapped = [*ANCHORS]
    swapped[1] = Anchor(MODEL, "prod", 1, INTACT[1].hash, ANCHORS[3].recorded_at, INTACT[1].kind)
    swapped[3] = Anchor(MODEL, "prod", 3, INTACT[3].hash, ANCHORS[1].recorded_at, INTACT[3].kind)
    problems = check_anchors(INTACT, swapped, store="git")
    assert _kinds(problems) == [(2, "anchors out of order"), (1, "anchors out of order")]
    # the same head anchored again later (a re-run) is not out of order
    again = Anchor(MODEL, "prod", 1, INTACT[1].hash, "2026-03-01T11:00:00+00:00", INTACT[1].kind)
    assert check_anchors(INTACT, [*ANCHORS, again], store="git") == []

    other = Anchor(MODEL, "prod", 2, "f" * 64, "2026-03-01T10:01:30+00:00", "gate")
    problems = check_anchors(INTACT, [*ANCHORS, other], store="git")
    kinds = _kinds(problems)
    assert (2, "two anchors name different hashes for this seq") in kinds
    assert (2, "rewritten") in kinds


def test_a_record_whose_kind_differs_from_the_anchor_is_rewritten():
    wrong = [*ANCHORS[:4], Anchor(MODEL, "prod", 4, INTACT[4].hash, ANCHORS[4].recorded_at, "alias_move")]
    assert _kinds(check_anchors(INTACT, wrong)) == [(4, "rewritten")]


def test_anchor_json_round_trip_and_bad_input():
    a = ANCHORS[3]
    assert Anchor.from_json(a.to_json()) == a
    assert a.to_json() == audit.canonical_json(a.to_dict())
    assert a.key == (MODEL, 3, INTACT[3].hash)
    with pytest.raises(CorruptRecord, match="invalid JSON"):
        Anchor.from_json("{not json")
    with pytest.raises(CorruptRecord, match="fields"):
        Anchor.from_dict({"seq": 1})
    with pytest.raises(CorruptRecord, match="seq"):
        Anchor.from_dict({**a.to_dict(), "seq": "3"})
    with pytest.raises(CorruptRecord, match="text"):
        Anchor.from_dict({**a.to_dict(), "hash": 5})


def test_an_empty_chain_needs_no_anchors_store():
    assert check_anchors([], None, store="lake", chain=MODEL, environment="prod") == []
