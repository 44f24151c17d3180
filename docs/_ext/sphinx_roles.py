"""A griffe extension for the API reference: make reST-flavoured docstrings read as Markdown.

diskstore's docstrings follow Python's conventions, which Markdown renders badly:

- Sphinx roles (``:class:`Timeout```, ``:meth:`~Cache.evict```) would print verbatim; each
  becomes inline code, keeping the last component when the target starts with ``~`` and
  adding ``()`` to functions and methods, as Sphinx does;
- doctest examples (``>>>`` lines and their output) would become nested block quotes; each
  becomes a fenced ``pycon`` block.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(class|meth|func|mod|attr|exc|data|obj|const):`(~?)([^`]+)`")


def _render(match: re.Match[str]) -> str:
    role, short, target = match.groups()
    text = target.rsplit(".", 1)[-1] if short else target
    if role in ("meth", "func") and not text.endswith(")"):
        text += "()"
    return f"`{text}`"


def render_roles(text: str) -> str:
    """Replace every Sphinx cross-reference role in *text* with inline code."""
    return _ROLE.sub(_render, text)


def fence_doctests(text: str) -> str:
    """Wrap each doctest example (``>>>`` up to the next blank line) in a pycon fence."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.lstrip().startswith(">>>"):
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        out.append(f"{indent}```")
    return "\n".join(out)


def convert(text: str) -> str:
    """Apply every conversion; code inside doctest examples is left as written."""
    parts = re.split(r"(```pycon\n.*?```)", fence_doctests(text), flags=re.DOTALL)
    for index in range(0, len(parts), 2):
        parts[index] = render_roles(parts[index])
    return "".join(parts)


class SphinxRoles(griffe.Extension):
    """Rewrites docstrings as they are loaded, before mkdocstrings parses them."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
