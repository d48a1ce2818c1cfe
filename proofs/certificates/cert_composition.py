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

4. blocks: facts 1-3 again for the SEM scalar 0 -> 2-d block 1 -> scalar 2, 0 -> 2, composed on
   S = {1, 2} (rational parameters; in 2 the transform is block-diagonal with a full 2x2 block
   D_1 that mixes the block's coordinates, two rational draws, with offsets). The read-off
   regresses each block on the coordinates of the blocks before it and reads a block's
   intervention law as its marginal law in its own context, so the class of Theorem L (an
   invertible linear map per block, not only diagonal maps) is covered.

falsify(): composing by the wrong rule (a soft intervention that keeps the parents' weights).

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import conditional, is_zero, law, run  # the certificates directory is on sys.path

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
    return facts + _block_checks(wrong)


def _do_blocks(model, targets, ints, soft=False):
    """Mean and covariance of c under the joint intervention on the blocks ``targets``."""
    blocks, B, mu, S = model
    B2, mu2, S2 = B.copy(), mu.copy(), S.copy()
    for k in targets:
        idx = blocks[k]
        mt, St = ints[k]
        for a, i in enumerate(idx):
            if not soft:
                B2[i, :] = sp.zeros(1, B.shape[0])
            mu2[i] = mt[a]
            for b, j in enumerate(idx):
                S2[i, j] = St[a, b]
    return law(B2, mu2, S2)


def _read_off_blocks(laws, blocks):
    """The SEM by regression of each block on the coordinates of the blocks before it (context 0),
    and each block's intervention law as its marginal law in its own context."""
    K = sum(len(b) for b in blocks)
    B, mu, S = sp.zeros(K, K), sp.zeros(K, 1), sp.zeros(K, K)
    ints = {}
    for k, idx in enumerate(blocks):
        before = [i for b in blocks[:k] for i in b]
        W, a, Rk = conditional(*laws[None], idx, before)
        for r, i in enumerate(idx):
            mu[i] = a[r]
            for c, j in enumerate(before):
                B[i, j] = W[r, c]
            for c, j in enumerate(idx):
                S[i, j] = Rk[r, c]
        _, mt, St = conditional(*laws[k], idx, [])
        ints[k] = (mt, St)
    return (blocks, B, mu, S), ints


def _block_checks(wrong: bool) -> list[tuple[str, bool]]:
    blocks = [[0], [1, 2], [3]]
    targets = [1, 2]
    B = sp.zeros(4, 4)
    B[1, 0], B[2, 0] = 2, -1  # 0 -> block 1
    B[3, 1], B[3, 2], B[3, 0] = R(1, 2), 1, R(-3, 2)  # block 1 -> 2, 0 -> 2
    mu = sp.Matrix([1, 0, 2, -1])
    S = sp.diag(1, sp.Matrix([[2, R(1, 2)], [R(1, 2), 1]]), R(1, 3))
    ints = {
        0: (sp.Matrix([0]), sp.Matrix([[3]])),
        1: (sp.Matrix([1, -1]), sp.Matrix([[1, R(-1, 3)], [R(-1, 3), 3]])),
        2: (sp.Matrix([2]), sp.Matrix([[R(1, 2)]])),
    }
    model = (blocks, B, mu, S)
    laws = {None: law(B, mu, S)}
    for k in range(3):
        laws[k] = _do_blocks(model, [k], ints)
    truth = _do_blocks(model, targets, ints)
    fitted, fitted_ints = _read_off_blocks(laws, blocks)
    composed = _do_blocks(fitted, targets, fitted_ints, soft=wrong)
    facts = [
        (
            "blocks: do({1, 2}) composed from single-concept laws = the joint hard intervention",
            is_zero(composed[0] - truth[0]) and is_zero(composed[1] - truth[1]),
        )
    ]
    invariant = True
    for D1, (d0, d2) in (
        (sp.Matrix([[2, -1], [1, 3]]), (R(1, 2), -3)),
        (sp.Matrix([[0, 1], [-2, R(1, 3)]]), (-1, R(5, 2))),
    ):
        D = sp.diag(d0, D1, d2)
        b = sp.Matrix([1, R(-1, 2), 3, R(2, 3)])
        pushed = {key: (D * m + b, D * C * D.T) for key, (m, C) in laws.items()}
        fitted2, ints2 = _read_off_blocks(pushed, blocks)
        comp2 = _do_blocks(fitted2, targets, ints2, soft=wrong)
        invariant &= is_zero(comp2[0] - (D * truth[0] + b))
        invariant &= is_zero(comp2[1] - D * truth[1] * D.T)
    facts.append(
        (
            "blocks: under c' = D c + b (block-diagonal D, full 2x2 block, two draws) the composed "
            "law is the push-forward of the composed law",
            invariant,
        )
    )
    # the law of the observation y = F (c, n) under do(S), as in fact 3
    F = sp.Matrix(
        [
            [2, -1, 0, 1, 0],
            [1, 3, -2, 0, 1],
            [0, 1, 1, -1, 2],
            [R(1, 2), 0, 2, 3, -1],
            [1, 1, 0, 0, 1],
        ]
    )
    mn, sn = R(1, 2), R(2)
    m0, C0 = laws[None]
    J = sp.eye(4).col_join(sp.zeros(1, 4))
    my0 = F * m0.col_join(sp.Matrix([mn]))
    Ccy = C0 * J.T * F.T
    Kg = Ccy.T * C0.inv()
    Cyc = F * sp.diag(C0, sn) * F.T - Kg * Ccy
    mS, CS = composed
    my_true = F * truth[0].col_join(sp.Matrix([mn]))
    Cy_true = F * sp.diag(truth[1], sn) * F.T
    facts.append(
        (
            "blocks: law of y under do({1, 2}) = mixture over p_S of the context-0 law of y | c",
            is_zero(my0 + Kg * (mS - m0) - my_true) and is_zero(Cyc + Kg * CS * Kg.T - Cy_true),
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
