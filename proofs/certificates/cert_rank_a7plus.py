"""Certificate for Lemma 3 (proofs/lemma_rank_a7plus.md): the rank of the log-ratio form, and A7+.

Notation. Delta_k is the homogeneous (K+1)x(K+1) matrix of Lemma 1 and T_k = its first K rows,
i.e. [Q_k | -l_k] where log p_k/p_0 = -1/2 c^T Q_k c + l_k^T c + const. The linear parts of the
row space of Delta_k are the row space of T_k; A7+ says rank T_k = k_k + rank(B_k.), the
dimension of the mechanism space span(rows of E_k, rows of B_k.). T_k does not contain the
log-det constant.

Facts checked:
1. rows of T_k outside {k} u pa(k) vanish and every minor of size dim(mechanism space) + 1
   vanishes identically (scalar collider, symbolic);
2. scalar non-source k: the 2x2 minor of T_k on the columns (p, k) equals -b_p^2 / (s_k s~_k), so
   rank T_k = 1 + 1 = dim(mechanism space) whenever the edge weight b_p is non-zero (A7 holds
   automatically for a non-source: the hard intervention removes the dependence on the parents);
3. scalar source: T_k = 0 exactly when s~ = s and mu~ = mu (the identity intervention), so
   A7+ <=> A7 for scalar concepts;
4. the same ranks on random rational parameter draws (exact arithmetic);
5. the brief's formulation with the full homogeneous Delta_k misclassifies a source whose
   intervention changes the variance only: rank Delta_k = 2 (the log-det corner is non-zero)
   while dim span(Ehat_k, Ahat_k) = 1; with T_k the rank is 1 = dim(mechanism space), as it should;
6. blocks, A7 does not imply A7+: a 2-d block with one scalar parent, B_kp = b != 0,
   S~_k = S_k = I, mu~_k = mu_k = 0: rank T_k = 2 < 3 (and a source block whose intervention
   shifts the mean only: rank 1 < 2);
7. blocks, A7+ is not vacuous: the same graph with random S~_k != S_k has rank T_k = 3;
8. Lemma 3 (b): A7 fails exactly for the identity intervention. The conditional law of the target
   given its parents is computed from the joint law of c in context 0 and in context k (regression,
   never read off the SEM parameters); equating the two and solving for the intervention gives
   B_k. = 0 and (mu~_k, S~_k) = (mu_k, S_k) as the only solution (scalar 0 -> 1 with symbolic b;
   scalar parent -> 2-d block with symbolic b, S_k, S~_k), where T_k = 0 (A7+ fails too).

"A7 holds" is never asserted from a parameter: it is decided by comparing those two conditional
laws (item 6, and in item 4 for every source draw: rank T_k = dim(mechanism space) exactly when
the conditional laws differ).

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import itertools
import random
import sys

import sympy as sp
from _common import conditional, is_zero, law, run  # the certificates directory is on sys.path


def _delta(K, idx, B, mu, S, mu_t, S_t, corner=0):
    """Homogeneous Delta_k of Lemma 1 (log-det corner given separately)."""
    E = sp.zeros(len(idx), K)
    for a, i in enumerate(idx):
        E[a, i] = 1
    A = E - B.extract(idx, list(range(K)))
    Eh = E.row_join(-mu_t)
    Ah = A.row_join(-mu.extract(idx, [0]))
    D = Eh.T * S_t.inv() * Eh - Ah.T * S.extract(idx, idx).inv() * Ah
    D[K, K] += corner
    return D


def _context_law(K, idx, B, mu, S, mu_t, S_t):
    """Mean and covariance of c under the hard intervention on the coordinates idx."""
    Bk, muk, Sk = B.copy(), mu.copy(), S.copy()
    for a, i in enumerate(idx):
        Bk[i, :] = sp.zeros(1, K)
        muk[i] = mu_t[a]
        for b, j in enumerate(idx):
            Sk[i, j] = S_t[a, b]
    return law(Bk, muk, Sk)


def _a7_equations(K, idx, B, mu, S, mu_t, S_t):
    """Differences between the conditional laws of c_idx given its parents in context 0 and in
    the intervention context (coefficient, intercept, residual covariance), from the joint laws.
    A7 holds iff some difference is non-zero."""
    parents = [j for j in range(K) if j not in idx and any(B[i, j] != 0 for i in idx)]
    before = conditional(*law(B, mu, S), idx, parents)
    after = conditional(*_context_law(K, idx, B, mu, S, mu_t, S_t), idx, parents)
    return [e for X, Y in zip(before, after) for e in sp.Matrix(X - Y)]


def _a7_holds(*args) -> bool:
    return not is_zero(_a7_equations(*args))


def _top(D):
    K = D.shape[0] - 1
    return D[:K, :]


def _minors(M, size):
    rows, cols = M.shape
    for r in itertools.combinations(range(rows), size):
        for c in itertools.combinations(range(cols), size):
            yield M.extract(list(r), list(c)).det()


def _scalar_model(K, edges, k, params):
    """Scalar SEM with edge weights; returns Delta_k for a hard intervention on k."""
    B = sp.zeros(K, K)
    for (p, ch), w in edges.items():
        B[ch, p] = w
    mu = sp.Matrix(params["mu"])
    S = sp.diag(*params["s"])
    return _delta(K, [k], B, mu, S, sp.Matrix([params["mt"]]), sp.Matrix([[params["st"]]]))


def _checks(wrong: bool) -> list[tuple[str, bool]]:
    facts = []
    # 1-2: symbolic collider 0 -> 2 <- 1, intervention on 2
    b0, b1 = sp.symbols("b0 b1")
    s = sp.symbols("s0:3", positive=True)
    st = sp.Symbol("st", positive=True)
    mu = sp.symbols("mu0:3")
    mt = sp.Symbol("mt")
    D = _scalar_model(3, {(0, 2): b0, (1, 2): b1}, 2, dict(mu=mu, s=s, mt=mt, st=st))
    T = _top(D)
    claimed_dim = 1 if wrong else 2  # mechanism space span(e_2, b0 e_0 + b1 e_1)
    upper = all(sp.cancel(x) == 0 for x in _minors(T, claimed_dim + 1))
    facts.append(("collider: every minor of T_2 of size dim(mechanism space)+1 vanishes", upper))
    for p, b in ((0, b0), (1, b1)):
        m = sp.cancel(T.extract([p, 2], [p, 2]).det() + b**2 / (s[2] * st))
        facts.append((f"collider: minor of T_2 on columns ({p}, 2) is -b_{p}^2/(s s~)", m == 0))
    # 2-node symbolic non-source: minor on (p, k)
    b, s0, s1 = sp.Symbol("b"), sp.Symbol("s0", positive=True), sp.Symbol("s1", positive=True)
    D2 = _scalar_model(2, {(0, 1): b}, 1, dict(mu=sp.symbols("m0:2"), s=(s0, s1), mt=mt, st=st))
    m2 = sp.cancel(_top(D2).extract([0, 1], [0, 1]).det() + b**2 / (s1 * st))
    facts.append(("non-source 0->1: minor of T_1 on columns (0, 1) is -b^2/(s s~)", m2 == 0))
    # 3: scalar source: T_k = 0 iff identity intervention
    m0 = sp.Symbol("m0")
    Ds = _scalar_model(1, {}, 0, dict(mu=[m0], s=[s0], mt=mt, st=st))
    sols = sp.solve(list(_top(Ds)), [st, mt], dict=True)
    identity_only = sols == [{st: s0, mt: m0}]
    if wrong:  # wrong claim: a mean shift alone is degenerate (T_k = 0 whenever s~ = s)
        identity_only = sp.simplify(_top(Ds).subs(st, s0)) == sp.zeros(1, 2)
    facts.append(("scalar source: T_k = 0 exactly for the identity intervention", identity_only))
    # 4: random rational draws, exact ranks
    rng = random.Random(20240611)

    def q():
        return sp.Rational(rng.randint(-9, 9) or 1, rng.randint(1, 5))

    def pos():
        return sp.Rational(rng.randint(1, 9), rng.randint(1, 5))

    ok_ns, ok_src = True, True
    for _ in range(25):
        Dr = _scalar_model(
            3,
            {(0, 1): q(), (1, 2): q(), (0, 2): q()},
            2,
            dict(mu=[q(), q(), q()], s=[pos(), pos(), pos()], mt=q(), st=pos()),
        )
        ok_ns &= _top(Dr).rank() == (3 if wrong else 2)
        sv, mv = pos(), q()
        cases = {  # source 0 of the same graph: (mu~, s~) -> expected rank
            (mv + 1, sv): 1,  # mean shift only
            (mv, 2 * sv): 1,  # variance change only
            (mv - 2, 3 * sv): 1,  # both
            (mv, sv): 0,  # identity intervention (A7 fails)
        }
        for (mtv, stv), want in cases.items():
            w01 = q()
            Dsrc = _scalar_model(
                3, {(0, 1): w01}, 0, dict(mu=[mv, q(), q()], s=[sv, 1, 1], mt=mtv, st=stv)
            )
            rank = _top(Dsrc).rank()
            Bs = sp.zeros(3, 3)
            Bs[1, 0] = w01
            a7 = _a7_holds(
                3,
                [0],
                Bs,
                sp.Matrix([mv, 0, 0]),
                sp.diag(sv, 1, 1),
                sp.Matrix([mtv]),
                sp.Matrix([[stv]]),
            )
            ok_src &= rank == want and ((rank == 1) == a7)
    facts.append(("25 random draws: non-source rank T_k = 2", ok_ns))
    facts.append(
        (
            "25 random draws: source rank T_k = 1, 0 only for the identity; rank T_k = "
            "dim(mechanism space) exactly when A7 holds (conditional laws compared)",
            ok_src,
        )
    )
    # 5: the brief's full-rank formulation vs T_k; variance-only source (s=1, s~=2, mu~=mu=0)
    Dv = _delta(
        1,
        [0],
        sp.zeros(1, 1),
        sp.Matrix([0]),
        sp.Matrix([[1]]),
        sp.Matrix([0]),
        sp.Matrix([[2]]),
        corner=sp.log(2),
    )
    span_dim = sp.Matrix([[1, 0], [1, 0]]).rank()  # rows of Ehat_k and Ahat_k
    full_rank = Dv.rank()
    finding = (full_rank == 2 and span_dim == 1) if not wrong else (full_rank == span_dim)
    facts.append(
        (
            "finding: full rank Delta_k = 2 != dim span(Ehat, Ahat) = 1 (variance-only source)",
            finding,
        )
    )
    facts.append(
        ("variance-only source: rank T_k = 1 = dim(mechanism space)", _top(Dv).rank() == 1)
    )
    # 6: block counterexample and mean-shift source block
    bb = sp.Matrix([3, 4])
    Bb = sp.zeros(3, 3)
    Bb[1, 0], Bb[2, 0] = bb[0], bb[1]
    Db = _delta(3, [1, 2], Bb, sp.zeros(3, 1), sp.eye(3), sp.zeros(2, 1), sp.eye(2))
    want_b = 3 if wrong else 2
    facts.append(
        (
            "block counterexample: rank T_k = 2 < 3 = k_k + rank B_k. (A7+ fails)",
            _top(Db).rank() == want_b,
        )
    )
    b1s, b2s = sp.symbols("c1 c2")
    Bsym = sp.zeros(3, 3)
    Bsym[1, 0], Bsym[2, 0] = b1s, b2s
    Dbs = _delta(3, [1, 2], Bsym, sp.zeros(3, 1), sp.eye(3), sp.zeros(2, 1), sp.eye(2))
    facts.append(
        (
            "block counterexample, any b: all 3x3 minors of T_k vanish",
            all(sp.expand(x) == 0 for x in _minors(_top(Dbs), 3)),
        )
    )
    facts.append(
        (
            "block counterexample: A7 holds (the conditional law of c_k given c_p changes)",
            _a7_holds(3, [1, 2], Bb, sp.zeros(3, 1), sp.eye(3), sp.zeros(2, 1), sp.eye(2)),
        )
    )
    Dm = _delta(2, [0, 1], sp.zeros(2, 2), sp.zeros(2, 1), sp.eye(2), sp.Matrix([1, 2]), sp.eye(2))
    facts.append(
        (
            "source block, mean shift only: rank T_k = 1 < 2 (A7 holds, A7+ fails)",
            _top(Dm).rank() == (2 if wrong else 1)
            and _a7_holds(
                2, [0, 1], sp.zeros(2, 2), sp.zeros(2, 1), sp.eye(2), sp.Matrix([1, 2]), sp.eye(2)
            ),
        )
    )
    # 7: generic block intervention: A7+ holds
    St = sp.Matrix([[2, sp.Rational(1, 2)], [sp.Rational(1, 2), 1]])
    Dg = _delta(3, [1, 2], Bb, sp.Matrix([1, -1, 2]), sp.diag(3, 1, 2), sp.Matrix([0, 1]), St)
    facts.append(("block with S~_k != S_k: rank T_k = 3 (A7+ holds)", _top(Dg).rank() == 3))
    facts += _lemma3b(wrong)
    return facts


def _lemma3b(wrong: bool) -> list[tuple[str, bool]]:
    """Lemma 3 (b): equal conditional laws (A7 fails) force B_k. = 0 and the same noise law.
    wrong: the intervention is applied softly (parents' weights kept), so B_k. = 0 is not forced."""
    facts = []
    b = sp.Symbol("b")
    s0, s1, st = sp.symbols("s0 s1 st", positive=True)
    m0, m1, mt = sp.symbols("m0 m1 mt")
    B = sp.Matrix([[0, 0], [b, 0]])
    mu, S = sp.Matrix([m0, m1]), sp.diag(s0, s1)
    eqs = _a7_equations(2, [1], B, mu, S, sp.Matrix([mt]), sp.Matrix([[st]]))
    if wrong:  # a soft intervention keeps the incoming weight: equations without the b term
        eqs = [e.subs(b, 0) for e in eqs]
    sols = sp.solve(eqs, [b, mt, st], dict=True)
    only_identity = sols == [{b: 0, mt: m1, st: s1}]
    T_at = _top(_delta(2, [1], B, mu, S, sp.Matrix([mt]), sp.Matrix([[st]]))).subs(sols[0])
    facts.append(
        (
            "Lemma 3 (b), 0 -> 1: equal conditional laws of c_1 given c_0 force b = 0, "
            "mu~ = mu, s~ = s (the identity), and then T_1 = 0",
            only_identity and T_at == sp.zeros(2, 3),
        )
    )
    b1, b2 = sp.symbols("b1 b2")
    x11, x12, x22, y11, y12, y22 = sp.symbols("x11 x12 x22 y11 y12 y22")
    Sk, St = sp.Matrix([[x11, x12], [x12, x22]]), sp.Matrix([[y11, y12], [y12, y22]])
    mk, mtk = sp.Matrix(sp.symbols("mk1 mk2")), sp.Matrix(sp.symbols("mt1 mt2"))
    Bb = sp.zeros(3, 3)
    Bb[1, 0], Bb[2, 0] = b1, b2
    mub, Sb = sp.Matrix([m0]).col_join(mk), sp.diag(s0, Sk)
    eqs = _a7_equations(3, [1, 2], Bb, mub, Sb, mtk, St)
    if wrong:
        eqs = [e.subs({b1: 0, b2: 0}) for e in eqs]
    unknowns = [b1, b2, *mtk, y11, y12, y22]
    sols = sp.solve(eqs, unknowns, dict=True)
    want = {b1: 0, b2: 0, mtk[0]: mk[0], mtk[1]: mk[1], y11: x11, y12: x12, y22: x22}
    ok = sols == [want]
    if ok:
        ok = _top(_delta(3, [1, 2], Bb, mub, Sb, mtk, St)).subs(want).applyfunc(sp.cancel)
        ok = ok == sp.zeros(3, 4)
    facts.append(
        (
            "Lemma 3 (b), scalar parent -> 2-d block: equal conditional laws force B_k. = 0, "
            "mu~_k = mu_k, S~_k = S_k, and then T_k = 0",
            ok,
        )
    )
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of Lemma 3; all must be True."""
    return _checks(False)


def falsify() -> list[tuple[str, bool]]:
    """The same checks with wrong claimed ranks (e.g. A7 => A7+ for blocks); some must be False."""
    return _checks(True)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
