"""Bad input to the simulations and identifiability layers' Python API: refused before any work,
with the package's own error naming what was wrong; valid input unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conceptid.identifiability import (
    IDENTIFIABLE,
    Exact,
    IdentificationError,
    Numeric,
    align,
    check,
    identify_linear,
    identify_linear_ml,
    model_moments,
)
from conceptid.simulations import BenchmarkSpec, ConceptModel, Dataset, build_preset, generate
from conceptid.simulations.benchmark import DatasetError
from conceptid.simulations.errors import UsageError
from conceptid.simulations.graphs import DAG
from conceptid.simulations.interventions import Hard, InterventionError, as_context
from conceptid.simulations.model import ModelError
from conceptid.simulations.resources import MemoryLimitError
from conceptid.simulations.sem import SEM, SEMError, random_sem

HUGE = 10**12


@pytest.fixture(scope="module")
def linear():
    """A linear chain c0 -> c1 -> c2 (p = 8) and its float64 population moments."""
    model = build_preset("chain", np.random.default_rng(0), m=3, nuisance_dim=1, mixing="linear")
    moments, targets = model_moments(model, Numeric())
    moments = [(np.asarray(a, float), np.asarray(b, float)) for a, b in moments]
    return model, moments, targets


@pytest.fixture(scope="module")
def ds():
    return generate(BenchmarkSpec(preset="chain", preset_args={"m": 3, "nuisance_dim": 1},
                                  n_train=20, n_val=5, n_test=5, seed=0))  # fmt: skip


# -- identify_linear, identify_linear_ml ---------------------------------------------------------


#: (name, change to identify_linear's arguments given the moments, words of the refusal)
BAD = [
    ("edge_tol nan", lambda m: {"edge_tol": np.nan},
     "edge_tol must be a non-negative finite number, got nan"),
    ("edge_tol -1", lambda m: {"edge_tol": -1},
     "edge_tol must be a non-negative finite number, got -1"),
    ("edge_tol str", lambda m: {"edge_tol": "0.1"}, "edge_tol must be a non-negative finite"),
    ("asymmetric", lambda m: {"moments": [(a, b + 5 * np.triu(np.ones_like(b))) for a, b in m]},
     r"moments\[0\] covariance is not symmetric"),
    ("negative definite", lambda m: {"moments": [(a, -b) for a, b in m]},
     r"moments\[0\] covariance is not positive semi-definite"),
    ("complex", lambda m: {"moments": [(a + 1j, b + 1j) for a, b in m]},
     r"moments\[0\] mean must be real"),
    ("complex cov", lambda m: {"moments": [(a, b + 0j) for a, b in m]},
     r"moments\[0\] covariance must be real"),
    ("nan mean", lambda m: {"moments": [(a * np.nan, b) for a, b in m]},
     r"moments\[0\] contains NaN or infinite values"),
    ("two dims", lambda m: {"moments": m[:1] + [(a[:7], b[:7, :7]) for a, b in m[1:]]},
     r"moments\[1\] is of dimension 7 but moments\[0\] of 8"),
    ("not a pair", lambda m: {"moments": m[:-1] + [(1.0,)]},
     r"moments\[3\] must be a \(mean, cov\) pair"),
    ("K > p", lambda m: {"block_sizes": [3, 3, 3]}, "dimension p = 8 < K = 9"),
    ("block 0", lambda m: {"block_sizes": [1, 0, 1]},
     "each of block_sizes must be a positive integer, got 0"),
    ("blocks str", lambda m: {"block_sizes": "111"}, "block_sizes must be a list"),
    ("target name", lambda m: {"targets": [None, "c0", "c1", "c2"]},
     r"targets\[1\] must be a concept index \(an int\) or None, got 'c0'"),
    ("target float", lambda m: {"targets": [None, 0.0, 1, 2]},
     r"targets\[1\] must be a concept index"),
    ("target bool", lambda m: {"targets": [None, True, 0, 2]},
     r"targets\[1\] must be a concept index"),
    ("peel repeat", lambda m: {"peel_order": [0, 0, 1]},
     "peel_order must be a permutation of the concepts 0..2"),
    ("peel unknown", lambda m: {"peel_order": [0, 1, 5]},
     "peel_order must be a permutation of the concepts 0..2"),
    ("peel short", lambda m: {"peel_order": [0, 1]}, "peel_order must be a permutation"),
    ("peel float", lambda m: {"peel_order": [0, 1, 2.0]}, "peel_order must be a permutation"),
]  # fmt: skip


@pytest.mark.parametrize("name, change, words", BAD, ids=[c[0] for c in BAD])
def test_identify_linear_refuses_bad_input_by_name(linear, name, change, words):
    _, moments, targets = linear
    kwargs = {"moments": moments, "targets": targets, "block_sizes": [1, 1, 1]}
    with pytest.raises(IdentificationError, match=words):
        identify_linear(**(kwargs | change(moments)))


def test_identify_linear_ml_refuses_the_same_input_before_searching(linear, monkeypatch):
    import conceptid.identifiability.linear as lin

    _, moments, targets = linear
    called = []
    monkeypatch.setattr(lin, "_whitened", lambda *a: called.append(1))
    for name, change, words in BAD:
        if name.startswith("peel"):
            continue
        kwargs = {"moments": moments, "targets": targets, "block_sizes": [1, 1, 1],
                  "counts": [100] * 4} | change(moments)  # fmt: skip
        with pytest.raises(IdentificationError, match=words):
            identify_linear_ml(**kwargs)
    with pytest.raises(IdentificationError, match="max_exhaustive must be a non-negative"):
        identify_linear_ml(moments, targets, [1, 1, 1], [100] * 4, max_exhaustive=-1)
    assert called == []  # refused before any work


def test_identify_linear_valid_input_is_unchanged(linear):
    model, moments, targets = linear
    res = identify_linear(moments, targets, [1, 1, 1])
    assert res.graph.edges == model.sem.graph.edges
    again = identify_linear(moments, np.array(targets, dtype=object), (1, 1, 1), edge_tol=0,
                            peel_order=np.array(res.order))  # fmt: skip
    assert again.order == res.order
    ml = identify_linear_ml(moments, targets, [1, 1, 1], [100] * 4, max_exhaustive=0)
    assert ml.graph.edges == model.sem.graph.edges
    # a sample covariance of fewer samples than dimensions is positive semi-definite: accepted
    x = np.random.default_rng(0).standard_normal((5, 8))
    assert Numeric().covariance_problem(np.cov(x.T)) is None


def test_exact_arithmetic_checks_covariances_too(linear):
    model = linear[0]
    moments, targets = model_moments(model, Exact())
    assert identify_linear(moments, targets, [1, 1, 1], Exact()).order == [0, 1, 2]
    A = Exact()
    bad = [(m, A.mat(-A.to_float(S))) for m, S in moments]
    with pytest.raises(IdentificationError, match=r"moments\[0\] covariance is not positive"):
        identify_linear(bad, targets, [1, 1, 1], A)
    assert "not positive semi-definite" in A.covariance_problem(A.mat([[1.0, 2.0], [2.0, 1.0]]))
    assert "not positive semi-definite" in A.covariance_problem(A.mat([[0.0, 1.0], [1.0, 0.0]]))
    assert "not symmetric" in A.covariance_problem(A.mat([[1.0, 0.5], [0.6, 1.0]]))
    # rounding-level asymmetry (a covariance computed in floats, read exactly) and the zero
    # eigenvalues of x of more coordinates than the embedding (p = 8, d = 4) are accepted
    assert A.covariance_problem(A.mat([[1.0, 0.5], [0.5 + 1e-16, 1.0]])) is None
    assert all(A.covariance_problem(S) is None for _, S in moments)


# -- check's report, align -----------------------------------------------------------------------


def test_report_status_of_an_unknown_concept_lists_the_known_ones(linear):
    report = check(linear[0], "numeric")
    assert report.status("c0") == IDENTIFIABLE
    with pytest.raises(UsageError, match=r"unknown concept 'zz'; the concepts are \['c0', 'c1'"):
        report.status("zz")
    with pytest.raises(UsageError, match="unknown concept 0"):
        report.status(0)


def test_align_refuses_rows_too_few_for_an_affine_fit_to_be_informative():
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    with pytest.raises(UsageError, match="at least 5 rows to fit a 3-column learned block"):
        align(*noise, [3])
    with pytest.raises(UsageError, match="at least 5 rows to fit a 3-column learned block"):
        align(*noise, [3], assignment="hungarian")
    with pytest.raises(UsageError, match="block affinely, got 4: with fewer the fit is exact"):
        align(rng.standard_normal((4, 6)), rng.standard_normal((4, 1)),
              learned_blocks=[[0, 1, 2]])  # fmt: skip
    with pytest.raises(UsageError, match="at least 3 samples"):
        align(noise[0][:2], noise[1][:2])
    # scalar concepts keep the minimum of 3 rows; l + 2 rows is enough for a block of l
    assert align(noise[0][:3], noise[1][:3]).r2.shape == (3,)
    r2 = align(rng.standard_normal((5, 3)), rng.standard_normal((5, 3)), [3]).r2
    assert r2[0] < 1.0


# -- simulations: presets, models, samplers --------------------------------------------------------


def test_a_generator_is_required_where_a_model_is_drawn():
    words = r"rng must be a numpy.random.Generator \(np.random.default_rng\(seed\)\), got int"
    with pytest.raises(UsageError, match=words):
        build_preset("chain", 0)
    with pytest.raises(UsageError, match="rng must be a numpy.random.Generator"):
        build_preset("chain", None, m=3)
    with pytest.raises(UsageError, match=words):
        build_preset("quad", 0)
    assert build_preset("quad", None, image_size=16).K == 8  # it draws nothing: None is taken
    with pytest.raises(UsageError, match=words):
        random_sem(DAG.from_edges([("a", "b")]), 0)


def test_a_held_out_target_set_given_twice_is_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ModelError, match=r"held-out composition \['c1', 'c0'\] is given twice"):
        build_preset("chain", rng, m=3, held_out=[["c0", "c1"], ["c1", "c0"]])
    spec = BenchmarkSpec(preset="chain", preset_args={"m": 3, "held_out": [["c0", "c1"],
                         ["c0", "c1"]]}, n_train=5, n_val=2, n_test=2)  # fmt: skip
    with pytest.raises(ModelError, match="is given twice"):
        generate(spec)
    model = build_preset("chain", rng, m=3, held_out=[["c0", "c1"], ["c1", "c2"]])
    assert [c.name for c in model.held_out] == ["do(c0,c1)", "do(c1,c2)"]


def test_complex_parameters_are_refused_not_cast(linear):
    model = linear[0]
    with pytest.raises(ModelError, match="readout must be real, got complex values"):
        ConceptModel(model.sem, model.mixing, model.readout + 1j, 1, 1.0, model.contexts)
    with pytest.raises(ModelError, match="readout must be real"):
        ConceptModel(model.sem, model.mixing, model.readout + 0j, 1, 1.0, model.contexts)
    d = model.sem.to_dict()
    d["weights"] = (np.asarray(d["weights"]) + 1j).tolist()
    with pytest.raises(SEMError, match="weights must be real"):
        SEM.from_dict(d)
    with pytest.raises(InterventionError, match="mean of the hard intervention on 'c0' must be "
                       "real"):  # fmt: skip
        model.sample(Hard("c0", mean=1j, cov=1.0), 5, np.random.default_rng(0))


def test_sampling_refuses_a_context_of_another_kind(linear):
    model, rng = linear[0], np.random.default_rng(0)
    words = r"context must be a Context, a context name, an intervention .* got 1"
    with pytest.raises(UsageError, match=words):
        model.sample(1, 5, rng)
    with pytest.raises(UsageError, match="context must be a Context"):
        model.population_moments(2.5)
    with pytest.raises(UsageError, match="a context must be a Context, an intervention"):
        as_context(3)
    assert model.sample("do(c0)", 5, rng).x.shape == (5, 8)
    assert model.sample(None, 5, rng).x.shape == (5, 8)


def test_sampling_refuses_a_draw_beyond_memory_before_allocating(linear):
    model, rng = linear[0], np.random.default_rng(0)
    with pytest.raises(MemoryLimitError, match=f"sampling {HUGE} observations of shape"):
        model.sample(None, HUGE, rng)
    with pytest.raises(MemoryLimitError, match=f"sampling {HUGE} concept vectors of size 3"):
        model.sem.sample(HUGE, rng)
    with pytest.raises(MemoryLimitError, match="sampling 1000 observations"):
        model.sample(None, 1000, rng, max_memory=1e-9)
    with pytest.raises(MemoryLimitError, match="sampling 1000 concept vectors"):
        model.sem.sample(1000, rng, max_memory=1e-9)
    with pytest.raises(SEMError, match="n must be a non-negative integer, got -1"):
        model.sample(None, -1, rng)


# -- simulations: datasets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "context, words",
    [(99, "context index 99 outside 0..6"), (-1, "context index -1 outside 0..6"),
     (1.7, "a context is a name or an index, got 1.7"),
     (True, "a context is a name or an index, got True"), ("zz", "unknown context 'zz'")],
)  # fmt: skip
def test_mask_checks_its_context_as_context_index_does(ds, context, words):
    with pytest.raises(DatasetError, match=words):
        ds.mask("train", context)


def test_mask_of_a_valid_context_is_unchanged(ds):
    m = ds.mask("train", np.int64(1))
    assert np.array_equal(m, (ds.split == 0) & (ds.context == 1))
    assert np.array_equal(ds.mask(context="do(c0)"), ds.context == 1)


def test_save_takes_only_a_bool_for_overwrite(ds, tmp_path):
    out = ds.save(tmp_path / "d")
    card = (out / "card.json").read_text()
    other = generate(BenchmarkSpec(preset="chain", preset_args={"m": 2}, n_train=5, n_val=2,
                                   n_test=2, seed=1))  # fmt: skip
    for value in ("no", 1, None):
        with pytest.raises(UsageError, match=f"overwrite must be True or False, got {value!r}"):
            other.save(out, overwrite=value)
    assert (out / "card.json").read_text() == card  # nothing overwritten
    other.save(out, overwrite=np.True_)
    assert json.loads((out / "card.json").read_text())["card_hash"] == other.card_hash


def _imported(**kwargs):
    rng = np.random.default_rng(0)
    contexts = {"obs": [], "a": ["a"], "b": ["b"]}
    labels = rng.choice(list(contexts), size=200)
    x = rng.standard_normal((200, 5))
    return Dataset.from_arrays(x, [contexts[k] for k in labels], ["a", "b"], **kwargs)


def test_from_arrays_refuses_a_source_json_cannot_hold():
    with pytest.raises(UsageError, match="source must be a dict .*got 'hello'"):
        _imported(source="hello")
    with pytest.raises(UsageError, match="source.k: a value of type object cannot be written"):
        _imported(source={"k": object()})
    with pytest.raises(UsageError, match="source: keys must be strings"):
        _imported(source={1: "x"})
    assert _imported(source={"k": np.int64(3)}).source == {"k": 3}
    assert _imported().source == {"kind": "arrays"}


def test_from_arrays_takes_a_latent_wider_than_the_data():
    """The VAEs train a latent wider than an observation, so import takes one (the manifold
    estimators refuse it when built: tests/test_api_inputs_pipeline.py)."""
    assert _imported(nuisance_dim=50).nuisance_dim == 50
    assert _imported(block_sizes=[10, 10]).block_sizes == (10, 10)


def test_sampling_calls_a_function_mixing_only_on_the_draw():
    """Found by review: the memory check read the mixing's output shape, which runs a user's
    function on a dummy row; a function that needs more than one row then failed, and one with
    side effects ran an extra time. Until its shape is known it is sized at the embedding's
    width, and called once, on the draw itself."""
    from conceptid.simulations.mixing import FunctionMixing

    calls = []

    def needs_rows(e):
        calls.append(e.shape)
        if len(e) < 2:
            raise ValueError("needs at least two rows")
        return np.concatenate([e, e - e.mean(0)], axis=1)

    base = build_preset("chain", np.random.default_rng(0), m=2)
    model = ConceptModel(base.sem, FunctionMixing(needs_rows, base.d), None, base.nuisance_dim,
                         base.nuisance_scale, base.contexts)  # fmt: skip
    x = model.sample(None, 10, np.random.default_rng(1)).x
    assert x.shape == (10, 2 * base.d) and calls == [(10, base.d)]


def test_small_draws_do_not_read_the_machines_memory(monkeypatch):
    """Below SMALL_REQUEST and without a limit set, check_memory does not read the memory
    available (0.15 ms, ten times a small draw); with a limit set it still checks."""
    from conceptid.simulations import memory

    monkeypatch.delenv(memory.ENV, raising=False)

    def unread():
        raise AssertionError("read the available memory for a small request")

    monkeypatch.setattr(memory, "available_memory", unread)
    memory.check_memory(memory.SMALL_REQUEST - 1, "a small draw")
    with pytest.raises(MemoryLimitError, match="a small draw needs about"):
        memory.check_memory(2048, "a small draw", max_memory=1e-6)
    monkeypatch.setenv(memory.ENV, "0.000001")
    with pytest.raises(MemoryLimitError):
        memory.check_memory(2048, "a small draw")


def _float64_moments(model) -> list[tuple]:
    """The test below's moments, from the same draws, computed in float64."""
    rng, out = np.random.default_rng(1), []
    for ctx in model.contexts:
        x = model.sample(ctx, 3000, rng).x.astype(np.float32).astype(np.float64)
        out.append((x.mean(0), np.cov(x.T)))
    return out


def test_identify_linear_takes_float32_moments_at_their_own_rounding():
    """Found by review: moments computed in float32 (as torch computes them) are asymmetric and
    slightly indefinite at 1e-7 of their scale, and the float64 tolerance refused them; the
    tolerance now follows the input's float type, and float64 input keeps the tight one."""
    model = build_preset("chain", np.random.default_rng(0), m=3, p=6, nuisance_dim=1)
    rng = np.random.default_rng(1)
    moments, targets = [], []
    for ctx in model.contexts:
        x = model.sample(ctx, 3000, rng).x.astype(np.float32)
        xc = x - x.mean(0)
        moments.append((x.mean(0), (xc.T @ xc) / np.float32(len(x) - 1)))  # float32 throughout
        targets.append(model.sem.resolve(ctx.targets[0]) if ctx.targets else None)
    lam = [np.linalg.eigvalsh(c.astype(np.float64)) for _, c in moments]  # rank 4 of 6: zeros
    assert min(v[0] / v[-1] for v in lam) < -1e-10  # below zero by float32's rounding
    # and their rank is decided at that rounding (found when a newer BLAS left singular values
    # of 6e-8 that a tolerance of 1e-8 counted as rank: whitening took the root of one below 0)
    got = identify_linear(moments, targets, [1, 1, 1])
    ref = identify_linear([(np.float64(m), np.float64(c)) for m, c in _float64_moments(model)],
                          targets, [1, 1, 1])  # fmt: skip
    assert np.all(np.isfinite(got.readout))
    # found by review: float64 moments, and a caller's own Numeric subclass, keep their rtol
    from conceptid.identifiability.linalg import Numeric
    from conceptid.identifiability.linear import _at_input_rounding

    float64 = [(np.float64(m), np.float64(c)) for m, c in moments]
    assert _at_input_rounding(Numeric(1e-14), float64).rtol == 1e-14
    assert _at_input_rounding(Numeric(), moments).rtol > 1e-6  # float32: its own rounding

    class Mine(Numeric):
        pass

    assert type(_at_input_rounding(Mine(), moments)) is Mine
    assert np.array_equal(got.graph.adjacency, ref.graph.adjacency)
    for a, b in zip(got.readout, ref.readout):  # each concept's read-out, up to scale
        assert abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.99
    with pytest.raises(IdentificationError, match="not positive semi-definite"):  # as float64
        identify_linear([(m.astype(np.float64), c.astype(np.float64)) for m, c in moments],
                        targets, [1, 1, 1])  # fmt: skip
