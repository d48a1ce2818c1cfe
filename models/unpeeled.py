"""Concepts that no context intervenes on: their direction, by maximum likelihood on moments.

Theorem L's peeling needs one intervention context per concept. A concept without one (quad's
``color`` and ``shape``) cannot be peeled, and the concepts whose parent it is can be peeled only
approximately. A snap therefore gives such a concept a provisional direction (the latent
directions uncorrelated with the peeled concepts), which is the wrong one whenever it has peeled
descendants: on quad with the concepts observed directly, the likelihood then stays at a wrong
graph (``quad1 <- size`` instead of ``quad1 <- color``).

:func:`fit_unpeeled` repairs this in closed form on the context moments. It refits the linear
Gaussian SEM of every context *and* the unpeeled coordinates' basis,
``u'_U = A_UU u_U + A_UP u_P`` (the peeled coordinates stay), by the exact Gaussian likelihood of
the moments, ``sum_k n_k [KL-type terms] - N log |det A_UU|``, with a NOTEARS acyclicity penalty
and several random starts of ``A_UP``. The unpeeled concepts are not identifiable (witness N1:
any non-descendant may be mixed in), so this picks *a* maximiser; what matters for generation is
that the fitted per-context laws, and hence their compositions, are right.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from conceptid.simulations.validation import check_number

__all__ = ["fit_unpeeled"]


def _dag(W: torch.Tensor) -> torch.Tensor:
    return torch.trace(torch.matrix_exp(W)) - W.shape[0]


def fit_unpeeled(
    moments: Sequence[tuple[np.ndarray, np.ndarray]],
    counts: Sequence[int],
    masks: np.ndarray,
    block_sizes: Sequence[int],
    unpeeled: Sequence[int],
    init: dict,
    *,
    restarts: int = 4,
    steps: int = 400,
    seed: int = 0,
) -> dict | None:
    """Refit the SEM and the unpeeled concepts' basis on context moments of the concepts.

    Parameters
    ----------
    moments : sequence of (mean (K,), cov (K, K))
        One per context, of the current concept coordinates.
    counts : sequence of int
        Samples behind each context's moments.
    masks : ndarray, (n_contexts, m) bool
        The targets of each context.
    block_sizes : sequence of int
    unpeeled : sequence of int
        Concepts with no intervention context.
    init : dict
        The snap's SEM: ``B`` (K, K), ``mu_obs``, ``var_obs``, ``mu_int``, ``var_int`` (K,).
    restarts, steps, seed : int
        Random starts of the mixing into the unpeeled coordinates (0 counts as 1); Adam steps
        per start.

    Returns
    -------
    dict or None
        ``A`` (K, K): the new concept coordinates are ``A u``; and the refitted SEM (keys as
        ``init``); ``None`` when no start ends acyclic.

    Raises
    ------
    conceptid.simulations.errors.UsageError
        Before any work: ``steps`` not an integer >= 1, ``restarts`` not an integer >= 0.
    """
    check_number(steps, "steps (Adam steps per start)")
    check_number(restarts, "restarts (random starts)", minimum=0)
    ks = [int(k) for k in block_sizes]
    K, m = sum(ks), len(ks)
    idx = np.repeat(np.arange(m), ks)
    U = np.isin(idx, list(unpeeled))
    if not U.any():
        return None
    dt = torch.float64
    mus = torch.as_tensor(np.stack([mu for mu, _ in moments]), dtype=dt)  # (C, K)
    covs = torch.as_tensor(np.stack([S for _, S in moments]), dtype=dt)  # (C, K, K)
    n = torch.as_tensor(np.asarray(counts, dtype=float), dtype=dt)
    col = torch.as_tensor(np.asarray(masks)[:, idx], dtype=dt)  # (C, K)
    off = torch.as_tensor(idx[:, None] != idx[None, :], dtype=dt)
    pool = torch.zeros(m, K, dtype=dt)
    pool[idx, np.arange(K)] = 1.0
    free = torch.zeros(K, K, dtype=dt)
    free[np.ix_(U, np.ones(K, bool))] = 1.0  # rows of the unpeeled coordinates may change
    Ut = torch.as_tensor(U)
    eye = torch.eye(K, dtype=dt)

    def nll(A, B, mu_o, lv_o, mu_i, lv_i):
        """Per start ``(R,)``: every argument has the starts as its leading dimension."""
        R, C = A.shape[0], covs.shape[0]
        Bw = B * off
        I_B = eye - Bw[:, None] * (1 - col)[None, :, :, None]  # (R, C, K, K)
        mu_eps = mu_o[:, None] + col * (mu_i - mu_o)[:, None]
        lv = lv_o[:, None] + col * (lv_i - lv_o)[:, None]  # (R, C, K)
        P = torch.einsum("rcki,rck,rckj->rcij", I_B, torch.exp(-lv), I_B)
        mean = torch.linalg.solve(I_B, mu_eps.unsqueeze(-1)).squeeze(-1)
        m2 = mus @ A.transpose(-1, -2)  # (R, C, K)
        # A S_c A^T as one (C K, K) product per start: the same rounding as one start alone
        S2 = ((A[:, None] @ covs).reshape(R, C * K, K) @ A.transpose(-1, -2)).reshape(R, C, K, K)
        d = m2 - mean
        logdetP = -lv.sum(-1) + 2 * torch.linalg.slogdet(I_B)[1]
        per = 0.5 * (torch.einsum("rcij,rcji->rc", P, S2)
                     + torch.einsum("rci,rcij,rcj->rc", d, P, d) - logdetP)  # fmt: skip
        jac = torch.linalg.slogdet(A[:, Ut][:, :, Ut])[1]
        return (n * per).sum(-1) / n.sum() - jac

    # thousands of tiny (K x K) operations: threads cost more than they give (measured: a snap
    # on quad took over a minute with 2 threads on this 2-core machine, 7 s with one)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        starts = _fit(nll, K, free, eye, off, pool, init, restarts, steps, seed, dt)
    finally:
        torch.set_num_threads(threads)
    kept = [fit for fit in starts if fit is not None]  # the starts that ended acyclic
    return min(kept, key=lambda fit: fit["nll"]) if kept else None


def _fit(nll, K, free, eye, off, pool, init, restarts, steps, seed, dt) -> list[dict | None]:
    """Every start's fit (None where it did not end acyclic), the starts side by side: each
    start's parameters are one slice of a batch and the loss is the sum of the starts' losses,
    so each slice gets its own start's gradient and Adam (elementwise) moves it as it would
    alone; one optimiser and one backward pass for all starts instead of one each (1.9x-3.0x
    faster on quad's refit, benchmarks/bench_snap.py). The same fit up to rounding (batched
    kernels sum in another order): 1e-14 on snaps of quad fits, 2e-10 in the weights after 400
    steps on the quad SEM's own moments; the same start is chosen."""
    g = torch.Generator().manual_seed(seed)
    R = max(1, restarts)
    t = {k: torch.tensor(np.array(v, dtype=float), dtype=dt) for k, v in init.items()}
    # start 0 from the snap's basis; the others mix the unpeeled rows at random
    E = [torch.zeros(K, K, dtype=dt)] + [0.5 * torch.randn(K, K, generator=g, dtype=dt)
                                         for _ in range(1, R)]  # fmt: skip
    A = torch.stack([eye + e * free for e in E]).requires_grad_(True)

    def per_start(v: torch.Tensor) -> torch.Tensor:
        return v.expand(R, *v.shape).clone().requires_grad_(True)

    B = per_start(t["B"] * off)
    mu_o, mu_i = per_start(t["mu_obs"]), per_start(t["mu_int"])
    lv_o = per_start(t["var_obs"].clamp_min(1e-6).log())
    lv_i = per_start(t["var_int"].clamp_min(1e-6).log())

    def dag(B: torch.Tensor) -> torch.Tensor:  # per start
        W = pool @ (B * off) ** 2 @ pool.T
        return torch.stack([_dag(W[r]) for r in range(R)])

    opt = torch.optim.Adam([A, B, mu_o, mu_i, lv_o, lv_i], lr=0.03)
    with torch.enable_grad():  # a snap runs under no_grad
        for s in range(steps):
            opt.zero_grad()
            rho = 1.0 + 99.0 * s / max(1, steps - 1)
            loss = nll(A * free + eye * (1 - free), B, mu_o, lv_o, mu_i, lv_i) + rho * dag(B)
            loss.sum().backward()
            opt.step()
    out: list[dict | None] = []
    with torch.no_grad():
        Af = A * free + eye * (1 - free)
        acyclic = dag(B)
        for r in range(R):
            if acyclic[r].item() > 1e-4 or not torch.isfinite(loss[r]):
                out.append(None)
                continue
            one = slice(r, r + 1)  # the start alone: a dropped start cannot fail its evaluation
            value = nll(Af[one], B[one], mu_o[one], lv_o[one], mu_i[one], lv_i[one])[0]
            out.append({
                "A": Af[r].numpy().copy(), "B": (B[r] * off).numpy().copy(),
                "mu_obs": mu_o[r].numpy().copy(), "var_obs": lv_o[r].exp().numpy().copy(),
                "mu_int": mu_i[r].numpy().copy(), "var_int": lv_i[r].exp().numpy().copy(),
                "nll": value.item(),
            })  # fmt: skip
    return out
