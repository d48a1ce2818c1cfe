"""The main job, stage by stage: generate -> check -> train -> evaluate -> report.

A *run directory* is the on-disk format every stage reads and writes, so a run can be stopped and
resumed anywhere (each file is written atomically):

    RUN/data/                      the benchmark dataset (simulations.benchmark format)
    RUN/check.json, check.txt      the identifiability verdict
    RUN/models/METHOD/final.pt     a trained model (written once training has finished)
    RUN/models/METHOD/checkpoint.pt  the trainer's resumable checkpoint (while training)
    RUN/metrics.json               every metric of every method (deterministic under the seed)
    RUN/timings.json               wall times of every stage and method
    RUN/figures/*.png, RUN/report.md

A method whose ``final.pt`` exists is not retrained; a run interrupted during training resumes
from the trainer's checkpoint.
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

from identifiability import align, check
from models.data import TensorData, from_dataset, targets_mask
from models.estimators import ContextModuleVAE, PooledVAE
from models.metrics import active_dims, bits_per_dim, mcc, sliced_wasserstein
from models.mle import LatentFlowMLE, ManifoldMLE
from models.trainer import CheckpointError, TrainConfig, _load, _save, fit_restarts
from simulations.atomic import atomic_path
from simulations.benchmark import BenchmarkSpec, Dataset, DatasetError, generate, load_dataset
from simulations.errors import ConceptIDError
from simulations.validation import check_number

__all__ = [
    "METHODS",
    "PipelineError",
    "Method",
    "RunConfig",
    "default_methods",
    "evaluate_and_report",
    "evaluate_run",
    "latent_means",
    "load_trained",
    "run",
    "train_method",
]


class PipelineError(ConceptIDError):
    """A run was asked for something it cannot do (an unknown method, a wrong data kind)."""


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
    return tuple(ds.card["block_sizes"]), int(ds.nuisance.shape[1]) if ds.nuisance.ndim == 2 else 0


def _cm(ds, **kw):
    blocks, nd = _dims(ds)
    return ContextModuleVAE(_shape(ds), blocks, nd, _likelihood(ds), **kw)


def _pooled(ds, **kw):
    blocks, nd = _dims(ds)
    return PooledVAE(_shape(ds), sum(blocks) + nd, _likelihood(ds), **kw)


def _flow(ds, epochs: int = 60, **kw):
    """Autoencoder for a third of the budget, then the flow; snaps every sixth (1 to 10)."""
    blocks, nd = _dims(ds)
    return LatentFlowMLE(_shape(ds), blocks, nd, ae_epochs=max(1, epochs // 3),
                         snap_every=max(1, min(10, epochs // 6)), **kw)  # fmt: skip


def _mle(ds, epochs: int = 60, **kw):
    """Snap period: a sixth of the budget, between 1 and 10 epochs."""
    blocks, nd = _dims(ds)
    return ManifoldMLE(_shape(ds), blocks, nd, snap_every=max(1, min(10, epochs // 6)), **kw)


METHODS: dict[str, Method] = {
    "context-module": Method("context module (end to end)", _cm, False),
    "ablation": Method(
        "context module, labels ignored", lambda ds: _cm(ds, use_labels=False), False
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
    """Everything a run needs; recorded in metrics.json and the report."""

    spec: BenchmarkSpec
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
    command: str = field(default_factory=lambda: " ".join(sys.argv))

    def __post_init__(self) -> None:
        self.out = Path(self.out)
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
    """Load ``out/data`` if it holds this spec's dataset, else generate and save it."""
    path = out / "data"
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


def train_method(
    name: str, ds: Dataset, out: Path, *, seed: int = 0, epochs: int = 20, batch_size: int = 128,
    lr: float = 2e-3, device: str = "cpu", progress: bool = True, data_splits=None,
    restarts: int = 1,
) -> tuple[torch.nn.Module, dict]:  # fmt: skip
    """Train ``name`` on ``ds`` into ``out/models/name`` (skipped if ``final.pt`` exists).
    ``data_splits``: the result of :func:`splits` when the caller already has it. ``restarts``:
    fits from different seeds, the best kept (:func:`models.trainer.fit_restarts`)."""
    if name not in METHODS:
        raise PipelineError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    check_number(restarts, "restarts", error=PipelineError)
    folder = out / "models" / name
    final = folder / "final.pt"
    if final.exists():
        model, state = load_trained(final, ds)
        return model, state["history"]
    method = METHODS[name]
    if method.vectors_only and ds.x.dtype == np.uint8:
        raise PipelineError(f"{name} needs vector observations; this dataset holds images")
    norm, (tr, va, _, _) = data_splits or splits(ds)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
                      patience=max(10, epochs // 3), progress=progress,
                      checkpoint=str(folder / "checkpoint.pt"))  # fmt: skip
    model, hist = fit_restarts(lambda: method.make(ds, epochs), tr, va, cfg, restarts)
    _save(final, {
        "model_class": type(model).__name__, "method": name, "model": model.state_dict(),
        "config": {"seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                   "restarts": restarts},
        "normaliser": norm.state(), "history": hist, "card_hash": ds.card["card_hash"],
    })  # fmt: skip
    for ckpt in folder.glob("checkpoint.pt*"):
        ckpt.unlink()
    model._normaliser = norm
    return model, hist


def load_trained(path: Path, ds: Dataset):
    """A trained model from ``final.pt``, checked against the dataset it was trained on."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise CheckpointError(f"{path} is corrupted or unreadable: {err}") from None
    if not isinstance(state, dict) or state.get("method") not in METHODS:
        raise CheckpointError(f"{path} is not a trained conceptid model")
    if state.get("card_hash") != ds.card["card_hash"]:
        raise CheckpointError(f"{path} was trained on a different dataset")
    model = METHODS[state["method"]].make(ds, state["config"]["epochs"])
    _load(path, model)
    model.eval()
    n = state.get("normaliser") or {}
    model._normaliser = Normaliser(n.get("mean"), n.get("std"))
    return model, state


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


def evaluate_method(
    name: str, model, ds: Dataset, seed: int = 0, n_generate: int = 500, data_splits=None
) -> dict:
    """Recovery up to the class, MCC, concept and composition SWD, bits/dim, active dims."""
    _, (_, va, te, held) = data_splits or splits(ds, _normaliser_of(model))
    blocks, _ = _dims(ds)
    learned = model.concepts(te.x, te.targets).numpy()
    true = te.concepts.numpy()
    assignment = "hungarian" if METHODS[name].hungarian else "given"
    res = align(learned, true, blocks, assignment=assignment)
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
        "r2": [float(v) for v in res.r2],
        "mean_r2": float(np.mean(res.r2)),
        "mcc": mcc(learned, true) if learned.shape[1] >= true.shape[1] else float("nan"),
        "concept_swd": float(np.mean(list(concept_swd.values()))),
        "composition_swd": float(np.mean(list(comp_swd.values()))) if comp_swd else None,
        "concept_swd_per_context": concept_swd,
        "composition_swd_per_context": comp_swd,
        "bits_per_dim": bits,
        "bits_kind": kind,
        "active_dims": active_dims(latent),
        "latent_dims": int(latent.shape[1]),
        "r2_matrix": res.r2_matrix.tolist(),
    }


def _normaliser_of(model) -> Normaliser | None:
    return getattr(model, "_normaliser", None)


# ---------------------------------------------------------------------------------- run


def run(cfg: RunConfig) -> dict:
    """All stages; returns the metrics dict (also in ``cfg.out/metrics.json``)."""
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    timings: dict = {}

    t0 = time.perf_counter()
    _say(f"[1/5] benchmark: {cfg.spec.preset or 'model'} -> {out / 'data'}")
    ds = ensure_data(cfg.spec, out, cfg.progress)
    timings["data"] = time.perf_counter() - t0
    _say(f"      {len(ds.context)} samples, {len(ds.context_names)} contexts "
         f"({timings['data']:.1f} s)")  # fmt: skip

    t0 = time.perf_counter()
    _say(f"[2/5] identifiability check ({cfg.check_method})")
    report = check(ds.model, cfg.check_method, rng=np.random.default_rng(cfg.seed))
    _write_text(out / "check.txt", str(report) + "\n")
    _write_text(out / "check.json", report.to_json() + "\n")
    timings["check"] = time.perf_counter() - t0
    _say("      " + ", ".join(f"{k}: {v}" for k, v in verdicts(report).items()))
    _say(f"      full report: {out / 'check.txt'} ({timings['check']:.1f} s)")

    methods = list(cfg.methods or default_methods(ds))
    data_splits = splits(ds)  # once: every method is trained and evaluated on these tensors
    trained, histories, timings["train"] = {}, {}, {}
    for i, name in enumerate(methods):
        t0 = time.perf_counter()
        done = (out / "models" / name / "final.pt").exists()
        _say(f"[3/5] train {name} ({i + 1}/{len(methods)})" + (": done before, loaded" if done
                                                                  else ""))  # fmt: skip
        model, hist = train_method(name, ds, out, seed=cfg.seed, epochs=cfg.epochs,
                                   batch_size=cfg.batch_size, lr=cfg.lr, device=cfg.device,
                                   progress=cfg.progress, data_splits=data_splits,
                                   restarts=cfg.restarts)  # fmt: skip
        model.to("cpu").eval()
        trained[name], histories[name] = model, hist
        timings["train"][name] = hist.get("seconds", 0.0)
        _say(f"      {len(hist['val_loss'])} epochs, best val loss "
             f"{min(hist['val_loss']):.4g} ({time.perf_counter() - t0:.1f} s)")  # fmt: skip

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


def evaluate_run(ds: Dataset, trained: dict, cfg: RunConfig, report=None, data_splits=None) -> dict:
    """Metrics of every trained method plus what reproduces them (no wall times: the file is
    the same for the same command and seed)."""
    per = {}
    for name, model in trained.items():
        per[name] = evaluate_method(name, model, ds, cfg.seed, cfg.n_generate, data_splits)
        m = per[name]
        comp = m["composition_swd"]
        _say(f"      {name:<15} mean R2 {m['mean_r2']:.3f}  MCC {m['mcc']:.3f}  concept SWD "
             f"{m['concept_swd']:.4f}  composition SWD "
             f"{'n/a' if comp is None else f'{comp:.4f}'}")  # fmt: skip
    return {
        "spec": cfg.spec.to_dict(),
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "restarts": cfg.restarts,
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


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("conceptid")
    except PackageNotFoundError:
        return "unknown"
