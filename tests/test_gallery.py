"""The gallery: every figure runs headless at a tiny scale and writes a non-empty PNG and caption.

The committed figures in ``docs/gallery/`` are made at ``scale=1.0`` by ``sdesim gallery``; here
each figure runs at ``scale=0.1`` (few particles, steps and grid cells, the NumPy backend), about
a minute in all on two shared cores.
"""

import matplotlib

matplotlib.use("Agg")

import re  # noqa: E402

import pytest  # noqa: E402
from figure_checks import legend_hits, overlapping_tick_labels  # noqa: E402

from sdesim import cli, gallery  # noqa: E402
from sdesim.gallery import _common  # noqa: E402

SCALE = 0.1
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_registry_has_at_least_twelve_figures_with_make_and_title():
    assert len(gallery.FIGURES) >= 12
    for name, module in gallery.FIGURES.items():
        assert module.NAME == name
        assert callable(module.make) and module.TITLE and module.__doc__


@pytest.mark.parametrize("name", sorted(gallery.FIGURES))
def test_figure_runs_headless_at_tiny_scale(name, tmp_path, monkeypatch):
    """Every figure, even at a tiny scale: a PNG, a one-line caption without NaN or infinity,
    no overlapping tick labels, no legend over the data."""
    module, figures = gallery.FIGURES[name], []

    def keep(fig, *args):
        figures.append(fig)
        return _common.save(fig, *args)

    monkeypatch.setattr(module, "save", keep)
    path = module.make(tmp_path, scale=SCALE)
    assert path == tmp_path / f"{name}.png"
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5_000
    caption = path.with_suffix(".txt").read_text().strip()
    assert caption and "\n" not in caption
    assert not re.search(r"\b(nan|inf)\b", caption, re.IGNORECASE), caption
    fig, = figures
    assert not overlapping_tick_labels(fig)
    assert {ax.get_title(): legend_hits(ax) for ax in fig.axes if ax.get_legend()} == \
        {ax.get_title(): 0 for ax in fig.axes if ax.get_legend()}


def test_generate_rejects_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="unknown gallery figure"):
        gallery.generate(tmp_path, names=["no_such_figure"])


def test_cli_gallery_only(tmp_path, capsys):
    assert cli.main(["gallery", "--out", str(tmp_path), "--scale", str(SCALE), "--only", "neb"]) == 0
    assert (tmp_path / "neb.png").stat().st_size > 0
    assert "neb" in capsys.readouterr().out
    assert cli.main(["gallery", "--list"]) == 0
    assert cli.main(["gallery", "--out", str(tmp_path), "--only", "nope"]) == 2
