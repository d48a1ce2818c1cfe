"""The one check of a number a caller passes (a count, a size, a rate), and of the keys of a dict
read from JSON.

Every layer validates its counts and rates with :func:`check_number`, so the rules (``bool`` is
not a number; numpy scalars are; a float is never a count; NaN and infinities are refused) and
the wording of the refusal are the same everywhere. Every ``from_dict`` of the model format
refuses keys it does not know with :func:`check_keys` (a misspelt key would otherwise be dropped
without a word), and names where in the dict a refusal arose with :func:`at`. Every JSON file
the package loads from a user goes through :func:`parse_json` (one wording for invalid JSON, for
text that is not UTF-8, for a key given twice and for JSON beyond the reader's limits), and every
file it only probes (a marker it may have written) through :func:`probe_json`; a JSON value on
the command line (``--preset-arg``) is parsed where it is read, refusing a key given twice
through the same :func:`unique_keys`.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import stat
from collections.abc import Iterable, Mapping

import numpy as np

from .errors import ConceptIDError, UsageError

__all__ = [
    "at",
    "check_keys",
    "check_number",
    "check_rng",
    "is_number",
    "json_limit",
    "parse_json",
    "probe_json",
    "read_bytes",
    "requirement",
    "torch_seed",
]


def requirement(*, integer: bool = True, minimum: float = 1, exclusive: bool = False) -> str:
    """The words for what :func:`check_number` accepts, e.g. ``"a positive integer"``."""
    if integer:
        if minimum == 1 and not exclusive or minimum == 0 and exclusive:
            return "a positive integer"
        if minimum == 0:
            return "a non-negative integer"
        return f"an integer {'>' if exclusive else '>='} {minimum}"
    if minimum == 0:
        return "a positive finite number" if exclusive else "a non-negative finite number"
    return f"a finite number {'>' if exclusive else '>='} {minimum}"


def check_number(
    value: object,
    name: str,
    *,
    integer: bool = True,
    minimum: float = 1,
    exclusive: bool = False,
    error: type[ConceptIDError] = UsageError,
) -> int | float:
    """``value`` as an ``int`` (``integer``) or a ``float``, if it is at least ``minimum``.

    Parameters
    ----------
    value : object
        An ``int`` or numpy integer for a count; any real number (numpy scalars included) when
        ``integer`` is false. ``bool`` is refused either way, and so is a float for a count.
    name : str
        How the caller calls it; the message starts with it.
    minimum : float
        The smallest value accepted (the default 1 makes a count positive).
    exclusive : bool
        Accept only values strictly above ``minimum`` (``minimum=0, exclusive=True``: positive).
    error : subclass of ConceptIDError
        What to raise (default :class:`UsageError`), so each layer keeps its own error type.

    Returns
    -------
    int or float

    Raises
    ------
    error
        ``"{name} must be {requirement}, got {value!r}"`` when ``value`` is of the wrong type,
        not finite, or out of range.
    """
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok:
        value = int(value) if integer else float(value)
        ok = (integer or math.isfinite(value)) and (
            value > minimum if exclusive else value >= minimum
        )
    if not ok:
        what = requirement(integer=integer, minimum=minimum, exclusive=exclusive)
        raise error(f"{name} must be {what}, got {value!r}")
    return value


def check_rng(rng: object, name: str = "rng", error: type[ConceptIDError] = UsageError) -> None:
    """Refuse anything but a :class:`numpy.random.Generator` (an int seed included: a caller
    seeds one with ``np.random.default_rng(seed)``), raising ``error`` naming ``name``."""
    if not isinstance(rng, np.random.Generator):
        raise error(f"{name} must be a numpy.random.Generator (np.random.default_rng(seed)), "
                    f"got {type(rng).__name__}")  # fmt: skip


def json_limit(err: Exception) -> str:
    """In one line, why Python's JSON reader refused a text that is valid JSON: an integer of
    more digits than ``sys.get_int_max_str_digits`` allows (a ``ValueError``), or arrays or
    objects nested too deeply to parse (a ``RecursionError``)."""
    if isinstance(err, RecursionError):
        return "nested too deeply"
    return str(err).splitlines()[0]


def parse_json(
    text: str | bytes,
    where: str,
    error: type[ConceptIDError] = UsageError,
    *,
    invalid: str = "is not valid JSON",
) -> object:
    """The JSON value of ``text`` (read from ``where``: a file's path, an option's name), or
    ``error`` in one line naming ``where``: ``"{where} {invalid}: {why}"`` for invalid JSON or
    bytes that are not UTF-8 text, a refusal of an object giving one key twice
    (:func:`unique_keys`), and ``"{where} is not JSON that can be read: {why}"`` for valid JSON
    beyond Python's reader (:func:`json_limit`)."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text, object_pairs_hook=unique_keys(where, error))
    except UnicodeDecodeError:
        raise error(f"{where} {invalid} (not UTF-8 text)") from None
    except json.JSONDecodeError as err:
        raise error(f"{where} {invalid}: {err}") from None
    except ConceptIDError:
        raise
    except (ValueError, RecursionError) as err:  # an integer of 5000 digits, 10^5 nested [
        raise error(f"{where} is not JSON that can be read: {json_limit(err)}") from None


#: the largest file :func:`read_bytes` reads: the JSON files the package takes (a model, a
#: spec, a sweep, a context table) are far smaller; a larger one is refused before it is read
MAX_READ_BYTES = 256 * 2**20


def read_bytes(path: str | os.PathLike, error: type[ConceptIDError], what: str = "") -> bytes:
    """The bytes of the file ``path``, or ``error`` in one line, ``"cannot read {what}{path}:
    {why}"``, when it cannot be read (missing, a directory, no permission, a NUL byte in the
    path, a device such as /dev/zero, which would never end; larger than
    :data:`MAX_READ_BYTES`). A named pipe (``<(...)``, ``/dev/stdin``) is read: it ends when its
    writer does."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # missing, or a NUL byte in the path: open names it below
        mode = 0
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise error(f"cannot read {what}{path}: a device, not a file")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_READ_BYTES + 1)
    except (OSError, ValueError) as err:  # ValueError: a path with a NUL byte
        why = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise error(f"cannot read {what}{path}: {why}") from None
    if len(data) > MAX_READ_BYTES:
        raise error(f"cannot read {what}{path}: larger than {MAX_READ_BYTES / 2**20:g} MiB, "
                    "the limit of the JSON files the package reads (give large arrays, such "
                    "as labels, as .npy files)")  # fmt: skip
    return data


def probe_json(path: str | os.PathLike) -> object | None:
    """The JSON value in the file ``path``, or ``None`` where it cannot be read or parsed: for a
    file the package may have written (a marker, a record), asked about rather than loaded."""
    try:
        with open(path, "rb") as fh:
            return json.loads(fh.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def torch_seed(seed: int) -> int:
    """``seed`` (an integer >= 0 of any size, as numpy's generators take it) as torch's
    generators take it: 64 bits. A seed below ``2**64`` is itself; a larger one (given, or
    offset before use: restart ``r`` trains from ``seed + 1000 r``) is reduced modulo
    ``2**64``."""
    return int(seed) % 2**64


def is_number(
    value: object, *, integer: bool = True, minimum: float = 1, exclusive: bool = False
) -> bool:
    """Whether :func:`check_number` accepts ``value`` under these rules (for a caller that
    words its own refusal, or that only asks)."""
    try:
        check_number(value, "value", integer=integer, minimum=minimum, exclusive=exclusive)
    except UsageError:
        return False
    return True


def check_keys(
    d: Mapping, known: Iterable[str], what: str, error: type[ConceptIDError] = UsageError
) -> None:
    """Refuse the keys of ``d`` outside ``known``: ``error`` with ``"unknown {what} key(s)
    [...]; known: [...]"``."""
    known = list(known)
    unknown = sorted((k for k in d if k not in known), key=str)
    if unknown:
        raise error(f"unknown {what} key(s) {unknown}; known: {known}")


#: a message that starts with a key path (``interventions[0]: ...``)
_PATH = re.compile(r"[A-Za-z_]\w*(\[\d+\])*(\.[A-Za-z_]\w*(\[\d+\])*)*: ")


def at(path: str, err: ConceptIDError) -> ConceptIDError:
    """``err``, of the same type, with its message placed under the key path ``path``:
    ``"path.inner[0]: ..."`` when the message already starts with a key path, else
    ``"path: message"``. For ``raise at(key, err) from None`` in the ``from_dict`` of a dict
    that holds other dicts."""
    msg = str(err)
    return type(err)(f"{path}.{msg}" if _PATH.match(msg) else f"{path}: {msg}")


def unique_keys(where: str, error: type[ConceptIDError] = UsageError):
    """An ``object_pairs_hook`` for :func:`json.load` that refuses an object giving one key
    twice (JSON would keep the last one without a word), raising ``error`` naming ``where``."""

    def hook(pairs: list[tuple[str, object]]) -> dict:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise error(f"{where} gives the key {key!r} twice in one object; each key may "
                            "appear once")  # fmt: skip
            seen.add(key)
        return dict(pairs)

    return hook
