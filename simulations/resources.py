"""Memory estimates of a request, checked against what the machine has before anything is allocated.

A benchmark request (:class:`~conceptid.simulations.benchmark.BenchmarkSpec`) fixes every array it
will
produce, so its memory is known from the spec alone: rows per split and context, times the size
of a row (observation, concepts, nuisance, labels), plus the sampler's temporaries of one
(split, context) cell and the model's parameters. :func:`estimate_dataset` computes it without
building the model for the built-in presets, so that a request of a million concepts is refused
before a ``K x K`` matrix exists. The estimate is deliberately rough (within a small factor of the
true peak, never below the arrays themselves); its purpose is to refuse requests that cannot fit,
not to budget tightly.

The limit and the check against it (:func:`check_memory`, :data:`ENV`) live in :mod:`.memory`,
below the sampler, and are re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .memory import (  # the limit and its check: here too for the callers of this module
    ENV,
    GIB,
    SMALL_REQUEST,
    MemoryLimitError,
    available_memory,
    check_memory,
    memory_limit,
    sample_bytes,
)
from .validation import is_number

__all__ = [
    "ENV",
    "GIB",
    "SMALL_REQUEST",
    "DatasetEstimate",
    "MemoryLimitError",
    "available_memory",
    "check_memory",
    "estimate_dataset",
    "memory_limit",
    "sample_bytes",
    "training_bytes",
]

_CONTEXT_BYTES = 4096  # rough cost of one context object (its interventions, name, arrays)


@dataclass(frozen=True)
class DatasetEstimate:
    """What a benchmark request will allocate.

    Attributes
    ----------
    rows : int
        Samples over all splits and contexts.
    obs_shape : tuple of int
        Shape of one observation (``(p,)`` or ``(S, S, 3)``).
    obs_itemsize : int
        Bytes per observation value (4: float32 vectors; 1: uint8 images).
    array_bytes : int
        Bytes of the dataset's arrays (what :class:`~conceptid.simulations.benchmark.Dataset`
        holds).
    peak_bytes : int
        Estimated peak while generating: the per-cell arrays and their concatenation, one cell's
        sampling temporaries, and the model.
    """

    rows: int
    obs_shape: tuple[int, ...]
    obs_itemsize: int
    array_bytes: int
    peak_bytes: int


def _count(value, minimum: int = 0) -> int | None:
    """``value`` as an int if it is an integer >= ``minimum`` (:func:`is_number`, the builders'
    rule), else None (the builder refuses it)."""
    return int(value) if is_number(value, minimum=minimum) else None


def _n_held(held_out, targets: int) -> int | None:
    if held_out is None:
        return 0
    if held_out == "pairs":
        return math.comb(targets, 2)
    if held_out == "all":
        return 2**targets - targets - 1
    if isinstance(held_out, list | tuple):
        return len(held_out)
    return None


def _preset_dims(preset: str, args: dict):
    """(K, nuisance_dim, obs_shape, obs_itemsize, p or None, mixing params, training contexts,
    held-out contexts) of a built-in preset, or None when an argument is malformed (the preset's
    builder then refuses it with its own message)."""
    import inspect

    from .presets import PRESETS, QUAD_TARGETS, QUAD_TARGETS_IDENTIFIABLE

    if preset not in PRESETS:
        return None
    params = inspect.signature(PRESETS[preset]).parameters
    if any(k not in params for k in args):
        return None
    a = {k: p.default for k, p in params.items() if k != "rng"} | dict(args)
    if preset == "quad":
        nd = 2 if a["nuisance"] else 0
        targets = len(QUAD_TARGETS_IDENTIFIABLE if a["identifiable"] is True else QUAD_TARGETS)
        held = _n_held(a["held_out"], targets)
        if a["mixing"] == "image":
            size = _count(a["image_size"], 1)
            if size is None or held is None:
                return None
            return 8, nd, (size, size, 3), 1, 0, 1 + targets, held
        return 8, nd, (8 + nd,), 4, 8 * (8 + nd) ** 2, 1 + targets, held
    m, nd = _count(a["m"], 1), _count(a["nuisance_dim"])
    bs = a["block_size"]
    if m is None or nd is None:
        return None
    if _count(bs, 1) is not None:
        K = m * bs
    elif isinstance(bs, list | tuple) and all(_count(k, 1) for k in bs):
        K = sum(bs)
    else:
        return None
    d = K + nd
    p = d if a["mixing"] == "identity" else _count(a["p"], 1) if a["p"] is not None else 2 * d
    held = _n_held(a["held_out"], m)
    if p is None or held is None:
        return None
    layers = 4 if a["mixing"] == "mlp" else 1  # the MLP's default depth, with margin
    params_bytes = 8 * (K * K + d * d + layers * max(p, d) ** 2)
    return K, nd, (p,), 4, params_bytes, m + 1, held


def estimate_dataset(spec) -> DatasetEstimate | None:
    """Memory of generating ``spec``; None when the spec is too malformed to size (the generator
    refuses it with its own message).

    Parameters
    ----------
    spec : BenchmarkSpec

    Returns
    -------
    DatasetEstimate or None
    """
    if spec.model is not None:
        from .model import ConceptModel

        model = ConceptModel.from_dict(spec.model)  # given explicitly: already of its size
        obs = tuple(model.mixing.output_shape)
        image = model.mixing.kind == "image"
        dims = (
            model.K, model.nuisance_dim, obs, 1 if image else 4, 0, len(model.contexts),
            len(model.held_out),
        )  # fmt: skip
    else:
        dims = _preset_dims(spec.preset, spec.preset_args)
        if dims is None:
            return None
    K, nd, obs, itemsize, params_bytes, n_train_ctx, n_held = dims
    rows = (spec.n_train + spec.n_val) * n_train_ctx + spec.n_test * (n_train_ctx + n_held)
    obs_values = math.prod(obs)
    row_bytes = obs_values * itemsize + 8 * (K + nd) + 2 + 1  # x, concepts, nuisance, labels
    array_bytes = rows * row_bytes
    cell = max(spec.n_train, spec.n_val, spec.n_test)
    cell_bytes = sample_bytes(cell, K, nd, obs_values, image=itemsize == 1)
    contexts_bytes = (n_train_ctx + n_held) * _CONTEXT_BYTES
    peak = 2 * array_bytes + cell_bytes + params_bytes + contexts_bytes
    return DatasetEstimate(rows, obs, itemsize, array_bytes, peak)


def training_bytes(rows: int, obs_shape: tuple[int, ...]) -> int:
    """Bytes of the training tensors of a dataset: every row's observation as float32, twice
    (the tensors and their normalised copies)."""
    return 2 * 4 * rows * math.prod(obs_shape)
