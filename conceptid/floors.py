"""The two floors every SWD figure is read against.

A sliced Wasserstein distance between ``n`` generated and ``n`` data samples is never zero: two
independent samples of the *same* law are apart by the sampling floor. And a generator that
ignores the context labels pays at least the distance between the observational law and the
target context's law. So for each context ``k`` of a dataset with ground truth:

- ``same``: SWD between the test rows of ``k`` and a fresh draw of ``n`` samples from the true
  model under ``k`` (the best any generator can do at this sample size);
- ``observational``: SWD between the test rows of ``k`` and a fresh draw from the observational
  context (what ignoring the labels costs, at best).

Fresh draws come from the dataset's ground-truth model with their own seed stream, and are put in
the same units as the evaluation data (the images scaled to ``[0, 1]``, vectors standardised by
the training split's normaliser).
"""

from __future__ import annotations

import numpy as np
import torch

from conceptid.models.metrics import sliced_wasserstein
from conceptid.simulations.benchmark import Dataset

__all__ = ["fresh_draw", "swd_floors"]


def fresh_draw(ds: Dataset, context: int, n: int, seed: int, normaliser=None) -> np.ndarray:
    """``n`` new observations of context index ``context``, in evaluation units
    ``(n, *obs_shape)`` float32 (images ``(n, 3, H, W)`` in ``[0, 1]``)."""
    model = ds.model
    name = ds.context_names[context]
    rng = np.random.default_rng([seed, context, 0xF100])
    x = np.asarray(model.sample(model.context(name), n, rng).x)
    if ds.is_image:  # stored as round(255 * image): the same quantisation here
        from conceptid.simulations.render import to_uint8

        x = to_uint8(x)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).astype(np.float32) / 255.0
    x = torch.as_tensor(x, dtype=torch.float32)
    if normaliser is not None and normaliser.mean is not None:
        x = (x - normaliser.mean) / normaliser.std
    return x.numpy()


def swd_floors(
    ds: Dataset, split, contexts, n: int, seed: int = 0, normaliser=None
) -> dict[str, dict[str, float]]:
    """``{"same": {name: swd}, "observational": {name: swd}}`` for each context index in
    ``contexts``, against the rows of ``split`` (a :class:`conceptid.models.data.TensorData` in
    evaluation
    units) of that context, up to ``n`` of them."""
    rng = np.random.default_rng(seed)
    observational = ds.observational_contexts
    obs = fresh_draw(ds, observational[0], n, seed, normaliser) if observational else None
    out: dict[str, dict[str, float]] = {"same": {}, "observational": {}}
    for k in contexts:
        rows = (split.context == k).numpy()
        data = split.x[rows].numpy()
        data = data[rng.permutation(len(data))[:n]]
        name = ds.context_names[k]
        out["same"][name] = sliced_wasserstein(fresh_draw(ds, k, n, seed, normaliser), data,
                                               seed=seed)  # fmt: skip
        if obs is not None:  # a design without an observational context has no such floor
            out["observational"][name] = sliced_wasserstein(obs, data, seed=seed)
    return out
