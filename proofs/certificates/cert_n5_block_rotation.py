"""Certificate for witness N5 (proofs/necessity.md): blocks with nonlinear mixing need extra
conditions.

Model: an isolated 2-d block c_j = u = (u0, u1) (no parents, no children) with zero-mean isotropic
noise in both of its contexts, N(0, s I) and N(0, s~ I), and a 1-d nuisance n with any positive
density g(n) (A5); the rest of c is independent of (u, n) in every context and is left unchanged.
Witness: h(u, n) = (R(theta(n)) u, n) with theta an arbitrary smooth function (an undefined sympy
Function of n).

Facts checked (symbolic):
- the Jacobian determinant of h is 1 for every theta(.) (h is a diffeomorphism; its inverse is
  (u, n) -> (R(-theta(n)) u, n)), so f o T^{-1} o h^{-1} o T is again injective, differentiable,
  with continuous inverse (A3);
- the density of (u, n) is invariant, p(h(u, n)) = p(u, n), for the variance s and for s~: so
  every context's law of (c, n), hence of x, is unchanged;
- c'_j = R(theta(n)) u depends on n whenever theta' != 0: not an affine map of c_j.

falsify(): the same with a non-isotropic block covariance diag(s, 2 s): the density changes.

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import run, trig_zero  # the certificates directory is on sys.path


def _checks(wrong: bool) -> list[tuple[str, bool]]:
    u0, u1, n = sp.symbols("u0 u1 n", real=True)
    s, st = sp.symbols("s st", positive=True)
    theta = sp.Function("theta")(n)
    g = sp.Function("g")(n)  # nuisance density, arbitrary
    Rm = sp.Matrix([[sp.cos(theta), -sp.sin(theta)], [sp.sin(theta), sp.cos(theta)]])
    u = sp.Matrix([u0, u1])
    hu = Rm * u
    hmap = sp.Matrix([hu[0], hu[1], n])
    J = hmap.jacobian(sp.Matrix([u0, u1, n]))
    facts = [("Jacobian determinant of h is 1", trig_zero(J.det() - 1, theta))]
    for name, var in (("s", s), ("s~", st)):
        Sinv = sp.diag(1 / var, 1 / (2 * var)) if wrong else sp.eye(2) / var

        def log_dens(x, Sinv=Sinv):  # log of exp(-x^T S^{-1} x / 2) g(n)
            return -(x.T * Sinv * x)[0, 0] / 2 + sp.log(g)

        same = trig_zero(log_dens(hu) - log_dens(u), theta)
        facts.append((f"density of (c_j, n) invariant under h (block variance {name} I)", same))
    dep = sp.simplify(sp.diff(hu, n).subs(sp.Derivative(theta, n), 1)) != sp.zeros(2, 1)
    facts.append(("c'_j depends on n when theta' != 0 (outside the class)", dep))
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of witness N5; all must be True."""
    return _checks(False)


def falsify() -> list[tuple[str, bool]]:
    """The same checks for a non-isotropic block; some must be False."""
    return _checks(True)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
