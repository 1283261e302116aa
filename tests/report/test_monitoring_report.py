"""The monitoring report renderers: markdown for issues and work items, self-contained HTML."""

from __future__ import annotations

import base64
import re

from promoter.report import monitoring as rendering


def _summary(**over):
    feature = {
        "column_name": "bmi",
        "population_stability_index": 0.42,
        "js_distance": 0.21,
        "wasserstein_distance": 1.5,
        "tv_distance": 0.3,
        "chi_squared_pvalue": 1e-12,
        "importance": 0.12,
        "drifted": True,
    }
    quiet = {**feature, "column_name": "age<x>", "population_stability_index": 0.01, "drifted": False}
    s = {
        "model_name": "readmit-30d",
        "environment": "prod",
        "model_version": 4,
        "score_date": "2026-11-03",
        "verdict": "ALERT",
        "alerts": ["input drift vs the training snapshot: 1 of 2 features"],
        "notes": ["a note"],
        "input_drift": {
            "BASELINE": {
                "features": [feature, quiet],
                "tested": 2,
                "drifted_count": 1,
                "drifted_share": 0.5,
                "threshold_p": 0.005,
                "window_cmp": "training snapshot",
                "rule": {
                    "metric": "js_distance",
                    "threshold": 0.1,
                    "max_drifted_share": 0.1,
                    "correction": "bonferroni",
                },
            }
        },
        "skipped": {"CONSECUTIVE": "no earlier monitored day of this version"},
        "prediction": {
            "score_psi": {"BASELINE": 0.05},
            "groups": [
                {
                    "slice_key": "payer",
                    "slice_value": "A",
                    "count": 90,
                    "top_tier_share": 0.2,
                    "reference_top_tier_share": 0.1,
                    "change": 0.1,
                }
            ],
        },
        "performance": [
            {
                "score_date": "2026-10-01",
                "labelled": 120,
                "coverage": 0.8,
                "metrics": {"roc_auc": 0.71, "roc_auc_lower": 0.65, "roc_auc_upper": 0.77, "brier": 0.1},
                "subgroups": {"payer": {"A": {"n": 40, "roc_auc": 0.6, "roc_auc_lower": 0.5, "roc_auc_upper": 0.7}}},
            }
        ],
        "label_delay_days": 30,
        "retrain": {"request": True, "reason": "2 of the last 5 windows breached", "suppressed": None},
    }
    s.update(over)
    return s


def test_markdown_starts_with_the_marker_and_has_every_section():
    md = rendering.markdown(_summary())
    assert md.splitlines()[0] == rendering.marker("readmit-30d", "prod")
    assert "**ALERT**" in md.splitlines()[1]
    for heading in (
        "### Input drift (baseline)",
        "### Input drift (consecutive)",
        "### Prediction drift",
        "### Realised performance",
        "### Realised performance by subgroup (2026-10-01)",
        "### Retrain",
    ):
        assert heading in md, heading
    assert "| bmi | 0.420 | 0.210 | 1.500 | 0.300 | 1.0e-12 | 0.120 | **yes** |" in md
    assert "no earlier monitored day of this version" in md
    assert "0.710 [0.650, 0.770]" in md  # a small-count interval is shown with the estimate
    assert "requested: 2 of the last 5 windows breached" in md


def test_markers_differ_per_model_and_environment():
    assert rendering.marker("a", "prod") != rendering.marker("a", "staging") != rendering.marker("b", "prod")


def test_the_top_limit_caps_the_feature_table():
    md = rendering.markdown(_summary(), top=1)
    assert "| bmi |" in md and "age<x>" not in md


def test_without_outcomes_the_report_says_so():
    md = rendering.markdown(_summary(performance=[], verdict="OK", alerts=[]))
    assert "No alerts." in md and "no window has matured outcomes yet" in md


def test_html_is_self_contained_escaped_and_embeds_the_plots():
    png = b"\x89PNG\r\n\x1a\nfake-bytes"
    page = rendering.html_report(_summary(), [("Input drift <top>", png)])
    assert "age&lt;x&gt;" in page and "age<x>" not in page
    assert "Input drift &lt;top&gt;" in page
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in page
    # nothing to fetch: no external src or href, no script
    assert not re.search(r"(src|href)=['\"](https?:|//)", page)
    assert "<script" not in page
    assert "class='ALERT'" in page
