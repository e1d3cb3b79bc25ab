"""The edge of stability on a real net: full-batch GD from initialisation, its top Hessian
eigenvalue (the sharpness) against the linear stability limit ``2 / lr`` (Cohen et al. 2021)."""

from __future__ import annotations

import numpy as np

from sdesim.analysis.lanczos import lanczos
from sdesim.dynamics.discrete import GD
from sdesim.nets.data import Dataset
from sdesim.nets.mlp import MLP
from sdesim.nets.report import EdgeOfStability
from sdesim.nets.train import train

__all__ = ["gd_sharpness"]


def gd_sharpness(net: MLP, data: Dataset, lr=None, steps=1200, hessian_every=100, n_samples=300,
                 loss="squared", init_seed=0, lr_factor=0.5) -> EdgeOfStability:
    r"""Full-batch GD from ``net.init(init_seed)`` with the top Hessian eigenvalue every ``hessian_every`` steps.

    The net's architecture and activation on the first ``n_samples`` training
    samples with ``loss`` (default the squared loss, no weight decay: the setting
    of Cohen et al., where the sharpness rises to or starts above ``2 / lr``; with
    cross-entropy and weight decay ``1e-2`` the digits net's sharpness falls from
    1.2 to 0.68 under GD and never meets ``2 / lr``).

    Parameters
    ----------
    lr : float, optional
        Default: ``2 / (lr_factor * s_0)`` with ``s_0`` the sharpness at
        initialisation, so GD starts above the stability limit and must bring the
        sharpness down to ``2 / lr``.
    """
    sub = Dataset(data.x[:n_samples], data.y[:n_samples], data.n_classes, f"{data.name}[:{n_samples}]")
    gd_net = MLP(net.sizes, net.activation, loss, 0.0)
    w0 = gd_net.init(init_seed)
    if lr is None:
        s0 = lanczos(lambda v: gd_net.hvp(w0, sub.x, sub.y, v), gd_net.n_params, 1, tol=1e-6, seed=0)[0][0]
        lr = 2.0 / (lr_factor * s0)
    res = train(gd_net, sub, GD(lr=float(lr)), steps, w0=w0, record_every=hessian_every, stats_every=0,
                hessian_every=hessian_every)
    red = res.reduced["net"]
    setup = {"sizes": list(net.sizes), "activation": net.activation, "loss": loss, "weight_decay": 0.0,
             "data": sub.name, "n": len(sub), "init_seed": int(init_seed), "hessian_every": int(hessian_every)}
    return EdgeOfStability(float(lr), int(steps), np.asarray(red["hessian_step"]),
                           np.asarray(red["hessian_eigenvalues"][:, 0]), np.asarray(res.loss[:, 0]), setup)
