"""The tracking handle a pipeline logs one training run through (MLflow stays in this package).

The pipelines never import MLflow: ``pipelines.tracking.TrainingRun`` names what they may call,
and :class:`MlflowTrainingRun` is that interface over one MLflow run. Open it with
:func:`training_run`; it ends the run FINISHED on success and FAILED on any exception.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from importlib.metadata import version as _version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter.registry.client import MODEL_URI_TAG, mlflow_uris

if TYPE_CHECKING:  # pragma: no cover
    from promoter.registry.client import Registry


class MlflowTrainingRun:
    """One MLflow run: parameters, metrics, tags, artifacts, nested trial runs, the Spark model.

    Attributes:
        run_id: the MLflow run id.
    """

    def __init__(self, registry: "Registry", experiment_id: str, run_id: str) -> None:
        self._registry = registry
        self._experiment_id = experiment_id
        self.run_id = run_id

    @property
    def _client(self) -> Any:
        return self._registry.client

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters (values are stringified; MLflow caps each at 6,000 characters)."""
        import mlflow

        mlflow.log_params({k: (v if isinstance(v, (int, float, bool)) else str(v)[:6000]) for k, v in params.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log metrics at ``step``."""
        import mlflow

        if metrics:
            mlflow.log_metrics(dict(metrics), step=step)

    def set_tag(self, key: str, value: str) -> None:
        """Set one tag on the run."""
        import mlflow

        mlflow.set_tag(key, value)

    def log_artifacts(self, folder: str | Path) -> None:
        """Upload every file under ``folder`` to the run's artifact root."""
        import mlflow

        mlflow.log_artifacts(str(folder))

    def log_trial(
        self, number: int, params: Mapping[str, Any], metrics: Mapping[str, float], started_at: float
    ) -> None:
        """Record one search trial as a nested run (``trial-NNN``) of this run."""
        from mlflow.entities import Metric, Param

        child = self._client.create_run(
            self._experiment_id,
            start_time=int(started_at * 1000),
            tags={"mlflow.parentRunId": self.run_id, "mlflow.runName": f"trial-{number:03d}", "promote.kind": "trial"},
        )
        now = int(time.time() * 1000)
        self._client.log_batch(
            child.info.run_id,
            params=[Param(k, str(v)) for k, v in params.items()],
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
        )
        self._client.set_terminated(child.info.run_id, "FINISHED", end_time=now)

    def log_spark_model(
        self,
        model: Any,
        artifact_path: str,
        feature_columns: Sequence[str],
        input_example: Mapping[str, Sequence[float]],
    ) -> str:
        """Log a fitted Spark ``PipelineModel`` with a signature of its feature columns only.

        The signature lists the model's double inputs and its ``prediction`` output, so no key,
        label, subgroup or PHI column is ever part of it.

        Returns:
            The logged model's URI (also kept as the run tag ``promote.model_uri``).
        """
        import mlflow
        import mlflow.spark
        import pandas as pd
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, Schema

        signature = ModelSignature(
            inputs=Schema([ColSpec("double", c) for c in feature_columns]),
            outputs=Schema([ColSpec("double", "prediction")]),
        )
        info = mlflow.spark.log_model(
            model,
            artifact_path,
            signature=signature,
            input_example=pd.DataFrame(dict(input_example)),
            pip_requirements=[f"mlflow=={_version('mlflow')}", f"pyspark=={_version('pyspark')}"],
        )
        mlflow.set_tag(MODEL_URI_TAG, info.model_uri)
        return info.model_uri


@contextlib.contextmanager
def training_run(
    registry: "Registry", experiment_name: str, run_name: str, tags: Mapping[str, str]
) -> Iterator[MlflowTrainingRun]:
    """Start a run in ``experiment_name`` (created when missing) and yield its handle.

    Args:
        registry: the adapter whose tracking server holds the run.
        experiment_name: e.g. ``/promote/churn-staging``.
        run_name: shown in the MLflow UI.
        tags: lineage tags set when the run starts.

    Yields:
        The handle; the run ends FINISHED, or FAILED when the block raises.
    """
    import mlflow

    experiment_id = registry.experiment_id(experiment_name)
    with mlflow_uris(registry.tracking_uri, registry.registry_uri):
        run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags))
        try:
            yield MlflowTrainingRun(registry, experiment_id, run.info.run_id)
        except BaseException:
            mlflow.end_run("FAILED")
            raise
        mlflow.end_run("FINISHED")


def read_run_json(registry: "Registry", run_id: str, artifact: str) -> Any:
    """Download and parse one JSON artifact of a run.

    Raises:
        Exception: whatever MLflow raises when the run or file is missing (callers fall back).
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="promote-artifact-") as tmp:
        path = registry.client.download_artifacts(run_id, artifact, tmp)
        return json.loads(Path(path).read_text())


def read_run_text(registry: "Registry", run_id: str, artifact: str) -> str | None:
    """One text artifact of a run, or ``None`` when the run has no such file."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="promote-artifact-") as tmp:
        try:
            path = registry.client.download_artifacts(run_id, artifact, tmp)
        except Exception:  # noqa: BLE001 - MLflow raises several types for "no such artifact"
            return None
        return Path(path).read_text()


def log_run_json(registry: "Registry", run_id: str, artifact: str, data: Any) -> None:
    """Add one JSON artifact to a run (finished runs too), e.g. the baseline profile of a version."""
    with mlflow_uris(registry.tracking_uri, registry.registry_uri):
        registry.client.log_text(run_id, json.dumps(data, sort_keys=True, default=str), artifact)


def run_artifact_files(registry: "Registry", run_id: str) -> list[tuple[str, int | None]]:
    """Every file a run logged, recursively: ``(path, size in bytes)`` (size ``None`` when unknown).

    The model a run logs with ``log_spark_model`` is a logged model of its own in MLflow 3 (see
    :func:`model_signature`); when an older store keeps it under the run, its folder is listed too.
    """
    out: list[tuple[str, int | None]] = []
    pending: list[str | None] = [None]
    while pending:
        folder = pending.pop()
        for info in registry.client.list_artifacts(run_id, folder):
            if info.is_dir:
                pending.append(info.path)
            else:
                out.append((info.path, info.file_size))
    return sorted(out)


def read_run_bytes(registry: "Registry", run_id: str, artifact: str) -> bytes:
    """The bytes of one file a run logged.

    Raises:
        Exception: whatever MLflow raises when the run or file is missing.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="promote-artifact-") as tmp:
        return Path(registry.client.download_artifacts(run_id, artifact, tmp)).read_bytes()


def model_signature(registry: "Registry", model_uri: str) -> dict[str, Any]:
    """The signature and input example of a logged or registered model.

    Args:
        registry: the adapter.
        model_uri: ``models:/<name>/<version>``, a logged model's ``models:/m-...`` or ``runs:/<id>/model``.

    Returns:
        ``{"inputs": [names], "outputs": [names], "input_example": text or None}``; the input
        example is the JSON file MLflow saved with the model, as text.
    """
    import tempfile

    from mlflow.models import Model
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    with mlflow_uris(registry.tracking_uri, registry.registry_uri):
        repo = get_artifact_repository(model_uri)  # models:/name/1, models:/m-..., runs:/<id>/model
        with tempfile.TemporaryDirectory(prefix="promote-model-meta-") as tmp:
            meta = Model.load(repo.download_artifacts("MLmodel", tmp))
            sig = meta.signature
            inputs = [] if sig is None or sig.inputs is None else list(sig.inputs.input_names())
            outputs = [] if sig is None or sig.outputs is None else list(sig.outputs.input_names())
            example = None
            info = meta.saved_input_example_info or {}
            if info.get("artifact_path"):
                example = Path(repo.download_artifacts(str(info["artifact_path"]), tmp)).read_text()
    return {"inputs": [str(c) for c in inputs], "outputs": [str(c) for c in outputs], "input_example": example}
