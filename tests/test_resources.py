"""Memory estimates before allocation: honest about the arrays, refusing what cannot fit."""

from __future__ import annotations

import numpy as np
import pytest

from conceptid.simulations.benchmark import BenchmarkSpec, generate
from conceptid.simulations.errors import UsageError
from conceptid.simulations.presets import build_preset
from conceptid.simulations.resources import (
    ENV,
    GIB,
    MemoryLimitError,
    available_memory,
    check_memory,
    estimate_dataset,
    memory_limit,
    training_bytes,
)

SPECS = [
    BenchmarkSpec(preset="chain", n_train=30, n_val=5, n_test=7),
    BenchmarkSpec(preset="quad", preset_args={"image_size": 32}, n_train=4, n_val=1, n_test=2),
    BenchmarkSpec(preset="random", preset_args={"m": 4, "mixing": "mlp", "nuisance_dim": 2,
                                                "block_size": 2}, n_train=9, n_val=3, n_test=4),
    BenchmarkSpec(preset="quad", preset_args={"mixing": "identity", "nuisance": True,
                                              "held_out": "all"}, n_train=5, n_val=2, n_test=3),
    BenchmarkSpec(preset="chain", preset_args={"m": 3, "held_out": [["c0", "c2"]], "p": 9},
                  n_train=6, n_val=0, n_test=1),
]  # fmt: skip


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.preset + str(sorted(s.preset_args)))
def test_the_estimate_counts_exactly_the_arrays_that_generate_makes(spec):
    est = estimate_dataset(spec)
    ds = generate(spec)
    assert est.rows == len(ds.x)
    assert est.obs_shape == ds.x.shape[1:] and est.obs_itemsize == ds.x.itemsize
    assert est.array_bytes == sum(a.nbytes for a in ds.arrays.values())
    assert est.peak_bytes >= 2 * est.array_bytes  # the cells and their concatenation


def test_an_explicit_model_spec_is_estimated_from_its_model():
    model = build_preset("chain", np.random.default_rng(0), m=3, nuisance_dim=1)
    spec = BenchmarkSpec(preset=None, model=model.to_dict(), n_train=5, n_val=2, n_test=3)
    est = estimate_dataset(spec)
    ds = generate(spec)
    assert est.rows == len(ds.x) and est.array_bytes == sum(a.nbytes for a in ds.arrays.values())


def test_a_malformed_preset_argument_is_left_to_the_preset_to_refuse():
    assert estimate_dataset(BenchmarkSpec(preset="chain", preset_args={"m": "five"})) is None
    assert estimate_dataset(BenchmarkSpec(preset="chain", preset_args={"colour": 1})) is None


def test_generate_refuses_before_allocating_with_the_estimate_and_the_override():
    spec = BenchmarkSpec(preset="quad", n_train=2000, n_val=500, n_test=500)
    with pytest.raises(MemoryLimitError) as info:
        generate(spec, max_memory=0.01)
    msg = str(info.value)
    assert "28500 samples of shape (32, 32, 3)" in msg and "0.01 GiB" in msg
    assert "--max-memory" in msg and ENV in msg
    need = float(msg.split("needs about ")[1].split(" GiB")[0])
    assert need == pytest.approx(estimate_dataset(spec).peak_bytes / GIB, rel=1e-2)


def test_a_huge_request_is_refused_under_the_machines_own_limit(monkeypatch):
    """5e7 images per context (the size that once allocated 3 GiB before a cap stopped it): the
    default limit, the memory available now, refuses it in microseconds."""
    monkeypatch.delenv(ENV, raising=False)
    spec = BenchmarkSpec(preset="quad", n_train=50_000_000, n_val=1, n_test=1)
    with pytest.raises(MemoryLimitError, match="memory available on this machine"):
        generate(spec)


def test_a_million_concepts_are_refused_before_any_matrix_exists(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    spec = BenchmarkSpec(preset="random", preset_args={"m": 1_000_000}, n_train=1, n_val=1,
                         n_test=1)  # fmt: skip
    with pytest.raises(MemoryLimitError, match="GiB"):
        generate(spec)


def test_the_limit_comes_from_the_argument_then_the_environment_then_the_machine(monkeypatch):
    monkeypatch.setenv(ENV, "2")
    assert memory_limit(0.5) == (GIB // 2, "limit given as max_memory")
    assert memory_limit()[0] == 2 * GIB and ENV in memory_limit()[1]
    monkeypatch.setenv(ENV, "lots")
    with pytest.raises(UsageError, match=f"{ENV} must be a number of GiB, got 'lots'"):
        memory_limit()
    monkeypatch.setenv(ENV, "-1")
    with pytest.raises(UsageError, match=f"{ENV} must be a positive finite number"):
        memory_limit()
    monkeypatch.delenv(ENV)
    avail = available_memory()
    assert avail is not None and avail > 0  # Linux: /proc/meminfo
    limit, source = memory_limit()
    assert source == "memory available on this machine" and 0 < limit
    with pytest.raises(UsageError, match="max_memory"):
        memory_limit(0)


def test_check_memory_passes_what_fits():
    check_memory(10, "ten bytes", max_memory=1e-6)
    with pytest.raises(MemoryLimitError, match="ten thousand bytes needs about"):
        check_memory(10_000, "ten thousand bytes", max_memory=1e-6)


def test_training_bytes_are_two_float32_copies():
    assert training_bytes(10, (32, 32, 3)) == 2 * 4 * 10 * 32 * 32 * 3
