"""Real networks: offline data sets, a NumPy MLP with per-sample gradients and exact
Hessian-vector products, SGD/GD training that records trajectories
(``train -> Result``, on the simulator's minibatch streams), extraction of the
quadratic model SGD sees near a minimum (``extract_quadratic -> QuadraticModel``),
its comparison with real SGD (:mod:`sdesim.nets.theory`), and any net on its data as a loss
that ``sd.simulate`` runs (:class:`NetworkLoss`; trajectories and transients against theory in
:mod:`sdesim.nets.trajectories`, :mod:`sdesim.nets.transients`). See ``docs/nets.md``."""

from sdesim.nets.connectivity import ModeConnectivity, connect, mode_connect
from sdesim.nets.data import Dataset, load, load_digits, load_mnist1d
from sdesim.nets.extract import Extraction, extract, extract_quadratic, refine_minimum
from sdesim.nets.mlp import MLP, SampleJacobian
from sdesim.nets.network_loss import NetworkLoss
from sdesim.nets.objective import MLPObjective, Objective
from sdesim.nets.sharpest import SharpestDirections, sgd_sharpest, sharpest_directions
from sdesim.nets.train import train

__all__ = [
    "MLP", "Dataset", "Extraction", "MLPObjective", "NetworkLoss", "Objective", "SampleJacobian", "extract",
    "extract_quadratic", "load", "load_digits", "load_mnist1d", "refine_minimum", "train",
]
__all__ += ["ModeConnectivity", "SharpestDirections", "connect", "mode_connect", "sgd_sharpest", "sharpest_directions"]
