"""A griffe extension for the docs build: Sphinx roles left in the modules not yet converted.

The docstrings are Google style with mkdocstrings cross-references
(``[Token][goth_actors.Token]``) or code spans. The modules below were being rewritten on
another branch when the others were converted, so they still hold Sphinx roles
(``:class:`Token```), ``Example:`` sections (which griffe renders as prose, not as examples) and
doctest tracebacks that name private modules. When the site is built, this extension shows
each role as a code span (the last part of a dotted name, so that no private module is named),
each ``Example:`` as ``Examples:``, ``goth_actors.otp._errors.X`` as ``goth_actors.otp.X``, and
reST's ``::`` before a literal block as ``:``.
It changes nothing in the source. Delete a module from ``PENDING`` once its docstrings are
converted, and this file with the last of them (and its line in ``mkdocs.yml``).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

import griffe

PENDING = frozenset(
    {
        "goth_actors/_api.py",
        "goth_actors/_events.py",
        "goth_actors/_fork.py",
        "goth_actors/_options.py",
        "goth_actors/_root.py",
        "goth_actors/_server.py",
        "goth_actors/_status.py",
        "goth_actors/_table.py",
    }
)
"""Files whose docstrings still hold Sphinx roles (``*`` for every module of a package)."""

EXAMPLE = re.compile(r"^(\s*)Example:$", re.MULTILINE)
"""Google style's singular section title, which griffe reads as an admonition, not as examples."""

PRIVATE_PATH = re.compile(r"\bgoth_actors((?:\.[a-z]\w*)*)(?:\._\w+)+\.(\w+)")
"""A dotted path through private modules: ``goth_actors.otp._errors.AlreadyRegistered``."""

LITERAL = re.compile(r"([^:\s])::$", re.MULTILINE)
"""reST's ``::`` before a literal block; in Markdown the indented block is code already."""

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|exc|obj):`(~?)([^`<]+?)`")


def pending(path: str) -> bool:
    """Whether the file at ``path`` (relative to the project) is one not yet converted."""
    posix = PurePosixPath(path)
    return str(posix) in PENDING or f"{posix.parent}/*" in PENDING


def code_span(match: re.Match[str]) -> str:
    """The code span that stands for one Sphinx role."""
    target = match.group(2).strip()
    if match.group(1) or "._" in target:
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


class PendingSphinxRoles(griffe.Extension):
    """Turns the Sphinx roles of the ``PENDING`` modules' docstrings into code spans.

    It also renames their ``Example:`` sections ``Examples:``, as in the converted modules.
    """

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrites one object's docstring if it comes from a pending module."""
        if obj.docstring is None or obj.is_alias:
            return
        try:
            path = str(obj.relative_package_filepath)
        except (ValueError, AttributeError):
            return
        if pending(path):
            value = ROLE.sub(code_span, obj.docstring.value)
            value = PRIVATE_PATH.sub(r"goth_actors\1.\2", value)
            value = LITERAL.sub(r"\1:", value)
            obj.docstring.value = EXAMPLE.sub(r"\1Examples:", value)
