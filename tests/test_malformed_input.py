"""Malformed input to every public entry point: the documented error, naming the problem.

Specs (JSON objects with wrong types, missing and extra keys, negative sizes), arrays (wrong
shapes, dtypes, NaN, infinities), files (corrupted datasets) and command lines go to
``BenchmarkSpec.from_dict``, ``conceptid.simulations.generate``, ``load_dataset``, the mixings,
``conceptid.identifiability.check`` and ``align``, the model constructors and
``conceptid.cli.main``. Each
must either work or raise a :class:`ConceptIDError` subclass (``TypeError`` where documented)
whose message names the problem; never another exception. Sizes are drawn small, and every
generation runs under a small memory limit, so a passing example never allocates much.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conceptid.cli import main
from conceptid.identifiability import align, check
from conceptid.models import ContextModule, ContextModuleVAE, LatentFlowMLE, ManifoldMLE, PooledVAE
from conceptid.simulations import BenchmarkSpec, ConceptIDError, generate, load_dataset
from conceptid.simulations.benchmark import ARRAYS, DatasetError
from conceptid.simulations.errors import UsageError
from conceptid.simulations.mixing import ImageMixing, LinearMixing, MLPMixing
from conceptid.simulations.presets import build_preset

MAX_MEMORY = 0.02  # GiB: whatever an example asks for, generation stays small

small_int = st.integers(-3, 12)
junk_scalar = st.one_of(
    st.none(), st.booleans(), small_int, st.sampled_from([10**12, -(10**9)]),
    st.floats(allow_nan=True, allow_infinity=True, width=32), st.text(max_size=6),
)  # fmt: skip
junk = st.recursive(
    junk_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)

SPEC_KEYS = ("preset", "preset_args", "model", "n_train", "n_val", "n_test", "seed")
PRESET_ARGS = {
    "chain": ("m", "block_size", "mechanism", "noise", "intervention", "mixing", "p",
              "nuisance_dim", "held_out", "mixing_args"),
    "random": ("m", "expected_degree", "block_size", "mechanism", "noise", "mixing",
               "nuisance_dim", "held_out"),
    "quad": ("image_size", "nuisance", "held_out", "standardize", "mixing"),
}  # fmt: skip


def _spellings(value: object):
    """How a message may cite ``value``: as str or repr; a string also as it appears inside a
    repr of a list; a list or dict also through one of its elements or keys."""
    yield str(value)
    yield repr(value)
    if isinstance(value, str):
        yield repr(value)[1:-1]
        yield value.replace("_", "-")  # held_out: "held-out" in prose
    if isinstance(value, list | tuple | dict):
        for item in value:
            if not isinstance(item, list | tuple | dict):
                yield from _spellings(item)


def named(message: str, *names: object) -> bool:
    """The message names one of ``names`` (a key, or the offending value)."""
    return any(s and s in message for n in names for s in _spellings(n))


@st.composite
def spec_dicts(draw):
    """A valid small spec, then one mutation: a field set to junk, a field removed, an unknown
    key added, or a preset argument set to junk. Returns (dict, the names the error may cite)."""
    preset = draw(st.sampled_from(sorted(PRESET_ARGS)))
    args = {"m": 3} if preset != "quad" else {"image_size": 32}
    d = {"preset": preset, "preset_args": args, "n_train": 3, "n_val": 1, "n_test": 1, "seed": 0}
    kind = draw(st.sampled_from(["field", "drop", "extra", "arg"]))
    if kind == "field":
        key = draw(st.sampled_from(SPEC_KEYS))
        d[key] = value = draw(junk)
        return d, (key, value)
    if kind == "drop":
        key = draw(st.sampled_from(SPEC_KEYS))
        d.pop(key, None)
        return d, (key,)
    if kind == "extra":
        key = draw(st.text(min_size=1, max_size=6).filter(lambda k: k not in SPEC_KEYS))
        d[key] = draw(junk)
        return d, (key,)
    key = draw(st.sampled_from(PRESET_ARGS[preset] + ("colour",)))
    args[key] = value = draw(junk)
    return d, (key, value)


@given(spec_dicts())
def test_malformed_specs_are_refused_by_name_or_generate_a_dataset(case):
    d, names = case
    try:
        spec = BenchmarkSpec.from_dict(d)
        ds = generate(spec, max_memory=MAX_MEMORY)
    except ConceptIDError as err:
        assert named(str(err), *names) or "GiB" in str(err), (str(err), names)
        return
    assert len(ds.x) == len(ds.context) == len(ds.split)  # a valid variant: a real dataset


@given(st.one_of(junk, st.lists(junk, max_size=3)))
def test_anything_but_an_object_is_not_a_spec(value):
    assume(not isinstance(value, dict))
    with pytest.raises(DatasetError, match="a spec must be a JSON object"):
        BenchmarkSpec.from_dict(value)


_MODEL = build_preset("chain", np.random.default_rng(0), m=2, nuisance_dim=1).to_dict()


def _paths(obj, prefix=()):
    """Every (path, value) inside a JSON-like object, containers included."""
    yield prefix, obj
    items = (
        obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    )
    for key, value in items:
        yield from _paths(value, (*prefix, key))


_MODEL_PATHS = [path for path, _ in _paths(_MODEL) if path]
#: the model format's own words (its keys, and what they hold): a message about a part of the
#: model deep inside it names the part in these terms
MODEL_WORDS = {k for path in _MODEL_PATHS for k in path if isinstance(k, str)} | {
    "kind", "composition", "edge", "node", "target", "block", "covariance", "intervention",
    "context", "family", "malformed",
}  # fmt: skip


@st.composite
def model_dicts(draw):
    """A valid model dict (ConceptModel.to_dict) with one entry, at any depth, replaced by junk
    or removed. Returns (dict, the names the error may cite)."""
    d = json.loads(json.dumps(_MODEL))
    path = draw(st.sampled_from(_MODEL_PATHS))
    parent = d
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
        value = None
    else:
        parent[path[-1]] = value = draw(junk)
    return d, tuple(k for k in path if isinstance(k, str)) + (value,)


@given(st.one_of(junk.map(lambda v: (v, ("model", "sem", "mixing"))), model_dicts()))
def test_a_malformed_explicit_model_is_refused_or_works(case):
    value, names = case
    spec = {"preset": None, "model": value, "n_train": 1, "n_val": 1, "n_test": 1}
    try:
        ds = generate(BenchmarkSpec.from_dict(spec), max_memory=MAX_MEMORY)
    except ConceptIDError as err:
        assert named(str(err), *names) or named(str(err), *MODEL_WORDS), (str(err), names)
    else:
        assert np.isfinite(ds.x).all()  # a mutation that kept the model valid


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("malformed") / "ds"
    generate(BenchmarkSpec(preset="chain", preset_args={"m": 2}, n_train=4, n_val=2,
                           n_test=2)).save(out)  # fmt: skip
    return out


arrays = st.one_of(
    st.builds(np.full, st.sampled_from([(3,), (0, 4), (5, 2), (2, 2, 2)]),
              st.sampled_from([np.nan, np.inf, 0.5, 1])),
    st.builds(lambda n: np.arange(n, dtype=np.int16), st.integers(0, 30)),
    st.builds(lambda n: np.zeros(n, dtype="U3"), st.integers(1, 4)),
)  # fmt: skip


@given(data=st.data())
def test_a_corrupted_dataset_is_refused_naming_the_file(dataset_dir, data):
    victim = data.draw(st.sampled_from([*ARRAYS, "card"]))
    how = data.draw(st.sampled_from(["array", "bytes", "truncate", "delete"]))
    with tempfile.TemporaryDirectory() as tmp:
        ds = Path(tmp) / "ds"
        shutil.copytree(dataset_dir, ds)
        f = ds / ("card.json" if victim == "card" else f"{victim}.npy")
        if how == "array" and victim != "card":
            np.save(f, data.draw(arrays))
        elif how == "array":
            f.write_text(json.dumps(data.draw(junk)))
        elif how == "bytes":
            f.write_bytes(data.draw(st.binary(max_size=64)))
        elif how == "truncate":
            whole = f.read_bytes()
            cut = whole[: data.draw(st.integers(0, len(whole) - 1))]
            assume(cut.strip() != whole.strip())  # only a trailing newline gone: not corrupted
            f.write_bytes(cut)
        else:
            f.unlink()
        with pytest.raises(DatasetError) as info:
            load_dataset(ds)
    assert named(str(info.value), f.name, "card_hash", "content hash"), str(info.value)


array_like = st.one_of(arrays, junk)


@given(array_like)
def test_mixings_refuse_malformed_input(e):
    rng = np.random.default_rng(0)
    for mixing in (LinearMixing.random(3, 4, rng), MLPMixing.random(3, 4, rng), ImageMixing(32)):
        try:
            out = mixing(e)
        except ConceptIDError as err:
            assert named(str(err), "e ", "e:", "e must", "shape", "NaN"), str(err)
        else:
            assert np.isfinite(out).all() and len(out) == len(np.asarray(e))


@given(learned=array_like, true=array_like, blocks=st.one_of(st.none(), junk))
def test_align_refuses_malformed_arrays(learned, true, blocks):
    try:
        res = align(learned, true, blocks)
    except ConceptIDError as err:
        assert named(str(err), "learned", "true", "block", "rows", "samples"), str(err)
    else:
        assert np.all(np.isfinite(res.r2))


_CHAIN = build_preset("chain", np.random.default_rng(0), m=2)


@given(model=st.one_of(st.just(_CHAIN), junk), method=st.one_of(st.just("exact"), junk),
       rtol=st.one_of(st.just(1e-8), junk), rng=st.one_of(st.none(), junk))  # fmt: skip
def test_check_refuses_what_it_is_not_given(model, method, rtol, rng):
    assume(model is not _CHAIN or method != "exact" or rtol != 1e-8 or rng is not None)
    if model is not _CHAIN:
        with pytest.raises(TypeError, match="takes a ConceptModel"):  # documented
            check(model, method, rtol=rtol, rng=rng)
        return
    with pytest.raises(UsageError) as info:
        check(model, method, rtol=rtol, rng=rng)
    assert named(str(info.value), "method", "rtol", "rng"), str(info.value)


shapes = st.one_of(junk, st.lists(small_int, max_size=4).map(tuple))
blocks_ = st.one_of(junk, st.lists(small_int, max_size=3))


@given(obs=shapes, blocks=blocks_, nd=st.one_of(small_int, junk), extra=st.one_of(small_int, junk),
       which=st.sampled_from(["module", "cm", "pooled", "flow", "mle"]))  # fmt: skip
def test_model_constructors_refuse_malformed_sizes(obs, blocks, nd, extra, which):
    build = {
        "module": lambda: ContextModule(blocks, extra, nd),
        "cm": lambda: ContextModuleVAE(obs, blocks, nd, beta=extra),
        "pooled": lambda: PooledVAE(obs, extra),
        "flow": lambda: LatentFlowMLE(obs, blocks, nd, ae_epochs=extra),
        "mle": lambda: ManifoldMLE(obs, blocks, nd, snap_every=extra),
    }[which]
    try:
        model = build()
    except ConceptIDError as err:
        words = ("obs_shape", "block", "nuisance_dim", "out_dim", "latent_dim", "beta",
                 "ae_epochs", "snap_every", "GiB")  # fmt: skip
        assert named(str(err), *words), str(err)
    else:
        assert sum(p.numel() for p in model.parameters()) > 0


# -- the command line -----------------------------------------------------------------------------

VALUES = st.one_of(
    st.integers(-3, 6).map(str),
    st.sampled_from(["", ",", "abc", "nan", "inf", "1e400", "5e7", "2.5", "cuda", "cuda:7", "mps",
                     "{F}", "{F}/x", "{D}", "{T}/new", "{T}/new.png", "{T}/new.npy", "m=3", "m",
                     "image_size=33", "pooled", "magic,pooled", "c0", "c0,zz", "exact", "quad",
                     "chain", "x" * 300]),
)  # fmt: skip
FLAGS = {
    "simulate": ["--preset", "--spec", "--out", "--n-per-context", "--n-val", "--n-test", "--seed",
                 "--image-size", "--m", "--mixing", "--nuisance-dim", "--preset-arg", "--name",
                 "--max-memory"],
    "inspect": ["--figure", "--per-context"],
    "check": ["--preset-arg", "--seed", "--method"],
    "run": ["--preset", "--spec", "--preset-arg", "--n-per-context", "--out", "--seed",
            "--epochs", "--batch-size", "--restarts", "--device", "--methods", "--check-method",
            "--max-memory"],
    "train": ["--out", "--methods", "--seed", "--epochs", "--batch-size", "--restarts",
              "--device", "--max-memory"],
    "evaluate": ["--data", "--check-method"],
    "generate": ["--targets", "--n", "--seed", "--data", "--out"],
}  # fmt: skip
POSITIONAL = {"inspect": ["{D}"], "check": ["{D}", "{F}", "{T}/spec.json"], "train": ["{D}"],
              "evaluate": ["{T}"], "generate": ["{T}/m"]}  # fmt: skip


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(sorted(FLAGS)))
    argv = [command]
    if command in POSITIONAL:
        argv.append(draw(st.sampled_from(POSITIONAL[command])))
    for flag in draw(st.lists(st.sampled_from(FLAGS[command]), max_size=4, unique=True)):
        argv += [flag, draw(VALUES)]
    if command in ("simulate", "run", "train"):  # a valid request stops at the memory check
        argv += ["--max-memory", "1e-12"]
    return argv


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(command_lines())  # capsys is read (emptied) in every example
def test_the_command_line_never_gives_a_traceback(dataset_dir, capsys, argv):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "f.txt").write_text("a file")
        (Path(tmp) / "spec.json").write_bytes(b"\x89PNG\r\n\x1a\n")
        places = {"{T}": tmp, "{F}": f"{tmp}/f.txt", "{D}": str(dataset_dir)}
        args = []
        for a in argv:
            for key, value in places.items():
                a = a.replace(key, value)
            args.append(a)
        before = sorted(p.name for p in Path(tmp).iterdir())
        with contextlib.chdir(tmp):  # a relative path in the arguments lands here
            rc = main(args)
        err = capsys.readouterr().err
        if rc == 2:
            assert sorted(p.name for p in Path(tmp).iterdir()) == before  # nothing written
    assert rc in (0, 2), (args, err)
    if rc == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("conceptid") and ": error: " in lines[0]


# -- found by a review of check (session 26): each refused in one line, exit 2 ------------------


def _set(*path_value):
    """An edit of a model dict: the value at ``path`` (keys and indices) replaced."""
    *path, value = path_value

    def edit(d):
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value

    return edit


REVIEWED_MODELS = [
    # numbers in name only: numpy would have read "1.0", True and None as 1.0, 1.0 and NaN
    (_set("sem", "noise_cov", 0, [["1.0"]]), "noise_cov of concept 'c0' must be numeric, got '1"),
    (_set("sem", "noise_cov", 0, [[True]]), "of concept 'c0' must be numeric, got True"),
    (_set("sem", "noise_cov", 0, [[None]]), "of concept 'c0' must be numeric, got None"),
    (_set("sem", "weights", 1, 0, True), "weights must be numeric, got True"),
    (_set("sem", "noise_mean", ["0", 0]), "noise_mean must be numeric, got '0'"),
    (_set("mixing", "A", 0, 0, False), "A must be numeric, got False"),
    # a design of no context: a witness "verified" over no context at all
    (_set("contexts", []), "a model needs at least one training context, got none"),
    # a node named twice was blamed on the edges as an unknown node
    (_set("sem", "graph", "nodes", ["c0", "c0"]), "node 'c0' is named twice"),
    # sys.exit as the mixing ended the command with status 0 and no word
    (
        _set("mixing", {"kind": "function", "ref": "sys:exit", "input_dim": 3}),
        "mixing sys:exit failed on an array of shape",
    ),  # fmt: skip
]


@pytest.mark.parametrize("edit, words", REVIEWED_MODELS)
def test_a_reviewed_model_file_is_refused_in_one_line(tmp_path, capsys, edit, words):
    from test_cli_hardening import refused

    d = json.loads(json.dumps(_MODEL))
    edit(d)
    (tmp_path / "model.json").write_text(json.dumps(d))
    assert words in refused(["check", str(tmp_path / "model.json")], capsys)


def test_a_mixing_that_calls_sys_exit_is_a_mixing_error_in_python():
    from conceptid.simulations import ConceptModel
    from conceptid.simulations.mixing import MixingError

    d = json.loads(json.dumps(_MODEL))
    d["mixing"] = {"kind": "function", "ref": "sys:exit", "input_dim": 3}
    with pytest.raises(MixingError, match="SystemExit"):
        check(ConceptModel.from_dict(d))


def test_a_device_is_not_read_but_a_pipe_is(tmp_path, capsys):
    from test_cli_hardening import refused

    # /dev/zero would be read until memory runs out
    assert "a device, not a file" in refused(["check", "/dev/zero"], capsys)
    assert "a device, not a file" in refused(["sweep", "/dev/zero", "--out",
                                              str(tmp_path / "s")], capsys)  # fmt: skip
    assert not (tmp_path / "s").exists()
    # a named pipe (a shell's <(...)) ends when its writer does: it is read
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(json.dumps(_MODEL)))
    writer.start()
    assert main(["check", str(fifo)]) == 0
    writer.join()
    assert "identifiable" in capsys.readouterr().out


def test_array_likes_of_numbers_are_still_numbers():
    # found by review of the change above: only strings, booleans and None are refused; a
    # torch tensor or a tuple of numpy numbers reads as before
    import torch

    from conceptid.simulations.interventions import as_floats

    assert as_floats(torch.tensor([1.0, 2.0]), "x").tolist() == [1.0, 2.0]
    assert as_floats((np.float32(1), np.int64(2)), "x").tolist() == [1.0, 2.0]
    assert as_floats(range(3), "x").tolist() == [0.0, 1.0, 2.0]
    for bad in (np.array([True]), ["1"], [[1.0], [None]], b"1"):
        with pytest.raises(ConceptIDError, match="must be numeric"):
            as_floats(bad, "x")


def test_a_file_beyond_the_read_limit_is_refused_unread(tmp_path, monkeypatch):
    from conceptid.simulations import validation
    from conceptid.simulations.errors import UsageError

    (tmp_path / "big.json").write_text('{"sem": {}, "mixing": {}}')  # 25 bytes
    monkeypatch.setattr(validation, "MAX_READ_BYTES", 25)
    assert validation.read_bytes(tmp_path / "big.json", UsageError) == b'{"sem": {}, "mixing": {}}'
    monkeypatch.setattr(validation, "MAX_READ_BYTES", 24)
    with pytest.raises(UsageError, match="big.json: larger than .* MiB, the limit of the JSON"):
        validation.read_bytes(tmp_path / "big.json", UsageError)
