"""Certificate for the composition corollary (proofs/lemma_composition.md).

Setting: scalar SEM 0 -> 1 -> 2 and 0 -> 2, all parameters symbolic; joint hard intervention on
S = {0, 2} (never observed).

Facts checked:
1. determination: the parameters read off the single-concept laws -- B, mu, s by regression of
   each concept on its predecessors in context 0, (mu~_k, s~_k) as the law of c_k in context do(k)
   -- composed by the rule "rows of S replaced by their single-target intervention laws" give the
   mean and covariance of the joint hard intervention do(S) exactly;
2. invariance: for the transformed model c' = D c + b (D diagonal, b arbitrary, symbolic), the
   same read-off-and-compose computation on the pushed-forward single-concept laws yields exactly
   the push-forward (D m + b, D Sigma D) of the composed law;
3. the law of the observation: with linear mixing y = F (c, n), n ~ N(mu_n, s_n) independent and
   invariant, the law of y under do(S) obtained as the mixture over c ~ p_S of the context-0
   conditional law of y given c(y) = c equals the law of F (c, n) with c ~ p_S (means and
   covariances compared; rational F, the SEM rational here to keep the check small).

falsify(): composing by the wrong rule (a soft intervention that keeps the parents' weights).

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import law, run  # the certificates directory is on sys.path

R = sp.Rational
TARGETS = [0, 2]


def _do(B, mu, S, targets, mt, st, soft=False):
    B2, mu2, S2 = B.copy(), mu.copy(), S.copy()
    for k in targets:
        if not soft:
            B2[k, :] = sp.zeros(1, B.shape[0])
        mu2[k], S2[k, k] = mt[k], st[k]
    return law(B2, mu2, S2)


def _read_off(laws, n):
    """SEM parameters from context 0 (regression in the order 0..n-1) and intervention laws."""
    m0, C0 = laws[None]
    B = sp.zeros(n, n)
    mu = sp.zeros(n, 1)
    s = []
    for k in range(n):
        P = list(range(k))
        if P:
            coef = C0.extract([k], P) * C0.extract(P, P).inv()
            B[k, :k] = coef
            mu[k] = m0[k] - (coef * m0.extract(P, [0]))[0, 0]
            s.append(C0[k, k] - (coef * C0.extract(P, [k]))[0, 0])
        else:
            mu[k] = m0[k]
            s.append(C0[k, k])
    mt = {k: laws[k][0][k] for k in range(n)}
    st = {k: laws[k][1][k, k] for k in range(n)}
    return B, mu, sp.diag(*s), mt, st


def _zero(M):
    return all(sp.cancel(sp.together(e)) == 0 for e in sp.Matrix(M))


def _checks(wrong: bool) -> list[tuple[str, bool]]:
    n = 3
    B = sp.zeros(n, n)
    B[1, 0], B[2, 1], B[2, 0] = sp.symbols("b10 b21 b20")
    mu = sp.Matrix(sp.symbols("mu0:3"))
    S = sp.diag(*sp.symbols("s0:3", positive=True))
    mt = dict(enumerate(sp.symbols("mt0:3")))
    st = dict(enumerate(sp.symbols("st0:3", positive=True)))
    laws = {None: law(B, mu, S)}
    for k in range(n):
        laws[k] = _do(B, mu, S, [k], mt, st)
    truth = _do(B, mu, S, TARGETS, mt, st)
    Bh, muh, Sh, mth, sth = _read_off(laws, n)
    composed = _do(Bh, muh, Sh, TARGETS, mth, sth, soft=wrong)
    facts = [
        (
            "do({0, 2}) composed from the single-concept laws = the joint hard intervention",
            _zero(composed[0] - truth[0]) and _zero(composed[1] - truth[1]),
        )
    ]
    # invariance under c' = D c + b
    D = sp.diag(*sp.symbols("d0:3", nonzero=True))
    b = sp.Matrix(sp.symbols("o0:3"))
    laws2 = {key: (D * m + b, D * C * D) for key, (m, C) in laws.items()}
    B2, mu2, S2, mt2, st2 = _read_off(laws2, n)
    comp2 = _do(B2, mu2, S2, TARGETS, mt2, st2, soft=wrong)
    facts.append(
        (
            "under c' = D c + b the composed law is the push-forward of the composed law",
            _zero(comp2[0] - (D * truth[0] + b)) and _zero(comp2[1] - D * truth[1] * D),
        )
    )
    # law of the observation y = F (c, n) under do(S), rational parameters
    Br = sp.zeros(n, n)
    Br[1, 0], Br[2, 1], Br[2, 0] = R(3, 2), -1, R(1, 2)
    mur, Sr = sp.Matrix([1, 0, -1]), sp.diag(1, 2, R(1, 2))
    mtr, str_ = {0: 2, 1: 0, 2: 1}, {0: 3, 1: 1, 2: R(1, 3)}
    F = sp.Matrix([[2, -1, 0, 1], [1, 3, -2, 0], [0, 1, 1, -1], [R(1, 2), 0, 2, 3]])
    mn, sn = R(1, 2), R(2)
    m0, C0 = law(Br, mur, Sr)
    mS, CS = _do(Br, mur, Sr, TARGETS, mtr, str_, soft=wrong)
    # context 0: joint law of (c, y); conditional law of y given c
    J = sp.eye(3).col_join(sp.zeros(1, 3))  # (c, n) -> c part
    my0 = F * m0.col_join(sp.Matrix([mn]))
    Cy0 = F * sp.diag(C0, sn) * F.T
    Ccy = C0 * J.T * F.T  # Cov_0(c, y)
    K = Ccy.T * C0.inv()  # E_0[y | c] = my0 + K (c - m0)
    Cyc = Cy0 - K * Ccy  # Cov_0(y | c), the same for every c
    # truth: c ~ p_S, n independent
    m_S, C_S = _do(Br, mur, Sr, TARGETS, mtr, str_)
    my_true = F * m_S.col_join(sp.Matrix([mn]))
    Cy_true = F * sp.diag(C_S, sn) * F.T
    my_mix = my0 + K * (mS - m0)
    Cy_mix = Cyc + K * CS * K.T
    facts.append(
        (
            "law of y under do({0, 2}) = mixture over p_S of the context-0 law of y given c",
            _zero(my_mix - my_true) and _zero(Cy_mix - Cy_true),
        )
    )
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of the composition corollary; all must be True."""
    return _checks(False)


def falsify() -> list[tuple[str, bool]]:
    """The same checks composing by a wrong (soft) rule; some must be False."""
    return _checks(True)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
