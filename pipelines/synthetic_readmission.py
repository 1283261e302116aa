"""Synthetic 30-day readmission data: one row per index discharge, a second model project's table.

A table of another shape than the HROB population, so the engine is exercised with names it has
never seen: one flat table (no event table), id ``patient_id``, label ``readmitted_30d``, the
snapshot column ``as_of_date``, subgroups ``sex`` and ``insurance_type`` (and ``age_group``, which
silver derives from ``date_of_birth``), about 40 features in six prefixed groups, and PHI-looking
columns (``patient_name``, ``mrn``, ``date_of_birth``, ``home_phone``) that the project lists in
``phi_columns``.

Generated with numpy and written with pyarrow (Parquet, CSV) or deltalake (Delta), no Spark: the
same ``(rows, seed, as_of, shift)`` gives the same table.

The generative story (the "known model"):

* Each patient has a latent frailty ``zf``, a latent social vulnerability ``zs`` and a
  utilisation propensity ``zu`` (mostly frailty and social need); ``shift`` drifts all three up.
* The index stay (``enc_*``), diagnoses (``dx_*``), discharge labs (``lab_*``) and medications
  (``med_*``) depend on frailty; prior utilisation (``hx_*``) on ``zu``; the social context
  (``soc_*``) on ``zs`` and age.
* The label is one Bernoulli draw from ``sigmoid(LABEL_INTERCEPT + sum(coef * term))`` with the
  terms of :data:`LABEL_MODEL`. The clinical terms alone give a useful model; prior utilisation
  and the social context carry further, independent signal (a model with them beats one
  without). Prevalence is about 10 % (a few per cent more under ``shift``).
* Missing values are not at random: discharge labs are missed more on short elective stays,
  the social screen (``soc_distance_km``, ``soc_lives_alone``) more for self-pay patients, and
  ``hx_days_since_last_admit`` is empty exactly when there was no admission in the last year.

PHI is clearly fictional: MRNs start with ``TEST``, phones are 555-01xx.
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from promoter.errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pyarrow as pa

    from promoter.config import Settings

ENTITY_TABLE = "discharges"
ID_COLUMN = "patient_id"
LABEL_COLUMN = "readmitted_30d"
SNAPSHOT_COLUMN = "as_of_date"
SUBGROUP_COLUMNS = ("sex", "insurance_type")
PHI_COLUMNS = ("patient_id", "patient_name", "mrn", "date_of_birth", "home_phone")

# feature group -> column prefix (the project's feature_mappings.yml uses the same)
GROUP_PREFIXES: dict[str, str] = {
    "encounter": "enc_",
    "diagnoses": "dx_",
    "labs": "lab_",
    "medications": "med_",
    "prior_utilization": "hx_",
    "social_context": "soc_",
}
# the index stay alone: what the readmission demo's first release trains on
CLINICAL_GROUPS = ("encounter", "diagnoses", "labs", "medications")
# what its second release adds
HISTORY_GROUPS = ("prior_utilization", "social_context")

SEXES = [("F", 0.53), ("M", 0.47)]
INSURANCE_65_PLUS = [("medicare", 0.86), ("commercial", 0.07), ("medicaid", 0.05), ("self_pay", 0.02)]
INSURANCE_UNDER_65 = [("medicare", 0.10), ("medicaid", 0.36), ("commercial", 0.44), ("self_pay", 0.10)]
INSURANCE_TYPES = ("medicare", "medicaid", "commercial", "self_pay")
DISPOSITIONS = ("home", "home_health", "skilled_nursing", "rehab", "left_against_advice")
SERVICE_LINES = ("medicine", "cardiology", "surgery", "orthopedics", "oncology")

# The label's known model: logit = LABEL_INTERCEPT + sum(coefficient * term), over true values
# (before missingness) and latents. "history" is what the clinical groups cannot see.
LABEL_INTERCEPT = -3.35
LABEL_MODEL: dict[str, dict[str, float]] = {
    "clinical": {
        "dx_heart_failure": 0.45,
        "dx_copd": 0.30,
        "dx_ckd": 0.30,
        "dx_cancer_active": 0.40,
        "dx_diabetes": 0.15,
        "(dx_charlson_index - 3) / 2": 0.18,
        "log(enc_length_of_stay / 4)": 0.30,
        "enc_discharge_disposition == skilled_nursing": 0.35,
        "enc_discharge_disposition == left_against_advice": 0.90,
        "enc_admit_via_ed": 0.25,
        "(12.5 - lab_hemoglobin) / 1.8": 0.22,
        "(3.6 - lab_albumin) / 0.5": 0.18,
        "med_count_at_discharge > 10": 0.25,
        "zf": 0.35,
    },
    "history": {
        "min(hx_admissions_12m, 5)": 0.30,
        "hx_readmissions_12m > 0": 0.55,
        "min(hx_ed_visits_6m, 6)": 0.12,
        "soc_lives_alone": 0.40,
        "soc_followup_scheduled": -0.55,
        "soc_has_pcp": -0.35,
        "soc_housing_unstable": 0.60,
        "zs": 0.25,
    },
}


@dataclass(frozen=True)
class Spec:
    """What to generate: ``rows`` discharges as of ``as_of`` from ``seed`` (``shift``: drift)."""

    rows: int
    seed: int
    as_of: date
    shift: float = 0.0


def _check(spec: Spec) -> None:
    if spec.rows < 1:
        raise InvalidInput(f"--rows must be at least 1, got {spec.rows}")
    if spec.rows > 50_000_000:
        raise InvalidInput(f"--rows must be at most 50,000,000 (it is generated in memory), got {spec.rows}")
    if not math.isfinite(spec.shift) or abs(spec.shift) > 5:
        raise InvalidInput(f"--shift must be a number between -5 and 5, got {spec.shift}")


def _sig(x: "np.ndarray") -> "np.ndarray":
    import numpy as np

    return 1.0 / (1.0 + np.exp(-x))


def _pick(rng: "np.random.Generator", choices: list[tuple[str, float]], n: int) -> "np.ndarray":
    import numpy as np

    names = np.array([c for c, _ in choices], dtype=object)
    weights = np.array([w for _, w in choices], dtype=np.float64)
    return names[rng.choice(len(choices), size=n, p=weights / weights.sum())]


def _bern(rng: "np.random.Generator", p: "np.ndarray | float", n: int) -> "np.ndarray":
    import numpy as np

    return (rng.random(n) < p).astype(np.int32)


def label_terms(f: dict[str, "np.ndarray"], z: dict[str, "np.ndarray"]) -> dict[str, "np.ndarray"]:
    """Every term of :data:`LABEL_MODEL`, computed from the true feature values and latents."""
    import numpy as np

    disp = f["enc_discharge_disposition"]
    return {
        "dx_heart_failure": f["dx_heart_failure"],
        "dx_copd": f["dx_copd"],
        "dx_ckd": f["dx_ckd"],
        "dx_cancer_active": f["dx_cancer_active"],
        "dx_diabetes": f["dx_diabetes"],
        "(dx_charlson_index - 3) / 2": (f["dx_charlson_index"] - 3.0) / 2.0,
        "log(enc_length_of_stay / 4)": np.log(f["enc_length_of_stay"] / 4.0),
        "enc_discharge_disposition == skilled_nursing": (disp == "skilled_nursing").astype(np.float64),
        "enc_discharge_disposition == left_against_advice": (disp == "left_against_advice").astype(np.float64),
        "enc_admit_via_ed": f["enc_admit_via_ed"],
        "(12.5 - lab_hemoglobin) / 1.8": (12.5 - f["lab_hemoglobin"]) / 1.8,
        "(3.6 - lab_albumin) / 0.5": (3.6 - f["lab_albumin"]) / 0.5,
        "med_count_at_discharge > 10": (f["med_count_at_discharge"] > 10).astype(np.float64),
        "zf": z["zf"],
        "min(hx_admissions_12m, 5)": np.minimum(f["hx_admissions_12m"], 5),
        "hx_readmissions_12m > 0": (f["hx_readmissions_12m"] > 0).astype(np.float64),
        "min(hx_ed_visits_6m, 6)": np.minimum(f["hx_ed_visits_6m"], 6),
        "soc_lives_alone": f["soc_lives_alone"],
        "soc_followup_scheduled": f["soc_followup_scheduled"],
        "soc_has_pcp": f["soc_has_pcp"],
        "soc_housing_unstable": f["soc_housing_unstable"],
        "zs": z["zs"],
    }


def label_logit(f: dict[str, "np.ndarray"], z: dict[str, "np.ndarray"], parts: tuple[str, ...] = ()) -> "np.ndarray":
    """The label's log-odds; ``parts`` limits it to some of :data:`LABEL_MODEL`'s parts (tests)."""
    terms = label_terms(f, z)
    logit = LABEL_INTERCEPT + 0.0 * z["zf"]
    for part, coefs in LABEL_MODEL.items():
        if parts and part not in parts:
            continue
        for term, coef in coefs.items():
            logit = logit + coef * terms[term]
    return logit


def _draw(spec: Spec) -> tuple[dict[str, "np.ndarray"], dict[str, "np.ndarray"]]:
    """The true (complete) columns and the latents."""
    import numpy as np

    n = spec.rows
    rng = np.random.default_rng([spec.seed, 0x5EAD])
    s = spec.shift
    zf = rng.standard_normal(n) + 0.4 * s
    zs = rng.standard_normal(n) + 0.5 * s
    zu = 0.55 * zf + 0.45 * zs + 0.7 * rng.standard_normal(n)
    age = np.clip(np.round(64.0 + 16.0 * rng.standard_normal(n) + 3.0 * zf), 18, 99).astype(np.int32)
    sex = _pick(rng, SEXES, n)
    older = age >= 65
    insurance = np.where(
        older, _pick(rng, INSURANCE_65_PLUS, n), _pick(rng, INSURANCE_UNDER_65, n)
    )  # both drawn for every row, so the draws do not depend on the age mix
    f: dict[str, np.ndarray] = {"sex": sex, "insurance_type": insurance, "age": age}
    aged = (age - 65.0) / 15.0

    # the index stay
    f["enc_length_of_stay"] = np.clip(1 + rng.poisson(np.exp(1.0 + 0.35 * zf)), 1, 60).astype(np.int32)
    f["enc_admit_via_ed"] = _bern(rng, _sig(0.4 + 0.6 * zf), n)
    icu = _bern(rng, _sig(-2.2 + 0.7 * zf), n)
    f["enc_icu_days"] = (icu * (1 + rng.poisson(2.0, n))).astype(np.int32)
    f["enc_num_procedures"] = rng.poisson(np.exp(0.3 + 0.25 * zf)).astype(np.int32)
    f["enc_num_diagnoses"] = np.clip(1 + rng.poisson(np.exp(1.9 + 0.2 * zf)), 1, 40).astype(np.int32)
    disp_logits = np.stack(
        [
            np.full(n, 1.6) - 0.6 * zf - 0.5 * aged,  # home
            0.2 + 0.3 * zf + 0.3 * aged,  # home_health
            -0.6 + 0.7 * zf + 0.7 * aged,  # skilled_nursing
            -1.4 + 0.4 * zf,  # rehab
            -3.6 + 0.6 * zs,  # left_against_advice
        ],
        axis=1,
    )
    p = np.exp(disp_logits - disp_logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random(n)[:, None]
    f["enc_discharge_disposition"] = np.array(DISPOSITIONS, dtype=object)[(u > np.cumsum(p, axis=1)).sum(axis=1)]
    f["enc_service_line"] = _pick(rng, [(x, w) for x, w in zip(SERVICE_LINES, (0.42, 0.2, 0.18, 0.12, 0.08))], n)

    # diagnoses
    f["dx_heart_failure"] = _bern(rng, _sig(-2.0 + 0.8 * zf + 0.5 * aged), n)
    f["dx_copd"] = _bern(rng, _sig(-2.1 + 0.6 * zf + 0.3 * aged), n)
    f["dx_diabetes"] = _bern(rng, _sig(-1.1 + 0.4 * zf), n)
    f["dx_ckd"] = _bern(rng, _sig(-2.0 + 0.6 * zf + 0.4 * aged), n)
    cancer_line = (f["enc_service_line"] == "oncology").astype(np.float64)
    f["dx_cancer_active"] = _bern(rng, _sig(-2.8 + 0.4 * zf + 2.5 * cancer_line), n)
    f["dx_depression"] = _bern(rng, _sig(-1.6 + 0.3 * zs), n)
    f["dx_pneumonia"] = _bern(rng, _sig(-2.2 + 0.5 * zf), n)
    f["dx_sepsis"] = _bern(rng, _sig(-3.0 + 0.6 * zf), n)
    f["dx_charlson_index"] = np.clip(
        f["dx_heart_failure"] * 1
        + f["dx_copd"]
        + f["dx_diabetes"]
        + 2 * f["dx_ckd"]
        + 2 * f["dx_cancer_active"]
        + np.maximum(0, (age - 40) // 10)
        + rng.poisson(0.6, n),
        0,
        20,
    ).astype(np.int32)

    # labs at discharge (true values; missingness below)
    f["lab_hemoglobin"] = np.round(np.clip(12.8 - 0.9 * zf + 1.4 * rng.standard_normal(n), 5, 19), 1)
    f["lab_sodium"] = np.round(np.clip(139 - 1.0 * zf + 3.0 * rng.standard_normal(n), 118, 160), 0)
    f["lab_creatinine"] = np.round(
        np.clip(np.exp(0.0 + 0.25 * zf + 0.5 * f["dx_ckd"] + 0.25 * rng.standard_normal(n)), 0.3, 12), 2
    )
    f["lab_bun"] = np.round(np.clip(16 * f["lab_creatinine"] ** 0.7 + 4 * rng.standard_normal(n), 3, 150), 0)
    f["lab_albumin"] = np.round(np.clip(3.7 - 0.35 * zf + 0.35 * rng.standard_normal(n), 1.2, 5.5), 1)
    f["lab_wbc"] = np.round(np.clip(np.exp(2.0 + 0.15 * zf + 0.3 * rng.standard_normal(n)), 1, 60), 1)
    f["lab_potassium"] = np.round(np.clip(4.2 + 0.4 * rng.standard_normal(n), 2.5, 7), 1)  # noise

    # medications at discharge
    f["med_count_at_discharge"] = np.clip(rng.poisson(np.exp(1.8 + 0.25 * zf + 0.1 * aged)), 0, 40).astype(np.int32)
    f["med_high_risk"] = _bern(rng, _sig(-1.4 + 0.5 * zf), n)
    f["med_anticoagulant"] = _bern(rng, _sig(-1.8 + 0.4 * zf + 0.5 * f["dx_heart_failure"]), n)
    f["med_insulin"] = _bern(rng, np.where(f["dx_diabetes"] == 1, 0.45, 0.02), n)
    f["med_opioid"] = _bern(rng, _sig(-1.5 + 0.9 * (f["enc_service_line"] == "surgery")), n)

    # prior utilisation (what the index stay does not show)
    f["hx_admissions_12m"] = np.clip(rng.poisson(np.exp(-0.8 + 0.75 * zu)), 0, 20).astype(np.int32)
    f["hx_readmissions_12m"] = rng.binomial(f["hx_admissions_12m"], _sig(-1.2 + 0.5 * zu)).astype(np.int32)
    f["hx_ed_visits_6m"] = np.clip(rng.poisson(np.exp(-0.4 + 0.6 * zu + 0.2 * zs)), 0, 30).astype(np.int32)
    f["hx_outpatient_visits_12m"] = np.clip(rng.poisson(np.exp(1.5 - 0.35 * zs + 0.2 * zf)), 0, 60).astype(np.int32)
    f["hx_days_since_last_admit"] = np.clip(
        np.round(365 * rng.beta(1.2, 2.0, n) / (1 + 0.2 * np.maximum(zu, 0))), 1, 365
    )

    # social context
    f["soc_lives_alone"] = _bern(rng, _sig(-1.1 + 0.6 * zs + 0.4 * aged), n)
    f["soc_has_pcp"] = _bern(rng, _sig(1.3 - 0.8 * zs - 0.6 * (insurance == "self_pay")), n)
    f["soc_followup_scheduled"] = _bern(rng, _sig(0.7 - 0.5 * zs + 0.4 * f["soc_has_pcp"]), n)
    f["soc_housing_unstable"] = _bern(rng, _sig(-3.0 + 0.9 * zs), n)
    f["soc_distance_km"] = np.round(np.clip(np.exp(2.3 + 0.4 * zs + 0.7 * rng.standard_normal(n)), 0.5, 400), 1)
    f["soc_interpreter_needed"] = _bern(rng, 0.06, n)  # noise

    z = {"zf": zf, "zs": zs, "zu": zu, "u_label": rng.random(n), "u_miss": rng.random((n, 4))}
    return f, z


# feature columns in the order the table holds them (after the ids, dates, subgroups and label)
FEATURE_COLUMNS = (
    "enc_length_of_stay",
    "enc_admit_via_ed",
    "enc_icu_days",
    "enc_num_procedures",
    "enc_num_diagnoses",
    "enc_discharge_disposition",
    "enc_service_line",
    "dx_heart_failure",
    "dx_copd",
    "dx_diabetes",
    "dx_ckd",
    "dx_cancer_active",
    "dx_depression",
    "dx_pneumonia",
    "dx_sepsis",
    "dx_charlson_index",
    "lab_hemoglobin",
    "lab_sodium",
    "lab_creatinine",
    "lab_bun",
    "lab_albumin",
    "lab_wbc",
    "lab_potassium",
    "med_count_at_discharge",
    "med_high_risk",
    "med_anticoagulant",
    "med_insulin",
    "med_opioid",
    "hx_admissions_12m",
    "hx_readmissions_12m",
    "hx_ed_visits_6m",
    "hx_outpatient_visits_12m",
    "hx_days_since_last_admit",
    "soc_lives_alone",
    "soc_has_pcp",
    "soc_followup_scheduled",
    "soc_housing_unstable",
    "soc_distance_km",
    "soc_interpreter_needed",
)

Column = tuple["np.ndarray", "np.ndarray | None"]
"""One column: its values and, when some are missing, a mask that is ``True`` where missing."""


def columns(spec: Spec) -> dict[str, Column]:
    """Every column of the table, in order: ``name -> (values, missing mask or None)``.

    Raises:
        InvalidInput: for a non-positive row count or a non-finite shift.
    """
    import numpy as np

    _check(spec)
    f, z = _draw(spec)
    n = spec.rows
    label = (z["u_label"] < _sig(label_logit(f, z))).astype(np.int32)
    idx = np.arange(n, dtype=np.int64)
    rng = np.random.default_rng([spec.seed, 0x1D5])
    # unique ids without a permutation table: multiplying by a unit mod the id space is a bijection
    pid = 10_000_000 + (idx * 48_271 + int(rng.integers(0, 90_000_000))) % 90_000_000
    mrn = 1_000_000 + (idx * 16_807 + int(rng.integers(0, 9_000_000))) % 9_000_000
    first = np.array(["Avery", "Jordan", "Morgan", "Riley", "Casey", "Quinn", "Rowan", "Sage"], dtype=object)
    last = np.array(["Testperson", "Sampleton", "Fictional", "Placeholder", "Exemplar"], dtype=object)
    as_of = np.datetime64(spec.as_of.isoformat(), "D")
    birth = as_of - (f["age"] * 365.25 + rng.integers(0, 365, n)).astype("timedelta64[D]")
    # index discharges fall 31-120 days before the extract, so every 30-day outcome is known
    discharged = as_of - rng.integers(31, 121, n).astype("timedelta64[D]")
    admitted = discharged - f["enc_length_of_stay"].astype("timedelta64[D]")
    phone = np.char.add("555-01", np.char.zfill(rng.integers(0, 100, n).astype(str), 2)).astype(object)
    names = first[idx % len(first)] + " " + last[(idx * 7 + 3) % len(last)]

    short_elective = (f["enc_length_of_stay"] <= 2) & (f["enc_admit_via_ed"] == 0)
    lab_missing = z["u_miss"][:, 0] < np.where(short_elective, 0.45, 0.08)
    social_missing = z["u_miss"][:, 2] < np.where(f["insurance_type"] == "self_pay", 0.35, 0.05)
    out: dict[str, Column] = {
        ID_COLUMN: (np.char.add("P", pid.astype(str)).astype(object), None),
        "patient_name": (names, None),
        "mrn": (np.char.add("TEST", np.char.zfill(mrn.astype(str), 9)).astype(object), None),
        "date_of_birth": (birth, None),
        "home_phone": (phone, rng.random(n) < 0.08),
        SNAPSHOT_COLUMN: (np.full(n, as_of), None),
        "admit_date": (admitted, None),
        "discharge_date": (discharged, None),
        "sex": (f["sex"], None),
        "insurance_type": (f["insurance_type"], None),
        LABEL_COLUMN: (label, None),
    }
    labs = ("lab_hemoglobin", "lab_sodium", "lab_creatinine", "lab_bun", "lab_wbc", "lab_potassium")
    missing = {
        **{c: lab_missing for c in labs},
        "lab_albumin": lab_missing | (z["u_miss"][:, 1] < 0.15),
        "hx_days_since_last_admit": f["hx_admissions_12m"] == 0,
        "soc_lives_alone": social_missing,
        "soc_distance_km": social_missing,
    }
    for name in FEATURE_COLUMNS:
        out[name] = (f[name], missing.get(name))
    return out


def table(spec: Spec) -> "pa.Table":
    """The discharges table as Arrow (dates as ``date32``, counts and flags as ``int32``).

    Raises:
        InvalidInput: for a non-positive row count or a non-finite shift.
    """
    import numpy as np
    import pyarrow as pa

    arrays = {}
    for name, (values, mask) in columns(spec).items():
        if values.dtype.kind == "M":
            arrays[name] = pa.array(values.astype("datetime64[D]"), type=pa.date32(), mask=mask)
        elif values.dtype.kind == "f":
            arrays[name] = pa.array(values.astype(np.float64), type=pa.float64(), mask=mask)
        elif values.dtype.kind in "iub":
            arrays[name] = pa.array(values.astype(np.int32), type=pa.int32(), mask=mask)
        else:
            arrays[name] = pa.array(values.tolist(), type=pa.string(), mask=mask)
    return pa.table(arrays)


Format = Literal["parquet", "csv", "delta"]


def write(data: "pa.Table", path: str | os.PathLike[str], fmt: Format = "parquet") -> None:
    """Write ``data`` to ``path`` all or nothing: a new file (or Delta commit) replaces the old one.

    Parquet and CSV are written to a temporary file beside the target and renamed over it; Delta
    is overwritten by one commit of the deltalake package.

    Raises:
        InvalidInput: for an unknown format or a path that is a folder where a file belongs.
    """
    target = Path(path)
    if fmt == "delta":
        from deltalake import write_deltalake

        target.mkdir(parents=True, exist_ok=True)
        write_deltalake(str(target), data, mode="overwrite", schema_mode="overwrite")
        return
    if fmt not in ("parquet", "csv"):
        raise InvalidInput(f"cannot write format {fmt!r} (parquet, csv or delta)")
    if target.is_dir():
        raise InvalidInput(f"{target} is a folder; a {fmt} table here is one file (name it e.g. discharges.{fmt})")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(data, tmp)
        else:
            import pyarrow.csv as pacsv

            pacsv.write_csv(data, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def generate(settings: "Settings", rows: int, seed: int, as_of: date, shift: float = 0.0) -> dict[str, Any]:
    """Write the synthetic discharges to the project's entity table (``project.yml`` ``data.tables``).

    Args:
        settings: a project with ``data.source: tables``; its ``entity_table`` entry names the path
            and format (parquet, csv or delta) the table is written to.
        rows: discharges to generate.
        seed: random seed; same seed and arguments, same data.
        as_of: the extract date (``as_of_date``); discharges fall 31-120 days before it.
        shift: population drift (0 = reference; 1 = frailer, more socially vulnerable).

    Returns:
        ``{"table": name, "path": absolute path, "rows": n, "prevalence": share of label 1}``.

    Raises:
        InvalidInput: the project does not read tables, or bad arguments.
    """
    data = settings.project.data
    if data.source != "tables" or data.entity_table not in data.tables:
        raise InvalidInput(
            "the readmission dataset is written to the project's entity table: project.yml needs "
            "data.source: tables and data.tables." + data.entity_table
        )
    source = data.tables[data.entity_table]
    location = source.path.removeprefix("file://").removeprefix("file:")
    if "://" in location:
        raise InvalidInput(f"the readmission dataset is written to a local path, not {source.path}")
    spec = Spec(rows=rows, seed=seed, as_of=as_of, shift=shift)
    arrow = table(spec)
    target = Path(location).expanduser().resolve()
    write(arrow, target, source.format)
    labels = arrow.column(LABEL_COLUMN).to_pylist()
    return {
        "table": data.entity_table,
        "path": str(target),
        "rows": arrow.num_rows,
        "prevalence": sum(labels) / max(1, len(labels)),
    }
