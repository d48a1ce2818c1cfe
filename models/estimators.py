"""The VAE-type estimators and the log-ratio classifier, each an
:class:`~conceptid.models.contract.Estimator` (``loss(batch)``, ``concepts(x, targets=None)``,
``generate(targets, n)``, the capability attributes and the trainer hooks; written once in
:mod:`conceptid.models.contract`).

- :class:`TheoremMatchedVAE`: the context module's linear Gaussian special case, written so that
  its optimum is what the theorem identifies: a context-free encoder ``q(c, n | x)``, a
  per-context linear Gaussian SEM prior over the concepts with known targets (observational
  mechanisms shared; a separate interventional noise law per target), a standard normal nuisance
  prior, exact Gaussian KL. Acyclicity: a NOTEARS-style penalty ``h(W) = tr exp(W) - m`` on the
  squared block norms ``W_ij = |B_ij|^2`` (zero exactly when the graph is a DAG), weighted by
  ``dag_weight``; :meth:`TheoremMatchedVAE.graph` thresholds and breaks any remaining cycle at its
  weakest edge. Why a penalty rather than a fixed or sampled order: the order is unknown, a fixed
  wrong order cannot fit the interventional contexts, and a smooth penalty keeps one gradient
  path (an unconstrained B was seen to converge to 2-cycles).
- :class:`ContextModuleVAE`: the paper's architecture (encoder -> exogenous noise and nuisance,
  standard normal prior, the :class:`~conceptid.models.context_module.ContextModule`, decoder);
  ``use_labels=False`` is the ablation that ignores the contexts.
- :class:`PooledVAE`: contexts ignored, standard normal prior (``beta > 1``: beta-VAE).
- :class:`IVAE`: a context-conditional factorised Gaussian prior, one learned mean and
  log-variance per context (iVAE-style).
- :class:`LogRatioClassifier`: a contrastive encoder without a decoder (it cannot generate).

Each estimator says what it can do through the contract's capability attributes
(``can_generate``, ``can_intervene``, ``needs_labels``, ``concepts_need_targets``: class
attributes, or properties where a constructor argument decides). Only those that model the
interventions honour the targets given to ``generate``; the others draw from their one law.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from conceptid.simulations.errors import UsageError
from conceptid.simulations.validation import check_number

from .context_module import ContextModule, block_index
from .contract import EstimatorBase, check_generator, check_targets, target_rows
from .data import Batch, TensorData
from .nets import check_block_sizes, check_nets, check_obs_shape, check_size, make_nets

__all__ = [
    "ContextModuleVAE",
    "IVAE",
    "LogRatioClassifier",
    "PooledVAE",
    "SEMPrior",
    "TheoremMatchedVAE",
    "gaussian_kl",
    "reconstruction_nll",
]

LOG2PI = math.log(2 * math.pi)


def reconstruction_nll(
    x: torch.Tensor, out: torch.Tensor, likelihood: str, log_sigma
) -> torch.Tensor:
    """Per-sample negative log-likelihood in nats: Gaussian with scale ``exp(log_sigma)`` or
    Bernoulli with logits ``out`` (for data in [0, 1])."""
    x = x.flatten(1)
    out = out.flatten(1)
    if likelihood == "gaussian":
        return 0.5 * (((x - out) / log_sigma.exp()) ** 2 + 2 * log_sigma + LOG2PI).sum(1)
    if likelihood == "bernoulli":
        return nn.functional.binary_cross_entropy_with_logits(out, x, reduction="none").sum(1)
    raise UsageError(f"likelihood must be 'gaussian' or 'bernoulli', got {likelihood!r}")


def gaussian_kl(mean, log_var, prior_mean, prior_precision, prior_logdet) -> torch.Tensor:
    """``KL(N(mean, diag(exp(log_var))) || N(prior_mean, prior_precision^-1))`` per sample.

    ``mean``, ``log_var`` ``(b, K)``; ``prior_mean`` ``(b, K)``; ``prior_precision``
    ``(b, K, K)`` or ``(K, K)``; ``prior_logdet`` = log det of the prior *covariance*, ``(b,)``.
    """
    var = log_var.exp()
    trace = (torch.diagonal(prior_precision, dim1=-2, dim2=-1) * var).sum(-1)
    d = prior_mean - mean
    P = prior_precision if prior_precision.dim() == 3 else prior_precision.expand(len(d), -1, -1)
    quad = torch.einsum("bi,bij,bj->b", d, P, d)
    return 0.5 * (trace + quad - mean.shape[1] + prior_logdet - log_var.sum(1))


class SEMPrior(nn.Module):
    """Per-context linear Gaussian SEM over concept coordinates (diagonal noise per coordinate).

    Context with targets ``T``: rows of ``T`` in ``B`` are zeroed and their noise mean and
    log-variance switch to the interventional ones. ``moments(targets)`` gives the prior mean
    ``(b, K)``, precision ``(b, K, K)`` and log det covariance ``(b,)`` for every sample at once.
    """

    def __init__(self, block_sizes: Sequence[int]) -> None:
        super().__init__()
        self.block_sizes = check_block_sizes(block_sizes)
        check_size(sum(self.block_sizes) ** 2, f"an SEM prior of {sum(self.block_sizes)} concepts")
        idx = block_index(self.block_sizes)
        K, m = len(idx), len(self.block_sizes)
        self.register_buffer("concept_of", idx)
        self.register_buffer("off_block", (idx[:, None] != idx[None, :]).float())
        onehot = torch.zeros(m, K)
        onehot[idx, torch.arange(K)] = 1.0
        self.register_buffer("pool", onehot)  # (m, K): sums coordinates into concepts
        self.B = nn.Parameter(torch.zeros(K, K))
        self.mu_obs = nn.Parameter(torch.zeros(K))
        self.logvar_obs = nn.Parameter(torch.zeros(K))
        self.mu_int = nn.Parameter(torch.zeros(K))
        self.logvar_int = nn.Parameter(torch.zeros(K))

    @property
    def weights(self) -> torch.Tensor:
        return self.B * self.off_block

    def _noise_law(self, targets: torch.Tensor, dtype: torch.dtype, rows: int | None = None):
        """Per sample: ``(tgt, mu_T, logvar_T)``, the targets expanded to coordinates (1 where a
        coordinate's concept is intervened) and the exogenous noise's means and log-variances
        under them ``(b, K)``. ``targets``: a 0/1 mask ``(rows, m)`` (:func:`check_targets`)."""
        targets = check_targets(targets, len(self.block_sizes), rows)
        tgt = targets[:, self.concept_of].to(dtype)
        mu = self.mu_obs + tgt * (self.mu_int - self.mu_obs)
        logvar = self.logvar_obs + tgt * (self.logvar_int - self.logvar_obs)
        return tgt, mu, logvar

    def _i_minus_b(self, tgt: torch.Tensor) -> torch.Tensor:
        """``I - B_T`` per sample ``(b, K, K)``: the rows of the intervened coordinates cut."""
        eye = torch.eye(tgt.shape[1], dtype=tgt.dtype, device=tgt.device)
        return eye - self.weights[None] * (1 - tgt)[:, :, None]

    def moments(self, targets: torch.Tensor, rows: int | None = None):
        tgt, mu_eps, logvar = self._noise_law(targets, self.B.dtype, rows)  # (b, K)
        I_B = self._i_minus_b(tgt)
        precision = torch.einsum("bki,bk,bkj->bij", I_B, torch.exp(-logvar), I_B)
        mean = torch.linalg.solve(I_B, mu_eps.unsqueeze(-1)).squeeze(-1)
        logdet = logvar.sum(1) - 2 * torch.linalg.slogdet(I_B)[1]
        return mean, precision, logdet

    def exogenous(self, c: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The exogenous noise ``(b, K)`` of concepts ``c`` under targets, standardised:
        ``((I - B_T) c - mu_T) / sigma_T``, ``N(0, I)`` in every context when ``c`` follows the
        prior."""
        tgt, mu, logvar = self._noise_law(targets, c.dtype, len(c))
        return (c - (c @ self.weights.T) * (1 - tgt) - mu) * torch.exp(-0.5 * logvar)

    def forward(self, eps: torch.Tensor, targets: torch.Tensor):
        """``(c, log |det dc/deps|)``: concepts ``(b, K)`` from standardised noise ``(b, K)``
        under per-sample targets, ``c = (I - B_T)^-1 (mu_T + sigma_T eps)``; the inverse of
        :meth:`exogenous` (the interface of
        :class:`~conceptid.models.context_prior.ContextFlowPrior`)."""
        tgt, mu, logvar = self._noise_law(targets, eps.dtype, len(eps))
        I_B = self._i_minus_b(tgt)
        v = mu + torch.exp(0.5 * logvar) * eps
        c = torch.linalg.solve(I_B, v.unsqueeze(-1)).squeeze(-1)
        return c, 0.5 * logvar.sum(1) - torch.linalg.slogdet(I_B)[1]

    def nll(self, c: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``-log p_T(c)`` per sample ``(b,)``, in nats, for concepts ``c`` ``(b, K)``."""
        pm, prec, logdet = self.moments(targets, len(c))
        d = c - pm
        quad = torch.einsum("bi,bij,bj->b", d, prec, d)
        return 0.5 * (quad + logdet + c.shape[1] * LOG2PI)

    @torch.no_grad()
    def set_linear_gaussian(self, B, mu_obs, var_obs, mu_int, var_int) -> None:
        """Set the SEM: ``B`` ``(K, K)``; noise means and variances per coordinate ``(K,)``."""
        t = lambda a: torch.as_tensor(a, dtype=self.B.dtype)  # noqa: E731
        self.B.copy_(t(B))
        self.mu_obs.copy_(t(mu_obs))
        self.logvar_obs.copy_(t(var_obs).clamp_min(1e-8).log())
        self.mu_int.copy_(t(mu_int))
        self.logvar_int.copy_(t(var_int).clamp_min(1e-8).log())

    @torch.no_grad()
    def sample(self, targets: torch.Tensor, generator=None) -> torch.Tensor:
        """Concepts ``(b, K)`` drawn under per-sample target masks ``(b, m)``."""
        pm, prec, _ = self.moments(targets)
        cov = torch.linalg.inv(prec)
        L = torch.linalg.cholesky(0.5 * (cov + cov.transpose(1, 2)))
        eps = torch.randn(targets.shape[0], len(self.concept_of), 1, generator=generator,
                          dtype=pm.dtype)  # fmt: skip
        return pm + (L @ eps.to(pm.device)).squeeze(-1)

    def block_norms(self) -> torch.Tensor:
        """``(m, m)``: squared Frobenius norm of each ``B_ij`` block (row child, column parent)."""
        return self.pool @ (self.weights**2) @ self.pool.T

    def dag_penalty(self) -> torch.Tensor:
        W = self.block_norms()
        return torch.trace(torch.matrix_exp(W)) - W.shape[0]


class _VAEBase(EstimatorBase):
    likelihood: str
    can_generate = True  # a decoder and a prior
    #: whether ``generate(targets)`` samples under the interventions ``targets`` names
    can_intervene: bool = False
    concepts_need_targets: bool = False

    def _setup_likelihood(self, likelihood: str) -> None:
        if likelihood not in ("gaussian", "bernoulli"):
            raise UsageError(f"likelihood must be 'gaussian' or 'bernoulli', got {likelihood!r}")
        self.likelihood = likelihood
        self.log_sigma = nn.Parameter(torch.tensor(-1.0), requires_grad=likelihood == "gaussian")

    @staticmethod
    def _sample(mean, log_var, generator=None):
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * log_var) * eps

    def _decode_mean(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out


class TheoremMatchedVAE(_VAEBase):
    """Encoder ``q(c, n | x)``, SEM prior over ``c`` per context, ``N(0, I)`` nuisance prior.

    Parameters
    ----------
    obs_shape : tuple
        ``(p,)`` or ``(3, S, S)``.
    block_sizes : sequence of int
    nuisance_dim : int
    likelihood : {"gaussian", "bernoulli"}
    beta : float
        Weight of the KL terms.
    dag_weight : float
        Weight of the acyclicity penalty.
    """

    can_intervene = True  # the SEM prior, with known targets
    needs_labels = True

    def __init__(
        self,
        obs_shape: Sequence[int],
        block_sizes: Sequence[int],
        nuisance_dim: int = 0,
        likelihood: str = "gaussian",
        beta: float = 1.0,
        dag_weight: float = 10.0,
        hidden: int = 128,
    ) -> None:
        super().__init__()
        self.block_sizes = check_block_sizes(block_sizes)
        self.K, self.m = sum(self.block_sizes), len(self.block_sizes)
        self.nuisance_dim = check_number(nuisance_dim, "nuisance_dim", minimum=0)
        self.obs_shape = check_obs_shape(obs_shape)
        self.encoder, self.decoder = make_nets(obs_shape, self.K + self.nuisance_dim, hidden)
        self.prior = SEMPrior(self.block_sizes)
        self.beta = check_number(beta, "beta", integer=False, minimum=0)
        self.dag_weight = check_number(dag_weight, "dag_weight", integer=False, minimum=0)
        self._setup_likelihood(likelihood)

    def loss(self, batch: Batch, generator=None):
        mean, log_var = self.encoder(batch.x)
        z = self._sample(mean, log_var, generator)
        nll = reconstruction_nll(batch.x, self.decoder(z), self.likelihood, self.log_sigma)
        K = self.K
        pm, prec, logdet = self.prior.moments(batch.targets)
        kl_c = gaussian_kl(mean[:, :K], log_var[:, :K], pm, prec, logdet)
        mn, lvn = mean[:, K:], log_var[:, K:]
        kl_n = 0.5 * (lvn.exp() + mn**2 - 1 - lvn).sum(1)
        dag = self.prior.dag_penalty()
        loss = (nll + self.beta * (kl_c + kl_n)).mean() + self.dag_weight * dag
        logs = {"nll": nll.mean().item(), "kl": (kl_c + kl_n).mean().item(), "dag": dag.item()}
        return loss, logs

    @torch.no_grad()
    def concepts(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Posterior mean of the concepts ``(b, K)`` (context-free)."""
        return self.encoder(self.check_x(x))[0][:, : self.K]

    @torch.no_grad()
    def exogenous(self, x: torch.Tensor, targets: torch.Tensor, generator=None) -> torch.Tensor:
        """The exogenous noise ``(b, K + nuisance_dim)`` of one draw from the encoder's posterior
        ``q(c, n | x)``: the SEM prior inverted on the drawn concepts under the targets ``(b,
        m)``, then the drawn nuisance. Drawn, not the posterior mean: when the posterior and the
        prior agree, the draws of a context follow its prior, so the noise is ``N(0, I)`` there
        (:func:`conceptid.modelcheck.noise_check` tests it); the means are shrunk, and
        correlated even then."""
        x = self.check_x(x)
        check_targets(targets, self.m, len(x))
        mean, log_var = self.encoder(x)
        z = self._sample(mean, log_var, generator)
        eps = self.prior.exogenous(z[:, : self.K], targets)
        return torch.cat([eps, z[:, self.K :]], 1)

    @torch.no_grad()
    def generate(self, targets: torch.Tensor, n: int | None = None, *,
                 generator=None) -> torch.Tensor:  # fmt: skip
        """Samples of ``x`` under per-sample target masks ``(n, m)``, or one target set
        ``(m,)`` for ``n`` samples (any set of targets).

        Raises :class:`~conceptid.simulations.errors.UsageError` (before any work) for targets
        or ``n`` that :func:`~conceptid.models.contract.target_rows` refuses and a
        ``generator`` that is not a ``torch.Generator``; ``MemoryLimitError`` for samples
        beyond memory."""
        check_generator(generator)
        targets = target_rows(targets, n, len(self.block_sizes), self.obs_shape)
        c = self.prior.sample(targets, generator)
        nuis = self.standard_normal(targets.shape[0], self.nuisance_dim, generator=generator)
        return self._decode_mean(self.decoder(torch.cat([c, nuis], 1)))

    def graph(self, threshold: float = 0.1) -> torch.Tensor:
        """Estimated adjacency ``(m, m)`` (``[i, j]``: edge ``i -> j``), acyclic: blocks with norm
        above ``threshold``; each remaining cycle loses its weakest edge."""
        W = self.prior.block_norms().detach().sqrt().T.clone()  # parent i -> child j
        A = W > threshold
        while True:
            cyc = _find_cycle(A)
            if cyc is None:
                return A
            edges = list(zip(cyc[:-1], cyc[1:]))
            i, j = min(edges, key=lambda e: W[e[0], e[1]].item())
            A[i, j] = False


def _find_cycle(A: torch.Tensor):
    import numpy as np

    from conceptid.simulations.graphs import find_cycle as find

    return find(np.asarray(A.cpu().numpy(), dtype=bool))


class LogRatioClassifier(EstimatorBase):
    """Contrastive estimator: classify the context of ``x`` with logits of the log-ratio form.

    An encoder ``h: x -> c`` (context-free, ``K`` outputs; no decoder) and, for each concept
    ``k``, the logit of "context k versus observational" in the exact form Lemma 1 gives for a
    hard intervention on ``k`` of a linear Gaussian SEM (scalar concepts):

        q_k(c) = -(c_k - mu~_k)^2 / (2 w~_k) + (c_k - B_k. c - mu_k)^2 / (2 w_k) + const_k,

    with ``B`` zero on the diagonal (``dag_weight > 0`` adds the acyclicity penalty
    ``tr exp(B o B) - m``). Cross-entropy over the training contexts (observational logit 0, plus
    the log of each context's share of the data). At the optimum the logits are the
    true log-density ratios, which depend on ``x`` only through the concepts (A5), so the encoder
    is pushed onto the class the theorem identifies; no reconstruction is learned, so the
    nuisance never competes for capacity. Multi-target contexts are not used in training.

    It learns no decoder, so it cannot generate (``can_generate`` is false: ``generate`` raises
    :class:`~conceptid.models.contract.CapabilityError`). :meth:`prepare` sets the log shares
    of the contexts from the training data (``fit`` calls it).
    """

    can_generate = False  # no decoder
    can_intervene = False
    needs_labels = True
    concepts_need_targets = False

    def __init__(
        self, obs_shape: Sequence[int], m: int, hidden: int = 128, dag_weight: float = 0.0
    ) -> None:
        super().__init__()
        self.m = self.K = check_number(m, "m")
        self.dag_weight = float(dag_weight)
        self.obs_shape = check_obs_shape(obs_shape)
        self.encoder, _ = make_nets(obs_shape, self.K, hidden)  # uses the mean half only
        self.B = nn.Parameter(torch.zeros(m, m))
        self.mu = nn.Parameter(torch.zeros(m))
        self.log_w = nn.Parameter(torch.zeros(m))
        self.mu_int = nn.Parameter(torch.zeros(m))
        self.log_w_int = nn.Parameter(torch.zeros(m))
        self.const = nn.Parameter(torch.zeros(m))
        self.register_buffer("off_diag", 1.0 - torch.eye(m))
        self.register_buffer("log_share", torch.zeros(m + 1))

    @torch.no_grad()
    def prepare(self, train: TensorData) -> None:
        """The log share of each class in ``train``'s single-target rows (observational, then
        each ``do(k)``), relative to the observational one: the offsets of :meth:`logits`.

        Raises :class:`~conceptid.simulations.errors.UsageError` when ``train`` has no
        observational sample (the classes are against the observational context) or targets
        of another number of concepts."""
        if train.targets.dim() != 2 or train.targets.shape[1] != self.m:
            raise UsageError(f"the training targets must be (n, {self.m}) masks, got "
                             f"{tuple(train.targets.shape)}")  # fmt: skip
        label = self._labels(train.targets)[train.targets.sum(1) <= 1]
        counts = torch.bincount(label, minlength=self.m + 1)
        if counts[0] == 0:
            raise UsageError("the log-ratio classifier needs observational training samples: "
                             "each class is a context against the observational one")  # fmt: skip
        share = counts.double() / counts.sum()
        self.log_share.copy_(torch.log(share / share[0]).float())

    @staticmethod
    def _labels(targets: torch.Tensor) -> torch.Tensor:
        """The class of each row: 0 observational, ``k + 1`` for a target set whose first
        concept is ``k`` (only single-target rows are classified)."""
        return torch.where(targets.any(1), targets.float().argmax(1) + 1, 0)

    def logits(self, c: torch.Tensor) -> torch.Tensor:
        """``(b, m + 1)``: observational (0) and one logit per single-target context."""
        resid = c - c @ (self.B * self.off_diag).T - self.mu
        q = -0.5 * (c - self.mu_int) ** 2 * torch.exp(-self.log_w_int)
        q = q + 0.5 * resid**2 * torch.exp(-self.log_w) + self.const
        return torch.cat([torch.zeros_like(q[:, :1]), q], 1) + self.log_share

    def loss(self, batch: Batch, generator=None):
        single = batch.targets.sum(1) <= 1
        label = self._labels(batch.targets)
        c = self.encoder(batch.x)[0]
        ce = nn.functional.cross_entropy(self.logits(c[single]), label[single])
        if self.dag_weight == 0:
            return ce, {"ce": ce.item()}
        W = (self.B * self.off_diag) ** 2
        dag = torch.trace(torch.matrix_exp(W)) - self.m
        return ce + self.dag_weight * dag, {"ce": ce.item(), "dag": dag.item()}

    @torch.no_grad()
    def concepts(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(self.check_x(x))[0]


class ContextModuleVAE(_VAEBase):
    """The paper's architecture: encoder -> (eps, n) with ``N(0, I)`` prior -> context module ->
    decoder. ``use_labels=False`` runs every sample through the observational weights.

    Variants (the paper's three ways to train the module):

    - end-to-end: the default, everything trained together;
    - fine-tune: :meth:`from_base` with ``unfreeze_after=E``: encoder and decoder taken from a
      trained base VAE and frozen, the module trained alone for ``E`` epochs, then everything;
    - frozen: :meth:`from_base` with ``unfreeze_after=None``: encoder and decoder stay fixed.

    ``unfreeze_after``: after that many epochs, :meth:`epoch_end` unfreezes the encoder, the
    decoder and the likelihood scale (the fine-tune schedule; ``None``: no schedule). It only
    matters once they are frozen, which :meth:`from_base` (or :meth:`set_nets_trainable`) does.

    The concepts depend on the context (the causal layer cuts an intervened concept from its
    parents), so :meth:`concepts` takes each sample's targets; without them every sample is read
    as observational.
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        block_sizes: Sequence[int],
        nuisance_dim: int = 0,
        likelihood: str = "gaussian",
        beta: float = 1.0,
        use_labels: bool = True,
        rep_dim: int | None = None,
        hidden: int = 128,
        encoder: nn.Module | None = None,
        decoder: nn.Module | None = None,
        unfreeze_after: int | None = None,
    ) -> None:
        super().__init__()
        self.block_sizes = check_block_sizes(block_sizes)
        self.K, self.m = sum(self.block_sizes), len(self.block_sizes)
        self.nuisance_dim = check_number(nuisance_dim, "nuisance_dim", minimum=0)
        both_own = encoder is not None and decoder is not None
        obs_shape = self.obs_shape = check_obs_shape(obs_shape, own_nets=both_own)
        rep_dim = self.K if rep_dim is None else check_number(rep_dim, "rep_dim")
        own = encoder is not None or decoder is not None
        self.encoder = encoder or make_nets(obs_shape, self.K + self.nuisance_dim, hidden)[0]
        self.decoder = decoder or make_nets(obs_shape, rep_dim + self.nuisance_dim, hidden)[1]
        self.module = ContextModule(self.block_sizes, rep_dim, self.nuisance_dim)
        self.beta = check_number(beta, "beta", integer=False, minimum=0)
        self.use_labels = bool(use_labels)
        self._setup_likelihood(likelihood)
        if unfreeze_after is not None:
            unfreeze_after = check_number(unfreeze_after, "unfreeze_after (None: never)")
        self.unfreeze_after = unfreeze_after
        if own:
            self._check_nets(tuple(obs_shape), rep_dim)

    def _check_nets(self, obs_shape: tuple, rep_dim: int) -> None:
        """A dry run on two zero inputs (:func:`~conceptid.models.nets.check_nets`): your
        encoder must return ``(mean, log_var)``, each ``(b, K + nuisance_dim)``; your decoder
        must map ``(b, rep_dim + nuisance_dim)`` to ``(b, *obs_shape)``. Raises UsageError
        naming the shapes otherwise (a net that fails on its input included)."""
        check_nets(self.encoder, self.decoder, obs_shape, self.K + self.nuisance_dim,
                   rep_dim + self.nuisance_dim, pair=True)  # fmt: skip

    @classmethod
    def from_base(
        cls, base: PooledVAE, obs_shape: Sequence[int], block_sizes: Sequence[int],
        nuisance_dim: int = 0, unfreeze_after: int | None = 10, **kw,
    ) -> ContextModuleVAE:  # fmt: skip
        """A module between the encoder and decoder of a trained ``base`` (a copy of them; the
        base's latent size must be ``sum(block_sizes) + nuisance_dim``). They are frozen; with
        ``unfreeze_after=E`` they are trained too from epoch ``E`` on (fine-tune), with ``None``
        never (frozen)."""
        K = sum(int(k) for k in block_sizes)
        if base.latent_dim != K + nuisance_dim:
            raise UsageError(
                f"the base VAE has {base.latent_dim} latent dimensions; the module needs "
                f"sum(block_sizes) + nuisance_dim = {K + nuisance_dim}"
            )
        model = cls(obs_shape, block_sizes, nuisance_dim, base.likelihood,
                    unfreeze_after=unfreeze_after, **kw)  # fmt: skip
        model.encoder.load_state_dict(base.encoder.state_dict())
        model.decoder.load_state_dict(base.decoder.state_dict())
        with torch.no_grad():
            model.log_sigma.copy_(base.log_sigma)
        model.set_nets_trainable(False)
        return model

    @property
    def can_intervene(self) -> bool:
        """True, except for the labels-ignored ablation: it runs every sample through the
        observational weights, so ``generate(targets)`` ignores the targets."""
        return self.use_labels

    @property
    def needs_labels(self) -> bool:
        """The loss reads the targets, except in the labels-ignored ablation."""
        return self.use_labels

    @property
    def concepts_need_targets(self) -> bool:
        """The concepts depend on the targets, except in the labels-ignored ablation."""
        return self.use_labels

    def set_nets_trainable(self, flag: bool) -> None:
        """Freeze (``False``) or unfreeze the encoder, the decoder and the likelihood scale."""
        for p in [*self.encoder.parameters(), *self.decoder.parameters()]:
            p.requires_grad_(flag)
        self.log_sigma.requires_grad_(flag and self.likelihood == "gaussian")

    def epoch_end(self, epoch: int, train) -> bool:
        """Fine-tune schedule: unfreeze the encoder and decoder after ``unfreeze_after`` epochs."""
        after = self.unfreeze_after
        if after is not None and epoch + 1 == after:
            self.set_nets_trainable(True)
            return True
        return False

    def _targets(self, targets: torch.Tensor) -> torch.Tensor:
        return targets if self.use_labels else torch.zeros_like(targets, dtype=torch.bool)

    def loss(self, batch: Batch, generator=None):
        mean, log_var = self.encoder(batch.x)
        z = self._sample(mean, log_var, generator)
        rep, _ = self.module(z[:, : self.K], z[:, self.K :], self._targets(batch.targets),
                             check_values=False)  # fmt: skip
        nll = reconstruction_nll(batch.x, self.decoder(rep), self.likelihood, self.log_sigma)
        kl = 0.5 * (log_var.exp() + mean**2 - 1 - log_var).sum(1)
        loss = (nll + self.beta * kl).mean()
        return loss, {"nll": nll.mean().item(), "kl": kl.mean().item()}

    @torch.no_grad()
    def concepts(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """The module's concepts ``(b, K)`` from the posterior mean of the exogenous noise,
        under each sample's targets ``(b, m)``; ``None``: every sample read as observational
        (the same as an all-false mask). ``x`` and ``targets`` are checked first
        (:meth:`~conceptid.models.contract.EstimatorBase.check_x`,
        :func:`~conceptid.models.contract.check_targets`: one 0/1 row per sample)."""
        x = self.check_x(x)
        if targets is not None:
            targets = check_targets(targets, self.m, len(x))
        mean, _ = self.encoder(x)
        if targets is None:
            targets = torch.zeros(mean.shape[0], self.m, dtype=torch.bool, device=mean.device)
        return self.module.concepts(mean[:, : self.K], self._targets(targets), check_values=False)

    #: :func:`conceptid.modelcheck.noise_check` skips this model: it cannot pass by construction
    #: (see :meth:`exogenous`), so its rejection says nothing about its concepts
    noise_check_applies = False

    @torch.no_grad()
    def exogenous(self, x: torch.Tensor, targets: torch.Tensor, generator=None) -> torch.Tensor:
        """The exogenous noise ``(b, K + nuisance_dim)``: one draw from the encoder's posterior
        (concepts' noise, then nuisance); ``targets`` do not enter, since the module puts the
        same ``N(0, I)`` prior on the noise in every context. A diagnostic, not a check: the
        encoder is context-free while the module maps the noise to the concepts differently per
        target set, so no informative encoder gives independent noise in every context of a
        design with edges (on a chain ``c0 -> c1``, a read-out ``a c1 + b c0`` of the second
        noise is uncorrelated with ``c0`` under ``do(c1)`` only if ``b = 0``, and in the
        observational context only if ``a = 0`` as well). docs/benchmarks.md measures how far
        the draws are from it ("The noise check")."""
        x = self.check_x(x)
        check_targets(targets, self.m, len(x))  # unread, but held to the contract as elsewhere
        mean, log_var = self.encoder(x)
        return self._sample(mean, log_var, generator)

    @torch.no_grad()
    def generate(self, targets: torch.Tensor, n: int | None = None, *,
                 generator=None) -> torch.Tensor:  # fmt: skip
        """Samples of ``x`` under per-sample target masks ``(n, m)``, or one target set ``(m,)``
        for ``n`` samples; the labels-ignored ablation ignores the targets.

        Raises :class:`~conceptid.simulations.errors.UsageError` (before any work) for targets
        or ``n`` that :func:`~conceptid.models.contract.target_rows` refuses and a
        ``generator`` that is not a ``torch.Generator``; ``MemoryLimitError`` for samples
        beyond memory."""
        check_generator(generator)
        targets = target_rows(targets, n, self.m, self.obs_shape)
        b = targets.shape[0]
        z = self.standard_normal(b, self.K + self.nuisance_dim, generator=generator)
        rep, _ = self.module(z[:, : self.K], z[:, self.K :], self._targets(targets),
                             check_values=False)  # fmt: skip
        return self._decode_mean(self.decoder(rep))


class PooledVAE(_VAEBase):
    """A plain VAE on all contexts pooled (``beta > 1``: beta-VAE). It knows no contexts, so
    ``generate`` ignores its targets (``can_intervene`` is false), and its loss the labels."""

    can_intervene = False
    needs_labels = False

    def __init__(self, obs_shape, latent_dim: int, likelihood: str = "gaussian", beta: float = 1.0,
                 hidden: int = 128) -> None:  # fmt: skip
        super().__init__()
        self.latent_dim = check_number(latent_dim, "latent_dim")
        self.obs_shape = check_obs_shape(obs_shape)
        self.encoder, self.decoder = make_nets(obs_shape, self.latent_dim, hidden)
        self.beta = check_number(beta, "beta", integer=False, minimum=0)
        self._setup_likelihood(likelihood)

    def loss(self, batch: Batch, generator=None):
        mean, log_var = self.encoder(batch.x)
        z = self._sample(mean, log_var, generator)
        nll = reconstruction_nll(batch.x, self.decoder(z), self.likelihood, self.log_sigma)
        kl = 0.5 * (log_var.exp() + mean**2 - 1 - log_var).sum(1)
        return (nll + self.beta * kl).mean(), {"nll": nll.mean().item(), "kl": kl.mean().item()}

    @torch.no_grad()
    def concepts(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(self.check_x(x))[0]

    @torch.no_grad()
    def generate(self, targets: torch.Tensor, n: int | None = None, *,
                 generator=None) -> torch.Tensor:  # fmt: skip
        """Samples of ``x`` from the ``N(0, I)`` prior: as many as ``targets`` has rows (or
        ``n`` for one target set ``(m,)``); the targets themselves are ignored.

        Raises :class:`~conceptid.simulations.errors.UsageError` (before any work) for targets
        or ``n`` that :func:`~conceptid.models.contract.target_rows` refuses and a
        ``generator`` that is not a ``torch.Generator``; ``MemoryLimitError`` for samples
        beyond memory."""
        check_generator(generator)
        rows = target_rows(targets, n, None, self.obs_shape).shape[0]
        z = self.standard_normal(rows, self.latent_dim,
                                 generator=generator)  # fmt: skip
        return self._decode_mean(self.decoder(z))


class IVAE(PooledVAE):
    """iVAE-style: the prior over the latent is ``N(mu_k, diag(exp(lv_k)))`` for context ``k``,
    learned per context index.

    The priors belong to context indices, not to target sets, so unseen compositions cannot be
    generated and ``generate`` ignores its targets (``can_intervene`` is false): it draws from
    the pooled law, the mixture of the per-context priors weighted by each context's share of
    the training data (:meth:`prepare` records the shares; uniform before). The per-context
    samples are :meth:`_generate_contexts`'s (a private helper, by context index).
    """

    needs_labels = True  # the context index of each sample

    def __init__(self, obs_shape, latent_dim: int, n_contexts: int, likelihood: str = "gaussian",
                 beta: float = 1.0, hidden: int = 128) -> None:  # fmt: skip
        super().__init__(obs_shape, latent_dim, likelihood, beta, hidden)
        n_contexts = check_number(n_contexts, "n_contexts")
        check_size(2 * n_contexts * self.latent_dim, f"priors of {n_contexts} contexts")
        self.prior_mean = nn.Parameter(torch.zeros(n_contexts, latent_dim))
        self.prior_logvar = nn.Parameter(torch.zeros(n_contexts, latent_dim))
        self.register_buffer("context_share", torch.full((n_contexts,), 1.0 / n_contexts))

    @torch.no_grad()
    def prepare(self, train: TensorData) -> None:
        """Record each context's share of ``train`` (the weights of the pooled law that
        :meth:`generate` draws from). Raises :class:`~conceptid.simulations.errors.UsageError`
        for a context index without a prior."""
        n_contexts = len(self.context_share)
        if len(train.context) and int(train.context.max()) >= n_contexts:
            raise UsageError(f"the training data has context index {int(train.context.max())}; "
                             f"this IVAE has priors for {n_contexts} contexts")  # fmt: skip
        counts = torch.bincount(train.context, minlength=n_contexts).double()
        if counts.sum() > 0:
            self.context_share.copy_((counts / counts.sum()).to(self.context_share.dtype))

    def loss(self, batch: Batch, generator=None):
        mean, log_var = self.encoder(batch.x)
        z = self._sample(mean, log_var, generator)
        nll = reconstruction_nll(batch.x, self.decoder(z), self.likelihood, self.log_sigma)
        pm, plv = self.prior_mean[batch.context], self.prior_logvar[batch.context]
        kl = 0.5 * ((log_var.exp() + (mean - pm) ** 2) / plv.exp() - 1 + plv - log_var).sum(1)
        return (nll + self.beta * kl).mean(), {"nll": nll.mean().item(), "kl": kl.mean().item()}

    @torch.no_grad()
    def generate(self, targets: torch.Tensor, n: int | None = None, *,
                 generator=None) -> torch.Tensor:  # fmt: skip
        """Samples of ``x`` from the pooled law (a context drawn by its training share, then its
        prior): as many as ``targets`` has rows (or ``n`` for one target set ``(m,)``); the
        targets themselves are ignored.

        Raises :class:`~conceptid.simulations.errors.UsageError` (before any work) for targets
        or ``n`` that :func:`~conceptid.models.contract.target_rows` refuses and a
        ``generator`` that is not a ``torch.Generator``; ``MemoryLimitError`` for samples
        beyond memory."""
        check_generator(generator)
        b = target_rows(targets, n, None, self.obs_shape).shape[0]
        if b == 0:  # multinomial draws at least one
            return self.standard_normal(0, *self.obs_shape)
        context = torch.multinomial(self.context_share.cpu(), b, replacement=True,
                                    generator=generator)  # fmt: skip
        return self._generate_contexts(context, generator)

    @torch.no_grad()
    def _generate_contexts(self, context: torch.Tensor, generator=None) -> torch.Tensor:
        """Samples of ``x`` from the prior of each sample's context index ``(b,)`` (long)."""
        pm, plv = self.prior_mean[context], self.prior_logvar[context]
        z = pm + torch.exp(0.5 * plv) * self.standard_normal(*pm.shape, generator=generator)
        return self._decode_mean(self.decoder(z))
