"""Step 2's local optima on one autoencoder: does the likelihood tell them apart?

The two-step fit of the context module as exact prior (``context-flow``) on the identifiable quad
scene: one autoencoder (step 1), then step 2 from ``--starts`` random starts (a new flow and prior
each, their own seed and shuffling), each fitted separately for ``--flow-epochs``. For each start:
its likelihood loss on a probe of the training data (what ``flow_restarts`` compares), its
validation NLL (the density of ``x`` on the learned manifold, ``selection_score``) and its R^2 up
to the class, concept by concept. Before the starts: how much of each concept the frozen latent
holds, read out by least squares, by 10 nearest neighbours and by an MLP (scikit-learn): when the
MLP read-out is near 1, the autoencoder kept the concept and any loss is step 2's.

Run: ``.venv/bin/python benchmarks/bench_flow_starts.py [--seed 2] [--n 1000] [--ae-epochs 30]
[--flow-epochs 30] [--starts 5] [--threads 1]`` (needs scikit-learn, in the ``test`` extra)
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _args import at_least, parser

from conceptid.identifiability import align
from conceptid.methods import METHODS
from conceptid.models.flow import LatentFlow
from conceptid.models.mle import probe_rows
from conceptid.models.trainer import TrainConfig, fit
from conceptid.pipeline import ensure_data, splits
from conceptid.simulations import BenchmarkSpec


def readouts(Ztr, Ctr, Zte, Cte, seed: int) -> list[tuple[float, float, float]]:
    """Per concept, test R^2 of (least squares, 10-NN, MLP) read-outs of it from the latent."""
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.neural_network import MLPRegressor

    mu, sd = Ztr.mean(0), Ztr.std(0)
    A, B = (Ztr - mu) / sd, (Zte - mu) / sd
    out = []
    for j in range(Ctr.shape[1]):
        y, t = Ctr[:, j], Cte[:, j]
        coef = np.linalg.lstsq(np.c_[A, np.ones(len(A))], y, rcond=None)[0]
        lin = 1 - np.var(t - np.c_[B, np.ones(len(B))] @ coef) / np.var(t)
        knn = KNeighborsRegressor(10).fit(A, y).score(B, t)
        mlp = MLPRegressor(hidden_layer_sizes=(128, 128), max_iter=300, random_state=seed)
        out.append((float(lin), float(knn), float(mlp.fit(A, y).score(B, t))))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--n", type=int, default=1000, help="training images per context")
    ap.add_argument("--ae-epochs", type=int, default=30)
    ap.add_argument("--flow-epochs", type=int, default=30)
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    at_least(ap, a, ("seed",), minimum=0)
    at_least(ap, a, ("n", "ae_epochs", "flow_epochs", "starts", "threads"))
    torch.set_num_threads(a.threads)
    args = {"image_size": 32, "identifiable": True}
    spec = BenchmarkSpec(preset="quad", preset_args=args, n_train=a.n,
                         n_val=max(100, a.n // 5), n_test=500, seed=a.seed)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        ds = ensure_data(spec, Path(tmp), progress=False)
        _, (tr, va, te, _) = splits(ds)
    names = list(ds.concept_names)
    torch.manual_seed(a.seed)
    model = METHODS["context-flow"].build(ds, a.ae_epochs + a.flow_epochs, ae_epochs=a.ae_epochs)
    t0 = time.perf_counter()
    # step 1 only (the last epoch switches to step 2 and takes the first snap)
    fit(model, tr, va, TrainConfig(epochs=a.ae_epochs, seed=a.seed, progress=False))
    print(
        f"quad identifiable 32x32, seed {a.seed}, {a.n} training images per context; "
        f"autoencoder {a.ae_epochs} epochs in {time.perf_counter() - t0:.0f} s"
    )
    with torch.no_grad():
        Ztr, Zte = model.latent(tr.x).numpy(), model.latent(te.x).numpy()
    print("the frozen latent's read-out of each concept, test R^2 (least squares / 10-NN / MLP):")
    for name, (lin, knn, mlp) in zip(names, readouts(Ztr, tr.concepts.numpy(), Zte,
                                                    te.concepts.numpy(), a.seed)):  # fmt: skip
        print(f"  {name:<12}{lin:>7.3f}{knn:>7.3f}{mlp:>7.3f}")
    base = copy.deepcopy(model)
    probe = tr.batch(probe_rows(len(tr)))
    print(f"step 2 from {a.starts} starts, {a.flow_epochs} epochs each:")
    head = f"{'start':<7}{'probe loss':>11}{'val NLL':>9}{'min R2':>8}"
    print(f"{head}  R^2 per concept ({', '.join(names)})")
    for r in range(a.starts):
        m = copy.deepcopy(base)
        if r > 0:  # a new flow and prior, snapped afresh on the same latent
            torch.manual_seed(100 + r)
            m.flow = LatentFlow(m.D, 6, 64, seed=100 + r)
            m.prior = m._new_prior()
            m.snap(tr)
        m.ae_epochs = 0
        fit(m, tr, va, TrainConfig(epochs=a.flow_epochs, seed=a.seed + r, progress=False))
        m.eval()
        with torch.no_grad():
            loss = m.objective(probe)[0].item()
        r2 = align(m.concepts(te.x).numpy(), te.concepts.numpy(), ds.block_sizes).r2
        print(
            f"{r:<7}{loss:>11.3f}{m.selection_score(va):>9.3f}{min(r2):>8.3f}  "
            + " ".join(f"{v:.3f}" for v in r2)
        )


if __name__ == "__main__":
    main()
