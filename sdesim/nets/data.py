"""Offline classification data sets for the real-network experiments.

MNIST-1D (Greydanus 2020) is the default: 5000 one-dimensional signals of length
40 in 10 classes, generated procedurally by the ``mnist1d`` package's own
``make_dataset`` with its default arguments (never its download path) and cached
on disk as ``.npz`` under ``$SDESIM_CACHE`` (default ``~/.cache/sdesim``).
scikit-learn's bundled 8x8 handwritten digits (1797 samples, 64 features) are an
optional extra. Nothing here touches the network.

Every loader returns ``(train, test)``, two :class:`Dataset` objects whose
features are standardised per feature with the *training* mean and standard
deviation: ``x <- (x - mu_train) / sigma_train`` (``sigma = 1`` for constant
features).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdesim.errors import ConfigError, FormatError, NonFiniteError, ShapeError
from sdesim.io import load_npz

__all__ = ["Dataset", "cache_dir", "load", "load_digits", "load_mnist1d"]

_CACHE_VERSION = 1


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled classification data set (read-only arrays).

    Parameters
    ----------
    x : array_like, shape (n, d)
        Features, stored as float64.
    y : array_like, shape (n,)
        Integer labels in ``[0, n_classes)``.
    n_classes : int
        Number of classes ``k`` (the output width of a net trained on it).
    name : str
        Short name, e.g. ``"mnist1d-train"``.

    Raises
    ------
    ShapeError
        ``x`` not 2-D, ``y`` not 1-D, their lengths differ, or a label outside
        ``[0, n_classes)``.
    NonFiniteError
        ``x`` holds NaN or infinite entries.
    """

    x: np.ndarray
    y: np.ndarray
    n_classes: int
    name: str = "data"

    def __post_init__(self):
        x = np.array(self.x, dtype=np.float64, order="C")
        y_raw = np.asarray(self.y)
        if x.ndim != 2:
            raise ShapeError(f"data set {self.name!r}: x must be 2-D (n, d), got shape {x.shape}")
        if y_raw.ndim != 1:
            raise ShapeError(f"data set {self.name!r}: y must be 1-D (n,), got shape {y_raw.shape}")
        if len(y_raw) != len(x):
            raise ShapeError(
                f"data set {self.name!r}: {len(x)} samples in x but {len(y_raw)} labels in y"
            )
        if y_raw.size and not np.array_equal(y_raw, np.round(y_raw)):
            raise ShapeError(f"data set {self.name!r}: labels must be integers")
        y = y_raw.astype(np.int64)
        bad = ~np.isfinite(x)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            raise NonFiniteError(
                f"data set {self.name!r}: x has {int(bad.sum())} NaN/inf entries "
                f"in {len(rows)} samples (first: sample {int(rows[0])})"
            )
        k = int(self.n_classes)
        if y.size and (y.min() < 0 or y.max() >= k):
            raise ShapeError(
                f"data set {self.name!r}: labels span [{y.min()}, {y.max()}] "
                f"but n_classes = {k} requires [0, {k - 1}]"
            )
        x.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "n_classes", k)

    def __len__(self):
        return len(self.y)

    @property
    def n_features(self) -> int:
        """Input dimension ``d``."""
        return self.x.shape[1]

    def __repr__(self):
        return f"Dataset(name={self.name!r}, n={len(self)}, d={self.n_features}, n_classes={self.n_classes})"


def cache_dir() -> Path:
    """Directory for cached data: ``$SDESIM_CACHE`` or ``~/.cache/sdesim``."""
    return Path(os.environ.get("SDESIM_CACHE") or Path.home() / ".cache" / "sdesim")


def _standardise(name, x_train, y_train, x_test, y_test, n_classes):
    mu = x_train.mean(axis=0)
    sigma = x_train.std(axis=0)
    sigma[sigma < 1e-12] = 1.0
    return (
        Dataset((x_train - mu) / sigma, y_train, n_classes, f"{name}-train"),
        Dataset((x_test - mu) / sigma, y_test, n_classes, f"{name}-test"),
    )


def _generate_mnist1d(seed: int) -> dict:
    """Run ``mnist1d.data.make_dataset`` (default arguments, given seed) without
    disturbing the caller's global ``random``/``numpy.random`` state."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "MNIST-1D needs the 'mnist1d' package (pip install mnist1d); "
            "it generates the data offline"
        ) from exc
    args = get_dataset_args()
    args.seed = int(seed)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {k: np.asarray(d[k]) for k in ("x", "y", "x_test", "y_test")}


def load_mnist1d(seed: int = 42, cache: bool = True) -> tuple[Dataset, Dataset]:
    """MNIST-1D, generated offline: 4000 training and 1000 test signals, d = 40, 10 classes.

    Parameters
    ----------
    seed : int
        Generation seed (``mnist1d``'s default is 42). The same seed always gives
        the same data.
    cache : bool
        Read/write ``cache_dir() / f"mnist1d-seed{seed}-v1.npz"``; generation
        takes a few seconds. A damaged cache file is a `FormatError` naming it.

    Returns
    -------
    (Dataset, Dataset)
        Train and test sets, standardised with the training statistics.
    """
    path = cache_dir() / f"mnist1d-seed{int(seed)}-v{_CACHE_VERSION}.npz"
    if cache and path.exists():
        try:
            f = load_npz(path)
            raw = {k: f[k] for k in ("x", "y", "x_test", "y_test")}
        except FormatError as exc:
            raise FormatError(f"{exc}; delete the cached file to regenerate the data") from None
    else:
        raw = _generate_mnist1d(seed)
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **raw)
            os.replace(tmp, path)
    return _standardise("mnist1d", raw["x"], raw["y"], raw["x_test"], raw["y_test"], 10)


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """scikit-learn's bundled 8x8 handwritten digits (1797 samples, d = 64, 10 classes).

    Needs the optional dependency ``scikit-learn`` (the data ship with it; no
    download). The split is a seeded random permutation.

    Parameters
    ----------
    test_fraction : float
        Fraction of samples held out for the test set.
    seed : int
        Seed of the train/test permutation.
    """
    try:
        from sklearn.datasets import load_digits as _sk_digits
    except ImportError as exc:
        raise ImportError(
            "the digits data set needs scikit-learn (pip install scikit-learn)"
        ) from exc
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    d = _sk_digits()
    perm = np.random.default_rng(seed).permutation(len(d.target))
    n_test = round(test_fraction * len(perm))
    test, train = perm[:n_test], perm[n_test:]
    x = d.data / 16.0
    return _standardise("digits", x[train], d.target[train], x[test], d.target[test], 10)


_LOADERS = {"mnist1d": load_mnist1d, "digits": load_digits}


def load(name: str = "mnist1d", **kwargs) -> tuple[Dataset, Dataset]:
    """Load a built-in data set by name (``"mnist1d"`` or ``"digits"``) as ``(train, test)``."""
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise ConfigError(f"unknown data set {name!r}; choose one of {sorted(_LOADERS)}") from None
    return loader(**kwargs)
