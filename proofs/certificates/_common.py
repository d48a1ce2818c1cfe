"""Shared by the certificates: exact matrix helpers and the script runner (sympy only; never the
package's own code, so that the certificates stay an independent check of the mathematics)."""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp
from sympy.polys.matrices import DomainMatrix

Facts = list[tuple[str, bool]]


def dm(M) -> DomainMatrix:
    """M as a matrix over QQ or the field of rational functions in its symbols (exact)."""
    M = sp.Matrix(M)
    syms = sorted(M.free_symbols, key=str)
    field = sp.QQ.frac_field(*syms) if syms else sp.QQ
    rows = [[field.from_sympy(sp.sympify(x)) for x in row] for row in M.tolist()]
    return DomainMatrix(rows, M.shape, field)


def inv(M) -> sp.Matrix:
    return dm(M).inv().to_Matrix()


def det(M):
    d = dm(M)
    return d.domain.to_sympy(d.det())


def run(certify: Callable[[], Facts], falsify: Callable[[], Facts]) -> int:
    """Print every fact with PASS/FAIL; exit status 0 only if all hold and the deliberately
    wrong claims are rejected at least once (a certificate that cannot fail is a defect)."""
    facts = certify()
    for name, ok in facts:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    wrong = falsify()
    rejected = sum(not ok for _, ok in wrong)
    print(f"falsify: {rejected} of {len(wrong)} checks reject the deliberately wrong claims")
    return 0 if all(ok for _, ok in facts) and rejected > 0 else 1


def law(B, mu, S) -> tuple[sp.Matrix, sp.Matrix]:
    """Mean and covariance of ``c = B c + eps``, ``eps ~ N(mu, S)`` (entries expanded)."""
    M = (sp.eye(B.shape[0]) - B).inv()
    return (M * mu).applyfunc(sp.expand), (M * S * M.T).applyfunc(sp.expand)


def trig_zero(M, theta) -> bool:
    """Exact test that a matrix (or scalar) of polynomials in cos(theta), sin(theta), with
    coefficients rational functions of the other symbols, vanishes (uses sin^2 = 1 - cos^2)."""
    for e in sp.Matrix([M]) if not isinstance(M, sp.MatrixBase) else M:
        e = sp.expand(e).subs(sp.sin(theta) ** 2, 1 - sp.cos(theta) ** 2)
        if sp.cancel(sp.expand(e)) != 0:
            return False
    return True
