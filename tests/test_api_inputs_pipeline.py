"""Bad input to the pipeline layer's Python API (floors, training, evaluation): refused before any
work, with the package's own error naming what was wrong; nothing left behind by a refused
training."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch

from conceptid import floors, methods
from conceptid.evaluation import evaluate_method
from conceptid.models.trainer import CheckpointError
from conceptid.simulations import BenchmarkSpec, generate
from conceptid.simulations.benchmark import DatasetError
from conceptid.simulations.errors import UsageError
from conceptid.simulations.resources import MemoryLimitError
from conceptid.splits import Normaliser, splits
from conceptid.training import read_trained, sample, train, train_method

HUGE = 10**12


@pytest.fixture(scope="module")
def ds():
    return generate(BenchmarkSpec(preset="chain", preset_args={"m": 3, "nuisance_dim": 1},
                                  n_train=120, n_val=30, n_test=30, seed=0))  # fmt: skip


@pytest.fixture(scope="module")
def parts(ds):
    return splits(ds)


@pytest.fixture(scope="module")
def trained(ds, tmp_path_factory):
    return train("pooled", ds, tmp_path_factory.mktemp("run"), epochs=1, progress=False)


# -- floors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"context": 99}, DatasetError, "context index 99 outside 0..6"),
        ({"context": -1}, DatasetError, "context index -1 outside"),
        ({"context": 1.0}, DatasetError, "a context is a name or an index, got 1.0"),
        ({"context": "do(zz)"}, DatasetError, "unknown context 'do(zz)'"),
        ({"n": 0}, UsageError, "n must be a positive integer, got 0"),
        ({"n": -1}, UsageError, "n must be a positive integer, got -1"),
        ({"n": 2.0}, UsageError, "n must be a positive integer, got 2.0"),
        ({"n": HUGE}, MemoryLimitError, f"drawing {HUGE} samples of context 'do(c0)' needs"),
        ({"seed": -1}, UsageError, "seed must be a non-negative integer, got -1"),
        ({"seed": 1.5}, UsageError, "seed must be a non-negative integer, got 1.5"),
        ({"normaliser": "z"}, UsageError, "normaliser must be a conceptid.splits.Normaliser"),
        ({"normaliser": Normaliser(torch.zeros(3), torch.ones(3))}, UsageError,
         "normaliser is of observations of shape (3,); this dataset's are (8,)"),
    ],
)  # fmt: skip
def test_fresh_draw_refuses_bad_arguments(ds, kwargs, error, message):
    args = {"context": 1, "n": 5, "seed": 0, "normaliser": None} | kwargs
    with pytest.raises(error, match=re.escape(message)):
        floors.fresh_draw(ds, **args)


def test_fresh_draw_takes_a_context_by_name_as_by_index(ds, parts):
    norm = parts[0]
    by_name = floors.fresh_draw(ds, "do(c0)", 5, 0, norm)
    assert np.array_equal(by_name, floors.fresh_draw(ds, 1, 5, 0, norm))
    assert np.array_equal(by_name, floors.fresh_draw(ds, np.int64(1), 5, 0, norm))


@pytest.mark.parametrize(
    "contexts, n, error, message",
    [
        ("do(c0)", 20, UsageError, "contexts must be a sequence of context names or indices"),
        (1, 20, UsageError, "got 1 (one context: [k], not k)"),
        ([99], 20, DatasetError, "context index 99 outside"),
        ([-1], 20, DatasetError, "context index -1 outside"),
        ([1], 0, UsageError, "n must be a positive integer, got 0"),
        ([1], HUGE, MemoryLimitError, "needs about"),
        ([5], 20, UsageError, "split holds no rows of context(s) ['do(c0,c2)']"),
    ],
)
def test_swd_floors_refuses_bad_arguments(ds, parts, contexts, n, error, message, monkeypatch):
    def no_draw(*args, **kwargs):
        raise AssertionError("a sample was drawn before the arguments were checked")

    norm, (_, _, te, _) = parts
    monkeypatch.setattr(floors, "fresh_draw", no_draw)
    with pytest.raises(error, match=re.escape(message)):
        floors.swd_floors(ds, te, contexts, n, 0, norm)


def test_swd_floors_refuses_a_split_or_oracle_of_other_data(ds, parts):
    norm, (_, _, te, held) = parts
    # the same model, names and sizes, another seed: only the content hash tells them apart
    other = generate(BenchmarkSpec(preset="chain", preset_args={"m": 3, "nuisance_dim": 1},
                                   n_train=120, n_val=30, n_test=30, seed=1))  # fmt: skip
    with pytest.raises(UsageError, match=r"split must be a TensorData .*got ndarray"):
        floors.swd_floors(ds, te.x.numpy(), [1], 20, 0, norm)
    wide = generate(BenchmarkSpec(preset="chain", preset_args={"m": 3, "p": 12}, n_train=60,
                                  n_val=10, n_test=10))  # fmt: skip
    _, (_, _, te_wide, _) = splits(wide)
    with pytest.raises(UsageError, match=r"split holds observations of shape \(12,\); this "
                                         r"dataset's are \(8,\)"):  # fmt: skip
        floors.swd_floors(ds, te_wide, [1], 20, 0, norm)
    with pytest.raises(UsageError, match="oracle must be True, False or an OracleSEM, got 'yes'"):
        floors.swd_floors(ds, held, ds.held_out_contexts, 20, 0, norm, oracle="yes")
    fitted = floors.OracleSEM(other)
    msg = r"this OracleSEM was fitted on another dataset \(content hash .*fit one on this"
    with pytest.raises(UsageError, match=msg):
        floors.swd_floors(ds, held, ds.held_out_contexts, 20, 0, norm, oracle=fitted)
    with pytest.raises(UsageError, match=msg):
        floors.oracle_sem_sample(ds, fitted, 4, 10, 0)


def test_oracle_sem_sample_and_sample_refuse_bad_arguments(ds):
    fitted = floors.OracleSEM(ds)
    assert floors.oracle_sem_sample(ds, fitted, "do(c0,c1)", 10, 0).shape == (10, 8)
    with pytest.raises(DatasetError, match="context index 99 outside"):
        floors.oracle_sem_sample(ds, fitted, 99, 10, 0)
    with pytest.raises(UsageError, match="n must be a positive integer, got -1"):
        floors.oracle_sem_sample(ds, fitted, 4, -1, 0)
    with pytest.raises(MemoryLimitError, match=f"drawing {HUGE} samples"):
        floors.oracle_sem_sample(ds, fitted, 4, HUGE, 0)
    with pytest.raises(UsageError, match="the oracle must be an OracleSEM"):
        floors.oracle_sem_sample(ds, "oracle", 4, 10, 0)
    rng = np.random.default_rng(0)
    with pytest.raises(UsageError, match="context index 7 outside 0..6"):
        fitted.sample(7, 5, rng)
    with pytest.raises(UsageError, match=r"context \(an index\) must be a non-negative integer"):
        fitted.sample(-1, 5, rng)
    with pytest.raises(UsageError, match="n must be a positive integer, got 0"):
        fitted.sample(1, 0, rng)
    with pytest.raises(MemoryLimitError, match=f"drawing {HUGE} concept vectors"):
        fitted.sample(1, HUGE, rng)
    with pytest.raises(UsageError, match="rng must be a numpy.random.Generator .*, got int"):
        fitted.sample(1, 5, 0)
    with pytest.raises(UsageError, match="ds must be a Dataset, got str"):
        floors.OracleSEM("data")


def test_swd_rows_refuses_bad_arguments(parts):
    _, (_, _, te, _) = parts
    with pytest.raises(UsageError, match="n must be a positive integer, got 0"):
        floors.swd_rows(te, 1, 0, 0)
    with pytest.raises(UsageError, match="seed must be a non-negative integer, got -2"):
        floors.swd_rows(te, 1, 5, -2)
    with pytest.raises(UsageError, match=r"context \(an index\) must be a non-negative"):
        floors.swd_rows(te, -1, 5, 0)


# -- sampling and evaluation -----------------------------------------------------------------------


def test_sample_checks_memory_before_allocating(ds, trained, monkeypatch):
    def no_zeros(*args, **kwargs):
        raise AssertionError("the mask was allocated before the memory check")

    monkeypatch.setattr(torch, "zeros", no_zeros)
    with pytest.raises(MemoryLimitError, match=f"generating {HUGE} samples needs about"):
        sample(trained, ds, [], HUGE)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n_generate": 0}, UsageError, "n_generate must be a positive integer, got 0"),
        ({"n_generate": -5}, UsageError, "n_generate must be a positive integer, got -5"),
        ({"n_generate": HUGE}, MemoryLimitError,
         f"generating n_generate = {HUGE} samples per context needs about"),
        ({"seed": -1}, UsageError, "seed must be a non-negative integer, got -1"),
        ({"seed": 1.5}, UsageError, "seed must be a non-negative integer, got 1.5"),
    ],
)  # fmt: skip
def test_evaluate_method_refuses_bad_arguments_before_work(ds, trained, kwargs, error, message,
                                                           monkeypatch):  # fmt: skip
    import conceptid.evaluation as evaluation

    def no_work(*args, **kwargs):
        raise AssertionError("the evaluation started before its arguments were checked")

    monkeypatch.setattr(evaluation, "splits", no_work)
    with pytest.raises(error, match=message):
        evaluate_method("pooled", trained.model, ds, **kwargs)


def test_evaluate_method_names_a_model_of_another_method(ds, trained):
    msg = (r"the model is a PooledVAE \(a model of beta-vae or pooled\), not a context-flow "
           r"model \(a LatentFlowMLE\)")  # fmt: skip
    with pytest.raises(UsageError, match=msg):
        evaluate_method("context-flow", trained.model, ds, n_generate=20)
    with pytest.raises(UsageError, match="the model is a NoneType, not a pooled model"):
        evaluate_method("pooled", None, ds, n_generate=20)


def test_each_method_records_the_class_it_builds(ds):
    for name, method in (methods.METHODS | methods.BENCHMARK_METHODS).items():
        model = method.make(ds, 6)
        assert type(model).__name__ == method.model_class, name
        assert method.builds(model)
    assert not methods.METHODS["pooled"].builds(torch.nn.Linear(2, 2))


# -- training and reading back ---------------------------------------------------------------------


def _refuse(*args, **kwargs):
    raise UsageError("the latent has 52 dimensions, more than the 5 of an observation")


def test_a_refused_training_leaves_no_run_directory(ds, tmp_path, monkeypatch):
    """A model that cannot be built for the data is refused before the run directory is
    opened: a new one is not created, an empty one stays empty."""
    from conceptid import training

    unbuildable = dataclasses.replace(methods.METHODS["context-flow"], build=_refuse)
    monkeypatch.setitem(training.METHODS, "context-flow", unbuildable)
    out = tmp_path / "runs" / "a"
    with pytest.raises(UsageError, match="the latent has 52 dimensions"):
        train_method("context-flow", ds, out, epochs=1, progress=False)
    assert not out.exists() and not out.parent.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="the latent has 52 dimensions"):
        train_method("context-flow", ds, empty, epochs=1, progress=False)
    assert list(empty.iterdir()) == []


def test_a_latent_wider_than_the_data_trains_a_vae_and_refuses_a_manifold_estimator(tmp_path):
    """Imported data may carry a latent wider than an observation: the VAEs train it; the
    context flow cannot (its latent lies on the data's manifold), and refuses before the run
    directory exists."""
    from conceptid.simulations.benchmark import Dataset

    rng = np.random.default_rng(0)
    wide = Dataset.from_arrays(rng.normal(size=(90, 3)).astype(np.float32),
                               [[]] * 30 + [["a"]] * 30 + [["b"]] * 30, ["a", "b"],
                               nuisance_dim=2)  # fmt: skip
    assert train_method("pooled", wide, tmp_path / "vae", epochs=1, progress=False)[0] is not None
    out = tmp_path / "flow"
    with pytest.raises(UsageError, match=r"= 4 dimensions, more than the 3 of an observation"):
        train_method("context-flow", wide, out, epochs=1, progress=False)
    assert not out.exists()


def test_a_model_too_large_for_memory_leaves_no_run_directory(ds, tmp_path, monkeypatch):
    monkeypatch.setenv("CONCEPTID_MAX_MEMORY", "0.000001")  # about 1 KiB: no model fits
    out = tmp_path / "run"
    with pytest.raises(MemoryLimitError, match=r"nets for \(8,\) observations .* needs about"):
        train_method("pooled", ds, out, epochs=1, progress=False)
    assert not out.exists()


def test_a_training_refused_for_its_data_leaves_no_run_directory(tmp_path):
    ds = generate(BenchmarkSpec(preset="chain", preset_args={"m": 2}, n_train=40, n_val=0,
                                n_test=5))  # fmt: skip
    out = tmp_path / "run"
    with pytest.raises(UsageError, match="the validation data is empty"):
        train_method("pooled", ds, out, epochs=1, progress=False)
    assert not out.exists()


def test_too_few_test_rows_for_the_alignment_are_refused_before_training():
    """With ground truth the evaluation aligns each concept: a block of 4 columns needs 6 rows
    (an affine fit on fewer is exact whatever the data), so 3 test rows are refused up front,
    not after every model has trained."""
    from conceptid.errors import PipelineError
    from conceptid.evaluation import check_evaluable

    blocks = generate(BenchmarkSpec(preset="chain", preset_args={"m": 2, "block_size": 4},
                                    n_train=20, n_val=5, n_test=1))  # fmt: skip
    with pytest.raises(PipelineError, match="hold 3 test samples; .* needs at least 6"):
        check_evaluable(blocks)
    check_evaluable(generate(BenchmarkSpec(preset="chain", preset_args={"m": 2}, n_train=20,
                                           n_val=5, n_test=1)))  # fmt: skip


def test_read_trained_says_what_is_missing(ds, tmp_path):
    with pytest.raises(CheckpointError, match=r"zz[/\\]final.pt does not exist"):
        read_trained(tmp_path / "zz" / "final.pt", ds)
    with pytest.raises(CheckpointError, match="is a directory, not a trained model's file"):
        read_trained(tmp_path, ds)
