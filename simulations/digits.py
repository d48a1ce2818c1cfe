"""Contexts made from real handwritten digits by image operations, in the manner of Morpho-MNIST.

The digits are scikit-learn's ``load_digits`` (1797 handwritten digits, 8x8 pixels, 17 grey
levels, shipped inside the package: nothing is downloaded). Each is upscaled (cubic) to three
quarters of the canvas and centred on an ``S x S`` canvas (``S`` = 32 or 64), white ink on black.
The *concepts* are six operations, each with a strength drawn per image when its context
intervenes on it; the observational context is the plain digits:

==============  ====================================================================================
``thinning``    grey erosion by a disc of radius U[1, 1.5] px
``thickening``  grey dilation by a disc of radius U[1, 2] px
``swelling``    a radial warp that magnifies a disc of radius 7 px around a random ink pixel,
                source radius ``R (d / R)^k``, ``k`` in U[1.5, 2.5]
``scale``       shrink about the centre by a factor U[0.6, 0.8]
``shear``       slant: row ``r`` moves right by ``a (c - r)`` px (top rows right), ``a`` in
                U[0.25, 0.45]
``shift``       translation by U[2.5, 4] px in a uniformly random direction
==============  ====================================================================================

(lengths at 32 px; at 64 px they double). A composed context applies its operations one after
another in that order (:data:`OPERATIONS`, morphology before geometry): :func:`apply` is
exactly the sequential application. There are no ground-truth concepts: the strengths are drawn
only where a context intervenes, and the plain digits' own thickness, slant or size are unknown,
so the dataset carries none (``ground_truth: null``) and goes through
:func:`conceptid.simulations.imported.from_arrays` like any user's data.

Splits are by source digit: the 1797 digits are permuted by the seed and cut into a train, a
validation and a test pool (60/10/30%), so a test image never shows a digit seen in training.
Each (split, context) cell draws its digits from its pool without replacement and its
strengths from its own stream ``SeedSequence(seed, spawn_key=(4, split, context))``.

This module uses ``scipy.ndimage`` (a core dependency) and scikit-learn (the optional extra
``conceptid[digits]``), both imported only when used; it never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .benchmark import SPLITS, Dataset
from .errors import UsageError
from .imported import TRAINABLE_IMAGE_SIZES, context_name, from_arrays
from .resources import check_memory
from .validation import check_number

__all__ = [
    "DEFAULT_HELD_OUT",
    "OPERATIONS",
    "apply",
    "base_digits",
    "draw",
    "morpho_digits",
    "scale",
    "shear",
    "shift",
    "swell",
    "thicken",
    "thin",
]

#: the operations, in the order a composed context applies them
OPERATIONS = ("thinning", "thickening", "swelling", "scale", "shear", "shift")
#: composed operations held out of training (test-only contexts)
DEFAULT_HELD_OUT = (("thickening", "shear"), ("thinning", "scale"), ("swelling", "shift"))
#: fractions of the source digits in the train, validation and test pools
POOLS = (0.6, 0.1, 0.3)
#: the strength ranges at 32 px (lengths in pixels, scaled with the canvas), for the card
RANGES = {
    "thinning": "erosion disc radius U[1, 1.5] px",
    "thickening": "dilation disc radius U[1, 2] px",
    "swelling": "disc radius 7 px at a random ink pixel, power U[1.5, 2.5]",
    "scale": "factor U[0.6, 0.8]",
    "shear": "slant U[0.25, 0.45] px per row",
    "shift": "U[2.5, 4] px, direction U[0, 2 pi)",
}


def _ndimage():
    from scipy import ndimage

    return ndimage


def _disc(radius: float) -> np.ndarray:
    """The footprint of the pixels within ``radius`` of the centre pixel."""
    r = int(math.floor(radius))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    return dy**2 + dx**2 <= radius**2 + 1e-9


def _grid(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Row and column coordinates of every pixel, and the canvas centre."""
    rows, cols = np.mgrid[0 : img.shape[0], 0 : img.shape[1]].astype(np.float64)
    return rows, cols, (img.shape[0] - 1) / 2


def _warp(img: np.ndarray, src_rows: np.ndarray, src_cols: np.ndarray) -> np.ndarray:
    """The image whose pixel ``(r, c)`` is ``img`` at ``(src_rows[r, c], src_cols[r, c])``
    (bilinear; black outside): the one resampling step of every geometric operation."""
    out = _ndimage().map_coordinates(img, [src_rows, src_cols], order=1, mode="constant")
    return np.clip(out, 0.0, 1.0)


def thin(img: np.ndarray, radius: float) -> np.ndarray:
    """Thinner strokes: grey erosion by a disc of ``radius`` px; ``(S, S)`` float in [0, 1]
    to the same. Never adds ink (the disc holds its centre)."""
    return _ndimage().grey_erosion(img, footprint=_disc(radius), mode="constant", cval=0.0)


def thicken(img: np.ndarray, radius: float) -> np.ndarray:
    """Thicker strokes: grey dilation by a disc of ``radius`` px; never removes ink."""
    return _ndimage().grey_dilation(img, footprint=_disc(radius), mode="constant", cval=0.0)


def swell(img: np.ndarray, center: Sequence[float], radius: float, power: float) -> np.ndarray:
    """A local swelling: inside the disc of ``radius`` px around ``center`` (row, column) the
    pixel at distance ``d`` shows the image at distance ``radius (d / radius)^power`` (closer to
    the centre for ``power > 1``: a magnification); outside, the image is unchanged."""
    rows, cols, _ = _grid(img)
    dr, dc = rows - center[0], cols - center[1]
    d = np.hypot(dr, dc)
    inside = d < radius
    f = np.ones_like(d)
    f[inside] = (d[inside] / radius) ** (power - 1.0)
    return _warp(img, center[0] + dr * f, center[1] + dc * f)


def scale(img: np.ndarray, factor: float) -> np.ndarray:
    """Scaled by ``factor`` about the canvas centre (``< 1`` shrinks)."""
    rows, cols, c = _grid(img)
    return _warp(img, c + (rows - c) / factor, c + (cols - c) / factor)


def shear(img: np.ndarray, amount: float) -> np.ndarray:
    """Slanted: row ``r`` moves ``amount * (c - r)`` px to the right (``c`` the centre row), so
    for ``amount > 0`` the top rows move right of the bottom rows."""
    rows, cols, c = _grid(img)
    return _warp(img, rows, cols + amount * (rows - c))


def shift(img: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Moved ``dy`` px down and ``dx`` px right."""
    rows, cols, _ = _grid(img)
    return _warp(img, rows - dy, cols - dx)


_FUNCTIONS = {"thinning": thin, "thickening": thicken, "swelling": swell, "scale": scale,
              "shear": shear, "shift": shift}  # fmt: skip


def apply(img: np.ndarray, params: dict[str, dict]) -> np.ndarray:
    """The operations of ``params`` (name -> keyword arguments of its function) applied to
    ``img`` one after another, in the order of :data:`OPERATIONS`.

    Raises
    ------
    UsageError
        An unknown operation name.
    """
    unknown = sorted(set(params) - set(OPERATIONS))
    if unknown:
        raise UsageError(f"unknown operation {unknown[0]!r}; operations: {list(OPERATIONS)}")
    for op in OPERATIONS:
        if op in params:
            img = _FUNCTIONS[op](img, **params[op])
    return img


def draw(op: str, img: np.ndarray, rng: np.random.Generator) -> dict:
    """Random strength of operation ``op`` for image ``img`` (``(S, S)``; lengths scale with
    ``S / 32``): the keyword arguments of its function (ranges: module docstring)."""
    u = img.shape[0] / 32
    if op == "thinning":
        return {"radius": u * rng.uniform(1.0, 1.5)}
    if op == "thickening":
        return {"radius": u * rng.uniform(1.0, 2.0)}
    if op == "swelling":
        ink = np.argwhere(img > 0.5)
        if len(ink) == 0:  # a blank canvas: swell around the centre
            ink = np.array([[(img.shape[0] - 1) / 2] * 2])
        center = ink[rng.integers(len(ink))].astype(float)
        return {"center": tuple(center), "radius": 7.0 * u, "power": rng.uniform(1.5, 2.5)}
    if op == "scale":
        return {"factor": rng.uniform(0.6, 0.8)}
    if op == "shear":
        return {"amount": rng.uniform(0.25, 0.45)}
    if op == "shift":
        r, angle = u * rng.uniform(2.5, 4.0), rng.uniform(0.0, 2 * np.pi)
        return {"dy": r * np.sin(angle), "dx": r * np.cos(angle)}
    raise UsageError(f"unknown operation {op!r}; operations: {list(OPERATIONS)}")


def _load_digits() -> np.ndarray:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UsageError("the digits come from scikit-learn, which is not installed: "
                         "pip install 'conceptid[digits]'") from None  # fmt: skip
    return load_digits().images / 16.0  # (1797, 8, 8), grey levels 0-16


def base_digits(image_size: int = 32) -> np.ndarray:
    """The plain digits: ``(1797, S, S)`` float in [0, 1], each 8x8 digit upscaled (cubic,
    clipped to [0, 1]) to ``3S/4`` and centred on the ``S x S`` canvas.

    Raises
    ------
    UsageError
        ``image_size`` not 32 or 64, or scikit-learn not installed.
    """
    if image_size not in TRAINABLE_IMAGE_SIZES:
        raise UsageError(f"image_size must be one of {TRAINABLE_IMAGE_SIZES}, got {image_size!r}")
    small = _load_digits()
    box, pad = 3 * image_size // 4, image_size // 8
    zoom = _ndimage().zoom
    out = np.zeros((len(small), image_size, image_size))
    for i, d in enumerate(small):
        big = zoom(d, box / 8, order=3, grid_mode=True, mode="grid-constant")
        out[i, pad : pad + box, pad : pad + box] = np.clip(big, 0.0, 1.0)
    return out


def _names(sets: object, what: str, allowed: Sequence[str]) -> list[tuple[str, ...]]:
    if isinstance(sets, str) or not isinstance(sets, Sequence):
        raise UsageError(f"{what} must be a list of operation lists, got {sets!r}")
    out = []
    for s in sets:
        if isinstance(s, str) or not isinstance(s, Sequence) or len(set(s)) < 2:
            raise UsageError(f"{what}: {s!r} is not a list of two or more distinct operations")
        bad = [o for o in s if o not in allowed]
        if bad:
            raise UsageError(f"{what}: {bad[0]!r} is not one of the operations {list(allowed)}")
        out.append(tuple(o for o in allowed if o in s))
    return out


def morpho_digits(
    *,
    n_train: int = 500,
    n_val: int = 100,
    n_test: int = 500,
    seed: int = 0,
    image_size: int = 32,
    operations: Sequence[str] = OPERATIONS,
    held_out: Sequence[Sequence[str]] = DEFAULT_HELD_OUT,
    nuisance_dim: int = 8,
    block_sizes: Mapping[str, int] | None = None,
    name: str = "digits",
    max_memory: float | None = None,
) -> Dataset:
    """Real handwritten digits under image operations, as a dataset without ground truth.

    Contexts: ``obs`` (the plain digits), ``do(OP)`` for each operation, and the held-out
    compositions ``do(OP1,OP2)`` (test split only).

    Parameters
    ----------
    n_train, n_val, n_test : int
        Images per context in each split (held-out contexts: ``n_test``, test only); at most the
        size of the split's pool of source digits (1078, 180 and 539).
    seed : int
        Seeds the pools, the digits drawn and every strength.
    image_size : {32, 64}
    operations : sequence of str
        The concepts, a subset of :data:`OPERATIONS` (applied in that order when composed).
    held_out : sequence of operation lists
        Compositions to hold out, each of two or more of ``operations``.
    nuisance_dim : int
        Nuisance size of the models (digit identity and handwriting style vary in every
        context).
    block_sizes : mapping, optional
        The width of an operation's concept where it is not 1, e.g. ``{"shift": 2}``: a shift's
        direction and a swelling's centre are random, more than one degree of freedom.
    name : str
    max_memory : float, optional
        Memory limit in GiB.

    Returns
    -------
    Dataset
        uint8 ``(N, S, S, 3)`` images (grey, repeated over the channels); ``card["source"]``
        records the operations, their ranges, the pools and scikit-learn's version.

    Raises
    ------
    UsageError
        A count out of range or above its pool, an unknown operation, a malformed held-out
        list, an image size other than 32 or 64, or scikit-learn not installed.
    MemoryLimitError
        When the images would need more memory than the limit.
    """
    counts = {"train": n_train, "val": n_val, "test": n_test}
    for key, v in counts.items():
        check_number(v, f"n_{key}")
    seed = check_number(seed, "seed", minimum=0)
    if isinstance(operations, str) or not isinstance(operations, Sequence) or not operations:
        raise UsageError(f"operations must be a non-empty list of {list(OPERATIONS)}")
    bad = [o for o in operations if o not in OPERATIONS]
    if bad or len(set(operations)) != len(operations):
        raise UsageError(f"operations must be distinct names from {list(OPERATIONS)}, got "
                         f"{list(operations)}")  # fmt: skip
    ops = [o for o in OPERATIONS if o in operations]
    held = _names(held_out, "held_out", ops)
    widths = dict(block_sizes or {})
    if not isinstance(block_sizes, Mapping | None) or set(widths) - set(ops):
        raise UsageError(f"block_sizes must map some of the operations {ops} to widths, got "
                         f"{block_sizes!r}")  # fmt: skip
    blocks = [check_number(widths.get(op, 1), f"block_sizes[{op!r}]") for op in ops]
    if image_size not in TRAINABLE_IMAGE_SIZES:
        raise UsageError(f"image_size must be one of {TRAINABLE_IMAGE_SIZES}, got {image_size!r}")
    n_total = len(_load_digits())
    sizes = [math.ceil(f * n_total) for f in POOLS[1:]]
    sizes = [n_total - sum(sizes), *sizes]
    over = [f"n_{s} = {counts[s]} > {size}" for s, size in zip(SPLITS, sizes) if counts[s] > size]
    if over:
        raise UsageError(f"{over[0]}: each split's images come from its own pool of source "
                         f"digits (train/val/test {sizes[0]}/{sizes[1]}/{sizes[2]} of "
                         f"{n_total}), without replacement")  # fmt: skip
    targets = [(), *((o,) for o in ops), *held]
    rows = sum(counts[s] for s in SPLITS) * (1 + len(ops)) + n_test * len(held)
    check_memory(rows * image_size**2 * (3 + 8) + n_total * image_size**2 * 8,
                 f"{rows} digit images of {image_size}x{image_size}", max_memory)  # fmt: skip

    base = base_digits(image_size)
    perm = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3,))).permutation(n_total)
    pools = np.split(perm, np.cumsum(sizes)[:-1])
    xs, labels, split = [], [], []
    for s, split_name in enumerate(SPLITS):
        for k, ts in enumerate(targets):
            if k > len(ops) and split_name != "test":
                continue  # held-out compositions are test-only
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(4, s, k)))
            chosen = rng.choice(pools[s], size=counts[split_name], replace=False)
            for i in chosen:
                img = base[i]
                img = apply(img, {op: draw(op, img, rng) for op in ts}) if ts else img
                xs.append(img)
            labels += [k] * len(chosen)
            split += [s] * len(chosen)
    grey = np.round(255 * np.clip(np.stack(xs), 0.0, 1.0)).astype(np.uint8)
    x = np.repeat(grey[..., None], 3, axis=3)
    from sklearn import __version__ as sklearn_version

    source = {
        "kind": "morpho-digits",
        "digits": f"scikit-learn {sklearn_version} load_digits: {n_total} handwritten digits, 8x8",
        "image_size": image_size,
        "operations": {op: RANGES[op] for op in ops},
        "order": ops,
        "block_sizes": dict(zip(ops, blocks)),
        "pools": dict(zip(SPLITS, sizes)),
        "per_context": counts,
    }
    contexts = {context_name(ts): list(ts) for ts in targets}
    return from_arrays(x, np.array(labels), ops, contexts=contexts,
                       held_out=[list(h) for h in held], split=np.array(split, dtype=np.int8),
                       seed=seed, name=name, nuisance_dim=nuisance_dim, block_sizes=blocks,
                       source=source)  # fmt: skip
