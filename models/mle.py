"""The theorem-matched estimators: maximum-likelihood fits of the density on the data manifold.

The data are noiseless (``x = f(e)``, ``f`` injective), so the likelihood the theorem speaks of is
the density of ``x`` on the image of ``f``. For ``z = g(x)`` and a decoder ``f`` with Jacobian
``J_f(z)`` (``p x D``) it is ``log p_k(z) - 1/2 log det(J_f(z)^T J_f(z))``, with ``p_k`` the
per-context linear Gaussian SEM prior over the concepts
(:class:`~conceptid.models.estimators.SEMPrior`, or the context module as an exact prior,
:class:`~conceptid.models.context_prior.ContextFlowPrior`) times ``N(0, I)`` for the nuisance. No
VAE: on noiseless data its ELBO is unbounded as the decoder scale goes to zero, and the prior
term that carries the identifying information is swamped.

- :class:`ManifoldMLE` fits that density jointly, with a reconstruction penalty that keeps
  ``f o g`` the identity on the data (where the change of variables holds).
- :class:`LatentFlowMLE` fits it in two steps: an autoencoder learns the manifold and is frozen,
  then a coupling flow carries its latent to the concepts and the nuisance by the exact
  likelihood, which leaves the objective no reconstruction slack to exploit.

Gradient descent gets stuck in the *linear* part of the solution (a wrong causal order, concepts
mixed linearly), which Theorem L solves in closed form. So a *snap* runs
:func:`conceptid.identifiability.identify_linear_ml` on the latent moments of every training
context, folds the identified read-out into the model as an invertible affine
reparametrisation, and sets the SEM prior to the identified one. The first ``ae_epochs`` train a
plain autoencoder (an injective representation to peel), then the likelihood, with a snap every
``snap_every`` epochs. What these choices were measured against: docs/estimators.md.
"""

from __future__ import annotations

import abc
import copy
import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import nn
from torch.func import jacfwd, vmap

from conceptid.identifiability import identify_linear_ml
from conceptid.identifiability.linear import IdentificationError
from conceptid.simulations.errors import UsageError
from conceptid.simulations.validation import check_number

from .context_prior import ContextFlowPrior
from .contract import (
    EstimatorBase,
    check_generator,
    check_mask01,
    check_sample_memory,
    check_targets,
    target_rows,
)
from .data import Batch, TensorData
from .estimators import SEMPrior
from .flow import LatentFlow
from .nets import (
    check_activation,
    check_block_sizes,
    check_nets,
    check_obs_shape,
    check_size,
    make_nets,
    mlp,
)
from .unpeeled import fit_unpeeled

__all__ = ["LatentFlowMLE", "ManifoldEstimator", "ManifoldMLE", "gaussianity_penalty"]


def probe_rows(n: int, size: int = 4096) -> torch.Tensor:
    """Up to ``size`` row indices spread evenly over ``n`` rows. A split's rows are stored
    context by context, so the first rows would be the first contexts only; these cover every
    context in proportion (the probe that compares the starts of ``flow_restarts``)."""
    return torch.linspace(0, n - 1, steps=min(n, size)).round().long()


def gaussianity_penalty(z: torch.Tensor, context: torch.Tensor, min_rows: int = 12) -> torch.Tensor:
    """How far ``z`` ``(b, D)`` is from Gaussian within each context. For each context with at
    least ``max(min_rows, D + 2)`` rows in the batch, its rows ``y`` standardised by their own
    mean and covariance score ``|M3|^2 + |K4|^2 / 4``: the squared norms of their third moment
    tensor ``M3_ijk = mean(y_i y_j y_k)`` (Mardia's multivariate skewness) and of their fourth
    cumulant tensor ``K4_ijkl = mean(y_i y_j y_k y_l) - (d_ij d_kl + d_ik d_jl + d_il d_jk)``,
    both zero for a Gaussian: ``|K4|^2 = |M4|^2 - 6 mean(|y|^4) + 3 D^2 + 6 D``, and for ``n``
    rows ``|M3|^2 = mean(G^3)``, ``|M4|^2 = mean(G^4)`` from their Gram matrix ``G = y y^T``
    where ``n^2 <= D^4`` (a batch), else from the tensors themselves (memory ``n D^2 + D^4``,
    not ``n^2``). In one
    dimension this is the squared skewness plus a quarter of the squared excess kurtosis (the
    quarter puts them on one scale: their sampling variances are ``6/n`` and ``24/n``). The
    norms do not change under a rotation of ``y``, and an affine map of ``z`` only rotates its
    standardised rows, so the score is the same for every affine image of a latent (but for a
    degenerate one, whose covariance gets a ridge of 1e-6 of its scale; NaN for a latent that
    is not finite). Averaged over the contexts scored; a scalar tensor (0 when none has
    enough rows: with many contexts, a batch must be large enough to hold that many of each).

    The score of a population is zero only for a Gaussian; a batch's few rows add sampling
    error, which is larger for heavier tails: at 43 rows in 5 dimensions, uniform rows score
    7.9 on average and Gaussian ones 11.3 (Gaussian rows score least from about 170 rows a
    context on). So at batch sizes the score also favours light tails a little."""
    if z.dtype in (torch.float16, torch.bfloat16):  # no Cholesky in half precision
        z = z.float()
    D = z.shape[1]
    total, count = z.new_zeros(()), 0
    for k in torch.unique(context):
        zk = z[context == k]
        if len(zk) < max(min_rows, D + 2):
            continue
        zc = zk - zk.mean(0)
        cov = zc.T @ zc / (len(zk) - 1)
        chol, info = torch.linalg.cholesky_ex(cov)
        if info:  # a degenerate latent (collapsed along a direction): a little ridge
            ridge = 1e-6 * cov.diagonal().mean().detach() + 1e-12
            eye = torch.eye(D, dtype=z.dtype, device=z.device)
            chol, info = torch.linalg.cholesky_ex(cov + ridge * eye)
            if info:  # not finite: NaN, which the trainer stops on as a divergence
                return z.new_full((), float("nan"))
        y = torch.linalg.solve_triangular(chol, zc.T, upper=False).T
        n = len(y)
        if n * n <= D**4:  # a batch's few rows: from their Gram matrix
            G = y @ y.T
            skew = (G**3).mean()
            fourth = (G**4).mean()
        else:  # many rows: from the moment tensors, D^3 and D^4 numbers
            pairs = (y[:, :, None] * y[:, None, :]).reshape(n, D * D)
            skew = ((pairs.T @ y / n) ** 2).sum()
            fourth = ((pairs.T @ pairs / n) ** 2).sum()
        kurt = fourth - 6 * ((y * y).sum(1) ** 2).mean() + 3 * D * D + 6 * D
        total = total + skew + kurt / 4
        count += 1
    return total / max(count, 1)


def _cov(Z: np.ndarray) -> np.ndarray:
    """The sample covariance of the rows of ``Z`` ``(n, d)``, always ``(d, d)`` (``np.cov`` of
    one column is a 0-d array)."""
    return np.atleast_2d(np.cov(Z.T))


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


class ResidualEncoder(nn.Module):
    """``x -> head(skip(x) + mlp(x))``: a linear map plus an MLP correction (its last layer
    starts at zero, so the net starts linear); ``head`` (``D x D``) is the last linear layer, the
    one a snap rewrites. ``(b, p)`` -> ``(b, D)``. ``activation``: the MLP's
    (:data:`~conceptid.models.nets.ACTIVATIONS`)."""

    def __init__(self, in_dim: int, D: int, hidden: int = 128, activation: str = "silu") -> None:
        super().__init__()
        self.skip = nn.Linear(in_dim, D)
        self.mlp = _residual_mlp(in_dim, D, hidden, activation)
        self.head = nn.Linear(D, D)
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(D))
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return self.head(self.skip(x) + self.mlp(x))


class ResidualDecoder(nn.Module):
    """``z -> skip(u) + mlp(u)`` with ``u = head(z)``; ``head`` is the first linear layer."""

    def __init__(self, D: int, out_dim: int, hidden: int = 128, activation: str = "silu") -> None:
        super().__init__()
        self.head = nn.Linear(D, D)
        self.skip = nn.Linear(D, out_dim)
        self.mlp = _residual_mlp(D, out_dim, hidden, activation)
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(D))
            self.head.bias.zero_()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u = self.head(z)
        return self.skip(u) + self.mlp(u)


@torch.no_grad()
def _set_linear_path(enc: ResidualEncoder, dec: ResidualDecoder, V: torch.Tensor,
                    mean: torch.Tensor) -> None:  # fmt: skip
    """Start the residual nets' linear path at the projection on the orthonormal rows of
    ``V`` ``(D, p)`` around ``mean`` ``(p,)`` and its transpose back: the best linear
    autoencoder on those directions."""
    enc.skip.weight.copy_(V)
    enc.skip.bias.copy_(-V @ mean)
    dec.skip.weight.copy_(V.T)
    dec.skip.bias.copy_(mean)


@torch.no_grad()
def _swap_values(pairs) -> None:
    """Swap the values (parameters and buffers) of each pair of like modules ``(a, b)``."""
    for mine, spare in pairs:
        kept = {k: v.clone() for k, v in mine.state_dict().items()}
        mine.load_state_dict(spare.state_dict())
        spare.load_state_dict(kept)


def _residual_nets_size(p: int, D: int, hidden: int) -> int:
    """Numbers in a residual encoder and decoder for ``p`` observations, ``D`` latents."""
    return 2 * (p * D + p * hidden + hidden * hidden + D * D)


def _residual_mlp(a: int, b: int, hidden: int, activation: str = "silu") -> nn.Sequential:
    net = mlp([a, hidden, hidden, b], activation)
    with torch.no_grad():
        net[-1].weight.zero_()
        net[-1].bias.zero_()
    return net


class ManifoldEstimator(EstimatorBase, abc.ABC):
    """What :class:`ManifoldMLE` and :class:`LatentFlowMLE` share, written once.

    - the autoencoder: a context-free encoder ``g`` and decoder ``f`` (residual nets for
      vectors, conv nets for images, or your own), its :meth:`latent` ``z = g(x)``, its volume
      term :meth:`log_volume`, and :meth:`prepare`, which starts the residual nets' linear path
      at principal component analysis of the training data;
    - the prior over the concepts (``prior="sem"``: the linear Gaussian
      :class:`~conceptid.models.estimators.SEMPrior`; ``"context-module"``: the
      :class:`~conceptid.models.context_prior.ContextFlowPrior`) and ``N(0, I)`` on the nuisance
      (:meth:`prior_nll`);
    - the two-stage schedule (``stage`` 0: the autoencoder for ``ae_epochs``; 1: the
      likelihood) with a Theorem L snap every ``snap_every`` epochs (:meth:`epoch_end`,
      :meth:`hold_early_stop`, :meth:`snap`);
    - :meth:`concepts` (the first ``K`` coordinates of :meth:`encode`) and :meth:`generate`.

    A subclass says what differs: the representation that is peeled and its inverse
    (:meth:`encode`, :meth:`decode`), where a snap's affine map is folded
    (:meth:`_reparametrise`), what trains in the likelihood stage (:meth:`_start_likelihood`),
    the :meth:`objective` and the density :meth:`nll`.

    ``use_labels=False`` is a labels-ignored ablation: every sample is treated as observational
    in the prior, and ``generate`` ignores its targets (``can_intervene`` is false).

    The latent, ``D = sum(block_sizes) + nuisance_dim``, cannot have more dimensions than an
    observation (the data manifold lies in them): the constructor refuses it (UsageError).
    Your own ``encoder`` or ``decoder`` is held to a dry run on two zero inputs
    (:func:`~conceptid.models.nets.check_nets`): the encoder must map ``(b, *obs_shape)`` to
    ``(b, D)`` (or a tuple whose first element is that), the decoder ``(b, D)`` to
    ``(b, *obs_shape)``; otherwise the constructor raises UsageError naming the shapes.
    """

    can_generate = True
    concepts_need_targets = False  # context-free concepts

    def __init__(
        self,
        obs_shape: Sequence[int],
        block_sizes: Sequence[int],
        nuisance_dim: int = 0,
        *,
        dag_weight: float = 10.0,
        ae_epochs: int = 0,
        snap_every: int = 10,
        hidden: int = 128,
        volume_eps: float = 1e-3,
        encoder: nn.Module | None = None,
        decoder: nn.Module | None = None,
        prior: str = "sem",
        use_labels: bool = True,
        refine_unpeeled: bool = True,
        ae_activation: str = "silu",
    ) -> None:
        super().__init__()
        self.block_sizes = check_block_sizes(block_sizes)
        self.m, self.K = len(self.block_sizes), sum(self.block_sizes)
        self.nuisance_dim = check_number(nuisance_dim, "nuisance_dim", minimum=0)
        self.D = self.K + self.nuisance_dim
        own = encoder is not None and decoder is not None
        obs_shape = check_obs_shape(obs_shape, own_nets=own)
        self.obs_shape = tuple(int(v) for v in obs_shape)
        n_obs = int(np.prod(self.obs_shape))
        if self.D > n_obs:  # no injective decoder from R^D into R^p, and PCA gives p directions
            raise UsageError(f"the latent has sum(block_sizes) + nuisance_dim = {self.D} "
                             f"dimensions, more than the {n_obs} of an observation "
                             f"{self.obs_shape}: the data manifold cannot exceed them")  # fmt: skip
        ae_epochs = check_number(ae_epochs, "ae_epochs", minimum=0)
        snap_every = check_number(snap_every, "snap_every (0: no snaps)", minimum=0)
        hidden = check_number(hidden, "hidden")
        if prior not in ("sem", "context-module"):
            raise UsageError(f"prior must be 'sem' or 'context-module', got {prior!r}")
        self.images = len(obs_shape) == 3  # (3, S, S) in [0, 1]
        ae_activation = check_activation(ae_activation, "ae_activation")
        if ae_activation != "silu" and (self.images or encoder is not None or decoder is not None):
            raise UsageError(
                f"ae_activation={ae_activation!r} sets the residual nets of vector data; "
                + ("images use the conv nets" if self.images else "your own net is given")
            )
        own_given = encoder is not None or decoder is not None
        for role, net in (("encoder", encoder), ("decoder", decoder)):
            if net is not None and not isinstance(net, nn.Module):
                raise UsageError(f"the {role} must be a torch.nn.Module, got "
                                 f"{type(net).__name__}")  # fmt: skip
        if encoder is None or decoder is None:
            if len(obs_shape) == 1:
                p = obs_shape[0]
                check_size(_residual_nets_size(p, self.D, hidden),
                           f"residual nets for {p} observations")  # fmt: skip
                enc = ResidualEncoder(int(obs_shape[0]), self.D, hidden, ae_activation)
                dec = ResidualDecoder(self.D, int(obs_shape[0]), hidden, ae_activation)
            else:
                enc, dec = make_nets(obs_shape, self.D, hidden)
            encoder, decoder = encoder or enc, decoder or dec
        self.encoder, self.decoder = encoder, decoder
        if not _linears(self.encoder) or not _linears(self.decoder):
            raise UsageError("the encoder must end and the decoder start with an nn.Linear")
        if own_given:  # a dry run: (b, *obs_shape) -> (b, D) -> (b, *obs_shape)
            check_nets(self.encoder, self.decoder, self.obs_shape, self.D)
        if prior == "context-module":
            check_size(self.K**2, f"a context-module prior of {self.K} concepts")
        self.prior_kind = prior
        self.prior = self._new_prior()
        self.dag_weight = check_number(dag_weight, "dag_weight", integer=False, minimum=0)
        self.ae_epochs, self.snap_every = int(ae_epochs), int(snap_every)
        self.volume_eps = check_number(volume_eps, "volume_eps", integer=False, minimum=0,
                                       exclusive=True)  # fmt: skip
        self.use_labels = bool(use_labels)
        # 0: autoencoder, 1: likelihood (LatentFlowMLE: 2, its joint fine-tune)
        self.register_buffer("stage", torch.tensor(0))
        self.snaps = {"tried": 0, "applied": 0, "accepted": 0}
        #: a snap refits the basis of concepts it cannot peel, and the SEM, on the moments
        self.refine_unpeeled = bool(refine_unpeeled)

    # -- capabilities -------------------------------------------------------------------------

    @property
    def can_intervene(self) -> bool:
        """The labels-ignored ablation has one (pooled) law: its samples ignore the targets."""
        return self.use_labels

    @property
    def needs_labels(self) -> bool:
        """The likelihood reads the targets, except in the labels-ignored ablation."""
        return self.use_labels

    @property
    def min_training_rows(self) -> int:
        """``D + 1`` where :meth:`prepare` starts the default (residual) autoencoder at the
        principal components of the training rows, which must span the ``D`` latent
        dimensions; 1 otherwise (your own nets, or an autoencoder already trained)."""
        residual = isinstance(self.encoder, ResidualEncoder) and isinstance(
            self.decoder, ResidualDecoder
        )
        return self.D + 1 if residual and int(self.stage) == 0 else 1

    @property
    def min_training_rows_reason(self) -> str:
        return (f"its {self.D} latent dimensions start at the principal components of the "
                "training rows, which must span them")  # fmt: skip

    def _labels(self, targets: torch.Tensor) -> torch.Tensor:
        """The targets the model sees: none at all in the labels-ignored ablation."""
        return targets if self.use_labels else torch.zeros_like(targets)

    # -- what a subclass defines --------------------------------------------------------------

    @abc.abstractmethod
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The representation a snap peels ``(b, D)``: the concepts, then the nuisance."""

    @abc.abstractmethod
    def decode(self, u: torch.Tensor) -> torch.Tensor:
        """The observation of a representation ``(b, D)`` from :meth:`encode`."""

    @abc.abstractmethod
    def objective(self, batch: Batch, stage: int = 1):
        """The loss of ``stage`` (0: the autoencoder, 1: the likelihood) and its logs."""

    @abc.abstractmethod
    def nll(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``-log p_k(x)`` per sample, in nats."""

    def _encode_batch(self, batch: Batch) -> torch.Tensor:
        """:meth:`encode` of a batch (a subclass may read the features :meth:`stage_inputs`
        computed instead of ``x``)."""
        return self.encode(batch.x)

    @abc.abstractmethod
    def _start_likelihood(self) -> None:
        """Leave the autoencoder stage (``stage`` 1) and set what trains from now on."""

    @abc.abstractmethod
    def _reparametrise(self, M: np.ndarray, t: np.ndarray) -> None:
        """Fold ``u' = M u + t`` (of :meth:`encode`'s output) into the model's linear layers,
        leaving the composition ``decode(encode(x))`` unchanged."""

    # -- the autoencoder and the prior --------------------------------------------------------

    #: the autoencoder works on the data with each principal component divided by its standard
    #: deviation to this power (0: off; set by :class:`LatentFlowMLE`'s ``ae_whitening``)
    ae_whitening: float = 0.0

    def _whiten(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the autoencoder's coordinates: itself, or partly whitened
        (``ae_whitening``)."""
        if not self.ae_whitening:
            return x
        with torch.autocast(x.device.type, enabled=False):  # float32 under ae_autocast too
            return (x.to(self.white_mean.dtype) - self.white_mean) @ self.white_forward

    def _unwhiten(self, y: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`_whiten`: the autoencoder's coordinates back in the data's."""
        if not self.ae_whitening:
            return y
        return y @ self.white_backward + self.white_mean

    def _observe(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's output for a latent ``z``, in the data's coordinates."""
        return self._unwhiten(self.decoder(z))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` through the autoencoder alone, ``f(g(x))``, in the data's coordinates."""
        return self._observe(self.latent(x))

    @torch.no_grad()
    def _fit_whitening(self, x: torch.Tensor) -> None:
        """The partial whitening of ``ae_whitening = a`` from the training rows ``x`` ``(n,
        p)``: their principal components, each divided by its standard deviation to the power
        ``a`` (standard deviations below 1e-3 of the largest count as 1e-3 of it, so that a
        direction the data barely span is amplified by at most 1000^a)."""
        X = x.double()
        mean = X.mean(0)
        lam, V = torch.linalg.eigh((X - mean).T @ (X - mean) / len(X))
        sd = lam.clamp_min(0).sqrt().flip(0)
        if not sd[0] > 0:
            raise UsageError("ae_whitening: the training rows are all the same; there is nothing "
                             "to whiten")  # fmt: skip
        V = V.flip(1)  # components by decreasing variance
        scale = sd.clamp_min(1e-3 * sd[0]) ** self.ae_whitening
        self.white_mean.copy_(mean)
        self.white_forward.copy_(V / scale)
        self.white_backward.copy_(scale[:, None] * V.T)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """The autoencoder's latent ``z = g(x)`` ``(b, D)`` (the encoder's output, or the first
        element of the tuple it returns; with ``ae_whitening``, of the partly whitened data).
        ``x`` is checked first (:meth:`~conceptid.models.contract.EstimatorBase.check_x`), and
        so in every entry point built on it (:meth:`encode`, :meth:`concepts`, :meth:`nll`,
        :meth:`reconstruct`, :meth:`exogenous`)."""
        return self._latent(self.check_x(x))

    def _latent(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`latent` without the check: the training loop's (``fit`` checked its data)."""
        return self._latent_of_white(self._whiten(x))

    def _latent_of_white(self, w: torch.Tensor, encoder: nn.Module | None = None) -> torch.Tensor:
        """:meth:`latent` of data already in the autoencoder's coordinates (:meth:`_whiten`),
        by the model's encoder or the one given (a start of step 1)."""
        out = (self.encoder if encoder is None else encoder)(w)
        z = out[0] if isinstance(out, tuple) else out
        return z[:, : self.D]

    def log_volume(self, z: torch.Tensor) -> torch.Tensor:
        """``1/2 log det(J_f(z)^T J_f(z) + eps I)`` per sample ``(b,)`` (forward-mode Jacobian).

        ``eps`` (``volume_eps``) keeps the term bounded below: the reconstruction penalty only
        holds ``f o g`` to the identity *at* the samples, so a decoder could otherwise fold (a
        singular Jacobian at a sample) and send the loss to minus infinity."""
        J = vmap(jacfwd(lambda u: self._observe(u[None]).flatten()))(z)  # (b, P, D)
        eye = torch.eye(J.shape[-1], dtype=J.dtype, device=J.device)
        return 0.5 * torch.linalg.slogdet(J.transpose(1, 2) @ J + self.volume_eps * eye)[1]

    def _new_prior(self) -> nn.Module:
        """A fresh prior of the kind ``prior`` names."""
        if self.prior_kind == "sem":
            return SEMPrior(self.block_sizes)
        return ContextFlowPrior(self.block_sizes)

    def prior_nll(
        self, z: torch.Tensor, targets: torch.Tensor, prior: nn.Module | None = None
    ) -> torch.Tensor:
        """``-log p_k(z)`` per sample: the per-context prior on the concepts (the model's, or
        ``prior``), ``N(0, I)`` on the nuisance."""
        prior = self.prior if prior is None else prior
        nuis = (z[:, self.K :] ** 2).sum(1) + self.nuisance_dim * np.log(2 * np.pi)
        return prior.nll(z[:, : self.K], self._labels(targets)) + 0.5 * nuis

    def loss(self, batch: Batch, generator=None):
        return self.objective(batch, int(self.stage))

    def _penalised(self, nll: torch.Tensor, rec: torch.Tensor, dag: torch.Tensor):
        """The joint objective of a subclass with a ``rec_weight`` (:class:`ManifoldMLE`, and
        :class:`LatentFlowMLE`'s step 3): the density on the manifold per sample ``nll``, plus
        ``rec_weight`` times the reconstruction error ``rec``, averaged, plus the DAG penalty;
        and its logs."""
        loss = (nll + self.rec_weight * rec).mean() + self.dag_weight * dag
        return loss, {"nll": nll.mean().item(), "rec": rec.mean().item(), "dag": dag.item()}

    # -- the schedule (trainer hooks) ---------------------------------------------------------

    @torch.no_grad()
    def prepare(self, train: TensorData) -> None:
        """Before training: with the default (residual) nets, the linear path is set to the
        best linear autoencoder, principal component analysis of the training data (closed
        form; exact reconstruction when the data span ``D`` dimensions, as under linear mixing).
        With ``ae_epochs = 0`` the likelihood stage then starts at once, from a snap. A model
        past its autoencoder stage (fitted again) keeps its nets: the set-up is for a model
        whose autoencoder has yet to be trained."""
        enc, dec = self.encoder, self.decoder
        if int(self.stage) != 0:  # a trained autoencoder (frozen in step 2): never reset it
            return
        if self.ae_whitening:
            self._fit_whitening(train.x)
        if isinstance(enc, ResidualEncoder) and isinstance(dec, ResidualDecoder):
            X = train.x.flatten(1)
            if self.ae_whitening:  # the buffers are on the model's device
                X = self._whiten(X.to(self.white_mean.device))
            X = X.double()
            mean = X.mean(0)
            V = torch.linalg.svd(X - mean, full_matrices=False)[2][: self.D]  # (D, p)
            _set_linear_path(enc, dec, V, mean)
        if self.ae_epochs == 0:
            self._start_likelihood()
            if self.snap_every:
                self.snap(train)

    def hold_early_stop(self) -> bool:
        """The autoencoder stage is a warm-up: its loss is not the objective (and under linear
        mixing PCA is already exact, so it cannot improve), so early stopping waits and its
        epochs are not validated."""
        return int(self.stage) == 0

    def epoch_end(self, epoch: int, train: TensorData) -> bool:
        """Switch from the autoencoder to the likelihood after ``ae_epochs``; snap on schedule."""
        done = epoch + 1
        changed = False
        first = False
        if int(self.stage) == 0 and done >= self.ae_epochs:
            self._start_likelihood()
            changed = first = True
        if self.snap_every and done >= self.ae_epochs:
            if (done - self.ae_epochs) % self.snap_every == 0 and (first or done > 0):
                changed = self.snap(train, require_improvement=not first) or changed
        return changed

    # -- snaps ----------------------------------------------------------------------------------

    @torch.no_grad()
    def snap(
        self, data: TensorData, batch_size: int = 2048, require_improvement: bool = False
    ) -> bool:
        """Theorem L on the latent moments: reparametrise ``z`` so that its first ``K``
        coordinates are the identified concepts (unit observational variance) and the rest the
        whitened nuisance, and set the prior to the identified SEM.

        Returns whether it was kept: ``False`` when the latent moments do not fit the linear
        theorem (e.g. early on), or, with ``require_improvement``, when the likelihood objective
        on (up to 4096 rows of) ``data`` did not improve; the model is then left as it was. Once
        the representation is nonlinear, peeling its moments is only an approximation and can
        make things worse: a snap is a proposal, accepted on the objective.
        """
        self.snaps["tried"] += 1
        data = self.stage_inputs(data)  # step 2 of LatentFlowMLE: the frozen latent, once
        if require_improvement:
            # the first rows of the split, stored context by context: the observational
            # context's. Rows spread over every context (probe_rows) were measured worse: on
            # L3s at n = 8000 (seeds 0-4) they lost a concept on three seeds of five (R^2
            # 0.29, 0.01, 0.90 at worst against 0.92, 0.96, 0.98), equal on the other two
            probe = data.batch(torch.arange(min(len(data), 4096))).to(self.prior.weights.device)
            before = self.objective(probe)[0].item()
            state = copy.deepcopy(self.state_dict())
        if not self._snap(data, batch_size):
            return False
        self.snaps["applied"] += 1
        if require_improvement:
            after = self.objective(probe)[0].item()
            if not after < before:
                self._restore(state)
                return False
        self.snaps["accepted"] += 1
        return True

    @torch.no_grad()
    def _restore(self, state: dict) -> None:
        """Put back the tensors of ``state`` that differ from the model's now, leaving the rest
        untouched (a frozen encoder keeps its weights' versions, so :meth:`stage_inputs` still
        knows its latent)."""
        for k, v in self.state_dict().items():
            if not torch.equal(v, state[k]):
                v.copy_(state[k])

    def _snap(self, data: TensorData, batch_size: int) -> bool:
        """Peel the concepts that have a single-target context in ``data`` (Theorem L on the
        latent moments). Concepts without one (never intervened on, like quad's ``color`` and
        ``shape``) cannot be peeled (witness N1): they get whitened directions of ``z``
        uncorrelated with the peeled concepts, and no edges, for the likelihood to refine; they
        stay nodes of the prior's SEM, not nuisance."""
        was = self.training
        self.eval()
        dev = self.prior.weights.device
        Z = torch.cat([self._encode_batch(b.to(dev))
                       for b in data.batches(batch_size, shuffle=False)])  # fmt: skip
        self.train(was)
        Z, T = Z.double().cpu().numpy(), data.targets.cpu().numpy()
        single = T.sum(1) <= 1
        obs = ~T.any(1)
        if obs.sum() <= self.D:
            return False
        moments, targets, counts = [(Z[obs].mean(0), _cov(Z[obs]))], [None], [int(obs.sum())]
        peeled = []
        for j in range(self.m):
            rows = T[:, j] & single
            if rows.sum() > self.D:
                moments.append((Z[rows].mean(0), _cov(Z[rows])))
                targets.append(len(peeled))
                counts.append(int(rows.sum()))
                peeled.append(j)
        if not peeled:
            return False
        sizes = [self.block_sizes[j] for j in peeled]
        try:
            ident = identify_linear_ml(moments, targets, sizes, counts)
        except IdentificationError:
            return False
        S0, z0 = moments[0][1], moments[0][0]
        H = ident.readout  # (K_peeled, D): peeled concepts = H z
        scale = 1.0 / np.sqrt(np.diag(H @ S0 @ H.T))
        H = H * scale[:, None]
        Kp = H.shape[0]
        # the rest of z: directions uncorrelated with the peeled concepts, whitened
        basis = np.linalg.svd(H @ S0)[2][Kp:]
        w, V = np.linalg.eigh(basis @ S0 @ basis.T)
        N = (V / np.sqrt(w)).T @ basis
        sl = np.concatenate([[0], np.cumsum(self.block_sizes)]).astype(int)
        M, t = np.zeros((self.D, self.D)), np.zeros(self.D)
        at_h, at_n, where = 0, 0, np.zeros(Kp, dtype=int)
        for j in range(self.m):
            k = self.block_sizes[j]
            if j in peeled:
                M[sl[j] : sl[j + 1]] = H[at_h : at_h + k]
                where[at_h : at_h + k] = np.arange(sl[j], sl[j + 1])
                at_h += k
            else:
                M[sl[j] : sl[j + 1]] = N[at_n : at_n + k]
                t[sl[j] : sl[j + 1]] = -N[at_n : at_n + k] @ z0
                at_n += k
        M[self.K :] = N[at_n:]
        t[self.K :] = -N[at_n:] @ z0
        if np.linalg.cond(M) > 1e8:
            return False
        sem = self._identified_sem(ident, scale, where)
        if len(peeled) < self.m and self.refine_unpeeled:
            fitted = self._fit_unpeeled(Z, T, M, t, sem, [j for j in range(self.m)
                                                          if j not in peeled])  # fmt: skip
            if fitted is not None:
                A = fitted.pop("A")
                M[: self.K], t[: self.K] = A @ M[: self.K], A @ t[: self.K]
                fitted.pop("nll")
                sem = fitted
        self._reparametrise(M, t)
        self.prior.set_linear_gaussian(**sem)
        return True

    def _fit_unpeeled(self, Z, T, M, t, sem: dict, unpeeled: list[int]) -> dict | None:
        """The unpeeled concepts' basis and the SEM by likelihood on the moments of every
        training context (:func:`conceptid.models.unpeeled.fit_unpeeled`)."""
        U = Z @ M[: self.K].T + t[: self.K]
        masks, rows = np.unique(T, axis=0, return_inverse=True)
        moments, counts, keep = [], [], []
        for c in range(len(masks)):
            sel = rows.ravel() == c
            if sel.sum() > self.K:
                moments.append((U[sel].mean(0), _cov(U[sel])))
                counts.append(int(sel.sum()))
                keep.append(c)
        return fit_unpeeled(moments, counts, masks[keep], self.block_sizes, unpeeled, sem)

    def _identified_sem(self, ident, scale: np.ndarray, where: np.ndarray) -> dict:
        """The identified SEM in the rescaled coordinates, as arguments of the prior's
        ``set_linear_gaussian`` (block noise laws enter through their diagonals: the prior's
        noise is diagonal per coordinate). ``where``: the concept coordinate of each identified
        one; the others (concepts that were not peeled) get no edges and a standard normal noise
        in every context."""
        K = self.K
        S, Si = np.diag(scale), np.diag(1.0 / scale)
        mi = len(ident.noise_cov)
        B = np.zeros((K, K))
        B[np.ix_(where, where)] = S @ ident.weights @ Si
        mu_obs, var_obs = np.zeros(K), np.ones(K)
        mu_int, var_int = np.zeros(K), np.ones(K)
        mu_obs[where] = np.ravel(ident.noise_mean) * scale
        var_obs[where] = np.concatenate([np.diag(np.atleast_2d(c)) for c in ident.noise_cov])
        var_obs[where] *= scale**2
        mu_int[where] = np.concatenate([np.ravel(ident.intervention_mean[j]) for j in range(mi)])
        mu_int[where] *= scale
        var_int[where] = np.concatenate(
            [np.diag(np.atleast_2d(ident.intervention_cov[j])) for j in range(mi)]
        ) * scale**2  # fmt: skip
        return {"B": B, "mu_obs": mu_obs, "var_obs": var_obs, "mu_int": mu_int,
                "var_int": var_int}  # fmt: skip

    # -- concepts and samples -----------------------------------------------------------------

    @torch.no_grad()
    def concepts(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """The learned concepts ``encode(x)[:, :K]`` ``(b, K)`` (context-free: ``targets`` is
        ignored)."""
        return self.encode(x)[:, : self.K]

    @torch.no_grad()
    def exogenous(self, x: torch.Tensor, targets: torch.Tensor, generator=None) -> torch.Tensor:
        """The exogenous noise ``(b, K + nuisance_dim)`` the model assigns to ``x`` under the
        targets ``(b, m)`` of its context: the prior inverted on the learned concepts, then the
        nuisance coordinates. ``N(0, I)`` in every context when the model is right
        (:func:`conceptid.modelcheck.noise_check` tests it). The labels-ignored ablation reads
        every sample as observational, as in its loss. Deterministic: ``generator`` (taken for
        the VAEs' posterior draws) is unused."""
        check_targets(targets, self.m, len(self.check_x(x)))
        u = self.encode(x)
        eps = self.prior.exogenous(u[:, : self.K], self._labels(targets))
        return torch.cat([eps, u[:, self.K :]], 1)

    @torch.no_grad()
    def generate(self, targets: torch.Tensor, n: int | None = None, *,
                 generator=None) -> torch.Tensor:  # fmt: skip
        """Samples of ``x`` under per-sample target masks ``(n, m)``, or one target set ``(m,)``
        for ``n`` samples: any set of targets, including ones never seen together in training
        (composition). The labels-ignored ablation draws from its one (pooled) law whatever the
        targets.

        Raises :class:`~conceptid.simulations.errors.UsageError` (before any work) for targets
        or ``n`` that :func:`~conceptid.models.contract.target_rows` refuses (a mask on the
        meta device included) and a ``generator`` that is not a ``torch.Generator``;
        ``MemoryLimitError`` for samples beyond memory."""
        check_generator(generator)
        targets = self._labels(target_rows(targets, n, self.m, self.obs_shape))
        c = self.prior.sample(targets, generator)
        nuis = self.standard_normal(targets.shape[0], self.nuisance_dim, generator=generator)
        x = self.decode(torch.cat([c, nuis], 1))
        # images live in [0, 1]; the decoder is unconstrained, so keep samples in the data's range
        return x.clamp(0.0, 1.0) if self.images else x

    @torch.no_grad()
    def generate_from_data(self, x: torch.Tensor, x_targets: torch.Tensor, targets, n: int, *,
                           generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """``n`` samples of ``x`` under one target set ``targets`` ``(m,)``, with the exogenous
        noise taken from data instead of the prior's ``N(0, I)``: whole rows of noise (the
        concepts' and the nuisance's) abducted by :meth:`exogenous` from the observational rows
        of ``x`` (``x_targets`` ``(N, m)``, 0/1: each row's targets), drawn with replacement;
        each intervened concept's value from a row of its own single-target context, drawn
        independently; then pushed through the fitted prior (under ``targets``) and the
        decoder. Rows with two or more targets are not used.

        It composes with the model's structure and no fitted noise law, so, against
        :meth:`generate`, it tells how much of a composition's error is that law's (on the
        training rows, an observational sample reproduces its own reconstruction). A diagnosis,
        not the model's law: its samples reuse the rows given, which adds an error of its own
        unless the rows far outnumber the samples (500 draws from 500 rows of a 16-dimensional
        Gaussian sit at 1.23x the same-law floor of the SWD; from 2000 rows, at 1.06x).

        Raises
        ------
        UsageError
            the labels-ignored ablation (it has no per-context law); ``x`` not a tensor of
            shape ``(N, *obs_shape)`` in the model's dtype; masks that are not 0/1 or do not
            match ``x`` and the model's concepts; a tensor on the meta device; ``n`` not a
            positive integer; a ``generator`` that is not a ``torch.Generator``; no
            observational row; an intervened concept without a row of its own single-target
            context. Every check comes before any work.
        MemoryLimitError
            ``n`` samples that would not fit in memory (the check of :meth:`generate`).
        """
        if not self.use_labels:
            raise UsageError("generate_from_data: the labels-ignored ablation has one (pooled) "
                             "law, no per-context noise to take from data")  # fmt: skip
        n = check_number(n, "n (the number of samples)")
        check_generator(generator)
        check_sample_memory(n, self.m, self.obs_shape)
        x = self.check_x(x, "generate_from_data: x")
        t, xt = torch.as_tensor(targets), torch.as_tensor(x_targets)
        for name, mask, want in (("targets", t, (self.m,)), ("x_targets", xt, (len(x), self.m))):
            if tuple(mask.shape) != want:
                raise UsageError(f"generate_from_data: {name} must be {want}, got "
                                 f"{tuple(mask.shape)}")  # fmt: skip
            check_mask01(mask, f"generate_from_data: {name}")
        dev = self.prior.concept_of.device
        x, xt, t = x.to(dev), xt.to(dev).bool(), t.to(dev).bool()
        single, obs = xt.sum(1) == 1, ~xt.any(1)
        if not obs.any():
            raise UsageError("generate_from_data: x has no observational row to take the "
                             "noise from")  # fmt: skip
        pools = {j: torch.where(single & xt[:, j])[0] for j in torch.where(t)[0].tolist()}
        for j, own in pools.items():
            if not len(own):
                raise UsageError(f"generate_from_data: concept {j} is intervened on, and x has "
                                 f"no row of its single-target context")  # fmt: skip
        draw = lambda k: torch.randint(0, k, (n,), generator=generator).to(dev)  # noqa: E731
        rows = torch.where(obs)[0][draw(int(obs.sum()))]
        eps = self.exogenous(x[rows], xt[rows])
        sl = np.concatenate([[0], np.cumsum(self.block_sizes)]).astype(int)
        for j, own in pools.items():
            picked = own[draw(len(own))]
            eps[:, sl[j] : sl[j + 1]] = self.exogenous(x[picked], xt[picked])[:, sl[j] : sl[j + 1]]
        c = self.prior(eps[:, : self.K], t[None].repeat(n, 1))[0]
        out = self.decode(torch.cat([c, eps[:, self.K :]], 1))
        return out.clamp(0.0, 1.0) if self.images else out


class ManifoldMLE(ManifoldEstimator):
    """Context-free encoder ``g``, decoder ``f``, SEM prior; exact likelihood on the manifold.

    The joint fit: :meth:`objective` is the likelihood of ``z = g(x)`` on the manifold plus a
    reconstruction penalty; a snap rewrites the encoder's last and the decoder's first linear
    layer. With the default (residual) nets, the residual MLPs are frozen at zero while the
    autoencoder warms up, so that the first snap peels an exactly linear representation.

    Parameters
    ----------
    obs_shape : tuple
        ``(p,)`` or ``(3, S, S)``.
    block_sizes : sequence of int
    nuisance_dim : int
    rec_weight : float
        Weight of the reconstruction penalty ``|x - f(g(x))|^2``.
    dag_weight : float
        Weight of the acyclicity penalty on the prior's graph (between snaps).
    ae_epochs, snap_every : int
        Autoencoder warm-up epochs; epochs between peeling snaps (0: never snap).
    volume_eps : float
        Floor added to ``J_f^T J_f`` in the volume term (see :meth:`log_volume`).
    encoder, decoder : nn.Module, optional
        Your own networks: ``encoder(x)`` returns ``(b, D)`` or a tuple whose first element is
        (the rest is ignored), ``D = sum(block_sizes) + nuisance_dim``; the encoder's *last*
        and the decoder's *first* ``nn.Linear`` are the layers a snap rewrites.
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        block_sizes: Sequence[int],
        nuisance_dim: int = 0,
        rec_weight: float = 100.0,
        dag_weight: float = 10.0,
        ae_epochs: int = 0,
        snap_every: int = 10,
        hidden: int = 128,
        volume_eps: float = 1e-3,
        encoder: nn.Module | None = None,
        decoder: nn.Module | None = None,
    ) -> None:
        super().__init__(
            obs_shape, block_sizes, nuisance_dim, dag_weight=dag_weight, ae_epochs=ae_epochs,
            snap_every=snap_every, hidden=hidden, volume_eps=volume_eps, encoder=encoder,
            decoder=decoder,
        )  # fmt: skip
        self.rec_weight = float(rec_weight)
        self._set_residual_trainable(False)

    def _residual_params(self) -> list[nn.Parameter]:
        return [p for net in (self.encoder, self.decoder)
                if isinstance(net, ResidualEncoder | ResidualDecoder)
                for p in net.mlp.parameters()]  # fmt: skip

    def _set_residual_trainable(self, flag: bool) -> None:
        """The residual MLPs are frozen (at zero: the nets are linear) while the autoencoder
        warms up, so that the first snap peels an exactly linear representation."""
        for p in self._residual_params():
            p.requires_grad_(flag)

    def _start_likelihood(self) -> None:
        """Leave the autoencoder stage: the likelihood is trained from now on, the residual
        MLPs too."""
        self.stage.fill_(1)
        self._set_residual_trainable(True)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``z = g(x)`` ``(b, D)``: the concepts, then the nuisance."""
        return self.latent(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    @torch.no_grad()
    def nll(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``-log p_k(x)`` on the manifold per sample, in nats (whatever the training stage)."""
        check_targets(targets, self.m, len(self.check_x(x)))
        z = self._latent(x)  # encode, x checked
        return self.prior_nll(z, targets) + self.log_volume(z)

    def objective(self, batch: Batch, stage: int = 1):
        """The loss of ``stage`` (0: reconstruction only, 1: likelihood) and its logs."""
        z = self._latent(batch.x)  # encode, unchecked (fit checked its data)
        rec = ((batch.x - self.decode(z)).flatten(1) ** 2).sum(1)
        if stage == 0:
            return rec.mean(), {"rec": rec.mean().item()}
        nll = self.prior_nll(z, batch.targets) + self.log_volume(z)
        return self._penalised(nll, rec, self.prior.dag_penalty())

    def _reparametrise(self, M: np.ndarray, t: np.ndarray) -> None:
        """``z' = M z + t``: fold into the encoder's last and decoder's first linear layer."""
        enc, dec = _linears(self.encoder)[-1], _linears(self.decoder)[0]
        D = self.D
        Mt = torch.as_tensor(M, dtype=torch.float64)
        tt = torch.as_tensor(t, dtype=torch.float64)
        W, b = enc.weight[:D].double().clone(), enc.bias[:D].double().clone()
        enc.weight[:D] = (Mt @ W).to(enc.weight.dtype)
        enc.bias[:D] = (Mt @ b + tt).to(enc.bias.dtype)
        Minv = torch.linalg.inv(Mt)
        W2 = dec.weight.double().clone()  # .double() of a float64 tensor is the tensor itself
        dec.weight.copy_(W2 @ Minv)
        dec.bias.copy_(dec.bias.double() - W2 @ Minv @ tt)


class LatentFlowMLE(ManifoldEstimator):
    """Two steps: learn the manifold, then the exact likelihood of the concepts on it.

    1. ``ae_epochs`` of a plain autoencoder ``x -> z = g(x) -> f(z)`` (reconstruction only; the
       linear path starts at PCA, the residual MLPs train too). ``g`` is then frozen: ``z`` is an
       injective, ``D``-dimensional representation of the data.
    2. A normalising flow ``h`` (:class:`~conceptid.models.flow.LatentFlow`) carries ``z`` to ``u =
    (c, n)``
       with the per-context SEM prior on ``c`` and ``N(0, I)`` on ``n``, fitted by the *exact*
       likelihood ``-log p_k(h(z)) - log |det J_h(z)|``. Snaps (Theorem L on the moments of ``u``)
       rewrite the flow's last linear layer (where :class:`ManifoldMLE`'s rewrite its nets').

    Why not the joint objective of :class:`ManifoldMLE`: its change of variables holds only where
    ``f o g`` is the identity, and a penalty holds that only approximately. The fit exploits the
    slack: on L3 (seed 1) it reached a validation NLL of 1.60 nats, *below* the 4.59 of the true
    density (impossible for a density on the data manifold), by flattening the decoder in one
    latent direction (smallest singular value of ``J_f`` 0.013) and paying a little
    reconstruction; this is manifold overfitting (Loaiza-Ganem, Ross, Cresswell and Caterini,
    TMLR 2022), whose remedy is the two-step fit done here. Step 2 is a likelihood in ``R^D``
    with an exact Jacobian: nothing to exploit. Concepts are ``h(g(x))[:, :K]``; generation is
    ``f(h^-1(c, n))``; :meth:`nll` adds the decoder's volume term, so it is the density of ``x``
    on the learned manifold, comparable across fits (what :meth:`selection_score` returns).

    The prior over the concepts is chosen by ``prior``: ``"sem"`` (default), the linear Gaussian
    SEM of :class:`~conceptid.models.estimators.SEMPrior`; or ``"context-module"``, the context
    module as an
    exact per-context flow prior (:class:`~conceptid.models.context_prior.ContextFlowPrior`:
    intervention,
    monotone expressive and causal layers, non-Gaussian exogenous laws). Either way a snap sets
    its linear Gaussian part, and :meth:`generate` composes any set of targets.
    ``use_labels=False`` is the labels-ignored ablation: every sample is treated as
    observational in the loss, and no snap runs (a snap reads the labels).

    ``ae_autocast="bfloat16"`` trains step 1 under mixed precision (``torch.autocast``; the
    weights, the loss, validation and all of step 2 stay in float32). On a CPU with bfloat16
    instructions (AVX512-BF16, AMX) or a GPU it makes the autoencoder, the dominant cost on
    images, cheaper: an epoch of the 32x32 conv autoencoder on 9000 images took 4.29 s against
    6.20 s in float32 (1.44x, the same loss after three epochs) on one thread of this project's
    machines (``benchmarks/bench_ae_precision.py``); elsewhere it can be slower. Off by
    default.

    ``finetune_after = E`` adds a step 3 after ``E`` epochs of step 2: the autoencoder trains
    again, with the flow and the prior, on the density of ``x`` on the learned manifold (the
    flow's likelihood of ``g(x)`` plus the decoder's volume term) plus ``rec_weight`` times the
    reconstruction error, the objective of :class:`ManifoldMLE` started from the two-step fit
    (no snaps or starts in it; vector data only, since the volume term takes the decoder's
    Jacobian at every sample). Its change of variables holds only where ``f o g`` is the
    identity, which is why it is a refinement and not the fit (see :class:`ManifoldMLE`). A
    user's own pre-trained autoencoder (``encoder``, ``decoder``, ``ae_epochs=0``) is thus
    fitted step 2 first, then fine-tuned with it. While a fine-tune follows, step 2 is a
    warm-up (not validated; early stopping waits), and a budget that ends first never reaches
    step 3 (:attr:`stage` stays 1; the pipeline's builder refuses such a budget). Off by
    default.

    ``ae_activation`` (the residual autoencoder's MLPs; vector data only) and ``flow_activation``
    (the couplings' nets) choose ``"silu"`` (the default, smooth), ``"prelu"`` or
    ``"leaky_relu"`` (:data:`~conceptid.models.nets.ACTIVATIONS`). A piecewise-linear mixing
    (the leaky-ReLU MLP of the L3-L4 rungs) makes the map from a piecewise-linear autoencoder's
    latent to the concepts piecewise linear too, kinks included, which piecewise-linear
    couplings represent and smooth ones only approximate: see docs/estimators.md for what it
    changed on those rungs.

    ``ae_whitening = A`` (between 0 and 1; vector data only) runs the autoencoder on the data
    with each principal component of the training rows divided by its standard deviation to
    the power ``A`` (set by :meth:`prepare`), and scores its reconstruction there;
    :meth:`decode`, :meth:`reconstruct` and the volume term map back to the data's coordinates.
    The plain reconstruction error weights a direction by its variance, so a concept that moves
    the data only along their least-varied directions is the one step 1 bends. Measured on L3
    (docs/benchmarks.md): ``A`` between 0.25 and 0.75 lifts the hard seed's recovery (mean R^2
    0.938-0.958 in six fits, against 0.874-0.888, or less where a concept was lost, in six
    without), but not the compositions over three seeds, and two fits with it lost a concept.
    Off by default.

    ``ae_gaussianity = lam`` adds ``lam`` times :func:`gaussianity_penalty` to step 1's loss:
    how far the latent is from Gaussian *in each context of the batch* (the norms of the third
    moment and fourth cumulant tensors of each context's rows, standardised by their own mean
    and covariance, so no affine map of the latent changes it). It assumes what holds for a
    linear Gaussian SEM with interventions to Gaussian laws (the package's default simulators):
    the concepts are jointly Gaussian in every context, so any affine image of them is, and a
    latent that bends a concept is not. Where the concepts are not Gaussian in some context it
    pulls step 1 the wrong way. The labels-ignored ablation cannot use it (pooled, the contexts'
    Gaussian laws are a mixture, not a Gaussian): the constructor refuses the two together.
    Measured on L3 (docs/benchmarks.md): ``ae_gaussianity=0.002`` with ``ae_whitening=0.5``,
    60 epochs of step 1 and three restarts composes at 1.51x the same-law floor (per seed
    1.28x, 1.61x, 1.64x), against 1.71x at best without it; 1.35x with ``finetune_after=66``
    of 86 epochs of step 2, but 1.66x with or without it on three fresh seeds. Off by default.

    ``ae_starts = S > 1`` (vector data, the default residual nets) fits step 1 from ``S``
    starts side by side: the model's own linear path starts at PCA as always, the others on
    random orthonormal directions (drawn from torch's seed, which the trainer sets), each with
    its own residual MLPs, trained on the same batches (the loss is their mean). At the end of
    step 1 the start with the lowest step-1 objective on a probe of the training data
    (:meth:`autoencoder_scores`: the reconstruction error plus ``ae_gaussianity`` times
    :func:`gaussianity_penalty` over the whole probe of each context, hundreds of rows, where a
    batch holds a few dozen) becomes the model's encoder and decoder (:attr:`ae_start_kept`
    says which; 0 is PCA's) and the others stop training. Why: step 1 keeps the basin it starts
    in. On L3 the PCA start can leave a concept out of the linear path (seed 5: affine R^2 0.25
    from the top five components, though the data carry it affinely at 0.92), and the
    autoencoder then bends it in (0.54 after 60 epochs with the Gaussianity penalty), where a
    start on the concepts' own directions ends at 0.96, with a lower reconstruction error and a
    lower Gaussianity score: the objective tells the basins apart, so more starts find the
    better one. With ``ae_gaussianity=0`` the choice is by reconstruction alone. Step 1 costs
    ``S`` times as much. Measured (docs/benchmarks.md): with ``finetune_after=66`` and three
    restarts of the whole fit, L3 composes at 1.28x the same-law floor on seeds 0-2 and 1.31x
    on fresh seeds 3-5, L4 at 1.47x on seeds 0-2 and 1.34x on seeds 3-5; one fit a seed: L3
    1.67x.

    ``flow_restarts = R > 1`` fits step 2 from ``R`` random starts on the *same* autoencoder,
    side by side in one fit: ``R`` flows and priors (coupling masks from seeds ``0..R-1``, their
    own random weights) train on the same batches, each snapped on schedule, and after every
    epoch of step 2 the one with the lowest likelihood loss on a probe of the training data
    (up to 4096 rows, every context in proportion) becomes the model's :attr:`flow` and
    :attr:`prior` (its values swap with the model's; a swap counts as a change of
    parametrisation, so the trainer restarts Adam and its best-model tracking). Step 2 has
    local optima that leave some concepts mixed, and the likelihood tells them apart: measured
    on the identifiable quad scene (seed 2, one autoencoder, five starts), validation NLL 6.27
    nats for the start that recovered every concept with R^2 >= 0.87 against 6.90-7.20 for four
    that did not (orientation R^2 0.21-0.82) (``benchmarks/bench_flow_starts.py``). Side by
    side it has not paid so far: on that scene (3 seeds, 1000 images per context) 4 starts
    lowered orientation's mean R^2 from 0.765 to 0.568, the training probe ranking a mixed
    optimum first on one seed. The training loss of step 2 is the mean over the starts; the
    validation loss is the model's own. The autoencoder, the dominant cost on images, is
    fitted once.
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        block_sizes: Sequence[int],
        nuisance_dim: int = 0,
        ae_epochs: int = 20,
        snap_every: int = 10,
        flow_layers: int = 6,
        flow_hidden: int = 64,
        dag_weight: float = 10.0,
        hidden: int = 128,
        volume_eps: float = 1e-3,
        encoder: nn.Module | None = None,
        decoder: nn.Module | None = None,
        prior: str = "sem",
        use_labels: bool = True,
        refine_unpeeled: bool = True,
        flow_restarts: int = 1,
        ae_autocast: str | None = None,
        ae_activation: str = "silu",
        flow_activation: str = "silu",
        finetune_after: int | None = None,
        rec_weight: float = 100.0,
        ae_whitening: float = 0.0,
        ae_gaussianity: float = 0.0,
        ae_starts: int = 1,
    ) -> None:
        check_number(ae_epochs, "ae_epochs (step 1 learns the manifold; 0: it is given)", minimum=0)
        S = check_number(ae_starts, "ae_starts")
        if S > 1 and (encoder is not None or decoder is not None or len(tuple(obs_shape)) != 1):
            raise UsageError("ae_starts: the starts of step 1 set the linear path of the default "
                             "residual nets, which vector data use; images and your own nets "
                             "have none")  # fmt: skip
        if ae_epochs == 0 and (encoder is None or decoder is None):
            raise UsageError("ae_epochs=0 (no step 1) needs your own trained encoder and decoder; "
                             "the default nets start untrained")  # fmt: skip
        flow_activation = check_activation(flow_activation, "flow_activation")
        if finetune_after is not None:
            finetune_after = check_number(finetune_after, "finetune_after (epochs of step 2 "
                                          "before it)", minimum=0)  # fmt: skip
            if len(tuple(obs_shape)) != 1:
                raise UsageError(
                    "finetune_after: the joint fine-tune's volume term takes the decoder's "
                    "Jacobian at every sample, which is done for vector data only"
                )
        rec_weight = check_number(rec_weight, "rec_weight", integer=False, minimum=0,
                                  exclusive=True)  # fmt: skip
        ae_whitening = float(check_number(ae_whitening, "ae_whitening", integer=False,
                                          minimum=0))  # fmt: skip
        if ae_whitening > 1:
            raise UsageError(f"ae_whitening is a power between 0 and 1, got {ae_whitening}")
        if ae_whitening and ae_epochs == 0:
            raise UsageError(
                "ae_whitening applies to the autoencoder that step 1 trains; "
                "with ae_epochs=0 your own nets read the data as they are"
            )
        if ae_whitening and len(tuple(obs_shape)) != 1:
            raise UsageError("ae_whitening: the autoencoder's whitening is done for vector data "
                             "only")  # fmt: skip
        ae_gaussianity = float(check_number(ae_gaussianity, "ae_gaussianity", integer=False,
                                            minimum=0))  # fmt: skip
        if ae_gaussianity and not use_labels:
            raise UsageError("ae_gaussianity scores the latent context by context, which the "
                             "labels-ignored ablation does not see (pooled, the contexts' "
                             "Gaussian laws are a mixture, not a Gaussian)")  # fmt: skip
        if ae_gaussianity and ae_epochs == 0:
            raise UsageError("ae_gaussianity applies to the autoencoder that step 1 trains; "
                             "with ae_epochs=0 there is none")  # fmt: skip
        check_number(flow_layers, "flow_layers")
        check_number(flow_hidden, "flow_hidden")
        R = check_number(flow_restarts, "flow_restarts")
        if ae_autocast not in (None, "bfloat16"):
            raise UsageError(f"ae_autocast must be None or 'bfloat16', got {ae_autocast!r}")
        super().__init__(
            obs_shape, block_sizes, nuisance_dim, dag_weight=dag_weight, ae_epochs=ae_epochs,
            snap_every=snap_every if use_labels else 0, hidden=hidden, volume_eps=volume_eps,
            encoder=encoder, decoder=decoder, prior=prior, use_labels=use_labels,
            refine_unpeeled=refine_unpeeled, ae_activation=ae_activation,
        )  # fmt: skip
        check_size(R * (flow_layers * (2 * self.D * flow_hidden + flow_hidden**2) + self.D**2),
                   f"{R} flow(s) of {flow_layers} layers of {flow_hidden} units")  # fmt: skip
        self.flow = LatentFlow(self.D, flow_layers, flow_hidden, activation=flow_activation)
        #: the other starts of step 2 (empty unless ``flow_restarts > 1``)
        self.spare_flows = nn.ModuleList(
            LatentFlow(self.D, flow_layers, flow_hidden, seed=r, activation=flow_activation)
            for r in range(1, R)
        )
        self.spare_priors = nn.ModuleList(self._new_prior() for _ in range(1, R))
        self.flow_restarts = R
        #: the other starts of step 1 (empty unless ``ae_starts > 1``); built last, so that
        #: the model's own nets draw the same weights as with one start
        p_obs = int(np.prod(self.obs_shape))
        ae_activation = check_activation(ae_activation, "ae_activation")
        check_size(S * _residual_nets_size(p_obs, self.D, hidden),
                   f"{S} starts of the residual nets")  # fmt: skip
        # registered only where there are spares: a model of one start has the modules (the
        # architecture) that files written before the option record
        self.spare_encoders: nn.ModuleList | tuple = ()
        self.spare_decoders: nn.ModuleList | tuple = ()
        if S > 1:
            self.spare_encoders = nn.ModuleList(
                ResidualEncoder(p_obs, self.D, hidden, ae_activation) for _ in range(1, S)
            )
            self.spare_decoders = nn.ModuleList(
                ResidualDecoder(self.D, p_obs, hidden, ae_activation) for _ in range(1, S)
            )
            # which start step 1 kept (-1: not chosen yet); 0 is the PCA start
            self.register_buffer("ae_start_kept", torch.tensor(-1))
        self.ae_starts = S
        #: step 1 trains under mixed precision (autocast to this dtype; weights stay float32)
        self.ae_autocast = ae_autocast
        #: step 3, the joint fine-tune, starts after this many epochs of step 2 (None: never)
        self.finetune_after = finetune_after
        self.rec_weight = rec_weight
        self.ae_whitening = ae_whitening
        self.ae_gaussianity = ae_gaussianity
        if ae_whitening:  # set from the training data by prepare
            p = int(tuple(obs_shape)[0])
            self.register_buffer("white_mean", torch.zeros(p))
            self.register_buffer("white_forward", torch.eye(p))
            self.register_buffer("white_backward", torch.eye(p))
        self._staged: dict = {}  # stage_inputs' latents of the last two data sets (no copy of x)

    def _enter_stage(self, stage: int, autoencoder_trains: bool) -> None:
        self.stage.fill_(stage)
        for p in [*self.encoder.parameters(), *self.decoder.parameters()]:
            p.requires_grad_(autoencoder_trains)

    def _start_likelihood(self) -> None:
        """Step 2: freeze the autoencoder; the flow and the prior train from now on."""
        self._enter_stage(1, autoencoder_trains=False)

    def hold_early_stop(self) -> bool:
        """Step 1 is a warm-up; so is step 2 when a fine-tune follows (its loss is not the
        final objective): early stopping cannot end the fit before step 3, and those epochs
        are not validated."""
        return int(self.stage) == 0 or (int(self.stage) == 1 and self.finetune_after is not None)

    def _start_finetune(self) -> None:
        """Step 3: the autoencoder trains again, with the flow and the prior, on the joint
        objective (:meth:`_joint_objective`). Every parameter of the encoder and the decoder
        trains, your own nets' included."""
        self._enter_stage(2, autoencoder_trains=True)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``u = h(g(x))`` ``(b, D)``: the concepts, then the nuisance."""
        return self.flow(self.latent(x))[0]

    def decode(self, u: torch.Tensor) -> torch.Tensor:
        return self._observe(self.flow.inverse(u))

    def _encode_batch(self, batch: Batch) -> torch.Tensor:
        """``h(z)`` from the staged latent ``z`` when the batch carries it (step 2)."""
        if batch.features is None:
            return self.encode(batch.x)
        return self.flow(batch.features)[0]

    @torch.no_grad()
    def stage_inputs(self, data: TensorData, batch_size: int = 256) -> TensorData:
        """In step 2 the encoder is frozen, so its latent ``z = g(x)`` is computed once per
        stage (as ``features``) rather than in every batch of every epoch: the flow's epochs
        then cost the flow alone. Steps 1 and 3 (the joint fine-tune, where the encoder trains)
        read ``x`` as it is."""
        if int(self.stage) != 1:
            return data
        # the trainer asks again after every snap, which leaves the encoder as it was: the
        # latent is reused while the data and every encoder weight (its version) are the same
        key = (id(data), data.x.data_ptr(), data.x._version, len(data), batch_size,
               tuple(p._version for p in self.encoder.parameters()))  # fmt: skip
        if key in self._staged:
            return replace(data, features=self._staged[key])
        was = self.training
        self.eval()
        dev = self.flow.head.weight.device
        Z = torch.cat([self._latent(b.x.to(dev)).cpu()
                       for b in data.batches(batch_size, shuffle=False)])  # fmt: skip
        self.train(was)
        self._staged = dict(list(self._staged.items())[-1:]) | {key: Z}  # train and val
        return replace(data, features=Z)

    def objective(self, batch: Batch, stage: int = 1):
        """The loss of ``stage`` (0: the autoencoder's reconstruction, 1: the flow's exact
        likelihood of the frozen latent, read from ``batch.features`` when
        :meth:`stage_inputs` computed it, 2: the joint fine-tune, :meth:`_joint_objective`)
        and its logs."""
        if stage == 0:
            return self._ae_objective(batch, self.encoder, self.decoder)
        if stage == 2:
            return self._joint_objective(batch)
        z = batch.features if batch.features is not None else self._latent(batch.x)
        nll, dag = self._flow_nll(z.detach(), batch.targets, self.flow, self.prior)
        return nll.mean() + self.dag_weight * dag, {"nll": nll.mean().item(), "dag": dag.item()}

    def _ae_objective(self, batch: Batch, encoder: nn.Module, decoder: nn.Module):
        """Step 1's loss of one start ``(encoder, decoder)``: the reconstruction error in the
        autoencoder's coordinates (``ae_whitening``), plus ``ae_gaussianity`` times
        :func:`gaussianity_penalty` of the latent; and its logs."""
        mixed = self.ae_autocast is not None and self.training
        w = self._whiten(batch.x)
        with torch.autocast(batch.x.device.type, torch.bfloat16, enabled=mixed):
            z = self._latent_of_white(w, encoder)
            back = decoder(z)
        rec = ((w - back.to(w.dtype)).flatten(1) ** 2).sum(1)
        if not self.ae_gaussianity:
            return rec.mean(), {"rec": rec.mean().item()}
        gauss = gaussianity_penalty(z.to(w.dtype), batch.context)
        logs = {"rec": rec.mean().item(), "gauss": gauss.item()}
        return rec.mean() + self.ae_gaussianity * gauss, logs

    def _joint_objective(self, batch: Batch):
        """Step 3: everything trains on the density of ``x`` on the learned manifold,
        ``-log p_k(h(g(x))) - log |det J_h| + 1/2 log det(J_f^T J_f)``, plus ``rec_weight``
        times the reconstruction error, which keeps ``f o g`` the identity on the data, where
        that change of variables holds (the objective of :class:`ManifoldMLE`, started here
        from the two-step fit)."""
        w = self._whiten(batch.x)
        z = self._latent_of_white(w)
        rec = ((w - self.decoder(z)).flatten(1) ** 2).sum(1)
        nll, dag = self._flow_nll(z, batch.targets, self.flow, self.prior)
        return self._penalised(nll + self.log_volume(z), rec, dag)

    def _flow_nll(self, z: torch.Tensor, targets: torch.Tensor, flow, prior):
        """Step 2's ``-log p_k(h(z)) - log |det J_h(z)|`` per sample and the DAG penalty, for
        one start ``(flow, prior)``."""
        u, logdet = flow(z)
        return self.prior_nll(u, targets, prior) - logdet, prior.dag_penalty()

    def loss(self, batch: Batch, generator=None):
        """:meth:`objective`; while training step 1 with ``ae_starts > 1`` or step 2 with
        ``flow_restarts > 1``, the mean of every start's loss (each start's gradient is that of
        its own loss over the number of starts; Adam's steps hardly depend on that scale)."""
        loss, logs = self.objective(batch, int(self.stage))
        if self.training and int(self.stage) == 0 and len(self.spare_encoders):
            for enc, dec in zip(self.spare_encoders, self.spare_decoders):
                loss = loss + self._ae_objective(batch, enc, dec)[0]
            loss = loss / self.ae_starts
        if self.training and int(self.stage) == 1 and len(self.spare_flows):
            z = batch.features if batch.features is not None else self._latent(batch.x)
            for flow, prior in zip(self.spare_flows, self.spare_priors):
                nll, dag = self._flow_nll(z.detach(), batch.targets, flow, prior)
                loss = loss + nll.mean() + self.dag_weight * dag
            loss = loss / self.flow_restarts
        return loss, logs

    # -- the starts of step 1 -----------------------------------------------------------------

    @torch.no_grad()
    def autoencoder_scores(self, data: TensorData) -> list[float]:
        """Step 1's objective of the model's start, then of each spare, on a probe of ``data``
        (:func:`probe_rows`, up to 4096 rows): the mean reconstruction error plus
        ``ae_gaussianity`` times :func:`gaussianity_penalty` of the latent, the penalty taken
        over the whole probe of each context (hundreds of rows, not a batch's few dozen, so
        its sampling error is small)."""
        probe = data.batch(probe_rows(len(data))).to(self.encoder.skip.weight.device)
        was = self.training
        self.eval()
        try:
            starts = [(self.encoder, self.decoder),
                      *zip(self.spare_encoders, self.spare_decoders)]  # fmt: skip
            return [self._ae_objective(probe, e, d)[0].item() for e, d in starts]
        finally:
            self.train(was)

    @torch.no_grad()
    def _choose_autoencoder(self, data: TensorData) -> None:
        """End of step 1 with ``ae_starts > 1``: the start with the lowest
        :meth:`autoencoder_scores` becomes the model's encoder and decoder (values swapped),
        its index is kept in :attr:`ae_start_kept`, and the spares stop training."""
        scores = [v if math.isfinite(v) else math.inf for v in self.autoencoder_scores(data)]
        best = min(range(len(scores)), key=scores.__getitem__)
        if best:
            _swap_values(((self.encoder, self.spare_encoders[best - 1]),
                          (self.decoder, self.spare_decoders[best - 1])))  # fmt: skip
        self.ae_start_kept.fill_(best)
        for p in [*self.spare_encoders.parameters(), *self.spare_decoders.parameters()]:
            p.requires_grad_(False)

    # -- the starts of step 2 -----------------------------------------------------------------

    @torch.no_grad()
    def _swap(self, i: int) -> None:
        """Swap the values (parameters and buffers) of the model's flow and prior with those of
        spare start ``i``."""
        _swap_values(((self.flow, self.spare_flows[i]), (self.prior, self.spare_priors[i])))

    def _snap_spares(self, data: TensorData, require_improvement: bool) -> bool:
        """Snap every spare start (each in turn as the model's, then back)."""
        changed = False
        for i in range(len(self.spare_flows)):
            self._swap(i)
            try:
                changed = self.snap(data, require_improvement=require_improvement) or changed
            finally:
                self._swap(i)
        return changed

    @torch.no_grad()
    def start_losses(self, data: TensorData) -> list[float]:
        """Step 2's likelihood loss (mean nats, no penalty) of the model's start, then of each
        spare, on a probe of ``data`` (:func:`probe_rows`); the latent is :meth:`stage_inputs`'
        (computed once while the encoder is unchanged)."""
        probe = self.stage_inputs(data).batch(probe_rows(len(data)))
        dev = self.flow.head.weight.device
        z = probe.features if probe.features is not None else self._latent(probe.x.to(dev))
        z, targets = z.to(dev), probe.targets.to(dev)
        starts = [(self.flow, self.prior), *zip(self.spare_flows, self.spare_priors)]
        return [self._flow_nll(z, targets, f, p)[0].mean().item() for f, p in starts]

    def _choose_start(self, data: TensorData, margin: float = 1e-2) -> bool:
        """Make the best start (lowest :meth:`start_losses`, by more than ``margin`` nats) the
        model's; returns whether it changed."""
        losses = self.start_losses(data)
        best = min(range(len(losses)), key=losses.__getitem__)
        if best == 0 or not losses[best] < losses[0] - margin:
            return False
        self._swap(best - 1)
        return True

    def prepare(self, train: TensorData) -> None:
        fresh = int(self.stage) == 0
        super().prepare(train)
        if fresh and len(self.spare_encoders):  # the other starts of step 1: random directions
            dev = self.encoder.skip.weight.device
            # the training rows' mean in the autoencoder's coordinates: the PCA start's centre,
            # which _set_linear_path left as the decoder's bias
            mean = self.decoder.skip.bias.detach().clone()
            for enc, dec in zip(self.spare_encoders, self.spare_decoders):
                # drawn on the CPU from torch's seed (which the trainer sets): the same
                # directions on every device
                G = torch.randn(len(mean), self.D, dtype=torch.float64)
                V = torch.linalg.qr(G)[0].T.to(device=dev, dtype=mean.dtype)  # (D, p)
                _set_linear_path(enc, dec, V, mean)
        if fresh and len(self.spare_flows) and int(self.stage) == 1 and self.snap_every:
            self._snap_spares(train, require_improvement=False)  # ae_epochs = 0: snapped at once
        if int(self.stage) == 1 and self.finetune_after == 0:  # no epoch of step 2 asked for
            self._start_finetune()

    def epoch_end(self, epoch: int, train: TensorData) -> bool:
        """The schedule of :class:`ManifoldEstimator`; with ``flow_restarts > 1`` the spare
        starts snap on the same schedule, then the best start becomes the model's; with
        ``finetune_after`` step 3 starts after that many epochs of step 2."""
        if int(self.stage) == 2:  # the fine-tune refines one fit: no snaps, no starts
            return False
        done = epoch + 1
        if int(self.stage) == 0 and done >= self.ae_epochs and len(self.spare_encoders):
            self._choose_autoencoder(train)  # before step 2 starts from it
        changed = super().epoch_end(epoch, train)
        if len(self.spare_flows) and int(self.stage) == 1:
            if self.snap_every and (done - self.ae_epochs) % self.snap_every == 0:
                first = done == self.ae_epochs
                changed = self._snap_spares(train, require_improvement=not first) or changed
            changed = self._choose_start(train) or changed
        if self.finetune_after is not None and done >= self.ae_epochs + self.finetune_after:
            self._start_finetune()  # from the best start, chosen above
            return True
        return changed

    @torch.no_grad()
    def nll(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``-log p_k(x)`` on the learned manifold per sample, in nats:
        ``-log p_k(u) - log |det J_h(z)| + 1/2 log det(J_f^T J_f)(z)``."""
        check_targets(targets, self.m, len(self.check_x(x)))
        z = self._latent(x)
        u, logdet = self.flow(z)
        return self.prior_nll(u, targets) - logdet + self.log_volume(z)

    @torch.no_grad()
    def selection_score(self, data: TensorData, batch_size: int = 512) -> float:
        """Mean :meth:`nll` on ``data``: lower is better; comparable across restarts, whose
        latents differ (a flow loss alone is not)."""
        was = self.training
        self.eval()
        total = sum(self.nll(b.x, b.targets).sum().item()
                    for b in data.batches(batch_size, shuffle=False))  # fmt: skip
        self.train(was)
        return total / len(data)

    def _reparametrise(self, M: np.ndarray, t: np.ndarray) -> None:
        """``u' = M u + t``, folded into the flow's head (the decoder sees ``h^-1``, unchanged)."""
        head = self.flow.head
        Mt = torch.as_tensor(M, dtype=torch.float64)
        tt = torch.as_tensor(t, dtype=torch.float64)
        W, b = head.weight.double().clone(), head.bias.double().clone()
        head.weight.copy_((Mt @ W).to(head.weight.dtype))
        head.bias.copy_((Mt @ b + tt).to(head.bias.dtype))
