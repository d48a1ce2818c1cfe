"""conceptid.models.unpeeled: the basis of never-intervened concepts and the SEM, by likelihood on
moments.

On exact population moments of the quad SEM (observed directly), the concepts without an
intervention context (``color``, ``shape``) are given the provisional basis a snap gives them
(their part uncorrelated with the peeled concepts). The refit must then reproduce the law of every
training context, and, the point of it, the law of a composition never seen in training.
"""

from __future__ import annotations

import numpy as np
import torch

from conceptid.models.unpeeled import fit_unpeeled
from conceptid.simulations import Context, Hard, quad


def _gauss_kl(m0, S0, m1, S1) -> float:
    """KL(N(m0, S0) || N(m1, S1))."""
    k = len(m0)
    S1i = np.linalg.inv(S1)
    d = m1 - m0
    return 0.5 * (np.trace(S1i @ S0) + d @ S1i @ d - k + np.log(np.linalg.det(S1) /
                                                            np.linalg.det(S0)))  # fmt: skip


def _law(fit, mask):
    K = len(mask)
    B = fit["B"] * (~mask)[:, None]
    M = np.linalg.inv(np.eye(K) - B)
    mu = np.where(mask, fit["mu_int"], fit["mu_obs"])
    var = np.where(mask, fit["var_int"], fit["var_obs"])
    return M @ mu, M @ np.diag(var) @ M.T


def _quad_problem():
    """The quad SEM's population moments in the provisional basis: ``(model, names, U, P, T,
    moments, masks, init)``."""
    model = quad(mixing="identity")
    names = list(model.sem.names)
    U = [names.index("color"), names.index("shape")]
    P = [j for j in range(8) if j not in U]
    _, S0 = model.population_moments("obs")
    # the provisional basis: the unpeeled concepts' part uncorrelated with the peeled ones
    T = np.eye(8)
    T[np.ix_(U, P)] = -S0[np.ix_(U, P)] @ np.linalg.inv(S0[np.ix_(P, P)])
    moments, masks = [], []
    for ctx in model.contexts:
        mu, S = model.population_moments(ctx)
        moments.append((T @ mu, T @ S @ T.T))
        masks.append([n in ctx.targets for n in names])
    masks = np.array(masks)
    init = {"B": np.zeros((8, 8)), "mu_obs": moments[0][0], "var_obs": np.diag(moments[0][1]),
            "mu_int": np.zeros(8), "var_int": np.ones(8)}  # fmt: skip
    return model, names, U, P, T, moments, masks, init


def test_refit_reproduces_every_context_and_an_unseen_composition():
    model, names, U, P, T, moments, masks, init = _quad_problem()
    fit = fit_unpeeled(moments, [2000] * len(moments), masks, [1] * 8, U, init, seed=0)
    assert fit is not None
    A = fit["A"]
    assert np.allclose(A[P], np.eye(8)[P])  # the peeled coordinates are left as they were
    for (mu, S), mask in zip(moments, masks):
        m_fit, S_fit = _law(fit, mask)
        assert _gauss_kl(A @ mu, A @ S @ A.T, m_fit, S_fit) < 2e-3
    # a composition never seen: do(quad1, size), in the refitted coordinates
    pair = Context((model.contexts[names.index("quad1") + 1].interventions[0],
                    model.contexts[5].interventions[0]))  # fmt: skip
    assert set(pair.targets) == {"quad1", "size"} and all(isinstance(i, Hard) for i in pair)
    mu, S = model.population_moments(pair)
    want = (A @ T @ mu, A @ T @ S @ T.T @ A.T)
    got = _law(fit, np.array([n in pair.targets for n in names]))
    assert _gauss_kl(*want, *got) < 5e-3
    # the provisional basis alone (no refit, no edges into it) cannot reproduce the
    # observational law: the check can tell
    naive = dict(init, B=np.zeros((8, 8)))
    assert _gauss_kl(*moments[0], *_law(naive, masks[0])) > 0.1


def _one_start(moments, counts, masks, U, init, E, steps):
    """One start of the refit on its own, written out plainly (the oracle for the starts run
    side by side): Adam on the moments' Gaussian likelihood plus the growing NOTEARS penalty,
    from the unpeeled rows mixed by ``E``. Returns ``(nll, acyclicity, fitted dict)``."""
    dt = torch.float64
    K = len(masks[0])
    mus = torch.tensor(np.stack([m for m, _ in moments]), dtype=dt)
    covs = torch.tensor(np.stack([S for _, S in moments]), dtype=dt)
    n = torch.tensor(np.asarray(counts, float), dtype=dt)
    col = torch.tensor(np.asarray(masks, float), dtype=dt)
    off, eye = 1 - torch.eye(K, dtype=dt), torch.eye(K, dtype=dt)
    free = torch.zeros(K, K, dtype=dt)
    free[U] = 1.0
    Ut = torch.zeros(K, dtype=torch.bool)
    Ut[U] = True

    def nll(A, B, mu_o, lv_o, mu_i, lv_i):
        total = 0.0
        for c in range(len(moments)):
            I_B = eye - (B * off) * (1 - col[c])[:, None]
            lv = lv_o + col[c] * (lv_i - lv_o)
            mean = torch.linalg.solve(I_B, mu_o + col[c] * (mu_i - mu_o))
            P = I_B.T @ torch.diag(torch.exp(-lv)) @ I_B
            d = A @ mus[c] - mean
            logdetP = -lv.sum() + 2 * torch.linalg.slogdet(I_B)[1]
            per = 0.5 * (torch.trace(P @ A @ covs[c] @ A.T) + d @ P @ d - logdetP)
            total = total + n[c] * per
        return total / n.sum() - torch.linalg.slogdet(A[Ut][:, Ut])[1]

    def dag(B):
        W = (B * off) ** 2
        return torch.trace(torch.matrix_exp(W)) - K

    t = {k: torch.tensor(np.asarray(v, float), dtype=dt) for k, v in init.items()}
    A = (eye + E * free).requires_grad_(True)
    B = (t["B"] * off).clone().requires_grad_(True)
    mu_o, mu_i = t["mu_obs"].clone().requires_grad_(True), t["mu_int"].clone().requires_grad_(True)
    lv_o = t["var_obs"].clamp_min(1e-6).log().requires_grad_(True)
    lv_i = t["var_int"].clamp_min(1e-6).log().requires_grad_(True)
    opt = torch.optim.Adam([A, B, mu_o, mu_i, lv_o, lv_i], lr=0.03)
    for s in range(steps):
        opt.zero_grad()
        Af = A * free + eye * (1 - free)
        loss = nll(Af, B, mu_o, lv_o, mu_i, lv_i) + (1 + 99 * s / (steps - 1)) * dag(B)
        loss.backward()
        opt.step()
    with torch.no_grad():
        Af = A * free + eye * (1 - free)
        return (
            nll(Af, B, mu_o, lv_o, mu_i, lv_i).item(),
            dag(B).item(),
            {
                "A": Af.numpy(),
                "B": (B * off).numpy(),
                "mu_obs": mu_o.numpy(),
                "var_obs": lv_o.exp().numpy(),
                "mu_int": mu_i.numpy(),
                "var_int": lv_i.exp().numpy(),
            },
        )


def test_the_starts_side_by_side_end_where_each_would_alone(monkeypatch):
    """The refit runs its random starts as one batch (one optimiser, one backward pass): every
    start must end where it ends fitted alone, and the best acyclic one is returned."""
    import conceptid.models.unpeeled as up

    _, _, U, _, _, moments, masks, init = _quad_problem()
    counts = [2000] * len(moments)
    # a provisional basis that is off, so that the starts have somewhere to go
    init = dict(init, mu_obs=init["mu_obs"] + 0.3)
    steps, restarts, seed = 150, 3, 5
    g = torch.Generator().manual_seed(seed)
    starts = [torch.zeros(8, 8, dtype=torch.float64)] + [
        0.5 * torch.randn(8, 8, generator=g, dtype=torch.float64) for _ in range(restarts - 1)
    ]
    alone = [_one_start(moments, counts, masks, U, init, E, steps) for E in starts]
    seen = []
    real = up._fit
    monkeypatch.setattr(up, "_fit", lambda *a: seen.append(real(*a)) or seen[-1])
    got = fit_unpeeled(moments, counts, masks, [1] * 8, U, init, restarts=restarts, steps=steps,
                       seed=seed)  # fmt: skip
    (side_by_side,) = seen
    for (value, acyclicity, fit), batched in zip(alone, side_by_side):
        assert (batched is None) == (acyclicity > 1e-4)  # the same starts are kept
        if batched is not None:
            assert abs(batched["nll"] - value) < 1e-9
            for key in fit:
                np.testing.assert_allclose(batched[key], fit[key], rtol=0, atol=1e-9, err_msg=key)
    kept = [a for a in alone if a[1] <= 1e-4]
    assert len(kept) >= 2, "the comparison needs two acyclic starts to choose from"
    assert abs(got["nll"] - min(a[0] for a in kept)) < 1e-9


def test_a_refit_without_steps_or_with_negative_starts_is_refused_before_any_work():
    import pytest

    from conceptid.simulations.errors import UsageError

    _, _, U, _, _, moments, masks, init = _quad_problem()
    counts = [2000] * len(moments)
    with pytest.raises(UsageError, match="steps"):
        fit_unpeeled(moments, counts, masks, [1] * 8, U, init, steps=0)
    with pytest.raises(UsageError, match="restarts"):
        fit_unpeeled(moments, counts, masks, [1] * 8, U, init, restarts=-1)
