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

from sdesim.errors import PositivityWarning
from sdesim.linalg import check_psd


def check_tensor(D, dim, where=None) -> np.ndarray:
    """Validate diffusion tensors ``D`` of shape ``(..., dim, dim)`` (:func:`sdesim.linalg.check_psd`).

    ``where`` (points ``(..., dim)``) names the first offending point.
    """
    return check_psd("diffusion tensor", D, dim, where)


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
