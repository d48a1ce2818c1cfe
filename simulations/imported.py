"""A user's own intervention data as a dataset: from arrays, or one folder of images per context.

The data are observations, each labelled with the *target set* of its context (the concepts that
context intervenes on; the empty set is the observational context). There are no ground-truth
concepts: the card says ``ground_truth: null``, the ``concepts`` and ``nuisance`` arrays are
``(N, 0)``, and the card names the nuisance size the models trained on it will use. Otherwise the
dataset is written, hashed and verified exactly like a generated one
(:meth:`~conceptid.simulations.benchmark.Dataset.save`,
:func:`~conceptid.simulations.benchmark.load_dataset`).

Three ways in, one path (:func:`from_arrays`):

- :func:`from_arrays`: ``x`` ``(N, p)`` real vectors or ``(N, H, W, 3)`` uint8 images, and per
  sample its target set (a list of concept names), or a context index (or name) with a
  per-context target table;
- :func:`from_files`: ``x.npy`` and a JSON file holding the concepts, the contexts and the
  per-sample labels (``conceptid import --arrays X.npy --contexts CTX.json``);
- :func:`from_folders`: a root folder holding ``contexts.json`` and one folder of PNG images per
  context (``conceptid import --folders ROOT``).

Splits are drawn per context from the seed (``SeedSequence(seed, spawn_key=(2, k))`` for context
``k``) in the given fractions, or given per sample; held-out contexts (compositions never seen in
training) are test-only. Every refusal happens before anything is built or written: a
:class:`~conceptid.simulations.benchmark.DatasetError` for the data (shape, dtype, NaN, an unknown
target
name, a context without samples, an image size the models do not take, no observational context,
a malformed JSON file), a :class:`~conceptid.simulations.errors.UsageError` for an argument (seed,
fractions, nuisance size); each names what was wrong.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .benchmark import (
    FORMAT,
    SPLITS,
    Dataset,
    DatasetError,
    _json_plain,
    package_version,
    read_json,
    seal,
)
from .errors import UsageError
from .resources import check_memory
from .validation import check_number

__all__ = [
    "CONTEXTS_FILE",
    "DEFAULT_FRACTIONS",
    "TRAINABLE_IMAGE_SIZES",
    "context_name",
    "from_arrays",
    "from_files",
    "from_folders",
    "parse_fractions",
]

#: image sizes the models take (``conceptid.models.nets.IMAGE_SIZES``; a test keeps them equal): an
#: imported image dataset of another size could never be trained on, so it is refused at once
TRAINABLE_IMAGE_SIZES = (32, 64)
#: train, validation and test fractions of every training context when the split is drawn
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
#: the file naming each context's targets in a folder import
CONTEXTS_FILE = "contexts.json"
#: PNG modes read losslessly as 8-bit RGB (an alpha channel only when every pixel is opaque)
_PNG_MODES = ("1", "L", "P", "RGB", "LA", "RGBA")
#: the first eight bytes of every PNG file
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FOLDER_KEYS = {"concepts", "contexts", "held_out", "block_sizes"}
_ARRAY_KEYS = _FOLDER_KEYS | {"labels", "split"}


def context_name(targets: Sequence[str]) -> str:
    """The name a context gets from its target set, as in generated datasets: ``obs``,
    ``do(a)``, ``do(a,b)``."""
    return f"do({','.join(targets)})" if targets else "obs"


# ---------------------------------------------------------------------------------- checks


def _concept_names(names: object) -> list[str]:
    if isinstance(names, str) or not isinstance(names, Sequence | np.ndarray):
        raise DatasetError(f"concept names must be a list of strings, got {names!r}")
    out = []
    for n in names:
        if not isinstance(n, str) or not n.strip():
            raise DatasetError(f"a concept name must be a non-empty string, got {n!r}")
        if "," in n or n != n.strip():
            raise DatasetError(f"concept name {n!r} may not contain a comma or start or end with "
                               "a space (command lines list targets as a,b)")  # fmt: skip
        out.append(n)
    if not out:
        raise DatasetError("no concept names: at least one concept is needed")
    twice = sorted({n for n in out if out.count(n) > 1})
    if twice:
        raise DatasetError(f"concept names must be distinct; {twice} appear more than once")
    return out


def _block_sizes(sizes: object, m: int) -> list[int]:
    if sizes is None:
        return [1] * m
    if isinstance(sizes, str) or not isinstance(sizes, Sequence | np.ndarray) or len(sizes) != m:
        raise DatasetError(f"block_sizes must be a list of {m} positive integers (one per "
                           f"concept), got {sizes!r}")  # fmt: skip
    return [check_number(b, "block_sizes", error=DatasetError) for b in sizes]


def _integers_or_names(values: object, what: str, want: str) -> None:
    """Refuses a boolean (numpy would read ``True`` as 1) and, in a list, anything that is
    neither an integer nor a string (a float, a nested list), naming the first."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "b":
            raise DatasetError(f"{what}s are booleans (dtype bool), not {want}s")
        if values.dtype.kind != "O":
            return
    elif isinstance(values, str) or not isinstance(values, Sequence):
        return
    for i, v in enumerate(values):
        if isinstance(v, bool | np.bool_):
            raise DatasetError(f"{what} {v!r} (sample {i}) is a boolean, not {want}")
        if not isinstance(v, str | numbers.Integral):
            raise DatasetError(f"{what} {v!r} (sample {i}) is not {want}")


def _observations(x: object) -> np.ndarray:
    """``x`` as float32 ``(N, p)`` vectors or uint8 ``(N, S, S, 3)`` images, checked."""
    a = x if isinstance(x, np.ndarray) else np.asarray(x) if isinstance(x, Sequence) else None
    if a is None or a.dtype == object:
        raise DatasetError(f"x must be a numeric array, got {type(x).__name__}")
    if a.ndim == 4:
        if a.shape[3] != 3:
            raise DatasetError(f"images must be RGB, (N, H, W, 3); x has shape {a.shape}")
        if a.dtype != np.uint8:
            raise DatasetError(f"images must be uint8 (0-255), x is {a.dtype}; for values in "
                               "[0, 1] pass np.round(255 * x).astype(np.uint8)")  # fmt: skip
        h, w = a.shape[1:3]
        if h != w or h not in TRAINABLE_IMAGE_SIZES:
            sizes = " or ".join(f"{s}x{s}" for s in TRAINABLE_IMAGE_SIZES)
            raise DatasetError(f"images are {h}x{w} pixels; the models take {sizes}: resize "
                               "them first")  # fmt: skip
        out = np.ascontiguousarray(a)
    elif a.ndim == 2:
        if a.dtype.kind not in "fiu":
            raise DatasetError(f"vectors must be real numbers, x is {a.dtype}")
        if a.shape[1] == 0:
            raise DatasetError("x has shape (N, 0): vectors need at least one coordinate")
        with np.errstate(over="ignore", invalid="ignore"):  # refused below, in one line
            out = np.ascontiguousarray(a, dtype=np.float32)
        bad = ~np.isfinite(out)
        if bad.any():
            rows = np.flatnonzero(bad.any(1))
            raise DatasetError(f"x holds NaN or infinite values (or values beyond float32's "
                               f"range) in {rows.size} row{'s' * (rows.size != 1)}, the first "
                               f"row {rows[0]}")  # fmt: skip
    else:
        raise DatasetError(f"x must be (N, p) vectors or (N, H, W, 3) uint8 images, got shape "
                           f"{a.shape}")  # fmt: skip
    if out.shape[0] == 0:
        raise DatasetError("x holds no samples")
    return out


def _target_set(ts: object, names: list[str], where: str) -> tuple[str, ...]:
    """A target set as a tuple in concept order; refuses a bare string, an unknown name and a
    name given twice."""
    if isinstance(ts, str) or not isinstance(ts, Sequence | np.ndarray):
        raise DatasetError(f"{where}: a target set must be a list of concept names, got {ts!r}")
    given = list(ts)
    unknown = [t for t in given if not isinstance(t, str) or t not in names]
    if unknown:
        raise DatasetError(f"{where}: unknown target {unknown[0]!r}; the concepts are {names}")
    twice = sorted({t for t in given if given.count(t) > 1})
    if twice:
        raise DatasetError(f"{where}: target {twice[0]!r} is named twice")
    return tuple(n for n in names if n in given)


def _table(contexts: object, names: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    """``contexts`` (a mapping name -> targets, or a list of target sets) as (name, targets)."""
    if isinstance(contexts, Mapping):
        items = list(contexts.items())
    elif isinstance(contexts, Sequence) and not isinstance(contexts, str):
        items = [(None, ts) for ts in contexts]
    else:
        raise DatasetError(f"contexts must map each context's name to its targets (or list the "
                           f"target sets), got {contexts!r}")  # fmt: skip
    if not items:
        raise DatasetError("contexts is empty: at least the observational context is needed")
    table = []
    for name, ts in items:
        where = f"context {name!r}" if name is not None else f"context {len(table)}"
        targets = _target_set(ts, names, where)
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise DatasetError(f"a context name must be a non-empty string, got {name!r}")
        table.append((name if name is not None else context_name(targets), targets))
    return table


def _labels(
    targets: object, contexts: object, names: list[str], n: int
) -> tuple[list[tuple[str, tuple[str, ...]]], np.ndarray]:
    """The context table and each sample's index into it."""
    if contexts is None:  # one target set per sample: the contexts are the distinct sets
        if isinstance(targets, str) or not isinstance(targets, Sequence | np.ndarray):
            raise DatasetError(f"targets must give one target set per sample, got {targets!r}")
        if len(targets) != n:
            raise DatasetError(f"targets gives {len(targets)} target sets for {n} samples")
        keys = [_target_set(ts, names, f"sample {i}") for i, ts in enumerate(targets)]
        order = {name: j for j, name in enumerate(names)}
        sets = sorted(set(keys), key=lambda t: (len(t), [order[c] for c in t]))
        index = {t: k for k, t in enumerate(sets)}
        table = [(context_name(t), t) for t in sets]
        return table, np.array([index[t] for t in keys], dtype=np.int64)
    table = _table(contexts, names)
    _integers_or_names(targets, "context label", "a context index (an integer) or name")
    labels = np.asarray(targets)
    if labels.ndim != 1 or len(labels) != n:
        raise DatasetError(f"context labels must be one per sample, shape ({n},); got shape "
                           f"{labels.shape}")  # fmt: skip
    if labels.dtype.kind in "iu":
        bad = np.flatnonzero((labels < 0) | (labels >= len(table)))
        if bad.size:
            raise DatasetError(f"context label {labels[bad[0]]} (sample {bad[0]}) is not a "
                               f"context index 0-{len(table) - 1}")  # fmt: skip
        return table, labels.astype(np.int64)
    if labels.dtype.kind in "UO":
        index = {name: k for k, (name, _) in enumerate(table)}
        out = np.empty(n, dtype=np.int64)
        for i, lab in enumerate(labels.tolist()):
            if lab not in index:
                raise DatasetError(f"sample {i} is labelled {lab!r}, which is not a context; "
                                   f"contexts: {list(index)}")  # fmt: skip
            out[i] = index[lab]
        return table, out
    raise DatasetError(f"context labels must be context indices or names, got {labels.dtype}")


def _check_table(table: list[tuple[str, tuple[str, ...]]], labels: np.ndarray) -> None:
    names = [name for name, _ in table]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise DatasetError(f"context {twice[0]!r} is named twice")
    seen: dict[tuple[str, ...], str] = {}
    for name, ts in table:
        if ts in seen:  # the models have one law per target set: two contexts would be merged
            raise DatasetError(f"contexts {seen[ts]!r} and {name!r} have the same targets "
                               f"{list(ts)}; give each target set one context")  # fmt: skip
        seen[ts] = name
    if () not in seen:
        listed = ", ".join(f"{name} {list(ts)}" for name, ts in table)
        raise DatasetError(f"no observational context (one with no targets, []) among the "
                           f"contexts: {listed}; the models learn every intervention "
                           f"against it")  # fmt: skip
    counts = np.bincount(labels, minlength=len(table))
    empty = [table[k][0] for k in np.flatnonzero(counts == 0)]
    if empty:
        raise DatasetError(f"context {empty[0]!r} has no samples")


def _held_out(held_out: object, table, names: list[str]) -> set[int]:
    if held_out is None:
        return set()
    if isinstance(held_out, str) or not isinstance(held_out, Sequence):
        raise DatasetError(f"held_out must be a list of target sets, got {held_out!r}")
    index = {ts: k for k, (_, ts) in enumerate(table)}
    out: set[int] = set()
    for ts in held_out:
        key = _target_set(ts, names, "held_out")
        if key not in index:
            raise DatasetError(f"held_out {list(key)} matches no context's targets; a held-out "
                               "composition needs its own samples to be tested on")  # fmt: skip
        if not key:
            raise DatasetError("held_out names the observational context []; it is needed "
                               "for training")  # fmt: skip
        if len(key) < 2:  # as simulate: a single intervention is trained on, not held out
            raise DatasetError(f"a held-out composition needs at least two targets, got "
                               f"{list(key)}")  # fmt: skip
        if index[key] in out:
            raise DatasetError(f"held_out names {list(key)} twice; give each held-out "
                               "composition once")  # fmt: skip
        out.add(index[key])
    trained = {t for k, (_, ts) in enumerate(table) if k not in out for t in ts}
    for k in sorted(out):
        never = [t for t in table[k][1] if t not in trained]
        if never:
            raise DatasetError(f"held-out context {table[k][0]!r} intervenes on {never}, which no "
                               "training context intervenes on: no model can compose it (each "
                               "intervention is learned from a training context that makes "
                               "it)")  # fmt: skip
    return out


def parse_fractions(fractions: object) -> tuple[float, float, float]:
    """``(train, val, test)`` fractions: three non-negative numbers summing to 1 (a string
    ``"0.7,0.15,0.15"`` too).

    Raises
    ------
    UsageError
        Naming what is wrong.
    """
    if isinstance(fractions, str):
        try:
            fractions = [float(f) for f in fractions.split(",")]
        except ValueError:
            raise UsageError(f"split fractions must be three numbers TRAIN,VAL,TEST, got "
                             f"{fractions!r}") from None  # fmt: skip
    if not isinstance(fractions, Sequence | np.ndarray) or len(fractions) != 3:
        raise UsageError(f"split fractions must be three numbers (train, val, test), got "
                         f"{fractions!r}")  # fmt: skip
    out = tuple(check_number(f, "a split fraction", integer=False, minimum=0) for f in fractions)
    if not math.isclose(sum(out), 1.0, abs_tol=1e-9):
        raise UsageError(f"split fractions must sum to 1, got {list(out)} (sum {sum(out):g})")
    return out


def _given_split(split: object, n: int) -> np.ndarray:
    _integers_or_names(split, "split value", f"a split name ({', '.join(SPLITS)}) or index 0-2")
    s = np.asarray(split)
    if s.ndim != 1 or len(s) != n:
        raise DatasetError(f"split must give one split per sample, shape ({n},); got {s.shape}")
    if s.dtype.kind in "UO":
        index = {name: k for k, name in enumerate(SPLITS)}
        bad = [v for v in s.tolist() if v not in index]
        if bad:
            raise DatasetError(f"split value {bad[0]!r} is not one of {list(SPLITS)}")
        return np.array([index[v] for v in s.tolist()], dtype=np.int8)
    if s.dtype.kind in "iu":
        bad = np.flatnonzero((s < 0) | (s >= len(SPLITS)))
        if bad.size:
            raise DatasetError(f"split value {s[bad[0]]} (sample {bad[0]}) is not 0, 1 or 2 "
                               f"({', '.join(SPLITS)})")  # fmt: skip
        return s.astype(np.int8)
    raise DatasetError(f"split must hold split names {list(SPLITS)} or indices, got {s.dtype}")


def _drawn_split(labels: np.ndarray, n_contexts: int, held: set[int], fractions, seed: int):
    """Each training context's rows permuted by its own stream and cut in the fractions (largest
    remainder, so the counts add up); held-out contexts test-only."""
    split = np.full(len(labels), SPLITS.index("test"), dtype=np.int8)
    for k in range(n_contexts):
        if k in held:
            continue
        rows = np.flatnonzero(labels == k)
        exact = np.array(fractions) * rows.size
        counts = np.floor(exact).astype(int)
        extra = rows.size - counts.sum()
        counts[np.argsort(-(exact - counts), kind="stable")[:extra]] += 1
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2, k)))
        perm = rng.permutation(rows)
        split[perm] = np.repeat(np.arange(3, dtype=np.int8), counts)
    return split


def _check_split(split: np.ndarray, labels: np.ndarray, table, held: set[int], drawn) -> None:
    for k in sorted(held):
        if (split[labels == k] != SPLITS.index("test")).any():
            raise DatasetError(f"held-out context {table[k][0]!r} has samples outside the test "
                               "split; a held-out composition is never trained on")  # fmt: skip
    for k, (name, _) in enumerate(table):
        mine = split[labels == k]
        if k in held:
            continue
        missing = [s for j, s in enumerate(SPLITS) if not (mine == j).any()]
        if missing:
            how = f" with split fractions {list(drawn)}" if drawn else ""
            raise DatasetError(f"context {name!r} has {mine.size} samples and{how} none in "
                               f"{' or '.join(missing)}; every training context needs train, "
                               f"val and test samples")  # fmt: skip


def _source(source: object) -> dict | None:
    """``source`` as a plain JSON dict (numpy values as Python ones), or None; UsageError naming
    ``source`` for anything the card (JSON) cannot hold."""
    if source is None:
        return None
    if not isinstance(source, Mapping):
        raise UsageError(f"source must be a dict (provenance for the card), got {source!r:.80}")
    try:
        return _json_plain(dict(source), "source")
    except DatasetError as err:
        raise UsageError(str(err)) from None


# ---------------------------------------------------------------------------------- building


def from_arrays(
    x,
    targets,
    concept_names: Sequence[str],
    *,
    contexts: Mapping[str, Sequence[str]] | Sequence[Sequence[str]] | None = None,
    held_out: Sequence[Sequence[str]] | None = None,
    split=None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    name: str = "",
    nuisance_dim: int = 2,
    block_sizes: Sequence[int] | None = None,
    source: dict | None = None,
) -> Dataset:
    """A dataset from a user's observations and context labels (no ground truth).

    Parameters
    ----------
    x : array_like
        ``(N, p)`` real vectors (stored as float32) or ``(N, S, S, 3)`` uint8 RGB images with
        ``S`` in :data:`TRAINABLE_IMAGE_SIZES`.
    targets : sequence
        Without ``contexts``: one target set per sample (a list of concept names; ``[]`` for an
        observational sample); the contexts are the distinct sets, named ``obs``, ``do(a)``,
        ``do(a,b)``. With ``contexts``: one label per sample, ``(N,)``, a context index into
        ``contexts`` or a context name.
    concept_names : sequence of str
        The concepts (distinct, no commas).
    contexts : mapping or sequence, optional
        Each context's target set: ``{"obs": [], "thick": ["thickness"]}``, or a list of target
        sets (named as above).
    held_out : sequence of target sets, optional
        Contexts (given by their target sets) held out of training: compositions to test
        generation on. Their samples are all test samples.
    split : array_like, optional
        ``(N,)`` split per sample (``"train"``/``"val"``/``"test"`` or 0/1/2); default: drawn.
    fractions : (float, float, float)
        Train, validation and test fractions of each training context when ``split`` is drawn.
    seed : int
        Seeds the drawn split (context ``k``: ``SeedSequence(seed, spawn_key=(2, k))``).
    name : str
        Recorded in the card (default ``"imported"``).
    nuisance_dim : int
        The nuisance size of the models trained on it: the latent directions that do not change
        between contexts (style, identity, position). A latent (concepts and nuisance) wider
        than an observation is taken: the VAEs train one, the manifold estimators refuse it
        when they are built (before ``train`` writes anything).
    block_sizes : sequence of int, optional
        Width of each concept (default 1 each).
    source : dict, optional
        Provenance recorded in the card (default ``{"kind": "arrays"}``): string keys, and values
        JSON can hold (numbers, strings, lists, dicts, None).

    Returns
    -------
    Dataset
        With ``concepts`` and ``nuisance`` of shape ``(N, 0)`` and ``card["ground_truth"]``
        None; rows in the order given.

    Raises
    ------
    DatasetError
        Bad data, named: the shape, dtype or values of ``x`` (NaN, infinities, an image size the
        models do not take), an unknown target name, a label or split that is not one (a
        boolean included), a context without samples, two contexts with the same targets, no
        observational context, a held-out set matching no context, of fewer than two targets,
        given twice, or intervening on a concept that no training context intervenes on, a
        training context left without train, val or test samples.
    UsageError
        ``seed``, ``fractions`` or ``nuisance_dim`` out of range, or a ``source`` that is not a
        dict JSON can hold (a NaN or infinite number included).
    """
    names = _concept_names(concept_names)
    blocks = _block_sizes(block_sizes, len(names))
    nd = check_number(nuisance_dim, "nuisance_dim", minimum=0)
    seed = check_number(seed, "seed", minimum=0)
    drawn = parse_fractions(fractions) if split is None else None
    if not isinstance(name, str):
        raise UsageError(f"name must be a string, got {name!r}")
    source = _source(source)
    xs = _observations(x)
    table, labels = _labels(targets, contexts, names, len(xs))
    _check_table(table, labels)
    held = _held_out(held_out, table, names)
    if drawn is not None:
        split_arr = _drawn_split(labels, len(table), held, drawn, seed)
        seeds = {"entropy": seed, "split_streams": {table[k][0]: [2, k] for k in range(len(table))
                                                    if k not in held}}  # fmt: skip
    else:
        split_arr = _given_split(split, len(xs))
        seeds = {"entropy": seed, "split": "given"}
    _check_split(split_arr, labels, table, held, drawn)
    n = len(xs)
    arrays = {
        "x": xs,
        "concepts": np.zeros((n, 0)),
        "nuisance": np.zeros((n, 0)),
        "context": labels.astype(np.int16),
        "split": split_arr,
    }
    image = xs.ndim == 4
    card = {
        "format": FORMAT,
        "name": name or "imported",
        "package_version": package_version(),
        "numpy_version": np.__version__,
        "spec": None,
        "source": source or {"kind": "arrays"},
        "seeds": seeds,
        "split_fractions": list(drawn) if drawn is not None else None,
        "concept_names": names,
        "block_sizes": blocks,
        "contexts": [
            {"index": k, "name": nm, "targets": list(ts), "held_out": k in held}
            for k, (nm, ts) in enumerate(table)
        ],
        "splits": list(SPLITS),
        "observation": {
            "kind": "image" if image else "vector",
            "shape": list(xs.shape[1:]),
            "dtype": str(xs.dtype),
            "scale": "uint8 RGB, as imported" if image else "float32, as imported",
        },
        "ground_truth": None,
        "nuisance_dim": nd,
    }
    return seal(card, arrays)


def _read_json(path: Path, keys: set[str], required: tuple[str, ...]) -> dict:
    d = read_json(path)
    if not isinstance(d, dict):
        raise DatasetError(f"{path} must hold a JSON object, got {type(d).__name__}")
    unknown = sorted(set(d) - keys)
    if unknown:
        raise DatasetError(f"{path}: unknown keys {unknown}; known: {sorted(keys)}")
    missing = [k for k in required if k not in d]
    if missing:
        raise DatasetError(f"{path} has no {missing[0]!r} (it needs {', '.join(required)})")
    if not isinstance(d["contexts"], dict):
        raise DatasetError(f"{path}: 'contexts' must map each context's name to its targets, "
                           f'e.g. {{"obs": [], "thick": ["thickness"]}}')  # fmt: skip
    return d


def _npy(path: Path, what: str, mmap: bool = False) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            magic = f.read(6)  # numpy.save's; an .npz archive, a pickle or text lacks it
        if magic == b"\x93NUMPY":
            return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except FileNotFoundError:
        raise DatasetError(f"{what} {path} does not exist") from None
    except (OSError, ValueError, EOFError) as err:
        raise DatasetError(f"{what} {path} is not a readable .npy array: {err}") from None
    raise DatasetError(f"{what} {path} is not a .npy array file: one array as numpy.save writes "
                       "it is expected (not an .npz archive, a pickle or text)")  # fmt: skip


def _per_sample(value: object, base: Path, key: str) -> np.ndarray | list:
    """A per-sample list given inline or as a ``.npy`` file (relative to the JSON file)."""
    if isinstance(value, str):
        return _npy(base / value, f"{key!r}:")
    if isinstance(value, list):
        return value
    raise DatasetError(f"{key!r} must be a list (one entry per sample) or a .npy file name, "
                       f"got {value!r}")  # fmt: skip


def from_files(
    x_path: str | os.PathLike,
    contexts_path: str | os.PathLike,
    *,
    max_memory: float | None = None,
    **kwargs,
) -> Dataset:
    """A dataset from ``x.npy`` and a JSON file of contexts and labels
    (``conceptid import --arrays X --contexts CTX``).

    The JSON object holds ``concepts`` (names), ``contexts`` (each context's name mapped to its
    target list; one of them ``[]``), ``labels`` (one context name or index per row of ``x``,
    inline or as a ``.npy`` file name relative to the JSON file), and optionally ``held_out``
    (target lists), ``split`` (one split name or index per row, inline or ``.npy``) and
    ``block_sizes``.

    Parameters
    ----------
    x_path : path
        An ``.npy`` array as :func:`from_arrays` takes it (no pickles).
    contexts_path : path
        The JSON file.
    max_memory : float, optional
        Memory limit in GiB (:func:`conceptid.simulations.resources.check_memory`).
    **kwargs
        ``fractions``, ``seed``, ``name``, ``nuisance_dim`` of :func:`from_arrays`.

    Raises
    ------
    DatasetError
        An unreadable or malformed file (named; an ``.npz`` archive, a pickle or text is not a
        ``.npy`` file), or anything :func:`from_arrays` refuses.
    MemoryLimitError
        When the import would need more memory than the limit.
    """
    path = Path(contexts_path)
    d = _read_json(path, _ARRAY_KEYS, ("concepts", "contexts", "labels"))
    x = _npy(Path(x_path), "x:", mmap=True)
    check_memory(3 * x.nbytes + 4 * x.size, f"importing {x_path}", max_memory)
    labels = _per_sample(d["labels"], path.parent, "labels")
    split = _per_sample(d["split"], path.parent, "split") if "split" in d else None
    return from_arrays(np.array(x), labels, d["concepts"], contexts=d["contexts"],
                       held_out=d.get("held_out"), split=split,
                       block_sizes=d.get("block_sizes"), **kwargs)  # fmt: skip


def _png_header(path: Path) -> tuple[int, int, int] | None:
    """``(width, height, bit depth)`` from a PNG file's header (its IHDR chunk), None for a file
    whose header is not a PNG's (Pillow then says what it is)."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    if len(head) < 26 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"), head[24]


#: the longest side of an image :func:`from_folders` reads (a larger one, such as a
#: decompression bomb of a few hundred kilobytes, is refused from its header)
MAX_IMAGE_SIDE = 4096


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image  # matplotlib's own image library, so no extra dependency

    try:
        header = _png_header(path)
    except OSError as err:
        raise DatasetError(f"cannot read {path}: {err.strerror or err}") from None
    if header is not None and max(header[:2]) > MAX_IMAGE_SIDE:  # before Pillow decodes it
        raise DatasetError(f"{path} is {header[0]}x{header[1]} pixels; images up to "
                           f"{MAX_IMAGE_SIDE} pixels a side are read (the models take 32x32 "
                           f"and 64x64)")  # fmt: skip
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            rgba = np.asarray(img.convert("RGBA"), dtype=np.uint8) if mode in _PNG_MODES else None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DatasetError(f"{path} is not a readable PNG image: {err}") from None
    depth = None if header is None else header[2]
    if rgba is None or depth == 16:  # 16-bit greyscale would saturate at 255, and 16-bit RGB
        # would be cut to its high byte without a word: either way the file's precision is lost
        kind = f"a 16-bit mode {mode} image" if depth == 16 else f"a mode {mode} image"
        raise DatasetError(f"{path} is {kind}; 8-bit images are taken (modes "
                           f"{', '.join(_PNG_MODES)}): convert it to 8 bits first")  # fmt: skip
    if (rgba[..., 3] < 255).any():
        raise DatasetError(f"{path} has transparent pixels, which 8-bit RGB cannot keep: "
                           "flatten it onto a background first")  # fmt: skip
    return np.ascontiguousarray(rgba[..., :3])


def _folder_name(name: object) -> bool:
    """Whether ``name`` names a folder directly in ROOT: no separator, ``.``, ``..``, drive."""
    return (isinstance(name, str) and bool(name.strip()) and name not in (".", "..")
            and "/" not in name and "\\" not in name and not Path(name).anchor
            and Path(name).name == name)  # fmt: skip


def _is_png(path: Path) -> bool:
    """Whether the file ``path`` begins with the PNG signature (its name may say otherwise)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(_PNG_SIGNATURE)) == _PNG_SIGNATURE
    except OSError as err:
        raise DatasetError(f"cannot read {path}: {err.strerror or err}") from None


def from_folders(root: str | os.PathLike, *, max_memory: float | None = None, **kwargs) -> Dataset:
    """A dataset from ``ROOT/contexts.json`` and one folder of PNG images per context
    (``conceptid import --folders ROOT``).

    ``contexts.json`` holds ``concepts`` (names), ``contexts`` (each context's folder name mapped
    to its target list; one of them ``[]``, the observational context), and optionally
    ``held_out`` (target lists of contexts held out of training) and ``block_sizes``::

        {"concepts": ["thickness", "shear"],
         "contexts": {"obs": [], "thick": ["thickness"], "shear": ["shear"],
                      "thick+shear": ["thickness", "shear"]},
         "held_out": [["thickness", "shear"]]}

    Every ``ROOT/NAME/*.png`` is read (sorted by file name) as 8-bit RGB: an 8-bit image of mode
    1, L, P, RGB, LA or RGBA (greyscale is repeated over the channels; an alpha channel is dropped
    when every pixel is opaque, and refused otherwise; 16-bit images are refused: greyscale would
    saturate, RGB lose its low byte); all must have one size, 32x32 or 64x64. A file is taken
    when its name ends in ``.png`` (any case: ``.PNG`` too) and its content begins with the PNG
    signature. Hidden files (``.name``, such as ``.DS_Store``) are skipped; any other file is
    refused, and so is a folder in ``ROOT`` that ``contexts.json`` does not name (a misspelt
    context). A context's name is its folder's name directly in ``ROOT``: a name with a path
    separator, ``.``, ``..`` or an absolute path is refused (a folder in ``ROOT`` may be a
    symbolic link to one elsewhere: that is the user's own layout).

    Parameters
    ----------
    root : path
    max_memory : float, optional
        Memory limit in GiB.
    **kwargs
        ``fractions``, ``seed``, ``name``, ``nuisance_dim`` of :func:`from_arrays`.

    Raises
    ------
    DatasetError
        A missing or malformed ``contexts.json``, a context name that is not a folder name in
        ``ROOT``, a context folder missing or empty, a file that is not a PNG
        (by its name or by its content), an image that is not 8-bit or has transparent pixels,
        images of different or unsupported sizes, or anything :func:`from_arrays` refuses.
    MemoryLimitError
        When the images would need more memory than the limit.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder (one folder per context and "
                           f"{CONTEXTS_FILE} are expected in it)")  # fmt: skip
    d = _read_json(root / CONTEXTS_FILE, _FOLDER_KEYS, ("concepts", "contexts"))
    contexts = d["contexts"]
    # the table (names, targets, at least one context) before any image is read
    _table(contexts, _concept_names(d["concepts"]))
    bad = [ctx for ctx in contexts if not _folder_name(ctx)]
    if bad:
        raise DatasetError(f"context name {bad[0]!r} in {root / CONTEXTS_FILE} is not a folder "
                           f"name: each context's images lie in a folder directly in {root} "
                           "(no path separator, '.', '..' or absolute path)")  # fmt: skip
    extra = sorted(p.name for p in root.iterdir() if p.is_dir()
                   and not p.name.startswith(".") and p.name not in contexts)  # fmt: skip
    if extra:
        raise DatasetError(f"{root / extra[0]} is a folder that {CONTEXTS_FILE} does not name "
                           f"as a context (contexts: {list(contexts)})")  # fmt: skip
    files: list[tuple[int, Path]] = []
    for k, ctx in enumerate(contexts):
        folder = root / str(ctx)
        if not folder.is_dir():
            raise DatasetError(f"context {ctx!r} has no folder {folder}")
        mine = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        other = [p for p in mine if p.suffix.lower() != ".png" or not p.is_file()]
        if other:
            raise DatasetError(f"{other[0]} is not a .png file; a context folder holds only "
                               "PNG images")  # fmt: skip
        fake = next((p for p in mine if not _is_png(p)), None)
        if fake is not None:
            raise DatasetError(f"{fake} is not a PNG image: it does not begin with the PNG "
                               "signature (another format named .png?); a context folder "
                               "holds only PNG images")  # fmt: skip
        if not mine:
            raise DatasetError(f"context {ctx!r} has no samples: {folder} holds no .png image")
        files += [(k, p) for p in mine]
    first = _read_png(files[0][1])
    size = first.shape
    check_memory(2 * len(files) * first.nbytes, f"importing {len(files)} images of {root}",
                 max_memory)  # fmt: skip
    x = np.empty((len(files), *size), dtype=np.uint8)
    for i, (_, p) in enumerate(files):
        img = first if i == 0 else _read_png(p)
        if img.shape != size:
            raise DatasetError(f"{p} is {img.shape[1]}x{img.shape[0]} pixels, but "
                               f"{files[0][1]} is {size[1]}x{size[0]}: every image must have "
                               f"one size")  # fmt: skip
        x[i] = img
    labels = np.array([k for k, _ in files], dtype=np.int64)
    counts = {str(c): int((labels == k).sum()) for k, c in enumerate(contexts)}
    source = {"kind": "folders", "images_per_context": counts}
    return from_arrays(x, labels, d["concepts"], contexts=contexts, held_out=d.get("held_out"),
                       block_sizes=d.get("block_sizes"), source=source, **kwargs)  # fmt: skip
