"""Synthetic HROB population: a Medicaid pregnancy cohort with PHI, 500+ features and claims.

Everything is computed in Spark from ``spark.range`` with deterministic functions of
``(seed, member index, column salt)`` (``xxhash64``), so the same seed gives the same data on
any number of cores or machines, and nothing is collected to the driver.

The generative story (the "known model"):

* Each member has latent risks: clinical ``zc``, social ``zs`` (higher for groups facing
  structural disadvantage), access to care ``za`` and utilisation ``zu``; all standard normal
  plus ``--shift`` (drift for surveillance work: sicker, poorer, less access).
* Named clinical features (prior preterm birth, chronic hypertension, BMI, ...) depend on
  ``zc``; named social-determinant features (housing instability, food insecurity, no
  vehicle, income, ...) on ``zs``; many further features in every group load weakly on the
  group's latent or are pure noise.
* The label (``hrob_label``: a composite of severe maternal morbidity, preterm birth and low
  birthweight) is one Bernoulli draw from ``sigmoid(LABEL_INTERCEPT + sum(coef * term))``
  with the terms and coefficients in :data:`LABEL_MODEL`; both clinical and social terms
  carry real signal, prevalence is about 10 %.
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

import math
import random
import zlib
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from promoter.errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from promoter.config import Settings

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
CLINICAL_GROUPS = ("demographics", "obstetric_history", "comorbidities", "vitals_labs", "medications",
                   "utilization")
SDOH_GROUPS = ("sdoh_economic", "sdoh_housing", "sdoh_transportation", "sdoh_food", "sdoh_education",
               "sdoh_neighborhood")
# total generated columns per group (named + filler); age_years is added in silver
GROUP_SIZES: dict[str, int] = {
    "demographics": 10, "obstetric_history": 50, "comorbidities": 110, "vitals_labs": 90,
    "medications": 90, "sdoh_economic": 22, "sdoh_housing": 22, "sdoh_transportation": 22,
    "sdoh_food": 22, "sdoh_education": 22, "sdoh_neighborhood": 22,
}

RACE_ETHNICITY = [("White", 0.45), ("Black", 0.28), ("Hispanic", 0.15), ("Asian", 0.03),
                  ("Multiracial", 0.05), ("Other or unknown", 0.04)]
PAYER_TYPES = [("medicaid_traditional", 0.45), ("medicaid_expansion", 0.35), ("chip", 0.08),
               ("marketplace", 0.12)]
CLAIM_TYPES = ("ER", "INPATIENT", "PRENATAL", "OUTPATIENT", "PHARMACY", "LAB")
DEFAULT_REGIONS: dict[str, list[str]] = {
    "Central": ["430", "431", "432", "433"],
    "Northeast": ["440", "441", "442", "443", "444", "445", "446", "447"],
    "Northwest": ["434", "435", "436", "458"],
    "Southeast": ["437", "438", "439", "457"],
    "Southwest": ["450", "451", "452", "453", "454", "455", "456"],
}
REGION_WEIGHTS = {"Central": 0.25, "Northeast": 0.30, "Northwest": 0.15, "Southeast": 0.10, "Southwest": 0.20}
REGION_CITY = {"Central": ("Columbus", 614), "Northeast": ("Cleveland", 216), "Northwest": ("Toledo", 419),
               "Southeast": ("Athens", 740), "Southwest": ("Cincinnati", 513)}
FIRST_NAMES = ["Olivia", "Emma", "Ava", "Sophia", "Isabella", "Mia", "Amelia", "Harper", "Evelyn", "Abigail",
               "Emily", "Ella", "Madison", "Scarlett", "Victoria", "Aria", "Grace", "Chloe", "Camila", "Penelope",
               "Riley", "Layla", "Lillian", "Nora", "Zoey", "Mila", "Aubrey", "Hannah", "Lily", "Addison",
               "Eleanor", "Natalie", "Luna", "Savannah", "Brooklyn", "Leah", "Zoe", "Stella", "Hazel", "Ellie"]
LAST_NAMES = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
              "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
              "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez",
              "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen"]
STREETS = ["Maple", "Oak", "Cedar", "Elm", "Pine", "Walnut", "Chestnut", "Hickory", "Sycamore", "Willow",
           "Lake", "Hill", "Park", "River", "Church", "Main", "High", "Mill", "Spring", "Ridge"]
STREET_KINDS = ["St", "Ave", "Rd", "Dr", "Ln", "Ct", "Blvd", "Way"]
DX_BY_TYPE = {
    "ER": ["R10.9", "O26.899", "J06.9", "N39.0", "O20.9", "R51.9"],
    "INPATIENT": ["O14.90", "O24.419", "O60.10X0", "O99.419", "O13.9", "O72.1"],
    "PRENATAL": ["Z34.90", "Z34.80", "O09.90", "O09.899"],
    "OUTPATIENT": ["Z00.00", "E66.9", "F32.A", "J45.909", "I10", "E11.9"],
    "LAB": ["Z36.9", "Z01.419", "O99.019"],
}
PLACE_OF_SERVICE = {"ER": 23, "INPATIENT": 21, "PRENATAL": 11, "OUTPATIENT": 22, "PHARMACY": 1, "LAB": 81}

# The label's known model: logit = LABEL_INTERCEPT + sum(coefficient * term), terms in Spark SQL over
# the member's true (pre-missingness) values and latents. Clinical and social terms both carry signal.
LABEL_INTERCEPT = -4.05
LABEL_MODEL: dict[str, dict[str, float]] = {
    "clinical": {
        "ob_prior_preterm": 0.85, "ob_prior_preeclampsia": 0.75, "ob_multiple_gestation": 1.30,
        "ob_prior_stillbirth": 0.50, "cm_chronic_hypertension": 0.70, "cm_diabetes_pregestational": 0.80,
        "cm_substance_use": 0.50, "cm_tobacco_use": 0.35, "cm_depression": 0.25,
        "(vl_bmi - 28) / 6": 0.30, "(vl_sbp - 115) / 12": 0.35, "cast(vl_hemoglobin < 10.5 as int)": 0.40,
        "cast(_age < 18 as int)": 0.40, "cast(_age >= 35 as int)": 0.50, "_zc": 0.30,
    },
    "social": {
        "sdoh_housing_unstable": 0.55, "sdoh_housing_homeless": 0.60, "sdoh_food_insecure": 0.45,
        "sdoh_transport_no_vehicle": 0.40, "cast(sdoh_econ_income_fpl_pct < 50 as int)": 0.35,
        "sdoh_edu_less_than_hs": 0.30, "(sdoh_nbhd_adi_rank - 50) / 29": 0.25,
        "cast(sdoh_transport_miles_to_ob > 20 as int)": 0.30, "_zs": 0.30,
    },
    "utilisation": {"_zu": 0.30},   # seen through the claims (ER visits, admissions)
}

_TWO52 = 4503599627370496  # 2**52


@dataclass(frozen=True)
class _Gen:
    """Deterministic random Spark SQL expressions for one seed, keyed by the member index ``id``.

    Every value is a function of (seed, keys, salt) through ``xxhash64``, so it does not depend on
    partitioning, cores or the order rows are computed in.
    """

    seed: int
    keys: tuple[str, ...] = ("id",)

    def u(self, salt: str) -> str:
        """Uniform in (0, 1)."""
        keys = ", ".join(self.keys)
        return (f"((pmod(xxhash64({int(self.seed)}, {keys}, {zlib.crc32(salt.encode())}), {_TWO52}) + 0.5)"
                f" / {_TWO52}.0)")

    def n(self, salt: str) -> str:
        """Standard normal (Box-Muller)."""
        return f"(sqrt(-2.0 * ln({self.u(salt + ':a')})) * cos({2 * math.pi!r} * {self.u(salt + ':b')}))"

    def bern(self, salt: str, p: str | float) -> str:
        """1 with probability ``p``, else 0."""
        return f"cast({self.u(salt)} < ({p}) as int)"

    def pick(self, salt: str, choices: list[tuple[str, float]]) -> str:
        """One of ``choices`` (value, weight)."""
        total = sum(w for _, w in choices)
        u = self.u(salt)
        acc, branches = 0.0, []
        for value, w in choices[:-1]:
            acc += w / total
            branches.append(f"WHEN {u} < {acc!r} THEN {_q(value)}")
        return f"(CASE {' '.join(branches)} ELSE {_q(choices[-1][0])} END)"

    def index(self, salt: str, n: int) -> str:
        """A whole number in [0, n)."""
        return f"cast(floor({self.u(salt)} * {n}) as int)"

    def element(self, salt: str, values: list[str]) -> str:
        """One of ``values``, uniformly."""
        return f"element_at(array({', '.join(_q(v) for v in values)}), {self.index(salt, len(values))} + 1)"


def _q(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _sig(x: str) -> str:
    return f"(1.0 / (1.0 + exp(-({x}))))"


def _clip(x: str, lo: float, hi: float) -> str:
    return f"least(greatest({x}, {lo}), {hi})"


def _select(df: "DataFrame", columns: list[tuple[str, str]], keep: bool = True) -> "DataFrame":
    exprs = (["*"] if keep else []) + [f"{sql} AS `{name}`" for name, sql in columns]
    return df.selectExpr(*exprs)


# --------------------------------------------------------------------------- members

def _latents(g: _Gen, shift: float, regions: dict[str, list[str]]) -> list[tuple[str, str]]:
    """Layer 1: latent risks and the categorical draws everything else depends on."""
    payer_mix = [(p, w * max(0.05, 1 + (0.5 * shift if p == "medicaid_expansion" else 0.0))) for p, w in PAYER_TYPES]
    region_choices = [(r, REGION_WEIGHTS.get(r, 1.0 / len(regions))) for r in regions]
    return [
        ("id", "id"),
        ("race_ethnicity", g.pick("race", RACE_ETHNICITY)),
        ("payer_type", g.pick("payer", payer_mix)),
        ("_region", g.pick("region", region_choices)),
        ("_age", "cast(" + _clip("round(27.0 + 5.8 * " + g.n("age") + ")", 15, 49) + " as int)"),
        ("_zc", f"{g.n('zc')} + {0.4 * shift!r}"),
        ("_zs_noise", f"{g.n('zs')} + {0.6 * shift!r}"),
        ("_za", f"{g.n('za')} - {0.3 * shift!r}"),
        ("_zu_noise", g.n("zu")),
    ]


def _social(df: "DataFrame") -> "DataFrame":
    """Social risk is higher for groups facing structural disadvantage, lower in the marketplace."""
    return _select(df, [("_zs", "_zs_noise + CASE WHEN race_ethnicity IN ('Black', 'Hispanic') THEN 0.25 "
                                "ELSE 0.0 END - CASE WHEN payer_type = 'marketplace' THEN 0.3 ELSE 0.0 END")])


def _named_features(g: _Gen) -> list[tuple[str, str]]:
    """Layer 2: the named features of each group (before missingness), plus missingness masks."""
    market = "cast(payer_type = 'marketplace' as double)"

    def b(name: str, logit: str) -> tuple[str, str]:
        return name, g.bern(name, _sig(logit))

    def cont(name: str, mean: float, sd: float, load: str, lo: float, hi: float, digits: int = 1) -> tuple[str, str]:
        return name, f"round({_clip(f'{mean} + {sd} * (({load}) + {g.n(name)})', lo, hi)}, {digits})"

    def count(name: str, scale: str, hi: int, lo: int = 0, plus: str = "0") -> tuple[str, str]:
        return name, f"cast({_clip(f'{plus} + floor(-ln({g.u(name)}) * ({scale}))', lo, hi)} as int)"

    return [
        ("_zu", "0.5 * _zc + 0.45 * _zs - 0.35 * _za + 0.65 * _zu_noise"),
        # demographics
        count("demo_household_size", "2.2", 10, 1, "1"),
        b("demo_married", "-0.6 - 0.4 * _zs"),
        ("demo_english_primary", g.bern("demo_english_primary", "CASE WHEN race_ethnicity = 'Hispanic' THEN 0.55 "
                                        "WHEN race_ethnicity = 'Asian' THEN 0.7 ELSE 0.97 END")),
        ("demo_months_enrolled", f"1 + {g.index('demo_months_enrolled', 60)}"),
        ("demo_rural", g.bern("demo_rural", "CASE WHEN _region = 'Southeast' THEN 0.55 ELSE 0.15 END")),
        b("demo_has_pcp", "0.8 + 0.8 * _za"),
        b("demo_disability", "-3.0 + 0.4 * _zc"),
        b("demo_foster_care_history", "-4.0 + 0.5 * _zs"),
        b("demo_veteran", "-4.6"),
        count("demo_dependents", "1.2", 8),
        # obstetric history
        count("ob_gravidity", "1.4 + 0.0", 12, 1, "1 + 0.08 * (_age - 22)"),
        b("ob_multiple_gestation", "-3.4"),
        b("ob_prior_gdm", "-3.0 + 0.7 * _zc"),
        b("ob_ivf_conception", "-4.6"),
        ("ob_gestational_weeks_at_first_visit",
         "cast(round(" + _clip("6 + 20 * " + _sig("-1.2 * _za + 0.4 * _zs - 1.0 + 0.5 * " + g.n("ob_gest")), 4, 40) + ", 0) as int)"),
        # comorbidities
        b("cm_chronic_hypertension", "-2.8 + 0.9 * _zc + 0.04 * (_age - 27)"),
        b("cm_diabetes_pregestational", "-3.5 + 0.8 * _zc"),
        b("cm_asthma", "-2.2 + 0.3 * _zc + 0.2 * _zs"),
        b("cm_depression", "-2.0 + 0.3 * _zc + 0.4 * _zs"),
        b("cm_anxiety", "-1.9 + 0.2 * _zc + 0.3 * _zs"),
        b("cm_substance_use", "-3.0 + 0.5 * _zc + 0.5 * _zs"),
        b("cm_tobacco_use", "-1.8 + 0.3 * _zc + 0.5 * _zs"),
        b("cm_hiv", "-6.0 + 0.3 * _zs"),
        b("cm_sickle_cell", "CASE WHEN race_ethnicity = 'Black' THEN -4.5 ELSE -8.0 END"),
        b("cm_thyroid", "-3.2 + 0.2 * _zc"),
        b("cm_ckd", "-5.0 + 0.8 * _zc"),
        b("cm_lupus", "-6.0 + 0.4 * _zc"),
        b("cm_epilepsy", "-5.0"),
        b("cm_cardiac_disease", "-5.0 + 0.8 * _zc"),
        # vitals and labs
        cont("vl_bmi", 28.0, 4.6, "0.55 * _zc", 15, 65),
        cont("vl_sbp", 115.0, 9.0, "0.6 * _zc", 85, 190, 0),
        cont("vl_dbp", 72.0, 7.0, "0.55 * _zc", 45, 120, 0),
        cont("vl_hemoglobin", 12.0, 0.9, "-0.35 * _zc - 0.25 * _zs", 6.5, 16.5),
        cont("vl_a1c", 5.3, 0.35, "0.5 * _zc", 4.0, 13.0),
        cont("vl_glucose_fasting", 85.0, 9.0, "0.45 * _zc", 55, 300, 0),
        cont("vl_platelets", 250.0, 50.0, "-0.2 * _zc", 40, 600, 0),
        cont("vl_creatinine", 0.6, 0.12, "0.3 * _zc", 0.2, 4.0, 2),
        cont("vl_alt", 18.0, 6.0, "0.3 * _zc", 3, 400, 0),
        cont("vl_tsh", 1.8, 0.6, "0.1 * _zc", 0.05, 12, 2),
        cont("vl_weight_gain_kg", 11.0, 4.0, "0.2 * _zc", -10, 35),
        cont("vl_heart_rate", 82.0, 9.0, "0.3 * _zc", 45, 160, 0),
        cont("vl_wbc", 8.5, 2.0, "0.15 * _zc", 2, 30),
        b("vl_urine_protein_positive", "-3.0 + 0.6 * _zc"),
        # social determinants
        ("sdoh_econ_income_fpl_pct",
         "round(" + _clip("100.0 * exp(-0.45 * _zs + 0.35 * " + g.n("sdoh_econ_income_fpl_pct") + ")", 0, 400) + ", 0)"),
        b("sdoh_econ_unemployed", "-1.2 + 0.8 * _zs"),
        b("sdoh_econ_snap", f"-0.5 + 0.9 * _zs - 1.0 * {market}"),
        b("sdoh_econ_wic", f"0.2 + 0.5 * _zs - 1.0 * {market}"),
        b("sdoh_econ_tanf", "-3.0 + 0.9 * _zs"),
        b("sdoh_econ_medical_debt", "-1.3 + 0.6 * _zs"),
        b("sdoh_econ_utility_shutoff_risk", "-2.2 + 0.8 * _zs"),
        b("sdoh_housing_unstable", "-1.9 + 1.0 * _zs"),
        b("sdoh_housing_homeless", "-3.8 + 1.0 * _zs"),
        b("sdoh_housing_eviction_12m", "-3.0 + 0.8 * _zs"),
        b("sdoh_housing_crowding", "-2.2 + 0.6 * _zs"),
        count("sdoh_housing_moves_12m", f"0.4 + 0.3 * {_sig('_zs')}", 8),
        b("sdoh_housing_lead_risk", "-2.0 + 0.5 * _zs"),
        b("sdoh_transport_no_vehicle", "-1.1 + 0.9 * _zs"),
        ("sdoh_transport_miles_to_ob",
         "round(" + _clip("exp(1.6 + 0.8 * " + g.n("sdoh_transport_miles_to_ob") + " + CASE WHEN _region = 'Southeast' THEN 0.9 ELSE 0.0 END + 0.2 * _zs)", 0.2, 120) + ", 1)"),
        b("sdoh_transport_missed_appt", "-2.0 + 0.7 * _zs - 0.5 * _za"),
        cont("sdoh_transport_transit_minutes", 30.0, 12.0, "0.4 * _zs", 0, 180, 0),
        b("sdoh_food_insecure", "-1.2 + 1.0 * _zs"),
        b("sdoh_food_desert", "-1.6 + 0.5 * _zs"),
        b("sdoh_food_skipped_meals", "-2.4 + 0.9 * _zs"),
        b("sdoh_edu_less_than_hs", "-1.5 + 0.8 * _zs"),
        b("sdoh_edu_low_health_literacy", "-1.6 + 0.6 * _zs"),
        ("sdoh_edu_years", "cast(" + _clip("round(12.5 - 1.6 * _zs + 1.5 * " + g.n("sdoh_edu_years") + ")", 6, 20) + " as int)"),
        ("sdoh_nbhd_adi_rank",
         "cast(round(" + _clip("50.0 + 29.0 * (0.6 * _zs + 0.8 * " + g.n("sdoh_nbhd_adi_rank") + ")", 1, 100) + ", 0) as int)"),
        ("sdoh_nbhd_svi", "round(" + _sig("0.9 * _zs + 0.7 * " + g.n("sdoh_nbhd_svi")) + ", 3)"),
        cont("sdoh_nbhd_violent_crime_rate", 4.0, 1.5, "0.5 * _zs", 0, 30),
        cont("sdoh_nbhd_pct_poverty", 18.0, 7.0, "0.6 * _zs", 0, 80),
        cont("sdoh_nbhd_obgyn_per_10k", 1.2, 0.5, "-0.2 * _zs", 0, 6, 2),
        # missingness masks (missing at random given payer type and access to care)
        ("_miss_labs", g.u("miss_labs") + " < " + _sig("-2.3 - 0.8 * _za + 0.8 * " + market)),
        ("_miss_sdoh", g.u("miss_sdoh") + " < " + _sig("-1.8 - 0.5 * _za + 0.9 * " + market)),
        ("_miss_ob", f"{g.u('miss_ob')} < {_sig('-3.2 - 0.5 * _za')}"),
    ]


def _dependent_features(g: _Gen) -> list[list[tuple[str, str]]]:
    """Layers 3-5: features that depend on other named features (parity, prior outcomes, medications)."""

    def if_parous(name: str, logit: str) -> tuple[str, str]:
        return name, f"CASE WHEN ob_parity > 0 THEN {g.bern(name, _sig(logit))} ELSE 0 END"

    def rx(name: str, cond: str, p_if: float, p_else: float) -> tuple[str, str]:
        return name, g.bern(name, f"CASE WHEN {cond} THEN {p_if} ELSE {p_else} END")

    return [
        [("ob_parity", f"cast(least(ob_gravidity - 1, floor({g.u('ob_parity')} * ob_gravidity)) as int)")],
        [
            if_parous("ob_prior_preterm", "-2.0 + 0.9 * _zc"),
            if_parous("ob_prior_preeclampsia", "-2.4 + 0.8 * _zc"),
            if_parous("ob_prior_csection", "-1.3 + 0.5 * _zc"),
            if_parous("ob_prior_stillbirth", "-3.6 + 0.7 * _zc"),
            if_parous("ob_short_interpregnancy_interval", "-1.5 + 0.5 * _zs"),
            ("ob_prior_pregnancy_losses", "ob_gravidity - 1 - ob_parity"),
            ("cm_obesity", "cast(vl_bmi >= 30 as int)"),
            ("cm_anemia", "cast(vl_hemoglobin < 11 as int)"),
        ],
        [
            rx("rx_antihypertensive", "cm_chronic_hypertension = 1", 0.75, 0.01),
            rx("rx_insulin", "cm_diabetes_pregestational = 1", 0.6, 0.005),
            rx("rx_metformin", "cm_diabetes_pregestational = 1 OR ob_prior_gdm = 1", 0.35, 0.01),
            rx("rx_low_dose_aspirin", "cm_chronic_hypertension = 1 OR ob_prior_preeclampsia = 1", 0.55, 0.08),
            rx("rx_antidepressant", "cm_depression = 1", 0.5, 0.03),
            rx("rx_opioid", "cm_substance_use = 1", 0.3, 0.04),
            rx("rx_buprenorphine", "cm_substance_use = 1", 0.35, 0.002),
            rx("rx_prenatal_vitamin", "_za > -0.5", 0.85, 0.5),
            rx("rx_iron", "cm_anemia = 1", 0.6, 0.08),
            rx("rx_inhaler", "cm_asthma = 1", 0.7, 0.02),
            rx("rx_antiepileptic", "cm_epilepsy = 1", 0.8, 0.003),
            rx("rx_levothyroxine", "cm_thyroid = 1", 0.8, 0.005),
            rx("rx_progesterone", "ob_prior_preterm = 1", 0.3, 0.01),
        ],
    ]


def label_logit_sql() -> str:
    """The label's logit as Spark SQL over the true feature values and latents (the known model)."""
    terms = [f"{coef!r} * ({term})" for part in LABEL_MODEL.values() for term, coef in part.items()]
    return f"{LABEL_INTERCEPT!r} + " + " + ".join(terms)


@dataclass(frozen=True)
class _Filler:
    name: str
    group: str
    kind: str          # "flag" | "value"
    latent: str | None
    loading: float
    base: float        # flag: logit intercept; value: mean
    scale: float       # value: sd


def _fillers(named: list[str]) -> list[_Filler]:
    """The further features of each group, with fixed parameters (independent of the seed)."""
    taken: dict[str, int] = {}
    for name in named:
        group = _group_of(name)
        if group:
            taken[group] = taken.get(group, 0) + 1
    stems = {"demographics": "attr", "obstetric_history": "hx", "comorbidities": "dx", "vitals_labs": "lab",
             "medications": "class"}
    out: list[_Filler] = []
    for group, size in GROUP_SIZES.items():
        latent = "_zs" if group.startswith("sdoh_") else None if group == "demographics" else "_zc"
        flag_share = {"comorbidities": 1.0, "medications": 1.0, "vitals_labs": 0.15,
                      "obstetric_history": 0.6}.get(group, 0.5)
        for i in range(1, size - taken.get(group, 0) + 1):
            name = f"{GROUP_PREFIXES[group]}{stems.get(group, 'item')}_{i:03d}"
            rng = random.Random(name)
            kind = "flag" if rng.random() < flag_share else "value"
            loads = latent is not None and rng.random() < (0.5 if group.startswith("sdoh_") else 0.4)
            loading = rng.uniform(0.1, 0.45) if loads else 0.0
            if kind == "flag":
                out.append(_Filler(name, group, kind, latent, loading, rng.uniform(-5.0, -1.0), 1.0))
            else:
                out.append(_Filler(name, group, kind, latent, loading, round(rng.uniform(0, 100), 1),
                                   round(rng.uniform(0.5, 20), 2)))
    return out


def _filler_sql(g: _Gen, f: _Filler) -> str:
    """One further feature: a flag or a value loading ``loading`` on its group's latent."""
    z = f.latent or "0.0"
    if f.kind == "flag":
        if f.loading == 0.0:  # the threshold is a constant: no per-row sigmoid
            return f"cast({g.u(f.name)} < {1.0 / (1.0 + math.exp(-f.base))!r} as int)"
        return f"cast({g.u(f.name)} < {_sig(f'{f.base!r} + {2.0 * f.loading!r} * {z}')} as int)"
    return f"round({f.base!r} + {f.scale!r} * ({f.loading!r} * {z} + {g.n(f.name)}), 2)"


def _group_of(name: str) -> str | None:
    for group, prefix in GROUP_PREFIXES.items():
        if name.startswith(prefix):
            return group
    return None


def _group_index(name: str) -> int:
    group = _group_of(name)
    return list(GROUP_PREFIXES).index(group) if group else len(GROUP_PREFIXES)


# --------------------------------------------------------------------------- PHI

def _phi_columns(g: _Gen, regions: dict[str, list[str]]) -> list[tuple[str, str]]:
    zip3, city, area = [], [], []
    for name, prefixes in regions.items():
        default_city, default_area = REGION_CITY.get(name, (name.title(), 330))
        zip3.append(f"WHEN _region = {_q(name)} THEN {g.element('zip3', prefixes)}")
        city.append(f"WHEN _region = {_q(name)} THEN {_q(default_city)}")
        area.append(f"WHEN _region = {_q(name)} THEN {default_area}")
    first, last = g.element("first_name", FIRST_NAMES), g.element("last_name", LAST_NAMES)
    return [
        ("first_name", first),
        ("last_name", last),
        ("ssn", f"format_string('9%02d-%02d-%04d', {g.index('ssn1', 100)}, {g.index('ssn2', 99)} + 1, "
                f"{g.index('ssn3', 9999)} + 1)"),
        ("date_of_birth", f"date_sub(snapshot_date, cast(floor(_age * 365.25 + {g.u('dob')} * 364) as int))"),
        ("street_address", f"format_string('%d %s %s, %s, OH %s%02d', {g.index('house', 9800)} + 100, "
                           f"{g.element('street', STREETS)}, {g.element('street_kind', STREET_KINDS)}, "
                           f"CASE {' '.join(city)} END, CASE {' '.join(zip3)} END, {g.index('zip2', 100)})"),
        ("phone", f"format_string('(%d) 555-01%02d', CASE {' '.join(area)} END, {g.index('phone', 100)})"),
        ("email", f"lower(format_string('%s.%s%d@example.org', {first}, {last}, {g.index('email', 1000)}))"),
        ("mrn", f"format_string('MRN%08d', {g.index('mrn', 100_000_000)})"),
    ]


# --------------------------------------------------------------------------- tables

def _base(spark: "SparkSession", members: int, g: _Gen, shift: float, regions: dict[str, list[str]],
          snapshot_date: date, partitions: int | None) -> "DataFrame":
    parts = partitions or max(2, math.ceil(members / 50_000))
    df = _select(spark.range(0, members, 1, parts), _latents(g, shift, regions), keep=False)
    df = _social(df)
    return _select(df, [("snapshot_date", f"DATE'{snapshot_date.isoformat()}'")])


def members_frame(spark: "SparkSession", members: int, seed: int, snapshot_date: date, shift: float = 0.0,
                  regions: dict[str, list[str]] | None = None, partitions: int | None = None) -> "DataFrame":
    """The bronze ``members`` table as a lazy Spark DataFrame (nothing is computed yet).

    Args:
        spark: the session.
        members: number of members (rows).
        seed: the random seed; the same seed gives the same rows.
        snapshot_date: the "as of" date of the snapshot.
        shift: drift; 0 is the reference population.
        regions: region -> ZIP3 prefixes (default: the Ohio regions of the base config).
        partitions: Spark partitions (default: about 50,000 members each).

    Returns:
        One row per member: ``member_id``, PHI columns, ``snapshot_date``, ``race_ethnicity``,
        ``payer_type``, ``hrob_label`` and the generated features (482 columns in 11 groups).
    """
    regions = regions or DEFAULT_REGIONS
    g = _Gen(seed)
    df = _select(_base(spark, members, g, shift, regions, snapshot_date, partitions), _named_features(g))
    for layer in _dependent_features(g):
        df = _select(df, layer)
    df = _select(df, [("_label", g.bern("label", _sig(label_logit_sql())))])
    generated = [c for c in df.columns if _group_of(c)]
    fillers = _fillers(generated)
    labs = {c for c in generated if c.startswith("vl_")} | {f.name for f in fillers if f.group == "vitals_labs"}
    sdoh = {c for c in generated if c.startswith("sdoh_")} | {f.name for f in fillers if f.group.startswith("sdoh_")}
    ob_missing = {"ob_gravidity", "ob_parity", "ob_prior_pregnancy_losses", "ob_gestational_weeks_at_first_visit"}

    def masked(name: str, sql: str) -> str:
        if name in labs:
            return f"CASE WHEN _miss_labs OR {g.u('miss:' + name)} < 0.02 THEN NULL ELSE {sql} END"
        if name in sdoh:
            return f"CASE WHEN _miss_sdoh THEN NULL ELSE {sql} END"
        if name in ob_missing:
            return f"CASE WHEN _miss_ob THEN NULL ELSE {sql} END"
        if name == "demo_household_size":
            return f"CASE WHEN {g.u('miss:' + name)} < 0.03 THEN NULL ELSE {sql} END"
        return sql

    named = [(c, f"`{c}`") for c in generated] + [(f.name, _filler_sql(g, f)) for f in fillers]
    order = {name: (_group_index(name), i) for i, (name, _) in enumerate(named)}
    features = [(name, masked(name, sql)) for name, sql in sorted(named, key=lambda ns: order[ns[0]])]
    head = [("member_id", "format_string('M%09d', id + 1)"), *_phi_columns(g, regions),
            ("snapshot_date", "snapshot_date"), ("race_ethnicity", "race_ethnicity"), ("payer_type", "payer_type"),
            ("hrob_label", "_label")]
    return _select(df, head + features, keep=False)


def claims_frame(spark: "SparkSession", members: int, seed: int, snapshot_date: date, shift: float = 0.0,
                 regions: dict[str, list[str]] | None = None, partitions: int | None = None,
                 lookback_days: int = 730) -> "DataFrame":
    """The bronze ``claims`` table (several rows per member) as a lazy Spark DataFrame.

    The member-level latents are recomputed from the same seed, so claims agree with
    ``members_frame`` without a join.

    Returns:
        ``claim_id``, ``member_id``, ``service_date``, ``claim_type``, ``primary_dx``,
        ``place_of_service``, ``paid_amount``.
    """
    regions = regions or DEFAULT_REGIONS
    g = _Gen(seed)
    base = _base(spark, members, g, shift, regions, snapshot_date, partitions)
    zu = "(0.5 * _zc + 0.45 * _zs - 0.35 * _za + 0.65 * _zu_noise)"
    rate = "(2.0 + 4.0 * " + _sig(zu) + " + 2.0 * " + _sig("_za") + ")"
    n_claims = "cast(" + _clip("2 + floor(-ln(" + g.u("n_claims") + ") * " + rate + ")", 2, 60) + " as int)"
    per_member = base.selectExpr("id", "snapshot_date", "_zc", "_za", f"{zu} AS _zu",
                                 f"explode(sequence(1, {n_claims})) AS k")
    c = _Gen(seed, ("id", "k"))
    p_er = f"(0.04 + 0.16 * {_sig('1.2 * _zu')})"
    p_ip = f"(0.015 + 0.05 * {_sig('_zc + 0.5 * _zu')})"
    p_pn = f"(0.12 + 0.25 * {_sig('_za')})"
    cum = [p_er, f"{p_er} + {p_ip}", f"{p_er} + {p_ip} + {p_pn}", f"{p_er} + {p_ip} + {p_pn} + 0.25",
           f"{p_er} + {p_ip} + {p_pn} + 0.37"]
    per_member = _select(per_member, [("_u_type", c.u("claim_type"))])
    ctype = (f"CASE WHEN _u_type < {cum[0]} THEN 'ER' WHEN _u_type < {cum[1]} THEN 'INPATIENT' "
             f"WHEN _u_type < {cum[2]} THEN 'PRENATAL' WHEN _u_type < {cum[3]} THEN 'PHARMACY' "
             f"WHEN _u_type < {cum[4]} THEN 'LAB' ELSE 'OUTPATIENT' END")
    claims = _select(per_member, [("claim_type", ctype)])
    days_back = (f"CASE WHEN claim_type = 'PRENATAL' THEN floor({c.u('days')} * 270) "
                 f"ELSE floor({c.u('days')} * {int(lookback_days)}) END")
    dx = " ".join(f"WHEN claim_type = {_q(kind)} THEN {c.element('dx', codes)}" for kind, codes in DX_BY_TYPE.items())
    pos = " ".join(f"WHEN claim_type = {_q(kind)} THEN {code}" for kind, code in PLACE_OF_SERVICE.items())
    mu = ("CASE claim_type WHEN 'ER' THEN 6.5 WHEN 'INPATIENT' THEN 8.8 WHEN 'PRENATAL' THEN 4.8 "
          "WHEN 'PHARMACY' THEN 3.5 WHEN 'LAB' THEN 3.8 ELSE 4.9 END")
    sd = "CASE WHEN claim_type = 'PHARMACY' THEN 0.9 ELSE 0.5 END"
    return _select(claims, [
        ("claim_id", "format_string('C%09d%04d', id + 1, k)"),
        ("member_id", "format_string('M%09d', id + 1)"),
        ("service_date", f"date_sub(snapshot_date, cast({days_back} as int))"),
        ("claim_type", "claim_type"),
        ("primary_dx", f"CASE {dx} ELSE CAST(NULL AS STRING) END"),
        ("place_of_service", f"CASE {pos} END"),
        ("paid_amount", f"round(exp({mu} + {sd} * {c.n('paid')}), 2)"),
    ], keep=False)


def generate(spark: "SparkSession", settings: "Settings", members: int, seed: int, snapshot_date: date,
             shift: float = 0.0) -> dict[str, int]:
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

    Returns:
        Row counts per table, e.g. ``{"members": 20000, "claims": 161234}``.

    Raises:
        InvalidInput: for a non-positive member count or a non-finite shift.
    """
    if members < 1:
        raise InvalidInput(f"--members must be at least 1, got {members}")
    if members > 999_999_999:
        raise InvalidInput(f"--members must be below 1,000,000,000, got {members}")
    if not math.isfinite(shift) or abs(shift) > 5:
        raise InvalidInput(f"--shift must be a number between -5 and 5, got {shift}")
    # ~500 generated columns make one very wide projection: whole-stage code generation would
    # exceed the JVM's 64 KB method limit and fall back after a slow compile, so skip it here.
    wholestage = spark.conf.get("spark.sql.codegen.wholeStage", "true")
    spark.conf.set("spark.sql.codegen.wholeStage", "false")
    try:
        return _write(spark, settings, members, seed, snapshot_date, shift)
    finally:
        spark.conf.set("spark.sql.codegen.wholeStage", wholestage)


def _write(spark: "SparkSession", settings: "Settings", members: int, seed: int, snapshot_date: date,
           shift: float) -> dict[str, int]:
    from pipelines import lake

    regions = settings.project.data.derive.regions or DEFAULT_REGIONS
    lookback = settings.project.data.events.lookback_days if settings.project.data.events else 730
    targets = {name: lake.path(settings, lake.BRONZE, name) for name in lake.SYNTHETIC_TABLES}
    with lake.Staging(spark) as stage:
        members_frame(spark, members, seed, snapshot_date, shift, regions) \
            .write.mode("overwrite").parquet(stage.path(targets["members"]))
        claims_frame(spark, members, seed, snapshot_date, shift, regions, lookback_days=lookback) \
            .write.mode("overwrite").parquet(stage.path(targets["claims"]))
        claims = spark.read.parquet(stage.pending[targets["claims"]]).count()
    return {"members": members, "claims": claims}
