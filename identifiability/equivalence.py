"""The equivalence class the theorem identifies: an invertible affine map of each concept block.

Two models are equivalent when their concept read-outs ``x -> c_j(x)`` agree up to
``c'_j = D_j c_j + b_j`` with ``D_j`` invertible, for every concept ``j``. :func:`align` is the
single definition of "recovered up to the proven class" used by every evaluation in this
package: it fits the best affine map from each learned block to the corresponding true concept
and reports the per-concept coefficient of determination

    R^2_j = 1 - sum_i |c_ij - (D_j l_ij + b_j)|^2 / sum_i |c_ij - mean_i c_ij|^2,

(for a block, squared norms over its coordinates), the maps and the residuals. When the learned
representation has no assignment of dimensions to concepts, ``assignment="hungarian"`` assigns one
learned dimension to each true coordinate by maximising the total R^2 (scipy's
``linear_sum_assignment``), then, for blocks, improves it by swaps (see :func:`align`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from conceptid.simulations.errors import ConceptIDError, UsageError
from conceptid.simulations.model import ConceptModel
from conceptid.simulations.validation import check_number

from .linalg import Arithmetic

__all__ = [
    "AlignResult", "EquivalenceClass", "align", "align_min_rows", "contains", "readout_distance"
]  # fmt: skip


@dataclass
class AlignResult:
    """Result of :func:`align`.

    Attributes
    ----------
    r2 : ndarray, (m,)
        Per-concept R^2 of the best affine map from the learned block to the true concept.
    maps : list of (D_j, b_j)
        ``D_j`` ``(k_j, l_j)`` and ``b_j`` ``(k_j,)`` with ``true_j ~ D_j learned_j + b_j``.
    residuals : ndarray, (n, K)
        ``true - prediction``.
    blocks : list of list of int
        Learned columns used for each concept.
    r2_matrix : ndarray, (L, m)
        R^2 of each single learned dimension against each true concept (a diagnostic; for blocks,
        of the whole true block).
    """

    r2: np.ndarray
    maps: list
    residuals: np.ndarray
    blocks: list
    r2_matrix: np.ndarray

    @property
    def mean_r2(self) -> float:
        return float(np.mean(self.r2))


def _check_array(a, name: str) -> np.ndarray:
    try:
        complex_ = np.iscomplexobj(a)
        a = np.asarray(a, dtype=float)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be a real array (n, dims), got {a!r}") from None
    if complex_:
        raise UsageError(f"{name} must be real, got a complex array")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise UsageError(f"{name} must be a 2-D array (n, dims), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise UsageError(f"{name} contains NaN or infinite values")
    return a


def _r2(y: np.ndarray, X: np.ndarray):
    """Affine least squares of y (n, k) on X (n, l): (R^2, D (k, l), b (k,), residuals)."""
    n = y.shape[0]
    Xa = np.hstack([X, np.ones((n, 1))])
    coef, *_ = np.linalg.lstsq(Xa, y, rcond=None)
    pred = Xa @ coef
    res = y - pred
    tot = np.sum((y - y.mean(axis=0)) ** 2)
    r2 = 1.0 - np.sum(res**2) / tot if tot > 0 else 0.0
    return float(r2), coef[:-1].T, coef[-1], res


def _r2_matrix(X: np.ndarray, Y: np.ndarray, true_cols) -> np.ndarray:
    """R^2 of each single learned dimension against each true concept block, ``(L, m)``."""
    return np.array([[_r2(Y[:, tc], X[:, [i]])[0] for tc in true_cols]
                     for i in range(X.shape[1])])  # fmt: skip


def align_min_rows(widths) -> int:
    """The fewest rows :func:`align` takes for learned blocks of ``widths`` columns: an affine
    fit on the widest (``l`` columns and the intercept) is exact whatever the data when
    ``n <= l + 1``, so it needs ``l + 2``, and at least 3."""
    return max(3, max(widths, default=0) + 2)


def _check_rows(n: int, widths) -> None:
    """Refuse ``n`` rows below :func:`align_min_rows`."""
    l_max = max(widths, default=0)
    need = align_min_rows(widths)
    if n < need:
        raise UsageError(f"align needs at least {need} rows to fit a {l_max}-column learned block "
                         f"affinely, got {n}: with fewer the fit is exact and R^2 is 1 whatever "
                         "the data")  # fmt: skip


def _improve_blocks(X: np.ndarray, Y: np.ndarray, true_cols, blocks) -> list[list[int]]:
    """Swap single learned dimensions between blocks, or with an unassigned dimension, while
    the total joint R^2 of the blocks rises (the single-dimension scores of the Hungarian start
    cannot see that two dimensions carry the same coordinate of a block)."""
    blocks = [list(b) for b in blocks]
    score = [_r2(Y[:, tc], X[:, b])[0] for tc, b in zip(true_cols, blocks)]
    for _ in range(10 * X.shape[1]):  # each accepted swap raises the total: a bounded search
        free = [i for i in range(X.shape[1]) if not any(i in b for b in blocks)]
        best, move = 1e-12, None
        for j, b in enumerate(blocks):
            for a, i in enumerate(b):
                # i against an unassigned dimension, or against a dimension of another block
                for other in [(None, f) for f in free] + [
                    (q, o) for q in range(len(blocks)) if q != j for o in range(len(blocks[q]))
                ]:  # fmt: skip
                    q, o = other
                    nb = b.copy()
                    nb[a] = o if q is None else blocks[q][o]
                    gain = _r2(Y[:, true_cols[j]], X[:, nb])[0] - score[j]
                    if q is not None:
                        nq = blocks[q].copy()
                        nq[o] = i
                        gain += _r2(Y[:, true_cols[q]], X[:, nq])[0] - score[q]
                    if gain > best:
                        best, move = gain, (j, a, q, o)
        if move is None:
            break
        j, a, q, o = move
        i = blocks[j][a]
        blocks[j][a] = o if q is None else blocks[q][o]
        if q is not None:
            blocks[q][o] = i
            score[q] = _r2(Y[:, true_cols[q]], X[:, blocks[q]])[0]
        score[j] = _r2(Y[:, true_cols[j]], X[:, blocks[j]])[0]
    return [sorted(b) for b in blocks]


def align(
    learned: np.ndarray,
    true: np.ndarray,
    block_sizes: Sequence[int] | None = None,
    *,
    learned_blocks: Sequence[Sequence[int]] | None = None,
    assignment: str = "given",
) -> AlignResult:
    """Best per-concept affine map from learned concepts to true ones.

    Parameters
    ----------
    learned : ndarray, (n, L)
    true : ndarray, (n, K)
    block_sizes : sequence of int, optional
        ``k_j`` of the true concepts (default: all scalar).
    learned_blocks : sequence of sequence of int, optional
        Learned columns of each concept. Default with ``assignment="given"``: consecutive blocks
        with the true block sizes (requires ``L == K``).
    assignment : {"given", "hungarian"}
        ``hungarian``: assign one learned dimension to each coordinate of the true concepts
        (``L >= K`` required) by the Hungarian method, maximising the total R^2 of each
        dimension alone against the concept it goes to; a concept's learned block is the
        dimensions assigned to it. For scalar concepts this is the one-to-one assignment of
        dimensions to concepts. For blocks the single-dimension scores cannot see two
        dimensions that carry the same coordinate, so single dimensions are then swapped
        between blocks, or with unassigned ones, while the total joint R^2 rises (a local
        search: the best assignment is not guaranteed).

    Raises
    ------
    UsageError
        On mismatched shapes, NaNs, or an impossible assignment; or too few rows: an affine fit
        on ``l`` learned columns (plus the intercept) is exact on any ``l + 1`` rows, so R^2
        would be 1 on noise. Each fit needs at least ``l + 2`` rows, ``l`` the widest learned
        block (its true block size, or its number of distinct ``learned_blocks`` columns), and
        never fewer than 3 (the single-dimension ``r2_matrix``).
    """
    X = _check_array(learned, "learned")
    Y = _check_array(true, "true")
    if X.shape[0] != Y.shape[0]:
        raise UsageError(f"learned has {X.shape[0]} rows but true has {Y.shape[0]}")
    if X.shape[0] < 3:
        raise UsageError("align needs at least 3 samples (rows)")
    if block_sizes is None:
        ks = [1] * Y.shape[1]
    elif isinstance(block_sizes, list | tuple | np.ndarray):
        ks = [check_number(k, "each of block_sizes") for k in block_sizes]
    else:
        raise UsageError(f"block_sizes must be a sequence of positive ints, got {block_sizes!r}")
    if sum(ks) != Y.shape[1]:
        raise UsageError(f"block_sizes sum to {sum(ks)} but true has {Y.shape[1]} columns")
    offs = np.concatenate([[0], np.cumsum(ks)]).astype(int)
    true_cols = [list(range(offs[j], offs[j + 1])) for j in range(len(ks))]
    L = X.shape[1]
    if assignment == "hungarian":
        K = Y.shape[1]
        if L < K:
            raise UsageError(f"hungarian assignment needs >= {K} learned dims (one per true "
                             f"coordinate), got {L}")  # fmt: skip
        _check_rows(X.shape[0], ks)
        r2m = _r2_matrix(X, Y, true_cols)
        from scipy.optimize import linear_sum_assignment

        slot = np.repeat(np.arange(len(ks)), ks)  # the concept of each true coordinate
        rows, cols = linear_sum_assignment(-r2m[:, slot])
        blocks = [sorted(int(i) for i, c in zip(rows, cols) if slot[c] == j)
                  for j in range(len(ks))]  # fmt: skip
        if any(k > 1 for k in ks):
            blocks = _improve_blocks(X, Y, true_cols, blocks)
    elif assignment == "given":
        if learned_blocks is None:
            if L != Y.shape[1]:
                raise UsageError(
                    f"learned has {L} columns but true has {Y.shape[1]}: give learned_blocks "
                    "or use assignment='hungarian'"
                )
            blocks = true_cols
        else:
            try:
                blocks = [[check_number(i, "a learned_blocks column", minimum=0) for i in b]
                          for b in learned_blocks]  # fmt: skip
            except TypeError:
                raise UsageError(
                    f"learned_blocks must be a list of lists of columns, got {learned_blocks!r}"
                ) from None
            if len(blocks) != len(ks):
                raise UsageError(f"learned_blocks has {len(blocks)} blocks for {len(ks)} concepts")
            bad = [i for b in blocks for i in b if not 0 <= i < L]
            if bad:
                raise UsageError(f"learned_blocks name columns {bad} outside 0..{L - 1}")
        _check_rows(X.shape[0], [len(set(b)) for b in blocks])
        r2m = _r2_matrix(X, Y, true_cols)
    else:
        raise UsageError(f"assignment must be 'given' or 'hungarian', got {assignment!r}")
    r2, maps = np.zeros(len(ks)), []
    residuals = np.zeros_like(Y)
    for j, (tc, lb) in enumerate(zip(true_cols, blocks)):
        r2[j], D, b, res = _r2(Y[:, tc], X[:, lb])
        maps.append((D, b))
        residuals[:, tc] = res
    return AlignResult(r2=r2, maps=maps, residuals=residuals, blocks=blocks, r2_matrix=r2m)


def readout_distance(readout: np.ndarray, model: ConceptModel) -> np.ndarray:
    """How far a linear read-out ``c_hat = H x`` of a linear-mixing model is from the class.

    With ``x = G [c; n]``, ``H G`` should be block-diagonal on the concept coordinates and zero on
    the nuisance. Returns, per concept, ``|off-block part of row block j of H G| / |its diagonal
    block|`` (Frobenius norms): 0 exactly on the class.
    """
    from conceptid.simulations.mixing import LinearMixing

    if not isinstance(model.mixing, LinearMixing):
        raise UsageError("readout_distance needs a model with linear mixing")
    H = np.asarray(readout, dtype=float)
    if H.shape != (model.K, model.mixing.output_shape[0]):
        raise UsageError(f"readout must be (K, p) = ({model.K}, {model.mixing.output_shape[0]})")
    HG = H @ model.mixing.A @ np.linalg.inv(model.readout)
    out = np.zeros(model.sem.m)
    for j, sl in enumerate(model.sem.slices):
        diag = np.linalg.norm(HG[sl, sl])
        off = HG[sl].copy()
        off[:, sl] = 0.0
        out[j] = np.linalg.norm(off) / diag if diag > 0 else np.inf
    return out


@dataclass(frozen=True)
class EquivalenceClass:
    """Per-concept invertible affine maps over blocks of the given sizes."""

    block_sizes: tuple[int, ...]

    @property
    def description(self) -> str:
        if all(k == 1 for k in self.block_sizes):
            return "c'_j = a_j c_j + b_j, a_j != 0 (an invertible affine map of each concept)"
        return "c'_j = D_j c_j + b_j, D_j invertible (an invertible affine map of each block)"

    def block_diagonal(self, D, A: Arithmetic) -> bool:
        """Whether ``D`` (``(K, K)``) is block-diagonal with invertible diagonal blocks."""
        offs = np.concatenate([[0], np.cumsum(self.block_sizes)]).astype(int)
        K = int(offs[-1])
        for j in range(len(self.block_sizes)):
            rows = list(range(offs[j], offs[j + 1]))
            others = [i for i in range(K) if not offs[j] <= i < offs[j + 1]]
            # numerically, small against the block's own rows (each concept has its own units)
            size = None if A.exact else float(np.max(np.abs(A.to_float(A.rows(D, rows)))))
            if others and not A.is_zero(A.cols(A.rows(D, rows), others), size):
                return False
            if A.rank(A.cols(A.rows(D, rows), rows)) < len(rows):
                return False
        return True


def _same_mixing(f, g) -> bool:
    """The same object, or two mixings with the same serialised form."""
    if f is g:
        return True
    try:
        return f.to_dict() == g.to_dict()
    except ConceptIDError:  # a mixing that cannot be serialised equals only itself
        return False


def contains(model_a: ConceptModel, model_b: ConceptModel, method: str = "exact") -> bool:
    """Whether ``model_b``'s concept read-outs lie in ``model_a``'s class.

    Both models must share the mixing ``f`` (then ``e = f^{-1}(x)`` is common and the read-outs are
    ``C_A e`` and ``C_B e``): the answer is whether ``C_B = D C_A`` for a block-diagonal invertible
    ``D``, decided exactly or numerically. For models with different mixings compare samples with
    :func:`align` instead.
    """
    from .linalg import arithmetic

    if not _same_mixing(model_a.mixing, model_b.mixing):
        raise UsageError("contains() needs two models with the same mixing; use align() on samples")
    if model_a.sem.block_sizes != model_b.sem.block_sizes:
        return False
    A = arithmetic(method) if isinstance(method, str) else method
    Ca, Cb = A.mat(model_a.C), A.mat(model_b.C)
    # D = C_B C_A^T (C_A C_A^T)^{-1}; C_A has full row rank (A2)
    D = A.mul(A.mul(Cb, A.T(Ca)), A.inv(A.mul(Ca, A.T(Ca))))
    if not A.equal(A.mul(D, Ca), Cb):
        return False
    return EquivalenceClass(model_a.sem.block_sizes).block_diagonal(D, A)
