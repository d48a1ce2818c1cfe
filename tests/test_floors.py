"""SWD floors (conceptid.floors): fresh draws in evaluation units; floors ordered."""

from __future__ import annotations

import re

import numpy as np
import pytest

from conceptid.floors import fresh_draw, swd_floors
from conceptid.pipeline import ensure_data, splits
from conceptid.simulations import BenchmarkSpec


@pytest.mark.parametrize(
    "preset, args",
    [("quad", {"image_size": 32}), ("chain", {"m": 3, "nuisance_dim": 1, "mixing": "linear"})],
)
def test_fresh_draws_are_in_evaluation_units_and_floors_are_ordered(tmp_path, preset, args):
    spec = BenchmarkSpec(preset=preset, preset_args=args, n_train=200, n_val=20, n_test=300,
                         seed=0)  # fmt: skip
    ds = ensure_data(spec, tmp_path, progress=False)
    norm, (tr, _, te, _) = splits(ds)
    fresh = fresh_draw(ds, 0, 300, seed=1, normaliser=norm)
    data = te.x[(te.context == 0).numpy()].numpy()
    assert fresh.shape[1:] == data.shape[1:] and fresh.dtype == np.float32
    # same law, same units: per-coordinate means agree within sampling error
    sd = data.reshape(len(data), -1).std(0) + 1e-6
    gap = np.abs(fresh.reshape(300, -1).mean(0) - data.reshape(len(data), -1).mean(0)) / sd
    assert np.median(gap) < 0.2
    ids = [c["index"] for c in ds.card["contexts"] if c["targets"] and not c["held_out"]]
    floors = swd_floors(ds, te, [0, *ids], 300, seed=0, normaliser=norm)
    # an intervened context is farther from the observational law than from a fresh draw of
    # itself; the observational context's two floors are one and the same distance
    for name in (ds.context_names[k] for k in ids):
        assert floors["same"][name] < floors["observational"][name]
    obs = ds.context_names[0]
    assert floors["same"][obs] == pytest.approx(floors["observational"][obs])


def _moments_agree(sample: np.ndarray, mean: np.ndarray, cov: np.ndarray, z: float = 5.0):
    """Sample mean and covariance against exact ones, each entry within ``z`` standard errors
    (the mean's ``sqrt(S_ii / n)``; a covariance entry's ``sqrt((S_ii S_jj + S_ij^2) / n)``,
    exact for Gaussian data)."""
    n = len(sample)
    d = np.diag(cov)
    assert np.all(np.abs(sample.mean(0) - mean) <= z * np.sqrt(d / n))
    se = np.sqrt((np.outer(d, d) + cov**2) / n)
    assert np.all(np.abs(np.cov(sample.T) - cov) <= z * se)


@pytest.mark.parametrize("preset", ["chain", "random"])
def test_oracle_sem_composes_the_true_law(tmp_path, preset):
    """Fitted on the true concepts of the training rows, the oracle SEM's law under every
    held-out pair (never seen in training) has the true composed law's exact moments, within
    the sampling error of the fit and of the draw."""
    from conceptid.floors import OracleSEM

    args = {"m": 4, "mixing": "linear", "block_size": 2} if preset == "chain" else {"m": 5}
    spec = BenchmarkSpec(preset=preset, preset_args=args, n_train=20000, n_val=20, n_test=20,
                         seed=3)  # fmt: skip
    ds = ensure_data(spec, tmp_path, progress=False)
    fitted = OracleSEM(ds)
    model = ds.model
    rng = np.random.default_rng(0)
    for k in ds.held_out_contexts:
        ctx = model.context(ds.context_names[k])
        assert len(ctx.targets) == 2
        mean, cov = model.population_moments(ctx)
        # the fit's error (n = 20000 per context) and the draw's: z = 6 covers both
        _moments_agree(fitted.sample(fitted.targets[k], 40000, rng), mean, cov, z=6.0)


def test_oracle_floor_in_swd_floors(tmp_path):
    spec = BenchmarkSpec(preset="random", preset_args={"m": 3, "mixing": "mlp"}, n_train=2000,
                         n_val=20, n_test=500, seed=0)  # fmt: skip
    ds = ensure_data(spec, tmp_path, progress=False)
    norm, (_, _, _, held) = splits(ds)
    plain = swd_floors(ds, held, ds.held_out_contexts, 500, seed=0, normaliser=norm)
    floors = swd_floors(ds, held, ds.held_out_contexts, 500, seed=0, normaliser=norm, oracle=True)
    assert "oracle_sem" not in plain
    names = [ds.context_names[k] for k in ds.held_out_contexts]
    assert set(floors["oracle_sem"]) == set(names)
    assert floors["same"] == plain["same"]  # the oracle draws from its own seed stream
    for name in names:  # exact recovery composes far closer than ignoring the labels
        assert 0 < floors["oracle_sem"][name] < floors["observational"][name] / 2


@pytest.mark.parametrize(
    "args, message",
    [
        ({"mechanism": "tanh"}, "fits a linear Gaussian SEM; this dataset's SEM has mechanism"),
        ({"noise": "laplace"}, "and noise ['laplace']"),
        ({"intervention": "soft"}, "needs hard interventions; context 'do(c0)' has soft"),
    ],
)
def test_oracle_floor_refuses_data_it_does_not_apply_to(tmp_path, args, message):
    from conceptid.floors import OracleSEM
    from conceptid.simulations.errors import UsageError

    spec = BenchmarkSpec(preset="chain", preset_args={"m": 3, "mixing": "linear"} | args,
                         n_train=50, n_val=10, n_test=10, seed=0)  # fmt: skip
    ds = ensure_data(spec, tmp_path, progress=False)
    norm, (_, _, te, _) = splits(ds)
    with pytest.raises(UsageError, match=re.escape(message)):
        OracleSEM(ds)
    with pytest.raises(UsageError, match=re.escape(message)):
        swd_floors(ds, te, [0], 10, normaliser=norm, oracle=True)


def test_oracle_floor_needs_ground_truth():
    from conceptid.floors import OracleSEM
    from conceptid.simulations import Dataset
    from conceptid.simulations.errors import UsageError

    rng = np.random.default_rng(0)
    targets = [[], ["a"], ["b"]] * 20
    ds = Dataset.from_arrays(rng.standard_normal((60, 4)), targets, ["a", "b"], seed=0)
    with pytest.raises(UsageError, match="needs a dataset with a ground-truth model"):
        OracleSEM(ds)
