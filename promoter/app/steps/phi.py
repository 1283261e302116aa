"""The PHI scan of what a run produced (invariant 8: PHI never leaves bronze), and when it runs.

The bronze PHI values (every distinct value of ``data.phi_columns`` and the id columns) are read
once per run (``pipelines.phi.bronze_index``) into salted 8-byte digests (``promoter.core.phi``);
the values themselves are never kept, printed or logged. Against them, and against the PHI
column names and the SSN / phone / e-mail patterns of the PHI guard, the steps scan:

* **train**, after the training run logged its model and artifacts and **before the version is
  registered** (``train_and_register(before_register=...)``): the model signature (input and
  output names), the input example, every file the run logged (text files line by line; images
  and other binaries are named as not scanned) and the run's log lines so far. Under an
  enforcing policy a finding stops the run (exit 3) and nothing is registered; under
  ``dry_run`` it is noted and the gate reports it. A reused version (same content key) registers
  nothing: the gate scans it.
* **expectations** (staging) and **gate** (prod): the same for the candidate version as
  registered (files logged after registration too, e.g. the monitoring baseline) and every log
  line so far. The findings are the gate's ``phi`` rule: FAIL with where, or PASS with what
  was scanned.
* **promote**: the same again, under the run lock, just before the alias moves (so a log line
  written after the gate counts too); a finding refuses the move (exit 3).
* **score**: right after the predictions and outreach tables are written, the day's partition
  of both (column names and every text value) and the log lines; a finding fails the step
  (exit 3) naming table, column and row. Scoring comes after promote in the plan, so the tables
  cannot be scanned before the move; a finding there stops the run before its scoring record.

``policy.phi_check: false`` (or ``mode: disabled``) turns the scan off.
"""

from __future__ import annotations

import json
import os
import time
from datetime import date
from typing import TYPE_CHECKING

from promoter import errors
from promoter.app.state import RunState
from promoter.core import phi as core_phi

if TYPE_CHECKING:  # pragma: no cover
    from promoter.core.phi import PhiIndex, PhiScan

# files never read as text (named in the summary as not scanned)
BINARY_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".bmp",
    ".pdf",
    ".parquet",
    ".pkl",
    ".pickle",
    ".joblib",
    ".bin",
    ".npy",
    ".npz",
    ".zip",
    ".gz",
    ".crc",
)
MAX_TEXT_BYTES = 50 * 1024 * 1024


def enabled(state: RunState) -> bool:
    """Whether this environment's policy scans for PHI."""
    policy = state.settings.promotion.policy(state.env)
    return policy.phi_check and policy.mode != "disabled"


def blocking(state: RunState) -> bool:
    """Whether a finding stops the run (``mode: enforce``) rather than being noted."""
    return state.settings.promotion.policy(state.env).mode == "enforce"


def index(state: RunState) -> "PhiIndex":
    """The bronze PHI index of this run, built on first use."""
    if state.phi_index is None:
        from pipelines import phi as guard

        started = time.monotonic()
        state.phi_index = guard.bronze_index(state.spark, state.settings, os.urandom(16))
        state.progress(f"      PHI scan: indexed {state.phi_index.description} in {time.monotonic() - started:.1f}s")
    return state.phi_index


def scan_model(state: RunState, model_uri: str) -> "PhiScan":
    """The model's signature (input and output names) and its input example (names and values)."""
    from promoter.registry.tracking import model_signature

    idx = index(state)
    sig = model_signature(state.registry, model_uri)
    found = core_phi.scan_names(idx, sig["inputs"], "signature input")
    found += core_phi.scan_names(idx, sig["outputs"], "signature output")
    for name in [*sig["inputs"], *sig["outputs"]]:
        found += core_phi.scan_string(idx, name, f"signature column {name}")
    example = sig["input_example"]
    if example is not None:
        try:
            data = json.loads(example)
            columns = data.get("columns", []) if isinstance(data, dict) else []
        except ValueError:
            columns = []
        found += core_phi.scan_names(idx, [str(c) for c in columns], "input example")
        found += core_phi.scan_text(idx, example, "input example")
    summary = core_phi.ScanSummary(signature=True, input_example=example is not None)
    return core_phi.PhiScan(tuple(found), summary)


def scan_artifacts(state: RunState, run_id: str) -> "PhiScan":
    """Every file the run logged: text line by line (a CSV's header as column names too).

    The model's own folder (``model/``, when MLflow keeps it under the run) is the model: it is
    scanned as its signature and input example (:func:`scan_model`), and named as such.
    """
    from pipelines.train import MODEL_ARTIFACT
    from promoter.registry.tracking import read_run_bytes, run_artifact_files

    idx = index(state)
    found: list[core_phi.Finding] = []
    skipped: list[str] = []
    scanned = 0
    files = run_artifact_files(state.registry, run_id)
    model_files = [p for p, _ in files if p.startswith(MODEL_ARTIFACT + "/")]
    if model_files:
        skipped.append(f"{MODEL_ARTIFACT}/ ({len(model_files)} files of the model: scanned as its signature)")
    for path, size in files:
        if path.startswith(MODEL_ARTIFACT + "/"):
            continue
        if path.lower().endswith(BINARY_SUFFIXES):
            skipped.append(f"{path} (binary)")
            continue
        if size is not None and size > MAX_TEXT_BYTES:
            skipped.append(f"{path} (over {MAX_TEXT_BYTES // (1024 * 1024)} MB)")
            continue
        data = read_run_bytes(state.registry, run_id, path)
        try:
            if b"\x00" in data[:8192]:
                raise UnicodeDecodeError("utf-8", data[:1], 0, 1, "NUL byte")
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            skipped.append(f"{path} (binary)")
            continue
        scanned += 1
        where = f"artifact {path}"
        if path.lower().endswith(".csv") and text:
            header = [h.strip().strip('"') for h in text.splitlines()[0].split(",")]
            found += core_phi.scan_names(idx, header, where)
        found += core_phi.scan_text(idx, text, where)
    return core_phi.PhiScan(tuple(found), core_phi.ScanSummary(artifacts=scanned, skipped=tuple(skipped)))


def scan_log(state: RunState) -> "PhiScan":
    """Every line the run has printed so far (its progress output)."""
    lines = list(state.log_lines)
    found = core_phi.scan_lines(index(state), lines, "log")
    return core_phi.PhiScan(tuple(found), core_phi.ScanSummary(log_lines=core_phi.count_lines(lines)))


def scan_run(state: RunState, run_id: str, model_uri: str) -> "PhiScan":
    """Signature, input example, the run's files and the log lines so far."""
    scan = scan_model(state, model_uri).merge(scan_artifacts(state, run_id)).merge(scan_log(state))
    return core_phi.PhiScan(scan.findings, _with_index(scan.summary, state))


def scan_candidate(state: RunState) -> "PhiScan":
    """:func:`scan_run` for the candidate version this run trained (or reused)."""
    cand = state.candidate
    if cand is None:
        raise errors.PromoteError("no candidate: the plan has no train step before this one")
    return scan_run(state, cand.run_id, cand.model_uri)


def scan_tables(state: RunState, tables: dict[str, str], day: date, partition_column: str) -> "PhiScan":
    """The ``day`` partition of each Delta table (``name -> location``), then the log lines."""
    from pipelines import phi as guard

    idx = index(state)
    found: list[core_phi.Finding] = []
    names: list[str] = []
    for name, location in tables.items():
        got = guard.scan_delta_table(idx, location, name, (partition_column, day.isoformat()))
        if got is not None:
            names.append(name)
            found += got
    scan = core_phi.PhiScan(tuple(found), core_phi.ScanSummary(tables=tuple(names))).merge(scan_log(state))
    return core_phi.PhiScan(scan.findings, _with_index(scan.summary, state))


def _with_index(summary: "core_phi.ScanSummary", state: RunState) -> "core_phi.ScanSummary":
    from dataclasses import replace

    return replace(summary, index=index(state).description)


def refuse(state: RunState, scan: "PhiScan", what: str) -> None:
    """Stop the run (exit 3) on findings under an enforcing policy; otherwise note them."""
    if scan.clean:
        return
    message = f"PHI guard: {what}: PHI found outside bronze (scanned: {scan.summary.text()}): " + "; ".join(
        scan.lines()
    )
    if blocking(state):
        raise errors.GateRejected(message)
    state.result.notes.append(message + " (not blocking: the policy's mode is not enforce)")
