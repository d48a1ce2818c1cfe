"""One plain-torch training loop for every estimator (read it in one sitting).

Adam; linear warm-up then cosine decay of the learning rate; early stopping on validation loss
with the best weights restored; atomic checkpoints (model, optimiser, step, config, seeds) after
every epoch and resume from them; a tqdm progress bar with running losses; deterministic under a
seed (a ``torch.Generator`` drives shuffling and reparameterisation noise). CPU by default.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from simulations.atomic import atomic_path
from simulations.errors import ConceptIDError
from simulations.validation import check_number

from .data import TensorData

__all__ = ["CheckpointError", "TrainConfig", "evaluate_loss", "fit", "fit_restarts"]


class CheckpointError(ConceptIDError):
    """A checkpoint is missing, corrupted, or does not belong to this model/config."""


@dataclass
class TrainConfig:
    """Everything the loop needs; recorded in every checkpoint."""

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


def _save(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load(path: Path, model) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises several types for a damaged file
        raise CheckpointError(f"checkpoint {path} is corrupted or unreadable: {err}") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path} is not a conceptid checkpoint")
    if state.get("model_class") != type(model).__name__:
        raise CheckpointError(
            f"{path} holds a {state.get('model_class')}, not a {type(model).__name__}"
        )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise CheckpointError(f"{path} does not fit this model: {err}") from None
    return state


def fit(model, train: TensorData, val: TensorData, cfg: TrainConfig) -> dict:
    """Train ``model`` (anything with ``loss(batch, generator) -> (loss, logs)``).

    Returns a history dict: per-epoch ``train_loss``, ``val_loss``, ``lr``, the ``best_epoch``,
    ``seconds`` and whether training ``resumed``. With ``cfg.checkpoint`` set, an existing
    checkpoint is resumed and a new one is written atomically after every epoch.

    A model may define ``prepare(train)``, called once before the first epoch of a fresh (not
    resumed) run (a data-dependent initialisation), and ``epoch_end(epoch, train) -> bool``,
    called after each training epoch;
    returning ``True`` says that its parametrisation or objective changed (a stage switch, a
    reparametrisation), so the optimiser state and the best-model tracking start afresh; and
    ``hold_early_stop() -> bool``, true while early stopping must wait (a warm-up stage whose
    loss is not the final objective).
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    model.to(device)
    # every parameter is registered: a frozen one (requires_grad False) gets no gradient and Adam
    # skips it, and a model may unfreeze it later (``epoch_end``) without a new optimiser
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    hist = {"train_loss": [], "val_loss": [], "lr": [], "best_epoch": -1, "resumed": False}
    best, best_state, start, bad_epochs = math.inf, None, 0, 0
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    if ckpt is not None and ckpt.exists():
        state = _load(ckpt, model)
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
    hold = getattr(model, "hold_early_stop", None)
    prepare = getattr(model, "prepare", None)
    if prepare is not None and not hist["resumed"]:
        prepare(train)
    val_gen = torch.Generator().manual_seed(cfg.seed + 1)
    t0 = time.perf_counter()
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.epochs, initial=start, desc=type(model).__name__, leave=False)
    for epoch in range(start, cfg.epochs):
        for g in opt.param_groups:
            g["lr"] = cfg.lr * _lr_factor(epoch, cfg)
        model.train()
        total, n = 0.0, 0
        for batch in train.batches(cfg.batch_size, gen):
            batch = batch.to(device)
            loss, logs = model.loss(batch, gen)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch}: {logs}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
            n += len(batch)
        hook = getattr(model, "epoch_end", None)
        if hook is not None and hook(epoch, train):
            # the model changed its parametrisation or its objective: Adam's moments and the
            # best validation loss so far no longer refer to the same quantities
            opt.state.clear()
            best, best_state, bad_epochs = math.inf, None, 0
        val_gen.manual_seed(cfg.seed + 1)
        vloss = evaluate_loss(model, val, cfg.batch_size, val_gen)
        hist["train_loss"].append(total / n)
        hist["val_loss"].append(vloss)
        hist["lr"].append(opt.param_groups[0]["lr"])
        if vloss < best - 1e-6:
            best, bad_epochs = vloss, 0
            best_state = copy.deepcopy(model.state_dict())
            hist["best_epoch"] = epoch
        elif not (hold is not None and hold()):
            bad_epochs += 1
        if bar is not None:
            bar.set_postfix(train=f"{total / n:.3f}", val=f"{vloss:.3f}", best=f"{best:.3f}")
            bar.update(1)
        if ckpt is not None:
            _save(ckpt, {
                "model_class": type(model).__name__, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "generator": gen.get_state(), "epoch": epoch,
                "best": best, "best_model": best_state, "bad_epochs": bad_epochs,
                "history": hist, "config": asdict(cfg),
                "trainable": [p.requires_grad for p in model.parameters()],
            })  # fmt: skip
        if bad_epochs >= cfg.patience:
            break
    if bar is not None:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    hist["seconds"] = hist.get("seconds", 0.0) + time.perf_counter() - t0
    return hist


def fit_restarts(
    build: Callable[[], torch.nn.Module], train: TensorData, val: TensorData, cfg: TrainConfig,
    restarts: int = 1,
) -> tuple[torch.nn.Module, dict]:  # fmt: skip
    """Train ``restarts`` models from ``build()`` (seeds ``cfg.seed + 1000 r``) and keep the best.

    Best: the lowest ``model.selection_score(val)`` where a model defines it (a quantity
    comparable across fits, such as a likelihood), else the lowest validation loss. Restart
    ``r`` checkpoints to ``cfg.checkpoint + ".r{r}"`` (``r > 0``), so an interrupted run resumes
    where it stopped; a finished restart resumes at its end and only recomputes its score.
    Returns the chosen model (on the CPU) and its history, with ``restart_scores``, the chosen
    ``restart`` and ``seconds`` (all restarts together).
    """
    check_number(restarts, "restarts")
    best, best_hist, scores, seconds = None, None, [], 0.0
    for r in range(restarts):
        seed = cfg.seed + 1000 * r
        ckpt = cfg.checkpoint and (cfg.checkpoint if r == 0 else f"{cfg.checkpoint}.r{r}")
        torch.manual_seed(seed)
        model = build()
        hist = fit(model, train, val, replace(cfg, seed=seed, checkpoint=ckpt))
        seconds += hist["seconds"]
        model.to("cpu")
        score = getattr(model, "selection_score", None)
        value = float(score(val)) if score is not None else min(hist["val_loss"], default=math.inf)
        if not scores or value < min(scores):
            best, best_hist = model, hist
        scores.append(value)
    chosen = scores.index(min(scores))
    best_hist = dict(best_hist, restart_scores=scores, restart=chosen, seconds=seconds)
    return best, best_hist
