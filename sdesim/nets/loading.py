"""Load an extracted model with the net and the training set it was extracted from:
a shipped recipe (:mod:`sdesim.nets.zoo`, rebuilt when missing) or an :meth:`Extraction.save` file."""

from __future__ import annotations

from pathlib import Path

from sdesim.errors import ConfigError, FormatError, MissingFileError
from sdesim.nets.data import Dataset, load
from sdesim.nets.extract import Extraction
from sdesim.nets.mlp import MLP

__all__ = ["load_extraction"]


def _models_dirs():
    here = Path(__file__).resolve().parents[2] / "models"
    return [Path("models"), here]


def load_extraction(model="digits_mlp", build=True) -> tuple[Extraction, MLP, Dataset]:
    """The extracted model, its net and training set.

    Parameters
    ----------
    model : str or path
        A shipped recipe name (``"digits_mlp"``, ``"mnist1d_mlp"``: looked up in
        ``./models`` and the repository's ``models/``) or the path of an
        :meth:`Extraction.save` file (``.npz`` optional).
    build : bool
        Regenerate a shipped model from its recipe (:func:`sdesim.nets.zoo.build`,
        into ``./models``) when its files are missing.

    Returns
    -------
    (Extraction, MLP, Dataset)
        The net and data are rebuilt from the report (``net`` and the recipe's
        ``data`` in ``provenance``, or the data set's name).
    """
    from sdesim.nets import zoo

    path = None
    if str(model) in zoo.RECIPES:
        for d in _models_dirs():
            if (d / f"{model}.basis.npz").exists():
                path = d / str(model)
                break
        if path is None:
            if not build:
                raise MissingFileError(f"shipped model {model!r} not found in {[str(d) for d in _models_dirs()]}")
            zoo.build(str(model), "models")
            path = Path("models") / str(model)
    else:
        path = Path(model)
        if path.suffix == ".npz":
            path = path.with_suffix("")
        if not path.with_name(path.name + ".basis.npz").exists():
            raise MissingFileError(f"{path}.basis.npz not found: not an extraction saved by Extraction.save "
                                   f"and not one of the shipped models {sorted(zoo.RECIPES)}")
    ext = Extraction.load(path)
    rep = ext.report
    try:
        spec = rep["net"]
        net = MLP(spec["sizes"], spec["activation"], spec["loss"], spec["weight_decay"])
        data_spec = dict(rep.get("provenance", {}).get("data") or {})
        if not data_spec:
            data_spec = {"name": rep["data"]["name"].split("-")[0]}
    except (KeyError, TypeError, AttributeError) as exc:
        raise FormatError(f"{path}: the extraction report does not describe a net and its data ({exc!r})") from None
    train_set, _ = load(**data_spec)
    if len(train_set) != rep["data"]["n"]:
        raise ConfigError(f"{path}: the model was extracted on {rep['data']['n']} samples of "
                         f"{rep['data']['name']!r}, but {data_spec} loads {len(train_set)}")
    return ext, net, train_set
