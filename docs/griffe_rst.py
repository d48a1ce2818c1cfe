"""A griffe extension: the docstrings' reStructuredText roles as Markdown code spans.

The package's docstrings are numpydoc-style reStructuredText (``literal``, :class:`~a.b.C`).
Markdown renders double-backquoted literals as code already; a role would show as
``:class:`` followed by code, so ``:role:`~a.b.C``` becomes ``C`` and ``:role:`a.b.C``` becomes
``a.b.C``, each as code. The sources are left as they are.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")


def _code(match: re.Match) -> str:
    tilde, target = match.groups()
    target = target.strip()
    if tilde:
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def convert(text: str) -> str:
    """``text`` with every role written as a Markdown code span."""
    return _ROLE.sub(_code, text)


class RSTRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
