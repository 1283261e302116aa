"""The interface between the promoter and a project's ML code: what a pipeline entry point gets and returns.

A project names its ML code in ``project.yml``, one ``module:function`` per part::

    pipelines:
      contracts: pipelines.contracts:check        # (spark, settings) -> ContractReport
      features: pipelines.features:build          # (spark, settings) -> Catalog (writes gold)
      train: my_project.training:fit              # (FitInput) -> Fitted
      score: pipelines.score:score_population     # (spark, model, gold_df, *, ...) -> ScoreResult
      monitor: pipelines.surveillance:surveil     # (MonitorInput) -> MonitorResult

Every key is optional; the defaults are the shipped Spark pipelines above (``train`` defaults to
:func:`pipelines.train.default_fit`, the configured algorithm with a Hyperopt search). A module
is imported with the project's folder (the parent of its ``configs/``) first on ``sys.path``, so
a project may keep its code next to its configs.

The ``train`` entry point is the one teams replace most, so it has the smallest contract:
:class:`FitInput` in, :class:`Fitted` out. It sees only the training rows: the held-out rows
the gate compares models on are split off before (by a hash of the key), and the engine scores
the fitted model on them with the same code it scores every champion with, logs the model and
its metrics, and registers it. A trainer therefore never touches the registry, a lock or a
promotion decision, and its model is judged exactly like the shipped one.

A fitted model is any Spark ML ``Transformer`` (e.g. a ``PipelineModel``) whose ``transform``
of a frame with the feature columns adds a ``probability`` vector column (``[P(0), P(1)]``), as
Spark's classifiers do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from promoter.config import Settings

PARTS = ("contracts", "features", "train", "score", "monitor")
"""The parts of a project's ML code that ``project.yml`` ``pipelines:`` may name."""


@dataclass(frozen=True)
class Trial:
    """One search trial: parameters (YAML names), the validation metric, its wall time."""

    number: int
    params: dict[str, Any]
    metric: float
    seconds: float
    started_at: float


@dataclass(frozen=True)
class FitInput:
    """What a ``train`` entry point gets.

    Attributes:
        spark: the active session.
        settings: the environment's settings (``training`` holds the project's own knobs).
        train_df: the training rows only (key, label, subgroup and feature columns); the
            held-out evaluation rows are not in it.
        feature_columns: the selected features, in order (the model's inputs).
        key_column: the pseudonymous key column (``data.key_column``).
        label_column: the 0/1 label column (``data.label_column``).
        seed: the search seed of this run.
        on_trial: call it with each :class:`Trial` of a search, if there is one (it logs the
            trial and keeps the registry lock fresh on a long search).
    """

    spark: "SparkSession"
    settings: "Settings"
    train_df: "DataFrame"
    feature_columns: tuple[str, ...]
    key_column: str
    label_column: str
    seed: int
    on_trial: Callable[[Trial], None] | None = None


@dataclass
class Fitted:
    """What a ``train`` entry point returns.

    Attributes:
        model: the fitted Spark ML transformer (adds a ``probability`` column).
        params: the parameters it was fitted with (logged as ``best.<name>``).
        validation_metric: the search's best validation metric, if it searched.
        trials: the search's trials (logged one nested run each, if not already via ``on_trial``).
        rows: row counts worth logging (``{"train": n, ...}``).
        importance: ``(feature, importance)`` pairs, if the model has them.
        coefficients: linear coefficients in ``feature_columns`` order, if it is linear.
        input_example: a few synthetic rows per feature for the model's signature; the engine
            makes them from the training rows' means and deviations when omitted.
        timings: seconds per phase (``{"search_s": ..., "refit_s": ...}``), logged as ``time_<phase>``.
    """

    model: Any
    params: dict[str, Any] = field(default_factory=dict)
    validation_metric: float | None = None
    trials: list[Trial] = field(default_factory=list)
    rows: Mapping[str, int] = field(default_factory=dict)
    importance: list[tuple[str, float]] | None = None
    coefficients: list[float] | None = None
    input_example: dict[str, list[float]] | None = None
    timings: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MonitorInput:
    """What a ``monitor`` entry point gets (``pipelines.surveillance.surveil`` is the shipped one).

    Attributes:
        spark: the active session.
        settings: the environment's settings (``monitoring`` holds the rules).
        gold_df: today's gold table (key, subgroup and feature columns): the rows that were scored.
        score_date: the scored day to monitor.
        model_name: the registered model (e.g. ``<model>-prod``).
        environment: the environment monitored.
        model_version: the champion's version that scored the day.
        feature_columns: the champion's inputs, in order.
        baseline: the champion's training-snapshot profile (``pipelines.drift.Profile.to_dict()``,
            logged with the version when it was trained), or ``None`` when it has none.
        importance: feature -> the champion's importance (ranks drifted features), if known.
    """

    spark: "SparkSession"
    settings: "Settings"
    gold_df: "DataFrame"
    score_date: Any
    model_name: str
    environment: str
    model_version: int | None
    feature_columns: tuple[str, ...]
    baseline: Mapping[str, Any] | None = None
    importance: Mapping[str, float] | None = None
