"""PNG plots logged with each training run (ROC, precision-recall, calibration, feature importance)
and each monitoring run (drift of the top features, realised calibration, a metric over time).

Pure functions of arrays -> a file. They use matplotlib's object API with the Agg canvas
(no pyplot, no display, no global figure state), so they are safe in CI and in threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _figure(width: float = 5.0, height: float = 4.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def roc_png(fpr: Sequence[float], tpr: Sequence[float], auc: float, path: str | Path) -> Path:
    """ROC curve with the chance diagonal; the title carries the AUC."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(fpr, tpr, lw=2, label=f"model (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="chance")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="false positive rate",
        ylabel="true positive rate",
        title="ROC (held-out rows)",
    )
    ax.legend(loc="lower right")
    return _save(fig, path)


def pr_png(
    recall: Sequence[float], precision: Sequence[float], average_precision: float, prevalence: float, path: str | Path
) -> Path:
    """Precision-recall curve with the prevalence baseline."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    ax.step(recall, precision, where="post", lw=2, label=f"model (AP {average_precision:.3f})")
    ax.axhline(prevalence, ls="--", color="grey", label=f"prevalence {prevalence:.3f}")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="recall", ylabel="precision", title="Precision-recall (held-out rows)")
    ax.legend(loc="upper right")
    return _save(fig, path)


def calibration_png(
    mean_score: Sequence[float],
    fraction_positive: Sequence[float],
    counts: Sequence[float],
    ece: float,
    path: str | Path,
    title: str = "Calibration (held-out rows)",
) -> Path:
    """Reliability diagram (observed vs predicted per bin) over a histogram of bin sizes."""
    fig = _figure(5.0, 5.5)
    top = fig.add_axes((0.14, 0.36, 0.8, 0.56))
    bottom = fig.add_axes((0.14, 0.09, 0.8, 0.18), sharex=top)
    top.plot([0, 1], [0, 1], ls="--", color="grey", label="perfectly calibrated")
    top.plot(mean_score, fraction_positive, marker="o", lw=2, label=f"model (ECE {ece:.3f})")
    top.set(xlim=(0, 1), ylim=(0, 1.01), ylabel="observed fraction positive", title=title)
    top.legend(loc="upper left")
    bottom.bar(mean_score, counts, width=0.02)
    bottom.set(xlabel="mean predicted probability (bin)", ylabel="rows")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def importance_png(names: Sequence[str], importance: Sequence[float], path: str | Path, top: int = 25) -> Path:
    """Horizontal bars of the ``top`` most important features (largest at the top)."""
    values = np.asarray(importance, dtype=float)
    order = np.argsort(-np.abs(values))[:top][::-1]
    fig = _figure(7.0, max(3.0, 0.28 * len(order) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.barh([names[i] for i in order], values[order])
    ax.set(xlabel="importance", title=f"Feature importance (top {len(order)} of {len(values)})")
    ax.tick_params(axis="y", labelsize=8)
    return _save(fig, path)


def drift_png(
    names: Sequence[str],
    values: Sequence[float],
    drifted: Sequence[bool],
    threshold: float,
    metric: str,
    path: str | Path,
) -> Path:
    """Horizontal bars of one drift metric for the top features; drifted ones in red, the threshold dashed."""
    n = len(names)
    fig = _figure(6.5, max(2.5, 0.3 * n + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(n)[::-1]
    colors = ["#c0392b" if d else "#7f8c8d" for d in drifted]
    ax.barh(y, np.asarray(values, dtype=float), color=colors)
    ax.axvline(threshold, ls="--", color="black", lw=1, label=f"threshold {threshold:g}")
    ax.set_yticks(y, labels=[str(x)[:40] for x in names])
    ax.set(xlabel=metric, title=f"Input drift, top {n} features (red: drifted)")
    ax.legend(loc="lower right")
    return _save(fig, path)


def metric_history_png(
    dates: Sequence[str], values: Sequence[float], metric: str, floor: float | None, path: str | Path
) -> Path:
    """One metric per window over time (e.g. realised AUC), with its floor."""
    fig = _figure(6.0, 3.5)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(list(dates), np.asarray(values, dtype=float), marker="o", lw=2, label=metric)
    if floor is not None:
        ax.axhline(floor, ls="--", color="#c0392b", label=f"floor {floor:g}")
    ax.set(xlabel="score date (outcomes matured)", ylabel=metric, title=f"Realised {metric} over time")
    ax.legend(loc="lower left")
    for label in ax.get_xticklabels():
        label.set_rotation(30)
    return _save(fig, path)


def evaluation_pngs(labels: Sequence[float], scores: Sequence[float], folder: str | Path) -> dict[str, bytes]:
    """Calibration, ROC and precision-recall plots of held-out rows, from per-row labels and scores.

    Returns:
        ``{"calibration": png, "roc": png, "pr": png}`` (empty when there are no rows or one class).
    """
    import numpy as np

    from pipelines.evaluate import curves_of_rows

    y = np.asarray(labels, dtype=float)
    if y.size == 0 or y.min() == y.max():
        return {}
    folder = Path(folder)
    c = curves_of_rows(y, scores)
    auc = float(np.sum(np.diff(c.fpr) * (c.tpr[1:] + c.tpr[:-1]) / 2))
    ap = float(np.sum(np.diff(c.recall) * c.precision[1:]))
    ece = float(np.sum(c.bin_count * np.abs(c.bin_mean_score - c.bin_fraction_positive)) / c.bin_count.sum())
    pos = float(y.sum())
    out = {
        "calibration": calibration_png(
            c.bin_mean_score, c.bin_fraction_positive, c.bin_count, ece, folder / "calibration.png"
        ),
        "roc": roc_png(c.fpr, c.tpr, auc, folder / "roc.png"),
        "pr": pr_png(c.recall, c.precision, ap, pos / y.size, folder / "pr.png"),
    }
    return {k: p.read_bytes() for k, p in out.items()}
