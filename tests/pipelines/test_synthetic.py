"""The synthetic HROB population: deterministic for a seed on any partitioning, realistic shape,
PHI that looks like PHI, missingness that depends on other columns, and a drift knob."""

from __future__ import annotations

from datetime import date

import pytest

from pipelines import synthetic
from promoter.errors import InvalidInput

SNAP = date(2024, 6, 30)

LABEL = "hrob_label"  # the shipped HROB example's label (project.yml data.label_column)


def _fingerprint(df):
    """Row count and an order-independent hash of every value of every row."""
    from pyspark.sql import functions as F

    return tuple(df.agg(F.count(F.lit(1)), F.sum(F.pmod(F.xxhash64(*df.columns), F.lit(1 << 40)))).first())


@pytest.mark.spark
def test_same_seed_same_data_on_any_partitioning(spark):
    a = _fingerprint(synthetic.members_frame(spark, 300, 5, SNAP, partitions=1, label=LABEL))
    b = _fingerprint(synthetic.members_frame(spark, 300, 5, SNAP, partitions=3, label=LABEL))
    c = _fingerprint(synthetic.members_frame(spark, 300, 6, SNAP, partitions=3, label=LABEL))
    assert a == b and a[0] == 300
    assert c != a
    ca = _fingerprint(synthetic.claims_frame(spark, 300, 5, SNAP, partitions=1))
    cb = _fingerprint(synthetic.claims_frame(spark, 300, 5, SNAP, partitions=4))
    assert ca == cb and ca[0] > 3 * 300


def test_more_than_500_features_in_the_named_groups():
    """482 generated columns in 11 groups; silver adds age_years and gold 33 utilisation columns."""
    from pipelines.features import event_feature_names
    from promoter import config

    settings = config.load("configs", environ={})
    util = event_feature_names(settings)
    generated = sum(synthetic.GROUP_SIZES.values())
    assert generated + 1 + len(util) >= 500
    assert set(synthetic.GROUP_PREFIXES) == {
        "demographics",
        "obstetric_history",
        "comorbidities",
        "vitals_labs",
        "medications",
        "utilization",
        *synthetic.SDOH_GROUPS,
    }
    assert all(name.startswith("util_") for name in util) and len(util) == 33


@pytest.mark.spark
def test_members_frame_has_every_group_and_phi(spark):
    df = synthetic.members_frame(spark, 50, 5, SNAP, label=LABEL)
    cols = df.columns
    for prefix in synthetic.GROUP_PREFIXES.values():
        if prefix != "util_":
            assert sum(c.startswith(prefix) for c in cols) >= 10, prefix
    assert sum(c.startswith(tuple(synthetic.GROUP_PREFIXES.values())) for c in cols) == sum(
        synthetic.GROUP_SIZES.values()
    )
    phi = ["member_id", "first_name", "last_name", "ssn", "date_of_birth", "street_address", "phone", "email", "mrn"]
    assert cols[: len(phi)] == phi
    rows = df.select(*phi, "snapshot_date").collect()
    import re

    for r in rows:
        assert re.fullmatch(r"M\d{9}", r.member_id)
        assert re.fullmatch(r"9\d{2}-\d{2}-\d{4}", r.ssn)  # never-issued SSN area
        assert re.fullmatch(r"\(\d{3}\) 555-01\d{2}", r.phone)  # fictional numbers
        assert r.email.endswith("@example.org")
        assert re.search(r", OH \d{5}$", r.street_address)
        age = (r.snapshot_date - r.date_of_birth).days / 365.25
        assert 14 <= age <= 51


@pytest.mark.spark
def test_the_label_column_is_the_projects(spark):
    """Another project's label name: the same labels under it, and no example name left."""
    ours = synthetic.members_frame(spark, 200, 5, SNAP, label="outcome_90d")
    example = synthetic.members_frame(spark, 200, 5, SNAP, label=LABEL)
    assert "outcome_90d" in ours.columns and LABEL not in ours.columns
    assert [r[0] for r in ours.select("outcome_90d").collect()] == [r[0] for r in example.select(LABEL).collect()]


@pytest.mark.spark
def test_label_prevalence_missingness_and_shift(spark):
    """Prevalence is realistic; labs are missing more often for marketplace members; a shift moves
    social risk and prevalence up."""
    from pyspark.sql import functions as F

    def stats(shift: float):
        df = synthetic.members_frame(spark, 6000, 3, SNAP, shift=shift, label=LABEL)
        market = F.col("payer_type") == "marketplace"
        return df.agg(
            F.avg("hrob_label").alias("prevalence"),
            F.avg(F.when(market, F.col("vl_bmi").isNull().cast("double"))).alias("miss_market"),
            F.avg(F.when(~market, F.col("vl_bmi").isNull().cast("double"))).alias("miss_other"),
            F.avg("sdoh_housing_unstable").alias("unstable"),
            F.avg(F.col("sdoh_food_insecure").isNull().cast("double")).alias("sdoh_missing"),
        ).first()

    base, drift = stats(0.0), stats(1.0)
    assert 0.05 <= base["prevalence"] <= 0.15, base
    assert base["miss_market"] > base["miss_other"] + 0.05, base
    assert 0.05 < base["sdoh_missing"] < 0.4
    assert drift["unstable"] > base["unstable"] + 0.05 and drift["prevalence"] > base["prevalence"] + 0.02


@pytest.mark.spark
def test_claims_rise_with_risk(spark):
    """ER visits come from the same latent risk as the label: members with the label have more."""
    from pyspark.sql import functions as F

    members = synthetic.members_frame(spark, 3000, 9, SNAP, label=LABEL).select("member_id", "hrob_label")
    claims = synthetic.claims_frame(spark, 3000, 9, SNAP)
    er = claims.groupBy("member_id").agg(F.sum((F.col("claim_type") == "ER").cast("int")).alias("er"))
    by_label = {
        r[0]: r[1]
        for r in members.join(er, "member_id", "left")
        .groupBy("hrob_label")
        .agg(F.avg(F.coalesce("er", F.lit(0))))
        .collect()
    }
    assert by_label[1] > by_label[0] * 1.2, by_label
    types = {r[0] for r in claims.select("claim_type").distinct().collect()}
    assert types == set(synthetic.CLAIM_TYPES)


def test_label_model_has_clinical_and_social_terms():
    model = synthetic.LABEL_MODEL
    assert set(model) == {"clinical", "social", "utilisation"}
    assert sum(model["social"].values()) > 2.0 and sum(model["clinical"].values()) > sum(model["social"].values())
    assert "zs" in model["social"] and "sdoh_housing_unstable" in model["social"] and "zc" in model["clinical"]


def test_label_is_drawn_from_the_known_model():
    """Members in the top decile of the known logit have the label far more often (no Spark needed)."""
    import numpy as np

    p = synthetic._params(4, SNAP, 0.0, None, label=LABEL)
    ids = np.arange(20000, dtype=np.int64)
    with np.errstate(over="ignore"):
        r = synthetic._Rng(p.seed, ids)
        z = synthetic._latents(r, p)
        f = synthetic._named_features(r, z, [name for name, _ in p.regions])
        logit = synthetic._label_logit(f, z)
        label = synthetic._members_batch(ids, p).column(LABEL).to_numpy()
    expected = 1 / (1 + np.exp(-logit))
    assert abs(label.mean() - expected.mean()) < 0.01  # calibrated to the model
    top = logit >= np.quantile(logit, 0.9)
    assert label[top].mean() > 3 * label[~top].mean()


@pytest.mark.parametrize(
    "members,shift,message", [(0, 0.0, "--members"), (10, float("nan"), "--shift"), (10, 9.0, "--shift")]
)
def test_generate_rejects_bad_arguments_before_touching_spark(members, shift, message):
    from promoter import config

    settings = config.load("configs", environ={})
    with pytest.raises(InvalidInput, match=message):
        synthetic.generate(None, settings, members, 1, SNAP, shift)  # type: ignore[arg-type]
