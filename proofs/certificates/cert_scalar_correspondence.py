"""Certificate for the last step of Theorem S (proofs/theorem.md), step (iii): once c' = D c + b
with D diagonal, the graph, the SEM and the intervention laws correspond, for ANY second model.

Setting. Model 1: a scalar linear Gaussian SEM on 3 nodes, c = B c + eps, eps_j ~ N(mu_j, s_j),
with one hard intervention per node (c_k ~ N(mu~_k, s~_k)), on five graphs: the chain 0 -> 1 -> 2,
the collider 0 -> 2 <- 1, the fork 1 <- 0 -> 2, the complete DAG 0 -> 1 -> 2, 0 -> 2, and the
chain 2 -> 1 -> 0 (labels against the order: B has entries above the diagonal). Fact 1 takes every
parameter of model 1 symbolic; facts 2-6 take fixed rationals (edge weights 2, -3/2, 1/3 in the
order listed, mu = (1, -1, 2), s = (1, 2, 1/2), mu~ = (3, 0, -2), s~ = (2, 1/3, 3)). Model 2 is
unknown: a full weight matrix B' (zero diagonal, every off-diagonal entry a symbol: no order, no
graph and no acyclicity imposed), noise and intervention variances s'_j, s~'_j (their inverses are
extra symbols, so they are non-zero; positivity is not used), means mu'_j and intervention means
mu~'_j. The map is c' = D c + b with D = diag(d), d_j e_j = 1 (D invertible) and b symbolic: the
conclusions hold for every such map at once, not for a chosen one.

Log-density forms. q_k = log p_k - log p_0 = -1/2 chat^T Delta_k chat (chat = (c, 1)), Delta_k =
Psi_k - Psi_0, Psi the homogeneous form of a context's Gaussian log-density. Model 1's forms are
computed from its laws (covariances inverted exactly). Model 2's are written from its precision,
Psi'_ctx = [I - B'_ctx | -mu'_ctx]^T S'_ctx^{-1} [I - B'_ctx | -mu'_ctx] (in context k row k of B'
zeroed and the noise law of k replaced), which is its law whenever I - B' is invertible: Lemma 1
is not assumed for model 2. With Ag the homogeneous form of c -> D c + b, "q'_k(D c + b) = q_k(c)
as polynomials in c" is Ag^T Delta'_k Ag = Delta_k entrywise except the constant corner, which
holds logarithms of the variances and is checked at the solution instead (fact 6); these are the
"Q identities". Every equation is a polynomial in the unknowns and (d, e, b) over QQ, so a reduced
lex Groebner basis (unknowns before d, e, b) describes every complex solution, for every D and b
at once; values are read off its elements a x + h(d, e, b), never assumed.

Facts checked, for each graph:
1. (model 1 symbolic) the coefficient of c_p c_k in q_k is -B_kp / s_k for p in pa(k), and q_k does
   not involve c_p when p is neither k nor a parent of k (Lemma 1, read off the laws);
2. Q identities alone: every solution has B'_kp = d_k B_kp / d_p for every p != k: the value is 0
   exactly where B_kp = 0 and otherwise a non-zero number times a monomial in the units d, e, so
   G' = G, and an edge of model 2 absent from G (reversed, p > k or p < k, or new) is excluded;
3. Q identities alone: for every k with a parent, s'_k, mu'_k, s~'_k and mu~'_k are determined
   and are the class's (as in fact 5);
4. Q identities alone do not determine a root's laws: with D = I, b = 0, model 1's parameters with
   (mu'_k, mu~'_k) of a root k replaced by another solution of the equations of q_k (constant term
   included) satisfy every Q identity, constants included, but give another law of c in context 0.
   So the SEM needs the laws, as the text's regression uses them:
5. Q identities and the context-0 law identity (Ag^T Psi'_0 Ag = Psi_0 off the corner; step (i)
   gives it: g maps every context's law onto model 2's): the basis gives every unknown as a
   polynomial in (d, e, b), and its only elements free of unknowns are d_j e_j - 1 (a solution for
   every D and b, and exactly one); it is the class: B' = D B D^-1, s' = d^2 s,
   mu' = D mu + (I - B') b, intervention laws N(d_k mu~_k + b_k, d_k^2 s~_k);
6. at that solution the whole log-densities correspond in every context: Ag^T Psi'_ctx Ag = Psi_ctx
   corner included, and det Theta'_ctx det(D)^2 = det Theta_ctx (Theta the precision), so
   log p'_ctx(D c + b) + log |det D| = log p_ctx(c), and the Q identities hold with constants.

falsify(): model 1 the chain 0 -> 1 -> 2, model 2 with the edge 0 -> 1 reversed (the zero pattern
of 0 <- 1 -> 2, Markov equivalent to the chain). (a) The context-0 law identity alone has a
solution (True: the observational law does not tell the two apart); (b) the Q identities with
that zero pattern have a solution (False: the basis is [1]); (c) the Q and law identities have one
(False); (d) with a non-diagonal map (D[0, 1] = d01, a unit: c_1 mixed into c'_0) the Q and law
identities have a solution with B' free (False: the basis is [1]).

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import det, inv, is_zero, law, run  # certificates dir on sys.path

R = sp.Rational
N = 3
GRAPHS = {
    "chain 0->1->2": [(0, 1), (1, 2)],
    "collider 0->2<-1": [(0, 2), (1, 2)],
    "fork 1<-0->2": [(0, 1), (0, 2)],
    "complete DAG 0->1->2, 0->2": [(0, 1), (1, 2), (0, 2)],
    "chain 2->1->0": [(2, 1), (1, 0)],
}
WEIGHTS = [R(2), R(-3, 2), R(1, 3)]
MU, S, MT, ST = (
    [R(1), R(-1), R(2)],
    [R(1), R(2), R(1, 2)],
    [R(3), R(0), R(-2)],
    [R(2), R(1, 3), R(3)],
)


def _psi(mean, cov):
    """Homogeneous form of the Gaussian log-density (up to its log-det constant)."""
    theta = inv(cov)
    lin = -theta * mean
    return theta.row_join(lin).col_join(lin.T.row_join(mean.T * theta * mean))


def _laws(B, mu, s, mt, st):
    """Laws of c in context 0 (key None) and in every single-node hard intervention context."""
    n = B.shape[0]
    mu = sp.Matrix(mu)
    out = {None: law(B, mu, sp.diag(*s))}
    for k in range(n):
        Bk, muk, sk = B.copy(), mu.copy(), list(s)
        Bk[k, :] = sp.zeros(1, n)
        muk[k], sk[k] = mt[k], st[k]
        out[k] = law(Bk, muk, sp.diag(*sk))
    return out


def _weights(edges, values):
    B = sp.zeros(N, N)
    for (p, c), w in zip(edges, values, strict=False):
        B[c, p] = w
    return B


def _lemma1(name, edges):
    """Fact 1: the log-ratio coefficients of a symbolic model 1, from its laws."""
    B = _weights(edges, [sp.Symbol(f"w{c}{p}") for p, c in edges])
    s = sp.symbols(f"s0:{N}", positive=True)
    laws = _laws(
        B,
        sp.symbols(f"mu0:{N}"),
        s,
        sp.symbols(f"mt0:{N}"),
        sp.symbols(f"st0:{N}", positive=True),
    )
    psi0 = _psi(*laws[None])
    ok = True
    for k in range(N):
        Dk = _psi(*laws[k]) - psi0
        for p in range(N):
            if p == k:
                continue
            if (p, k) in edges:
                ok &= is_zero([Dk[p, k] - B[k, p] / s[k]])
            else:
                ok &= is_zero(Dk[p, :])
    return (f"{name}: q_k involves c_p iff p in pa(k), coefficient -B_kp / s_k (symbolic)", ok)


class _Second:
    """Model 2 with every parameter unknown, and the map c' = D c + b with D = diag(d)."""

    def __init__(self, offdiag=False):
        n = N
        self.B = sp.zeros(n, n)
        for k in range(n):
            for p in range(n):
                if p != k:
                    self.B[k, p] = sp.Symbol(f"B{k}{p}")
        self.u = list(sp.symbols(f"u0:{n}"))  # 1 / s'
        self.s = list(sp.symbols(f"v0:{n}"))  # s'
        self.ut = list(sp.symbols(f"ut0:{n}"))  # 1 / s~'
        self.st = list(sp.symbols(f"vt0:{n}"))  # s~'
        self.mu = list(sp.symbols(f"m0:{n}"))
        self.mt = list(sp.symbols(f"mt0:{n}"))
        self.d = list(sp.symbols(f"d0:{n}"))
        self.e = list(sp.symbols(f"e0:{n}"))  # 1 / d
        self.b = list(sp.symbols(f"b0:{n}"))
        D = sp.diag(*self.d)
        self.units = [self.d[j] * self.e[j] - 1 for j in range(n)]
        self.units += [self.u[j] * self.s[j] - 1 for j in range(n)]
        self.units += [self.ut[j] * self.st[j] - 1 for j in range(n)]
        if offdiag:  # a map that mixes c_1 into c'_0
            d01, e01 = sp.symbols("d01 e01")
            D[0, 1] = d01
            self.units.append(d01 * e01 - 1)
            self.extra = [d01, e01]
        else:
            self.extra = []
        self.D = D
        self.Ag = D.row_join(sp.Matrix(self.b)).col_join(sp.Matrix([[0] * n + [1]]))

    def unknowns(self, rows=None):
        rows = range(N) if rows is None else rows
        out = [self.B[k, p] for k in rows for p in range(N) if p != k]
        for k in rows:
            out += [self.u[k], self.s[k], self.ut[k], self.st[k], self.mu[k], self.mt[k]]
        return out

    def params(self):
        return self.d + self.e + self.b + self.extra

    def psi(self, ctx, B=None):
        """Psi'_ctx from the precision (I - B')^T S'^{-1} (I - B'): no acyclicity assumed."""
        B = (self.B if B is None else B).copy()
        mu, u = list(self.mu), list(self.u)
        if ctx is not None:
            B[ctx, :] = sp.zeros(1, N)
            mu[ctx], u[ctx] = self.mt[ctx], self.ut[ctx]
        A = (sp.eye(N) - B).row_join(-sp.Matrix(mu))
        return A.T * sp.diag(*u) * A


def _entries(M, corner=False):
    """Numerators of the entries of a symmetric homogeneous form (the corner only if asked)."""
    n = M.shape[0] - 1
    out = []
    for i in range(n + 1):
        for j in range(i, n + 1):
            if (i, j) == (n, n) and not corner:
                continue
            x = sp.numer(sp.together(sp.expand(M[i, j])))
            if x != 0:
                out.append(sp.expand(x))
    return out


def _q_equations(m2, Delta, k, B=None):
    """q'_k(D c + b) = q_k(c): Ag^T Delta'_k Ag = Delta_k off the constant corner."""
    Dk2 = m2.psi(k, B) - m2.psi(None, B)
    return _entries(m2.Ag.T * Dk2 * m2.Ag - Delta[k])


def _law_equations(m2, psi0, B=None):
    """The law of c' in context 0 is the image of that of c: Ag^T Psi'_0 Ag = Psi_0."""
    return _entries(m2.Ag.T * m2.psi(None, B) * m2.Ag - psi0)


def _basis(eqs, m2, unknowns):
    """Reduced lex Groebner basis over QQ: every symbol is a generator, none a coefficient."""
    gens = [*unknowns, *m2.params()]
    units = [x for x in m2.units if x.free_symbols <= set(gens)]
    assert set().union(*(x.free_symbols for x in eqs)) <= set(gens)
    return sp.groebner(eqs + units, *gens, order="lex", domain=sp.QQ)


def _values(G, unknowns, params):
    """Unknowns the basis fixes: an element a x + h(params) (a a number) gives x = -h / a."""
    out = {}
    pset = set(params)
    for g in G.exprs:
        poly = sp.Poly(g, *unknowns)
        lead = poly.monoms()[0]
        if sum(lead) != 1:
            continue
        x = unknowns[lead.index(1)]
        a = poly.coeff_monomial(x)
        rest = sp.expand(g - a * x)
        if a.is_number and rest.free_symbols <= pset:
            out[x] = sp.expand(-rest / a)
    return out


def _class(m2, B, mu, s, mt, st):
    """The class's transform of model 1 under c' = D c + b, keyed by model 2's symbols."""
    d, b = m2.d, sp.Matrix(m2.b)
    D = sp.diag(*d)
    B2 = D * B * inv(D)
    mu2 = D * sp.Matrix(mu) + (sp.eye(N) - B2) * b
    out = {}
    for k in range(N):
        for p in range(N):
            if p != k:
                out[m2.B[k, p]] = B2[k, p]
        out[m2.s[k]], out[m2.u[k]] = d[k] ** 2 * s[k], 1 / (d[k] ** 2 * s[k])
        out[m2.st[k]], out[m2.ut[k]] = d[k] ** 2 * st[k], 1 / (d[k] ** 2 * st[k])
        out[m2.mu[k]], out[m2.mt[k]] = mu2[k], d[k] * mt[k] + b[k]
    return out


def _same(values, expected, m2):
    """values (polynomials in d, e, b) equal expected (rational in d, b), with e = 1 / d."""
    inverse = {m2.e[j]: 1 / m2.d[j] for j in range(N)}
    return all(x in values for x in expected) and is_zero(
        [values[x].subs(inverse) - expected[x] for x in expected]
    )


def _model(name, edges):
    facts = [_lemma1(name, edges)]
    B = _weights(edges, WEIGHTS)
    laws = _laws(B, MU, S, MT, ST)
    psi = {key: _psi(*law_) for key, law_ in laws.items()}
    Delta = {k: psi[k] - psi[None] for k in range(N)}
    parents = {k: [p for p, c in edges if c == k] for k in range(N)}
    m2 = _Second()
    expected = _class(m2, B, MU, S, MT, ST)
    params = m2.params()
    units = set(m2.e + m2.d)

    # facts 2 and 3: the Q identities alone, one row at a time (q'_k involves row k of model 2
    # only; a value found for the system of q_k alone holds a fortiori for all of them)
    graph, rows = True, True
    for k in range(N):
        unk = m2.unknowns([k])
        G = _basis(_q_equations(m2, Delta, k), m2, unk)
        vals = _values(G, unk, params)
        for p in range(N):
            if p == k:
                continue
            x = m2.B[k, p]
            v = vals.get(x)
            if v is None:  # the basis does not fix B'_kp
                graph = False
                continue
            graph &= (v == 0) == (B[k, p] == 0)
            graph &= v == 0 or (v.free_symbols <= units and sp.Poly(v, *units).is_monomial)
            graph &= _same({x: v}, {x: expected[x]}, m2)
        if parents[k]:
            rows &= _same(vals, {x: expected[x] for x in unk}, m2)
    facts.append(
        (
            f"{name}: Q alone: B'_kp = d_k B_kp / d_p on every solution, zero exactly where "
            "B_kp = 0 (all p != k): G' = G, no reversed edge",
            graph,
        )
    )
    facts.append((f"{name}: Q alone: s', mu', s~', mu~' of every non-root are the class's", rows))

    # fact 4: a root's laws are not fixed by Q
    roots = [k for k in range(N) if not parents[k]]
    facts.append(
        (
            f"{name}: Q alone does not fix a root's means (D = I, b = 0: other (mu'_k, mu~'_k) "
            "give every q_k, constants included, and another context-0 law)",
            _root(m2, B, Delta, psi, roots),
        )
    )

    # fact 5: Q and the context-0 law
    unk = m2.unknowns()
    eqs = [x for k in range(N) for x in _q_equations(m2, Delta, k)]
    eqs += _law_equations(m2, psi[None])
    G = _basis(eqs, m2, unk)
    vals = _values(G, unk, params)
    free = [g for g in G.exprs if not (g.free_symbols & set(unk))]
    whole = set(free) == {sp.expand(u) for u in m2.units[:N]} and len(vals) == len(unk)
    facts.append(
        (
            f"{name}: Q and the context-0 law: one solution for every D, b, and it is the class "
            "(B' = D B D^-1, s' = d^2 s, mu' = D mu + (I - B') b, N(d mu~ + b, d^2 s~))",
            whole and _same(vals, expected, m2),
        )
    )

    # fact 6: the constants, at that solution
    inverse = {m2.e[j]: 1 / m2.d[j] for j in range(N)}
    at = {x: v.subs(inverse) for x, v in vals.items()}
    ok = bool(vals)
    for ctx in [None, *range(N)]:
        P2 = m2.psi(ctx).subs(at)
        ok &= is_zero(m2.Ag.T * P2 * m2.Ag - psi[ctx])
        theta2, theta1 = P2[:N, :N], psi[ctx][:N, :N]
        ok &= is_zero([det(theta2) * det(m2.D) ** 2 - det(theta1)])
    facts.append(
        (
            f"{name}: at the solution every context's log-density corresponds, constants included",
            ok,
        )
    )
    return facts


def _root(m2, B, Delta, psi, roots):
    """Fact 4, on D = I, b = 0: another solution for a root's (mu'_k, mu~'_k)."""
    ident = {x: 1 for x in m2.d + m2.e} | {x: 0 for x in m2.b}
    ok = bool(roots)
    for k in roots:
        base = {x: v.subs(ident) for x, v in _class(m2, B, MU, S, MT, ST).items()}
        fixed = {x: v for x, v in base.items() if x not in (m2.mu[k], m2.mt[k])}
        Dk2 = (m2.psi(k) - m2.psi(None)).subs(fixed).subs(ident)
        eqs = _entries(Dk2 - Delta[k], corner=True)  # equal log-det constants: same s', s~'
        sols = sp.solve(eqs, [m2.mu[k], m2.mt[k]], dict=True)
        other = [
            sol
            for sol in sols
            if (sol[m2.mu[k]], sol[m2.mt[k]]) != (base[m2.mu[k]], base[m2.mt[k]])
        ]
        ok &= len(other) >= 1
        if not other:
            continue
        model = {**base, **other[0]}
        for j in range(N):  # every Q identity, constants included (same variances: same log-dets)
            Dj2 = (m2.psi(j) - m2.psi(None)).subs(model).subs(ident)
            ok &= is_zero(Dj2 - Delta[j])
        P0 = m2.psi(None).subs(model).subs(ident)
        ok &= not is_zero(P0 - psi[None])
    return ok


def _falsify_checks():
    edges = GRAPHS["chain 0->1->2"]
    B = _weights(edges, WEIGHTS)
    laws = _laws(B, MU, S, MT, ST)
    psi = {key: _psi(*law_) for key, law_ in laws.items()}
    Delta = {k: psi[k] - psi[None] for k in range(N)}
    m2 = _Second()
    # zero pattern of 0 <- 1 -> 2: only B'_01 and B'_21 free
    Bz = sp.zeros(N, N)
    Bz[0, 1], Bz[2, 1] = m2.B[0, 1], m2.B[2, 1]
    weights = set(m2.B)
    unk = [Bz[0, 1], Bz[2, 1]] + [x for x in m2.unknowns() if x not in weights]
    q = [x for k in range(N) for x in _q_equations(m2, Delta, k, Bz)]
    lw = _law_equations(m2, psi[None], Bz)
    name = "model 2 on 0 <- 1 -> 2 (edge 0 -> 1 reversed), model 1 the chain 0 -> 1 -> 2"
    out = [
        (f"{name}: the context-0 law alone has a solution", _basis(lw, m2, unk).exprs != [1]),
        (f"{name}: the Q identities have a solution", _basis(q, m2, unk).exprs != [1]),
        (f"{name}: the Q and law identities have a solution", _basis(q + lw, m2, unk).exprs != [1]),
    ]
    mix = _Second(offdiag=True)
    unk = mix.unknowns()
    eqs = [x for k in range(N) for x in _q_equations(mix, Delta, k)]
    eqs += _law_equations(mix, psi[None])
    out.append(
        (
            "non-diagonal map (D[0, 1] != 0): the Q and law identities have a solution",
            _basis(eqs, mix, unk).exprs != [1],
        )
    )
    return out


def certify() -> list[tuple[str, bool]]:
    """Every fact of the correspondence, on every graph; all must be True."""
    facts = []
    for name, edges in GRAPHS.items():
        facts += _model(name, edges)
    return facts


def falsify() -> list[tuple[str, bool]]:
    """A reversed edge and a mixing map claimed possible; some facts must be False."""
    return _falsify_checks()


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
