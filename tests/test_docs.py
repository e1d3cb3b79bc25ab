"""The documentation site: the theory lives in the repository, math renders offline, the
navigation is complete, and every formula of the pages and of the docstrings compiles.

No network and no browser: the site configuration and the pages are read as files; formulas
are extracted the way the site extracts them (``pymdownx.arithmatex`` for the pages, the
docstring converter of ``docs/hooks/docstring_math.py`` for the API reference) and compiled
by the vendored KaTeX under Node.js. Tests that need the ``docs`` extra or ``node`` skip
without them. Theory: ``docs/theory.md``.
"""

from __future__ import annotations

import ast
import html
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
KATEX = DOCS / "assets" / "katex"


def _config() -> dict:
    yaml = pytest.importorskip("yaml")

    class Loader(yaml.SafeLoader):  # tolerate mkdocs' custom tags (!ENV, !relative, python names)
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)
    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)


def _nav_pages(nav) -> list[str]:
    pages: list[str] = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            pages += _nav_pages(value)
        elif isinstance(value, str) and not value.startswith(("http://", "https://")):
            pages.append(value)
    return pages


def _pages() -> list[Path]:
    """The written pages: not the hooks, nor the example pages mkdocs-gallery generates at build time."""
    return sorted(p for p in DOCS.rglob("*.md") if not {"hooks", "generated"} & set(p.relative_to(DOCS).parts))


def _docstring_math():
    spec = importlib.util.spec_from_file_location("_docstring_math", DOCS / "hooks" / "docstring_math.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _project_files():
    for pattern in ("*.md", "*.toml", "*.yml", "*.yaml", "*.cfg", "*.txt", "*.py"):
        yield from ROOT.glob(pattern)
    for folder in ("docs", "tests", "sdesim", "examples", "benchmarks", "models"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".md", ".py", ".toml", ".yml", ".yaml", ".txt", ".json", ".ipynb"}:
                yield path


def test_no_pointer_to_notes_outside_the_repository():
    """The theory is docs/theory.md: nothing points to notes a user does not have."""
    banned = [".." + "/shared", "SCIENCE" + ".md", "DESIGN" + ".md"]
    hits = []
    for path in _project_files():
        if "__pycache__" in path.parts or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(errors="replace")
        hits += [f"{path.relative_to(ROOT)}: {word}" for word in banned if word in text]
    assert not hits, hits


def test_theory_anchors_exist():
    """Every section of ``docs/theory.md`` named (as ``theory.md#<id>``) in the pages, tests, README and docstrings is a section of it."""
    theory = (DOCS / "theory.md").read_text()
    anchors = set(re.findall(r"\{#([\w-]+)\}", theory))
    assert {"sgd-diffusion", "discrete-lyapunov", "continuous-lyapunov", "kramers"} <= anchors
    missing = []
    for path in _project_files():
        if "__pycache__" in path.parts or path.suffix not in {".md", ".py"}:
            continue
        for anchor in re.findall(r"theory\.md#([\w-]+)", path.read_text(errors="replace")):
            if anchor not in anchors:
                missing.append(f"{path.relative_to(ROOT)}: #{anchor}")
    assert not missing, missing


def test_site_assets_are_local_and_present():
    """KaTeX, its fonts and the init script are served from the site itself (offline rendering)."""
    config = _config()
    files = list(config.get("extra_javascript", [])) + list(config.get("extra_css", []))
    assert any("katex.min.js" in f for f in files) and any("katex.min.css" in f for f in files)
    for f in files:
        f = f if isinstance(f, str) else f["path"]
        assert not re.match(r"(https?:)?//", f), f"{f} would need the network"
        assert (DOCS / f).is_file(), f
    css = (KATEX / "katex.min.css").read_text()
    fonts = set(re.findall(r"url\(([^)]+)\)", css))
    assert fonts and all((KATEX / u.strip("'\"")).is_file() for u in fonts)
    assert config["theme"].get("font") is False, "theme fonts would be fetched from Google Fonts"
    extensions = [e if isinstance(e, str) else next(iter(e)) for e in config["markdown_extensions"]]
    assert "pymdownx.arithmatex" in extensions


def test_nav_lists_every_page():
    """Every written page is in the nav; the generated example gallery is one nav entry
    (``generated/gallery``, expanded by the mkdocs-gallery plugin at build time)."""
    config = _config()
    nav = set(_nav_pages(config["nav"]))
    assert "generated/gallery" in nav
    nav.discard("generated/gallery")
    pages = {p.relative_to(DOCS).as_posix() for p in _pages()}
    assert nav == pages, {"not in nav": sorted(pages - nav), "nav without a page": sorted(nav - pages)}


# --- formulas -------------------------------------------------------------------------------------

_INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.S)
_DISPLAY = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.S)


def _page_formulas() -> list[tuple[str, str, bool]]:
    markdown = pytest.importorskip("markdown")
    pytest.importorskip("pymdownx")
    out = []
    for path in _pages():
        md = markdown.Markdown(extensions=["tables", "attr_list", "admonition", "pymdownx.superfences",
                                           "pymdownx.arithmatex"],
                               extension_configs={"pymdownx.arithmatex": {"generic": True}})
        page = md.convert(path.read_text())
        where = path.relative_to(ROOT).as_posix()
        out += [(where, html.unescape(t), False) for t in _INLINE.findall(page)]
        out += [(where, html.unescape(t), True) for t in _DISPLAY.findall(page)]
        # what is left outside code and math must not look like math that was not recognised
        rest = re.sub(r"<(pre|code)\b.*?</\1>", "", page, flags=re.S)
        rest = _DISPLAY.sub("", _INLINE.sub("", rest))
        stray = re.findall(r".{0,30}(?:\$|\\\(|\\\[).{0,30}", rest)
        assert not stray, f"{where}: math delimiters left unrendered: {stray}"
    return out


def _docstrings():
    for path in sorted((ROOT / "sdesim").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=True)
                if doc:
                    yield f"{path.relative_to(ROOT).as_posix()}:{getattr(node, 'name', '<module>')}", doc


def _docstring_formulas() -> list[tuple[str, str, bool]]:
    convert = _docstring_math().convert
    out = []
    for where, doc in _docstrings():
        text = convert(doc)
        assert ":math:" not in text and ".. math::" not in text, where
        out += [(where, t, False) for t in re.findall(r"\\\((.+?)\\\)", text, flags=re.S)]
        out += [(where, t, True) for t in re.findall(r"^[ \t]*\$\$\n(.*?)\n[ \t]*\$\$$", text, flags=re.S | re.M)]
    return out


def test_docstring_converter():
    convert = _docstring_math().convert
    doc = "Loss :math:`C(w)`, see :meth:`~a.B.f`.\n\n.. math:: a = b\n   + c\n\nText.\n\n.. math::\n\n    x &= 1 \\\\\n    y &= 2\n"
    assert convert(doc) == ("Loss \\(C(w)\\), see `f`.\n\n$$\na = b\n+ c\n$$\n\nText.\n\n"
                            "$$\n\\begin{aligned}\nx &= 1 \\\\\ny &= 2\n\\end{aligned}\n$$\n")


_NODE_SCRIPT = r"""
const katex = require(process.argv[1]);
const items = JSON.parse(require("fs").readFileSync(0, "utf8"));
const errors = [];
for (const [where, tex, display] of items) {
  try { katex.renderToString(tex, {displayMode: display, throwOnError: true, strict: "ignore"}); }
  catch (e) { errors.push([where, tex, String(e.message).split("\n")[0]]); }
}
process.stdout.write(JSON.stringify(errors));
"""


def test_every_formula_compiles_with_katex():
    """Every formula of docs/*.md and of the sdesim docstrings (the API reference) parses in KaTeX."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node (Node.js) is not installed")
    items = _page_formulas() + _docstring_formulas()
    assert len(items) > 200
    run = subprocess.run([node, "-e", _NODE_SCRIPT, str(KATEX / "katex.min.js")], input=json.dumps(items),
                         capture_output=True, text=True, timeout=120, check=True)
    errors = json.loads(run.stdout)
    assert not errors, "\n".join(f"{w}: {e}\n    {t!r}" for w, t, e in errors)
