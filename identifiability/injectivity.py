"""Numeric check of assumption A3 (the mixing ``f`` is injective) for a mixing given as a function.

A3 (proofs/setting.md) asks that ``f`` be injective and differentiable with a continuous inverse
on its image. When ``f`` is only available as a black box (the quad renderer, a user's function),
injectivity cannot be proved numerically, but two kinds of *defect* can be found, each with
evidence:

1. **Rank-deficient Jacobian.** At each probe point the Jacobian ``J = df/de`` (the output
   flattened), estimated by central finite differences, has a singular value below
   ``rank_rtol`` times its largest: to the precision of ``f`` the map collapses that direction,
   and an inverse cannot be Lipschitz there. The report names the input coordinates the null
   directions are made of.
2. **Collision.** From a probe point ``e1``, a least-squares search (Levenberg-Marquardt, started
   from a batched scan along one coordinate, since a random start often runs off into a
   saturated sigmoid) for ``e2`` far from ``e1`` with ``f(e2) = f(e1)``. A candidate counts only
   once a fresh evaluation of ``f`` at both points confirms it: a verified collision is a witness
   of non-injectivity.

The result is an :class:`InjectivityReport` whose ``holds`` is ``False`` when a defect was found
and ``None`` when none was: numeric evidence never proves injectivity, so ``True`` is never
returned.

The step ``h`` and ``rank_rtol`` follow the precision of ``f``'s output (:data:`DEFAULTS_FLOAT64`,
:data:`DEFAULTS_FLOAT32`: float32 rounding makes finite differences noisy, so its step is large,
which the renderer's smoothness allows); ``collision_rtol = 1e-6`` is ten times the float32
rounding level. ``f`` is evaluated, and Jacobians are held, in bounded chunks. How these values
were chosen, with the measurements on the quad renderer, and what the check reports for it:
docs/identifiability.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from conceptid.simulations.errors import UsageError
from conceptid.simulations.validation import check_number, check_rng

__all__ = [
    "Collision",
    "InjectivityReport",
    "RankDeficiency",
    "check_injectivity",
    "check_mixing_injectivity",
    "jacobian_fd",
]

#: Default (h, rank_rtol) by output precision; see the module docstring.
DEFAULTS_FLOAT64 = (1e-4, 1e-5)
DEFAULTS_FLOAT32 = (1e-2, 3e-4)

#: Largest number of output values evaluated in one call of ``f`` (bounds memory: 2**22 float64
#: values are 32 MiB), except that a call always takes at least one point (a finite difference:
#: its pair of points).
_MAX_BATCH_VALUES = 1 << 22
#: Largest number of Jacobian entries held at once: the probe points are processed in chunks of
#: ``_jacobian_chunk(p, d)`` points (2**24 float64 values are 128 MiB; one point's ``(p, d)``
#: Jacobian is always held whole, 240 MiB for a megapixel RGB image and d = 10).
_MAX_JACOBIAN_VALUES = 1 << 24
#: The collision search fits at most this many output coordinates (a fixed random subset when
#: ``p`` is larger: the least-squares Jacobian is then ``(2**16, d)``); a candidate is always
#: verified on the whole output.
_MAX_SEARCH_OUTPUTS = 1 << 16
#: Least-squares budget per collision start (function evaluations; each Jacobian is one extra
#: batched call of 2d points).
_COLLISION_MAX_NFEV = 40
#: Collision search: a start scans one coordinate over ``_SCAN_POINTS`` offsets on each side of
#: ``e1``, up to ``_SCAN_REACH`` away, and jitters every coordinate by ``_JITTER`` (standard
#: deviation) before the least-squares run.
_SCAN_POINTS = 16
_SCAN_REACH = 4.0
_JITTER = 0.05
#: Weight (squared projection of a coordinate axis on the near-null subspace) from which the
#: coordinate is named as part of that subspace.
_NAME_WEIGHT = 0.25


@dataclass(frozen=True, eq=False)
class Collision:
    """Two inputs far apart with (numerically) the same output, verified by re-evaluation.

    Attributes
    ----------
    e1, e2 : ndarray, shape (d,)
    input_distance : float
        ``|e2 - e1|``.
    output_distance : float
        ``|f(e2) - f(e1)|`` (outputs flattened), from the verifying evaluation.
    relative_output_distance : float
        ``output_distance / |f(e1)|``.
    """

    e1: np.ndarray
    e2: np.ndarray
    input_distance: float
    output_distance: float
    relative_output_distance: float


@dataclass(frozen=True, eq=False)
class RankDeficiency:
    """A probe point whose finite-difference Jacobian is numerically rank-deficient.

    Attributes
    ----------
    index : int
        Row of the probe point in ``points``.
    e : ndarray, shape (d,)
    rank : int
        Numerical rank (``< d``).
    relative_singular_values : ndarray, shape (d,)
        ``sigma_i / sigma_max``, descending (zeros when ``f`` is locally constant).
    null_space : ndarray, shape (d, d - rank)
        Orthonormal basis of the near-null right singular subspace; the last column is the
        singular vector of ``sigma_min``.
    weights : ndarray, shape (d,)
        Squared norm of each coordinate axis' projection on the null space (``sum = d - rank``;
        1 means the axis lies in it).
    """

    index: int
    e: np.ndarray
    rank: int
    relative_singular_values: np.ndarray
    null_space: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True, eq=False)
class InjectivityReport:
    """Outcome of a numeric check of A3 (injectivity of the mixing).

    Attributes
    ----------
    holds : bool or None
        ``False``: a defect was found (rank-deficient Jacobians or verified collisions, with the
        evidence below); ``None``: no defect found, which is numeric evidence only, never a
        proof. ``True`` is never returned by the numeric check.
    method : str
        What was done, with the step, tolerances and search budget.
    n_points : int
        Number of probe points.
    jacobian_rank_deficient : int
        How many probe points have numerically rank-deficient Jacobians.
    min_relative_singular_value : float
        Minimum over the probe points of ``sigma_min / sigma_max``.
    worst_point : ndarray of shape (d,), or None
        The probe point where ``sigma_min / sigma_max`` is smallest.
    null_direction : ndarray of shape (d,), or None
        Unit right singular vector of ``sigma_min`` at ``worst_point``.
    collisions : list of Collision
        Verified collisions.
    reasons : list of str
        Human-readable findings, naming input coordinates.
    names : tuple of str
        Names of the ``d`` input coordinates.
    rank_deficiencies : list of RankDeficiency
        Every rank-deficient probe point, in order of ``points``.
    coordinates : str
        What the points are: ``"e"`` (the mixing's input), or ``"(c, n) = T e"`` when
        :func:`check_mixing_injectivity` checked ``f o T^-1`` for a non-identity read-out.
    """

    holds: bool | None
    method: str
    n_points: int
    jacobian_rank_deficient: int
    min_relative_singular_value: float
    worst_point: np.ndarray | None
    null_direction: np.ndarray | None
    collisions: list[Collision]
    reasons: list[str]
    names: tuple[str, ...] = ()
    rank_deficiencies: list[RankDeficiency] = field(default_factory=list)
    coordinates: str = "e"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _check_points(points: object, name: str, d: int | None = None) -> np.ndarray:
    """``points`` as a finite float64 ``(n, d)`` array with ``n, d >= 1``, else UsageError."""
    if np.iscomplexobj(points):
        raise UsageError(f"{name} must be real, got a complex array")
    try:
        arr = np.array(points, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise UsageError(f"{name} must be a real array of shape (n, d): {err}") from None
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise UsageError(f"{name} must have shape (n, d) with n, d >= 1, got shape {arr.shape}")
    if d is not None and arr.shape[1] != d:
        raise UsageError(f"{name} must have {d} columns, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise UsageError(f"{name} must be finite: it contains NaN or inf")
    return arr


def _eval(f: Callable, E: np.ndarray) -> tuple[np.ndarray, np.dtype]:
    """``f(E)`` flattened to float64 ``(n, p)``, and the dtype ``f`` returned."""
    out = np.asarray(f(E))
    if out.ndim < 1 or out.shape[0] != E.shape[0]:
        raise UsageError(
            f"f must map an (n, d) array to an (n, ...) array; for n = {E.shape[0]} it returned "
            f"shape {out.shape}"
        )
    if not (np.issubdtype(out.dtype, np.floating) or np.issubdtype(out.dtype, np.integer)):
        raise UsageError(f"f must return real numbers, got dtype {out.dtype}")
    flat = out.reshape(E.shape[0], -1).astype(np.float64)
    if flat.shape[1] == 0:
        raise UsageError(f"f returned an empty output per point (shape {out.shape})")
    if not np.all(np.isfinite(flat)):
        raise UsageError("f returned NaN or inf")
    return flat, out.dtype


def _precision_defaults(dtype: np.dtype) -> tuple[tuple[float, float], str]:
    if np.issubdtype(dtype, np.floating) and np.finfo(dtype).eps <= np.finfo(np.float64).eps:
        return DEFAULTS_FLOAT64, "float64"
    if dtype == np.float32:
        return DEFAULTS_FLOAT32, "float32"
    return DEFAULTS_FLOAT32, f"{dtype} (float32 defaults)"


def _steps(E: np.ndarray, h: float) -> np.ndarray:
    """Per-coordinate steps ``h * max(1, |e_j|)`` (same shape as ``E``)."""
    return h * np.maximum(1.0, np.abs(E))


def _eval_batched(f: Callable, E: np.ndarray, p: int):
    """``f`` at the rows of ``E`` in batches of at most ``_MAX_BATCH_VALUES`` output values
    (at least one row each): yields ``(lo, hi, F)`` with ``F`` the flattened float64 outputs of
    rows ``lo:hi``."""
    step = max(1, _MAX_BATCH_VALUES // max(p, 1))
    for lo in range(0, E.shape[0], step):
        hi = min(E.shape[0], lo + step)
        F, _ = _eval(f, E[lo:hi])
        if F.shape[1] != p:
            raise UsageError(f"f returned {F.shape[1]} values per point, expected {p}")
        yield lo, hi, F


def _jacobian_chunk(p: int, d: int) -> int:
    """How many probe points' ``(p, d)`` Jacobians are held at once (at least 1)."""
    return max(1, _MAX_JACOBIAN_VALUES // (p * d))


def _jacobians(
    f: Callable, E: np.ndarray, h: float, p: int | None = None, rows: np.ndarray | None = None
) -> np.ndarray:
    """Central-difference Jacobians at the rows of ``E`` (``(n, d)``) -> ``(n, p, d)``.

    The ``2 n d`` perturbed inputs go to ``f`` in batches whose outputs stay below
    ``_MAX_BATCH_VALUES`` values (at least one input per call), so that only the result is of
    size ``n p d``; callers bound ``n`` (:func:`_jacobian_chunk`). ``p``, the flattened output
    size, sizes the batches (if not given, the first input is evaluated alone to learn it).
    ``rows``: keep only these output coordinates (the result is then ``(n, len(rows), d)``).
    """
    n, d = E.shape
    steps = _steps(E, h)
    plus = E[:, None, :] + np.eye(d)[None] * steps[:, None, :]  # (n, d, d): row j moves e_j
    minus = E[:, None, :] - np.eye(d)[None] * steps[:, None, :]
    # the steps actually taken (e + s and e - s are rounded), per point and coordinate
    taken = np.einsum("njj->nj", plus - minus)
    plus, minus = plus.reshape(-1, d), minus.reshape(-1, d)  # (n d, d), row (point, coordinate)
    half, start, first = n * d, 0, None
    if p is None:  # the first point's 2 d inputs alone, to learn p
        first, _ = _eval(f, np.concatenate([plus[:d], minus[:d]]))
        p, start = first.shape[1], d
    q = p if rows is None else len(rows)
    diff = np.empty((half, q))  # f(e + s) - f(e - s)
    if first is not None:
        diff[:d] = (first[:d] - first[d:]) if rows is None else (first[:d] - first[d:])[:, rows]
    step = max(1, _MAX_BATCH_VALUES // (2 * p))  # a batch holds its plus and its minus inputs
    for lo in range(start, half, step):
        hi = min(half, lo + step)
        F, _ = _eval(f, np.concatenate([plus[lo:hi], minus[lo:hi]]))
        if F.shape[1] != p:
            raise UsageError(f"f returned {F.shape[1]} values per point, expected {p}")
        if rows is not None:
            F = F[:, rows]
        diff[lo:hi] = F[: hi - lo] - F[hi - lo :]
    J = diff.reshape(n, d, q) / taken[:, :, None]
    return J.transpose(0, 2, 1)


def jacobian_fd(f: Callable, e: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central finite-difference Jacobian of ``f`` at ``e``.

    Parameters
    ----------
    f : callable
        Maps an ``(m, d)`` float array to an ``(m, *output_shape)`` array.
    e : ndarray, shape (d,) or (n, d)
        The point (or points).
    h : float
        Step: coordinate ``j`` moves by ``+- h * max(1, |e_j|)``. Use about 1e-4 for float64
        outputs and 1e-2 for float32 outputs (see the module docstring).

    Returns
    -------
    ndarray, shape (p, d) (or (n, p, d) for several points), float64
        ``J[i, j] = d f_i / d e_j`` with ``p = prod(output_shape)`` (outputs flattened in C
        order). Each point costs one batched evaluation of ``2 d`` inputs, and several points are
        stacked into one call.

    Raises
    ------
    UsageError
        If ``e`` is not a finite real vector or ``(n, d)`` array, if ``h`` is not a positive
        finite number, or if ``f`` returns the wrong number of rows or non-finite values.
    """
    h = _positive(h, "h")
    single = np.ndim(e) == 1
    E = _check_points(np.atleast_2d(e) if single else e, "e")
    J = _jacobians(f, E, h)
    return J[0] if single else J


def _names(names: Sequence[str] | None, d: int) -> tuple[str, ...]:
    if names is None:
        return tuple(f"e{j}" for j in range(d))
    if isinstance(names, str):
        raise UsageError("names must be a sequence of strings, got a single string")
    names = tuple(str(s) for s in names)
    if len(names) != d:
        raise UsageError(
            f"names must have one entry per input coordinate (d = {d}), got {len(names)}"
        )
    return names


def _positive(value: object, name: str) -> float:
    return check_number(value, name, integer=False, minimum=0, exclusive=True)


def _dominant(vec: np.ndarray, names: tuple[str, ...], k: int = 2) -> str:
    """``'orientation' (0.99)`` style description of the largest squared components."""
    w = np.asarray(vec, dtype=float) ** 2
    w = w / max(w.sum(), 1e-300)
    order = np.argsort(-w)
    parts = [f"{names[j]!r} ({w[j]:.2f})" for j in order[:k] if w[j] >= 0.05 or j == order[0]]
    return ", ".join(parts)


def _extreme_coordinate(e: np.ndarray, points: np.ndarray, names: tuple[str, ...]) -> str:
    """``e[shape] = -7.2``: the coordinate of ``e`` furthest out among the probe points."""
    centre = np.median(points, axis=0)
    scale = np.std(points, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    j = int(np.argmax(np.abs(e - centre) / scale))
    return f"e[{names[j]}] = {e[j]:.3g}"


# --------------------------------------------------------------------------------------------
# the check
# --------------------------------------------------------------------------------------------


def _rank_analysis(J: np.ndarray, rank_rtol: float):
    """Relative singular values (descending, ``(n, d)``), right singular vectors (``(n, d, d)``,
    rows) and numerical ranks of a stack of ``(p, d)`` Jacobians (reduced to ``(d, d)`` by QR when
    ``p > d``, padded with zero rows when ``p < d``)."""
    n, p, d = J.shape
    if p > d:
        R = np.linalg.qr(J, mode="r")
    elif p < d:  # pad with zero rows: the singular values then include the d - p zeros
        R = np.concatenate([J, np.zeros((n, d - p, d))], axis=1)
    else:
        R = J
    _, s, Vt = np.linalg.svd(R, full_matrices=False)
    smax = s[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(smax[:, None] > 0, s / smax[:, None], 0.0)
    rank = np.where(smax > 0, np.sum(rel > rank_rtol, axis=1), 0)
    return rel, Vt, rank


def _scan_start(
    f: Callable, e1: np.ndarray, y1: np.ndarray, j: int, rng: np.random.Generator
) -> float:
    """Offset ``t`` of coordinate ``j`` from which to start a collision search at ``e1``.

    One batched call evaluates ``f`` at ``e1 + t u_j`` on a grid of ``t`` on both sides of 0 (up to
    ``_SCAN_REACH``); the best interior local minimum of ``|f(e1 + t u_j) - f(e1)|`` along either
    half-line is returned (``t = 0``, where the residual is 0, counts as a neighbour, so the
    trivial minimum at ``e1`` is never picked). If there is none (the residual grows
    monotonically), a random offset of size 1 to 3 is returned.
    """
    k = _SCAN_POINTS
    grid = (np.arange(1, k + 1) - rng.uniform(0.0, 0.5)) * (_SCAN_REACH / k)  # (k,), > 0
    t = np.concatenate([grid, -grid])
    E = np.repeat(e1[None], 2 * k, axis=0)
    E[:, j] += t
    r = np.empty(2 * k)
    for lo, hi, F in _eval_batched(f, E, y1.size):
        r[lo:hi] = np.linalg.norm(F - y1, axis=1)
    r = r.reshape(2, k)
    best_t, best_r = None, np.inf
    for side in range(2):
        rr = np.concatenate([[0.0], r[side], [np.inf]])
        for m in range(1, k + 1):
            if rr[m] <= rr[m - 1] and rr[m] <= rr[m + 1] and rr[m] < best_r:
                best_t, best_r = t[side * k + m - 1], rr[m]
    if best_t is None:
        return float(rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 3.0))
    return float(best_t)


def _collision_search(
    f: Callable,
    points: np.ndarray,
    p: int,
    rng: np.random.Generator,
    n_starts: int,
    h: float,
    collision_rtol: float,
    min_separation: float,
) -> list[Collision]:
    n, d = points.shape
    found: list[Collision] = []
    offset = int(rng.integers(d))
    # a least-squares fit on a huge output would hold several (p, d) matrices: fit a fixed
    # random subset of the outputs, and verify every candidate on the whole output below
    rows = None
    if p > _MAX_SEARCH_OUTPUTS:
        rows = np.sort(rng.choice(p, _MAX_SEARCH_OUTPUTS, replace=False))
    for start in range(n_starts):
        i = int(rng.integers(n))
        e1 = points[i]
        y1 = _eval(f, e1[None])[0][0]
        j = (offset + start) % d  # every coordinate gets its share of the starts
        x0 = e1 + _JITTER * rng.standard_normal(d)
        try:
            x0[j] = e1[j] + _scan_start(f, e1, y1, j, rng)
        except ValueError:  # f failed (NaN, ...) somewhere on the scanned line
            x0[j] = e1[j] + rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 3.0)

        y1_fit = y1 if rows is None else y1[rows]

        def resid(x, y1_fit=y1_fit):
            out = _eval(f, x[None])[0][0]
            return (out if rows is None else out[rows]) - y1_fit

        def jac(x):
            return _jacobians(f, x[None], h, p, rows)[0]

        try:
            sol = least_squares(
                resid,
                x0,
                jac=jac,
                method="lm" if y1_fit.size >= d else "trf",  # lm needs p >= d
                x_scale="jac",
                max_nfev=_COLLISION_MAX_NFEV,
                ftol=1e-12,
                xtol=1e-12,
                gtol=1e-12,
            )
        except (ValueError, np.linalg.LinAlgError):  # f failed off the probe region: no evidence
            continue
        e2 = np.asarray(sol.x, dtype=float)
        norm1 = float(np.linalg.norm(y1_fit))
        if not np.all(np.isfinite(e2)) or np.linalg.norm(e2 - e1) <= min_separation:
            continue
        if np.linalg.norm(sol.fun) > collision_rtol * (norm1 + 1e-12):
            continue
        # verify: evaluate both points again, in one fresh call
        try:
            Y, _ = _eval(f, np.stack([e1, e2]))
        except ValueError:
            continue
        dist_out = float(np.linalg.norm(Y[1] - Y[0]))
        ref = float(np.linalg.norm(Y[0]))
        dist_in = float(np.linalg.norm(e2 - e1))
        if dist_out > collision_rtol * (ref + 1e-12) or dist_in <= min_separation:
            continue
        if any(
            np.array_equal(c.e1, e1) and np.linalg.norm(c.e2 - e2) <= min_separation for c in found
        ):
            continue  # the same collision again
        found.append(
            Collision(
                e1=e1.copy(),
                e2=e2,
                input_distance=dist_in,
                output_distance=dist_out,
                relative_output_distance=dist_out / (ref + 1e-12),
            )
        )
    return found


def _rank_reasons(defs, points, names, rank_rtol, worst, worst_vec, min_rel) -> list[str]:
    """Summary of the rank-deficient points, grouped by the coordinates of their null spaces."""
    if not defs:
        return []
    n = points.shape[0]
    reasons = [
        f"Jacobian rank-deficient at {len(defs)}/{n} points (sigma_i <= {rank_rtol:g} "
        f"sigma_max); near-null direction is mostly {_dominant(worst_vec, names)} at "
        f"{_extreme_coordinate(points[worst], points, names)} "
        f"(sigma_min/sigma_max = {min_rel[worst]:.2g})"
    ]
    groups: dict[tuple[int, ...], list[RankDeficiency]] = {}
    for r in defs:
        key = tuple(int(j) for j in np.flatnonzero(np.round(r.weights, 2) >= _NAME_WEIGHT))
        if not key:  # a null direction mixing many coordinates: name its largest
            key = (int(np.argmax(r.null_space[:, -1] ** 2)),)
        groups.setdefault(key, []).append(r)
    for key, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        w = min(members, key=lambda r: r.relative_singular_values[-1])
        axes = ", ".join(f"{names[j]!r} ({w.weights[j]:.2f})" for j in key)
        where = [f"e[{names[j]}] = {w.e[j]:.3g}" for j in key]
        extreme = _extreme_coordinate(w.e, points, names)
        if extreme.split(" = ")[0] not in [x.split(" = ")[0] for x in where]:
            where.append(extreme)
        reasons.append(
            f"{len(members)} of them with the near-null subspace along {axes}; worst at "
            f"{', '.join(where)} (null space dim {len(w.relative_singular_values) - w.rank}, "
            f"sigma_min/sigma_max = {w.relative_singular_values[-1]:.2g})"
        )
    return reasons


def _collision_reasons(collisions: list[Collision], names, n_starts: int) -> list[str]:
    """Summary of the verified collisions (by dominant coordinate), then the first few."""
    if not collisions:
        return []
    kinds: dict[str, int] = {}
    for c in collisions:
        w = (c.e2 - c.e1) ** 2
        name = names[int(np.argmax(w))]
        kinds[name] = kinds.get(name, 0) + 1
    summary = ", ".join(
        f"{k} mostly {name!r}" for name, k in sorted(kinds.items(), key=lambda kv: -kv[1])
    )
    reasons = [f"{len(collisions)} verified collisions from {n_starts} searches ({summary})"]
    shown = 5
    for c in collisions[:shown]:
        reasons.append(
            f"collision: e1 and e2 differ by {c.input_distance:.3g} (mostly "
            f"{_dominant(c.e2 - c.e1, names)}) but |f(e1) - f(e2)| = {c.output_distance:.2g} "
            f"(relative {c.relative_output_distance:.2g})"
        )
    if len(collisions) > shown:
        reasons.append(f"... and {len(collisions) - shown} more verified collisions")
    return reasons


def _integer_valued(f, points, dtype, names, min_separation) -> InjectivityReport:
    """A3 for an ``f`` with integer (or boolean) outputs, such as uint8 images: decided by
    cardinality, not numerically. Such an ``f`` takes finitely many values (at most
    ``2^bits`` per output coordinate) on the uncountable ``R^d``, so it is not injective; it is
    piecewise constant, so wherever it is differentiable its Jacobian is 0. As evidence, each
    probe point is moved by ``2 min_separation`` along each axis in turn until the output does
    not change (a verified collision)."""
    n, d = points.shape
    collisions: list[Collision] = []
    for e1 in points[: min(n, 8)]:
        E = np.concatenate([e1 + 2 * min_separation * np.eye(d), e1[None]])
        Y = np.asarray(f(E)).reshape(d + 1, -1).astype(np.float64)
        same = np.flatnonzero(np.all(Y[:d] == Y[d], axis=1))
        if same.size:
            e2 = E[same[0]]
            collisions.append(Collision(e1.copy(), e2, float(np.linalg.norm(e2 - e1)), 0.0, 0.0))
            break
    reasons = [
        f"f returns {dtype} values: a map into a finite set cannot be injective on R^{d}, and it "
        "is piecewise constant (where it is differentiable its Jacobian is 0)"
    ]
    if collisions:
        c = collisions[0]
        reasons.append(
            f"e.g. moving {_dominant(c.e2 - c.e1, names)} by {c.input_distance:.3g} leaves the "
            "output unchanged (verified)"
        )
    return InjectivityReport(
        holds=False,
        method=f"by the output dtype ({dtype}): a cardinality argument, not a numeric search",
        n_points=n,
        jacobian_rank_deficient=0,
        min_relative_singular_value=float("nan"),
        worst_point=None,
        null_direction=None,
        collisions=collisions,
        reasons=reasons,
        names=names,
    )


def check_injectivity(
    f: Callable,
    points: np.ndarray,
    rng: np.random.Generator,
    *,
    names: Sequence[str] | None = None,
    h: float | None = None,
    rank_rtol: float | None = None,
    n_collision_starts: int = 40,
    collision_rtol: float = 1e-6,
    min_separation: float = 1e-2,
) -> InjectivityReport:
    """Look for defects of injectivity (A3) of ``f`` around the probe points.

    Parameters
    ----------
    f : callable
        Maps an ``(m, d)`` float64 array to an ``(m, *output_shape)`` array (flattened to
        ``(m, p)`` here). It is only ever called on batches.
    points : ndarray, shape (n, d)
        Probe points (finite).
    rng : numpy.random.Generator
        Drives the collision search (starting points and perturbations).
    names : sequence of str, optional
        Names of the ``d`` input coordinates, used in ``reasons`` (default ``e0, e1, ...``).
    h : float, optional
        Finite-difference step (coordinate ``j`` moves by ``h * max(1, |e_j|)``). Default by the
        precision of ``f``'s output: 1e-4 for float64, 1e-2 for float32 (module docstring).
    rank_rtol : float, optional
        ``sigma_i`` counts towards the rank when ``sigma_i > rank_rtol * sigma_max``. Default
        1e-5 for float64 outputs, 3e-4 for float32.
    n_collision_starts : int
        Number of least-squares starts of the collision search (0 skips it). Each costs at most
        40 evaluations of ``f`` at one point and as many batched Jacobians.
    collision_rtol : float
        A collision needs ``|f(e2) - f(e1)| <= collision_rtol * |f(e1)|`` (1e-6: ten times the
        float32 rounding level; collisions of the quad renderer are found at 1e-8).
    min_separation : float
        A collision needs ``|e2 - e1| > min_separation``.

    Returns
    -------
    InjectivityReport
        ``holds`` is ``False`` when some Jacobian is numerically rank-deficient or a verified
        collision was found, else ``None``. When ``f`` returns integers (uint8 images, say),
        ``holds`` is ``False`` by a cardinality argument (a map into a finite set is not
        injective on ``R^d``; it is piecewise constant), with a verified collision as evidence
        when one of the first probe points has one nearby.

    Notes
    -----
    Memory: ``f`` is called on batches of at most ``2^22`` output values (at least one point, or
    the two points of one finite difference),
    the Jacobians are held for ``max(1, 2^24 // (p d))`` probe points at a time, and the
    collision search fits at most ``2^16`` output coordinates; so the peak is about
    ``max(p d, 2^24)`` float64 values plus what ``f`` itself allocates for a batch (measured:
    docs/identifiability.md, "Memory").

    Raises
    ------
    UsageError
        If ``points`` is not a finite ``(n, d)`` array, ``names`` has the wrong length, a
        tolerance is not positive, or ``f`` returns the wrong shape or non-finite values.
    """
    points = _check_points(points, "points")
    n, d = points.shape
    names_t = _names(names, d)
    check_rng(rng)
    n_collision_starts = check_number(n_collision_starts, "n_collision_starts", minimum=0)
    min_separation = _positive(min_separation, "min_separation")

    try:
        first, dtype = _eval(f, points[:1])
        p = first.shape[1]
        for _ in _eval_batched(f, points, p):  # f must work at every probe point
            pass
    except ValueError as err:
        raise UsageError(f"f cannot be evaluated at points (shape {points.shape}): {err}") from err
    collision_rtol = _positive(collision_rtol, "collision_rtol")
    if not np.issubdtype(dtype, np.floating):
        return _integer_valued(f, points, dtype, names_t, min_separation)
    (h0, r0), precision = _precision_defaults(dtype)
    h = h0 if h is None else _positive(h, "h")
    rank_rtol = r0 if rank_rtol is None else _positive(rank_rtol, "rank_rtol")

    # -- Jacobian rank, a chunk of probe points at a time (memory: see _MAX_JACOBIAN_VALUES) --
    rel, Vt, rank = np.empty((n, d)), np.empty((n, d, d)), np.empty(n, dtype=int)
    chunk = _jacobian_chunk(p, d)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        rel[lo:hi], Vt[lo:hi], rank[lo:hi] = _rank_analysis(
            _jacobians(f, points[lo:hi], h, p), rank_rtol
        )
    min_rel = rel[:, -1]
    worst = int(np.argmin(min_rel))
    deficient = np.flatnonzero(rank < d)
    defs = []
    for i in deficient:
        null = Vt[i, rank[i] :].T  # (d, d - rank)
        defs.append(
            RankDeficiency(
                index=int(i),
                e=points[i].copy(),
                rank=int(rank[i]),
                relative_singular_values=rel[i].copy(),
                null_space=null.copy(),
                weights=np.sum(null**2, axis=1),
            )
        )

    reasons = _rank_reasons(defs, points, names_t, rank_rtol, worst, Vt[worst, -1], min_rel)

    # -- collisions ------------------------------------------------------------------------
    collisions = (
        _collision_search(
            f, points, p, rng, int(n_collision_starts), h, collision_rtol, min_separation
        )
        if n_collision_starts
        else []
    )
    reasons += _collision_reasons(collisions, names_t, n_collision_starts)
    if not defs and not collisions:
        reasons.append(
            f"no defect found at {n} points: every Jacobian has full rank {d} "
            f"(min sigma_min/sigma_max = {min_rel[worst]:.3g}) and {n_collision_starts} "
            "collision searches found nothing (numeric evidence, not a proof)"
        )

    method = (
        f"numeric: central finite differences (h={h:g} x max(1, |e_j|), outputs {precision}), "
        f"SVD rank with relative tolerance {rank_rtol:g}, collision search "
        f"({n_collision_starts} starts, least_squares lm, max_nfev={_COLLISION_MAX_NFEV}, "
        f"accepted at relative output distance <= {collision_rtol:g} and input distance > "
        f"{min_separation:g}, verified by re-evaluation)"
    )
    return InjectivityReport(
        holds=False if (defs or collisions) else None,
        method=method,
        n_points=n,
        jacobian_rank_deficient=len(defs),
        min_relative_singular_value=float(min_rel[worst]),
        worst_point=points[worst].copy(),
        null_direction=Vt[worst, -1].copy(),
        collisions=collisions,
        reasons=reasons,
        names=names_t,
        rank_deficiencies=defs,
    )


def _coordinate_names(model) -> tuple[str, ...]:
    sem = model.sem
    names: list[str] = []
    for j, name in enumerate(sem.names):
        k = sem.block(j).stop - sem.block(j).start
        names.extend([name] if k == 1 else [f"{name}[{i}]" for i in range(k)])
    names.extend(f"n{i}" for i in range(model.nuisance_dim))
    return tuple(names)


def check_mixing_injectivity(
    model,
    rng: np.random.Generator,
    *,
    n_points: int = 200,
    broad_scale: float = 3.0,
    extra_points: np.ndarray | None = None,
    **kw,
) -> InjectivityReport:
    """Check A3 for the mixing of a :class:`~conceptid.simulations.model.ConceptModel`.

    Probe points: half of ``n_points`` drawn from the model's own contexts (spread evenly over
    ``model.all_contexts``), half from a broad ``N(0, broad_scale^2 I)`` in ``e``-space, plus
    ``extra_points`` if given. The coordinates are named after the concepts (``name`` for a scalar
    concept, ``name[i]`` for a block) followed by ``n0, n1, ...`` for the nuisance.

    With the identity read-out (``e = [c; n]``) the check runs on ``model.mixing`` in
    ``e``-coordinates. Otherwise it runs on ``f o T^-1`` in ``(c, n) = T e`` coordinates (every
    point and direction of the report is then a ``(c, n)`` vector; ``report.coordinates`` says
    so): ``T`` is invertible, so ``f`` is injective exactly when ``f o T^-1`` is, and the names
    then mean what they say.

    Parameters
    ----------
    model : ConceptModel
    rng : numpy.random.Generator
    n_points : int
        Number of random probe points (at least 2). With the defaults, the quad model at 32
        pixels takes 1 to 2 s on one core (200 Jacobians of 16 images each, 40 collision
        searches).
    broad_scale : float
        Standard deviation of the broad half of the probe points.
    extra_points : ndarray, shape (m, d), optional
        Additional probe points (in the coordinates of the check).
    **kw
        Passed to :func:`check_injectivity` (``h``, ``rank_rtol``, ``n_collision_starts``, ...).

    Returns
    -------
    InjectivityReport
    """
    n_points = check_number(n_points, "n_points", minimum=2)
    broad_scale = _positive(broad_scale, "broad_scale")
    check_rng(rng)
    d = model.d
    T = np.asarray(model.readout, dtype=float)
    identity = np.array_equal(T, np.eye(d))
    contexts = model.all_contexts
    n_ctx = n_points // 2
    counts = np.full(len(contexts), n_ctx // len(contexts))
    counts[: n_ctx % len(contexts)] += 1
    parts = []
    for ctx, k in zip(contexts, counts):
        if k:
            s = model.sample(ctx, int(k), rng)
            parts.append(s.e if identity else np.concatenate([s.c, s.nuisance], axis=1))
    broad = broad_scale * rng.standard_normal((n_points - n_ctx, d))
    parts.append(broad if identity else broad @ T.T)
    if extra_points is not None:
        parts.append(_check_points(extra_points, "extra_points", d))
    points = np.concatenate(parts).astype(np.float64)
    if identity:
        f = model.mixing
    else:
        Tinv = np.linalg.inv(T)

        def f(cn: np.ndarray) -> np.ndarray:
            return model.mixing(cn @ Tinv.T)

    report = check_injectivity(f, points, rng, names=_coordinate_names(model), **kw)
    if identity:
        return report
    from dataclasses import replace

    return replace(
        report,
        coordinates="(c, n) = T e",
        method=report.method + "; checked f o T^-1 in (c, n) = T e coordinates",
    )
