"""The Dataset's named accessors of its card: what the rest of the package reads instead of raw
card keys (held-out contexts, target masks, image or vectors, names, hashes)."""

from __future__ import annotations

import numpy as np
import pytest

from conceptid.simulations.benchmark import BenchmarkSpec, Dataset, DatasetError, generate


@pytest.fixture(scope="module")
def chain() -> Dataset:
    spec = BenchmarkSpec(preset="chain", preset_args={"m": 3, "nuisance_dim": 1}, n_train=8,
                         n_val=2, n_test=3, seed=1)  # fmt: skip
    return generate(spec)


@pytest.fixture(scope="module")
def quad() -> Dataset:
    return generate(BenchmarkSpec(preset="quad", preset_args={"image_size": 16}, n_train=2,
                                  n_val=1, n_test=1, seed=0))  # fmt: skip


@pytest.fixture(scope="module")
def imported() -> Dataset:
    rng = np.random.default_rng(0)
    targets = [[], ["a"], ["b"], ["a", "b"]] * 6
    x = rng.normal(size=(len(targets), 5)).astype(np.float32)
    return Dataset.from_arrays(x, targets, ["a", "b"], held_out=[["a", "b"]], name="mine")


def test_the_accessors_say_what_the_card_says(chain):
    card = chain.card
    assert chain.name == card["name"] == "chain"
    assert chain.content_hash == card["content_hash"] and chain.card_hash == card["card_hash"]
    assert chain.concept_names == card["concept_names"] == ["c0", "c1", "c2"]
    assert chain.block_sizes == (1, 1, 1)
    assert chain.spec == BenchmarkSpec.from_dict(card["spec"]) and chain.source is None
    contexts = card["contexts"]
    assert chain.held_out_contexts == [c["index"] for c in contexts if c["held_out"]]
    assert chain.training_contexts == [c["index"] for c in contexts if not c["held_out"]]
    assert chain.observational_contexts == [c["index"] for c in contexts if not c["targets"]]
    assert set(chain.held_out_contexts) | set(chain.training_contexts) == set(range(len(contexts)))
    assert not chain.is_image


def test_target_masks_follow_the_contexts_targets(chain):
    masks = chain.target_mask()
    assert masks.shape == (len(chain.context_names), 3) and masks.dtype == bool
    for k, ctx in enumerate(chain.card["contexts"]):
        expected = [name in ctx["targets"] for name in chain.concept_names]
        assert masks[k].tolist() == expected
        assert chain.target_mask(k).tolist() == expected
        assert chain.target_mask(ctx["name"]).tolist() == expected
        assert chain.targets(ctx["name"]) == ctx["targets"]
        assert chain.is_held_out(k) == ctx["held_out"]
    assert not chain.target_mask(chain.observational_contexts[0]).any()


def test_a_context_is_a_known_name_or_index(chain):
    with pytest.raises(DatasetError, match="unknown context 'nope'"):
        chain.target_mask("nope")
    with pytest.raises(DatasetError, match="outside"):
        chain.is_held_out(len(chain.context_names))
    with pytest.raises(DatasetError, match="a name or an index"):
        chain.targets(1.5)
    assert chain.context_index(np.int16(1)) == 1


def test_images_are_told_apart_one_way(quad, chain):
    assert quad.is_image and quad.x.dtype == np.uint8 and quad.x.ndim == 4
    assert quad.card["observation"]["kind"] == "image"
    assert not chain.is_image and chain.x.dtype == np.float32
    assert quad.block_sizes == tuple(quad.card["block_sizes"])


def test_imported_data_has_a_source_no_spec_and_the_same_accessors(imported):
    assert imported.name == "mine" and imported.spec is None
    assert imported.source == {"kind": "arrays"}
    assert imported.concept_names == ["a", "b"] and not imported.is_image
    held = imported.held_out_contexts
    assert [imported.context_names[k] for k in held] == [imported.context_names[-1]]
    assert imported.target_mask(held[0]).tolist() == [True, True]
    assert imported.observational_contexts == [0]
