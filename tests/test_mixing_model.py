"""Tests for simulations.mixing, simulations.model and simulations.presets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conceptid.simulations.graphs import chain
from conceptid.simulations.interventions import Context, Hard, InterventionError, Shift
from conceptid.simulations.mixing import (
    ImageMixing,
    LinearMixing,
    MixingError,
    MLPMixing,
    mixing_from_dict,
    well_conditioned_matrix,
)
from conceptid.simulations.model import ConceptModel, ModelError, composed, random_readout
from conceptid.simulations.presets import (
    PRESETS,
    QUAD_TARGETS,
    build_preset,
    quad,
    single_target_contexts,
)
from conceptid.simulations.sem import random_sem

# -- linear mixing ------------------------------------------------------------------------------


@pytest.mark.parametrize("d, p, kappa", [(3, 3, 1.0), (4, 9, 5.0), (6, 6, 20.0), (2, 4, 3.0)])
def test_linear_mixing_has_the_requested_condition_number(d, p, kappa):
    f = LinearMixing.random(d, p, np.random.default_rng(0), condition_number=kappa)
    assert f.A.shape == (p, d)
    assert f.input_dim == d and f.output_shape == (p,)
    s = np.linalg.svd(f.A, compute_uv=False)
    assert s[0] / s[-1] == pytest.approx(kappa, rel=1e-9)
    assert f.condition_number == pytest.approx(kappa, rel=1e-9)


def test_linear_mixing_maps_and_inverts():
    rng = np.random.default_rng(1)
    f = LinearMixing.random(3, 7, rng)
    e = rng.normal(size=(50, 3))
    x = f(e)
    np.testing.assert_allclose(x, e @ f.A.T, rtol=1e-12)
    np.testing.assert_allclose(f.inverse(x), e, atol=1e-10)
    assert f(e.astype(np.float32)).dtype == np.float32


def test_linear_mixing_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(MixingError, match="full column rank"):
        LinearMixing(np.array([[1.0, 2.0], [2.0, 4.0], [0.0, 0.0]]))
    with pytest.raises(MixingError, match="p >= d"):
        LinearMixing(np.ones((2, 3)))
    with pytest.raises(MixingError, match="NaN"):
        LinearMixing(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(MixingError, match="p .*must be >= d"):
        LinearMixing.random(4, 2, rng)
    with pytest.raises(MixingError, match="condition_number"):
        well_conditioned_matrix(3, 3, rng, 0.5)
    f = LinearMixing(np.eye(2))
    with pytest.raises(MixingError, match="NaN"):
        f(np.array([[0.0, np.nan]]))
    with pytest.raises(MixingError, match=r"shape \(n, 2\)"):
        f(np.zeros((4, 3)))


# -- MLP mixing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["leaky_relu", "smooth"])
@given(
    d=st.integers(1, 5),
    extra=st.integers(0, 4),
    n_layers=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    spread=st.floats(0.1, 10.0),
)
def test_mlp_mixing_inverse_recovers_embedding(activation, d, extra, n_layers, seed, spread):
    rng = np.random.default_rng(seed)
    p = d + extra
    f = MLPMixing.random(d, p, rng, n_layers=n_layers, activation=activation)
    assert f.injective_by_construction
    e = spread * rng.standard_normal((64, d))
    x = f(e)
    assert x.shape == (64, p)
    np.testing.assert_allclose(f.inverse(x), e, rtol=0, atol=1e-8 * max(1.0, spread))


@pytest.mark.parametrize("activation", ["leaky_relu", "smooth"])
def test_mlp_mixing_is_nonlinear_and_monotone_activation(activation):
    rng = np.random.default_rng(0)
    f = MLPMixing.random(2, 4, rng, n_layers=3, activation=activation)
    e = rng.standard_normal((200, 2))
    # not affine: f(a) + f(b) != f(a + b) - f(0) somewhere
    a, b = e[:100], e[100:]
    zero = np.zeros((1, 2))
    assert np.abs(f(a) + f(b) - f(a + b) - f(zero)).max() > 1e-3
    u = np.linspace(-30, 30, 2001)
    s = f._act(u)
    assert np.all(np.diff(s) > 0), "activation must be strictly increasing"
    np.testing.assert_allclose(f._act_inv(s), u, atol=1e-9)


def test_mlp_mixing_rejects_bad_input():
    rng = np.random.default_rng(0)
    W_ok = np.eye(3)
    # shrinking width
    with pytest.raises(MixingError, match="p_out >= p_in"):
        MLPMixing((np.ones((2, 3)),), (np.zeros(2),))
    # rank-deficient layer
    W_bad = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 0.0], [3.0, 6.0, 1.0]])  # column 2 = 2 * column 1
    with pytest.raises(MixingError, match="layer 1.*full column rank"):
        MLPMixing((W_ok, W_bad), (np.zeros(3), np.zeros(3)))
    # widths that do not chain
    with pytest.raises(MixingError, match="input width"):
        MLPMixing((np.eye(2), np.eye(3)), (np.zeros(2), np.zeros(3)))
    with pytest.raises(MixingError, match="activation"):
        MLPMixing((W_ok,), (np.zeros(3),), activation="relu")
    with pytest.raises(MixingError, match="slope"):
        MLPMixing((W_ok,), (np.zeros(3),), slope=1.0)
    with pytest.raises(MixingError, match="NaN"):
        MLPMixing((np.array([[np.nan]]),), (np.zeros(1),))
    with pytest.raises(MixingError, match="hidden"):
        MLPMixing.random(3, 5, rng, hidden=2)
    with pytest.raises(MixingError, match="hidden"):
        MLPMixing.random(3, 5, rng, hidden=6)
    with pytest.raises(MixingError, match="n_layers"):
        MLPMixing.random(3, 5, rng, n_layers=0)
    f = MLPMixing.random(2, 3, rng)
    with pytest.raises(MixingError, match="NaN"):
        f(np.array([[1.0, np.nan]]))
    with pytest.raises(MixingError, match="NaN"):
        f(np.array([[1.0, np.inf]]))
    with pytest.raises(MixingError, match=r"shape \(n, 2\)"):
        f(np.zeros(2))


def test_rank_deficient_first_layer_raises():
    W = np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]])
    with pytest.raises(MixingError, match="layer 0.*full column rank"):
        MLPMixing((W,), (np.zeros(3),))


@pytest.mark.parametrize(
    "f",
    [
        LinearMixing(np.array([[1.0, 0.5], [0.0, 2.0], [1.0, 1.0]])),
        MLPMixing.random(2, 3, np.random.default_rng(0), activation="smooth", slope=0.3),
        MLPMixing.random(2, 5, np.random.default_rng(1)),
    ],
)
def test_mixing_dict_round_trip(f):
    g = mixing_from_dict(json.loads(json.dumps(f.to_dict())))
    e = np.random.default_rng(2).normal(size=(20, 2))
    assert type(g) is type(f)
    assert np.array_equal(g(e), f(e))


def test_mixing_from_dict_and_image_mixing_validation():
    with pytest.raises(MixingError, match="unknown mixing kind"):
        mixing_from_dict({"kind": "conv"})
    with pytest.raises(MixingError, match="size"):
        ImageMixing(4)
    m = ImageMixing(16, nuisance=True)
    assert m.input_dim == 10 and m.output_shape == (16, 16, 3)
    assert not m.injective_by_construction
    assert mixing_from_dict(m.to_dict()).to_dict() == m.to_dict()


# -- concept model ------------------------------------------------------------------------------


def small_model(nuisance_dim: int = 2, seed: int = 0, mixing: str = "mlp") -> ConceptModel:
    rng = np.random.default_rng(seed)
    sem = random_sem(chain(3, names=["a", "b", "c"]), rng, noise_mean_scale=1.0)
    ctxs = single_target_contexts(sem, rng)
    d = sem.K + nuisance_dim
    T = random_readout(sem.K, d, rng)
    f = MLPMixing.random(d, d + 2, rng) if mixing == "mlp" else LinearMixing.random(d, d + 1, rng)
    return ConceptModel(sem, f, T, nuisance_dim, 1.5, ctxs, composed(ctxs, "pairs"))


def test_concept_model_linear_readout_holds_in_every_context():
    model = small_model()
    rng = np.random.default_rng(1)
    assert model.C.shape == (3, 5) and model.N.shape == (2, 5)
    for ctx in model.all_contexts:
        smp = model.sample(ctx, 500, rng)
        np.testing.assert_allclose(smp.e @ model.C.T, smp.c, atol=1e-10)  # A1: c = C e
        np.testing.assert_allclose(smp.e @ model.N.T, smp.nuisance, atol=1e-10)
        np.testing.assert_allclose(smp.x, model.mixing(smp.e), rtol=1e-12)
        np.testing.assert_allclose(model.mixing.inverse(smp.x) @ model.C.T, smp.c, atol=1e-8)
    assert np.linalg.matrix_rank(model.C) == model.K  # A2


def test_concept_model_samples_follow_the_intervened_sem():
    model = small_model(mixing="linear")
    rng = np.random.default_rng(2)
    n = 100_000
    for name in ("obs", "do(b)", "do(a,c)"):
        smp = model.sample(name, n, rng)
        mu, S = model.population_moments(name)
        se = np.sqrt(np.diag(S) / n)
        assert np.all(np.abs(smp.c.mean(axis=0) - mu) < 6 * se)
        np.testing.assert_allclose(np.cov(smp.c.T), S, atol=0.05 * np.abs(S).max())


def test_nuisance_law_is_invariant_and_independent_of_concepts():
    model = small_model(nuisance_dim=2)
    n = 50_000
    rng = np.random.default_rng(3)
    bound = 5 / np.sqrt(n)
    means, covs = [], []
    for ctx in model.all_contexts:
        smp = model.sample(ctx, n, rng)
        nu = smp.nuisance
        assert nu.shape == (n, 2)
        means.append(nu.mean(axis=0))
        covs.append(np.cov(nu.T))
        # N(0, 1.5^2 I): mean within 6 s.e.; variance within 6 s.e. (s.e. of s^2 is s^2 sqrt(2/n))
        assert np.all(np.abs(nu.mean(axis=0)) < 6 * 1.5 / np.sqrt(n))
        np.testing.assert_allclose(np.diag(covs[-1]), 2.25, atol=6 * 2.25 * np.sqrt(2 / n))
        assert abs(covs[-1][0, 1]) < 6 * 2.25 / np.sqrt(n)
        # independent of the concepts: uncorrelated with c and with c^2
        for j in range(model.K):
            for f in (lambda u: u, np.square):
                for q in range(2):
                    assert abs(np.corrcoef(f(smp.c[:, j]), nu[:, q])[0, 1]) < bound
    # the same law in every context: largest difference of means across contexts is sampling error
    means = np.array(means)
    assert np.ptp(means, axis=0).max() < 2 * 6 * 1.5 / np.sqrt(n)


def test_concept_model_validation():
    rng = np.random.default_rng(0)
    sem = random_sem(chain(2), rng)
    f = LinearMixing(np.eye(3))
    with pytest.raises(ModelError, match="invertible"):
        ConceptModel(sem, f, np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0.0]]), 1)
    with pytest.raises(ModelError, match="mixing takes 3 inputs.*2 \\+ 0 = 2"):
        ConceptModel(sem, f, None, 0)
    with pytest.raises(ModelError, match=r"readout T must be \(3, 3\)"):
        ConceptModel(sem, f, np.eye(2), 1)
    with pytest.raises(ModelError, match="nuisance_dim"):
        ConceptModel(sem, LinearMixing(np.eye(1)), None, -1)
    with pytest.raises(ModelError, match="nuisance_scale"):
        ConceptModel(sem, f, None, 1, 0.0)
    with pytest.raises(ModelError, match="unique"):
        ConceptModel(sem, f, None, 1, 1.0, (Context(), Context((Hard("c0"),), name="obs")))
    with pytest.raises(InterventionError, match="'zz'"):
        ConceptModel(sem, f, None, 1, 1.0, (Context(), Context((Hard("zz"),))))
    with pytest.raises(ModelError, match="sem must be an SEM"):
        ConceptModel("sem", f)
    m = ConceptModel(sem, f, None, 1)
    with pytest.raises(InterventionError, match="unknown context 'do\\(c9\\)'"):
        m.sample("do(c9)", 5, rng)


def test_random_readout_condition_and_validation():
    T = random_readout(3, 5, np.random.default_rng(0), condition_number=4.0)
    s = np.linalg.svd(T, compute_uv=False)
    assert T.shape == (5, 5) and s[0] / s[-1] == pytest.approx(4.0)
    with pytest.raises(ModelError, match="d = 2 must be >= K = 3"):
        random_readout(3, 2, np.random.default_rng(0))


def test_concept_model_dict_round_trip_reproduces_samples():
    model = small_model()
    m2 = ConceptModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert m2.sem == model.sem
    assert np.array_equal(m2.readout, model.readout)
    assert [c.name for c in m2.all_contexts] == [c.name for c in model.all_contexts]
    for name in ("obs", "do(a)", "do(a,c)"):
        a = model.sample(name, 50, np.random.default_rng(9))
        b = m2.sample(name, 50, np.random.default_rng(9))
        assert np.array_equal(a.x, b.x) and np.array_equal(a.c, b.c)
    # a misspelt key is refused, not dropped (the untrusted JSON of `conceptid check FILE`)
    with pytest.raises(ModelError, match=r"unknown model key\(s\) \['held_outs'\]"):
        ConceptModel.from_dict({**model.to_dict(), "held_outs": []})
    with pytest.raises(ModelError, match="needs at least the keys 'sem' and 'mixing'"):
        ConceptModel.from_dict({"sem": model.to_dict()["sem"]})


def test_a_model_dicts_held_out_may_name_targets_as_a_preset_does():
    model = small_model()
    d = json.loads(json.dumps(model.to_dict()))
    full = ConceptModel.from_dict(d)
    # "pairs" and lists of names compose the single-target contexts, as composed() does
    for held in ("pairs", [["a", "b"], ["a", "c"], ["b", "c"]]):
        m2 = ConceptModel.from_dict({**d, "held_out": held})
        assert [c.to_dict() for c in m2.held_out] == [c.to_dict() for c in full.held_out]
    one = ConceptModel.from_dict({**d, "held_out": [["c", "a"]]})
    assert [c.name for c in one.held_out] == ["do(c,a)"]
    assert one.held_out[0] == full.contexts[3].compose(full.contexts[1])
    with pytest.raises(InterventionError, match=r"no single-target context for \['z'\]"):
        ConceptModel.from_dict({**d, "held_out": [["a", "z"]]})
    with pytest.raises(ModelError, match="at least two targets"):
        ConceptModel.from_dict({**d, "held_out": [["a"]]})
    with pytest.raises(ModelError, match="mixes context dicts and lists of target names"):
        ConceptModel.from_dict({**d, "held_out": [d["held_out"][0], ["a", "b"]]})
    with pytest.raises(ModelError, match="'held_out' must be a list of context dicts"):
        ConceptModel.from_dict({**d, "held_out": ["a", "b"]})
    # a target with two single-target contexts: which to compose is ambiguous
    twice = {**d, "contexts": [*d["contexts"], {**d["contexts"][1], "name": "do(a) again"}]}
    ConceptModel.from_dict({**twice, "held_out": [["b", "c"]]})  # does not use a: fine
    with pytest.raises(ModelError, match=r"more than one single-target context \(a\)"):
        ConceptModel.from_dict({**twice, "held_out": [["a", "b"]]})
    with pytest.raises(ModelError, match=r"more than one single-target context \(a\)"):
        composed(ConceptModel.from_dict(twice).contexts, "pairs")  # composed's own refusal
    # a malformed context is named by its place
    with pytest.raises(InterventionError, match=r"held_out\[1\]: a context dict needs"):
        ConceptModel.from_dict({**d, "held_out": [d["held_out"][0], {"name": "x"}]})
    with pytest.raises(InterventionError, match=r"contexts\[0\]: a context dict needs"):
        ConceptModel.from_dict({**d, "contexts": [{}]})
    with pytest.raises(ModelError, match="'contexts' must be a list of context dicts"):
        ConceptModel.from_dict({**d, "contexts": "obs"})


# -- presets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("chain", {}),
        ("chain", {"m": 3, "mixing": "mlp", "nuisance_dim": 2, "block_size": 2}),
        ("chain", {"intervention": "shift", "mixing": "identity", "held_out": None}),
        ("chain", {"intervention": "soft", "noise": "laplace", "mechanism": "tanh"}),
        ("random", {"m": 6, "expected_degree": 2.0, "held_out": "all"}),
        ("quad", {}),
        ("quad", {"nuisance": True, "mixing": "identity"}),
    ],
)
def test_presets_build_and_sample(name, kwargs):
    model = build_preset(name, np.random.default_rng(0), **kwargs)
    assert isinstance(model, ConceptModel)
    assert model.contexts[0].is_observational
    # one single-target context per concept (quad: per target), targets all distinct
    singles = model.contexts[1:]
    assert all(len(c) == 1 for c in singles)
    assert len({c.targets[0] for c in singles}) == len(singles)
    assert all(len(c) >= 2 for c in model.held_out)
    if name != "quad" or kwargs.get("mixing") == "identity":
        smp = model.sample(model.all_contexts[-1], 30, np.random.default_rng(1))
        assert smp.x.shape == (30, *model.mixing.output_shape)
        assert np.all(np.isfinite(smp.x))


@pytest.mark.parametrize("kind", ["hard", "shift", "soft"])
def test_single_target_contexts_change_the_target_mechanism(kind):
    # A7: each intervention changes the law of its target given its parents
    rng = np.random.default_rng(0)
    sem = random_sem(chain(4), rng, block_sizes=2)
    ctxs = single_target_contexts(sem, rng, kind=kind)
    assert ctxs[0].is_observational and len(ctxs) == 5
    for j, ctx in enumerate(ctxs[1:]):
        new = sem.intervene(ctx)
        sl = sem.slices[j]
        changed = (
            not np.array_equal(new.weights[sl], sem.weights[sl])
            or not np.array_equal(new.noise_mean[sl], sem.noise_mean[sl])
            or not np.array_equal(new.noise_cov[j], sem.noise_cov[j])
        )
        assert changed, f"{kind} context on {sem.names[j]} does not change its mechanism"
    with pytest.raises(InterventionError, match="kind"):
        single_target_contexts(sem, rng, kind="magic")


def test_build_preset_rejects_unknown_names_and_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ModelError, match="unknown preset 'nope'"):
        build_preset("nope", rng)
    with pytest.raises(ModelError, match=r"does not take \['colour'\]"):
        build_preset("chain", rng, colour=3)
    assert set(PRESETS) == {"chain", "random", "quad"}


def test_quad_standardized_observational_moments():
    model = quad(mixing="identity")
    mu, S = model.population_moments("obs")
    np.testing.assert_allclose(mu, 0.0, atol=1e-12)
    np.testing.assert_allclose(np.sqrt(np.diag(S)), 1.0, rtol=1e-12)
    # concepts are still dependent (standardising is per concept, not whitening)
    assert np.abs(S - np.diag(np.diag(S))).max() > 0.1


def test_independent_quad_has_no_edges_and_independent_concepts_in_every_context():
    dep, ind = quad(mixing="identity"), quad(mixing="identity", dependent=False)
    assert ind.sem.graph.edges == [] and len(dep.sem.graph.edges) == 11
    assert [c.name for c in ind.all_contexts] == [c.name for c in dep.all_contexts]
    for ctx in ind.all_contexts:
        mu, S = ind.population_moments(ctx)
        np.testing.assert_allclose(S, np.diag(np.diag(S)), atol=1e-12)
    # standardised by its own observational law: identity covariance, zero mean
    mu, S = ind.population_moments("obs")
    np.testing.assert_allclose(mu, 0.0, atol=1e-12)
    np.testing.assert_allclose(S, np.eye(8), atol=1e-12)


def test_quad_targets_and_untargeted_concepts():
    model = quad(mixing="identity", held_out="all")
    targets = [c.targets[0] for c in model.contexts[1:]]
    assert targets == ["quad1", "quad2", "quad3", "quad4", "size", "orientation"]
    assert tuple(targets) == QUAD_TARGETS
    for ctx in model.all_contexts:
        assert not {"color", "shape"} & set(ctx.targets)
        assert all(iv.kind == "hard" for iv in ctx)
    assert model.sem.names == (
        "quad1",
        "quad2",
        "quad3",
        "quad4",
        "size",
        "color",
        "shape",
        "orientation",
    )


def test_quad_standardized_contexts_equal_raw_contexts_transformed():
    raw = quad(standardize=False, mixing="identity")
    std = quad(mixing="identity")
    loc = raw.sem.population_mean()
    scale = np.sqrt(np.diag(raw.sem.population_covariance()))
    assert [c.name for c in raw.all_contexts] == [c.name for c in std.all_contexts]
    assert len(std.all_contexts) == 7 + 15
    for raw_ctx, std_ctx in zip(raw.all_contexts, std.all_contexts):
        mu_r, S_r = raw.population_moments(raw_ctx)
        mu_s, S_s = std.population_moments(std_ctx)
        np.testing.assert_allclose(mu_s, (mu_r - loc) / scale, atol=1e-10)
        np.testing.assert_allclose(S_s, S_r / np.outer(scale, scale), atol=1e-10)
        for iv_r, iv_s in zip(raw_ctx, std_ctx):
            j = raw.sem.resolve(iv_r.target)
            assert iv_s.target == iv_r.target
            assert float(iv_s.mean) == pytest.approx((float(iv_r.mean) - loc[j]) / scale[j])
            assert float(iv_s.cov) == pytest.approx(float(iv_r.cov) / scale[j] ** 2)
    # raw interventions carry the published means: a hard intervention sets the target's mean
    for ctx in raw.contexts[1:]:
        (iv,) = ctx.interventions
        j = raw.sem.resolve(iv.target)
        mu, S = raw.population_moments(ctx)
        assert mu[j] == pytest.approx(float(iv.mean))
        assert S[j, j] == pytest.approx(float(iv.cov))


def test_quad_rejects_unknown_mixing():
    with pytest.raises(MixingError, match="quad takes mixing"):
        quad(mixing="mlp")


# -- composed contexts --------------------------------------------------------------------------


def test_composed_pairs_for_quad():
    model = quad(mixing="identity")
    assert len(model.held_out) == 15
    pairs = {frozenset(c.targets) for c in model.held_out}
    assert len(pairs) == 15
    assert all(len(p) == 2 and p <= set(QUAD_TARGETS) for p in pairs)
    # a composed context is the union of the two single-target interventions
    singles = {c.targets[0]: c.interventions[0] for c in model.contexts[1:]}
    for c in model.held_out:
        assert c.name == f"do({c.targets[0]},{c.targets[1]})"
        assert all(iv == singles[iv.target] for iv in c)


def test_composed_explicit_list_all_and_errors():
    model = quad(mixing="identity", held_out=None)
    assert model.held_out == ()
    out = composed(model.contexts, [["size", "quad1"], ["quad2", "quad3", "quad4"]])
    assert [c.name for c in out] == ["do(size,quad1)", "do(quad2,quad3,quad4)"]
    assert out[1].targets == ("quad2", "quad3", "quad4")
    assert len(composed(model.contexts, "all")) == 2**6 - 6 - 1
    with pytest.raises(InterventionError, match="color"):
        composed(model.contexts, [["color", "size"]])
    with pytest.raises(ModelError, match="at least two"):
        composed(model.contexts, [["size"]])
    with pytest.raises(ModelError, match="groups"):
        composed(model.contexts, "triples")
    with pytest.raises(ModelError, match="single-target"):
        composed(out, "pairs")
    # explicit list given to the preset
    m2 = quad(mixing="identity", held_out=[["size", "orientation"]])
    assert [c.name for c in m2.held_out] == ["do(size,orientation)"]
    with pytest.raises(InterventionError, match="shape"):
        quad(mixing="identity", held_out=[["shape", "size"]])


def test_composed_context_moments_equal_sequential_interventions():
    model = quad(mixing="identity")
    for ctx in model.held_out:
        a, b = ctx.interventions
        seq = model.sem.intervene(a).intervene(b)
        mu, S = model.population_moments(ctx)
        np.testing.assert_allclose(mu, seq.population_mean(), atol=1e-12)
        np.testing.assert_allclose(S, seq.population_covariance(), atol=1e-12)


def test_shift_contexts_compose_too():
    rng = np.random.default_rng(0)
    sem = random_sem(chain(3), rng)
    ctxs = (Context(), Context((Shift("c0", 1.0),)), Context((Shift("c2", -1.0),)))
    (both,) = composed(ctxs, "pairs")
    assert both.targets == ("c0", "c2")
    np.testing.assert_allclose(
        sem.intervene(both).population_mean(),
        sem.intervene(ctxs[1]).intervene(ctxs[2]).population_mean(),
    )
