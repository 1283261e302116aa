"""PSI is the standard population stability index (pure part of surveillance)."""

import math

import pytest

from pipelines.surveillance import psi


def test_identical_histograms_are_stable():
    assert psi([10, 20, 30], [10, 20, 30]) == pytest.approx(0.0)
    assert psi([10, 20, 30], [20, 40, 60]) == pytest.approx(0.0)


def test_shifted_histogram_matches_the_formula():
    ref, cur = [50, 30, 20], [20, 30, 50]
    expected = sum((c / 100 - r / 100) * math.log((c / 100) / (r / 100)) for r, c in zip(ref, cur))
    assert psi(ref, cur) == pytest.approx(expected)
    assert psi(ref, cur) > 0.2


def test_empty_bins_stay_finite():
    assert math.isfinite(psi([100, 0], [50, 50]))


def test_bins_must_match():
    with pytest.raises(ValueError):
        psi([1, 2], [1, 2, 3])
