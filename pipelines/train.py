"""Training on Spark: hash split, Hyperopt search, refit, held-out evaluation, logging through a handle.

Three layers, pure core first:

* :func:`split`, :func:`evaluation_rows`, :func:`validation_split` decide which rows do what
  from a hash of the pseudonymous key (``data.key_column``) and a salt, so the held-out rows are the same in
  every run, for every search seed, in every environment, for the same data snapshot.
* :func:`train` takes DataFrames and returns a :class:`TrainOutput` (the fitted Spark
  ``PipelineModel``, the search trials, held-out metrics). It never touches MLflow; a
  callback sees each trial.
* :func:`fit_and_log` logs through a tracking handle the application layer gives it (one run,
  one nested run per trial, parameters, metrics, plots, the resolved config, the catalog entry,
  the Spark model with a PHI-free signature). Registration, the content-key reuse and the
  registry lock belong to the application layer (``promoter.app.training``), not here.

The held-out evaluation rows are never seen by the search: it scores a validation part
carved out of the training rows by a second hash salt.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines import evaluate as ev
from pipelines import sqltext
from pipelines.api import FitInput, Fitted, Trial
from promoter.errors import DataContractError, PromoteError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.ml import PipelineModel
    from pyspark.sql import Column, DataFrame, SparkSession

    from pipelines.tracking import TrainingRun
    from promoter.config import Settings

SCORE_COLUMN = "score"
LABEL = "promote_label"
FEATURES_RAW = "promote_features_raw"
FEATURES = "promote_features"
BUCKETS = 10_000
MODEL_ARTIFACT = "model"
SUMMARY_ARTIFACT = "evaluation/summary.json"
EVAL_ROWS_TAG = "promote.evaluation_rows_sha256"


# --------------------------------------------------------------------------- splits


def _col(name: str) -> "Column":
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _bucket(key_col: str, salt: str) -> "Column":
    """0..BUCKETS-1 from xxhash64(key, salt): stable across runs, seeds, executors and Spark versions."""
    from pyspark.sql import functions as F

    return F.pmod(F.xxhash64(_col(key_col).cast("string"), F.lit(salt)), F.lit(BUCKETS))


def _require(df: "DataFrame", cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataContractError(f"{what} lacks column(s) {', '.join(missing)}")


def _key(settings: "Settings", key_col: str | None) -> str:
    """The key column: ``key_col`` when given, else the project's ``data.key_column``."""
    return key_col or settings.project.data.key_column


def split(df: "DataFrame", settings: "Settings", key_col: str | None = None) -> tuple["DataFrame", "DataFrame"]:
    """(training rows, held-out evaluation rows) by a hash of the key (default ``data.key_column``).

    The first ``split_config`` fraction of hash buckets trains, the rest is held out. Every
    row of one key lands on the same side.

    Raises:
        DataContractError: when the key column is missing.
    """
    key_col = _key(settings, key_col)
    _require(df, [key_col], "the gold table")
    threshold = round(settings.training.split_config[0] * BUCKETS)
    bucket = _bucket(key_col, settings.training.split_salt)
    return df.filter(bucket < threshold), df.filter(bucket >= threshold)


def evaluation_rows(df: "DataFrame", settings: "Settings", key_col: str | None = None) -> "DataFrame":
    """The held-out rows the gate compares models on (the second part of :func:`split`)."""
    return split(df, settings, key_col)[1]


def _validation_flag(settings: "Settings", key_col: str) -> "Column":
    threshold = round(settings.training.validation_fraction * BUCKETS)
    return _bucket(key_col, settings.training.split_salt + "/validation") < threshold


def validation_split(
    train_df: "DataFrame", settings: "Settings", key_col: str | None = None
) -> tuple["DataFrame", "DataFrame"]:
    """(search-fit rows, search-validation rows) carved from the training rows by a second salt."""
    flag = _validation_flag(settings, _key(settings, key_col))
    return train_df.filter(~flag), train_df.filter(flag)


# --------------------------------------------------------------------------- estimators and the space


def hyperopt_space(space: Mapping[str, Mapping[str, list[Any]]]) -> dict[str, Any]:
    """The YAML search space as Hyperopt expressions (``loguniform`` bounds are natural logs)."""
    from hyperopt import hp

    out: dict[str, Any] = {}
    for name, spec in space.items():
        ((kind, args),) = spec.items()
        if kind == "uniform":
            out[name] = hp.uniform(name, args[0], args[1])
        elif kind == "loguniform":
            out[name] = hp.loguniform(name, args[0], args[1])
        elif kind == "quniform":
            out[name] = hp.quniform(name, args[0], args[1], args[2])
        elif kind == "randint":
            out[name] = hp.randint(name, args[0], args[1])
        elif kind == "choice":
            out[name] = hp.choice(name, list(args))
        else:  # config validation makes this unreachable
            raise ValueError(f"unknown search distribution {kind!r} for {name}")
    return out


def typed_params(settings: "Settings", values: Mapping[str, Any]) -> dict[str, Any]:
    """YAML-named parameter values cast to the types Spark ML wants (``quniform`` floats -> int)."""
    table = settings.training.spark_params()
    out: dict[str, Any] = {}
    for name, value in values.items():
        kind = table[name][1]
        if isinstance(value, np.generic):
            value = value.item()
        out[name] = (
            int(round(value))
            if kind == "int"
            else float(value)
            if kind == "float"
            else bool(value)
            if kind == "bool"
            else str(value)
        )
    return out


def make_estimator(settings: "Settings", params: Mapping[str, Any], seed: int | None = None):
    """The configured classifier over :data:`FEATURES` and :data:`LABEL` with ``params`` set."""
    from pyspark.ml.classification import GBTClassifier, LogisticRegression, RandomForestClassifier

    algorithm = settings.training.algorithm
    cls = {"logistic_regression": LogisticRegression, "gbt": GBTClassifier, "random_forest": RandomForestClassifier}[
        algorithm
    ]
    est = cls(featuresCol=FEATURES, labelCol=LABEL)
    if seed is not None and est.hasParam("seed"):
        est = est.setSeed(int(seed))
    table = settings.training.spark_params()
    for name, value in params.items():
        est.set(est.getParam(table[name][0]), value)
    return est


# --------------------------------------------------------------------------- the pure core


@dataclass
class TrainOutput:
    """What :func:`train` produced. Plain data plus the fitted Spark model."""

    model: "PipelineModel"
    feature_columns: list[str]
    best_params: dict[str, Any]
    search_metric: str
    best_validation_metric: float | None
    trials: list[Trial]
    eval_result: ev.EvalResult
    curves: ev.Curves
    importance: list[tuple[str, float]]
    coefficients: list[float] | None
    input_example: dict[str, list[float]]
    rows: dict[str, int]
    timings: dict[str, float]
    evaluation_ids_sha256: str
    paired: tuple[list[str], np.ndarray, np.ndarray] = field(repr=False, default=None)  # type: ignore[assignment]


def _check_features(settings: "Settings", feature_columns: Sequence[str], key_col: str, label_col: str) -> None:
    data = settings.project.data
    if not feature_columns:
        raise DataContractError(
            "no feature columns selected: check feature_selection_config.yml (include_groups/exclude_groups)"
        )
    if len(set(feature_columns)) != len(feature_columns):
        raise DataContractError("a feature column is listed twice")
    phi = sorted(set(feature_columns) & set(data.phi_columns))
    if phi:
        raise DataContractError(f"PHI column(s) {', '.join(phi)} selected as features; PHI never leaves bronze")
    reserved = {
        key_col,
        label_col,
        data.id_column,
        data.snapshot_date_column,
        *data.subgroup_columns,
        SCORE_COLUMN,
        LABEL,
        FEATURES,
        FEATURES_RAW,
    }
    clash = sorted(set(feature_columns) & reserved)
    if clash:
        raise DataContractError(f"column(s) {', '.join(clash)} are ids, labels or subgroups and cannot be features")


def _explain_invalid_features(df: "DataFrame", feature_columns: Sequence[str], exc: BaseException) -> None:
    """Turn Spark's "null/NaN in VectorAssembler" failure into a message naming the columns."""
    from pyspark.sql import functions as F

    text = str(exc)
    if "null" not in text.lower() and "nan" not in text.lower():
        return
    bad = F.col  # readability below
    row = df.agg(
        *[
            F.sum((bad(f"`{c}`").isNull() | F.isnan(bad(f"`{c}`"))).cast("int")).alias(f"c{i}")
            for i, c in enumerate(feature_columns)
        ]
    ).first()
    found = [(c, int(row[f"c{i}"] or 0)) for i, c in enumerate(feature_columns) if row[f"c{i}"]]
    if found:
        listed = ", ".join(f"{c} ({n})" for c, n in found[:10]) + (" ..." if len(found) > 10 else "")
        raise DataContractError(
            f"gold feature column(s) hold null or NaN values: {listed}; gold features must "
            f"be imputed (feature_selection_config.yml imputation)"
        ) from None


def train(
    spark: "SparkSession",
    settings: "Settings",
    gold_df: "DataFrame",
    feature_columns: Sequence[str],
    *,
    key_col: str | None = None,
    label_col: str | None = None,
    seed: int | None = None,
    on_trial: Callable[[Trial], None] | None = None,
    fit: Callable[[FitInput], Fitted] | None = None,
) -> TrainOutput:
    """Split by key, fit on the training rows (``fit``, the project's trainer, or
    :func:`default_fit`), and measure the fitted model on the held-out rows.

    Args:
        spark: the active session.
        settings: settings for one environment (``training`` section, label and subgroup columns).
        gold_df: the gold table: key, label, subgroup and feature columns.
        feature_columns: the selected features (``Catalog.feature_columns``).
        key_col: the pseudonymous key the split hashes (default ``settings.project.data.key_column``).
        label_col: the 0/1 label (default ``settings.project.data.label_column``).
        seed: search seed (default ``settings.training.seed``); it never changes the split.
        on_trial: called after each search trial (tracking, lock heartbeat).
        fit: the trainer (see :mod:`pipelines.api`); it never sees the held-out rows.

    Returns:
        TrainOutput.

    Raises:
        DataContractError: when columns are missing, PHI is selected, or a part has one class.
        PromoteError: when the trainer returns something other than a fitted model.
    """
    from pyspark import StorageLevel

    t = settings.training
    feature_columns = list(feature_columns)
    key_col = _key(settings, key_col)
    label_col = label_col or settings.project.data.label_column
    seed = t.seed if seed is None else int(seed)
    subgroups = t.subgroups(settings.project.data)
    _check_features(settings, feature_columns, key_col, label_col)
    _require(gold_df, [key_col, label_col, *feature_columns], "the gold table")
    _require(gold_df, subgroups, "the gold table (evaluation.subgroups)")
    started = time.monotonic()
    train_df, eval_df = split(gold_df, settings, key_col)
    trainer = fit or default_fit
    fitted = trainer(FitInput(spark, settings, train_df, tuple(feature_columns), key_col, label_col, seed, on_trial))
    if not isinstance(fitted, Fitted) or not callable(getattr(fitted.model, "transform", None)):
        name = f"{getattr(trainer, '__module__', '?')}:{getattr(trainer, '__qualname__', trainer)}"
        raise PromoteError(
            f"the train entry point {name} returned {type(fitted).__name__}, not a pipelines.api.Fitted "
            "holding a fitted Spark ML model"
        )
    model = fitted.model
    timings: dict[str, float] = dict(fitted.timings) or {"fit_s": time.monotonic() - started}

    # ---- held-out evaluation
    eval_start = time.monotonic()
    keep = list(dict.fromkeys([key_col, label_col, *subgroups, *feature_columns]))
    scored = (
        ev.score(model, eval_df.select(*[_col(c) for c in keep]))
        .select(key_col, label_col, *subgroups, SCORE_COLUMN)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        result = _measure(scored, settings, label_col, subgroups, key_col)
        curves = ev.curves(scored, label_col, SCORE_COLUMN, ece_bins=t.evaluation.ece_bins)
        paired = ev.paired_rows(scored, label_col, SCORE_COLUMN, key_col)
    finally:
        scored.unpersist()
    timings["evaluate_s"] = time.monotonic() - eval_start
    timings["total_s"] = time.monotonic() - started

    example = fitted.input_example or _input_example(train_df, feature_columns)
    return TrainOutput(
        model=model,
        feature_columns=feature_columns,
        best_params=dict(fitted.params),
        search_metric=t.search_metric,
        best_validation_metric=fitted.validation_metric,
        trials=list(fitted.trials),
        eval_result=result,
        curves=curves,
        importance=list(fitted.importance or []),
        coefficients=fitted.coefficients,
        input_example=example,
        rows={**fitted.rows, "evaluation": len(paired[0])},
        timings=timings,
        evaluation_ids_sha256=hashlib.sha256("\n".join(paired[0]).encode()).hexdigest(),
        paired=paired,
    )


def _input_example(train_df: "DataFrame", feature_columns: Sequence[str]) -> dict[str, list[float]]:
    """Synthetic rows around the training means (never real entities), for the model's signature."""
    from pyspark.sql import functions as F

    aggs = [F.avg(_col(c)).alias(f"m{i}") for i, c in enumerate(feature_columns)]
    aggs += [F.stddev(_col(c)).alias(f"s{i}") for i, c in enumerate(feature_columns)]
    row = train_df.select(*aggs).first() if feature_columns else None
    offsets = (-1.0, -0.5, 0.0, 0.5, 1.0)
    out: dict[str, list[float]] = {}
    for i, c in enumerate(feature_columns):
        mean = float(row[f"m{i}"] or 0.0) if row is not None else 0.0
        std = float(row[f"s{i}"] or 0.0) if row is not None else 0.0
        out[c] = [mean + z * std for z in offsets]
    return out


def default_fit(inp: FitInput) -> Fitted:
    """The shipped trainer: the configured algorithm (``training.algorithm``) with a Hyperopt
    search over ``training.search_space`` on a validation part of the training rows, then a refit
    on all of them with the best parameters.

    Raises:
        DataContractError: when the label is not 0/1 or a part has one class.
    """
    from hyperopt import STATUS_OK, Trials, fmin, space_eval, tpe
    from hyperopt.early_stop import no_progress_loss
    from pyspark import StorageLevel
    from pyspark.ml import PipelineModel
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.feature import StandardScaler, VectorAssembler
    from pyspark.ml.stat import Summarizer
    from pyspark.sql import functions as F

    settings, train_df = inp.settings, inp.train_df
    t = settings.training
    feature_columns = list(inp.feature_columns)
    key_col, label_col, seed, on_trial = inp.key_column, inp.label_column, inp.seed, inp.on_trial
    timings: dict[str, float] = {}
    started = time.monotonic()

    # ---- prepare: assemble (+ scale) once, cache the training part as vectors
    scale = t.scale_features
    assembler = VectorAssembler(
        inputCols=feature_columns, outputCol=FEATURES_RAW if scale else FEATURES, handleInvalid="error"
    )
    # the features as SQL text in one call (a Column each costs several JVM calls: seconds at 500)
    train_in = train_df.withColumns(
        {LABEL: _col(label_col).cast("double"), "_valid": _validation_flag(settings, key_col)}
    ).selectExpr(LABEL, "_valid", *[f"cast({sqltext.name(c)} as double) as {sqltext.name(c)}" for c in feature_columns])
    stages: list[Any] = [assembler]
    prepared = None
    try:
        if scale:
            scaler = StandardScaler(inputCol=FEATURES_RAW, outputCol=FEATURES, withMean=True, withStd=True)
            stages.append(scaler.fit(assembler.transform(train_in)))
        prep = PipelineModel(stages)
        prepared = prep.transform(train_in).select(LABEL, "_valid", FEATURES).persist(StorageLevel.MEMORY_AND_DISK)
        counts = {
            (bool(r["_valid"]), r[LABEL]): int(r["count"]) for r in prepared.groupBy("_valid", LABEL).count().collect()
        }
    except Exception as exc:
        if prepared is not None:
            prepared.unpersist()
        _explain_invalid_features(train_in, feature_columns, exc)
        raise
    try:
        bad = sorted({str(k[1]) for k in counts if k[1] not in (0.0, 1.0)})
        if bad:
            raise DataContractError(f"label column {label_col!r} must be 0 or 1 (found {', '.join(bad)})")
        n_fit = {y: counts.get((False, y), 0) for y in (0.0, 1.0)}
        n_val = {y: counts.get((True, y), 0) for y in (0.0, 1.0)}
        if min(n_fit.values()) == 0 or min(n_val.values()) == 0:
            raise DataContractError(
                f"label column {label_col!r} needs both classes in the search's fit and "
                f"validation parts (fit: {n_fit}, validation: {n_val}); more rows needed"
            )
        fit_df = prepared.filter(~F.col("_valid"))
        valid_df = prepared.filter(F.col("_valid"))
        timings["prepare_s"] = time.monotonic() - started

        # ---- search
        fixed = typed_params(settings, t.params)
        space = t.space()
        metric_name = {"roc_auc": "areaUnderROC", "pr_auc": "areaUnderPR"}[t.search_metric]
        evaluator = BinaryClassificationEvaluator(
            rawPredictionCol="probability", labelCol=LABEL, metricName=metric_name
        )
        trials_out: list[Trial] = []

        def objective(sample: Mapping[str, Any]) -> dict[str, Any]:
            t0, wall = time.monotonic(), time.time()
            params = {**fixed, **typed_params(settings, sample)}
            model = make_estimator(settings, params, seed).fit(fit_df)
            value = float(evaluator.evaluate(model.transform(valid_df)))
            trial = Trial(len(trials_out), params, value, time.monotonic() - t0, wall)
            trials_out.append(trial)
            if on_trial is not None:
                on_trial(trial)
            return {"loss": -value, "status": STATUS_OK}

        search_start = time.monotonic()
        if space:
            hp_trials = Trials()
            startup = t.startup_trials or max(1, min(20, t.max_evals // 2))
            algo = functools.partial(tpe.suggest, n_startup_jobs=startup)
            fmin(
                objective,
                hyperopt_space(space),
                algo=algo,
                max_evals=t.max_evals,
                trials=hp_trials,
                rstate=np.random.default_rng(seed),
                timeout=t.timeout_seconds,
                early_stop_fn=no_progress_loss(t.early_stop_rounds) if t.early_stop_rounds else None,
                show_progressbar=False,
                verbose=False,
            )
            best = {**fixed, **typed_params(settings, space_eval(hyperopt_space(space), hp_trials.argmin))}
            best_metric = max(tr.metric for tr in trials_out)
        else:
            objective({})
            best, best_metric = dict(fixed), trials_out[0].metric
        timings["search_s"] = time.monotonic() - search_start

        # ---- refit on the whole training part with the best parameters
        refit_start = time.monotonic()
        clf = make_estimator(settings, best, seed).fit(prepared)
        model = PipelineModel([*stages, clf])
        timings["refit_s"] = time.monotonic() - refit_start

        if scale:
            mean, std = stages[1].mean.toArray(), stages[1].std.toArray()
        else:
            stats = Summarizer.metrics("mean", "std").summary(F.col(FEATURES)).alias("s")
            summary = prepared.select(stats).first()["s"]
            mean, std = summary["mean"].toArray(), summary["std"].toArray()
    finally:
        prepared.unpersist()

    coefficients = None
    if hasattr(clf, "featureImportances"):
        importance = clf.featureImportances.toArray()
    else:
        coefficients = [float(x) for x in clf.coefficients.toArray()]
        importance = np.abs(np.asarray(coefficients))
    offsets = (-1.0, -0.5, 0.0, 0.5, 1.0)  # synthetic rows around the mean: never real entities
    example = {c: [float(mean[i] + z * std[i]) for z in offsets] for i, c in enumerate(feature_columns)}
    return Fitted(
        model=model,
        params=best,
        validation_metric=best_metric,
        trials=trials_out,
        rows={
            "train": sum(counts.values()),
            "search_fit": sum(n_fit.values()),
            "search_validation": sum(n_val.values()),
        },
        importance=[(c, float(v)) for c, v in zip(feature_columns, importance)],
        coefficients=coefficients,
        input_example=example,
        timings=timings,
    )


def _measure(
    scored: "DataFrame", settings: "Settings", label_col: str, subgroups: Sequence[str], key_col: str
) -> ev.EvalResult:
    """The held-out metrics of a scored DataFrame, overall and per subgroup (one code path for every model)."""
    e = settings.training.evaluation
    return ev.metrics(
        scored,
        label_col,
        SCORE_COLUMN,
        top_k_percent=e.top_k_percent,
        subgroup_cols=subgroups,
        ece_bins=e.ece_bins,
        id_col=key_col,
    )


def evaluate_model(
    model: "PipelineModel",
    gold_df: "DataFrame",
    settings: "Settings",
    *,
    key_col: str | None = None,
    label_col: str | None = None,
) -> tuple[ev.EvalResult, tuple[list[str], np.ndarray, np.ndarray]]:
    """Score any model (candidate or champion) on this snapshot's held-out rows, the same way.

    Returns:
        (EvalResult, (ids, labels, scores) ordered by key) for the gate. The key and label
        default to the project's ``data.key_column`` and ``data.label_column``.
    """
    result, paired, _ = _evaluate(model, gold_df, settings, key_col, label_col, with_groups=False)
    return result, paired


def evaluate_model_with_groups(
    model: "PipelineModel",
    gold_df: "DataFrame",
    settings: "Settings",
    *,
    key_col: str | None = None,
    label_col: str | None = None,
) -> tuple[ev.EvalResult, tuple[list[str], np.ndarray, np.ndarray], dict[str, np.ndarray]]:
    """:func:`evaluate_model`, plus the group of every row by each subgroup column.

    Returns:
        (EvalResult, (ids, labels, scores), {subgroup column: group per row}), every array
        ordered by key; the gate's fairness rules bootstrap over the groups.
    """
    return _evaluate(model, gold_df, settings, key_col, label_col, with_groups=True)


def _evaluate(
    model: "PipelineModel",
    gold_df: "DataFrame",
    settings: "Settings",
    key_col: str | None,
    label_col: str | None,
    *,
    with_groups: bool,
) -> tuple[ev.EvalResult, tuple[list[str], np.ndarray, np.ndarray], dict[str, np.ndarray]]:
    from pyspark import StorageLevel

    t = settings.training
    key_col = _key(settings, key_col)
    label_col = label_col or settings.project.data.label_column
    subgroups = t.subgroups(settings.project.data)
    scored = (
        ev.score(model, evaluation_rows(gold_df, settings, key_col))
        .select(key_col, label_col, *subgroups, SCORE_COLUMN)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        result = _measure(scored, settings, label_col, subgroups, key_col)
        paired = ev.paired_rows(scored, label_col, SCORE_COLUMN, key_col)
        groups = ev.row_groups(scored, subgroups, key_col) if with_groups else {}
    finally:
        scored.unpersist()
    return result, paired, groups


# --------------------------------------------------------------------------- tracking edge


def _catalog_dict(catalog: Any) -> dict[str, Any]:
    if catalog is None:
        return {}
    for attr in ("to_dict", "model_dump", "as_dict"):
        fn = getattr(catalog, attr, None)
        if callable(fn):
            return dict(fn())
    import dataclasses

    if dataclasses.is_dataclass(catalog):
        return dataclasses.asdict(catalog)
    if isinstance(catalog, Mapping):
        return dict(catalog)
    return {"repr": repr(catalog)}


def _report_files(report: Any) -> dict[str, str]:
    """Contract report -> {file name: text} (JSON always, markdown when the report renders one)."""
    if report is None:
        return {}
    files: dict[str, str] = {}
    if isinstance(report, str):
        files["contract_report.txt"] = report
        return files
    for attr in ("to_markdown", "markdown"):
        fn = getattr(report, attr, None)
        if callable(fn):
            files["contract_report.md"] = str(fn())
            break
    data = _catalog_dict(report)
    files["contract_report.json"] = json.dumps(data, indent=2, sort_keys=True, default=str)
    return files


_SAFE = str.maketrans({c: "_" for c in "!\"#$%&'()*+,:;<=>?@[\\]^`{|}~"})


def _metric_key(key: str) -> str:
    return key.translate(_SAFE)[:250]


def _finite(values: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}


def _write_artifacts(
    out: TrainOutput, lineage: Mapping[str, Any], catalog: Any, contract_report: Any, config_yaml: str, folder: Path
) -> None:
    from pipelines import plots

    (folder / "evaluation").mkdir(parents=True)
    (folder / "config").mkdir()
    (folder / "data").mkdir()
    imp = sorted(out.importance, key=lambda kv: -abs(kv[1]))
    lines = ["feature,importance" + (",coefficient" if out.coefficients is not None else "")]
    coef = dict(zip(out.feature_columns, out.coefficients or []))
    for name, value in imp:
        row = f"{json.dumps(name) if ',' in name else name},{value:.10g}"
        lines.append(row + (f",{coef[name]:.10g}" if out.coefficients is not None else ""))
    (folder / "feature_importance.csv").write_text("\n".join(lines) + "\n")
    plots.importance_png(
        [n for n, _ in out.importance], [v for _, v in out.importance], folder / "feature_importance.png"
    )
    m = out.eval_result.metrics
    c = out.curves
    plots.roc_png(c.fpr, c.tpr, m["roc_auc"], folder / "plots" / "roc.png")
    plots.pr_png(c.recall, c.precision, m["pr_auc"], m["prevalence"], folder / "plots" / "pr.png")
    plots.calibration_png(
        c.bin_mean_score, c.bin_fraction_positive, c.bin_count, m["ece"], folder / "plots" / "calibration.png"
    )
    (folder / "config" / "settings.yml").write_text(config_yaml)
    (folder / "data" / "catalog.json").write_text(
        json.dumps(_catalog_dict(catalog), indent=2, sort_keys=True, default=str)
    )
    (folder / "data" / "features.json").write_text(json.dumps(out.feature_columns, indent=1))
    for name, text in _report_files(contract_report).items():
        (folder / "data" / name).write_text(text)
    summary = {
        "eval_result": out.eval_result.to_dict(),
        "best_params": out.best_params,
        "search_metric": out.search_metric,
        "best_validation_metric": out.best_validation_metric,
        "trials": [
            {"number": tr.number, "params": tr.params, "metric": tr.metric, "seconds": tr.seconds} for tr in out.trials
        ],
        "rows": out.rows,
        "timings": out.timings,
        "evaluation_rows_sha256": out.evaluation_ids_sha256,
        "lineage": dict(lineage),
    }
    (folder / SUMMARY_ARTIFACT).write_text(json.dumps(summary, indent=2, sort_keys=True, default=str))


def fit_and_log(
    spark: "SparkSession",
    settings: "Settings",
    gold_df: "DataFrame",
    catalog: Any,
    run: "TrainingRun",
    *,
    lineage: Mapping[str, Any],
    config_yaml: str,
    contract_report: Any = None,
    feature_columns: Sequence[str] | None = None,
    key_col: str | None = None,
    heartbeat: Callable[[], None] | None = None,
    seed: int | None = None,
    fit: Callable[[FitInput], Fitted] | None = None,
    trainer: str | None = None,
) -> tuple[str, TrainOutput]:
    """Train (see :func:`train`) and log everything through ``run``: parameters, one nested run per
    trial, held-out metrics, plots, the resolved config, the catalog entry and the Spark model.

    Args:
        spark: the active session.
        settings: settings of the environment being trained.
        gold_df: the gold table; catalog: its catalog entry (logged as JSON).
        run: the tracking handle the application layer opened (see :mod:`pipelines.tracking`).
        lineage: commit, tree, config hash, data snapshot ... (logged in the summary).
        config_yaml: the resolved settings, secrets masked, logged as ``config/settings.yml``.
        contract_report: the data contract report, logged with the run when given.
        feature_columns: the candidate's inputs (default: every catalog feature).
        key_col: the pseudonymous key column (default: the catalog's id column).
        heartbeat: called after each trial and before the model upload (keeps a lock fresh).
        seed: search seed override.
        fit: the project's trainer (``project.yml`` ``pipelines.train``); :func:`default_fit` when ``None``.
        trainer: its ``module:function`` name, logged as the ``trainer`` parameter.

    Returns:
        (model URI of the logged model, TrainOutput).
    """
    features = list(feature_columns if feature_columns is not None else catalog.feature_columns)
    key_col = key_col or getattr(catalog, "id_column", None) or settings.project.data.key_column
    t = settings.training
    run.log_params(
        {
            "trainer": trainer or "pipelines.train:default_fit",
            "algorithm": t.algorithm,
            "scale_features": t.scale_features,
            "split_config": t.split_config,
            "split_salt": t.split_salt,
            "validation_fraction": t.validation_fraction,
            "search_metric": t.search_metric,
            "max_evals": t.max_evals,
            "early_stop_rounds": t.early_stop_rounds,
            "timeout_seconds": t.timeout_seconds,
            "seed": t.seed if seed is None else seed,
            "n_features": len(features),
            "search_space": json.dumps(t.space(), sort_keys=True)[:6000],
            "top_k_percent": t.evaluation.top_k_percent,
            "ece_bins": t.evaluation.ece_bins,
            **{f"fixed.{k}": v for k, v in t.params.items()},
        }
    )

    logged: set[int] = set()

    def on_trial(trial: Trial) -> None:
        logged.add(trial.number)
        run.log_trial(
            trial.number,
            trial.params,
            {f"val_{t.search_metric}": trial.metric, "trial_seconds": trial.seconds},
            trial.started_at,
        )
        run.log_metrics({f"trial_val_{t.search_metric}": trial.metric}, step=trial.number)
        if heartbeat is not None:
            heartbeat()

    out = train(spark, settings, gold_df, features, key_col=key_col, seed=seed, on_trial=on_trial, fit=fit)
    for trial in out.trials:  # a trainer that searched without calling on_trial
        if trial.number not in logged:
            on_trial(trial)
    run.log_params({f"best.{k}": v for k, v in out.best_params.items()})
    run.log_metrics(_finite({_metric_key(k): v for k, v in out.eval_result.flat().items()}))
    run.log_metrics(
        _finite(
            {
                f"best_val_{t.search_metric}": out.best_validation_metric or float("nan"),
                "trials": float(len(out.trials)),
                **{f"time_{k}": v for k, v in out.timings.items()},
                **{f"rows_{k}": float(v) for k, v in out.rows.items()},
            }
        )
    )
    run.set_tag(EVAL_ROWS_TAG, out.evaluation_ids_sha256)
    with tempfile.TemporaryDirectory(prefix="promote-artifacts-") as tmp:
        _write_artifacts(out, lineage, catalog, contract_report, config_yaml, Path(tmp))
        run.log_artifacts(tmp)
    if heartbeat is not None:
        heartbeat()
    model_uri = run.log_spark_model(out.model, MODEL_ARTIFACT, features, out.input_example)
    return model_uri, out
