"""Certificate for the last step of Theorem S (proofs/theorem.md): once c' = D c + b with D
diagonal, the graph, the SEM and the intervention laws correspond.

Setting: scalar SEMs on 3 nodes with every weight, mean and variance a free symbol: the complete
DAG 0 -> 1 -> 2, 0 -> 2, and the chain 0 -> 1 -> 2 (no edge 0 -> 2). The log-density ratio
q_k = log p_k - log p_0 is computed from the Gaussian laws of c (covariances inverted exactly), as
the homogeneous form Delta_k = Psi_k - Psi_0, q_k(c) = -1/2 (c, 1)^T Delta_k (c, 1) - const; the
coefficient of c_p c_k in q_k is -Delta_k[p, k].

Facts checked, for every k and every p != k:
1. the coefficient of c_p c_k in q_k is -b_kp / s_k, and q_k does not involve c_p at all when
   p is neither k nor a parent of k (the row of Delta_k vanishes): the parents of k are exactly
   the p on which q_k depends;
2. with c' = D c + b (D = diag(d_j), d_j != 0, b symbolic), the second model read off by
   regression of c' in context 0 (in the topological order) and by the marginal of c'_k in context
   k has its own log-ratio forms Delta'_k equal to Ahat^T Delta_k Ahat, Ahat the homogeneous form
   of c = D^{-1} (c' - b): Q'(c') = Q(c), as step (i) requires; the log-det constants agree;
3. hence the coefficient of c'_p c'_k in q'_k is -b_kp / (s_k d_p d_k), and it is also
   -b'_kp / s'_k: b'_kp = 0 exactly when b_kp = 0, the graphs are equal; and the regression gives
   b'_kp = d_k b_kp / d_p, s'_k = d_k^2 s_k, mu' = D mu + (I - B') b, and the intervention laws
   (d_k mu~_k + b_k, d_k^2 s~_k).

falsify(): the same with a non-diagonal D (d_01 != 0, a map that mixes two concepts): the
read-off second model's log-ratio forms are not the transformed ones.

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import conditional, det, inv, is_zero, law, run  # certificates dir on sys.path


def _psi(mean, cov):
    """Homogeneous form of the Gaussian log-density (up to its constant)."""
    theta = inv(cov)
    lin = -theta * mean
    return theta.row_join(lin).col_join(lin.T.row_join(mean.T * theta * mean))


def _laws(B, mu, s, mt, st):
    """Laws of c in context 0 and in every single-node hard intervention context."""
    n = B.shape[0]
    out = {None: law(B, mu, sp.diag(*s))}
    for k in range(n):
        Bk, muk, sk = B.copy(), mu.copy(), list(s)
        Bk[k, :] = sp.zeros(1, n)
        muk[k], sk[k] = mt[k], st[k]
        out[k] = law(Bk, muk, sp.diag(*sk))
    return out


def _forms(laws, n):
    """Delta_k = Psi_k - Psi_0 and the ratio det Cov_k / det Cov_0, for every k."""
    psi0 = _psi(*laws[None])
    d0 = det(laws[None][1])
    return {k: (_psi(*laws[k]) - psi0, det(laws[k][1]) / d0) for k in range(n)}


def _model(name, edges, wrong):
    n = 3
    B = sp.zeros(n, n)
    for p, c in edges:
        B[c, p] = sp.Symbol(f"b{c}{p}")
    mu = sp.Matrix(sp.symbols(f"mu0:{n}"))
    s = sp.symbols(f"s0:{n}", positive=True)
    mt = sp.symbols(f"mt0:{n}")
    st = sp.symbols(f"st0:{n}", positive=True)
    laws = _laws(B, mu, s, mt, st)
    forms = _forms(laws, n)
    parents = {k: {p for p, c in edges if c == k} for k in range(n)}
    facts = []
    ok = True
    for k in range(n):
        Dk = forms[k][0]
        for p in range(n):
            if p == k:
                continue
            if p in parents[k]:
                ok &= is_zero([Dk[p, k] - B[k, p] / s[k]])
            else:
                ok &= is_zero(Dk[p, :])
    facts.append((f"{name}: q_k involves c_p iff p in pa(k), coefficient -b_kp / s_k", ok))
    # the map c' = D c + b and the second model read off the pushed-forward laws
    d = sp.symbols(f"d0:{n}", nonzero=True)
    D = sp.diag(*d)
    if wrong:
        D[0, 1] = sp.Symbol("d01")
    b = sp.Matrix(sp.symbols(f"o0:{n}"))
    pushed = {key: (D * m + b, D * C * D.T) for key, (m, C) in laws.items()}
    B2, mu2, s2 = sp.zeros(n, n), sp.zeros(n, 1), []
    for k in range(n):  # regression in the topological order 0, 1, 2
        W, a, R = conditional(*pushed[None], [k], list(range(k)))
        for j in range(k):
            B2[k, j] = W[0, j]
        mu2[k] = a[0]
        s2.append(R[0, 0])
    mt2 = [conditional(*pushed[k], [k], [])[1][0] for k in range(n)]
    st2 = [conditional(*pushed[k], [k], [])[2][0, 0] for k in range(n)]
    forms2 = _forms(_laws(B2, mu2, s2, mt2, st2), n)
    Dinv = inv(D)
    Ahat = Dinv.row_join(-Dinv * b).col_join(sp.Matrix([[0] * n + [1]]))
    same = all(
        is_zero(forms2[k][0] - Ahat.T * forms[k][0] * Ahat)
        and is_zero([forms2[k][1] - forms[k][1]])
        for k in range(n)
    )
    facts.append((f"{name}: Delta'_k = Ahat^T Delta_k Ahat and equal log-det constants", same))
    graph, sem = True, True
    for k in range(n):
        for p in range(k):
            coef = (Ahat.T * forms[k][0] * Ahat)[p, k]
            graph &= is_zero([coef - B[k, p] / (s[k] * d[p] * d[k])])
            graph &= is_zero([coef - B2[k, p] / s2[k]])
            graph &= is_zero([B2[k, p]]) == (B[k, p] == 0)
            sem &= is_zero([B2[k, p] - d[k] * B[k, p] / d[p]])
        sem &= is_zero([s2[k] - d[k] ** 2 * s[k], st2[k] - d[k] ** 2 * st[k]])
        sem &= is_zero([mt2[k] - d[k] * mt[k] - b[k]])
    sem &= is_zero(mu2 - (D * mu + (sp.eye(n) - B2) * b))
    facts.append(
        (
            f"{name}: coefficient of c'_p c'_k is -b_kp / (s_k d_p d_k) = -b'_kp / s'_k: G' = G",
            graph,
        )
    )
    facts.append(
        (
            f"{name}: B' = D B D^-1, s' = d^2 s, mu' = D mu + (I - B') b, "
            "intervention laws (d mu~ + b, d^2 s~)",
            sem,
        )
    )
    return facts


def _checks(wrong: bool) -> list[tuple[str, bool]]:
    facts = _model("complete DAG 0->1->2, 0->2", [(0, 1), (1, 2), (0, 2)], wrong)
    facts += _model("chain 0->1->2 (no edge 0->2)", [(0, 1), (1, 2)], wrong)
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of the correspondence; all must be True."""
    return _checks(False)


def falsify() -> list[tuple[str, bool]]:
    """The same with a non-diagonal D; some facts must be False."""
    return _checks(True)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
