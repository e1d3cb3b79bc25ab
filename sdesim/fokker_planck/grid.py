"""Cell-centred tensor grids on boxes in 1, 2 or 3 dimensions."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from sdesim.errors import ShapeError


@dataclass(frozen=True)
class Grid:
    """A uniform cell-centred grid on the box ``prod_i [lo_i, hi_i]``.

    Parameters
    ----------
    bounds : sequence of (lo, hi)
        One pair per dimension (1, 2 or 3 of them).
    shape : sequence of int
        Number of cells per dimension, at least 3 each.

    Notes
    -----
    Cell ``k`` along axis ``i`` has centre ``lo_i + (k + 1/2) h_i`` with
    ``h_i = (hi_i - lo_i) / n_i``. Densities are arrays of ``shape`` holding
    cell averages, so that ``sum(rho) * cell_volume`` is the mass. Flattened
    arrays use C order (last axis fastest). ``edges`` are the histogram bin
    edges, so ``histogram`` of a particle ensemble lands on the same cells.
    """

    bounds: tuple
    shape: tuple

    def __post_init__(self):
        bounds = tuple((float(lo), float(hi)) for lo, hi in self.bounds)
        shape = tuple(int(n) for n in np.atleast_1d(self.shape))
        if not 1 <= len(bounds) <= 3 or len(shape) != len(bounds):
            raise ShapeError(f"Grid needs 1-3 (lo, hi) bounds and as many cell counts; "
                             f"got {len(bounds)} bounds and shape {shape}")
        if any(hi <= lo for lo, hi in bounds) or any(n < 3 for n in shape):
            raise ShapeError(f"Grid needs lo < hi and at least 3 cells per axis; "
                             f"got bounds {bounds}, shape {shape}")
        object.__setattr__(self, "bounds", bounds)
        object.__setattr__(self, "shape", shape)

    @property
    def dim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of cells."""
        return int(np.prod(self.shape))

    @cached_property
    def spacing(self) -> np.ndarray:
        """Cell widths ``h_i``, shape ``(dim,)``."""
        return np.array([(hi - lo) / n for (lo, hi), n in zip(self.bounds, self.shape)])

    @property
    def cell_volume(self) -> float:
        return float(np.prod(self.spacing))

    @cached_property
    def axes(self) -> tuple:
        """Cell-centre coordinates per axis (tuple of 1-D arrays)."""
        return tuple(lo + (np.arange(n) + 0.5) * h
                     for (lo, _), n, h in zip(self.bounds, self.shape, self.spacing))

    @cached_property
    def edges(self) -> tuple:
        """Cell-face coordinates per axis (``n_i + 1`` each), the histogram bin edges."""
        return tuple(np.linspace(lo, hi, n + 1) for (lo, hi), n in zip(self.bounds, self.shape))

    @cached_property
    def centers(self) -> np.ndarray:
        """Cell centres, shape ``(*shape, dim)``."""
        return np.stack(np.meshgrid(*self.axes, indexing="ij"), axis=-1)

    def check_density(self, rho, name="rho") -> np.ndarray:
        """Return ``rho`` as a float array of ``shape``, or raise `ShapeError`."""
        rho = np.asarray(rho, dtype=float)
        if rho.shape != self.shape:
            raise ShapeError(f"{name} has shape {rho.shape}, the grid has shape {self.shape}")
        return rho

    def mass(self, rho) -> float:
        """``sum(rho) * cell_volume``."""
        return float(np.sum(rho) * self.cell_volume)

    def normalize(self, rho) -> np.ndarray:
        """``rho`` scaled to unit mass."""
        rho = self.check_density(rho)
        return rho / self.mass(rho)

    def boundary_mask(self) -> np.ndarray:
        """Boolean array of ``shape``, true on the outermost layer of cells."""
        mask = np.zeros(self.shape, dtype=bool)
        for i in range(self.dim):
            index = [slice(None)] * self.dim
            for k in (0, -1):
                index[i] = k
                mask[tuple(index)] = True
        return mask

    def histogram(self, W) -> np.ndarray:
        """Density estimate of an ensemble on the grid cells.

        Parameters
        ----------
        W : array (N, dim)
            Particle positions, e.g. ``result.w[k]`` of a simulation.

        Returns
        -------
        array of ``shape``
            Counts divided by ``N * cell_volume`` (particles outside the box
            are counted in the normalisation), comparable to a density.
        """
        W = np.asarray(W, dtype=float)
        if W.ndim != 2 or W.shape[1] != self.dim:
            raise ShapeError(f"particles must have shape (N, {self.dim}); got {W.shape}")
        counts, _ = np.histogramdd(W, bins=self.edges)
        return counts / (len(W) * self.cell_volume)

    def gaussian(self, mean, cov) -> np.ndarray:
        """Normal density ``N(mean, cov)`` at the centres, renormalised to unit mass."""
        mean = np.asarray(mean, dtype=float).reshape(self.dim)
        cov = np.asarray(cov, dtype=float).reshape(self.dim, self.dim)
        x = self.centers - mean
        q = np.einsum("...i,ij,...j->...", x, np.linalg.inv(cov), x)
        return self.normalize(np.exp(-0.5 * q))
