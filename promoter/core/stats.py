"""Binary-classification metrics and the paired bootstrap, as pure numpy functions.

The Spark evaluation code computes the metrics a run logs; the gate needs the same metrics
again on thousands of bootstrap resamples of the evaluation rows, which is a job for
vectorised numpy. Every metric here takes optional ``sample_weight`` so that a bootstrap
resample is simply a vector of counts (how often each row was drawn): no rows are copied.

Definitions (they match scikit-learn, which the tests check against):

* ``roc_auc``: area under the ROC curve, ties counted one half (Mann-Whitney U).
* ``pr_auc``: average precision, ``sum_k (R_k - R_{k-1}) P_k`` over distinct thresholds.
* ``brier``: mean squared difference between score and label.
* ``log_loss``: mean negative log-likelihood, scores clipped to ``[1e-15, 1 - 1e-15]``.
* ``ece``: expected calibration error over ``n_bins`` equal-width bins ``(lo, hi]`` (the first
  bin also holds 0), ``sum_b (n_b / n) |mean(y)_b - mean(score)_b|``.

Nothing here reads files, the clock or global random state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

LOG_LOSS_EPS = 1e-15
ECE_BINS = 10

# metric name -> True when larger is better
HIGHER_IS_BETTER: dict[str, bool] = {
    "roc_auc": True,
    "pr_auc": True,
    "brier": False,
    "log_loss": False,
    "ece": False,
}


# --------------------------------------------------------------------------- input checks


def _prepare(
    labels: np.ndarray, scores: np.ndarray, sample_weight: np.ndarray | None, probabilities: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError("labels and scores must be one-dimensional")
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length ({y.shape[0]} vs {s.shape[0]})")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values")
    if probabilities and s.size and (s.min() < 0.0 or s.max() > 1.0):
        raise ValueError("scores must be probabilities in [0, 1] for this metric")
    if sample_weight is None:
        w = np.ones(s.shape[0], dtype=np.float64)
    else:
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != s.shape:
            raise ValueError("sample_weight must have one weight per row")
        if (w < 0).any() or not np.isfinite(w).all():
            raise ValueError("sample_weight must be finite and non-negative")
    return y.astype(np.int8, copy=False), s, w


# --------------------------------------------------------------------------- single metrics


def roc_auc(labels: np.ndarray, scores: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Area under the ROC curve (ties count one half).

    Args:
        labels: 0/1 labels.
        scores: one score per row; larger means more likely positive.
        sample_weight: optional non-negative weight per row.

    Returns:
        The AUC, or NaN when either class has zero total weight.

    Raises:
        ValueError: on mismatched lengths, labels other than 0/1 or non-finite scores.
    """
    y, s, w = _prepare(labels, scores, sample_weight)
    pos = y == 1
    wp, wn = w[pos], w[~pos]
    total_p, total_n = wp.sum(), wn.sum()
    if total_p <= 0 or total_n <= 0:
        return float("nan")
    neg_scores = s[~pos]
    order = np.argsort(neg_scores, kind="mergesort")
    sorted_neg = neg_scores[order]
    cum = np.concatenate(([0.0], np.cumsum(wn[order])))
    below = cum[np.searchsorted(sorted_neg, s[pos], side="left")]
    upto = cum[np.searchsorted(sorted_neg, s[pos], side="right")]
    return float(np.dot(wp, below + upto) / (2.0 * total_p * total_n))


def average_precision(labels: np.ndarray, scores: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Average precision (area under the precision-recall curve, step-wise).

    Args:
        labels: 0/1 labels.
        scores: one score per row.
        sample_weight: optional non-negative weight per row.

    Returns:
        Average precision, or NaN when there is no positive weight.

    Raises:
        ValueError: on mismatched lengths, labels other than 0/1 or non-finite scores.
    """
    y, s, w = _prepare(labels, scores, sample_weight)
    order, ends = _descending_groups(s)
    return float(
        _ap_from_cumulative(np.cumsum((w * y)[order])[ends][None, :], np.cumsum((w * (1 - y))[order])[ends][None, :])[0]
    )


pr_auc = average_precision


def brier(labels: np.ndarray, scores: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Brier score: weighted mean of ``(score - label)**2``.

    Args:
        labels: 0/1 labels.
        scores: probabilities in [0, 1].
        sample_weight: optional non-negative weight per row.

    Returns:
        The Brier score (NaN for zero total weight).

    Raises:
        ValueError: on bad input, including scores outside [0, 1].
    """
    y, s, w = _prepare(labels, scores, sample_weight, probabilities=True)
    total = w.sum()
    return float(np.dot(w, (s - y) ** 2) / total) if total > 0 else float("nan")


def log_loss(labels: np.ndarray, scores: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Log loss (binary cross-entropy), scores clipped to ``[1e-15, 1 - 1e-15]``.

    Args:
        labels: 0/1 labels.
        scores: probabilities in [0, 1].
        sample_weight: optional non-negative weight per row.

    Returns:
        The mean log loss (NaN for zero total weight).

    Raises:
        ValueError: on bad input, including scores outside [0, 1].
    """
    y, s, w = _prepare(labels, scores, sample_weight, probabilities=True)
    total = w.sum()
    return float(np.dot(w, _row_log_loss(y, s)) / total) if total > 0 else float("nan")


def ece(
    labels: np.ndarray, scores: np.ndarray, sample_weight: np.ndarray | None = None, n_bins: int = ECE_BINS
) -> float:
    """Expected calibration error over ``n_bins`` equal-width bins.

    Bins are ``(lo, hi]`` with 0 in the first bin, as scikit-learn's ``calibration_curve``
    with ``strategy="uniform"``.

    Args:
        labels: 0/1 labels.
        scores: probabilities in [0, 1].
        sample_weight: optional non-negative weight per row.
        n_bins: number of bins (>= 1).

    Returns:
        ``sum_b (w_b / w) * |mean label - mean score|`` over non-empty bins (NaN for zero weight).

    Raises:
        ValueError: on bad input, including scores outside [0, 1] or ``n_bins < 1``.
    """
    y, s, w = _prepare(labels, scores, sample_weight, probabilities=True)
    total = w.sum()
    if total <= 0:
        return float("nan")
    residual = np.bincount(_bin_ids(s, n_bins), weights=w * (y - s), minlength=n_bins)
    return float(np.abs(residual).sum() / total)


METRICS: dict[str, Callable[..., float]] = {
    "roc_auc": roc_auc,
    "pr_auc": average_precision,
    "brier": brier,
    "log_loss": log_loss,
    "ece": ece,
}


def compute_metrics(
    labels: np.ndarray, scores: np.ndarray, names: tuple[str, ...] = tuple(METRICS)
) -> dict[str, float]:
    """Every named metric on one set of rows.

    Args:
        labels: 0/1 labels.
        scores: probabilities.
        names: metric names (keys of :data:`METRICS`).

    Returns:
        ``{name: value}``.

    Raises:
        KeyError: for an unknown metric name.
        ValueError: on bad input.
    """
    return {name: METRICS[name](labels, scores) for name in names}


# --------------------------------------------------------------------------- helpers


def _row_log_loss(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    p = np.clip(s, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def _as_slice(index: np.ndarray) -> np.ndarray | slice:
    """A contiguous ascending index as a slice (a view, no copy); anything else unchanged."""
    if index.size and index[-1] - index[0] == index.size - 1 and (np.diff(index) == 1).all():
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def _bin_ids(s: np.ndarray, n_bins: int) -> np.ndarray:
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], s, side="left")


def _descending_groups(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order by descending score and the index of the last row of each run of equal scores."""
    order = np.argsort(-s, kind="mergesort")
    sorted_s = s[order]
    if sorted_s.size == 0:
        return order, np.zeros(0, dtype=np.intp)
    ends = np.flatnonzero(np.diff(sorted_s) != 0)
    ends = np.concatenate((ends, [sorted_s.size - 1]))
    return order, ends


def _ap_from_cumulative(tps: np.ndarray, fps: np.ndarray) -> np.ndarray:
    """Average precision per row of (cumulative true, false positive weight) at thresholds."""
    if tps.shape[1] == 0:
        return np.full(tps.shape[0], np.nan)
    total_pos = tps[:, -1:]
    predicted = tps + fps
    precision = np.divide(tps, predicted, out=np.zeros_like(tps), where=predicted > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tps / total_pos
    recall_step = np.diff(recall, axis=1, prepend=0.0)
    out = (recall_step * precision).sum(axis=1)
    out[total_pos[:, 0] <= 0] = np.nan
    return out


# --------------------------------------------------------------------------- batched (bootstrap) metrics

BatchMetric = Callable[[np.ndarray], np.ndarray]


def batch_metric(name: str, labels: np.ndarray, scores: np.ndarray) -> BatchMetric:
    """Prepare ``name`` on fixed rows for many weight vectors at once.

    The sort and binning are done once here; the returned function takes a ``(B, n)`` array of
    row weights (bootstrap counts) and returns the ``B`` metric values, equal to calling the
    single metric with ``sample_weight=weights[b]`` for each ``b``.

    Args:
        name: a key of :data:`METRICS`.
        labels: 0/1 labels (n,).
        scores: scores (n,).

    Returns:
        A function ``weights (B, n) -> values (B,)``.

    Raises:
        KeyError: for a metric with no batched form.
        ValueError: on bad input.
    """
    if name not in METRICS:
        raise KeyError(name)
    y, s, _ = _prepare(labels, scores, None, probabilities=name in ("brier", "log_loss", "ece"))
    yf = y.astype(np.float64)

    if name == "roc_auc":
        pos_idx = np.flatnonzero(y == 1)
        neg_idx = np.flatnonzero(y == 0)
        neg_order = neg_idx[np.argsort(s[neg_idx], kind="mergesort")]
        sorted_neg = s[neg_order]
        left = np.searchsorted(sorted_neg, s[pos_idx], side="left")
        right = np.searchsorted(sorted_neg, s[pos_idx], side="right")
        ties = not np.array_equal(left, right)
        take_pos = _as_slice(pos_idx)
        take_neg = _as_slice(neg_order)

        def auc(weights: np.ndarray) -> np.ndarray:
            wp = weights[:, take_pos]
            wn = weights[:, take_neg]
            cum = np.zeros((weights.shape[0], wn.shape[1] + 1))
            np.cumsum(wn, axis=1, out=cum[:, 1:])
            if ties:
                num = np.einsum("ij,ij->i", wp, cum[:, left] + cum[:, right])
            else:
                num = 2.0 * np.einsum("ij,ij->i", wp, cum[:, left])
            den = 2.0 * wp.sum(axis=1) * cum[:, -1]
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

        return auc

    if name == "pr_auc":
        order, ends = _descending_groups(s)
        y_sorted = yf[order]

        def ap(weights: np.ndarray) -> np.ndarray:
            w = weights[:, order]
            tps = np.cumsum(w * y_sorted, axis=1)[:, ends]
            fps = np.cumsum(w * (1.0 - y_sorted), axis=1)[:, ends]
            return _ap_from_cumulative(tps, fps)

        return ap

    if name == "ece":
        bins = _bin_ids(s, ECE_BINS)
        design = np.zeros((s.size, ECE_BINS))
        design[np.arange(s.size), bins] = yf - s

        def ece_batch(weights: np.ndarray) -> np.ndarray:
            total = weights.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.abs(weights @ design).sum(axis=1) / total

        return ece_batch

    per_row = (s - yf) ** 2 if name == "brier" else _row_log_loss(yf, s)

    def mean(weights: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (weights @ per_row) / weights.sum(axis=1)

    return mean


# --------------------------------------------------------------------------- paired bootstrap


@dataclass(frozen=True)
class BootstrapResult:
    """Paired bootstrap of ``metric(candidate) - metric(champion)`` over the same rows.

    ``difference`` is the point estimate on all rows; ``ci_low``/``ci_high`` the central
    percentile interval at ``confidence`` (e.g. the 2.5th and 97.5th percentiles for 0.95).
    """

    metric: str
    candidate: float
    champion: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    resamples: int
    seed: int
    std_error: float
    stratified: bool = True

    def to_dict(self) -> dict[str, object]:
        """A JSON-safe dict (NaN becomes ``None``)."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}


def _chunk_size(n: int, resamples: int) -> int:
    # keep one (chunk, n) float64 weight block around 16 MB; depends only on n, so results
    # are the same for the same inputs
    return max(1, min(resamples, 2_000_000 // max(n, 1)))


def _counts(rng: np.random.Generator, size: int, rows: int) -> np.ndarray:
    """``rows`` bootstrap count vectors over ``size`` items (each row sums to ``size``)."""
    if size == 0:
        return np.zeros((rows, 0))
    draws = rng.integers(0, size, size=(rows, size))
    draws += (np.arange(rows) * size)[:, None]
    return np.bincount(draws.ravel(), minlength=rows * size).reshape(rows, size).astype(np.float64)


def paired_bootstrap(
    metric: str,
    labels: np.ndarray,
    candidate_scores: np.ndarray,
    champion_scores: np.ndarray,
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> BootstrapResult:
    """Paired, class-stratified bootstrap of the difference in ``metric`` between two models.

    Each resample draws, with replacement, as many positives from the positives and as many
    negatives from the negatives as the evaluation rows hold (so every resample has both
    classes, as pROC does for AUC), and evaluates both models on the *same* drawn rows.
    A resample is a vector of counts, so no rows are copied; the AUC uses one sort per
    model. Deterministic for the same inputs and ``seed``.

    Args:
        metric: a key of :data:`METRICS`.
        labels: 0/1 labels shared by both models (n,).
        candidate_scores: candidate scores (n,).
        champion_scores: champion scores (n,), same rows in the same order.
        resamples: number of bootstrap resamples (>= 1).
        seed: seed of the resampling.
        confidence: two-sided confidence level in (0, 1).

    Returns:
        A :class:`BootstrapResult`.

    Raises:
        KeyError: when ``metric`` has no numpy implementation here.
        ValueError: on bad input (lengths, labels, NaN scores, one class only, bad levels).
    """
    if metric not in METRICS:
        raise KeyError(metric)
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be between 0 and 1")
    y = np.asarray(labels)
    a = np.asarray(candidate_scores, dtype=np.float64)
    b = np.asarray(champion_scores, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"candidate and champion scores differ in length ({a.size} vs {b.size})")
    # positives first, then negatives, each block by candidate score: a resample's counts are
    # two contiguous blocks and the candidate's AUC needs no gather
    order = np.lexsort((a, y == 0))
    y, a, b = y[order], a[order], b[order]
    fa = batch_metric(metric, y, a)
    fb = batch_metric(metric, y, b)
    n_pos = int((y == 1).sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise ValueError("the evaluation rows need both classes for a bootstrap")

    ones = np.ones((1, y.size))
    point_a, point_b = float(fa(ones)[0]), float(fb(ones)[0])

    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    step = _chunk_size(y.size, resamples)
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        weights = np.hstack((_counts(rng, n_pos, rows), _counts(rng, n_neg, rows)))
        diffs[start : start + rows] = fa(weights) - fb(weights)

    alpha = (1.0 - confidence) / 2.0
    finite = diffs[np.isfinite(diffs)]
    if finite.size == 0:
        low = high = se = float("nan")
    else:
        low, high = (float(x) for x in np.quantile(finite, [alpha, 1.0 - alpha]))
        se = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return BootstrapResult(
        metric=metric,
        candidate=point_a,
        champion=point_b,
        difference=point_a - point_b,
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
        std_error=se,
    )


# --------------------------------------------------------------------------- calibration and intervals

CALIBRATION_EPS = 1e-6
_NEWTON_MAX_ITER = 100
_NEWTON_TOL = 1e-10
_MAX_COEFFICIENT = 1e6  # beyond this the logistic fit is separating: no finite estimate


def _logit(scores: np.ndarray) -> np.ndarray:
    p = np.clip(scores, CALIBRATION_EPS, 1.0 - CALIBRATION_EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|


def _weighted_nll(y: np.ndarray, w: np.ndarray, eta: np.ndarray) -> float:
    # -sum w [y eta - log(1 + e^eta)], written with logaddexp so it never overflows
    return float(np.dot(w, np.logaddexp(0.0, eta) - y * eta))


def calibration_slope_intercept(
    labels: np.ndarray, scores: np.ndarray, sample_weight: np.ndarray | None = None
) -> tuple[float, float]:
    """Logistic recalibration: fit ``logit P(y=1) = intercept + slope * logit(score)``.

    The slope says whether the scores spread too much (< 1: too extreme, overfit) or too
    little (> 1); the intercept, whether they are too high (< 0) or too low (> 0) overall. A
    perfectly calibrated model has slope 1 and intercept 0. Fitted by Newton-Raphson (IRLS)
    with step halving on the unpenalised weighted log-likelihood, the same estimate as
    scikit-learn's ``LogisticRegression(penalty=None)`` on the single feature ``logit(score)``.
    Scores are clipped to ``[1e-6, 1 - 1e-6]`` before the logit.

    Args:
        labels: 0/1 labels.
        scores: probabilities in [0, 1].
        sample_weight: optional non-negative weight per row (e.g. counts of distinct rows).

    Returns:
        ``(slope, intercept)``; ``(nan, nan)`` when there is no finite estimate: one class
        only, all scores equal (after clipping), or the classes are separated by the score.

    Raises:
        ValueError: on bad input, including scores outside [0, 1].
    """
    y, s, w = _prepare(labels, scores, sample_weight, probabilities=True)
    yf = y.astype(np.float64)
    keep = w > 0
    yf, x, w = yf[keep], _logit(s[keep]), w[keep]
    nan = (float("nan"), float("nan"))
    pos = float(np.dot(w, yf))
    if pos <= 0 or pos >= w.sum() or np.ptp(x) <= 0:
        return nan
    design = np.column_stack((np.ones_like(x), x))
    beta = np.array([0.0, 1.0])  # start at "calibrated": few steps when it nearly is
    loss = _weighted_nll(yf, w, design @ beta)
    for _ in range(_NEWTON_MAX_ITER):
        mu = _sigmoid(design @ beta)
        grad = design.T @ (w * (yf - mu))
        hess = (design * (w * mu * (1.0 - mu))[:, None]).T @ design
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            return nan
        t = 1.0
        while True:
            candidate = beta + t * step
            new_loss = _weighted_nll(yf, w, design @ candidate)
            if new_loss <= loss + 1e-12 * abs(loss) or t < 1e-8:
                break
            t *= 0.5
        beta, loss = candidate, new_loss
        if not np.isfinite(beta).all() or np.abs(beta).max() > _MAX_COEFFICIENT:
            return nan
        if np.abs(t * step).max() < _NEWTON_TOL:
            return float(beta[1]), float(beta[0])
    return nan  # did not converge: the likelihood has no finite maximum (separation)


def calibration_in_the_large(labels: np.ndarray, scores: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Calibration-in-the-large: the intercept ``a`` of ``logit P(y=1) = a + logit(score)`` (slope fixed at 1).

    ``a > 0``: the model under-predicts the overall risk; ``a < 0``: it over-predicts. At the
    fitted ``a`` the mean recalibrated probability equals the observed prevalence. Scores are
    clipped to ``[1e-6, 1 - 1e-6]`` before the logit; fitted by one-dimensional Newton steps.

    Args:
        labels: 0/1 labels.
        scores: probabilities in [0, 1].
        sample_weight: optional non-negative weight per row.

    Returns:
        The intercept; NaN with one class only (no finite estimate) or zero total weight.

    Raises:
        ValueError: on bad input, including scores outside [0, 1].
    """
    y, s, w = _prepare(labels, scores, sample_weight, probabilities=True)
    yf = y.astype(np.float64)
    x = _logit(s)
    pos = float(np.dot(w, yf))
    if pos <= 0 or pos >= w.sum():
        return float("nan")
    a = 0.0
    loss = _weighted_nll(yf, w, x + a)
    for _ in range(_NEWTON_MAX_ITER):
        mu = _sigmoid(x + a)
        grad = float(np.dot(w, yf - mu))
        hess = float(np.dot(w, mu * (1.0 - mu)))
        if hess <= 0:
            return float("nan")
        step, t = grad / hess, 1.0
        while True:
            new_loss = _weighted_nll(yf, w, x + a + t * step)
            if new_loss <= loss + 1e-12 * abs(loss) or t < 1e-8:
                break
            t *= 0.5
        a, loss = a + t * step, new_loss
        if abs(t * step) < _NEWTON_TOL:
            return float(a)
    return float(a)


def bootstrap_interval(
    labels: np.ndarray,
    scores: np.ndarray,
    metric: str,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of one metric on one set of rows (e.g. a small subgroup).

    Class-stratified, as :func:`paired_bootstrap`: each resample draws as many positives from
    the positives and negatives from the negatives as there are, so every resample of a group
    with both classes has an AUC. A resample is a count vector evaluated by
    :func:`batch_metric` (``ece`` there uses :data:`ECE_BINS` bins). Resamples whose metric is
    undefined are left out. Deterministic for the same inputs and ``seed``.

    Args:
        labels: 0/1 labels (n,).
        scores: scores (n,).
        metric: a key of :data:`METRICS` (``roc_auc``, ``pr_auc``, ``brier``, ``log_loss``, ``ece``).
        resamples: number of resamples (>= 1).
        confidence: two-sided level in (0, 1); the interval is the ``(1-c)/2`` and ``(1+c)/2``
            percentiles.
        seed: seed of the resampling.

    Returns:
        ``(lower, upper)``; ``(nan, nan)`` when there are no rows or the metric is undefined
        on every resample (e.g. AUC with one class).

    Raises:
        KeyError: for an unknown metric.
        ValueError: on bad input or bad ``resamples``/``confidence``.
    """
    if metric not in METRICS:
        raise KeyError(metric)
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be between 0 and 1")
    y, s, _ = _prepare(labels, scores, None)
    if y.size == 0:
        return float("nan"), float("nan")
    order = np.lexsort((s, y == 0))  # positives first, then negatives: two contiguous count blocks
    y, s = y[order], s[order]
    fn = batch_metric(metric, y, s)
    n_pos = int((y == 1).sum())
    n_neg = int(y.size - n_pos)
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    step = _chunk_size(y.size, resamples)
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        weights = np.hstack((_counts(rng, n_pos, rows), _counts(rng, n_neg, rows)))
        values[start : start + rows] = fn(weights)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(low), float(high)


# --------------------------------------------------------------------------- bootstrap per group


_GROUP_BLOCK = 65_536  # weights per block of group_bootstrap (512 KB of float64)


@dataclass(frozen=True)
class GroupBootstrap:
    """One metric per group of one subgroup column, for one or more models, on the same resamples.

    Attributes:
        metric: the metric.
        groups: the groups, in the order of the columns of every array below.
        sizes: rows per group.
        point: model -> the metric per group on all of the group's rows, shape ``(G,)``.
        values: model -> the metric per resample and group, shape ``(resamples, G)``. Every
            model was evaluated on the same drawn rows (a paired bootstrap within each group).
        confidence: the two-sided level used by :meth:`interval`.
        resamples: number of resamples.
        seed: seed of the resampling.
    """

    metric: str
    groups: tuple[str, ...]
    sizes: tuple[int, ...]
    point: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    confidence: float
    resamples: int
    seed: int

    def interval(self, draws: np.ndarray) -> tuple[float, float]:
        """The central percentile interval (at :attr:`confidence`) of any statistic of the resamples.

        Args:
            draws: one value per resample (e.g. a difference of two columns of :attr:`values`);
                NaN values are left out.

        Returns:
            ``(lower, upper)``; ``(nan, nan)`` when no resample gave a finite value.
        """
        return percentile_interval(draws, self.confidence)


def percentile_interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    """The ``(1-c)/2`` and ``(1+c)/2`` percentiles of the finite values of ``draws``, as :func:`paired_bootstrap`.

    Args:
        draws: bootstrap values.
        confidence: two-sided level in (0, 1).

    Returns:
        ``(lower, upper)``; ``(nan, nan)`` when there is no finite value.
    """
    values = np.asarray(draws, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(low), float(high)


def group_bootstrap(
    metric: str,
    labels: np.ndarray,
    groups: np.ndarray,
    scores: dict[str, np.ndarray],
    *,
    only: tuple[str, ...] | list[str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> GroupBootstrap:
    """Bootstrap ``metric`` in every group of one subgroup column, paired across models.

    The resampling of :func:`paired_bootstrap`, one level finer: each resample draws, with
    replacement and independently per group, as many positives from the group's positives and
    as many negatives from its negatives as the group holds, so every group keeps its size and
    both classes in every resample. All models are evaluated on the same drawn rows (count
    vectors through :func:`batch_metric`; no rows are copied, one sort per group and model).
    Deterministic for the same inputs and ``seed``.

    Args:
        metric: a key of :data:`METRICS`.
        labels: 0/1 labels (n,).
        groups: the group of each row (n,); compared as strings.
        scores: model name -> scores (n,), the same rows in the same order.
        only: the groups to bootstrap (default: every group present), in this order.
        resamples: number of resamples (>= 1).
        seed: seed of the resampling.
        confidence: two-sided level in (0, 1), kept for :meth:`GroupBootstrap.interval`.

    Returns:
        A :class:`GroupBootstrap`.

    Raises:
        KeyError: for a metric with no numpy implementation here.
        ValueError: on bad input: lengths, labels, NaN scores, a group with no rows or with
            one class only, bad ``resamples``/``confidence``, no model.
    """
    if metric not in METRICS:
        raise KeyError(metric)
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be between 0 and 1")
    if not scores:
        raise ValueError("no model scores to bootstrap")
    y = np.asarray(labels)
    g = np.asarray(groups)
    if g.dtype.kind != "U":
        g = g.astype(str)
    models = tuple(scores)
    arrays = {m: np.asarray(scores[m], dtype=np.float64) for m in models}
    for m, s in arrays.items():
        if s.shape != y.shape or g.shape != y.shape:
            raise ValueError(f"labels, groups and scores of {m!r} differ in length")
    names, inverse = np.unique(g, return_inverse=True)
    code = {str(name): i for i, name in enumerate(names)}
    wanted = tuple(str(x) for x in (names if only is None else only))

    # per group: (n_pos, n_neg, per model (column permutation or None, batched metric)). The
    # counts are drawn over the group's rows in the first model's order (positives first, then
    # negatives, each by score, as paired_bootstrap); every other model sees the same counts
    # permuted into its own order, so that each model's AUC reads its rows as contiguous slices
    blocks: list[tuple[int, int, list[tuple[np.ndarray | None, BatchMetric]]]] = []
    for grp in wanted:
        if grp not in code:
            raise ValueError(f"group {grp!r} has no rows")
        idx = np.flatnonzero(inverse == code[grp])
        yy = y[idx]
        n_pos = int((yy == 1).sum())
        n_neg = int(idx.size - n_pos)
        if n_pos == 0 or n_neg == 0:
            raise ValueError(f"group {grp!r} needs both classes for a bootstrap")
        base = None
        per_model: list[tuple[np.ndarray | None, BatchMetric]] = []
        for m in models:
            local = np.lexsort((arrays[m][idx], yy == 0))
            if base is None:
                base, perm = local, None
            else:
                # position in the base order of each row of this model's order
                perm = np.argsort(base, kind="stable")[local]
            per_model.append((perm, batch_metric(metric, yy[local], arrays[m][idx][local])))
        blocks.append((n_pos, n_neg, per_model))

    point = {m: np.array([fns[k][1](np.ones((1, p + q)))[0] for p, q, fns in blocks]) for k, m in enumerate(models)}
    values = {m: np.empty((resamples, len(blocks))) for m in models}
    rng = np.random.default_rng(seed)
    for j, (n_pos, n_neg, per_model) in enumerate(blocks):
        # one group at a time, in blocks of half a megabyte: the weights stay in cache
        step = max(1, min(resamples, _GROUP_BLOCK // (n_pos + n_neg)))
        for start in range(0, resamples, step):
            rows = min(step, resamples - start)
            weights = np.hstack((_counts(rng, n_pos, rows), _counts(rng, n_neg, rows)))
            for m, (perm, fn) in zip(models, per_model):
                values[m][start : start + rows, j] = fn(weights if perm is None else np.take(weights, perm, axis=1))
    return GroupBootstrap(
        metric=metric,
        groups=wanted,
        sizes=tuple(p + q for p, q, _ in blocks),
        point=point,
        values=values,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
    )


def simultaneous_lower_bounds(draws: np.ndarray, point: np.ndarray, confidence: float) -> np.ndarray:
    """Lower confidence bounds that hold for all ``K`` statistics at once (bootstrap max-t).

    With ``K`` groups (or pairs of groups) a bound at ``confidence`` for each one clears a
    limit by chance far more often than ``(1 - confidence) / 2`` for *some* of them. The max-t
    method widens every bound by one common factor ``c``: the ``confidence`` quantile, over the
    resamples, of ``max_k (draws[b, k] - point[k]) / se[k]`` (``se``: the bootstrap standard
    errors), and returns ``point - c * se``. All ``K`` bounds then hold together with about
    ``(1 + confidence) / 2`` probability, whatever the correlation between the statistics; for
    ``K = 1`` this is the one-sided bound at the same level (about ``point - 1.96 se`` at 0.95
    for a normal statistic).

    Args:
        draws: bootstrap values, shape ``(B, K)``; rows with a NaN are left out.
        point: the statistics on all rows, shape ``(K,)``.
        confidence: two-sided level in (0, 1); the bounds are one-sided at ``(1 + confidence) / 2``.

    Returns:
        ``(K,)`` lower bounds; NaN when fewer than two finite resamples remain. A statistic
        whose resamples do not vary (``se`` 0) has its point estimate as its bound.
    """
    values = np.asarray(draws, dtype=np.float64)
    centre = np.asarray(point, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != centre.shape[0]:
        raise ValueError("draws must have shape (resamples, K) and point shape (K,)")
    keep = np.isfinite(values).all(axis=1)
    values = values[keep]
    if values.shape[0] < 2:
        return np.full(centre.shape, np.nan)
    se = values.std(axis=0, ddof=1)
    scale = np.where(se > 0, se, 1.0)
    t = np.where(se > 0, (values - centre) / scale, 0.0).max(axis=1)
    c = float(np.quantile(t, (1.0 + confidence) / 2.0))
    return centre - max(c, 0.0) * se
