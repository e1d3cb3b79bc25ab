"""Extract the quadratic model SGD sees near a minimum of a real network.

Near a minimum ``w*`` the loss is ``C(w*) + 1/2 (w - w*)^T H (w - w*)`` and the
per-sample gradient covariance ``Sigma_1(w) ~ Sigma_1(w*)``. With ``P ~ 10^4``
parameters neither ``H`` nor ``Sigma_1`` is formed: both are operators
(Hessian-vector products by the R-operator, ``Sigma_1 v`` by per-sample
gradient products) and Lanczos finds their top eigenpairs.

Representation (a choice, documented in ``docs/nets.md``): the model is stored in
the ``k``-dimensional basis ``V = [v_1 .. v_k]`` of the top Hessian eigenvectors,
with coordinates ``u = V^T (w - w*)``:

.. math::  C(u) = \\tfrac12 u^\\top \\operatorname{diag}(h_1..h_k)\\, u, \\qquad
           S = V^\\top \\Sigma_1(w^*) V,\\qquad u^* = 0.

This is the part of the dynamics that the top-``k`` sharp directions see; ``S`` is
generally not diagonal (``H`` and ``Sigma_1`` need not commute). The basis ``V``
and ``w*`` (``P`` numbers each) are kept next to the model in :class:`Extraction`
so real trajectories can be projected onto the same coordinates.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdesim.errors import ConvergenceWarning, FormatError, ShapeError, ValidityWarning
from sdesim.io import load_npz
from sdesim.linalg import lanczos
from sdesim.losses.quadratic import QuadraticModel
from sdesim.nets.data import Dataset
from sdesim.nets.mlp import MLP

__all__ = ["Extraction", "extract", "extract_quadratic", "lbfgs_refine", "refine_minimum", "refinement_summary"]

_BASIS_FORMAT = "sdesim.nets.Extraction"
_BASIS_VERSION = 1


def lbfgs_refine(loss_and_grad, w, gtol=1e-6, maxiter=2000, progress=None, label="L-BFGS refinement"):
    r"""Refine ``w`` towards a minimum of a full-batch loss with L-BFGS, and say how far it moved.

    From trained weights L-BFGS can travel far: on the shipped MNIST-1D CNN
    (:mod:`sdesim.nets.cnn`, after 10,000 SGD steps) it moves the weights by 100% of
    their norm and lowers the loss from 1.59 to 1.30, a different point from the
    one SGD visited. Turn it off
    (``refine=False`` in the extractors) to study the trained weights themselves;
    keep it to extract at a true minimum (gradient ~0: the Lyapunov predictions
    assume one).

    Parameters
    ----------
    loss_and_grad : callable
        ``w -> (C(w), grad C(w))``.
    w : array_like, shape (P,)
        Starting point.
    gtol : float
        Stop when ``max_j |(grad C)_j| <= gtol`` (scipy's projected-gradient
        test); there is no test on the decrease of ``C``, so otherwise L-BFGS
        runs until ``maxiter`` or until the line search hits rounding.
    maxiter : int
        Maximum L-BFGS iterations.
    progress : bool, optional
        A progress bar over the iterations (:class:`sdesim.simulation.Progress`:
        ``None`` shows it once the refinement has taken 5 s).

    Returns
    -------
    w_star : ndarray, shape (P,)
    report : dict
        ``loss_start``, ``loss``, ``grad_norm_start``, ``grad_norm`` (``|grad C|_2``
        before and after), ``step_norm`` :math:`|w^* - w|`, ``step_relative``
        :math:`|w^* - w| / |w|`, ``iterations``, ``converged``, ``message``.
    """
    # imported here: scipy.optimize takes about a second to import
    from scipy.optimize import minimize

    from sdesim.simulation import Progress

    w0 = np.array(w, dtype=float)
    loss0, g0 = loss_and_grad(w0)
    bar = Progress(label, int(maxiter), show=progress)
    done = [0]

    def step(_):
        done[0] += 1
        bar.update(done[0])

    try:
        res = minimize(loss_and_grad, w0, jac=True, method="L-BFGS-B", callback=step,
                       options={"gtol": gtol, "ftol": 0.0, "maxiter": int(maxiter), "maxcor": 20})
    finally:
        bar.close()
    loss1, g1 = loss_and_grad(res.x)
    dw = float(np.linalg.norm(res.x - w0))
    return res.x, {
        "loss_start": float(loss0), "grad_norm_start": float(np.linalg.norm(g0)),
        "loss": float(loss1), "grad_norm": float(np.linalg.norm(g1)),
        "step_norm": dw, "step_relative": dw / max(float(np.linalg.norm(w0)), np.finfo(float).tiny),
        "iterations": int(res.nit), "converged": bool(res.success), "message": str(res.message),
    }


def refine_minimum(net: MLP, data: Dataset, w, gtol=1e-6, maxiter=2000, progress=None):
    """Refine ``w`` towards a minimum of ``net``'s full training loss on ``data``
    (:func:`lbfgs_refine`, whose report it returns with ``w_star``)."""
    x, y = data.x, data.y
    w0 = np.array(w, dtype=float)
    net._unpack(w0)
    return lbfgs_refine(lambda v: net.loss_and_grad(v, x, y), w0, gtol=gtol, maxiter=maxiter, progress=progress)


def refinement_summary(report) -> str:
    """One line on the L-BFGS refinement of an extraction's ``report`` (or that there was none)."""
    if "iterations" not in report:
        return f"no refinement: |grad C(w)| = {report['grad_norm']:.3g}, C = {report['loss']:.4g}"
    moved = ""
    if "step_norm" in report:
        moved = f", moved |dw| = {report['step_norm']:.3g} ({100 * report['step_relative']:.2g}% of |w|)"
    return (f"L-BFGS refinement: {report['iterations']} iterations ({report['message']}){moved}; "
            f"C {report['loss_start']:.4g} -> {report['loss']:.4g}, |grad C| {report['grad_norm_start']:.3g} "
            f"-> {report['grad_norm']:.3g}")


@dataclass(frozen=True, eq=False)
class Extraction:
    """An extracted quadratic model with the basis that maps network weights onto it.

    Attributes
    ----------
    model : QuadraticModel
        ``k``-dimensional: ``H = diag(h_1 >= .. >= h_k)``, ``S = V^T Sigma_1 V``, ``w* = 0``.
    basis : ndarray, shape (P, k)
        Orthonormal top Hessian eigenvectors ``V`` (columns).
    w_star : ndarray, shape (P,)
        The (refined) minimum in weight space.
    noise_eigenvalues : ndarray, shape (k,)
        Top eigenvalues of the full ``Sigma_1(w*)``, descending.
    noise_eigenvectors : ndarray, shape (P, k)
        Their eigenvectors.
    report : dict
        JSON-serialisable: refinement (``grad_norm`` reached, ...), accuracies,
        ``noise_trace`` (``tr Sigma_1``), ``noise_fraction`` (``tr S / tr Sigma_1``),
        the net and data description; also the model's ``metadata``.
    """

    model: QuadraticModel
    basis: np.ndarray
    w_star: np.ndarray
    noise_eigenvalues: np.ndarray
    noise_eigenvectors: np.ndarray
    report: dict

    def project(self, W):
        """Coordinates ``u = (W - w*) V`` of weights ``W (..., P)`` -> ``(..., k)``."""
        W = np.asarray(W, dtype=float)
        if W.shape[-1:] != self.w_star.shape:
            raise ShapeError(f"weights have shape {W.shape}; expected (..., {self.w_star.size})")
        return (W - self.w_star) @ self.basis

    def lift(self, U):
        """Weights ``w* + V u`` of model coordinates ``U (..., k)`` -> ``(..., P)``."""
        return self.w_star + np.asarray(U, dtype=float) @ self.basis.T

    def save(self, path) -> Path:
        """Write ``<path>.npz`` + ``<path>.json`` (the model) and ``<path>.basis.npz`` (``V``, ``w*``, noise eigenpairs)."""
        path = Path(self.model.save(path))
        np.savez(path.with_suffix(".basis.npz"), format=np.array(_BASIS_FORMAT),
                 format_version=np.int64(_BASIS_VERSION), basis=self.basis, w_star=self.w_star,
                 noise_eigenvalues=self.noise_eigenvalues, noise_eigenvectors=self.noise_eigenvectors,
                 report=np.array(json.dumps(self.report)))
        return path

    @classmethod
    def load(cls, path) -> Extraction:
        """Read what :meth:`save` wrote (``FormatError`` naming the file when it is damaged or foreign)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        model = QuadraticModel.load(path)
        f = load_npz(path.with_suffix(".basis.npz"))
        fmt, ver = (f[key].item() if key in f and f[key].size == 1 else None for key in ("format", "format_version"))
        if (fmt, ver) != (_BASIS_FORMAT, _BASIS_VERSION):
            raise FormatError(f"{f.path}: format {fmt!r} version {ver!r} is not supported; "
                              f"this sdesim reads {_BASIS_FORMAT!r} version {_BASIS_VERSION}")
        V, w_star, s, U = (f[key] for key in ("basis", "w_star", "noise_eigenvalues", "noise_eigenvectors"))
        P = w_star.size
        if (w_star.ndim, s.ndim, V.shape, U.shape) != (1, 1, (P, model.dim), (P, s.size)):
            raise FormatError(f"{f.path}: basis {V.shape}, w_star {w_star.shape} and noise eigenpairs {s.shape}, "
                              f"{U.shape} do not fit a {model.dim}-dimensional model")
        return cls(model, V, w_star, s, U, f.json("report"))


def extract(net: MLP, data: Dataset, w, k=10, refine=True, test: Dataset | None = None,
            gtol=1e-6, maxiter=2000, tol=1e-8, chunk_size=2048, seed=0, provenance=None,
            progress=None) -> Extraction:
    """Extract the quadratic model of ``net`` on ``data`` near ``w`` (see the module notes).

    Steps: (1) refine ``w`` to ``w*`` with L-BFGS (:func:`refine_minimum`) unless
    ``refine=False``; (2) top-``k`` eigenpairs ``(h_j, v_j)`` of ``H = hess C(w*)``
    by Lanczos on exact Hessian-vector products; (3) top-``k`` eigenpairs of
    ``Sigma_1(w*)`` by Lanczos on ``Sigma_1 v = G^T (G v)/n - g (g . v)``, with
    ``G v`` and ``G^T u`` computed per chunk of samples, never forming ``G (n, P)``;
    (4) ``S = V^T Sigma_1 V = (G_c V)^T (G_c V) / n`` with ``G_c`` the centred rows.

    Parameters
    ----------
    net : MLP
    data : Dataset
        Training set (defines ``C`` and ``Sigma_1``).
    w : array_like, shape (P,)
        Weights near a minimum.
    k : int
        Number of Hessian (and noise) eigenpairs.
    refine : bool
        Run L-BFGS first; otherwise ``w*`` is ``w`` and the gradient norm there is
        still reported. The refinement may move far from trained weights (its
        report says how far: :func:`lbfgs_refine`).
    test : Dataset, optional
        Held-out set for the reported test accuracy.
    gtol, maxiter : float, int
        L-BFGS stopping rule (:func:`refine_minimum`).
    tol : float
        Lanczos relative tolerance.
    chunk_size : int
        Samples per block in the per-sample gradient products.
    seed : int
        Lanczos starting vectors.
    provenance : dict, optional
        JSON-serialisable extras (e.g. the recipe that trained ``w``), stored in
        the report and the model's metadata under ``"provenance"``.
    progress : bool, optional
        The refinement's progress bar (``None``: shown after 5 s).

    Returns
    -------
    Extraction
        ``.model`` is the ``k``-dimensional :class:`~sdesim.QuadraticModel`.

    Warns
    -----
    ConvergenceWarning
        L-BFGS did not reach ``gtol``.
    ValidityWarning
        A top-``k`` Hessian eigenvalue is ``<= 0``.
    """
    if data.n_features != net.sizes[0] or data.n_classes != net.sizes[-1]:
        raise ShapeError(f"data set {data.name!r} has d = {data.n_features}, {data.n_classes} classes "
                         f"but the net {net.sizes} expects d = {net.sizes[0]}, {net.sizes[-1]} outputs")
    x, y = data.x, data.y
    w = np.array(w, dtype=float)
    net._unpack(w)
    if refine:
        w_star, report = refine_minimum(net, data, w, gtol=gtol, maxiter=maxiter, progress=progress)
    else:
        w_star = w
        report = {"loss": net.loss(w, x, y), "grad_norm": float(np.linalg.norm(net.grad(w, x, y)))}
    if refine and not report["converged"]:
        warnings.warn(f"L-BFGS stopped at |grad C| = {report['grad_norm']:.3g} ({report['message']}); "
                      "w* is not a minimum to within gtol", ConvergenceWarning, stacklevel=2)
    P = net.n_params
    h, V = lanczos(lambda v: net.hvp(w_star, x, y, v), P, k, tol=tol, seed=seed)
    if h[-1] <= 0:
        warnings.warn(f"{int(np.sum(h <= 0))} of the top-{k} Hessian eigenvalues are <= 0: "
                      "w* is not a strict minimum in those directions (no stationary state)", ValidityWarning,
                      stacklevel=2)
    J = net.sample_jacobian(w_star, x, y, chunk_size=chunk_size)
    s_vals, s_vecs = lanczos(J.covariance_matvec, P, k, tol=tol, seed=seed + 1)
    GV = np.column_stack([J.matvec(V[:, j]) for j in range(k)])
    GV -= GV.mean(axis=0)
    S = GV.T @ GV / len(y)
    noise_trace = J.covariance_trace()
    report.update(
        net={"sizes": list(net.sizes), "activation": net.activation, "loss": net.loss_name,
             "weight_decay": net.weight_decay, "n_params": P},
        data={"name": data.name, "n": len(data)},
        k=int(k),
        train_accuracy=net.accuracy(w_star, x, y),
        test_accuracy=None if test is None else net.accuracy(w_star, test.x, test.y),
        hessian_eigenvalues=[float(v) for v in h],
        noise_eigenvalues=[float(v) for v in s_vals],
        noise_trace=float(noise_trace),
        noise_fraction=float(np.trace(S) / noise_trace) if noise_trace > 0 else None,
        basis="top-k Hessian eigenvectors; coordinates u = V^T (w - w*)",
        provenance=dict(provenance or {}),
    )
    model = QuadraticModel(hessian=np.diag(h), noise_covariance=0.5 * (S + S.T),
                           w_star=np.zeros(k), metadata=report)
    for a in (V, w_star, s_vals, s_vecs):
        a.setflags(write=False)
    return Extraction(model, V, w_star, s_vals, s_vecs, report)


def extract_quadratic(net: MLP, data: Dataset, w, k=10, refine=True, **kwargs) -> QuadraticModel:
    """The ``k``-dimensional quadratic model of ``net`` near ``w``: ``extract(...).model``.

    ``H = diag(h_1..h_k)`` (top Hessian eigenvalues at the refined minimum),
    ``S = V^T Sigma_1(w*) V``, ``w* = 0``; the refinement report (gradient norm
    reached, accuracies, noise captured) is in ``model.metadata``. Use
    :func:`extract` to keep the weight-space basis ``V`` for projections.
    Keyword arguments as in :func:`extract`.
    """
    return extract(net, data, w, k=k, refine=refine, **kwargs).model
