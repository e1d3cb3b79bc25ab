"""A small NumPy multilayer perceptron with flat parameters, per-sample gradients
and exact Hessian-vector products.

Layers ``l = 1..L``: ``z_l = a_{l-1} W_l + b_l``, ``a_l = phi(z_l)`` for hidden
layers, ``a_0 = x`` and the logits ``z_L``. All parameters live in one flat vector
``w`` of length ``P``, layer by layer, each layer as ``W_l`` (row-major,
``(d_{l-1}, d_l)``) followed by ``b_l``. The loss is

.. math::  C(w) = \\frac{1}{n} \\sum_i \\ell(z_L(x_i), y_i) + \\frac{\\lambda}{2} |w|^2,

with ``ell`` softmax cross-entropy or the squared error ``1/2 |z - e_y|^2``, and
weight decay ``lambda`` on every parameter (so the per-sample losses
``l_i = ell_i + lambda/2 |w|^2`` average to ``C`` and the decay does not change the
gradient covariance). Hessian-vector products use Pearlmutter's R-operator: a
forward pass of directional derivatives followed by the differentiated backward
pass, exact to rounding and about twice the cost of a gradient.

The Hessian passes (:meth:`MLP.hvp`, :meth:`MLP.grad_and_hvp`) keep their ``(n, h_l)``
work arrays between calls, one set per thread (:class:`_Scratch`): allocated afresh, arrays
of a few MB come back from the allocator as untouched pages, one page fault per 4 KiB,
which took half the time of an HVP of a 64-100-10 net on 1438 samples. The set is about
a dozen ``(n, h_l)`` float arrays per hidden layer and lives as long as the net.
"""

from __future__ import annotations

import threading
from itertools import pairwise

import numpy as np
from scipy.special import erf

from sdesim.errors import ConfigError, ShapeError

__all__ = ["MLP", "SampleJacobian"]

_SQRT2 = np.sqrt(2.0)
_INV_SQRT2PI = 1.0 / np.sqrt(2.0 * np.pi)


def _fresh(tag, shape):
    """New work arrays (the :class:`_Scratch` interface without keeping them)."""
    return np.empty(shape)


class _Scratch(threading.local):
    """Work arrays kept between calls, one per ``tag`` and thread (module docstring);
    reallocated when the shape asked for changes."""

    def __init__(self):
        self.arrays = {}

    def __call__(self, tag, shape):
        a = self.arrays.get(tag)
        if a is None or a.shape != shape:
            a = self.arrays[tag] = np.empty(shape)
        return a


# Activations of layer ``l``: ``phi(z)``, ``phi'(z)`` and (``second``) ``phi''(z)`` in arrays from ``ws``.
def _tanh(z, second, ws, l):
    a = np.tanh(z, out=ws(("a", l), z.shape))
    d1 = np.multiply(a, a, out=ws(("d1", l), z.shape))
    np.subtract(1.0, d1, out=d1)
    if not second:
        return a, d1, None
    d2 = np.multiply(-2.0, a, out=ws(("d2", l), z.shape))
    d2 *= d1
    return a, d1, d2


def _relu(z, second, ws, l):
    mask = z > 0
    a = np.multiply(z, mask, out=ws(("a", l), z.shape))
    d1 = ws(("d1", l), z.shape)
    d1[...] = mask
    if not second:
        return a, d1, None
    d2 = ws(("d2", l), z.shape)
    d2.fill(0.0)
    return a, d1, d2


def _gelu(z, second, ws, l):
    cdf = np.divide(z, _SQRT2, out=ws(("cdf", l), z.shape))
    erf(cdf, out=cdf)
    np.add(1.0, cdf, out=cdf)
    np.multiply(0.5, cdf, out=cdf)
    pdf = np.multiply(-0.5, z, out=ws(("pdf", l), z.shape))
    pdf *= z
    np.exp(pdf, out=pdf)
    np.multiply(_INV_SQRT2PI, pdf, out=pdf)
    a = np.multiply(z, cdf, out=ws(("a", l), z.shape))
    d1 = np.multiply(z, pdf, out=ws(("d1", l), z.shape))
    np.add(cdf, d1, out=d1)
    if not second:
        return a, d1, None
    d2 = np.multiply(z, z, out=ws(("d2", l), z.shape))
    np.subtract(2.0, d2, out=d2)
    np.multiply(pdf, d2, out=d2)
    return a, d1, d2


_ACTIVATIONS = {"tanh": _tanh, "relu": _relu, "gelu": _gelu}
_LOSSES = ("cross_entropy", "squared")


class MLP:
    """Fully connected net ``sizes = (d, h_1, ..., k)`` on flat parameter vectors.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input ``d`` first and number of outputs ``k`` last (at
        least two entries).
    activation : {"tanh", "relu", "gelu"}
        Hidden nonlinearity ``phi`` (GELU: ``z Phi(z)``, exact erf form).
    loss : {"cross_entropy", "squared"}
        Per-sample loss on the logits: ``logsumexp(z) - z_y`` or ``1/2 |z - e_y|^2``.
    weight_decay : float
        ``lambda`` in ``C + lambda/2 |w|^2``.

    Attributes
    ----------
    n_params : int
        ``P``, the length of every parameter vector.

    Notes
    -----
    Every method takes ``w (P,)``, inputs ``x (n, d)`` and integer labels
    ``y (n,)`` and checks their shapes (``sdesim.errors.ShapeError`` naming the
    mismatch). Per-sample quantities never loop over samples in Python.
    """

    def __init__(self, sizes, activation="tanh", loss="cross_entropy", weight_decay=0.0):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ConfigError(f"sizes must list at least two positive widths, got {sizes}")
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"unknown activation {activation!r}; choose one of {sorted(_ACTIVATIONS)}")
        if loss not in _LOSSES:
            raise ConfigError(f"unknown loss {loss!r}; choose one of {list(_LOSSES)}")
        if weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {weight_decay}")
        self.sizes = sizes
        self.activation = activation
        self.loss_name = loss
        self.weight_decay = float(weight_decay)
        self._phi = _ACTIVATIONS[activation]
        layout, offset = [], 0
        for d_in, d_out in pairwise(sizes):
            layout.append((offset, offset + d_in * d_out, offset + d_in * d_out + d_out, d_in, d_out))
            offset += d_in * d_out + d_out
        self._layout = tuple(layout)
        self.n_params = offset
        self._scratch = _Scratch()

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_scratch"}

    def __setstate__(self, state):
        self.__dict__.update(state, _scratch=_Scratch())

    def __repr__(self):
        return (
            f"MLP(sizes={self.sizes}, activation={self.activation!r}, loss={self.loss_name!r}, "
            f"weight_decay={self.weight_decay}, n_params={self.n_params})"
        )

    # ------------------------------------------------------------------ plumbing
    def _unpack(self, w, what="parameter vector"):
        """Views ``[(W_1, b_1), ...]`` into a flat vector of length ``P``."""
        if w.shape != (self.n_params,):
            raise ShapeError(
                f"{what} has shape {w.shape} but the net {self.sizes} has "
                f"{self.n_params} parameters: expected ({self.n_params},)"
            )
        return [(w[s:m].reshape(i, o), w[m:e]) for s, m, e, i, o in self._layout]

    def _check_xy(self, x, y=None):
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ShapeError(f"inputs have shape {x.shape}; the net expects (n, {self.sizes[0]})")
        if y is not None:
            if y.shape != (x.shape[0],):
                raise ShapeError(f"{x.shape[0]} inputs but labels of shape {y.shape}")
            if y.size and (y.min() < 0 or y.max() >= self.sizes[-1]):
                raise ShapeError(
                    f"labels span [{y.min()}, {y.max()}] but the net has {self.sizes[-1]} outputs"
                )

    def _forward(self, params, x, second=False, ws=_fresh):
        """Inputs ``a_{l-1}`` of every layer, ``phi'``/``phi''`` at hidden layers, logits."""
        acts, d1s, d2s = [x], [], []
        a = x
        for l, (W, b) in enumerate(params[:-1]):
            z = np.matmul(a, W, out=ws(("z", l), (len(x), W.shape[1])))
            z += b
            a, d1, d2 = self._phi(z, second, ws, l)
            acts.append(a)
            d1s.append(d1)
            d2s.append(d2)
        W, b = params[-1]
        return acts, d1s, d2s, a @ W + b

    def _dloss(self, z, y):
        """``d ell_i / d z`` per sample, and the softmax probabilities (or None)."""
        idx = np.arange(len(y))
        if self.loss_name == "cross_entropy":
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            delta = p.copy()
            delta[idx, y] -= 1.0
            return delta, p
        delta = z.copy()
        delta[idx, y] -= 1.0
        return delta, None

    def _deltas(self, params, acts, d1s, delta):
        """Backpropagate output errors: ``delta_l`` for every layer (first to last)."""
        deltas = [delta]
        for l in range(len(params) - 1, 0, -1):
            delta = (delta @ params[l][0].T) * d1s[l - 1]
            deltas.append(delta)
        return deltas[::-1]

    # ------------------------------------------------------------------ public
    def init(self, seed=0):
        """Random parameters: ``W_l ~ N(0, g / d_{l-1})`` (``g = 1`` tanh, ``2`` ReLU/GELU), ``b_l = 0``.

        Returns
        -------
        ndarray, shape (P,)
        """
        rng = np.random.default_rng(seed)
        gain = 1.0 if self.activation == "tanh" else 2.0
        w = np.zeros(self.n_params)
        for s, m, _, i, o in self._layout:
            w[s:m] = rng.standard_normal(i * o) * np.sqrt(gain / i)
        return w

    def output(self, w, x):
        """Logits ``z_L``, shape ``(n, k)``."""
        w, x = np.asarray(w, dtype=float), np.asarray(x, dtype=float)
        self._check_xy(x)
        return self._forward(self._unpack(w), x)[-1]

    def predict(self, w, x):
        """Predicted labels ``argmax_c z_L``, shape ``(n,)``."""
        return self.output(w, x).argmax(axis=1)

    def accuracy(self, w, x, y):
        """Fraction of correctly classified samples."""
        return float(np.mean(self.predict(w, x) == np.asarray(y)))

    def _ell(self, z, y):
        """Per-sample losses ``ell_i`` on logits (no weight decay)."""
        idx = np.arange(len(y))
        if self.loss_name == "cross_entropy":
            zmax = z.max(axis=1)
            return zmax + np.log(np.exp(z - zmax[:, None]).sum(axis=1)) - z[idx, y]
        r = z.copy()
        r[idx, y] -= 1.0
        return 0.5 * np.einsum("ij,ij->i", r, r)

    def sample_losses(self, w, x, y):
        """Per-sample losses ``l_i(w) = ell_i + lambda/2 |w|^2``, shape ``(n,)``."""
        w, x, y = np.asarray(w, dtype=float), np.asarray(x, dtype=float), np.asarray(y)
        self._check_xy(x, y)
        z = self._forward(self._unpack(w), x)[-1]
        return self._ell(z, y) + 0.5 * self.weight_decay * (w @ w)

    def loss(self, w, x, y):
        """Mean loss ``C(w) = mean_i l_i(w)``."""
        return float(self.sample_losses(w, x, y).mean())

    def grad(self, w, x, y):
        """Gradient ``grad C(w)``, shape ``(P,)`` (backpropagation)."""
        return self._loss_grad(w, x, y, False)[1]

    def loss_and_grad(self, w, x, y):
        """``(C(w), grad C(w))`` from one forward and one backward pass."""
        return self._loss_grad(w, x, y, True)

    def _loss_grad(self, w, x, y, want_loss):
        w, x, y = np.asarray(w, dtype=float), np.asarray(x, dtype=float), np.asarray(y)
        self._check_xy(x, y)
        params = self._unpack(w)
        g = np.empty(self.n_params)
        gparams = self._unpack(g)
        acts, d1s, _, z = self._forward(params, x)
        value = None
        if want_loss:
            value = float(self._ell(z, y).mean()) + 0.5 * self.weight_decay * float(w @ w)
        delta = self._dloss(z, y)[0]
        delta *= 1.0 / len(y)
        for l in range(len(params) - 1, -1, -1):
            gW, gb = gparams[l]
            np.matmul(acts[l].T, delta, out=gW)
            delta.sum(axis=0, out=gb)
            if l:
                delta = (delta @ params[l][0].T) * d1s[l - 1]
        if self.weight_decay:
            g += self.weight_decay * w
        return value, g

    def per_sample_grads(self, w, x, y):
        """Per-sample gradients ``G[i] = grad l_i(w)``, shape ``(n, P)``.

        Vectorised: ``grad_{W_l} l_i = a_{l-1,i} delta_{l,i}^T`` for all ``i`` at
        once. Memory ``n P``; for large ``n`` use :meth:`sample_jacobian`.
        """
        w, x, y = np.asarray(w, dtype=float), np.asarray(x, dtype=float), np.asarray(y)
        self._check_xy(x, y)
        params = self._unpack(w)
        acts, d1s, _, z = self._forward(params, x)
        deltas = self._deltas(params, acts, d1s, self._dloss(z, y)[0])
        G = np.empty((len(y), self.n_params))
        for (s, m, e, i, o), a, d in zip(self._layout, acts, deltas):
            G[:, s:m].reshape(len(y), i, o)[...] = a[:, :, None] * d[:, None, :]
            G[:, m:e] = d
        if self.weight_decay:
            G += self.weight_decay * w
        return G

    def hvp(self, w, x, y, v):
        """Exact Hessian-vector product ``H(w) v = d/de grad C(w + e v)|_{e=0}``.

        Pearlmutter's R-operator ``R{f} = d/de f(w + e v)``: forward
        ``R z_l = R a_{l-1} W_l + a_{l-1} V_l + v_{b_l}``, ``R a_l = phi'(z_l) R z_l``;
        backward ``R delta_{l-1} = (R delta_l W_l^T + delta_l V_l^T) phi'(z_{l-1})
        + (delta_l W_l^T) phi''(z_{l-1}) R z_{l-1}``,
        ``R grad W_l = R a_{l-1}^T delta_l + a_{l-1}^T R delta_l``; at the output
        ``R delta_L = (diag p - p p^T) R z_L`` (cross-entropy) or ``R z_L`` (squared).

        Returns
        -------
        ndarray, shape (P,)
        """
        w, x, y = np.asarray(w, dtype=float), np.asarray(x, dtype=float), np.asarray(y)
        v = np.asarray(v, dtype=float)
        self._check_xy(x, y)
        params = self._unpack(w)
        vparams = self._unpack(v, "direction v")
        ws = self._scratch
        acts, d1s, d2s, z = self._forward(params, x, True, ws)
        return self._r_backward(params, vparams, v, acts, d1s, d2s, *self._backward(params, d1s, z, y, ws), ws)

    def grad_and_hvp(self, w, x, y, v=None):
        """``(grad C(w), H(w) v)`` from one forward and one backward pass; ``v=None`` takes ``v = grad C(w)``.

        The R-passes of :meth:`hvp` reuse the activations, ``phi'``, ``phi''`` and
        backpropagated errors of the gradient, so ``H g`` (the order-1 modified
        field ``g + lr/2 H g``) costs one R-forward and one R-backward pass more
        than ``g``. Both results equal :meth:`grad` and :meth:`hvp` operation for
        operation.

        Returns
        -------
        (ndarray, ndarray), shapes (P,) and (P,)
        """
        w, x, y = np.asarray(w, dtype=float), np.asarray(x, dtype=float), np.asarray(y)
        self._check_xy(x, y)
        params = self._unpack(w)
        if v is not None:
            v = np.asarray(v, dtype=float)
            vparams = self._unpack(v, "direction v")
        ws = self._scratch
        acts, d1s, d2s, z = self._forward(params, x, True, ws)
        p, deltas, backs = self._backward(params, d1s, z, y, ws)
        g = np.empty(self.n_params)
        for l, (gW, gb) in enumerate(self._unpack(g)):
            np.matmul(acts[l].T, deltas[l], out=gW)
            deltas[l].sum(axis=0, out=gb)
        if self.weight_decay:
            g += self.weight_decay * w
        if v is None:
            v, vparams = g, self._unpack(g)
        return g, self._r_backward(params, vparams, v, acts, d1s, d2s, p, deltas, backs, ws)

    def _backward(self, params, d1s, z, y, ws):
        """Softmax ``p`` (or None), errors ``delta_l / n`` and ``delta_l W_l^T`` (``l >= 1``; None at ``l = 0``)."""
        delta, p = self._dloss(z, y)
        delta *= 1.0 / len(y)
        deltas, backs = [delta], []
        for l in range(len(params) - 1, 0, -1):
            back = np.matmul(delta, params[l][0].T, out=ws(("back", l - 1), d1s[l - 1].shape))
            delta = np.multiply(back, d1s[l - 1], out=ws(("delta", l - 1), back.shape))
            backs.append(back)
            deltas.append(delta)
        backs.append(None)
        return p, deltas[::-1], backs[::-1]

    def _r_backward(self, params, vparams, v, acts, d1s, d2s, p, deltas, backs, ws):
        """R-forward and R-backward passes of :meth:`hvp` on stored forward and backward passes: ``H v``.

        Work array ``(tag, l)`` has the shape ``(n, d_{l+1})`` of layer ``l``'s output."""
        n = len(acts[0])
        Racts, Rzs = [None], []
        for l, ((W, _), (V, vb)) in enumerate(zip(params, vparams)):
            Rz = np.matmul(acts[l], V, out=ws(("Rz", l), (n, W.shape[1])))
            Rz += vb
            if l:
                Rz += np.matmul(Racts[l], W, out=ws(("tmp", l), Rz.shape))
            Rzs.append(Rz)
            if l < len(params) - 1:
                Racts.append(np.multiply(d1s[l], Rz, out=ws(("Ra", l), Rz.shape)))
        RzL = Rzs[-1]
        if p is None:
            Rdelta = RzL.copy()
        else:
            Rdelta = p * (RzL - np.einsum("ij,ij->i", p, RzL)[:, None])
        Rdelta *= 1.0 / len(RzL)
        out = np.empty(self.n_params)
        oparams = self._unpack(out)
        for l in range(len(params) - 1, -1, -1):
            hW, hb = oparams[l]
            np.matmul(acts[l].T, Rdelta, out=hW)
            if l:
                hW += Racts[l].T @ deltas[l]
            Rdelta.sum(axis=0, out=hb)
            if l:  # R delta_{l-1} = (R delta_l W^T + delta_l V^T) phi' + (delta_l W^T) phi'' R z_{l-1}
                W, V = params[l][0], vparams[l][0]
                shape = d1s[l - 1].shape
                Rdelta = np.matmul(Rdelta, W.T, out=ws(("Rd", l - 1), shape))
                Rdelta += np.matmul(deltas[l], V.T, out=ws(("tmp", l - 1), shape))
                Rdelta *= d1s[l - 1]
                curv = np.multiply(backs[l], d2s[l - 1], out=ws(("tmp", l - 1), shape))
                curv *= Rzs[l - 1]
                Rdelta += curv
        if self.weight_decay:
            out += self.weight_decay * v
        return out

    def sample_jacobian(self, w, x, y, chunk_size=2048):
        """Matrix-free per-sample gradient matrix ``G`` (rows ``grad l_i``) at ``w``.

        See :class:`SampleJacobian`; memory ``O(n * sum(sizes))``, never ``n P``.
        """
        return SampleJacobian(self, w, x, y, chunk_size)


class SampleJacobian:
    """Products with the per-sample gradient matrix ``G (n, P)`` without forming it.

    Caches, per chunk of ``chunk_size`` samples, every layer's input ``a_{l-1}``
    and per-sample backpropagated error ``delta_l`` at fixed ``w``. Then, since
    ``grad_{W_l} l_i = a_{l-1,i} delta_{l,i}^T`` and ``grad_{b_l} l_i = delta_{l,i}``,

    - ``(G v)_i = sum_l [ sum_c (a_{l-1} V_l)_{ic} delta_{l,ic} + delta_{l,i} . v_{b_l} ] + lambda w.v``
    - ``G^T u = [ a_{l-1}^T (u * delta_l), delta_l^T u ]_l + lambda w sum_i u_i``

    each at the cost of one batched backward pass, and from them the per-sample
    gradient covariance ``Sigma_1 = G^T G / n - g g^T`` (``g = grad C``) as an
    operator, :meth:`covariance_matvec`.

    Parameters
    ----------
    net : MLP
    w : array_like, shape (P,)
    x, y : arrays, shapes (n, d) and (n,)
    chunk_size : int
        Samples per cached block (bounds the size of temporaries).
    """

    def __init__(self, net, w, x, y, chunk_size=2048):
        w, x, y = np.asarray(w, dtype=float), np.asarray(x, dtype=float), np.asarray(y)
        net._check_xy(x, y)
        params = net._unpack(w)
        self.net, self.w = net, w
        self.shape = (len(y), net.n_params)
        self._chunks = []
        for start in range(0, len(y), int(chunk_size)):
            sl = slice(start, start + int(chunk_size))
            acts, d1s, _, z = net._forward(params, x[sl])
            deltas = net._deltas(params, acts, d1s, net._dloss(z, y[sl])[0])
            self._chunks.append((sl, acts, deltas))

    def matvec(self, v):
        """``G v``, shape ``(n,)``: directional derivatives ``grad l_i . v``."""
        net = self.net
        vparams = net._unpack(np.asarray(v, dtype=float), "direction v")
        out = np.empty(self.shape[0])
        for sl, acts, deltas in self._chunks:
            acc = 0.0
            for (V, vb), a, d in zip(vparams, acts, deltas):
                acc = acc + np.einsum("ic,ic->i", a @ V, d) + d @ vb
            out[sl] = acc
        if net.weight_decay:
            out += net.weight_decay * (self.w @ v)
        return out

    def rmatvec(self, u):
        """``G^T u``, shape ``(P,)``: the ``u``-weighted sum of per-sample gradients."""
        net = self.net
        u = np.asarray(u, dtype=float)
        if u.shape != (self.shape[0],):
            raise ShapeError(f"u has shape {u.shape}; expected ({self.shape[0]},)")
        out = np.zeros(net.n_params)
        oparams = net._unpack(out)
        for sl, acts, deltas in self._chunks:
            uc = u[sl]
            for (gW, gb), a, d in zip(oparams, acts, deltas):
                ud = d * uc[:, None]
                gW += a.T @ ud
                gb += ud.sum(axis=0)
        if net.weight_decay:
            out += net.weight_decay * u.sum() * self.w
        return out

    def covariance_matvec(self, v):
        """``Sigma_1 v = G^T (G v - mean(G v)) / n`` (equal to ``G^T G v / n - g (g . v)``), shape ``(P,)``."""
        gv = self.matvec(v)
        return self.rmatvec(gv - gv.mean()) / self.shape[0]

    def covariance_trace(self):
        """``tr Sigma_1 = mean_i |grad l_i|^2 - |grad C|^2`` without forming ``G``.

        Uses ``|a delta^T|_F^2 = |a|^2 |delta|^2`` per layer; weight decay shifts
        every row of ``G`` by ``lambda w`` and drops out.
        """
        n = self.shape[0]
        sq = 0.0
        for _, acts, deltas in self._chunks:
            for a, d in zip(acts, deltas):
                dd = np.einsum("ij,ij->i", d, d)
                sq += float(np.einsum("ij,ij->i", a, a) @ dd + dd.sum())
        g0 = self.rmatvec(np.full(n, 1.0 / n)) - self.net.weight_decay * self.w
        return sq / n - float(g0 @ g0)
