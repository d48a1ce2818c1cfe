"""Shared by the certificates: exact matrix helpers and the script runner (sympy only; never the
package's own code, so that the certificates stay an independent check of the mathematics)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import sympy as sp
from sympy.polys.matrices import DomainMatrix

Facts = list[tuple[str, bool]]


def field_of(*mats):
    """QQ, or the field of rational functions in every symbol of the given matrices."""
    syms = set()
    for M in mats:
        syms |= sp.Matrix(M).free_symbols
    syms = sorted(syms, key=str)
    return sp.QQ.frac_field(*syms) if syms else sp.QQ


def dm(M, field=None) -> DomainMatrix:
    """M as a matrix over QQ or the field of rational functions in its symbols (exact)."""
    M = sp.Matrix(M)
    field = field_of(M) if field is None else field
    rows = [[field.from_sympy(sp.sympify(x)) for x in row] for row in M.tolist()]
    return DomainMatrix(rows, M.shape, field)


def inv(M) -> sp.Matrix:
    return dm(M).inv().to_Matrix()


def det(M):
    d = dm(M)
    return d.domain.to_sympy(d.det())


def run(certify: Callable[[], Facts], falsify: Callable[[], Facts]) -> int:
    """Print every fact with PASS/FAIL; exit status 0 only if all hold and the deliberately
    wrong claims are rejected at least once (a certificate that cannot fail is a defect).

    A closed output pipe (``cert_....py | head``) ends it quietly with status 141, as
    ``conceptid check | head`` does."""
    try:
        facts = certify()
        for name, ok in facts:
            print(f"{'PASS' if ok else 'FAIL'}  {name}")
        wrong = falsify()
        rejected = sum(not ok for _, ok in wrong)
        print(f"falsify: {rejected} of {len(wrong)} checks reject the deliberately wrong claims")
        sys.stdout.flush()  # a reader that went away shows here, not at interpreter exit
    except BrokenPipeError:
        # nothing more to say, and Python's own flush at exit must not fail either: stdout now
        # goes to /dev/null
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # the status of a process killed by SIGPIPE
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


def is_zero(M) -> bool:
    """Exact test that every entry of a matrix (or list) of rational functions is zero."""
    entries = [sp.sympify(x) for x in (M if isinstance(M, list | tuple) else sp.Matrix(M))]
    syms = sorted(set().union(*(x.free_symbols for x in entries)), key=str)
    if not syms:
        return all(sp.simplify(x) == 0 for x in entries)
    field = sp.QQ.frac_field(*syms)
    return all(field.from_sympy(x) == field.zero for x in entries)


def conditional(mean, cov, out, given):
    """Gaussian conditional law of the coordinates ``out`` given the coordinates ``given``.

    Returns ``(W, a, R)`` with ``E[z_out | z_given] = W z_given + a`` and residual covariance
    ``R`` (``given`` may be empty: then ``W`` has no columns and ``(a, R)`` is the marginal law).
    Computed from the mean and covariance alone, never from SEM parameters, so that a fact stated
    about a conditional law is derived from the law.
    """
    mean, cov = sp.Matrix(mean), sp.Matrix(cov)
    out, given = list(out), list(given)
    # one exact field for mean and covariance, so that the arithmetic never calls simplify
    J = dm(cov.row_join(mean))
    n = cov.shape[0]
    m_o, C_oo = J.extract(out, [n]), J.extract(out, out)
    if not given:
        return sp.zeros(len(out), 0), _to_sympy(m_o), _to_sympy(C_oo)
    C_og, C_gg = J.extract(out, given), J.extract(given, given)
    W = C_og * C_gg.inv()
    a = m_o - W * J.extract(given, [n])
    R = C_oo - W * C_og.transpose()
    return _to_sympy(W), _to_sympy(a), _to_sympy(R)


def _to_sympy(M: DomainMatrix) -> sp.Matrix:
    return M.to_Matrix()


def residual_cov(W, cov, out, given):
    """Residual covariance of the coordinates ``out`` of ``W z`` given the coordinates ``given`` of
    ``z`` (``z`` with covariance ``cov``). Non-zero means: ``(W z)_out`` is not an affine function
    of ``z_given`` (almost surely), i.e. a map outside the per-concept class."""
    field = field_of(W, cov)
    Wo, S = (
        dm(sp.Matrix(W), field).extract(list(out), list(range(sp.Matrix(W).cols))),
        dm(cov, field),
    )
    g = list(given)
    cross = Wo * S.extract(list(range(S.shape[0])), g)  # Cov((W z)_out, z_given)
    R = Wo * S * Wo.transpose() - cross * S.extract(g, g).inv() * cross.transpose()
    return _to_sympy(R)


def cayley(K):
    """The orthogonal matrix ``(I - K)(I + K)^{-1}`` of a skew-symmetric ``K``: rational in the
    entries of ``K``, so orthogonality is checked by exact rational-function arithmetic (every
    rotation without eigenvalue -1 is of this form)."""
    K = sp.Matrix(K)
    n = K.shape[0]
    return ((sp.eye(n) - K) * inv(sp.eye(n) + K)).applyfunc(sp.cancel)
