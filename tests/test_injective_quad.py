"""The identifiable quad variant: the injective renderer, its inverse, the preset, its verdict."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from conceptid.cli import main
from conceptid.identifiability import IDENTIFIABLE, check
from conceptid.simulations import (
    BenchmarkSpec,
    ConceptModel,
    InjectiveQuadMixing,
    MixingError,
    ModelError,
    generate,
)
from conceptid.simulations.mixing import ImageMixing, mixing_from_dict
from conceptid.simulations.presets import (
    QUAD_INTERVENTION_MEAN,
    QUAD_INTERVENTION_VAR,
    QUAD_NAMES,
    QUAD_TARGETS,
    quad,
)
from conceptid.simulations.render import (
    INJECTIVE_RANGES,
    invert_quad_injective,
    render_quad_injective,
    to_uint8,
)
from conceptid.simulations.resources import estimate_dataset

ROOT = Path(__file__).resolve().parents[1]


def _draws(cols: int, seed: int, n: int = 300, extreme: float = 10.0) -> np.ndarray:
    """Random embeddings with many coordinates at +-extreme (the ends of the tested range)."""
    rng = np.random.default_rng(seed)
    e = 2.0 * rng.standard_normal((n, cols))
    ends = rng.random((n, cols)) < 0.3
    e[ends] = extreme * rng.choice([-1.0, 1.0], size=ends.sum())
    corners = extreme * np.array(np.meshgrid(*[[-1.0, 1.0]] * 3)).reshape(3, -1).T
    block = np.zeros((len(corners) + 1, cols))  # the last row: an isotropic blob (u = w = 0)
    block[:-1, 4], block[:-1, 6], block[:-1, 7] = corners.T  # size, shape, orientation together
    return np.concatenate([e, block])


# -- the renderer and its inverse --------------------------------------------------------------


@pytest.mark.parametrize("size", [8, 9, 32, 64])
@pytest.mark.parametrize("cols", [8, 10])
def test_inverse_recovers_e_to_1e_8_including_extreme_values(size, cols):
    e = _draws(cols, seed=10 * size + cols)
    x = render_quad_injective(e, size)
    back = invert_quad_injective(x, nuisance=cols == 10)
    assert back.shape == e.shape and back.dtype == np.float64
    err = np.abs(back - e).max(axis=0)
    assert err.max() <= 1e-8, dict(zip(QUAD_NAMES + ("pos_x", "pos_y"), err))


def test_the_blob_stays_far_above_float64_underflow():
    # the bound of the docstring and the lemma, at the narrowest, faintest blobs with the centre
    # at each corner of its range and every extreme stretch
    k_max = math.sqrt(2) * 1.2
    bound = 0.35 * math.exp(-0.5 * 2 * 0.62**2 * math.exp(k_max) / 0.08**2)
    assert bound > 1e-143 and bound > 0.35 * math.exp(-327.9)
    rows = []
    for u, w, px, py in itertools.product([-40, 0, 40], [-40, 0, 40], [-40, 40], [-40, 40]):
        rows.append([0, 0, 0, 0, -40, -40, u, w, px, py])  # smallest scale, lowest peak
    green = render_quad_injective(np.array(rows, dtype=float), 64)[..., 1]
    assert green.min() > bound


def test_shape_dtype_range_determinism_and_chunks():
    e = _draws(10, seed=1, n=37)
    x = render_quad_injective(e, 16)
    assert x.shape == (len(e), 16, 16, 3) and x.dtype == np.float64
    assert x.min() > 0.0 and x.max() < 1.0
    np.testing.assert_array_equal(render_quad_injective(e, 16), x)
    for chunk in (1, 5, 1000):
        np.testing.assert_array_equal(render_quad_injective(e, 16, chunk_size=chunk), x)
    assert render_quad_injective(np.zeros((0, 8)), 12).shape == (0, 12, 12, 3)
    assert invert_quad_injective(np.zeros((0, 12, 12, 3))).shape == (0, 8)
    np.testing.assert_array_equal(render_quad_injective(e.tolist(), 16), x)  # array-likes


def test_the_object_never_touches_the_quadrant_channel():
    base = np.zeros((1, 10))
    x0 = render_quad_injective(base, 32)
    for j in range(4, 10):  # the object's concepts and the nuisance: green and blue only
        moved = base.copy()
        moved[0, j] = 2.5
        x1 = render_quad_injective(moved, 32)
        np.testing.assert_array_equal(x1[..., 0], x0[..., 0])
        np.testing.assert_array_equal(x1[..., 1], x1[..., 2])
        assert np.abs(x1[..., 1] - x0[..., 1]).max() > 1e-3, QUAD_NAMES[j] if j < 8 else j
    moved = base.copy()
    moved[0, 0] = 2.5  # quad1: the top-left quadrant's red, nothing else
    x1 = render_quad_injective(moved, 32)
    np.testing.assert_array_equal(x1[..., 1:], x0[..., 1:])
    changed = np.abs(x1 - x0).max(axis=-1)[0] > 0
    assert changed[:16, :16].all() and not changed[16:].any() and not changed[:, 16:].any()


def test_the_blob_is_a_gaussian_with_the_stated_log_covariance():
    e = _draws(10, seed=2, n=20, extreme=4.0)
    n = len(e)
    green = render_quad_injective(e, 24)[..., 1]
    t = (np.arange(24) + 0.5) / 24 - 0.5
    y, x = np.meshgrid(t, t, indexing="ij")
    design = np.stack([np.ones(576), x.ravel(), y.ravel(), x.ravel() ** 2, (x * y).ravel(),
                       y.ravel() ** 2], axis=1)  # fmt: skip
    logs = np.log(green.reshape(n, -1)).T
    coef, *_ = np.linalg.lstsq(design, logs, rcond=None)
    assert np.abs(design @ coef - logs).max() < 1e-10 * np.abs(logs).max()  # a quadratic
    # its precision P = S^-1: log S = 2 log(r) I + [[u, w], [w, -u]] from size, shape, orientation
    P = np.array([[-2 * coef[3], -coef[4]], [-coef[4], -2 * coef[5]]]).transpose(2, 0, 1)
    val, vec = np.linalg.eigh(P)
    log_S = -np.einsum("nij,nj,nkj->nik", vec, np.log(val), vec)

    def squash(c, name):
        lo, hi = INJECTIVE_RANGES[name]
        return lo + (hi - lo) / (1 + np.exp(-c))

    r, u, w = squash(e[:, 4], "scale"), squash(e[:, 6], "stretch"), squash(e[:, 7], "stretch")
    want = 2 * np.log(r)[:, None, None] * np.eye(2) + np.stack(
        [np.stack([u, w], -1), np.stack([w, -u], -1)], 1
    )
    np.testing.assert_allclose(log_S, want, atol=1e-8)


def test_the_jacobian_has_full_rank():
    # an injective smooth map has no reason to lose rank; here it never does (checked by central
    # differences at random points and near the ends of the ranges)
    rng = np.random.default_rng(3)
    for e0 in [rng.normal(size=10), np.full(10, 5.0), np.full(10, -5.0)]:
        h = 1e-5
        cols = []
        for j in range(10):
            step = np.zeros(10)
            step[j] = h
            d = render_quad_injective(np.stack([e0 + step, e0 - step]), 16)
            cols.append(((d[0] - d[1]) / (2 * h)).ravel())
        s = np.linalg.svd(np.stack(cols, axis=1), compute_uv=False)
        assert s[-1] > 1e-6 * s[0], s


def test_uint8_images_are_not_the_mixing_and_the_inverse_says_so():
    e = np.zeros((1, 8))
    e[0, 4] = -3.0  # a small blob: its tails round to 0 in 8 bits
    x8 = to_uint8(render_quad_injective(e, 32)) / 255.0
    with pytest.raises(MixingError, match="green channel"):
        invert_quad_injective(x8)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((2, 8, 8)), "shape"),
        (np.zeros((2, 6, 6, 3)), "S >= 8"),
        (np.full((1, 8, 8, 3), np.nan), "finite"),
        (np.full((1, 8, 8, 3), 0.5), "concave quadratic"),
        (np.full((1, 8, 8, 3), 0.95), "shade"),
        (np.zeros((1, 8, 8, 3), dtype=complex), "real"),
        ("images", "real array"),
    ],
)
def test_inverse_refuses_what_is_not_an_image_of_the_renderer(bad, match):
    with pytest.raises(MixingError, match=match):
        invert_quad_injective(bad)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: render_quad_injective(np.zeros((2, 7)), 16), "shape"),
        (lambda: render_quad_injective(np.full((1, 8), np.inf), 16), "finite"),
        (lambda: render_quad_injective(np.zeros((1, 8)), 4), "size"),
        (lambda: render_quad_injective(np.zeros((1, 8)), 16, chunk_size=0), "chunk_size"),
        (lambda: InjectiveQuadMixing(4), "size"),
        (lambda: InjectiveQuadMixing(16)(np.zeros((1, 10))), r"\(n, 8\)"),
        (lambda: InjectiveQuadMixing(16).inverse(np.zeros((1, 32, 32, 3))), r"\(n, 16, 16, 3\)"),
        (lambda: mixing_from_dict({"kind": "image", "renderer": "blob"}), "renderer 'blob'"),
    ],
)
def test_bad_arguments_are_refused_by_name(call, match):
    with pytest.raises(MixingError, match=match):
        call()


# -- the mixing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("nuisance", [False, True])
def test_mixing_round_trips_through_its_dict_and_inverts(nuisance):
    f = InjectiveQuadMixing(16, nuisance)
    assert f.kind == "image" and f.injective_by_construction
    assert not ImageMixing.injective_by_construction  # the quad renderer is not
    g = mixing_from_dict(json.loads(json.dumps(f.to_dict())))
    assert type(g) is InjectiveQuadMixing and (g.size, g.nuisance) == (16, nuisance)
    assert type(mixing_from_dict(ImageMixing(16).to_dict())) is ImageMixing
    e = _draws(f.input_dim, seed=4, n=10, extreme=3.0)
    np.testing.assert_array_equal(g(e), f(e))
    np.testing.assert_allclose(f.inverse(f(e)), e, atol=1e-10)
    model = quad(identifiable=True, image_size=16, nuisance=nuisance)
    again = ConceptModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert type(again.mixing) is InjectiveQuadMixing
    smp = again.sample("obs", 5, np.random.default_rng(0))
    np.testing.assert_allclose(again.mixing.inverse(smp.x), smp.e, atol=1e-10)


# -- the preset and its verdict -----------------------------------------------------------------


def test_identifiable_preset_intervenes_on_every_concept():
    model = quad(identifiable=True)
    assert type(model.mixing) is InjectiveQuadMixing and model.mixing.output_shape == (32, 32, 3)
    assert model.contexts[0].is_observational and len(model.contexts) == 9
    targets = [c.targets for c in model.contexts[1:]]
    assert targets == [(name,) for name in QUAD_NAMES]
    assert all(len(c) == 1 and c.interventions[0].kind == "hard" for c in model.contexts[1:])
    # the transcribed laws (standardised exactly) for every concept, color and shape included
    raw = quad(identifiable=True, standardize=False, mixing="identity")
    for j, ctx in enumerate(raw.contexts[1:]):
        (iv,) = ctx.interventions
        assert float(iv.mean) == QUAD_INTERVENTION_MEAN[j]
        assert float(iv.cov) == QUAD_INTERVENTION_VAR[j]
    # held out: every pair of the eight, never a training context
    pairs = [frozenset(c.targets) for c in model.held_out]
    assert len(pairs) == len(set(pairs)) == math.comb(8, 2)
    assert all(len(p) == 2 and p <= set(QUAD_NAMES) for p in pairs)
    # the default preset is unchanged
    assert [c.targets[0] for c in quad().contexts[1:]] == list(QUAD_TARGETS)
    assert type(quad().mixing) is ImageMixing


@pytest.mark.parametrize("dependent", [True, False])
@pytest.mark.parametrize("nuisance", [False, True])
def test_check_says_identifiable_star_with_a3_by_construction(dependent, nuisance):
    # exact arithmetic (A3 needs no search here, so the whole check takes a fraction of a second)
    report = check(quad(identifiable=True, dependent=dependent, nuisance=nuisance), "exact")
    assert {k: v.holds for k, v in report.assumptions.items()} == dict.fromkeys(
        report.assumptions, True
    )
    a3 = report.assumptions["A3"]
    assert a3.how == "by construction" and "lemma_injective_renderer" in a3.reason
    assert report.theorem.startswith("Theorem S")
    assert [c.concept for c in report.concepts] == list(QUAD_NAMES)
    for c in report.concepts:
        assert c.status == IDENTIFIABLE and c.conditional and "Buchholz" in c.conditional
    assert str(report).count("identifiable*") == 8


def test_a_subclass_of_the_injective_mixing_is_not_trusted_by_construction():
    class Blurred(InjectiveQuadMixing):  # draws something else: the proof says nothing of it
        def __call__(self, e, *, progress=False):
            return np.round(super().__call__(e), 1)

    model = quad(identifiable=True, image_size=8)
    model = ConceptModel(model.sem, Blurred(8), None, 0, 1.0, model.contexts)
    a3 = check(model, "numeric").assumptions["A3"]
    assert a3.how != "by construction" and a3.holds is not True


def test_observing_the_concepts_of_the_variant_directly_is_theorem_l():
    # every concept intervened and linear mixing: proved (no star); the source design, whose
    # color and shape are never intervened, fails A6 under the same mixing
    report = check(quad(identifiable=True, mixing="identity"), "numeric")
    assert report.identifiable and report.theorem.startswith("Theorem L")
    assert all(c.conditional is None for c in report.concepts)
    assert report.confirmation["ok"]
    source = check(quad(mixing="identity"), "numeric")
    assert source.assumptions["A6"].holds is False and not source.identifiable


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"identifiable": "yes"}, ModelError, "identifiable must be true or false"),
        ({"identifiable": 1}, ModelError, "identifiable"),
        ({"identifiable": True, "mixing": "mlp"}, MixingError, "quad takes mixing"),
        ({"identifiable": True, "image_size": 4}, MixingError, "size must be an integer >= 8"),
    ],
)
def test_bad_preset_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        quad(**kwargs)


def test_dataset_size_estimate_counts_the_eight_contexts_and_28_pairs():
    spec = BenchmarkSpec(preset="quad", preset_args={"identifiable": True}, n_train=10, n_val=2,
                         n_test=3)  # fmt: skip
    est = estimate_dataset(spec)
    assert est.rows == (10 + 2) * 9 + 3 * (9 + 28)
    assert est.obs_shape == (32, 32, 3) and est.obs_itemsize == 1
    ds = generate(spec)
    assert len(ds.x) == est.rows and ds.x.dtype == np.uint8
    assert type(ds.model.mixing) is InjectiveQuadMixing
    assert ds.card["observation"]["kind"] == "image"


def test_cli_check_preset_identifiable(capsys):
    assert main(["check", "--preset", "quad", "--preset-arg", "identifiable=true"]) == 0
    out = capsys.readouterr().out
    assert out.count("identifiable*") == 8 and "by construction" in out
    assert main(["check", "--preset", "quad", "--preset-arg", 'identifiable="yes"']) == 2
    err = capsys.readouterr().err
    assert "identifiable must be true or false" in err and len(err.strip().splitlines()) == 1


# -- the certificate and the renderer agree on the numbers --------------------------------------


def test_certificate_uses_the_renderers_ranges():
    path = ROOT / "proofs" / "certificates" / "cert_injective_renderer.py"
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location("cert_injective_renderer_ranges", path)
        cert = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cert)
    finally:
        sys.path.remove(str(path.parent))
    assert set(cert.RANGES) == set(INJECTIVE_RANGES)
    for name, (lo, hi) in cert.RANGES.items():
        assert (float(lo), float(hi)) == pytest.approx(INJECTIVE_RANGES[name], abs=1e-15), name
