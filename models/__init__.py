"""Torch estimators: the context module, the theorem-matched estimators, baselines, one trainer.

- :mod:`.contract`: the one interface every estimator meets, :class:`Estimator` (``loss``,
  ``concepts(x, targets=None)``, ``generate(targets, n)``; the capabilities ``can_generate``,
  ``can_intervene``, ``needs_labels``, ``concepts_need_targets``; the trainer hooks ``prepare``,
  ``epoch_end``, ``hold_early_stop``, ``selection_score``), with their defaults in
  :class:`EstimatorBase`; asking an estimator for what it lacks raises :class:`CapabilityError`;
- :mod:`.context_module`: the four layers (intervention, expressive, causal, representation) and
  the nuisance bypass; per-sample target masks, any set of targets at generation time;
- :mod:`.mle`: :class:`LatentFlowMLE`, the two-step maximum likelihood on the data manifold
  (autoencoder, then an exact flow likelihood with the SEM prior and Theorem L snaps; the
  recommended theorem-matched estimator), and :class:`ManifoldMLE`, the joint fit (exploitable
  through its reconstruction penalty; kept for comparison), both built on
  :class:`~conceptid.models.mle.ManifoldEstimator` (the shared autoencoder, prior, schedule and
  snaps); :mod:`.flow`: the coupling flow;
- :mod:`.estimators`: :class:`ContextModuleVAE` (end to end, fine-tune, frozen; and the
  labels-ignored ablation), :class:`TheoremMatchedVAE`, :class:`LogRatioClassifier`,
  :class:`PooledVAE` (beta-VAE with ``beta > 1``), :class:`IVAE`;
- :mod:`.trainer`: :func:`fit` with :class:`TrainConfig`, :func:`fit_restarts`; :mod:`.data`:
  datasets to tensors; :mod:`.nets`: MLP and conv encoders/decoders; :mod:`.metrics`.

Evaluation aligns learned concepts to true ones with :func:`conceptid.identifiability.align`.
"""

from .context_module import ContextModule
from .contract import CapabilityError, Estimator, EstimatorBase
from .data import from_dataset
from .estimators import IVAE, ContextModuleVAE, LogRatioClassifier, PooledVAE, TheoremMatchedVAE
from .mle import LatentFlowMLE, ManifoldMLE
from .trainer import CheckpointError, TrainConfig, fit, fit_restarts

__all__ = [
    "IVAE", "CapabilityError", "CheckpointError", "ContextModule", "ContextModuleVAE",
    "Estimator", "EstimatorBase", "LatentFlowMLE", "LogRatioClassifier", "ManifoldMLE",
    "PooledVAE", "TheoremMatchedVAE", "TrainConfig", "fit", "fit_restarts", "from_dataset",
]  # fmt: skip
