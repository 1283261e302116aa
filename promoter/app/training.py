"""Train a candidate and register it, at most once per content key (the ``train`` step's work).

The ML work is the pipeline's (``pipelines.train.fit_and_log``); what this module adds is what
the pipeline must not know: the registry lock of the model, the content-key reuse (a READY
version with the same tree, config and data is returned instead of training again), the
resume of a run that logged its model but died before registering it, and the tracking run
the pipeline logs through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from pipelines import evaluate as ev
from pipelines.train import EVAL_ROWS_TAG, SUMMARY_ARTIFACT, TrainOutput, fit_and_log
from promoter.errors import PromoteError
from promoter.report.masking import Masker

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from promoter.config import Settings
    from promoter.registry import Lineage, Registry


def resolved_config_yaml(settings: "Settings") -> str:
    """The settings as YAML with secrets masked (secret fields, URL passwords, secret variables)."""
    text = yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=True, default_flow_style=False)
    return Masker.from_env().mask(text)


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train_and_register`.

    Attributes:
        model_name: the environment's registered model.
        version: the registered (or reused) version.
        run_id: the training run that produced it.
        reused: True when a READY version with the same content key existed (nothing trained).
        content_key: tree sha + config hash + data snapshot id, hashed (``None``: no reuse possible).
        metrics: held-out metrics at training time (for reports; the gate re-scores both models).
        eval_result: full held-out metrics incl. subgroups.
        best_params: parameters of the refit model.
        timings: seconds per phase (empty when reused).
        evaluation_rows_sha256: digest of the held-out keys.
        output: the TrainOutput (model, trials, per-row scores); ``None`` when reused or resumed.
        resumed: True when an earlier run with this key had trained and logged the model but not
            registered it (it died); that run's model was registered, nothing trained.
    """

    model_name: str
    version: int
    run_id: str
    reused: bool
    content_key: str | None
    metrics: dict[str, float]
    eval_result: ev.EvalResult
    best_params: dict[str, Any]
    timings: dict[str, float]
    evaluation_rows_sha256: str | None
    output: TrainOutput | None = field(default=None, repr=False)
    resumed: bool = False

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no model, no per-row data)."""
        return {
            "model_name": self.model_name,
            "version": self.version,
            "model_uri": self.model_uri,
            "run_id": self.run_id,
            "reused": self.reused,
            "resumed": self.resumed,
            "content_key": self.content_key,
            "metrics": self.eval_result.to_dict()["metrics"],
            "best_params": self.best_params,
            "timings": self.timings,
            "evaluation_rows_sha256": self.evaluation_rows_sha256,
        }

    def text(self) -> str:
        """Two or three lines for a console."""
        m = self.eval_result.metrics
        head = f"{'reused' if self.reused else 'registered'} {self.model_name} v{self.version} (run {self.run_id})"
        if self.reused:
            head += ": a READY version already has this code, config and data (content key)"
        elif self.resumed:
            head += ": registered the model an earlier run with this content key trained and logged"
        k = f"{self.eval_result.top_k_percent:g}%"
        line = (
            f"held-out rows {int(m['n'])} (positives {int(m['positives'])}): roc_auc {m['roc_auc']:.4f}  "
            f"pr_auc {m['pr_auc']:.4f}  brier {m['brier']:.4f}  log_loss {m['log_loss']:.4f}  "
            f"ece {m['ece']:.4f}  precision@{k} {m['precision_at_k']:.4f}  recall@{k} {m['recall_at_k']:.4f}"
        )
        lines = [head, line]
        if self.best_params:
            lines.append("best params: " + ", ".join(f"{k_}={v}" for k_, v in sorted(self.best_params.items())))
        return "\n".join(lines) + "\n"


def _summary_of_run(registry: "Registry", run_id: str) -> dict[str, Any]:
    """The run's ``evaluation/summary.json``; from its metrics when the file is missing (older runs)."""
    from promoter.registry.tracking import read_run_json

    try:
        return dict(read_run_json(registry, run_id, SUMMARY_ARTIFACT))
    except Exception:  # noqa: BLE001 - any failure to read it: fall back to the logged metrics
        metrics = {k: v for k, v in registry.run_metrics(run_id).items() if k in ev.METRIC_NAMES}
        return {"eval_result": ev.EvalResult(metrics=metrics).to_dict(), "best_params": {}}


def _from_summary(
    model_name: str,
    version: int,
    run_id: str,
    key: str | None,
    summary: Mapping[str, Any],
    *,
    reused: bool,
    resumed: bool = False,
) -> "TrainResult":
    result = ev.EvalResult.from_dict(summary["eval_result"])
    return TrainResult(
        model_name=model_name,
        version=version,
        run_id=run_id,
        reused=reused,
        resumed=resumed,
        content_key=key,
        metrics=dict(result.metrics),
        eval_result=result,
        best_params=dict(summary.get("best_params", {})),
        timings={},
        evaluation_rows_sha256=summary.get("evaluation_rows_sha256"),
    )


def train_and_register(
    spark: "SparkSession",
    settings: "Settings",
    lineage: "Lineage",
    gold_df: "DataFrame",
    catalog: Any,
    registry: "Registry",
    *,
    contract_report: Any = None,
    feature_columns: Sequence[str] | None = None,
    key_col: str | None = None,
    lock_timeout_seconds: float = 3600,
    seed: int | None = None,
    fit: Any = None,
    trainer: str | None = None,
    before_register: Any = None,
) -> TrainResult:
    """Train, log and register a candidate in the environment's model, at most once per content key.

    Under the registry lock of the model: when a READY version carries ``lineage.content_key``
    it is returned (``reused=True``, nothing trained); otherwise the model is trained, logged
    and registered with the lineage tags on the run and on the version. A re-run of the same
    event therefore never makes a second version.

    Args:
        spark: the active session.
        settings: settings for ``lineage.environment``.
        lineage: commit, tree, config hash, data snapshot, ... (see :class:`promoter.registry.Lineage`).
        gold_df: the gold table from ``features.load_gold``.
        catalog: its catalog entry (``feature_columns``, ``snapshot_id``; logged as JSON).
        registry: the MLflow adapter.
        contract_report: the data contract report, logged with the run when given.
        feature_columns: override ``catalog.feature_columns``.
        key_col: the pseudonymous key (default ``catalog.id_column``).
        lock_timeout_seconds: how long to wait for another run holding the lock.
        seed: search seed override (default ``training.seed``).
        fit: the project's trainer (``pipelines.api``); the shipped one when ``None``.
        trainer: its ``module:function`` name (logged with the run).
        before_register: called as ``before_register(run_id, model_uri)`` after the run logged
            its model and artifacts and before the version is registered (also for a resumed
            run); it raises to stop the registration (the PHI scan does).

    Raises:
        PromoteError: when settings and lineage disagree on the environment; LockTimeout/LockLost.
    """
    from promoter.registry.tracking import training_run

    if settings.env and settings.env != lineage.environment:
        raise PromoteError(f"settings are for {settings.env!r} but lineage says {lineage.environment!r}")
    env = lineage.environment
    model_name = registry.model_name(settings, env)
    key = lineage.content_key
    description = f"trained from {lineage.branch or '?'} @ {(lineage.commit or 'unknown')[:12]}"
    with registry.lock(model_name, timeout_seconds=lock_timeout_seconds) as held:
        if key is not None:
            found = registry.find_version_by_content_key(model_name, key)
            if found is not None and found.run_id:
                return _from_summary(
                    model_name, found.version, found.run_id, key, _summary_of_run(registry, found.run_id), reused=True
                )
            # a run that trained and logged its model but died before registering: register it
            experiment_id = registry.experiment_id(registry.experiment_name(settings, env))
            finished = registry.find_finished_run(experiment_id, key)
            if finished is not None:
                run_id, model_uri = finished
                summary = _summary_of_run(registry, run_id)
                tags = {
                    **lineage.tags(),
                    **(
                        {EVAL_ROWS_TAG: summary["evaluation_rows_sha256"]}
                        if summary.get("evaluation_rows_sha256")
                        else {}
                    ),
                }
                if before_register is not None:
                    before_register(run_id, model_uri)
                version = registry.register(run_id, model_uri, model_name, tags, description=description)
                return _from_summary(model_name, version, run_id, key, summary, reused=False, resumed=True)
        run_name = f"train-{env}-{(lineage.commit or 'local')[:8]}"
        with training_run(
            registry, registry.experiment_name(settings, env), run_name, {**lineage.tags(), "promote.kind": "train"}
        ) as run:
            model_uri, out = fit_and_log(
                spark,
                settings,
                gold_df,
                catalog,
                run,
                lineage=lineage.to_dict(),
                config_yaml=resolved_config_yaml(settings),
                contract_report=contract_report,
                feature_columns=feature_columns,
                key_col=key_col,
                heartbeat=held.refresh,
                seed=seed,
                fit=fit,
                trainer=trainer,
            )
            run_id = run.run_id
        held.check()
        if before_register is not None:
            before_register(run_id, model_uri)
        tags = {**lineage.tags(), EVAL_ROWS_TAG: out.evaluation_ids_sha256}
        version = registry.register(run_id, model_uri, model_name, tags, description=description)
    return TrainResult(
        model_name=model_name,
        version=version,
        run_id=run_id,
        reused=False,
        content_key=key,
        metrics=dict(out.eval_result.metrics),
        eval_result=out.eval_result,
        best_params=out.best_params,
        timings=out.timings,
        evaluation_rows_sha256=out.evaluation_ids_sha256,
        output=out,
    )
