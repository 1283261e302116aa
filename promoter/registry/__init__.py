"""MLflow adapter: the only package that imports ``mlflow``.

``client``: registered models, versions, aliases, tags, runs; ``lineage``: what a version was
built from; ``lock``: the cross-process registry lock; ``audit_store``: the audit chain's store;
``tracking``: the handle a pipeline logs a training run through; ``deadline``: the bounded wait
for a tracking server that is down.
"""

from promoter.registry.audit_store import AUDIT_EXPERIMENT, AUDIT_HEAD, AUDIT_PART, MlflowAuditStore
from promoter.registry.client import MODEL_URI_TAG, Registry, local_artifact_root, local_store_missing, mlflow_uris
from promoter.registry.lineage import Lineage, VersionInfo, content_key
from promoter.registry.lock import LOCK_HEARTBEAT_AT, LOCK_HOLDER, LOCK_PREFIX, LockHandle, LockLost, LockTimeout

__all__ = [
    "AUDIT_EXPERIMENT",
    "AUDIT_HEAD",
    "AUDIT_PART",
    "LOCK_HEARTBEAT_AT",
    "LOCK_HOLDER",
    "LOCK_PREFIX",
    "Lineage",
    "LockHandle",
    "LockLost",
    "LockTimeout",
    "MODEL_URI_TAG",
    "MlflowAuditStore",
    "Registry",
    "VersionInfo",
    "content_key",
    "local_artifact_root",
    "local_store_missing",
    "mlflow_uris",
]
