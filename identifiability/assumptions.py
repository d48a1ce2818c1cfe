"""Predicates for the assumptions A1-A7 of DESIGN.md section 1, and A7+ (proofs/theorem.md).

Each predicate takes a :class:`~simulations.model.ConceptModel` and an
:class:`~identifiability.linalg.Arithmetic` and returns a :class:`Verdict`: whether the assumption
holds (``True``/``False``, or ``None`` when a numeric search found no defect but cannot prove
absence), why, how it was decided, and which concepts it fails for.

A7+ (non-degenerate interventions, block form): for every intervened concept ``k`` the log-density
ratio between its context and the observational one uses every direction its mechanism could,
``rank(Psi_k - Psi_0) = dim span(E^_k, A^_k)`` (Lemma 3). For scalar concepts A7+ is equivalent
to A7; for blocks it is strictly stronger, and the linear identification theorem needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulations.interventions import Context, Hard
from simulations.mixing import LinearMixing, MLPMixing
from simulations.model import ConceptModel

from .gaussian import concept_law, homogeneous_precision
from .linalg import Arithmetic

__all__ = ["ASSUMPTIONS", "Verdict", "evaluate", "intervention_contexts"]

ASSUMPTIONS = ("A1", "A2", "A3", "A4", "A5", "A6", "A7", "A7+")

DESCRIPTIONS = {
    "A1": "linear representation: c = C e in every context, with the same C",
    "A2": "linear independence: rank C = K",
    "A3": "mixing f injective and differentiable, continuous inverse on its image",
    "A4": "concept SEM: linear Gaussian over a DAG, positive definite noise covariances",
    "A5": "invariant nuisance: n independent of c, same law in every context, positive density",
    "A6": "a hard single-concept intervention context for every concept, target known",
    "A7": "each intervention changes the law of its target given its parents",
    "A7+": "each intervention's log-density ratio uses every direction of its mechanism (blocks)",
}


@dataclass(frozen=True)
class Verdict:
    """The answer of one predicate.

    Attributes
    ----------
    assumption : str
        ``"A1"`` .. ``"A7"`` or ``"A7+"``.
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


def intervention_contexts(model: ConceptModel) -> dict[int, Context]:
    """Concept index -> its first training context that is a single hard intervention on it."""
    out: dict[int, Context] = {}
    for ctx in model.contexts:
        if len(ctx) == 1 and isinstance(ctx.interventions[0], Hard):
            j = model.sem.resolve(ctx.targets[0])
            out.setdefault(j, ctx)
    return out


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
    if isinstance(f, LinearMixing):
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
    if isinstance(f, MLPMixing):
        bad = [i for i, W in enumerate(f.weights) if A.rank(A.mat(W)) < W.shape[1]]
        if not bad:
            return Verdict(
                "A3",
                True,
                f"invertible MLP ({f.activation}): every layer has full column rank and a strictly "
                "increasing activation, so the composition is injective with a continuous inverse",
                "by construction, layer ranks " + A.description,
            )
        return Verdict("A3", False, f"A3 fails: MLP layers {bad} lose rank", A.description)
    from .injectivity import check_mixing_injectivity

    report = check_mixing_injectivity(model, rng if rng is not None else np.random.default_rng(0))
    if report.holds is False:
        return Verdict(
            "A3",
            False,
            "A3 fails: " + "; ".join(report.reasons),
            report.method,
            evidence=report,
        )
    return Verdict(
        "A3",
        None,
        "no defect found by the numeric search (injectivity of a mixing given only as a function "
        "is not proved): " + "; ".join(report.reasons),
        report.method,
        evidence=report,
    )


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
    have = intervention_contexts(model)
    missing = [model.sem.names[j] for j in range(model.sem.m) if j not in have]
    if missing:
        names = ", ".join(repr(n) for n in missing)
        noun = "concept" if len(missing) == 1 else "concepts"
        return Verdict(
            "A6",
            False,
            f"A6 fails: {noun} {names} {'has' if len(missing) == 1 else 'have'} no hard "
            "single-concept intervention context",
            "by inspection of the design",
            tuple(missing),
        )
    return Verdict(
        "A6", True, "every concept has a hard single-concept context", "by inspection of the design"
    )


def check_a7(model: ConceptModel, A: Arithmetic) -> Verdict:
    sem = model.sem
    identity = []
    for j, ctx in intervention_contexts(model).items():
        s = sem.intervene(ctx)
        sl = sem.slices[j]
        rows_obs = A.mat(sem.weights[sl])
        same_mean = A.equal(A.mat(sem.noise_mean[sl]), A.mat(s.noise_mean[sl]))
        same_cov = A.equal(A.mat(sem.noise_cov[j]), A.mat(s.noise_cov[j]))
        if A.is_zero(rows_obs) and same_mean and same_cov:
            identity.append(sem.names[j])
    if identity:
        return Verdict(
            "A7",
            False,
            f"A7 fails: the intervention on {identity} leaves the law of its target given its "
            "parents unchanged (a source intervened with its own noise law)",
            A.description,
            tuple(identity),
        )
    return Verdict("A7", True, "every intervention changes its target's mechanism", A.description)


def check_a7plus(model: ConceptModel, A: Arithmetic) -> Verdict:
    sem = model.sem
    if model.sem.mechanism != "linear":
        return Verdict("A7+", None, "defined for linear SEMs only (A4 fails)", "not evaluated")
    K = sem.K
    mu0, cov0 = concept_law(sem, None, A)
    psi0 = homogeneous_precision(mu0, cov0, A)
    bad = []
    for j, ctx in intervention_contexts(model).items():
        s = sem.intervene(ctx)
        muk, covk = concept_law(sem, ctx, A)
        delta = A.sub(homogeneous_precision(muk, covk, A), psi0)
        sl = sem.slices[j]
        E = np.zeros((sl.stop - sl.start, K + 1))
        E[:, sl] = np.eye(sl.stop - sl.start)
        Ah = E.copy()
        Ah[:, :K] -= sem.weights[sl]
        # homogeneous rows: [E_k | -mu~_k] and [A_k | -mu_k], built in the arithmetic
        Eh = A.hstack(A.mat(E[:, :K]), A.scale(A.T(A.mat(s.noise_mean[sl])), -1))
        Ahh = A.hstack(A.mat(Ah[:, :K]), A.scale(A.T(A.mat(sem.noise_mean[sl])), -1))
        need = A.rank(A.vstack(Eh, Ahh))
        got = A.rank(delta)
        if got < need:
            bad.append(f"{sem.names[j]} (rank {got} < {need})")
    if bad:
        return Verdict(
            "A7+",
            False,
            "A7+ fails: the log-density ratio misses directions of the mechanism of "
            + ", ".join(bad),
            A.description,
            tuple(b.split(" ")[0] for b in bad),
        )
    return Verdict(
        "A7+",
        True,
        "every intervention's log-density ratio has full rank on its mechanism",
        A.description,
    )


PREDICATES = {
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
    """All predicates, in the order A1 .. A7, A7+."""
    out = {}
    for name in ASSUMPTIONS:
        out[name] = check_a3(model, A, rng) if name == "A3" else PREDICATES[name](model, A)
    return out
