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
        Random starts of the mixing into the unpeeled coordinates; Adam steps per start.

    Returns
    -------
    dict or None
        ``A`` (K, K): the new concept coordinates are ``A u``; and the refitted SEM (keys as
        ``init``); ``None`` when no start ends acyclic.
    """
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
        Bw = B * off
        I_B = eye - Bw[None] * (1 - col)[:, :, None]  # (C, K, K)
        mu_eps = mu_o + col * (mu_i - mu_o)
        lv = lv_o + col * (lv_i - lv_o)
        P = torch.einsum("cki,ck,ckj->cij", I_B, torch.exp(-lv), I_B)
        mean = torch.linalg.solve(I_B, mu_eps.unsqueeze(-1)).squeeze(-1)
        m2 = mus @ A.T
        S2 = A @ covs @ A.T
        d = m2 - mean
        logdetP = -lv.sum(1) + 2 * torch.linalg.slogdet(I_B)[1]
        per = 0.5 * (torch.einsum("cij,cji->c", P, S2) + torch.einsum("ci,cij,cj->c", d, P, d)
                     - logdetP)  # fmt: skip
        jac = torch.linalg.slogdet(A[Ut][:, Ut])[1]
        return (n * per).sum() / n.sum() - jac

    # thousands of tiny (K x K) operations: threads cost more than they give (measured: a snap
    # on quad took over a minute with 2 threads on this 2-core machine, 7 s with one)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(nll, K, free, eye, off, pool, init, restarts, steps, seed, dt)
    finally:
        torch.set_num_threads(threads)


def _fit(nll, K, free, eye, off, pool, init, restarts, steps, seed, dt) -> dict | None:
    g = torch.Generator().manual_seed(seed)
    best = None
    t = {k: torch.tensor(np.array(v, dtype=float), dtype=dt) for k, v in init.items()}
    for r in range(max(1, restarts)):
        E = 0.0 if r == 0 else 0.5 * torch.randn(K, K, generator=g, dtype=dt)
        A = (eye + E * free).clone().requires_grad_(True)
        B = (t["B"] * off).clone().requires_grad_(True)
        mu_o, mu_i = (
            t["mu_obs"].clone().requires_grad_(True),
            t["mu_int"].clone().requires_grad_(True),
        )
        lv_o = t["var_obs"].clamp_min(1e-6).log().requires_grad_(True)
        lv_i = t["var_int"].clamp_min(1e-6).log().requires_grad_(True)
        opt = torch.optim.Adam([A, B, mu_o, mu_i, lv_o, lv_i], lr=0.03)
        with torch.enable_grad():  # a snap runs under no_grad
            for s in range(steps):
                opt.zero_grad()
                W = pool @ (B * off) ** 2 @ pool.T
                rho = 1.0 + 99.0 * s / max(1, steps - 1)
                loss = nll(A * free + eye * (1 - free), B, mu_o, lv_o, mu_i, lv_i) + rho * _dag(W)
                loss.backward()
                opt.step()
        with torch.no_grad():
            Af = A * free + eye * (1 - free)
            W = pool @ (B * off) ** 2 @ pool.T
            if _dag(W).item() > 1e-4 or not torch.isfinite(loss):
                continue
            value = nll(Af, B, mu_o, lv_o, mu_i, lv_i).item()
            if best is None or value < best[0]:
                best = (value, {
                    "A": Af.numpy().copy(), "B": (B * off).numpy().copy(),
                    "mu_obs": mu_o.numpy().copy(), "var_obs": lv_o.exp().numpy().copy(),
                    "mu_int": mu_i.numpy().copy(), "var_int": lv_i.exp().numpy().copy(),
                    "nll": value,
                })  # fmt: skip
    return None if best is None else best[1]
