"""Regression tests for the soundness hunt on ``check()`` (a hostile review's findings).

Each test fails on the code before its fix. Where a law is compared, it is computed here, from the
models' own float parameters read as exact rationals (``fractions`` / ``sympy``), sharing no code
with ``conceptid.identifiability.gaussian``.
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from _independent import reverify_linear
from hypothesis import HealthCheck, given, settings

from conceptid.identifiability import (
    NOT_COVERED,
    NOT_IDENTIFIABLE,
    Exact,
    Numeric,
    check,
    evaluate,
    missing_intervention,
)
from conceptid.identifiability.gaussian import embedding_law
from conceptid.identifiability.strategies import models
from conceptid.simulations import DAG, SEM, ConceptModel, Context, Hard, LinearMixing, Soft
from conceptid.simulations.errors import UsageError
from conceptid.simulations.interventions import as_covariance

# -- exact laws, computed independently ---------------------------------------------------------


def _q(x) -> sp.Rational:
    f = Fraction(float(x))
    return sp.Rational(f.numerator, f.denominator)


def _qmat(M) -> sp.Matrix:
    M = np.atleast_2d(np.asarray(M, dtype=float))
    return sp.Matrix(M.shape[0], M.shape[1], lambda r, c: _q(M[r, c]))


def exact_law(model: ConceptModel, ctx: Context):
    """Exact mean and covariance of ``e = T^{-1} [c; n]`` under ``ctx``: the intervened SEM's
    stored floats (what the sampler draws from) read as rationals, ``c = (I - B)^{-1} (mu +
    eps)`` with the block-diagonal noise covariance as stored."""
    s = model.sem.intervene(ctx)
    K, d = s.K, model.d
    B = _qmat(s.weights)
    mu = _qmat(np.asarray(s.noise_mean).reshape(-1, 1))
    S = sp.zeros(K, K)
    for sl, Sj in zip(s.slices, s.noise_cov):
        S[sl.start : sl.stop, sl.start : sl.stop] = _qmat(Sj)
    M = (sp.eye(K) - B).inv()
    mean, cov = sp.zeros(d, 1), sp.zeros(d, d)
    mean[:K, 0] = M * mu
    cov[:K, :K] = M * S * M.T
    for r in range(K, d):
        cov[r, r] = _q(model.nuisance_scale) ** 2
    Ti = _qmat(model.readout).inv()
    return Ti * mean, Ti * cov * Ti.T


# -- 1. an almost symmetric covariance is stored symmetrised ------------------------------------

DELTA = 2.0**-36  # within the 1e-10 relative asymmetry that as_covariance accepts
ASYM = np.array([[1.0, DELTA], [0.0, 1.0]])
SYM = np.eye(2)  # its symmetrisation: the lower triangle, which the sampler reads, mirrored


def _p_to_block(cov_b) -> ConceptModel:
    """``p -> b`` (a 2-d block, weights (1, 1)), a nuisance; ``do(p)`` and ``do(b)`` with the
    intervention covariance ``cov_b`` on ``b`` (the report's N6 case for the identity)."""
    B = np.zeros((3, 3))
    B[1:, 0] = 1.0
    sem = SEM(DAG(np.array([[0, 1], [0, 0]]), ("p", "b")), B, np.zeros(3),
              (np.eye(1), np.eye(2)), (1, 2))  # fmt: skip
    ctxs = (Context.observational(), Context((Hard("p", 1.0, 2.0),), "do_p"),
            Context((Hard("b", [0.0, 0.0], cov_b),), "do_b"))  # fmt: skip
    return ConceptModel(sem, LinearMixing(np.eye(4)), None, 1, 1.0, ctxs)


def test_an_almost_symmetric_covariance_is_stored_symmetrised():
    got = as_covariance(ASYM, 2, "cov")
    assert np.array_equal(got, got.T) and np.array_equal(got, SYM)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 4))
    S = X @ X.T + np.eye(4)
    S = np.triu(S) + np.triu(S, 1).T  # symmetric bit for bit: kept bit for bit
    assert np.array_equal(as_covariance(S, 4, "cov"), S)
    assert as_covariance(S, 4, "cov") is not S  # a copy: the caller's array stays writable


def test_check_judges_the_law_that_the_model_generates():
    # found by review: the model kept [[1, 2^-36], [0, 1]] as given; the sampler read its lower
    # triangle (the identity, the N6 case) while exact check() read the whole matrix and called
    # b identifiable, for data that the N6 witness reproduces
    model, twin = _p_to_block(ASYM), _p_to_block(SYM)
    ctx = model.contexts[2]
    # the one matrix: the sampler, the population moments and the JSON form all use SYM, the
    # lower triangle mirrored
    draw = model.sample("do_b", 64, np.random.default_rng(5)).c
    assert np.array_equal(draw, twin.sample("do_b", 64, np.random.default_rng(5)).c)
    # SYM is the identity: the data are those the asymmetric model always generated
    _, cov = model.population_moments("do_b")
    assert cov[1, 2] == cov[2, 1] == 0.0
    again = ConceptModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert np.array_equal(again.sem.intervene(again.contexts[2]).noise_cov[1], SYM)
    # the checker's law is the generated one, exactly
    mine = exact_law(model, ctx)
    ours = embedding_law(model, ctx, Exact())
    for a, b in zip(mine, ours):
        assert sp.Matrix(b.to_Matrix()) == a
    assert mine[1][1, 2] == mine[1][2, 1] == 0


def _a7plus_det(cov_b) -> sp.Rational:
    """det of ``T_b`` restricted to the mechanism of ``b`` (coordinates ``(p, b1, b2)``):
    ``E^T S~^{-1} E - A^T S^{-1} A``, ``S = I``, ``A = E - B_b``, means zero; A7+ holds for
    ``b`` exactly when it is nonzero (rank 3 = k_b + rank B_b)."""
    E = sp.Matrix([[0, 1, 0], [0, 0, 1]])
    A = E - sp.Matrix([[1, 0, 0], [1, 0, 0]])
    return sp.simplify((E.T * _qmat(cov_b).inv() * E - A.T * A).det())


def test_the_verdict_follows_the_generated_law():
    """The asymmetric model generates the identity's law under ``do_b`` (its lower triangle), for
    which A7+ fails exactly (the N6 case): exact check() now says so, with a witness that
    reproduces its law, where it used to call ``b`` identifiable from the ignored upper
    triangle. A covariance whose lower triangle moves off the identity satisfies A7+."""
    assert _a7plus_det(np.eye(2)) == 0  # the N6 case
    assert _a7plus_det(np.array([[1.0, DELTA], [DELTA, 1.0]])) != 0
    report = check(_p_to_block(ASYM), "exact")
    assert report.assumptions["A7+"].holds is False
    assert report.status("b") == NOT_IDENTIFIABLE
    witness = next(w for w in report.witnesses if w.kind == "N6")
    assert witness.verify(Exact()).equal_laws
    asym, eye = _p_to_block(ASYM), _p_to_block(np.eye(2))
    assert all(exact_law(asym, c) == exact_law(eye, c) for c in asym.contexts)
    lower = _p_to_block(np.array([[1.0, 0.0], [DELTA, 1.0]]))  # the sampler reads this one
    assert check(lower, "exact").assumptions["A7+"].holds is True


# -- 2. a tolerance below float64's rounding is refused -----------------------------------------


def test_rtol_below_float_rounding_is_refused():
    # found by review: rtol=1e-17 counted rounding error as rank, and the N6 model was called
    # identifiable*
    model = _p_to_block(np.eye(2))
    for rtol in (1e-17, 1e-15, 1e-300, 1e-3, 0.5):
        with pytest.raises(UsageError, match="rtol must be at least"):
            check(model, "numeric", rtol=rtol, confirm=False)
        with pytest.raises(UsageError, match="rtol must be at least"):
            Numeric(rtol)
    lowest = check(model, "numeric", rtol=1e-14, confirm=False)
    assert lowest.status("b") == NOT_IDENTIFIABLE == check(model, "exact").status("b")


def test_a_rank_decision_never_goes_below_numpys_floor():
    # in a 600 x 600 matrix, float64 resolves singular values to about 600 eps = 1.3e-13 of the
    # largest (numpy's matrix_rank); one of 5e-14 is below that, even at rtol = 1e-14
    M = np.zeros((600, 600))
    M[0, 0], M[1, 1] = 1.0, 5e-14
    assert Numeric(1e-14).rank(M) == np.linalg.matrix_rank(M) == 1
    assert Numeric(1e-14).rank(M[:2, :2]) == 2  # a 2 x 2 matrix resolves it


# -- 3. laws that float64 cannot tell apart are not called equal; N1 and soft interventions -----


def _soft_child(var_j: float) -> ConceptModel:
    """``a``, ``j -> ch`` (weight 0), ``Soft(ch, {j: -4})``, hard on ``a`` and ``ch``; ``j`` has
    no intervention (A6 fails: N1 with ``i = a``)."""
    g = DAG(np.array([[0, 0, 0], [0, 0, 1], [0, 0, 0]]), ("a", "j", "ch"))
    sem = SEM(g, np.zeros((3, 3)), np.zeros(3), (np.eye(1), var_j * np.eye(1), np.eye(1)))
    ctxs = (Context.observational(), Context((Soft("ch", {"j": -4.0}),), "soft"),
            Context((Hard("a", 1.0, 1.0),), "do_a"),
            Context((Hard("ch", 1.0, 1.0),), "do_ch"))  # fmt: skip
    return ConceptModel(sem, LinearMixing(np.eye(3)), None, 0, 1.0, ctxs)


def _kl(m0, S0, m1, S1) -> float:
    """KL(N(m0, S0) || N(m1, S1)), exactly in rationals but for the log."""
    S1i = S1.inv()
    dm = m1 - m0
    val = (S1i * S0).trace() - S0.shape[0] + (dm.T * S1i * dm)[0, 0]
    return float(val) / 2 + float(sp.log(S1.det() / S0.det())) / 2


def test_numeric_laws_with_an_ill_conditioned_covariance_are_not_called_equal():
    # found by review: a correlation matrix of condition >= 1/rtol went to a "singular" branch
    # that compared the laws on its range only, and a law 2 nats away was called equal
    a, j, e = sp.symbols("a j e")
    var = {a: 1, j: sp.Integer(10) ** 16, e: 1}

    def cov(ch):
        xs = [a, j, ch]
        return sp.Matrix(3, 3, lambda r, c: sum(
            sp.Poly(xs[r], a, j, e).coeff_monomial(v) * sp.Poly(xs[c], a, j, e).coeff_monomial(v)
            * var[v] for v in (a, j, e)))  # fmt: skip

    S_a, S_b = cov(-4 * j + e), cov(-4 * j + 2 * a + e)  # ch as generated, ch as mis-rewritten
    zero = sp.zeros(3, 1)
    assert _kl(zero, S_a, zero, S_b) == pytest.approx(2.0)
    Sa, Sb = (np.array(S.tolist(), dtype=float) for S in (S_a, S_b))
    m = np.zeros((3, 1))
    assert not Numeric().same_gaussian(m, Sa, m, Sb)
    assert Numeric().compare_gaussian(m, Sa, m, Sb) is not True
    # the documented refusal is reachable: a law float64 cannot resolve is undecided, even
    # against itself, and so never "equal"
    R = np.array([[1.0, 1 - 1e-12], [1 - 1e-12, 1.0]])
    assert Numeric().compare_gaussian(m[:2], R, m[:2], R.copy()) is None
    assert not Numeric().same_gaussian(m[:2], R, m[:2], R.copy())
    assert Exact().same_gaussian(*(Exact().mat(x) for x in (m[:2], R, m[:2], R)))
    # well within float64's reach, still decided
    R9 = np.array([[1.0, 1 - 1e-9], [1 - 1e-9, 1.0]])
    assert Numeric().compare_gaussian(m[:2], R9, m[:2], R9.copy()) is True
    assert Numeric().compare_gaussian(m[:2], R9, m[:2], 1.01 * R9) is False


@pytest.mark.parametrize("var_j", [1.0, 1e16])
def test_n1_rewrites_a_soft_intervention_on_a_child(var_j):
    # found by review: N1 kept Soft(ch, {j: -4}) as it was, so under it the second model's ch
    # read -4 c'_j = -4 c_j + 2 c_a; exact arithmetic rejected that witness, numeric "verified" it
    model = _soft_child(var_j)
    exact = check(model, "exact")
    assert exact.status("j") == NOT_IDENTIFIABLE
    w = exact.concepts[1].witness
    assert w.kind == "N1" and w.verification.ok
    for ca, cb in zip(w.model_a.contexts, w.model_b.contexts):  # every training context
        assert exact_law(w.model_a, ca) == exact_law(w.model_b, cb), ca.name
    numeric = check(model, "numeric")
    if var_j == 1.0:
        assert numeric.status("j") == NOT_IDENTIFIABLE
        assert reverify_linear(numeric.concepts[1].witness)[:2] == (True, True)
    else:  # float64 cannot compare laws with variances 1e16 and 1 this close: not covered
        assert numeric.status("j") == NOT_COVERED


def test_n1_rewrites_a_soft_weight_given_for_the_other_concept_too():
    # a soft intervention on the child that sets the weight of i (here a, also a parent of ch)
    g = DAG.from_edges([("a", "ch"), ("j", "ch")], nodes=["a", "j", "ch"])
    B = np.zeros((3, 3))
    B[2, 0], B[2, 1] = 0.75, 1.5
    sem = SEM(g, B, np.zeros(3), (np.eye(1), 2.0 * np.eye(1), np.eye(1)))
    ctxs = (Context.observational(), Context((Soft("ch", {"a": -0.5}),), "soft"),
            Context((Hard("a", 1.0, 1.0),), "do_a"),
            Context((Hard("ch", 1.0, 3.0),), "do_ch"))  # fmt: skip
    model = ConceptModel(sem, LinearMixing(np.eye(3)), None, 0, 1.0, ctxs)
    w = missing_intervention(model, "j")
    assert w.verify(Exact()).ok and w.verify(Numeric()).ok
    for ca, cb in zip(w.model_a.contexts, w.model_b.contexts):
        assert exact_law(w.model_a, ca) == exact_law(w.model_b, cb), ca.name


def _root_with_soft_sibling(soft_weight: float = -1.0, soft_on: str = "j") -> ConceptModel:
    """``j -> k`` (1.5), ``j -> l`` (0.5), ``k -> l`` (0.25): ``j`` has no intervention and every
    other concept descends from it (N1, root case, mixing ``j`` with ``k``); a soft intervention
    on ``l`` sets the weight of ``j`` (or of ``k``), and ``do(k)`` keeps the mean of ``c_k``."""
    g = DAG.from_edges([("j", "k"), ("j", "l"), ("k", "l")], nodes=["j", "k", "l"])
    B = np.zeros((3, 3))
    B[1, 0], B[2, 0], B[2, 1] = 1.5, 0.5, 0.25
    sem = SEM(g, B, np.zeros(3), (np.eye(1), 2.0 * np.eye(1), np.eye(1)))
    ctxs = (Context.observational(), Context((Hard("k", 0.0, 0.25),), "do_k"),
            Context((Soft("l", {soft_on: soft_weight}),), "soft_l"),
            Context((Hard("l", 1.0, 2.0),), "do_l"))  # fmt: skip
    held = (Context((Hard("k", 0.0, 0.25), Soft("l", {soft_on: soft_weight})), "held"),)
    return ConceptModel(sem, LinearMixing(np.eye(3)), None, 0, 1.0, ctxs, held)


@pytest.mark.parametrize("soft_on", ["j", "k"])
def test_n1_root_case_rewrites_a_soft_intervention_on_another_child(soft_on):
    # a leftover of the soundness hunt: the root case (j mixed with its child k) kept a soft
    # intervention on the other child l as it was, so its second model's l read the old weight
    # in c' coordinates, the laws differed under that context, and check said "not covered";
    # the row under that context is now B~_l P^-1, as in N1's own construction
    model = _root_with_soft_sibling(soft_on=soft_on)
    for how in ("exact", "numeric"):
        report = check(model, how)
        assert report.status("j") == NOT_IDENTIFIABLE, how
        assert report.status("k") == NOT_IDENTIFIABLE, how
        assert report.status("l") == NOT_COVERED, how  # no witness moves l; A6 fails
        w = report.concepts[0].witness
        assert w.kind == "N1" and w.verification.ok
        assert reverify_linear(w)[:2] == (True, True)
        for ca, cb in zip(w.model_a.contexts, w.model_b.contexts):  # every training context
            # computed here in rationals from each model's stored floats: the second model's
            # floats are its exact parameters rounded (alpha, beta and the regression are not
            # binary fractions), so the laws agree to rounding, not to the last bit
            assert _gap(exact_law(w.model_a, ca), exact_law(w.model_b, cb)) < 1e-12, ca.name
    soft_b = next(c for c in w.model_b.contexts if c.name == "soft_l").interventions[0]
    assert soft_b.kind == "soft" and set(soft_b.weights) == {"j", "k"}  # both columns rewritten


def test_n1_root_case_without_the_rewrite_would_fail():
    # the rewrite is what makes the laws equal: the same second model with the soft intervention
    # kept as in the first model differs under that context (exact rationals, computed here)
    model = _root_with_soft_sibling()
    w = check(model, "exact").concepts[0].witness
    kept = ConceptModel(w.model_b.sem, w.model_b.mixing, w.model_b.readout, 0, 1.0,
                        tuple(c if c.name != "soft_l" else model.contexts[2]
                              for c in w.model_b.contexts))  # fmt: skip
    soft_a = model.contexts[2]
    assert _gap(exact_law(model, soft_a), exact_law(kept, soft_a)) > 1e-2
    assert _gap(exact_law(model, model.contexts[0]), exact_law(kept, kept.contexts[0])) < 1e-12


def test_the_certificate_step_for_the_soft_row_fails_when_the_row_is_kept():
    # found by review: falsify() is judged as a whole, so this step's wrong version is checked
    # here on its own
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "proofs" / "certificates"))
    from cert_n1_missing_intervention import _root_soft_other

    assert all(ok for _, ok in _root_soft_other(False))
    assert not any(ok for _, ok in _root_soft_other(True))


def _zero_weight_edge(case: str) -> ConceptModel:
    """A declared edge of weight 0 (``m -> l``, or ``p -> l``) given a weight by a soft
    intervention, beside the N1 root case (``j`` mixed with ``k``) or N7's pair ``a -> b``."""
    if case == "n7":
        g = DAG.from_edges([("a", "b"), ("p", "l")], nodes=["a", "b", "p", "l"])
        B = np.zeros((4, 4))
        B[1, 0] = 1.5
        ctxs = (Context((Hard("a", 0.0, 2.0),), "do_a"), Context((Hard("b", 0.0, 0.5),), "do_b"),
                Context((Hard("a", 0.0, 2.0), Hard("p", 1.0, 1.0)), "do_a_p"),
                Context((Hard("b", 0.0, 0.5), Hard("l", 1.0, 1.0)), "do_b_l"),
                Context((Hard("a", 0.0, 2.0), Soft("l", {"p": 1.0})), "soft"))  # fmt: skip
        sem = SEM(g, B, np.zeros(4), tuple(np.eye(1) for _ in range(4)))
        return ConceptModel(sem, LinearMixing(np.eye(4)), None, 0, 1.0, ctxs)
    g = DAG.from_edges([("j", "k"), ("j", "m"), ("m", "l"), ("j", "l")],
                       nodes=["j", "k", "m", "l"])  # fmt: skip
    B = np.zeros((4, 4))
    B[1, 0], B[2, 0], B[3, 0] = 1.5, 0.5, 0.5  # B[l, m] = 0: declared, weight 0
    sem = SEM(g, B, np.zeros(4), tuple(np.eye(1) * v for v in (1.0, 2.0, 1.0, 1.0)))
    soft = Context((Soft("l", {"m": 1.0, "j": 2.0}),), "soft_l")
    ctxs = (
        Context.observational(),
        Context((Hard("k", 0.0, 0.25),), "do_k"),
        Context((Hard("m", 0.0, 3.0),), "do_m"),
        Context((Hard("l", 1.0, 2.0),), "do_l"),
    )
    if case == "held-out":
        return ConceptModel(sem, LinearMixing(np.eye(4)), None, 0, 1.0, ctxs, (soft,))
    return ConceptModel(sem, LinearMixing(np.eye(4)), None, 0, 1.0, (*ctxs, soft))


@pytest.mark.parametrize("case", ["root", "held-out", "n7"])
def test_a_soft_weight_on_a_declared_edge_of_weight_zero_gets_a_verdict(case):
    # found by review: the pair witness built its graph from the nonzero weights alone, dropped
    # the declared edge, and the second model refused the soft intervention: a traceback out of
    # check() (before this session's rewrite too)
    moved = {"a", "b"} if case == "n7" else {"j", "k"}
    for how in ("exact", "numeric"):
        report = check(_zero_weight_edge(case), how)
        assert {c.concept for c in report.concepts if c.status == NOT_IDENTIFIABLE} == moved
        for c in report.concepts:
            if c.witness is not None:
                assert c.witness.verification.ok and reverify_linear(c.witness)[:2] == (True, True)


def test_the_independent_reverification_does_not_pass_laws_it_cannot_compute():
    # found by review: max(worst, nan) kept worst, so NaN moments passed as equal
    model = _root_with_soft_sibling(soft_weight=1e308)
    w = check(model, "exact").concepts[0].witness
    with np.errstate(all="ignore"):
        equal, _, worst = reverify_linear(w)
    assert not equal and worst == float("inf")


def _gap(law_a, law_b) -> float:
    """The largest difference between two (mean, covariance) pairs of sympy matrices, relative
    to the largest entry."""
    a = np.array([float(x) for m in law_a for x in m])
    b = np.array([float(x) for m in law_b for x in m])
    return float(np.abs(a - b).max() / (1.0 + np.abs(a).max()))


# -- 4. huge finite numbers: a verdict, never a traceback ---------------------------------------


def _chain(w, mean=0.0, targets=("c0", "c1", "c2"), m=3) -> ConceptModel:
    A = np.zeros((m, m), dtype=bool)
    B = np.zeros((m, m))
    for i in range(m - 1):
        A[i, i + 1], B[i + 1, i] = True, w
    sem = SEM(DAG(A), B, np.full(m, mean), (np.eye(1),) * m)
    ctxs = (Context.observational(), *(Context((Hard(t, 1.0, 2.0),)) for t in targets))
    return ConceptModel(sem, LinearMixing(np.eye(m)), None, 0, 1.0, ctxs)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize(
    "model, method",
    [
        (_chain(1e160), "numeric"),  # SVD did not converge in A7+
        (_chain(1.0, 1e200), "numeric"),  # SVD did not converge in the confirmation
        (_chain(1e100, targets=tuple(f"c{i}" for i in range(6)), m=6), "numeric"),
        (_chain(1e160), "exact"),
        (_chain(1e160, targets=("c0", "c1")), "exact"),  # OverflowError in the witness check
    ],
)
def test_huge_finite_numbers_give_a_verdict_not_a_traceback(model, method):
    report = check(model, method)  # raised LinAlgError / OverflowError before
    statuses = [c.status for c in report.concepts]
    if method == "numeric":
        assert set(statuses) == {NOT_COVERED}
        words = [v.reason for v in report.assumptions.values()] + [c.reason for c in
                                                                    report.concepts]  # fmt: skip
        assert any("ill-conditioned" in r for r in words)
    for c in report.concepts:
        if c.status == NOT_IDENTIFIABLE:
            assert c.witness.verification.ok and c.witness.verify(Exact()).ok
    str(report), report.to_json()  # the report itself renders


# -- 6. the strategies keep their promise -------------------------------------------------------

#: violate -> (assumptions that fail, that are undecided); every other one holds
PROMISE = {
    None: ((), ()),
    "A6": (("A6",), ()),
    "A7": (("A7", "A7+"), ()),  # A7+ implies A7 (Lemma 3 (b))
    "A4": (("A4",), ("A7+",)),  # A7+ is defined for linear SEMs only
}


@pytest.mark.parametrize("violate", list(PROMISE))
@pytest.mark.parametrize("block_size", [1, 2])
def test_the_strategies_keep_their_promise(violate, block_size):
    # found by review: with block_size=2, violate=None drew A7+ violations and violate="A6"
    # broke A7+ as well (an intervention whose law was too close to the noise law)
    fails, undecided = PROMISE[violate]

    @settings(max_examples=80, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(models(violate=violate, block_size=block_size, max_concepts=4))
    def promise(model):
        verdicts = evaluate(model, Exact())
        got = {k: v.holds for k, v in verdicts.items()}
        assert tuple(k for k, h in got.items() if h is False) == fails, got
        assert tuple(k for k, h in got.items() if h is None) == undecided, got

    promise()
