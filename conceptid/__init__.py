"""conceptid: the command line, and the pipelines that wire simulations, identifiability, models."""

from importlib.metadata import PackageNotFoundError, version

from conceptid.simulations.errors import ConceptIDError, UsageError

__all__ = ["ConceptIDError", "UsageError", "__version__"]

try:
    __version__ = version("conceptid")
except PackageNotFoundError:  # pragma: no cover - source tree without metadata
    __version__ = "0+unknown"
