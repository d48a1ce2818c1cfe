"""The tensors every method is trained and evaluated on, and the normaliser that makes them.

:func:`splits` gives the training contexts' train, validation and test splits and the held-out
contexts' test split, normalised by a :class:`Normaliser` fitted on the training split. The
normaliser is saved beside the model it was trained with (the ``normaliser`` entry of
``final.pt``, :meth:`Normaliser.state`) and read back from there (:meth:`Normaliser.from_state`),
so that a model's samples return to the data's units.
"""

from __future__ import annotations

import torch

from conceptid.models.data import TensorData, from_dataset
from conceptid.simulations.benchmark import Dataset

from .errors import PipelineError

__all__ = ["Normaliser", "splits"]


class Normaliser:
    """Vectors: standardised by the training split's mean and standard deviation; images: [0, 1]
    (``from_dataset`` already scales them), so no mean and standard deviation."""

    def __init__(self, mean: torch.Tensor | None, std: torch.Tensor | None) -> None:
        if (mean is None) != (std is None):
            raise PipelineError("a normaliser has both a mean and a standard deviation, or neither")
        self.mean, self.std = mean, std

    @classmethod
    def fit(cls, ds: Dataset, train: TensorData) -> Normaliser:
        """The normaliser of ``ds`` from its training split ``train`` (from ``from_dataset``)."""
        if ds.is_image:
            return cls(None, None)
        std = train.x.std(0)
        return cls(train.x.mean(0), torch.where(std > 0, std, torch.ones_like(std)))

    @property
    def identity(self) -> bool:
        """Whether it leaves the data as they are (images)."""
        return self.mean is None

    def apply(self, data: TensorData) -> TensorData:
        """``data`` normalised (in place; returned)."""
        if self.mean is not None:
            data.x = (data.x - self.mean) / self.std
        return data

    def undo(self, x):
        """Normalised values ``x`` (numpy array or tensor) back in the data's units."""
        if self.mean is None:
            return x
        if isinstance(x, torch.Tensor):
            return x * self.std + self.mean
        return x * self.std.numpy() + self.mean.numpy()

    def state(self) -> dict:
        """What ``final.pt`` stores under ``normaliser``: ``{"mean": ..., "std": ...}``."""
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_state(cls, state: dict | None) -> Normaliser:
        """The normaliser :meth:`state` saved (None or an empty entry: no normalisation)."""
        state = state or {}
        if not isinstance(state, dict):
            raise PipelineError(f"a normaliser's state is a dict, got {type(state).__name__}")
        return cls(state.get("mean"), state.get("std"))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Normaliser):
            return NotImplemented
        if self.mean is None or other.mean is None:
            return self.mean is None and other.mean is None
        return torch.equal(self.mean, other.mean) and torch.equal(self.std, other.std)

    __hash__ = None  # mutable tensors: not hashable

    def __repr__(self) -> str:
        if self.mean is None:
            return "Normaliser(identity)"
        return f"Normaliser(mean and std of {tuple(self.mean.shape)})"


def splits(ds: Dataset, norm: Normaliser | None = None):
    """Training-context train/val/test splits and the held-out test split, normalised.

    Returns ``(normaliser, [train, val, test, held_out])``; the normaliser is ``norm`` when given
    (a trained model's), else fitted on the training split.
    """
    tr = from_dataset(ds, "train", "training")
    norm = norm or Normaliser.fit(ds, tr)
    parts = [tr, from_dataset(ds, "val", "training"), from_dataset(ds, "test", "training")]
    parts.append(from_dataset(ds, "test", "held_out"))
    return norm, [norm.apply(p) for p in parts]
