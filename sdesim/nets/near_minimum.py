r"""Real SGD near a minimum ``w*`` of a net, measured in the coordinates of its extracted model.

The model coordinates are :math:`u = V^\top (w - w^*)` (``V = Extraction.basis``, the top
Hessian eigenvectors). Besides the fluctuations of ``u``, :func:`quadratic_check` measures
along the run what the quadratic model takes as constant: the loss's second-order Taylor
value, the curvature :math:`v_j^\top H(w) v_j` and the noise :math:`v_j^\top \Sigma_1(w) v_j`.
"""

from __future__ import annotations

import numpy as np

from sdesim.analysis.stationary import stationary_statistics
from sdesim.dynamics.discrete import sgd_update
from sdesim.dynamics.sampling import Sampler
from sdesim.errors import ShapeError
from sdesim.nets.data import Dataset
from sdesim.nets.extract import Extraction
from sdesim.nets.mlp import MLP
from sdesim.nets.objective import MLPObjective, Objective
from sdesim.nets.report import QuadraticCheck
from sdesim.result import Result

__all__ = ["quadratic_check", "real_sgd_near_minimum", "sgd_near_minimum", "sgd_steps",
           "stationary_variance"]


def sgd_near_minimum(objective: Objective, ext: Extraction, lr, batch_size, steps, seed=0, snapshots=()):
    r"""Plain SGD (replacement sampling) on a network ``objective`` from ``w*``, recording ``u`` at every step.

    The minibatches (particle 0 of ``Sampler("replacement", n, batch_size, seed)``) and the
    update (``sgd_update``) are those of :func:`sdesim.nets.train` with ``SGD(lr, batch_size)``,
    so on an MLP the states are bit-identical to ``train(..., w0=ext.w_star, directions=ext.basis,
    w_ref=ext.w_star, seed=seed)``; this loop skips ``train``'s full-batch loss at every
    record, which costs ten SGD steps, and keeps the weights at the ``snapshots`` steps.

    Returns
    -------
    u : ndarray, shape (steps + 1, k)
        ``u_k = V^T (w_k - w*)`` (NaN from a divergence on).
    snaps : dict
        ``{step: w (P,)}`` for the requested ``snapshots`` steps.
    diverged_at : int
        First step with non-finite weights, ``-1`` if none.
    """
    sampler = Sampler("replacement", objective.n_samples, batch_size, seed)
    V, w_star = ext.basis, ext.w_star
    if w_star.shape != (objective.n_params,):
        raise ShapeError(f"the extraction has {w_star.size} weights but the network has {objective.n_params}")
    w = w_star.copy()
    u = np.full((steps + 1, V.shape[1]), np.nan)
    u[0] = 0.0
    wanted, snaps, diverged_at = {int(s) for s in snapshots}, {}, -1
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            idx = sampler.indices(k, [0])[0]
            w, _ = sgd_update(w, None, objective.grad(w, idx), lr)
            if not np.all(np.isfinite(w)):
                diverged_at = k + 1
                break
            u[k + 1] = (w - w_star) @ V
            if k + 1 in wanted:
                snaps[k + 1] = w.copy()
    return u, snaps, diverged_at


def sgd_steps(objective: Objective, w0, lr, batch_size, steps, seed=0) -> np.ndarray:
    """The weights after ``steps`` plain SGD steps from ``w0`` (the minibatches and update of
    :func:`sgd_near_minimum`): training a network to the neighbourhood of a minimum."""
    sampler = Sampler("replacement", objective.n_samples, batch_size, seed)
    w = np.array(w0, dtype=float)
    for k in range(int(steps)):
        w, _ = sgd_update(w, None, objective.grad(w, sampler.indices(k, [0])[0]), lr)
    return w


def real_sgd_near_minimum(net: MLP, data: Dataset, ext: Extraction, lr, batch_size, steps, seed=0,
                          snapshots=()):
    """:func:`sgd_near_minimum` on the package's MLP ``net`` and training set ``data``."""
    return sgd_near_minimum(MLPObjective(net, data.x, data.y), ext, lr, batch_size, steps, seed, snapshots)


def stationary_variance(u, batches):
    """Variance per column of ``u (T, k)`` about the pooled mean, with a batch-means standard error."""
    res = Result(t=np.arange(len(u), dtype=float), w=u[:, None, :], loss=np.zeros((len(u), 1)),
                 metadata={}, diverged_at=np.array([-1]))
    st = stationary_statistics(res, burn_in=0.0, batches=batches)
    return np.diag(st.covariance).copy(), np.diag(st.covariance_se).copy()


def quadratic_check(objective: Objective, ext: Extraction, snaps, m) -> QuadraticCheck:
    """The quadratic model's validity at the weights ``snaps`` (``{step: w}``) of a real run,
    for its top ``m`` directions (:class:`~sdesim.nets.report.QuadraticCheck`)."""
    w_star, V = ext.w_star, ext.basis
    c0, g0 = objective.loss_and_grad(w_star)
    h = ext.model.hessian_eigenvalues
    S = np.diag(ext.model.S)
    measured, quadratic, model, curv, noise = [], [], [], [], []
    for w in snaps.values():
        d = w - w_star
        measured.append(objective.loss(w) - c0)
        quadratic.append(g0 @ d + 0.5 * d @ objective.hvp(w_star, d))
        u = d @ V
        model.append(0.5 * np.sum(h * u * u))
        curv.append([V[:, j] @ objective.hvp(w, V[:, j]) / h[j] for j in range(m)])
        GV = np.ascontiguousarray(objective.sample_grad_products(w, V[:, :m]).T)
        noise.append([np.var(GV[j]) / S[j] for j in range(m)])
    n = len(snaps)

    def stats(a):
        a = np.asarray(a)
        se = a.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(a.shape[1], np.nan)
        return tuple(float(c) for c in a.mean(axis=0)), tuple(float(c) for c in se)

    return QuadraticCheck(n, float(np.mean(measured)), float(np.mean(quadratic)), float(np.mean(model)),
                          *stats(curv), *stats(noise))
