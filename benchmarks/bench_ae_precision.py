"""What mixed precision buys step 1: one epoch of the conv autoencoder of the two-step fit
(``LatentFlowMLE``, the ``context-flow`` method) on images under ``ae_autocast="bfloat16"``,
against the peer measured in the same run: the same epoch in float32 (the default). The floor is
the bfloat16 forward pass alone (no backward, no optimiser step). The reconstruction loss of
both after the same epochs is printed too, so that the speed is not bought with a worse fit.

The gain depends on the CPU: with bfloat16 instructions (AVX512-BF16 or AMX) the convolutions
run faster; without them autocast can be slower than float32.

Data: the identifiable quad scene at 32x32, ``--n`` training images per context (9 contexts).

Run: ``.venv/bin/python benchmarks/bench_ae_precision.py [--n 1000] [--epochs 3] [--threads 1]``
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


def _epoch(model, data, opt, seed: int, step: bool = True) -> tuple[float, float]:
    """Seconds and mean training loss of one epoch of step 1."""
    g = torch.Generator().manual_seed(seed)
    total, n = 0.0, 0
    t0 = time.perf_counter()
    for batch in data.batches(256, g):
        loss, _ = model.loss(batch)
        if step:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        total, n = total + loss.item() * len(batch), n + len(batch)
    return time.perf_counter() - t0, total / n


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--n", type=int, default=1000, help="training images per context")
    ap.add_argument("--epochs", type=int, default=3, help="epochs of each (the best is timed)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    at_least(ap, a, ("n", "epochs", "threads"))
    torch.set_num_threads(a.threads)
    spec = BenchmarkSpec(preset="quad", preset_args={"image_size": 32, "identifiable": True},
                         n_train=a.n, n_val=max(100, a.n // 5), n_test=100, seed=0)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        ds = ensure_data(spec, Path(tmp), progress=False)
        _, (train, *_) = splits(ds)
    models, opts, times, losses = {}, {}, {}, {}
    for name, dtype in (("float32 (default)", None), ("bfloat16 autocast", "bfloat16")):
        torch.manual_seed(0)  # the same initial weights for both
        models[name] = METHODS["context-flow"].build(ds, 30, ae_autocast=dtype).train()
        models[name].prepare(train)
        opts[name] = torch.optim.Adam(models[name].parameters(), lr=2e-3)
        times[name], losses[name] = [], []
    for e in range(a.epochs):  # interleaved, so that both see the same machine
        for name in models:
            sec, loss = _epoch(models[name], train, opts[name], seed=e)
            times[name].append(sec)
            losses[name].append(loss)
    floor = []
    with torch.no_grad():
        for e in range(a.epochs):
            floor.append(_epoch(models["bfloat16 autocast"], train, None, e, step=False)[0])
    peer = min(times["float32 (default)"])
    print(
        f"step 1 of context-flow (conv autoencoder), quad identifiable 32x32, {len(train)} "
        f"training images, batch 256, {a.threads} torch thread(s), best of {a.epochs} epochs"
    )
    print(f"{'epoch of step 1':<40}{'seconds':>10}{'vs float32':>12}{'loss after':>12}")
    for name in models:
        t = min(times[name])
        print(f"{name:<40}{t:>10.3f}{peer / t:>11.2f}x{losses[name][-1]:>12.2f}")
    print(f"{'floor: bfloat16 forward only':<40}{min(floor):>10.3f}{peer / min(floor):>11.2f}x")


if __name__ == "__main__":
    main()
