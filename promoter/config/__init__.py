"""Layered YAML config -> validated, typed settings.

Layout::

    configs/
      base/project.yml promotion.yml training.yml ...   every environment starts here
      dev/ staging/ prod/                               overrides, deep-merged on top

Rules:
  * ``base`` then exactly one environment, deep-merged: mappings merge key by key,
    lists and scalars replace.
  * A duplicate key in one file is an error, as is an unknown key or file.
  * ``${VAR}`` (or ``${VAR:-default}``) is expanded only in fields typed ``Uri`` or
    ``Secret``; everywhere else it is plain text (a branch name is data).
  * Every error names the file, the key path and the line/column YAML gives.

The loader reads through a ``FileSource`` so the same code can read the working tree
or a committed tree in git (the gate policy of a PR comes from its target branch).
"""

from __future__ import annotations

from pathlib import Path  # noqa: F401 - kept for callers that use config.Path

from promoter.config.loader import (  # noqa: F401 - the package's public names
    CONFIG_FILES,
    ConfigInvalid,
    ConfigProblem,
    DirSource,
    FileSource,
    MappingSource,
    Path_,
    _describe,
    _Doc,
    _dotted,
    _environments,
    _merge,
    _parse,
    _position,
    _problem,
    _problems_from,
    _read_layer,
    config_hash,
    describe_problems,
    error_at,
    errors_at,
    load,
    locate,
    resolve_env,
)
from promoter.config.models import (  # noqa: F401
    _SPARK_TYPES,
    _VAR,
    BASE,
    EVALUATION_METRICS,
    FOLDED_STEPS,
    HYPERPARAMS,
    REQUIRED_FILES,
    SCORE_TABLE_COLUMNS,
    SEARCH_KINDS,
    UNGROUPED,
    ApprovalPolicy,
    ApprovalRole,
    BranchRule,
    ChangeTicketPolicy,
    ColumnContract,
    ContractsSettings,
    DataSettings,
    DeriveSettings,
    EvaluationSettings,
    EventFeatures,
    EventKind,
    FairnessRule,
    FeatureMappings,
    FeatureSelection,
    ForeignKey,
    FreshnessContract,
    GatePolicy,
    Imputation,
    PipelineEntryPoints,
    ProjectSettings,
    PromotionSettings,
    RegistrySettings,
    RiskTier,
    RowCountContract,
    Scalar,
    ScheduleSettings,
    ScoringSettings,
    Secret,
    Settings,
    SignificanceRule,
    SparkSettings,
    StepName,
    Strict,
    TableContract,
    TableSource,
    TicketVerification,
    TrainingSettings,
    Uri,
    _check_dim,
    _check_value,
    _CrossRefError,
    _default_steps,
    _default_tiers,
    _interpolate,
    _interpolate_secret,
    _is_number,
)
from promoter.errors import ConfigError  # noqa: F401 - raised by load(); callers catch it from here
