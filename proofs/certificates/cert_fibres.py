"""Certificate for Lemma 5 (proofs/lemma_nuisance_fibres.md): fibres of the log-ratio map.

Q(c) = (q_1(c), ..., q_m(c)), q_k = log p_k(c) - log p_0(c) (Lemma 1: a quadratic in
(c_k, c_pa(k))).
Step (i) of the scalar proof needs, for both models, that the fibre Q^{-1}(Q(c)) is finite for a
dense set of c (condition (G)).

Facts checked:
1. scalar examples with rational parameters (2 nodes 0 -> 1, 3-node chain): for several rational
   c0 the system Q(c) = Q(c0) has a zero-dimensional Groebner basis (finitely many complex
   solutions), c0 among them; for 2 nodes the solutions are listed: at most 2^m = 4;
2. the Jacobian of Q is lower-triangular in a topological order (dq_k/dc_j = 0 unless
   j in {k} u pa(k)), so det DQ = prod_k dq_k/dc_k; with symbolic parameters, dq_k/dc_k vanishes
   identically only for the identity intervention on a source (A7 fails) -- the input of
   Proposition 5.2 (condition (G) holds for every scalar model satisfying A7);
3. finding: fibres need not be finite everywhere: for 0 -> 1 with a mean-only intervention on
   the non-source 1 (s~_1 = s_1), at points with b c_0 = mu~_1 - mu_1 the fibre contains a whole
   line (q_1 does not depend on c_1 there; Groebner basis not zero-dimensional), while at a
   generic point of the same model it is finite: the brief's "finite fibres" must be weakened to
   the density condition (G);
4. blocks: for an isotropic 2-d source block (S = s I, S~ = s~ I, zero means)
   q(R(theta) c0) = q(c0) identically in theta: the fibre contains the circle through c0 (for any
   block, m log-ratios in K > m unknowns have fibres of dimension >= K - m >= 1).

falsify(): the rotation invariance for a non-isotropic block, and finiteness at the degenerate
point of fact 3; both must fail.

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import run  # the certificates directory is on sys.path

R = sp.Rational


def _q(c, k, B, mu, s, mut, st):
    """Scalar log-ratio q_k(c) (Lemma 1), log-det constant included."""
    mu, s, mut, st = (list(map(sp.sympify, v)) for v in (mu, s, mut, st))
    a = c[k] - sum(B[k, j] * c[j] for j in range(len(c))) - mu[k]
    return -((c[k] - mut[k]) ** 2) / (2 * st[k]) + a**2 / (2 * s[k]) - sp.log(st[k] / s[k]) / 2


def _Q(c, B, mu, s, mut, st):
    return [sp.expand(_q(c, k, B, mu, s, mut, st)) for k in range(len(c))]


def _fibre_eqs(Q, c, c0):
    sub = dict(zip(c, c0))
    return [sp.expand(q - q.subs(sub)) for q in Q]


def _checks(wrong: bool) -> list[tuple[str, bool]]:
    facts = []
    # 1. finite fibres, scalar examples
    c2 = sp.symbols("c0:2")
    B2 = sp.Matrix([[0, 0], [R(3, 2), 0]])
    Q2 = _Q(c2, B2, [1, -1], [1, 2], [2, 0], [3, R(1, 3)])
    for c0 in [(R(1), R(2)), (R(-1, 2), R(3))]:
        eqs = _fibre_eqs(Q2, c2, c0)
        sols = sp.solve(eqs, c2, dict=True)
        pts = {tuple(sol[x] for x in c2) for sol in sols}
        ok = (
            sp.groebner(eqs, *c2, order="lex").is_zero_dimensional
            and 0 < len(pts) <= 4
            and c0 in pts
        )
        facts.append((f"0->1: fibre through {c0} is finite (<= 4 points, contains c0)", ok))
    c3 = sp.symbols("c0:3")
    B3 = sp.zeros(3, 3)
    B3[1, 0], B3[2, 1] = R(3, 2), R(-2, 3)
    Q3 = _Q(c3, B3, [1, -1, R(1, 2)], [1, 2, R(1, 2)], [2, 0, 1], [3, R(1, 3), 2])
    for c0 in [(R(1), R(2), R(-1)), (R(0), R(1, 3), R(5))]:
        G = sp.groebner(_fibre_eqs(Q3, c3, c0), *c3, order="lex")
        facts.append(
            (
                f"chain 0->1->2: fibre through {c0} is finite (zero-dimensional)",
                G.is_zero_dimensional,
            )
        )
    # 2. triangular Jacobian; diagonal entries vanish identically only for the identity intervention
    b10, b21 = sp.symbols("b10 b21")
    mu = sp.symbols("mu0:3")
    s = sp.symbols("s0:3", positive=True)
    mut = sp.symbols("mt0:3")
    st = sp.symbols("st0:3", positive=True)
    Bs = sp.zeros(3, 3)
    Bs[1, 0], Bs[2, 1] = b10, b21
    Qs = _Q(c3, Bs, mu, s, mut, st)
    J = sp.Matrix(3, 3, lambda k, j: sp.diff(Qs[k], c3[j]))
    facts.append(
        (
            "chain: DQ is lower-triangular (dq_k/dc_j = 0 for j after k)",
            all(J[k, j] == 0 for k in range(3) for j in range(k + 1, 3)),
        )
    )
    facts.append(
        ("chain: det DQ = prod_k dq_k/dc_k", sp.expand(J.det() - J[0, 0] * J[1, 1] * J[2, 2]) == 0)
    )
    src = sp.Poly(J[0, 0], c3)
    sol = sp.solve(src.coeffs(), [st[0], mut[0]], dict=True)
    facts.append(
        (
            "source: dq_0/dc_0 == 0 identically iff s~ = s and mu~ = mu",
            sol == [{st[0]: s[0], mut[0]: mu[0]}],
        )
    )
    ns = sp.Poly(J[1, 1], c3)
    facts.append(
        (
            "non-source: dq_1/dc_1 has the coefficient -b10/s1 on c_0 (non-zero polynomial)",
            sp.simplify(ns.coeff_monomial(c3[0]) + b10 / s[1]) == 0,
        )
    )
    # 3. finding: infinite fibre at a degenerate point (mean-only intervention on the non-source)
    mu2, s2, mt2, st2 = [0, 1], [1, 2], [2, 3], [3, 2]  # s~_1 = s_1 = 2, mu~_1 = 3 != mu_1 = 1
    Qd = _Q(c2, B2, mu2, s2, mt2, st2)
    c_deg = (R(4, 3), R(7))  # b c_0 = 3/2 * 4/3 = 2 = mu~_1 - mu_1
    t = sp.Symbol("t")
    line = all(
        sp.simplify(q.subs({c2[0]: c_deg[0], c2[1]: t}) - q.subs(dict(zip(c2, c_deg)))) == 0
        for q in Qd
    )
    Gd = sp.groebner(_fibre_eqs(Qd, c2, c_deg), *c2, order="lex")
    deg_claim = (not Gd.is_zero_dimensional) if not wrong else Gd.is_zero_dimensional
    facts.append(
        (
            "finding: mean-only non-source intervention, the fibre through a point with "
            "b c_0 = mu~ - mu contains the line {c_0 fixed}",
            line and deg_claim,
        )
    )
    Gg = sp.groebner(_fibre_eqs(Qd, c2, (R(1), R(7))), *c2, order="lex")
    facts.append(("same model, generic point: the fibre is finite", Gg.is_zero_dimensional))
    # 4. isotropic block: circle fibres
    th = sp.Symbol("theta")
    u = sp.symbols("u0:2")
    sv, stv = R(1), R(3)
    S = sp.diag(sv, 2 * sv) if wrong else sp.diag(sv, sv)
    St = sp.diag(stv, stv)
    uv = sp.Matrix(u)

    def qb(x):
        return sp.expand(-(x.T * St.inv() * x)[0, 0] / 2 + (x.T * S.inv() * x)[0, 0] / 2)

    Rt = sp.Matrix([[sp.cos(th), -sp.sin(th)], [sp.sin(th), sp.cos(th)]])
    circle = sp.simplify(qb(Rt * uv) - qb(uv)) == 0
    facts.append(
        ("isotropic 2-d block: q(R(theta) c) = q(c) for every theta (circle in the fibre)", circle)
    )
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of Lemma 5 on the examples; all must be True."""
    return _checks(False)


def falsify() -> list[tuple[str, bool]]:
    """The same checks on wrong claims (non-isotropic block, finiteness everywhere)."""
    return _checks(True)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
