"""From a :class:`conceptid.simulations.benchmark.Dataset` to torch tensors with per-sample target
masks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from conceptid.simulations.benchmark import Dataset

__all__ = ["Batch", "TensorData", "from_dataset", "targets_mask"]


def targets_mask(ds: Dataset) -> np.ndarray:
    """``(n_contexts, m)`` bool: which concepts each context of the card intervenes on
    (:meth:`~conceptid.simulations.benchmark.Dataset.target_mask`)."""
    return ds.target_mask()


@dataclass
class Batch:
    """``x`` ``(b, *obs)`` float32, ``targets`` ``(b, m)`` bool, ``context`` ``(b,)`` long,
    ``concepts`` ``(b, K)`` (ground truth, for evaluation only); ``features`` ``(b, ...)`` or
    ``None``: a frozen function of ``x`` that the model computed once for its current stage
    (:meth:`~conceptid.models.contract.EstimatorBase.stage_inputs`)."""

    x: torch.Tensor
    targets: torch.Tensor
    context: torch.Tensor
    concepts: torch.Tensor
    features: torch.Tensor | None = None

    def to(self, device) -> Batch:
        f = None if self.features is None else self.features.to(device)
        return Batch(*(t.to(device) for t in (self.x, self.targets, self.context, self.concepts)),
                     features=f)  # fmt: skip

    def __len__(self) -> int:
        return self.x.shape[0]


@dataclass
class TensorData:
    """All rows of one split as tensors; images scaled to [0, 1] and laid out ``(b, 3, H, W)``.
    ``features``: as in :class:`Batch`, one row per row of ``x``, or ``None``."""

    x: torch.Tensor
    targets: torch.Tensor
    context: torch.Tensor
    concepts: torch.Tensor
    features: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.x.shape[0]

    def batch(self, idx: torch.Tensor) -> Batch:
        f = None if self.features is None else self.features[idx]
        return Batch(self.x[idx], self.targets[idx], self.context[idx], self.concepts[idx], f)

    def batches(self, batch_size: int, generator: torch.Generator | None = None, shuffle=True):
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for i in range(0, n, batch_size):
            yield self.batch(order[i : i + batch_size])


def from_dataset(ds: Dataset, split: str, contexts: str = "all") -> TensorData:
    """Rows of ``split``; ``contexts``: ``"all"``, ``"training"`` (not held out) or
    ``"held_out"``."""
    mask = ds.rows(split, contexts)
    x = np.asarray(ds.x[mask])
    if x.dtype == np.uint8:
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2)).astype(np.float32) / 255.0
    tmask = targets_mask(ds)
    ctx = np.asarray(ds.context[mask]).astype(np.int64)
    return TensorData(
        x=torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
        targets=torch.from_numpy(tmask[ctx]),
        context=torch.from_numpy(ctx),
        concepts=torch.from_numpy(np.asarray(ds.concepts[mask], dtype=np.float32)),
    )
