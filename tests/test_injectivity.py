"""Tests for identifiability.injectivity: the numeric check of A3 (injectivity of the mixing)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conceptid.identifiability.injectivity import (
    Collision,
    InjectivityReport,
    check_injectivity,
    check_mixing_injectivity,
    jacobian_fd,
)
from conceptid.simulations.mixing import LinearMixing, MLPMixing
from conceptid.simulations.presets import chain, quad

QUAD = ("quad1", "quad2", "quad3", "quad4", "size", "color", "shape", "orientation")
SHAPE, ORIENT = QUAD.index("shape"), QUAD.index("orientation")


def _angle_deg(o):
    """Object angle of the quad renderer: pi sigmoid(o) - pi / 2, in degrees."""
    return np.degrees(np.pi / (1.0 + np.exp(-np.asarray(o))) - np.pi / 2)


class CountingMixing:
    """Wraps a function and counts calls and evaluated rows."""

    def __init__(self, f):
        self.f, self.calls, self.rows = f, 0, 0

    def __call__(self, e):
        self.calls += 1
        self.rows += len(e)
        return self.f(e)


def square_first(e):
    """``[e0^2, e1]``: not injective, ``e0 -> -e0`` collides."""
    return np.stack([e[:, 0] ** 2, e[:, 1]], axis=1)


def collapse_sum(e):
    """``[s, s, sin s]`` with ``s = e0 + e1``: rank 1 everywhere, null direction (1, -1)/sqrt 2."""
    s = e[:, 0] + e[:, 1]
    return np.stack([s, s, np.sin(s)], axis=1)


# -- jacobian_fd ------------------------------------------------------------------------------


def test_jacobian_fd_is_exact_for_a_linear_map_and_flattens_outputs():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 3))

    def f(e):  # output shape (2, 3), flattened in C order
        return (e @ A.T).reshape(-1, 2, 3)

    e = rng.standard_normal(3)
    J = jacobian_fd(f, e)
    assert J.shape == (6, 3)
    np.testing.assert_allclose(J, A, atol=1e-9)


def test_jacobian_fd_matches_the_analytic_jacobian_and_batches_points():
    rng = np.random.default_rng(1)

    def f(e):
        return np.stack([np.sin(e[:, 0]) * e[:, 1], np.exp(0.5 * e[:, 2]), e[:, 0] * e[:, 2]], 1)

    E = rng.standard_normal((7, 3))
    counted = CountingMixing(f)
    J = jacobian_fd(counted, E)
    assert J.shape == (7, 3, 3)
    assert counted.calls <= 2  # all points in one or two batched calls, never one per point
    assert counted.rows == 7 * 2 * 3
    for k, (a, b, c) in enumerate(E):
        exact = np.array(
            [
                [np.cos(a) * b, np.sin(a), 0.0],
                [0.0, 0.0, 0.5 * np.exp(0.5 * c)],
                [c, 0.0, a],
            ]
        )
        np.testing.assert_allclose(J[k], exact, atol=1e-7)
        np.testing.assert_allclose(jacobian_fd(f, E[k]), J[k], atol=1e-12)


def test_jacobian_fd_rejects_bad_input():
    with pytest.raises(ValueError, match="e must be finite"):
        jacobian_fd(square_first, np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="e must have shape"):
        jacobian_fd(square_first, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="h must be a positive"):
        jacobian_fd(square_first, np.zeros(2), h=-1e-3)


# -- injective mixings: no defect ----------------------------------------------------------------


def test_linear_mixing_has_no_defect_and_its_conditioning():
    rng = np.random.default_rng(2)
    f = LinearMixing.random(5, 9, rng, condition_number=7.0)
    report = check_injectivity(f, rng.standard_normal((60, 5)), np.random.default_rng(3))
    assert isinstance(report, InjectivityReport)
    assert report.holds is None
    assert report.jacobian_rank_deficient == 0 and report.rank_deficiencies == []
    assert report.collisions == []
    # the Jacobian is A everywhere: sigma_min / sigma_max = 1 / cond(A) to FD accuracy
    assert report.min_relative_singular_value == pytest.approx(1 / 7.0, rel=1e-8)
    assert report.n_points == 60 and report.worst_point.shape == (5,)
    assert np.linalg.norm(report.null_direction) == pytest.approx(1.0)
    assert "float64" in report.method and "h=0.0001" in report.method
    assert any("no defect found" in r for r in report.reasons)


@given(
    d=st.integers(1, 4),
    extra=st.integers(0, 4),
    kappa=st.floats(1.0, 1e3),
    seed=st.integers(0, 2**32 - 1),
)
def test_linear_mixing_relative_singular_value_is_one_over_cond(d, extra, kappa, seed):
    rng = np.random.default_rng(seed)
    f = LinearMixing.random(d, d + extra, rng, condition_number=kappa)
    report = check_injectivity(
        f, rng.standard_normal((4, d)), rng, n_collision_starts=2 if d > 1 else 1
    )
    assert report.holds is None
    # (for d = 1 the single singular value makes the condition number 1 whatever kappa)
    assert report.min_relative_singular_value == pytest.approx(1 / f.condition_number, rel=1e-6)


def _mlp_jacobian(f: MLPMixing, e: np.ndarray) -> np.ndarray:
    """Analytic Jacobian of a smooth MLPMixing at one point."""
    u, J = e.copy(), np.eye(e.size)
    last = len(f.weights) - 1
    for layer, (W, b) in enumerate(zip(f.weights, f.biases)):
        u = W @ u + b
        J = W @ J
        if layer < last:
            deriv = f.slope + (1 - f.slope) / (1 + np.exp(-u))
            J = deriv[:, None] * J
            u = f._act(u)
    return J


@pytest.mark.parametrize("activation", ["leaky_relu", "smooth"])
def test_mlp_mixing_has_no_defect_and_is_as_well_conditioned_as_its_layers(activation):
    rng = np.random.default_rng(4)
    f = MLPMixing.random(4, 7, rng, activation=activation, n_layers=3)
    points = rng.standard_normal((60, 4))
    report = check_injectivity(f, points, np.random.default_rng(5))
    assert report.holds is None
    assert report.jacobian_rank_deficient == 0
    assert report.collisions == []
    # J = W3 D2 W2 D1 W1 with D diagonal in [slope, 1]: its condition number is at most the
    # product of the layers' times (1 / slope)^2
    bound = f.slope ** (len(f.weights) - 1)
    for W in f.weights:
        s = np.linalg.svd(W, compute_uv=False)
        bound *= s[-1] / s[0]
    assert bound <= report.min_relative_singular_value <= 1.0
    if activation == "smooth":  # C-infinity: FD matches the analytic Jacobian closely
        exact = []
        for e in points:
            s = np.linalg.svd(_mlp_jacobian(f, e), compute_uv=False)
            exact.append(s[-1] / s[0])
        assert report.min_relative_singular_value == pytest.approx(min(exact), rel=1e-6)


# -- non-injective maps: defects found -------------------------------------------------------


def test_a_folded_map_has_a_verified_collision():
    rng = np.random.default_rng(6)
    points = rng.standard_normal((30, 2))
    report = check_injectivity(square_first, points, np.random.default_rng(7), names=["a", "b"])
    assert report.holds is False
    assert report.jacobian_rank_deficient == 0  # rank-deficient only on the line e0 = 0
    assert report.collisions
    for c in report.collisions:
        assert isinstance(c, Collision)
        # e0 -> -e0, e1 unchanged
        assert c.e2[0] == pytest.approx(-c.e1[0], abs=1e-6)
        assert c.e2[1] == pytest.approx(c.e1[1], abs=1e-6)
        assert c.input_distance == pytest.approx(np.linalg.norm(c.e2 - c.e1))
        assert c.input_distance > 1e-2
        # verified: re-evaluate independently
        y = square_first(np.stack([c.e1, c.e2]))
        assert np.linalg.norm(y[1] - y[0]) <= 1e-6 * np.linalg.norm(y[0])
    assert any("collision" in r and "'a'" in r for r in report.reasons)


def test_a_collapsing_map_is_rank_deficient_everywhere():
    rng = np.random.default_rng(8)
    points = rng.standard_normal((25, 2))
    report = check_injectivity(
        collapse_sum, points, np.random.default_rng(9), names=["x", "y"], n_collision_starts=4
    )
    assert report.holds is False
    assert report.jacobian_rank_deficient == 25
    assert report.min_relative_singular_value < 1e-10
    target = np.array([1.0, -1.0]) / np.sqrt(2)
    assert abs(report.null_direction @ target) == pytest.approx(1.0, abs=1e-8)
    for r in report.rank_deficiencies:
        assert r.rank == 1 and r.null_space.shape == (2, 1)
        assert abs(r.null_space[:, 0] @ target) == pytest.approx(1.0, abs=1e-8)
        np.testing.assert_allclose(r.weights, [0.5, 0.5], atol=1e-8)
    assert "rank-deficient at 25/25 points" in report.reasons[0]
    assert "'x' (0.50)" in report.reasons[0] and "'y' (0.50)" in report.reasons[0]
    assert report.collisions  # moving along the null direction


def test_a_map_to_fewer_outputs_than_inputs_is_caught():
    def f(e):  # R^3 -> R^2
        return np.stack([e[:, 0] + e[:, 2], 2 * e[:, 1]], axis=1)

    points = np.random.default_rng(12).standard_normal((10, 3))
    report = check_injectivity(f, points, np.random.default_rng(13), n_collision_starts=6)
    assert report.holds is False
    assert report.jacobian_rank_deficient == 10
    target = np.array([1.0, 0.0, -1.0]) / np.sqrt(2)
    assert abs(report.null_direction @ target) == pytest.approx(1.0, abs=1e-8)
    assert report.collisions


# -- memory bounds and integer outputs ------------------------------------------------------


def test_jacobian_chunks_hold_one_megapixel_point_and_many_small_ones():
    from conceptid.identifiability import injectivity as inj

    # a megapixel RGB image with 10 inputs: one (p, d) Jacobian at a time (240 MiB)
    assert inj._jacobian_chunk(1000 * 1000 * 3, 10) == 1
    # small outputs: many points per chunk, never more than the value budget
    k = inj._jacobian_chunk(12, 3)
    assert k * 12 * 3 <= inj._MAX_JACOBIAN_VALUES < (k + 1) * 12 * 3


def test_chunked_and_batched_evaluation_give_the_same_report(monkeypatch):
    from conceptid.identifiability import injectivity as inj

    rng = np.random.default_rng(21)
    A = rng.standard_normal((5, 3))

    def f(e):  # a smooth injective map R^3 -> R^5 (linear, then a strictly increasing map)
        return np.arcsinh(e @ A.T)

    points = rng.standard_normal((9, 3))
    whole = check_injectivity(f, points, np.random.default_rng(1), n_collision_starts=3)
    # one point per Jacobian chunk, and one input (or one finite-difference pair) per call of f
    monkeypatch.setattr(inj, "_MAX_JACOBIAN_VALUES", 5 * 3)
    monkeypatch.setattr(inj, "_MAX_BATCH_VALUES", 5)
    sizes = []

    def g(e):
        sizes.append(len(e))
        return f(e)

    chunked = check_injectivity(g, points, np.random.default_rng(1), n_collision_starts=3)
    assert max(sizes) == 2 and sizes.count(1) > 9
    assert chunked.holds is whole.holds is None
    assert chunked.min_relative_singular_value == pytest.approx(
        whole.min_relative_singular_value, rel=1e-9
    )
    np.testing.assert_array_equal(chunked.worst_point, whole.worst_point)


def test_collision_search_on_a_subset_of_a_large_output_verifies_on_the_whole(monkeypatch):
    from conceptid.identifiability import injectivity as inj

    W = np.random.default_rng(5).uniform(0.5, 2.0, (2, 40))

    def f(e):  # 40 outputs that depend on e0 only through e0^2: e0 -> -e0 collides
        return np.stack([e[:, 0] ** 2, e[:, 1]], axis=1) @ W

    monkeypatch.setattr(inj, "_MAX_SEARCH_OUTPUTS", 6)  # the fit sees 6 of the 40 outputs
    points = np.random.default_rng(6).standard_normal((20, 2))
    report = check_injectivity(f, points, np.random.default_rng(7), n_collision_starts=10)
    assert report.collisions
    for c in report.collisions:
        y = f(np.stack([c.e1, c.e2]))
        assert np.linalg.norm(y[1] - y[0]) <= 1e-6 * np.linalg.norm(y[0])
        assert c.e2[0] == pytest.approx(-c.e1[0], abs=1e-5)


def quantised(e):
    """A smooth injective map rounded to uint8: piecewise constant."""
    return np.clip(np.round(100 + 40 * np.tanh(e)), 0, 255).astype(np.uint8)


def test_integer_outputs_are_piecewise_constant_and_fail_a3():
    points = np.random.default_rng(3).standard_normal((12, 2))
    report = check_injectivity(quantised, points, np.random.default_rng(4), names=["a", "b"])
    assert report.holds is False
    assert "uint8" in report.reasons[0] and "piecewise constant" in report.reasons[0]
    assert "cardinality" in report.method
    assert report.collisions
    c = report.collisions[0]
    assert c.input_distance > 1e-2
    y = quantised(np.stack([c.e1, c.e2]))
    np.testing.assert_array_equal(y[0], y[1])


# -- the quad renderer ---------------------------------------------------------------------------


def _near_disc(orientations=(0.7, 0.0, -1.0)) -> np.ndarray:
    """Probe points with shape = -10 (p = 2.0003, a near-disc) and a visible object."""
    base = np.array([0.5, -0.3, 0.8, -1.0, 0.2, 1.5, -10.0, 0.0])
    pts = np.repeat(base[None], len(orientations), axis=0)
    pts[:, ORIENT] = orientations
    return pts


@pytest.fixture(scope="module")
def quad_model():
    return quad(image_size=32)


@pytest.fixture(scope="module")
def quad_report(quad_model):
    return check_mixing_injectivity(quad_model, np.random.default_rng(0), extra_points=_near_disc())


def test_quad_report_finds_defects(quad_report):
    assert quad_report.holds is False
    assert quad_report.names == QUAD
    assert quad_report.coordinates == "e"
    assert quad_report.n_points == 200 + 3
    assert "float32" in quad_report.method and "h=0.01" in quad_report.method
    assert quad_report.jacobian_rank_deficient >= 3
    assert quad_report.collisions


def test_quad_near_disc_hides_the_orientation(quad_report):
    n = quad_report.n_points
    extra = {r.index: r for r in quad_report.rank_deficiencies if r.index >= n - 3}
    assert sorted(extra) == [n - 3, n - 2, n - 1]  # all three near-disc points caught
    for r in extra.values():
        assert r.e[SHAPE] == -10.0
        assert r.weights[ORIENT] > 0.95  # orientation lies in the near-null subspace
        assert r.relative_singular_values[-1] < 3e-4
    assert any(
        "rank-deficient" in line or "near-null subspace along" in line
        for line in quad_report.reasons
    )
    assert any(
        "near-null subspace along" in line and "'orientation'" in line and "e[shape] = -10" in line
        for line in quad_report.reasons
    )


def _is_quarter_turn(c: Collision, angle_tol: float = 0.05, other_tol: float = 1e-2) -> bool:
    diff = c.e2 - c.e1
    others = np.delete(diff, ORIENT)
    turn = abs(_angle_deg(c.e2[ORIENT]) - _angle_deg(c.e1[ORIENT]))
    return bool(np.max(np.abs(others)) < other_tol and abs(turn - 90.0) < angle_tol)


def test_quad_rotational_symmetry_is_a_verified_collision(quad_report, quad_model):
    quarter = [c for c in quad_report.collisions if _is_quarter_turn(c)]
    assert len(quarter) >= 2
    c = quarter[0]
    images = quad_model.mixing(np.stack([c.e1, c.e2]))
    assert np.linalg.norm(images[1] - images[0]) <= 1e-6 * np.linalg.norm(images[0])
    # and it is not the same image as a rotation by 45 degrees would give
    assert c.relative_output_distance <= 1e-6
    assert any("collision" in r and "mostly 'orientation'" in r for r in quad_report.reasons)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quad_symmetry_is_found_from_other_seeds(quad_model, seed):
    """A smaller search (3 starts per coordinate) still finds the quarter turn."""
    rng = np.random.default_rng(seed)
    points = np.concatenate(
        [quad_model.sample(c, 3, rng).e for c in quad_model.contexts]
    )  # 21 points from the training contexts
    report = check_injectivity(quad_model.mixing, points, rng, names=QUAD, n_collision_starts=24)
    assert report.holds is False
    assert any(_is_quarter_turn(c) for c in report.collisions)
    # points from the model's contexts are well inside the renderer's injective regime
    assert report.jacobian_rank_deficient == 0


def test_quad_near_disc_is_caught_at_every_orientation(quad_model):
    orientations = np.linspace(-2.0, 2.0, 9)
    report = check_injectivity(
        quad_model.mixing, _near_disc(orientations), np.random.default_rng(0), n_collision_starts=0
    )
    assert report.jacobian_rank_deficient == len(orientations)
    for r in report.rank_deficiencies:
        assert r.weights[ORIENT] > 0.95


# -- other models ---------------------------------------------------------------------------


def test_mixing_check_uses_concept_coordinates_for_a_non_identity_readout():
    model = chain(np.random.default_rng(10), 3, block_size=2, mixing="mlp", nuisance_dim=2, p=12)
    report = check_mixing_injectivity(
        model, np.random.default_rng(11), n_points=20, n_collision_starts=8
    )
    assert report.coordinates == "(c, n) = T e"
    assert report.names == ("c0[0]", "c0[1]", "c1[0]", "c1[1]", "c2[0]", "c2[1]", "n0", "n1")
    assert report.holds is None
    assert report.jacobian_rank_deficient == 0 and report.collisions == []
    assert report.n_points == 20


# -- bad input --------------------------------------------------------------------------------


def test_bad_input_raises_value_error_naming_the_argument(quad_model):
    rng = np.random.default_rng(0)
    f = LinearMixing.random(3, 5, rng)
    good = rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match="points must have shape"):
        check_injectivity(f, good[0], rng)
    with pytest.raises(ValueError, match="points must have shape"):
        check_injectivity(f, good[None], rng)
    with pytest.raises(ValueError, match="points must have shape"):
        check_injectivity(f, np.zeros((0, 3)), rng)
    with pytest.raises(ValueError, match="points"):
        check_injectivity(f, rng.standard_normal((4, 2)), rng)  # f takes 3 inputs
    bad = good.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="points must be finite"):
        check_injectivity(f, bad, rng)
    with pytest.raises(ValueError, match="names"):
        check_injectivity(f, good, rng, names=["a", "b"])
    with pytest.raises(ValueError, match="rng"):
        check_injectivity(f, good, 0)
    with pytest.raises(ValueError, match="rank_rtol"):
        check_injectivity(f, good, rng, rank_rtol=0.0)
    with pytest.raises(ValueError, match="n_collision_starts"):
        check_injectivity(f, good, rng, n_collision_starts=-1)
    with pytest.raises(ValueError, match="f returned NaN"):
        check_injectivity(lambda e: np.full((len(e), 2), np.nan), good, rng)
    with pytest.raises(ValueError, match="n_points"):
        check_mixing_injectivity(quad_model, rng, n_points=1)
    with pytest.raises(ValueError, match="broad_scale"):
        check_mixing_injectivity(quad_model, rng, broad_scale=-1.0)
    with pytest.raises(ValueError, match="extra_points must be finite"):
        check_mixing_injectivity(quad_model, rng, n_points=2, extra_points=np.full((1, 8), np.nan))
    with pytest.raises(ValueError, match="extra_points must have 8 columns"):
        check_mixing_injectivity(quad_model, rng, n_points=2, extra_points=np.zeros((1, 7)))
