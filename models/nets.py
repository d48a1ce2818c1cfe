"""Encoders and decoders: MLPs for vectors, small conv nets for 32x32 and 64x64 RGB images.

Every encoder maps ``x`` to ``(mean, log_var)`` of a diagonal Gaussian over ``latent_dim``
coordinates; every decoder maps a latent ``(b, latent_dim)`` to the mean (Gaussian likelihood) or
the logits (Bernoulli likelihood) of ``x``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ConvDecoder", "ConvEncoder", "MLPDecoder", "MLPEncoder", "make_nets"]


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), nn.SiLU()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """``(b, p)`` -> mean, log-variance ``(b, latent_dim)`` each."""

    def __init__(self, in_dim: int, latent_dim: int, hidden: Sequence[int] = (128, 128)) -> None:
        super().__init__()
        self.net = _mlp([in_dim, *hidden, 2 * latent_dim])
        self.latent_dim = latent_dim

    def forward(self, x: torch.Tensor):
        h = self.net(x.flatten(1))
        return h[:, : self.latent_dim], h[:, self.latent_dim :].clamp(-12, 8)


class MLPDecoder(nn.Module):
    """``(b, latent_dim)`` -> ``(b, p)``."""

    def __init__(self, latent_dim: int, out_dim: int, hidden: Sequence[int] = (128, 128)) -> None:
        super().__init__()
        self.net = _mlp([latent_dim, *hidden, out_dim])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ConvEncoder(nn.Module):
    """``(b, 3, S, S)`` with ``S`` 32 or 64 -> mean, log-variance."""

    def __init__(self, size: int, latent_dim: int, width: int = 32) -> None:
        super().__init__()
        if size not in (32, 64):
            raise ValueError(f"image size must be 32 or 64, got {size}")
        n_down = 3 if size == 32 else 4
        layers: list[nn.Module] = []
        c = 3
        for i in range(n_down):
            layers += [nn.Conv2d(c, width * 2 ** min(i, 2), 4, 2, 1), nn.SiLU()]
            c = width * 2 ** min(i, 2)
        self.conv = nn.Sequential(*layers)
        self.head = nn.Linear(c * 4 * 4, 2 * latent_dim)
        self.latent_dim = latent_dim

    def forward(self, x: torch.Tensor):
        h = self.head(self.conv(x).flatten(1))
        return h[:, : self.latent_dim], h[:, self.latent_dim :].clamp(-12, 8)


class ConvDecoder(nn.Module):
    """``(b, latent_dim)`` -> ``(b, 3, S, S)``."""

    def __init__(self, latent_dim: int, size: int, width: int = 32) -> None:
        super().__init__()
        if size not in (32, 64):
            raise ValueError(f"image size must be 32 or 64, got {size}")
        n_up = 3 if size == 32 else 4
        chans = [width * 2 ** min(i, 2) for i in range(n_up)][::-1]
        self.fc = nn.Linear(latent_dim, chans[0] * 4 * 4)
        layers: list[nn.Module] = []
        for a, b in zip(chans, chans[1:] + [3]):
            layers += [nn.SiLU(), nn.ConvTranspose2d(a, b, 4, 2, 1)]
        self.deconv = nn.Sequential(*layers)
        self.c0 = chans[0]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.fc(z).view(-1, self.c0, 4, 4))


def make_nets(obs_shape: Sequence[int], latent_dim: int, hidden: int = 128):
    """An encoder/decoder pair for vectors ``(p,)`` or images ``(3, S, S)``."""
    if len(obs_shape) == 1:
        p = int(obs_shape[0])
        return MLPEncoder(p, latent_dim, (hidden, hidden)), MLPDecoder(
            latent_dim, p, (hidden, hidden)
        )
    if len(obs_shape) == 3 and obs_shape[0] == 3:
        return ConvEncoder(obs_shape[1], latent_dim), ConvDecoder(latent_dim, obs_shape[1])
    raise ValueError(f"obs_shape must be (p,) or (3, S, S), got {tuple(obs_shape)}")
