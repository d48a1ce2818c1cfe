"""Benchmark specs and context-labelled datasets on disk.

A :class:`BenchmarkSpec` (JSON-serialisable) names a preset with its arguments, or carries an
explicit model (:meth:`ConceptModel.to_dict`), with sample counts per context and split and a seed.
:func:`generate` turns it into a :class:`Dataset`: observations, true concepts, nuisance, context
labels and split labels, plus a *card* (spec, seeds, versions, ground truth, per-array SHA-256 and a
content hash). Training contexts appear in every split; held-out composed contexts only in
``test``. Every (split, context) cell is drawn from its own seed stream, so a test set never repeats
training samples, and the same spec gives byte-identical files.

A user's own intervention data, without ground truth, becomes a :class:`Dataset` of the same
format through :meth:`Dataset.from_arrays` and :meth:`Dataset.from_folders` (module
:mod:`.imported`): its card says ``ground_truth: null`` and names the models' nuisance size.

On disk a dataset is a directory: ``card.json`` and one ``.npy`` file per array. A new dataset
appears at once (a temporary sibling directory renamed into place); an overwrite replaces only a
dataset, and in it only the package's own files (:meth:`Dataset.save`). :func:`load_dataset`
verifies every array against the card and refuses a corrupted, truncated or half-replaced dataset
with :class:`DatasetError`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .atomic import describe_contents, remove_stale, temp_prefix
from .errors import ConceptIDError, UsageError
from .model import ConceptModel
from .presets import build_preset
from .resources import check_memory, estimate_dataset
from .validation import check_number, is_number, parse_json, probe_json, read_bytes

__all__ = [
    "SPLITS",
    "BenchmarkSpec",
    "Dataset",
    "DatasetError",
    "PACKAGE_FILES",
    "check_save_target",
    "generate",
    "is_dataset_dir",
    "load_dataset",
    "seal",
]

FORMAT = "conceptid.dataset/1"
SPLITS = ("train", "val", "test")
# numpy bit generators a spec may name; the default is what np.random.default_rng uses.
BIT_GENERATORS = {"pcg64": np.random.PCG64, "sfc64": np.random.SFC64}
DEFAULT_BIT_GENERATOR = "pcg64"
ARRAYS = ("x", "concepts", "nuisance", "context", "split")
CARD = "card.json"
ASIDE = ".card.json.replacing"  # the old card while a replacement is under way
#: every file the package writes into a dataset directory, and so the only ones an overwrite
#: removes: the card (and the old card kept aside while it is replaced), one ``.npy`` per array,
#: and the figure ``conceptid inspect`` writes there by default
PACKAGE_FILES = frozenset({CARD, ASIDE, *(f"{a}.npy" for a in ARRAYS), "samples_per_context.png"})


class DatasetError(ConceptIDError):
    """A dataset or spec is malformed, corrupted, truncated, or would overwrite existing files."""


def read_json(path: str | os.PathLike, what: str = "") -> object:
    """The JSON value in the file ``path``; ``DatasetError`` naming ``what`` + ``path`` when it
    cannot be read, is not UTF-8 text, is not valid JSON, or has an object with a key given
    twice (JSON would keep the last one without a word)."""
    return parse_json(read_bytes(path, DatasetError, what), f"{what}{path}", DatasetError)


def package_version() -> str:
    """The installed conceptid's version (``0+unknown`` in a source tree without metadata)."""
    try:
        from importlib.metadata import version

        return version("conceptid")
    except Exception:  # pragma: no cover - running from a source tree without metadata
        return "0+unknown"


def _json_plain(obj, where: str):
    """``obj`` with numpy scalars and arrays as plain Python values; DatasetError naming the
    place of anything else that JSON cannot hold (a non-string key, an object, a NaN or an
    infinity, which Python would write as the non-standard ``NaN`` and ``Infinity``)."""
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        raise DatasetError(f"{where}: {obj} cannot be written to the card (JSON holds finite "
                           "numbers only)")  # fmt: skip
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, dict):
        bad = [k for k in obj if not isinstance(k, str)]
        if bad:
            raise DatasetError(f"{where}: keys must be strings (JSON), got {bad[0]!r}")
        return {k: _json_plain(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        # JSON has one sequence: a tuple (a namedtuple too) is written, and read back, as a list
        return [_json_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise DatasetError(f"{where}: a value of type {type(obj).__name__} cannot be written to "
                       "the card (JSON); use numbers, strings, lists and dicts")  # fmt: skip


@dataclass
class BenchmarkSpec:
    """What to generate.

    Parameters
    ----------
    preset : str or None
        ``chain``, ``random`` or ``quad`` (default ``quad``); or None with ``model`` given
        (:meth:`from_dict` takes None when the dict gives ``model`` and no ``preset``).
    preset_args : dict
        Keyword arguments of the preset (e.g. ``{"m": 5, "mixing": "mlp", "nuisance_dim": 2}``).
    model : dict or None
        An explicit :meth:`ConceptModel.to_dict`, instead of a preset.
    n_train, n_val, n_test : int
        Samples per context in each split (held-out contexts: ``n_test`` in ``test`` only).
    seed : int
        Seeds the model (for random presets) and, through separate streams, every split.
    bit_generator : str
        numpy's bit generator behind every stream: ``"pcg64"`` (the default, numpy's own) or
        ``"sfc64"`` (about 1.2x faster at drawing normals; a different stream, so the same seed
        gives different data). Left out of :meth:`to_dict` when it is the default, so the
        datasets and run directories written before it existed keep their hashes.
    """

    preset: str | None = "quad"
    preset_args: dict = field(default_factory=dict)
    model: dict | None = None
    n_train: int = 2000
    n_val: int = 500
    n_test: int = 500
    seed: int = 0
    bit_generator: str = DEFAULT_BIT_GENERATOR

    def __post_init__(self) -> None:
        if (self.preset is None) == (self.model is None):
            raise DatasetError("a spec needs exactly one of 'preset' and 'model'")
        if self.preset is not None and not isinstance(self.preset, str):
            raise DatasetError(f"preset must be a string, got {self.preset!r}")
        if self.model is not None and not isinstance(self.model, dict):
            raise DatasetError(f"model must be a dict (ConceptModel.to_dict), got {self.model!r}")
        if not isinstance(self.preset_args, dict):
            raise DatasetError(f"preset_args must be a dict, got {type(self.preset_args).__name__}")
        for name in ("n_train", "n_val", "n_test", "seed"):
            check_number(getattr(self, name), name, minimum=0, error=DatasetError)
            setattr(self, name, int(getattr(self, name)))  # numpy integers: plain, for the card
        # the spec is written to the card as JSON: numpy scalars and arrays become plain values
        # here, and anything JSON cannot hold is refused now, not after the data are drawn
        self.preset_args = _json_plain(self.preset_args, "preset_args")
        if self.model is not None:
            self.model = _json_plain(self.model, "model")
        if not isinstance(self.bit_generator, str) or self.bit_generator not in BIT_GENERATORS:
            raise DatasetError(
                f"bit_generator must be one of {sorted(BIT_GENERATORS)}, got {self.bit_generator!r}"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["bit_generator"] == DEFAULT_BIT_GENERATOR:
            del d["bit_generator"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> BenchmarkSpec:
        """The spec of a JSON object; every field is optional, and ``preset`` defaults to None
        (not ``"quad"``) when ``model`` is given. DatasetError for an unknown key, or a
        ``preset`` and a ``model`` both given."""
        if not isinstance(d, dict):
            raise DatasetError(f"a spec must be a JSON object, got {type(d).__name__}")
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise DatasetError(
                f"unknown spec keys {unknown}; known: {sorted(cls.__dataclass_fields__)}"
            )
        if d.get("model") is not None and "preset" not in d:
            d = {**d, "preset": None}
        return cls(**d)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> BenchmarkSpec:
        return cls.from_dict(read_json(path, "spec file "))

    def rng(self, *key: int) -> np.random.Generator:
        """The generator of stream ``key``: ``(0,)`` the model, ``(1, split, context)`` a cell."""
        seq = np.random.SeedSequence(int(self.seed), spawn_key=key)
        return np.random.Generator(BIT_GENERATORS[self.bit_generator](seq))

    def build_model(self) -> ConceptModel:
        if self.model is not None:
            return ConceptModel.from_dict(self.model)
        return build_preset(self.preset, self.rng(0), **self.preset_args)


def _hash_array(a: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _content_hash(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(_hash_array(arrays[name]).encode())
    return h.hexdigest()


def _card_hash(card: dict) -> str:
    """SHA-256 of the card's canonical JSON without its own ``card_hash`` entry: an edit of the
    ground truth or the spec in card.json is detected on load."""
    body = {k: v for k, v in card.items() if k != "card_hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def seal(card: dict, arrays: dict[str, np.ndarray]) -> Dataset:
    """The dataset of ``arrays`` (every name of :data:`ARRAYS`) with ``card`` completed by what
    :func:`load_dataset` verifies: each array's dtype, shape and SHA-256, the content hash and
    the card's own hash. Generated and imported datasets are sealed alike."""
    card = dict(card)
    card["arrays"] = {
        k: {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": _hash_array(a)}
        for k, a in arrays.items()
    }
    card["content_hash"] = _content_hash(arrays)
    card["card_hash"] = _card_hash(card)
    return Dataset(**arrays, card=card)


def is_dataset_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory the package wrote as a dataset: its ``card.json`` (or the
    card set aside by an interrupted overwrite) is JSON naming the dataset format."""
    path = Path(path)
    for name in (CARD, ASIDE):
        card = probe_json(path / name)
        if isinstance(card, dict) and card.get("format") == FORMAT:
            return True
    return False


def check_save_target(path: str | os.PathLike, overwrite: bool) -> bool:
    """Refuse, before any work, a path :meth:`Dataset.save` must not write to.

    Parameters
    ----------
    path : str or os.PathLike
        The dataset directory to be written.
    overwrite : bool
        Whether an existing dataset may be replaced.

    Returns
    -------
    bool
        True when an existing dataset will be replaced; False when ``path`` is missing or an
        empty directory.

    Raises
    ------
    UsageError
        ``overwrite`` is not a bool (a string such as ``"no"`` would count as true).
    DatasetError
        ``path`` is a file or lies under one, or a non-empty directory that is not a conceptid
        dataset (named with what it contains), or a dataset while ``overwrite`` is false.
    """
    if not isinstance(overwrite, bool | np.bool_):
        raise UsageError(f"overwrite must be True or False, got {overwrite!r:.80}")
    overwrite = bool(overwrite)
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        above = next((p for p in path.parents if p.exists() or p.is_symlink()), None)
        if above is not None and not above.is_dir():  # mkdir would fail after the work
            raise DatasetError(f"cannot write {path}: {above} is a file, not a directory")
        return False
    if not path.is_dir():
        raise DatasetError(f"refusing to overwrite {path}: a file, not a conceptid dataset")
    if not any(path.iterdir()):
        return False
    if not is_dataset_dir(path):
        what = f"not a conceptid dataset (contains {describe_contents(path)})"
        if overwrite:
            raise DatasetError(f"refusing to overwrite {path}: {what}")
        raise DatasetError(f"refusing to write to {path}: it exists and is {what}; choose "
                           "another path (--overwrite replaces only a dataset)")  # fmt: skip
    if not overwrite:
        raise DatasetError(f"{path} exists (a dataset); pass --overwrite (Python: "
                           "overwrite=True) to replace it")  # fmt: skip
    return True


def _new_dir(parent: Path, prefix: str) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp creates 0700; give the usual directory mode
    return tmp


def _replace_in_place(path: Path, new: Path) -> None:
    """Move the complete dataset in ``new`` into the dataset directory ``path``, replacing only
    package files; on an exception put the old ones back."""
    card, aside = path / CARD, path / ASIDE
    old = _new_dir(path.parent, temp_prefix(path.name, "old"))
    set_aside, moved_in = False, []
    try:
        if card.exists():  # absent after an interrupted replacement: the old card is aside
            os.replace(card, aside)
            set_aside = True
        for name in sorted(PACKAGE_FILES - {CARD, ASIDE}):
            remove_stale(path, name)
            if (path / name).exists():
                os.replace(path / name, old / name)
        for f in sorted(new.iterdir()):
            if f.name != CARD:
                os.replace(f, path / f.name)
                moved_in.append(f.name)
        os.replace(new / CARD, card)  # the new dataset is complete from here on
    except BaseException:
        for name in moved_in:
            (path / name).unlink(missing_ok=True)
        for f in old.iterdir():
            os.replace(f, path / f.name)
        if set_aside:
            os.replace(aside, card)
        shutil.rmtree(old, ignore_errors=True)
        raise
    aside.unlink(missing_ok=True)
    shutil.rmtree(old, ignore_errors=True)


@dataclass(eq=False)
class Dataset:
    """Arrays and card of a generated benchmark, or of a user's imported data.

    Attributes
    ----------
    x : ndarray, (N, *obs_shape)
        float32 vectors, or uint8 RGB images ``(N, H, W, 3)``.
    concepts : ndarray, (N, K) float64
        The true concepts; ``(N, 0)`` for imported data, which has none.
    nuisance : ndarray, (N, d - K) float64
        The true nuisance; ``(N, 0)`` for imported data.
    context : ndarray, (N,) int16
        Index into ``card["contexts"]``.
    split : ndarray, (N,) int8
        Index into :data:`SPLITS`.
    card : dict
    """

    x: np.ndarray
    concepts: np.ndarray
    nuisance: np.ndarray
    context: np.ndarray
    split: np.ndarray
    card: dict

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ARRAYS}

    @property
    def context_names(self) -> list[str]:
        return [c["name"] for c in self.card["contexts"]]

    # -- the card, read through named accessors ------------------------------------------------

    @property
    def name(self) -> str:
        """The dataset's name (``card["name"]``)."""
        return str(self.card["name"])

    @property
    def content_hash(self) -> str:
        """SHA-256 over every array (``card["content_hash"]``): what a trained model records,
        with :attr:`labels_hash`."""
        return str(self.card["content_hash"])

    @property
    def labels_hash(self) -> str:
        """SHA-256 of what the card says the arrays mean, beyond the arrays themselves: the
        concepts (names, block sizes), the nuisance size and each context's name, targets and
        role (training or held out). Two datasets with the same arrays and different labels
        (an import with two contexts' targets swapped) train different models, so a trained
        model records this with :attr:`content_hash`, and is reused only where both match."""
        c = self.card
        body = {"concept_names": c.get("concept_names"), "block_sizes": c.get("block_sizes"),
                "nuisance_dim": self.nuisance_dim,
                "contexts": [{k: ctx.get(k) for k in ("index", "name", "targets", "held_out")}
                             for ctx in c.get("contexts", [])]}  # fmt: skip
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    @property
    def card_hash(self) -> str:
        """SHA-256 of the card itself (``card["card_hash"]``)."""
        return str(self.card["card_hash"])

    @property
    def spec(self) -> BenchmarkSpec | None:
        """The spec the dataset was generated from; None for imported data, which has none."""
        spec = self.card.get("spec")
        return None if spec is None else BenchmarkSpec.from_dict(spec)

    @property
    def source(self) -> dict | None:
        """Where imported data came from (``card["source"]``); None for generated data."""
        return self.card.get("source")

    @property
    def concept_names(self) -> list[str]:
        """The concepts, in the order of the columns of ``concepts`` and of target masks."""
        return list(self.card["concept_names"])

    @property
    def block_sizes(self) -> tuple[int, ...]:
        """Width of each concept (its number of columns in ``concepts``)."""
        return tuple(int(k) for k in self.card["block_sizes"])

    @property
    def is_image(self) -> bool:
        """Whether the observations are images (uint8 ``(N, H, W, 3)``), not vectors: the
        card's observation kind, the one way the package tells them apart."""
        return self.card["observation"]["kind"] == "image"

    @property
    def held_out_contexts(self) -> list[int]:
        """Indices of the held-out (composed) contexts: test rows only, never trained on."""
        return [int(c["index"]) for c in self.card["contexts"] if c["held_out"]]

    @property
    def training_contexts(self) -> list[int]:
        """Indices of the contexts that appear in training (every context not held out)."""
        return [int(c["index"]) for c in self.card["contexts"] if not c["held_out"]]

    @property
    def observational_contexts(self) -> list[int]:
        """Indices of the contexts without targets (the observational context, when present)."""
        return [int(c["index"]) for c in self.card["contexts"] if not c["targets"]]

    def context_index(self, context: str | int) -> int:
        """The index of a context given by name or index.

        Raises
        ------
        DatasetError
            An unknown name, or an index outside ``range(len(context_names))``.
        """
        names = self.context_names
        if isinstance(context, str):
            if context not in names:
                raise DatasetError(f"unknown context {context!r}; contexts are {names}")
            return names.index(context)
        if isinstance(context, bool) or not isinstance(context, int | np.integer):
            raise DatasetError(f"a context is a name or an index, got {context!r}")
        if not 0 <= int(context) < len(names):
            raise DatasetError(f"context index {context} outside 0..{len(names) - 1}")
        return int(context)

    def is_held_out(self, context: str | int) -> bool:
        """Whether a context (name or index) is held out."""
        return bool(self.card["contexts"][self.context_index(context)]["held_out"])

    def targets(self, context: str | int) -> list[str]:
        """The concepts a context (name or index) intervenes on; empty: observational."""
        return list(self.card["contexts"][self.context_index(context)]["targets"])

    def target_mask(self, context: str | int | None = None) -> np.ndarray:
        """Which concepts a context intervenes on, as a bool row ``(K,)`` over
        :attr:`concept_names`; without ``context``, every context's row ``(n_contexts, K)``."""
        names = self.concept_names
        out = np.zeros((len(self.card["contexts"]), len(names)), dtype=bool)
        for k, ctx in enumerate(self.card["contexts"]):
            for t in ctx["targets"]:
                out[k, names.index(t)] = True
        return out if context is None else out[self.context_index(context)]

    @property
    def has_ground_truth(self) -> bool:
        """Whether the card holds the true model (generated data) or not (imported data)."""
        return self.card.get("ground_truth") is not None

    @property
    def nuisance_dim(self) -> int:
        """The nuisance size of the models trained on this dataset: the true one for generated
        data, the one chosen at import (``card["nuisance_dim"]``) for imported data."""
        if self.has_ground_truth:
            return int(self.nuisance.shape[1]) if self.nuisance.ndim == 2 else 0
        return int(self.card["nuisance_dim"])

    @property
    def model(self) -> ConceptModel:
        """The ground-truth model, rebuilt from the card.

        Raises
        ------
        DatasetError
            For imported data, which has no ground-truth model.
        """
        if not self.has_ground_truth:
            raise DatasetError(
                f"dataset {self.card.get('name', '')!r} was imported: it has no ground-truth "
                "model (concepts, graph, mixing), which this needs"
            )
        return ConceptModel.from_dict(self.card["ground_truth"])

    @classmethod
    def from_arrays(cls, x, targets, concept_names, **kwargs) -> Dataset:
        """A dataset from a user's arrays: :func:`conceptid.simulations.imported.from_arrays`."""
        from .imported import from_arrays

        return from_arrays(x, targets, concept_names, **kwargs)

    @classmethod
    def from_folders(cls, root, **kwargs) -> Dataset:
        """A dataset from one folder of PNG images per context and ``contexts.json``:
        :func:`conceptid.simulations.imported.from_folders`."""
        from .imported import from_folders

        return from_folders(root, **kwargs)

    def mask(self, split: str | None = None, context: str | int | None = None) -> np.ndarray:
        """Boolean row mask for a split name and/or a context (name or index).

        Raises
        ------
        DatasetError
            An unknown split, or a context :meth:`context_index` refuses (an unknown name, an
            index out of range, a bool or a float).
        """
        m = np.ones(len(self.context), dtype=bool)
        if split is not None:
            if split not in SPLITS:
                raise DatasetError(f"unknown split {split!r}; splits are {SPLITS}")
            m &= self.split == SPLITS.index(split)
        if context is not None:
            m &= self.context == self.context_index(context)
        return m

    def rows(self, split: str, contexts: str = "all") -> np.ndarray:
        """Boolean row mask of ``split`` among the ``contexts``: ``"all"``, ``"training"`` (not
        held out) or ``"held_out"``.

        Raises
        ------
        UsageError
            An unknown ``contexts``."""
        m = self.mask(split)
        held = np.zeros(len(self.context_names), dtype=bool)
        held[list(self.held_out_contexts)] = True
        if contexts == "training":
            return m & ~held[self.context]
        if contexts == "held_out":
            return m & held[self.context]
        if contexts != "all":
            raise UsageError(f"contexts must be 'all', 'training' or 'held_out', got {contexts!r}")
        return m

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the dataset to directory ``path``, atomically.

        A new (or empty) directory appears complete or not at all: the files are written to a
        hidden sibling that is renamed into place. ``overwrite=True`` replaces only a conceptid
        dataset (:func:`check_save_target`), and in it only the files the package writes
        (:data:`PACKAGE_FILES`): any other file there is kept. During a replacement the old card
        waits as ``.card.json.replacing``, so the directory never loads as a mix of two
        datasets and a rerun with ``overwrite=True`` still recognises it; an exception restores
        the old dataset, and the next save removes what a killed writer left behind.

        Parameters
        ----------
        path : str or os.PathLike
            The dataset directory.
        overwrite : bool
            Replace the dataset already there.

        Returns
        -------
        Path
            ``path``.

        Raises
        ------
        UsageError
            ``overwrite`` is not a bool (nothing written).
        DatasetError
            ``path`` exists and ``overwrite`` is false, or it is not a dataset, or is empty
            (nothing written); the file system refuses a write (nothing left of this save; a
            replaced dataset is restored).
        """
        if isinstance(path, str) and not path.strip():  # Path("") would be the current dir
            raise DatasetError("cannot write a dataset to an empty path")
        path = Path(path)
        replace = check_save_target(path, overwrite)
        # a symbolic link to a directory: the files go where it leads (a directory cannot be
        # renamed onto the link itself)
        dest = path.resolve() if path.is_symlink() and path.is_dir() else path
        try:  # a directory without permission, a read-only or virtual file system
            dest.parent.mkdir(parents=True, exist_ok=True)
            remove_stale(dest.parent, dest.name, ("tmp", "old"), PACKAGE_FILES)
            tmp = _new_dir(dest.parent, temp_prefix(dest.name, "tmp"))
        except OSError as err:
            raise DatasetError(f"cannot write {path}: {err.strerror or err}") from None
        try:
            for name, a in self.arrays.items():
                with open(tmp / f"{name}.npy", "wb") as fh:
                    np.save(fh, a, allow_pickle=False)
                    fh.flush()
                    os.fsync(fh.fileno())
            (tmp / CARD).write_text(json.dumps(self.card, indent=1, sort_keys=True) + "\n")
            if replace:
                _replace_in_place(dest, tmp)
            else:
                os.rename(tmp, dest)  # onto a missing or empty directory: all at once
        except OSError as err:  # a full disk: the old dataset is back (_replace_in_place)
            raise DatasetError(f"cannot write {path}: {err.strerror or err}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return path

    def summary(self) -> str:
        """Card headline and per-context concept statistics (sample, and exact where known); for
        imported data, per-context counts and observation statistics."""
        if not self.has_ground_truth:
            return self._summary_imported()
        card = self.card
        lines = [
            f"dataset   {card['name']}  ({card['format']}, conceptid {card['package_version']})",
            f"spec      {json.dumps(card['spec'], sort_keys=True)}",
            f"concepts  {', '.join(card['concept_names'])}  (K = {self.concepts.shape[1]})",
            f"observed  {card['observation']['kind']} {tuple(card['observation']['shape'])} "
            f"{card['observation']['dtype']}; nuisance dim {self.nuisance.shape[1]}",
            "edges     "
            + ", ".join(f"{p}->{c}" for p, c in card["ground_truth"]["sem"]["graph"]["edges"]),
            f"hash      {card['content_hash']}",
            "",
        ]
        model = None
        if card["ground_truth"]["sem"]["mechanism"] == "linear":
            model = self.model
        names = card["concept_names"]
        dims = [
            nm if k == 1 else f"{nm}[{i}]"
            for nm, k in zip(names, card["block_sizes"])
            for i in range(k)
        ]
        lines.append(
            "per-context concept statistics: sample mean/std over all splits"
            + ("; exact population values below" if model is not None else "")
        )
        lines.append(
            f"{'context':<22}{'n train/val/test':<18}{'':<6}"
            + "".join(f"{d[:9]:>10}" for d in dims)
        )

        def row(label: str, vals) -> str:
            return f"{'':<22}{'':<18}{label:<6}" + "".join(f"{v:>10.3f}" for v in vals)

        for k, ctx in enumerate(card["contexts"]):
            rows = self.context == k
            counts = "/".join(
                str(int((rows & (self.split == s)).sum())) for s in range(len(SPLITS))
            )
            c = self.concepts[rows]
            lines.append(f"{ctx['name'][:21]:<22}{counts}")
            lines.append(row("mean", c.mean(axis=0) if len(c) else np.full(len(dims), np.nan)))
            if model is not None:
                mu, cov = model.population_moments(model.context(ctx["name"]))
                lines.append(row("exact", mu))
            lines.append(row("std", c.std(axis=0) if len(c) else np.full(len(dims), np.nan)))
            if model is not None:
                lines.append(row("exact", np.sqrt(np.diag(cov))))
        return "\n".join(lines)

    def _summary_imported(self) -> str:
        card = self.card
        obs = card["observation"]
        blocks = card["block_sizes"]
        sizes = "" if all(b == 1 for b in blocks) else f"; block sizes {blocks}"
        lines = [
            f"dataset   {card['name']}  ({card['format']}, conceptid {card['package_version']})",
            f"source    {json.dumps(card['source'], sort_keys=True)}",
            f"concepts  {', '.join(card['concept_names'])}{sizes}",
            f"observed  {obs['kind']} {tuple(obs['shape'])} {obs['dtype']}; nuisance dim "
            f"{self.nuisance_dim} (chosen at import)",
            "truth     none (imported data): no true concepts, graph or mixing to compare with",
            f"hash      {card['content_hash']}",
            "",
            "per-context counts and observation statistics (mean and std of every entry of x, "
            "all splits)",
            f"{'context':<22}{'targets':<28}{'n train/val/test':<18}{'x mean':>10}{'x std':>10}",
        ]
        for k, ctx in enumerate(card["contexts"]):
            rows = self.context == k
            counts = "/".join(
                str(int((rows & (self.split == s)).sum())) for s in range(len(SPLITS))
            )
            x = np.asarray(self.x[rows], dtype=np.float64)
            targets = ",".join(ctx["targets"]) or "-"
            held = " (held out)" if ctx["held_out"] else ""
            lines.append(f"{ctx['name'][:21]:<22}{(targets + held)[:27]:<28}{counts:<18}"
                         f"{x.mean():>10.3f}{x.std():>10.3f}")  # fmt: skip
        return "\n".join(lines)


def _context_records(model: ConceptModel) -> list[dict]:
    recs = []
    for k, c in enumerate(model.all_contexts):
        recs.append(
            {
                "index": k,
                "name": c.name,
                "targets": [model.sem.names[model.sem.resolve(t)] for t in c.targets],
                "held_out": k >= len(model.contexts),
            }
        )
    return recs


def generate(
    spec: BenchmarkSpec, *, progress: bool = False, name: str = "", max_memory: float | None = None
) -> Dataset:
    """Sample the dataset a spec describes (deterministic in the spec).

    Each (split, context) cell uses the generator ``spec.rng(1, split, context)``.

    Parameters
    ----------
    spec : BenchmarkSpec
    progress : bool
        A progress bar over the (split, context) cells.
    name : str
        Dataset name recorded in the card (default: the preset's name).
    max_memory : float, optional
        Memory limit in GiB; default: the ``CONCEPTID_MAX_MEMORY`` environment variable, else
        the memory available now (:func:`conceptid.simulations.resources.memory_limit`).

    Raises
    ------
    MemoryLimitError
        Before anything is allocated, when the estimated memory of the request
        (:func:`conceptid.simulations.resources.estimate_dataset`) exceeds the limit.
    ConceptIDError
        A subclass naming the problem when the spec's preset arguments or model are invalid.
    """
    estimate = estimate_dataset(spec)
    if estimate is not None:
        check_memory(
            estimate.peak_bytes,
            f"generating {estimate.rows} samples of shape {estimate.obs_shape}",
            max_memory,
        )
    model = spec.build_model()
    counts = {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}
    cells = [
        (s, k)
        for s, split in enumerate(SPLITS)
        for k in range(len(model.all_contexts))
        if counts[split] and (k < len(model.contexts) or split == "test")
    ]
    xs, cs, ns, ks, ss = [], [], [], [], []
    it = cells
    if progress:
        from tqdm import tqdm

        it = tqdm(cells, desc="sampling contexts", unit="cell")
    is_image = model.mixing.kind == "image"
    for s, k in it:
        n = counts[SPLITS[s]]
        smp = model.sample(model.all_contexts[k], n, spec.rng(1, s, k), max_memory=max_memory)
        x = smp.x
        if is_image:
            from .render import to_uint8

            x = to_uint8(x)
        else:
            x = x.astype(np.float32)
        xs.append(x)
        cs.append(smp.c)
        ns.append(smp.nuisance)
        ks.append(np.full(n, k, dtype=np.int16))
        ss.append(np.full(n, s, dtype=np.int8))
    obs_shape = model.mixing.output_shape
    arrays = {
        "x": np.concatenate(xs)
        if xs
        else np.zeros((0, *obs_shape), np.uint8 if is_image else np.float32),
        "concepts": np.concatenate(cs) if cs else np.zeros((0, model.K)),
        "nuisance": np.concatenate(ns) if ns else np.zeros((0, model.nuisance_dim)),
        "context": np.concatenate(ks) if ks else np.zeros(0, np.int16),
        "split": np.concatenate(ss) if ss else np.zeros(0, np.int8),
    }
    card = {
        "format": FORMAT,
        "name": name or (spec.preset or "custom"),
        "package_version": package_version(),
        "numpy_version": np.__version__,
        "spec": spec.to_dict(),
        "seeds": {
            "entropy": int(spec.seed),
            "model_stream": [0],
            "cell_streams": {
                f"{SPLITS[s]}/{model.all_contexts[k].name}": [1, s, k] for s, k in cells
            },
        },
        "concept_names": list(model.sem.names),
        "block_sizes": list(model.sem.block_sizes),
        "contexts": _context_records(model),
        "splits": list(SPLITS),
        "observation": {
            "kind": model.mixing.kind,
            "shape": list(obs_shape),
            "dtype": str(arrays["x"].dtype),
            "scale": "uint8 = round(255 * image)" if is_image else "float32",
        },
        "ground_truth": model.to_dict(),
    }
    return seal(card, arrays)


def load_dataset(path: str | os.PathLike, *, mmap: bool = False) -> Dataset:
    """Load and verify a dataset directory: every array against the card's hashes, and card and
    arrays against each other (docs/simulations.md, "On disk"). Raises DatasetError on anything
    missing, altered or inconsistent, naming the first problem."""
    path = Path(path)
    card_path = path / "card.json"
    try:  # a name too long, a directory without permission: the path given is unusable
        is_dir, has_card = path.is_dir(), card_path.is_file()
        text = card_path.read_bytes() if has_card else b""
    except OSError as err:
        raise DatasetError(f"cannot read {path}: {err.strerror or err}") from None
    if not is_dir:
        raise DatasetError(f"{path} is not a dataset directory")
    if not has_card and (path / ASIDE).is_file():
        raise DatasetError(f"{path} is incomplete: an overwrite of it was interrupted (rerun it)")
    if not has_card:
        raise DatasetError(f"{path} has no card.json: not a dataset, or an incomplete one")
    card = parse_json(text, str(card_path), DatasetError, invalid="is corrupted (not valid JSON)")
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise DatasetError(f"{card_path}: not a conceptid dataset card (format must be {FORMAT!r})")
    arrays = {}
    for name in ARRAYS:
        f = path / f"{name}.npy"
        entries = card.get("arrays")
        meta = entries.get(name) if isinstance(entries, dict) else None
        if not isinstance(meta, dict) or not {"dtype", "shape", "sha256"} <= set(meta):
            raise DatasetError(
                f"{card_path} does not describe the array {name!r} (dtype, shape, sha256)"
            )
        if not f.is_file():
            raise DatasetError(f"{path} is missing {f.name}")
        try:
            a = np.load(f, allow_pickle=False, mmap_mode="r" if mmap else None)
        except (ValueError, OSError, EOFError) as err:
            raise DatasetError(f"{f} is corrupted or truncated: {err}") from None
        if not isinstance(a, np.ndarray):  # np.load opens an .npz archive whatever its name
            a.close()
            raise DatasetError(f"{f} is not a .npy array (an .npz archive?): replaced?")
        if a.dtype.str != meta["dtype"] or list(a.shape) != meta["shape"]:
            raise DatasetError(
                f"{f} has dtype {a.dtype.str} and shape {list(a.shape)}, but the card says "
                f"{meta['dtype']} {meta['shape']} (truncated or replaced?)"
            )
        if _hash_array(a) != meta["sha256"]:
            raise DatasetError(f"{f} does not match its SHA-256 in the card: the data were altered")
        arrays[name] = a
    if _content_hash(arrays) != card.get("content_hash"):
        raise DatasetError(f"{path}: content hash does not match the card")
    if "card_hash" not in card:
        raise DatasetError(f"{card_path} has no card_hash (edited, or written by an older format)")
    if _card_hash(card) != card["card_hash"]:
        raise DatasetError(f"{card_path} was altered after it was written (card_hash mismatch)")
    if card.get("ground_truth") is None:
        nd = card.get("nuisance_dim")
        if not is_number(nd, minimum=0):
            raise DatasetError(f"{card_path}: a dataset without ground truth must name the "
                               f"models' nuisance size (nuisance_dim), got {nd!r}")  # fmt: skip
    _check_structure(card_path, card, arrays)
    return Dataset(**arrays, card=card)


def _check_structure(card_path: Path, card: dict, arrays: dict[str, np.ndarray]) -> None:
    """What the package reads from a dataset, checked once where it is loaded: the card's
    concepts, contexts, splits and observation, the arrays' shapes, kinds and values against
    them, and the ground truth (a model the package can rebuild, naming the same concepts and
    contexts). The hashes only say that nothing changed since the card was sealed; a card and
    arrays sealed by hand (or by another tool) could still disagree, and every later stage
    would then fail far from the cause or report wrongly. Raises ``DatasetError`` naming the
    first disagreement."""

    def bad(what: str) -> DatasetError:
        return DatasetError(f"{card_path}: {what} (not as the package writes a dataset)")

    names, blocks = card.get("concept_names"), card.get("block_sizes")
    if (not isinstance(names, list) or not names or len(set(map(str, names))) != len(names)
            or not all(isinstance(n, str) and n for n in names)):  # fmt: skip
        raise bad(f"concept_names must be distinct non-empty strings, got {_brief(names)}")
    if (not isinstance(blocks, list) or len(blocks) != len(names)
            or not all(is_number(b) for b in blocks)):  # fmt: skip
        raise bad(f"block_sizes must be one integer >= 1 per concept, got {_brief(blocks)}")
    contexts = card.get("contexts")
    if not isinstance(contexts, list) or not contexts:
        raise bad(f"contexts must be a non-empty list, got {_brief(contexts)}")
    seen: set[str] = set()
    for k, ctx in enumerate(contexts):
        ok = (isinstance(ctx, dict) and type(ctx.get("index")) is int and ctx["index"] == k
              and isinstance(ctx.get("name"), str) and ctx["name"] not in seen
              and isinstance(ctx.get("targets"), list) and isinstance(ctx.get("held_out"), bool)
              and all(isinstance(t, str) and t in names for t in ctx["targets"])
              and len(set(ctx["targets"])) == len(ctx["targets"]))  # fmt: skip
        if not ok:
            raise bad(f"contexts[{k}] must be {{index: {k}, name: a new name, targets: distinct "
                      f"concept names, held_out: true or false}}, got {_brief(ctx)}")  # fmt: skip
        seen.add(ctx["name"])
    if card.get("splits") != list(SPLITS):
        raise bad(f"splits must be {list(SPLITS)}, got {_brief(card.get('splits'))}")
    x, obs = arrays["x"], card.get("observation")
    kind = obs.get("kind") if isinstance(obs, dict) else None
    if not isinstance(kind, str) or not kind:
        raise bad(f"observation must name its kind, got {_brief(obs)}")
    if kind == "image":  # uint8 RGB images; any other kind: float32 vectors
        fits = x.ndim == 4 and x.shape[-1] == 3 and x.dtype == np.uint8
    else:
        fits = x.ndim == 2 and x.dtype == np.float32
    if not fits or obs.get("shape") != list(x.shape[1:]):
        what = "uint8 images (N, H, W, 3)" if kind == "image" else "float32 vectors (N, p)"
        raise bad(f"x is {x.dtype} of shape {list(x.shape)}, not the {what} its observation "
                  f"describes ({_brief(obs)})")  # fmt: skip
    n = len(x)
    for name in ARRAYS[1:]:
        ndim = 1 if name in ("context", "split") else 2
        if arrays[name].ndim != ndim or len(arrays[name]) != n:
            raise bad(f"{name}.npy has shape {list(arrays[name].shape)}; x has {n} rows")
    for name, top in (("context", len(contexts)), ("split", len(SPLITS))):
        a = arrays[name]
        if a.dtype.kind not in "iu" or (n and (int(a.min()) < 0 or int(a.max()) >= top)):
            raise bad(f"{name}.npy must hold integers in 0..{top - 1}, got {a.dtype} from "
                      f"{a.min() if n else '-'} to {a.max() if n else '-'}")  # fmt: skip
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise bad("x.npy holds NaN or infinite values")
    truth = card.get("ground_truth")
    width = sum(int(b) for b in blocks)
    if truth is None:
        for name in ("concepts", "nuisance"):
            if arrays[name].shape[1]:
                raise bad(f"{name}.npy has columns, but the card has no ground truth")
        return
    mixing = truth.get("mixing") if isinstance(truth, dict) else None
    if (
        isinstance(mixing, dict)
        and mixing.get("kind") == "function"
        and is_number(mixing.get("input_dim"))
    ):  # the user's function is imported where the model is used (ds.model), not to load data
        stand_in = {"kind": "linear", "A": np.eye(int(mixing["input_dim"])).tolist()}
        truth = {**truth, "mixing": stand_in}
    try:
        model = ConceptModel.from_dict(truth)
        if card.get("spec") is not None:
            BenchmarkSpec.from_dict(card["spec"])
    except ConceptIDError as err:
        raise bad(f"its ground truth (model or spec) cannot be read: {err}") from None
    if list(model.sem.names) != names or list(model.sem.block_sizes) != blocks:
        raise bad("the ground truth names other concepts (or block sizes) than concept_names")
    if [{k: c.get(k) for k in ("index", "name", "targets", "held_out")} for c in contexts] != (
        _context_records(model)
    ):
        raise bad("the ground truth's contexts differ from the card's contexts")
    if mixing["kind"] != kind:
        raise bad(f"the ground truth's mixing is {mixing['kind']}, the card's observation "
                  f"says {kind}")  # fmt: skip
    for name, want in (("concepts", width), ("nuisance", model.nuisance_dim)):
        if arrays[name].shape[1] != want or arrays[name].dtype.kind != "f":
            raise bad(f"{name}.npy is {arrays[name].dtype} with {arrays[name].shape[1]} columns; "
                      f"the ground truth has {want}")  # fmt: skip


def _brief(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
