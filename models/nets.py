"""Encoders and decoders: MLPs for vectors, small conv nets for 32x32 and 64x64 RGB images.

Every encoder maps ``x`` to ``(mean, log_var)`` of a diagonal Gaussian over ``latent_dim``
coordinates; every decoder maps a latent ``(b, latent_dim)`` to the mean (Gaussian likelihood) or
the logits (Bernoulli likelihood) of ``x``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from conceptid.simulations.errors import UsageError
from conceptid.simulations.resources import check_memory
from conceptid.simulations.validation import check_number

__all__ = [
    "ACTIVATIONS",
    "IMAGE_SIZES",
    "ConvDecoder",
    "ConvEncoder",
    "MLPDecoder",
    "MLPEncoder",
    "check_activation",
    "check_block_sizes",
    "check_nets",
    "check_obs_shape",
    "check_size",
    "make_nets",
    "mlp",
]

#: the image sizes the conv nets take
IMAGE_SIZES = (32, 64)


def check_obs_shape(obs_shape: object, *, own_nets: bool = False) -> tuple[int, ...]:
    """``obs_shape`` as a tuple of ints; raises UsageError naming it otherwise.

    The built-in nets take ``(p,)`` with ``p >= 1`` or ``(3, S, S)`` with ``S`` in
    :data:`IMAGE_SIZES`; with ``own_nets`` (the caller's encoder and decoder) any non-empty shape
    of positive integers is accepted."""
    try:
        shape = tuple(obs_shape)
    except TypeError:
        raise UsageError(f"obs_shape must be (p,) or (3, S, S), got {obs_shape!r}") from None
    if own_nets and shape:
        return tuple(check_number(s, "each entry of obs_shape") for s in shape)
    if len(shape) == 1:
        return (check_number(shape[0], "obs_shape[0] (p)"),)
    if len(shape) == 3 and shape[0] == 3 and shape[1] == shape[2] and shape[1] in IMAGE_SIZES:
        return tuple(int(s) for s in shape)
    raise UsageError(
        f"obs_shape must be (p,) or (3, S, S) with S in {IMAGE_SIZES}, got {obs_shape!r}"
    )


def check_size(n_values: int, what: str) -> None:
    """Refuse a model whose parameters cannot fit in memory, before torch allocates them.

    ``n_values`` float32 parameters are counted four times (values, gradients and the two
    moments of Adam); the limit is :func:`conceptid.simulations.resources.memory_limit`'s.

    Raises
    ------
    MemoryLimitError
        Naming ``what``, with the estimate in GiB.
    """
    check_memory(16 * n_values, what)


def _dims(shape: Sequence[int]) -> str:
    return f"(batch, {', '.join(str(int(s)) for s in shape)})"


def _has_shape(t: object, shape: tuple[int, ...]) -> bool:
    return isinstance(t, torch.Tensor) and tuple(t.shape) == shape


def _shapes(out: object):
    """What a net returned, for a message: the shape of a tensor, of each element of a tuple."""
    if isinstance(out, tuple):
        return [_shapes(t) for t in out]
    return tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__


@torch.no_grad()
def _dry_run(net: object, in_shape: tuple[int, ...], role: str, want: str):
    """``net`` on two zero inputs of ``in_shape`` (in the dtype and on the device of its
    first floating-point parameter, in eval mode, its mode restored after): its output, or
    UsageError naming ``want`` and what the net raised."""
    if not isinstance(net, nn.Module):
        raise UsageError(f"the {role} must be a torch.nn.Module, got {type(net).__name__}")
    p = next((q for q in net.parameters() if q.is_floating_point()), None)
    dtype = torch.get_default_dtype() if p is None else p.dtype
    was = net.training
    net.eval()  # no batch statistics recorded from the zeros
    try:
        return net(torch.zeros(2, *in_shape, dtype=dtype, device=None if p is None else p.device))
    except Exception as err:  # a net given the wrong width raises whatever its layers raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise UsageError(f"the {role} must return {want}; on a {(2, *in_shape)} input it "
                         f"raised {type(err).__name__}: {first}") from None  # fmt: skip
    finally:
        net.train(was)


def check_nets(
    encoder: nn.Module, decoder: nn.Module, obs_shape: Sequence[int], latent_dim: int,
    decoder_in: int | None = None, *, pair: bool = False,
) -> None:  # fmt: skip
    """A dry run of your own encoder and decoder on two zero inputs, before any training.

    The encoder must map ``(b, *obs_shape)`` to ``(b, latent_dim)`` (``latent_dim = K +
    nuisance_dim``): with ``pair``, as a tuple ``(mean, log_var)`` of two such tensors (the
    VAEs); otherwise as one tensor or a tuple whose first element is that tensor (the manifold
    estimators). The decoder must map ``(b, decoder_in)`` (``latent_dim`` when not given) to
    ``(b, *obs_shape)``. Each net runs in its own dtype and on its own device.

    Raises
    ------
    UsageError
        One line naming the net, the shapes it must map between and what it returned or
        raised (a net that is not an ``nn.Module`` included).
    """
    obs_shape = tuple(int(s) for s in obs_shape)
    D = int(latent_dim)
    d_in = D if decoder_in is None else int(decoder_in)
    if pair:
        want = f"(mean, log_var), each (batch, {D}) = (batch, K + nuisance_dim)"
    else:
        want = (f"(batch, {D}) = (batch, K + nuisance_dim) from {_dims(obs_shape)} (a tensor, "
                "or a tuple whose first element is it)")  # fmt: skip
    out = _dry_run(encoder, obs_shape, "encoder", want)
    if pair:
        ok = isinstance(out, tuple) and len(out) == 2 and all(_has_shape(t, (2, D)) for t in out)
    else:
        ok = _has_shape(out[0] if isinstance(out, tuple) and out else out, (2, D))
    if not ok:
        raise UsageError(f"the encoder must return {want}; got {_shapes(out)}")
    want = f"{_dims(obs_shape)} from (batch, {d_in})"
    x = _dry_run(decoder, (d_in,), "decoder", want)
    if not _has_shape(x, (2, *obs_shape)):
        raise UsageError(f"the decoder must return {want}; got {_shapes(x)}")


def check_block_sizes(block_sizes: object) -> tuple[int, ...]:
    """``block_sizes`` as a tuple of positive ints (at least one); raises UsageError otherwise."""
    if isinstance(block_sizes, str | bytes) or not hasattr(block_sizes, "__iter__"):
        raise UsageError(
            f"block_sizes must be a sequence of positive integers, got {block_sizes!r}"
        )
    sizes = tuple(check_number(k, "each block size") for k in block_sizes)
    if not sizes:
        raise UsageError("block_sizes must name at least one concept, got an empty sequence")
    return sizes


#: the activations an MLP may use between its linear layers: ``silu`` (smooth, the default);
#: ``prelu`` (one learned negative slope per unit, starting at 0.25) and ``leaky_relu`` (slope
#: 0.2) are piecewise linear, so a net of them is a piecewise-linear map, kinks included
ACTIVATIONS = ("silu", "prelu", "leaky_relu")


def check_activation(activation: object, what: str = "activation") -> str:
    """``activation`` if it is one of :data:`ACTIVATIONS`, else ``UsageError`` naming ``what``."""
    if activation not in ACTIVATIONS:
        raise UsageError(f"{what} must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    return str(activation)


def _activation(name: str, width: int) -> nn.Module:
    if name == "prelu":
        return nn.PReLU(width, init=0.25)
    return nn.LeakyReLU(0.2) if name == "leaky_relu" else nn.SiLU()


def mlp(sizes: Sequence[int], activation: str = "silu") -> nn.Sequential:
    """Linear layers of the given ``sizes`` (input, hidden..., output) with ``activation`` (one
    of :data:`ACTIVATIONS`) between them."""
    check_activation(activation)
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), _activation(activation, b)]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """``(b, p)`` -> mean, log-variance ``(b, latent_dim)`` each."""

    def __init__(self, in_dim: int, latent_dim: int, hidden: Sequence[int] = (128, 128)) -> None:
        super().__init__()
        self.net = mlp([in_dim, *hidden, 2 * latent_dim])
        self.latent_dim = latent_dim

    def forward(self, x: torch.Tensor):
        h = self.net(x.flatten(1))
        return h[:, : self.latent_dim], h[:, self.latent_dim :].clamp(-12, 8)


class MLPDecoder(nn.Module):
    """``(b, latent_dim)`` -> ``(b, p)``."""

    def __init__(self, latent_dim: int, out_dim: int, hidden: Sequence[int] = (128, 128)) -> None:
        super().__init__()
        self.net = mlp([latent_dim, *hidden, out_dim])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ConvEncoder(nn.Module):
    """``(b, 3, S, S)`` with ``S`` 32 or 64 -> mean, log-variance."""

    def __init__(self, size: int, latent_dim: int, width: int = 32) -> None:
        super().__init__()
        if size not in (32, 64):
            raise UsageError(f"image size must be 32 or 64, got {size}")
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
            raise UsageError(f"image size must be 32 or 64, got {size}")
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
    """An encoder/decoder pair for vectors ``(p,)`` or images ``(3, S, S)``; raises UsageError
    for another shape or a size that is not a positive integer."""
    obs_shape = check_obs_shape(obs_shape)
    latent_dim, hidden = check_number(latent_dim, "latent_dim"), check_number(hidden, "hidden")
    p = math.prod(obs_shape) if len(obs_shape) == 1 else 128 * 4 * 4  # the conv nets' head
    check_size(2 * (p * hidden + hidden * hidden + 3 * hidden * latent_dim),
               f"nets for {obs_shape} observations and {latent_dim} latents")  # fmt: skip
    if len(obs_shape) == 1:
        p = int(obs_shape[0])
        return MLPEncoder(p, latent_dim, (hidden, hidden)), MLPDecoder(
            latent_dim, p, (hidden, hidden)
        )
    if len(obs_shape) == 3 and obs_shape[0] == 3:
        return ConvEncoder(obs_shape[1], latent_dim), ConvDecoder(latent_dim, obs_shape[1])
    raise UsageError(f"obs_shape must be (p,) or (3, S, S), got {tuple(obs_shape)}")
