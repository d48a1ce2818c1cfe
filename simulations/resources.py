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

The limit is, in order: an explicit ``max_memory`` (GiB; ``--max-memory`` on the command line),
the environment variable :data:`ENV` (GiB), or the memory available now: ``MemAvailable`` of
``/proc/meminfo`` (else ``os.sysconf``), lowered to what the control group (container) still
allows. When none of these can be read, nothing is refused.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .validation import check_number, is_number

__all__ = [
    "ENV",
    "GIB",
    "DatasetEstimate",
    "MemoryLimitError",
    "available_memory",
    "check_memory",
    "estimate_dataset",
    "memory_limit",
    "sample_bytes",
    "training_bytes",
]

#: environment variable holding the memory limit in GiB (overrides the available memory)
ENV = "CONCEPTID_MAX_MEMORY"
GIB = 2**30
_CONTEXT_BYTES = 4096  # rough cost of one context object (its interventions, name, arrays)
#: per image value, roughly: a float64 render (the injective renderer's; the quad renderer's is
#: float32, which to_uint8 copies to float64), then to_uint8's scaled copy and its rounding
_IMAGE_TEMP_BYTES = 8 + 8 + 8


class MemoryLimitError(UsageError):
    """A request would need more memory than the machine has (or the limit set allows)."""


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


def _cgroup_room() -> int | None:
    """Bytes the process's control group still allows (v2, else v1), or None without a limit."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        # "max" (v2) or a huge page-rounded number (v1) means no limit
        if limit.isdigit() and int(limit) < 2**60:
            return max(0, int(limit) - usage)
    return None


def available_memory() -> int | None:
    """Bytes of memory available to this process now, or None when it cannot be read."""
    found = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found = int(line.split()[1]) * 1024  # the file counts kB
                break
    except (OSError, ValueError, IndexError):
        pass
    if found is None:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            found = None
    room = _cgroup_room()
    if room is not None:
        found = room if found is None else min(found, room)
    return found


def memory_limit(max_memory: float | None = None) -> tuple[int | None, str]:
    """The limit in bytes and where it comes from (``None`` bytes: no limit known).

    Parameters
    ----------
    max_memory : float, optional
        An explicit limit in GiB (positive); otherwise :data:`ENV`, otherwise the memory
        available now.

    Raises
    ------
    UsageError
        If ``max_memory`` or the environment variable is not a positive number.
    """
    if max_memory is not None:
        gib = check_number(max_memory, "max_memory (GiB)", integer=False, minimum=0, exclusive=True)
        return int(gib * GIB), "limit given as max_memory"
    text = os.environ.get(ENV)
    if text is not None and text.strip():
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"{ENV} must be a number of GiB, got {text!r}") from None
        gib = check_number(value, ENV, integer=False, minimum=0, exclusive=True)
        return int(gib * GIB), f"limit set by {ENV} (or --max-memory)"
    return available_memory(), "memory available on this machine"


#: requests below this many bytes are not checked against the memory available now when no
#: limit is set: reading it (``/proc/meminfo`` and the control group) costs about 0.15 ms, ten
#: times a small draw, and a machine that runs the package has this much
SMALL_REQUEST = 16 * 2**20


def check_memory(needed: int, what: str, max_memory: float | None = None, *,
                 setting: str = "--max-memory (Python: max_memory=)") -> None:  # fmt: skip
    """Refuse a request that needs more than the limit of :func:`memory_limit`.

    Parameters
    ----------
    needed : int
        Estimated bytes.
    what : str
        The request, for the message (e.g. ``"the benchmark"``).
    max_memory : float, optional
        Limit in GiB (see :func:`memory_limit`).
    setting : str
        How the caller's user sets the limit, for the message (besides the environment
        variable).

    Raises
    ------
    MemoryLimitError
        With the estimate and the limit in GiB and the ways to change the limit.
    """
    if max_memory is None and needed < SMALL_REQUEST and not os.environ.get(ENV, "").strip():
        return  # no limit set, and any machine has this much: not worth reading /proc
    limit, source = memory_limit(max_memory)
    if limit is not None and needed > limit:
        raise MemoryLimitError(
            f"{what} needs about {_gib(needed)} GiB, more than the {_gib(limit)} GiB "
            f"{source}; ask for fewer samples (or a smaller model), or set the limit in GiB with "
            f"{setting} or the {ENV} environment variable"
        )


def _gib(n: int) -> str:
    gib = n / GIB
    return f"{gib:,.0f}" if gib >= 100 else f"{gib:.3g}"


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


def sample_bytes(n: int, K: int, nuisance_dim: int, obs_values: int, *, image: bool) -> int:
    """Rough peak bytes of drawing ``n`` samples of a model (concepts, nuisance, embedding and
    the observations of ``obs_values`` values each, with the mixing's or renderer's
    temporaries): one (split, context) cell of :func:`estimate_dataset`, and what
    :meth:`~conceptid.simulations.model.ConceptModel.sample` checks before it allocates."""
    d = K + nuisance_dim
    if image:
        return n * (obs_values * _IMAGE_TEMP_BYTES + 8 * 2 * d)
    return n * (8 * (K + nuisance_dim + d + 3 * obs_values) + 4 * obs_values)


def training_bytes(rows: int, obs_shape: tuple[int, ...]) -> int:
    """Bytes of the training tensors of a dataset: every row's observation as float32, twice
    (the tensors and their normalised copies)."""
    return 2 * 4 * rows * math.prod(obs_shape)
