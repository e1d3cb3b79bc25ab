"""Numba kernels: tridiagonal LU along a flat stride, without pivoting or permutation.

``I - dt L_k`` for one link direction has non-zeros only on the diagonals ``0`` and
``+- s`` (``s`` the link's flat stride) in the grid's own C order: Gaussian
elimination column by column touches only the diagonal (no fill), so it is a
Thomas algorithm with stride ``s``. The matrix is strictly column diagonally
dominant when all rates are non-negative (its columns sum to 1 with non-positive
off-diagonals), for which elimination without pivoting is stable. Imported lazily
(numba compiles on first use, cached on disk).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def factor(diag, lower, upper, s):
    """LU of the matrix with ``A[c, c] = diag[c]``, ``A[c, c - s] = lower[c]``, ``A[c, c + s] = upper[c]``.

    Returns the multipliers ``m`` (``L[c, c - s]``) and ``1 / U[c, c]``.
    """
    n = diag.size
    m = np.zeros(n)
    inv = np.empty(n)
    for c in range(s):
        inv[c] = 1.0 / diag[c]
    for c in range(s, n):
        m[c] = lower[c] * inv[c - s]
        inv[c] = 1.0 / (diag[c] - m[c] * upper[c - s])
    return m, inv


@njit(cache=True)
def solve(m, inv, upper, s, b):
    """Overwrite ``b`` with ``A^{-1} b`` from the factors of `factor`."""
    n = b.size
    for c in range(s, n):
        b[c] -= m[c] * b[c - s]
    for c in range(n - 1, n - 1 - s, -1):
        b[c] *= inv[c]
    for c in range(n - 1 - s, -1, -1):
        b[c] = (b[c] - upper[c] * b[c + s]) * inv[c]
