"""What the context masks cost: one forward + backward pass of the context module on a batch of
512 that mixes 7 contexts (observational + 6 single-concept interventions), against two peers
measured in the same run:

- ``per-context``: the same module run once per context on that context's sub-batch (the loop the
  per-sample masks avoid; goal: the mixed batch is at least 3x faster);
- ``plain MLP``: a stack of unmasked ``nn.Linear`` layers with the same weight shapes
  (intervention K->K, expressive K->mH->K with tanh, causal K->K, representation K->out), the
  floor; goal: the module within 1.5x of it.

Both the module alone and a full step with an MLP encoder/decoder (``p`` observed dims) are timed.

Run: ``.venv/bin/python benchmarks/bench_masking.py [--repeats 200] [--block 2] [--threads 1]``
"""

from __future__ import annotations

import time

import torch
from _args import at_least, parser
from torch import nn

from conceptid.models.context_module import ContextModule
from conceptid.models.nets import MLPDecoder, MLPEncoder


class PlainStack(nn.Module):
    """The context module's weight shapes without masks or contexts."""

    def __init__(self, K: int, H: int, out: int) -> None:
        super().__init__()
        self.intervention = nn.Linear(K, K)
        self.hidden, self.back = nn.Linear(K, H), nn.Linear(H, K)
        self.causal = nn.Linear(K, K, bias=False)
        self.representation = nn.Linear(K, out)

    def forward(self, eps, nuisance, targets):
        u = self.intervention(eps)
        v = u + self.back(torch.tanh(self.hidden(u)))
        c = v + self.causal(v)
        return torch.cat([self.representation(c), nuisance], 1), c


def _time_all(steps: dict, repeats: int, rounds: int = 7) -> dict:
    """Best time per call of each step; the steps are interleaved in every round, so that a
    slow patch of the shared machine hits all of them alike."""
    for step in steps.values():
        for _ in range(10):
            step()
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):
        for name, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(repeats):
                step()
            best[name] = min(best[name], (time.perf_counter() - t0) / repeats)
    return best


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--block", type=int, default=2, help="coordinates per concept")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    at_least(ap, a, ("repeats", "block", "threads"))
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m, b, nuis, out, p, hidden = 6, 512, 4, 32, 64, 16
    K = m * a.block
    # contexts: 0 = observational, k = do(concept k - 1); each sample draws one
    ctx = torch.randint(0, m + 1, (b,))
    targets = torch.zeros(b, m, dtype=torch.bool)
    targets[ctx > 0, ctx[ctx > 0] - 1] = True
    eps, n = torch.randn(b, K), torch.randn(b, nuis)
    module = ContextModule([a.block] * m, out, nuis, hidden)
    plain = PlainStack(K, m * hidden, out)
    enc, dec = MLPEncoder(p, K + nuis), MLPDecoder(out + nuis, p)
    x = torch.randn(b, p)

    def mixed(net):
        def step():
            rep, _ = net(eps, n, targets)
            rep.square().sum().backward()

        return step

    def per_context():
        for k in range(m + 1):
            rows = ctx == k
            rep, _ = module(eps[rows], n[rows], targets[rows])
            rep.square().sum().backward()

    def full(net, split: bool):
        def step():
            mean, _ = enc(x)
            if split:
                loss = 0.0
                for k in range(m + 1):
                    rows = ctx == k
                    rep, _ = net(mean[rows, :K], mean[rows, K:], targets[rows])
                    loss = loss + (dec(rep) - x[rows]).square().sum()
            else:
                rep, _ = net(mean[:, :K], mean[:, K:], targets)
                loss = (dec(rep) - x).square().sum()
            loss.backward()

        return step

    t = _time_all({
        "module, mixed batch": mixed(module),
        "module, per context": per_context,
        "plain MLP": mixed(plain),
        "step, mixed batch": full(module, False),
        "step, per context": full(module, True),
        "step, plain MLP": full(plain, False),
    }, a.repeats)  # fmt: skip
    print(f"context-module masking cost: batch {b}, {m + 1} contexts, K={K}, "
          f"{a.threads} thread(s), best of 7 interleaved rounds x {a.repeats} calls")  # fmt: skip
    for name, sec in t.items():
        print(f"  {name:<22}{sec * 1e6:>9.0f} us")
    for what in ("module", "step"):  # the goals are the module's; the step is context
        mix = t[f"{what}, mixed batch"]
        goals = (" (goal >= 3x)", " (goal <= 1.5x)") if what == "module" else ("", "")
        print(f"{what:<7} mixed batch vs per-context sub-batches: "
              f"{t[f'{what}, per context'] / mix:5.1f}x faster{goals[0]}")  # fmt: skip
        plain_t = t["plain MLP" if what == "module" else "step, plain MLP"]
        print(f"{what:<7} mixed batch vs plain MLP (same weight shapes): "
              f"{mix / plain_t:5.2f}x the time{goals[1]}")  # fmt: skip


if __name__ == "__main__":
    main()
