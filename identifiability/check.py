"""``check(model)``: a verdict per concept and per assumption, with how it is known.

In the manner of StructuralIdentifiability.jl, every concept gets one of three answers:

- ``identifiable``: up to the class (an invertible affine map of the concept, or of the block),
  by a named theorem whose hypotheses were all verified (exactly or by construction; a numeric
  search that found no defect never counts as verification), A0 (the design contains the
  observational context) among them. When that theorem is not proved here end to end (Theorem S
  rests on a cited result), or proves less than plain identifiability (Theorem L for concept
  blocks: within the models that satisfy A7+), the verdict carries ``conditional`` saying so
  and prints as ``identifiable*``. Under linear mixing the identification algorithm is also run
  on the population moments (``confirmation``); if it fails, the verdict is ``not covered`` with
  the failure as the reason, never ``identifiable``;
- ``not identifiable``: a second model, built explicitly, has the same observed law in every
  training context of the design while this concept differs outside the class; the witness is
  *verified* against the user's model itself, from both models' own parameters, before the
  answer is given (held-out composed contexts are never observed, so they are not part of the
  claim; whether the two models agree there too is reported beside it);
- ``not covered``: some hypothesis fails (or could not be verified) and no witness is known; the
  failing assumption is named. The package never claims more than is proved.

Which theorem applies (proofs/theorem.md): Theorem L (linear mixing, blocks allowed, A7+; proved
here) or Theorem S (scalar concepts, nonlinear injective mixing; step (ii) cites Buchholz et al.
2023). Blocks under nonlinear mixing are open.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from conceptid.simulations.errors import UsageError
from conceptid.simulations.mixing import LinearMixing
from conceptid.simulations.model import ConceptModel

from .assumptions import ASSUMPTIONS, evaluate, intervention_contexts, observational_contexts
from .equivalence import EquivalenceClass, readout_distance
from .linalg import NUMERIC_FAILURES, arithmetic, check_rtol, ill_conditioned, spectral_norm
from .linear import IdentificationError, identify_linear, model_moments
from .witnesses import (
    Witness,
    WitnessError,
    identity_intervention,
    invariant_block_direction,
    isotropic_block_rotation,
    missing_intervention,
    no_observational_context,
    observational_only,
)

__all__ = ["ConceptVerdict", "Report", "check"]

IDENTIFIABLE, NOT_IDENTIFIABLE, NOT_COVERED = "identifiable", "not identifiable", "not covered"


@dataclass
class ConceptVerdict:
    """The answer for one concept."""

    concept: str
    status: str
    equivalence: str
    reason: str
    how: str
    witness: Witness | None = field(default=None, repr=False)
    #: for "identifiable": None when the theorem used is proved here, else what it rests on
    conditional: str | None = None

    def to_dict(self) -> dict:
        return {
            "concept": self.concept,
            "status": self.status,
            "conditional": self.conditional,
            "equivalence": self.equivalence,
            "reason": self.reason,
            "how": self.how,
            "witness": None if self.witness is None else self.witness.to_dict(),
        }


@dataclass
class Report:
    """Result of :func:`check`.

    Attributes
    ----------
    method : str
        ``exact`` or ``numeric``, with the arithmetic's description in ``arithmetic``.
    assumptions : dict of str -> Verdict
    concepts : list of ConceptVerdict
    theorem : str
        The theorem whose hypotheses were checked, or why none applies.
    confirmation : dict or None
        For linear mixing when the theorem applies: the identification algorithm run on the
        model's population moments, its distance to the class and ``ok`` (when not ok, no
        concept is called identifiable).
    seconds : float
    """

    model_summary: str
    method: str
    arithmetic: str
    assumptions: dict
    concepts: list
    theorem: str
    confirmation: dict | None
    seconds: float

    def status(self, concept: str) -> str:
        """The verdict on ``concept`` (its name).

        Raises
        ------
        UsageError
            ``concept`` is not one of the model's concept names (they are listed).
        """
        for v in self.concepts:
            if v.concept == concept:
                return v.status
        known = [v.concept for v in self.concepts]
        raise UsageError(f"unknown concept {concept!r}; the concepts are {known}")

    @property
    def identifiable(self) -> bool:
        """Every concept identifiable up to the class."""
        return all(v.status == IDENTIFIABLE for v in self.concepts)

    @property
    def witnesses(self) -> list[Witness]:
        seen, out = set(), []
        for v in self.concepts:
            if v.witness is not None and id(v.witness) not in seen:
                seen.add(id(v.witness))
                out.append(v.witness)
        return out

    def to_dict(self) -> dict:
        return {
            "model": self.model_summary,
            "method": self.method,
            "arithmetic": self.arithmetic,
            "theorem": self.theorem,
            "assumptions": {k: v.to_dict() for k, v in self.assumptions.items()},
            "concepts": [c.to_dict() for c in self.concepts],
            "confirmation": self.confirmation,
            "seconds": self.seconds,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, default=_json_default)

    def __str__(self) -> str:
        mark = {True: "holds", False: "FAILS", None: "unverified"}
        lines = [
            f"identifiability check: {self.model_summary}",
            f"method: {self.arithmetic}",
            f"theorem: {self.theorem}",
            "",
            "assumptions",
        ]
        for name in ASSUMPTIONS:
            v = self.assumptions[name]
            lines.append(f"  {name:<4} {mark[v.holds]:<11} {v.reason}")
            lines.append(f"  {'':<4} {'':<11} [{v.how}]")
        lines += ["", "concepts"]
        width = max(len(c.concept) for c in self.concepts)
        for c in self.concepts:
            status = c.status + ("*" if c.conditional else "")
            lines.append(f"  {c.concept:<{width}}  {status:<17} {c.equivalence or c.reason}")
            if c.equivalence:
                lines.append(f"  {'':<{width}}  {'':<17} {c.reason}")
        notes = sorted({c.conditional for c in self.concepts if c.conditional})
        for note in notes:
            lines.append(f"  * conditional: {note}")
        for w in self.witnesses:
            v = w.verification
            lines += ["", f"witness {w.kind} ({w.assumption}): {w.description}"]
            if v is not None:
                lines.append(
                    f"  verified: equal laws in {len(v.contexts)} training contexts = "
                    f"{v.equal_laws}, outside the class = {v.outside_class}, max discrepancy "
                    f"{v.max_discrepancy:.3g} [{v.how}]"
                )
                if v.held_out_equal is not None:
                    lines.append(
                        "  held-out contexts (not observed, not part of the claim): equal laws "
                        f"= {v.held_out_equal}"
                    )
        if self.confirmation:
            c = self.confirmation
            lines += ["", f"confirmation: {c['description']}"]
            if np.isfinite(c["max_distance"]):
                lines.append(
                    f"  max distance of the recovered read-out to the class: "
                    f"{c['max_distance']:.3g}"
                )
        lines.append(f"\n({self.seconds:.2f} s)")
        return "\n".join(lines)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def _summary(model: ConceptModel) -> str:
    sem = model.sem
    blocks = "scalar" if all(k == 1 for k in sem.block_sizes) else f"blocks {sem.block_sizes}"
    return (
        f"{sem.m} concepts ({blocks}), {len(sem.graph.edges)} edges, {sem.mechanism} mechanism, "
        f"nuisance dim {model.nuisance_dim}, {model.mixing.kind} mixing, "
        f"{len(model.contexts)} training contexts"
    )


def check(
    model: ConceptModel,
    method: str = "exact",
    *,
    rng: np.random.Generator | None = None,
    rtol: float = 1e-8,
    confirm: bool | None = None,
) -> Report:
    """Decide identifiability of every concept of ``model``.

    Parameters
    ----------
    model : ConceptModel
    method : {"exact", "numeric"}
        Arithmetic of every rank and equality decision (A3 for a mixing given only as a function
        is always numeric, and then never counts as verified).
    rng : numpy.random.Generator, optional
        For the numeric injectivity search (default: seeded with 0, reproducible).
    rtol : float
        Relative tolerance of the numeric arithmetic, at least ``1e-14`` and below ``1e-3``
        (``linalg.RTOL_FLOOR``, ``linalg.RTOL_MAX``): below the floor float64's own rounding
        would decide the ranks (a rank-deficient A7+ form counts as full rank at ``1e-17``), so
        such a tolerance is refused rather than trusted; a rank decision on an ``(M, N)`` matrix
        also never uses less than numpy's ``max(M, N) eps``. The exact method does not use it.
    confirm : bool or None
        For linear mixing, also run the identification algorithm on the population moments of
        the theorem's contexts. The verdict rests on the theorem; but if this run fails, no
        concept is called identifiable (they are ``not covered``, with the failure as the
        reason). ``None`` (default): only when ``K <= 20``, since for large models it costs more
        than the check itself.

    Returns
    -------
    Report
        A computation that the arithmetic cannot carry out on this model (finite parameters so
        large that float64 overflows, an SVD that does not converge, an exact rational too large
        to report as a float) never raises: the assumption it decides is *unverified*
        (``holds`` None, the reason says "numerically ill-conditioned" and suggests exact
        arithmetic), the witness it verifies is not used, or the confirming run fails; the
        concepts concerned are then ``not covered``, never ``identifiable``. Likewise two
        Gaussian laws that float64 cannot tell apart (an ill-conditioned covariance) are never
        called equal: a numeric witness on them is not verified, and numeric A7 is undecided.

    Raises
    ------
    TypeError
        If ``model`` is not a :class:`ConceptModel`.
    UsageError
        If ``method``, ``rng``, ``rtol`` or ``confirm`` is not one of the values above (``rtol``
        out of ``[1e-14, 1e-3)`` included).
    """
    rtol = _check_arguments(model, rng, rtol, confirm)
    t0 = time.perf_counter()
    A = arithmetic(method, rtol)
    # float64 overflow, underflow and 0/0 on extreme parameters are decided above (unverified,
    # not verified, undecided), not warnings for the user to read
    with np.errstate(all="ignore"):
        verdicts = evaluate(model, A, rng)
        theorem = _select_theorem(model, verdicts, A)
        witnessed = _witnesses(model, verdicts, theorem, A)
        if confirm is None:
            confirm = model.sem.K <= 20
        confirmed = confirm and theorem.linear and theorem.all_hold
        confirmation = _confirm(model, A) if confirmed else None
    equivalence = EquivalenceClass(model.sem.block_sizes).description
    concepts = [
        _concept_verdict(name, witnessed.get(name), theorem, confirmation, equivalence, A)
        for name in model.sem.names
    ]
    return Report(
        model_summary=_summary(model),
        method=method,
        arithmetic=A.description,
        assumptions=verdicts,
        concepts=concepts,
        theorem=theorem.text if theorem.all_hold else theorem.text + " -- hypotheses not all met",
        confirmation=confirmation,
        seconds=time.perf_counter() - t0,
    )


def _check_arguments(model, rng, rtol, confirm) -> float:
    """:func:`check`'s arguments, refused as its docstring says; ``rtol`` as a float."""
    if not isinstance(model, ConceptModel):
        raise TypeError(f"check() takes a ConceptModel, got {type(model).__name__}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise UsageError(f"rng must be a numpy.random.Generator or None, got {rng!r}")
    if confirm is not None and not isinstance(confirm, bool | np.bool_):
        raise UsageError(f"confirm must be True, False or None, got {confirm!r}")
    return check_rtol(rtol)


# -- theorem selection ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Theorem:
    """The theorem that applies to a model, and whether its hypotheses were all verified."""

    text: str
    linear: bool  # LinearMixing itself (not a subclass, see check_a3): Theorem L
    scalar: bool  # every concept scalar: Theorem S under nonlinear mixing
    needed: tuple[str, ...]  # the assumptions the theorem needs
    all_hold: bool  # every needed assumption verified (and Lemma 5's genericity for Theorem S)
    failing: tuple[str, ...]  # assumptions that fail
    unverified: tuple[str, ...]  # assumptions neither verified nor refuted

    @property
    def covered(self) -> bool:
        """A theorem (L or S) applies to the model's kind of mixing and concepts."""
        return self.linear or self.scalar

    @property
    def name(self) -> str:
        return self.text.split(" (")[0]


THEOREM_L = "Theorem L (linear mixing; proved in proofs/lemma_linear_identification.md)"
THEOREM_S = (
    "Theorem S (scalar concepts, injective mixing; step (i) proved in "
    "proofs/lemma_nuisance_fibres.md, step (ii) rests on Buchholz et al. 2023)"
)
NO_THEOREM = "none: concept blocks under nonlinear mixing are an open case (proofs/theorem.md)"
THEOREM_L_BLOCKS_CONDITIONAL = (
    "Theorem L assumes A7+ of both models compared: for a model with concept blocks this is "
    "identifiability, of every concept, within the models that satisfy A7+ (for a model of "
    "scalar concepts A7+ is A7, Lemma 3, and no star); whether a model satisfying A7+ can "
    "share its laws with one violating it is open; see proofs/theorem.md"
)
THEOREM_S_CONDITIONAL = (
    "Theorem S rests on a published result (Buchholz et al. 2023, step (ii)) "
    "whose non-degeneracy conditions were not all verified here, and on the "
    "regularity condition (R) for the models compared; see proofs/theorem.md"
)


def _select_theorem(model: ConceptModel, verdicts: dict, A) -> _Theorem:
    """Which theorem applies, and whether all its hypotheses hold (A0: every proof uses the
    observational law); for Theorem S also Lemma 5's genericity at a point."""
    sem = model.sem
    scalar = all(k == 1 for k in sem.block_sizes)
    linear = type(model.mixing) is LinearMixing  # not a subclass (see check_a3)
    needed = ("A0", "A1", "A2", "A3", "A4", "A5", "A6", "A7") + (() if scalar else ("A7+",))
    all_hold = all(verdicts[n].holds is True for n in needed)
    text = THEOREM_L if linear else THEOREM_S if scalar else NO_THEOREM
    if all_hold and scalar and not linear:
        try:
            generic, how = _genericity(model, A)
        except NUMERIC_FAILURES as err:
            generic, how = False, "not decided: " + ill_conditioned(err, A)
        text += f"; genericity of Lemma 5: {how}"
        all_hold = all_hold and generic
    return _Theorem(
        text=text,
        linear=linear,
        scalar=scalar,
        needed=needed,
        all_hold=all_hold,
        failing=tuple(n for n in ASSUMPTIONS if verdicts[n].holds is False),
        unverified=tuple(n for n in ASSUMPTIONS if verdicts[n].holds is None),
    )


# -- witnesses ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Design:
    """What the witness rules look at."""

    model: ConceptModel
    verdicts: dict
    theorem: _Theorem


@dataclass(frozen=True)
class WitnessRule:
    """A failure that a witness builder answers: ``build(model)`` once, or
    ``build(model, concept)`` for each concept that ``concepts`` names (``None``: once)."""

    answers: str  #: the assumption failure (the witness's ``assumption``)
    kind: str  #: the witness's kind (N1 ... N7, proofs/necessity.md)
    build: Callable[..., Witness]
    concepts: Callable[[_Design], Sequence[str | None]]

    @property
    def verdict(self) -> str:
        """The reason a concept with this rule's verified witness is given."""
        return f"{self.answers}: verified witness {self.kind}"


def _only_observational(d: _Design) -> list[None]:
    """Once, when every training context is observational (m >= 2 scalar concepts)."""
    ctxs = d.model.contexts
    every_obs = bool(ctxs) and not [c for c in ctxs if not c.is_observational]
    return [None] if every_obs and d.model.sem.m >= 2 and d.theorem.scalar else []


def _without_observational(d: _Design) -> list[str]:
    """Every concept, when no training context is observational."""
    return [] if observational_contexts(d.model) else list(d.model.sem.names)


def _failing(assumption: str) -> Callable[[_Design], list[str]]:
    def concepts(d: _Design) -> list[str]:
        return list(d.verdicts[assumption].concepts)

    concepts.__doc__ = f"The concepts for which {assumption} fails."
    return concepts


def _nonlinear_blocks(d: _Design) -> list[str]:
    """The blocks (k > 1) of a model under nonlinear mixing (the open case)."""
    if d.theorem.linear or d.theorem.scalar:
        return []
    sem = d.model.sem
    return [name for j, name in enumerate(sem.names) if sem.block_sizes[j] > 1]


#: tried in this order (for a concept, the first verified witness counts), when A4 and A5 hold
WITNESS_RULES: tuple[WitnessRule, ...] = (
    WitnessRule("A6", "N4", observational_only, _only_observational),
    WitnessRule("A0", "N7", no_observational_context, _without_observational),
    WitnessRule("A6", "N1", missing_intervention, _failing("A6")),
    WitnessRule("A7", "N2", identity_intervention, _failing("A7")),
    WitnessRule("A7+", "N6", invariant_block_direction, _failing("A7+")),
    WitnessRule(
        "blocks under nonlinear mixing (open case)",
        "N5",
        isotropic_block_rotation,
        _nonlinear_blocks,
    ),
)


def _witnesses(model: ConceptModel, verdicts: dict, theorem: _Theorem, A) -> dict:
    """Concept name -> ``(witness, rule)``: the first verified witness of :data:`WITNESS_RULES`
    that moves the concept out of the class (a witness speaks for every concept it moves)."""
    found: dict[str, tuple[Witness, WitnessRule]] = {}
    if not (verdicts["A4"].holds and verdicts["A5"].holds):
        return found
    design = _Design(model, verdicts, theorem)
    for rule in WITNESS_RULES:
        for name in rule.concepts(design):
            if name in found:
                continue
            w = _verified(rule.build, model, *(() if name is None else (name,)), A=A)
            for moved in w.concepts if w is not None else ():
                found.setdefault(moved, (w, rule))
    return found


def _verified(build, *args, A) -> Witness | None:
    """``build(*args)`` if it builds and its verification holds, else None (also when either
    fails in the arithmetic: a witness that cannot be verified is not one)."""
    try:
        w = build(*args)
        w.verify(A)
    except (WitnessError, *NUMERIC_FAILURES):
        return None
    return w if w.verification.ok else None


# -- verdict assembly ----------------------------------------------------------------------------


def _concept_verdict(
    name: str, witnessed, theorem: _Theorem, confirmation, equivalence: str, A
) -> ConceptVerdict:
    """The answer for one concept, from its witness (if any), the theorem and the confirming
    identification run; ``equivalence``: the class's description."""
    if witnessed is not None:
        w, rule = witnessed
        return ConceptVerdict(name, NOT_IDENTIFIABLE, "", rule.verdict, w.verification.how, w)
    proved = theorem.all_hold and theorem.covered
    if proved and confirmation and not confirmation["ok"]:
        # the theorem's hypotheses were verified but its algorithm did not recover the class:
        # a defect somewhere (report it); never answer "identifiable" against the evidence
        reason = "the confirming identification run failed: " + confirmation["description"]
        return ConceptVerdict(name, NOT_COVERED, "", reason, A.description)
    if proved:
        return ConceptVerdict(
            name,
            IDENTIFIABLE,
            equivalence,
            theorem.name + ": all hypotheses verified",
            A.description,
            None,
            THEOREM_S_CONDITIONAL
            if not theorem.linear
            else THEOREM_L_BLOCKS_CONDITIONAL
            if not theorem.scalar
            else None,
        )
    why = [
        *theorem.failing,
        *(f"{n} unverified" for n in theorem.unverified if n in theorem.needed),
    ]
    if not why:  # every assumption holds: the theorem's own side condition failed
        why = [theorem.text.split("; ")[-1]]
    if theorem.all_hold and not theorem.covered:
        reason = "blocks under nonlinear mixing: open (no theorem, no witness)"
    else:
        reason = "hypotheses fail: " + ", ".join(why) + "; no witness known"
    return ConceptVerdict(name, NOT_COVERED, "", reason, A.description)


#: the points Lemma 5's genericity is tried at first: ``start + step i`` for concept ``i``
GENERICITY_STARTS = ((0.5, 0.25), (-0.75, 0.375), (1.25, -0.625))
#: then this many seeded random points (dyadic rationals, exact in float64 too)
GENERICITY_RANDOM_POINTS = 8
#: in exact arithmetic, the rank as polynomials is decided for up to this many concept
#: coordinates when every point failed (measured: 0.24 s at 4, 51 s at 5 on a dependent row)
GENERICITY_SYMBOLIC_MAX_K = 4


def _genericity(model: ConceptModel, A) -> tuple[bool, str]:
    """Lemma 5's condition: the Jacobian of the log-ratio map Q = (q_1..q_m) of the concepts
    has rank m at some point (then Q's fibre through that point is discrete; for polynomial
    maps full rank at one point means full rank almost everywhere). Its rows are affine in the
    concepts, so full rank at any one point proves it. Tried at a few fixed points with
    distinct rational coordinates (:data:`GENERICITY_STARTS`), then at seeded random ones (a
    single point can sit on the measure-zero set where the rank drops: for a -> b with do(b) ~
    N(0, 3), at c = (1/2, 3/4)). Where every point fails, exact arithmetic decides the rank
    over the rational functions of the concepts (up to :data:`GENERICITY_SYMBOLIC_MAX_K`
    coordinates): below m, the condition fails everywhere; numeric arithmetic, or more
    coordinates, leave it undecided (not verified, so no verdict rests on it)."""
    from .gaussian import concept_law, congruence, homogeneous_precision, standard_frame

    sem = model.sem
    K = sem.K
    # numerically, in standardised concepts (the rank does not depend on the coordinates), each
    # row (one concept's log-ratio gradient; the rank does not depend on their scales either)
    # divided by the size of the two precisions it is the difference of
    H = standard_frame(sem, A)
    ctxs = [c for _, c in sorted(intervention_contexts(model, A).items())]
    psi0, *psis = (
        congruence(homogeneous_precision(*concept_law(sem, ctx, A), A), H, A)
        for ctx in (None, *ctxs)
    )
    deltas = [A.sub(psi, psi0) for psi in psis]
    sizes = None
    if H is not None:
        top = [spectral_norm(A.to_float(p)[:K]) for p in (psi0, *psis)]
        sizes = [top[0] + t for t in top[1:]]
    rng = np.random.default_rng(0)
    points = [[start + step * i for i in range(K)] for start, step in GENERICITY_STARTS]
    points += [list(rng.integers(-256, 257, K) / 64.0) for _ in range(GENERICITY_RANDOM_POINTS)]
    best = 0
    for i, coords in enumerate(points):
        values = [*coords, 1.0]
        point = A.T(A.mat([values]))
        rows = [A.T(A.rows(A.mul(delta, point), range(K))) for delta in deltas]
        if sizes is not None:
            rows = [r / (size * np.linalg.norm(values)) for r, size in zip(rows, sizes)]
        J = A.vstack(*rows)
        best = max(best, A.rank(J, None if sizes is None else 1.0))
        if best == sem.m:
            where = "a fixed point" if i < len(GENERICITY_STARTS) else "a random point"
            return True, f"rank of the log-ratio Jacobian at {where} = {best} (needs {sem.m})"
    tried = f"rank of the log-ratio Jacobian at most {best} at {len(points)} points"
    if not A.exact or K > GENERICITY_SYMBOLIC_MAX_K:
        return False, f"{tried} (needs {sem.m}); not decided as polynomials"
    generic = _symbolic_rank(deltas, K)
    if generic == sem.m:  # the points all sat where a nonzero minor vanishes
        return True, f"{tried}, {generic} as polynomials in the concepts (needs {sem.m})"
    return False, (f"rank of the log-ratio Jacobian {generic} as polynomials in the concepts "
                   f"(needs {sem.m}): below it at every point")  # fmt: skip


def _symbolic_rank(deltas, K: int) -> int:
    """The rank of the log-ratio Jacobian over the rational functions of the concepts: row j is
    ``(Delta_j [c; 1])[:K]``, affine in the symbols ``c``; exact (its generic rank)."""
    import sympy
    from sympy.polys.matrices import DomainMatrix

    c = sympy.symbols(f"c0:{K}")
    rows = []
    for delta in deltas:
        D = delta.to_Matrix()
        rows.append([sum(D[k, i] * c[i] for i in range(K)) + D[k, K] for k in range(K)])
    field = sympy.QQ.frac_field(*c)
    return DomainMatrix.from_list_sympy(len(rows), K, rows).convert_to(field).rank()


def _confirm(model: ConceptModel, A) -> dict:
    """Run the peeling identification on the population moments of the theorem's contexts (the
    observational one and each concept's A6 context; the design's other contexts only add
    constraints, and the algorithm does not read them). ``ok`` is False when it fails, when the
    recovered read-out is farther from the class than the arithmetic's tolerance (exact: 1e-9,
    numeric: 1e-6), or, in exact arithmetic, when the graph is not recovered."""
    from dataclasses import replace

    have = intervention_contexts(model, A)
    used = (observational_contexts(model)[0], *(have[j] for j in range(model.sem.m)))
    try:
        moments, targets = model_moments(replace(model, contexts=used, held_out=()), A)
        res = identify_linear(moments, targets, model.sem.block_sizes, A, names=model.sem.names)
        dist = float(np.max(readout_distance(res.readout, model)))
    except IdentificationError as err:
        return {
            "ok": False,
            "description": f"identification failed: {err}",
            "max_distance": float("inf"),
        }
    except NUMERIC_FAILURES as err:
        return {
            "ok": False,
            "description": "identification could not be run: " + ill_conditioned(err, A),
            "max_distance": float("inf"),
        }
    # the graph Theorem L identifies is the support of B (pa(k) = {p : B_kp != 0}); a declared
    # edge with zero weights is not part of it
    sem = model.sem
    support = np.array([[i != j and bool(np.any(sem.weights[sem.slices[j], sem.slices[i]]))
                         for j in range(sem.m)] for i in range(sem.m)])  # fmt: skip
    graph_ok = bool(np.array_equal(res.graph.adjacency, support))
    tol = 1e-9 if A.exact else 1e-6
    ok = dist <= tol and (graph_ok or not A.exact)
    order = [model.sem.names[j] for j in res.order]
    if ok:
        what = "recovered every concept up to the class"
    elif dist > tol:
        what = f"did NOT recover the class (distance {dist:.3g} > {tol:g})"
    else:
        what = "recovered the read-out but NOT the graph"
    return {
        "ok": ok,
        "description": (
            f"identification from population moments (peeling, contexts "
            f"{[c.name for c in used]}) {what}; graph recovered: {graph_ok}; order {order}"
        ),
        "max_distance": dist,
        "graph_recovered": graph_ok,
        "order": order,
    }
