"""Two arithmetics for the same algorithms: exact rationals and float64 with a tolerance.

Every algorithm of this package that decides a rank, a null space or an equality goes through a
:class:`Arithmetic`, so that the same code runs exactly (``Exact``: sympy's ``DomainMatrix`` over
``QQ``; a float parameter is read as the rational number it is exactly, a binary fraction: the
model in memory is the model checked) or numerically (``Numeric``: float64, ranks by SVD with a
relative tolerance). Reports say which one answered and with what tolerance.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from sympy import QQ
from sympy.polys.matrices import DomainMatrix

from conceptid.simulations.errors import UsageError

__all__ = ["Arithmetic", "Exact", "Numeric", "arithmetic", "to_fraction"]


def to_fraction(x) -> Fraction:
    """The exact rational value of a float (a binary fraction), an int, or a Fraction."""
    if isinstance(x, Fraction):
        return x
    if isinstance(x, int | np.integer):
        return Fraction(int(x))
    return Fraction(float(x))


class Arithmetic:
    """Matrix operations with a notion of zero and rank."""

    exact: bool
    description: str

    def mat(self, a):  # pragma: no cover - interface
        raise NotImplementedError


class Numeric(Arithmetic):
    """float64; a singular value counts as zero below ``rtol * max(1, largest)``."""

    exact = False

    def __init__(self, rtol: float = 1e-8) -> None:
        if not rtol > 0:
            raise UsageError(f"rtol must be > 0, got {rtol}")
        self.rtol = float(rtol)
        self.description = (
            f"numeric (float64, singular values below {self.rtol:g} x scale are zero)"
        )

    def mat(self, a) -> np.ndarray:
        return np.array(a, dtype=float, ndmin=2)

    def to_float(self, M) -> np.ndarray:
        return np.asarray(M, dtype=float)

    def shape(self, M) -> tuple[int, int]:
        return M.shape

    def zeros(self, r: int, c: int):
        return np.zeros((r, c))

    def eye(self, n: int):
        return np.eye(n)

    def T(self, M):
        return M.T

    def mul(self, A, B):
        return A @ B

    def add(self, A, B):
        return A + B

    def sub(self, A, B):
        return A - B

    def scale(self, A, s):
        return A * float(s)

    def inv(self, M):
        return np.linalg.inv(M)

    def hstack(self, *Ms):
        return np.hstack(Ms)

    def vstack(self, *Ms):
        return np.vstack(Ms)

    def rows(self, M, idx):
        return M[list(idx), :]

    def cols(self, M, idx):
        return M[:, list(idx)]

    def _scale_of(self, M) -> float:
        return max(1.0, float(np.max(np.abs(M), initial=0.0)))

    def rank(self, M) -> int:
        if M.size == 0:
            return 0
        s = np.linalg.svd(M, compute_uv=False)
        return int(np.sum(s > self.rtol * max(1.0, s[0])))

    def row_basis(self, M):
        """An orthonormal basis (as rows) of the row space of ``M``."""
        if M.size == 0:
            return np.zeros((0, M.shape[1]))
        _, s, Vt = np.linalg.svd(M, full_matrices=False)
        r = int(np.sum(s > self.rtol * max(1.0, s[0] if s.size else 0.0)))
        return Vt[:r]

    def null_rows(self, M):
        """Rows spanning ``{v : M v = 0}`` (right null space)."""
        n = M.shape[1]
        if M.shape[0] == 0:
            return np.eye(n)
        _, s, Vt = np.linalg.svd(M, full_matrices=True)
        r = int(np.sum(s > self.rtol * max(1.0, s[0] if s.size else 0.0)))
        return Vt[r:]

    def is_zero(self, M) -> bool:
        return bool(np.all(np.abs(M) <= self.rtol * self._scale_of(M)))

    def equal(self, A, B) -> bool:
        scale = max(self._scale_of(A), self._scale_of(B))
        return bool(np.all(np.abs(np.asarray(A) - np.asarray(B)) <= self.rtol * scale))

    def entry(self, M, i, j):
        return float(M[i, j])


class Exact(Arithmetic):
    """Exact rational arithmetic (sympy ``DomainMatrix`` over ``QQ``)."""

    exact = True
    description = (
        "exact (rational arithmetic over QQ; floats read as the binary rationals they are)"
    )

    def _q(self, x):
        if hasattr(x, "numerator") and hasattr(x, "denominator") and not isinstance(x, float):
            return QQ(int(x.numerator), int(x.denominator))
        fr = to_fraction(x)
        return QQ(fr.numerator, fr.denominator)

    def mat(self, a) -> DomainMatrix:
        if isinstance(a, DomainMatrix):
            return a
        arr = np.asarray(a, dtype=object)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2:
            raise UsageError(f"expected a matrix, got shape {arr.shape}")
        rows = [[self._q(x) for x in row] for row in arr]
        return DomainMatrix(rows, arr.shape, QQ)

    def to_float(self, M) -> np.ndarray:
        return np.array([[float(x) for x in row] for row in M.to_list()], dtype=float).reshape(
            M.shape
        )

    def shape(self, M):
        return M.shape

    def zeros(self, r, c):
        return DomainMatrix.zeros((r, c), QQ)

    def eye(self, n):
        return DomainMatrix.eye(n, QQ)

    def T(self, M):
        return M.transpose()

    def mul(self, A, B):
        return A * B

    def add(self, A, B):
        return A + B

    def sub(self, A, B):
        return A - B

    def scale(self, A, s):
        return A * self._q(s)

    def inv(self, M):
        return M.inv()

    def hstack(self, *Ms):
        return Ms[0].hstack(*Ms[1:]) if len(Ms) > 1 else Ms[0]

    def vstack(self, *Ms):
        Ms = [M for M in Ms if M.shape[0] > 0] or [Ms[0]]
        return Ms[0].vstack(*Ms[1:]) if len(Ms) > 1 else Ms[0]

    def rows(self, M, idx):
        idx = list(idx)
        if not idx:
            return DomainMatrix.zeros((0, M.shape[1]), QQ)
        return M.extract(idx, list(range(M.shape[1])))

    def cols(self, M, idx):
        idx = list(idx)
        return M.extract(list(range(M.shape[0])), idx)

    def rank(self, M) -> int:
        if M.shape[0] == 0 or M.shape[1] == 0:
            return 0
        return M.rank()

    def row_basis(self, M):
        if M.shape[0] == 0:
            return M
        R, pivots = M.rref()
        return self.rows(R, range(len(pivots)))

    def null_rows(self, M):
        n = M.shape[1]
        if M.shape[0] == 0:
            return self.eye(n)
        N = M.nullspace()
        return N if N.shape[0] else DomainMatrix.zeros((0, n), QQ)

    def is_zero(self, M) -> bool:
        return M.is_zero_matrix

    def equal(self, A, B) -> bool:
        return A == B

    def entry(self, M, i, j):
        return M[i, j].element


def arithmetic(method: str, rtol: float = 1e-8) -> Arithmetic:
    """``"exact"`` or ``"numeric"``."""
    if method == "exact":
        return Exact()
    if method == "numeric":
        return Numeric(rtol)
    raise UsageError(f"method must be 'exact' or 'numeric', got {method!r}")
