"""Synthetic causal-concept simulators (numpy only; never imports torch).

Graphs (:mod:`.graphs`), SEMs over concept blocks (:mod:`.sem`), interventions and contexts
(:mod:`.interventions`), mixings (:mod:`.mixing`, :mod:`.render`), the full generative model
(:mod:`.model`), presets and designs (:mod:`.presets`), benchmark datasets on disk
(:mod:`.benchmark`), a user's own data as a dataset (:mod:`.imported`), and contexts made from
real handwritten digits by image operations (:mod:`.digits`, needs scikit-learn and scipy).
"""

from .benchmark import SPLITS, BenchmarkSpec, Dataset, DatasetError, generate, load_dataset
from .errors import ConceptIDError, UsageError
from .graphs import DAG, GraphError, chain, erdos_renyi, scale_free
from .interventions import Context, Hard, Intervention, InterventionError, Shift, Soft
from .mixing import (
    FunctionMixing,
    ImageMixing,
    InjectiveQuadMixing,
    LinearMixing,
    Mixing,
    MixingError,
    MLPMixing,
)
from .model import ConceptModel, ModelError, Sample, composed, random_readout
from .presets import PRESETS, build_preset, quad, single_target_contexts
from .sem import SEM, SEMError, random_sem

__all__ = [
    "DAG", "PRESETS", "SEM", "SPLITS", "BenchmarkSpec", "ConceptIDError", "ConceptModel",
    "Context", "Dataset", "DatasetError", "FunctionMixing", "GraphError", "Hard", "ImageMixing",
    "InjectiveQuadMixing", "Intervention", "InterventionError", "LinearMixing", "MLPMixing",
    "Mixing", "MixingError", "ModelError", "SEMError", "Sample", "Shift", "Soft", "UsageError",
    "build_preset", "chain", "composed", "erdos_renyi", "generate", "load_dataset", "quad",
    "random_readout", "random_sem", "scale_free", "single_target_contexts",
]  # fmt: skip
