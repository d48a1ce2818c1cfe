"""A user's own data: arrays or folders of images -> a verified dataset -> train, evaluate (only
what the data can measure), generate under a composition; every bad input refused by name with
nothing written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conceptid.cli import main
from conceptid.simulations.benchmark import Dataset, DatasetError, load_dataset
from conceptid.simulations.errors import ConceptIDError, UsageError
from conceptid.simulations.imported import TRAINABLE_IMAGE_SIZES, from_arrays

CONCEPTS = ["a", "b"]
CONTEXTS = {"obs": [], "a": ["a"], "b": ["b"], "ab": ["a", "b"]}


def listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def vectors(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows per context of CONTEXTS: a shift of a concept is visible in ``x``."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), n)
    c = rng.normal(size=(4 * n, 3))
    c[np.isin(labels, [1, 3]), 0] += 2.0
    c[np.isin(labels, [2, 3]), 1] -= 2.0
    return np.tanh(c @ rng.normal(size=(3, 5))), labels


def write_arrays(root: Path, **json_extra) -> tuple[Path, Path]:
    x, labels = vectors()
    np.save(root / "x.npy", x)
    np.save(root / "labels.npy", labels)
    spec = {"concepts": CONCEPTS, "contexts": CONTEXTS, "labels": "labels.npy",
            "held_out": [["a", "b"]], **json_extra}  # fmt: skip
    (root / "ctx.json").write_text(json.dumps(spec))
    return root / "x.npy", root / "ctx.json"


def write_folders(root: Path, per_context: int = 8, size: int = 32) -> Path:
    """One folder of PNGs per context: a bar whose width (a) and height (b) grow under do."""
    rng = np.random.default_rng(1)
    for name, targets in CONTEXTS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_context):
            img = np.zeros((size, size, 3), np.uint8)
            w = 4 + 4 * ("a" in targets) + rng.integers(3)
            h = 6 + 8 * ("b" in targets) + rng.integers(3)
            img[4 : 4 + h, 4 : 4 + w] = 255
            Image.fromarray(img).save(root / name / f"{i:03d}.png")
    (root / "contexts.json").write_text(json.dumps({"concepts": CONCEPTS, "contexts": CONTEXTS,
                                                    "held_out": [["a", "b"]]}))  # fmt: skip
    return root


def ok(argv: list[str], capsys) -> str:
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


# -- the round trip ------------------------------------------------------------------------------


def test_arrays_import_load_train_evaluate_generate(tmp_path, capsys):
    x_path, ctx = write_arrays(tmp_path)
    data, run = tmp_path / "data", tmp_path / "run"
    ok(["import", "--arrays", str(x_path), "--contexts", str(ctx), "--out", str(data)], capsys)
    ds = load_dataset(data)  # every array against its SHA-256, the content and card hashes
    assert not ds.has_ground_truth and ds.card["ground_truth"] is None
    assert ds.concepts.shape == (240, 0) and ds.nuisance_dim == 2
    assert np.array_equal(ds.x, np.load(x_path).astype(np.float32))
    assert ds.context_names == list(CONTEXTS)
    held = ds.context == 3
    assert (ds.split[held] == 2).all()  # the composition is test-only
    for k in range(3):  # training contexts: 0.7/0.15/0.15 of 60 rows
        assert np.bincount(ds.split[ds.context == k], minlength=3).tolist() == [42, 9, 9]

    ok(["train", str(data), "--out", str(run), "--methods", "context-flow", "--epochs", "1",
        "--quiet"], capsys)  # fmt: skip
    # no ground truth, so no check runs: its arithmetic is not a choice (as for run --data)
    assert main(["evaluate", str(run), "--data", str(data), "--check-method", "exact"]) == 2
    assert "no ground-truth model" in capsys.readouterr().err
    assert not (run / "metrics.json").exists()
    ok(["evaluate", str(run), "--data", str(data)], capsys)
    metrics = json.loads((run / "metrics.json").read_text())
    m = metrics["methods"]["context-flow"]
    assert m["r2"] is None and m["mean_r2"] is None and m["mcc"] is None
    assert m["r2_matrix"] is None and metrics["verdict"] is None
    assert metrics["dataset"]["ground_truth"] is False and "omitted" in metrics["omitted"]
    assert set(m["concept_swd_per_context"]) == {"obs", "a", "b"}
    assert set(m["composition_swd_per_context"]) == {"ab"}
    for key in ("concept_swd", "composition_swd", "bits_per_dim"):
        assert math.isfinite(m[key]) and m[key] > 0, key
    report = (run / "report.md").read_text()
    assert "no ground truth" in report and "R^2, MCC and the concept scatter" in report
    assert "| mean R^2 |" not in report and "Not checked" in report
    figures = sorted(p.name for p in (run / "figures").iterdir())
    assert figures == ["compositions.png", "samples_per_context.png", "training_curves.png"]

    out = tmp_path / "do_ab.npy"
    ok(["generate", str(run / "models" / "context-flow"), "--data", str(data), "--targets",
        "a,b", "--n", "50", "--out", str(out)], capsys)  # fmt: skip
    samples = np.load(out)
    assert samples.shape == (50, 5) and samples.dtype == np.float32
    assert np.isfinite(samples).all()


def test_folders_import_then_run_data_and_generate_a_composition(tmp_path, capsys):
    root = write_folders(tmp_path / "images")
    data, run = tmp_path / "data", tmp_path / "run"
    ok(["import", "--folders", str(root), "--out", str(data), "--fractions", "0.5,0.25,0.25"],
       capsys)  # fmt: skip
    ds = load_dataset(data)
    assert ds.x.shape == (32, 32, 32, 3) and ds.x.dtype == np.uint8
    assert ds.card["source"] == {"kind": "folders",
                                 "images_per_context": dict.fromkeys(CONTEXTS, 8)}  # fmt: skip
    first = np.asarray(Image.open(root / "a" / "000.png"))
    assert np.array_equal(ds.x[ds.context == 1][0], first)  # files in name order, pixels as is
    assert "no true concepts" in ok(["inspect", str(data), "--per-context", "2"], capsys)

    ok(["run", "--data", str(data), "--out", str(run), "--methods", "context-flow", "--epochs",
        "1", "--quiet"], capsys)  # fmt: skip
    assert load_dataset(run / "data").card["content_hash"] == ds.card["content_hash"]
    assert not (run / "check.json").exists()  # nothing to check without a true model
    m = json.loads((run / "metrics.json").read_text())["methods"]["context-flow"]
    assert m["mean_r2"] is None and math.isfinite(m["composition_swd"])
    png = tmp_path / "ab.png"
    ok(["generate", str(run / "models" / "context-flow"), "--targets", "a,b", "--n", "4",
        "--out", str(png)], capsys)  # fmt: skip
    assert png.read_bytes()[:4] == b"\x89PNG"
    # a second run into the same directory reuses its copy; another dataset there is refused
    ok(["run", "--data", str(data), "--out", str(run), "--methods", "context-flow", "--epochs",
        "1", "--quiet"], capsys)  # fmt: skip
    ok(["import", "--folders", str(root), "--out", str(tmp_path / "other"), "--seed", "1"], capsys)
    assert main(["run", "--data", str(tmp_path / "other"), "--out", str(run), "--quiet"]) == 2
    assert "holds another dataset" in capsys.readouterr().err


def test_python_forms_agree_and_the_split_follows_the_seed():
    x, labels = vectors()
    names = list(CONTEXTS)
    per_sample = [CONTEXTS[names[k]] for k in labels]  # each sample's own target set
    a = Dataset.from_arrays(x, per_sample, CONCEPTS, held_out=[["a", "b"]], seed=3)
    b = Dataset.from_arrays(x, labels, CONCEPTS, contexts=list(CONTEXTS.values()),
                            held_out=[["b", "a"]], seed=3)  # fmt: skip
    assert a.context_names == b.context_names == ["obs", "do(a)", "do(b)", "do(a,b)"]
    assert a.card["content_hash"] == b.card["content_hash"]
    c = Dataset.from_arrays(x, per_sample, CONCEPTS, held_out=[["a", "b"]], seed=4)
    assert np.array_equal(c.context, a.context) and not np.array_equal(c.split, a.split)
    row = np.arange(len(x)) % 5
    given = np.where((labels == 3) | (row == 1), "test", np.where(row == 0, "val", "train"))
    d = from_arrays(x, labels, CONCEPTS, contexts=CONTEXTS, held_out=[["a", "b"]], split=given)
    assert (d.split == np.array([{"train": 0, "val": 1, "test": 2}[s] for s in given])).all()
    assert d.card["seeds"]["split"] == "given" and d.card["split_fractions"] is None


def test_the_same_data_imports_to_the_same_bytes(tmp_path, capsys):
    x_path, ctx = write_arrays(tmp_path)
    for out in ("one", "two"):
        ok(["import", "--arrays", str(x_path), "--contexts", str(ctx), "--out",
            str(tmp_path / out), "--seed", "5"], capsys)  # fmt: skip
    for f in sorted(p.name for p in (tmp_path / "one").iterdir()):
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes(), f


def test_check_refuses_imported_data_naming_why(tmp_path, capsys):
    x_path, ctx = write_arrays(tmp_path)
    ok(["import", "--arrays", str(x_path), "--contexts", str(ctx), "--out", str(tmp_path / "d")],
       capsys)  # fmt: skip
    assert main(["check", str(tmp_path / "d")]) == 2
    assert "nothing to check" in capsys.readouterr().err
    ds = load_dataset(tmp_path / "d")
    with pytest.raises(DatasetError, match="no ground-truth model"):
        ds.model  # noqa: B018 - the property is what raises


def test_the_image_sizes_agree_with_the_models():
    from conceptid.models.nets import IMAGE_SIZES

    assert TRAINABLE_IMAGE_SIZES == IMAGE_SIZES


# -- bad input: one line naming it, exit 2, nothing written --------------------------------------


def _edit_json(path: Path, **changes) -> None:
    d = json.loads(path.read_text())
    d.update(changes)
    path.write_text(json.dumps(d))


def _arrays_case(root: Path, change: str) -> list[str]:
    x_path, ctx = write_arrays(root)
    x, labels = vectors()
    if change == "nan":
        x[7, 2] = np.nan
        np.save(x_path, x)
    elif change == "1d":
        np.save(x_path, x[:, 0])
    elif change == "float-images":
        np.save(x_path, np.zeros((240, 32, 32, 3), np.float32))
    elif change == "28px":
        np.save(x_path, np.zeros((240, 28, 28, 3), np.uint8))
    elif change == "unknown-target":
        _edit_json(ctx, contexts={**CONTEXTS, "a": ["thikness"]})
    elif change == "empty-context":
        np.save(root / "labels.npy", np.where(labels == 2, 0, labels))
    elif change == "no-observational":
        np.save(root / "labels.npy", np.where(labels == 3, 2, labels))
        _edit_json(ctx, contexts={"c": ["a", "b"], "a": ["a"], "b": ["b"]}, held_out=None)
    elif change == "labels-length":
        np.save(root / "labels.npy", labels[:-1])
    elif change == "unknown-label":
        _edit_json(ctx, labels=["obs"] * 239 + ["abc"])
    elif change == "held-out":
        np.save(root / "labels.npy", np.where(labels == 3, 1, labels))
        _edit_json(ctx, contexts={"obs": [], "a": ["a"], "b": ["b"]})
    elif change == "same-targets":
        _edit_json(ctx, contexts={**CONTEXTS, "b": ["a"]})
    elif change == "unknown-key":
        _edit_json(ctx, colour=1)
    elif change == "too-few":  # context b keeps 2 rows: both go to train
        few = labels.copy()
        few[np.flatnonzero(labels == 2)[2:]] = 0
        np.save(root / "labels.npy", few)
    elif change == "npz":  # an archive, not one array
        x_path = root / "x.npz"
        np.savez(x_path, x=x)
    elif change == "text-npy":
        x_path.write_text("0.1 0.2 0.3\n")
    elif change == "object-npy":
        np.save(x_path, np.array([{"x": 1}] * 240, dtype=object), allow_pickle=True)
    elif change == "npz-labels":
        np.savez(root / "labels.npz", labels=labels)
        _edit_json(ctx, labels="labels.npz")
    elif change == "single-held-out":  # as simulate: do(a) alone is no composition
        _edit_json(ctx, held_out=[["a"]])
    return ["import", "--arrays", str(x_path), "--contexts", str(ctx)]


ARRAY_CASES = [
    ("nan", "x holds NaN or infinite values"),
    ("1d", "x must be (N, p) vectors or (N, H, W, 3) uint8 images"),
    ("float-images", "images must be uint8"),
    ("28px", "images are 28x28 pixels; the models take 32x32 or 64x64"),
    ("unknown-target", "unknown target 'thikness'"),
    ("empty-context", "context 'b' has no samples"),
    ("no-observational", "no observational context"),
    ("labels-length", "one per sample"),
    ("unknown-label", "labelled 'abc', which is not a context"),
    ("same-targets", "contexts 'a' and 'b' have the same targets ['a']"),
    ("held-out", "held_out ['a', 'b'] matches no context's targets"),
    ("unknown-key", "unknown keys ['colour']"),
    ("too-few", "none in val or test"),
    ("npz", "x.npz is not a .npy array file: one array as numpy.save writes it is expected"),
    ("text-npy", "x.npy is not a .npy array file"),
    ("object-npy", "x.npy is not a readable .npy array"),
    ("npz-labels", "'labels': {T}/labels.npz is not a .npy array file"),
    ("single-held-out", "a held-out composition needs at least two targets, got ['a']"),
]


@pytest.mark.parametrize("change, words", ARRAY_CASES, ids=[c[0] for c in ARRAY_CASES])
def test_bad_arrays_are_refused_by_name_and_nothing_written(tmp_path, capsys, change, words):
    argv = _arrays_case(tmp_path, change) + ["--out", str(tmp_path / "out")]
    before = listing(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("conceptid import: error: ") and len(err.splitlines()) == 1
    assert words.replace("{T}", str(tmp_path)) in err, err
    assert listing(tmp_path) == before


def _write_png16_rgb(path: Path, rgb: np.ndarray) -> None:
    """A 16-bit RGB PNG (colour type 2), written by hand: Pillow cannot write one."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    h, w, _ = rgb.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb)
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))  # fmt: skip


def _folders_case(root: Path, change: str) -> Path:
    write_folders(root)
    if change == "missing-folder":
        for f in (root / "b").iterdir():
            f.unlink()
        (root / "b").rmdir()
    elif change == "empty-folder":
        for f in (root / "b").iterdir():
            f.unlink()
    elif change == "extra-folder":
        (root / "thikc").mkdir()
    elif change == "not-png":
        (root / "a" / "notes.txt").write_text("x")
    elif change == "corrupt-png":  # the PNG signature, then no PNG
        (root / "a" / "001.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    elif change == "mixed-sizes":
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "b" / "002.png")
    elif change == "no-json":
        (root / "contexts.json").unlink()
    elif change == "bad-json":
        (root / "contexts.json").write_text("{not json")
    elif change == "16-bit":  # made 8-bit RGB, 1000 of 65535 would saturate to 255
        Image.fromarray(np.full((32, 32), 1000, np.uint16)).save(root / "b" / "003.png")
    elif change == "16-bit-rgb":  # Pillow reads it as 8-bit RGB, keeping the high bytes only
        _write_png16_rgb(root / "b" / "005.png", np.full((32, 32, 3), 1000, np.uint16))
    elif change == "bomb":  # found by review: a 532 KB PNG of 20000x20000 pixels gave
        # PIL's DecompressionBombError traceback; refused now from its header, undecoded
        Image.new("L", (20000, 20000)).save(root / "b" / "002.png")
    elif change == "transparent":
        rgba = np.zeros((32, 32, 4), np.uint8)
        rgba[..., 3] = 255
        rgba[0, 0, 3] = 0
        Image.fromarray(rgba).save(root / "b" / "004.png")
    return root


FOLDER_CASES = [
    ("missing-folder", "context 'b' has no folder"),
    ("empty-folder", "context 'b' has no samples"),
    ("extra-folder", "thikc is a folder that contexts.json does not name"),
    ("not-png", "notes.txt is not a .png file"),
    ("corrupt-png", "001.png is not a readable PNG image"),
    ("mixed-sizes", "every image must have one size"),
    ("no-json", "cannot read"),
    ("bad-json", "is not valid JSON"),
    ("16-bit", "003.png is a 16-bit mode I;16 image; 8-bit images are taken"),
    ("16-bit-rgb", "005.png is a 16-bit mode RGB image; 8-bit images are taken"),
    ("transparent", "004.png has transparent pixels"),
    ("bomb", "002.png is 20000x20000 pixels; images up to 4096 pixels a side are read"),
]


@pytest.mark.parametrize("change, words", FOLDER_CASES, ids=[c[0] for c in FOLDER_CASES])
def test_bad_folders_are_refused_by_name_and_nothing_written(tmp_path, capsys, change, words):
    root = _folders_case(tmp_path / "images", change)
    before = listing(tmp_path)
    assert main(["import", "--folders", str(root), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("conceptid import: error: ") and len(err.splitlines()) == 1
    assert words in err, err
    assert listing(tmp_path) == before


OPTION_CASES = [
    (["--arrays", "{T}/x.npy"], "--arrays needs --contexts"),
    (["--folders", "{T}", "--contexts", "{T}/ctx.json"], "--contexts goes with --arrays"),
    (["--folders", "{T}", "--fractions", "0.5,0.5,0.5"], "split fractions must sum to 1"),
    (["--folders", "{T}", "--fractions", "a,b"], "three numbers"),
    (["--folders", "{T}", "--n-per-context", "3"], "--n-per-context applies to --digits only"),
    (["--arrays", "{T}/x.npy", "--folders", "{T}"], "not allowed with argument"),
    ([], "one of the arguments --arrays --folders --digits is required"),
]


@pytest.mark.parametrize(
    "args, words", OPTION_CASES, ids=[" ".join(c[0][:2]) for c in OPTION_CASES]
)
def test_bad_options_are_refused_before_reading_anything(tmp_path, capsys, args, words):
    argv = ["import", *(a.replace("{T}", str(tmp_path)) for a in args), "--out",
            str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.splitlines()) == 1, err
    assert listing(tmp_path) == []


def test_an_existing_directory_is_not_overwritten(tmp_path, capsys):
    x_path, ctx = write_arrays(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    argv = ["import", "--arrays", str(x_path), "--contexts", str(ctx), "--out"]
    assert main([*argv, str(tmp_path / "mine"), "--overwrite"]) == 2
    assert "not a conceptid dataset (contains notes.txt)" in capsys.readouterr().err
    ok([*argv, str(tmp_path / "d")], capsys)
    assert main([*argv, str(tmp_path / "d")]) == 2
    assert "exists (a dataset)" in capsys.readouterr().err
    ok([*argv, str(tmp_path / "d"), "--overwrite", "--seed", "1"], capsys)
    assert load_dataset(tmp_path / "d").card["seeds"]["entropy"] == 1


def test_run_data_refuses_what_does_not_go_with_a_dataset(tmp_path, capsys):
    x_path, ctx = write_arrays(tmp_path)
    ok(["import", "--arrays", str(x_path), "--contexts", str(ctx), "--out", str(tmp_path / "d")],
       capsys)  # fmt: skip
    before = listing(tmp_path)
    for extra, words in [(["--preset", "chain"], "not allowed with argument"),
                         (["--n-per-context", "5"], "--n-per-context cannot be combined with "
                          "--data"),
                         (["--methods", "magic"], "unknown method 'magic'"),
                         # no ground-truth model: no check runs, so its arithmetic is not a choice
                         (["--check-method", "numeric"], "no ground-truth model")]:  # fmt: skip
        assert (
            main(["run", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r"), *extra]) == 2
        )
        assert words in capsys.readouterr().err
    assert main(["run", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "r")]) == 2
    assert "not a dataset directory" in capsys.readouterr().err
    assert listing(tmp_path) == before


def test_eight_bit_modes_import_as_their_rgb_pixels(tmp_path):
    """Greyscale, palette, 1-bit and opaque RGBA PNGs are 8-bit RGB with no pixel changed."""
    root = write_folders(tmp_path)
    rgb = np.asarray(Image.open(root / "obs" / "000.png"))
    grey = rgb[..., 0]
    opaque = np.dstack([rgb, np.full(grey.shape, 255, np.uint8)])
    images = [Image.fromarray(grey), Image.fromarray(rgb).convert("P"),
              Image.fromarray(grey).convert("1"), Image.fromarray(opaque),
              Image.fromarray(grey).convert("LA")]  # fmt: skip
    for i, img in enumerate(images):
        img.save(root / "obs" / f"{i:03d}.png")
    assert [Image.open(root / "obs" / f"{i:03d}.png").mode for i in range(5)] == [
        "L", "P", "1", "RGBA", "LA"]  # fmt: skip
    ds = Dataset.from_folders(root)
    assert ds.x.dtype == np.uint8
    assert all(np.array_equal(ds.x[i], rgb) for i in range(5))  # the bar is black and white


def test_python_refusals_are_package_errors():
    x, labels = vectors(n=10)
    cases = [
        (lambda: from_arrays(x, labels, ["a", "a"], contexts=CONTEXTS), DatasetError,
         "more than once"),
        (lambda: from_arrays(x, labels, ["a,b"], contexts=CONTEXTS), DatasetError, "comma"),
        (lambda: from_arrays(x, [["a"]] * 40, CONCEPTS), DatasetError, "no observational"),
        (lambda: from_arrays(x, "abc", CONCEPTS), DatasetError, "one target set per sample"),
        (lambda: from_arrays(x, labels, CONCEPTS, contexts=CONTEXTS, nuisance_dim=-1),
         UsageError, "nuisance_dim"),
        (lambda: from_arrays(x, labels, CONCEPTS, contexts=CONTEXTS, held_out=[[]]),
         DatasetError, "observational"),
        (lambda: from_arrays(x, labels, CONCEPTS, contexts=CONTEXTS, held_out=[["a", "b"]],
                             split=["train"] * 40), DatasetError, "held-out context 'ab'"),
        (lambda: from_arrays(x[:0], [], CONCEPTS), DatasetError, "no samples"),
        (lambda: from_arrays(x, labels, CONCEPTS, contexts=CONTEXTS, held_out=[["a"]]),
         DatasetError, "needs at least two targets"),
    ]  # fmt: skip
    for call, error, words in cases:
        with pytest.raises(error, match=words) as info:
            call()
        assert isinstance(info.value, ConceptIDError)


def test_run_data_takes_a_generated_dataset_too(tmp_path, capsys):
    """With ground truth, ``run --data`` checks identifiability and measures recovery as ever."""
    data, run = tmp_path / "chain", tmp_path / "run"
    ok(["simulate", "--preset", "chain", "--m", "2", "--n-per-context", "40", "--out", str(data),
        "--quiet"], capsys)  # fmt: skip
    ok(["run", "--data", str(data), "--out", str(run), "--methods", "pooled", "--epochs", "1",
        "--check-method", "numeric", "--quiet"], capsys)  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["verdict"] == {"c0": "identifiable", "c1": "identifiable"}
    assert json.loads((run / "check.json").read_text())["method"] == "numeric"
    assert metrics["spec"] == load_dataset(data).card["spec"] and metrics["omitted"] is None
    assert len(metrics["methods"]["pooled"]["r2"]) == 2 and (run / "check.json").is_file()


def test_the_same_arrays_labelled_otherwise_are_another_dataset(tmp_path, capsys):
    # found by review: the content hash covers the arrays only, so a re-import with two
    # contexts' targets swapped reused the model trained on the old labels (its `generate
    # --targets a` was then the wrong intervention), and `run --data` kept its stale copy
    x_path, ctx = write_arrays(tmp_path)
    data, run, copy = tmp_path / "data", tmp_path / "run", tmp_path / "copy"
    ok(["import", "--arrays", str(x_path), "--contexts", str(ctx), "--out", str(data)], capsys)
    before = load_dataset(data)
    train = ["train", str(data), "--out", str(run), "--methods", "context-flow", "--epochs", "1",
             "--quiet"]  # fmt: skip
    ok(train, capsys)
    ok(["run", "--data", str(data), "--out", str(copy), "--methods", "context-flow", "--epochs",
        "1", "--quiet"], capsys)  # fmt: skip
    swapped = {"obs": [], "a": ["b"], "b": ["a"], "ab": ["a", "b"]}
    spec = json.loads(ctx.read_text())
    ctx.write_text(json.dumps({**spec, "contexts": swapped}))
    ok(["import", "--arrays", str(x_path), "--contexts", str(ctx), "--out", str(data),
        "--overwrite"], capsys)  # fmt: skip
    after = load_dataset(data)
    assert after.content_hash == before.content_hash and after.labels_hash != before.labels_hash
    final = run / "models" / "context-flow" / "final.pt"
    stamp = final.stat().st_mtime_ns
    assert main(train) == 2
    err = capsys.readouterr().err
    assert "was trained on another dataset" in err and "labelled otherwise" in err
    assert final.stat().st_mtime_ns == stamp  # refused before anything was written
    assert main(["evaluate", str(run), "--data", str(data)]) == 2
    assert "labelled otherwise" in capsys.readouterr().err
    assert main(["run", "--data", str(data), "--out", str(copy), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "holds another dataset" in err and "labelled otherwise" in err
    # the nuisance size chosen at import is part of the labels too
    ok(["import", "--arrays", str(x_path), "--contexts", str(ctx), "--out", str(data),
        "--overwrite", "--nuisance-dim", "1"], capsys)  # fmt: skip
    assert load_dataset(data).labels_hash not in (before.labels_hash, after.labels_hash)


# -- found by review: each refused by name before any work, nothing written ----------------------


def refused(argv: list[str], words: str, root: Path, capsys) -> str:
    """``conceptid ARGV`` exits 2 with one line holding ``words`` and leaves ``root`` as it was."""
    before = listing(root)
    assert main([*argv, "--out", str(root / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("conceptid import: error: ") and len(err.splitlines()) == 1, err
    assert words in err, err
    assert listing(root) == before
    return err


def test_a_json_key_given_twice_is_refused_naming_it_and_the_file(tmp_path, capsys):
    # found by review: json keeps the last of two equal keys, so context 'a' silently became ab
    x_path, ctx = write_arrays(tmp_path)
    text = ctx.read_text().replace('"ab": ["a", "b"]', '"ab": ["a", "b"], "a": ["a", "b"]')
    assert text.count('"a": ') == 2
    ctx.write_text(text)
    argv = ["import", "--arrays", str(x_path), "--contexts", str(ctx)]
    refused(argv, f"{ctx} gives the key 'a' twice in one object", tmp_path, capsys)
    root = write_folders(tmp_path / "images")  # contexts.json of --folders, a top-level key
    spec = (root / "contexts.json").read_text()
    (root / "contexts.json").write_text(spec[:-1] + ', "concepts": ["a"]}')
    refused(["import", "--folders", str(root)], "gives the key 'concepts' twice", tmp_path,
            capsys)  # fmt: skip


def test_read_json_refuses_a_duplicate_key_at_any_depth(tmp_path):
    from conceptid.simulations.benchmark import read_json

    path = tmp_path / "spec.json"
    path.write_text('{"preset": {"name": "chain", "args": {"m": 2, "m": 3}}}')
    with pytest.raises(DatasetError, match=r"spec file .*spec.json gives the key 'm' twice"):
        read_json(path, "spec file ")
    path.write_text('{"m": 2, "args": {"m": 3}}')  # the same key in two objects is fine
    assert read_json(path) == {"m": 2, "args": {"m": 3}}


def test_a_held_out_intervention_no_training_context_makes_is_refused(tmp_path, capsys):
    # found by review: evaluate scored a composition that generate refuses for want of a law
    x_path, ctx = write_arrays(tmp_path)
    _, labels = vectors()
    np.save(tmp_path / "labels.npy", np.select([labels == 2, labels == 3], [0, 2], labels))
    _edit_json(ctx, contexts={"obs": [], "a": ["a"], "ab": ["a", "b"]})
    err = refused(["import", "--arrays", str(x_path), "--contexts", str(ctx)],
                  "held-out context 'ab' intervenes on ['b'], which no training context "
                  "intervenes on: no model can compose it", tmp_path, capsys)  # fmt: skip
    assert "generate" not in err
    x, labels = vectors(n=10)
    with pytest.raises(DatasetError, match=r"held-out context 'do\(a,b\)' intervenes on \['b'\]"):
        from_arrays(x, [[] if k == 2 else CONTEXTS[list(CONTEXTS)[k]] for k in labels],
                    CONCEPTS, held_out=[["a", "b"]])  # fmt: skip


def test_a_held_out_composition_given_twice_is_refused(tmp_path, capsys):
    x_path, ctx = write_arrays(tmp_path, held_out=[["a", "b"], ["b", "a"]])
    refused(["import", "--arrays", str(x_path), "--contexts", str(ctx)],
            "held_out names ['a', 'b'] twice", tmp_path, capsys)  # fmt: skip


def test_boolean_labels_and_splits_are_refused_by_name(tmp_path, capsys):
    # found by review: numpy read [0, true, ...] as [0, 1, ...], so true meant context 1
    x_path, ctx = write_arrays(tmp_path)
    _, labels = vectors()
    inline = labels.tolist()
    inline[5] = True
    _edit_json(ctx, labels=inline)
    argv = ["import", "--arrays", str(x_path), "--contexts", str(ctx)]
    refused(argv, "context label True (sample 5) is a boolean, not a context index",
            tmp_path, capsys)  # fmt: skip
    inline[5] = 1.0
    _edit_json(ctx, labels=inline)
    refused(argv, "context label 1.0 (sample 5) is not a context index (an integer) or name",
            tmp_path, capsys)  # fmt: skip
    np.save(tmp_path / "labels.npy", labels % 2 == 1)
    _edit_json(ctx, labels="labels.npy")
    refused(argv, "context labels are booleans (dtype bool)", tmp_path, capsys)
    np.save(tmp_path / "labels.npy", labels)
    _edit_json(ctx, split=[False] * 240)
    refused(argv, "split value False (sample 0) is a boolean, not a split name", tmp_path,
            capsys)  # fmt: skip
    x, labels = vectors(n=10)
    with pytest.raises(DatasetError, match="context label True"):
        from_arrays(x, [True, *labels[1:].tolist()], CONCEPTS, contexts=CONTEXTS)


def test_a_context_folder_outside_root_is_refused(tmp_path, capsys):
    # found by review: a context named ../x/thick read images from outside ROOT
    root = write_folders(tmp_path / "images")
    write_folders(tmp_path / "elsewhere")
    for name in ["../elsewhere/a", "/abs/a", "..", ".", "a/b", "a\\b"]:
        _edit_json(root / "contexts.json", contexts={**CONTEXTS, name: ["a"]})
        if name == ".":
            _edit_json(root / "contexts.json", contexts={"obs": [], ".": ["a"], "b": ["b"]},
                       held_out=None)  # fmt: skip
        refused(["import", "--folders", str(root)], f"context name {name!r} in "
                f"{root / 'contexts.json'} is not a folder name", tmp_path, capsys)  # fmt: skip
    _edit_json(root / "contexts.json", contexts=CONTEXTS, held_out=[["a", "b"]])
    for f in (root / "a").iterdir():
        f.unlink()
    (root / "a").rmdir()
    # a folder in ROOT that links to one elsewhere (another disk) is the user's layout: read
    (root / "a").symlink_to(tmp_path / "elsewhere" / "a", target_is_directory=True)
    assert main(["import", "--folders", str(root), "--out", str(tmp_path / "linked")]) == 0
    capsys.readouterr()


def test_a_file_named_png_that_is_no_png_is_refused(tmp_path, capsys):
    # found by review: only the extension was checked, so a JPEG named .png was read
    root = write_folders(tmp_path / "images")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "a" / "009.png", format="JPEG")
    refused(["import", "--folders", str(root)], f"{root / 'a' / '009.png'} is not a PNG image: "
            "it does not begin with the PNG signature", tmp_path, capsys)  # fmt: skip


def test_png_names_in_any_case_are_read_and_dotfiles_skipped(tmp_path):
    root = write_folders(tmp_path)
    Image.open(root / "a" / "000.png").save(root / "a" / "100.PNG")
    (root / "a" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    ds = Dataset.from_folders(root)
    assert ds.card["source"]["images_per_context"]["a"] == 9
    a = ds.x[ds.context == 1]
    assert np.array_equal(a[-1], a[0])  # 100.PNG sorts after 000.png-007.png


def test_values_beyond_float32_are_refused_in_one_line_without_a_warning():
    # found by review: numpy's overflow RuntimeWarning printed a second line before the refusal
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DatasetError, match="beyond float32's range"):
            Dataset.from_arrays(np.full((30, 4), 1e300), [[], ["a"], ["b"]] * 10, ["a", "b"])
