"""``check()`` in steps: the witness builders are a table (:data:`WITNESS_RULES`), tried in
order, each answering one assumption failure with its own verdict text."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from conceptid.identifiability import NOT_IDENTIFIABLE, check
from conceptid.identifiability import witnesses as wt
from conceptid.identifiability.check import WITNESS_RULES, WitnessRule
from conceptid.simulations import DAG, SEM, ConceptModel, Context, Hard, LinearMixing


def _pair(contexts, nuisance=1, family="gaussian"):
    """Chain a -> b (weight 1, noise of mean 0 and variance 1 each) under linear mixing."""
    g = DAG.from_edges([("a", "b")])
    B = np.zeros((2, 2))
    B[1, 0] = 1.0
    sem = SEM(g, B, np.zeros(2), (np.eye(1), np.eye(1)), noise_family=family)
    d = 2 + nuisance
    return ConceptModel(sem, LinearMixing(np.eye(d + 1, d)), None, nuisance, 1.0, contexts)


OBS = Context.observational()
DO_A, DO_B = Context((Hard("a", 1.0, 2.0),)), Context((Hard("b", -1.0, 0.5),))


def test_the_table_names_each_builder_once_in_order():
    assert isinstance(WITNESS_RULES, tuple)
    assert all(isinstance(r, WitnessRule) for r in WITNESS_RULES)
    assert [r.build for r in WITNESS_RULES] == [
        wt.observational_only,
        wt.no_observational_context,
        wt.missing_intervention,
        wt.identity_intervention,
        wt.invariant_block_direction,
        wt.isotropic_block_rotation,
    ]
    assert [r.kind for r in WITNESS_RULES] == ["N4", "N7", "N1", "N2", "N6", "N5"]
    assert WITNESS_RULES[2].verdict == "A6: verified witness N1"


@pytest.mark.parametrize(
    ("contexts", "kind"),
    [((OBS,), "N4"), ((DO_A, DO_B), "N7"), ((OBS, DO_A), "N1")],
    ids=["observational only", "no observational context", "missing intervention"],
)
def test_a_rules_verdict_text_is_its_witness_kind_and_assumption(contexts, kind):
    report = check(_pair(contexts), "exact")
    bad = [c for c in report.concepts if c.status == NOT_IDENTIFIABLE]
    assert bad, str(report)
    assert kind in {c.witness.kind for c in bad}
    for c in bad:
        rule = next(r for r in WITNESS_RULES if r.kind == c.witness.kind)
        assert c.witness.assumption == rule.answers
        assert c.reason == rule.verdict == f"{rule.answers}: verified witness {c.witness.kind}"
        assert c.reason in str(report)


def test_no_witness_is_tried_unless_a4_and_a5_hold(monkeypatch):
    chk = importlib.import_module("conceptid.identifiability.check")  # the module, not check()
    tried = []
    rules = tuple(
        WitnessRule(
            r.answers, r.kind, lambda *a, r=r: tried.append(r.kind) or r.build(*a), r.concepts
        )
        for r in WITNESS_RULES
    )
    monkeypatch.setattr(chk, "WITNESS_RULES", rules)
    check(_pair((OBS,)), "exact")
    assert tried[0] == "N4" and "N7" not in tried  # N7 only without an observational context
    tried.clear()
    report = check(_pair((OBS,), family="laplace"), "exact")  # non-Gaussian noise: A4 fails
    assert report.assumptions["A4"].holds is False
    assert tried == [] and not report.witnesses
