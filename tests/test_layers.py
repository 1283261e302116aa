"""The layers of DESIGN.md are a contract a tool checks: `lint-imports` (import-linter, configured in
pyproject.toml) passes on this tree and fails as soon as the pure core imports MLflow."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("promoter", "pipelines"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(tree), "PATH": str(LINT_IMPORTS.parent)},
    )


def test_the_layer_contracts_hold_and_catch_mlflow_in_the_gate(tmp_path: Path):
    tree = _copy(tmp_path)
    clean = _lint(tree)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 broken" in clean.stdout
    gate = tree / "promoter" / "core" / "gate.py"
    gate.write_text(gate.read_text() + "\nimport mlflow  # noqa: E402,F401 - the change the contract must refuse\n")
    broken = _lint(tree)
    assert broken.returncode != 0
    assert "promoter.core.gate -> mlflow" in broken.stdout, broken.stdout
    assert "the core is pure" in broken.stdout and "MLflow only inside the registry adapter" in broken.stdout


def test_a_pipeline_that_reaches_for_the_registry_breaks_the_layers(tmp_path: Path):
    tree = _copy(tmp_path)
    score = tree / "pipelines" / "score.py"
    score.write_text(score.read_text() + "\nfrom promoter.registry import Registry  # noqa: E402,F401\n")
    broken = _lint(tree)
    assert broken.returncode != 0
    assert "pipelines.score -> promoter.registry" in broken.stdout, broken.stdout
