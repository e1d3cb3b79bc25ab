"""Device linear solves: GMRES with an algebraic-multigrid V-cycle, written on `arrays.ArrayModules`.

cupyx has no BiCGSTAB, its (incomplete) LU factorises on the CPU and solves by sparse
triangular sweeps, and Gauss-Seidel (pyamg's smoother) is sequential, so the device
solve is: the Ruge-Stueben hierarchy set up once on the CPU (pyamg; the same
coarsening as the CPU solver), its matrices ``A_l``, ``P_l``,
``R_l`` moved to the device as CSR, and a V-cycle of sparse products there with
l1-Jacobi smoothing,

.. math:: x_i \\leftarrow x_i + \\frac{(b - A_l x)_i}{\\sum_j |(A_l)_{ij}|},

(`SWEEPS` sweeps before and after the coarse correction), the coarsest level solved
by its dense inverse; without pyamg the preconditioner is Jacobi alone. The Krylov
method is a flexible, right-preconditioned restarted GMRES (`gmres`): it minimises
the true residual, where cupyx's GMRES (left-preconditioned) tests ``M r``, which
can be small while ``r`` is not when the V-cycle is a poor inverse (coarse grids),
and BiCGSTAB broke down on such cases. Every operation is a sparse or dense product
or a reduction, so each runs as a few device kernels."""

from __future__ import annotations

import importlib.util

import numpy as np
import scipy.sparse as sp

from .linsolve import SolverError

SWEEPS = 2
RESTART = 30
MAXITER = 600


def smoothing_weights(A):
    """``1 / sum_j |A_ij|`` (l1-Jacobi): a convergent smoother also where ``A`` is not diagonally dominant."""
    return 1.0 / np.asarray(abs(A).sum(axis=1)).ravel()


class VCycle:
    """One V-cycle ``M b ~ A^{-1} b`` (zero initial guess) on the device."""

    def __init__(self, A, mods, max_coarse=500):
        self.mods = mods
        A = sp.csr_matrix(A)
        self.levels = []
        if importlib.util.find_spec("pyamg") is None:
            self.levels.append((mods.csr(A), mods.asarray(smoothing_weights(A)), None, None))
            self.coarse = None
            return
        import pyamg

        ml = pyamg.ruge_stuben_solver(A, max_coarse=max_coarse, keep=False)
        for level in ml.levels[:-1]:
            self.levels.append((mods.csr(level.A), mods.asarray(smoothing_weights(level.A)),
                                mods.csr(level.P), mods.csr(level.R)))
        self.coarse = mods.asarray(np.linalg.inv(ml.levels[-1].A.toarray()))

    def __call__(self, b, k=0):
        if k == len(self.levels):
            return self.coarse @ b
        A, w, P, R = self.levels[k]
        x = w * b
        if P is None:
            return x
        for _ in range(SWEEPS - 1):
            x = x + w * (b - A @ x)
        x = x + P @ self(R @ (b - A @ x), k + 1)
        for _ in range(SWEEPS):
            x = x + w * (b - A @ x)
        return x


def gmres(A, b, M, x0, tol, xp, restart=RESTART, maxiter=MAXITER):
    """Flexible restarted GMRES with right preconditioning to ``||b - A x|| <= tol ||b||``.

    Each cycle builds the Arnoldi basis ``V`` of ``A M`` (classical Gram-Schmidt, twice)
    and keeps ``Z = M V``; ``x += Z y`` with ``y`` the small least-squares solution on the
    host, which minimises the true residual. Returns ``(x, ||b - A x|| / ||b||)``.
    """
    bnorm = float(xp.linalg.norm(b)) or np.finfo(float).tiny
    x = xp.array(x0, dtype=float, copy=True)
    res, total = float(xp.linalg.norm(b - A @ x)) / bnorm, 0
    while res > tol and total < maxiter:
        r = b - A @ x
        beta = float(xp.linalg.norm(r))
        V = xp.empty((restart + 1, b.size))
        Z = xp.empty((restart, b.size))
        H = np.zeros((restart + 1, restart))
        V[0] = r / beta
        for j in range(restart):
            Z[j] = M(V[j])
            w = A @ Z[j]
            for _ in range(2):
                h = V[: j + 1] @ w
                w = w - h @ V[: j + 1]
                H[: j + 1, j] += np.asarray(h.get() if hasattr(h, "get") else h)
            H[j + 1, j] = float(xp.linalg.norm(w))
            e = np.zeros(j + 2)
            e[0] = beta
            y = np.linalg.lstsq(H[: j + 2, : j + 1], e, rcond=None)[0]
            total += 1
            if H[j + 1, j] == 0 or np.linalg.norm(H[: j + 2, : j + 1] @ y - e) <= tol * bnorm or total >= maxiter:
                break
            V[j + 1] = w / H[j + 1, j]
        x = x + xp.asarray(y) @ Z[: j + 1]
        last, res = res, float(xp.linalg.norm(b - A @ x)) / bnorm
        if not res < last:             # stagnation (round-off floor) or breakdown
            break
    return x, res


class DeviceIterative:
    """``A`` (host sparse) on the device with its V-cycle; ``solve(b, x0)`` by `gmres` to ``tol``."""

    def __init__(self, A, mods, tol=1e-10):
        self.mods, self.tol = mods, tol
        self.A = mods.csr(A)
        self.M = VCycle(A, mods)

    def solve(self, b, x0=None):
        xp = self.mods.xp
        b = self.mods.asarray(b)
        x, res = gmres(self.A, b, self.M, xp.zeros_like(b) if x0 is None else x0, self.tol, xp)
        if not res <= 10 * self.tol:
            raise SolverError(f"device GMRES stopped at relative residual {res:.2e} "
                              f"(tolerance {self.tol:.1e}); use backend='cpu' (or, in evolve, a smaller dt)")
        return x
