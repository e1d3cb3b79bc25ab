"""Render the reStructuredText math of sdesim's numpydoc docstrings in the API reference.

The docstrings write math as Sphinx does: inline ``:math:`\\nabla C``` roles and
``.. math::`` directive blocks. mkdocstrings renders docstrings as Markdown, where
both would reach the page raw. This Griffe extension (loaded by mkdocstrings-python,
``extensions:`` in ``mkdocs.yml``) rewrites every docstring before it is parsed:

- ``:math:`x``` becomes ``\\(x\\)``, and a ``.. math::`` block becomes a ``$$ ... $$``
  block (one per paragraph of the directive's body), which ``pymdownx.arithmatex``
  (generic mode) wraps for KaTeX (``docs/javascripts/katex-init.js``);
- the cross-reference roles ``:func:``, ``:meth:``, ``:class:``, ... become code spans
  (``~a.b.c`` shows ``c``, as in Sphinx).

``convert`` is plain text to text, with no dependency, so ``tests/test_docs.py`` checks
with it that every formula of every docstring compiles with the vendored KaTeX.
"""

from __future__ import annotations

import re

try:  # only mkdocstrings needs the extension class; the tests need only ``convert``
    from griffe import Extension
except ImportError:  # pragma: no cover
    Extension = object

__all__ = ["DocstringMath", "convert"]

_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_XREF_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|attr|obj|data|exc|const):`([^`]+)`")
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<first>.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _xref(match: re.Match) -> str:
    target = match.group(1).strip()
    if target.startswith("~"):
        target = target[1:].rsplit(".", 1)[-1]
    return f"`{target}`"


def _needs_aligned(para: list[str]) -> bool:
    """Alignment points or line breaks outside an environment: Sphinx wraps these in an alignment."""
    tex = "\n".join(para)
    return ("&" in tex or "\\\\" in tex) and "\\begin{" not in tex


def _blocks(text: str) -> str:
    """``.. math::`` directives (with their indented bodies) to ``$$`` blocks."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent, base = m.group("indent"), _indent(lines[i])
        body = [m.group("first").strip()] if m.group("first").strip() else []
        i += 1
        # the body: every following line indented deeper than the directive, blank lines included
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
            body.append(lines[i].strip())
            i += 1
        while body and not body[-1]:
            body.pop()
        paragraphs: list[list[str]] = [[]]
        for line in body:
            if line:
                paragraphs[-1].append(line)
            elif paragraphs[-1]:
                paragraphs.append([])
        if out and out[-1].strip():
            out.append("")
        for para in (p for p in paragraphs if p):
            if _needs_aligned(para):            # as Sphinx: several lines of one equation
                para = [r"\begin{aligned}", *para, r"\end{aligned}"]
            out.extend([indent + "$$", *(indent + line for line in para), indent + "$$", ""])
    return "\n".join(out)


def convert(text: str) -> str:
    """A numpydoc docstring with reST math and roles -> Markdown with arithmatex math."""
    if ":math:" not in text and ".. math::" not in text and ":`" not in text:
        return text
    text = _blocks(text)
    text = _MATH_ROLE.sub(lambda m: r"\(" + m.group(1) + r"\)", text)
    return _XREF_ROLE.sub(_xref, text)


class DocstringMath(Extension):
    """Griffe extension: ``convert`` every docstring as its object is loaded."""

    def on_instance(self, *, obj, **kwargs) -> None:  # griffe >= 0.48 signature
        docstring = getattr(obj, "docstring", None)
        if docstring is not None and docstring.value:
            docstring.value = convert(docstring.value)
