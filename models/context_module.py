"""The context module: four small layers between an encoder's latent and a decoder's input.

In the order of the SEM of proofs/setting.md (each an ``nn.Module`` with its masks as buffers):

1. :class:`InterventionLayer`: exogenous noise per concept; an intervened concept's noise goes
   through its own *interventional* affine weights, a non-intervened one through the
   observational ones. Blocks never mix here, in any context.
2. :class:`ExpressiveLayer`: a block-diagonal MLP, one block per concept (non-Gaussian exogenous
   laws), residual so that it starts near the identity.
3. :class:`CausalLayer`: the reduced-form linear SEM ``c = M u`` with identity diagonal blocks; in
   a context with targets ``T`` the rows of ``T`` keep only their own block (``c_j = u_j``) and
   the columns of ``T`` use their interventional weights.
4. :class:`RepresentationLayer`: a linear map from the concepts to the decoder's input.

A nuisance (style) channel bypasses layers 1-3 and is concatenated to the decoder input
unchanged: it is the same function in every context (A5).

Contexts are given per sample as a boolean ``(batch, m)`` target mask, so a batch may mix
contexts and any set of targets can be given at generation time (unseen compositions). Masks are
expanded to concept coordinates once and applied by broadcasting: no Python loop over samples or
contexts in a forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from conceptid.simulations.errors import UsageError
from conceptid.simulations.validation import check_number

# check_targets: the one mask check (0/1, shape), exported here too since it began here
from .contract import check_observations, check_targets
from .nets import check_block_sizes, check_size

__all__ = [
    "CausalLayer",
    "ContextModule",
    "ExpressiveLayer",
    "InterventionLayer",
    "RepresentationLayer",
    "block_index",
    "check_targets",
]


def block_index(block_sizes: Sequence[int]) -> torch.Tensor:
    """``(K,)`` long tensor: the concept of each concept coordinate."""
    return torch.repeat_interleave(
        torch.arange(len(block_sizes)), torch.tensor(list(block_sizes), dtype=torch.long)
    )


class InterventionLayer(nn.Module):
    """Per-concept affine maps of the exogenous noise, with separate interventional weights.

    ``u_j = A_j eps_j + a_j`` if ``j`` is not intervened, ``A~_j eps_j + a~_j`` if it is.

    Shapes: ``eps`` ``(batch, K)``, ``targets`` ``(batch, m)`` bool -> ``(batch, K)``.
    """

    def __init__(self, block_sizes: Sequence[int]) -> None:
        super().__init__()
        self.block_sizes = tuple(int(k) for k in block_sizes)
        K = sum(self.block_sizes)
        idx = block_index(self.block_sizes)
        self.register_buffer("block_mask", (idx[:, None] == idx[None, :]).float())  # (K, K)
        self.register_buffer("concept_of", idx)
        self.weight_obs = nn.Parameter(torch.empty(K, K))
        self.bias_obs = nn.Parameter(torch.empty(K))
        self.weight_int = nn.Parameter(torch.empty(K, K))
        self.bias_int = nn.Parameter(torch.empty(K))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        K = self.block_mask.shape[0]
        with torch.no_grad():
            self.weight_obs.copy_(torch.eye(K))
            self.weight_int.copy_(torch.eye(K))
            self.bias_obs.zero_()
            self.bias_int.zero_()

    def forward(self, eps: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = check_targets(targets, len(self.block_sizes), len(eps))
        return self.apply_mask(eps, targets[:, self.concept_of].to(eps.dtype))

    def apply_mask(self, eps: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        """``col`` ``(batch, K)``: 1 where the coordinate's concept is intervened, else 0."""
        u_obs = F.linear(eps, self.weight_obs * self.block_mask, self.bias_obs)
        u_int = F.linear(eps, self.weight_int * self.block_mask, self.bias_int)
        return torch.lerp(u_obs, u_int, col)

    def extra_repr(self) -> str:
        return f"block_sizes={self.block_sizes}"


class ExpressiveLayer(nn.Module):
    """Block-diagonal residual MLP: ``v_j = u_j + W2_j tanh(W1_j u_j + b1_j) + b2_j``.

    Implemented as two masked dense layers, so one batched product serves every block.
    Shapes: ``(batch, K)`` -> ``(batch, K)``. ``hidden`` units per concept.
    """

    def __init__(self, block_sizes: Sequence[int], hidden: int = 16) -> None:
        super().__init__()
        self.block_sizes = tuple(int(k) for k in block_sizes)
        self.hidden = int(hidden)
        idx = block_index(self.block_sizes)
        hid_idx = torch.arange(len(self.block_sizes)).repeat_interleave(self.hidden)
        self.register_buffer("mask_in", (hid_idx[:, None] == idx[None, :]).float())  # (mH, K)
        self.register_buffer("mask_out", (idx[:, None] == hid_idx[None, :]).float())  # (K, mH)
        K, H = len(idx), len(hid_idx)
        self.w1 = nn.Parameter(torch.empty(H, K))
        self.b1 = nn.Parameter(torch.empty(H))
        self.w2 = nn.Parameter(torch.empty(K, H))
        self.b2 = nn.Parameter(torch.empty(K))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            nn.init.normal_(self.w1, std=1.0 / max(1, max(self.block_sizes)) ** 0.5)
            nn.init.zeros_(self.b1)
            nn.init.normal_(self.w2, std=0.1 / self.hidden**0.5)
            nn.init.zeros_(self.b2)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(F.linear(u, self.w1 * self.mask_in, self.b1))
        return u + F.linear(h, self.w2 * self.mask_out, self.b2)

    def extra_repr(self) -> str:
        return f"block_sizes={self.block_sizes}, hidden={self.hidden}"


class CausalLayer(nn.Module):
    """Reduced-form linear SEM ``c = M u``, identity diagonal blocks, context-dependent.

    ``M = I + N_obs`` off the diagonal blocks; for a sample with targets ``T``: column blocks of
    ``T`` use ``N_int`` instead of ``N_obs``, and the rows of ``T`` keep only their own block
    (``c_j = u_j``). Shapes: ``u`` ``(batch, K)``, ``targets`` ``(batch, m)`` -> ``(batch, K)``.
    """

    def __init__(self, block_sizes: Sequence[int]) -> None:
        super().__init__()
        self.block_sizes = tuple(int(k) for k in block_sizes)
        idx = block_index(self.block_sizes)
        K = len(idx)
        self.register_buffer("concept_of", idx)
        self.register_buffer("off_block", (idx[:, None] != idx[None, :]).float())
        self.weight_obs = nn.Parameter(torch.zeros(K, K))
        self.weight_int = nn.Parameter(torch.zeros(K, K))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight_obs.zero_()
            self.weight_int.zero_()

    def forward(self, u: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = check_targets(targets, len(self.block_sizes), len(u))
        return self.apply_mask(u, targets[:, self.concept_of].to(u.dtype))

    def apply_mask(self, u: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        """``col`` ``(batch, K)``: 1 where the coordinate's concept is intervened, else 0."""
        # columns: intervened coordinates feed through the interventional weights
        u_int = u * col
        spill = F.linear(u - u_int, self.weight_obs * self.off_block)
        spill = spill + F.linear(u_int, self.weight_int * self.off_block)
        # rows: an intervened concept receives nothing from other blocks
        return torch.addcmul(u, 1 - col, spill)

    def extra_repr(self) -> str:
        return f"block_sizes={self.block_sizes}"


class RepresentationLayer(nn.Module):
    """Linear map from concepts ``(batch, K)`` to ``(batch, out_dim)`` (the decoder's input)."""

    def __init__(self, K: int, out_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(K, out_dim)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return self.linear(c)


class ContextModule(nn.Module):
    """The four layers and the nuisance bypass.

    Parameters
    ----------
    block_sizes : sequence of int
        ``k_j`` per concept.
    out_dim : int
        Size of the representation passed on (before the nuisance is appended).
    nuisance_dim : int
        Size of the bypass channel.
    hidden : int
        Hidden units per concept in the expressive layer.

    Notes
    -----
    Forward: ``eps`` ``(batch, K)``, ``nuisance`` ``(batch, nuisance_dim)``, ``targets``
    ``(batch, m)`` -> ``(representation (batch, out_dim + nuisance_dim), concepts (batch, K))``.
    Inputs of other shapes (or other numbers of rows), of another dtype than the module's
    (they are not cast), holding a NaN or infinite value or on the meta device, and a mask
    with an entry that is not 0 or 1, raise :class:`~conceptid.simulations.errors.UsageError`.
    """

    def __init__(
        self, block_sizes: Sequence[int], out_dim: int, nuisance_dim: int = 0, hidden: int = 16
    ) -> None:
        super().__init__()
        self.block_sizes = check_block_sizes(block_sizes)
        self.m, self.K = len(self.block_sizes), sum(self.block_sizes)
        self.nuisance_dim = check_number(nuisance_dim, "nuisance_dim", minimum=0)
        out_dim, hidden = check_number(out_dim, "out_dim"), check_number(hidden, "hidden")
        K = self.K  # four K x K layers, the expressive MLPs, the representation
        check_size(4 * K * K + 3 * K * hidden + K * out_dim,
                   f"a context module of {K} concept dimensions")  # fmt: skip
        self.intervention = InterventionLayer(self.block_sizes)
        self.expressive = ExpressiveLayer(self.block_sizes, hidden)
        self.causal = CausalLayer(self.block_sizes)
        self.representation = RepresentationLayer(self.K, out_dim)

    def _check_eps(self, eps) -> None:
        if not isinstance(eps, torch.Tensor) or eps.dim() != 2 or eps.shape[1] != self.K:
            got = tuple(eps.shape) if isinstance(eps, torch.Tensor) else type(eps).__name__
            raise UsageError(f"eps must be a tensor (batch, {self.K}), got {got}")

    def _check_values(self, **tensors: torch.Tensor) -> None:
        """Each tensor (of a checked shape) floating point in the module's dtype, finite, and
        not on the meta device: :func:`~conceptid.models.contract.check_observations`."""
        dtype = self.representation.linear.weight.dtype
        for name, t in tensors.items():
            check_observations(t, None, dtype, name)

    def concepts(
        self, eps: torch.Tensor, targets: torch.Tensor, *, check_values: bool = True
    ) -> torch.Tensor:
        """Concepts ``(batch, K)`` from exogenous noise under per-sample targets (a 0/1 mask
        with one row per row of ``eps``).

        ``eps`` must be a ``(batch, K)`` tensor in the module's dtype (it is not cast: a
        float64, float16 or integer ``eps`` for a float32 module is refused; ``eps.to(dtype)``
        converts it) with no NaN or infinite entry. ``check_values=False`` skips the dtype
        and NaN checks (one pass over ``eps``), for a caller that feeds the module its own
        nets' output (:class:`~conceptid.models.estimators.ContextModuleVAE`, whose loss the
        trainer watches for NaN).

        Raises
        ------
        UsageError
            One line naming what is wrong: ``eps`` not a ``(batch, K)`` tensor, targets that
            are not a 0/1 mask of one row per row of ``eps``; unless ``check_values`` is
            false, ``eps`` of another dtype, holding a NaN or infinite value, or on the meta
            device.
        """
        self._check_eps(eps)
        if check_values:
            self._check_values(eps=eps)
        targets = check_targets(targets, self.m, len(eps))
        col = targets[:, self.intervention.concept_of].to(eps.dtype)  # one mask for two layers
        u = self.intervention.apply_mask(eps, col)
        return self.causal.apply_mask(self.expressive(u), col)

    def forward(
        self, eps: torch.Tensor, nuisance: torch.Tensor, targets: torch.Tensor, *,
        check_values: bool = True,
    ):  # fmt: skip
        """``(representation (batch, out_dim + nuisance_dim), concepts (batch, K))``.

        ``eps`` ``(batch, K)`` and ``nuisance`` ``(batch, nuisance_dim)`` must be tensors in
        the module's dtype (not cast) with no NaN or infinite entry; ``targets`` a 0/1 mask
        ``(batch, m)``. ``check_values=False`` skips the dtype and NaN checks (see
        :meth:`concepts`).

        Raises
        ------
        UsageError
            One line naming what is wrong: as :meth:`concepts`, and ``nuisance`` not a
            ``(batch, nuisance_dim)`` tensor (with ``check_values``: of another dtype,
            holding a NaN or infinite value, or on the meta device).
        """
        self._check_eps(eps)
        want = (len(eps), self.nuisance_dim)
        if not isinstance(nuisance, torch.Tensor) or tuple(nuisance.shape) != want:
            got = tuple(nuisance.shape) if isinstance(nuisance, torch.Tensor) else type(
                nuisance).__name__  # fmt: skip
            raise UsageError(f"nuisance must be a tensor {want}, one row per row of eps, got "
                             f"{got}")  # fmt: skip
        if check_values:
            self._check_values(eps=eps, nuisance=nuisance)
        c = self.concepts(eps, targets, check_values=False)
        rep = torch.cat([self.representation(c), nuisance], dim=1)
        return rep, c

    def extra_repr(self) -> str:
        return f"m={self.m}, K={self.K}, nuisance_dim={self.nuisance_dim}"
