"""Assembly of the finite-volume Fokker-Planck operator as lattice jump rates.

The Ito Fokker-Planck equation

.. math:: \\partial_t \\rho = -\\nabla\\cdot(b \\rho) + \\sum_{ij} \\partial_i \\partial_j (D_{ij} \\rho)

is discretised on a `Grid` as the generator of a continuous-time Markov chain
between neighbouring cells: ``d rho_c/dt = sum over links of (inflow - outflow)``.
Writing ``D = sum_k a_k delta_k delta_k^T`` (see `diffusion.lattice_weights`)
and putting the drift on the axis links (``beta_i = int b_i dx / h_i^2`` over
the link), each link carries the one-dimensional drift-diffusion flux

.. math::
    F = g(\\bar a, \\beta_{\\rm eff})\\,\\rho_c - g(\\bar a, -\\beta_{\\rm eff})\\,\\rho_{c+\\delta},
    \\qquad g(a, \\beta) = a\\, B(-\\beta / a), \\quad B(x) = \\frac{x}{e^x - 1},

the Scharfetter-Gummel (exponentially fitted) flux, with ``bar a`` the mean of
the weights at the two cells and ``beta_eff = beta - (a_{c+delta} - a_c)`` the
Ito correction of a state-dependent ``D``. Every flux leaves one cell and
enters another, so mass is conserved to round-off; ``g >= 0`` makes the
operator an M-matrix (positivity) whenever all weights ``a_k >= 0``. With a
gradient drift ``b = -grad C`` and ``D = T I`` the link drift is the exact
potential difference ``-(C_{c+delta} - C_c)/h^2``, and the discrete steady state
is the Gibbs density ``exp(-C/T)`` at the cell centres, to round-off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sdesim.errors import NonFiniteError, ShapeError

from .diffusion import lattice_weights


def bernoulli(x):
    """``B(x) = x / (e^x - 1)``, with ``B(0) = 1``; stable for all ``x``."""
    x = np.asarray(x, dtype=float)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = x / np.expm1(x)
    return np.where(x == 0.0, 1.0, out)


def fitted_rate(a, beta):
    """Jump rate ``g(a, beta) = a B(-beta/a)`` along a link.

    ``g -> max(beta, 0)`` (upwind) as ``a -> 0``. A negative weight (cross
    terms beyond the grid anisotropy) enters as ``g(0, beta) + a``, which keeps
    ``g(a, beta) - g(a, -beta) = beta`` (consistency) but may be negative.
    """
    pos = np.maximum(a, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        fitted = pos * bernoulli(-beta / pos)
    return np.where(pos > 0, fitted, np.maximum(beta, 0.0)) + np.minimum(a, 0.0)


@dataclass(frozen=True)
class Link:
    """One lattice direction: the links ``c -> c + offset`` over all cells ``c``.

    Arrays are flat over the cells (length ``grid.size``) and zero where
    ``c + offset`` leaves the grid (zero-flux boundary).
    """

    offset: tuple        # lattice displacement, entries in {-1, 0, 1}
    stride: int          # flat index displacement (> 0)
    valid: np.ndarray    # bool (N,)
    a_src: np.ndarray    # diffusion weight at c (N,) or scalar
    a_dst: np.ndarray    # diffusion weight at c + offset
    beta: np.ndarray     # drift rate along the link (N,) or scalar

    def rates(self, scale=1.0):
        """Forward and backward jump rates with the diffusion scaled by ``scale``."""
        a_mean = 0.5 * scale * (self.a_src + self.a_dst)
        beta = self.beta - scale * (self.a_dst - self.a_src)
        fwd = np.where(self.valid, fitted_rate(a_mean, beta), 0.0)
        bwd = np.where(self.valid, fitted_rate(a_mean, -beta), 0.0)
        return fwd, bwd


def _shift(x, stride, n):
    """``y[c] = x[c + stride]`` (zero past the end) for flat arrays or scalars."""
    if np.ndim(x) == 0:
        return x
    out = np.zeros(n)
    out[: n - stride] = x[stride:]
    return out


def _shift_rows(x, stride):
    """``y[c] = x[c + stride]`` along the first axis, repeating the last row past the end."""
    return np.concatenate([x[stride:], np.repeat(x[-1:], stride, axis=0)])


def _solve(D, b):
    """``D^{-1} b`` for ``D`` (dim, dim) or (N, dim, dim) and ``b`` (N, dim)."""
    if D.ndim == 2:
        return b @ np.linalg.inv(D).T
    return np.linalg.solve(D, b[..., None])[..., 0]


def _finite_drift(drift, W):
    b = np.asarray(drift(W), dtype=float)
    if b.shape != W.shape:
        raise ShapeError(f"the drift returned shape {b.shape} for points of shape {W.shape}")
    if not np.all(np.isfinite(b)):
        raise NonFiniteError("the drift is not finite on every grid cell and link midpoint")
    return b


def _valid(shape, offset):
    ok = np.ones(shape, dtype=bool)
    for i, o in enumerate(offset):
        index = [slice(None)] * len(shape)
        if o == 1:
            index[i] = -1
        elif o == -1:
            index[i] = 0
        else:
            continue
        ok[tuple(index)] = False
    return ok.ravel()


class Operator:
    """The discretised Fokker-Planck generator on a grid.

    Parameters
    ----------
    grid : Grid
    diffusion : array (dim, dim) or (*shape, dim, dim)
        ``D`` at the cell centres (constant or per cell); already validated.
    drift : callable
        ``W (..., dim) -> b (..., dim)``.
    potential : array of grid.shape, optional
        ``C`` at the centres when ``b = -grad C``; with ``D = T I`` constant the link
        Peclet numbers are the exact differences ``-(C_{c+delta} - C_c) / T``.

    Notes
    -----
    The drift is shared among the links through ``g = D^{-1} b``: link ``k``
    gets ``beta_k = a_k P_k`` with Peclet number ``P_k = int_link g . dx``
    (Simpson's rule, ``D`` at the link midpoint the mean of the two cells), so
    that ``sum_k beta_k delta_k = D g = b`` and every link sees a bounded
    Peclet number however small its weight. Where ``D`` is singular the drift
    goes to the axis links instead (``beta_i = int b_i dx / h_i^2``); with
    ``D = 0`` the rates are upwind, pure drift transport.
    """

    def __init__(self, grid, diffusion, drift, potential=None):
        self.grid = grid
        n, dim, h = grid.size, grid.dim, grid.spacing
        strides = np.array([int(np.prod(grid.shape[i + 1:])) for i in range(dim)])
        D = np.asarray(diffusion, dtype=float)
        if D.ndim > 2:
            D = D.reshape(n, dim, dim)
        X = grid.centers.reshape(n, dim)
        isotropic = D.ndim == 2 and np.all(D == D[0, 0] * np.eye(dim))
        if potential is not None and isotropic and D[0, 0] > 0:
            mode, C = "potential", np.asarray(potential, dtype=float).ravel()
            if not np.all(np.isfinite(C)):
                raise NonFiniteError("the loss is not finite on every grid cell")
        else:
            lam = np.linalg.eigvalsh(D)
            mode = "fitted" if lam[..., 0].min() > 1e-12 * lam[..., -1].max() else "axis"
            b = _finite_drift(drift, X)
            field = _solve(D, b) if mode == "fitted" else b
        links = []
        for offset, weight in lattice_weights(D, h):
            stride = int(np.dot(offset, strides))
            delta = np.array(offset) * h
            a_dst = _shift(weight, stride, n)
            a_mean = 0.5 * (weight + a_dst)
            if mode == "potential":
                beta = -a_mean * (_shift(C, stride, n) - C) / D[0, 0]
            elif mode == "axis" and np.count_nonzero(offset) > 1:
                beta = 0.0
            else:
                lo, hi = np.array(grid.bounds).T
                mid = _finite_drift(drift, np.clip(X + 0.5 * delta, lo, hi))  # links off the box are unused
                if mode == "fitted":
                    D_mid = D if D.ndim == 2 else 0.5 * (D + _shift_rows(D, stride))
                    mid = _solve(D_mid, mid)
                integral = (field + 4.0 * mid + _shift_rows(field, stride)) @ delta / 6.0
                beta = a_mean * integral if mode == "fitted" else integral / float(delta @ delta)
            valid = _valid(grid.shape, offset)
            links.append(Link(offset, stride, valid, weight, a_dst, np.where(valid, beta, 0.0)))
        self.links = links
        self.mode = mode

    def matrix(self, scale=1.0):
        """Sparse CSR generator ``L`` with ``d rho/dt = L rho`` (flat C order).

        Off-diagonal entries are the jump rates ``L[c', c]`` from ``c`` to
        ``c'``; columns sum to zero (mass conservation).
        """
        n = self.grid.size
        main = np.zeros(n)
        diagonals, offsets = [], []
        for link in self.links:
            fwd, bwd = link.rates(scale)
            s = link.stride
            main -= fwd
            main[s:] -= bwd[: n - s]
            diagonals += [bwd[: n - s], fwd[: n - s]]
            offsets += [s, -s]
        return sp.diags([main] + diagonals, [0] + offsets, shape=(n, n), format="csr")

    def current(self, rho, scale=1.0, xp=np):
        """Probability current at the cell centres, shape ``(*shape, dim)``.

        Each link flux ``F = fwd_c rho_c - bwd_c rho_{c+s}`` (density per time) is a
        current ``F delta`` along the link; the centre value averages the links
        entering and leaving. ``xp``: the array module of ``rho`` and of the result
        (``cupy`` on the device path; the rates are moved there).
        """
        n, h = self.grid.size, self.grid.spacing
        r = xp.asarray(rho, dtype=float).ravel()
        J = xp.zeros((n, self.grid.dim))
        for link in self.links:
            fwd, bwd = (xp.asarray(a) for a in link.rates(scale))
            s = link.stride
            F = fwd * r
            F[: n - s] -= bwd[: n - s] * r[s:]
            F_in = xp.zeros(n)
            F_in[s:] = F[: n - s]
            J += 0.5 * (F + F_in)[:, None] * xp.asarray(np.array(link.offset) * h)
        return J.reshape(*self.grid.shape, self.grid.dim)
