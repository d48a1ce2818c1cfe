"""The main job, stage by stage: generate -> check -> train -> evaluate -> report.

A *run directory* (:mod:`conceptid.rundir`) is the on-disk format every stage reads and writes,
so a run can be stopped and resumed anywhere (each file is written atomically):

    RUN/run.json                   the marker of a run directory
    RUN/data/                      the dataset (simulations.benchmark format): generated from
                                   the spec, or a copy of the dataset given (``run --data``)
    RUN/check.json, check.txt      the identifiability verdict
    RUN/models/METHOD/final.pt     a trained model (written once training has finished)
    RUN/models/METHOD/checkpoint.pt  the trainer's resumable checkpoint (while training)
    RUN/metrics.json               every metric of every method (deterministic under the seed)
    RUN/timings.json               wall times of every stage and method
    RUN/figures/*.png, RUN/report.md

Every ``final.pt`` and checkpoint records the settings that determine it (:func:`train_settings`:
the dataset's content hash, the method, seed, epochs, batch size, learning rate, restarts, device
type and the trainer's schedule) and their hash. A method is reused only when its ``final.pt``
was trained under exactly the settings asked for, and a checkpoint resumed only then; otherwise
the run stops naming what differs, and ``retrain=True`` (``--retrain``) discards that method's
model and checkpoints. Metrics and report state the settings stored with the models.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from conceptid.identifiability import align, check
from conceptid.models.data import TensorData, from_dataset, targets_mask
from conceptid.models.estimators import ContextModuleVAE, PooledVAE
from conceptid.models.metrics import active_dims, bits_per_dim, mcc, sliced_wasserstein
from conceptid.models.mle import LatentFlowMLE, ManifoldMLE
from conceptid.models.trainer import (
    CheckpointError,
    TrainConfig,
    _load,
    _read,
    _save,
    fit_restarts,
    settings_difference,
    settings_key,
)
from conceptid.simulations.atomic import atomic_path
from conceptid.simulations.benchmark import (
    BenchmarkSpec,
    Dataset,
    DatasetError,
    generate,
    load_dataset,
)
from conceptid.simulations.errors import ConceptIDError
from conceptid.simulations.validation import check_number

from .rundir import (
    check_run_dir,
    method_files,
    open_run_dir,
    remove_evaluation,
    remove_method,
    require_run_dir,
)

__all__ = [
    "METHODS",
    "NO_GROUND_TRUTH",
    "REPORTED",
    "PipelineError",
    "Method",
    "RunConfig",
    "adopt_data",
    "common_settings",
    "default_methods",
    "evaluate_and_report",
    "evaluate_dir",
    "evaluate_run",
    "latent_means",
    "load_trained",
    "reproduce_commands",
    "run",
    "sample",
    "saved_model",
    "settings_of",
    "train_method",
    "train_settings",
]


class PipelineError(ConceptIDError):
    """A run was asked for something it cannot do (an unknown method, a wrong data kind, a saved
    model of other settings without ``retrain``, interventions from a model without them)."""


@dataclass(frozen=True)
class Method:
    """A trainable method: a label, a builder and how its latents relate to the concepts."""

    label: str
    build: Callable
    hungarian: bool  # latents carry no concept labels: assign them by Hungarian matching
    vectors_only: bool = False
    uses_epochs: bool = False  # the builder takes the epoch budget (a training schedule)

    def make(self, ds: Dataset, epochs: int):
        return self.build(ds, epochs) if self.uses_epochs else self.build(ds)


def _shape(ds: Dataset) -> tuple[int, ...]:
    shape = tuple(ds.x.shape[1:])
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape


def _likelihood(ds: Dataset) -> str:
    return "bernoulli" if ds.x.dtype == np.uint8 else "gaussian"


def _dims(ds: Dataset) -> tuple[tuple[int, ...], int]:
    return tuple(ds.card["block_sizes"]), ds.nuisance_dim


def _cm(ds, **kw):
    blocks, nd = _dims(ds)
    return ContextModuleVAE(_shape(ds), blocks, nd, _likelihood(ds), **kw)


def _pooled(ds, **kw):
    blocks, nd = _dims(ds)
    return PooledVAE(_shape(ds), sum(blocks) + nd, _likelihood(ds), **kw)


def _flow(ds, epochs: int = 60, **kw):
    """Autoencoder for a third of the budget (images: at least 10 epochs, or half the budget
    when that is less), then the flow; snaps every sixth (1 to 10). ``kw`` goes to
    :class:`LatentFlowMLE` and may replace that schedule (``ae_epochs``, ``snap_every``).

    Why the floor for images: measured on quad seed 0, a conv autoencoder trained for 6 epochs
    (a 20-epoch budget) reconstructs at SWD 0.205 from the test data, against 0.041 after 10."""
    blocks, nd = _dims(ds)
    ae = max(1, epochs // 3)
    if len(_shape(ds)) == 3:
        ae = max(ae, min(10, epochs // 2))
    schedule = {"ae_epochs": ae, "snap_every": max(1, min(10, epochs // 6))}
    return LatentFlowMLE(_shape(ds), blocks, nd, **(schedule | kw))


def _context_flow(ds, epochs: int = 60, **kw):
    """The context module as an exact per-context prior, on the two-step latent-flow fit."""
    return _flow(ds, epochs, prior="context-module", **kw)


def _mle(ds, epochs: int = 60, **kw):
    """Snap period: a sixth of the budget, between 1 and 10 epochs."""
    blocks, nd = _dims(ds)
    return ManifoldMLE(_shape(ds), blocks, nd, snap_every=max(1, min(10, epochs // 6)), **kw)


METHODS: dict[str, Method] = {
    "context-flow": Method(
        "context module as exact prior (two-step)", _context_flow, False, uses_epochs=True
    ),
    "context-flow-ablation": Method(
        "context module as exact prior, labels ignored",
        lambda ds, epochs, **kw: _context_flow(ds, epochs, use_labels=False, **kw),
        False,
        uses_epochs=True,
    ),  # fmt: skip
    "context-module": Method("context-module VAE (paper-faithful baseline)", _cm, False),
    "ablation": Method(
        "context-module VAE, labels ignored", lambda ds: _cm(ds, use_labels=False), False
    ),  # fmt: skip
    "pooled": Method("pooled VAE", _pooled, True),
    "beta-vae": Method("beta-VAE (beta = 4)", lambda ds: _pooled(ds, beta=4.0), True),
    "latent-flow": Method(
        "latent-flow MLE (two-step)", _flow, False, vectors_only=True, uses_epochs=True
    ),
    "manifold-mle": Method(
        "theorem-matched manifold MLE", _mle, False, vectors_only=True, uses_epochs=True
    ),
}


def default_methods(ds: Dataset) -> list[str]:
    """Every method that applies to the data (the manifold MLE needs vector observations)."""
    images = ds.x.dtype == np.uint8
    return [k for k, m in METHODS.items() if not (images and m.vectors_only)]


@dataclass
class RunConfig:
    """Everything a run needs; recorded in metrics.json and the report.

    ``spec`` is the benchmark to generate; or None with ``data``, an existing dataset directory
    (generated or imported) that the run copies into ``out/data`` and uses as it is.
    """

    spec: BenchmarkSpec | None
    out: Path
    seed: int = 0
    epochs: int = 20
    batch_size: int = 128
    lr: float = 2e-3
    device: str = "cpu"
    methods: Sequence[str] | None = None
    check_method: str = "exact"
    n_generate: int = 500
    restarts: int = 1
    progress: bool = True
    retrain: bool = False
    command: str = field(default_factory=lambda: " ".join(sys.argv))
    data: Path | None = None

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.data is not None:
            self.data = Path(self.data)
        for name in ("epochs", "batch_size", "n_generate", "restarts"):
            check_number(getattr(self, name), name, error=PipelineError)
        unknown = [m for m in (self.methods or []) if m not in METHODS]
        if unknown:
            raise PipelineError(f"unknown methods {unknown}; known: {sorted(METHODS)}")


def _say(msg: str) -> None:
    print(msg, flush=True)


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, ".npy") as tmp:
        np.save(tmp, array)


def _write_json(path: Path, obj) -> None:
    _write_text(path, json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n")


# ---------------------------------------------------------------------------------- data


def ensure_data(spec: BenchmarkSpec, out: Path, progress: bool = True) -> Dataset:
    """Load ``out/data`` if it holds this spec's dataset, else generate and save it (``out`` is
    a run directory: :func:`conceptid.rundir.open_run_dir`)."""
    path = open_run_dir(out) / "data"
    if path.exists():
        ds = load_dataset(path)
        if BenchmarkSpec.from_dict(ds.card["spec"]) != spec:
            raise DatasetError(
                f"{path} holds a dataset of a different spec; use another --out or delete it"
            )
        return ds
    ds = generate(spec, progress=progress)
    ds.save(path)
    return ds


def adopt_data(data: Path, out: Path) -> Dataset:
    """The dataset in directory ``data``, verified, as the run's ``out/data``: copied there
    (atomically, by :meth:`Dataset.save`) unless ``out/data`` already holds it.

    Raises
    ------
    DatasetError
        ``data`` is not a dataset or fails its verification, or ``out/data`` holds another one.
    """
    path = open_run_dir(out) / "data"
    ds = load_dataset(data)
    if path.exists():
        held = load_dataset(path)
        if held.card["content_hash"] != ds.card["content_hash"]:
            raise DatasetError(f"{path} holds another dataset (content hash "
                               f"{held.card['content_hash'][:12]}..., {data} has "
                               f"{ds.card['content_hash'][:12]}...); use another "
                               f"--out")  # fmt: skip
        return held
    ds.save(path)
    return ds


class Normaliser:
    """Vectors: standardised by the training split's mean and standard deviation; images: [0, 1]
    (``from_dataset`` already scales them)."""

    def __init__(self, mean: torch.Tensor | None, std: torch.Tensor | None) -> None:
        self.mean, self.std = mean, std

    @classmethod
    def fit(cls, ds: Dataset, train: TensorData) -> Normaliser:
        if ds.x.dtype == np.uint8:
            return cls(None, None)
        std = train.x.std(0)
        return cls(train.x.mean(0), torch.where(std > 0, std, torch.ones_like(std)))

    def apply(self, data: TensorData) -> TensorData:
        if self.mean is not None:
            data.x = (data.x - self.mean) / self.std
        return data

    def state(self) -> dict:
        return {"mean": self.mean, "std": self.std}


def splits(ds: Dataset, norm: Normaliser | None = None):
    """Training-context train/val/test splits and the held-out test split, normalised."""
    tr = from_dataset(ds, "train", "training")
    norm = norm or Normaliser.fit(ds, tr)
    parts = [tr, from_dataset(ds, "val", "training"), from_dataset(ds, "test", "training")]
    parts.append(from_dataset(ds, "test", "held_out"))
    return norm, [norm.apply(p) for p in parts]


# ---------------------------------------------------------------------------------- train


def _train_config(name: str, ds: Dataset, *, seed: int, epochs: int, batch_size: int, lr: float,
                  device: str, restarts: int, progress: bool = False,
                  checkpoint: str | None = None) -> TrainConfig:  # fmt: skip
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
                       patience=max(10, epochs // 3), progress=progress, checkpoint=checkpoint,
                       extra={"method": name, "dataset": ds.card["content_hash"],
                              "restarts": restarts})  # fmt: skip


def train_settings(
    name: str, ds: Dataset, *, seed: int = 0, epochs: int = 20, batch_size: int = 128,
    lr: float = 2e-3, device: str = "cpu", restarts: int = 1,
) -> dict:  # fmt: skip
    """Everything that determines the model :func:`train_method` fits: the dataset's content
    hash, the method, and every training setting
    (:meth:`conceptid.models.trainer.TrainConfig.settings`:
    seed, epochs, batch size, learning rate, schedule, device type) with the restarts. A saved
    model or checkpoint is reused only when its settings equal these."""
    return _train_config(name, ds, seed=seed, epochs=epochs, batch_size=batch_size, lr=lr,
                         device=device, restarts=restarts).settings()  # fmt: skip


def train_method(
    name: str, ds: Dataset, out: Path, *, seed: int = 0, epochs: int = 20, batch_size: int = 128,
    lr: float = 2e-3, device: str = "cpu", progress: bool = True, data_splits=None,
    restarts: int = 1, retrain: bool = False,
) -> tuple[torch.nn.Module, dict]:  # fmt: skip
    """Train ``name`` on ``ds`` into the run directory ``out`` (``out/models/name/final.pt``).

    A ``final.pt`` trained under exactly these settings (:func:`train_settings`) is loaded
    instead; an interrupted training resumes from its checkpoint. ``data_splits``: the result of
    :func:`splits` when the caller already has it. ``restarts``: fits from different seeds, the
    best kept (:func:`conceptid.models.trainer.fit_restarts`). ``retrain``: discard this method's
    saved
    model and checkpoints first (nothing else) and train afresh. Training a model removes the
    run's evaluation (:func:`conceptid.rundir.remove_evaluation`), which described the models
    before.

    Returns the model (with ``_normaliser``, ``_settings`` and ``_reused`` set) and its history.

    Raises
    ------
    PipelineError
        An unknown method, a method that cannot fit this data, bad ``restarts``, or a
        ``final.pt`` trained under other settings (naming each that differs, old -> new)
        without ``retrain``.
    CheckpointError
        A damaged ``final.pt`` or checkpoint, or a checkpoint of other settings, without
        ``retrain``.
    conceptid.rundir.RunDirError
        ``out`` is not a run directory.
    models.trainer.TrainingDivergedError
        The loss became NaN or infinite (the last good checkpoint is kept).
    """
    if name not in METHODS:
        raise PipelineError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    check_number(restarts, "restarts", error=PipelineError)
    out = check_run_dir(out)
    folder = out / "models" / name
    final = folder / "final.pt"
    cfg = _train_config(name, ds, seed=seed, epochs=epochs, batch_size=batch_size, lr=lr,
                        device=device, restarts=restarts, progress=progress,
                        checkpoint=str(folder / "checkpoint.pt"))  # fmt: skip
    settings = cfg.settings()
    state = saved_model(name, ds, out, settings, retrain)
    open_run_dir(out)  # everything is checked: from here on files are written
    method = METHODS[name]
    if retrain:
        remove_method(out, name)
    elif state is not None:
        model, state = load_trained(final, ds, state)
        for ckpt in method_files(out, name):  # left by a run killed after saving final.pt
            if ckpt != final:
                ckpt.unlink()
        model._reused = True
        return model, state["history"]
    remove_evaluation(out)
    norm, (tr, va, _, _) = data_splits or splits(ds)
    try:
        model, hist = fit_restarts(lambda: method.make(ds, epochs), tr, va, cfg, restarts)
    except CheckpointError as err:
        raise CheckpointError(f"{err} (or pass --retrain, retrain=True)") from None
    _save(final, {
        "model_class": type(model).__name__, "method": name, "model": model.state_dict(),
        "settings": settings, "key": settings_key(settings),
        "normaliser": norm.state(), "history": hist, "card_hash": ds.card["card_hash"],
    })  # fmt: skip
    for ckpt in method_files(out, name):
        if ckpt != final:
            ckpt.unlink()
    model._normaliser, model._settings, model._reused = norm, settings, False
    return model, hist


def saved_model(name: str, ds: Dataset, out: Path, settings: dict, retrain: bool = False):
    """The contents of ``out/models/name/final.pt`` when it may be reused under ``settings``
    (:func:`train_settings`); None when there is none, or ``retrain`` discards it. Checks
    everything :func:`train_method` would refuse, without writing anything.

    Raises
    ------
    PipelineError
        An unknown method, one that cannot fit this data, bad restarts, or a saved model of
        other settings (naming each that differs, old -> new) without ``retrain``.
    CheckpointError
        A damaged ``final.pt`` without ``retrain``.
    """
    if name not in METHODS:
        raise PipelineError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    restarts = settings.get("restarts")
    check_number(restarts, "restarts", error=PipelineError)
    if METHODS[name].vectors_only and ds.x.dtype == np.uint8:
        raise PipelineError(f"{name} needs vector observations; this dataset holds images")
    final = Path(out) / "models" / name / "final.pt"
    if retrain or not final.exists():
        return None
    hint = "pass --retrain (retrain=True) to train it afresh, or use another --out"
    try:
        state = _read(final)
    except CheckpointError as err:
        raise CheckpointError(f"{err}; {hint}") from None
    if state.get("key") != settings_key(settings):
        diff = settings_difference(state.get("settings"), settings)
        raise PipelineError(f"{final} was trained under other settings: {diff}; {hint}")
    return state


def load_trained(path: Path, ds: Dataset, state: dict | None = None):
    """A trained model from ``final.pt``, checked against the dataset it was trained on.

    Parameters
    ----------
    path : Path
        A ``final.pt``.
    ds : Dataset
        The dataset it must have been trained on (same content hash).
    state : dict, optional
        The file's contents when the caller has read it already.

    Returns
    -------
    (model, state)
        The model in eval mode, with ``_normaliser`` and ``_settings`` (the settings it was
        trained under) set; the file's contents.

    Raises
    ------
    CheckpointError
        A damaged file, not a trained conceptid model, no recorded settings (an older format),
        another dataset, or weights that do not fit.
    """
    path = Path(path)
    state = state if state is not None else _read(path)
    if state.get("method") not in METHODS:
        raise CheckpointError(f"{path} is not a trained conceptid model")
    settings = state.get("settings")
    if not isinstance(settings, dict):
        raise CheckpointError(f"{path} records no training settings (written by an older "
                              "conceptid); train it again (--retrain)")  # fmt: skip
    if settings.get("dataset") != ds.card["content_hash"]:
        raise CheckpointError(f"{path} was trained on a different dataset (content hash "
                              f"{str(settings.get('dataset'))[:12]}..., this one "
                              f"{ds.card['content_hash'][:12]}...)")  # fmt: skip
    model = METHODS[state["method"]].make(ds, settings["epochs"])
    _load(path, model, state=state)
    model.eval()
    n = state.get("normaliser") or {}
    model._normaliser = Normaliser(n.get("mean"), n.get("std"))
    model._settings = settings
    return model, state


def sample(model, ds: Dataset, targets: Sequence[str], n: int, seed: int = 0) -> np.ndarray:
    """``n`` samples of a trained model under interventions on ``targets``, in the data's units.

    Parameters
    ----------
    model
        From :func:`load_trained` or :func:`train_method`.
    ds : Dataset
        Its dataset (concept names, units).
    targets : sequence of str
        Concept names to intervene on; empty: observational samples.
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
        Targets given to a model that cannot generate under interventions (its estimator's
        ``can_intervene`` is false: a pooled VAE, the beta-VAE, the labels-ignored ablation).
    """
    from conceptid.simulations.render import to_uint8

    names = list(ds.card["concept_names"])
    method = (getattr(model, "_settings", None) or {}).get("method", type(model).__name__)
    if targets and not getattr(model, "can_intervene", False):
        label = METHODS[method].label if method in METHODS else method
        raise PipelineError(f"{method} ({label}) cannot generate under interventions: it "
                            "ignores the context labels; ask it for observational samples "
                            "(no --targets)")  # fmt: skip
    mask = torch.zeros(n, len(names), dtype=torch.bool)
    for t in targets:
        mask[:, names.index(t)] = True
    x = _generate(model, mask, seed)
    if ds.x.dtype == np.uint8:
        return to_uint8(x.transpose(0, 2, 3, 1))
    norm = _normaliser_of(model)
    if norm is not None and norm.mean is not None:  # back to the data's units
        x = x * norm.std.numpy() + norm.mean.numpy()
    return x.astype(np.float32)


# ---------------------------------------------------------------------------------- evaluate


def _generate(model, targets: torch.Tensor, seed: int) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return model.generate(targets, generator=g).numpy()


def _val_bits(model, val: TensorData, seed: int) -> tuple[float, str]:
    """Validation negative ELBO (VAEs, beta = 1) or manifold NLL, in bits per dimension."""
    g = torch.Generator().manual_seed(seed)
    manifold = isinstance(model, ManifoldMLE)
    total, n = 0.0, 0
    model.eval()
    with torch.no_grad():
        for batch in val.batches(512, shuffle=False):
            if manifold:
                value = model.nll(batch.x, batch.targets).mean().item()
            else:
                _, logs = model.loss(batch, g)
                value = logs["nll"] + logs["kl"]
            total += value * len(batch)
            n += len(batch)
    kind = "manifold NLL" if manifold else "negative ELBO"
    return bits_per_dim(total / n, int(np.prod(val.x.shape[1:]))), kind


@torch.no_grad()
def latent_means(model, x: torch.Tensor) -> np.ndarray:
    """The whole latent of ``x`` (posterior means for the VAEs; ``g(x)`` for the manifold MLE)."""
    return (model.encode(x) if hasattr(model, "encode") else model.encoder(x)[0]).numpy()


#: why a dataset without ground truth gets no recovery metrics (metrics.json and the report)
NO_GROUND_TRUTH = ("R^2, MCC and the concept scatter compare learned concepts with the true ones, "
                   "and this dataset has none (imported data): they are omitted, not computed "
                   "against missing data")  # fmt: skip


def evaluate_method(
    name: str, model, ds: Dataset, seed: int = 0, n_generate: int = 500, data_splits=None
) -> dict:
    """Recovery up to the class, MCC, concept and composition SWD, bits/dim, active dims.

    For a dataset without ground truth (imported) only what the data can measure: concept SWD
    per training context, composition SWD on held-out contexts, bits per dimension and active
    dimensions; ``r2``, ``mean_r2``, ``mcc`` and ``r2_matrix`` are None (:data:`NO_GROUND_TRUTH`).
    """
    _, (_, va, te, held) = data_splits or splits(ds, _normaliser_of(model))
    res = None
    if ds.has_ground_truth:
        blocks, _ = _dims(ds)
        learned = model.concepts(te.x, te.targets).numpy()
        true = te.concepts.numpy()
        assignment = "hungarian" if METHODS[name].hungarian else "given"
        res = align(learned, true, blocks, assignment=assignment)
        mcc_value = mcc(learned, true) if learned.shape[1] >= true.shape[1] else float("nan")
    latent = latent_means(model, te.x)
    masks = targets_mask(ds)
    names = ds.context_names
    rng = np.random.default_rng(seed)

    def swd(split: TensorData, k: int) -> float:
        rows = (split.context == k).numpy()
        data = split.x[rows].numpy()
        t = torch.from_numpy(np.repeat(masks[k][None], n_generate, 0))
        gen = _generate(model, t, seed + k)
        data = data[rng.permutation(len(data))[:n_generate]]
        return sliced_wasserstein(gen, data, seed=seed)

    held_ids = [c["index"] for c in ds.card["contexts"] if c["held_out"]]
    train_ids = [c["index"] for c in ds.card["contexts"] if not c["held_out"]]
    concept_swd = {names[k]: swd(te, k) for k in train_ids}
    comp_swd = {names[k]: swd(held, k) for k in held_ids}
    bits, kind = _val_bits(model, va, seed)
    return {
        "r2": None if res is None else [float(v) for v in res.r2],
        "mean_r2": None if res is None else float(np.mean(res.r2)),
        "mcc": None if res is None else mcc_value,
        "concept_swd": float(np.mean(list(concept_swd.values()))),
        "composition_swd": float(np.mean(list(comp_swd.values()))) if comp_swd else None,
        "concept_swd_per_context": concept_swd,
        "composition_swd_per_context": comp_swd,
        "bits_per_dim": bits,
        "bits_kind": kind,
        "active_dims": active_dims(latent),
        "latent_dims": int(latent.shape[1]),
        "r2_matrix": None if res is None else res.r2_matrix.tolist(),
    }


def _normaliser_of(model) -> Normaliser | None:
    return getattr(model, "_normaliser", None)


# ---------------------------------------------------------------------------------- run


def run(cfg: RunConfig) -> dict:
    """All stages; returns the metrics dict (also in ``cfg.out/metrics.json``)."""
    out = open_run_dir(cfg.out)
    timings: dict = {}

    t0 = time.perf_counter()
    if cfg.data is not None:
        _say(f"[1/5] dataset: {cfg.data} -> {out / 'data'}")
        ds = adopt_data(cfg.data, out)
    elif cfg.spec is not None:
        _say(f"[1/5] benchmark: {cfg.spec.preset or 'model'} -> {out / 'data'}")
        ds = ensure_data(cfg.spec, out, cfg.progress)
    else:
        raise PipelineError("a run needs a benchmark spec or a dataset (data=)")
    timings["data"] = time.perf_counter() - t0
    _say(f"      {len(ds.context)} samples, {len(ds.context_names)} contexts "
         f"({timings['data']:.1f} s)")  # fmt: skip
    methods = list(cfg.methods or default_methods(ds))
    for name in methods:  # a saved model of other settings stops the run before any training
        saved_model(name, ds, out, train_settings(name, ds, seed=cfg.seed, epochs=cfg.epochs,
                    batch_size=cfg.batch_size, lr=cfg.lr, device=cfg.device,
                    restarts=cfg.restarts), cfg.retrain)  # fmt: skip

    t0 = time.perf_counter()
    if ds.has_ground_truth:
        _say(f"[2/5] identifiability check ({cfg.check_method})")
        report = check(ds.model, cfg.check_method, rng=np.random.default_rng(cfg.seed))
        _write_text(out / "check.txt", str(report) + "\n")
        _write_text(out / "check.json", report.to_json() + "\n")
        _say("      " + ", ".join(f"{k}: {v}" for k, v in verdicts(report).items()))
        _say(f"      full report: {out / 'check.txt'} ({time.perf_counter() - t0:.1f} s)")
    else:
        report = None
        _say("[2/5] identifiability check: skipped (imported data: no ground-truth model to "
             "check)")  # fmt: skip
    timings["check"] = time.perf_counter() - t0

    data_splits = splits(ds)  # once: every method is trained and evaluated on these tensors
    trained, histories, timings["train"] = {}, {}, {}
    for i, name in enumerate(methods):
        t0 = time.perf_counter()
        _say(f"[3/5] train {name} ({i + 1}/{len(methods)})")
        model, hist = train_method(name, ds, out, seed=cfg.seed, epochs=cfg.epochs,
                                   batch_size=cfg.batch_size, lr=cfg.lr, device=cfg.device,
                                   progress=cfg.progress, data_splits=data_splits,
                                   restarts=cfg.restarts, retrain=cfg.retrain)  # fmt: skip
        model.to("cpu").eval()
        trained[name], histories[name] = model, hist
        timings["train"][name] = hist.get("seconds", 0.0)
        reused = "; trained before under the same settings, reused" if model._reused else ""
        _say(f"      {len(hist['val_loss'])} epochs, best val loss "
             f"{min(hist['val_loss']):.4g} ({time.perf_counter() - t0:.1f} s{reused})")  # fmt: skip

    return evaluate_and_report(ds, trained, histories, cfg, report, timings, data_splits)


def evaluate_and_report(
    ds: Dataset, trained: dict, histories: dict, cfg: RunConfig, report, timings: dict,
    data_splits=None,
) -> dict:  # fmt: skip
    """Stages 4 and 5: ``metrics.json``, ``timings.json``, the figures and ``report.md`` in
    ``cfg.out``; returns the metrics."""
    from .report import write_report

    data_splits = data_splits or splits(ds, _normaliser_of(next(iter(trained.values()))))
    t0 = time.perf_counter()
    _say("[4/5] evaluate")
    metrics = evaluate_run(ds, trained, cfg, report, data_splits)
    timings["evaluate"] = time.perf_counter() - t0
    _write_json(cfg.out / "metrics.json", metrics)
    _write_json(cfg.out / "timings.json", timings)

    t0 = time.perf_counter()
    _say("[5/5] report")
    write_report(cfg.out, ds, trained, histories, metrics, timings, report, cfg, data_splits)
    _say(f"      ({time.perf_counter() - t0:.1f} s)")
    _say(f"report: {cfg.out / 'report.md'}")
    return metrics


def verdicts(report) -> dict:
    """Concept -> status (``*`` marks a verdict conditional on a cited theorem)."""
    return {c.concept: c.status + ("*" if c.conditional else "") for c in report.concepts}


#: the training settings the report and metrics.json state for every method
REPORTED = ("seed", "epochs", "batch_size", "lr", "restarts", "device")


def settings_of(model, cfg: RunConfig | None = None) -> dict:
    """The settings ``model`` was trained under (stored with it), or, for a model that carries
    none (built outside :func:`train_method`), those of ``cfg``."""
    stored = getattr(model, "_settings", None)
    if stored is not None:
        return stored
    if cfg is None:
        raise PipelineError("the model carries no training settings, and no config was given")
    return {"seed": cfg.seed, "epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr,
            "restarts": cfg.restarts, "device": torch.device(cfg.device).type}  # fmt: skip


def common_settings(settings: Sequence[dict]) -> dict:
    """Each of :data:`REPORTED` with the value every method shares, None where they differ."""
    out = {}
    for key in REPORTED:
        values = {json.dumps(s.get(key)) for s in settings}
        out[key] = settings[0].get(key) if len(values) == 1 else None
    return out


def evaluate_run(ds: Dataset, trained: dict, cfg: RunConfig, report=None, data_splits=None) -> dict:
    """Metrics of every trained method, each with the settings it was trained under, plus what
    reproduces them (no wall times: the file is the same for the same command and seed). Each
    method is evaluated under its own training seed; the top-level settings are those every
    method shares (None where they differ)."""
    per = {}
    for name, model in trained.items():
        st = settings_of(model, cfg)
        per[name] = evaluate_method(name, model, ds, st["seed"], cfg.n_generate, data_splits)
        per[name]["training"] = dict(st)
        m = per[name]
        comp = m["composition_swd"]
        recovery = ("" if m["mean_r2"] is None
                    else f"mean R2 {m['mean_r2']:.3f}  MCC {m['mcc']:.3f}  ")  # fmt: skip
        _say(f"      {name:<15} {recovery}concept SWD {m['concept_swd']:.4f}  composition SWD "
             f"{'n/a' if comp is None else f'{comp:.4f}'}")  # fmt: skip
    return {
        "spec": ds.card.get("spec") if cfg.spec is None else cfg.spec.to_dict(),
        "dataset": {"name": ds.card["name"], "content_hash": ds.card["content_hash"],
                    "ground_truth": ds.has_ground_truth},
        "omitted": None if ds.has_ground_truth else NO_GROUND_TRUTH,
        **common_settings([settings_of(m, cfg) for m in trained.values()]),
        "concepts": list(ds.card["concept_names"]),
        "verdict": None if report is None else verdicts(report),
        "methods": per,
        "versions": {
            "conceptid": _package_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }  # fmt: skip


def reproduce_commands(run_dir: Path, data: Path | None, trained: dict,
                       check_method: str = "exact") -> str:  # fmt: skip
    """The command lines that train ``trained`` as they were trained (from the settings stored
    with them; methods trained alike share a line) and evaluate them."""
    import shlex

    groups: dict = {}
    for name, model in trained.items():
        st = settings_of(model)
        groups.setdefault(tuple(st.get(k) for k in REPORTED), []).append(name)
    data_arg = shlex.quote(str(data if data is not None else Path(run_dir) / "data"))
    run_arg = shlex.quote(str(run_dir))
    lines = []
    for values, names in groups.items():
        st = dict(zip(REPORTED, values))
        line = (f"conceptid train {data_arg} --out {run_arg} --methods {','.join(names)} "
                f"--seed {st['seed']} --epochs {st['epochs']} --batch-size {st['batch_size']} "
                f"--restarts {st['restarts']} --device {st['device']}")  # fmt: skip
        if st["lr"] != RunConfig.lr:
            line += f"  # learning rate {st['lr']}: train_method(lr=...) in Python"
        lines.append(line)
    line = f"conceptid evaluate {run_arg}" + (f" --data {data_arg}" if data is not None else "")
    lines.append(line + (f" --check-method {check_method}" if check_method != "exact" else ""))
    return "\n".join(lines)


def evaluate_dir(run_dir: Path, data: Path | None = None, check_method: str = "exact") -> dict:
    """Evaluate every trained model of the run directory ``run_dir`` (``conceptid evaluate``):
    metrics, figures and report, stating the settings stored with the models.

    Parameters
    ----------
    run_dir : Path
        A run directory with ``models/*/final.pt``.
    data : Path, optional
        The dataset directory the models were trained on (default ``run_dir/data``).
    check_method : {"exact", "numeric"}

    Returns
    -------
    dict
        The metrics (also in ``run_dir/metrics.json``).

    Raises
    ------
    conceptid.rundir.RunDirError
        ``run_dir`` is not a run directory.
    PipelineError
        It holds no trained model.
    CheckpointError, DatasetError
        A damaged model or dataset, or a model trained on another dataset.
    """
    run_dir = require_run_dir(run_dir)
    ds = load_dataset(data if data is not None else run_dir / "data")
    finals = sorted((run_dir / "models").glob("*/final.pt"))
    if not finals:
        raise PipelineError(f"{run_dir / 'models'} holds no trained model (run `conceptid "
                            "train`)")  # fmt: skip
    trained, histories = {}, {}
    for f in finals:
        model, state = load_trained(f, ds)
        trained[state["method"]], histories[state["method"]] = model, state["history"]
    first = settings_of(next(iter(trained.values())))
    spec = ds.card.get("spec")
    cfg = RunConfig(spec=None if spec is None else BenchmarkSpec.from_dict(spec), out=run_dir,
                    seed=first["seed"], epochs=first["epochs"], batch_size=first["batch_size"],
                    lr=first["lr"], restarts=first["restarts"], methods=list(trained),
                    check_method=check_method, progress=False,
                    command=reproduce_commands(run_dir, data, trained, check_method))  # fmt: skip
    report = None
    if ds.has_ground_truth:
        report = check(ds.model, check_method, rng=np.random.default_rng(cfg.seed))
    timings = {"data": 0.0, "check": 0.0 if report is None else report.seconds,
               "train": {k: h.get("seconds", 0.0) for k, h in histories.items()}}  # fmt: skip
    return evaluate_and_report(ds, trained, histories, cfg, report, timings)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("conceptid")
    except PackageNotFoundError:
        return "unknown"
