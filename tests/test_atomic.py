"""Atomic writes: all or nothing, no temporary file left behind."""

from __future__ import annotations

import pytest

from simulations.atomic import atomic_path


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
