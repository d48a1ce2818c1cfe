"""Tests for simulations.sem and simulations.interventions.

Exact population moments are checked against an independent oracle (sempler's LGANM), samples
against exact moments with tolerances derived from standard errors, and the intervention algebra
(cut exactly the targeted mechanisms, composition = sequential application, reduced form) with
hypothesis over random DAGs and SEMs.
"""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conceptid.simulations.graphs import DAG, chain, erdos_renyi
from conceptid.simulations.interventions import (
    NOISE_FAMILIES,
    Context,
    Hard,
    Intervention,
    InterventionError,
    Shift,
    Soft,
    symmetrised,
)
from conceptid.simulations.sem import SEM, SEMError, random_sem

# sempler is a test dependency (pyproject's test extra): a missing one fails here, loudly,
# rather than skipping the comparisons against an independent library
with warnings.catch_warnings():  # sempler warns that its optional rpy2 extras are missing
    warnings.simplefilter("ignore")
    import sempler


# -- helpers ------------------------------------------------------------------------------------


def spd(k: int, rng: np.random.Generator, lo: float = 0.3, hi: float = 2.0) -> np.ndarray:
    """A random symmetric positive definite (k, k) matrix with eigenvalues in [lo, hi]."""
    Q = np.linalg.qr(rng.standard_normal((k, k)))[0]
    return (Q * rng.uniform(lo, hi, k)) @ Q.T


def scalar_sem(seed: int, m: int, **kw) -> SEM:
    rng = np.random.default_rng(seed)
    g = erdos_renyi(m, min(2.0, m - 1), rng)
    kw.setdefault("noise_mean_scale", 1.0)
    return random_sem(g, rng, **kw)


def sempler_oracle(sem: SEM):
    """sempler's model of a scalar linear SEM: W[i, j] is the weight of i -> j, so W = B^T."""
    assert sem.block_sizes == (1,) * sem.m
    variances = np.array([S[0, 0] for S in sem.noise_cov])
    return sempler.LGANM(sem.weights.T, sem.noise_mean.copy(), variances)


def sempler_kwargs(ctx: Context, sem: SEM) -> dict:
    do, shift = {}, {}
    for iv in ctx:
        j = sem.resolve(iv.target)
        if isinstance(iv, Hard):
            do[j] = (float(iv.mean), float(iv.cov))
        elif isinstance(iv, Shift):
            extra = 0.0 if iv.extra_cov is None else float(iv.extra_cov)
            shift[j] = (float(iv.shift), extra)
        else:  # pragma: no cover - the oracle has no soft interventions
            raise AssertionError(iv)
    return {"do_interventions": do, "shift_interventions": shift}


def assert_sample_moments(X: np.ndarray, mean: np.ndarray, cov: np.ndarray, n_se: float = 6.0):
    """Sample mean and covariance within ``n_se`` standard errors of the exact values.

    Standard errors: sqrt(Sigma_ii / n) for the mean; for the covariance entry (i, j) the
    standard deviation of the products (x_i - mu_i)(x_j - mu_j) over sqrt(n), estimated from the
    data, which holds for any noise family (it includes the fourth cumulants)."""
    n, K = X.shape
    assert np.all(np.isfinite(X))
    se_mean = np.sqrt(np.diag(cov) / n)
    err_mean = X.mean(axis=0) - mean
    assert np.all(np.abs(err_mean) <= n_se * se_mean), err_mean / se_mean
    D = X - mean
    S_hat = np.cov(X.T).reshape(K, K)
    for i in range(K):
        for j in range(i, K):
            prod = D[:, i] * D[:, j]
            se = prod.std() / np.sqrt(n)
            assert abs(S_hat[i, j] - cov[i, j]) <= n_se * se, (i, j, S_hat[i, j], cov[i, j], se)


def scalar_contexts(sem: SEM, rng: np.random.Generator) -> list[Context]:
    """Observational, single hard, single shift (with and without extra variance), two hard,
    hard + shift on two targets, and three mixed targets."""
    m = sem.m
    t = rng.permutation(m)

    def hard(j):
        return Hard(sem.names[j], float(rng.normal(0, 2)), float(rng.uniform(0.2, 3)))

    def shift(j, extra):
        return Shift(
            sem.names[j], float(rng.normal(0, 2)), float(rng.uniform(0, 2)) if extra else None
        )

    ctxs = [
        Context.observational(),
        Context((hard(t[0]),)),
        Context((shift(t[0], False),)),
        Context((shift(t[1], True),)),
        Context((hard(t[0]), hard(t[1]))),
        Context((hard(t[1]), shift(t[0], True))),
    ]
    if m >= 3:
        ctxs.append(Context((shift(t[2], True), hard(t[0]), Hard(int(t[1]), 0.5, 2.0))))
    return ctxs


# -- local hypothesis strategies ------------------------------------------------------------------


@st.composite
def graphs(draw, max_m: int = 6) -> DAG:
    m = draw(st.integers(1, max_m))
    perm = draw(st.permutations(range(m)))
    A = np.zeros((m, m), dtype=bool)
    for i in range(m):
        for j in range(i + 1, m):
            A[perm[i], perm[j]] = draw(st.booleans())
    return DAG(A)


@st.composite
def sems(draw, max_m: int = 6, max_block: int = 2) -> SEM:
    g = draw(graphs(max_m))
    ks = draw(st.lists(st.integers(1, max_block), min_size=g.m, max_size=g.m))
    family = draw(st.sampled_from(NOISE_FAMILIES))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return random_sem(g, rng, block_sizes=ks, noise_mean_scale=1.0, noise_family=family)


def make_intervention(sem: SEM, j: int, kind: str, rng: np.random.Generator, by_name: bool):
    k = sem.block_sizes[j]
    t = sem.names[j] if by_name else j
    if kind == "hard":
        return Hard(t, rng.normal(0, 2, k), spd(k, rng))
    if kind == "shift":
        return Shift(t, rng.normal(0, 2, k), spd(k, rng) if rng.random() < 0.5 else None)
    parents = sem.graph.parents(j)
    chosen = [i for i in parents if rng.random() < 0.7]
    w = {sem.names[i]: rng.normal(0, 1, (k, sem.block_sizes[i])) for i in chosen}
    mean = rng.normal(0, 1, k) if rng.random() < 0.5 else None
    cov = spd(k, rng) if rng.random() < 0.5 else None
    return Soft(t, w, mean, cov)


@st.composite
def sem_and_interventions(draw, max_m: int = 6):
    """An SEM and a list of interventions on distinct random targets (possibly empty)."""
    sem = draw(sems(max_m))
    targets = draw(st.lists(st.integers(0, sem.m - 1), unique=True, max_size=sem.m))
    kinds = [draw(st.sampled_from(["hard", "shift", "soft"])) for _ in targets]
    by_name = [draw(st.booleans()) for _ in targets]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ivs = [make_intervention(sem, j, k, rng, b) for j, k, b in zip(targets, kinds, by_name)]
    return sem, ivs


# -- exact moments against sempler --------------------------------------------------------------


@pytest.mark.parametrize("seed, m", [(0, 3), (1, 4), (2, 5), (3, 6), (4, 7), (5, 8), (6, 8)])
def test_exact_moments_match_sempler(seed, m):
    sem = scalar_sem(seed, m)
    oracle = sempler_oracle(sem)
    rng = np.random.default_rng(100 + seed)
    ctxs = scalar_contexts(sem, rng)
    assert len(ctxs) >= 6
    for ctx in ctxs:
        ours = sem.intervene(ctx)
        theirs = oracle.sample(population=True, **sempler_kwargs(ctx, sem))
        np.testing.assert_allclose(ours.population_mean(), theirs.mean, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(
            ours.population_covariance(), theirs.covariance, rtol=1e-10, atol=1e-10
        )


def test_sempler_comparison_has_power():
    # a wrong mapping (a hard intervention read as a shift) must be detected by the comparison
    sem = scalar_sem(3, 5)
    oracle = sempler_oracle(sem)
    j = sem.graph.order[-1]
    assert sem.graph.parents(j), "the test needs a target with parents"
    ours = sem.intervene(Hard(j, 1.0, 2.0)).population_covariance()
    wrong = oracle.sample(population=True, shift_interventions={j: (1.0, 2.0)}).covariance
    assert not np.allclose(ours, wrong, atol=1e-6)


def test_hard_intervention_exact_moments_by_hand():
    # a -> b with weight 2: obs var(b) = 4 var(a) + var(eps_b); do(b ~ N(3, 0.5)) cuts a -> b
    g = DAG.from_edges([("a", "b")])
    sem = SEM(g, np.array([[0.0, 0.0], [2.0, 0.0]]), np.array([1.0, -1.0]), (1.0, 0.25))
    np.testing.assert_allclose(sem.population_mean(), [1.0, 1.0])
    np.testing.assert_allclose(sem.population_covariance(), [[1.0, 2.0], [2.0, 4.25]])
    do = sem.intervene(Hard("b", 3.0, 0.5))
    np.testing.assert_allclose(do.population_mean(), [1.0, 3.0])
    np.testing.assert_allclose(do.population_covariance(), [[1.0, 0.0], [0.0, 0.5]])
    sh = sem.intervene(Shift("b", 2.0, 0.75))
    np.testing.assert_allclose(sh.population_mean(), [1.0, 3.0])
    np.testing.assert_allclose(sh.population_covariance(), [[1.0, 2.0], [2.0, 5.0]])


# -- sample moments converge --------------------------------------------------------------------


@pytest.mark.parametrize("family", NOISE_FAMILIES)
def test_sample_moments_within_standard_errors(family):
    sem = scalar_sem(11, 5, noise_family=family)
    rng = np.random.default_rng(7)
    for ctx in scalar_contexts(sem, np.random.default_rng(8))[:4]:
        s = sem.intervene(ctx)
        X = s.sample(200_000, rng)
        assert X.shape == (200_000, 5) and X.dtype == np.float64
        assert_sample_moments(X, s.population_mean(), s.population_covariance())


def _normalised_rms_error(sem: SEM, n: int, rng: np.random.Generator, reps: int) -> float:
    mu, S = sem.population_mean(), sem.population_covariance()
    sd = np.sqrt(np.diag(S))
    iu = np.triu_indices(len(sd))
    errs = []
    for _ in range(reps):
        X = sem.sample(n, rng)
        e_mean = (X.mean(axis=0) - mu) / sd
        e_cov = ((np.cov(X.T) - S) / np.outer(sd, sd))[iu]
        errs.append(np.concatenate([e_mean, e_cov]))
    return float(np.sqrt(np.mean(np.square(errs))))


@pytest.mark.parametrize("family", NOISE_FAMILIES)
def test_sample_error_shrinks_like_one_over_sqrt_n(family):
    # The root-mean-square error scales as n^{-1/2}: 16x the samples, 1/4 the error. Averaged over
    # 8 repetitions and 14 statistics, the ratio lies in [2.2, 7.3] for 180 seeds tried (median
    # 4.0); a non-converging (biased) sampler gives a ratio near 1.
    rng = np.random.default_rng(3)
    sem = random_sem(erdos_renyi(4, 2.0, rng), rng, noise_family=family, noise_mean_scale=1.0)
    small = _normalised_rms_error(sem, 12_500, rng, reps=8)
    big = _normalised_rms_error(sem, 200_000, rng, reps=8)
    assert 2.0 < small / big < 8.0, small / big


def test_noise_families_have_the_requested_shape():
    # same first two moments, different shapes: excess kurtosis 0 (gaussian), 3 (laplace),
    # -1.2 (uniform); uniform noise is bounded by sqrt(3) standard deviations.
    g = DAG(np.zeros((1, 1), dtype=bool))
    rng = np.random.default_rng(0)
    kurt = {}
    for fam in NOISE_FAMILIES:
        x = SEM(g, np.zeros((1, 1)), [2.0], (4.0,), noise_family=fam).sample(200_000, rng)[:, 0]
        assert abs(x.mean() - 2.0) < 6 * 2 / np.sqrt(len(x))
        z = (x - 2.0) / 2.0
        kurt[fam] = np.mean(z**4) - 3
        if fam == "uniform":
            assert np.abs(z).max() <= np.sqrt(3) + 1e-12
    assert abs(kurt["gaussian"]) < 0.1
    assert abs(kurt["laplace"] - 3.0) < 0.5
    assert abs(kurt["uniform"] + 1.2) < 0.05


def test_mixed_noise_families_per_concept():
    # one family per concept: each column has its own family's excess kurtosis and bounds
    g = DAG(np.zeros((3, 3), dtype=bool), ("g", "l", "u"))
    fams = ("gaussian", "laplace", "uniform")
    sem = SEM(g, np.zeros((3, 3)), np.zeros(3), (1.0, 1.0, 1.0), noise_family=fams)
    assert sem.noise_family == fams
    z = sem.sample(200_000, np.random.default_rng(1))
    kurt = np.mean(z**4, axis=0) - 3
    assert abs(kurt[0]) < 0.1 and abs(kurt[1] - 3.0) < 0.5 and abs(kurt[2] + 1.2) < 0.05
    assert np.abs(z[:, 2]).max() <= np.sqrt(3) + 1e-12 < np.abs(z[:, 0]).max()
    # a hard intervention sets the target's family
    s = sem.intervene(Hard("u", 0.0, 1.0, family="laplace"))
    assert s.noise_family == ("gaussian", "laplace", "laplace")


def test_sampling_is_reproducible_from_the_generator():
    sem = scalar_sem(0, 4)
    a = sem.sample(100, np.random.default_rng(42))
    b = sem.sample(100, np.random.default_rng(42))
    c = sem.sample(100, np.random.default_rng(43))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert sem.sample(0, np.random.default_rng(0)).shape == (0, 4)


# -- block SEMs ---------------------------------------------------------------------------------


def block_sem(seed: int = 0) -> SEM:
    rng = np.random.default_rng(seed)
    g = DAG.from_edges([("a", "b"), ("b", "c"), ("a", "c")], nodes=["a", "b", "c"])
    return random_sem(g, rng, block_sizes=(2, 3, 2), noise_mean_scale=1.0)


def test_block_sem_exact_moments_match_samples():
    sem = block_sem()
    assert sem.K == 7
    rng = np.random.default_rng(1)
    hard_b = Hard("b", [1.0, -1.0, 0.5], spd(3, rng))
    for ctx in (None, Context((hard_b,)), Context((Shift("c", [1.0, 2.0], spd(2, rng)),))):
        s = sem.intervene(ctx)
        X = s.sample(200_000, rng)
        assert_sample_moments(X, s.population_mean(), s.population_covariance())


def test_block_exact_moments_by_simulation_free_recursion():
    # Independent recursion in topological order: mu_j = B_j. mu + m_j, Cov(c_j, c) = B_j. Cov(c, c)
    sem = block_sem(3)
    K = sem.K
    mu = np.zeros(K)
    cov = np.zeros((K, K))
    B = sem.weights
    for j in sem.graph.order:
        sl = sem.slices[j]
        mu[sl] = B[sl] @ mu + sem.noise_mean[sl]
        # Cov(c_j, c_prev) = B_j. Cov(c, c_prev) for earlier nodes; earlier ones are already final
        cov[sl, :] = B[sl] @ cov
        cov[:, sl] = cov[sl, :].T
        cov[sl, sl] = B[sl] @ cov @ B[sl].T + sem.noise_cov[j]
    np.testing.assert_allclose(sem.population_mean(), mu, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sem.population_covariance(), cov, rtol=1e-12, atol=1e-12)


def test_hard_intervention_on_a_block_replaces_the_whole_block():
    sem = block_sem(1)
    rng = np.random.default_rng(2)
    mean, cov = rng.normal(size=3), spd(3, rng)
    s = sem.intervene(Hard("b", mean, cov))
    sl = sem.block("b")
    assert np.all(s.weights[sl, :] == 0)
    assert np.array_equal(s.noise_mean[sl], mean)
    assert np.array_equal(s.noise_cov[1], symmetrised(cov))  # stored symmetrised
    assert s.graph.parents("b") == []
    # the block's law is exactly the intervention's, and b is uncorrelated with its old parent a
    np.testing.assert_allclose(s.population_mean()[sl], mean, atol=1e-12)
    Sig = s.population_covariance()
    np.testing.assert_allclose(Sig[sl, sl], cov, atol=1e-12)
    np.testing.assert_allclose(Sig[sl, sem.block("a")], 0.0, atol=1e-12)
    assert np.abs(Sig[sem.block("c"), sl]).max() > 0.1  # c still depends on b
    # everything outside b's rows is as before
    rows = np.ones(sem.K, dtype=bool)
    rows[sl] = False
    assert np.array_equal(s.weights[rows], sem.weights[rows])
    assert np.array_equal(s.noise_mean[rows], sem.noise_mean[rows])


def test_scalar_cov_for_a_block_means_isotropic():
    sem = block_sem()
    s = sem.intervene(Hard("b", np.zeros(3), 2.5))
    assert np.array_equal(s.noise_cov[1], 2.5 * np.eye(3))
    assert np.array_equal(s.noise_mean[sem.block("b")], np.zeros(3))


def test_default_hard_intervention_works_on_a_block():
    sem = block_sem()
    s = sem.intervene(Hard("b"))
    assert np.array_equal(s.noise_mean[sem.block("b")], np.zeros(3))
    assert np.array_equal(s.noise_cov[1], np.eye(3))


# -- float32 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["linear", "tanh"])
def test_float32_sampling_agrees_with_float64(mechanism):
    sem = scalar_sem(5, 5, mechanism=mechanism)
    rng = np.random.default_rng(0)
    X32 = sem.sample(200_000, rng, dtype=np.float32)
    X64 = sem.sample(200_000, rng)
    assert X32.dtype == np.float32 and X64.dtype == np.float64
    assert np.all(np.isfinite(X32))
    if mechanism == "linear":
        assert_sample_moments(
            X32.astype(np.float64), sem.population_mean(), sem.population_covariance()
        )
    # the two samples estimate the same moments: difference of means within 6 s.e. of a difference
    sd = X64.std(axis=0)
    diff = X32.mean(axis=0) - X64.mean(axis=0)
    assert np.all(np.abs(diff) < 6 * sd * np.sqrt(2 / 200_000)), diff
    c32 = np.cov(X32.T.astype(np.float64))
    c64 = np.cov(X64.T)
    scale = np.sqrt(np.outer(np.diag(c64), np.diag(c64)))
    assert np.abs(c32 - c64).max() / scale.max() < 0.03


def test_sample_rejects_bad_arguments():
    sem = scalar_sem(0, 3)
    rng = np.random.default_rng(0)
    with pytest.raises(SEMError, match="n must"):
        sem.sample(-1, rng)
    with pytest.raises(SEMError, match="rng"):
        sem.sample(10, 0)
    with pytest.raises(SEMError, match="dtype"):
        sem.sample(10, rng, dtype=np.int64)


# -- nonlinear mechanisms ------------------------------------------------------------------------


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.parametrize("mechanism", ["tanh", "mlp"])
def test_nonlinear_hard_intervention_cuts_parents_keeps_children(mechanism):
    g = chain(3, names=["a", "b", "c"])
    rng = np.random.default_rng(0)
    sem = random_sem(g, rng, mechanism=mechanism, weight_range=(1.0, 1.5))
    n = 40_000
    bound = 5 / np.sqrt(n)  # correlation of independent variables: s.e. 1/sqrt(n)
    X = sem.sample(n, rng)
    assert abs(corr(X[:, 0], X[:, 1])) > 0.2  # a and b depend observationally
    do = sem.intervene(Hard("b", 0.5, 1.0))
    assert do.graph.parents("b") == []
    Y = do.sample(n, rng)
    assert np.all(np.isfinite(Y))
    for f in (lambda u: u, np.tanh, np.square, np.abs):
        assert abs(corr(f(Y[:, 0]), Y[:, 1])) < bound
    assert abs(Y[:, 1].mean() - 0.5) < 6 / np.sqrt(n)
    # c still reacts to b: its conditional mean varies with b
    lo, hi = Y[:, 1] < np.median(Y[:, 1]), Y[:, 1] >= np.median(Y[:, 1])
    assert abs(Y[lo, 2].mean() - Y[hi, 2].mean()) > 0.1
    assert abs(corr(Y[:, 1], Y[:, 2])) > 0.1 or abs(corr(np.square(Y[:, 1]), Y[:, 2])) > 0.1


def test_tanh_mechanism_is_the_documented_equation():
    # with zero noise variance impossible, check c1 - B tanh(c0) has the noise law N(mu, s)
    g = chain(2)
    sem = SEM(g, np.array([[0.0, 0.0], [1.7, 0.0]]), [0.3, -0.4], (1.0, 0.09), mechanism="tanh")
    X = sem.sample(100_000, np.random.default_rng(0))
    resid = X[:, 1] - 1.7 * np.tanh(X[:, 0])
    assert abs(resid.mean() + 0.4) < 6 * 0.3 / np.sqrt(len(X))
    assert abs(resid.var() - 0.09) < 0.005
    assert abs(corr(resid, X[:, 0])) < 5 / np.sqrt(len(X))


@pytest.mark.parametrize("mechanism", ["tanh", "mlp"])
def test_nonlinear_samples_are_finite_and_exact_moments_refused(mechanism):
    for seed in range(3):
        rng = np.random.default_rng(seed)
        g = erdos_renyi(8, 4.0, rng)
        sem = random_sem(g, rng, block_sizes=[1, 2] * 4, mechanism=mechanism, weight_range=(1, 3))
        X = sem.sample(5_000, rng)
        assert X.shape == (5_000, 12)
        assert np.all(np.isfinite(X))
        with pytest.raises(SEMError, match="linear"):
            sem.population_mean()
        with pytest.raises(SEMError, match="linear"):
            sem.population_covariance()
        with pytest.raises(SEMError, match="linear"):
            sem.standardized_by(np.zeros(sem.K), np.ones(sem.K))


def test_mlp_mechanism_needs_params():
    g = chain(2)
    with pytest.raises(SEMError, match="mlp_params"):
        SEM(g, np.zeros((2, 2)), np.zeros(2), (1.0, 1.0), mechanism="mlp")
    bad = [{"W1": np.ones((4, 1)), "b1": np.ones(4), "W2": np.ones((1, 3))}] * 2
    with pytest.raises(SEMError, match="mlp_params"):
        SEM(g, np.zeros((2, 2)), np.zeros(2), (1.0, 1.0), mechanism="mlp", mlp_params=bad)


def test_sem_equality_sees_mlp_params():
    g = chain(3)
    a = random_sem(g, np.random.default_rng(0), mechanism="mlp")
    b = random_sem(g, np.random.default_rng(0), mechanism="mlp", mlp_hidden=4)
    # identical B, noise and graph; different phi: the laws differ ...
    assert np.array_equal(a.weights, b.weights)
    xa = a.sample(20_000, np.random.default_rng(1))
    xb = b.sample(20_000, np.random.default_rng(1))
    assert not np.allclose(xa, xb)
    # ... so the SEMs must not be equal
    assert a != b


# -- standardisation -----------------------------------------------------------------------------


def _standardized_intervention(iv: Intervention, sem: SEM, loc, scale) -> Intervention:
    """The same intervention expressed in the units c' = (c - loc) / scale."""
    j = sem.resolve(iv.target)
    sl = sem.slices[j]
    k = sem.block_sizes[j]
    if isinstance(iv, Hard):
        cov = np.asarray(iv.cov, dtype=float)
        cov = cov * np.eye(k) if cov.ndim == 0 else cov
        return Hard(
            iv.target,
            (np.asarray(iv.mean) - loc[sl]) / scale[sl],
            cov / np.outer(scale[sl], scale[sl]),
        )
    if isinstance(iv, Shift):
        extra = None
        if iv.extra_cov is not None:
            extra = np.asarray(iv.extra_cov, dtype=float) / np.outer(scale[sl], scale[sl])
        return Shift(iv.target, np.asarray(iv.shift) / scale[sl], extra)
    # soft: new weights W -> D_j^-1 W D_i; the noise mean absorbs the new B loc term
    B = np.array(sem.weights)
    weights = {}
    for p, W in iv.weights.items():
        i = sem.resolve(p)
        W = np.asarray(W, dtype=float).reshape(k, sem.block_sizes[i])
        B[sl, sem.slices[i]] = W
        weights[p] = W * scale[sem.slices[i]][None, :] / scale[sl][:, None]
    mu = sem.noise_mean[sl] if iv.mean is None else np.asarray(iv.mean, dtype=float)
    new_mean = (mu + B[sl] @ loc - loc[sl]) / scale[sl]
    S = sem.noise_cov[j] if iv.cov is None else np.asarray(iv.cov, dtype=float)
    return Soft(iv.target, weights, new_mean, S / np.outer(scale[sl], scale[sl]))


@pytest.mark.parametrize("seed, blocks", [(0, 1), (1, 1), (2, (1, 2, 1, 3, 2)), (3, 2)])
def test_standardized_by_is_exact_in_every_context(seed, blocks):
    rng = np.random.default_rng(seed)
    g = erdos_renyi(5, 2.5, rng)
    sem = random_sem(g, rng, block_sizes=blocks, noise_mean_scale=1.0)
    loc = rng.normal(0, 2, sem.K)
    scale = rng.uniform(0.3, 3.0, sem.K)
    std = sem.standardized_by(loc, scale)
    assert std.graph == sem.graph
    ctxs = [None]
    for j in range(sem.m):
        for kind in ("hard", "shift", "soft"):
            ctxs.append(Context((make_intervention(sem, j, kind, rng, by_name=True),)))
    j1, j2 = rng.choice(sem.m, 2, replace=False)
    ctxs.append(
        Context(
            (
                make_intervention(sem, j1, "hard", rng, True),
                make_intervention(sem, j2, "soft", rng, True),
            )
        )
    )
    for ctx in ctxs:
        ctx = Context() if ctx is None else ctx
        orig = sem.intervene(ctx)
        ctx_std = Context(tuple(_standardized_intervention(iv, sem, loc, scale) for iv in ctx))
        new = std.intervene(ctx_std)
        np.testing.assert_allclose(
            new.population_mean(), (orig.population_mean() - loc) / scale, rtol=1e-9, atol=1e-9
        )
        np.testing.assert_allclose(
            new.population_covariance(),
            orig.population_covariance() / np.outer(scale, scale),
            rtol=1e-9,
            atol=1e-9,
        )


def test_standardized_by_population_moments_gives_zero_mean_unit_variance():
    sem = scalar_sem(4, 6)
    mu = sem.population_mean()
    sd = np.sqrt(np.diag(sem.population_covariance()))
    std = sem.standardized_by(mu, sd)
    np.testing.assert_allclose(std.population_mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.diag(std.population_covariance()), 1.0, rtol=1e-12)


def test_standardized_by_rejects_bad_scale():
    sem = scalar_sem(0, 3)
    with pytest.raises(SEMError, match="scale"):
        sem.standardized_by(np.zeros(3), np.array([1.0, 0.0, 1.0]))
    with pytest.raises(SEMError, match="K = 3"):
        sem.standardized_by(np.zeros(2), np.ones(3))


# -- intervention algebra (hypothesis) ----------------------------------------------------------


@given(sem_and_interventions())
def test_interventions_cut_exactly_the_targeted_mechanisms(case):
    sem, ivs = case
    before = copy.deepcopy(sem.to_dict())
    new = sem.intervene(Context(tuple(ivs)))
    assert sem.to_dict() == before, "intervene must not modify the original SEM"
    targeted = {sem.resolve(iv.target): iv for iv in ivs}
    for j in range(sem.m):
        sl = sem.slices[j]
        if j not in targeted:
            assert np.array_equal(new.weights[sl], sem.weights[sl])
            assert np.array_equal(new.noise_mean[sl], sem.noise_mean[sl])
            assert np.array_equal(new.noise_cov[j], sem.noise_cov[j])
            assert new.noise_family[j] == sem.noise_family[j]
            assert new.graph.parents(j) == sem.graph.parents(j)
            continue
        iv = targeted[j]
        if isinstance(iv, Hard):
            assert np.all(new.weights[sl] == 0)
            assert new.graph.parents(j) == []
            assert np.array_equal(new.noise_mean[sl], iv.mean)
            # a covariance is stored symmetrised (as_covariance): the one matrix all read
            assert np.array_equal(new.noise_cov[j], symmetrised(iv.cov))
            assert new.noise_family[j] == "gaussian"
        elif isinstance(iv, Shift):
            assert np.array_equal(new.weights[sl], sem.weights[sl])
            assert new.graph.parents(j) == sem.graph.parents(j)
            np.testing.assert_allclose(
                new.noise_mean[sl], sem.noise_mean[sl] + iv.shift, rtol=1e-15
            )
            extra = 0 if iv.extra_cov is None else symmetrised(iv.extra_cov)
            np.testing.assert_allclose(new.noise_cov[j], sem.noise_cov[j] + extra, rtol=1e-15)
        else:
            assert new.graph.parents(j) == sem.graph.parents(j)
            for i in sem.graph.parents(j):
                block = new.weights[sl, sem.slices[i]]
                if sem.names[i] in iv.weights:
                    assert np.array_equal(block, iv.weights[sem.names[i]])
                else:
                    assert np.array_equal(block, sem.weights[sl, sem.slices[i]])
            outside = np.ones(sem.K, dtype=bool)
            for i in sem.graph.parents(j):
                outside[sem.slices[i]] = False
            assert np.all(new.weights[sl][:, outside] == 0)
            want_mean = sem.noise_mean[sl] if iv.mean is None else iv.mean
            want_cov = sem.noise_cov[j] if iv.cov is None else symmetrised(iv.cov)
            assert np.array_equal(new.noise_mean[sl], want_mean)
            assert np.array_equal(new.noise_cov[j], want_cov)
    # edges into non-hard-targets are all kept; edges into hard targets all removed
    hard = [j for j, iv in targeted.items() if isinstance(iv, Hard)]
    assert new.graph == sem.graph.remove_incoming(hard)


@given(sem_and_interventions(), st.data())
def test_composed_context_equals_sequential_application(case, data):
    sem, ivs = case
    cut = data.draw(st.integers(0, len(ivs)))
    c1, c2 = Context(tuple(ivs[:cut])), Context(tuple(ivs[cut:]))
    composed = sem.intervene(c1.compose(c2))
    sequential = sem.intervene(c1).intervene(c2)
    assert composed == sequential
    assert sem.intervene(c2).intervene(c1) == composed  # disjoint targets commute
    np.testing.assert_allclose(composed.population_mean(), sequential.population_mean(), atol=1e-12)
    np.testing.assert_allclose(
        composed.population_covariance(), sequential.population_covariance(), atol=1e-12
    )


@given(sem_and_interventions())
def test_reduced_form_is_inverse_and_unit_triangular_in_topological_order(case):
    sem, ivs = case
    for s in (sem, sem.intervene(ivs)):
        M = s.reduced_form()
        I = np.eye(s.K)
        scale = max(1.0, np.abs(M).max())
        np.testing.assert_allclose(M @ (I - s.weights), I, atol=1e-10 * scale)
        idx = np.concatenate(
            [np.arange(s.slices[j].start, s.slices[j].stop) for j in s.graph.order]
        )
        P = M[np.ix_(idx, idx)]
        assert np.allclose(np.triu(P, k=1), 0.0, atol=1e-12 * scale)
        for sl in s.slices:  # identity diagonal blocks
            np.testing.assert_allclose(M[sl, sl], np.eye(sl.stop - sl.start), atol=1e-12 * scale)


@given(sem_and_interventions())
def test_sem_and_context_serialisation_round_trip(case):
    sem, ivs = case
    s2 = SEM.from_dict(json.loads(json.dumps(sem.to_dict())))
    assert s2 == sem
    ctx = Context(tuple(ivs))
    ctx2 = Context.from_dict(json.loads(json.dumps(ctx.to_dict())))
    assert ctx2.name == ctx.name and ctx2.targets == ctx.targets
    assert sem.intervene(ctx2) == sem.intervene(ctx)


def test_soft_with_index_parent_round_trips():
    sem = random_sem(chain(3), np.random.default_rng(0))
    ctx = Context((Soft("c1", {0: 0.3}),))
    ctx2 = Context.from_dict(json.loads(json.dumps(ctx.to_dict())))
    assert sem.intervene(ctx2) == sem.intervene(ctx)


def test_context_names_and_compose():
    a, b = Hard("x", 1.0, 1.0), Shift("y", 2.0)
    assert Context.observational().name == "obs"
    assert Context().is_observational
    c = Context((a,)).compose(Context((b,)))
    assert c.name == "do(x,y)" and c.targets == ("x", "y") and len(c) == 2
    assert Context((a,)).compose(Context((b,)), name="both").name == "both"
    with pytest.raises(InterventionError, match="repeated.*x"):
        Context((a,)).compose(Context((Hard("x", 0.0, 2.0),)))


def test_observational_intervene_returns_equal_sem():
    sem = scalar_sem(0, 4)
    assert sem.intervene(None) == sem
    assert sem.intervene(Context()) == sem
    assert sem.intervene([]) == sem


# -- bad input ----------------------------------------------------------------------------------


def two_node(**kw):
    g = DAG.from_edges([("a", "b")])
    args = dict(
        graph=g,
        weights=np.array([[0.0, 0.0], [1.0, 0.0]]),
        noise_mean=np.zeros(2),
        noise_cov=(1.0, 1.0),
    )
    args.update(kw)
    return SEM(**args)


@pytest.mark.parametrize("var", [0.0, -1.0])
def test_nonpositive_noise_variance_raises(var):
    with pytest.raises(SEMError, match="'b'.*variance must be > 0"):
        two_node(noise_cov=(1.0, var))


def test_non_psd_block_covariance_raises():
    g = DAG(np.zeros((1, 1), dtype=bool), ("blk",))
    with pytest.raises(SEMError, match="'blk'.*positive definite"):
        SEM(g, np.zeros((2, 2)), np.zeros(2), (np.array([[1.0, 2.0], [2.0, 1.0]]),), (2,))
    with pytest.raises(SEMError, match="symmetric"):
        SEM(g, np.zeros((2, 2)), np.zeros(2), (np.array([[1.0, 0.5], [0.0, 1.0]]),), (2,))


@pytest.mark.parametrize(
    "iv, match",
    [
        (Hard("b", 0.0, 0.0), "hard intervention on 'b'.*variance must be > 0"),
        (Hard("b", 0.0, -2.0), "hard intervention on 'b'.*variance must be > 0"),
        (Soft("b", {}, None, -1.0), "soft intervention on 'b'.*variance must be > 0"),
        (Shift("b", 0.0, -1.0), "extra_cov on 'b'.*semi-definite"),
        (Hard("b", np.nan, 1.0), "NaN"),
        (Shift("b", [1.0, 2.0]), "shift on 'b' must have 1 entries"),
        (Hard("b", 0.0, 1.0, family="cauchy"), "cauchy"),
        (Hard("zzz", 0.0, 1.0), "unknown intervention target 'zzz'"),
        (Hard(7, 0.0, 1.0), "unknown intervention target 7"),
        (Soft("b", {"b": 1.0}), "'b'.*not a parent"),
        (Soft("a", {"b": 1.0}), "soft intervention on 'a' gives a weight for 'b'.*not a parent"),
        (Soft("b", {"a": np.inf}), "not finite"),
    ],
)
def test_bad_intervention_raises_naming_the_problem(iv, match):
    sem = two_node()
    with pytest.raises(InterventionError, match=match):
        sem.intervene(iv)


def test_repeated_target_in_context_raises():
    with pytest.raises(InterventionError, match="repeated.*'?b"):
        Context((Hard("b", 0.0, 1.0), Shift("b", 1.0)))
    # the same concept by name and by index is caught when applied
    sem = two_node()
    with pytest.raises(InterventionError, match="'b' is targeted twice"):
        sem.intervene(Context((Hard("b", 0.0, 1.0), Shift(1, 1.0))))


def test_context_rejects_non_interventions():
    with pytest.raises(InterventionError, match="Intervention objects"):
        Context(("b",))
    with pytest.raises(InterventionError, match="unknown intervention kind"):
        Intervention.from_dict({"kind": "magic", "target": "b"})


def test_soft_weight_of_wrong_shape_raises_intervention_error():
    sem = two_node()
    with pytest.raises(InterventionError, match="'a'"):
        sem.intervene(Soft("b", {"a": [1.0, 2.0]}))


def test_nan_weights_raise():
    with pytest.raises(SEMError, match="NaN"):
        two_node(weights=np.array([[0.0, 0.0], [np.nan, 0.0]]))


def test_weight_on_a_non_edge_raises_naming_the_edge():
    with pytest.raises(SEMError, match="'b' -> 'a'.*not an edge"):
        two_node(weights=np.array([[0.0, 0.5], [1.0, 0.0]]))


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"weights": np.zeros((3, 3))}, r"weights must have shape \(K, K\) = \(2, 2\)"),
        ({"noise_mean": np.zeros(3)}, "noise_mean must have K = 2"),
        ({"noise_mean": [0.0, np.inf]}, "noise_mean contains NaN"),
        ({"noise_cov": (1.0,)}, "one covariance per concept"),
        ({"noise_cov": (1.0, np.eye(2))}, "'b' must be a 1x1"),
        ({"block_sizes": (1, 1, 1)}, "block_sizes"),
        ({"block_sizes": (1, 0)}, "block_sizes"),
        ({"noise_family": "cauchy"}, "cauchy"),
        ({"noise_family": ("gaussian",)}, "noise_family"),
        ({"mechanism": "relu"}, "mechanism.*relu"),
        ({"graph": np.zeros((2, 2))}, "graph must be a DAG"),
    ],
)
def test_malformed_sem_raises(kw, match):
    with pytest.raises(SEMError, match=match):
        two_node(**kw)


def test_sem_is_immutable():
    sem = two_node()
    with pytest.raises(ValueError):
        sem.weights[1, 0] = 5.0
    w = np.array([[0.0, 0.0], [1.0, 0.0]])
    s = two_node(weights=w)
    w[1, 0] = 9.0  # the caller's array is copied
    assert s.weights[1, 0] == 1.0


def test_random_sem_respects_ranges_and_graph():
    rng = np.random.default_rng(0)
    g = erdos_renyi(6, 3.0, rng)
    sem = random_sem(g, rng, weight_range=(0.5, 1.5), noise_var_range=(0.5, 1.5))
    nz = np.abs(sem.weights[sem.weights != 0])
    assert len(nz) == len(g.edges)
    assert nz.min() >= 0.5 and nz.max() <= 1.5
    v = np.array([S[0, 0] for S in sem.noise_cov])
    assert v.min() >= 0.5 and v.max() <= 1.5
    assert np.all(sem.noise_mean == 0)
    with pytest.raises(SEMError, match="noise_var_range"):
        random_sem(g, rng, noise_var_range=(0.0, 1.0))
    with pytest.raises(SEMError, match="weight_range"):
        random_sem(g, rng, weight_range=(2.0, 1.0))


def test_a_transposed_or_flattened_soft_block_is_refused():
    # found by review: only the size was compared, so a (3, 2) block for a (2, 3) slot (or a
    # flat vector) was reshaped into another matrix, and written to the card as given
    g = DAG.from_edges([("a", "b")])
    sem = SEM(g, np.zeros((5, 5)), np.zeros(5), (np.eye(3), np.eye(2)), block_sizes=[3, 2])
    for w in (np.arange(6.0).reshape(3, 2), np.arange(6.0)):
        with pytest.raises(InterventionError, match=r"must be a \(2, 3\) block"):
            sem.intervene(Soft("b", {"a": w}))
    ok = sem.intervene(Soft("b", {"a": np.arange(6.0).reshape(2, 3)}))
    np.testing.assert_array_equal(ok.weights[3:, :3], np.arange(6.0).reshape(2, 3))
    # one side of size 1: a flat vector is unambiguous
    g1 = SEM(g, np.zeros((3, 3)), np.zeros(3), (np.eye(2), np.eye(1)), block_sizes=[2, 1])
    np.testing.assert_array_equal(g1.intervene(Soft("b", {"a": [0.5, -1.0]})).weights[2, :2],
                                  [0.5, -1.0])  # fmt: skip


@pytest.mark.parametrize("bad", [(1.0, float("inf")), (float("nan"), 1.0), (1.0,), "ab"])
def test_random_sem_refuses_a_range_that_is_not_two_finite_numbers(bad):
    g = DAG.from_edges([("a", "b")])
    for name in ("weight_range", "noise_var_range"):
        with pytest.raises(SEMError, match=f"{name} must be two finite numbers"):
            random_sem(g, np.random.default_rng(0), **{name: bad})


def test_identity_mixing_refuses_arguments_it_cannot_honour():
    # found by review: p and mixing_args were ignored without a word
    from conceptid.simulations import build_preset
    from conceptid.simulations.mixing import MixingError

    rng = np.random.default_rng(0)
    with pytest.raises(MixingError, match="p = 50 cannot apply"):
        build_preset("random", rng, m=3, mixing="identity", p=50)
    with pytest.raises(MixingError, match="takes no mixing_args"):
        build_preset("random", rng, m=3, mixing="identity", mixing_args={"condition_number": 9})
    assert build_preset("random", rng, m=3, mixing="identity").mixing.output_shape == (3,)


def test_random_sem_takes_a_range_as_an_array_too():
    g = DAG.from_edges([("a", "b")])
    sem = random_sem(g, np.random.default_rng(0), weight_range=np.array([0.5, 2.0]))
    assert 0.5 <= abs(sem.weights[1, 0]) <= 2.0
