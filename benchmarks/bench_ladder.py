"""The recovery ladder: the same concept SEM under harder observation models, every estimator.

Estimators: ``peel`` (Theorem L's identification algorithm on sample moments), ``flow``
(two-step: autoencoder, then the exact likelihood of a latent flow with the SEM prior), ``mle``
(joint manifold likelihood), ``tm`` (theorem-matched VAE), ``lr`` (log-ratio classifier), ``cm``
(context-module VAE), ``pooled``. Every trained estimator is a method of the package's registry
(``conceptid.methods``: ``METHODS`` and ``BENCHMARK_METHODS``, built from the dataset as the
pipeline builds them), trained on the pipeline's normalised splits (``conceptid.splits``); the
two-step and manifold MLEs take the pipeline's schedule for the budget (at the default 60 epochs:
the autoencoder for 20, a snap every 10).
``--restarts R`` trains every estimator ``R`` times (seeds ``seed + 1000 r``) and keeps the fit
with the best validation score (the manifold likelihood where a model has one, else the
validation loss); the wall time counts all restarts.

Rungs (proofs/setting.md): L1 linear mixing; L2 linear + 2 nuisance dims; L3 invertible MLP;
L4 invertible MLP + 2 nuisance dims (5 concepts, Erdos-Renyi DAG, 16 observed dims, 2000 training
samples per context). For each rung, estimator and seed: per-concept R^2 up to the class
(``conceptid.identifiability.align``; Hungarian assignment for the pooled VAE), active latent
dimensions,
wall time (one torch thread), against the pooled VAE trained on the same data and budget.

Run: ``.venv/bin/python benchmarks/bench_ladder.py [--rungs L1,L2,L3,L4] [--seeds 0,1,2]
[--epochs 60] [--restarts 1] [--estimators flow,mle,tm,lr,cm,pooled]``
"""

from __future__ import annotations

import time

import numpy as np
import torch
from _args import at_least, int_list, name_list, parser

from conceptid.evaluation import latent_means
from conceptid.identifiability import Numeric, align, identify_linear
from conceptid.methods import BENCHMARK_METHODS, METHODS
from conceptid.models.metrics import active_dims
from conceptid.models.trainer import TrainConfig, fit_restarts
from conceptid.simulations import BenchmarkSpec, generate
from conceptid.simulations.density import true_nll
from conceptid.splits import splits

RUNGS = {
    "L1": {"mixing": "linear", "nuisance_dim": 0},
    "L2": {"mixing": "linear", "nuisance_dim": 2},
    "L3": {"mixing": "mlp", "nuisance_dim": 0},
    "L4": {"mixing": "mlp", "nuisance_dim": 2},
}
#: the ladder's estimators: its short name -> the registry's method (None: ``peel``, which is
#: not trained) and the name the table prints
ESTIMATORS = {
    "peel": (None, "peeling (moments)"),
    "flow": ("latent-flow", "latent-flow MLE"),
    "mle": ("manifold-mle", "manifold MLE + peel"),
    "tm": ("theorem-matched", "theorem-matched VAE"),
    "lr": ("log-ratio", "log-ratio classifier"),
    "cm": ("context-module", "context-module VAE"),
    "pooled": ("pooled", "pooled VAE"),
}


def method(kind: str):
    """The registry's method behind the ladder's estimator ``kind``."""
    if kind not in ESTIMATORS or ESTIMATORS[kind][0] is None:
        trained = sorted(k for k, (name, _) in ESTIMATORS.items() if name is not None)
        raise SystemExit(f"unknown trained estimator {kind!r}; known: {trained} and peel")
    name = ESTIMATORS[kind][0]
    return METHODS.get(name) or BENCHMARK_METHODS[name]


def run(rung: str, kind: str, seed: int, epochs: int, restarts: int = 1) -> dict:
    m, p = 5, 16
    spec = BenchmarkSpec(
        preset="random", preset_args={"m": m, "p": p, **RUNGS[rung]},
        n_train=2000, n_val=300, n_test=500, seed=seed,
    )  # fmt: skip
    ds = generate(spec)
    norm, (tr, va, te, _) = splits(ds)  # standardised by the training split's mean and std
    mu, sd = norm.mean, norm.std
    if kind == "peel":
        return _peel(tr, te, m)
    estimator = method(kind)
    t0 = time.perf_counter()
    cfg = TrainConfig(epochs=epochs, lr=3e-3, batch_size=256, progress=False, seed=seed,
                      patience=max(10, epochs // 4))  # fmt: skip
    model, _ = fit_restarts(lambda: estimator.make(ds, epochs), tr, va, cfg, restarts)
    sec = time.perf_counter() - t0
    learned = model.concepts(te.x, te.targets).numpy()
    res = align(learned, te.concepts.numpy(), assignment=estimator.assignment)
    enc = latent_means(model, te.x)
    out = {"r2": res.r2, "active": active_dims(enc), "latent": enc.shape[1], "seconds": sec}
    if hasattr(model, "nll"):
        learned_nll = model.nll(va.x, va.targets).double().mean().item()
        truth = true_nll(ds, "val", mean=mu.double().numpy(), std=sd.double().numpy())
        out["nll_gap"] = learned_nll - truth.mean()
    return out


def _peel(tr, te, m: int) -> dict:
    """Theorem L's constructive identification on the training contexts' sample moments: the
    read-out ``c = H x`` (exact for linear mixing up to sampling error; a linear approximation
    under nonlinear mixing)."""
    t0 = time.perf_counter()
    X, T = tr.x.numpy(), tr.targets.numpy()
    moments, targets = [], []
    for k in range(m + 1):
        rows = ~T.any(1) if k == 0 else T[:, k - 1] & (T.sum(1) == 1)
        moments.append((X[rows].mean(0), np.cov(X[rows].T)))
        targets.append(None if k == 0 else k - 1)
    H = identify_linear(moments, targets, [1] * m, Numeric()).readout
    sec = time.perf_counter() - t0
    res = align(te.x.numpy() @ H.T, te.concepts.numpy())
    return {"r2": res.r2, "active": m, "latent": m, "seconds": sec}


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--rungs", default="L1,L2,L3,L4")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--restarts", type=int, default=1)
    ap.add_argument("--estimators", default="peel,flow,mle,tm,lr,cm,pooled")
    a = ap.parse_args(argv)
    rungs = name_list(ap, "--rungs", a.rungs, RUNGS, "rung")
    seeds = int_list(ap, "--seeds", a.seeds, minimum=0)
    at_least(ap, a, ("epochs", "restarts"))
    estimators = name_list(ap, "--estimators", a.estimators, ESTIMATORS, "estimator")
    torch.set_num_threads(1)
    print(f"recovery ladder: 5 concepts, {a.epochs} epochs, seeds {seeds}, {a.restarts} "
          f"restart(s), one torch thread")  # fmt: skip
    print(f"{'rung':<5}{'estimator':<22}{'mean R2':>8}{'min R2':>8}  {'per-seed mean R2':<17}"
          f"per-concept R2 (seed 0)    {'active':>7}{'time [s]':>9}{'NLL gap':>9}")  # fmt: skip
    for rung in rungs:
        pooled_mean = None
        for kind in estimators:
            runs = [run(rung, kind, s, a.epochs, a.restarts) for s in seeds]
            r2 = np.array([r["r2"] for r in runs])
            mean = float(r2.mean())
            if kind == "pooled":
                pooled_mean = mean
            per = " ".join(f"{v:.2f}" for v in runs[0]["r2"])
            active = f"{runs[0]['active']}/{runs[0]['latent']}"
            sec = np.mean([r["seconds"] for r in runs])
            gap = f"{np.mean([r['nll_gap'] for r in runs]):+.2f}" if "nll_gap" in runs[0] else ""
            seeds_mean = " ".join(f"{v:.2f}" for v in r2.mean(1))
            label = ESTIMATORS[kind][1]
            print(f"{rung:<5}{label:<22}{mean:>8.3f}{r2.min():>8.3f}  {seeds_mean:<17}"
                  f"{per:<27}{active:>7}{sec:>9.1f}{gap:>9}", flush=True)  # fmt: skip
        if pooled_mean is not None:
            print(f"{'':<5}(peer: pooled VAE, mean R2 {pooled_mean:.3f}, same data, budget)")
    print("goals: R2 >= 0.95 on L1-L2 and >= 0.9 on L3-L4 for the theorem-matched estimator")
    print("NLL gap: validation NLL of the fit minus that of the true density, nats (mean)")
    print("(peeling: identify_linear on the sample moments of x; no training, a linear read-out)")


if __name__ == "__main__":
    main()
