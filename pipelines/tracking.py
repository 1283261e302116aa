"""What a pipeline may log while it trains: the interface, not MLflow.

The application layer opens a run with the registry adapter and hands the pipeline an object
with these methods (``promoter.registry.tracking.MlflowTrainingRun``); the pipeline never
imports MLflow and knows nothing of registries, locks or promotion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol


class TrainingRun(Protocol):
    """One tracked training run."""

    run_id: str

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...

    def set_tag(self, key: str, value: str) -> None: ...

    def log_artifacts(self, folder: str | Path) -> None: ...

    def log_trial(
        self, number: int, params: Mapping[str, Any], metrics: Mapping[str, float], started_at: float
    ) -> None: ...

    def log_spark_model(
        self,
        model: Any,
        artifact_path: str,
        feature_columns: Sequence[str],
        input_example: Mapping[str, Sequence[float]],
    ) -> str: ...
