"""Atomic writes: all or nothing, no temporary file left behind."""

from __future__ import annotations

import os

import pytest

from conceptid.simulations.atomic import atomic_path, remove_stale


def test_success_replaces_the_target(tmp_path):
    target = tmp_path / "sub" / "f.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("new")
        assert not target.exists()  # nothing visible before the block ends
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "f.npy"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target, ".npy") as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.npy"]


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "f.json"
    dead = tmp_path / f".f.json.partial-{_dead_pid()}-abc_12xy"
    alive = tmp_path / f".f.json.partial-{os.getppid()}-abc_12xy"  # a running writer's
    other = tmp_path / f".g.json.partial-{_dead_pid()}-abc_12xy"  # another target's
    mine = tmp_path / ".f.json.partial-notes"  # not a temporary's name
    for p in (dead, alive, other, mine):
        p.write_text("half")
    with atomic_path(target) as tmp:
        assert tmp.name.startswith(f".f.json.partial-{os.getpid()}-")
        tmp.write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["f.json", alive.name, other.name, mine.name]
    )
    assert remove_stale(tmp_path, "g.json") == [other]


def test_a_dataset_the_file_system_refuses_is_a_dataset_error(tmp_path, monkeypatch):
    """Found by review: Dataset.save raised FileNotFoundError or PermissionError (not the
    documented DatasetError) for a place it cannot write, and took "" as the current
    directory. A failed replacement leaves the old dataset as it was."""
    import errno

    from conceptid.simulations import BenchmarkSpec, generate
    from conceptid.simulations.benchmark import DatasetError, load_dataset

    spec = BenchmarkSpec(preset="chain", preset_args={"m": 2}, n_train=5, n_val=2, n_test=2)
    ds = generate(spec, progress=False)
    with pytest.raises(DatasetError, match="^cannot write a dataset to an empty path$"):
        ds.save("")
    with pytest.raises(DatasetError, match="^cannot write /proc/conceptid-test: "):
        ds.save("/proc/conceptid-test")  # a virtual file system: no directory can be made
    (tmp_path / "old").mkdir()
    old = ds.save(tmp_path / "old" / "ds")
    card = (old / "card.json").read_bytes()
    other = generate(BenchmarkSpec(**{**spec.to_dict(), "seed": 1}), progress=False)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    for name in ("rename", "replace"):  # a new directory is renamed in; an old one replaced
        monkeypatch.setattr(os, name, full)
    with pytest.raises(DatasetError, match="cannot write .*: No space left on device$"):
        other.save(tmp_path / "new")
    with pytest.raises(DatasetError, match="No space left on device"):
        other.save(old, overwrite=True)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    assert (old / "card.json").read_bytes() == card and load_dataset(old).content_hash
