"""Diffusion tensors: validation and decomposition onto lattice directions.

A tensor ``D`` (``dim x dim``, symmetric positive semi-definite) is written as
a sum of rank-one tensors along the lattice links of the grid,

.. math:: D = \\sum_k a_k\\, \\delta_k \\delta_k^T,

with the axis links ``delta = h_i e_i`` and the face-diagonal links
``delta = h_i e_i \\pm h_j e_j``. The weights are

.. math::
    a_{ij}^{\\pm} = \\frac{\\max(\\pm D_{ij}, 0)}{h_i h_j}, \\qquad
    a_i = \\frac{D_{ii}}{h_i^2} - \\sum_{j \\ne i} \\frac{|D_{ij}|}{h_i h_j}.

Then ``sum_ij d_i d_j (D_ij rho) = sum_k (delta_k . grad)^2 (a_k rho)``
exactly, each term a one-dimensional diffusion along a link. All weights are
non-negative (and the scheme is an M-matrix) iff ``D`` is diagonally dominant
in the grid-scaled sense ``D_ii / h_i >= sum_{j != i} |D_ij| / h_j``. For a
constant positive-definite ``D`` an aspect ratio ``h_j / h_i`` between
``|D_ij| / D_ii`` and ``D_jj / |D_ij|`` always achieves it (2D).
"""

from __future__ import annotations

import warnings

import numpy as np

from sdesim.errors import NonPSDError, PositivityWarning, ShapeError


def check_tensor(D, dim, where=None) -> np.ndarray:
    """Validate diffusion tensors ``D`` of shape ``(..., dim, dim)``.

    Raises `ShapeError` on a wrong shape and `NonPSDError` when ``D`` is not
    symmetric or has an eigenvalue below ``-1e-10 * max|D|``; ``where``
    (points ``(..., dim)``) names the first offending point.
    """
    D = np.asarray(D, dtype=float)
    if D.shape[-2:] != (dim, dim):
        raise ShapeError(f"diffusion tensor must have trailing shape ({dim}, {dim}); got {D.shape}")
    if not np.all(np.isfinite(D)):
        raise NonPSDError("diffusion tensor has non-finite entries")
    scale = max(float(np.max(np.abs(D))), np.finfo(float).tiny)
    asym = np.abs(D - np.swapaxes(D, -1, -2)).max(axis=(-1, -2))
    lam = np.linalg.eigvalsh(0.5 * (D + np.swapaxes(D, -1, -2)))[..., 0]
    bad = (asym > 1e-10 * scale) | (lam < -1e-10 * scale)
    if np.any(bad):
        k = np.unravel_index(np.argmax(bad), bad.shape)
        at = f" at w = {np.asarray(where)[k]}" if where is not None else ""
        raise NonPSDError(f"diffusion tensor is not symmetric positive semi-definite{at}: "
                          f"D = {D[k].tolist()}, smallest eigenvalue {float(lam[k]):.3g}")
    return D


def lattice_weights(D, spacing):
    """Decompose ``D (..., dim, dim)`` into link weights.

    Returns
    -------
    list of (offset, weight)
        ``offset`` a tuple of -1/0/1 per axis (first non-zero entry +1),
        ``weight`` an array of the leading shape of ``D`` (units 1/time).
        Diagonal links whose weight vanishes everywhere are omitted. Warns
        `PositivityWarning` when an axis weight is negative.
    """
    dim = len(spacing)
    h = np.asarray(spacing, dtype=float)
    links = []
    cross = np.zeros(D.shape[:-2] + (dim,))
    for i in range(dim):
        for j in range(i + 1, dim):
            dij = D[..., i, j] / (h[i] * h[j])
            cross[..., i] += np.abs(dij)
            cross[..., j] += np.abs(dij)
            for sign in (1, -1):
                w = np.maximum(sign * dij, 0.0)
                if np.any(w > 0):
                    off = [0] * dim
                    off[i], off[j] = 1, sign
                    links.append((tuple(off), w))
    axis = []
    for i in range(dim):
        off = [0] * dim
        off[i] = 1
        axis.append((tuple(off), D[..., i, i] / h[i] ** 2 - cross[..., i]))
    worst = min(float(np.min(w * h[i] ** 2 / np.maximum(D[..., i, i], 1e-300)))
                for i, (_, w) in enumerate(axis))
    if worst < -1e-12:
        warnings.warn(
            "the cross terms of the diffusion tensor exceed the grid anisotropy "
            f"(D_ii/h_i < sum_j |D_ij|/h_j, worst relative axis weight {worst:.3g}): mass is "
            "still conserved, but the density may go negative. Choose the spacings so that "
            "D_ii/h_i >= sum_j |D_ij|/h_j (in 2D: |D_12|/D_11 <= h_2/h_1 <= D_22/|D_12|).",
            PositivityWarning, stacklevel=4)
    return axis + links
