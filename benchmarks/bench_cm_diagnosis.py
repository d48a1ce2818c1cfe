"""What limits the context-module VAE on the recovery ladder: is the information lost, or present
but not aligned with the intervention labels?

For each rung and seed (the ladder's data, budget and trainer), three R^2 figures of the learned
concepts (``ContextModuleVAE.concepts``) against the true ones, each the mean over concepts:

- ``labelled``: block ``j`` against concept ``j`` (what the theorem asks: the label of the
  intervention names the concept; ``conceptid.identifiability.align`` with the given assignment);
- ``hungarian``: the best one-to-one assignment of learned to true concepts (``align`` with
  ``assignment="hungarian"``, as for the pooled VAE);
- ``all``: each true concept from *all* learned concepts by least squares (an affine map of the
  whole vector; the information content).

Variants: ``cm`` (the module as in the pipeline: a context-free encoder to the exogenous noise)
and ``cm-ctx`` (the encoder also reads the sample's target mask: the posterior of the exogenous
noise given ``x`` depends on the context, ``eps = A_k^-1 c``, so a context-free encoder is
misspecified in every interventional context).

Run: ``.venv/bin/python benchmarks/bench_cm_diagnosis.py [--rungs L1,L2,L3,L4] [--seeds 0,1,2]
[--epochs 60] [--variants cm,cm-ctx]``
"""

from __future__ import annotations

import time

import numpy as np
import torch
from _args import at_least, int_list, name_list, parser
from bench_ladder import RUNGS
from torch import nn

from conceptid.identifiability import align
from conceptid.models.data import from_dataset
from conceptid.models.estimators import ContextModuleVAE
from conceptid.models.nets import mlp
from conceptid.models.trainer import TrainConfig, fit
from conceptid.simulations import BenchmarkSpec, generate


class ContextEncoder(nn.Module):
    """``(x, target mask) -> (mean, log_var)`` of the exogenous noise and nuisance."""

    def __init__(self, p: int, m: int, D: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = mlp([p + m, hidden, hidden, 2 * D])
        self.m, self.targets = m, None

    def forward(self, x: torch.Tensor):
        t = self.targets if self.targets is not None else torch.zeros(len(x), self.m)
        mean, log_var = self.net(torch.cat([x, t.float()], 1)).chunk(2, dim=1)
        return mean, log_var.clamp(-12, 8)


class ContextAwareVAE(ContextModuleVAE):
    """The module with :class:`ContextEncoder`; the target mask reaches it per batch."""

    def _with_targets(self, targets, call):
        self.encoder.targets = targets
        try:
            return call()
        finally:
            self.encoder.targets = None

    def loss(self, batch, generator=None):
        return self._with_targets(batch.targets, lambda: super(ContextAwareVAE, self).loss(
            batch, generator))  # fmt: skip

    def concepts(self, x, targets=None):
        return self._with_targets(targets, lambda: super(ContextAwareVAE, self).concepts(
            x, targets))  # fmt: skip


#: the module as in the pipeline, and with the context-aware encoder
VARIANTS = ("cm", "cm-ctx")


def run(rung: str, variant: str, seed: int, epochs: int) -> dict:
    m, p = 5, 16
    spec = BenchmarkSpec(preset="random", preset_args={"m": m, "p": p, **RUNGS[rung]},
                         n_train=2000, n_val=300, n_test=500, seed=seed)  # fmt: skip
    ds = generate(spec)
    tr, va, te = (from_dataset(ds, s, "training") for s in ("train", "val", "test"))
    mu, sd = tr.x.mean(0), tr.x.std(0)
    for d in (tr, va, te):
        d.x = (d.x - mu) / sd
    nuisance = RUNGS[rung]["nuisance_dim"]
    torch.manual_seed(seed)
    if variant == "cm":
        model = ContextModuleVAE((p,), [1] * m, nuisance)
    elif variant == "cm-ctx":
        model = ContextAwareVAE((p,), [1] * m, nuisance, encoder=ContextEncoder(p, m, m + nuisance))
    else:
        raise ValueError(f"unknown variant {variant!r}; known: cm, cm-ctx")
    t0 = time.perf_counter()
    fit(model, tr, va, TrainConfig(epochs=epochs, lr=3e-3, batch_size=256, progress=False,
                                   seed=seed, patience=max(10, epochs // 4)))  # fmt: skip
    sec = time.perf_counter() - t0
    learned, true = model.concepts(te.x, te.targets).numpy(), te.concepts.numpy()
    return {
        "labelled": align(learned, true).r2.mean(),
        "hungarian": align(learned, true, assignment="hungarian").r2.mean(),
        "all": align(learned, true, learned_blocks=[range(m)] * m).r2.mean(),
        "seconds": sec,
    }


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--rungs", default="L1,L2,L3,L4")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--variants", default="cm,cm-ctx")
    a = ap.parse_args(argv)
    rungs = name_list(ap, "--rungs", a.rungs, RUNGS, "rung")
    seeds = int_list(ap, "--seeds", a.seeds, minimum=0)
    at_least(ap, a, ("epochs",))
    variants = name_list(ap, "--variants", a.variants, VARIANTS, "variant")
    torch.set_num_threads(1)
    print(
        f"context-module VAE diagnosis: 5 concepts, {a.epochs} epochs, seeds {seeds}, one "
        "torch thread; mean R2 over concepts, then over seeds (per seed in brackets)"
    )
    print(f"{'rung':<5}{'variant':<8}{'labelled':>22}{'hungarian':>22}{'all':>22}{'time [s]':>9}")
    for rung in rungs:
        for variant in variants:
            runs = [run(rung, variant, s, a.epochs) for s in seeds]
            cells = []
            for key in ("labelled", "hungarian", "all"):
                v = [r[key] for r in runs]
                cells.append(f"{np.mean(v):.2f} [" + " ".join(f"{x:.2f}" for x in v) + "]")
            sec = np.mean([r["seconds"] for r in runs])
            print(f"{rung:<5}{variant:<8}" + "".join(f"{c:>22}" for c in cells) + f"{sec:>9.1f}",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
