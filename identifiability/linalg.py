"""Two arithmetics for the same algorithms: exact rationals and float64 with a tolerance.

Every algorithm of this package that decides a rank, a null space or an equality goes through a
:class:`Arithmetic`, so that the same code runs exactly (``Exact``: sympy's ``DomainMatrix`` over
``QQ``; a float parameter is read as the rational number it is exactly, a binary fraction: the
model in memory is the model checked) or numerically (``Numeric``: float64, ranks by SVD with a
relative tolerance). Reports say which one answered and with what tolerance.

Where an algorithm must decide differently in the two arithmetics (which coordinates to work in,
when a sampled rank counts as a rank), the difference is a method of the interface here, not an
``if exact:`` in the algorithm: :meth:`Arithmetic.coordinates`, :meth:`Arithmetic.recentre`,
:meth:`Arithmetic.leading_row_space`, :meth:`Arithmetic.new_directions`,
:meth:`Arithmetic.exceeds`, :meth:`Arithmetic.is_finite` and
:meth:`Arithmetic.covariance_problem` (Theorem L's peeling,
:func:`conceptid.identifiability.identify_linear`, is written with them).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from sympy import QQ
from sympy.polys.matrices import DomainMatrix

from conceptid.simulations.errors import UsageError
from conceptid.simulations.validation import check_number

__all__ = [
    "NUMERIC_FAILURES",
    "RTOL_FLOOR",
    "RTOL_MAX",
    "Arithmetic",
    "Exact",
    "Numeric",
    "arithmetic",
    "check_rtol",
    "ill_conditioned",
    "spectral_norm",
    "to_fraction",
]

#: the asymmetry (relative to the largest entry) and negative eigenvalue (relative to the
#: largest) below which a matrix given as a covariance is taken as one, in either arithmetic
#: (:meth:`Arithmetic.covariance_problem`; the models accept covariances to 1e-10 likewise)
COVARIANCE_RTOL = 1e-10

#: the smallest relative tolerance :class:`Numeric` accepts. float64 resolves a number to
#: ``eps = 2.2e-16`` of its size, and a computed singular value to about ``max(M, N) eps``
#: times the largest (numpy's ``matrix_rank`` default), before counting the rounding of the
#: matrix's own computation (products and inverses of the model's matrices). Below ``1e-14``
#: (about 45 ``eps``) a rank decision would count rounding error as rank already for matrices of
#: a few dozen rows, and "identifiable" would rest on noise (a model with an exactly
#: rank-deficient A7+ form passes at ``rtol = 1e-17``); use exact arithmetic instead. For a
#: larger matrix the rank decision also never goes below numpy's ``max(M, N) eps``
#: (:meth:`Numeric.rank`).
RTOL_FLOOR = 1e-14
#: the largest relative tolerance :class:`Numeric` accepts: laws whose comparison needs a
#: tolerance of ``1e-3`` or more are not called equal (:meth:`Numeric.same_gaussian`), and a
#: rank that ignores singular values up to a thousandth of the largest says little either.
RTOL_MAX = 1e-3


#: what a computation raises on a model whose numbers float64 cannot carry (finite parameters
#: of ``1e160`` whose products overflow; an SVD or inverse of a matrix with infinite or wildly
#: scaled entries; an exact rational too large to report as a float). :func:`check` turns each
#: into an undecided assumption, an unverified witness or a failed confirmation, never a verdict
#: (:func:`ill_conditioned` words it).
NUMERIC_FAILURES = (np.linalg.LinAlgError, OverflowError, FloatingPointError)


def ill_conditioned(err: BaseException, A: Arithmetic) -> str:
    """Why a computation of ``A`` failed with one of :data:`NUMERIC_FAILURES`, in words."""
    if A.exact:
        return (f"a number of the exact computation is too large for float64, where it is "
                f"converted to one ({type(err).__name__}: {err})")  # fmt: skip
    return (f"numerically ill-conditioned: the model's numbers are too large or too far apart in "
            f"scale for float64 ({type(err).__name__}: {err}); exact arithmetic may decide it "
            "(method='exact')")  # fmt: skip


def check_rtol(rtol) -> float:
    """``rtol`` as a float if ``RTOL_FLOOR <= rtol < RTOL_MAX``; UsageError otherwise (a value
    that is not a positive finite number is refused as such)."""
    rtol = check_number(rtol, "rtol", integer=False, minimum=0, exclusive=True)
    if not RTOL_FLOOR <= rtol < RTOL_MAX:
        raise UsageError(
            f"rtol must be at least {RTOL_FLOOR:g} (below that, float64 rounding decides the "
            f"ranks; use method='exact') and below {RTOL_MAX:g}, got {rtol!r}"
        )
    return rtol


def spectral_norm(M) -> float:
    """The spectral norm (largest singular value) of a float matrix: the size that a numeric
    rank's tolerance is measured against."""
    return float(np.linalg.norm(np.asarray(M, dtype=float), 2))


def to_fraction(x) -> Fraction:
    """The exact rational value of a float (a binary fraction), an int, or a Fraction."""
    if isinstance(x, Fraction):
        return x
    if isinstance(x, int | np.integer):
        return Fraction(int(x))
    return Fraction(float(x))


def _covariance_problem(S: np.ndarray, tol: float) -> str | None:
    """Why the float matrix ``S`` is not a covariance to the relative tolerance ``tol`` (see
    :meth:`Arithmetic.covariance_problem`), or None."""
    scale = float(np.max(np.abs(S), initial=0.0))
    asym = float(np.max(np.abs(S - S.T), initial=0.0))
    if asym > tol * scale:
        return (f"not symmetric: entries differ from their transposes by up to {asym:.3g}, "
                f"more than {tol:g} x its largest entry {scale:.3g}")  # fmt: skip
    lam = np.linalg.eigvalsh((S + S.T) / 2)
    top = float(np.max(np.abs(lam), initial=0.0))
    if lam.size and lam[0] < -tol * top:
        return (f"not positive semi-definite: eigenvalue {lam[0]:.3g} against a largest "
                f"{top:.3g} in size")  # fmt: skip
    return None


class Arithmetic:
    """Matrix operations with a notion of zero and rank.

    Besides the matrix operations, the decisions that differ between the arithmetics (the
    methods below with a docstring; each implementation says what it does).
    """

    exact: bool
    description: str
    #: how a result reads when its ranks were chosen by singular-value gaps
    #: (:meth:`new_directions`) rather than by a tolerance
    gap_description: str

    def mat(self, a):  # pragma: no cover - interface
        raise NotImplementedError

    def is_finite(self, M) -> bool:  # pragma: no cover - interface
        """Every entry of ``M`` is finite (rationals always are)."""
        raise NotImplementedError

    def covariance_problem(self, S, rounding: float = 0.0) -> str | None:  # pragma: no cover
        """Why the square matrix ``S`` is not a covariance in this arithmetic (not symmetric, or
        not positive semi-definite), in words; ``None`` when it is one. ``rounding``: the
        relative rounding error of the values as given (float32 moments: far above float64's),
        which the tolerance never goes below."""
        raise NotImplementedError

    def coordinates(self, S):  # pragma: no cover - interface
        """A ``(rank S, n)`` map ``T`` with ``T S T^T`` invertible, for a covariance ``S``."""
        raise NotImplementedError

    def recentre(self, mean, origin):  # pragma: no cover - interface
        """``mean`` measured from ``origin`` where the arithmetic's rank decisions depend on an
        offset, else ``mean`` itself."""
        raise NotImplementedError

    def leading_row_space(self, M, n_cols: int, max_rank: int):  # pragma: no cover - interface
        """Rows spanning the row space of ``M`` restricted to its first ``n_cols`` columns, where
        ``M`` is expected to have rank at most ``max_rank``."""
        raise NotImplementedError

    def new_directions(self, L, H, k: int):  # pragma: no cover - interface
        """``k`` rows in the row space of ``L`` that are independent of the rows of ``H``
        (``None``: no rows yet) and a score, ``(P, score)``; or ``None`` when the row space of
        ``L`` does not add ``k`` directions to that of ``H``. A smaller score is a cleaner
        answer; 0 cannot be beaten (exactly ``k`` new directions)."""
        raise NotImplementedError

    def exceeds(self, M, tol: float) -> bool:  # pragma: no cover - interface
        """``M`` counts as nonzero at the absolute tolerance ``tol``."""
        raise NotImplementedError

    def compare_gaussian(self, ma, Sa, mb, Sb) -> bool | None:  # pragma: no cover - interface
        """Whether the Gaussian laws ``N(ma, Sa)`` and ``N(mb, Sb)`` (means ``(d, 1)``) are
        equal: ``True`` or ``False`` where this arithmetic can tell, ``None`` where it cannot
        (float64 on an ill-conditioned law). A caller for whom "equal" is the safe answer (A7:
        an intervention that changes nothing) reads ``None`` as undecided."""
        raise NotImplementedError

    def same_gaussian(self, ma, Sa, mb, Sb) -> bool:
        """The Gaussian laws ``N(ma, Sa)`` and ``N(mb, Sb)`` are equal, as far as this arithmetic
        can tell: laws it cannot tell apart (:meth:`compare_gaussian` ``None``) are not called
        equal, so a witness is never verified on them."""
        return self.compare_gaussian(ma, Sa, mb, Sb) is True


class Numeric(Arithmetic):
    """float64; a singular value counts as zero below ``rtol`` times the scale: the largest
    singular value of the matrix itself, or, for a matrix computed as a difference (where
    cancellation leaves rounding error of the operands' size), the operands' scale given by
    the caller (``scale=``). Relative throughout, so a verdict does not depend on the overall
    units of the model (every variance times ``1e12`` or ``1e-12`` decides the same); scales
    more than ``1 / rtol`` apart within one matrix are beyond what this tolerance can tell.

    ``rtol`` must lie in ``[RTOL_FLOOR, RTOL_MAX)`` (:data:`RTOL_FLOOR`, :data:`RTOL_MAX`;
    UsageError otherwise): a tolerance below float64's rounding would count rounding error as
    rank. A rank decision on a ``(M, N)`` matrix also uses at least numpy's own floor
    ``max(M, N) eps`` (float64 ``eps``), the accuracy of its computed singular values."""

    exact = False
    gap_description = "numeric (float64, singular-value gaps)"

    def __init__(self, rtol: float = 1e-8) -> None:
        self.rtol = check_rtol(rtol)
        self.description = (
            f"numeric (float64, singular values below {self.rtol:g} x the largest are zero)"
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

    @staticmethod
    def _scale_of(M) -> float:
        return float(np.max(np.abs(M), initial=0.0))

    def _count(self, s: np.ndarray, scale: float | None, shape: tuple[int, int]) -> int:
        """How many of the singular values ``s`` (descending) of a matrix of ``shape`` count as
        nonzero: those above ``max(rtol, max(shape) eps)`` times the scale."""
        top = (s[0] if s.size else 0.0) if scale is None else float(scale)
        tol = max(self.rtol, max(shape) * np.finfo(float).eps)
        return int(np.sum(s > tol * top))

    def rank(self, M, scale: float | None = None) -> int:
        """The rank of ``M``: singular values above ``rtol`` (at least ``max(M, N) eps``) times
        its largest, or times ``scale`` (the operands' size, for a difference)."""
        if M.size == 0:
            return 0
        return self._count(np.linalg.svd(M, compute_uv=False), scale, M.shape)

    def row_basis(self, M):
        """An orthonormal basis (as rows) of the row space of ``M``."""
        if M.size == 0:
            return np.zeros((0, M.shape[1]))
        _, s, Vt = np.linalg.svd(M, full_matrices=False)
        return Vt[: self._count(s, None, M.shape)]

    def null_rows(self, M):
        """Rows spanning ``{v : M v = 0}`` (right null space)."""
        n = M.shape[1]
        if M.shape[0] == 0:
            return np.eye(n)
        _, s, Vt = np.linalg.svd(M, full_matrices=True)
        return Vt[self._count(s, None, M.shape) :]

    def is_zero(self, M, scale: float | None = None) -> bool:
        """Every entry of ``M`` is at most ``rtol * scale`` in size (``scale``: the size of the
        operands ``M`` was computed from); without ``scale``, exactly zero (a matrix is not
        small against itself)."""
        return bool(np.all(np.abs(M) <= self.rtol * (scale or 0.0)))

    def equal(self, A, B) -> bool:
        """Equal entry by entry to ``rtol`` times the larger of the two matrices."""
        scale = max(self._scale_of(A), self._scale_of(B))
        return bool(np.all(np.abs(np.asarray(A) - np.asarray(B)) <= self.rtol * scale))

    def entry(self, M, i, j):
        return float(M[i, j])

    def is_finite(self, M) -> bool:
        return bool(np.all(np.isfinite(M)))

    def covariance_problem(self, S, rounding: float = 0.0) -> str | None:
        """Symmetric to ``tol = max(rtol, COVARIANCE_RTOL, rounding)`` times its largest entry,
        and no eigenvalue below ``-tol`` times the largest in size (positive semi-definite up
        to rounding: a sample covariance of fewer samples than dimensions passes)."""
        tol = max(self.rtol, COVARIANCE_RTOL, rounding)
        return _covariance_problem(np.asarray(S, dtype=float), tol)

    def whitening(self, S) -> tuple[np.ndarray, np.ndarray]:
        """``(W, W^+)`` for a covariance ``S`` of rank ``d`` (this arithmetic's rank): ``W``
        ``(d, n)`` with ``W S W^T = I_d`` and its right inverse ``W^+`` (``W W^+ = I_d``)."""
        S = np.asarray(S, dtype=float)
        lam, U = np.linalg.eigh(S)
        d = self.rank(S)
        lam, U = lam[::-1][:d], U[:, ::-1][:, :d]
        return (U / np.sqrt(lam)).T, U * np.sqrt(lam)

    def coordinates(self, S) -> np.ndarray:
        """The whitening ``W`` of ``S`` (:meth:`whitening`): sample noise is then not amplified
        by the condition number of ``S`` when precisions are taken."""
        return self.whitening(S)[0]

    def recentre(self, mean, origin):
        """``mean - origin``: singular values, which rank decisions by gaps weigh, change with
        an offset."""
        return mean - origin

    def leading_row_space(self, M, n_cols: int, max_rank: int) -> np.ndarray:
        """The top ``max_rank`` right singular vectors of ``M`` weighted by their singular values
        (so that directions of sampling noise weigh little), restricted to ``n_cols`` columns."""
        _, s, Vt = np.linalg.svd(M)
        r = min(max_rank, len(s))
        return (s[:r, None] * Vt[:r])[:, :n_cols]

    def new_directions(self, L, H, k: int):
        """The top ``k`` right singular vectors of ``L`` with the row space of ``H`` projected
        out; the score is the gap ratio ``s_(k+1) / s_k`` of its singular values, and ``None``
        when ``s_k`` is zero (at most ``1e-12`` of the largest)."""
        if H is not None:
            Q = np.linalg.qr(H.T)[0]
            L = L - (L @ Q) @ Q.T
        _, s, Vt = np.linalg.svd(L)
        s = np.concatenate([s, np.zeros(max(0, k + 1 - len(s)))])
        if s[k - 1] <= 1e-12 * s[0]:
            return None
        return Vt[:k], s[k] / s[k - 1]

    def exceeds(self, M, tol: float) -> bool:
        """The Frobenius norm of ``M`` is above ``tol``."""
        return bool(np.linalg.norm(M) > tol)

    def compare_gaussian(self, ma, Sa, mb, Sb) -> bool | None:
        """Equal in each law's own frame, whatever the units of each coordinate: both laws are
        first divided, coordinate by coordinate, by the standard deviations of the first, so
        that variances many orders of magnitude apart (a nuisance's against a concept's) are
        each held to their own scale; then, with ``W`` a whitening of the first correlation
        matrix (Cholesky), ``W R_b W^T`` must be the identity and ``W (mb - ma)`` zero; and the
        same with the roles swapped, so that a direction one covariance lacks cannot hide.

        The tolerance is ``rtol`` plus the rounding error that whitening amplifies:
        ``64 n eps`` times the correlation matrix's condition number (float64 ``eps``; a law
        computed in floats differs from the exact one by that much in this frame). Where that
        reaches ``1e-3``, or where the correlation matrix is not positive definite in float64
        at all, float64 cannot tell the laws apart, and the answer is ``None`` (undecided:
        :meth:`same_gaussian` does not call them equal; exact arithmetic decides such a model).
        No ill-conditioned law is compared on a subspace only: a direction of tiny variance is
        where a wrong law hides (a law with a variance of ``1e16`` beside ones of ``1``).

        A coordinate of exactly zero variance in the first law (a point mass, which a model's
        covariances never have but a caller's may) is compared exactly: its row and column must
        be zero in both covariances, and its means equal to ``rtol`` times their size; the
        other coordinates are compared as above. ``False`` whenever either law has a
        non-finite entry."""
        ma, mb = (np.asarray(m, dtype=float).reshape(-1) for m in (ma, mb))
        Sa, Sb = np.asarray(Sa, dtype=float), np.asarray(Sb, dtype=float)
        if not all(np.all(np.isfinite(x)) for x in (ma, mb, Sa, Sb)):
            return False
        undecided = False
        for (m1, S1), (m2, S2) in (((ma, Sa), (mb, Sb)), ((mb, Sb), (ma, Sa))):
            point = np.diag(S1) == 0
            if np.any(point):
                if (
                    np.any(S1[point])
                    or np.any(S1[:, point])
                    or np.any(S2[point])
                    or np.any(S2[:, point])
                ):
                    return False
                size = np.maximum(np.abs(m1[point]), np.abs(m2[point]))
                if not np.all(np.abs(m2[point] - m1[point]) <= self.rtol * size):
                    return False
                keep = ~point
                m1, m2, S1, S2 = m1[keep], m2[keep], S1[np.ix_(keep, keep)], S2[np.ix_(keep, keep)]
            n = len(S1)
            if n == 0:
                continue
            if np.any(np.diag(S1) < 0):
                return False
            sd = np.sqrt(np.diag(S1))
            R1, R2 = S1 / np.outer(sd, sd), S2 / np.outer(sd, sd)
            dm = (m2 - m1) / sd
            if not (np.all(np.isfinite(R1)) and np.all(np.isfinite(R2))):
                undecided = True  # a variance so small that dividing by it overflows
                continue
            lam = np.linalg.eigvalsh(R1)
            if not lam[0] > 0:  # singular (or indefinite) in float64: cannot decide here
                undecided = True
                continue
            tol = self.rtol + 64 * n * np.finfo(float).eps * lam[-1] / lam[0]
            if tol >= 1e-3:
                undecided = True
                continue
            try:
                W = np.linalg.solve(np.linalg.cholesky(R1), np.eye(n))
            except np.linalg.LinAlgError:
                undecided = True
                continue
            # not (x <= tol): a NaN from an overflow counts as a difference, never as agreement
            if not np.abs(W @ R2 @ W.T - np.eye(n)).max() <= tol:
                return False
            if not np.abs(W @ dm).max() <= tol:
                return False
        return None if undecided else True


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
        """``A B``, computed fraction-free: each factor as an integer matrix over its common
        denominator, multiplied over ``ZZ``, and divided by the product of the denominators
        once per entry. The same exact product as over ``QQ``, without the gcd that every
        rational multiply-add reduces by (the confirming run of a dense model spent most of its
        time there: 30 % faster at ``K = 10``; ``gmpy2``, when installed, speeds up both)."""
        if 0 in A.shape or 0 in B.shape:
            return A * B
        da, Ai = A.clear_denoms(convert=True)
        db, Bi = B.clear_denoms(convert=True)
        C = (Ai * Bi).convert_to(QQ)
        den = int(da.element) * int(db.element)
        return C if den == 1 else C * QQ(1, den)

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

    def rank(self, M, scale=None) -> int:
        """The exact rank (``scale``, the numeric arithmetic's operand size, is not used):
        each row scaled by its denominators to integers (rank unchanged), then fraction-free
        elimination over ZZ, 2.7x-3.2x faster than over QQ on the ranks of an exact check of
        15 concepts (5.7 s against 1.8-2.1 s, the same ranks; one common denominator instead
        is 6.5x slower, its integers grow). Below 100 entries the conversion costs more than
        it saves (the predicates of a 5-concept check: 0.011 s against 0.009 s), so small
        matrices are reduced over QQ as they are."""
        if M.shape[0] == 0 or M.shape[1] == 0:
            return 0
        if M.shape[0] * M.shape[1] < 100:
            return M.rank()
        return M.clear_denoms_rowwise(convert=True)[1].rank()

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

    def is_zero(self, M, scale=None) -> bool:
        return M.is_zero_matrix

    def equal(self, A, B) -> bool:
        return A == B

    def entry(self, M, i, j):
        return M[i, j].element

    @property
    def gap_description(self) -> str:
        """Exact ranks have no gaps: the arithmetic's own description."""
        return self.description

    def is_finite(self, M) -> bool:
        return True

    def covariance_problem(self, S, rounding: float = 0.0) -> str | None:
        """Symmetric to ``max(COVARIANCE_RTOL, rounding)`` times its largest entry, and no
        eigenvalue below minus that times the largest in size, decided on the float values: an input
        check, not a rank decision. A covariance computed in floats (``Q diag(v) Q^T``) is read
        exactly with its rounding, asymmetric in the last bits, and a rank-deficient one (``x``
        of more coordinates than the embedding) has zero eigenvalues that the exact algorithm
        handles; an exact test of positive semi-definiteness costs more than identification
        itself in rationals."""
        return _covariance_problem(self.to_float(S), max(COVARIANCE_RTOL, rounding))

    def coordinates(self, S):
        """The coordinates at the pivot columns of ``S``'s reduced row echelon form: a selection
        of ``rank S`` coordinates with an invertible covariance block (rational, no square
        roots)."""
        _, pivots = S.rref()
        return self.rows(self.eye(S.shape[1]), pivots)

    def recentre(self, mean, origin):
        """``mean`` itself: exact ranks are affine-invariant, and the uncentred moments are the
        ones the exact results are computed from."""
        return mean

    def leading_row_space(self, M, n_cols: int, max_rank: int):
        """A basis (reduced row echelon rows) of the restriction of ``M``'s row space; exact
        ranks need no bound, so ``max_rank`` is not used."""
        return self.row_basis(self.cols(self.row_basis(M), range(n_cols)))

    def new_directions(self, L, H, k: int):
        """The rows of ``L`` independent modulo the rows of ``H`` and the ones before them,
        picked greedily in order; an answer (score 0) when exactly ``k`` are."""
        picked, stack = [], H
        have = self.rank(H) if H is not None else 0
        for i in range(L.shape[0]):
            row = self.rows(L, [i])
            cand = self.vstack(stack, row) if stack is not None else row
            if self.rank(cand) > have:
                picked.append(row)
                stack, have = cand, have + 1
        if len(picked) != k:
            return None
        return self.vstack(*picked), 0.0

    def exceeds(self, M, tol: float) -> bool:
        """Any entry of ``M`` is nonzero (decided exactly; ``tol`` is not used)."""
        return not self.is_zero(M)

    def compare_gaussian(self, ma, Sa, mb, Sb) -> bool:
        """Means and covariances equal, exactly (always decided)."""
        return self.equal(ma, mb) and self.equal(Sa, Sb)


def arithmetic(method: str, rtol: float = 1e-8) -> Arithmetic:
    """``"exact"`` or ``"numeric"``."""
    if method == "exact":
        return Exact()
    if method == "numeric":
        return Numeric(rtol)
    raise UsageError(f"method must be 'exact' or 'numeric', got {method!r}")
