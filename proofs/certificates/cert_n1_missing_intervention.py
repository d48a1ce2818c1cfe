"""Certificate for witness N1 (proofs/necessity.md): without an intervention on concept j (A6
dropped for j), a concept j with a non-descendant i is not identifiable.

Witness. c'_j = c_j - alpha c_i (i a non-descendant of j), every other concept unchanged: c' = U c,
U = I - alpha e_j e_i^T. The second model keeps every noise law and every intervention law and
changes only the edge weights:
    B'_ji = B_ji - alpha,     B'_li = B_li + alpha B_lj  for every child l of j,
(new edges i -> j and i -> ch(j); the graph stays acyclic because i is not a descendant of j).

Facts checked (all parameters and alpha symbolic; two 3-node examples):
- B' is nilpotent (acyclic);
- in context 0 and in every context do(k), k != j: mean and covariance of U c under model 1 equal
  mean and covariance of c under model 2 (Gaussian, so the laws are equal; the mixing f and the
  nuisance are unchanged, so the laws of x are equal);
- in context do(j) the laws differ (alpha != 0): the missing context is exactly what would tell
  the models apart;
- c'_j = c_j - alpha c_i is not of the form a c_j + b (outside the class): derived from the law,
  the residual variance of c'_j given c_j in context 0 is a non-zero rational function.

Root case (j = 0 is a root and every other concept descends from it). Model 1: 0 -> 1,
c_1 = b c_0 + eps_1, the intervention on 1 keeps the mean of c_1 (mu~_1 = b mu_0 + mu_1) and
changes its variance (s~_1 != b^2 s_0 + s_1); design: contexts 0 and do(1) only. Witness:
    c'_0 = c_0 + alpha c_1,   c'_1 = -(alpha s~_1 / s_0) c_0 + c_1,
    alpha = -2 b s_0 / (b^2 s_0 + s_1 - s~_1).
The second model's SEM (order 0 -> 1) and intervention law are *derived* from the pushed-forward
laws (regression in context 0, marginal of c'_1 in do(1)); its own laws are then computed forward
and compared with the pushed-forward ones in both contexts (all parameters symbolic). Also: the
map is invertible, c'_0 is outside the class, context do(0) would distinguish the models, and on
the rational instance b = 3/2, s = (1, 2), s~_1 = 1/3 (the model of cert_linear_uniqueness) the
second model has positive variances, satisfies A7, and, written as c = V c' with V[0, 1] = 1 and
z det V = 1, has the precisions tp0 = 1296 / (2641 z^2), tp1 = 2641/2592, tt1 = 2641/432.

Means matter: with an intervention that moves the mean of c_1 (rational instance, no nuisance), the
equations a second model ordered 0 -> 1 imposes on c' = W c (c'_0 keeps its mean and variance
between the contexts and is independent of c'_1 in do(1)) have only w01 = w10 = 0.

Soft interventions on a third concept (root case): under a context that intervenes softly on a
concept l with parents 0, 1 and another concept p (weights bt0, bt1, btp), the second model's row
of l is (bt0, bt1) P^-1 on the pair, btp on p, in the coordinates c' = P c; with it the joint
law of (c', c_p, c_l) is the pushed-forward one, for any law of (c_0, c_1, c_p) (all symbolic).

falsify(): the same with the wrong sign B'_li = B_li - alpha B_lj; the soft row kept as it was;
the root witness for an intervention that moves the mean of c_1 (the mean equation then fails in
do(1)); and the "only diagonal maps" claim for a mean-preserving intervention (the witness
exists).

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import conditional, is_zero, law, residual_cov, run  # certificates dir on sys.path


def _ctx(B, mu, S, k, mt, st):
    if k is None:
        return law(B, mu, S)
    B2, mu2, S2 = B.copy(), mu.copy(), S.copy()
    B2[k, :] = sp.zeros(1, B.shape[0])
    mu2[k], S2[k, k] = mt[k], st[k]
    return law(B2, mu2, S2)


def _witness(name, edges, j, i, wrong):
    n = 3
    alpha = sp.Symbol("alpha")
    B = sp.zeros(n, n)
    for p, c in edges:
        B[c, p] = sp.Symbol(f"b{c}{p}")
    mu = sp.Matrix(sp.symbols(f"mu0:{n}"))
    S = sp.diag(*sp.symbols(f"s0:{n}", positive=True))
    mt = sp.symbols(f"mt0:{n}")
    st = sp.symbols(f"st0:{n}", positive=True)
    children = [c for p, c in edges if p == j]
    B2 = B.copy()
    B2[j, i] = B[j, i] - alpha
    for ell in children:
        B2[ell, i] = B[ell, i] + (-1 if wrong else 1) * alpha * B[ell, j]
    U = sp.eye(n)
    U[j, i] = -alpha
    facts = [(f"{name}: B' is acyclic (nilpotent)", (B2**n).applyfunc(sp.expand) == sp.zeros(n, n))]
    for k in [None] + [k for k in range(n) if k != j]:
        m1, C1 = _ctx(B, mu, S, k, mt, st)
        m2, C2 = _ctx(B2, mu, S, k, mt, st)
        same = (U * m1 - m2).applyfunc(sp.expand) == sp.zeros(n, 1)
        same &= (U * C1 * U.T - C2).applyfunc(sp.expand) == sp.zeros(n, n)
        label = "context 0" if k is None else f"context do({k})"
        facts.append((f"{name}: {label}: law of U c (model 1) = law of c (model 2)", same))
    m1, C1 = _ctx(B, mu, S, j, mt, st)
    m2, C2 = _ctx(B2, mu, S, j, mt, st)
    differ = (U * C1 * U.T - C2).applyfunc(sp.expand) != sp.zeros(n, n)
    facts.append((f"{name}: context do({j}) would distinguish the models", differ))
    m0, C0 = _ctx(B, mu, S, None, mt, st)
    resid = residual_cov(U, C0, [j], [j])
    facts.append(
        (f"{name}: Var(c'_{j} | c_{j}) != 0 in context 0 (outside the class)", not is_zero(resid))
    )
    return facts


R = sp.Rational


def _root_laws(b, s0, s1, st, m0, m1, mt, W):
    """Model 1 (0 -> 1) in context 0 and do(1), pushed forward by c' = W c; the second model
    derived from the pushed laws; the second model's own laws computed forward."""
    B = sp.Matrix([[0, 0], [b, 0]])
    pushed = {}
    for key, (m, C) in {
        "context 0": law(B, sp.Matrix([m0, m1]), sp.diag(s0, s1)),
        "context do(1)": law(sp.zeros(2, 2), sp.Matrix([m0, mt]), sp.diag(s0, st)),
    }.items():
        pushed[key] = ((W * m).applyfunc(sp.cancel), (W * C * W.T).applyfunc(sp.cancel))
    _, mu0, v0 = conditional(*pushed["context 0"], [0], [])
    b2, mu1, v1 = conditional(*pushed["context 0"], [1], [0])
    _, mt2, vt2 = conditional(*pushed["context do(1)"], [1], [])
    second = dict(b=b2[0, 0], mu=(mu0[0], mu1[0]), s=(v0[0, 0], v1[0, 0]), mt=mt2[0], st=vt2[0, 0])
    B2 = sp.Matrix([[0, 0], [second["b"], 0]])
    own = {
        "context 0": law(B2, sp.Matrix(second["mu"]), sp.diag(*second["s"])),
        "context do(1)": law(
            sp.zeros(2, 2),
            sp.Matrix([second["mu"][0], second["mt"]]),
            sp.diag(second["s"][0], second["st"]),
        ),
    }
    return pushed, own, second


def _root_case(wrong: bool) -> list[tuple[str, bool]]:
    name = "root case 0->1 without do(0)"
    b = sp.Symbol("b", nonzero=True)
    s0, s1, st = sp.symbols("s0 s1 st", positive=True)
    m0, m1, dm = sp.symbols("m0 m1 dm")
    mt = b * m0 + m1 + (dm if wrong else 0)  # the intervention keeps the mean of c_1
    alpha = -2 * b * s0 / (b**2 * s0 + s1 - st)
    W = sp.Matrix([[1, alpha], [-alpha * st / s0, 1]])
    pushed, own, _ = _root_laws(b, s0, s1, st, m0, m1, mt, W)
    facts = []
    for key in pushed:
        same = is_zero(pushed[key][0] - own[key][0]) and is_zero(pushed[key][1] - own[key][1])
        facts.append((f"{name}: {key}: law of W c (model 1) = law of c (model 2)", same))
    facts.append(
        (f"{name}: det W = 1 + alpha^2 s~_1 / s_0", is_zero([W.det() - 1 - alpha**2 * st / s0]))
    )
    C0 = law(sp.Matrix([[0, 0], [b, 0]]), sp.Matrix([m0, m1]), sp.diag(s0, s1))[1]
    facts.append(
        (
            f"{name}: Var(c'_0 | c_0) != 0 (outside the class)",
            not is_zero(residual_cov(W, C0, [0], [0])),
        )
    )
    # do(0) would separate: the pushed law of c'_1 given c'_0 under do(0) differs from context 0's
    mt0 = sp.Symbol("mt0")
    st0 = sp.Symbol("st0", positive=True)
    B = sp.Matrix([[0, 0], [b, 0]])
    m, C = law(B, sp.Matrix([mt0, m1]), sp.diag(st0, s1))
    under_do0 = conditional(W * m, W * C * W.T, [1], [0])
    under_0 = conditional(*pushed["context 0"], [1], [0])
    facts.append(
        (
            f"{name}: do(0) would distinguish the models (law of c'_1 given c'_0 moves)",
            not is_zero([e for X, Y in zip(under_do0, under_0) for e in sp.Matrix(X - Y)]),
        )
    )
    # the rational instance of cert_linear_uniqueness: positivity, A7, the precisions
    bv, s0v, s1v, stv = R(3, 2), 1, 2, R(1, 3)
    Wv = W.subs({b: bv, s0: s0v, s1: s1v, st: stv})
    mtv = bv * 0 + 0 + (1 if wrong else 0)
    pushed, own, second = _root_laws(bv, s0v, s1v, stv, 0, 0, mtv, Wv)
    positive = all(v > 0 for v in (*second["s"], second["st"]))
    facts.append(
        (f"{name}, b = 3/2, s = (1, 2), s~_1 = 1/3: the second model's variances are > 0", positive)
    )
    before = conditional(*own["context 0"], [1], [0])
    after = conditional(*own["context do(1)"], [1], [0])
    a7 = not is_zero([e for X, Y in zip(before, after) for e in sp.Matrix(X - Y)])
    facts.append((f"{name}, rational instance: the second model satisfies A7", a7))
    V = Wv.inv()
    l1 = 1 / V[0, 1]  # rescale c'_1 so that V[0, 1] = 1 (the normalisation of the Groebner check)
    z2_tp0 = Wv.det() ** 2 / (second["s"][0] * l1**2)  # tp0 z^2 with z = 1 / det(V L)
    values = (z2_tp0, l1**2 / second["s"][1], l1**2 / second["st"])
    facts.append(
        (
            f"{name}, rational instance: (tp0 z^2, tp1, tt1) = (1296/2641, 2641/2592, 2641/432)",
            values == (R(1296, 2641), R(2641, 2592), R(2641, 432)),
        )
    )
    return facts


def _root_mean_change(wrong: bool) -> list[tuple[str, bool]]:
    """The root case with a mean-changing intervention on 1 and no nuisance: a second model
    ordered 0 -> 1 needs c'_0 to keep its law between the contexts and to be independent of c'_1
    in do(1); those equations leave only diagonal maps. wrong: the mean is kept (the witness)."""
    w00, w11 = sp.symbols("w00 w11", nonzero=True)
    w01, w10 = sp.symbols("w01 w10")
    W = sp.Matrix([[w00, w01], [w10, w11]])
    B = sp.Matrix([[0, 0], [R(3, 2), 0]])
    mt = 0 if wrong else 1  # E_0[c_1] = 0
    m0, C0 = law(B, sp.Matrix([0, 0]), sp.diag(1, 2))
    m1, C1 = law(sp.zeros(2, 2), sp.Matrix([0, mt]), sp.diag(1, R(1, 3)))
    p0, p1 = (W * m0, W * C0 * W.T), (W * m1, W * C1 * W.T)
    eqs = [p0[0][0] - p1[0][0], p0[1][0, 0] - p1[1][0, 0], p1[1][0, 1]]
    sols = sp.solve(eqs, [w01, w10], dict=True)
    return [
        (
            "root case, intervention on 1 moves the mean of c_1, no nuisance, second model "
            "ordered 0 -> 1: only w01 = w10 = 0 (diagonal maps)",
            sols == [{w01: 0, w10: 0}],
        )
    ]


def _root_soft_other(wrong: bool) -> list[tuple[str, bool]]:
    """The root case's pair map c' = P c on (c_0, c_1), P = [[1, alpha], [beta, 1]], and a third
    concept l with parents 0, 1 and another concept p, under a context that intervenes softly on
    l with weights (bt0, bt1, btp). Whatever the joint law N(m, S) of (c_0, c_1, c_p) there (S a
    general symbolic covariance), the second model, which gives (c'_0, c'_1, c_p) the
    pushed-forward law and l the row (bt0, bt1) P^-1 on the pair beside btp on p, has the joint
    law of (P (c_0, c_1), c_p, c_l) under the first model: mean and covariance compared exactly.
    Wrong: the soft row kept as (bt0, bt1)."""
    al, be, bt0, bt1, btp, mu_l, s_l = sp.symbols("alpha beta bt0 bt1 btp mu_l s_l")
    m = sp.Matrix(sp.symbols("m0 m1 mp"))
    s = sp.symbols("s00 s01 s0p s11 s1p spp")
    S = sp.Matrix([[s[0], s[1], s[2]], [s[1], s[3], s[4]], [s[2], s[4], s[5]]])
    P = sp.Matrix([[1, al], [be, 1]])
    A = sp.diag(P, sp.Integer(1))  # (c_0, c_1, c_p) -> (c'_0, c'_1, c_p)
    bt = sp.Matrix([[bt0, bt1, btp]])

    def joint(mean, cov, row):  # (z, c_l) with c_l = row z + eps_l, eps_l ~ N(mu_l, s_l)
        return (
            sp.Matrix([*mean, (row * mean)[0] + mu_l]),
            sp.Matrix(sp.BlockMatrix([[cov, cov * row.T], [row * cov, row * cov * row.T
                                                            + sp.Matrix([[s_l]])]])),
        )  # fmt: skip

    mean_c, cov_c = joint(m, S, bt)  # the first model, in c
    A4 = sp.diag(A, sp.Integer(1))
    mean1, cov1 = A4 * mean_c, A4 * cov_c * A4.T  # pushed forward to c'
    row = bt if wrong else bt * sp.diag(P.inv(), sp.Integer(1))
    mean2, cov2 = joint(A * m, A * S * A.T, row)  # the second model, in c'
    return [
        (
            "root case, a soft intervention on a third concept with parents 0, 1 and another "
            "concept p: with the row (bt0, bt1) P^-1 (btp kept) the second model's joint law "
            "equals the pushed-forward one (mean and covariance, every parameter symbolic)",
            is_zero(list(mean1 - mean2)) and is_zero(list(cov1 - cov2)),
        )
    ]


def _checks(wrong: bool) -> list[tuple[str, bool]]:
    facts = _witness("chain 0->1->2, j=1, i=0 (a parent)", [(0, 1), (1, 2)], 1, 0, wrong)
    facts += _witness("collider 0->2<-1, j=0, i=1 (not adjacent)", [(0, 2), (1, 2)], 0, 1, wrong)
    facts += _root_case(wrong)
    facts += _root_mean_change(wrong)
    facts += _root_soft_other(wrong)
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of witness N1; all must be True."""
    return _checks(False)


def falsify() -> list[tuple[str, bool]]:
    """The same with a wrong sign in the children's new weights; some must be False."""
    return _checks(True)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
