"""A run's configuration, and every default of a run, once.

:data:`DEFAULTS` is the one place the run's defaults live: :class:`RunConfig`,
:func:`conceptid.training.train_method` and the command line's options (``conceptid run``,
``train``, ``evaluate``) all read them from here. The choices (presets, check arithmetic, methods)
come from their registries: :data:`PRESET_NAMES` from ``conceptid.simulations.presets.PRESETS``,
:data:`CHECK_METHODS` the identifiability check's arithmetics, the methods from
:data:`conceptid.methods.METHODS`.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conceptid.simulations.benchmark import BenchmarkSpec
from conceptid.simulations.presets import PRESETS
from conceptid.simulations.validation import check_number

from .errors import PipelineError
from .methods import METHODS, check_options

__all__ = [
    "CHECK_METHODS",
    "DEFAULTS",
    "DEFAULT_PRESET",
    "DEFAULT_RUN",
    "PRESET_NAMES",
    "REPORTED",
    "Defaults",
    "RunConfig",
    "check_options_trained",
]

#: the built-in benchmark presets (the presets registry's names, in its order)
PRESET_NAMES = tuple(PRESETS)
#: the preset ``conceptid simulate``, ``check`` and ``run`` use when none is named
DEFAULT_PRESET = "quad"
#: the built-in default benchmark of ``conceptid run`` and ``make demo`` (quad at 32x32); 500
#: test images per context, so that every SWD and its floors are measured at that size
DEFAULT_RUN = {"preset": DEFAULT_PRESET, "preset_args": {"image_size": 32}, "n_train": 500,
               "n_val": 100, "n_test": 500}  # fmt: skip
#: the arithmetics of the identifiability check (``conceptid.identifiability.check``)
CHECK_METHODS = ("exact", "numeric")
#: the training settings the report and metrics.json state for every method
REPORTED = ("seed", "epochs", "batch_size", "lr", "restarts", "device")


@dataclass(frozen=True)
class Defaults:
    """The defaults of a run (the values of :data:`DEFAULTS`)."""

    seed: int = 0
    epochs: int = 20
    batch_size: int = 128
    lr: float = 2e-3
    device: str = "cpu"
    restarts: int = 1
    n_generate: int = 500  # generated samples per context for the SWDs
    check_method: str = "exact"
    out: str = "runs/default"


#: every default of a run
DEFAULTS = Defaults()


def check_options_trained(options: Mapping, methods: Sequence[str]) -> None:
    """Refuse options of a method the run does not train (:class:`PipelineError`)."""
    untrained = [m for m in options if m not in methods]
    if untrained:
        raise PipelineError(f"options of {', '.join(map(str, untrained))}, which the run does "
                            f"not train (methods {', '.join(methods)})")  # fmt: skip


@dataclass
class RunConfig:
    """Everything a run needs; recorded in metrics.json and the report.

    ``spec`` is the benchmark to generate; or None with ``data``, an existing dataset directory
    (generated or imported) that the run copies into ``out/data`` and uses as it is.
    ``options`` maps a method to its construction options (``{"context-flow": {"flow_layers":
    10}}``; :func:`conceptid.methods.check_options`); a method not named there is built as
    its defaults build it.

    Raises
    ------
    PipelineError
        A count that is not a positive integer, an unknown method, preset or check arithmetic,
        options of a method the run does not train, or options the method does not take.
    """

    spec: BenchmarkSpec | None
    out: Path
    seed: int = DEFAULTS.seed
    epochs: int = DEFAULTS.epochs
    batch_size: int = DEFAULTS.batch_size
    lr: float = DEFAULTS.lr
    device: str = DEFAULTS.device
    methods: Sequence[str] | None = None
    check_method: str = DEFAULTS.check_method
    n_generate: int = DEFAULTS.n_generate
    restarts: int = DEFAULTS.restarts
    progress: bool = True
    retrain: bool = False
    command: str = field(default_factory=lambda: shlex.join(sys.argv))
    data: Path | None = None
    options: Mapping[str, Mapping] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.data is not None:
            self.data = Path(self.data)
        for name in ("epochs", "batch_size", "n_generate", "restarts"):
            check_number(getattr(self, name), name, error=PipelineError)
        unknown = [m for m in (self.methods or []) if m not in METHODS]
        if unknown:
            raise PipelineError(f"unknown methods {unknown}; known: {sorted(METHODS)}")
        if self.check_method not in CHECK_METHODS:
            raise PipelineError(f"check_method must be one of {CHECK_METHODS}, got "
                                f"{self.check_method!r}")  # fmt: skip
        preset = None if self.spec is None else self.spec.preset
        if preset is not None and preset not in PRESET_NAMES:
            raise PipelineError(f"unknown preset {preset!r}; presets are {list(PRESET_NAMES)}")
        if self.options is None:
            self.options = {}
        if not isinstance(self.options, Mapping):
            raise PipelineError(f"options must map methods to their options, got "
                                f"{type(self.options).__name__}")  # fmt: skip
        if self.methods:  # else the run's default methods, which it checks them against
            check_options_trained(self.options, self.methods)
        checked = {m: check_options(m, o) for m, o in self.options.items()}
        self.options = {m: o for m, o in checked.items() if o}

    def training(self, method: str | None = None) -> dict:
        """The training settings, as keyword arguments of
        :func:`conceptid.training.train_method`; with ``method``, its ``options`` too."""
        out = {"seed": self.seed, "epochs": self.epochs, "batch_size": self.batch_size,
               "lr": self.lr, "device": self.device, "restarts": self.restarts}  # fmt: skip
        if method is not None:
            out["options"] = dict(self.options.get(method, {}))
        return out
