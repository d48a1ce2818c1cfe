"""Procedural "quad scene" images: a differentiable renderer for concept benchmarks.

A quad scene is an RGB image of ``size x size`` pixels whose content is a smooth function of
eight real concept values and, optionally, two nuisance values (the L5 rung of the recovery
ladder, proofs/setting.md). It is the image-valued mixing ``x = f(e)`` of the benchmarks.

Scene
-----
Coordinates are in units of the image width: a pixel ``(row i, column j)`` has its centre at
``x = (j + 0.5) / size`` (rightwards) and ``y = (i + 0.5) / size`` (downwards), so the image
covers the unit square and ``(0.5, 0.5)`` is its centre.

* **Background.** The image is split at ``x = 0.5`` and ``y = 0.5`` into four quadrants: top-left
  ``quad1``, top-right ``quad2``, bottom-left ``quad3``, bottom-right ``quad4``. Each is filled
  with the hue-wheel colour (below) of its concept value. When ``size`` is odd, the middle row
  and column straddle the split and get the area-weighted mix of their quadrants' colours (box
  filter), so every pixel is the exact pixel-area average of the background.
* **Object.** One superellipse is drawn over the background, filled with the hue-wheel colour of
  ``color``. Its centre is ``(0.5 + 0.12 tanh(pos_x), 0.5 + 0.12 tanh(pos_y))`` (the nuisance
  shifts it by at most 12% of the width; positive ``pos_y`` moves it *down*), or the image centre
  when ``e`` has no nuisance columns. In the object's frame, rotated by ``theta``,

      u =  cos(theta) (x - cx) + sin(theta) (y - cy)
      v = -sin(theta) (x - cx) + cos(theta) (y - cy)
      rho = (|u|^p + |v|^p)^(1/p)

  and the object is the set ``rho <= r`` with

      r     = 0.10 + 0.20 sigmoid(size_concept)        (radius, 0.10..0.30 of the width)
      p     = 2 + 6 sigmoid(shape)                     (2: disc .. 8: rounded square)
      theta = pi sigmoid(orientation) - pi / 2         (-90..+90 degrees, a 180-degree range)

* **Anti-aliasing.** Each pixel's object coverage is

      alpha = sigmoid(-(r / w) ln(rho / r)) = 1 / (1 + (rho / r)^(r / w)),   w = 0.5 / size,

  a logistic ramp across the edge: near the edge ``r ln(rho / r) ~ rho - r``, the signed
  superellipse distance, so the ramp has a scale of ``w``, half a pixel. The pixel value is
  ``(1 - alpha) * background + alpha * object_colour``. Every step is smooth in ``e``, so the
  image is a differentiable function of ``e`` (finite differences are meaningful).

Hue wheel
---------
A scalar ``s`` is mapped to the hue ``h = 0.8 sigmoid(s)`` in (0, 0.8), and the hue to

    rgb(h) = 0.5 + 0.45 cos(2 pi (h + (0, 1/3, 2/3))),

a circle of radius ``0.45 sqrt(3/2)`` around mid grey in the plane orthogonal to ``(1, 1, 1)``.
The circle has period 1 in ``h``, so on (0, 0.8) the map ``s -> rgb`` is smooth and injective
(the remaining 20% of the circle keeps the two ends of the range apart). Channel values lie in
[0.05, 0.95]; every pixel is a convex combination of such colours, hence in [0, 1].

Known non-injectivity (not fixed on purpose)
--------------------------------------------
The renderer is **not** injective everywhere, and the ranges are deliberately not restricted to
hide that; a later check detects it numerically (Jacobian rank of ``e -> image``):

* a superellipse has 90-degree rotational symmetry (``rho`` is unchanged by ``(u, v) -> (-v, u)``),
  so two orientations whose angles differ by 90 degrees render the same image; the 180-degree
  angle range therefore covers every distinct image twice;
* when ``p = 2`` (very negative ``shape``) the object is a disc and ``orientation`` has no effect
  at all; near ``p = 2`` it has almost none;
* away from these, the object can hide a quadrant's colour only if it covered the whole quadrant,
  which it never does (its radius is at most 0.30 and a quadrant is 0.5 wide), but concepts whose
  sigmoid saturates (``|value|`` of more than about 15) are numerically indistinguishable.

The identifiable variant
------------------------
:func:`render_quad_injective` draws another scene from the same concepts, one that is injective
by construction, with the closed-form inverse :func:`invert_quad_injective`
(proofs/lemma_injective_renderer.md): the quadrant shades in the red channel, the object alone in
green and blue as a Gaussian blob whose height is ``color`` and whose log-covariance is ``size``,
``shape`` and ``orientation`` (see its docstring). It is the mixing of ``quad(identifiable=True)``.

Implementations
---------------
``render_quad`` is vectorised with numpy broadcasting over ``(batch, rows, columns)``, works in
float32, in place, and processes ``chunk_size`` images at a time to bound memory (in cache-sized
blocks within a chunk). It evaluates ``ln(rho / r)`` as a log-sum-exp of ``ln u^2`` and
``ln v^2``, which needs 5 transcendental calls per pixel instead of the 3 powers, a log and a
sigmoid of the formula as written. ``render_quad_loop`` draws the same scene one image at a time
in float64, written independently in the straightforward style (formula as written); it is the
peer in ``benchmarks/bench_render.py`` and a correctness oracle in the tests. The two agree to
about 1e-6 at sizes up to 64.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from .errors import MixingError
from .validation import check_number

__all__ = [
    "QUAD_CONCEPTS",
    "QUAD_NUISANCE",
    "INJECTIVE_RANGES",
    "from_uint8",
    "invert_quad_injective",
    "render_quad",
    "render_quad_injective",
    "render_quad_loop",
    "to_uint8",
]

QUAD_CONCEPTS: tuple[str, ...] = (
    "quad1",
    "quad2",
    "quad3",
    "quad4",
    "size",
    "color",
    "shape",
    "orientation",
)
QUAD_NUISANCE: tuple[str, ...] = ("pos_x", "pos_y")

# Mapping constants of the vectorised renderer (see the module docstring); render_quad_loop
# spells the same numbers out on its own, so that it stays an independent oracle.
_HUE_SPAN = 0.8  # h = _HUE_SPAN * sigmoid(s)
_RGB_MID = 0.5
_RGB_AMP = 0.45
_RADIUS_MIN = 0.10  # r = _RADIUS_MIN + _RADIUS_SPAN * sigmoid(size)
_RADIUS_SPAN = 0.20
_P_MIN = 2.0  # p = _P_MIN + _P_SPAN * sigmoid(shape)
_P_SPAN = 6.0
_SHIFT = 0.12  # centre offset = _SHIFT * tanh(nuisance), in image widths
_SOFTNESS_PX = 0.5  # edge ramp scale, in pixels

# Internal float32 guards for the vectorised kernel.
_TINY = np.float32(1e-30)  # keeps log() finite at the object's centre lines
_BLOCK_PIXELS = 1 << 16  # pixels per inner block of render_quad: temporaries stay in cache


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _check_int(value: object, name: str, minimum: int) -> int:
    return check_number(value, name, minimum=minimum, error=MixingError)


def _check_e(e: object) -> np.ndarray:
    if np.iscomplexobj(e):
        raise MixingError("e must be real-valued, got a complex array")
    try:
        arr = np.asarray(e, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise MixingError(f"e must be a real array of shape (n, 8) or (n, 10): {err}") from None
    n_cols = (len(QUAD_CONCEPTS), len(QUAD_CONCEPTS) + len(QUAD_NUISANCE))
    if arr.ndim != 2 or arr.shape[1] not in n_cols:
        raise MixingError(
            f"e must have shape (n, {n_cols[0]}) (concepts {', '.join(QUAD_CONCEPTS)}) or "
            f"(n, {n_cols[1]}) (plus nuisance {', '.join(QUAD_NUISANCE)}), got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise MixingError("e must be finite: it contains NaN or inf")
    return arr


# --------------------------------------------------------------------------------------------
# vectorised renderer
# --------------------------------------------------------------------------------------------


class _Scene(NamedTuple):
    """Per-image scene parameters of a batch, float32, each with leading axis n."""

    quads: np.ndarray  # (n, 4, 3) quadrant colours, quad1..quad4
    colour: np.ndarray  # (n, 3) object colour
    cx: np.ndarray  # (n,) object centre, image widths
    cy: np.ndarray  # (n,)
    a: np.ndarray  # (n,) cos(theta) / r: rotation folded with the 1 / r scaling
    b: np.ndarray  # (n,) sin(theta) / r
    half_p: np.ndarray  # (n,) p / 2
    k_half: np.ndarray  # (n,) (r / w) / 2
    k_over_p: np.ndarray  # (n,) (r / w) / p


class _Grid(NamedTuple):
    """Pixel geometry shared by every image of one call."""

    centres: np.ndarray  # (size,) float32 pixel-centre coordinates, image widths
    left: np.ndarray  # (size,) float32 share of each column left of x = 0.5
    right: np.ndarray  # (size,) float32 1 - left
    row_groups: list[tuple[int, int, np.float32]]  # (first row, end row, share above y = 0.5)


def _sigmoid64(x: np.ndarray) -> np.ndarray:
    """Overflow-free logistic function, float64."""
    return 0.5 + 0.5 * np.tanh(0.5 * x)


def _hue_rgb64(s: np.ndarray) -> np.ndarray:
    """Hue-wheel colours of scalars ``s`` (any shape) -> ``s.shape + (3,)``, float64."""
    h = _HUE_SPAN * _sigmoid64(s)
    phase = np.array([0.0, 1.0 / 3.0, 2.0 / 3.0])
    return _RGB_MID + _RGB_AMP * np.cos(2.0 * np.pi * (h[..., None] + phase))


def _scene(e: np.ndarray, size: int) -> _Scene:
    """Scene parameters from ``e`` (float64, shape (n, 8) or (n, 10)).

    The mappings run in float64, where any finite input is safe; their outputs are bounded and
    are cast to float32 for the per-pixel work.
    """
    radius = _RADIUS_MIN + _RADIUS_SPAN * _sigmoid64(e[:, 4])
    p = _P_MIN + _P_SPAN * _sigmoid64(e[:, 6])
    theta = np.pi * _sigmoid64(e[:, 7]) - 0.5 * np.pi
    if e.shape[1] > len(QUAD_CONCEPTS):
        cx = 0.5 + _SHIFT * np.tanh(e[:, 8])
        cy = 0.5 + _SHIFT * np.tanh(e[:, 9])
    else:
        cx = cy = np.full(e.shape[0], 0.5)
    k = radius / (_SOFTNESS_PX / size)  # r / w
    f32 = np.float32
    return _Scene(
        quads=_hue_rgb64(e[:, 0:4]).astype(f32),
        colour=_hue_rgb64(e[:, 5]).astype(f32),
        cx=cx.astype(f32),
        cy=cy.astype(f32),
        a=(np.cos(theta) / radius).astype(f32),
        b=(np.sin(theta) / radius).astype(f32),
        half_p=(0.5 * p).astype(f32),
        k_half=(0.5 * k).astype(f32),
        k_over_p=(k / p).astype(f32),
    )


def _grid(size: int) -> _Grid:
    """Pixel-centre coordinates and the quadrant split of a ``size x size`` image."""
    centres = (np.arange(size, dtype=np.float64) + 0.5) / size
    # Area share of each pixel column left of the middle line: 1, 0, or 0.5 for an odd middle.
    left = np.clip(0.5 * size - np.arange(size, dtype=np.float64), 0.0, 1.0)
    half = size // 2
    row_groups = [(0, half, np.float32(1.0))]
    if size % 2:
        row_groups.append((half, half + 1, np.float32(0.5)))
    row_groups.append((size - half, size, np.float32(0.0)))
    return _Grid(
        centres=centres.astype(np.float32),
        left=left.astype(np.float32),
        right=(1.0 - left).astype(np.float32),
        row_groups=row_groups,
    )


def _coverage(scene: _Scene, grid: _Grid) -> np.ndarray:
    """Object coverage alpha of each pixel, shape (B, H, W), float32, for a block of B images.

    Computed in place in float32 with 5 transcendental calls per pixel (2 log, exp, log, exp).
    """

    def per_image(values: np.ndarray) -> np.ndarray:
        return values[:, None, None]

    dx = grid.centres[None, None, :] - per_image(scene.cx)  # (B, 1, W)
    dy = grid.centres[None, :, None] - per_image(scene.cy)  # (B, H, 1)
    a, b = per_image(scene.a), per_image(scene.b)
    u = a * dx + b * dy  # u / r, (B, H, W)
    v = a * dy - b * dx  # v / r
    # la = ln (u / r)^2, lb = ln (v / r)^2; _TINY keeps them finite on the object's axes
    np.multiply(u, u, out=u)
    np.add(u, _TINY, out=u)
    la = np.log(u, out=u)
    np.multiply(v, v, out=v)
    np.add(v, _TINY, out=v)
    lb = np.log(v, out=v)
    # ln(rho / r) = ln(|u/r|^p + |v/r|^p) / p
    #             = max(la, lb) / 2 + ln(1 + exp(-(p / 2) |la - lb|)) / p   (log-sum-exp)
    big = np.maximum(la, lb)
    gap = np.subtract(la, lb, out=la)
    np.abs(gap, out=gap)
    np.multiply(gap, -per_image(scene.half_p), out=gap)
    np.exp(gap, out=gap)
    np.add(gap, np.float32(1.0), out=gap)
    np.log(gap, out=gap)  # ln(1 + t), t in (0, 1]: plain log is accurate here; log1p is slow
    # z = (r / w) ln(rho / r); alpha = sigmoid(-z) = 1 / (1 + exp(z))
    np.multiply(gap, per_image(scene.k_over_p), out=gap)
    np.multiply(big, per_image(scene.k_half), out=big)
    z = np.add(big, gap, out=big)
    with np.errstate(over="ignore"):  # exp(z) = inf far outside the object: alpha = 0
        np.exp(z, out=z)
    np.add(z, np.float32(1.0), out=z)
    return np.reciprocal(z, out=z)


def _background_bands(scene: _Scene, grid: _Grid) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """Background of each band of rows that share one profile, for a chunk of images.

    The bands are the top rows (quad1 | quad2), the bottom rows (quad3 | quad4) and, for an odd
    size, the middle row (an even mix of the two). Returns ``(first row, end row, profile,
    colour - profile)`` per band, the arrays of shape (n, 1, W * 3), float32, channels last.
    """
    n = scene.quads.shape[0]
    left, right = grid.left[None, :, None], grid.right[None, :, None]  # (1, W, 1)
    q = scene.quads[:, None]  # (n, 1, 4, 3)
    top = left * q[:, :, 0] + right * q[:, :, 1]  # (n, W, 3)
    bottom = left * q[:, :, 2] + right * q[:, :, 3]
    bands = []
    for r0, r1, share_top in grid.row_groups:
        profile = share_top * top + (np.float32(1.0) - share_top) * bottom  # (n, W, 3)
        offset = scene.colour[:, None, :] - profile
        bands.append((r0, r1, profile.reshape(n, 1, -1), offset.reshape(n, 1, -1)))
    return bands


def _composite(alpha: np.ndarray, bands: list, out: np.ndarray) -> None:
    """Write ``profile + alpha (colour - profile)`` into ``out``, shape (B, H, W, 3).

    ``alpha`` (B, H, W) is first copied into each channel so that the arithmetic runs on
    contiguous (rows, W * 3) views: broadcasting alpha over a trailing axis of length 3 is
    several times slower in numpy.
    """
    for channel in range(3):
        out[..., channel] = alpha
    n_img, n_rows, n_cols, _ = out.shape
    flat = out.reshape(n_img, n_rows, n_cols * 3)  # a view: out is C-contiguous
    for r0, r1, profile, offset in bands:
        rows = flat[:, r0:r1]
        np.multiply(rows, offset, out=rows)
        np.add(rows, profile, out=rows)


def render_quad(
    e: np.ndarray,
    size: int = 32,
    *,
    chunk_size: int = 1024,
    progress: bool = False,
) -> np.ndarray:
    """Render quad scenes, vectorised over the batch.

    Parameters
    ----------
    e : numpy.ndarray, shape (n, 8) or (n, 10)
        Concept values in the order of ``QUAD_CONCEPTS`` (quad1..quad4, size, color, shape,
        orientation), optionally followed by the nuisance values ``QUAD_NUISANCE`` (pos_x,
        pos_y). Any finite real values; the mappings are tuned for roughly standard-normal
        inputs. See the module docstring for the scene they define.
    size : int, default 32
        Image height and width in pixels, at least 8.
    chunk_size : int, default 1024
        Images per chunk, the unit of the progress bar and of the working memory: besides the
        float32 output (``n * size**2 * 12`` bytes) a chunk needs about ``chunk_size * size *
        100`` bytes of background rows, and its images are rendered in cache-sized blocks of at
        most ``chunk_size`` images and about 2**16 pixels (a few MiB of temporaries). The
        result does not depend on it.
    progress : bool, default False
        Show a tqdm progress bar over chunks.

    Returns
    -------
    numpy.ndarray, shape (n, size, size, 3), float32
        RGB images, channel values in [0, 1]; axis 1 is the row (top to bottom), axis 2 the
        column (left to right).

    Raises
    ------
    MixingError
        If ``e`` is not a 2-D array with 8 or 10 columns or is not finite, if ``size`` is not an
        int >= 8, or if ``chunk_size`` is not an int >= 1.
    """
    e = _check_e(e)
    size = _check_int(size, "size", 8)
    chunk_size = _check_int(chunk_size, "chunk_size", 1)
    n = e.shape[0]
    out = np.empty((n, size, size, 3), dtype=np.float32)
    if n == 0:
        return out

    scene = _scene(e, size)
    grid = _grid(size)
    block = max(1, min(chunk_size, _BLOCK_PIXELS // (size * size)))

    starts = range(0, n, chunk_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, total=len(starts), desc="render_quad", unit="chunk")
    for start in starts:
        stop = min(n, start + chunk_size)
        chunk = _Scene(*(field[start:stop] for field in scene))
        bands = _background_bands(chunk, grid)
        for lo in range(0, stop - start, block):
            hi = min(stop - start, lo + block)
            alpha = _coverage(_Scene(*(field[lo:hi] for field in chunk)), grid)
            block_bands = [(r0, r1, prof[lo:hi], off[lo:hi]) for r0, r1, prof, off in bands]
            _composite(alpha, block_bands, out[start + lo : start + hi])
    return out


# --------------------------------------------------------------------------------------------
# reference: one image at a time
# --------------------------------------------------------------------------------------------


def _logistic(t: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * t))


def _wheel_colour(s: float) -> np.ndarray:
    hue = 0.8 * _logistic(s)
    return np.array([0.5 + 0.45 * math.cos(2.0 * math.pi * (hue + k / 3.0)) for k in range(3)])


def render_quad_loop(e: np.ndarray, size: int = 32) -> np.ndarray:
    """Render quad scenes one image at a time (the straightforward reference).

    Draws exactly the scene of :func:`render_quad` (see the module docstring) with a Python loop
    over images and float64 numpy arithmetic on each image. It is the peer of the vectorised
    renderer in ``benchmarks/bench_render.py`` and its correctness oracle in the tests.

    Parameters
    ----------
    e : numpy.ndarray, shape (n, 8) or (n, 10)
        Concept values (and optional nuisance values), as for :func:`render_quad`.
    size : int, default 32
        Image height and width in pixels, at least 8.

    Returns
    -------
    numpy.ndarray, shape (n, size, size, 3), float32
        RGB images with channel values in [0, 1].

    Raises
    ------
    MixingError
        If ``e`` is not a 2-D array with 8 or 10 columns or is not finite, or if ``size`` is not
        an int >= 8.
    """
    e = _check_e(e)
    size = _check_int(size, "size", 8)
    images = np.empty((e.shape[0], size, size, 3), dtype=np.float32)

    centres = (np.arange(size) + 0.5) / size
    xs, ys = np.meshgrid(centres, centres)  # xs varies along columns, ys along rows
    # Area of each pixel row/column before the middle line (1, 0, or 0.5 for an odd middle).
    before_mid = np.clip(size / 2 - np.arange(size), 0.0, 1.0)
    left = before_mid[None, :, None]
    top = before_mid[:, None, None]
    softness = 0.5 / size

    for i, values in enumerate(e):
        q1, q2, q3, q4 = (_wheel_colour(values[k]) for k in range(4))
        radius = 0.10 + 0.20 * _logistic(values[4])
        fill = _wheel_colour(values[5])
        power = 2.0 + 6.0 * _logistic(values[6])
        angle = math.pi * _logistic(values[7]) - math.pi / 2
        if len(values) == 10:
            cx = 0.5 + 0.12 * math.tanh(values[8])
            cy = 0.5 + 0.12 * math.tanh(values[9])
        else:
            cx = cy = 0.5

        upper = left * q1 + (1 - left) * q2
        lower = left * q3 + (1 - left) * q4
        background = top * upper + (1 - top) * lower

        u = math.cos(angle) * (xs - cx) + math.sin(angle) * (ys - cy)
        v = -math.sin(angle) * (xs - cx) + math.cos(angle) * (ys - cy)
        rho = (np.abs(u) ** power + np.abs(v) ** power) ** (1.0 / power)
        with np.errstate(divide="ignore"):  # log(0) at the exact centre -> alpha = 1
            z = (radius / softness) * np.log(rho / radius)
        alpha = 0.5 * (1.0 + np.tanh(-0.5 * z))

        image = (1 - alpha[:, :, None]) * background + alpha[:, :, None] * fill
        images[i] = image
    return images


# --------------------------------------------------------------------------------------------
# the identifiable variant: injective by construction, with a closed-form inverse
# --------------------------------------------------------------------------------------------

#: ``(lo, hi)`` of each scene parameter of :func:`render_quad_injective`; a concept value ``c``
#: becomes ``lo + (hi - lo) sigmoid(c)``. proofs/certificates/cert_injective_renderer.py
#: repeats these numbers (it imports nothing of the package) and the tests keep the two equal.
INJECTIVE_RANGES: dict[str, tuple[float, float]] = {
    "shade": (0.1, 0.9),  # quad1..quad4: the quadrant's red value
    "scale": (0.08, 0.16),  # size: r = sqrt(a b), the blob's geometric-mean width, image widths
    "peak": (0.35, 1.0),  # color: the blob's height h in green and blue
    "stretch": (-1.2, 1.2),  # shape, orientation: u, w of log S = 2 log(r) I + [[u, w], [w, -u]]
    "centre": (0.38, 0.62),  # pos_x, pos_y: the blob's centre, image widths
}


def _squash(c: np.ndarray, name: str) -> np.ndarray:
    """``lo + (hi - lo) sigmoid(c)`` for the parameter ``name``: smooth, strictly increasing."""
    lo, hi = INJECTIVE_RANGES[name]
    return lo + (hi - lo) * _sigmoid64(c)


def _unsquash(v: np.ndarray, name: str) -> np.ndarray:
    """The inverse of :func:`_squash`, ``2 atanh((2 v - lo - hi) / (hi - lo))``; refuses a value
    outside the open range (an image that no concept value renders)."""
    lo, hi = INJECTIVE_RANGES[name]
    u = (2.0 * v - lo - hi) / (hi - lo)
    if not np.all(np.abs(u) < 1.0):
        raise MixingError(
            f"not an image of the injective quad renderer: its {name} lies outside ({lo:.4g}, "
            f"{hi:.4g}) in {int(np.sum(~(np.abs(u) < 1.0)))} image(s)"
        )
    return 2.0 * np.arctanh(u)


def _pixel_centres(size: int) -> np.ndarray:
    """Pixel-centre coordinates relative to the image centre, ``(j + 0.5) / size - 0.5``."""
    return (np.arange(size, dtype=np.float64) + 0.5) / size - 0.5


def _left_share(size: int) -> np.ndarray:
    """Area share of each pixel column (or row) left of (above) the middle line: 1, 0, or 0.5
    for the middle one of an odd size."""
    return np.clip(0.5 * size - np.arange(size, dtype=np.float64), 0.0, 1.0)


def _sinhc(k: np.ndarray) -> np.ndarray:
    """``sinh(k) / k``, 1 at ``k = 0`` (smooth; the series below 1e-4, where it is exact to
    float64 rounding)."""
    k = np.asarray(k, dtype=np.float64)
    safe = np.where(k > 1e-4, k, 1.0)
    return np.where(k > 1e-4, np.sinh(safe) / safe, 1.0 + k * k / 6.0)


def _atanhc(x: np.ndarray) -> np.ndarray:
    """``atanh(x) / x`` for ``0 <= x < 1``, 1 at ``x = 0`` (the series below 1e-4)."""
    x = np.asarray(x, dtype=np.float64)
    safe = np.where(x > 1e-4, x, 0.5)
    return np.where(x > 1e-4, np.arctanh(safe) / safe, 1.0 + x * x / 3.0)


def _blob_precision(e: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(P11, P12, P22)``, each ``(n,)``, of ``P = S^-1 = r^-2 expm(-A)`` with ``A = [[u, w],
    [w, -u]]`` (``u`` from ``shape``, ``w`` from ``orientation``): since ``A^2 = k^2 I``,
    ``k = hypot(u, w)``, ``expm(-A) = cosh(k) I - sinh(k) / k A``."""
    r2 = _squash(e[:, 4], "scale") ** 2
    u, w = _squash(e[:, 6], "stretch"), _squash(e[:, 7], "stretch")
    k = np.hypot(u, w)
    ch, sc = np.cosh(k), _sinhc(k)
    return (ch - sc * u) / r2, -sc * w / r2, (ch + sc * u) / r2


def render_quad_injective(
    e: np.ndarray, size: int = 32, *, chunk_size: int = 256, progress: bool = False
) -> np.ndarray:
    """Render the identifiable quad scene: injective by construction, with a closed-form inverse.

    Every concept changes one scene parameter through ``lo + (hi - lo) sigmoid(value)``
    (:data:`INJECTIVE_RANGES`), and the parameters sit in separate channels:

    * red: the four quadrants, shade ``s_k`` of ``quad_k`` (top-left, top-right, bottom-left,
      bottom-right, split at the middle lines as in :func:`render_quad`, the middle row and
      column of an odd size getting the area-weighted mix). The object never touches it;
    * green and blue (the same values): the object alone, a Gaussian blob
      ``I(p) = h exp(-1/2 (p - m)^T S^-1 (p - m))`` over the pixel centres ``p`` (image widths)
      with height ``h`` (``color``) and log-covariance ``log S = 2 log(r) I + [[u, w], [w,
      -u]]``: ``r = sqrt(a b)`` (the geometric mean of the axes) from ``size``, ``u`` (a stretch
      along the image axes: wide for ``u > 0``, tall for ``u < 0``) from ``shape`` and ``w`` (a
      stretch along the diagonals) from ``orientation``. The axes ratio is ``a / b =
      exp(hypot(u, w))`` and the long axis lies at ``atan2(w, u) / 2``. Centre ``m``: the image
      centre, or from ``pos_x, pos_y``.

    The matrix exponential is a bijection from symmetric to positive definite matrices, so
    ``(size, shape, orientation)`` -> ``S`` is injective on all of ``R^3``; ``log I`` is a
    quadratic polynomial in the pixel coordinates, so least squares over the pixels returns
    ``(S^-1, m, log h)`` exactly, and every concept follows in closed form
    (:func:`invert_quad_injective`). The map is smooth in ``e`` and injective on ``R^8``
    (``R^10``) with a continuous inverse on its image (proofs/lemma_injective_renderer.md). The
    blob never underflows: every blob value exceeds ``0.35 exp(-327.9) > 1e-143``.

    Concepts enter the blob's log-covariance linearly (up to the logistic), not as an aspect
    ratio and an angle, which are polar coordinates of ``(u, w)``. Both are injective, but in
    single-seed trials on ``quad(identifiable=True)`` (500 images per context, the pipeline's
    30-epoch two-step fit) a linear read-out of the autoencoder's latent predicted ``shape``
    with R^2 0.82 under the polar form (aspect 1.5..4, angle within +-60 degrees) against 0.93
    and 0.94 (two seeds) under this one.

    This float64 renderer is the *mixing* that :func:`conceptid.identifiability.check` judges; a
    stored
    dataset quantises its images to uint8 (:func:`to_uint8`), which no map can invert exactly.

    Parameters
    ----------
    e : numpy.ndarray, shape (n, 8) or (n, 10)
        Concept values in the order of ``QUAD_CONCEPTS``, optionally followed by ``pos_x,
        pos_y``; any finite reals (dimensionless; standard-normal-sized values use the ranges
        well, beyond about 36 the logistic rounds to its limit in float64).
    size : int, default 32
        Image height and width in pixels, at least 8.
    chunk_size : int, default 256
        Images rendered at once (working memory about ``chunk_size * size**2 * 32`` bytes
        besides the output); the result does not depend on it.
    progress : bool, default False
        Show a tqdm progress bar over chunks.

    Returns
    -------
    numpy.ndarray, shape (n, size, size, 3), float64
        RGB images with values in ``(0, 1)``; axis 1 is the row (top to bottom), axis 2 the
        column (left to right).

    Raises
    ------
    MixingError
        If ``e`` is not a finite 2-D array with 8 or 10 columns, ``size`` is not an int >= 8 or
        ``chunk_size`` not an int >= 1.
    """
    e = _check_e(e)
    size = _check_int(size, "size", 8)
    chunk_size = _check_int(chunk_size, "chunk_size", 1)
    n = e.shape[0]
    out = np.empty((n, size, size, 3), dtype=np.float64)
    if n == 0:
        return out
    left, top = _left_share(size), _left_share(size)[:, None]
    shade = _squash(e[:, 0:4], "shade")  # (n, 4)
    upper = left * shade[:, 0, None] + (1 - left) * shade[:, 1, None]  # (n, W)
    lower = left * shade[:, 2, None] + (1 - left) * shade[:, 3, None]
    out[..., 0] = top * upper[:, None, :] + (1 - top) * lower[:, None, :]
    P11, P12, P22 = _blob_precision(e)
    peak = _squash(e[:, 5], "peak")
    if e.shape[1] > len(QUAD_CONCEPTS):
        mx, my = (_squash(e[:, k], "centre") - 0.5 for k in (8, 9))
    else:
        mx = my = np.zeros(n)
    xs = _pixel_centres(size)
    starts = range(0, n, chunk_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, total=len(starts), desc="render_quad_injective", unit="chunk")
    for lo in starts:
        sl = slice(lo, min(n, lo + chunk_size))
        a, b, c, h, cx, cy = (v[sl, None, None] for v in (P11, P12, P22, peak, mx, my))
        dx = xs[None, None, :] - cx  # (B, 1, W)
        dy = xs[None, :, None] - cy  # (B, H, 1)
        out[sl, :, :, 1] = h * np.exp(-0.5 * (a * dx**2 + 2.0 * b * dx * dy + c * dy**2))
    out[..., 2] = out[..., 1]
    return out


@functools.lru_cache(maxsize=8)
def _quadratic_fit(size: int) -> np.ndarray:
    """``(6, size**2)``: the least-squares map from the pixels' values to the coefficients of
    ``c0 + c1 x + c2 y + c3 x^2 + c4 x y + c5 y^2`` (centred pixel coordinates; the design has
    full column rank 6 on any grid of at least 3 x 3 points)."""
    xs = _pixel_centres(size)
    y, x = np.meshgrid(xs, xs, indexing="ij")  # row-major, as the images are flattened
    x, y = x.ravel(), y.ravel()
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
    fit = np.linalg.pinv(design)
    fit.setflags(write=False)
    return fit


def invert_quad_injective(x: np.ndarray, nuisance: bool = False) -> np.ndarray:
    """The concepts (and nuisance) of images of :func:`render_quad_injective`, in closed form.

    The quadrant shades are read from the red channel of pixels wholly inside each quadrant;
    ``log`` of the green channel is fitted by least squares with a quadratic polynomial in the
    pixel coordinates, whose coefficients are exactly ``-1/2 P`` (``P = S^-1``), ``P m`` and
    ``log h - 1/2 m^T P m``; ``m = P^-1 (c1, c2)`` and ``h = I(p) exp(q(p))`` at the pixel
    nearest ``m``. Then ``log S = -logm(P)`` in closed form: with ``t = tr(P) / 2`` and ``d =
    hypot((P11 - P22) / 2, P12)``, ``r = det(P)^(-1/4)`` and ``(u, w) = -(atanh(d / t) / d)
    ((P11 - P22) / 2, P12)``. Every step is continuous on the image
    (proofs/lemma_injective_renderer.md). In float64 it returns ``e`` to 1e-8 or better for
    ``|e_j| <= 10`` (the tests check this; the worst seen is about 1e-9); the error grows like
    ``exp(|e_j|)`` where the logistic saturates (about 1e-8 at 12).

    Parameters
    ----------
    x : numpy.ndarray, shape (n, S, S, 3)
        Images of the renderer (float; ``S >= 8``).
    nuisance : bool, default False
        Also return the blob's centre as ``pos_x, pos_y`` (the images were rendered from ``e``
        with 10 columns).

    Returns
    -------
    numpy.ndarray, shape (n, 8) or (n, 10), float64
        ``e``, in the order of ``QUAD_CONCEPTS`` (then ``QUAD_NUISANCE``).

    Raises
    ------
    MixingError
        If ``x`` is not a finite ``(n, S, S, 3)`` array with ``S >= 8``, or is not an image of
        the renderer (a non-positive green value, a blob that is not an ellipse, or a parameter
        outside its range; a uint8-quantised image usually fails here, since its blob's tails
        round to zero).
    """
    if np.iscomplexobj(x):
        raise MixingError("x must be real-valued, got a complex array")
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise MixingError(f"x must be a real array of shape (n, S, S, 3): {err}") from None
    if x.ndim != 4 or x.shape[3] != 3 or x.shape[1] != x.shape[2] or x.shape[1] < 8:
        raise MixingError(f"x must have shape (n, S, S, 3) with S >= 8, got {x.shape}")
    if not np.isfinite(x).all():
        raise MixingError("x must be finite: it contains NaN or inf")
    n, size = x.shape[0], x.shape[1]
    out = np.empty((n, len(QUAD_CONCEPTS) + (len(QUAD_NUISANCE) if nuisance else 0)))
    if n == 0:
        return out
    share = _left_share(size)
    rows = {True: share == 1.0, False: share == 0.0}  # wholly above / left of the middle lines
    red = x[..., 0]
    for k, (is_top, is_left) in enumerate([(True, True), (True, False), (False, True),
                                           (False, False)]):  # fmt: skip
        pure = red[:, rows[is_top]][:, :, rows[is_left]]
        out[:, k] = _unsquash(pure.reshape(n, -1).mean(axis=1), "shade")
    green = x[..., 1].reshape(n, -1)
    if not np.all(green > 0.0):
        raise MixingError(
            "not an image of the injective quad renderer: its green channel (the blob) must be "
            "positive everywhere"
        )
    c0, c1, c2, c3, c4, c5 = (np.log(green) @ _quadratic_fit(size).T).T
    P11, P12, P22 = -2.0 * c3, -c4, -2.0 * c5
    det = P11 * P22 - P12**2
    if not np.all((det > 0.0) & (P11 > 0.0)):
        raise MixingError(
            "not an image of the injective quad renderer: the log of its green channel is not a "
            "concave quadratic (no Gaussian blob)"
        )
    mx = (P22 * c1 - P12 * c2) / det  # m = P^-1 (c1, c2)
    my = (P11 * c2 - P12 * c1) / det
    # h = I(p) exp(q(p)) at the pixel nearest the centre, where q is small: more accurate than
    # the fitted constant c0 + m^T (c1, c2) / 2, whose error grows with the largest |log I|
    xs = _pixel_centres(size)
    j = np.clip(np.rint((mx + 0.5) * size - 0.5), 0, size - 1).astype(int)
    i = np.clip(np.rint((my + 0.5) * size - 0.5), 0, size - 1).astype(int)
    dx, dy = xs[j] - mx, xs[i] - my
    q = P11 * dx**2 + 2.0 * P12 * dx * dy + P22 * dy**2
    peak = x[np.arange(n), i, j, 1] * np.exp(0.5 * q)
    # log S = -logm(P): eigenvalues t +- d of P, logm(P) = log(det P) / 2 I + atanh(d/t)/d (P - tI)
    t = 0.5 * (P11 + P22)
    half = 0.5 * (P11 - P22)
    g = _atanhc(np.hypot(half, P12) / t) / t
    out[:, 4] = _unsquash(det**-0.25, "scale")
    out[:, 5] = _unsquash(peak, "peak")
    out[:, 6] = _unsquash(-g * half, "stretch")
    out[:, 7] = _unsquash(-g * P12, "stretch")
    if nuisance:
        out[:, 8] = _unsquash(mx + 0.5, "centre")
        out[:, 9] = _unsquash(my + 0.5, "centre")
    return out


# --------------------------------------------------------------------------------------------
# storage
# --------------------------------------------------------------------------------------------


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Quantise images in [0, 1] to 8 bits.

    Parameters
    ----------
    images : numpy.ndarray, any shape
        Channel values, nominally in [0, 1]; values outside are clipped.

    Returns
    -------
    numpy.ndarray, same shape, uint8
        ``round(255 * images)`` (to nearest, ties to even), clipped to 0..255.

    Raises
    ------
    MixingError
        If ``images`` is not a finite real array.
    """
    try:
        arr = np.asarray(images, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise MixingError(f"images must be a real array: {err}") from None
    if not np.isfinite(arr).all():
        raise MixingError("images must be finite: it contains NaN or inf")
    return np.clip(np.rint(arr * 255.0), 0.0, 255.0).astype(np.uint8)


def from_uint8(images: np.ndarray) -> np.ndarray:
    """Convert 8-bit images back to float32 channel values in [0, 1].

    Parameters
    ----------
    images : numpy.ndarray, any shape, uint8
        Quantised images, as returned by :func:`to_uint8`.

    Returns
    -------
    numpy.ndarray, same shape, float32
        ``images / 255``.

    Raises
    ------
    MixingError
        If ``images`` is not a uint8 array.
    """
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise MixingError(f"images must be a uint8 array, got dtype {arr.dtype}")
    return arr.astype(np.float32) / np.float32(255.0)
