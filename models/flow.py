"""An invertible map of ``R^D`` with a tractable Jacobian: affine coupling layers (RealNVP,
Dinh, Sohl-Dickstein and Bengio 2017) followed by one free linear layer, the ``head``.

Used by :class:`~conceptid.models.mle.LatentFlowMLE` to carry an autoencoder's latent to the
concepts. The
head is the layer a peeling snap rewrites (an affine reparametrisation of the output), so the
flow's linear part can be set in closed form while the couplings learn the nonlinear part.
"""

from __future__ import annotations

import torch
from torch import nn

from .nets import mlp

__all__ = ["AffineCoupling", "LatentFlow"]


class AffineCoupling(nn.Module):
    """``y = x`` on the coordinates where ``mask`` is 1; elsewhere ``y = x * exp(s) + t`` with
    ``(s, t) = net(x * mask)``, ``s`` soft-clamped to ``(-clamp, clamp)``. The net's last layer
    starts at zero, so the layer starts as the identity. ``(b, D) -> (b, D)``, with
    ``log |det dy/dx| = sum s`` ``(b,)``. ``activation``: the net's
    (:data:`~conceptid.models.nets.ACTIVATIONS`); a piecewise-linear one gives the layer kinks,
    a smooth one only approximates them."""

    def __init__(self, mask: torch.Tensor, hidden: int = 64, clamp: float = 2.0,
                 activation: str = "silu") -> None:  # fmt: skip
        super().__init__()
        self.register_buffer("mask", mask.float())
        D = len(mask)
        self.net = mlp([D, hidden, hidden, 2 * D], activation)
        with torch.no_grad():
            self.net[-1].weight.zero_()
            self.net[-1].bias.zero_()
        self.clamp = float(clamp)

    def extra_repr(self) -> str:
        return f"D={len(self.mask)}, fixed={int(self.mask.sum())}, clamp={self.clamp}"

    def _shift_scale(self, fixed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.net(fixed).chunk(2, dim=1)
        free = 1 - self.mask
        return self.clamp * torch.tanh(s / self.clamp) * free, t * free

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self._shift_scale(x * self.mask)
        return x * torch.exp(s) + t, s.sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        s, t = self._shift_scale(y * self.mask)
        return (y - t) * torch.exp(-s)


class LatentFlow(nn.Module):
    """``u = head(coupling_L(... coupling_1(z)))``: ``n_layers`` couplings, each fixing a random
    half of the coordinates (from ``seed``, so a model is rebuilt identically), then a linear
    ``head`` (``D x D``, starts at the identity). ``forward`` returns ``u`` and
    ``log |det du/dz|`` ``(b,)``; :meth:`inverse` is exact. ``activation``: the couplings' nets'
    (:class:`AffineCoupling`)."""

    def __init__(self, D: int, n_layers: int = 6, hidden: int = 64, seed: int = 0,
                 activation: str = "silu") -> None:  # fmt: skip
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        layers = []
        for _ in range(n_layers):
            mask = torch.zeros(D)
            mask[torch.randperm(D, generator=g)[: D // 2]] = 1
            layers.append(AffineCoupling(mask, hidden, activation=activation))
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(D, D)
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(D))
            self.head.bias.zero_()

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        for layer in self.layers:
            z, s = layer(z)
            logdet = logdet + s
        return self.head(z), logdet + torch.linalg.slogdet(self.head.weight)[1]

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        z = torch.linalg.solve(self.head.weight, (u - self.head.bias).T).T
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z
