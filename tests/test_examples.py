"""The runnable examples (``examples/gallery``; mkdocs-gallery runs them into the docs): each
script runs headless at a small scale, draws its figure and prints its measured numbers, so
the recipes cannot rot.

``SDESIM_EXAMPLE_SCALE`` shrinks every example (fewer particles, steps, grid cells and grid
points; below 0.5 the NumPy reference backend, which compiles nothing). The scripts run in
this process (``runpy``), one test each, from the repository root (the network examples read
the shipped models in ``models/``). About a minute in all on two shared cores.
"""

import matplotlib

matplotlib.use("Agg")

import ast  # noqa: E402
import re  # noqa: E402
import runpy  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from figure_checks import legend_hits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "examples" / "gallery"
EXAMPLES = sorted(GALLERY.rglob("plot_*.py"))
SCALE = "0.05"


def _id(path):
    return path.relative_to(GALLERY).with_suffix("").as_posix()


def test_the_gallery_has_every_kind_of_example():
    """One folder per lens, a sweep, real networks and backends; every folder has the README
    that titles its section; at least the fifteen figures of the static gallery plus two."""
    folders = {p.name for p in GALLERY.iterdir() if p.is_dir() and p.name != "__pycache__"}
    for kind in ("discrete", "flows", "sde", "density", "sweeps", "networks", "backends"):
        assert any(f.endswith(kind) for f in folders), kind
    for folder in [GALLERY] + [GALLERY / f for f in folders]:
        assert (folder / "README.md").read_text().startswith("# "), folder
    assert len(EXAMPLES) >= 17
    sweep = (GALLERY / "5_sweeps" / "plot_three_factors.py").read_text()
    assert "sd.sweep(" in sweep and 'executor="serial"' in sweep


@pytest.mark.parametrize("path", EXAMPLES, ids=_id)
def test_example_is_a_recipe(path):
    """A sphinx-gallery script: a docstring with a title, the paper it reproduces, ``# %%``
    cells; the public API (``import sdesim as sd``), not the figure modules of ``sdesim.gallery``;
    sizes that the scale variable shrinks."""
    text = path.read_text()
    doc = ast.get_docstring(ast.parse(text))
    assert doc and re.match(r"# \S", doc), "the docstring starts with a '# Title' line"
    assert "**Reproduces.**" in doc or "**Reference.**" in doc
    assert "\n# %%\n" in text and "import sdesim as sd\n" in text
    assert "sdesim.gallery" not in text and "SDESIM_EXAMPLE_SCALE" in text


@pytest.mark.parametrize("path", EXAMPLES, ids=_id)
def test_example_runs_at_a_small_scale(path, monkeypatch, capsys):
    monkeypatch.setenv("SDESIM_EXAMPLE_SCALE", SCALE)
    monkeypatch.chdir(ROOT)
    plt.close("all")
    try:
        runpy.run_path(str(path), run_name="__main__")
        figures = [plt.figure(n) for n in plt.get_fignums()]
        assert figures, "the example draws no figure"
        for fig in figures:
            legends = {ax.get_title(): legend_hits(ax) for ax in fig.axes if ax.get_legend()}
            assert legends == dict.fromkeys(legends, 0), f"legends over the data: {legends}"
    finally:
        plt.close("all")
    out = capsys.readouterr().out
    assert out.strip(), "the example prints no measured numbers"
    assert not re.search(r"\b(nan|inf)\b", out, re.IGNORECASE), out
