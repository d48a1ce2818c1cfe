"""Predicates for the assumptions A0-A7 and A7+ of proofs/setting.md (proofs: proofs/theorem.md).

Each predicate takes a :class:`~conceptid.simulations.model.ConceptModel` and an
:class:`~conceptid.identifiability.linalg.Arithmetic` and returns a :class:`Verdict`: whether the
assumption
holds (``True``/``False``, or ``None`` when a numeric search found no defect but cannot prove
absence), why, how it was decided, and which concepts it fails for.

A7+ (non-degenerate interventions, block form; proofs/lemma_rank_a7plus.md): for every intervened
concept ``k`` the linear parts of the log-density ratio between its context and the observational
one span everything its mechanism involves, ``rank T_k = k_k + rank B_k.`` with ``T_k`` the first
``K`` rows of ``Delta_k = Psi_k - Psi_0``. For scalar concepts A7+ is equivalent to A7; for blocks
it is strictly stronger (witness N6), and the linear identification theorem needs it.

A0 (observational context): the design contains the observational context. Every proof uses its
law ``p_0`` (the log-density ratios of Lemma 1 are taken against it), so it is a hypothesis of
both theorems; without it a concept can be non-identifiable although A1-A7 hold (witness N7).

A3 (mixing): decided exactly for linear mixings (the rank of ``A``), by construction for the
package's invertible MLP (layer ranks; a kinked activation fails) and for the identifiable quad
renderer (:class:`~conceptid.simulations.mixing.InjectiveQuadMixing`,
proofs/lemma_injective_renderer.md);
any other mixing is searched numerically, and a search that finds no defect leaves A3 unverified.

Which contexts count: the *training* contexts of the design (``model.contexts``). Held-out
(composed) contexts are never observed, so no predicate reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from conceptid.simulations.interventions import Context, Hard
from conceptid.simulations.mixing import InjectiveQuadMixing, LinearMixing, MLPMixing
from conceptid.simulations.model import ConceptModel

from .gaussian import standard_frame
from .linalg import NUMERIC_FAILURES, Arithmetic, ill_conditioned, spectral_norm

__all__ = [
    "ASSUMPTIONS",
    "Verdict",
    "evaluate",
    "intervention_contexts",
    "log_ratio_form",
    "observational_contexts",
]

ASSUMPTIONS = ("A0", "A1", "A2", "A3", "A4", "A5", "A6", "A7", "A7+")

DESCRIPTIONS = {
    "A0": "observational context: the design contains the observational context (every proof "
    "uses its law p_0)",
    "A1": "linear representation: c = C e in every context, with the same C",
    "A2": "linear independence: rank C = K",
    "A3": "mixing f injective and differentiable, continuous inverse on its image",
    "A4": "concept SEM: linear Gaussian over a DAG, positive definite noise covariances",
    "A5": "invariant nuisance: n independent of c, same law in every context, positive density",
    "A6": "a hard single-concept Gaussian intervention context for every concept, target known",
    "A7": "each intervention changes the law of its target given its parents",
    "A7+": "each intervention's log-density ratio uses every direction of its mechanism (blocks)",
}


@dataclass(frozen=True)
class Verdict:
    """The answer of one predicate.

    Attributes
    ----------
    assumption : str
        ``"A0"`` .. ``"A7"`` or ``"A7+"``.
    holds : bool or None
        ``None``: undecided (a numeric search found no defect; absence is not proved).
    reason : str
        Why, naming concepts where it fails, e.g. ``"A6 fails: concept 'color' has no
        intervention context"``.
    how : str
        ``"by construction"``, the arithmetic's description, or the numeric method used.
    concepts : tuple of str
        Concepts for which the assumption fails.
    evidence : object
        Optional supporting object (e.g. an injectivity report).
    """

    assumption: str
    holds: bool | None
    reason: str
    how: str
    concepts: tuple[str, ...] = ()
    evidence: object = field(default=None, compare=False, repr=False)

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.assumption]

    def to_dict(self) -> dict:
        return {
            "assumption": self.assumption,
            "description": self.description,
            "holds": self.holds,
            "reason": self.reason,
            "how": self.how,
            "concepts": list(self.concepts),
        }


def intervention_contexts(model: ConceptModel, A: Arithmetic | None = None) -> dict[int, Context]:
    """Concept index -> its first training context that is a single hard intervention on it with
    a Gaussian law (A6's context), preferring one that changes the concept's mechanism (A7), as
    decided in the arithmetic ``A`` (default: the model's floats compared bit for bit): a source
    intervened with its own noise law adds nothing, and other contexts of the design only add
    constraints, so a design that identifies from some of its contexts identifies from all of
    them."""
    sem = model.sem
    out: dict[int, Context] = {}
    for ctx in model.contexts:
        iv = ctx.interventions[0] if len(ctx) == 1 else None
        if isinstance(iv, Hard) and iv.family == "gaussian":
            j = sem.resolve(iv.target)
            # replace a context not known to change the concept's mechanism (unchanged, or
            # undecided in float64) by one known to change it
            if j not in out or (
                leaves_unchanged(sem, j, out[j], A) is not False
                and leaves_unchanged(sem, j, ctx, A) is False
            ):
                out[j] = ctx
    return out


def leaves_unchanged(sem, j: int, ctx: Context, A: Arithmetic | None = None) -> bool | None:
    """Whether the hard intervention ``ctx`` on concept ``j`` gives it its observational law, the
    one way A7 fails (Lemma 3 (b)): ``j`` is a source and the intervention's noise mean and
    covariance are its own, decided in ``A`` (``None``: bit for bit). ``None`` when the
    arithmetic cannot tell the two noise laws apart (float64 on an ill-conditioned noise
    covariance, :meth:`~conceptid.identifiability.linalg.Arithmetic.compare_gaussian`), and in
    float64 also when the two laws are equal within its tolerance but not bit for bit (a noise
    variance times ``1 + 1e-9``): then A7 is neither verified nor refuted."""
    s, sl = sem.intervene(ctx), sem.slices[j]
    pairs = ((sem.noise_mean[sl], s.noise_mean[sl]), (sem.noise_cov[j], s.noise_cov[j]))
    if A is None:
        return not np.any(sem.weights[sl]) and all(np.array_equal(a, b) for a, b in pairs)
    # one law against another, in the noise's own frame (a mean shift counts against the
    # noise's spread, not against the size of the mean: shifting the origin is in the class)
    (mean, mean_i), (cov, cov_i) = pairs
    if not A.is_zero(A.mat(sem.weights[sl])):
        return False
    same = A.compare_gaussian(A.mat(mean), A.mat(cov), A.mat(mean_i), A.mat(cov_i))
    if same and not A.exact and not all(np.array_equal(a, b) for a, b in pairs):
        return None  # equal within float64's tolerance, not bit for bit: exact arithmetic decides
    return None if same is None else bool(same)


def observational_contexts(model: ConceptModel) -> list[Context]:
    """The training contexts that intervene on nothing."""
    return [c for c in model.contexts if c.is_observational]


def check_a0(model: ConceptModel, A: Arithmetic) -> Verdict:
    if observational_contexts(model):
        return Verdict(
            "A0",
            True,
            "the design contains the observational context",
            "by inspection of the design",
        )
    return Verdict(
        "A0",
        False,
        "A0 fails: no training context is observational (every proof uses its law p_0); the "
        f"contexts are {[c.name for c in model.contexts]}",
        "by inspection of the design",
        tuple(model.sem.names),
    )


def check_a1(model: ConceptModel, A: Arithmetic) -> Verdict:
    return Verdict(
        "A1",
        True,
        "c = C e in every context with one read-out C = T[:K]: the model is defined that way",
        "by construction",
    )


def check_a2(model: ConceptModel, A: Arithmetic) -> Verdict:
    r = A.rank(A.mat(model.C))
    if r == model.K:
        return Verdict(
            "A2", True, f"rank C = {r} = K (also implied by A1 and A4, Lemma 2)", A.description
        )
    return Verdict("A2", False, f"A2 fails: rank C = {r} < K = {model.K}", A.description)


def check_a3(model: ConceptModel, A: Arithmetic, rng: np.random.Generator | None = None) -> Verdict:
    f = model.mixing
    if type(f) is LinearMixing:  # a subclass may compute something else: searched below
        r = A.rank(A.mat(f.A))
        if r == f.input_dim:
            return Verdict(
                "A3",
                True,
                f"linear mixing of full column rank {r}: injective, smooth, linear inverse",
                A.description,
            )
        return Verdict(
            "A3", False, f"A3 fails: linear mixing has rank {r} < d = {f.input_dim}", A.description
        )
    if type(f) is InjectiveQuadMixing:  # a subclass may draw something else: searched below
        return Verdict(
            "A3",
            True,
            "identifiable quad renderer: every concept moves one scene parameter through a "
            "strictly increasing logistic, the blob's covariance is the exponential of a "
            "symmetric matrix (a bijection onto the positive definite ones), and its "
            "log-intensity is a quadratic in the pixel coordinates whose least-squares fit "
            "returns its parameters, so f is smooth and injective on R^d with a continuous "
            "closed-form inverse (proofs/lemma_injective_renderer.md)",
            "by construction",
        )
    if type(f) is MLPMixing:  # likewise: only the class whose construction is proved
        bad = [i for i, W in enumerate(f.weights) if A.rank(A.mat(W)) < W.shape[1]]
        if bad:
            return Verdict("A3", False, f"A3 fails: MLP layers {bad} lose rank", A.description)
        if f.activation != "smooth" and len(f.weights) > 1:
            # A3 as the proofs state it asks for a differentiable f; a kink is not covered
            return Verdict(
                "A3",
                False,
                f"A3 fails: the MLP's {f.activation} activation is not differentiable at 0 (the "
                "mixing is injective with a continuous inverse, but A3 asks for a differentiable "
                "f)",
                "by construction",
            )
        return Verdict(
            "A3",
            True,
            f"invertible MLP ({f.activation}): every layer has full column rank and a strictly "
            "increasing smooth activation, so the composition is injective and differentiable "
            "with a continuous inverse",
            "by construction, layer ranks " + A.description,
        )
    from .injectivity import check_mixing_injectivity

    rng = rng if rng is not None else np.random.default_rng(0)
    report = check_mixing_injectivity(model, rng, extra_points=_axis_extremes(model, rng))
    # the summary lines; every collision and rank-deficient point stays in report (evidence)
    summary = [r for r in report.reasons if not r.startswith(("collision:", "... and"))]
    first = []
    if report.collisions:
        # the closest pair is the most telling example (far pairs are usually saturation)
        c = min(report.collisions, key=lambda c: c.input_distance)
        axis = report.names[int(np.argmax(np.abs(c.e2 - c.e1)))]
        first = [
            f"e.g. two inputs {c.input_distance:.3g} apart, mostly along {axis!r}, give the same "
            f"output to relative {c.relative_output_distance:.1g}"
        ]
    if report.holds is False:
        return Verdict("A3", False, "A3 fails: " + "; ".join(summary + first), report.method,
                       evidence=report)  # fmt: skip
    return Verdict(
        "A3",
        None,
        "no defect found by the numeric search (injectivity of a mixing given only as a function "
        "is not proved): " + "; ".join(summary),
        report.method,
        evidence=report,
    )


def _axis_extremes(model: ConceptModel, rng: np.random.Generator, value: float = 10.0):
    """Probe points at the ends of every axis: an observational draw with one coordinate of
    ``(c, n)`` (or ``e`` under the identity read-out) set to ``+-value``. Bounded renderers
    saturate or degenerate there (a disc hides its orientation), which random probes rarely
    reach."""
    base = model.sample(None, 1, rng)
    identity = np.array_equal(model.readout, np.eye(model.d))
    z = base.e[0] if identity else np.concatenate([base.c[0], base.nuisance[0]])
    pts = np.repeat(z[None, :], 2 * model.d, axis=0)
    for j in range(model.d):
        pts[2 * j, j], pts[2 * j + 1, j] = value, -value
    return pts


def check_a4(model: ConceptModel, A: Arithmetic) -> Verdict:
    sem = model.sem
    if sem.mechanism != "linear":
        return Verdict(
            "A4", False, f"A4 fails: mechanism {sem.mechanism!r} is not linear", "by construction"
        )
    non_gauss = [n for n, fam in zip(sem.names, sem.noise_family) if fam != "gaussian"]
    if non_gauss:
        return Verdict(
            "A4",
            False,
            f"A4 fails: non-Gaussian noise for {non_gauss}",
            "by construction",
            tuple(non_gauss),
        )
    not_pd = []
    for name, S in zip(sem.names, sem.noise_cov):
        M = A.mat(S)
        k = S.shape[0]
        for i in range(1, k + 1):  # Sylvester's criterion: leading principal minors > 0
            sub = A.rows(A.cols(M, range(i)), range(i))
            if A.rank(sub) < i or _det_sign(sub, A) <= 0:
                not_pd.append(name)
                break
    if not_pd:
        return Verdict("A4", False, f"A4 fails: noise covariance not positive definite: {not_pd}",
                       A.description, tuple(not_pd))  # fmt: skip
    return Verdict(
        "A4",
        True,
        "linear Gaussian SEM over a DAG with positive definite noise covariances",
        A.description,
    )


def _det_sign(M, A: Arithmetic) -> int:
    if A.exact:
        d = M.det()
        return (d > 0) - (d < 0)
    return int(np.sign(np.linalg.det(A.to_float(M))))


def check_a5(model: ConceptModel, A: Arithmetic) -> Verdict:
    if model.nuisance_dim == 0:
        return Verdict("A5", True, "no nuisance dimensions", "by construction")
    return Verdict(
        "A5",
        True,
        f"nuisance n ~ N(0, {model.nuisance_scale:g}^2 I_{model.nuisance_dim}) drawn independently "
        "of c with the same law in every context",
        "by construction",
    )


def check_a6(model: ConceptModel, A: Arithmetic) -> Verdict:
    have = intervention_contexts(model, A)
    missing = [model.sem.names[j] for j in range(model.sem.m) if j not in have]
    if missing:
        names = ", ".join(repr(n) for n in missing)
        noun = "concept" if len(missing) == 1 else "concepts"
        return Verdict(
            "A6",
            False,
            f"A6 fails: {noun} {names} {'has' if len(missing) == 1 else 'have'} no hard "
            "single-concept Gaussian intervention context",
            "by inspection of the design",
            tuple(missing),
        )
    return Verdict(
        "A6",
        True,
        "every concept has a hard single-concept Gaussian context",
        "by inspection of the design",
    )


def check_a7(model: ConceptModel, A: Arithmetic) -> Verdict:
    sem = model.sem
    unchanged = {sem.names[j]: leaves_unchanged(sem, j, ctx, A)
                 for j, ctx in intervention_contexts(model, A).items()}  # fmt: skip
    identity = [name for name, same in unchanged.items() if same is True]
    undecided = [name for name, same in unchanged.items() if same is None]
    if identity:
        return Verdict(
            "A7",
            False,
            f"A7 fails: the intervention on {identity} leaves the law of its target given its "
            "parents unchanged (a source intervened with its own noise law)",
            A.description,
            tuple(identity),
        )
    if undecided:
        return Verdict(
            "A7",
            None,
            f"undecided for {undecided}: a source intervened with a noise law that float64 "
            "cannot tell from its own (equal within the tolerance but not bit for bit, or an "
            "ill-conditioned noise covariance); use exact arithmetic",
            A.description,
        )
    return Verdict("A7", True, "every intervention changes its target's mechanism", A.description)


def log_ratio_form(sem, j: int, ctx: Context, A: Arithmetic):
    """Lemma 1: ``(Psi_k - Psi_0, X)`` for the hard intervention ``ctx`` on concept ``j``, with
    ``X = [E^_j; A^_j]`` the homogeneous rows of its mechanism and ``Psi_k - Psi_0 = X^T W X``,
    ``W = diag(S~_j^{-1}, -S_j^{-1})``; ``(K + 1, K + 1)`` and ``(2 k_j, K + 1)``."""
    X, W = _log_ratio_parts(sem, j, ctx, A)
    return A.mul(A.mul(A.T(X), W), X), X


def _log_ratio_parts(sem, j: int, ctx: Context, A: Arithmetic):
    """``(X, W)`` of :func:`log_ratio_form`."""
    s = sem.intervene(ctx)
    sl = sem.slices[j]
    k, K = sl.stop - sl.start, sem.K
    E = np.zeros((k, K))
    E[:, sl] = np.eye(k)
    Eh = A.hstack(A.mat(E), A.scale(A.T(A.mat(s.noise_mean[sl])), -1))
    Ah = A.hstack(A.mat(E - sem.weights[sl]), A.scale(A.T(A.mat(sem.noise_mean[sl])), -1))
    X = A.vstack(Eh, Ah)
    Wt = A.inv(A.mat(s.noise_cov[j]))
    W0 = A.scale(A.inv(A.mat(sem.noise_cov[j])), -1)
    W = A.vstack(A.hstack(Wt, A.zeros(k, k)), A.hstack(A.zeros(k, k), W0))
    return X, W


def a7plus_ranks(sem, j: int, ctx: Context, A: Arithmetic, H=None) -> tuple[int, int]:
    """``(rank T_k, k_k + rank B_k)`` for the hard intervention ``ctx`` on concept ``j``: A7+
    holds for ``j`` when they are equal (the first is never larger, Lemma 3 (a)). ``H``: the
    standardised frame of a numeric arithmetic (:func:`~.gaussian.standard_frame`; ``None`` in
    exact arithmetic)."""
    K = sem.K
    X, W = _log_ratio_parts(sem, j, ctx, A)
    # Lemma 3: T_k = the first K rows of Delta_k = X^T W X (the log-det constant sits only
    # in the corner); A7+ is rank T_k = rank X_K = k_k + rank B_k, X_K the first K columns
    # of X. Both ranks are invariant under the affine change of coordinates H and under a
    # scaling of T_k's columns; numerically both are taken in standardised concepts, and
    # T_k with the columns of X H scaled to unit length, whose rounding error is then
    # measured against |X_K H| |W| |X H D^-1|.
    if H is None:
        got = A.rank(A.rows(A.mul(A.mul(A.T(X), W), X), range(K)))
        need = A.rank(A.cols(X, range(K)))
    else:
        XH = np.asarray(X) @ H
        norms = np.linalg.norm(XH, axis=0)
        XHn = XH / np.where(norms > 0, norms, 1.0)
        T = XH[:, :K].T @ np.asarray(W) @ XHn
        got = A.rank(T, spectral_norm(XH[:, :K]) * spectral_norm(W) * spectral_norm(XHn))
        need = A.rank(XH[:, :K])
    return got, need


def check_a7plus(model: ConceptModel, A: Arithmetic) -> Verdict:
    """A7+ via Lemma 1's closed form ``Psi_k - Psi_0 = X^T W X`` (see :func:`log_ratio_form`): a
    ``(2 k_k) x (K + 1)`` computation per concept, never a ``K x K`` inversion. (The tests compare
    the closed form with the difference of homogeneous precisions computed from covariances.)"""
    sem = model.sem
    if sem.mechanism != "linear":
        return Verdict("A7+", None, "defined for linear SEMs only (A4 fails)", "not evaluated")
    bad = []
    H = standard_frame(sem, A)  # numeric ranks in standardised units (None: exact)
    for j, ctx in intervention_contexts(model, A).items():
        got, need = a7plus_ranks(sem, j, ctx, A, H)
        if got < need:
            bad.append((sem.names[j], got, need))
    if bad:
        return Verdict(
            "A7+",
            False,
            "A7+ fails: the log-density ratio misses directions of the mechanism of "
            + ", ".join(f"'{n}' (rank {g} < {h})" for n, g, h in bad),
            A.description,
            tuple(n for n, _, _ in bad),
        )
    return Verdict(
        "A7+",
        True,
        "every intervention's log-density ratio has full rank on its mechanism",
        A.description,
    )


PREDICATES = {
    "A0": check_a0,
    "A1": check_a1,
    "A2": check_a2,
    "A4": check_a4,
    "A5": check_a5,
    "A6": check_a6,
    "A7": check_a7,
    "A7+": check_a7plus,
}


def evaluate(
    model: ConceptModel, A: Arithmetic, rng: np.random.Generator | None = None
) -> dict[str, Verdict]:
    """All predicates, in the order A0, A1 .. A7, A7+. A predicate whose computation fails in the
    arithmetic (:data:`~conceptid.identifiability.linalg.NUMERIC_FAILURES`: an overflow, an SVD
    that does not converge on a model of huge numbers) is undecided (``holds`` None), with the
    failure as its reason."""
    out = {}
    for name in ASSUMPTIONS:
        try:
            out[name] = check_a3(model, A, rng) if name == "A3" else PREDICATES[name](model, A)
        except NUMERIC_FAILURES as err:
            out[name] = Verdict(name, None, "undecided: " + ill_conditioned(err, A), A.description)
    return out
