"""Calibration slope/intercept agree with scikit-learn's unpenalised logistic regression; the
calibration-in-the-large solves its score equation; the percentile bootstrap is deterministic
and brackets the point estimate."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from promoter.core import stats

pytestmark = pytest.mark.unit


def _miscalibrated(n: int, seed: int, *, slope: float, intercept: float) -> tuple[np.ndarray, np.ndarray]:
    """Scores whose true log-odds are ``intercept + slope * logit(score)``."""
    rng = np.random.default_rng(seed)
    s = rng.beta(2, 6, n)
    logit = np.log(s / (1 - s))
    y = (rng.random(n) < 1 / (1 + np.exp(-(intercept + slope * logit)))).astype(int)
    return y, s


def _sklearn_fit(y: np.ndarray, s: np.ndarray, w: np.ndarray | None = None) -> tuple[float, float]:
    p = np.clip(s, 1e-6, 1 - 1e-6)
    x = np.log(p / (1 - p)).reshape(-1, 1)
    model = LogisticRegression(C=np.inf, tol=1e-12, max_iter=100_000).fit(x, y, sample_weight=w)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


@pytest.mark.parametrize("slope,intercept", [(1.0, 0.0), (0.6, -0.4), (1.5, 0.8)])
def test_slope_intercept_match_sklearn(slope, intercept):
    y, s = _miscalibrated(3000, 11, slope=slope, intercept=intercept)
    got = stats.calibration_slope_intercept(y, s)
    ref = _sklearn_fit(y, s)
    assert got[0] == pytest.approx(ref[0], abs=1e-4)
    assert got[1] == pytest.approx(ref[1], abs=1e-4)


def test_slope_intercept_recover_the_generating_values():
    y, s = _miscalibrated(40_000, 2, slope=0.7, intercept=-0.5)
    slope, intercept = stats.calibration_slope_intercept(y, s)
    assert slope == pytest.approx(0.7, abs=0.05)
    assert intercept == pytest.approx(-0.5, abs=0.1)


def test_weights_equal_repeated_rows():
    y, s = _miscalibrated(800, 4, slope=1.2, intercept=0.3)
    s = np.round(s, 2)
    w = np.random.default_rng(1).integers(0, 4, size=y.size).astype(float)
    weighted = stats.calibration_slope_intercept(y, s, w)
    repeated = stats.calibration_slope_intercept(np.repeat(y, w.astype(int)), np.repeat(s, w.astype(int)))
    assert weighted == pytest.approx(repeated, abs=1e-9)
    ref = _sklearn_fit(y, s, w)
    assert weighted[0] == pytest.approx(ref[0], abs=1e-4)
    assert weighted[1] == pytest.approx(ref[1], abs=1e-4)


def test_extreme_scores_are_clipped():
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    s = np.array([0.0, 0.1, 1.0, 0.7, 0.4, 0.3, 0.6, 0.9])
    got = stats.calibration_slope_intercept(y, s)
    ref = _sklearn_fit(y, s)
    assert np.isfinite(got).all()
    assert got[0] == pytest.approx(ref[0], abs=1e-4)
    assert got[1] == pytest.approx(ref[1], abs=1e-4)


@pytest.mark.parametrize(
    "y,s",
    [
        (np.zeros(10, dtype=int), np.linspace(0.1, 0.9, 10)),  # one class
        (np.array([0, 1] * 5), np.full(10, 0.3)),  # one score
        (np.array([0] * 5 + [1] * 5), np.linspace(0.1, 0.9, 10)),  # separated
    ],
    ids=["one_class", "constant_score", "separated"],
)
def test_no_finite_estimate_is_nan(y, s):
    slope, intercept = stats.calibration_slope_intercept(y, s)
    assert np.isnan(slope) and np.isnan(intercept)


def test_calibration_in_the_large_solves_its_score_equation():
    y, s = _miscalibrated(5000, 8, slope=1.0, intercept=0.6)
    a = stats.calibration_in_the_large(y, s)
    logit = np.log(s / (1 - s))
    assert np.mean(1 / (1 + np.exp(-(a + logit)))) == pytest.approx(y.mean(), abs=1e-9)
    assert a == pytest.approx(0.6, abs=0.1)
    assert np.isnan(stats.calibration_in_the_large(np.ones(5, dtype=int), np.full(5, 0.5)))


@pytest.mark.parametrize("metric", ["roc_auc", "pr_auc", "brier", "ece"])
def test_bootstrap_interval_brackets_point_and_is_deterministic(metric):
    y, s = _miscalibrated(300, 5, slope=1.0, intercept=0.0)
    low, high = stats.bootstrap_interval(y, s, metric, resamples=400, confidence=0.95, seed=7)
    point = stats.METRICS[metric](y, s)
    assert low < point < high
    assert (low, high) == stats.bootstrap_interval(y, s, metric, resamples=400, confidence=0.95, seed=7)
    assert (low, high) != stats.bootstrap_interval(y, s, metric, resamples=400, confidence=0.95, seed=8)
    narrow = stats.bootstrap_interval(y, s, metric, resamples=400, confidence=0.5, seed=7)
    assert low <= narrow[0] <= narrow[1] <= high


def test_bootstrap_interval_matches_a_plain_loop():
    """The batched resamples are the same as evaluating the metric on each resample's rows."""
    y, s = _miscalibrated(120, 9, slope=1.0, intercept=0.0)
    order = np.lexsort((s, y == 0))
    ys, ss = y[order], s[order]
    n_pos = int(ys.sum())
    n_neg = ys.size - n_pos
    rng = np.random.default_rng(3)
    pos_draws = rng.integers(0, n_pos, size=(50, n_pos))  # one block of draws per class, as documented
    neg_draws = rng.integers(0, n_neg, size=(50, n_neg))
    values = []
    for b in range(50):
        w = np.concatenate((np.bincount(pos_draws[b], minlength=n_pos), np.bincount(neg_draws[b], minlength=n_neg)))
        values.append(stats.roc_auc(ys, ss, w.astype(float)))
    expected = tuple(np.quantile(values, [0.05, 0.95]))
    assert stats.bootstrap_interval(y, s, "roc_auc", resamples=50, confidence=0.9, seed=3) == pytest.approx(expected)


def test_bootstrap_interval_edge_cases():
    assert all(np.isnan(stats.bootstrap_interval(np.zeros(0), np.zeros(0), "roc_auc", 10, 0.95, 0)))
    assert all(np.isnan(stats.bootstrap_interval(np.ones(6, dtype=int), np.linspace(0, 1, 6), "roc_auc", 10, 0.95, 0)))
    low, high = stats.bootstrap_interval(np.ones(6, dtype=int), np.linspace(0, 1, 6), "brier", 50, 0.95, 0)
    assert 0 <= low <= high <= 1
    with pytest.raises(KeyError):
        stats.bootstrap_interval(np.array([0, 1]), np.array([0.2, 0.8]), "accuracy", 10, 0.95, 0)
    with pytest.raises(ValueError, match="confidence"):
        stats.bootstrap_interval(np.array([0, 1]), np.array([0.2, 0.8]), "roc_auc", 10, 1.5, 0)
    with pytest.raises(ValueError, match="resamples"):
        stats.bootstrap_interval(np.array([0, 1]), np.array([0.2, 0.8]), "roc_auc", 0, 0.95, 0)
