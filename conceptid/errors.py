"""The errors of the pipeline layer (each a :class:`~conceptid.simulations.errors.ConceptIDError`,
so the command line prints it as one line and exits with status 2)."""

from __future__ import annotations

from conceptid.simulations.errors import ConceptIDError

__all__ = ["PipelineError", "PlotError"]


class PipelineError(ConceptIDError):
    """A run was asked for something it cannot do (an unknown method, a wrong data kind, a saved
    model of other settings without ``retrain``, interventions from a model without them)."""


class PlotError(ConceptIDError):
    """A figure cannot be drawn or written (too large to draw, or data matplotlib refuses)."""
