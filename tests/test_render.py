"""Tests for simulations.render: the quad-scene renderer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conceptid.simulations.render import (
    QUAD_CONCEPTS,
    QUAD_NUISANCE,
    from_uint8,
    render_quad,
    render_quad_loop,
    to_uint8,
)

NAMES = QUAD_CONCEPTS + QUAD_NUISANCE


def scene(nuisance: bool = False, **values: float) -> np.ndarray:
    """One scene, shape (1, 8) or (1, 10): uniform background (all quads 2.0, hue ~0.70),
    a contrasting object (color -2.0, hue ~0.10), every other value 0 unless given."""
    row = dict.fromkeys(NAMES, 0.0)
    row.update(quad1=2.0, quad2=2.0, quad3=2.0, quad4=2.0, color=-2.0)
    unknown = set(values) - set(NAMES)
    assert not unknown, unknown
    row.update(values)
    names = NAMES if nuisance or set(values) & set(QUAD_NUISANCE) else QUAD_CONCEPTS
    return np.array([[row[name] for name in names]])


def object_alpha(image: np.ndarray) -> np.ndarray:
    """Object coverage of a `scene()` image with a uniform background, shape (H, W).

    Projects each pixel onto the segment from the background colour (the top-left corner
    pixel, always far from the object) to the object colour (the centre pixel of an
    un-shifted scene with the same colours)."""
    background = image[0, 0]
    colour = render_quad(scene(), 32)[0, 16, 16]
    direction = colour - background
    return (image - background) @ direction / (direction @ direction)


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


# ---------------------------------------------------------------------------------------------
# agreement with the per-image reference
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("n_cols", [8, 10])
def test_vectorised_matches_loop(size: int, n_cols: int) -> None:
    rng = np.random.default_rng(1000 * size + n_cols)
    e = rng.normal(size=(12, n_cols)) * 1.5
    e[0] = 0.0  # object centred on a pixel corner, axes through pixel edges
    e[1] = rng.choice([-1.0, 1.0], size=n_cols) * 1e300  # any finite real must work
    e[2, 6] = -40.0  # exact disc
    e[3, 6] = 40.0  # sharpest rounded square
    fast, slow = render_quad(e, size), render_quad_loop(e, size)
    assert fast.shape == slow.shape == (12, size, size, 3)
    assert slow.dtype == np.float32
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-5)


def test_vectorised_matches_loop_odd_size() -> None:
    e = np.random.default_rng(7).normal(size=(6, 10))
    np.testing.assert_allclose(render_quad(e, 33), render_quad_loop(e, 33), rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# output contract
# ---------------------------------------------------------------------------------------------


def test_shape_dtype_range() -> None:
    e = np.random.default_rng(2).normal(size=(5, 10)) * 3
    images = render_quad(e, 16)
    assert images.shape == (5, 16, 16, 3)
    assert images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert render_quad(np.zeros((0, 8)), 12).shape == (0, 12, 12, 3)
    assert render_quad(e.tolist(), 8).shape == (5, 8, 8, 3)  # array-likes are accepted


def test_deterministic_and_chunk_independent() -> None:
    e = np.random.default_rng(3).normal(size=(37, 10))
    reference = render_quad(e, 32)
    np.testing.assert_array_equal(render_quad(e, 32), reference)
    for chunk_size in (1, 5, 36, 1000):
        np.testing.assert_allclose(
            render_quad(e, 32, chunk_size=chunk_size), reference, rtol=0, atol=1e-6
        )


def test_progress_bar_does_not_change_result(capsys: pytest.CaptureFixture[str]) -> None:
    e = np.random.default_rng(4).normal(size=(9, 8))
    shown = render_quad(e, 16, chunk_size=4, progress=True)
    np.testing.assert_array_equal(shown, render_quad(e, 16, chunk_size=4))
    assert "render_quad" in capsys.readouterr().err


def test_nuisance_columns_at_zero_equal_concepts_only() -> None:
    e = np.random.default_rng(5).normal(size=(4, 8))
    with_nuisance = np.concatenate([e, np.zeros((4, 2))], axis=1)
    np.testing.assert_array_equal(render_quad(e, 32), render_quad(with_nuisance, 32))


# ---------------------------------------------------------------------------------------------
# properties of the scene
# ---------------------------------------------------------------------------------------------


def test_larger_size_concept_means_more_object_pixels() -> None:
    values = np.linspace(-3.0, 3.0, 7)
    e = np.concatenate([scene(size=v) for v in values])
    counts = [(object_alpha(image) > 0.5).sum() for image in render_quad(e, 32)]
    assert np.all(np.diff(counts) > 0), counts
    total = [object_alpha(image).sum() for image in render_quad(e, 32)]
    assert np.all(np.diff(total) > 0), total


def test_quad1_changes_only_the_top_left_quadrant() -> None:
    size = 32
    before, after = render_quad(np.concatenate([scene(quad1=2.0), scene(quad1=-1.0)]), size)
    change = np.abs(after - before).max(axis=-1)
    top_left = np.zeros((size, size), dtype=bool)
    top_left[: size // 2, : size // 2] = True
    assert np.all(change[~top_left] == 0.0)
    # Away from the object (radius 0.2, p = 5: it lies within 0.2 * sqrt(2) of the centre),
    # every top-left pixel shows the new colour.
    centres = (np.arange(size) + 0.5) / size
    distance = np.hypot(centres[None, :] - 0.5, centres[:, None] - 0.5)
    away = top_left & (distance > 0.2 * math.sqrt(2) + 2.0 / size)
    assert away.sum() > 50
    assert np.all(change[away] > 0.1)


def test_orientation_has_the_superellipse_symmetry() -> None:
    # Known non-injectivity, documented in the module: angles 90 degrees apart render the same
    # image. theta = pi * sigmoid(o) - pi / 2, so theta + 90 degrees <=> sigmoid(o) + 1/2.
    square_like = {"shape": 4.0, "size": 1.0}  # p ~ 7.9, r ~ 0.25
    rng = np.random.default_rng(6)
    for share in (0.25, *rng.uniform(0.02, 0.48, size=3)):
        first, second = render_quad(
            np.concatenate(
                [
                    scene(orientation=logit(share), **square_like),
                    scene(orientation=logit(share + 0.5), **square_like),
                ]
            ),
            32,
        )
        np.testing.assert_allclose(first, second, rtol=0, atol=1e-5)
    # ...while 45 degrees apart they clearly differ,
    straight, diagonal = render_quad(
        np.concatenate(
            [scene(orientation=0.0, **square_like), scene(orientation=logit(0.75), **square_like)]
        ),
        32,
    )
    assert np.abs(straight - diagonal).max() > 0.3
    # ...and a disc (p = 2) hides the orientation altogether.
    discs = render_quad(np.concatenate([scene(shape=-40.0, orientation=o) for o in (-2, 0, 1)]))
    np.testing.assert_allclose(discs[1:], discs[[0, 0]], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name, axis", [("pos_x", 1), ("pos_y", 0)])
def test_nuisance_moves_the_object_centroid(name: str, axis: int) -> None:
    size = 32
    e = np.concatenate([scene(**{name: v}) for v in (-1.0, 0.0, 1.0)])
    centroids = []
    for image in render_quad(e, size):
        alpha = np.clip(object_alpha(image), 0.0, 1.0)
        rows, cols = np.indices(alpha.shape)
        position = (rows, cols)
        centroids.append([(p * alpha).sum() / alpha.sum() for p in position])
    centroids = np.array(centroids)  # (3, 2): (row, column) in pixels
    other = 1 - axis
    expected_shift = 0.12 * math.tanh(1.0) * size  # pixels, ~2.9
    steps = np.diff(centroids[:, axis])
    np.testing.assert_allclose(steps, expected_shift, rtol=0.1)
    np.testing.assert_allclose(centroids[:, other], size / 2 - 0.5, atol=0.05)  # centred


# ---------------------------------------------------------------------------------------------
# storage
# ---------------------------------------------------------------------------------------------


def test_uint8_round_trip() -> None:
    quantised = to_uint8(np.array([0.0, 1.0, 0.5, 0.49 / 255, 1.2, -0.3, 0.8 / 255]))
    assert quantised.dtype == np.uint8
    assert quantised.tolist() == [0, 255, 128, 0, 255, 0, 1]
    images = render_quad(np.random.default_rng(8).normal(size=(3, 10)), 16)
    restored = from_uint8(to_uint8(images))
    assert restored.dtype == np.float32 and restored.shape == images.shape
    assert np.abs(restored - images).max() <= 0.5 / 255 + 1e-6
    np.testing.assert_array_equal(to_uint8(restored), to_uint8(images))


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------

GOOD_E = np.zeros((2, 8))
BAD_E = [
    np.zeros(8),
    np.zeros((2, 8, 1)),
    np.zeros((2, 9)),
    np.zeros((2, 0)),
    np.array([[0.0] * 7 + [np.nan]]),
    np.array([[0.0] * 9 + [np.inf]]),
    [["a"] * 8],
]


@pytest.mark.parametrize("render", [render_quad, render_quad_loop])
@pytest.mark.parametrize("bad", BAD_E, ids=lambda bad: repr(np.asarray(bad).shape))
def test_bad_e_raises(render, bad) -> None:
    with pytest.raises(ValueError, match=r"^e must"):
        render(bad, 16)


@pytest.mark.parametrize("render", [render_quad, render_quad_loop])
@pytest.mark.parametrize("bad", [7, 0, -32, 32.0, "32", True, None])
def test_bad_size_raises(render, bad) -> None:
    with pytest.raises(ValueError, match=r"^size must"):
        render(GOOD_E, bad)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "8", False])
def test_bad_chunk_size_raises(bad) -> None:
    with pytest.raises(ValueError, match=r"^chunk_size must"):
        render_quad(GOOD_E, 16, chunk_size=bad)


def test_bad_images_raise() -> None:
    with pytest.raises(ValueError, match=r"^images must"):
        to_uint8(np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match=r"^images must"):
        to_uint8([["x"]])
    with pytest.raises(ValueError, match=r"^images must"):
        from_uint8(np.array([0.5], dtype=np.float32))
