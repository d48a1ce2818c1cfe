"""SWD floors (conceptid.floors): fresh draws in evaluation units; floors ordered."""

from __future__ import annotations

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
