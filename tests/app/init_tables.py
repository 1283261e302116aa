"""Synthetic source tables for the `promote init` tests: names that share nothing with the reference project.

``people``: one row per ``person_id`` at ``as_of``, a learnable 0/1 ``outcome``, two PHI columns by
name (``full_name``, ``birth_date``) and one by value (``contact``: e-mail addresses), two prefix
families (``lab_*``, ``vit_*``), a text column and two subgroup columns (``sex``, ``language``).
``encounters``: events of those people (``encounter_id``, ``encounter_date``, ``encounter_type``,
``cost``) that also drive the outcome.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

AS_OF = date(2025, 6, 30)
ENCOUNTER_TYPES = ("ED", "INPATIENT", "OFFICE", "TELEHEALTH")


def people_and_encounters(n: int = 3000, seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables; the outcome depends on labs, vitals, history and the emergency visits."""
    rng = np.random.default_rng(seed)
    ids = [f"P{i:07d}" for i in range(n)]
    age = rng.integers(18, 90, n)
    a1c = rng.normal(6.0, 1.0, n)
    sbp = rng.normal(130, 15, n)
    bmi = rng.normal(28, 5, n)
    prior = rng.poisson(2, n)
    smoker = rng.binomial(1, 0.2, n)
    plan = rng.choice(["hmo", "ppo", "medicaid"], n, p=[0.4, 0.35, 0.25])
    ed_rate = 0.3 + 0.4 * smoker + 0.2 * (a1c > 7)
    ed = rng.poisson(ed_rate)
    other = rng.poisson(2.5, n)
    logit = (
        -2.3
        + 0.9 * (a1c - 6)
        + 0.03 * (sbp - 130)
        + 0.25 * prior
        + 0.6 * smoker
        + 0.02 * (age - 50)
        + 0.5 * (plan == "medicaid")
        + 0.6 * ed
    )
    outcome = rng.binomial(1, 1 / (1 + np.exp(-logit)))
    a1c_obs = np.where(rng.random(n) < 0.08, np.nan, np.round(a1c, 1))
    bmi_obs = np.where(rng.random(n) < 0.05, np.nan, np.round(bmi, 1))
    people = pd.DataFrame(
        {
            "person_id": ids,
            "as_of": [AS_OF] * n,
            "sex": rng.choice(["F", "M"], n),
            "language": rng.choice(["en", "es", "other"], n, p=[0.6, 0.3, 0.1]),
            "birth_date": [AS_OF - timedelta(days=int(a) * 365 + int(d)) for a, d in zip(age, rng.integers(0, 365, n))],
            "full_name": [f"Given{i} Family{i % 97}" for i in range(n)],
            "contact": [f"person{i}@example.org" for i in range(n)],
            "lab_a1c": a1c_obs,
            "lab_ldl": np.round(rng.normal(120, 30, n), 1),
            "vit_sbp": np.round(sbp, 1),
            "vit_bmi": bmi_obs,
            "prior_visits": prior.astype("int64"),
            "smoker": smoker.astype("int64"),
            "plan_type": plan,
            "outcome": outcome.astype("int64"),
        }
    )
    rows = []
    k = 0
    for pid, n_ed, n_other in zip(ids, ed, other):
        for kind, count in (("ED", n_ed), (None, n_other)):
            for _ in range(int(count)):
                t = kind or str(rng.choice(["INPATIENT", "OFFICE", "TELEHEALTH"], p=[0.1, 0.6, 0.3]))
                rows.append(
                    (
                        f"E{k:08d}",
                        pid,
                        AS_OF - timedelta(days=int(rng.integers(1, 700))),
                        t,
                        round(float(rng.lognormal(5, 1)), 2),
                    )
                )
                k += 1
    encounters = pd.DataFrame(rows, columns=["encounter_id", "person_id", "encounter_date", "encounter_type", "cost"])
    return people, encounters


def one_table(n: int = 3000, seed: int = 11) -> pd.DataFrame:
    """The people table with the emergency-visit count folded in (a one-table dataset)."""
    people, encounters = people_and_encounters(n, seed)
    ed = encounters[encounters.encounter_type == "ED"].groupby("person_id").size()
    out = people.copy()
    out.insert(out.columns.get_loc("prior_visits") + 1, "ed_visits", out.person_id.map(ed).fillna(0).astype("int64"))
    return out


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path


def write_parquet(df: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)
    return path


def write_delta(df: pd.DataFrame, path: Path) -> Path:
    import pyarrow as pa
    from deltalake import write_deltalake

    write_deltalake(str(path), pa.Table.from_pandas(df, preserve_index=False))
    return path
