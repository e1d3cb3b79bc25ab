r"""Extract the quadratic model of a PyTorch module near a minimum, with ``torch.func``.

The same extraction as :func:`sdesim.nets.extract` (see its notes), for any
``torch.nn.Module`` and loss: all parameters form one flat vector ``w (P,)``
(``module.named_parameters()`` order, each tensor flattened row-major), and

- the loss :math:`C(w) = \frac1n \sum_i \ell(f(x_i; w), y_i) + \frac{\lambda}{2}|w|^2`
  and its gradient by ``functional_call`` + ``torch.func.grad``;
- Hessian-vector products forward-over-reverse, ``jvp(grad(C), (w,), (v,))``, exact;
- per-sample gradients by ``vmap(grad(l_i))`` (small batches only, for checks);
- ``Sigma_1 v = G^T (G v - mean(G v)) / n`` matrix-free: ``G v`` is the ``jvp`` of
  the per-sample loss vector ``(l_1 .. l_n)`` along ``v`` and ``G^T u`` its ``vjp``
  with cotangent ``u``, chunked over samples; ``G (n, P)`` is never formed.

``torch`` is an optional dependency (extra ``torch``), imported only here.
Everything runs in float64 on the CPU.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np

from sdesim.analysis.lanczos import lanczos
from sdesim.errors import ConfigError, ConvergenceWarning, ShapeError, ValidityWarning
from sdesim.losses.quadratic import QuadraticModel
from sdesim.nets.extract import Extraction, lbfgs_refine
from sdesim.nets.objective import Objective

__all__ = ["TORCH_LOSSES", "TorchObjective", "extract_quadratic_torch", "mlp_to_torch", "module_from_factory",
           "torch_loss"]

#: Loss names for the CLI and saved extractions: ``cross_entropy`` (integer class targets) and
#: ``mse`` (``mean((f(x) - y)^2)`` over all output entries, float targets of the output's shape).
TORCH_LOSSES = ("cross_entropy", "mse")


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError("sdesim.nets.torch_adapter needs PyTorch (pip install 'sdesim[torch]')") from exc
    return torch


def torch_loss(name):
    """The ``torch.nn.functional`` loss called ``name`` (one of :data:`TORCH_LOSSES`)."""
    F = _torch().nn.functional
    if name not in TORCH_LOSSES:
        raise ConfigError(f"unknown loss {name!r} for a PyTorch module; choose one of {list(TORCH_LOSSES)}")
    return {"cross_entropy": F.cross_entropy, "mse": F.mse_loss}[name]


def module_from_factory(spec):
    """``factory()`` for ``spec = "package.module:factory"``: a ``torch.nn.Module`` (``ConfigError``
    when the module cannot be imported, has no such callable, or it returns something else)."""
    import importlib

    torch = _torch()
    mod_name, sep, attr = str(spec).partition(":")
    if not (sep and mod_name and attr):
        raise ConfigError(f"a module factory is written 'package.module:factory', got {spec!r}")
    try:
        factory = getattr(importlib.import_module(mod_name), attr)
    except ImportError as exc:
        raise ConfigError(f"cannot import {mod_name!r} for the factory {spec!r}: {exc}") from None
    except AttributeError:
        raise ConfigError(f"{mod_name!r} has no {attr!r} (factory {spec!r})") from None
    module = factory()
    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"{spec}() returned {type(module).__name__}, not a torch.nn.Module")
    return module


class TorchObjective(Objective):
    """``C(w)``, its gradient, HVPs and per-sample products for ``module`` on ``(x, y)``
    (an :class:`~sdesim.nets.objective.Objective`).

    Parameters
    ----------
    module : torch.nn.Module
        Its parameters define the layout of ``w``. It is copied (``copy.deepcopy``)
        and the copy converted to float64: the caller's module is never modified.
    x, y : array_like or torch.Tensor
        Inputs ``(n, ...)`` and targets ``(n, ...)``.
    loss_fn : callable
        ``loss_fn(outputs, targets)`` -> the mean loss over the batch (e.g.
        ``torch.nn.functional.cross_entropy``); called on single samples for the
        per-sample losses.
    weight_decay : float
        ``lambda`` in ``C + lambda/2 |w|^2``, counted in every per-sample loss
        (as in :class:`sdesim.nets.MLP`: ``Sigma_1`` does not change).
    chunk_size : int
        Samples per block in ``G v`` / ``G^T u``.

    All methods take and return float64 NumPy arrays of length ``P`` (or ``n``);
    ``idx`` selects a subset of the samples (all when ``None``).
    """

    def __init__(self, module, x, y, loss_fn, weight_decay=0.0, chunk_size=1024):
        torch = _torch()
        self.torch = torch
        self.module = copy.deepcopy(module).to(torch.float64)
        self.names = [n for n, _ in self.module.named_parameters()]
        self.shapes = [p.shape for _, p in self.module.named_parameters()]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.n_params = int(sum(self.sizes))
        self.x = torch.as_tensor(np.array(x) if not torch.is_tensor(x) else x)   # a copy: data sets are read-only
        if self.x.is_floating_point():
            self.x = self.x.to(torch.float64)
        self.y = torch.as_tensor(np.array(y) if not torch.is_tensor(y) else y)
        if self.y.is_floating_point():
            self.y = self.y.to(torch.float64)
        if len(self.x) != len(self.y):
            raise ShapeError(f"{len(self.x)} inputs but {len(self.y)} targets")
        self.loss_fn, self.weight_decay, self.chunk_size = loss_fn, float(weight_decay), int(chunk_size)
        self.n = self.n_samples = len(self.y)

    # -- layout
    def flat(self) -> np.ndarray:
        """The module's parameters as ``w (P,)``."""
        return np.concatenate([p.detach().cpu().numpy().ravel() for p in self.module.parameters()]).astype(float)

    def _params(self, w):
        torch = self.torch
        if w.shape != (self.n_params,):
            raise ShapeError(f"parameter vector has shape {tuple(w.shape)} but the module has "
                             f"{self.n_params} parameters: expected ({self.n_params},)")
        return dict(zip(self.names, (t.view(s) for t, s in zip(torch.split(w, self.sizes), self.shapes))))

    def _t(self, a):
        return self.torch.as_tensor(np.asarray(a, dtype=float))

    def _data(self, idx):
        if idx is None:
            return self.x, self.y
        idx = self.torch.as_tensor(np.asarray(idx))
        return self.x[idx], self.y[idx]

    # -- functions of a flat torch vector
    def _mean_loss(self, w, x, y):
        from torch.func import functional_call
        out = functional_call(self.module, self._params(w), (x,))
        return self.loss_fn(out, y) + 0.5 * self.weight_decay * (w @ w)

    def _sample_losses(self, w, x, y):
        from torch.func import functional_call, vmap
        params = self._params(w)

        def one(xi, yi):
            return self.loss_fn(functional_call(self.module, params, (xi[None],)), yi[None])

        return vmap(one)(x, y) + 0.5 * self.weight_decay * (w @ w)

    # -- public, NumPy in and out
    def loss(self, w, idx=None) -> float:
        with self.torch.no_grad():
            return float(self._mean_loss(self._t(w), *self._data(idx)))

    def loss_and_grad(self, w, idx=None):
        from torch.func import grad_and_value
        g, v = grad_and_value(self._mean_loss)(self._t(w), *self._data(idx))
        return float(v), g.numpy().copy()

    def grad(self, w, idx=None) -> np.ndarray:
        return self.loss_and_grad(w, idx)[1]

    def hvp(self, w, v, idx=None) -> np.ndarray:
        """Exact ``H v`` (forward-over-reverse)."""
        from torch.func import grad, jvp
        g = grad(self._mean_loss)
        x, y = self._data(idx)
        return jvp(lambda p: g(p, x, y), (self._t(w),), (self._t(v),))[1].numpy().copy()

    def per_sample_grads(self, w, idx=None) -> np.ndarray:
        """``G (m, P)``, rows ``grad l_i`` for the samples ``idx`` (default all; small sets only)."""
        from torch.func import grad, vmap
        wt = self._t(w)

        def one(p, xi, yi):
            return self._sample_losses(p, xi[None], yi[None])[0]

        return vmap(grad(one), in_dims=(None, 0, 0))(wt, *self._data(idx)).numpy().copy()

    def matvec(self, w, v) -> np.ndarray:
        """``G v (n,)``: ``grad l_i . v`` for every sample, by ``jvp`` per chunk."""
        from torch.func import jvp
        wt, vt = self._t(w), self._t(v)
        out = [jvp(lambda p, s=s: self._sample_losses(p, self.x[s], self.y[s]), (wt,), (vt,))[1]
               for s in self._chunks()]
        return self.torch.cat(out).numpy().copy()

    def sample_grad_products(self, w, V, chunk_size=None) -> np.ndarray:
        """``G V (n, m)`` by :meth:`matvec` per column (``chunk_size`` is the objective's)."""
        return np.column_stack([self.matvec(w, v) for v in np.asarray(V, dtype=float).T])

    def rmatvec(self, w, u) -> np.ndarray:
        """``G^T u (P,)``, by ``vjp`` per chunk."""
        from torch.func import vjp
        wt, ut = self._t(w), self._t(u)
        if ut.shape != (self.n,):
            raise ShapeError(f"u has shape {tuple(ut.shape)}; expected ({self.n},)")
        total = self.torch.zeros(self.n_params, dtype=self.torch.float64)
        for s in self._chunks():
            _, pull = vjp(lambda p, s=s: self._sample_losses(p, self.x[s], self.y[s]), wt)
            total += pull(ut[s])[0]
        return total.numpy().copy()

    def covariance_matvec(self, w, v) -> np.ndarray:
        """``Sigma_1 v = G^T (G v - mean(G v)) / n``."""
        gv = self.matvec(w, v)
        return self.rmatvec(w, gv - gv.mean()) / self.n

    def _chunks(self):
        return [slice(i, i + self.chunk_size) for i in range(0, self.n, self.chunk_size)]


def extract_quadratic_torch(module, x, y, loss_fn, k=10, w=None, refine=True, weight_decay=0.0, gtol=1e-6,
                            maxiter=2000, tol=1e-8, chunk_size=1024, seed=0, progress=None,
                            describe=None) -> Extraction:
    """The ``k``-dimensional quadratic model of a PyTorch module near ``w`` (default: its current weights).

    Steps as in :func:`sdesim.nets.extract`: L-BFGS refinement of ``w`` on the full
    loss (``refine``; ``gtol`` on ``max_j |grad_j|``), top-``k`` Hessian eigenpairs
    by Lanczos on exact HVPs, top-``k`` eigenpairs of ``Sigma_1(w*)`` and
    ``S = V^T Sigma_1 V`` from ``G V`` (centred), matrix-free. The module itself
    is not modified (the computation runs on a float64 copy).

    Parameters
    ----------
    module : torch.nn.Module
    x, y : array_like or torch.Tensor
        The training set.
    loss_fn : callable
        ``loss_fn(outputs, targets)`` -> mean loss (see :class:`TorchObjective`).
    k : int
    w : array_like, shape (P,), optional
        Flat weights in ``named_parameters()`` order; the module's own by default.
    refine : bool
        Run L-BFGS first (see :func:`sdesim.nets.extract.lbfgs_refine`: it may
        move far from trained weights; ``refine=False`` keeps them).
    progress : bool, optional
        The refinement's progress bar: ``None`` shows it after 5 s.
    describe : dict, optional
        JSON-serialisable ``{"net": {...}, "data": {...}, "provenance": {...}}`` entries
        merged into the report's ``net``/``data``/``provenance`` (how to rebuild the module and data: the CLI stores
        ``factory``, ``loss`` and the data file there, for
        :func:`sdesim.nets.loading.load_objective`).

    Returns
    -------
    Extraction
        ``basis (P, k)`` and ``w_star (P,)`` in the module's flat layout;
        ``report`` with the refinement (:func:`~sdesim.nets.extract.lbfgs_refine`),
        ``hessian_eigenvalues``, ``noise_eigenvalues``, ``noise_trace`` (see below)
        and ``noise_fraction``. ``tr Sigma_1`` is computed from the per-sample
        gradients only when ``n * P <= 5e7`` (else ``None``).
    """
    obj = TorchObjective(module, x, y, loss_fn, weight_decay=weight_decay, chunk_size=chunk_size)
    w = obj.flat() if w is None else np.array(w, dtype=float)
    obj._params(obj._t(w))  # shape check
    if refine:
        w_star, report = lbfgs_refine(obj.loss_and_grad, w, gtol=gtol, maxiter=maxiter, progress=progress)
        if not report["converged"]:
            warnings.warn(f"L-BFGS stopped at |grad C| = {report['grad_norm']:.3g} ({report['message']}); "
                          "w* is not a minimum to within gtol", ConvergenceWarning, stacklevel=2)
    else:
        w_star = w
        loss, g = obj.loss_and_grad(w_star)
        report = {"loss": loss, "grad_norm": float(np.linalg.norm(g))}
    P = obj.n_params
    h, V = lanczos(lambda v: obj.hvp(w_star, v), P, k, tol=tol, seed=seed)
    if h[-1] <= 0:
        warnings.warn(f"{int(np.sum(h <= 0))} of the top-{k} Hessian eigenvalues are <= 0", ValidityWarning,
                      stacklevel=2)
    s_vals, s_vecs = lanczos(lambda v: obj.covariance_matvec(w_star, v), P, k, tol=tol, seed=seed + 1)
    GV = obj.sample_grad_products(w_star, V)
    GV -= GV.mean(axis=0)
    S = GV.T @ GV / obj.n
    trace = None
    if obj.n * P <= 5e7:
        G = obj.per_sample_grads(w_star)
        G -= G.mean(axis=0)
        trace = float(np.sum(G * G) / obj.n)
    describe = describe or {}
    report.update(
        net={"torch_module": type(module).__name__, "n_params": P, "weight_decay": float(weight_decay),
             "parameters": [[n, list(s)] for n, s in zip(obj.names, obj.shapes)], **describe.get("net", {})},
        data={"name": "torch tensors", "n": obj.n, **describe.get("data", {})}, k=int(k),
        hessian_eigenvalues=[float(v) for v in h], noise_eigenvalues=[float(v) for v in s_vals],
        noise_trace=trace, noise_fraction=None if not trace else float(np.trace(S) / trace),
        basis="top-k Hessian eigenvectors; coordinates u = V^T (w - w*); w in named_parameters() order",
        provenance={"adapter": "sdesim.nets.torch_adapter", "torch": obj.torch.__version__,
                    **describe.get("provenance", {})},
    )
    model = QuadraticModel(hessian=np.diag(h), noise_covariance=0.5 * (S + S.T), w_star=np.zeros(k),
                           metadata=report)
    for a in (V, w_star, s_vals, s_vecs):
        a.setflags(write=False)
    return Extraction(model, V, np.asarray(w_star), s_vals, s_vecs, report)


def mlp_to_torch(net, w=None):
    """A ``torch.nn.Sequential`` equal to the NumPy :class:`~sdesim.nets.MLP` ``net`` (float64),
    and the map of flat vectors between the two layouts.

    ``net`` stores ``W_l`` as ``(d_in, d_out)`` row-major then ``b_l``; ``nn.Linear``
    holds ``weight (d_out, d_in)`` then ``bias``.

    Returns
    -------
    module : torch.nn.Sequential
        Loaded with ``w`` when given.
    to_torch : callable
        ``w (P,)`` in ``net``'s layout -> the module's flat layout; its inverse
        is ``to_torch.inverse``. Both are permutations.
    """
    torch = _torch()
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "gelu": torch.nn.GELU}[net.activation]
    layers = []
    for i, (d_in, d_out) in enumerate(zip(net.sizes[:-1], net.sizes[1:])):
        layers.append(torch.nn.Linear(d_in, d_out, dtype=torch.float64))
        if i < len(net.sizes) - 2:
            layers.append(act())
    module = torch.nn.Sequential(*layers)
    perm, offset = [], 0
    for d_in, d_out in zip(net.sizes[:-1], net.sizes[1:]):
        perm.append(offset + np.arange(d_in * d_out).reshape(d_in, d_out).T.ravel())  # weight (d_out, d_in)
        perm.append(offset + d_in * d_out + np.arange(d_out))
        offset += d_in * d_out + d_out
    perm = np.concatenate(perm)
    inverse = np.argsort(perm)

    def to_torch(v):
        return np.asarray(v, dtype=float)[..., perm]

    to_torch.inverse = lambda v: np.asarray(v, dtype=float)[..., inverse]
    if w is not None:
        flat = torch.as_tensor(to_torch(w))
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(flat, module.parameters())
    return module, to_torch
