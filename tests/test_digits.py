"""Real handwritten digits under Morpho-MNIST-style operations: each operation does what it says,
a composition is the operations applied in sequence, and the dataset is reproducible from its
seed, with splits by source digit."""

from __future__ import annotations

import numpy as np
import pytest

from conceptid.cli import main
from conceptid.simulations import digits
from conceptid.simulations.benchmark import load_dataset
from conceptid.simulations.errors import UsageError

SMALL = {"n_train": 12, "n_val": 3, "n_test": 12}


def stroke_image(size: int = 32) -> np.ndarray:
    """A vertical bar 3 px wide and a horizontal one, as a digit's strokes would be."""
    img = np.zeros((size, size))
    img[6:26, 14:17] = 1.0
    img[15:18, 8:24] = 1.0
    return img


def ink_centre(img: np.ndarray) -> np.ndarray:
    rows, cols = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    return np.array([(rows * img).sum(), (cols * img).sum()]) / img.sum()


@pytest.fixture(scope="module")
def small():
    return digits.morpho_digits(seed=1, **SMALL)


def test_thickening_adds_ink_and_thinning_removes_it():
    img = stroke_image()
    thick, thin = digits.thicken(img, 1.5), digits.thin(img, 1.0)
    assert (thick >= img).all() and thick.sum() > 1.5 * img.sum()
    assert (thin <= img).all() and 0 < thin.sum() < 0.7 * img.sum()
    # the strokes stay where they were: the ink's centre barely moves
    assert np.allclose(ink_centre(thick), ink_centre(img), atol=0.5)


def test_shear_moves_the_top_row_right_of_the_bottom_row():
    img = np.zeros((32, 32))
    img[6:26, 15:17] = 1.0  # a vertical bar
    out = digits.shear(img, 0.4)

    def column(row: int) -> float:
        return float((np.arange(32) * out[row]).sum() / out[row].sum())

    # rows 7 and 24 are 17 rows apart: 0.4 px per row puts the top 6.8 px to the right
    assert column(7) - column(24) == pytest.approx(0.4 * 17, abs=0.3)
    assert out.sum() == pytest.approx(img.sum(), rel=0.05)  # a slant, not a loss of ink


def test_shift_scale_and_swelling():
    img = stroke_image()
    moved = digits.shift(img, 2.0, -3.0)
    assert np.allclose(ink_centre(moved) - ink_centre(img), [2.0, -3.0], atol=0.05)
    small = digits.scale(img, 0.6)
    assert 0.6**2 * 0.9 < small.sum() / img.sum() < 0.6**2 * 1.1  # area scales as factor^2
    swollen = digits.swell(img, (16.0, 15.0), 7.0, 2.0)
    assert swollen.sum() > 1.2 * img.sum()  # magnified around the centre
    assert np.array_equal(swollen[:, :7], img[:, :7])  # untouched outside the disc


def test_a_composition_is_the_operations_applied_in_sequence():
    img = stroke_image()
    rng = np.random.default_rng(0)
    params = {op: digits.draw(op, img, rng) for op in ("shear", "thickening", "swelling")}
    expected = digits.shear(
        digits.swell(digits.thicken(img, **params["thickening"]), **params["swelling"]),
        **params["shear"],
    )
    assert np.array_equal(digits.apply(img, params), expected)
    with pytest.raises(UsageError, match="unknown operation 'blur'"):
        digits.apply(img, {"blur": {}})


def test_the_builder_is_deterministic_under_its_seed(small):
    again = digits.morpho_digits(seed=1, **SMALL)
    assert again.card["content_hash"] == small.card["content_hash"]
    assert np.array_equal(again.x, small.x)
    other = digits.morpho_digits(seed=2, **SMALL)
    assert other.card["content_hash"] != small.card["content_hash"]


def test_the_dataset_has_the_promised_contexts_and_splits(small):
    assert small.context_names == ["obs", *(f"do({op})" for op in digits.OPERATIONS),
                                   "do(thickening,shear)", "do(thinning,scale)",
                                   "do(swelling,shift)"]  # fmt: skip
    assert small.x.shape[1:] == (32, 32, 3) and small.x.dtype == np.uint8
    assert not small.has_ground_truth and small.nuisance_dim == 8
    for ctx in small.card["contexts"]:
        counts = np.bincount(small.split[small.context == ctx["index"]], minlength=3).tolist()
        assert counts == ([0, 0, 12] if ctx["held_out"] else [12, 3, 12]), ctx["name"]
    # plain digits: the test images are other source digits than the training images
    obs = small.context == 0
    train = {r.tobytes() for r in small.x[obs & (small.split == 0)]}
    test = {r.tobytes() for r in small.x[obs & (small.split == 2)]}
    assert len(train) == 12 and not train & test
    # each operation changes the images the way it should, on average over the context
    ink = {n: small.x[small.context == k].mean() for k, n in enumerate(small.context_names)}
    assert ink["do(thickening)"] > 1.2 * ink["obs"] > 1.2 * ink["do(thinning)"]


def test_block_sizes_widen_the_concepts_they_name():
    ds = digits.morpho_digits(seed=1, block_sizes={"shift": 2}, **SMALL)
    assert ds.card["block_sizes"] == [1, 1, 1, 1, 1, 2]  # in the order of OPERATIONS


def test_the_digits_import_command(tmp_path, capsys):
    out = tmp_path / "digits"
    assert main(["import", "--digits", "--n-per-context", "10", "--out", str(out)]) == 0
    ds = load_dataset(out)
    assert ds.card["source"]["kind"] == "morpho-digits" and ds.card["name"] == "digits"
    assert np.bincount(ds.split[ds.context == 0]).tolist() == [10, 2, 10]
    assert (
        main(["import", "--digits", "--n-per-context", "2000", "--out", str(tmp_path / "x")]) == 2
    )
    assert "n_train = 2000 > 1077" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_bad_arguments_are_refused():
    for kwargs, words in [
        ({"operations": ["thickening", "blur"]}, "distinct names"),
        ({"held_out": [["thickening"]]}, "two or more distinct operations"),
        ({"held_out": [["thickening", "shear"]], "operations": ["thickening"]}, "'shear' is not"),
        ({"image_size": 28}, "image_size must be one of"),
        ({"n_val": 0}, "n_val must be a positive integer"),
        ({"block_sizes": {"blur": 2}}, "block_sizes must map some of the operations"),
        ({"block_sizes": {"shift": 0}}, "block_sizes\\['shift'\\] must be a positive integer"),
    ]:
        with pytest.raises(UsageError, match=words):
            digits.morpho_digits(**kwargs)
