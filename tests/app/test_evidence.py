"""The release evidence pack of prod decisions: a PASS, a FAIL and an approval, logged with the version.

Real parts: the shipped configs in a git repo, a run state from ``prepare`` and ``new_state``, an
MLflow registry on SQLite, the real gate on evaluation rows (synthetic scores, 4,000 rows), the
real recorder, the pack logged to MLflow and read back; the HTML is parsed with the standard
library's parser.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from pipelines.features import Catalog
from promoter.app import decisions, evidence, prepare, run
from promoter.app.state import Gold
from promoter.app.steps.gating import log_evidence
from promoter.core import approvals, stats, tags
from promoter.core import gate as gating
from promoter.core.events import Event
from promoter.registry import Registry
from promoter.registry.tracking import read_run_text, run_artifact_files
from promoter.report.evidence import SECTIONS
from tests.app.conftest import MODEL, prod_registry
from tests.conftest import git

GROUPS = {"race_ethnicity": ["a", "b", "c"], "payer_type": ["x", "y"], "region": ["n", "s"], "age_band": ["y", "o"]}


def _evaluation(version: int, noise_sd: float, seed: int, n: int = 4000) -> gating.ModelEvaluation:
    """A model whose score is the true risk seen through noise of ``noise_sd``, then Platt-calibrated."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    z = rng.normal(size=n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-(2.0 * z - 1.8)))).astype(float)
    seen = (z + np.random.default_rng(seed).normal(scale=noise_sd, size=n)).reshape(-1, 1)
    scores = LogisticRegression().fit(seen, labels).predict_proba(seen)[:, 1]
    groups = {c: np.asarray(v)[rng.integers(0, len(v), n)] for c, v in GROUPS.items()}
    metrics = stats.compute_metrics(labels, scores)
    sub = {
        c: {
            g: {
                "n": float((groups[c] == g).sum()),
                "roc_auc": stats.roc_auc(labels[groups[c] == g], scores[groups[c] == g]),
            }
            for g in GROUPS[c]
        }
        for c in GROUPS
    }
    return gating.ModelEvaluation(
        version=version,
        metrics=metrics,
        subgroup_metrics=sub,
        scores=scores,
        labels=labels,
        ids=[str(i) for i in range(n)],
        row_groups=groups,
    )


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.tables = 0
        self.images = 0
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.sections.append(dict(attrs)["id"])
        self.tables += tag == "table"
        self.images += tag == "img" and dict(attrs).get("src", "").startswith("data:image/png;base64,")

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture
def release_state(git_repo: Path, tmp_path: Path, monkeypatch):
    registry = prod_registry(tmp_path, monkeypatch)
    git(git_repo, "checkout", "-q", "-b", "release/1.1")
    sha = git(git_repo, "rev-parse", "HEAD").strip()
    event = Event(kind="push", provider="local", branch="release/1.1", sha=sha, actor="release.bot")
    prepared = prepare.prepare(event, git_repo / "configs", git_repo, environ={})
    state = run.new_state(prepared, registry=registry, repo_path=git_repo, progress=lambda *_: None)
    # the gold table's catalog as the features step leaves it (groups from feature_mappings.yml)
    groups = {"comorbidities": ["cm_diabetes", "cm_hypertension"], "sdoh_food": ["sdoh_food_insecurity"]}
    catalog = Catalog(
        feature_columns=[c for cols in groups.values() for c in cols],
        groups=groups,
        snapshot_id="snap-1",
        row_count=4000,
    )
    state.gold = Gold(df=None, catalog=catalog, feature_columns=catalog.feature_columns)
    return state, registry


def _decide(state, candidate: gating.ModelEvaluation, champion: gating.ModelEvaluation):
    """What the gate step does: decide, record (with the approvals policy), log the pack."""
    policy = state.settings.promotion.policy("prod")
    verdict = gating.decide(policy, candidate, champion, phi_found=[])
    cfg = state.settings.promotion.approval("prod")
    signed = approvals.policy_of(cfg)
    rec = state.recorder.record(
        "gate",
        candidate_version=candidate.version,
        champion_version=champion.version,
        metrics={"candidate": dict(candidate.metrics), "champion": dict(champion.metrics)},
        policy_hash=gating.policy_hash(policy),
        verdict=verdict.status,
        reasons=[r.to_dict() for r in verdict.reasons],
        details={
            "mode": verdict.mode,
            "approvals": signed.to_dict(),
            "approvals_policy_hash": approvals.policy_hash(signed),
            "change_ticket_policy": cfg.change_ticket.model_dump(mode="json"),
            "ticket": {"id": "CHG-41", "source": "release tag", "state": None},
            "policy_source": state.plan.event.commit,
        },
    )
    log_evidence(state, verdict, rec, candidate)
    return verdict, rec


def _pack_files(registry: Registry, version: int) -> tuple[dict, str, str, list[str]]:
    run_id = registry.version_info(MODEL, version).tags[evidence.EVIDENCE_RUN_TAG]
    pack = json.loads(read_run_text(registry, run_id, "evidence/evidence.json"))
    md = read_run_text(registry, run_id, "evidence/evidence.md")
    page = read_run_text(registry, run_id, "evidence/evidence.html")
    files = [p for p, _ in run_artifact_files(registry, run_id)]
    return pack, md, page, files


def _parsed(page: str) -> _Tables:
    p = _Tables()
    p.feed(page)
    p.close()
    return p


def _no_phi(*texts: str) -> None:
    """No PHI column value shapes (SSN, phone, e-mail, dates of birth) and no row-level ids in the pack."""
    import re

    for text in texts:
        text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)  # the plots' bytes
        assert not re.search(r"\b\d{3}-\d{2}-\d{4}\b", text), "an SSN-shaped value"
        assert not re.search(r"[\w.]+@[\w-]+\.\w+", text.replace("compliance.officer", "")), "an e-mail address"
        for column in ("first_name", "last_name", "ssn", "date_of_birth", "street_address", "mrn", "member_id"):
            assert column not in text, column


def test_a_pass_has_every_section_tables_plots_and_no_phi(release_state):
    state, registry = release_state
    verdict, rec = _decide(state, _evaluation(2, 0.3, seed=2), _evaluation(1, 1.0, seed=1))
    assert verdict.status == "PASS"
    pack, md, page, files = _pack_files(registry, 2)
    assert pack["decision"]["kind"] == "gate" and pack["decision"]["verdict"] == "PASS"
    assert pack["decision"]["record_id"] == rec.record_id
    assert {"evidence/evidence.md", "evidence/evidence.html", "evidence/evidence.json"} <= set(files)
    assert {"evidence/plots/calibration.png", "evidence/plots/roc.png", "evidence/plots/pr.png"} <= set(files)
    parsed = _parsed(page)
    assert parsed.sections == [sid for sid, *_ in SECTIONS]
    assert parsed.tables >= 10 and parsed.images == 3
    for _, title, *_ in SECTIONS:
        assert f"## {title}" in md
    # intended use from model_card.yml, social-determinant inputs named as such
    assert "care-management outreach" in md
    assert "| sdoh_food | 1 | social-determinant input |" in md and "| comorbidities | 2 |  |" in md
    # held-out performance with intervals, the rollback plan, the lineage
    auc = pack["performance"]["metrics"]["roc_auc"]
    assert auc["low"] < auc["value"] < auc["high"]
    assert "moves `champion` back to version 1" in md
    assert pack["lineage"]["approvals policy sha256"] == rec.details["approvals_policy_hash"]
    assert "CHG-41" in md
    # subgroup table with an interval for each judged group
    judged = [r for r in pack["subgroups"]["rows"] if r["eligible"]]
    assert judged and all(r["low"] is not None and r["low"] <= r["candidate"] <= r["high"] for r in judged)
    _no_phi(md, page)
    assert state.result.links["evidence pack"]


def test_a_fail_lists_every_gate_reason(release_state):
    state, registry = release_state
    verdict, _ = _decide(state, _evaluation(2, 1.5, seed=3), _evaluation(1, 0.3, seed=1))
    assert verdict.status == "FAIL"
    pack, md, page, _ = _pack_files(registry, 2)
    assert pack["decision"]["verdict"] == "FAIL"
    failed = [r["rule"] for r in pack["gate"]["reasons"] if not r["passed"]]
    assert "improvement.absolute" in failed
    for reason in verdict.reasons:
        assert reason.rule in md
    assert "| improvement.absolute | FAIL |" in md
    _no_phi(md, page)


def test_an_approval_gets_its_pack_with_roles_identities_and_the_ticket(release_state):
    state, registry = release_state
    # a marginal win: NEEDS_APPROVAL under the shipped policy (marginal: approval)
    verdict, rec = _decide(state, _evaluation(2, 0.45, seed=5), _evaluation(1, 0.5, seed=1))
    assert verdict.status == "NEEDS_APPROVAL", [r.message for r in verdict.failed]
    config_dir = Path(state.repo_path) / "configs"
    for who in ("ds.lead", "dr.lee", "compliance.officer"):
        action = decisions.approve(config_dir, "prod", 2, environ={"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": who})
        assert action.evidence_url
    assert action.champion_moved and registry.get_alias(MODEL, tags.CHAMPION) == 2
    pack, md, page, _ = _pack_files(registry, 2)
    assert pack["decision"]["kind"] == "approval" and pack["decision"]["gate_record_id"] == rec.record_id
    assert pack["decision"]["champion_after"] == 2
    assert [r["name"] for r in pack["approvals"]["records"]] == ["ds.lead", "dr.lee", "compliance.officer"]
    assert all(r["provider"] == "github" and r["verified"] for r in pack["approvals"]["records"])
    assert pack["approvals"]["assigned"] == {
        "clinical_safety": ["dr.lee"],
        "compliance": ["compliance.officer"],
        "data_science": ["ds.lead"],
    }
    assert "| data_science | @model_owners | 1 | ds.lead |" in md
    assert "CHG-41" in md  # the release ticket, recorded with the decision
    assert _parsed(page).sections == [sid for sid, *_ in SECTIONS]


def test_a_rollback_gets_its_pack(release_state):
    state, registry = release_state
    _decide(state, _evaluation(2, 0.3, seed=2), _evaluation(1, 1.0, seed=1))
    registry.set_alias(MODEL, tags.PREVIOUS, 1)
    registry.set_alias(MODEL, tags.CHAMPION, 2)
    config_dir = Path(state.repo_path) / "configs"
    action = decisions.rollback(config_dir, "prod", "ops.kim", "calibration drift", environ={})
    assert action.evidence_url
    pack, md, _, _ = _pack_files(registry, 1)
    assert pack["decision"]["kind"] == "rollback" and pack["decision"]["champion_after"] == 1
    assert "moved `champion` from version 2 to version 1 (calibration drift)" in md
