"""Planted drift in the synthetic HROB population: features moved by an exact number of reference
sd (only where asked, only in the asked group), the outcome made more or less common, a subgroup
miscalibrated while its features stay put; deterministic for a seed; bad options one line, exit 2."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from pipelines import synthetic
from pipelines.synthetic import Drift
from promoter import config
from promoter.errors import InvalidInput
from tests.conftest import run_promote

SNAP = date(2024, 6, 30)
MEMBERS = 2000
SEED = 5
FLOATS = ["vl_bmi", "vl_sbp", "sdoh_nbhd_violent_crime_rate", "sdoh_nbhd_pct_poverty", "sdoh_nbhd_obgyn_per_10k"]
UNTOUCHED = ["vl_dbp", "vl_a1c", "vl_hemoglobin", "sdoh_transport_transit_minutes", "ob_gravidity", "cm_depression"]

LABEL = "hrob_label"  # the shipped HROB example's label (project.yml data.label_column)


def _frame(spark, drift: Drift | None = None, *, seed: int = SEED, partitions: int | None = None, columns=()):
    """The selected columns as pandas, one row per member, in member order."""
    df = synthetic.members_frame(spark, MEMBERS, seed, SNAP, drift=drift, partitions=partitions, label=LABEL)
    return (
        df.select("member_id", "payer_type", "race_ethnicity", "hrob_label", *columns)
        .toPandas()
        .sort_values("member_id", ignore_index=True)
    )


@pytest.fixture(scope="module")
def sd() -> dict[str, float]:
    return synthetic.reference_sd()


@pytest.mark.spark
def test_planted_features_move_by_the_asked_sd_and_nothing_else_moves(spark, sd):
    drift = Drift(features=("vl_bmi", "vl_sbp", "sdoh_nbhd_*", "cm_asthma", "demo_household_size"), sd=0.25)
    cols = [*FLOATS, *UNTOUCHED, "cm_asthma", "demo_household_size"]
    base, moved = _frame(spark, columns=cols), _frame(spark, drift, columns=cols)
    assert (base["member_id"] == moved["member_id"]).all()
    # decimal features: every non-missing value moves by exactly 0.25 reference sd
    for name in FLOATS:
        diff = (moved[name] - base[name]).dropna()
        assert len(diff) > MEMBERS // 3, name
        assert np.allclose(diff, 0.25 * sd[name], rtol=1e-9, atol=1e-9), name
        assert moved[name].isna().equals(base[name].isna()), name  # missingness untouched
    # the unit is the reference population's sd, which this sample's sd agrees with
    for name in FLOATS:
        assert base[name].std() == pytest.approx(sd[name], rel=0.12), name
    # whole numbers keep their type and move by 0.25 sd in expectation
    asthma_shift = moved["cm_asthma"].mean() - base["cm_asthma"].mean()
    assert asthma_shift == pytest.approx(0.25 * sd["cm_asthma"], abs=0.025)
    assert set(moved["cm_asthma"].dropna().unique()) <= {0, 1} and (moved["cm_asthma"] >= base["cm_asthma"]).all()
    size_shift = moved["demo_household_size"].mean() - base["demo_household_size"].mean()
    assert size_shift == pytest.approx(0.25 * sd["demo_household_size"], abs=0.05)
    assert (moved["demo_household_size"].dropna() % 1 == 0).all()
    # nothing else moved: other features, the label, the subgroups
    for name in ["hrob_label", "payer_type", "race_ethnicity", *UNTOUCHED]:
        assert moved[name].equals(base[name]), name


@pytest.mark.spark
def test_drift_group_moves_only_that_group(spark, sd):
    drift = Drift(features=("vl_bmi",), sd=1.0, group="payer_type=marketplace")
    base, moved = _frame(spark, columns=["vl_bmi"]), _frame(spark, drift, columns=["vl_bmi"])
    diff = moved["vl_bmi"] - base["vl_bmi"]
    market = base["payer_type"] == "marketplace"
    assert market.sum() > 100 and (~market).sum() > 1000
    assert np.allclose(diff[market].dropna(), sd["vl_bmi"])
    assert (diff[~market].dropna() == 0).all()


@pytest.mark.spark
def test_prevalence_change_moves_the_label_only(spark):
    cols = ["vl_bmi", "cm_asthma"]
    base = _frame(spark, columns=cols)
    more = _frame(spark, Drift(prevalence_change=1.0), columns=cols)
    fewer = _frame(spark, Drift(prevalence_change=-1.0), columns=cols)
    p0, p_more, p_fewer = base["hrob_label"].mean(), more["hrob_label"].mean(), fewer["hrob_label"].mean()
    assert p_more > p0 + 0.05 and p_fewer < p0 - 0.02, (p0, p_more, p_fewer)
    # the same draws: a higher log-odds only ever turns a 0 into a 1
    assert (more["hrob_label"] >= base["hrob_label"]).all() and (fewer["hrob_label"] <= base["hrob_label"]).all()
    for name in cols:
        assert more[name].equals(base[name]) and fewer[name].equals(base[name])


@pytest.mark.spark
def test_miscalibrated_group_changes_its_label_rate_not_its_features(spark):
    cols = ["vl_bmi", "vl_sbp", "cm_asthma", "sdoh_food_insecure"]
    base = _frame(spark, columns=cols)
    off = _frame(spark, Drift(miscalibrate=("race_ethnicity=Black:2.0",)), columns=cols)
    black = base["race_ethnicity"] == "Black"
    assert off.loc[black, "hrob_label"].mean() > base.loc[black, "hrob_label"].mean() + 0.15
    assert off.loc[~black, "hrob_label"].equals(base.loc[~black, "hrob_label"])
    for name in cols:
        assert off[name].equals(base[name]), name
    # the default offset is 1.0, and a glob names several values
    one = _frame(spark, Drift(miscalibrate=("payer_type=medicaid_*",)), columns=[])
    medicaid = base["payer_type"].str.startswith("medicaid_")
    assert one.loc[medicaid, "hrob_label"].sum() > base.loc[medicaid, "hrob_label"].sum()
    assert one.loc[~medicaid, "hrob_label"].equals(base.loc[~medicaid, "hrob_label"])


@pytest.mark.spark
def test_same_seed_same_drifted_data_on_any_partitioning(spark):
    drift = Drift(
        features=("vitals_labs",),
        sd=0.1,
        group="region=Southeast",
        prevalence_change=0.3,
        miscalibrate=("payer_type=chip:-1",),
    )
    cols = ["vl_bmi", "vl_urine_protein_positive", "vl_lab_001"]
    a = _frame(spark, drift, partitions=1, columns=cols)
    b = _frame(spark, drift, partitions=3, columns=cols)
    c = _frame(spark, drift, seed=SEED + 1, columns=cols)
    assert a.equals(b)
    assert not a[cols].equals(c[cols])


def test_drift_groups_and_globs_resolve_to_generated_features():
    p = synthetic._params(1, SNAP, 0.0, None, drift=Drift(features=("sdoh_food", "vl_b*"), sd=0.5))
    names = [name for name, _, _ in p.drift]
    assert {"sdoh_food_insecure", "sdoh_food_desert", "vl_bmi"} <= set(names)
    assert all(n.startswith(("sdoh_food_", "vl_b")) for n in names)
    modes = dict((name, mode) for name, mode, _ in p.drift)
    assert modes["vl_bmi"] == "add" and modes["sdoh_food_insecure"] == "flag"


@pytest.mark.parametrize(
    "drift,message",
    [
        (
            Drift(features=("nope_*",), sd=0.1),
            "--drift-features: 'nope_\\*' matches no generated feature \\(e.g. demo_",
        ),
        (Drift(features=("utilization",), sd=0.1), "built in gold"),
        (Drift(features=("vl_bmi",)), "--drift-features needs --drift-sd"),
        (Drift(sd=0.1), "--drift-sd needs --drift-features"),
        (Drift(features=("vl_bmi",), sd=9.0), "--drift-sd must be a number between -5 and 5"),
        (Drift(features=("vl_bmi",), sd=float("nan")), "--drift-sd must be a number"),
        (Drift(features=("vl_bmi",), sd=0.1, group="payer_type"), "--drift-group must look like COLUMN=VALUE"),
        (Drift(features=("vl_bmi",), sd=0.1, group="payer_type=Medicaid"), "values: chip, marketplace"),
        (Drift(features=("vl_bmi",), sd=0.1, group="zip=1"), "--drift-group: unknown column 'zip'"),
        (Drift(group="payer_type=chip"), "--drift-group needs --drift-features"),
        (Drift(features=("cm_hiv",), sd=-1.0), "flag cm_hiv .* cannot move by -1 sd"),
        (Drift(prevalence_change=7.0), "--prevalence-change must be a number between"),
        (Drift(miscalibrate=("payer_type=chip:much",)), "--miscalibrate: OFFSET must be a number"),
        (Drift(miscalibrate=("payer_type=chip:8",)), "--miscalibrate OFFSET must be a number between"),
    ],
)
def test_bad_drift_is_one_clear_message_naming_the_option(drift, message):
    with pytest.raises(InvalidInput, match=message) as err:
        synthetic._params(1, SNAP, 0.0, None, drift=drift)
    assert "\n" not in str(err.value)


def test_generate_rejects_bad_drift_before_touching_spark():
    settings = config.load("configs", environ={})
    with pytest.raises(InvalidInput, match="--drift-features"):
        synthetic.generate(None, settings, 10, 1, SNAP, drift=Drift(features=("nope",), sd=0.1))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--drift-features", "nope_*", "--drift-sd", "0.1"], "matches no generated feature"),
        (["--drift-features", "vl_bmi"], "--drift-features needs --drift-sd"),
        (["--miscalibrate", "payer_type=Medicaid"], "payer_type has no value 'Medicaid'"),
        (["--drift-sd", "abc", "--drift-features", "vl_bmi"], "'--drift-sd'"),
    ],
)
def test_cli_bad_drift_options_exit_2_with_one_line(args, message, tmp_path):
    proc = run_promote("data", "generate", "--members", "100", *args, env={"PROMOTE_LAKE_ROOT": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert any(message in line for line in lines), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "hrob-risk" / "bronze").exists()
