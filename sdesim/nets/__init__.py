"""Real networks: offline data sets, a NumPy MLP with per-sample gradients and exact
Hessian-vector products, SGD/GD training that records trajectories
(``train -> Result``, on the simulator's minibatch streams), extraction of the
quadratic model SGD sees near a minimum (``extract_quadratic -> QuadraticModel``),
and its comparison with real SGD (:mod:`sdesim.nets.theory`). See ``docs/nets.md``."""

from sdesim.nets.data import Dataset, load, load_digits, load_mnist1d
from sdesim.nets.extract import Extraction, extract, extract_quadratic, refine_minimum
from sdesim.nets.mlp import MLP, SampleJacobian
from sdesim.nets.train import train

__all__ = [
    "MLP", "Dataset", "Extraction", "SampleJacobian", "extract", "extract_quadratic",
    "load", "load_digits", "load_mnist1d", "refine_minimum", "train",
]
