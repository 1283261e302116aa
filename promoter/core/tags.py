"""Names of the MLflow tags and aliases `promote` writes. One place, so every module agrees."""

from __future__ import annotations

PREFIX = "promote."

# lineage: on the training run and on the model version
COMMIT = "promote.commit"
TREE = "promote.tree"
BRANCH = "promote.branch"
EVENT_KIND = "promote.event_kind"
PR_NUMBER = "promote.pr_number"
ENVIRONMENT = "promote.environment"
CONFIG_HASH = "promote.config_hash"
DATA_SNAPSHOT = "promote.data_snapshot"
CONTRACT_VERSION = "promote.contract_version"
VERSION = "promote.version"
ACTOR = "promote.actor"
RUN_URL = "promote.run_url"
CONTENT_KEY = "promote.content_key"  # tree sha + config hash + data snapshot: idempotent registration

# decisions: on the model version
VERDICT = "promote.verdict"  # PASS | FAIL | NEEDS_APPROVAL
DECISION_ID = "promote.decision_id"
EXPECTATIONS = "promote.expectations"  # PASS | FAIL (absolute floors, staging)

# aliases
CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"

LINEAGE_KEYS = (
    COMMIT,
    TREE,
    BRANCH,
    EVENT_KIND,
    PR_NUMBER,
    ENVIRONMENT,
    CONFIG_HASH,
    DATA_SNAPSHOT,
    CONTRACT_VERSION,
    VERSION,
    ACTOR,
    RUN_URL,
    CONTENT_KEY,
)
