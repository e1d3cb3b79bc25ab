"""The gallery: every figure runs headless at a tiny scale and writes a non-empty PNG and caption.

The committed figures in ``docs/gallery/`` are made at ``scale=1.0`` by ``sdesim gallery``; here
each figure runs at ``scale=0.1`` (few particles, steps and grid cells, the NumPy backend), about
a minute in all on two shared cores.
"""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from sdesim import cli, gallery  # noqa: E402

SCALE = 0.1
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_registry_has_at_least_twelve_figures_with_make_and_title():
    assert len(gallery.FIGURES) >= 12
    for name, module in gallery.FIGURES.items():
        assert module.NAME == name
        assert callable(module.make) and module.TITLE and module.__doc__


@pytest.mark.parametrize("name", sorted(gallery.FIGURES))
def test_figure_runs_headless_at_tiny_scale(name, tmp_path):
    path = gallery.FIGURES[name].make(tmp_path, scale=SCALE)
    assert path == tmp_path / f"{name}.png"
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5_000
    caption = path.with_suffix(".txt").read_text().strip()
    assert caption and "\n" not in caption


def test_generate_rejects_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="unknown gallery figure"):
        gallery.generate(tmp_path, names=["no_such_figure"])


def test_cli_gallery_only(tmp_path, capsys):
    assert cli.main(["gallery", "--out", str(tmp_path), "--scale", str(SCALE), "--only", "neb"]) == 0
    assert (tmp_path / "neb.png").stat().st_size > 0
    assert "neb" in capsys.readouterr().out
    assert cli.main(["gallery", "--list"]) == 0
    assert cli.main(["gallery", "--out", str(tmp_path), "--only", "nope"]) == 2
