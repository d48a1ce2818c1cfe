"""Training a method into a run directory, reading a trained one back, and sampling from it.

Every ``final.pt`` records the settings that determine it (:func:`train_settings`: the dataset's
content hash and labels hash, the method, seed, epochs, batch size, learning rate, restarts,
device type, the trainer's schedule, and the method's construction options where any were
given) and their hash, the training history, and the
normaliser of the data it was trained on (:class:`conceptid.splits.Normaliser`). A method is
reused only when its ``final.pt`` was trained under exactly the settings asked for, and a
checkpoint resumed only then; otherwise training stops naming what differs, and
``retrain=True`` (``--retrain``) discards that method's model and checkpoints.

A trained model comes back as a :class:`Trained`: the model with what was saved beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from conceptid.models.trainer import (
    CheckpointError,
    TrainConfig,
    architecture,
    architecture_difference,
    best_validation_loss,
    check_split,
    check_training_rows,
    fit_restarts,
    load_checkpoint,
    model_options,
    read_checkpoint,
    restart_config,
    save_checkpoint,
    saved_options_difference,
    settings_difference,
    settings_key,
)
from conceptid.simulations.benchmark import BenchmarkSpec, Dataset, generate
from conceptid.simulations.errors import ConceptIDError
from conceptid.simulations.resources import check_memory
from conceptid.simulations.validation import check_number, is_number, torch_seed

from .config import DEFAULTS
from .errors import PipelineError
from .floors import MEMORY_SETTING
from .methods import BENCHMARK_METHODS, METHODS, check_options
from .rundir import (
    check_method_paths,
    check_run_dir,
    holds_run_dir,
    open_run_dir,
    remove_evaluation,
    remove_method,
    restart_checkpoints,
)
from .splits import Normaliser, splits

__all__ = [
    "build_model",
    "check_builds",
    "check_saved_settings",
    "check_trainable",
    "Trained",
    "generate_samples",
    "load_trained",
    "read_trained",
    "sample",
    "saved_model",
    "train",
    "train_method",
    "train_settings",
]


@dataclass(frozen=True)
class Trained:
    """A trained model and what was saved beside it in its ``final.pt``.

    Attributes
    ----------
    method : str
        Its name in :data:`conceptid.methods.METHODS`.
    model : torch.nn.Module
    settings : dict
        The settings it was trained under (:func:`train_settings`).
    normaliser : Normaliser
        The normaliser of the data it was trained on (its samples' way back to the data's units).
    history : dict
        The trainer's history (losses per epoch, best epoch, seconds, restarts).
    reused : bool
        Loaded from a ``final.pt`` trained before under the same settings, not trained now.
    """

    method: str
    model: torch.nn.Module
    settings: dict
    normaliser: Normaliser
    history: dict = field(default_factory=dict)
    reused: bool = False

    @property
    def label(self) -> str:
        """The method's label (its name for a method outside the registry)."""
        known = METHODS.get(self.method) or BENCHMARK_METHODS.get(self.method)
        return self.method if known is None else known.label

    @property
    def epochs_summary(self) -> str:
        """``12 epochs, best validation loss 1.234`` (the epochs trained; epochs of a warm-up
        stage are not validated, so a fit may have none)."""
        epochs = len(self.history.get("val_loss") or [])
        best = best_validation_loss(self.history)
        shown = "no validated epoch" if best is None else f"best validation loss {best:.4g}"
        resumed = ", resumed from its checkpoint" if self.history.get("resumed") else ""
        return f"{epochs} epoch{'' if epochs == 1 else 's'}, {shown}{resumed}"


def _train_config(name: str, ds: Dataset | None, *, seed: int, epochs: int, batch_size: int,
                  lr: float, device: str, restarts: int, options: dict | None = None,
                  progress: bool = False,
                  checkpoint: str | None = None) -> TrainConfig:  # fmt: skip
    """The trainer's configuration; ``ds=None``: without the data's hashes (``_DATA_SETTINGS``).
    ``options`` (checked by :func:`~conceptid.methods.check_options`) are a setting only where
    some are given, so a model trained without any keeps the settings it was saved under."""
    data = {} if ds is None else {"dataset": ds.content_hash, "labels": ds.labels_hash}
    extra = {"method": name, **data, "restarts": restarts}
    if options:
        extra["options"] = options
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
                       patience=max(10, epochs // 3), progress=progress, checkpoint=checkpoint,
                       extra=extra)  # fmt: skip


def build_model(name: str, ds: Dataset, epochs: int, options: dict | None = None):
    """A fresh model of the method ``name`` for ``ds`` with its construction ``options``; a
    value its class refuses with a bare ``TypeError`` or ``ValueError`` (a list where a count
    goes) is refused as a :class:`PipelineError` naming the options; the package's own
    refusals (a bad value, a memory limit) keep their type and, where options were given,
    name the method."""
    try:
        return METHODS[name].make(ds, epochs, options)
    except ConceptIDError as err:
        if not options:
            raise
        raise type(err)(f"{name}: {err}") from None
    except (TypeError, ValueError) as err:
        if not options:
            raise
        shown = ", ".join(f"{k}={v!r}" for k, v in options.items())
        raise PipelineError(f"{name} cannot be built with the options {shown}: {err}") from None


def check_builds(options: Mapping[str, Mapping], data: Dataset | BenchmarkSpec,
                 epochs: int) -> None:  # fmt: skip
    """Build each method of ``options`` (``{method: {key: value}}``) with its options, so that
    a value its class refuses (:func:`build_model`) stops a command before any work: on the
    dataset ``data``, or, for a spec, on its data at one row per split and context (the shapes
    the models take, generated in a moment). The random state is left as it was."""
    if not options:
        return
    if isinstance(data, BenchmarkSpec):
        data = generate(replace(data, n_train=1, n_val=1, n_test=1))
    for name, opts in options.items():
        with torch.random.fork_rng(devices=[]):
            build_model(name, data, epochs, check_options(name, opts))


def train_settings(
    name: str, ds: Dataset, *, seed: int = DEFAULTS.seed, epochs: int = DEFAULTS.epochs,
    batch_size: int = DEFAULTS.batch_size, lr: float = DEFAULTS.lr,
    device: str = DEFAULTS.device, restarts: int = DEFAULTS.restarts,
    options: dict | None = None,
) -> dict:  # fmt: skip
    """Everything that determines the model :func:`train_method` fits: the dataset's content
    hash and labels hash (:attr:`~conceptid.simulations.benchmark.Dataset.labels_hash`: what
    its card says the arrays mean), the method, every training setting
    (:meth:`conceptid.models.trainer.TrainConfig.settings`:
    seed, epochs, batch size, learning rate, schedule, device type) with the restarts, and the
    method's construction ``options`` where any are given (``"options"``, as
    :func:`~conceptid.methods.check_options` returns them). A saved model or checkpoint is
    reused only when its settings equal these."""
    return _train_config(name, ds, seed=seed, epochs=epochs, batch_size=batch_size, lr=lr,
                         device=device, restarts=restarts,
                         options=check_options(name, options)).settings()  # fmt: skip


#: the settings that name the data (:func:`train_settings`); every other one is known before it
_DATA_SETTINGS = ("dataset", "labels")
#: the way out of a saved model that cannot be reused (:func:`saved_model`,
#: :func:`check_saved_settings`)
_RETRAIN_HINT = "pass --retrain (retrain=True) to train it afresh, or use another --out"


def check_saved_settings(
    name: str, out: Path, *, seed: int = DEFAULTS.seed, epochs: int = DEFAULTS.epochs,
    batch_size: int = DEFAULTS.batch_size, lr: float = DEFAULTS.lr,
    device: str = DEFAULTS.device, restarts: int = DEFAULTS.restarts, retrain: bool = False,
    options: dict | None = None,
) -> None:  # fmt: skip
    """What :func:`check_trainable` refuses about the *settings* of a saved model or checkpoint
    of ``name`` in the run directory ``out``, checked before the dataset is at hand: every
    setting of :func:`train_settings` but the data's two hashes. So ``conceptid run`` stops
    before its data stage (generating or copying a dataset) when the model it would reuse was
    trained under, say, other epochs. It reads the files :func:`train` would reuse or resume
    (``final.pt`` where there is one, else each restart's checkpoint), writes nothing, and
    leaves everything else (a damaged file, the data's hashes, the architecture) to
    :func:`check_trainable` once the data are loaded. ``retrain`` discards the files, so nothing
    is checked then.

    Raises
    ------
    PipelineError
        An unknown method, bad ``restarts`` or ``options`` (:func:`~conceptid.methods.
        check_options`), or a ``final.pt`` trained under other settings (naming each that
        differs, old -> new), with :func:`saved_model`'s hint.
    CheckpointError
        A checkpoint of another training (:func:`~conceptid.models.trainer.load_checkpoint`'s
        refusal), with :func:`check_trainable`'s hint.
    """
    if name not in METHODS:
        raise PipelineError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    check_number(restarts, "restarts", error=PipelineError)
    options = check_options(name, options)
    check_method_paths(out, name, restarts)
    if retrain:
        return
    folder = Path(out) / "models" / name
    cfg = _train_config(name, None, seed=seed, epochs=epochs, batch_size=batch_size, lr=lr,
                        device=device, restarts=restarts, options=options,
                        checkpoint=str(folder / "checkpoint.pt"))  # fmt: skip

    def differs(path: Path, settings: dict) -> str:
        """The settings but the data's that ``path`` records otherwise ('' where it cannot
        tell: no file, a damaged one, none recorded; check_trainable says so later)."""
        try:
            saved = read_checkpoint(path).get("settings") if path.exists() else None
        except CheckpointError:
            return ""
        if not isinstance(saved, dict):
            return ""
        saved = {k: v for k, v in saved.items() if k not in _DATA_SETTINGS}
        return settings_difference(saved, settings) if saved != settings else ""

    final = folder / "final.pt"
    if final.exists():  # train reuses it, or refuses: its checkpoints do not matter then
        diff = differs(final, cfg.settings())
        if diff:
            raise PipelineError(f"{final} was trained under other settings: {diff}; "
                                f"{_RETRAIN_HINT}")  # fmt: skip
        return
    for r in restart_checkpoints(out, name, restarts):
        run = restart_config(cfg, r)
        diff = differs(Path(run.checkpoint), run.settings())
        if diff:
            raise CheckpointError(f"{run.checkpoint} belongs to another training, refusing to "
                                  f"resume it: {diff}; remove it to start afresh (or pass "
                                  "--retrain, retrain=True)")  # fmt: skip


def check_trainable(
    name: str, ds: Dataset, out: Path, *, seed: int = DEFAULTS.seed,
    epochs: int = DEFAULTS.epochs, batch_size: int = DEFAULTS.batch_size, lr: float = DEFAULTS.lr,
    device: str = DEFAULTS.device, restarts: int = DEFAULTS.restarts, retrain: bool = False,
    options: dict | None = None,
) -> None:  # fmt: skip
    """Everything :func:`train` (the same arguments) would refuse about what ``out`` holds,
    checked without writing anything, so that a command training several methods stops
    before the first fit: ``out`` is a run directory or may become one; a saved ``final.pt``
    of this method may be reused (its settings, architecture and options,
    :func:`saved_model`, and that its tensors load); the checkpoint of each restart that
    :func:`train` would resume may be resumed (its settings, model class, tensors,
    architecture and options; :func:`~conceptid.models.trainer.restart_config`). ``retrain``
    discards them, so only the run directory and the model (built with ``options``) are checked
    then.

    Raises what :func:`train` raises for them (:class:`PipelineError`,
    :class:`CheckpointError`, :class:`conceptid.rundir.RunDirError`, and
    :class:`~conceptid.simulations.errors.UsageError` for an unusable ``device`` and for fewer
    training rows than the model needs), with the same hints."""
    out = check_run_dir(out)
    if name in METHODS and is_number(restarts):  # else saved_model names what is wrong
        check_method_paths(out, name, restarts)
    options = check_options(name, options)
    cfg = _train_config(name, ds, seed=seed, epochs=epochs, batch_size=batch_size, lr=lr,
                        device=device, restarts=restarts, options=options,
                        checkpoint=str(out / "models" / name / "checkpoint.pt"))  # fmt: skip
    settings = cfg.settings()
    state = saved_model(name, ds, out, settings, retrain)
    if retrain or state is None:  # a model will be trained: the data must be enough for it
        with torch.random.fork_rng(devices=[]):
            model = build_model(name, ds, epochs, options)
        check_training_rows(model, int(ds.rows("train", "training").sum()))
    if retrain:
        return
    if state is not None:
        try:
            _read_trained(out / "models" / name / "final.pt", ds, state)
        except CheckpointError as err:
            raise CheckpointError(f"{err}; pass --retrain (retrain=True) to train it afresh, or "
                                  "use another --out") from None  # fmt: skip
        return
    for r in restart_checkpoints(out, name, restarts):  # those train's restarts would resume
        run = restart_config(cfg, r)
        if Path(run.checkpoint).exists():
            try:
                load_checkpoint(Path(run.checkpoint), model, run.settings())
            except CheckpointError as err:
                raise CheckpointError(f"{err} (or pass --retrain, retrain=True)") from None


@holds_run_dir(lambda a: a["out"])
def train(
    name: str, ds: Dataset, out: Path, *, seed: int = DEFAULTS.seed,
    epochs: int = DEFAULTS.epochs, batch_size: int = DEFAULTS.batch_size, lr: float = DEFAULTS.lr,
    device: str = DEFAULTS.device, progress: bool = True, data_splits=None,
    restarts: int = DEFAULTS.restarts, retrain: bool = False, options: dict | None = None,
) -> Trained:  # fmt: skip
    """Train ``name`` on ``ds`` into the run directory ``out`` (``out/models/name/final.pt``).

    A ``final.pt`` trained under exactly these settings (:func:`train_settings`) is loaded
    instead; an interrupted training resumes from its checkpoint. ``data_splits``: the result of
    :func:`conceptid.splits.splits` when the caller already has it. ``restarts``: fits from
    different seeds, the best kept (:func:`conceptid.models.trainer.fit_restarts`). ``retrain``:
    discard this method's saved model and checkpoints first (nothing else) and train afresh.
    ``options``: keyword arguments of the method's model class (``{"flow_layers": 10}``;
    :meth:`~conceptid.methods.Method.option_names` lists them), recorded in its settings.
    Training a model removes the run's evaluation (:func:`conceptid.rundir.remove_evaluation`),
    which described the models before.

    Returns
    -------
    Trained
        The model with its settings, normaliser and history (``reused`` when loaded).

    Raises
    ------
    PipelineError
        An unknown method, a method that cannot fit this data, bad ``restarts``, options it
        does not take (:func:`~conceptid.methods.check_options`), or a ``final.pt`` trained
        under other settings (naming each that differs, old -> new) without ``retrain``.
    CheckpointError
        A damaged ``final.pt`` or checkpoint, or a checkpoint of other settings, without
        ``retrain``.
    conceptid.rundir.RunDirError
        ``out`` is not a run directory.
    conceptid.simulations.errors.UsageError
        A ``device`` this torch cannot train on (:func:`conceptid.models.trainer.check_device`),
        also where a saved model would be reused: the device type is one of its settings, so a
        model trained on ``cuda`` is reused only where ``cuda`` can be asked for. Also an
        option's value its class refuses (``flow_layers=0``), a model
        that cannot be built for this data (a latent larger than an observation; a
        :class:`~conceptid.simulations.resources.MemoryLimitError` for one too large) or
        data the trainer cannot use (an empty validation split): every refusal comes before
        anything is written, so a refused call leaves ``out`` as it was.
    models.trainer.TrainingDivergedError
        The loss became NaN or infinite (the last good checkpoint is kept).
    """
    if name not in METHODS:
        raise PipelineError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    check_number(restarts, "restarts", error=PipelineError)
    options = check_options(name, options)
    out = check_run_dir(out)
    folder = out / "models" / name
    final = folder / "final.pt"
    cfg = _train_config(name, ds, seed=seed, epochs=epochs, batch_size=batch_size, lr=lr,
                        device=device, restarts=restarts, options=options, progress=progress,
                        checkpoint=str(folder / "checkpoint.pt"))  # fmt: skip
    settings = cfg.settings()
    state = saved_model(name, ds, out, settings, retrain)
    if state is None:  # to be trained: the model built and its data checked before any write
        norm, (tr, va, _, _) = data_splits or splits(ds)
        _check_fittable(name, ds, epochs, options, tr, va)
    open_run_dir(out)  # everything is checked: from here on files are written
    if retrain:
        remove_method(out, name)
    elif state is not None:
        trained, state = _read_trained(final, ds, state)
        # left by a run killed after saving final.pt: its restarts' checkpoints (the same
        # settings as this one's), never a file of a name no restart of it writes
        for ckpt in restart_checkpoints(out, name, restarts).values():
            if ckpt.is_file() or ckpt.is_symlink():  # check_method_paths refuses anything else
                ckpt.unlink()
        return replace(trained, reused=True)
    remove_evaluation(out)
    try:
        model, hist = fit_restarts(lambda: build_model(name, ds, epochs, options), tr, va, cfg,
                                   restarts)  # fmt: skip
    except CheckpointError as err:
        raise CheckpointError(f"{err} (or pass --retrain, retrain=True)") from None
    save_checkpoint(final, {
        "model_class": type(model).__name__, "method": name, "model": model.state_dict(),
        "architecture": architecture(model), "options": model_options(model),
        "settings": settings, "key": settings_key(settings),
        "normaliser": norm.state(), "history": hist, "card_hash": ds.card_hash,
    })  # fmt: skip
    for ckpt in restart_checkpoints(out, name, restarts).values():  # this fit's own
        if ckpt.is_file() or ckpt.is_symlink():
            ckpt.unlink()
    return Trained(method=name, model=model, settings=settings, normaliser=norm, history=hist)


def _check_fittable(name: str, ds: Dataset, epochs: int, options: dict, tr, va) -> None:
    """Build a model of the method ``name`` for ``ds`` with ``options`` (refusing what its
    constructor refuses: a latent larger than an observation, a model too large for memory, a
    bad option) and check the training and validation data the trainer would refuse
    (:func:`~conceptid.models.trainer.check_split`), without touching the random state the fit
    starts from."""
    with torch.random.fork_rng(devices=[]):
        model = build_model(name, ds, epochs, options)
    check_split(model, tr, "training")
    check_split(model, va, "validation")


def train_method(name: str, ds: Dataset, out: Path, **kwargs) -> tuple[torch.nn.Module, dict]:
    """:func:`train` (the same arguments), returning only ``(model, history)``."""
    trained = train(name, ds, out, **kwargs)
    return trained.model, trained.history


def saved_model(name: str, ds: Dataset, out: Path, settings: dict, retrain: bool = False):
    """The contents of ``out/models/name/final.pt`` when it may be reused under ``settings``
    (:func:`train_settings`); None when there is none, or ``retrain`` discards it. Checks
    everything :func:`train` would refuse, without writing anything.

    Raises
    ------
    PipelineError
        An unknown method, one that cannot fit this data, bad restarts, or a saved model of
        other settings (naming each that differs, old -> new) or of another architecture
        (:func:`~conceptid.models.trainer.architecture`) without ``retrain``.
    CheckpointError
        A damaged ``final.pt`` without ``retrain``.
    """
    if name not in METHODS:
        raise PipelineError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    restarts = settings.get("restarts")
    check_number(restarts, "restarts", error=PipelineError)
    if not METHODS[name].applies_to(ds):
        raise PipelineError(f"{name} needs vector observations; this dataset holds images")
    final = Path(out) / "models" / name / "final.pt"
    if retrain or not final.exists():
        return None
    hint = _RETRAIN_HINT
    try:
        state = read_checkpoint(final)
    except CheckpointError as err:
        raise CheckpointError(f"{err}; {hint}") from None
    if state.get("key") != settings_key(settings):
        diff = settings_difference(state.get("settings"), settings)
        raise PipelineError(f"{final} was trained under other settings: {diff}; {hint}")
    with torch.random.fork_rng(devices=[]):
        model = build_model(name, ds, settings["epochs"], settings.get("options"))
    saved = state.get("architecture")  # files written before it was recorded have none
    if saved is not None:
        own = architecture(model)
        if saved != own:
            raise PipelineError(f"{final} was saved by a model of another architecture: "
                                f"{architecture_difference(saved, own)}; {hint}")  # fmt: skip
    differ = saved_options_difference(state.get("options"), model)  # idem
    if differ:
        raise PipelineError(f"{final} was saved by a model built with other options: {differ}; "
                            f"{hint}")  # fmt: skip
    return state


def _read_trained(path: Path, ds: Dataset, state: dict | None = None) -> tuple[Trained, dict]:
    path = Path(path)
    if state is None:
        state = read_checkpoint(path)
    if state.get("method") not in METHODS:
        raise CheckpointError(f"{path} is not a trained conceptid model")
    settings = state.get("settings")
    if not isinstance(settings, dict):
        raise CheckpointError(f"{path} records no training settings (written by an older "
                              "conceptid); train it again (--retrain)")  # fmt: skip
    if settings.get("dataset") != ds.content_hash:
        raise CheckpointError(f"{path} was trained on a different dataset (content hash "
                              f"{str(settings.get('dataset'))[:12]}..., this one "
                              f"{ds.content_hash[:12]}...)")  # fmt: skip
    if settings.get("labels") != ds.labels_hash:
        why = (
            "it records none: written by an older conceptid, train it again (--retrain)"
            if settings.get("labels") is None
            else f"{str(settings.get('labels'))[:12]}..., this one {ds.labels_hash[:12]}..."
        )
        raise CheckpointError(f"{path} was trained on the same arrays labelled otherwise "
                              f"(concepts, nuisance size or contexts' targets; labels hash "
                              f"{why})")  # fmt: skip
    options = settings.get("options")
    try:
        options = check_options(state["method"], options)
        model = build_model(state["method"], ds, settings["epochs"], options)
    except ConceptIDError as err:  # an unknown option, or a value its class refuses
        raise CheckpointError(f"{path} records options this conceptid cannot build: "
                              f"{err}") from None  # fmt: skip
    load_checkpoint(path, model, state=state)
    model.eval()
    trained = Trained(method=state["method"], model=model, settings=settings,
                      normaliser=Normaliser.from_state(state.get("normaliser")),
                      history=state.get("history") or {})  # fmt: skip
    return trained, state


def read_trained(path: Path, ds: Dataset) -> Trained:
    """A trained model from ``final.pt``, checked against the dataset it was trained on.

    Parameters
    ----------
    path : Path
        A ``final.pt``.
    ds : Dataset
        The dataset it must have been trained on (same content hash and labels hash).

    Returns
    -------
    Trained
        The model in eval mode, with the settings, normaliser and history saved beside it.

    Raises
    ------
    CheckpointError
        No such file (or a directory), a damaged file, not a trained conceptid model, no
        recorded settings (an older format), another dataset, or weights that do not fit.
    """
    return _read_trained(path, ds)[0]


def load_trained(path: Path, ds: Dataset, state: dict | None = None):
    """:func:`read_trained` as ``(model, state)``: the model in eval mode and the file's contents
    (``state``: the contents when the caller has read them already)."""
    trained, state = _read_trained(path, ds, state)
    return trained.model, state


def generate_samples(model, targets: torch.Tensor, seed: int) -> np.ndarray:
    """``model.generate`` under the target masks ``targets`` ``(n, K)``, seeded, as numpy (in the
    model's units: normalised vectors, or images ``(n, 3, H, W)`` in ``[0, 1]``)."""
    g = torch.Generator().manual_seed(torch_seed(seed))
    with torch.no_grad():
        return model.generate(targets, generator=g).numpy()


def sample(trained: Trained, ds: Dataset, targets: Sequence[str], n: int,
           seed: int = 0) -> np.ndarray:  # fmt: skip
    """``n`` samples of a trained model under interventions on ``targets``, in the data's units.

    Parameters
    ----------
    trained : Trained
        From :func:`read_trained` or :func:`train`.
    ds : Dataset
        Its dataset (concept names, units).
    targets : sequence of str
        Concept names to intervene on; empty: observational samples (from a model that
        cannot intervene: samples of the pooled law it learned).
    n : int
        Number of samples.
    seed : int

    Returns
    -------
    ndarray
        Like the dataset's ``x``: float32 ``(n, p)`` vectors (the training normalisation
        undone), or uint8 ``(n, H, W, 3)`` images (``round(255 * image)``).

    Raises
    ------
    PipelineError
        ``targets`` not a sequence of names, ``n`` not a positive integer, a bad ``seed``;
        a target that is not a concept of ``ds``, named twice, or that no training context
        intervenes on (the model has learned no law for an intervention on it: the default
        quad scene's ``color``, or a concept intervened on only in held-out contexts); targets
        given to a model that cannot generate under interventions (its estimator's
        ``can_intervene`` is false: a pooled VAE, the beta-VAE, the iVAE, the labels-ignored
        ablation),
        or a model that cannot generate at all (``can_generate`` is false).
    MemoryLimitError
        ``n`` samples would not fit in memory (checked before anything of that size is
        allocated).
    """
    if isinstance(targets, str) or not all(isinstance(t, str) for t in targets):
        raise PipelineError(f"targets must be a sequence of concept names, got {targets!r} "
                            "(one concept: ['a'], not 'a')")  # fmt: skip
    n = check_number(n, "n (the number of samples)", error=PipelineError)
    seed = check_number(seed, "seed", minimum=0, error=PipelineError)
    if targets and not trained.model.can_intervene:
        raise PipelineError(f"{trained.method} ({trained.label}) cannot generate under "
                            "interventions: its samples follow the pooled law of the training "
                            "contexts whatever the targets; ask it for samples without "
                            "targets")  # fmt: skip
    if not trained.model.can_generate:
        raise PipelineError(f"{trained.method} ({trained.label}) cannot generate: it learns "
                            "no law of x")  # fmt: skip
    names = ds.concept_names
    unknown = [t for t in targets if t not in names]
    if unknown:
        raise PipelineError(f"unknown intervention targets {unknown}; concepts: {names}")
    twice = sorted({t for t in targets if list(targets).count(t) > 1})
    if twice:
        raise PipelineError(f"intervention targets named more than once: {twice}")
    trained_on = {t for c in ds.training_contexts for t in ds.targets(c)}
    never = [t for t in targets if t not in trained_on]
    if never:
        raise PipelineError(f"no training context intervenes on {never}, so the model has no "
                            f"law for that intervention; concepts intervened on in training: "
                            f"{[t for t in names if t in trained_on]}")  # fmt: skip
    # the masks, the samples (float32, three times for the decoder's work) and their copy in
    # the data's units, before any of them is allocated
    values = int(np.prod(ds.x.shape[1:]))
    check_memory(n * (len(names) + 16 * values), f"generating {n} samples",
                 setting=MEMORY_SETTING)  # fmt: skip
    mask = torch.zeros(n, len(names), dtype=torch.bool)
    for t in targets:
        mask[:, names.index(t)] = True
    x = generate_samples(trained.model, mask, seed)
    if ds.is_image:
        from conceptid.simulations.render import to_uint8

        return to_uint8(x.transpose(0, 2, 3, 1))
    return trained.normaliser.undo(x).astype(np.float32)
