"""What the trainer's Adam costs a step on the CPU: torch's per-tensor loop (its default off
CUDA, the peer) against ``foreach=True`` (what ``models.fit`` uses: one kernel per operation over
all tensors), with ``fused=True`` as the floor (one kernel for the whole update). Each runs the
same steps from the same weights and gradients; the weights after them are compared bit for bit
with the peer's, since a faster step must not change a fit.

Model: the ``context-flow`` method's ``LatentFlowMLE`` for the identifiable quad scene at 32x32,
in step 1 (the conv autoencoder trains) and in step 2 (it is frozen: the flow and the prior
train, and Adam skips the frozen tensors). ``--flow-layers``/``--flow-hidden``: the flow's size.

Run: ``.venv/bin/python benchmarks/bench_optimizer.py [--steps 400] [--threads 1]``
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

KINDS = {"per-tensor loop (torch default on CPU)": {"foreach": False},
         "foreach (models.fit)": {"foreach": True},
         "fused (floor)": {"fused": True}}  # fmt: skip


def _run(model, grads: list, kind: dict, steps: int, repeats: int) -> tuple[float, list]:
    """Best seconds a step over ``repeats`` timed blocks of ``steps``; the weights after the
    first block (from the model's weights)."""
    params = [p.detach().clone().requires_grad_(p.requires_grad) for p in model.parameters()]
    for p, g in zip(params, grads):
        p.grad = None if g is None else g.clone()
    opt = torch.optim.Adam(params, lr=1e-3, **kind)
    best, after = float("inf"), None
    for r in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            opt.step()
        best = min(best, (time.perf_counter() - t0) / steps)
        if r == 0:
            after = [p.detach().clone() for p in params]
    return best, after


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--steps", type=int, default=400, help="Adam steps per timed block")
    ap.add_argument("--repeats", type=int, default=5, help="timed blocks (the best is shown)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--flow-layers", type=int, default=10)
    ap.add_argument("--flow-hidden", type=int, default=128)
    a = ap.parse_args(argv)
    at_least(ap, a, ("steps", "repeats", "threads", "flow_layers", "flow_hidden"))
    torch.set_num_threads(a.threads)
    spec = BenchmarkSpec(preset="quad", preset_args={"image_size": 32, "identifiable": True},
                         n_train=100, n_val=100, n_test=100, seed=0)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        ds = ensure_data(spec, Path(tmp), progress=False)
        _, (train, *_) = splits(ds)
    torch.manual_seed(0)
    model = METHODS["context-flow"].build(ds, 120, flow_layers=a.flow_layers,
                                          flow_hidden=a.flow_hidden).train()  # fmt: skip
    model.prepare(train)
    batch = train.batch(torch.arange(min(128, len(train))))
    print(
        f"Adam on {type(model).__name__} (flow {a.flow_layers} layers of {a.flow_hidden}), "
        f"{a.threads} torch thread(s), best of {a.repeats} blocks of {a.steps} steps"
    )
    print(f"{'':<12}{'optimiser':<42}{'ms a step':>10}{'vs loop':>9}  same weights as the loop")
    for stage in (0, 1):
        if stage == 1:
            model._start_likelihood()
        model.zero_grad(set_to_none=True)
        model.objective(batch, stage)[0].backward()
        grads = [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]
        n = sum(g is not None for g in grads)
        label = f"step {stage + 1} ({n})"
        res = {name: _run(model, grads, kind, a.steps, a.repeats) for name, kind in KINDS.items()}
        peer_t, peer_w = next(iter(res.values()))
        for name, (t, w) in res.items():
            same = all(torch.equal(u, v) for u, v in zip(w, peer_w))
            print(f"{label:<12}{name:<42}{1e3 * t:>10.3f}{peer_t / t:>8.2f}x  {same}")
            label = ""
    print("(step k (n): n tensors with a gradient; the loop is the peer, fused the floor)")


if __name__ == "__main__":
    main()
