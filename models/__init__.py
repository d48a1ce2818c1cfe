"""Torch estimators: the context module, the theorem-matched estimator, baselines, one trainer.

- :mod:`.context_module`: the four layers (intervention, expressive, causal, representation) and
  the nuisance bypass; per-sample target masks, any set of targets at generation time;
- :mod:`.estimators`: :class:`TheoremMatchedVAE`, :class:`ContextModuleVAE` (and its
  labels-ignored ablation), :class:`PooledVAE` (beta-VAE with ``beta > 1``), :class:`IVAE`;
- :mod:`.trainer`: :func:`fit` with :class:`TrainConfig`; :mod:`.data`: datasets to tensors;
  :mod:`.nets`: MLP and conv encoders/decoders.

Evaluation aligns learned concepts to true ones with :func:`identifiability.align`.
"""

from .context_module import ContextModule
from .data import from_dataset
from .estimators import IVAE, ContextModuleVAE, PooledVAE, TheoremMatchedVAE
from .trainer import CheckpointError, TrainConfig, fit

__all__ = [
    "IVAE", "CheckpointError", "ContextModule", "ContextModuleVAE", "PooledVAE",
    "TheoremMatchedVAE", "TrainConfig", "fit", "from_dataset",
]  # fmt: skip
