"""The numpy metrics agree with scikit-learn; the batched forms agree with the single ones."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from promoter.core import stats


def _data(n: int, seed: int, *, ties: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    s = 1.0 / (1.0 + np.exp(-(1.2 * y + rng.normal(size=n) - 1.0)))
    if ties:
        s = np.round(s, 2)  # many tied scores, across classes
    w = rng.integers(0, 4, size=n).astype(float)  # bootstrap-like counts, zeros included
    return y, s, w


DATASETS = [("continuous", False), ("tied_scores", True)]


@pytest.mark.parametrize("name,ties", DATASETS, ids=[d[0] for d in DATASETS])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_metrics_match_sklearn(name, ties, weighted):
    y, s, w = _data(1500, 3, ties=ties)
    sw = w if weighted else None
    assert stats.roc_auc(y, s, sw) == pytest.approx(skm.roc_auc_score(y, s, sample_weight=sw), abs=1e-12)
    assert stats.average_precision(y, s, sw) == pytest.approx(
        skm.average_precision_score(y, s, sample_weight=sw), abs=1e-12
    )
    assert stats.brier(y, s, sw) == pytest.approx(skm.brier_score_loss(y, s, sample_weight=sw), abs=1e-12)
    assert stats.log_loss(y, s, sw) == pytest.approx(skm.log_loss(y, s, sample_weight=sw), abs=1e-12)


def test_ece_matches_calibration_curve_bins():
    y, s, _ = _data(2000, 5, ties=False)
    prob_true, prob_pred = calibration_curve(y, s, n_bins=10, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], s), minlength=10)
    counts = counts[counts > 0]
    expected = float(np.sum(counts / counts.sum() * np.abs(prob_true - prob_pred)))
    assert stats.ece(y, s) == pytest.approx(expected, abs=1e-12)


def test_ece_weighted_equals_repeating_rows():
    y, s, w = _data(500, 6, ties=True)
    repeat = w.astype(int)
    assert stats.ece(y, s, w) == pytest.approx(stats.ece(np.repeat(y, repeat), np.repeat(s, repeat)))


def test_ece_of_perfect_calibration_is_small_and_of_a_shift_is_the_shift():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.0, 1.0, size=200_000)
    y = (rng.random(p.size) < p).astype(int)
    assert stats.ece(y, p) < 0.01
    shifted = np.clip(p + 0.1, 0, 1)
    assert stats.ece(y, shifted) == pytest.approx(0.1, abs=0.02)


@pytest.mark.parametrize("metric", list(stats.METRICS))
@pytest.mark.parametrize("ties", [False, True], ids=["continuous", "tied_scores"])
def test_batched_metric_equals_single_metric_per_weight_row(metric, ties):
    y, s, _ = _data(700, 8, ties=ties)
    rng = np.random.default_rng(9)
    weights = rng.integers(0, 3, size=(6, y.size)).astype(float)
    batched = stats.batch_metric(metric, y, s)(weights)
    single = [stats.METRICS[metric](y, s, row) for row in weights]
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-12)


def test_auc_is_nan_when_a_class_is_absent():
    assert np.isnan(stats.roc_auc(np.zeros(5, dtype=int), np.arange(5.0)))
    assert np.isnan(stats.average_precision(np.zeros(5, dtype=int), np.arange(5.0)))


@pytest.mark.parametrize(
    "labels,scores,message",
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], "labels must be 0 or 1"),
        ([0, 1], [0.1, float("nan")], "NaN"),
        ([0, 1, 1], [0.1, 0.2], "differ in length"),
    ],
    ids=["non_binary_labels", "nan_score", "length_mismatch"],
)
def test_bad_input_is_rejected(labels, scores, message):
    with pytest.raises(ValueError, match=message):
        stats.roc_auc(np.array(labels), np.array(scores))


def test_probability_metrics_reject_scores_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.brier(np.array([0, 1]), np.array([-0.1, 0.5]))


# --------------------------------------------------------------------------- paired bootstrap


def _paired(n: int, seed: int, gain: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(int)
    shared = rng.normal(size=n)
    champ = 1.0 * y + 0.9 * shared + 0.44 * rng.normal(size=n)
    cand = (1.0 + gain) * y + 0.9 * shared + 0.44 * rng.normal(size=n)
    return y, cand, champ


def test_paired_bootstrap_point_estimate_is_the_full_sample_difference():
    y, a, b = _paired(3000, 1, 0.3)
    result = stats.paired_bootstrap("roc_auc", y, a, b, resamples=300, seed=4)
    assert result.candidate == pytest.approx(skm.roc_auc_score(y, a), abs=1e-12)
    assert result.champion == pytest.approx(skm.roc_auc_score(y, b), abs=1e-12)
    assert result.difference == pytest.approx(result.candidate - result.champion)
    assert result.ci_low < result.difference < result.ci_high
    assert result.std_error > 0


def test_paired_bootstrap_is_deterministic_for_a_seed_and_changes_with_it():
    y, a, b = _paired(2000, 2, 0.1)
    r1 = stats.paired_bootstrap("roc_auc", y, a, b, resamples=200, seed=11)
    r2 = stats.paired_bootstrap("roc_auc", y, a, b, resamples=200, seed=11)
    r3 = stats.paired_bootstrap("roc_auc", y, a, b, resamples=200, seed=12)
    assert r1 == r2
    assert r1.ci_low != r3.ci_low


def test_paired_bootstrap_does_not_depend_on_row_order():
    y, a, b = _paired(2000, 3, 0.1)
    perm = np.random.default_rng(0).permutation(y.size)
    r1 = stats.paired_bootstrap("roc_auc", y, a, b, resamples=200, seed=1)
    r2 = stats.paired_bootstrap("roc_auc", y[perm], a[perm], b[perm], resamples=200, seed=1)
    assert r1.difference == pytest.approx(r2.difference, abs=1e-12)
    # the resampling draws from each class block in the same (score) order: identical intervals
    assert r1.ci_low == pytest.approx(r2.ci_low, abs=1e-12)


def test_paired_bootstrap_resamples_match_a_naive_loop():
    """Each resample equals evaluating both models on explicitly drawn rows."""
    y, a, b = _paired(400, 4, 0.2)
    result = stats.paired_bootstrap("roc_auc", y, a, b, resamples=50, seed=21)
    # re-draw the same resamples: positives then negatives, sorted by candidate score
    order = np.lexsort((a, y == 0))
    ys, as_, bs = y[order], a[order], b[order]
    n_pos = int(ys.sum())
    rng = np.random.default_rng(21)
    step = stats._chunk_size(y.size, 50)
    diffs = []
    for start in range(0, 50, step):
        rows = min(step, 50 - start)
        pos = rng.integers(0, n_pos, size=(rows, n_pos))
        neg = rng.integers(0, y.size - n_pos, size=(rows, y.size - n_pos)) + n_pos
        for r in range(rows):
            idx = np.concatenate((pos[r], neg[r]))
            diffs.append(skm.roc_auc_score(ys[idx], as_[idx]) - skm.roc_auc_score(ys[idx], bs[idx]))
    low, high = np.quantile(diffs, [0.025, 0.975])
    assert result.ci_low == pytest.approx(low, abs=1e-12)
    assert result.ci_high == pytest.approx(high, abs=1e-12)


def test_paired_bootstrap_of_identical_models_is_exactly_zero():
    y, a, _ = _paired(1000, 5, 0.0)
    result = stats.paired_bootstrap("roc_auc", y, a, a.copy(), resamples=100, seed=0)
    assert (result.difference, result.ci_low, result.ci_high) == (0.0, 0.0, 0.0)


def test_paired_bootstrap_interval_covers_a_real_gain():
    y, a, b = _paired(5000, 6, 0.4)
    result = stats.paired_bootstrap("roc_auc", y, a, b, resamples=300, seed=2)
    assert result.ci_low > 0


@pytest.mark.parametrize("metric", ["pr_auc", "brier", "log_loss", "ece"])
def test_paired_bootstrap_other_metrics(metric):
    y, a, b = _paired(1500, 7, 0.3)
    pa, pb = 1 / (1 + np.exp(-(a - 2))), 1 / (1 + np.exp(-(b - 2)))
    result = stats.paired_bootstrap(metric, y, pa, pb, resamples=100, seed=3)
    assert result.difference == pytest.approx(stats.METRICS[metric](y, pa) - stats.METRICS[metric](y, pb))
    assert result.ci_low <= result.ci_high


def test_paired_bootstrap_rejects_unknown_metric_and_single_class():
    y, a, b = _paired(200, 8, 0.0)
    with pytest.raises(KeyError):
        stats.paired_bootstrap("precision_at_k", y, a, b)
    with pytest.raises(ValueError, match="both classes"):
        stats.paired_bootstrap("roc_auc", np.zeros(10, dtype=int), np.arange(10.0), np.arange(10.0))
