"""Shared test configuration: a hypothesis profile sized for a 2-core CI machine.

``HYPOTHESIS_PROFILE=thorough`` runs many more examples (for local bug hunting).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "conceptid",
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run: a green suite stays green
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "conceptid"))


def pytest_configure(config) -> None:
    """One torch thread: the suite's models are tiny, and two threads per process on a 2-core
    machine shared with other work slow everything down by orders of magnitude."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)
