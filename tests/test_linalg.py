"""The decisions that differ between the two arithmetics (identifiability/linalg.py): each is a
method of the interface, and both implementations answer the same question."""

from __future__ import annotations

import numpy as np
import pytest

from conceptid.identifiability.linalg import Exact, Numeric

ARITHMETICS = [Exact(), Numeric()]


def _rank2_cov():
    """A (3, 3) covariance of rank 2: x = (a, b, a + b)."""
    G = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 2.0]])
    return G @ G.T


@pytest.mark.parametrize("A", ARITHMETICS, ids=["exact", "numeric"])
def test_coordinates_keep_rank_many_with_an_invertible_covariance(A):
    S = A.mat(_rank2_cov())
    T = A.coordinates(S)
    assert A.shape(T) == (2, 3)
    C = A.mul(A.mul(T, S), A.T(T))
    assert A.rank(C) == 2


def test_exact_coordinates_are_a_selection_and_numeric_ones_whiten():
    T = Exact().coordinates(Exact().mat(_rank2_cov()))
    assert np.array_equal(Exact().to_float(T), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    N = Numeric()
    W, W_plus = N.whitening(_rank2_cov())
    assert np.allclose(W @ _rank2_cov() @ W.T, np.eye(2))
    assert np.allclose(W @ W_plus, np.eye(2))
    assert np.array_equal(N.coordinates(_rank2_cov()), W)


def test_recentre_only_where_offsets_change_decisions():
    mean, origin = np.array([[3.0], [1.0]]), np.array([[1.0], [1.0]])
    assert np.array_equal(Numeric().recentre(mean, origin), [[2.0], [0.0]])
    E = Exact()
    assert E.recentre(E.mat(mean), E.mat(origin)) == E.mat(mean)


@pytest.mark.parametrize("A", ARITHMETICS, ids=["exact", "numeric"])
def test_leading_row_space_spans_the_restricted_rows(A):
    M = np.array([[1.0, 2.0, 5.0], [2.0, 4.0, 7.0], [0.0, 1.0, 3.0]])
    R = A.to_float(A.leading_row_space(A.mat(M), 2, 3))
    assert R.shape[1] == 2
    assert np.linalg.matrix_rank(R) == 2  # rows (1, 2) and (0, 1) span R^2


@pytest.mark.parametrize("A", ARITHMETICS, ids=["exact", "numeric"])
def test_new_directions_counts_what_the_rows_add(A):
    H = A.mat([[1.0, 0.0, 0.0]])
    L = A.mat([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 2.0, 0.0]])  # adds one direction to H
    found = A.new_directions(L, H, 1)
    assert found is not None
    P, score = found
    assert A.shape(P) == (1, 3) and A.rank(A.vstack(H, P)) == 2
    assert score == pytest.approx(0.0, abs=1e-12)
    assert A.new_directions(L, H, 2) is None  # only one new direction
    both = A.new_directions(L, None, 2)  # without H: (1, 0, 0) and (0, 1, 0)
    assert both is not None and A.rank(both[0]) == 2


def test_numeric_new_directions_scores_the_singular_value_gap():
    L = np.diag([3.0, 1.0, 0.1])
    P, score = Numeric().new_directions(L, None, 2)
    assert score == pytest.approx(0.1)
    assert np.allclose(np.abs(P), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def test_exceeds_is_exact_nonzero_or_a_frobenius_threshold():
    E, N = Exact(), Numeric()
    small = [[0.0, 1e-30]]
    assert E.exceeds(E.mat(small), 0.1) and not E.exceeds(E.mat([[0.0, 0.0]]), 0.0)
    assert not N.exceeds(np.array(small), 0.1)
    assert N.exceeds(np.array([[0.3, 0.4]]), 0.49) and not N.exceeds(np.array([[0.3, 0.4]]), 0.5)


def test_is_finite_and_gap_description():
    assert Exact().is_finite(Exact().mat([[1.0]]))
    assert Numeric().is_finite(np.ones((2, 2)))
    assert not Numeric().is_finite(np.array([[1.0, np.nan]]))
    assert Exact().gap_description == Exact().description
    assert Numeric().gap_description == "numeric (float64, singular-value gaps)"


def test_exact_rank_over_the_integers_is_the_rank_over_the_rationals():
    """Exact.rank scales each row of a matrix of 100 entries or more to integers before
    eliminating (faster); the rank is sympy's over QQ, full or deficient, small or large."""
    from sympy import QQ
    from sympy.polys.matrices import DomainMatrix

    rng = np.random.default_rng(0)
    A = Exact()

    def rational(shape):
        nums, dens = rng.integers(-9, 10, shape), rng.integers(1, 50, shape)
        return DomainMatrix([[QQ(int(a), int(b)) for a, b in zip(r, d)]
                             for r, d in zip(nums, dens)], shape, QQ)  # fmt: skip

    for rows, cols, rank in [(3, 4, 2), (12, 12, 12), (12, 12, 7), (16, 20, 11), (10, 10, 0)]:
        M = rational((rows, rank)) * rational((rank, cols))  # rank `rank`, exactly
        if rank == 0:
            M = DomainMatrix.zeros((rows, cols), QQ)
        assert A.rank(M) == M.rank() == rank
