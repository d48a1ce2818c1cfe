"""Torch estimators: the context module, the theorem-matched estimators, baselines, one trainer.

- :mod:`.context_module`: the four layers (intervention, expressive, causal, representation) and
  the nuisance bypass; per-sample target masks, any set of targets at generation time;
- :mod:`.mle`: :class:`ManifoldMLE`, maximum likelihood on the data manifold with Theorem L
  snaps (the theorem-matched estimator that meets the recovery goals);
- :mod:`.estimators`: :class:`ContextModuleVAE` (end to end, fine-tune, frozen; and the
  labels-ignored ablation), :class:`TheoremMatchedVAE`, :class:`LogRatioClassifier`,
  :class:`PooledVAE` (beta-VAE with ``beta > 1``), :class:`IVAE`;
- :mod:`.trainer`: :func:`fit` with :class:`TrainConfig`; :mod:`.data`: datasets to tensors;
  :mod:`.nets`: MLP and conv encoders/decoders; :mod:`.metrics`.

Evaluation aligns learned concepts to true ones with :func:`identifiability.align`.
"""

from .context_module import ContextModule
from .data import from_dataset
from .estimators import IVAE, ContextModuleVAE, LogRatioClassifier, PooledVAE, TheoremMatchedVAE
from .mle import ManifoldMLE
from .trainer import CheckpointError, TrainConfig, fit

__all__ = [
    "IVAE", "CheckpointError", "ContextModule", "ContextModuleVAE", "LogRatioClassifier",
    "ManifoldMLE", "PooledVAE", "TheoremMatchedVAE", "TrainConfig", "fit", "from_dataset",
]  # fmt: skip
