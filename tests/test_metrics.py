"""Metrics against mathematics and against an independent computation."""

from __future__ import annotations

import numpy as np
import pytest

from conceptid.models.metrics import active_dims, bits_per_dim, mcc, recovery, sliced_wasserstein


def test_recovery_is_one_on_the_class_and_hungarian_finds_the_permutation():
    rng = np.random.default_rng(0)
    c = rng.standard_normal((400, 3))
    learned = np.column_stack(
        [2 * c[:, 2] + 1, -c[:, 0], 0.5 * c[:, 1] - 3, rng.standard_normal(400)]
    )
    res = recovery(learned, c, hungarian=True)
    np.testing.assert_allclose(res.r2, 1.0, atol=1e-12)
    assert [b[0] for b in res.blocks] == [1, 2, 0]


def test_mcc_matches_correlations():
    rng = np.random.default_rng(1)
    c = rng.standard_normal((5000, 2))
    noisy = c[:, ::-1] + 1.0 * rng.standard_normal((5000, 2))
    # corr(c + noise, c) = 1 / sqrt(2) for unit noise
    assert mcc(noisy, c) == pytest.approx(1 / np.sqrt(2), abs=0.02)
    assert mcc(c, c) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least as many"):
        mcc(c[:, :1], c)


def test_sliced_wasserstein_properties():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2000, 3))
    assert sliced_wasserstein(a, a) == pytest.approx(0.0, abs=1e-12)
    # a shift by s along one axis: SW2 = s * sqrt(E[theta_1^2]) = s / sqrt(3) on the 3-sphere
    shifted = a + np.array([3.0, 0, 0])
    assert sliced_wasserstein(a, shifted, n_projections=2000) == pytest.approx(
        3 / np.sqrt(3), rel=0.05
    )
    near, far = a + np.array([0.5, 0, 0]), a + np.array([2.0, 0, 0])
    assert sliced_wasserstein(a, near) < sliced_wasserstein(a, far)
    with pytest.raises(ValueError, match="different dimensions"):
        sliced_wasserstein(a, a[:, :2])


def test_active_dims_and_bits_per_dim():
    means = np.column_stack([np.linspace(-1, 1, 100), np.full(100, 0.3), 1e-3 * np.arange(100)])
    assert active_dims(means) == 1 + (np.var(1e-3 * np.arange(100)) > 0.01)
    assert bits_per_dim(np.log(2.0) * 16, 16) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="n_dims"):
        bits_per_dim(1.0, 0)
