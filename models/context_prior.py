"""The context module as an exact per-context prior over the concepts.

Concepts are a context-free function of the observation; what changes between contexts is their
*law*. This module is that law: a normalising flow from exogenous noise ``eps ~ N(0, I_K)`` to the
concepts ``c`` under any set of targets ``T``, built from the context module's layers made
invertible, each with a tractable log-determinant:

1. :class:`InterventionAffine` (intervention layer): ``u_j = L_j eps_j + a_j`` per concept block,
   ``L_j`` lower triangular with a positive diagonal; an intervened block uses its own
   interventional ``(L~_j, a~_j)``. Block ``j``'s noise is ``N(a_j, L_j L_j^T)``.
2. :class:`MonotoneExpressive` (expressive layer): a strictly increasing sinh-arcsinh map per
   coordinate, ``v = sinh(b asinh(u) - s)`` (Jones and Pewsey, Biometrika 2009), with separate
   observational and interventional skew ``s`` and tail weight ``b > 0``: non-Gaussian exogenous
   laws with closed-form inverse and derivative. It starts at the identity (``s = 0``, ``b = 1``).
3. :class:`StructuralCausal` (causal layer): ``c = (I - B_T)^{-1} v``, where ``B_T`` is the
   block-off-diagonal weight matrix ``B`` with the rows of the intervened blocks zeroed (a hard
   intervention cuts a concept from its parents and keeps every other mechanism). Its
   log-determinant is ``-log |det(I - B_T)|``, computed exactly per sample (zero when ``B`` is
   acyclic, which the DAG penalty drives it to, but never assumed).

The representation layer, the map from the concepts (and the nuisance) to the decoder's input, is
the estimator's business: :class:`~conceptid.models.mle.LatentFlowMLE` with
``prior="context-module"`` uses
its coupling flow and linear head for it. Forward = generation under any targets (composition:
targets never seen together in training are just another mask); :meth:`ContextFlowPrior.nll` runs
the inverse and returns the exact ``-log p_T(c)``.

Targets are per sample (a boolean ``(b, m)`` mask), so one batch mixes contexts; masks are
expanded to coordinates once and applied by broadcasting, without a loop over samples.
With the expressive layer at the identity and diagonal ``L`` the prior is exactly the linear
Gaussian SEM of :class:`~conceptid.models.estimators.SEMPrior` (the tests check this).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from conceptid.simulations.errors import UsageError

from .context_module import block_index, check_targets
from .nets import check_block_sizes

__all__ = ["ContextFlowPrior", "InterventionAffine", "MonotoneExpressive", "StructuralCausal"]

_LOG2 = math.log(2.0)


def _log_cosh(y: torch.Tensor) -> torch.Tensor:
    """``log cosh(y)`` without overflow for large ``|y|``."""
    a = y.abs()
    return a + torch.log1p(torch.exp(-2 * a)) - _LOG2


class InterventionAffine(nn.Module):
    """Layer 1: per-block affine maps of the noise, observational or interventional per sample.

    ``u = W eps + a`` with ``W`` block-diagonal and lower triangular (positive diagonal
    ``exp(log_diag)``), one parameter set for non-intervened and one for intervened blocks.
    ``eps``, ``u``: ``(b, K)``; ``col``: ``(b, K)`` float, 1 where the coordinate's concept is
    intervened. ``log |det du/deps|`` ``(b,)``.
    """

    def __init__(self, block_sizes: Sequence[int]) -> None:
        super().__init__()
        self.block_sizes = tuple(int(k) for k in block_sizes)
        idx = block_index(self.block_sizes)
        K = len(idx)
        same = idx[:, None] == idx[None, :]
        self.register_buffer("lower_mask", (same & torch.ones(K, K).tril(-1).bool()).float())
        self.log_diag = nn.Parameter(torch.zeros(2, K))  # [observational, interventional]
        self.lower = nn.Parameter(torch.zeros(2, K, K))
        self.bias = nn.Parameter(torch.zeros(2, K))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.log_diag.zero_()
            self.lower.zero_()
            self.bias.zero_()

    def weight(self) -> torch.Tensor:
        """``(2, K, K)``: the observational and interventional lower-triangular matrices."""
        return self.lower * self.lower_mask + torch.diag_embed(torch.exp(self.log_diag))

    def forward(self, eps: torch.Tensor, col: torch.Tensor):
        W = self.weight()
        u_obs = F.linear(eps, W[0], self.bias[0])
        u_int = F.linear(eps, W[1], self.bias[1])
        logdet = torch.lerp(self.log_diag[0], self.log_diag[1], col).sum(1)
        return torch.lerp(u_obs, u_int, col), logdet

    def inverse(self, u: torch.Tensor, col: torch.Tensor):
        """``eps`` ``(b, K)`` and ``log |det deps/du|`` ``(b,)``. Both parameter sets are
        block-diagonal, so solving with each and picking per coordinate is exact."""
        W = self.weight()
        rhs = torch.stack([u - self.bias[0], u - self.bias[1]])  # (2, b, K)
        sol = torch.linalg.solve_triangular(W, rhs.transpose(1, 2), upper=False)  # (2, K, b)
        eps = torch.lerp(sol[0].T, sol[1].T, col)
        return eps, -torch.lerp(self.log_diag[0], self.log_diag[1], col).sum(1)

    def extra_repr(self) -> str:
        return f"block_sizes={self.block_sizes}"


class MonotoneExpressive(nn.Module):
    """Layer 2: ``v = sinh(b asinh(u) - s)`` per coordinate, strictly increasing (``b > 0``).

    ``(s, log b)`` observational or interventional per sample; ``(b, K)`` -> ``(b, K)`` with
    ``log dv/du = log b + log cosh(b asinh(u) - s) - 1/2 log(1 + u^2)`` summed ``(b,)``.
    """

    def __init__(self, K: int) -> None:
        super().__init__()
        self.K = int(K)
        self.skew = nn.Parameter(torch.zeros(2, self.K))
        self.log_tail = nn.Parameter(torch.zeros(2, self.K))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.skew.zero_()
            self.log_tail.zero_()

    def _params(self, col: torch.Tensor):
        s = torch.lerp(self.skew[0], self.skew[1], col)
        log_b = torch.lerp(self.log_tail[0], self.log_tail[1], col)
        return s, log_b

    def forward(self, u: torch.Tensor, col: torch.Tensor):
        s, log_b = self._params(col)
        y = torch.exp(log_b) * torch.asinh(u) - s
        logdet = (log_b + _log_cosh(y) - 0.5 * torch.log1p(u * u)).sum(1)
        return torch.sinh(y), logdet

    def inverse(self, v: torch.Tensor, col: torch.Tensor):
        s, log_b = self._params(col)
        y = torch.asinh(v)
        w = (y + s) * torch.exp(-log_b)
        # du/dv = cosh(w) / (b sqrt(1 + v^2)), and sqrt(1 + v^2) = cosh(y)
        return torch.sinh(w), (-log_b + _log_cosh(w) - _log_cosh(y)).sum(1)

    def extra_repr(self) -> str:
        return f"K={self.K}"


class StructuralCausal(nn.Module):
    """Layer 3: ``c = (I - B_T)^{-1} v``, ``B_T`` = ``B`` (zero diagonal blocks) with the rows of
    intervened blocks zeroed. ``(b, K)`` -> ``(b, K)``; ``log |det dc/dv| = -log |det(I - B_T)|``
    ``(b,)``, exact per sample."""

    def __init__(self, block_sizes: Sequence[int]) -> None:
        super().__init__()
        self.block_sizes = tuple(int(k) for k in block_sizes)
        idx = block_index(self.block_sizes)
        self.register_buffer("off_block", (idx[:, None] != idx[None, :]).float())
        self.B = nn.Parameter(torch.zeros(len(idx), len(idx)))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.B.zero_()

    @property
    def weights(self) -> torch.Tensor:
        """``(K, K)`` structural weights, row = child coordinate, column = parent coordinate."""
        return self.B * self.off_block

    def _i_minus_b(self, col: torch.Tensor) -> torch.Tensor:
        K = col.shape[1]
        eye = torch.eye(K, dtype=col.dtype, device=col.device)
        return eye - self.weights[None] * (1 - col)[:, :, None]  # (b, K, K)

    def forward(self, v: torch.Tensor, col: torch.Tensor):
        M = self._i_minus_b(col)
        c = torch.linalg.solve(M, v.unsqueeze(-1)).squeeze(-1)
        return c, -torch.linalg.slogdet(M)[1]

    def inverse(self, c: torch.Tensor, col: torch.Tensor):
        v = c - (1 - col) * F.linear(c, self.weights)
        return v, torch.linalg.slogdet(self._i_minus_b(col))[1]

    def extra_repr(self) -> str:
        return f"block_sizes={self.block_sizes}"


class ContextFlowPrior(nn.Module):
    """Exact per-context law of the concepts: ``eps -> c`` through layers 1-3, any targets.

    Parameters
    ----------
    block_sizes : sequence of int
        ``k_j`` per concept; ``K = sum(block_sizes)``.
    expressive : bool
        Include the monotone expressive layer (default). Without it, the prior is a linear
        Gaussian SEM with a full noise covariance per block.

    Notes
    -----
    Shapes: concepts ``c`` ``(b, K)``; ``targets`` ``(b, m)`` boolean (any set per sample,
    including sets never seen in training). Raises ``conceptid.simulations.errors.UsageError`` (a
    ``ConceptIDError``) on bad block sizes or a mask or concepts of the wrong shape.
    """

    def __init__(self, block_sizes: Sequence[int], expressive: bool = True) -> None:
        super().__init__()
        self.block_sizes = check_block_sizes(block_sizes)
        idx = block_index(self.block_sizes)
        self.m, self.K = len(self.block_sizes), len(idx)
        self.register_buffer("concept_of", idx)
        pool = torch.zeros(self.m, self.K)
        pool[idx, torch.arange(self.K)] = 1.0
        self.register_buffer("pool", pool)
        self.intervention = InterventionAffine(self.block_sizes)
        self.expressive = MonotoneExpressive(self.K) if expressive else None
        self.causal = StructuralCausal(self.block_sizes)

    def _col(self, targets: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        targets = check_targets(targets, self.m, len(like))
        return targets[:, self.concept_of].to(like.dtype)

    def forward(self, eps: torch.Tensor, targets: torch.Tensor):
        """``(c, log |det dc/deps|)``: concepts ``(b, K)`` from noise ``(b, K)`` under targets."""
        col = self._col(targets, eps)
        u, ld = self.intervention(eps, col)
        if self.expressive is not None:
            u, ld2 = self.expressive(u, col)
            ld = ld + ld2
        c, ld3 = self.causal(u, col)
        return c, ld + ld3

    def inverse(self, c: torch.Tensor, targets: torch.Tensor):
        """``(eps, log |det deps/dc|)``: the exact inverse of :meth:`forward`."""
        if c.dim() != 2 or c.shape[1] != self.K:
            raise UsageError(f"concepts must be (batch, {self.K}), got {tuple(c.shape)}")
        col = self._col(targets, c)
        v, ld = self.causal.inverse(c, col)
        if self.expressive is not None:
            v, ld2 = self.expressive.inverse(v, col)
            ld = ld + ld2
        eps, ld3 = self.intervention.inverse(v, col)
        return eps, ld + ld3

    def exogenous(self, c: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The exogenous noise ``(b, K)`` of concepts ``c`` under targets: ``N(0, I)`` in
        every context when ``c`` follows the prior."""
        return self.inverse(c, targets)[0]

    def nll(self, c: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``-log p_T(c)`` per sample ``(b,)``, in nats."""
        eps, logdet = self.inverse(c, targets)
        return 0.5 * (eps * eps).sum(1) + 0.5 * self.K * math.log(2 * math.pi) - logdet

    @torch.no_grad()
    def sample(self, targets: torch.Tensor, generator: torch.Generator | None = None):
        """Concepts ``(b, K)`` drawn under per-sample target masks ``(b, m)``."""
        p = self.intervention.log_diag
        eps = torch.randn(targets.shape[0], self.K, generator=generator, dtype=p.dtype)
        return self.forward(eps.to(p.device), targets.to(p.device))[0]

    @property
    def weights(self) -> torch.Tensor:
        return self.causal.weights

    def block_norms(self) -> torch.Tensor:
        """``(m, m)``: squared Frobenius norm of each block of ``B`` (row child, column parent)."""
        return self.pool @ (self.weights**2) @ self.pool.T

    def dag_penalty(self) -> torch.Tensor:
        """``tr exp(W) - m`` on the block norms (zero iff the block graph is acyclic)."""
        W = self.block_norms()
        return torch.trace(torch.matrix_exp(W)) - W.shape[0]

    @torch.no_grad()
    def set_linear_gaussian(self, B, mu_obs, var_obs, mu_int, var_int) -> None:
        """Set the prior to a linear Gaussian SEM with diagonal noise per coordinate (what a
        Theorem L snap identifies): ``B`` ``(K, K)``, the rest ``(K,)``; the expressive layer
        returns to the identity."""
        t = lambda a: torch.as_tensor(a, dtype=self.causal.B.dtype)  # noqa: E731
        self.causal.B.copy_(t(B))
        self.intervention.lower.zero_()
        self.intervention.bias.copy_(torch.stack([t(mu_obs), t(mu_int)]))
        logvar = torch.stack([t(var_obs), t(var_int)]).clamp_min(1e-8).log()
        self.intervention.log_diag.copy_(0.5 * logvar)
        if self.expressive is not None:
            self.expressive.reset_parameters()

    def extra_repr(self) -> str:
        return f"block_sizes={self.block_sizes}, expressive={self.expressive is not None}"
