"""Run directories: which files the package writes into one, and so the only ones it removes.

A run directory is marked by ``run.json`` (``{"format": "conceptid.run/1"}``), written when the
package first uses a missing or empty directory. The package writes only these paths in it::

    run.json                           the marker; after `conceptid train` on a dataset
                                       directory, also where that dataset is (:func:`record_data`)
    data/                              the dataset (a dataset directory, with its own card)
    check.json, check.txt              the identifiability verdict
    models/METHOD/final.pt             a trained model, with the settings it was trained under
    models/METHOD/checkpoint.pt[.rN]   the trainer's resumable state (restart N)
    metrics.json, timings.json, report.md, figures/NAME.png   the evaluation

and removes only some of them: a method's model and checkpoints when it is retrained
(:func:`remove_method`), and the evaluation when a model changes (:func:`remove_evaluation`), since
it described the models before. Anything else in the directory is the user's and is never touched;
a directory that is neither empty nor marked is refused (:func:`check_run_dir`).

One command at a time: the functions that write into a run directory (``run``, ``train``,
``evaluate_dir``; ``run_sweep`` and ``aggregate`` for a sweep's directory) hold an exclusive
lock on it while they work (:func:`run_lock`, ``flock`` on the directory itself, so no lock
file is written and a killed command's lock goes with its process); a second command on the
same directory is refused at once, naming it.

Every file is written atomically (:func:`write_text`, :func:`write_json`, :func:`write_npy`; the
figures through :func:`conceptid.plots.save_figure`, the models through the trainer): it appears
whole or not at all. The dataset is put in place by :func:`ensure_data` (generated from a spec)
or :func:`adopt_data` (a copy of a dataset directory).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from conceptid.simulations.atomic import atomic_path, describe_contents, remove_stale
from conceptid.simulations.benchmark import (
    BenchmarkSpec,
    Dataset,
    DatasetError,
    generate,
    load_dataset,
)
from conceptid.simulations.errors import ConceptIDError
from conceptid.simulations.validation import probe_json

__all__ = [
    "EVALUATION",
    "FIGURES",
    "FORMAT",
    "MARKER",
    "RunDirError",
    "adopt_data",
    "check_data_of_run",
    "check_method_paths",
    "check_outputs",
    "check_no_recorded_data",
    "check_run_dir",
    "ensure_data",
    "held_data",
    "is_run_dir",
    "method_files",
    "restart_checkpoints",
    "open_run_dir",
    "recorded_data",
    "record_data",
    "remove_evaluation",
    "remove_method",
    "require_run_dir",
    "run_data",
    "run_data_dir",
    "run_lock",
    "holds_run_dir",
    "write_json",
    "write_npy",
    "write_text",
]

FORMAT = "conceptid.run/1"
MARKER = "run.json"
EVALUATION = ("metrics.json", "timings.json", "report.md")
FIGURES = ("samples_per_context", "compositions", "concept_scatter", "r2_matrix",
           "training_curves")  # fmt: skip
_CHECKPOINT = re.compile(r"^checkpoint\.pt(\.r\d+)?$")
#: exactly the names restart_config gives restart ``r``: checkpoint.pt for 0, .rR for R >= 1
#: (checkpoint.pt.r0 or .r01 is no restart's)
_RESTART_CHECKPOINT = re.compile(r"^checkpoint\.pt(?:\.r([1-9]\d*))?$")
_TEMPORARY = re.compile(r"^\.(final\.pt|checkpoint\.pt(?:\.r\d+)?)\.partial-")


class RunDirError(ConceptIDError):
    """A path cannot be used as a run directory (a file, or a directory the package did not
    write as a run)."""


# (realpath, thread) of the directories this process holds: run_lock is reentrant within a
# thread (`run` holds its directory and calls `train`, which asks for it again)
_HELD: set[tuple[str, int]] = set()


@contextmanager
def run_lock(path: str | os.PathLike, what: str = "run directory", create: bool = True,
             error: type[ConceptIDError] = RunDirError) -> Iterator[Path]:  # fmt: skip
    """Hold an exclusive lock on the directory ``path`` for the block: another process, or
    another thread of this one, that asks for it meanwhile gets ``error`` (:class:`RunDirError`)
    at once (``... is in use by another conceptid command``); the same thread may take it
    again (reentrant).

    The lock is ``flock`` on the directory itself: no file is written, and the lock ends with
    the process that held it, however it ended. A missing ``path`` is created to be locked
    (``create``; else the block runs unlocked, for a caller that refuses a missing directory)
    and removed again, with any parent created for it, if the block leaves it empty (a
    refused command leaves nothing behind). The block runs unlocked where the platform has no
    ``flock`` (Windows), where the file system does not lock (NFS mounted without locking, some
    FUSE mounts), and where ``path`` cannot be a directory (a file, say: the caller refuses it
    with its own message)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield Path(path)
        return
    path = Path(path)
    created = _make_missing(path) if create else []
    try:
        key = (os.path.realpath(path), threading.get_ident())
    except ValueError:  # a NUL in the path: the caller refuses it by name
        key = None
    if key is None or key in _HELD:  # nothing to lock, or held by this thread already
        yield path
        return
    fd = None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (OSError, ValueError):  # not a directory: the caller refuses it
        pass
    if fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held elsewhere
            os.close(fd)
            _remove_empty(created)
            raise error(f"{path} is in use by another conceptid command (it holds the "
                        f"{what}'s lock); wait for it to finish, or use another "
                        "directory") from None  # fmt: skip
        except OSError:  # a file system that does not lock: unlocked, as without flock
            os.close(fd)
            fd = None
    if fd is not None:
        _HELD.add(key)
    try:
        yield path
    finally:
        if fd is not None:
            _HELD.discard(key)
            os.close(fd)  # closing the only descriptor releases the lock
        _remove_empty(created)


def _make_missing(path: Path) -> list[Path]:
    """Create the missing directory ``path`` (its path made absolute and ``..`` resolved as
    text, so ``x/../y`` makes ``y`` alone) and any missing parent; return those made,
    outermost first (none when it exists, or cannot be made: the caller names why)."""
    created: list[Path] = []
    try:
        if path.exists() or path.is_symlink():
            return []
        target = Path(os.path.abspath(path))
        for p in [target, *target.parents]:
            if p.exists():
                break
            created.insert(0, p)
        target.mkdir(parents=True)
    except (OSError, ValueError):  # a name too long, a NUL, no permission, ...
        _remove_empty(created)  # what mkdir made before it failed
        return []
    return created


def _remove_empty(created: list[Path]) -> None:
    """Remove the directories ``run_lock`` made, deepest first, as long as they are empty."""
    for p in reversed(created):
        try:
            p.rmdir()  # only an empty directory: never anything written into it
        except (OSError, ValueError):  # not empty, or never made (mkdir failed below it)
            continue


def holds_run_dir(
    get: Callable[[dict], object],
    what: str = "run directory",
    create: bool = True,
    error: type[ConceptIDError] = RunDirError,
) -> Callable:
    """Decorate a function that writes into a directory to hold :func:`run_lock` on it while it
    runs (``what``, ``create`` and ``error`` as there); ``get(arguments)`` picks the
    directory from the call's bound arguments (a mapping of parameter names to values,
    defaults applied). A call whose directory cannot be picked (bad arguments) runs unlocked,
    to be refused by the function itself."""

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def locked(*args, **kwargs):
            try:
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                path = os.fspath(get(bound.arguments))
            except (TypeError, AttributeError, KeyError):
                return fn(*args, **kwargs)
            with run_lock(path, what, create, error):
                return fn(*args, **kwargs)

        return locked

    return decorate


def is_run_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds the run marker ``run.json`` naming the run format."""
    marker = probe_json(Path(path) / MARKER)
    return isinstance(marker, dict) and marker.get("format") == FORMAT


def check_run_dir(path: str | os.PathLike) -> Path:
    """Refuse, writing nothing, a ``path`` that cannot be a run directory: a file, or a
    non-empty directory without the run marker (:class:`RunDirError`, naming what it
    contains). Returns ``path``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"refusing to use {path} as a run directory: it is a file")
    if path.is_dir() and not is_run_dir(path):
        remove_stale(path, MARKER)  # a marker whose writer was killed
        if any(path.iterdir()):
            what = f"not a conceptid run directory (contains {describe_contents(path)})"
            raise RunDirError(f"refusing to write into {path}: {what}; choose another --out")
    return path


def check_outputs(path: str | os.PathLike) -> None:
    """Refuse, before any work, a run directory where something is in the way of an output of
    the evaluation: anything but a file at ``metrics.json``, ``timings.json``, ``report.md``,
    ``check.json``, ``check.txt`` or ``figures/NAME.png``, or anything but a directory at
    ``figures``. Raises :class:`RunDirError` naming the first; what does not exist yet is
    fine."""
    path = Path(path)
    files = [*EVALUATION, "check.json", "check.txt", *(f"figures/{f}.png" for f in FIGURES)]
    for name, want in [("figures", "directory"), *((f, "file") for f in files)]:
        p = path / name
        there = p.exists() or p.is_symlink()
        if there and not (p.is_dir() if want == "directory" else p.is_file()):
            raise RunDirError(f"{p} is in the way of an output of the run (it is not a {want}); "
                              f"move it away")  # fmt: skip


def check_method_paths(path: str | os.PathLike, name: str, restarts: int = 1) -> None:
    """Refuse, before any work, a run directory where something is in the way of method
    ``name``'s files: anything but a directory at ``models`` or ``models/NAME``, anything but a
    file at ``models/NAME/final.pt`` or at a checkpoint of one of its ``restarts``
    (``checkpoint.pt``, ``checkpoint.pt.rR``); symbolic links are followed (a broken one is
    named as such). Raises :class:`RunDirError` naming the first
    (``--retrain`` would not help: the package removes only files it wrote); what does not
    exist yet is fine."""
    folder = Path(path) / "models" / name

    def refuse(p: Path, want: str) -> None:
        if p.is_symlink() and not p.exists():
            raise RunDirError(f"{p} is a broken symbolic link (to {os.readlink(p)}), in the "
                              f"way of the files of {name}; remove it or point it at a "
                              f"{want}")  # fmt: skip
        raise RunDirError(f"{p} is in the way of the files of {name} (it is not a {want}); "
                          "move it away")  # fmt: skip

    # links are followed: models (or models/METHOD) may be a link to a directory elsewhere
    for p in (folder.parent, folder):
        if (p.exists() or p.is_symlink()) and not p.is_dir():
            refuse(p, "directory")
        if not p.exists():  # nothing below it yet
            return
    for p in [folder / "final.pt", *restart_checkpoints(path, name, restarts).values()]:
        if (p.exists() or p.is_symlink()) and not p.is_file():
            refuse(p, "file")


def open_run_dir(path: str | os.PathLike) -> Path:
    """``path`` as a run directory: created (with its marker) when missing or empty, accepted
    when marked.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Path

    Raises
    ------
    RunDirError
        ``path`` is a file, or a non-empty directory without the run marker (named with what it
        contains): nothing is written there.
    """
    path = check_run_dir(path)
    if not is_run_dir(path):
        with atomic_path(path / MARKER) as tmp:
            tmp.write_text(json.dumps({"format": FORMAT}) + "\n")
    return path


def require_run_dir(path: str | os.PathLike) -> Path:
    """``path`` if it is a marked run directory, else :class:`RunDirError`."""
    path = Path(path)
    if not is_run_dir(path):
        what = ("does not exist" if not path.exists() else
                f"has no {MARKER}" if not (path / MARKER).exists() else
                f"has a {MARKER} that is not a run marker: damaged, or written by something "
                f"else")  # fmt: skip
        raise RunDirError(f"{path} is not a conceptid run directory (it {what})")
    return path


def _marker(path: Path) -> dict:
    marker = probe_json(path / MARKER)
    return marker if isinstance(marker, dict) else {}


def recorded_data(run: str | os.PathLike) -> dict | None:
    """``{"path", "content_hash", "labels_hash"}`` of the dataset directory recorded in the
    run's marker by :func:`record_data` (no ``labels_hash`` in records of older releases), or
    None."""
    data = _marker(Path(run)).get("data")
    ok = isinstance(data, dict) and all(
        isinstance(data.get(k), str) for k in ("path", "content_hash")
    )
    return data if ok else None


def check_data_of_run(run: str | os.PathLike, ds: Dataset,
                      data: str | os.PathLike) -> Dataset | None:  # fmt: skip
    """Refuse, writing nothing, to train on ``ds`` (from the directory ``data``) into ``run``
    when the run holds (``run/data``) or records (:func:`record_data`) another dataset: its
    models would not evaluate together (:class:`RunDirError`). Returns the run's own copy,
    verified to be ``ds``, when it holds one (else None)."""
    run = Path(run)
    if (run / "data").is_dir():
        held = load_dataset(run / "data")
        differ = _differs(held.content_hash, held.labels_hash, ds)
        if differ:
            raise RunDirError(f"{run} holds another dataset in {run / 'data'} than {data} "
                              f"({differ}); use another --out")  # fmt: skip
        return held
    rec = recorded_data(run)
    differ = rec and _differs(rec["content_hash"], rec.get("labels_hash"), ds)
    if differ:
        raise RunDirError(f"{run} was trained on another dataset, {rec['path']}, than {data} "
                          f"({differ}); use another --out")  # fmt: skip
    return None


def _differs(content_hash: str, labels_hash: str | None, ds: Dataset) -> str:
    """How a dataset of these hashes differs from ``ds``: ``"other arrays"``, ``"the same
    arrays labelled otherwise"`` or ``""`` (``labels_hash`` None: a record written before
    labels were recorded, compared by its arrays alone)."""
    if content_hash != ds.content_hash:
        return (
            f"other arrays: content hash {content_hash[:12]}... against {ds.content_hash[:12]}..."
        )
    if labels_hash is not None and labels_hash != ds.labels_hash:
        return (
            "the same arrays labelled otherwise (concepts, nuisance size or contexts' "
            f"targets): labels hash {labels_hash[:12]}... against {ds.labels_hash[:12]}..."
        )
    return ""


def check_no_recorded_data(run: str | os.PathLike) -> None:
    """Refuse, writing nothing, to generate a dataset for ``run`` when its models were trained
    by ``conceptid train`` on a dataset directory it records (:class:`RunDirError`)."""
    rec = recorded_data(run) if not (Path(run) / "data").is_dir() else None
    if rec is not None:
        raise RunDirError(f"the models of {run} were trained on {rec['path']} (recorded by "
                          f"`conceptid train`); run them on it with --data (Python: data=), or "
                          f"use another --out")  # fmt: skip


def record_data(run: str | os.PathLike, ds: Dataset, data: str | os.PathLike) -> None:
    """Record in the marker of ``run`` (a run directory) that its models were trained on the
    dataset directory ``data`` (absolute path, content hash and labels hash), so that
    :func:`run_data` finds it; nothing is recorded when the run holds its own copy in
    ``run/data``."""
    run = require_run_dir(run)
    if (run / "data").is_dir():
        return
    marker = {**_marker(run), "data": {"path": str(Path(data).resolve()),
                                       "content_hash": ds.content_hash,
                                       "labels_hash": ds.labels_hash}}  # fmt: skip
    with atomic_path(run / MARKER) as tmp:
        tmp.write_text(json.dumps(marker) + "\n")


def run_data_dir(run: str | os.PathLike) -> tuple[Path, dict | None]:
    """Where the models of ``run`` find their dataset when no ``--data`` is given: the run's
    own ``run/data``, else the directory :func:`record_data` recorded, with the record (None for
    ``run/data``). Nothing is loaded or verified (:func:`run_data` does that).

    Raises
    ------
    DatasetError
        The run has neither.
    """
    run = Path(run)
    if (run / "data").is_dir():
        return run / "data", None
    rec = recorded_data(run)
    if rec is None:
        raise DatasetError(f"{run} holds no data/ and records no dataset; pass --data (Python: "
                           f"data=), the dataset directory its models were trained on")  # fmt: skip
    return Path(rec["path"]), rec


def run_data(run: str | os.PathLike, data: str | os.PathLike | None = None) -> Dataset:
    """The dataset the models of ``run`` were trained on: ``data`` when given, else the run's
    own ``run/data``, else the dataset directory :func:`record_data` recorded, verified against
    the recorded content hash.

    Raises
    ------
    DatasetError
        ``data`` (or the dataset found) is not a dataset or fails its verification, the
        recorded directory is gone or holds another dataset, or the run has neither.
    """
    if data is not None:
        return load_dataset(data)
    run = Path(run)
    path, rec = run_data_dir(run)
    if rec is None:
        return load_dataset(path)
    if not path.exists():
        raise DatasetError(f"the models of {run} were trained on {path}, which no longer "
                           f"exists; pass --data (Python: data=), where it is now")  # fmt: skip
    try:
        ds = load_dataset(path)
    except DatasetError as err:
        raise DatasetError(
            f"{err} (the dataset the models of {run} were trained on, as "
            f"`conceptid train` recorded it; pass --data where it is now)"
        ) from None
    differ = _differs(rec["content_hash"], rec.get("labels_hash"), ds)
    if differ:
        raise DatasetError(
            f"{path} now holds another dataset than the models of {run} were "
            f"trained on (recorded: {differ}); pass --data (Python: data=)"
        )
    return ds


def restart_checkpoints(run: str | os.PathLike, name: str, restarts: int) -> dict[int, Path]:
    """The checkpoints of method ``name`` that ``restarts`` restarts write (restart ``r`` to
    ``checkpoint.pt``, or ``checkpoint.pt.rR`` for ``r > 0``) and that exist (a broken link
    included), by restart: found by reading the folder, so that their number costs nothing."""
    folder = Path(run) / "models" / name
    if not folder.is_dir():
        return {}
    found = {}
    for p in folder.iterdir():
        m = _RESTART_CHECKPOINT.match(p.name)
        if m and int(m.group(1) or 0) < restarts:
            found[int(m.group(1) or 0)] = p
    return dict(sorted(found.items()))


def method_files(run: str | os.PathLike, name: str) -> list[Path]:
    """The files the package wrote for method ``name``: ``final.pt`` and its checkpoints."""
    folder = Path(run) / "models" / name
    if not folder.is_dir():
        return []
    ours = (p for p in folder.iterdir() if p.name == "final.pt" or _CHECKPOINT.match(p.name))
    return sorted(p for p in ours if p.is_file())


def remove_method(run: str | os.PathLike, name: str) -> None:
    """Remove method ``name``'s model and checkpoints (and a killed writer's temporaries of
    them); the folder too when nothing else is left in it."""
    folder = Path(run) / "models" / name
    for p in method_files(run, name):
        p.unlink()
    if folder.is_dir():
        for p in list(folder.iterdir()):
            target = _TEMPORARY.match(p.name)
            if target:
                remove_stale(folder, target.group(1))
        if not any(folder.iterdir()):
            folder.rmdir()


def remove_evaluation(run: str | os.PathLike) -> None:
    """Remove the run's evaluation (metrics, timings, report, figures): it described models
    that are about to change. ``evaluate`` (or the end of ``run``) writes it again."""
    run = Path(run)
    files = [run / name for name in EVALUATION]
    figures = run / "figures"
    if figures.is_dir():
        files += [figures / f"{name}.png" for name in FIGURES]
    for f in files:  # files only: a directory in the way is not the package's to remove
        if f.is_file() or f.is_symlink() and not f.is_dir():
            f.unlink()
    if figures.is_dir() and not figures.is_symlink() and not any(figures.iterdir()):
        figures.rmdir()  # a symlinked folder is the user's: it stays


# ---------------------------------------------------------------------------------- atomic writes


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (whole or not at all); returns ``path``."""
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj) -> Path:
    """``obj`` as indented JSON with sorted keys (no NaN), atomically; returns ``path``."""
    return write_text(path, json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n")


def write_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """``array`` as a ``.npy`` file, atomically; returns ``path``."""
    with atomic_path(Path(path), ".npy") as tmp:
        np.save(tmp, array)
    return Path(path)


# ---------------------------------------------------------------------------------- the dataset


def held_data(spec: BenchmarkSpec, out: str | os.PathLike, check=None) -> Dataset | None:
    """``out/data`` loaded, when it is there, and verified to hold this spec's dataset (then
    passed to ``check``, a function of the dataset that raises what the caller refuses); None
    when there is none. Writes nothing.

    Raises
    ------
    DatasetError
        ``out/data`` is not a dataset, or holds one of another spec.
    RunDirError
        ``out`` cannot be a run directory, or its models were trained by ``conceptid train``
        on a dataset directory it records (:func:`record_data`).
    """
    out = check_run_dir(out)
    check_no_recorded_data(out)
    path = out / "data"
    if not (path.exists() or path.is_symlink()):
        return None
    ds = load_dataset(path)
    if ds.spec != spec:
        raise DatasetError(f"{path} holds a dataset of a different spec; use another --out or "
                           "delete it")  # fmt: skip
    if check is not None:
        check(ds)
    return ds


def ensure_data(spec: BenchmarkSpec, out: str | os.PathLike, progress: bool = True,
                check=None) -> Dataset:  # fmt: skip
    """Load ``out/data`` if it holds this spec's dataset, else generate and save it (``out`` is
    a run directory: :func:`open_run_dir`). ``check``: a function of the dataset that raises
    what the caller refuses, called before a generated dataset is saved (as
    :func:`adopt_data`'s).

    Raises
    ------
    DatasetError
        ``out/data`` holds a dataset of another spec.
    RunDirError
        ``out`` cannot be a run directory, or its models were trained by ``conceptid train``
        on a dataset directory it records (:func:`record_data`).
    """
    ds = held_data(spec, out, check)
    if ds is not None:
        return ds
    path = open_run_dir(out) / "data"
    ds = generate(spec, progress=progress)
    if check is not None:
        check(ds)
    ds.save(path)
    return ds


def adopt_data(data: str | os.PathLike, out: str | os.PathLike, check=None,
               loaded: Dataset | None = None) -> Dataset:  # fmt: skip
    """The dataset in directory ``data``, verified, as the run's ``out/data``: copied there
    (atomically, by :meth:`Dataset.save`) unless ``out/data`` already holds it. ``check``: a
    function of the dataset that raises what the caller refuses, called before anything is
    written. ``loaded``: the caller's ``load_dataset(data)``, when it has it (not loaded
    again).

    Raises
    ------
    DatasetError
        ``data`` is not a dataset or fails its verification, or ``out/data`` is not one.
    RunDirError
        ``out`` cannot be a run directory, or it holds or records another dataset
        (:func:`check_data_of_run`).
    """
    ds = load_dataset(data) if loaded is None else loaded
    held = check_data_of_run(out, ds, data)  # out/data, verified to hold ds, if there is one
    if check is not None:
        check(ds)
    path = open_run_dir(out) / "data"
    if held is not None:
        return held
    if path.exists():  # a file, not a dataset directory: load_dataset says so
        return load_dataset(path)
    ds.save(path)
    return ds
