"""The package's one error base class, and the error of an argument outside its domain.

Every error that conceptid raises on bad input derives from :class:`ConceptIDError`, so a caller
(the command line included) can catch the package's own errors without a list of types. It
subclasses :class:`ValueError` because every such error is a value the caller passed that the
package refuses.
"""

from __future__ import annotations

__all__ = ["ConceptIDError", "MixingError", "UsageError"]


class ConceptIDError(ValueError):
    """Base class of every error conceptid raises on bad input or an impossible request."""


class UsageError(ConceptIDError):
    """An argument is outside its domain: a count that must be positive, an unknown choice, an
    array of the wrong shape, options that cannot go together, a request too large for the
    machine. The message names the argument."""


class MixingError(ConceptIDError):
    """A mixing is malformed, or was given input of the wrong shape or with NaNs (defined here,
    beside the base class, so that both the mixings and the renderer they call can raise it
    without importing each other; :mod:`conceptid.simulations.mixing` exports it)."""
