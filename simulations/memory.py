"""The memory limit and the check of a request against it, before anything is allocated.

The limit is, in order: an explicit ``max_memory`` (GiB; ``--max-memory`` on the command line),
the environment variable :data:`ENV` (GiB), or the memory available now: ``MemAvailable`` of
``/proc/meminfo`` (else ``os.sysconf``), lowered to what the control group (container) still
allows. When none of these can be read, nothing is refused. The estimates of what a benchmark
request allocates live in :mod:`.resources`, which builds on this module; the sampler
(:mod:`.sem`, :mod:`.model`) checks its draws here, below both.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from .errors import UsageError
from .validation import check_number

__all__ = [
    "ENV",
    "GIB",
    "SMALL_REQUEST",
    "MemoryLimitError",
    "available_memory",
    "check_memory",
    "memory_limit",
    "sample_bytes",
]

#: environment variable holding the memory limit in GiB (overrides the available memory)
ENV = "CONCEPTID_MAX_MEMORY"
GIB = 2**30
#: per image value, roughly: a float64 render (the injective renderer's; the quad renderer's is
#: float32, which to_uint8 copies to float64), then to_uint8's scaled copy and its rounding
_IMAGE_TEMP_BYTES = 8 + 8 + 8


class MemoryLimitError(UsageError):
    """A request would need more memory than the machine has (or the limit set allows)."""


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
        return math.ceil(gib * GIB), "limit given as max_memory"
    text = os.environ.get(ENV)
    if text is not None and text.strip():
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"{ENV} must be a number of GiB, got {text!r}") from None
        gib = check_number(value, ENV, integer=False, minimum=0, exclusive=True)
        # the command line's --max-memory sets the variable while a command runs
        return math.ceil(gib * GIB), f"limit set by --max-memory or {ENV}"
    return available_memory(), "memory available on this machine"


#: requests below this many bytes are not checked against the memory available now when no
#: limit is set: reading it (``/proc/meminfo`` and the control group) costs about 0.15 ms, ten
#: times a small draw, and a machine that runs the package has this much
SMALL_REQUEST = 16 * 2**20


def check_memory(needed: int, what: str, max_memory: float | None = None, *,
                 setting: str = "--max-memory (Python: max_memory=)",
                 advice: str = "ask for fewer samples (or a smaller model)") -> None:  # fmt: skip
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
    advice : str
        What the caller's user can ask for instead, for the message.

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
            f"{source}; {advice}, or set the limit in GiB with "
            f"{setting} or the {ENV} environment variable"
        )


def _gib(n: int) -> str:
    gib = n / GIB
    return f"{gib:,.0f}" if gib >= 100 else f"{gib:.3g}"


def sample_bytes(n: int, K: int, nuisance_dim: int, obs_values: int, *, image: bool) -> int:
    """Rough peak bytes of drawing ``n`` samples of a model (concepts, nuisance, embedding and
    the observations of ``obs_values`` values each, with the mixing's or renderer's
    temporaries): one (split, context) cell of
    :func:`~conceptid.simulations.resources.estimate_dataset`, and what
    :meth:`~conceptid.simulations.model.ConceptModel.sample` checks before it allocates."""
    d = K + nuisance_dim
    if image:
        return n * (obs_values * _IMAGE_TEMP_BYTES + 8 * 2 * d)
    return n * (8 * (K + nuisance_dim + d + 3 * obs_values) + 4 * obs_values)
