"""Structural equation models over concept blocks.

Concept ``j`` has ``k_j`` dimensions; all concepts stacked give a vector ``c`` of length
``K = sum k_j``. The mechanism of concept ``j`` is additive in its parents and in its noise::

    c_j = sum_{i in pa(j)} B_ji phi(c_i) + eps_j,    eps_j = mu_j + L_j z_j,  L_j L_j^T = S_j,

with ``B_ji`` a ``(k_j, k_i)`` weight block, ``z_j`` i.i.d. standardised noise of a family
(``gaussian``, ``laplace``, ``uniform``; zero mean, unit variance, so ``eps_j`` has mean ``mu_j``
and covariance ``S_j`` in every family), and ``phi`` the parent feature map:

- ``linear``: ``phi(u) = u``: a linear SEM; exact population mean ``M mu`` and covariance
  ``M S M^T`` with ``M = (I - B)^{-1}`` (whatever the noise family);
- ``tanh``: ``phi(u) = tanh(u)`` elementwise;
- ``mlp``: ``phi_i(u) = W2_i tanh(W1_i u + b_i)``, a fixed random one-hidden-layer MLP per node
  (its weights are part of the model and of its ground truth).

The big matrix ``B`` (``K x K``) holds ``B_ji`` in the rows of ``j`` and the columns of ``i``; it is
zero outside the graph's edges. An intervention (see :mod:`conceptid.simulations.interventions`)
edits the
target's rows of ``B`` and its noise, and nothing else; :meth:`SEM.intervene` returns a new SEM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from .errors import ConceptIDError
from .graphs import DAG, GraphError
from .interventions import (
    NOISE_FAMILIES,
    InterventionError,
    as_context,
    as_covariance,
    as_floats,
    check_family,
)
from .memory import check_memory
from .validation import at, check_keys, check_number, check_rng, is_number

__all__ = ["MECHANISMS", "NOISE_FAMILIES", "SEM", "SEMError", "random_sem"]

MECHANISMS = ("linear", "tanh", "mlp")


class SEMError(ConceptIDError):
    """An SEM's parameters are malformed (shapes, non-finite values, weights off the graph, ...)."""


def standard_noise(
    rng: np.random.Generator, shape: tuple[int, ...], family: str, dtype=np.float64
) -> np.ndarray:
    """I.i.d. draws of the given shape with mean 0 and variance 1 from ``family``."""
    if family == "gaussian":
        return rng.standard_normal(shape, dtype=dtype)
    if family == "laplace":
        return rng.laplace(0.0, np.sqrt(0.5), size=shape).astype(dtype, copy=False)
    if family == "uniform":
        s = np.sqrt(3.0)
        return rng.uniform(-s, s, size=shape).astype(dtype, copy=False)
    raise SEMError(f"unknown noise family {family!r}; expected one of {NOISE_FAMILIES}")


def _standard_log_density(z: np.ndarray, family: str) -> np.ndarray:
    """Elementwise log density of :func:`standard_noise`'s ``family`` (mean 0, variance 1)."""
    if family == "gaussian":
        return -0.5 * z**2 - 0.5 * np.log(2 * np.pi)
    if family == "laplace":
        return -np.sqrt(2.0) * np.abs(z) - 0.5 * np.log(2.0)
    if family == "uniform":
        s = np.sqrt(3.0)
        return np.where(np.abs(z) <= s, -np.log(2 * s), -np.inf)
    raise SEMError(f"unknown noise family {family!r}; expected one of {NOISE_FAMILIES}")


@dataclass(frozen=True, eq=False)
class SEM:
    """An additive SEM over concept blocks (see the module docstring for the equations).

    Parameters
    ----------
    graph : DAG
        The concept graph; node ``j`` is concept ``j``.
    weights : ndarray, shape (K, K)
        ``B``: rows of child ``j``, columns of parent ``i`` hold ``B_ji``; zero off the edges.
    noise_mean : ndarray, shape (K,)
    noise_cov : sequence of ndarray
        ``S_j``, each ``(k_j, k_j)`` symmetric positive definite.
    block_sizes : sequence of int, optional
        ``k_j``; defaults to all ones.
    noise_family : str or sequence of str
        Per concept, one of ``gaussian``, ``laplace``, ``uniform``.
    mechanism : {"linear", "tanh", "mlp"}
    mlp_params : sequence of dict, optional
        For ``mechanism="mlp"``: per node ``{"W1": (h, k_j), "b1": (h,), "W2": (k_j, h)}``.

    Raises
    ------
    SEMError
        On wrong shapes, non-finite values, weights on a non-edge, a covariance that is not
        positive definite (a negative or zero variance), an unknown family or mechanism.
    """

    graph: DAG
    weights: np.ndarray
    noise_mean: np.ndarray
    noise_cov: tuple
    block_sizes: tuple = ()
    noise_family: object = "gaussian"
    mechanism: str = "linear"
    mlp_params: tuple = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.graph, DAG):
            raise SEMError(f"graph must be a DAG, got {type(self.graph).__name__}")
        m = self.graph.m
        bs = self.block_sizes
        if not isinstance(bs, list | tuple | np.ndarray) or (len(bs) and len(bs) != m):
            raise SEMError(f"block_sizes must be {m} positive integers, got {bs!r}")
        ks = tuple(check_number(k, "each of block_sizes", error=SEMError) for k in bs) or (1,) * m
        K = sum(ks)
        offsets = np.concatenate([[0], np.cumsum(ks)]).astype(int)
        slices = tuple(slice(int(offsets[j]), int(offsets[j + 1])) for j in range(m))
        B = np.array(as_floats(self.weights, "weights", SEMError))
        if B.shape != (K, K):
            raise SEMError(f"weights must have shape (K, K) = ({K}, {K}), got {B.shape}")
        if not np.all(np.isfinite(B)):
            raise SEMError("weights contain NaN or infinite values")
        mask = self.block_mask(self.graph.adjacency, slices, K)
        if np.any(B[~mask] != 0):
            r, c = np.argwhere((B != 0) & ~mask)[0]
            jj = int(np.searchsorted(offsets, r, side="right") - 1)
            ii = int(np.searchsorted(offsets, c, side="right") - 1)
            raise SEMError(
                f"weights has a nonzero entry for {self.graph.names[ii]!r} -> "
                f"{self.graph.names[jj]!r}, which is not an edge of the graph"
            )
        mu = np.array(as_floats(self.noise_mean, "noise_mean", SEMError)).reshape(-1)
        if mu.shape != (K,):
            raise SEMError(f"noise_mean must have K = {K} entries, got {np.shape(self.noise_mean)}")
        if not np.all(np.isfinite(mu)):
            raise SEMError("noise_mean contains NaN or infinite values")
        if not isinstance(self.noise_cov, list | tuple):
            raise SEMError(f"noise_cov must be a list of {m} covariances, got {self.noise_cov!r}")
        covs = list(self.noise_cov)
        if len(covs) != m:
            raise SEMError(f"noise_cov must hold one covariance per concept ({m}), got {len(covs)}")
        try:
            covs = tuple(
                as_covariance(S, ks[j], f"noise_cov of concept {self.graph.names[j]!r}")
                for j, S in enumerate(covs)
            )
        except InterventionError as err:
            raise SEMError(str(err)) from None
        fams = self.noise_family
        if not isinstance(fams, str | list | tuple):
            raise SEMError(f"noise_family must be a family name or a list of them, got {fams!r}")
        fams = (fams,) * m if isinstance(fams, str) else tuple(fams)
        if len(fams) != m:
            raise SEMError(f"noise_family must be one family or {m} of them, got {len(fams)}")
        try:
            fams = tuple(check_family(f) for f in fams)
        except InterventionError as err:
            raise SEMError(str(err)) from None
        if self.mechanism not in MECHANISMS:
            raise SEMError(f"mechanism must be one of {MECHANISMS}, got {self.mechanism!r}")
        if not isinstance(self.mlp_params, list | tuple):
            raise SEMError(f"mlp_params must be a list of dicts, got {self.mlp_params!r:.80}")
        params = tuple(self.mlp_params)
        if self.mechanism == "mlp":
            if len(params) != m:
                raise SEMError(f"mechanism 'mlp' needs mlp_params for each of the {m} concepts")
            params = tuple(_check_mlp(p, ks[j], self.graph.names[j]) for j, p in enumerate(params))
        for a in (B, mu, *covs):
            a.setflags(write=False)
        for name, val in (
            ("weights", B),
            ("noise_mean", mu),
            ("noise_cov", covs),
            ("block_sizes", ks),
            ("noise_family", fams),
            ("mlp_params", params),
            ("slices", slices),
        ):
            object.__setattr__(self, name, val)

    @staticmethod
    def block_mask(adjacency: np.ndarray, slices, K: int) -> np.ndarray:
        """``(K, K)`` boolean mask, true where ``B`` may be nonzero (child rows, parent columns)."""
        mask = np.zeros((K, K), dtype=bool)
        for i, j in zip(*np.nonzero(adjacency)):
            mask[slices[j], slices[i]] = True
        return mask

    # -- basic facts --------------------------------------------------------------------------

    @property
    def m(self) -> int:
        """Number of concepts."""
        return self.graph.m

    @property
    def K(self) -> int:
        """Total concept dimension ``sum k_j``."""
        return int(sum(self.block_sizes))

    @property
    def names(self) -> tuple[str, ...]:
        return self.graph.names

    def resolve(self, target) -> int:
        """Concept index of a name or index; raises InterventionError for an unknown target."""
        try:
            return self.graph.index(target)
        except GraphError:
            raise InterventionError(
                f"unknown intervention target {target!r}; concepts are {list(self.names)}"
            ) from None

    def block(self, j) -> slice:
        """Columns of concept ``j`` (name or index) in a ``(n, K)`` concept array."""
        return self.slices[self.resolve(j)]

    def noise_cov_matrix(self) -> np.ndarray:
        """Block-diagonal ``(K, K)`` noise covariance."""
        S = np.zeros((self.K, self.K))
        for sl, Sj in zip(self.slices, self.noise_cov):
            S[sl, sl] = Sj
        return S

    # -- interventions ------------------------------------------------------------------------

    def intervene(self, context) -> SEM:
        """The SEM under ``context`` (a Context, an Intervention, a list of them, or None).

        Only the targets' rows of ``B``, noise means, covariances and families change; a hard
        intervention also removes the target's incoming edges from the graph.
        """
        ctx = as_context(context)
        if ctx.is_observational:
            return self
        B = np.array(self.weights)
        mean = np.array(self.noise_mean)
        covs = list(self.noise_cov)
        fams = list(self.noise_family)
        cut: list[int] = []
        seen: set[int] = set()
        for iv in ctx:
            j = self.resolve(iv.target)
            if j in seen:
                raise InterventionError(
                    f"concept {self.names[j]!r} is targeted twice in {ctx.name}"
                )
            seen.add(j)
            iv.apply(self, j, B, mean, covs, fams)
            if iv.kind == "hard":
                cut.append(j)
        graph = self.graph.remove_incoming(cut) if cut else self.graph
        # every edited part was validated by the intervention itself (shapes, finiteness,
        # positive definiteness, parents only); the untouched parts were validated when this
        # SEM was built, so the result skips a second full validation (it dominates large m)
        return self._edited(graph, B, mean, tuple(covs), tuple(fams))

    def _edited(self, graph: DAG, B, mean, covs, fams) -> SEM:
        """A copy with new graph/weights/noise, trusted (see :meth:`intervene`)."""
        new = object.__new__(SEM)
        for a in (B, mean):
            a.setflags(write=False)
        for name, val in (
            ("graph", graph),
            ("weights", B),
            ("noise_mean", mean),
            ("noise_cov", covs),
            ("block_sizes", self.block_sizes),
            ("noise_family", fams),
            ("mechanism", self.mechanism),
            ("mlp_params", self.mlp_params),
            ("slices", self.slices),
        ):
            object.__setattr__(new, name, val)
        return new

    # -- exact moments ------------------------------------------------------------------------

    def reduced_form(self) -> np.ndarray:
        """``M = (I - B)^{-1}``, so that ``c = M eps`` for a linear SEM (``(K, K)``)."""
        # I - B is unit lower-triangular up to a permutation (acyclic), so always invertible.
        return np.linalg.inv(np.eye(self.K) - self.weights)

    def _require_linear(self, what: str) -> None:
        if self.mechanism != "linear":
            raise SEMError(f"{what} is exact only for mechanism='linear', not {self.mechanism!r}")

    def population_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact mean ``(K,)`` and covariance ``(K, K)`` of ``c``; linear mechanism only.

        ``c = (I - B)^{-1} (mu + L z)`` with ``L`` the block-diagonal Cholesky factor of the
        noise covariance. In a topological order ``I - B`` is unit lower-triangular, so one
        triangular solve with the ``K + 1`` right-hand sides ``[mu | L]`` gives both the mean and
        ``A = (I - B)^{-1} L``, and the covariance is ``A A^T`` (no inverse is formed). Computed
        once per SEM (it is immutable)."""
        self._require_linear("population_moments")
        cache = self.__dict__.setdefault("_moments", [])
        if not cache:
            from scipy.linalg import solve_triangular
            from scipy.linalg.blas import dsyrk

            if self.K == self.m:  # scalar concepts: no per-block loop
                perm = np.asarray(self.graph.order)
                sd = np.sqrt(np.fromiter((S[0, 0] for S in self.noise_cov), float, self.K))
                Lp = np.diag(sd[perm])
            else:
                perm = np.concatenate([np.arange(self.slices[j].start, self.slices[j].stop)
                                       for j in self.graph.order])  # fmt: skip
                L = np.zeros((self.K, self.K))
                for sl, Sj in zip(self.slices, self.noise_cov):
                    L[sl, sl] = np.linalg.cholesky(Sj)
                Lp = L[np.ix_(perm, perm)]
            T = -self.weights[np.ix_(perm, perm)]
            T[np.diag_indices(self.K)] = 1.0
            rhs = np.column_stack([self.noise_mean[perm], Lp])
            X = solve_triangular(T, rhs, lower=True, unit_diagonal=True, check_finite=False)
            inv = np.argsort(perm)
            A = np.asfortranarray(X[inv, 1:])
            # A A^T by scipy's BLAS too (syrk: one triangle, then mirrored): one BLAS thread
            # pool for the whole computation (numpy and scipy each bundle an OpenBLAS, and two
            # pools on two cores wake each other's threads: measured 8x slower at d = 200)
            upper = dsyrk(1.0, A)
            cov = np.triu(upper) + np.triu(upper, 1).T
            cache.append((X[inv, 0], cov))
        mean, cov = cache[0]
        return mean.copy(), cov.copy()

    def population_mean(self) -> np.ndarray:
        """Exact mean of ``c`` (``(K,)``); linear mechanism only."""
        self._require_linear("population_mean")
        return self.population_moments()[0]

    def population_covariance(self) -> np.ndarray:
        """Exact covariance of ``c`` (``(K, K)``); linear mechanism only."""
        self._require_linear("population_covariance")
        return self.population_moments()[1]

    # -- the exact density ------------------------------------------------------------------

    def log_density(self, c: np.ndarray) -> np.ndarray:
        """Exact ``log p(c)`` (nats) of each row of ``c`` (``(n, K)``), for every mechanism and
        noise family.

        In a topological order the map from the standardised noise to the concepts is
        triangular: ``z_j = L_j^-1 (c_j - mu_j - sum_i B_ji phi(c_i))`` reads only concepts
        before ``j``, and its Jacobian block in ``c_j`` is ``L_j^-1``. So

            log p(c) = sum_j [ sum_d log q_j(z_jd) - log |det L_j| ],

        ``q_j`` the unit-variance density of concept ``j``'s family: Gaussian
        ``exp(-z^2/2) / sqrt(2 pi)``, Laplace ``exp(-sqrt(2) |z|) / sqrt(2)``, uniform
        ``1 / (2 sqrt(3))`` on ``[-sqrt(3), sqrt(3)]`` (``-inf`` outside its support).

        Raises
        ------
        SEMError
            ``c`` is not a finite ``(n, K)`` array.
        """
        C = np.asarray(c, dtype=float)
        if C.ndim != 2 or C.shape[1] != self.K or not np.isfinite(C).all():
            raise SEMError(f"c must be a finite (n, {self.K}) array, got shape {C.shape}")
        Ct = C.T
        Phi = Ct if self.mechanism == "linear" else np.empty_like(Ct)
        out = np.zeros(len(C))
        for j, sl, L, mu, parents in self._plan(np.float64):
            r = Ct[sl] - mu[:, None]
            for psl, w in parents:
                r = r - w @ Phi[psl]
            z = np.linalg.solve(L, r) if L.shape != (1, 1) else r / L[0, 0]
            out += _standard_log_density(z, self.noise_family[j]).sum(0)
            out -= np.log(np.abs(np.diag(L))).sum()
            if self.mechanism != "linear":
                Phi[sl] = self._phi(j, Ct[sl])
        return out

    # -- sampling -----------------------------------------------------------------------------

    def _standard_noise(self, n: int, rng: np.random.Generator, dtype) -> np.ndarray:
        """``(K, n)`` standardised noise, one row per concept dimension."""
        fams = set(self.noise_family)
        if len(fams) == 1:
            return standard_noise(rng, (self.K, n), fams.pop(), dtype)
        Z = np.empty((self.K, n), dtype=dtype)
        for sl, fam in zip(self.slices, self.noise_family):
            Z[sl] = standard_noise(rng, (sl.stop - sl.start, n), fam, dtype)
        return Z

    def sample_bytes(self, n: int, dtype: type = np.float64) -> int:
        """Rough peak bytes of :meth:`sample` drawing ``n`` samples: the ``(K, n)`` concepts, the
        parents' features when the mechanism is not linear, the noise draw of a non-Gaussian
        family (float64 before its cast) and an MLP mechanism's hidden layer."""
        size = np.dtype(dtype).itemsize
        per = size * (self.K + 1) + (0 if self.mechanism == "linear" else size * self.K)
        if set(self.noise_family) != {"gaussian"}:
            per += 8 * self.K
        if self.mechanism == "mlp":
            per += 2 * size * max(np.shape(p["W1"])[0] for p in self.mlp_params)
        return int(n) * per

    def sample(
        self,
        n: int,
        rng: np.random.Generator,
        *,
        dtype: type = np.float64,
        max_memory: float | None = None,
    ) -> np.ndarray:
        """Draw ``n`` samples of ``c``.

        Works in place on a ``(K, n)`` array in topological order: each concept's row block becomes
        ``mu_j + L_j z_j`` plus its parents' contributions, so the cost is drawing the noise plus
        one pass per concept and per edge (no dense ``K x K`` product).

        Parameters
        ----------
        n : int
            Number of samples (>= 0).
        rng : numpy.random.Generator
        dtype : numpy float type
            ``float64`` (default) or ``float32`` (faster; noise drawn in float32).
        max_memory : float, optional
            Memory limit in GiB (:func:`~conceptid.simulations.memory.check_memory`; default:
            the ``CONCEPTID_MAX_MEMORY`` environment variable, else the memory available now).

        Returns
        -------
        ndarray, shape (n, K)
            A Fortran-ordered (column-major) array.

        Raises
        ------
        SEMError
            ``n`` not an integer >= 0, ``rng`` not a numpy Generator, or another ``dtype``.
        MemoryLimitError
            Before anything is allocated, when :meth:`sample_bytes` exceeds the limit.
        """
        n = check_number(n, "n", minimum=0, error=SEMError)
        check_rng(rng, error=SEMError)
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise SEMError(f"dtype must be float32 or float64, got {dtype}")
        check_memory(self.sample_bytes(n, dtype), f"sampling {n} concept vectors of size "
                     f"{self.K}", max_memory)  # fmt: skip
        C = self._standard_noise(int(n), rng, dtype)
        linear = self.mechanism == "linear"
        Phi = C if linear else np.empty_like(C)
        tmp = np.empty(int(n), dtype=dtype)
        for j, sl, L, mu, parents in self._plan(dtype):
            if L.shape == (1, 1):
                C[sl] *= L[0, 0]
                C[sl] += mu[0]
            else:
                C[sl] = L @ C[sl] + mu[:, None]
            for psl, w in parents:
                if w.shape == (1, 1):
                    np.multiply(Phi[psl.start], w[0, 0], out=tmp)
                    C[sl.start] += tmp
                else:
                    C[sl] += w @ Phi[psl]
            if not linear:
                Phi[sl] = self._phi(j, C[sl])
        return C.T

    def _plan(self, dtype) -> tuple:
        """Per concept, in topological order: ``(j, slice, L_j, mu_j, ((parent slice, B_ji),
        ...))`` in ``dtype``; computed once per SEM and dtype (the SEM is immutable)."""
        key = np.dtype(dtype).str
        cache = self.__dict__.setdefault("_plans", {})
        if key not in cache:
            cache[key] = tuple(
                (
                    j,
                    self.slices[j],
                    np.linalg.cholesky(self.noise_cov[j]).astype(dtype),
                    self.noise_mean[self.slices[j]].astype(dtype),
                    tuple(
                        (self.slices[i], self.weights[self.slices[j], self.slices[i]].astype(dtype))
                        for i in self.graph.parents(j)
                    ),
                )
                for j in self.graph.order
            )
        return cache[key]

    def _phi(self, j: int, u: np.ndarray) -> np.ndarray:
        """Parent feature map on a ``(k_j, n)`` block."""
        if self.mechanism == "tanh":
            return np.tanh(u)
        p = self.mlp_params[j]
        h = np.tanh(p["W1"].astype(u.dtype) @ u + p["b1"].astype(u.dtype)[:, None])
        return p["W2"].astype(u.dtype) @ h

    # -- transformations ----------------------------------------------------------------------

    def standardized_by(self, loc: np.ndarray, scale: np.ndarray) -> SEM:
        """The linear SEM of ``c' = (c - loc) / scale`` (elementwise; ``(K,)`` each).

        With ``D = diag(scale)``: ``B' = D^-1 B D``, ``mu' = D^-1 (mu + B loc - loc)``,
        ``S'_j = D_j^-1 S_j D_j^-1``. Exact; linear mechanism only.
        """
        self._require_linear("standardized_by")
        loc = np.asarray(loc, dtype=float).reshape(-1)
        scale = np.asarray(scale, dtype=float).reshape(-1)
        if loc.shape != (self.K,) or scale.shape != (self.K,):
            raise SEMError(f"loc and scale must have K = {self.K} entries")
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise SEMError("scale must be finite and > 0")
        B = self.weights * scale[None, :] / scale[:, None]
        mu = (self.noise_mean + self.weights @ loc - loc) / scale
        covs = tuple(
            S / np.outer(scale[sl], scale[sl]) for sl, S in zip(self.slices, self.noise_cov)
        )
        return SEM(self.graph, B, mu, covs, self.block_sizes, self.noise_family, self.mechanism)

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """JSON-serialisable form (exact float round-trip via Python floats)."""
        return {
            "graph": self.graph.to_dict(),
            "block_sizes": list(self.block_sizes),
            "weights": self.weights.tolist(),
            "noise_mean": self.noise_mean.tolist(),
            "noise_cov": [S.tolist() for S in self.noise_cov],
            "noise_family": list(self.noise_family),
            "mechanism": self.mechanism,
            "mlp_params": [
                {k: np.asarray(v).tolist() for k, v in p.items()} for p in self.mlp_params
            ],
        }

    @classmethod
    def from_dict(cls, d: dict) -> SEM:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        SEMError
            For a missing key of the four required ones, a key :meth:`to_dict` does not write (a
            misspelt ``mechanism`` would otherwise leave the SEM linear), or a malformed value,
            naming it; GraphError (``graph: ...``) for a malformed graph.
        """
        need = ("graph", "weights", "noise_mean", "noise_cov")
        missing = [k for k in need if not isinstance(d, dict) or k not in d]
        if missing:
            raise SEMError(f"an SEM dict is missing the keys {missing}")
        check_keys(d, (f.name for f in fields(cls)), "SEM", SEMError)
        try:
            graph = DAG.from_dict(d["graph"])
        except GraphError as err:
            raise at("graph", err) from None
        # the values go to the constructor as they are: it checks each one by name
        return cls(graph, **{k: v for k, v in d.items() if k != "graph"})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SEM):
            return NotImplemented
        return (
            self.graph == other.graph
            and self.block_sizes == other.block_sizes
            and np.array_equal(self.weights, other.weights)
            and np.array_equal(self.noise_mean, other.noise_mean)
            and all(np.array_equal(a, b) for a, b in zip(self.noise_cov, other.noise_cov))
            and self.noise_family == other.noise_family
            and self.mechanism == other.mechanism
            and len(self.mlp_params) == len(other.mlp_params)
            and all(
                all(np.array_equal(p[key], q[key]) for key in ("W1", "b1", "W2"))
                for p, q in zip(self.mlp_params, other.mlp_params)
            )
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"SEM(m={self.m}, K={self.K}, mechanism={self.mechanism!r}, "
            f"noise={sorted(set(self.noise_family))}, edges={len(self.graph.edges)})"
        )


def _check_mlp(p, k: int, name: str) -> dict:
    if not isinstance(p, dict) or set(p) != {"W1", "b1", "W2"}:
        raise SEMError(f"mlp_params of {name!r} need exactly the keys W1, b1, W2, got {p!r:.80}")
    W1, b1, W2 = (as_floats(p[key], f"mlp_params {key} of {name!r}", SEMError)
                  for key in ("W1", "b1", "W2"))  # fmt: skip
    b1 = b1.reshape(-1)
    h = W1.shape[0] if W1.ndim == 2 else -1
    if W1.shape != (h, k) or b1.shape != (h,) or W2.shape != (k, h):
        raise SEMError(
            f"mlp_params of {name!r}: expected W1 (h, {k}), b1 (h,), W2 ({k}, h); got "
            f"{W1.shape}, {b1.shape}, {W2.shape}"
        )
    for a in (W1, b1, W2):
        if not np.all(np.isfinite(a)):
            raise SEMError(f"mlp_params of {name!r} contain NaN or infinite values")
        a.setflags(write=False)
    return {"W1": W1, "b1": b1, "W2": W2}


def random_sem(
    graph: DAG,
    rng: np.random.Generator,
    *,
    block_sizes: int | Sequence[int] = 1,
    weight_range: tuple[float, float] = (0.5, 1.5),
    noise_var_range: tuple[float, float] = (0.5, 1.5),
    noise_mean_scale: float = 0.0,
    noise_family: str = "gaussian",
    mechanism: str = "linear",
    mlp_hidden: int = 16,
) -> SEM:
    """A random SEM on ``graph``: weight entries with magnitude uniform in ``weight_range`` and a
    random sign (bounded away from zero), noise covariances ``Q diag(v) Q^T`` with ``v`` uniform in
    ``noise_var_range`` and ``Q`` a random rotation, noise means ``noise_mean_scale * N(0, 1)``.

    Block weights are divided by ``sqrt(k_i)`` so that a parent's influence does not grow with its
    dimension.

    Raises
    ------
    UsageError
        ``rng`` is not a :class:`numpy.random.Generator` (an int seed is not taken: pass
        ``np.random.default_rng(seed)``).
    SEMError
        Malformed ``block_sizes``, ranges or SEM parameters.
    """
    check_rng(rng)
    m = graph.m
    ks = (block_sizes,) * m if np.isscalar(block_sizes) else tuple(block_sizes)
    if len(ks) != m or not all(map(is_number, ks)):
        raise SEMError(f"block_sizes must be a positive int or {m} of them, got {block_sizes!r}")
    ks = tuple(int(k) for k in ks)
    for name, rng_ in (("weight_range", weight_range), ("noise_var_range", noise_var_range)):
        if not (isinstance(rng_, list | tuple | np.ndarray) and len(rng_) == 2
                and all(is_number(v, integer=False, minimum=-np.inf) for v in rng_)):  # fmt: skip
            raise SEMError(f"{name} must be two finite numbers (low, high), got {rng_!r}")
    lo, hi = weight_range
    vlo, vhi = noise_var_range
    if not 0 <= lo <= hi:
        raise SEMError(f"weight_range must satisfy 0 <= low <= high, got {weight_range}")
    if not 0 < vlo <= vhi:
        raise SEMError(f"noise_var_range must satisfy 0 < low <= high, got {noise_var_range}")
    K = sum(ks)
    offs = np.concatenate([[0], np.cumsum(ks)])
    sl = [slice(int(offs[j]), int(offs[j + 1])) for j in range(m)]
    B = np.zeros((K, K))
    for i, j in zip(*np.nonzero(graph.adjacency)):
        W = rng.uniform(lo, hi, (ks[j], ks[i])) * rng.choice([-1.0, 1.0], (ks[j], ks[i]))
        B[sl[j], sl[i]] = W / np.sqrt(ks[i])
    covs = []
    for k in ks:
        v = rng.uniform(vlo, vhi, k)
        Q = np.linalg.qr(rng.standard_normal((k, k)))[0] if k > 1 else np.ones((1, 1))
        covs.append(Q @ np.diag(v) @ Q.T)
    mu = noise_mean_scale * rng.standard_normal(K)
    params: tuple = ()
    if mechanism == "mlp":
        params = tuple(
            {
                "W1": rng.standard_normal((mlp_hidden, k)),
                "b1": 0.5 * rng.standard_normal(mlp_hidden),
                "W2": rng.standard_normal((k, mlp_hidden)) / np.sqrt(mlp_hidden),
            }
            for k in ks
        )
    return SEM(graph, B, mu, tuple(covs), ks, noise_family, mechanism, params)
