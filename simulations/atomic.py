"""Atomic file writes: write to a temporary sibling, then rename it onto the target.

A reader never sees a half-written file, and a failure (an exception, an interrupt) leaves the
target as it was and no temporary file behind. A process killed outright (SIGKILL, power loss)
cannot clean up: its temporary stays, hidden, and carries the writer's process id in its name
(``.NAME.partial-PID-XXXX``), so the next write of the same target removes it once that process
no longer runs (:func:`remove_stale`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "describe_contents", "remove_stale", "temp_prefix"]


def temp_prefix(name: str, kind: str = "partial") -> str:
    """The name prefix of this process's temporary for target ``name``: ``.NAME.KIND-PID-``."""
    return f".{name}.{kind}-{os.getpid()}-"


def _writer_gone(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def remove_stale(
    folder: Path, name: str, kinds: Iterable[str] = ("partial",), allowed: set[str] | None = None
) -> list[Path]:
    """Remove the temporaries of target ``name`` in ``folder`` whose writer no longer runs.

    Parameters
    ----------
    folder : Path
        Where the target lives.
    name : str
        The target's file name.
    kinds : iterable of str
        Temporary kinds (``partial`` for :func:`atomic_path`; the dataset writer also uses
        ``tmp`` and ``old`` directories).
    allowed : set of str, optional
        For a temporary *directory*: the only file names it may hold to be removed (a directory
        holding anything else is left alone).

    Returns
    -------
    list of Path
        What was removed. A temporary of a live process is never touched.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    kinds = "|".join(re.escape(k) for k in kinds)
    pattern = re.compile(rf"^\.{re.escape(name)}\.(?:{kinds})-(\d+)-[A-Za-z0-9_]+(\.\w+)?$")
    removed = []
    for p in folder.iterdir():
        match = pattern.match(p.name)
        if not match or not _writer_gone(int(match.group(1))):
            continue
        if p.is_dir() and not p.is_symlink():
            if allowed is not None and not {q.name for q in p.iterdir()} <= allowed:
                continue
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def describe_contents(path: Path, limit: int = 5) -> str:
    """``notes.txt, src/`` (sorted, directories marked, at most ``limit`` names): what a refusal
    to touch ``path`` names."""
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in Path(path).iterdir())
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (created empty, usual file mode); rename it onto
    ``path`` when the block succeeds, remove it when the block raises. ``suffix`` keeps
    libraries that choose a format by extension (matplotlib, numpy) happy. Temporaries of the
    same target left by a killed writer are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
