"""SWD floors (conceptid.floors): fresh draws in evaluation units; floors ordered."""

from __future__ import annotations

import re

import numpy as np
import pytest

from conceptid.floors import OracleSEM, fresh_draw, swd_floors
from conceptid.pipeline import ensure_data, splits
from conceptid.simulations import BenchmarkSpec
from conceptid.simulations.errors import UsageError


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


@pytest.mark.parametrize("graph", ["true", "complete"])
@pytest.mark.parametrize("preset", ["chain", "random"])
def test_oracle_sem_composes_the_true_law(tmp_path, preset, graph):
    """Fitted on the true concepts of the training rows, the oracle SEM's law under every
    held-out pair (never seen in training) has the true composed law's exact moments, within
    the sampling error of the fit and of the draw."""
    args = {"m": 4, "mixing": "linear", "block_size": 2} if preset == "chain" else {"m": 5}
    spec = BenchmarkSpec(preset=preset, preset_args=args, n_train=20000, n_val=20, n_test=20,
                         seed=3)  # fmt: skip
    ds = ensure_data(spec, tmp_path, progress=False)
    fitted = OracleSEM(ds, graph=graph)
    model = ds.model
    rng = np.random.default_rng(0)
    for k in ds.held_out_contexts:
        ctx = model.context(ds.context_names[k])
        assert len(ctx.targets) == 2
        mean, cov = model.population_moments(ctx)
        # the fit's error (n = 20000 per context) and the draw's: z = 6 covers both
        _moments_agree(fitted.sample(k, 40000, rng), mean, cov, z=6.0)


def test_oracle_floor_in_swd_floors(tmp_path):
    """With a nuisance, a random readout and an MLP mixing: the oracle floor sits at the
    same-law floor (exact recovery, only the SEM estimated from 2000 rows per context). Over
    seeds 0-9 of this model the mean ratio over the held-out pairs was 0.95x-1.22x, single
    pairs 0.73x-1.50x; a draw that loses the nuisance or the readout is at about 3x."""
    spec = BenchmarkSpec(preset="random", preset_args={"m": 3, "mixing": "mlp", "nuisance_dim": 2},
                         n_train=2000, n_val=20, n_test=500, seed=0)  # fmt: skip
    ds = ensure_data(spec, tmp_path, progress=False)
    norm, (_, _, _, held) = splits(ds)
    plain = swd_floors(ds, held, ds.held_out_contexts, 500, seed=0, normaliser=norm)
    floors = swd_floors(ds, held, ds.held_out_contexts, 500, seed=0, normaliser=norm, oracle=True)
    assert "oracle_sem" not in plain
    names = [ds.context_names[k] for k in ds.held_out_contexts]
    assert set(floors["oracle_sem"]) == set(names)
    assert floors["same"] == plain["same"]  # the oracle draws from its own seed stream
    assert floors["observational"] == plain["observational"]
    ratio = np.mean([floors["oracle_sem"][n] / floors["same"][n] for n in names])
    assert 0.5 < ratio < 1.5
    again = swd_floors(ds, held, ds.held_out_contexts, 500, seed=0, normaliser=norm,
                       oracle=OracleSEM(ds))  # fmt: skip
    assert again == floors  # reproducible, and a fitted oracle can be passed in


def _custom(tmp_path, contexts, held_out, n_train=400):
    """A dataset of the 3-chain's SEM and mixing with the given contexts."""
    from conceptid.simulations import ConceptModel, generate

    base = BenchmarkSpec(preset="chain", preset_args={"m": 3, "mixing": "linear"}, seed=0)
    cm = base.build_model()
    model = ConceptModel(cm.sem, cm.mixing, contexts=contexts, held_out=held_out)
    spec = BenchmarkSpec(preset=None, model=model.to_dict(), n_train=n_train, n_val=10,
                         n_test=10, seed=0)  # fmt: skip
    return generate(spec)


def test_oracle_sem_keeps_each_intervention_law_apart(tmp_path):
    """Two training contexts intervene on the same concept with different laws: each is fitted
    from its own rows, and a held-out pair uses the law its own intervention names."""
    from conceptid.simulations import Context, Hard

    up, down = Hard("c0", 3.0, 0.1), Hard("c0", -3.0, 0.1)
    contexts = [Context(), Context([up], "up"), Context([down], "down"),
                Context([Hard("c2", 1.0, 0.5)], "c2")]  # fmt: skip
    held = [Context([down, Hard("c2", 1.0, 0.5)], "down+c2")]
    ds = _custom(tmp_path, contexts, held, n_train=4000)
    fitted = OracleSEM(ds)
    rng = np.random.default_rng(1)
    for name, mean in (("up", 3.0), ("down", -3.0), ("down+c2", -3.0)):
        c0 = fitted.sample(ds.context_names.index(name), 20000, rng)[:, 0]
        assert abs(c0.mean() - mean) < 5 * np.sqrt(0.1 / 4000)  # the fit's error dominates
        assert abs(c0.var() - 0.1) < 0.01


@pytest.mark.parametrize(
    "contexts, held, message",
    [
        (
            lambda C, H, S: [C(), C([H("c0", 1.0, 1.0, "uniform")], "u"), C([H("c1")], "b")],
            lambda C, H, S: [],
            "needs hard Gaussian interventions; context 'u' has hard with uniform noise",
        ),
        (
            lambda C, H, S: [C(), C([S("c0", 1.0)], "s"), C([H("c1")], "b")],
            lambda C, H, S: [],
            "context 's' has shift",
        ),
        (
            lambda C, H, S: [C(), C([H("c0")], "a"), C([H("c1")], "b")],
            lambda C, H, S: [C([H("c0", 5.0), H("c1")], "new")],
            "each intervention of held-out context 'new' applied in training; not applied: c0",
        ),
        (
            lambda C, H, S: [C([H("c0")], "a"), C([H("c0"), H("c1")], "ab")],
            lambda C, H, S: [],
            "fits the mechanism of c0 on the training rows of contexts that do not target it: 0",
        ),
    ],
)
def test_oracle_sem_refuses_designs_it_cannot_fit(tmp_path, contexts, held, message):
    from conceptid.simulations import Context, Hard, Shift

    parts = (Context, Hard, Shift)
    ds = _custom(tmp_path, contexts(*parts), held(*parts))
    with pytest.raises(UsageError, match=re.escape(message)):
        OracleSEM(ds)


def test_oracle_floor_refuses_before_any_floor(tmp_path, monkeypatch):
    import conceptid.floors as floors

    spec = BenchmarkSpec(preset="chain", preset_args={"m": 3, "mechanism": "tanh"}, n_train=50,
                         n_val=10, n_test=10, seed=0)  # fmt: skip
    ds = ensure_data(spec, tmp_path, progress=False)
    norm, (_, _, te, _) = splits(ds)

    def no_draw(*args, **kwargs):
        raise AssertionError("a floor was computed before the oracle was refused")

    monkeypatch.setattr(floors, "fresh_draw", no_draw)
    with pytest.raises(UsageError, match="fits a linear Gaussian SEM"):
        floors.swd_floors(ds, te, [0], 10, normaliser=norm, oracle=True)
    with pytest.raises(UsageError, match="graph must be 'true' or 'complete', got 'dense'"):
        floors.OracleSEM(ds, graph="dense")


@pytest.mark.parametrize(
    "args, message",
    [
        ({"mechanism": "tanh"}, "fits a linear Gaussian SEM; this dataset's SEM has mechanism"),
        ({"noise": "laplace"}, "and noise ['laplace']"),
        ({"intervention": "soft"}, "needs hard Gaussian interventions; context 'do(c0)' has soft"),
    ],
)
def test_oracle_floor_refuses_data_it_does_not_apply_to(tmp_path, args, message):
    spec = BenchmarkSpec(preset="chain", preset_args={"m": 3, "mixing": "linear"} | args,
                         n_train=50, n_val=10, n_test=10, seed=0)  # fmt: skip
    ds = ensure_data(spec, tmp_path, progress=False)
    norm, (_, _, te, _) = splits(ds)
    with pytest.raises(UsageError, match=re.escape(message)):
        OracleSEM(ds)
    with pytest.raises(UsageError, match=re.escape(message)):
        swd_floors(ds, te, [0], 10, normaliser=norm, oracle=True)


def test_oracle_floor_needs_ground_truth():
    from conceptid.simulations import Dataset

    rng = np.random.default_rng(0)
    targets = [[], ["a"], ["b"]] * 20
    ds = Dataset.from_arrays(rng.standard_normal((60, 4)), targets, ["a", "b"], seed=0)
    with pytest.raises(UsageError, match="needs a dataset with a ground-truth model"):
        OracleSEM(ds)
