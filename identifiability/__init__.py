"""The theorem as code (numpy/scipy/sympy; never imports torch).

- :func:`check`: a verdict per concept (identifiable / not identifiable with a verified witness /
  not covered) and per assumption A0-A7 (+ A7+), exactly or numerically;
- :mod:`.assumptions`: the predicates; :mod:`.equivalence`: the class, :func:`align`,
  :func:`contains`; :mod:`.linear`: identification from context moments under linear mixing;
- :mod:`.witnesses`: counterexample builders; :mod:`.injectivity`: numeric check of A3
  (:func:`check_injectivity` for any function, e.g. your own mixing);
- :mod:`.strategies`: hypothesis strategies (imported on demand:
``conceptid.identifiability.strategies``).

The statements and proofs are in ``proofs/``; ``proofs/setting.md`` fixes the setting.
"""

from .assumptions import ASSUMPTIONS, Verdict, evaluate
from .check import IDENTIFIABLE, NOT_COVERED, NOT_IDENTIFIABLE, ConceptVerdict, Report, check
from .equivalence import AlignResult, EquivalenceClass, align, contains, readout_distance
from .injectivity import InjectivityReport, check_injectivity, check_mixing_injectivity
from .linalg import Exact, Numeric, arithmetic
from .linear import (
    IdentificationError,
    IdentifiedModel,
    identify_linear,
    identify_linear_ml,
    model_moments,
)
from .witnesses import (
    Witness,
    WitnessError,
    WitnessVerification,
    identity_intervention,
    invariant_block_direction,
    isotropic_block_rotation,
    missing_intervention,
    no_observational_context,
    observational_only,
)

__all__ = [
    "ASSUMPTIONS", "IDENTIFIABLE", "NOT_COVERED", "NOT_IDENTIFIABLE", "AlignResult",
    "ConceptVerdict", "EquivalenceClass", "Exact", "IdentificationError", "IdentifiedModel",
    "InjectivityReport", "Numeric", "Report", "Verdict", "Witness", "WitnessError",
    "WitnessVerification", "align", "arithmetic", "check", "check_injectivity",
    "check_mixing_injectivity", "contains", "evaluate", "identify_linear", "identify_linear_ml",
    "identity_intervention", "invariant_block_direction", "isotropic_block_rotation",
    "missing_intervention", "model_moments", "no_observational_context", "observational_only",
    "readout_distance",
]  # fmt: skip
