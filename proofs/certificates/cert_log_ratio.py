"""Certificate for Lemma 1 (proofs/lemma_log_ratio.md): the log-density ratio of a hard
intervention.

Claim. For a linear Gaussian SEM c = B c + eps, eps_j ~ N(mu_j, S_j), and a hard intervention on
block k (c_k = eps~_k ~ N(mu~_k, S~_k)),

    log p_k(c) - log p_0(c) = -1/2 chat^T Delta_k chat,   chat = (c, 1),
    Delta_k = Ehat_k^T S~_k^{-1} Ehat_k - Ahat_k^T S_k^{-1} Ahat_k + log(det S~_k / det S_k) e e^T,

with Ehat_k = [E_k | -mu~_k], Ahat_k = [E_k - B_k. | -mu_k] and e the homogeneous unit vector.
It depends on c only through (c_k, c_pa(k)), and a nuisance n independent of c with an invariant
law does not change it.

The left-hand side is computed independently of the formula: from the joint Gaussian law
N(M mu, M S M^T), M = (I - B)^{-1}, of each context, by inverting its covariance matrix.
Everything is symbolic; the two sides are compared as rational functions of c (and n).

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import det, inv, law, run  # the certificates directory is on sys.path


def _intervene(B, mu, S, idx, mu_t, S_t):
    """Hard intervention on the coordinates idx: rows of B zeroed, noise law replaced."""
    B2, mu2, S2 = B.copy(), mu.copy(), S.copy()
    for a, i in enumerate(idx):
        B2[i, :] = sp.zeros(1, B.shape[0])
        mu2[i] = mu_t[a]
        for b, j in enumerate(idx):
            S2[i, j] = S_t[a, b]
    return B2, mu2, S2


def _is_zero(M):
    """Exact zero test: every entry converted into the field of rational functions over QQ."""
    entries = [sp.sympify(x) for x in sp.Matrix(M)]
    syms = sorted(set().union(*(x.free_symbols for x in entries)), key=str)
    if not syms:
        return all(x == 0 for x in entries)
    field = sp.QQ.frac_field(*syms)
    return all(field.from_sympy(x) == field.zero for x in entries)


def _psi(mean, cov):
    """Homogeneous form Psi: -1/2 (c-m)^T cov^{-1} (c-m) = -1/2 chat^T Psi chat."""
    theta = inv(cov)
    lin = -theta * mean
    return theta.row_join(lin).col_join(lin.T.row_join(mean.T * theta * mean))


def _delta(K, idx, B, mu, S, mu_t, S_t, sign):
    """Delta_k of Lemma 1 without its log-det corner; sign=-1 is the correct formula."""
    E = sp.zeros(len(idx), K)
    for a, i in enumerate(idx):
        E[a, i] = 1
    A = E - B.extract(idx, list(range(K)))
    Eh = E.row_join(-mu_t)
    Ah = A.row_join(-mu.extract(idx, [0]))
    return Eh.T * inv(S_t) * Eh + sign * Ah.T * inv(S.extract(idx, idx)) * Ah


def _check_model(name, K, B, mu, S, interventions, parents, wrong):
    """Compare both sides for every intervention of the model; returns a list of facts."""
    m0, S0 = law(B, mu, S)
    psi0, d0 = _psi(m0, S0), det(S0)
    facts = []
    for k, (idx, mu_t, S_t) in interventions.items():
        mk, Sk = law(*_intervene(B, mu, S, idx, mu_t, S_t))
        diff = _psi(mk, Sk) - psi0
        D = _delta(K, idx, B, mu, S, mu_t, S_t, 1 if wrong else -1)
        ratio = det(Sk) / d0 - det(S_t) / det(S.extract(idx, idx))
        facts.append(
            (
                f"{name}, do(c_{k}): quadratic and linear part of log p_k - log p_0",
                _is_zero(diff - D),
            )
        )
        facts.append(
            (f"{name}, do(c_{k}): log-det constant is log det S~_k / det S_k", _is_zero([ratio]))
        )
        keep = set(idx) | set(parents[k])
        if wrong:  # deliberately wrong claim: the ratio depends on the target only
            keep = set(idx)
        others = [j for j in range(K) if j not in keep]
        dep = _is_zero(diff.extract(others, list(range(K + 1)))) if others else True
        facts.append((f"{name}, do(c_{k}): ratio depends on (c_k, c_pa(k)) only", dep))
    return facts


def _scalar_chain(wrong):
    b10, b21 = sp.symbols("b10 b21")
    mu = sp.Matrix(sp.symbols("mu0:3"))
    s = sp.symbols("s0:3", positive=True)
    mut = sp.symbols("mt0:3")
    st = sp.symbols("st0:3", positive=True)
    B = sp.zeros(3, 3)
    B[1, 0], B[2, 1] = b10, b21
    S = sp.diag(*s)
    ints = {k: ([k], sp.Matrix([mut[k]]), sp.Matrix([[st[k]]])) for k in range(3)}
    parents = {0: [], 1: [0], 2: [1]}
    return _check_model("scalar chain 0->1->2", 3, B, mu, S, ints, parents, wrong)


def _scalar_collider(wrong):
    b20, b21 = sp.symbols("b20 b21")
    mu = sp.Matrix(sp.symbols("mu0:3"))
    s = sp.symbols("s0:3", positive=True)
    B = sp.zeros(3, 3)
    B[2, 0], B[2, 1] = b20, b21
    S = sp.diag(*s)
    mt2 = sp.Symbol("mt2")
    st2 = sp.Symbol("st2", positive=True)
    ints = {2: ([2], sp.Matrix([mt2]), sp.Matrix([[st2]]))}
    parents = {2: [0, 1]}
    return _check_model("scalar collider 0->2<-1", 3, B, mu, S, ints, parents, wrong)


def _block(wrong):
    """Concept 0 scalar, concept 1 a 2-d block with parent 0 (coordinates 1, 2)."""
    b1, b2 = sp.symbols("b1 b2")
    mu = sp.Matrix(sp.symbols("mu0:3"))
    s0 = sp.Symbol("s0", positive=True)
    a, h, g = sp.symbols("a h g")
    at, ht, gt = sp.symbols("at ht gt")
    B = sp.zeros(3, 3)
    B[1, 0], B[2, 0] = b1, b2
    S = sp.diag(s0, sp.Matrix([[a, h], [h, g]]))
    S_t = sp.Matrix([[at, ht], [ht, gt]])
    ints = {1: ([1, 2], sp.Matrix(sp.symbols("mt1:3")), S_t)}
    parents = {1: [0]}
    return _check_model("2-d block with scalar parent", 3, B, mu, S, ints, parents, wrong)


def _nuisance(wrong):
    """The ratio on (c, n) equals the ratio on c when n is independent of c and invariant (A5)."""
    b10 = sp.Symbol("b10")
    mu = sp.Matrix(sp.symbols("mu0:2"))
    s = sp.symbols("s0:2", positive=True)
    mn = sp.Symbol("mn")
    sn = sp.Symbol("sn", positive=True)
    mt1 = sp.Symbol("mt1")
    st1 = sp.Symbol("st1", positive=True)
    B = sp.Matrix([[0, 0], [b10, 0]])
    S = sp.diag(*s)
    m0, S0 = law(B, mu, S)
    m1, S1 = law(*_intervene(B, mu, S, [1], sp.Matrix([mt1]), sp.Matrix([[st1]])))
    # nuisance law in context 1: the same (A5); the wrong claim lets its variance change
    sn1 = 2 * sn if wrong else sn
    joint0 = _psi(m0.col_join(sp.Matrix([mn])), sp.diag(S0, sn))
    joint1 = _psi(m1.col_join(sp.Matrix([mn])), sp.diag(S1, sn1))
    conc = _psi(m1, S1) - _psi(m0, S0)
    # embed the concept-only form into (c, n, 1) coordinates: zero row and column for n
    emb = sp.zeros(4, 4)
    for i, a in enumerate([0, 1, 3]):
        for j, b in enumerate([0, 1, 3]):
            emb[a, b] = conc[i, j]
    const = det(sp.diag(S1, sn1)) / det(sp.diag(S0, sn)) - det(S1) / det(S0)
    return [
        (
            "nuisance: ratio on (c, n) has the quadratic form of the ratio on c",
            _is_zero(joint1 - joint0 - emb),
        ),
        ("nuisance: ratio on (c, n) has the constant of the ratio on c", _is_zero([const])),
    ]


def _checks(wrong: bool) -> list[tuple[str, bool]]:
    return _scalar_chain(wrong) + _scalar_collider(wrong) + _block(wrong) + _nuisance(wrong)


def certify() -> list[tuple[str, bool]]:
    """Every fact of Lemma 1 on the examples; all must be True."""
    return _checks(False)


def falsify() -> list[tuple[str, bool]]:
    """The same checks on wrong claims (sign of the A-term, dropped parents, varying nuisance)."""
    return _checks(True)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
