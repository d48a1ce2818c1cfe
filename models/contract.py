"""The one interface every estimator meets: :class:`Estimator`, written once.

An estimator is a ``torch.nn.Module`` with three required methods, four capability attributes
and five trainer hooks. :class:`EstimatorBase` supplies the documented default of every hook
(and the refusal of :meth:`~EstimatorBase.generate`), so an estimator writes only what it does
differently; :func:`conceptid.models.trainer.fit` calls the hooks directly, never guessing.

Required methods
----------------
``loss(batch, generator=None) -> (loss, logs)``
    The scalar training loss of a :class:`~conceptid.models.data.Batch` and a dict of floats to
    log; ``generator`` drives any sampling noise (reparameterisation), so a seeded fit is
    deterministic.
``concepts(x, targets=None) -> (b, K)``
    The learned concepts of observations ``x`` (no gradient). ``targets``, a ``(b, m)`` boolean
    mask, says which concepts each sample's context intervenes on; it matters only where
    :attr:`~Estimator.concepts_need_targets` is true, and ``None`` then reads every sample as
    observational (the empty target set). Before any work, ``x`` is held to
    :meth:`EstimatorBase.check_x` (a finite tensor ``(b, *obs_shape)`` in the model's dtype)
    and a mask that is read to :func:`check_targets` (``(b, m)``, 0/1): anything else raises
    :class:`~conceptid.simulations.errors.UsageError`.
``generate(targets, n=None, *, generator=None) -> (n, *obs_shape)``
    Samples of ``x`` in the model's units. ``targets`` is a ``(n, m)`` boolean mask, one target
    set per sample (a batch may mix them, and any set may be asked for, including ones never
    seen together in training), or one ``(m,)`` target set with ``n`` the number of samples.
    Where :attr:`~Estimator.can_intervene` is false the targets are accepted and ignored: the
    samples come from the model's one (pooled) law. Where :attr:`~Estimator.can_generate` is
    false it raises :class:`CapabilityError`.

Capabilities (plain attributes, or properties where a constructor argument decides)
-----------------------------------------------------------------------------------
``can_generate``
    ``generate`` works (the model has a decoder and a law to sample from).
``can_intervene``
    ``generate`` honours the targets (implies ``can_generate``). A caller that wants samples
    under interventions asks this first (:func:`conceptid.pipeline.sample` does).
``needs_labels``
    ``loss`` reads the batch's context labels (``targets`` or ``context``); false: it trains on
    ``x`` alone (the pooled VAE, the labels-ignored ablations).
``concepts_need_targets``
    ``concepts(x, targets)`` depends on ``targets``; false: the concepts are a context-free
    function of ``x`` and ``targets`` is ignored.

Trainer hooks (optional: :class:`EstimatorBase` holds each default)
-------------------------------------------------------------------
``prepare(train) -> None``
    The one data-dependent set-up, called by ``fit`` once before the first epoch of a fresh
    (not resumed) fit, with the training :class:`~conceptid.models.data.TensorData`. Whatever
    it sets must live in the state dict, so that a resumed fit has it. Default: nothing.
``epoch_end(epoch, train) -> bool``
    Called after each training epoch (``epoch`` counts from 0); returns whether the model changed
    its parametrisation or its objective (a stage switch, a snap, an unfreezing), in which case
    ``fit`` clears the optimiser state and restarts the best-model tracking. Default: ``False``.
``hold_early_stop() -> bool``
    True while the model is in a warm-up stage, whose loss is not the final objective: early
    stopping waits, and ``fit`` does not validate the epoch (its ``val_loss`` is ``None`` in the
    history; the value could neither stop the fit nor pick the model returned). Asked after each
    ``epoch_end``. Default: ``False``.
``selection_score(data) -> float | None``
    A quantity comparable across fits of different seeds, lower is better, by which
    :func:`conceptid.models.trainer.fit_restarts` keeps the best restart. Default: ``None``, and
    the best validation loss decides.
``stage_inputs(data) -> TensorData``
    The rows the loss reads in the model's current stage. ``fit`` calls it on the training and
    the validation data after ``prepare`` (or on resuming) and after every ``epoch_end`` that
    returned ``True``, and feeds the epochs from what it returns. A stage that reads a *frozen*
    function of ``x`` (the second step of a two-step fit reads the frozen encoder's latent)
    returns the data with that function computed once, as ``features``
    (:class:`~conceptid.models.data.TensorData`), instead of recomputing it in every batch of
    every epoch; ``loss`` then reads ``batch.features`` when it is set. Default: the data
    unchanged.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from conceptid.simulations.errors import ConceptIDError, UsageError
from conceptid.simulations.resources import check_memory
from conceptid.simulations.validation import check_number

from .data import Batch, TensorData

__all__ = [
    "CAPABILITIES",
    "HOOKS",
    "REQUIRED",
    "CapabilityError",
    "Estimator",
    "EstimatorBase",
    "check_estimator",
    "check_generator",
    "check_mask01",
    "check_not_meta",
    "check_observations",
    "check_sample_memory",
    "check_targets",
    "construction_options",
    "target_rows",
]

#: the capability attributes, the required methods and the trainer hooks, by name
CAPABILITIES = ("can_generate", "can_intervene", "needs_labels", "concepts_need_targets")
REQUIRED = ("loss", "concepts", "generate")
HOOKS = ("prepare", "epoch_end", "hold_early_stop", "selection_score", "stage_inputs")


class CapabilityError(ConceptIDError):
    """An estimator was asked for something it cannot do; the message names the capability
    attribute that says so (e.g. ``can_generate``)."""


@runtime_checkable
class Estimator(Protocol):
    """What :func:`~conceptid.models.trainer.fit`, the pipeline and the command line rely on
    (the module docstring documents each member). ``isinstance(model, Estimator)`` checks that
    every member is present."""

    can_generate: bool
    can_intervene: bool
    needs_labels: bool
    concepts_need_targets: bool

    def loss(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]: ...

    def concepts(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor: ...

    def generate(
        self, targets: torch.Tensor, n: int | None = None, *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor: ...  # fmt: skip

    def prepare(self, train: TensorData) -> None: ...

    def epoch_end(self, epoch: int, train: TensorData) -> bool: ...

    def hold_early_stop(self) -> bool: ...

    def selection_score(self, data: TensorData) -> float | None: ...

    def stage_inputs(self, data: TensorData) -> TensorData: ...


class EstimatorBase(nn.Module):
    """The defaults of the contract: every hook does nothing, and ``generate`` refuses.

    The capability defaults are the cautious ones (no generation, no interventions, labels
    needed, concepts that may depend on the targets); every estimator of the package sets all
    four for itself.
    """

    can_generate: bool = False
    can_intervene: bool = False
    needs_labels: bool = True
    concepts_need_targets: bool = True
    #: the shape of one observation, ``(p,)`` or ``(3, S, S)``, where the estimator knows it
    #: (every estimator of the package sets it): :meth:`check_x` then holds ``x`` to it
    obs_shape: tuple[int, ...] | None = None
    #: the fewest training rows the estimator can be fitted on
    #: (:func:`~conceptid.models.trainer.check_split` refuses fewer, before any work)
    min_training_rows: int = 1
    #: why, in a few words (the refusal says it)
    min_training_rows_reason: str = ""

    def __new__(cls, *args, **kwargs):
        # the arguments of the outermost constructor, defaults included, recorded before it runs
        # (a subclass's ``super().__init__`` does not pass through here): :meth:`options`
        self = super().__new__(cls)
        object.__setattr__(self, "_construction_options", _bound_options(cls, self, args, kwargs))
        return self

    def options(self) -> dict | None:
        """The arguments this estimator was constructed with, defaults included, as plain
        values (:func:`construction_options`): what, besides its tensors and its
        :func:`~conceptid.models.trainer.architecture`, determines what training makes of it
        (a loss weight, a schedule, a whitening power). Saved with every checkpoint and
        trained model, and compared when one is loaded. ``None`` when not known."""
        got = self.__dict__.get("_construction_options")
        return None if got is None else dict(got)

    def check_x(self, x, name: str = "x") -> torch.Tensor:
        """``x`` if this estimator can read it (:func:`check_observations`): a finite
        floating-point tensor; where :attr:`obs_shape` is set, of shape ``(b, *obs_shape)`` and
        in the dtype of the estimator's parameters (its encoder's, where it has one). Called
        by the entry points that take observations (``concepts`` and the like) and by
        :func:`~conceptid.models.trainer.fit` on both splits, before any work."""
        dtype = None
        if self.obs_shape is not None:
            net = getattr(self, "encoder", None)
            net = net if isinstance(net, nn.Module) else self
            dtype = next((p.dtype for p in net.parameters() if p.is_floating_point()), None)
        return check_observations(x, self.obs_shape, dtype, name)

    def standard_normal(self, *shape: int, generator: torch.Generator | None = None):
        """``N(0, I)`` draws of ``shape`` in the dtype and on the device of the estimator's
        parameters. They are drawn on the generator's device (the CPU without one) and then
        moved, so a seeded generator gives the same draws whatever device the model is on."""
        p = next((q for q in self.parameters() if q.is_floating_point()), None)
        dtype = torch.get_default_dtype() if p is None else p.dtype
        dev = torch.device("cpu") if generator is None else generator.device
        out = torch.randn(*shape, generator=generator, dtype=dtype, device=dev)
        return out if p is None else out.to(p.device)

    def generate(
        self, targets: torch.Tensor, n: int | None = None, *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """Refuse: this estimator cannot generate (``can_generate`` is false)."""
        raise CapabilityError(
            f"{type(self).__name__} cannot generate (its can_generate is False): it learns no "
            "law of x to sample from"
        )

    def prepare(self, train: TensorData) -> None:
        """No data-dependent set-up."""

    def epoch_end(self, epoch: int, train: TensorData) -> bool:
        """No schedule: nothing changes between epochs."""
        return False

    def hold_early_stop(self) -> bool:
        """No warm-up: early stopping never waits, every epoch is validated."""
        return False

    def selection_score(self, data: TensorData) -> float | None:
        """No score comparable across fits: restarts are compared by validation loss."""
        return None

    def stage_inputs(self, data: TensorData) -> TensorData:
        """Every stage reads the data as they are."""
        return data


def _fixed_signature(cls) -> inspect.Signature | None:
    """The signature of ``cls.__init__``, or None when it takes ``*args`` or ``**kwargs`` (the
    same model can then be asked for in ways that bind differently: its options cannot be
    told)."""
    sig = inspect.signature(cls.__init__)
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in sig.parameters.values()):
        return None
    return sig


def _bound_options(cls, self, args, kwargs) -> dict | None:
    """:func:`construction_options` of a constructor call, or None when they cannot be told
    exactly: a bare call (copy and unpickling call ``__new__`` without arguments; a bad call
    fails in ``__init__``), a constructor taking ``*args`` or ``**kwargs`` (the same model
    can be asked for in ways that bind differently), or an argument that cannot be shown.
    Recording never stops a model from being built."""
    try:
        sig = _fixed_signature(cls)
        if sig is None:
            return None
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        return construction_options(dict(list(bound.arguments.items())[1:]))
    except Exception:  # a binding error, or an argument beyond showing
        return None


def option_defaults(model) -> dict:
    """The defaults of ``model``'s constructor, as :func:`construction_options` shows values:
    what a release that did not have an option built (the model of a file that does not
    record it). Empty when they cannot be told (a constructor taking ``*args``/``**kwargs``,
    a default beyond showing)."""
    try:
        sig = _fixed_signature(type(model))
        if sig is None:
            return {}
        params = list(sig.parameters.values())[1:]  # without self
        return construction_options({p.name: p.default for p in params
                                     if p.default is not p.empty})  # fmt: skip
    except Exception:  # a default beyond showing
        return {}


def construction_options(arguments: dict) -> dict:
    """Constructor arguments as plain, comparable values: numbers, strings, ``None`` and lists
    and dicts of them as they are (a NaN as ``"nan"``, a set sorted); a given ``nn.Module`` by
    its class (its tensors and architecture are checked apart); an array or tensor by its
    shape, dtype and the SHA-256 of its bytes; anything else by its ``repr`` without object
    addresses. Raises ``RecursionError`` on a container that holds itself."""

    def plain(v):
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and v != v:
            return "nan"
        if v is None or isinstance(v, bool | int | float | str):
            return v
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        if isinstance(v, set | frozenset):
            return sorted((plain(x) for x in v), key=repr)
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, nn.Module):
            return f"given {type(v).__qualname__}"
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu()
            t = t.to_dense() if t.layout != torch.strided else t
            kind = str(t.dtype).removeprefix("torch.")
            v = t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
        else:
            kind = None
        if isinstance(v, np.ndarray):
            a = np.require(v, requirements="C")
            digest = hashlib.sha256(a.tobytes()).hexdigest()
            return f"array{list(a.shape)} {kind or a.dtype} {digest}"
        return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(v))

    return {str(k): plain(v) for k, v in arguments.items()}


def check_estimator(model: object) -> None:
    """Refuse (:class:`~conceptid.simulations.errors.UsageError`) a model that is not a
    ``torch.nn.Module`` meeting :class:`Estimator`, naming the members it lacks."""
    if not isinstance(model, nn.Module):
        raise UsageError(f"an estimator must be a torch.nn.Module, got {type(model).__name__}")
    missing = [k for k in (*CAPABILITIES, *REQUIRED, *HOOKS) if not hasattr(model, k)]
    if missing:
        raise UsageError(
            f"{type(model).__name__} is not an Estimator: it lacks {', '.join(missing)} "
            "(subclass conceptid.models.contract.EstimatorBase for the default hooks)"
        )


def check_not_meta(
    t: torch.Tensor, name: str, hint: str = "give a tensor with data (on cpu or the model's device)"
) -> None:
    """Refuse a tensor on the ``meta`` device, which has a shape but no values (nothing can be
    computed from it, nor moved off it): :class:`~conceptid.simulations.errors.UsageError`
    naming ``name`` and the device. The one device check of the tensors a model is given
    (observations, target masks, a model's own parameters in
    :func:`~conceptid.models.trainer.fit`); ``hint`` says what to do instead."""
    if t.device.type == "meta":
        raise UsageError(f"{name} is on the meta device, which holds shapes but no values: "
                         f"{hint}")  # fmt: skip


def check_generator(generator: object) -> None:
    """Refuse a ``generator`` (of ``generate`` and the like) that is neither ``None`` nor a
    ``torch.Generator`` (a seed is not one: ``torch.Generator().manual_seed(seed)`` makes
    one): :class:`~conceptid.simulations.errors.UsageError` naming its type."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise UsageError(f"generator must be a torch.Generator (or None), got "
                         f"{type(generator).__name__}; torch.Generator().manual_seed(seed) "
                         "makes one from a seed")  # fmt: skip


def check_sample_memory(rows: int, width: int, obs_shape: tuple[int, ...]) -> None:
    """Refuse (:class:`~conceptid.simulations.resources.MemoryLimitError`) drawing ``rows``
    samples of ``obs_shape`` under target masks of ``width`` concepts when they would not fit
    in memory: the masks, and the samples in float32 counted three times for the decoder's
    work. The check of :func:`target_rows` (every ``generate``) and of
    :meth:`~conceptid.models.mle.ManifoldEstimator.generate_from_data`, before any
    allocation of that size."""
    check_memory(rows * (width + 12 * int(np.prod(obs_shape))), f"generating {rows} samples")


def check_mask01(mask: torch.Tensor, name: str = "targets") -> None:
    """Refuse a target mask with an entry that is neither 0 nor 1 (bool, integer or float
    masks are taken), or on the meta device (:func:`check_not_meta`):
    :class:`~conceptid.simulations.errors.UsageError` naming ``name``."""
    check_not_meta(mask, name)
    if mask.dtype == torch.bool:  # nothing else to hold, and nothing to compute per batch
        return
    if mask.is_complex() or not ((mask == 0) | (mask == 1)).all():
        raise UsageError(f"{name} must be a 0/1 mask (an entry is neither 0 nor 1)")


def check_targets(
    targets: torch.Tensor, m: int | None = None, rows: int | None = None, name: str = "targets"
) -> torch.Tensor:
    """``targets`` as a ``(rows, m)`` boolean mask: one target set per sample.

    The one check of every per-sample mask a model reads (``concepts``, the context module
    and the priors, the data ``fit`` trains on): a ``torch.Tensor`` of two dimensions, ``m``
    columns (when given), ``rows`` rows (when given: one per sample of ``x``), every entry 0
    or 1 (bool, integer or float). Raises :class:`~conceptid.simulations.errors.UsageError`,
    one line naming ``name``, otherwise; a 0.5 is refused, never read as intervened."""
    want = f"a (batch, {'m' if m is None else m}) 0/1 mask, one row per sample" + (
        "" if rows is None else f" ({rows} here)")  # fmt: skip
    if not isinstance(targets, torch.Tensor):
        raise UsageError(f"{name} must be {want} (a torch.Tensor), got "
                         f"{type(targets).__name__}")  # fmt: skip
    if (targets.dim() != 2 or (m is not None and targets.shape[1] != m)
            or (rows is not None and targets.shape[0] != rows)):  # fmt: skip
        raise UsageError(f"{name} must be {want}, got {tuple(targets.shape)}")
    check_mask01(targets, name)
    return targets.to(torch.bool)


def check_observations(
    x, obs_shape: tuple[int, ...] | None = None, dtype: torch.dtype | None = None,
    name: str = "x",
) -> torch.Tensor:  # fmt: skip
    """``x`` if a model can read it as a batch of observations; else
    :class:`~conceptid.simulations.errors.UsageError`, one line naming ``name`` and what is
    wrong.

    Refused: anything but a ``torch.Tensor``; a tensor on the meta device
    (:func:`check_not_meta`); another shape than ``(b, *obs_shape)`` (when ``obs_shape`` is
    given; without it, a tensor of fewer than two dimensions); a dtype that is not floating
    point, or not ``dtype`` (when given: x is not converted, since a silent cast would hide
    which precision the results are in; ``x.to(dtype)`` converts it); a NaN or infinite
    entry. The cost is one pass of ``isfinite`` over ``x``."""
    dims = ", ".join(["N", *(("...",) if obs_shape is None else map(str, obs_shape))])
    if not isinstance(x, torch.Tensor):
        raise UsageError(f"{name} must be a tensor ({dims}), got {type(x).__name__}")
    check_not_meta(x, name)
    if x.dim() < 2 if obs_shape is None else tuple(x.shape[1:]) != tuple(obs_shape):
        raise UsageError(f"{name} must be a tensor ({dims}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise UsageError(f"{name} must be floating point, got {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        ref = name if name.isidentifier() else "x"  # "eps.to", else the data's "x.to"
        raise UsageError(f"{name} is {x.dtype}, the model {dtype}: convert it with "
                         f"{ref}.to({dtype})")  # fmt: skip
    bad = ~torch.isfinite(x)
    if bad.any():
        raise UsageError(f"{name} holds {int(bad.sum())} NaN or infinite value(s) of "
                         f"{x.numel()}")  # fmt: skip
    return x


def target_rows(targets, n: int | None = None, m: int | None = None,
                obs_shape: tuple[int, ...] | None = None) -> torch.Tensor:  # fmt: skip
    """The per-sample target masks ``(n, m)`` of ``generate(targets, n)``.

    ``targets``: a ``(b, m)`` mask, returned as it is (``n``, when given, must equal ``b``); or
    one ``(m,)`` target set, repeated for ``n`` samples. ``m``, when given, is the number of
    concepts the model knows. Every entry must be 0 or 1 (bool, integer or float). Raises
    :class:`~conceptid.simulations.errors.UsageError` naming what is wrong, and
    :class:`~conceptid.simulations.resources.MemoryLimitError` when the samples (of
    ``obs_shape``, float32, counted three times for the decoder's work) would not fit in memory.
    """
    try:
        t = torch.as_tensor(targets)
    except (TypeError, ValueError, RuntimeError):
        raise UsageError(f"targets must be a 0/1 mask (a tensor, array or nested list), got "
                         f"{type(targets).__name__}") from None  # fmt: skip
    check_mask01(t)
    if n is not None:
        n = check_number(n, "n (the number of samples)")
    if obs_shape is not None:  # before any allocation of that size, the masks' included
        rows = n if t.dim() == 1 and n is not None else t.shape[0] if t.dim() else 0
        check_sample_memory(rows, t.shape[-1] if t.dim() else 0, obs_shape)
    if t.dim() == 1:
        if n is None:
            raise UsageError("one target set (m,) needs n, the number of samples to generate")
        t = t.unsqueeze(0).repeat(n, 1)
    elif t.dim() != 2:
        raise UsageError(f"targets must be a (n, m) mask or one (m,) target set, got shape "
                         f"{tuple(t.shape)}")  # fmt: skip
    elif n is not None and n != t.shape[0]:
        raise UsageError(f"n = {n} disagrees with the {t.shape[0]} rows of the targets mask")
    if m is not None and t.shape[1] != m:
        raise UsageError(f"targets must name {m} concepts per sample, got {t.shape[1]}")
    return t
