"""One plain-torch training loop for every estimator (read it in one sitting).

Adam; linear warm-up then cosine decay of the learning rate; early stopping on validation loss
with the best weights restored; atomic checkpoints (model, optimiser, step, config, seeds) after
every epoch and resume from them; a tqdm progress bar with running losses; deterministic under a
seed (a ``torch.Generator`` drives shuffling and reparameterisation noise; the initial weights are
drawn at construction, before the seed is seen: :class:`TrainConfig`). CPU by default. Data that
cannot be trained on (empty, the wrong shape or dtype, NaN or infinite values, targets that are
not 0/1) and an unusable device are refused before any work.

Every checkpoint carries the settings that determine the fit (:meth:`TrainConfig.settings`) and
their hash; one written under other settings (another dataset, seed, budget...) is refused, naming
what differs, rather than resumed. A NaN or infinite loss stops training with
:class:`TrainingDivergedError`; the last good checkpoint stays on disk.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
from torch import nn

from conceptid.simulations.atomic import atomic_path
from conceptid.simulations.errors import ConceptIDError, UsageError
from conceptid.simulations.validation import check_number, torch_seed

from .contract import (
    Estimator,
    EstimatorBase,
    check_estimator,
    check_not_meta,
    check_observations,
    check_targets,
    option_defaults,
)
from .data import TensorData

__all__ = [
    "CheckpointError",
    "TrainConfig",
    "TrainingDivergedError",
    "architecture",
    "architecture_difference",
    "check_config",
    "check_device",
    "check_parameters",
    "check_split",
    "model_options",
    "options_difference",
    "saved_options_difference",
    "restart_config",
    "best_validation_loss",
    "evaluate_loss",
    "fit",
    "check_training_rows",
    "fit_restarts",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "settings_difference",
    "settings_key",
]


class CheckpointError(ConceptIDError):
    """A checkpoint is missing, corrupted, or does not belong to this model/config."""


class TrainingDivergedError(ConceptIDError):
    """The training or validation loss became NaN or infinite: training stopped (the message
    names the epoch and batch), and the checkpoint of the last finished epoch was kept."""


def check_device(name, flag: str = "device") -> torch.device:
    """``name`` as a ``torch.device`` this torch can train on; refuse anything else.

    ``flag`` names the setting in the messages (the command line passes ``"--device"``).

    Raises
    ------
    UsageError
        One line, for a string torch does not parse as a device, CUDA on a CPU-only build or
        with no GPU visible (or an index beyond the visible ones), MPS where it is not
        available, and any other device type (the trainer runs on cpu, cuda and mps only).
    """
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(f"{flag} {name!r} is not a device; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cpu":
        if dev.index:  # torch parses cpu:1, but there is one CPU device
            raise UsageError(f"{flag} {name}: the CPU is one device, cpu (or cpu:0)")
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "a CPU-only build" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise UsageError(f"{flag} {name}: this torch {torch.__version__} cannot use CUDA "
                             f"({why}); use {flag} cpu")  # fmt: skip
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise UsageError(f"{flag} {name}: {count} CUDA device(s) visible, cuda:0 to "
                             f"cuda:{count - 1}")  # fmt: skip
        return dev
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError(f"{flag} {name}: MPS (Apple GPU) is not available here; use "
                             f"{flag} cpu")  # fmt: skip
        return dev
    raise UsageError(f"{flag} {name}: only cpu, cuda, cuda:N and mps are supported")


@dataclass
class TrainConfig:
    """Everything the loop needs; recorded in every checkpoint.

    ``extra``: whatever else determines the fit that the loop does not see (a caller puts the
    dataset's hash and the method here); part of :meth:`settings`.

    ``seed`` drives what happens inside :func:`fit`: torch's global generator is seeded with
    it, and a ``torch.Generator`` of its own shuffles the batches and draws the
    reparameterisation noise. It does not cover the model's initial weights, drawn when the
    model is constructed (from torch's global generator, before ``fit`` runs): for
    bit-identical fits call ``torch.manual_seed(seed)`` before constructing the model
    (:func:`fit_restarts` does so for each restart), on the same device and number of threads.

    ``device`` is refused at construction (:func:`check_device`) unless this torch can use it.

    Raises
    ------
    UsageError
        At construction, one line naming the field: ``epochs``, ``batch_size``, ``patience``
        not positive integers, ``warmup_epochs`` or ``seed`` not non-negative integers; ``lr``
        not a positive finite number; ``weight_decay`` not a non-negative finite number;
        ``threads`` neither ``None`` nor a positive integer (a bool or a float refused);
        ``checkpoint`` neither ``None`` nor a path (``str`` or ``os.PathLike``); an unusable
        ``device``; ``extra`` not a dict, or repeating a field.
    """

    epochs: int = 100
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup_epochs: int = 5
    patience: int = 20
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    progress: bool = True
    checkpoint: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "warmup_epochs", "patience"):
            check_number(getattr(self, name), name, minimum=0 if name == "warmup_epochs" else 1)
        check_number(self.lr, "lr", integer=False, minimum=0, exclusive=True)
        check_number(self.weight_decay, "weight_decay", integer=False, minimum=0)
        check_number(self.seed, "seed", minimum=0)  # of any size: torch gets torch_seed of it
        if self.threads is not None:
            check_number(self.threads, "threads (None: torch's default)")
        if self.checkpoint is not None and not isinstance(self.checkpoint, str | os.PathLike):
            raise UsageError(f"checkpoint must be None or a path (a str or os.PathLike), got "
                             f"{type(self.checkpoint).__name__}")  # fmt: skip
        check_device(self.device)
        if not isinstance(self.extra, dict):
            raise UsageError(f"extra must be a dict, got {type(self.extra).__name__}")
        own = sorted(set(self.extra) & {f.name for f in fields(self)})
        if own:  # settings() would let them overwrite the fields themselves
            raise UsageError(f"extra may not repeat a setting of its own: {own}")

    def settings(self) -> dict:
        """What determines the fitted weights: every field but ``progress``, ``checkpoint`` and
        ``threads``, the device by its type (``cuda:0`` and ``cuda:1`` compute alike, ``cpu``
        and ``cuda`` do not), and ``extra``."""
        out = {k: v for k, v in asdict(self).items()
               if k not in ("progress", "checkpoint", "threads", "extra")}  # fmt: skip
        out["device"] = torch.device(self.device).type
        out.update(self.extra)
        return out


def settings_key(settings: dict) -> str:
    """SHA-256 of the settings' canonical JSON: equal exactly when every setting is equal."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def _show(v) -> str:
    return f"{v[:12]}..." if isinstance(v, str) and len(v) == 64 else repr(v)  # a hash: its head


def settings_difference(old: dict | None, new: dict) -> str:
    """``epochs 2 -> 3, seed 0 -> 1``: the settings that differ (``old`` recorded in a file,
    ``new`` asked for now), or a note that the file records none."""
    if not isinstance(old, dict):
        return "it records no training settings (written by an older conceptid)"
    keys = sorted(set(old) | set(new), key=lambda k: (k not in new, k))
    return ", ".join(f"{k} {_show(old.get(k))} -> {_show(new.get(k))}"
                     for k in keys if old.get(k) != new.get(k))  # fmt: skip


def _lr_factor(epoch: float, cfg: TrainConfig) -> float:
    if epoch < cfg.warmup_epochs:
        return (epoch + 1) / (cfg.warmup_epochs + 1)
    t = (epoch - cfg.warmup_epochs) / max(1, cfg.epochs - cfg.warmup_epochs)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


@torch.no_grad()
def evaluate_loss(model, data: TensorData, batch_size: int, generator: torch.Generator) -> float:
    """Mean loss over ``data`` (fixed noise from ``generator``)."""
    model.eval()
    total, n = 0.0, 0
    for batch in data.batches(batch_size, shuffle=False):
        loss, _ = model.loss(batch, generator)
        total += loss.item() * len(batch)
        n += len(batch)
    return total / max(n, 1)


def best_validation_loss(history: dict) -> float | None:
    """The lowest validation loss of a :func:`fit` history, or ``None`` when no epoch was
    validated (the epochs of a warm-up stage record ``None``)."""
    validated = [v for v in history.get("val_loss") or [] if v is not None]
    return min(validated) if validated else None


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` (a dict of tensors and plain values) to ``path`` atomically: a reader
    sees the old file or the whole new one, never a part."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_checkpoint(path: Path) -> dict:
    """The contents of the conceptid checkpoint (or saved model) ``path``; refuses
    (:class:`CheckpointError`, one line naming the file) a path that does not exist or is a
    directory, and a damaged or foreign file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist (a trained model is "
                              "RUN/models/METHOD/final.pt)")  # fmt: skip
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a trained model's file (a trained "
                              "model is RUN/models/METHOD/final.pt)")  # fmt: skip
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises several types for a damaged file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"checkpoint {path} is corrupted or unreadable: {first}") from None
    if not isinstance(state, dict) or "model" not in state or "model_class" not in state:
        raise CheckpointError(f"{path} is not a conceptid checkpoint")
    settings, key = state.get("settings"), state.get("key")
    if key is not None and isinstance(settings, dict) and _key_of(settings) != key:
        # a file whose settings were changed and its key kept: which of the two the weights
        # were trained under cannot be told, so neither is believed
        raise CheckpointError(f"{path} records settings that do not match their own key (the "
                              "file was edited?); it cannot be trusted")  # fmt: skip
    return state


def _key_of(settings: dict) -> str | None:
    """:func:`settings_key`, or None for settings JSON cannot write."""
    try:
        return settings_key(settings)
    except (TypeError, ValueError):
        return None


def _shape_mismatch(model, saved: dict) -> str:
    """One line on how the tensors in ``saved`` differ from ``model``'s (empty: they fit)."""
    own = model.state_dict()
    if not isinstance(saved, dict):
        return "it holds no state dict"
    wrong = [k for k in own if k in saved and tuple(own[k].shape) != tuple(saved[k].shape)]
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    parts = []
    if wrong:
        k = wrong[0]
        got, want = tuple(saved[k].shape), tuple(own[k].shape)
        parts.append(f"{len(wrong)} tensor(s) of other shapes (first {k}: {got} in the file, "
                     f"{want} here)")  # fmt: skip
    if missing:
        parts.append(f"{len(missing)} missing (first {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]})")
    return ", ".join(parts)


def architecture(model: nn.Module) -> list[str]:
    """What the shapes of a model's tensors do not tell: one line per module, ``path: Class``,
    with the settings of modules that hold no parameters of their own (an activation and its
    slope, a coupling's mask size and clamp) in brackets, object addresses removed. A SiLU and
    a leaky-ReLU net hold the same tensors and differ here; a layer with parameters is left to
    the shape check, so the lines do not depend on how PyTorch prints a ``Linear``. Saved in
    every checkpoint and saved model."""
    lines = []
    for name, module in model.named_modules():
        line = f"{name or '(model)'}: {type(module).__qualname__}"
        if not any(True for _ in module.parameters(recurse=False)) and module.extra_repr():
            line += f"({re.sub(r' at 0x[0-9a-fA-F]+', '', module.extra_repr())})"
        lines.append(line)
    return lines


def model_options(model) -> dict | None:
    """The options ``model`` was constructed with
    (:meth:`~conceptid.models.contract.EstimatorBase.options`), or ``None`` for an estimator
    that does not record them. Saved in every checkpoint and saved model beside the
    :func:`architecture`: two models of one architecture built with another loss weight or
    schedule hold the same tensors and train differently."""
    return model.options() if isinstance(model, EstimatorBase) else None


def saved_options_difference(saved: dict | None, model) -> str | None:
    """:func:`options_difference` of a file's options (``saved``) and ``model``'s, an option
    the file does not record compared with its default
    (:func:`~conceptid.models.contract.option_defaults`): what a checkpoint or a saved model is
    loaded into only when it returns None."""
    if not isinstance(model, EstimatorBase):
        return None
    return options_difference(saved, model_options(model), option_defaults(model))


def options_difference(saved: dict | None, own: dict | None,
                       defaults: dict | None = None) -> str | None:  # fmt: skip
    """``ae_whitening 0.5 -> 0.25``: the construction options of a file (``saved``) and of a
    model (``own``) that differ; ``None`` when none does, or either is not known (files
    written before options were recorded hold none). An option the file does not record came
    with a later release, so the file's model was built as that option's default builds
    (``defaults``, :func:`~conceptid.models.contract.option_defaults`): the model's value is
    compared with the default (without ``defaults``, not compared). An option only the file
    records went with a release and is not compared."""
    if not isinstance(saved, dict) or not isinstance(own, dict):
        return None
    defaults = defaults or {}
    then = {k: saved[k] for k in set(saved) & set(own)}
    then |= {k: defaults[k] for k in set(own) - set(saved) if k in defaults}
    if all(then[k] == own[k] for k in then):
        return None
    return settings_difference(then, {k: own[k] for k in then})


def architecture_difference(saved: list, own: list[str]) -> str:
    """The first module where two :func:`architecture` lists (a file's, a model's) differ, as
    one line."""
    i = next((i for i, (a, b) in enumerate(zip(saved, own)) if a != b), min(len(saved), len(own)))
    if i == len(saved) or i == len(own):
        more = "the file" if i < len(saved) else "this model"
        return f"{more} has more modules (first {(saved if i < len(saved) else own)[i]!r})"
    return f"{saved[i]!r} in the file, {own[i]!r} here"


def load_checkpoint(
    path: Path, model, settings: dict | None = None, state: dict | None = None
) -> dict:
    """Load the checkpoint ``path`` (``state``: its contents, when already read) into ``model``;
    refuse (:class:`CheckpointError`, one line naming the file) a damaged file, another model
    class, other ``settings`` (when given), tensors of other shapes, or the same tensors in
    another :func:`architecture` (checked when the file records one; older files do not)."""
    state = state if state is not None else read_checkpoint(path)
    if state.get("model_class") != type(model).__name__:
        raise CheckpointError(
            f"{path} holds a {state.get('model_class')}, not a {type(model).__name__}"
        )
    if settings is not None and state.get("key") != settings_key(settings):
        raise CheckpointError(f"{path} belongs to another training, refusing to resume it: "
                              f"{settings_difference(state.get('settings'), settings)}; remove "
                              "it to start afresh")  # fmt: skip
    mismatch = _shape_mismatch(model, state["model"])
    if mismatch:
        raise CheckpointError(f"{path} does not fit this model: {mismatch}")
    saved, own = state.get("architecture"), architecture(model)
    if saved is not None and saved != own:
        raise CheckpointError(f"{path} was written by a model of another architecture: "
                              f"{architecture_difference(saved, own)}")  # fmt: skip
    differ = saved_options_difference(state.get("options"), model)
    if differ:
        raise CheckpointError(f"{path} was written by a model built with other options: {differ}")
    model.load_state_dict(state["model"])
    return state


def _diverged(what: str, epoch: int, batch: int | None, model, ckpt: Path | None):
    where = f"epoch {epoch + 1}" + (f", batch {batch + 1}" if batch is not None else "")
    if ckpt is not None and ckpt.exists():
        kept = f"the checkpoint of the last finished epoch is kept in {ckpt}"
    else:
        kept = "no epoch had finished, nothing was saved"
    return TrainingDivergedError(f"{type(model).__name__}: the {what} at {where}; training "
                                 f"stopped ({kept}); a lower learning rate or another seed may "
                                 "help")  # fmt: skip


def check_split(model, data: TensorData, split: str) -> None:
    """Refuse data that ``fit`` cannot train (``split`` ``"training"``) or validate
    (``"validation"``) ``model`` on, before any work:
    :class:`~conceptid.simulations.errors.UsageError`, one line naming the split, for what is
    not a :class:`~conceptid.models.data.TensorData`; ``x`` the model cannot read
    (:meth:`~conceptid.models.contract.EstimatorBase.check_x`: shape, dtype, a NaN or
    infinite entry); no rows (an empty validation split would give a loss of 0 every epoch,
    and early stopping and the model returned would rest on it); fewer training rows than the
    model's ``min_training_rows``; ``targets`` that are not one
    0/1 target set per row (:func:`~conceptid.models.contract.check_targets`, of the model's
    ``m`` concepts where it has that attribute); a ``context``, ``concepts`` or (when set)
    ``features`` that is not a tensor of one row per row of ``x``; a tensor on the meta
    device."""
    if not all(hasattr(data, k) for k in ("x", "targets", "batches")):  # a TensorData's
        raise UsageError(f"the {split} data must be a TensorData, got {type(data).__name__}")
    name = f"the {split} data's x"
    if isinstance(model, EstimatorBase):
        model.check_x(data.x, name)
    else:
        check_observations(data.x, name=name)
    if len(data) == 0:
        use = "train on" if split == "training" else "pick the epoch and stop early on"
        raise UsageError(f"the {split} data is empty (0 rows): fit needs a loss to {use}")
    if split == "training":
        check_training_rows(model, len(data))
    m = getattr(model, "m", None)
    check_targets(data.targets, m if isinstance(m, int) else None, len(data),
                  f"the {split} data's targets")  # fmt: skip
    for part in ("context", "concepts", "features"):  # the batches index every part by row
        t = getattr(data, part, None)
        if t is None and part == "features":
            continue
        if not isinstance(t, torch.Tensor) or t.dim() == 0 or t.shape[0] != len(data):
            got = type(t).__name__ if not isinstance(t, torch.Tensor) else (
                f"{t.shape[0]} rows" if t.dim() else "a 0-d tensor")  # fmt: skip
            raise UsageError(f"the {split} data's {part} must be a tensor of one row per row "
                             f"of x ({len(data)}), got {got}")  # fmt: skip
        check_not_meta(t, f"the {split} data's {part}")


def check_training_rows(model, n: int) -> None:
    """Refuse ``n`` training rows where ``model`` needs more (its ``min_training_rows``):
    :class:`~conceptid.simulations.errors.UsageError`, one line with the model's reason."""
    need = getattr(model, "min_training_rows", 1)
    if n < need:
        why = getattr(model, "min_training_rows_reason", "")
        raise UsageError(f"the training data has {n} rows; {type(model).__name__} needs at "
                         f"least {need}" + (f": {why}" if why else ""))  # fmt: skip


def check_config(cfg: object) -> TrainConfig:
    """``cfg`` if it is a :class:`TrainConfig` (whose fields are checked at construction);
    else :class:`~conceptid.simulations.errors.UsageError` naming its type (a dict of settings
    is ``TrainConfig(**settings)``)."""
    if not isinstance(cfg, TrainConfig):
        hint = ": build one with TrainConfig(**settings)" if isinstance(cfg, dict) else ""
        raise UsageError(f"cfg must be a TrainConfig, got {type(cfg).__name__}{hint}")
    return cfg


def check_parameters(model: nn.Module) -> None:
    """Refuse a model whose tensors ``fit`` cannot train, before any work:
    :class:`~conceptid.simulations.errors.UsageError` naming the first such tensor, for a
    parameter or buffer on the meta device (shapes without values,
    :func:`~conceptid.models.contract.check_not_meta`) and a float16 parameter (the losses
    overflow float16's range, so the fit would stop at once as diverged: train in float32)."""
    for name, t in (*model.named_parameters(), *model.named_buffers()):
        check_not_meta(t, f"{type(model).__name__}'s {name}",
                       "build the model with real weights (on cpu, say) to fit it")  # fmt: skip
    half = next((name for name, p in model.named_parameters() if p.dtype == torch.float16), None)
    if half is not None:
        raise UsageError(f"{type(model).__name__} has float16 parameters (first {half}), which "
                         "fit does not support (its losses overflow float16): train in float32 "
                         "(model.float()) and convert the trained model after")  # fmt: skip


def fit(model: Estimator, train: TensorData, val: TensorData, cfg: TrainConfig) -> dict:
    """Train ``model``, an :class:`~conceptid.models.contract.Estimator`.

    Returns a history dict: per-epoch ``train_loss``, ``val_loss`` (``None`` for an epoch of a
    warm-up stage, which is not validated: see ``hold_early_stop`` below), ``lr``,
    ``warm_up`` (whether the epoch trained a warm-up stage's objective: the epoch that ends a
    warm-up trained it, and is validated after the switch), ``stage`` (the model's ``stage``
    during the epoch, for a model with stages), the ``best_epoch``, ``seconds`` (the training
    time, a resumed fit's included: each checkpoint records it) and whether training
    ``resumed``. With ``cfg.checkpoint`` set,
    an existing checkpoint is resumed and a new one is written atomically after every epoch;
    resuming gives the weights and history an uninterrupted fit gives.

    Raises :class:`CheckpointError` for a checkpoint that is damaged, of another model, shape or
    architecture (:func:`architecture`), or written under other :meth:`TrainConfig.settings`;
    :class:`TrainingDivergedError` when a loss becomes NaN or infinite;
    :class:`~conceptid.simulations.errors.UsageError`, before any work, for a model that is not
    an :class:`~conceptid.models.contract.Estimator` (naming what it lacks) or has tensors on
    the meta device or float16 parameters (:func:`check_parameters`), a ``cfg`` that is not a
    :class:`TrainConfig` (:func:`check_config`), and for training or validation data that
    cannot be used (:func:`check_split`: empty, ``x`` of another shape or dtype than the
    model's or holding a NaN or infinite value, targets that are not a 0/1 mask per row,
    parts of other numbers of rows; naming the split).

    The contract's trainer hooks are called as :mod:`conceptid.models.contract` documents them:
    ``model.prepare(train)`` once before the first epoch of a fresh (not resumed) run;
    ``model.epoch_end(epoch, train)`` after each training epoch (``True``: the parametrisation
    or objective changed, so the optimiser state and the best-model tracking start afresh);
    ``model.hold_early_stop()`` after each ``epoch_end`` (``True``: a warm-up stage, whose
    loss is not the objective: early stopping waits and the epoch is not validated);
    ``model.stage_inputs(data)`` on the training and validation data after ``prepare`` (or on
    resuming) and after every ``epoch_end`` that returned ``True``: the epochs read what it
    returns (a stage's frozen features, computed once).
    """
    check_estimator(model)
    check_parameters(model)
    check_config(cfg)
    check_split(model, train, "training")
    check_split(model, val, "validation")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(torch_seed(cfg.seed))
    gen = torch.Generator().manual_seed(torch_seed(cfg.seed))
    device = torch.device(cfg.device)
    model.to(device)
    # every parameter is registered: a frozen one (requires_grad False) gets no gradient and Adam
    # skips it, and a model may unfreeze it later (``epoch_end``) without a new optimiser.
    # foreach: one kernel per operation over all tensors; the same values as the per-tensor loop
    # (torch's default off CUDA), bit for bit, at 0.72x its time a step in step 2 of the
    # two-step fit (benchmarks/bench_optimizer.py)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                           foreach=True)  # fmt: skip
    hist = {"train_loss": [], "val_loss": [], "lr": [], "best_epoch": -1, "resumed": False}
    best, best_state, start, bad_epochs = math.inf, None, 0, 0
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    settings = cfg.settings()
    if ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt, model, settings)
        # which parameters were frozen is part of the training state (staged schedules)
        if "trainable" not in state:
            raise CheckpointError(f"{ckpt} lacks the parameter flags of a resumable checkpoint")
        for p, flag in zip(model.parameters(), state["trainable"]):
            p.requires_grad_(flag)
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        hist = state["history"]
        hist["resumed"] = True
        best, start, bad_epochs = state["best"], state["epoch"] + 1, state["bad_epochs"]
        best_state = state["best_model"]
    if not hist["resumed"]:
        model.prepare(train)
    train_in, val_in = model.stage_inputs(train), model.stage_inputs(val)
    val_gen = torch.Generator().manual_seed(torch_seed(cfg.seed + 1))
    # the training time before a resume (the checkpoint's), so that a resumed fit reports its
    # whole time, not only the part after the resume
    spent = float(hist.get("seconds", 0.0))
    t0 = time.perf_counter()
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.epochs, initial=start, desc=type(model).__name__, leave=False)
    try:
        for epoch in range(start, cfg.epochs):
            if bad_epochs >= cfg.patience:  # also when resuming a fit that had stopped early
                break
            for g in opt.param_groups:
                g["lr"] = cfg.lr * _lr_factor(epoch, cfg)
            # what this epoch trains (its stage switches, if at all, at the epoch's end)
            stage = getattr(model, "stage", None)  # a buffer the epoch's end may change: read now
            warm_up, stage = bool(model.hold_early_stop()), None if stage is None else int(stage)
            model.train()
            total, n = 0.0, 0
            for b, batch in enumerate(train_in.batches(cfg.batch_size, gen)):
                batch = batch.to(device)
                loss, _ = model.loss(batch, gen)
                if not torch.isfinite(loss):
                    raise _diverged(f"training loss became {loss.item()}", epoch, b, model, ckpt)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(batch)
                n += len(batch)
            if model.epoch_end(epoch, train):
                # the model changed its parametrisation or its objective: Adam's moments and the
                # best validation loss so far no longer refer to the same quantities
                opt.state.clear()
                best, best_state, bad_epochs = math.inf, None, 0
                train_in, val_in = model.stage_inputs(train), model.stage_inputs(val)
            # a warm-up stage (early stopping waits) is not validated: its loss is not the
            # objective, so its value could neither stop the fit nor pick the model returned
            vloss = None
            if not model.hold_early_stop():
                val_gen.manual_seed(torch_seed(cfg.seed + 1))
                vloss = evaluate_loss(model, val_in, cfg.batch_size, val_gen)
                if not math.isfinite(vloss):
                    raise _diverged(f"validation loss became {vloss}", epoch, None, model, ckpt)
            hist["train_loss"].append(total / n)
            hist["val_loss"].append(vloss)
            hist["lr"].append(opt.param_groups[0]["lr"])
            # (setdefault: a checkpoint written before these were recorded holds neither)
            hist.setdefault("warm_up", []).append(warm_up)
            if stage is not None:
                hist.setdefault("stage", []).append(stage)
            if vloss is not None and vloss < best - 1e-6:
                best, bad_epochs = vloss, 0
                best_state = copy.deepcopy(model.state_dict())
                hist["best_epoch"] = epoch
            elif vloss is not None:
                bad_epochs += 1
            if bar is not None:
                shown = "warm-up" if vloss is None else f"{vloss:.3f}"
                bar.set_postfix(train=f"{total / n:.3f}", val=shown, best=f"{best:.3f}")
                bar.update(1)
            if ckpt is not None:
                hist["seconds"] = spent + time.perf_counter() - t0
                save_checkpoint(ckpt, {
                    "model_class": type(model).__name__, "model": model.state_dict(),
                    "architecture": architecture(model), "options": model_options(model),
                    "optimizer": opt.state_dict(),
                    "generator": gen.get_state(), "epoch": epoch,
                    "best": best, "best_model": best_state, "bad_epochs": bad_epochs,
                    "history": hist, "config": asdict(cfg), "settings": settings,
                    "key": settings_key(settings),
                    "trainable": [p.requires_grad for p in model.parameters()],
                })  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    hist["seconds"] = spent + time.perf_counter() - t0
    return hist


def restart_config(cfg: TrainConfig, r: int) -> TrainConfig:
    """The configuration of restart ``r`` of :func:`fit_restarts`: seed ``cfg.seed + 1000 r``,
    checkpoint ``cfg.checkpoint`` for ``r = 0`` and ``cfg.checkpoint + ".r{r}"`` after."""
    ckpt = cfg.checkpoint and (cfg.checkpoint if r == 0 else f"{cfg.checkpoint}.r{r}")
    return replace(cfg, seed=cfg.seed + 1000 * r, checkpoint=ckpt)


def fit_restarts(
    build: Callable[[], Estimator], train: TensorData, val: TensorData, cfg: TrainConfig,
    restarts: int = 1,
) -> tuple[Estimator, dict]:  # fmt: skip
    """Train ``restarts`` models from ``build()`` (seeds ``cfg.seed + 1000 r``) and keep the best.

    Best: the lowest ``model.selection_score(val)`` where it is not ``None`` (a quantity
    comparable across fits, such as a likelihood), else the lowest validation loss. Restart
    ``r`` checkpoints to ``cfg.checkpoint + ".r{r}"`` (``r > 0``), so an interrupted run resumes
    where it stopped; a finished restart resumes at its end and only recomputes its score.
    Returns the chosen model (on the CPU) and its history, with ``restart_scores`` (empty for a
    single fit, which is not scored), the chosen ``restart`` and ``seconds`` (all restarts
    together).

    Raises :class:`~conceptid.simulations.errors.UsageError` for ``restarts`` not a positive
    integer and a ``cfg`` that is not a :class:`TrainConfig`, before any fit; otherwise what
    :func:`fit` raises.
    """
    check_number(restarts, "restarts")
    check_config(cfg)
    best, best_hist, scores, seconds = None, None, [], 0.0
    for r in range(restarts):
        run = restart_config(cfg, r)
        torch.manual_seed(torch_seed(run.seed))
        model = build()
        hist = fit(model, train, val, run)
        seconds += hist["seconds"]
        model.to("cpu")
        if restarts == 1:  # nothing to choose between: no score (a likelihood pass) is needed
            best, best_hist = model, hist
            break
        score = model.selection_score(val)
        if score is None:
            score = best_validation_loss(hist)
        value = math.inf if score is None else float(score)
        value = math.inf if math.isnan(value) else value  # a NaN score never wins
        if not scores or value < min(scores):
            best, best_hist = model, hist
        scores.append(value)
    chosen = scores.index(min(scores)) if scores else 0
    best_hist = dict(best_hist, restart_scores=scores, restart=chosen, seconds=seconds)
    return best, best_hist
