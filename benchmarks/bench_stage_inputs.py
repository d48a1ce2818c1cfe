"""What computing the frozen latent once buys: one epoch of step 2 of the two-step fit
(``LatentFlowMLE(prior="context-module")``, the ``context-flow`` method) on images, reading the
latent from ``stage_inputs`` (computed once per stage), against the peer measured in the same
run: the same epoch running the frozen conv encoder in every batch (how step 2 ran before the
``stage_inputs`` hook). The floor is the flow and the prior alone on the cached latent, without
the optimiser step. The one-off cost of computing the latent is printed too.

Data: the identifiable quad scene at 32x32, ``--n`` training images per context (9 contexts).

Run: ``.venv/bin/python benchmarks/bench_stage_inputs.py [--n 1000] [--repeats 3] [--threads 1]``
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from _args import at_least, parser

from conceptid.methods import METHODS
from conceptid.pipeline import ensure_data, splits
from conceptid.simulations import BenchmarkSpec


def _epoch(model, data, opt, step: bool = True) -> float:
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for batch in data.batches(256, g):
        loss, _ = model.loss(batch)
        if step:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--n", type=int, default=1000, help="training images per context")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    at_least(ap, a, ("n", "repeats", "threads"))
    torch.set_num_threads(a.threads)
    spec = BenchmarkSpec(preset="quad", preset_args={"image_size": 32, "identifiable": True},
                         n_train=a.n, n_val=max(100, a.n // 5), n_test=100, seed=0)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        ds = ensure_data(spec, Path(tmp), progress=False)
        _, (train, *_) = splits(ds)
    torch.manual_seed(0)
    model = METHODS["context-flow"].make(ds, 30)
    model.prepare(train)
    model._start_likelihood()  # step 2: the encoder is frozen from here
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    once = []
    for _ in range(a.repeats):  # the first call also pays torch's one-off set-up
        t0 = time.perf_counter()
        cached = model.stage_inputs(train)
        once.append(time.perf_counter() - t0)
    rows = {"encoder in every batch (before)": [], "latent computed once (stage_inputs)": [],
            "floor: flow and prior forward only": []}  # fmt: skip
    for _ in range(a.repeats):
        rows["encoder in every batch (before)"].append(_epoch(model, train, opt))
        rows["latent computed once (stage_inputs)"].append(_epoch(model, cached, opt))
        with torch.no_grad():
            rows["floor: flow and prior forward only"].append(_epoch(model, cached, opt, False))
    best = {k: min(v) for k, v in rows.items()}
    peer = best["encoder in every batch (before)"]
    print(
        f"step 2 of context-flow, quad identifiable 32x32, {len(train)} training images, "
        f"batch 256, {a.threads} torch thread(s), best of {a.repeats} epochs"
    )
    print(f"{'epoch of step 2':<40}{'seconds':>10}{'vs before':>12}")
    for k, v in best.items():
        print(f"{k:<40}{v:>10.3f}{peer / v:>11.2f}x")
    print(f"computing the latent once per stage: {min(once):.3f} s (best of {a.repeats})")


if __name__ == "__main__":
    main()
