"""Layered config: base + one environment, typed, and every error names file, key and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from promoter import config
from promoter.config import ConfigError, MappingSource
from tests.conftest import CONFIGS, run_promote


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    root = tmp_path / "configs"
    shutil.copytree(CONFIGS, root)
    return root


def edit(root: Path, rel: str, old: str, new: str) -> None:
    p = root / rel
    if old == "*":
        p.write_text(new)
        return
    text = p.read_text()
    if old not in text:
        raise LookupError(f"{old!r} not in {rel}")
    p.write_text(text.replace(old, new, 1))


def test_project_configs_load_for_every_environment():
    for env in (None, "dev", "staging", "prod"):
        s = config.load(CONFIGS, env, environ={})
        assert s.env == env
        assert s.project.model_name == "hrob-risk"
    assert config.load(CONFIGS, "prod", environ={}).model_name_for("prod") == "hrob-risk-prod"


def test_environment_overlay_deep_merges(cfg: Path):
    (cfg / "prod" / "promotion.yml").write_text("gate:\n  prod:\n    min_absolute_improvement: 0.02\n")
    base = config.load(cfg, None, environ={})
    prod = config.load(cfg, "prod", environ={})
    assert base.promotion.gate["prod"].min_absolute_improvement == 0.005
    assert prod.promotion.gate["prod"].min_absolute_improvement == 0.02
    # sibling keys survive the merge
    assert prod.promotion.gate["prod"].floors == base.promotion.gate["prod"].floors
    assert prod.training.max_evals == 12  # configs/prod/training.yml
    assert base.config_hash != prod.config_hash


def test_lists_replace_rather_than_append(cfg: Path):
    (cfg / "dev" / "project.yml").write_text("data:\n  subgroup_columns: [region]\n")
    assert config.load(cfg, "dev", environ={}).project.data.subgroup_columns == ["region"]


def test_interpolation_only_in_uri_and_secret_fields(cfg: Path):
    edit(cfg, "base/project.yml", "name: hrob", "name: hrob-${NOT_EXPANDED}")
    (cfg / "prod" / "project.yml").write_text("tracking_uri: ${PROD_URI}\ntracking_token: ${PROD_TOKEN}\n")
    s = config.load(cfg, "prod", environ={"PROD_URI": "http://127.0.0.1:5000", "PROD_TOKEN": "s3cr3t"})
    assert s.project.name == "hrob-${NOT_EXPANDED}"
    assert s.project.tracking_uri == "http://127.0.0.1:5000"
    assert s.project.tracking_token.get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(s)


def test_default_in_interpolation(cfg: Path):
    s = config.load(cfg, None, environ={})
    assert s.project.tracking_uri == "sqlite:///.promote/mlflow.db"


def test_config_from_a_mapping_source():
    files = {f"{p.parent.name}/{p.name}": p.read_text() for p in CONFIGS.glob("*/*.yml")}
    files["base/promotion.yml"] = files["base/promotion.yml"].replace(
        "min_absolute_improvement: 0.005", "min_absolute_improvement: 0.05"
    )
    s = config.load(MappingSource(files, label="main:configs"), "prod", environ={})
    assert s.promotion.gate["prod"].min_absolute_improvement == 0.05


# (name, file to change, old, new, expected substrings of the one-line message)
MALFORMED = [
    (
        "bad-yaml",
        "base/promotion.yml",
        "environments: [dev, staging, prod]",
        "environments: [dev, staging",
        ["base/promotion.yml:", "invalid YAML"],
    ),
    (
        "unknown-key",
        "base/project.yml",
        "model_name: hrob-risk",
        "model_name: hrob-risk\nmodel_nmae: x",
        ["base/project.yml:", "model_nmae: unknown key"],
    ),
    (
        "wrong-type",
        "base/promotion.yml",
        "min_absolute_improvement: 0.005",
        "min_absolute_improvement: high",
        ["base/promotion.yml:", "gate.prod.min_absolute_improvement: must be a number, got 'high'"],
    ),
    (
        "missing-required",
        "base/project.yml",
        "model_name: hrob-risk\n",
        "",
        ["base/project.yml", "model_name: is required"],
    ),
    (
        "rule-to-unknown-env",
        "base/promotion.yml",
        '{pattern: "**", environment: dev}',
        '{pattern: "**", environment: qa}',
        ["base/promotion.yml:", "branch_rules[3].environment", "unknown environment 'qa'"],
    ),
    (
        "empty-rules",
        "base/promotion.yml",
        '  - {pattern: release, environment: prod}\n  - {pattern: "release/*", environment: prod}\n'
        '  - {default_branch: true, environment: staging}\n  - {pattern: "**", environment: dev}\n',
        "  []\n",
        ["base/promotion.yml:", "branch_rules", "at least one rule"],
    ),
    (
        "duplicate-key",
        "base/project.yml",
        "model_name: hrob-risk",
        "model_name: hrob-risk\nmodel_name: other",
        ["base/project.yml:", "duplicate key 'model_name'"],
    ),
    (
        "bad-glob",
        "base/promotion.yml",
        '"release/*"',
        '"release/[0-9"',
        ["base/promotion.yml:", "branch_rules[1]", "unclosed '['"],
    ),
    (
        "unset-variable",
        "base/project.yml",
        "tracking_uri: ${MLFLOW_TRACKING_URI:-sqlite:///.promote/mlflow.db}",
        "tracking_uri: ${PROMOTE_TEST_UNSET_VAR}",
        ["base/project.yml:", "tracking_uri", "PROMOTE_TEST_UNSET_VAR is not set"],
    ),
    (
        "wrong-literal",
        "base/promotion.yml",
        "mode: enforce\n    primary_metric: roc_auc\n    direction",
        "mode: strict\n    primary_metric: roc_auc\n    direction",
        ["gate.prod.mode: must be one of"],
    ),
    (
        "rule-with-two-matchers",
        "base/promotion.yml",
        "{default_branch: true, environment: staging}",
        "{default_branch: true, pattern: main, environment: staging}",
        ["branch_rules[2]", "exactly one of 'pattern' or 'default_branch"],
    ),
    (
        "steps-unknown-step",
        "base/promotion.yml",
        "schedule: [score, surveillance, report]",
        "schedule: [score, deploy, report]",
        ["steps.prod.schedule[1]", "must be one of"],
    ),
    (
        "bad-split",
        "base/training.yml",
        "split_config: [0.8, 0.2]",
        "split_config: [0.8, 0.3]",
        ["base/training.yml:", "split_config", "add up to 1"],
    ),
    (
        "top-level-not-mapping",
        "base/training.yml",
        "*",
        "- just\n- a list\n",
        ["base/training.yml:1:1", "top level must be a mapping"],
    ),
    (
        "template-without-env",
        "base/project.yml",
        'model_name_template: "{model}-{env}"',
        'model_name_template: "{model}"',
        ["registry.model_name_template", "{env}"],
    ),
    (
        "pr-fallback-to-prod",
        "base/promotion.yml",
        "pull_request_fallback: staging",
        "pull_request_fallback: prod",
        ["pull_request_fallback", "never runs in prod"],
    ),
    (
        "negative-approvals",
        "base/promotion.yml",
        "compliance: {members: [compliance.officer], required: 1}",
        "compliance: {members: [compliance.officer], required: -1}",
        ["approvals.prod.roles.compliance.required"],
    ),
    (
        "unknown-approval-group",
        "base/promotion.yml",
        'members: ["@model_owners"]',
        'members: ["@nobody"]',
        ["approvals.prod", "group '@nobody' is not defined"],
    ),
    (
        "bad-ticket-pattern",
        "base/promotion.yml",
        'pattern: "CHG-[0-9]+"',
        'pattern: "CHG-[0-9"',
        ["approvals.prod.change_ticket.pattern", "not a regular expression"],
    ),
    ("yaml-tab", "base/training.yml", "max_evals: 8", "max_evals:\t\t8\n\tbad: [", ["base/training.yml:"]),
]


@pytest.mark.parametrize("name,rel,old,new,expected", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_config_gives_one_clear_line_and_exit_2(cfg: Path, name, rel, old, new, expected):
    edit(cfg, rel, old, new)
    with pytest.raises(ConfigError) as info:
        config.load(cfg, "prod", environ={})
    message = str(info.value)
    for part in expected:
        assert part in message, message
    assert "\n" not in message


@pytest.mark.parametrize("name,rel,old,new,expected", MALFORMED[:4], ids=[m[0] for m in MALFORMED[:4]])
def test_cli_reports_config_errors_with_exit_2_and_no_traceback(cfg: Path, name, rel, old, new, expected):
    edit(cfg, rel, old, new)
    proc = run_promote("--config-dir", str(cfg), "plan", "--event", "push", "--branch", "main")
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr
    for part in expected:
        assert part in lines[0]


def test_unknown_environment(cfg: Path):
    with pytest.raises(ConfigError, match="unknown environment 'qa'"):
        config.load(cfg, "qa", environ={})


def test_unknown_config_file(cfg: Path):
    (cfg / "prod" / "trainnig.yml").write_text("max_evals: 1\n")
    with pytest.raises(ConfigError, match=r"prod/trainnig.yml: unknown config file"):
        config.load(cfg, "prod", environ={})


def test_override_error_points_at_the_override_file(cfg: Path):
    (cfg / "prod" / "promotion.yml").write_text("gate:\n  prod:\n    min_relative_improvement: lots\n")
    with pytest.raises(ConfigError) as info:
        config.load(cfg, "prod", environ={})
    assert "prod/promotion.yml:3:31: gate.prod.min_relative_improvement: must be a number, got 'lots'" in str(
        info.value
    )


def test_missing_config_folder(tmp_path: Path):
    with pytest.raises(ConfigError, match="config folder not found"):
        config.load(tmp_path / "nope", None)


def test_env_flag_wins_over_variable():
    assert config.resolve_env("prod", {"PROMOTE_ENV": "dev"}) == "prod"
    assert config.resolve_env(None, {"PROMOTE_ENV": "dev"}) == "dev"
    assert config.resolve_env(None, {}) is None
