"""Certificate for witness N7 (proofs/necessity.md): without the observational context (A0
dropped) the concepts are not identifiable, even with linear mixing and every other assumption.

Both witnesses change only the read-out, T -> G T with G invertible on (c, n); the mixing f is
unchanged, so the laws of x agree in a context iff the laws of (c', n') = G (c, n) under model 1
equal the laws of (c, n) under model 2. Everything is Gaussian: means and covariances suffice.

(a) One scalar concept c with a 1-d nuisance n; design: do(c) only. In that context
    c ~ N(mu~, sigma^2) and n ~ N(mu_n, tau^2) are independent. G rotates the standardised
    (c / sigma, n / tau) by an angle theta (cos theta = (1 - t^2) / (1 + t^2),
    sin theta = 2 t / (1 + t^2), exact). Model 2: intervention law and nuisance law read off the
    pushed-forward law (its marginals); its observational law (never observed) is N(mu, s) with
    s != sigma^2, so that A7 holds. Checked: the pushed law of (c', n') equals model 2's law
    (c' and n' independent, right marginals); det G = 1; model 2 satisfies A7 (its conditional
    laws differ) and A5 (the nuisance law is one law, independent of c'); c' is outside the class:
    Var(c' | c) != 0.

(b) The chain a -> b (c_b = beta c_a + eps_b) with contexts do(a) and do(b) only; beta = 1,
    s_a = 1, s_b = 7, s~_a = 5, s~_b = 3 (= 3 s_a), means symbolic. Witness
        c'_a = c_a + c_b,   c'_b = -3 c_a + c_b.
    Model 2 (graph a -> b) is derived from the pushed-forward laws alone: (mu'_a, s'_a) and the
    intervention law of b from the marginals in do(b); the intervention law of a from the marginal
    in do(a); (B', mu'_b, s'_b) by the regression of c'_b on c'_a in do(a), where model 2 keeps the
    mechanism of b. Each of these parameters enters only one context's law, so the derivation is
    not circular: model 2's laws are then computed forward from its SEM and compared with the
    pushed-forward laws in both contexts. Checked: equal laws in do(a) and do(b); B' = -13/27;
    model 2's variances (s'_a, s'_b, s~'_a, s~'_b) = (4, 560/27, 27, 12), all positive; A4
    (acyclic, B' != 0 makes a -> b an edge), A6 (hard interventions on both concepts: the forward
    laws are those of hard interventions) and A7 (the conditional law of each target given its
    parents differs between the observational SEM and the intervention) hold for model 2, as for
    model 1; c'_a and c'_b are outside the class (Var(c'_j | c_j) != 0); the observational context
    would distinguish the models (model 2's observational law differs from the push-forward of
    model 1's).

falsify(): (a) a rotation of the unstandardised (c, n) (the law changes when sigma != tau);
(b) s~_b = 2 s_a (the pushed law of do(b) no longer has c'_a and c'_b independent).

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import conditional, is_zero, law, residual_cov, run  # certificates dir on sys.path

R = sp.Rational


def _differ(before, after) -> bool:
    """Two conditional laws (coefficient, intercept, residual covariance) are different."""
    return not is_zero([e for X, Y in zip(before, after) for e in sp.Matrix(X - Y)])


def _single_concept(wrong: bool) -> list[tuple[str, bool]]:
    name = "(a) one concept, nuisance, design do(c) only"
    t = sp.Symbol("t")
    sig, tau = sp.symbols("sigma tau", positive=True)
    mt, mn = sp.symbols("mt mn")
    co, si = (1 - t**2) / (1 + t**2), 2 * t / (1 + t**2)
    Rt = sp.Matrix([[co, -si], [si, co]])
    scale = sp.diag(1, 1) if wrong else sp.diag(sig, tau)
    G = scale * Rt * scale.inv()  # coordinates (c, n)
    m, C = sp.Matrix([mt, mn]), sp.diag(sig**2, tau**2)
    pm, pC = G * m, G * C * G.T
    # model 2 read off the pushed law: intervention law of c', nuisance law of n'
    _, mt2, st2 = conditional(pm, pC, [0], [])
    _, mn2, sn2 = conditional(pm, pC, [1], [])
    own_m, own_C = mt2.col_join(mn2), sp.diag(st2, sn2)
    facts = [
        (
            f"{name}: pushed law of (c', n') = model 2's law (c', n' independent)",
            is_zero(pm - own_m) and is_zero(pC - own_C),
        ),
        (f"{name}: det G = 1", is_zero([G.det() - 1])),
    ]
    # model 2's observational law N(mu, s), s = 2 sigma^2: A7 compares it with N(mt2, st2)
    s_obs = 2 * sig**2
    facts.append(
        (f"{name}: model 2 satisfies A7 (s = 2 sigma^2 != s~')", not is_zero([s_obs - st2[0, 0]]))
    )
    facts.append(
        (
            f"{name}: Var(c' | c) != 0: c' depends on n, outside the class",
            not is_zero(residual_cov(G, C, [0], [0])),
        )
    )
    return facts


def _chain_laws(beta, sa, sb, sta, stb, ma, mb, mta, mtb):
    B = sp.Matrix([[0, 0], [beta, 0]])
    return {
        "observational": law(B, sp.Matrix([ma, mb]), sp.diag(sa, sb)),
        "do(a)": law(B, sp.Matrix([mta, mb]), sp.diag(sta, sb)),
        "do(b)": law(sp.zeros(2, 2), sp.Matrix([ma, mtb]), sp.diag(sa, stb)),
    }


def _chain(wrong: bool) -> list[tuple[str, bool]]:
    name = "(b) chain a -> b, design do(a), do(b)"
    beta, sa, sb, sta = 1, 1, 7, 5
    stb = 2 if wrong else 3  # the witness needs s~_b = 3 s_a
    ma, mb, mta, mtb = sp.symbols("mu_a mu_b mt_a mt_b")
    W = sp.Matrix([[1, 1], [-3, 1]])
    laws1 = _chain_laws(beta, sa, sb, sta, stb, ma, mb, mta, mtb)
    pushed = {k: (W * m, W * C * W.T) for k, (m, C) in laws1.items()}
    # model 2, a -> b, derived from the pushed laws of the two designed contexts
    _, mu_a2, s_a2 = conditional(*pushed["do(b)"], [0], [])
    _, mt_b2, st_b2 = conditional(*pushed["do(b)"], [1], [])
    _, mt_a2, st_a2 = conditional(*pushed["do(a)"], [0], [])
    B2, mu_b2, s_b2 = conditional(*pushed["do(a)"], [1], [0])
    p2 = [B2[0, 0], s_a2[0, 0], s_b2[0, 0], st_a2[0, 0], st_b2[0, 0]]
    laws2 = _chain_laws(*p2, mu_a2[0], mu_b2[0], mt_a2[0], mt_b2[0])
    facts = []
    for key in ("do(a)", "do(b)"):
        same = is_zero(pushed[key][0] - laws2[key][0]) and is_zero(pushed[key][1] - laws2[key][1])
        facts.append((f"{name}: {key}: pushed law of model 1 = law of model 2", same))
    facts.append((f"{name}: B' = -13/27", p2[0] == R(-13, 27)))
    facts.append(
        (
            f"{name}: (s'_a, s'_b, s~'_a, s~'_b) = (4, 560/27, 27, 12)",
            p2[1:] == [4, R(560, 27), 27, 12],
        )
    )
    facts.append(
        (
            f"{name}: model 2's variances s'_a, s'_b, s~'_a, s~'_b are > 0",
            all(v > 0 for v in p2[1:]),
        )
    )
    for label, laws in (("model 1", laws1), ("model 2", laws2)):
        a7 = _differ(
            conditional(*laws["observational"], [0], []), conditional(*laws["do(a)"], [0], [])
        ) and _differ(
            conditional(*laws["observational"], [1], [0]), conditional(*laws["do(b)"], [1], [0])
        )
        facts.append((f"{name}: {label} satisfies A7 for a and b (conditional laws differ)", a7))
    facts.append((f"{name}: model 2 is a DAG a -> b with an edge (B' != 0)", p2[0] != 0))
    C = laws1["do(b)"][1]
    outside = all(not is_zero(residual_cov(W, C, [j], [j])) for j in (0, 1))
    facts.append((f"{name}: Var(c'_j | c_j) != 0 for j = a, b: outside the class", outside))
    obs_differ = not (
        is_zero(pushed["observational"][0] - laws2["observational"][0])
        and is_zero(pushed["observational"][1] - laws2["observational"][1])
    )
    facts.append((f"{name}: the observational context would distinguish the models", obs_differ))
    return facts


def _checks(wrong: bool) -> list[tuple[str, bool]]:
    return _single_concept(wrong) + _chain(wrong)


def certify() -> list[tuple[str, bool]]:
    """Every fact of witness N7; all must be True."""
    return _checks(False)


def falsify() -> list[tuple[str, bool]]:
    """Unstandardised rotation in (a), s~_b = 2 s_a in (b); some facts must be False."""
    return _checks(True)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
