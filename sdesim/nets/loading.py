"""Load an extracted model with the network and the training set it was extracted from:
a shipped recipe (:mod:`sdesim.nets.zoo`, rebuilt when missing) or an :meth:`Extraction.save` file.

:func:`load_extraction` gives the package's MLP and its :class:`~sdesim.nets.data.Dataset`;
:func:`load_objective` any network as an :class:`~sdesim.nets.objective.Objective`: the
MLP, or a PyTorch module whose extraction report names its factory
(``"package.module:factory"``), loss and data (a built-in data set or an ``.npz`` file
with ``x`` and ``y``), as ``sdesim extract --module`` writes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sdesim.errors import ConfigError, FormatError, MissingFileError
from sdesim.io import load_npz
from sdesim.nets.data import Dataset, load
from sdesim.nets.extract import Extraction
from sdesim.nets.mlp import MLP
from sdesim.nets.objective import MLPObjective, Objective

__all__ = ["data_spec", "extraction_path", "is_mlp_extraction", "load_data_file", "load_extraction", "load_objective"]


def _models_dirs():
    here = Path(__file__).resolve().parents[2] / "models"
    return [Path("models"), here]


def _shipped():
    """Shipped model names and what rebuilds each into a folder."""
    from sdesim.nets import cnn, zoo

    return {**{name: (lambda d, name=name: zoo.build(name, d)) for name in zoo.RECIPES}, "mnist1d_cnn": cnn.build}


def extraction_path(model="digits_mlp", build=True) -> Path:
    """The file stem of an extraction: a shipped model's name (``"digits_mlp"``, ``"mnist1d_mlp"``,
    ``"mnist1d_cnn"``: looked up in ``./models`` and the repository's ``models/``, rebuilt into
    ``./models`` when missing and ``build``) or the path of an :meth:`Extraction.save` file
    (``.npz`` optional)."""
    shipped = _shipped()
    if str(model) in shipped:
        for d in _models_dirs():
            if (d / f"{model}.basis.npz").exists():
                return d / str(model)
        if not build:
            raise MissingFileError(f"shipped model {model!r} not found in {[str(d) for d in _models_dirs()]}")
        shipped[str(model)]("models")
        return Path("models") / str(model)
    path = Path(model)
    if path.suffix == ".npz":
        path = path.with_suffix("")
    if not path.with_name(path.name + ".basis.npz").exists():
        raise MissingFileError(f"{path}.basis.npz not found: not an extraction saved by Extraction.save "
                               f"and not one of the shipped models {sorted(shipped)}")
    return path


def is_mlp_extraction(model) -> bool:
    """Whether the extraction ``model`` (name, path or :class:`Extraction`) is of the package's MLP."""
    from sdesim.nets import zoo

    if isinstance(model, Extraction):
        return "sizes" in (model.report.get("net") or {})
    return str(model) in zoo.RECIPES or is_mlp_extraction(Extraction.load(extraction_path(model, build=False)))


def load_extraction(model="digits_mlp", build=True) -> tuple[Extraction, MLP, Dataset]:
    """The extracted model, its net and training set.

    Parameters
    ----------
    model : str or path
        A shipped recipe name (``"digits_mlp"``, ``"mnist1d_mlp"``: looked up in
        ``./models`` and the repository's ``models/``) or the path of an
        :meth:`Extraction.save` file (``.npz`` optional) of the package's MLP
        (for any network: :func:`load_objective`).
    build : bool
        Regenerate a shipped model from its recipe (:func:`sdesim.nets.zoo.build`,
        into ``./models``) when its files are missing.

    Returns
    -------
    (Extraction, MLP, Dataset)
        The net and data are rebuilt from the report (``net`` and the recipe's
        ``data`` in ``provenance``, or the data set's name).
    """
    path = extraction_path(model, build)
    ext = Extraction.load(path)
    return (ext, *_mlp_and_data(ext, path))


def _mlp_and_data(ext, path):
    rep = ext.report
    if "torch_module" in (rep.get("net") or {}):
        raise FormatError(f"{path}: an extraction of the PyTorch module {rep['net']['torch_module']!r}, not of "
                          "the package's MLP: load it with sdesim.nets.loading.load_objective")
    try:
        spec = rep["net"]
        net = MLP(spec["sizes"], spec["activation"], spec["loss"], spec["weight_decay"])
        data_spec = dict(rep.get("provenance", {}).get("data") or {})
        if not data_spec:
            data_spec = {"name": rep["data"]["name"].split("-")[0]}
    except (KeyError, TypeError, AttributeError) as exc:
        raise FormatError(f"{path}: the extraction report does not describe a net and its data ({exc!r})") from None
    if "file" in data_spec:
        x, y = load_data_file(data_spec["file"])
        train_set = Dataset(x, y, net.sizes[-1], Path(data_spec["file"]).stem)
    else:
        train_set, _ = load(**data_spec)
    if len(train_set) != rep["data"]["n"]:
        raise ConfigError(f"{path}: the model was extracted on {rep['data']['n']} samples of "
                         f"{rep['data']['name']!r}, but {data_spec} loads {len(train_set)}")
    return net, train_set


def load_data_file(path) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from an ``.npz`` file holding arrays ``x (n, ...)`` and ``y (n, ...)``
    (``FormatError`` naming the file when a key is missing or the lengths differ)."""
    f = load_npz(path)
    missing = [key for key in ("x", "y") if key not in f]
    if missing:
        raise FormatError(f"{path}: a data file needs arrays 'x' (inputs) and 'y' (targets); "
                          f"missing {missing}")
    x, y = f["x"], f["y"]
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise FormatError(f"{path}: x has shape {x.shape} and y {y.shape}: expected the same number of samples")
    return x, y


def data_spec(data) -> dict:
    """What a report stores to reload training data: ``{"name": ...}`` for a built-in data set
    (``"digits"``, ``"mnist1d"``), ``{"file": <absolute path>}`` for an ``.npz`` file."""
    if str(data).endswith(".npz"):
        return {"file": str(Path(data).resolve())}
    return {"name": str(data)}


def load_objective(model="digits_mlp", build=True) -> tuple[Extraction, Objective, Dataset | None]:
    """The extracted model and its network bound to its training data, any network.

    Parameters
    ----------
    model : str, path or Extraction
        As in :func:`load_extraction`. An extraction of a PyTorch module is rebuilt
        from its report's ``net`` (``factory``, ``loss``, ``weight_decay``) and
        ``data`` (``file``: an ``.npz`` with ``x``, ``y``; or ``load``: a built-in
        data set's arguments, with ``first``: its first samples only), as ``sdesim extract --module`` stores them; for
        one saved from Python, pass the objective yourself
        (``TorchObjective(module, x, y, loss_fn)``, see ``docs/nets.md``).

    Returns
    -------
    (Extraction, Objective, Dataset or None)
        The training set as a :class:`Dataset` when the net is the package's MLP
        (GD from its initialisation needs it), else ``None``.
    """
    path = "the extraction" if isinstance(model, Extraction) else extraction_path(model, build)
    ext = model if isinstance(model, Extraction) else Extraction.load(path)
    if is_mlp_extraction(ext):
        net, train_set = _mlp_and_data(ext, path)
        return ext, MLPObjective(net, train_set.x, train_set.y), train_set
    net, data = ext.report.get("net") or {}, ext.report.get("data") or {}
    if "factory" not in net or not ({"file", "load"} & set(data)):
        raise ConfigError(f"{path}: its report does not say how to rebuild "
                          "the network and its data (no net.factory and data.file/data.load): pass "
                          "objective=TorchObjective(module, x, y, loss_fn) with it")
    from sdesim.nets.torch_adapter import (
        TorchObjective,
        module_from_factory,
        torch_loss,
    )

    if "file" in data:
        x, y = load_data_file(data["file"])
    else:
        train_set = load(**data["load"])[0]
        x, y = train_set.x[:data.get("first")], train_set.y[:data.get("first")]
    if len(y) != data.get("n", len(y)):
        raise ConfigError(f"the extraction was made on {data['n']} samples but its data has {len(y)}")
    obj = TorchObjective(module_from_factory(net["factory"]), x, y, torch_loss(net.get("loss", "cross_entropy")),
                         weight_decay=net.get("weight_decay", 0.0))
    if obj.n_params != ext.w_star.size:
        raise ConfigError(f"{net['factory']} builds a module with {obj.n_params} parameters but the extraction "
                          f"has {ext.w_star.size}")
    return ext, obj, None
