"""Synthetic HROB population: a Medicaid pregnancy cohort with PHI, 500+ features and claims.

Everything is computed in the Spark executors from ``spark.range`` (``mapInArrow`` with
vectorised numpy); every value is a hash of ``(seed, member index, column)`` (splitmix64), so
the same seed gives the same data on any number of cores, partitions or machines, and nothing
is collected to the driver.

The generative story (the "known model"):

* Each member has latent risks: clinical ``zc``, social ``zs`` (higher for groups facing
  structural disadvantage), access to care ``za`` and utilisation ``zu``; all standard normal
  plus ``--shift`` (drift for surveillance work: sicker, poorer, less access).
* Named clinical features (prior preterm birth, chronic hypertension, BMI, ...) depend on
  ``zc``; named social-determinant features (housing instability, food insecurity, no
  vehicle, income, ...) on ``zs``; many further features in every group load weakly on the
  group's latent or are pure noise.
* The label (named by the project's ``data.label_column``; ``hrob_label`` in the shipped
  example: a composite of severe maternal morbidity, preterm birth and low birthweight) is one
  Bernoulli draw from ``sigmoid(LABEL_INTERCEPT + sum(coef * term))`` with the terms and
  coefficients in :data:`LABEL_MODEL`; both clinical and social terms carry real signal,
  prevalence is about 10 %.
* Missing values depend on other columns: labs are missing more often with poor access to
  care and for marketplace members; the social-needs screening is missing as a block, more
  often for marketplace members and members with poor access.
* Claims (many per member) are drawn from ``zc``, ``zu`` and ``za``: ER visits and
  admissions rise with risk, prenatal visits with access. Utilisation features are built
  from them in gold.

PHI columns (name, SSN, date of birth, street address, phone, e-mail, MRN) are clearly
fictional: SSN area numbers 9xx are never issued, phones are 555-01xx, e-mails use
example.org.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import random
import time
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from promoter.errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from promoter.config import Settings

log = logging.getLogger("promote.synthetic")

# group -> column prefix of the generated features (utilisation comes from claims in gold)
GROUP_PREFIXES: dict[str, str] = {
    "demographics": "demo_",
    "obstetric_history": "ob_",
    "comorbidities": "cm_",
    "vitals_labs": "vl_",
    "medications": "rx_",
    "utilization": "util_",
    "sdoh_economic": "sdoh_econ_",
    "sdoh_housing": "sdoh_housing_",
    "sdoh_transportation": "sdoh_transport_",
    "sdoh_food": "sdoh_food_",
    "sdoh_education": "sdoh_edu_",
    "sdoh_neighborhood": "sdoh_nbhd_",
}
CLINICAL_GROUPS = ("demographics", "obstetric_history", "comorbidities", "vitals_labs", "medications", "utilization")
SDOH_GROUPS = (
    "sdoh_economic",
    "sdoh_housing",
    "sdoh_transportation",
    "sdoh_food",
    "sdoh_education",
    "sdoh_neighborhood",
)
# total generated columns per group (named + filler); age_years is added in silver
GROUP_SIZES: dict[str, int] = {
    "demographics": 10,
    "obstetric_history": 50,
    "comorbidities": 110,
    "vitals_labs": 90,
    "medications": 90,
    "sdoh_economic": 22,
    "sdoh_housing": 22,
    "sdoh_transportation": 22,
    "sdoh_food": 22,
    "sdoh_education": 22,
    "sdoh_neighborhood": 22,
}

RACE_ETHNICITY = [
    ("White", 0.45),
    ("Black", 0.28),
    ("Hispanic", 0.15),
    ("Asian", 0.03),
    ("Multiracial", 0.05),
    ("Other or unknown", 0.04),
]
PAYER_TYPES = [("medicaid_traditional", 0.45), ("medicaid_expansion", 0.35), ("chip", 0.08), ("marketplace", 0.12)]
CLAIM_TYPES = ("ER", "INPATIENT", "PRENATAL", "OUTPATIENT", "PHARMACY", "LAB")
DEFAULT_REGIONS: dict[str, list[str]] = {
    "Central": ["430", "431", "432", "433"],
    "Northeast": ["440", "441", "442", "443", "444", "445", "446", "447"],
    "Northwest": ["434", "435", "436", "458"],
    "Southeast": ["437", "438", "439", "457"],
    "Southwest": ["450", "451", "452", "453", "454", "455", "456"],
}
REGION_WEIGHTS = {"Central": 0.25, "Northeast": 0.30, "Northwest": 0.15, "Southeast": 0.10, "Southwest": 0.20}
REGION_CITY = {
    "Central": ("Columbus", 614),
    "Northeast": ("Cleveland", 216),
    "Northwest": ("Toledo", 419),
    "Southeast": ("Athens", 740),
    "Southwest": ("Cincinnati", 513),
}
FIRST_NAMES = [
    "Olivia",
    "Emma",
    "Ava",
    "Sophia",
    "Isabella",
    "Mia",
    "Amelia",
    "Harper",
    "Evelyn",
    "Abigail",
    "Emily",
    "Ella",
    "Madison",
    "Scarlett",
    "Victoria",
    "Aria",
    "Grace",
    "Chloe",
    "Camila",
    "Penelope",
    "Riley",
    "Layla",
    "Lillian",
    "Nora",
    "Zoey",
    "Mila",
    "Aubrey",
    "Hannah",
    "Lily",
    "Addison",
    "Eleanor",
    "Natalie",
    "Luna",
    "Savannah",
    "Brooklyn",
    "Leah",
    "Zoe",
    "Stella",
    "Hazel",
    "Ellie",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
]
STREETS = [
    "Maple",
    "Oak",
    "Cedar",
    "Elm",
    "Pine",
    "Walnut",
    "Chestnut",
    "Hickory",
    "Sycamore",
    "Willow",
    "Lake",
    "Hill",
    "Park",
    "River",
    "Church",
    "Main",
    "High",
    "Mill",
    "Spring",
    "Ridge",
]
STREET_KINDS = ["St", "Ave", "Rd", "Dr", "Ln", "Ct", "Blvd", "Way"]
DX_BY_TYPE = {
    "ER": ["R10.9", "O26.899", "J06.9", "N39.0", "O20.9", "R51.9"],
    "INPATIENT": ["O14.90", "O24.419", "O60.10X0", "O99.419", "O13.9", "O72.1"],
    "PRENATAL": ["Z34.90", "Z34.80", "O09.90", "O09.899"],
    "OUTPATIENT": ["Z00.00", "E66.9", "F32.A", "J45.909", "I10", "E11.9"],
    "LAB": ["Z36.9", "Z01.419", "O99.019"],
}
PLACE_OF_SERVICE = {"ER": 23, "INPATIENT": 21, "PRENATAL": 11, "OUTPATIENT": 22, "PHARMACY": 1, "LAB": 81}

# The label's known model: logit = LABEL_INTERCEPT + sum(coefficient * term), over the member's true
# (pre-missingness) values and latents. Clinical and social terms both carry signal.
LABEL_INTERCEPT = -4.6
LABEL_MODEL: dict[str, dict[str, float]] = {
    "clinical": {
        "ob_prior_preterm": 0.85,
        "ob_prior_preeclampsia": 0.75,
        "ob_multiple_gestation": 1.30,
        "ob_prior_stillbirth": 0.50,
        "cm_chronic_hypertension": 0.70,
        "cm_diabetes_pregestational": 0.80,
        "cm_substance_use": 0.50,
        "cm_tobacco_use": 0.35,
        "cm_depression": 0.25,
        "(vl_bmi - 28) / 6": 0.30,
        "(vl_sbp - 115) / 12": 0.35,
        "vl_hemoglobin < 10.5": 0.40,
        "age < 18": 0.40,
        "age >= 35": 0.50,
        "zc": 0.50,
    },
    "social": {
        "sdoh_housing_unstable": 0.70,
        "sdoh_housing_homeless": 0.70,
        "sdoh_food_insecure": 0.55,
        "sdoh_transport_no_vehicle": 0.50,
        "sdoh_econ_income_fpl_pct < 50": 0.45,
        "sdoh_edu_less_than_hs": 0.40,
        "(sdoh_nbhd_adi_rank - 50) / 29": 0.30,
        "sdoh_transport_miles_to_ob > 20": 0.40,
        "zs": 0.38,
    },
    "utilisation": {"zu": 0.30},  # seen through the claims (ER visits, admissions)
}

_GOLDEN = 0x9E3779B97F4A7C15
_K_CLAIM = 0xD1B54A32D192ED03


def _mix(x: "np.ndarray") -> "np.ndarray":
    """The splitmix64 finaliser: a bijective, well-avalanching 64-bit mix (wrapping arithmetic)."""
    import numpy as np

    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _salt(seed: int, salt: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}\0{salt}".encode(), digest_size=8).digest(), "little")


class _Rng:
    """Deterministic random draws keyed by (seed, member index[, claim number], salt).

    Every value is a hash of its key, so it does not depend on partitioning, batch sizes, cores
    or the order rows are computed in.
    """

    def __init__(self, seed: int, ids: "np.ndarray", sub: "np.ndarray | None" = None) -> None:
        import numpy as np

        self.seed = seed
        base = ids.astype(np.uint64) * np.uint64(_GOLDEN) + np.uint64(_salt(seed, "member"))
        if sub is not None:
            base = _mix(base) ^ (sub.astype(np.uint64) * np.uint64(_K_CLAIM))
        self.base = _mix(base)

    def bits(self, salt: str) -> "np.ndarray":
        import numpy as np

        return _mix(self.base ^ np.uint64(_salt(self.seed, salt)))

    def u(self, salt: str) -> "np.ndarray":
        """Uniform in (0, 1)."""
        import numpy as np

        return ((self.bits(salt) >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53

    def n(self, salt: str) -> "np.ndarray":
        """Standard normal (Box-Muller on the two 32-bit halves of one hash)."""
        import numpy as np

        b = self.bits(salt)
        u1 = ((b >> np.uint64(32)).astype(np.float64) + 0.5) * 2.0**-32
        u2 = ((b & np.uint64(0xFFFFFFFF)).astype(np.float64) + 0.5) * 2.0**-32
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)

    def bern(self, salt: str, p: "np.ndarray | float") -> "np.ndarray":
        import numpy as np

        return (self.u(salt) < p).astype(np.int32)

    def index(self, salt: str, n: int) -> "np.ndarray":
        """A whole number in [0, n)."""
        import numpy as np

        return np.minimum((self.u(salt) * n).astype(np.int64), n - 1)

    def pick(self, salt: str, choices: list[tuple[str, float]]) -> "np.ndarray":
        """Indexes into ``choices`` (value, weight)."""
        import numpy as np

        weights = np.array([w for _, w in choices], dtype=np.float64)
        edges = np.cumsum(weights / weights.sum())[:-1]
        return np.searchsorted(edges, self.u(salt), side="right")


def _sig(x: "np.ndarray") -> "np.ndarray":
    import numpy as np

    return 1.0 / (1.0 + np.exp(-x))


def _clip(x: "np.ndarray", lo: float, hi: float) -> "np.ndarray":
    import numpy as np

    return np.clip(x, lo, hi)


# --------------------------------------------------------------------------- members


@dataclass(frozen=True)
class _Params:
    seed: int
    snapshot: int  # days since 1970-01-01
    shift: float
    regions: tuple[tuple[str, tuple[str, ...]], ...]
    lookback_days: int = 730
    # planted drift (resolved on the driver by _resolve_drift; see Drift)
    drift: tuple[tuple[str, str, float], ...] = ()  # (feature, "add" | "count" | "flag", amount)
    drift_group: tuple[str, tuple[str, ...]] | None = None  # (column, values)
    prevalence_change: float = 0.0
    miscalibrate: tuple[tuple[str, tuple[str, ...], float], ...] = ()  # (column, values, logit offset)
    label: str | None = None  # the project's data.label_column (members only; claims have none)


def _latents(r: _Rng, p: _Params) -> dict[str, "np.ndarray"]:
    """Latent risks and the categorical draws everything else depends on."""
    import numpy as np

    shift = p.shift
    race = r.pick("race", RACE_ETHNICITY)
    payer_mix = [
        (name, w * max(0.05, 1 + (0.5 * shift if name == "medicaid_expansion" else 0.0))) for name, w in PAYER_TYPES
    ]
    payer = r.pick("payer", payer_mix)
    names = [name for name, _ in p.regions]
    region = r.pick("region", [(name, REGION_WEIGHTS.get(name, 1.0 / len(names))) for name in names])
    race_names = np.array([x for x, _ in RACE_ETHNICITY], dtype=object)[race]
    payer_names = np.array([x for x, _ in PAYER_TYPES], dtype=object)[payer]
    market = (payer_names == "marketplace").astype(np.float64)
    disadvantaged = np.isin(race_names, ["Black", "Hispanic"]).astype(np.float64)
    zc = r.n("zc") + 0.4 * shift
    zs = r.n("zs") + 0.6 * shift + 0.25 * disadvantaged - 0.3 * market
    za = r.n("za") - 0.3 * shift
    zu = 0.5 * zc + 0.45 * zs - 0.35 * za + 0.65 * r.n("zu")
    age = _clip(np.round(27.0 + 5.8 * r.n("age")), 15, 49).astype(np.int32)
    return {
        "race": race_names,
        "payer": payer_names,
        "market": market,
        "region": region,
        "age": age,
        "zc": zc,
        "zs": zs,
        "za": za,
        "zu": zu,
    }


def _named_features(r: _Rng, z: dict[str, "np.ndarray"], region_names: list[str]) -> dict[str, "np.ndarray"]:
    """The named features of each group, before missingness (ints for flags and counts)."""
    import numpy as np

    zc, zs, za, age, market = z["zc"], z["zs"], z["za"], z["age"], z["market"]
    race = z["race"]
    southeast = (np.array(region_names, dtype=object)[z["region"]] == "Southeast").astype(np.float64)
    f: dict[str, np.ndarray] = {}

    def b(name: str, logit: "np.ndarray | float") -> None:
        f[name] = r.bern(name, _sig(np.asarray(logit, dtype=np.float64)))

    def cont(name: str, mean: float, sd: float, load: "np.ndarray", lo: float, hi: float, digits: int = 1) -> None:
        f[name] = np.round(_clip(mean + sd * (load + r.n(name)), lo, hi), digits)

    def count(name: str, scale: "np.ndarray | float", hi: int, lo: int = 0, plus: "np.ndarray | float" = 0) -> None:
        f[name] = _clip(plus + np.floor(-np.log(r.u(name)) * scale), lo, hi).astype(np.int32)

    def where(cond: "np.ndarray", a: float, b_: float) -> "np.ndarray":
        return np.where(cond, a, b_)

    # demographics
    count("demo_household_size", 2.2, 10, 1, 1)
    b("demo_married", -0.6 - 0.4 * zs)
    f["demo_english_primary"] = r.bern(
        "demo_english_primary", np.where(race == "Hispanic", 0.55, np.where(race == "Asian", 0.7, 0.97))
    )
    f["demo_months_enrolled"] = (1 + r.index("demo_months_enrolled", 60)).astype(np.int32)
    f["demo_rural"] = r.bern("demo_rural", where(southeast == 1, 0.55, 0.15))
    b("demo_has_pcp", 0.8 + 0.8 * za)
    b("demo_disability", -3.0 + 0.4 * zc)
    b("demo_foster_care_history", -4.0 + 0.5 * zs)
    b("demo_veteran", -4.6)
    count("demo_dependents", 1.2, 8)
    # obstetric history
    count("ob_gravidity", 1.4, 12, 1, 1 + 0.08 * (age - 22))
    b("ob_multiple_gestation", -3.4)
    b("ob_prior_gdm", -3.0 + 0.7 * zc)
    b("ob_ivf_conception", -4.6)
    f["ob_gestational_weeks_at_first_visit"] = np.round(
        _clip(6 + 20 * _sig(-1.2 * za + 0.4 * zs - 1.0 + 0.5 * r.n("ob_gest")), 4, 40)
    ).astype(np.int32)
    # comorbidities
    b("cm_chronic_hypertension", -2.8 + 0.9 * zc + 0.04 * (age - 27))
    b("cm_diabetes_pregestational", -3.5 + 0.8 * zc)
    b("cm_asthma", -2.2 + 0.3 * zc + 0.2 * zs)
    b("cm_depression", -2.0 + 0.3 * zc + 0.4 * zs)
    b("cm_anxiety", -1.9 + 0.2 * zc + 0.3 * zs)
    b("cm_substance_use", -3.0 + 0.5 * zc + 0.5 * zs)
    b("cm_tobacco_use", -1.8 + 0.3 * zc + 0.5 * zs)
    b("cm_hiv", -6.0 + 0.3 * zs)
    b("cm_sickle_cell", where(race == "Black", -4.5, -8.0))
    b("cm_thyroid", -3.2 + 0.2 * zc)
    b("cm_ckd", -5.0 + 0.8 * zc)
    b("cm_lupus", -6.0 + 0.4 * zc)
    b("cm_epilepsy", -5.0)
    b("cm_cardiac_disease", -5.0 + 0.8 * zc)
    # vitals and labs
    cont("vl_bmi", 28.0, 4.6, 0.55 * zc, 15, 65)
    cont("vl_sbp", 115.0, 9.0, 0.6 * zc, 85, 190, 0)
    cont("vl_dbp", 72.0, 7.0, 0.55 * zc, 45, 120, 0)
    cont("vl_hemoglobin", 12.0, 0.9, -0.35 * zc - 0.25 * zs, 6.5, 16.5)
    cont("vl_a1c", 5.3, 0.35, 0.5 * zc, 4.0, 13.0)
    cont("vl_glucose_fasting", 85.0, 9.0, 0.45 * zc, 55, 300, 0)
    cont("vl_platelets", 250.0, 50.0, -0.2 * zc, 40, 600, 0)
    cont("vl_creatinine", 0.6, 0.12, 0.3 * zc, 0.2, 4.0, 2)
    cont("vl_alt", 18.0, 6.0, 0.3 * zc, 3, 400, 0)
    cont("vl_tsh", 1.8, 0.6, 0.1 * zc, 0.05, 12, 2)
    cont("vl_weight_gain_kg", 11.0, 4.0, 0.2 * zc, -10, 35)
    cont("vl_heart_rate", 82.0, 9.0, 0.3 * zc, 45, 160, 0)
    cont("vl_wbc", 8.5, 2.0, 0.15 * zc, 2, 30)
    b("vl_urine_protein_positive", -3.0 + 0.6 * zc)
    # social determinants
    f["sdoh_econ_income_fpl_pct"] = np.round(
        _clip(100.0 * np.exp(-0.45 * zs + 0.35 * r.n("sdoh_econ_income_fpl_pct")), 0, 400)
    )
    b("sdoh_econ_unemployed", -1.2 + 0.8 * zs)
    b("sdoh_econ_snap", -0.5 + 0.9 * zs - 1.0 * market)
    b("sdoh_econ_wic", 0.2 + 0.5 * zs - 1.0 * market)
    b("sdoh_econ_tanf", -3.0 + 0.9 * zs)
    b("sdoh_econ_medical_debt", -1.3 + 0.6 * zs)
    b("sdoh_econ_utility_shutoff_risk", -2.2 + 0.8 * zs)
    b("sdoh_housing_unstable", -1.9 + 1.0 * zs)
    b("sdoh_housing_homeless", -3.8 + 1.0 * zs)
    b("sdoh_housing_eviction_12m", -3.0 + 0.8 * zs)
    b("sdoh_housing_crowding", -2.2 + 0.6 * zs)
    count("sdoh_housing_moves_12m", 0.4 + 0.3 * _sig(zs), 8)
    b("sdoh_housing_lead_risk", -2.0 + 0.5 * zs)
    b("sdoh_transport_no_vehicle", -1.1 + 0.9 * zs)
    f["sdoh_transport_miles_to_ob"] = np.round(
        _clip(np.exp(1.6 + 0.8 * r.n("sdoh_transport_miles_to_ob") + 0.9 * southeast + 0.2 * zs), 0.2, 120), 1
    )
    b("sdoh_transport_missed_appt", -2.0 + 0.7 * zs - 0.5 * za)
    cont("sdoh_transport_transit_minutes", 30.0, 12.0, 0.4 * zs, 0, 180, 0)
    b("sdoh_food_insecure", -1.2 + 1.0 * zs)
    b("sdoh_food_desert", -1.6 + 0.5 * zs)
    b("sdoh_food_skipped_meals", -2.4 + 0.9 * zs)
    b("sdoh_edu_less_than_hs", -1.5 + 0.8 * zs)
    b("sdoh_edu_low_health_literacy", -1.6 + 0.6 * zs)
    f["sdoh_edu_years"] = _clip(np.round(12.5 - 1.6 * zs + 1.5 * r.n("sdoh_edu_years")), 6, 20).astype(np.int32)
    f["sdoh_nbhd_adi_rank"] = np.round(
        _clip(50.0 + 29.0 * (0.6 * zs + 0.8 * r.n("sdoh_nbhd_adi_rank")), 1, 100)
    ).astype(np.int32)
    f["sdoh_nbhd_svi"] = np.round(_sig(0.9 * zs + 0.7 * r.n("sdoh_nbhd_svi")), 3)
    cont("sdoh_nbhd_violent_crime_rate", 4.0, 1.5, 0.5 * zs, 0, 30)
    cont("sdoh_nbhd_pct_poverty", 18.0, 7.0, 0.6 * zs, 0, 80)
    cont("sdoh_nbhd_obgyn_per_10k", 1.2, 0.5, -0.2 * zs, 0, 6, 2)

    # features that depend on other features: parity, prior outcomes, derived flags, medications
    grav = f["ob_gravidity"]
    f["ob_parity"] = np.minimum(grav - 1, np.floor(r.u("ob_parity") * grav)).astype(np.int32)
    parous = f["ob_parity"] > 0

    def if_parous(name: str, logit: "np.ndarray") -> None:
        f[name] = np.where(parous, r.bern(name, _sig(logit)), 0).astype(np.int32)

    if_parous("ob_prior_preterm", -2.0 + 0.9 * zc)
    if_parous("ob_prior_preeclampsia", -2.4 + 0.8 * zc)
    if_parous("ob_prior_csection", -1.3 + 0.5 * zc)
    if_parous("ob_prior_stillbirth", -3.6 + 0.7 * zc)
    if_parous("ob_short_interpregnancy_interval", -1.5 + 0.5 * zs)
    f["ob_prior_pregnancy_losses"] = (grav - 1 - f["ob_parity"]).astype(np.int32)
    f["cm_obesity"] = (f["vl_bmi"] >= 30).astype(np.int32)
    f["cm_anemia"] = (f["vl_hemoglobin"] < 11).astype(np.int32)

    def rx(name: str, cond: "np.ndarray", p_if: float, p_else: float) -> None:
        f[name] = r.bern(name, np.where(cond, p_if, p_else))

    on = lambda name: f[name] == 1  # noqa: E731
    rx("rx_antihypertensive", on("cm_chronic_hypertension"), 0.75, 0.01)
    rx("rx_insulin", on("cm_diabetes_pregestational"), 0.6, 0.005)
    rx("rx_metformin", on("cm_diabetes_pregestational") | on("ob_prior_gdm"), 0.35, 0.01)
    rx("rx_low_dose_aspirin", on("cm_chronic_hypertension") | on("ob_prior_preeclampsia"), 0.55, 0.08)
    rx("rx_antidepressant", on("cm_depression"), 0.5, 0.03)
    rx("rx_opioid", on("cm_substance_use"), 0.3, 0.04)
    rx("rx_buprenorphine", on("cm_substance_use"), 0.35, 0.002)
    rx("rx_prenatal_vitamin", za > -0.5, 0.85, 0.5)
    rx("rx_iron", on("cm_anemia"), 0.6, 0.08)
    rx("rx_inhaler", on("cm_asthma"), 0.7, 0.02)
    rx("rx_antiepileptic", on("cm_epilepsy"), 0.8, 0.003)
    rx("rx_levothyroxine", on("cm_thyroid"), 0.8, 0.005)
    rx("rx_progesterone", on("ob_prior_preterm"), 0.3, 0.01)
    return f


def label_terms(f: dict[str, "np.ndarray"], z: dict[str, "np.ndarray"]) -> dict[str, "np.ndarray"]:
    """Each term of :data:`LABEL_MODEL` as an array (true values, before missingness)."""
    age = z["age"]
    one = lambda cond: cond.astype("float64")  # noqa: E731
    terms = {name: f[name] for part in LABEL_MODEL.values() for name in part if name in f}
    terms.update(
        {
            "(vl_bmi - 28) / 6": (f["vl_bmi"] - 28) / 6,
            "(vl_sbp - 115) / 12": (f["vl_sbp"] - 115) / 12,
            "vl_hemoglobin < 10.5": one(f["vl_hemoglobin"] < 10.5),
            "age < 18": one(age < 18),
            "age >= 35": one(age >= 35),
            "zc": z["zc"],
            "zs": z["zs"],
            "zu": z["zu"],
            "sdoh_econ_income_fpl_pct < 50": one(f["sdoh_econ_income_fpl_pct"] < 50),
            "(sdoh_nbhd_adi_rank - 50) / 29": (f["sdoh_nbhd_adi_rank"] - 50) / 29,
            "sdoh_transport_miles_to_ob > 20": one(f["sdoh_transport_miles_to_ob"] > 20),
        }
    )
    return terms


def _label_logit(f: dict[str, "np.ndarray"], z: dict[str, "np.ndarray"]) -> "np.ndarray":
    terms = label_terms(f, z)
    total = LABEL_INTERCEPT
    for part in LABEL_MODEL.values():
        for name, coef in part.items():
            total = total + coef * terms[name]
    return total


@dataclass(frozen=True)
class _Filler:
    name: str
    group: str
    kind: str  # "flag" | "value"
    latent: str | None
    loading: float
    base: float  # flag: logit intercept; value: mean
    scale: float  # value: sd


def _fillers(named: list[str]) -> list[_Filler]:
    """The further features of each group, with fixed parameters (independent of the seed)."""
    taken: dict[str, int] = {}
    for name in named:
        group = _group_of(name)
        if group:
            taken[group] = taken.get(group, 0) + 1
    stems = {
        "demographics": "attr",
        "obstetric_history": "hx",
        "comorbidities": "dx",
        "vitals_labs": "lab",
        "medications": "class",
    }
    out: list[_Filler] = []
    for group, size in GROUP_SIZES.items():
        latent = "zs" if group.startswith("sdoh_") else None if group == "demographics" else "zc"
        flag_share = {"comorbidities": 1.0, "medications": 1.0, "vitals_labs": 0.15, "obstetric_history": 0.6}.get(
            group, 0.5
        )
        for i in range(1, size - taken.get(group, 0) + 1):
            name = f"{GROUP_PREFIXES[group]}{stems.get(group, 'item')}_{i:03d}"
            rng = random.Random(name)
            kind = "flag" if rng.random() < flag_share else "value"
            loads = latent is not None and rng.random() < (0.5 if group.startswith("sdoh_") else 0.4)
            loading = rng.uniform(0.1, 0.45) if loads else 0.0
            if kind == "flag":
                out.append(_Filler(name, group, kind, latent, loading, rng.uniform(-5.0, -1.0), 1.0))
            else:
                out.append(
                    _Filler(
                        name,
                        group,
                        kind,
                        latent,
                        loading,
                        round(rng.uniform(0, 100), 1),
                        round(rng.uniform(0.5, 20), 2),
                    )
                )
    return out


def _group_of(name: str) -> str | None:
    for group, prefix in GROUP_PREFIXES.items():
        if name.startswith(prefix):
            return group
    return None


def _group_index(name: str) -> int:
    group = _group_of(name)
    return list(GROUP_PREFIXES).index(group) if group else len(GROUP_PREFIXES)


def _fmt(template: str, *columns: "np.ndarray") -> list[str]:
    return [template % values for values in zip(*columns)]


def _members_batch(ids: "np.ndarray", p: _Params) -> "pa.RecordBatch":
    """One Arrow batch of bronze members for the member indexes ``ids`` (vectorised numpy)."""
    import numpy as np
    import pyarrow as pa

    r = _Rng(p.seed, ids)
    z = _latents(r, p)
    region_names = [name for name, _ in p.regions]
    f = _named_features(r, z, region_names)
    logit = _label_logit(f, z)
    named = list(f)
    fillers = _fillers(named)
    for fl in fillers:
        latent = z[fl.latent] if fl.latent else 0.0
        if fl.kind == "flag":
            f[fl.name] = r.bern(fl.name, _sig(fl.base + 2.0 * fl.loading * latent))
        else:
            f[fl.name] = np.round(fl.base + fl.scale * (fl.loading * latent + r.n(fl.name)), 2)
    logit = logit + p.prevalence_change
    for column, values, offset in p.miscalibrate:
        logit = logit + offset * _in_group((column, values), z, f, p)
    label = r.bern("label", _sig(logit))  # from the undrifted values: drift moves measurements only
    _apply_drift(r, z, f, p)

    # missingness: at random given payer type and access to care
    za, market = z["za"], z["market"]
    miss_labs = r.u("miss_labs") < _sig(-2.3 - 0.8 * za + 0.8 * market)
    miss_sdoh = r.u("miss_sdoh") < _sig(-1.8 - 0.5 * za + 0.9 * market)
    miss_ob = r.u("miss_ob") < _sig(-3.2 - 0.5 * za)
    ob_missing = {"ob_gravidity", "ob_parity", "ob_prior_pregnancy_losses", "ob_gestational_weeks_at_first_visit"}

    def mask(name: str) -> "np.ndarray | None":
        if name.startswith("vl_"):
            return miss_labs | (r.u("miss:" + name) < 0.02)
        if name.startswith("sdoh_"):
            return miss_sdoh
        if name in ob_missing:
            return miss_ob
        if name == "demo_household_size":
            return r.u("miss:" + name) < 0.03
        return None

    # PHI (clearly fictional)
    n = len(ids)
    snap = np.full(n, p.snapshot, dtype=np.int32)
    first = np.array(FIRST_NAMES, dtype=object)[r.index("first_name", len(FIRST_NAMES))]
    last = np.array(LAST_NAMES, dtype=object)[r.index("last_name", len(LAST_NAMES))]
    region = z["region"]
    zip3 = np.empty(n, dtype=object)
    city = np.empty(n, dtype=object)
    area = np.zeros(n, dtype=np.int64)
    zip_pick = r.u("zip3")
    for i, (name, prefixes) in enumerate(p.regions):
        sel = region == i
        default_city, default_area = REGION_CITY.get(name, (name.title(), 330))
        zip3[sel] = np.array(prefixes, dtype=object)[
            np.minimum((zip_pick[sel] * len(prefixes)).astype(int), len(prefixes) - 1)
        ]
        city[sel], area[sel] = default_city, default_area
    dob = (p.snapshot - np.floor(z["age"] * 365.25 + r.u("dob") * 364)).astype(np.int32)
    cols: dict[str, pa.Array] = {
        "member_id": pa.array(_fmt("M%09d", ids + 1), pa.string()),
        "first_name": pa.array(first, pa.string()),
        "last_name": pa.array(last, pa.string()),
        "ssn": pa.array(
            _fmt("9%02d-%02d-%04d", r.index("ssn1", 100), r.index("ssn2", 99) + 1, r.index("ssn3", 9999) + 1),
            pa.string(),
        ),
        "date_of_birth": pa.array(dob, pa.date32()),
        "street_address": pa.array(
            _fmt(
                "%d %s %s, %s, OH %s%02d",
                r.index("house", 9800) + 100,
                np.array(STREETS, dtype=object)[r.index("street", len(STREETS))],
                np.array(STREET_KINDS, dtype=object)[r.index("street_kind", len(STREET_KINDS))],
                city,
                zip3,
                r.index("zip2", 100),
            ),
            pa.string(),
        ),
        "phone": pa.array(_fmt("(%d) 555-01%02d", area, r.index("phone", 100)), pa.string()),
        "email": pa.array(
            [e.lower() for e in _fmt("%s.%s%d@example.org", first, last, r.index("email", 1000))], pa.string()
        ),
        "mrn": pa.array(_fmt("MRN%08d", r.index("mrn", 100_000_000)), pa.string()),
        "snapshot_date": pa.array(snap, pa.date32()),
        "race_ethnicity": pa.array(z["race"], pa.string()),
        "payer_type": pa.array(z["payer"], pa.string()),
        _label_name(p): pa.array(label, pa.int32()),
    }
    named_order = {name: i for i, name in enumerate(named)}
    order = sorted(f, key=lambda name: (_group_index(name), named_order.get(name, len(named_order))))
    for name in order:
        values = f[name]
        m = mask(name)
        kind = pa.int32() if values.dtype.kind in "iu" else pa.float64()
        cols[name] = pa.array(values, kind, mask=m)
    return pa.RecordBatch.from_arrays(list(cols.values()), names=list(cols))


def _claims_batch(ids: "np.ndarray", p: _Params) -> "pa.RecordBatch":
    """One Arrow batch of bronze claims for the members ``ids`` (several rows per member)."""
    import numpy as np
    import pyarrow as pa

    r = _Rng(p.seed, ids)
    z = _latents(r, p)
    zc, za, zu = z["zc"], z["za"], z["zu"]
    rate = 2.0 + 4.0 * _sig(zu) + 2.0 * _sig(za)
    n_claims = _clip(2 + np.floor(-np.log(r.u("n_claims")) * rate), 2, 60).astype(np.int64)
    rep = np.repeat(np.arange(len(ids)), n_claims)
    starts = np.cumsum(n_claims) - n_claims
    k = np.arange(len(rep)) - np.repeat(starts, n_claims) + 1
    c = _Rng(p.seed, ids[rep], sub=k)
    zc_r, za_r, zu_r = zc[rep], za[rep], zu[rep]
    p_er = 0.04 + 0.16 * _sig(1.2 * zu_r)
    p_ip = 0.015 + 0.05 * _sig(zc_r + 0.5 * zu_r)
    p_pn = 0.12 + 0.25 * _sig(za_r)
    edges = np.stack([p_er, p_er + p_ip, p_er + p_ip + p_pn, p_er + p_ip + p_pn + 0.25, p_er + p_ip + p_pn + 0.37])
    u = c.u("claim_type")
    order = ["ER", "INPATIENT", "PRENATAL", "PHARMACY", "LAB", "OUTPATIENT"]
    kind = (u[None, :] >= edges).sum(axis=0)
    ctype = np.array(order, dtype=object)[kind]
    days_back = np.where(
        ctype == "PRENATAL", np.floor(c.u("days") * 270), np.floor(c.u("days") * p.lookback_days)
    ).astype(np.int32)
    dx = np.full(len(rep), None, dtype=object)
    pos = np.zeros(len(rep), dtype=np.int32)
    mu = np.full(len(rep), 4.9)
    dx_pick = c.u("dx")
    for t, codes in DX_BY_TYPE.items():
        sel = ctype == t
        dx[sel] = np.array(codes, dtype=object)[np.minimum((dx_pick[sel] * len(codes)).astype(int), len(codes) - 1)]
    for t, code in PLACE_OF_SERVICE.items():
        pos[ctype == t] = code
    for t, m in {"ER": 6.5, "INPATIENT": 8.8, "PRENATAL": 4.8, "PHARMACY": 3.5, "LAB": 3.8}.items():
        mu[ctype == t] = m
    sd = np.where(ctype == "PHARMACY", 0.9, 0.5)
    member = ids[rep]
    return pa.RecordBatch.from_arrays(
        [
            pa.array(_fmt("C%09d%04d", member + 1, k), pa.string()),
            pa.array(_fmt("M%09d", member + 1), pa.string()),
            pa.array((p.snapshot - days_back).astype(np.int32), pa.date32()),
            pa.array(ctype, pa.string()),
            pa.array(dx, pa.string()),
            pa.array(pos, pa.int32()),
            pa.array(np.round(np.exp(mu + sd * c.n("paid")), 2), pa.float64()),
        ],
        names=["claim_id", "member_id", "service_date", "claim_type", "primary_dx", "place_of_service", "paid_amount"],
    )


# --------------------------------------------------------------------------- planted drift

# The reference population the ``--drift-sd`` unit is measured on: a fixed-seed sample of the
# undrifted generator (shift 0), independent of the seed of the data being generated.
REFERENCE_SEED = 0
REFERENCE_MEMBERS = 20_000
MAX_DRIFT = 5.0
DEFAULT_MISCALIBRATION = 1.0


@dataclass(frozen=True)
class Drift:
    """Planted, controlled changes to a generated population (on top of ``shift``).

    Each knob is independent of the others, and the label is always drawn from the undrifted
    feature values: moving a feature changes what is measured, not who has the outcome.

    Attributes:
        features: feature names, ``fnmatch`` globs (``vl_*``) or group names
            (``vitals_labs``, see :data:`GROUP_PREFIXES`) whose values move.
        sd: how far they move, in standard deviations of the reference population: the
            per-feature sd of the observed (non-null) values of :data:`REFERENCE_MEMBERS`
            members drawn with seed :data:`REFERENCE_SEED` and no shift (:func:`reference_sd`).
            A decimal feature moves by exactly ``sd * reference sd`` on every row; a whole-number
            feature keeps its type and moves by that much in expectation (a count gains
            ``floor(d)`` plus one with probability ``d - floor(d)``; a 0/1 flag switches the
            share of members that makes its rate, measured on the reference members of the
            drift group, move by ``d``).
        group: ``COLUMN=VALUE``: move the features only for members in that subgroup
            (``payer_type=marketplace``; VALUE may be a glob, ``payer_type=medicaid_*``).
            COLUMN is ``race_ethnicity``, ``payer_type``, ``region`` or a generated feature.
        prevalence_change: added to every member's label log-odds (the outcome becomes more
            common for a positive number, rarer for a negative one).
        miscalibrate: ``COLUMN=VALUE[:OFFSET]`` entries: the label log-odds of that subgroup move
            by OFFSET (default :data:`DEFAULT_MISCALIBRATION`) while its features do not, so a
            model's scores for the group become miscalibrated.
    """

    features: tuple[str, ...] = ()
    sd: float | None = None
    group: str | None = None
    prevalence_change: float = 0.0
    miscalibrate: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """True when any knob is set."""
        return bool(self.features or self.sd is not None or self.group or self.prevalence_change or self.miscalibrate)


_SUBGROUP_COLUMNS = ("race_ethnicity", "payer_type", "region")


def _reference_cache_impl(regions: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[tuple[str, "np.ndarray"], ...]:
    """The reference members, computed once per process: ``("i:"|"f:" + feature | subgroup, values)``."""
    import numpy as np
    import pyarrow as pa

    snapshot = (date(2024, 1, 1) - date(1970, 1, 1)).days
    # the label's name does not matter here: only features and subgroups are read
    p = _Params(seed=REFERENCE_SEED, snapshot=snapshot, shift=0.0, regions=regions, label="label")
    ids = np.arange(REFERENCE_MEMBERS, dtype=np.int64)
    with np.errstate(over="ignore"):
        batch = _members_batch(ids, p)
        region = _latents(_Rng(p.seed, ids), p)["region"]
    out: list[tuple[str, np.ndarray]] = [
        ("race_ethnicity", np.array(batch.column("race_ethnicity").to_pylist(), dtype=object)),
        ("payer_type", np.array(batch.column("payer_type").to_pylist(), dtype=object)),
        ("region", np.array([name for name, _ in regions], dtype=object)[region]),
    ]
    for name in batch.schema.names:
        if _group_of(name):
            column = batch.column(name)
            kind = "i" if pa.types.is_integer(column.type) else "f"
            values = column.to_numpy(zero_copy_only=False).astype(np.float64)
            out.append((f"{kind}:{name}", values))
    return tuple(out)


_reference_cache = functools.lru_cache(maxsize=4)(_reference_cache_impl)


def _reference(regions: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[dict[str, "np.ndarray"], dict[str, str]]:
    """(column -> values, feature -> "int" | "float") of the reference members."""
    cols: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    for key, values in _reference_cache(regions):
        if key[:2] in ("i:", "f:"):
            cols[key[2:]] = values
            kinds[key[2:]] = "int" if key[0] == "i" else "float"
        else:
            cols[key] = values
    return cols, kinds


def reference_sd(regions: dict[str, list[str]] | None = None) -> dict[str, float]:
    """The standard deviation of every generated feature in the reference population.

    The unit of ``--drift-sd``: the sd of the observed (non-null) values of
    :data:`REFERENCE_MEMBERS` members drawn with seed :data:`REFERENCE_SEED`, no shift and no
    drift (the same for every seed, computed once per process on the driver, about a second).

    Args:
        regions: region -> ZIP3 prefixes (default: :data:`DEFAULT_REGIONS`).

    Returns:
        Feature name -> its reference sd.
    """
    import numpy as np

    cols, kinds = _reference(_params(REFERENCE_SEED, date(2024, 1, 1), 0.0, regions).regions)
    return {name: float(np.nanstd(cols[name])) for name in kinds}


def check_drift(drift: Drift, regions: dict[str, list[str]] | None = None) -> None:
    """Check every option of ``drift`` against the reference population (no Spark).

    Args:
        drift: the planted changes.
        regions: region -> ZIP3 prefixes (default: :data:`DEFAULT_REGIONS`).

    Raises:
        InvalidInput: one line naming the bad option, e.g. an unknown feature pattern with a
            few valid names.
    """
    _params(REFERENCE_SEED, date(2024, 1, 1), 0.0, regions, drift=drift)


def _finite(option: str, value: float, limit: float = MAX_DRIFT) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or abs(value) > limit:
        raise InvalidInput(f"{option} must be a number between -{limit:g} and {limit:g}, got {value}")
    return float(value)


def _examples(names: list[str], k: int = 6) -> str:
    return ", ".join(names[:k]) + (", ..." if len(names) > k else "")


def _subgroup(
    option: str, text: str, cols: dict[str, "np.ndarray"], kinds: dict[str, str]
) -> tuple[str, tuple[str, ...], "np.ndarray"]:
    """Parse ``COLUMN=VALUE``: (column, matching values, reference members in the group)."""
    import fnmatch

    import numpy as np

    column, sep, value = text.partition("=")
    column, value = column.strip(), value.strip()
    if not sep or not column or not value:
        raise InvalidInput(f"{option} must look like COLUMN=VALUE (e.g. payer_type=marketplace), got {text!r}")
    if column in _SUBGROUP_COLUMNS:
        levels = sorted({str(v) for v in cols[column]})
        matched = tuple(v for v in levels if fnmatch.fnmatchcase(v, value))
        if not matched:
            raise InvalidInput(f"{option}: {column} has no value {value!r} (values: {', '.join(levels)})")
        return column, matched, np.isin(cols[column], list(matched))
    if column in kinds:
        try:
            number = float(value)
        except ValueError:
            raise InvalidInput(f"{option}: {column} is numeric; VALUE must be a number, got {value!r}") from None
        members = cols[column] == number
        if not members.any():
            raise InvalidInput(f"{option}: no member of the reference population has {column}={value}")
        return column, (repr(number),), members
    raise InvalidInput(
        f"{option}: unknown column {column!r} (use {', '.join(_SUBGROUP_COLUMNS)} or a generated feature "
        f"such as {_examples(sorted(kinds), 3)})"
    )


def _features_of(patterns: tuple[str, ...], kinds: dict[str, str]) -> list[str]:
    """The generated features the ``--drift-features`` patterns name, in table order."""
    import fnmatch

    names = list(kinds)
    chosen: set[str] = set()
    for pattern in patterns:
        if pattern in GROUP_PREFIXES:
            hits = [n for n in names if n.startswith(GROUP_PREFIXES[pattern])]
            if not hits:
                raise InvalidInput(
                    f"--drift-features: group {pattern!r} is built in gold (from the claims), not generated; "
                    f"groups you can drift: {', '.join(g for g in GROUP_PREFIXES if g != pattern)}"
                )
        else:
            hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise InvalidInput(
                f"--drift-features: {pattern!r} matches no generated feature "
                f"(e.g. {_examples(names)}; or a group: {_examples(list(GROUP_PREFIXES), 4)})"
            )
        chosen.update(hits)
    return [n for n in names if n in chosen]


def _resolve_drift(drift: Drift | None, regions: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, object]:
    """The :class:`_Params` fields for ``drift`` (checked against the reference population).

    Raises:
        InvalidInput: naming the option, for any bad value.
    """
    import numpy as np

    if drift is None or not drift.active:
        return {}
    out: dict[str, object] = {}
    if drift.prevalence_change:
        out["prevalence_change"] = _finite("--prevalence-change", drift.prevalence_change)
    if drift.sd is not None and not drift.features:
        raise InvalidInput("--drift-sd needs --drift-features (which features to move)")
    if drift.group and not drift.features:
        raise InvalidInput("--drift-group needs --drift-features (which features to move in the group)")
    cols, kinds = _reference(regions)
    if drift.features:
        if drift.sd is None:
            raise InvalidInput("--drift-features needs --drift-sd (how far to move them, in reference sd)")
        x = _finite("--drift-sd", drift.sd)
        names = _features_of(tuple(p.strip() for p in drift.features if p.strip()), kinds)
        members = np.ones(REFERENCE_MEMBERS, dtype=bool)
        if drift.group:
            column, values, members = _subgroup("--drift-group", drift.group, cols, kinds)
            out["drift_group"] = (column, values)
        plan: list[tuple[str, str, float]] = []
        for name in names:
            ref = cols[name]
            sd = float(np.nanstd(ref))
            if sd == 0 or not math.isfinite(sd):
                raise InvalidInput(
                    f"--drift-features: {name} is constant in the reference population; no sd to move by"
                )
            d = x * sd
            observed = ref[~np.isnan(ref)]
            if kinds[name] == "float":
                plan.append((name, "add", d))
            elif np.isin(observed, (0.0, 1.0)).all():
                in_group = ref[members & ~np.isnan(ref)]
                rate = float(in_group.mean()) if len(in_group) else float("nan")
                room = (1.0 - rate) if d > 0 else rate
                if not room > 0 or abs(d) > room:
                    raise InvalidInput(
                        f"--drift-sd {x:g}: flag {name} (reference rate {rate:.2%}) cannot move by {x:g} sd "
                        f"({d:+.4f}); use a smaller --drift-sd or another feature"
                    )
                plan.append((name, "flag", d / room if d > 0 else -abs(d) / room))
            else:
                plan.append((name, "count", d))
        out["drift"] = tuple(plan)
    miscal: list[tuple[str, tuple[str, ...], float]] = []
    for entry in drift.miscalibrate:
        text, offset = entry, DEFAULT_MISCALIBRATION
        head, colon, tail = entry.rpartition(":")
        if colon and "=" in head:
            try:
                offset = float(tail)
            except ValueError:
                raise InvalidInput(
                    f"--miscalibrate: OFFSET must be a number (COLUMN=VALUE[:OFFSET]), got {entry!r}"
                ) from None
            text = head
        column, values, _ = _subgroup("--miscalibrate", text, cols, kinds)
        miscal.append((column, values, _finite("--miscalibrate OFFSET", offset)))
    if miscal:
        out["miscalibrate"] = tuple(miscal)
    return out


def _in_group(
    group: tuple[str, tuple[str, ...]], z: dict[str, "np.ndarray"], f: dict[str, "np.ndarray"], p: "_Params"
) -> "np.ndarray":
    import numpy as np

    column, values = group
    if column == "race_ethnicity":
        return np.isin(z["race"], list(values))
    if column == "payer_type":
        return np.isin(z["payer"], list(values))
    if column == "region":
        return np.isin(np.array([name for name, _ in p.regions], dtype=object)[z["region"]], list(values))
    return np.isin(f[column], [float(v) for v in values])


def _apply_drift(r: "_Rng", z: dict[str, "np.ndarray"], f: dict[str, "np.ndarray"], p: "_Params") -> None:
    """Move the planted features in place (values before missingness; the label is already drawn)."""
    import numpy as np

    if not p.drift:
        return
    sel = _in_group(p.drift_group, z, f, p) if p.drift_group else np.ones(len(z["zc"]), dtype=bool)
    for name, mode, amount in p.drift:
        values = f[name]
        if mode == "add":
            f[name] = np.where(sel, values + amount, values)
            continue
        u = r.u("drift:" + name)
        if mode == "count":
            whole = math.floor(amount)
            step = whole + (u < amount - whole).astype(np.int64)
            f[name] = np.where(sel, values + step, values).astype(values.dtype)
        elif amount > 0:  # switch this share of the zeros on
            f[name] = np.where(sel & (values == 0) & (u < amount), 1, values).astype(values.dtype)
        else:  # switch this share of the ones off
            f[name] = np.where(sel & (values == 1) & (u < -amount), 0, values).astype(values.dtype)


def _map(fn, p: _Params):  # noqa: ANN001, ANN202 - a picklable closure for mapInArrow
    def run(batches):  # noqa: ANN001, ANN202
        import numpy as np

        with np.errstate(over="ignore"):
            for batch in batches:
                ids = batch.column(0).to_numpy().astype(np.int64)
                if len(ids):
                    yield fn(ids, p)

    return run


def _frame(spark: "SparkSession", fn, members: int, p: _Params, partitions: int | None) -> "DataFrame":  # noqa: ANN001
    import numpy as np
    from pyspark.sql.pandas.types import from_arrow_schema

    with np.errstate(over="ignore"):
        schema = from_arrow_schema(fn(np.array([0], dtype=np.int64), p).schema)
    parts = partitions or max(2, math.ceil(members / 50_000))
    return spark.range(0, members, 1, parts).mapInArrow(_map(fn, p), schema)


def _params(
    seed: int,
    snapshot_date: date,
    shift: float,
    regions: dict[str, list[str]] | None,
    lookback_days: int = 730,
    drift: "Drift | None" = None,
    label: str | None = None,
) -> _Params:
    regions = regions or DEFAULT_REGIONS
    region_items = tuple((name, tuple(str(x) for x in prefixes)) for name, prefixes in regions.items())
    return _Params(
        seed=int(seed),
        snapshot=(snapshot_date - date(1970, 1, 1)).days,
        shift=float(shift),
        regions=region_items,
        lookback_days=int(lookback_days),
        label=label,
        **_resolve_drift(drift, region_items),  # type: ignore[arg-type]
    )


def _label_name(p: _Params) -> str:
    if not p.label:
        raise ValueError("members need the project's label column name (members_frame(label=...))")
    return p.label


def members_frame(
    spark: "SparkSession",
    members: int,
    seed: int,
    snapshot_date: date,
    shift: float = 0.0,
    regions: dict[str, list[str]] | None = None,
    partitions: int | None = None,
    drift: Drift | None = None,
    *,
    label: str,
) -> "DataFrame":
    """The bronze ``members`` table as a lazy Spark DataFrame (nothing is computed yet).

    Rows are made in the executors (``spark.range`` -> ``mapInArrow`` with vectorised numpy);
    every value is a hash of (seed, member index, column), so the partitioning does not matter.

    Args:
        spark: the session.
        members: number of members (rows).
        seed: the random seed; the same seed gives the same rows.
        snapshot_date: the "as of" date of the snapshot.
        shift: drift; 0 is the reference population.
        regions: region -> ZIP3 prefixes (default: the Ohio regions of the base config).
        partitions: Spark partitions (default: about 50,000 members each).
        drift: planted feature drift, prevalence change and miscalibration (:class:`Drift`);
            the same seed without it gives the same members with the undrifted values.
        label: the label column's name: the project's ``data.label_column`` (required: the
            engine assumes no label name).

    Returns:
        One row per member: ``member_id``, PHI columns, ``snapshot_date``, ``race_ethnicity``,
        ``payer_type``, the label and the generated features (482 columns in 11 groups).

    Raises:
        InvalidInput: for a bad ``drift`` (naming the command-line option).
    """
    params = _params(seed, snapshot_date, shift, regions, drift=drift, label=label)
    return _frame(spark, _members_batch, members, params, partitions)


def claims_frame(
    spark: "SparkSession",
    members: int,
    seed: int,
    snapshot_date: date,
    shift: float = 0.0,
    regions: dict[str, list[str]] | None = None,
    partitions: int | None = None,
    lookback_days: int = 730,
) -> "DataFrame":
    """The bronze ``claims`` table (several rows per member) as a lazy Spark DataFrame.

    The member-level latents are recomputed from the same seed, so claims agree with
    ``members_frame`` without a join.

    Returns:
        ``claim_id``, ``member_id``, ``service_date``, ``claim_type``, ``primary_dx``,
        ``place_of_service``, ``paid_amount``.
    """
    return _frame(
        spark, _claims_batch, members, _params(seed, snapshot_date, shift, regions, lookback_days), partitions
    )


def generate(
    spark: "SparkSession",
    settings: "Settings",
    members: int,
    seed: int,
    snapshot_date: date,
    shift: float = 0.0,
    drift: Drift | None = None,
) -> dict[str, int]:
    """Write the synthetic ``members`` and ``claims`` tables to the lake's bronze layer.

    Both tables are written to staging folders and swapped in together, so a failure leaves
    the previous bronze tables as they were.

    Args:
        spark: the session (built once at the edge from config).
        settings: loaded settings; ``project.lake_root`` says where bronze is, and
            ``project.data.derive.regions`` which ZIP codes the addresses use.
        members: number of members (e.g. 20,000 for the demo; 1,000,000 works).
        seed: random seed; the same seed (and arguments) gives the same data.
        snapshot_date: the snapshot's "as of" date.
        shift: population drift (0 = reference; 1 = markedly sicker, poorer, less access).
        drift: planted feature drift, prevalence change and miscalibration of the members
            (:class:`Drift`); claims are not affected.

    Returns:
        Row counts per table, e.g. ``{"members": 20000, "claims": 161234}``.

    Raises:
        InvalidInput: for a non-positive member count, a non-finite shift or a bad ``drift``
            (before anything is written).
    """
    if members < 1:
        raise InvalidInput(f"--members must be at least 1, got {members}")
    if members > 999_999_999:
        raise InvalidInput(f"--members must be below 1,000,000,000, got {members}")
    if not math.isfinite(shift) or abs(shift) > 5:
        raise InvalidInput(f"--shift must be a number between -5 and 5, got {shift}")
    from pipelines import lake

    regions = settings.project.data.derive.regions or DEFAULT_REGIONS
    if drift is not None and drift.active:
        check_drift(drift, regions)  # bad drift options: fail before writing
    lookback = settings.project.data.events.lookback_days if settings.project.data.events else 730
    targets = {name: lake.path(settings, lake.BRONZE, name) for name in lake.SYNTHETIC_TABLES}
    with lake.Staging(spark) as stage:
        t0 = time.perf_counter()
        label = settings.project.data.label_column
        members_frame(spark, members, seed, snapshot_date, shift, regions, drift=drift, label=label).write.mode(
            "overwrite"
        ).parquet(stage.path(targets["members"]))
        t1 = time.perf_counter()
        claims_frame(spark, members, seed, snapshot_date, shift, regions, lookback_days=lookback).write.mode(
            "overwrite"
        ).parquet(stage.path(targets["claims"]))
        claims = spark.read.parquet(stage.pending[targets["claims"]]).count()
        log.info("bronze members write: %.1fs", t1 - t0)
        log.info("bronze claims write: %.1fs", time.perf_counter() - t1)
    return {"members": members, "claims": claims}
