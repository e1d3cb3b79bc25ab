"""Closed-form steady states: the scheme's exact null vector under detailed balance.

The discrete generator ``L`` is a continuous-time Markov chain on the cells. When
its jump rates satisfy detailed balance, ``rho_c g_{c -> c'} = rho_{c'} g_{c' -> c}``
on every link, the stationary vector follows from the rates alone:

- in 1D every zero-flux (reflecting-wall) steady state does, so ``rho`` follows from
  the product recursion ``rho_{k+1} = rho_k g_{k -> k+1} / g_{k+1 -> k}`` for any drift
  and any ``D(x) > 0``, in ``O(N)``;
- in 2D/3D the same recursion along a spanning tree of axis links (axis 0 first, then
  axis 1 from every cell of the first column, ...) gives the candidate; it is the
  null vector exactly when the link rates satisfy Kolmogorov's cycle condition. With
  ``D = T I`` and ``b = -grad C`` the exponentially fitted rates have
  ``g_{c -> c'} / g_{c' -> c} = exp(-(C_{c'} - C_c) / T)`` (since
  ``B(-x) / B(x) = e^x``), so the candidate is the Gibbs vector ``exp(-C / T)``
  itself, computed directly.

`closed_form_steady_state` returns the candidate only after checking the relative
residual ``||L rho||_2 / (||L||_F ||rho||_2)`` with one matrix-free product
(``O(N)``); otherwise (a non-equilibrium steady state, or a drift whose link
integrals are not exact potential differences) it returns ``None`` and the caller
solves the linear system.
"""

from __future__ import annotations

import numpy as np

#: accepted relative residual ``||L rho|| / (||L|| ||rho||)`` of a closed-form candidate
BALANCE_TOL = 1e-13


def apply_generator(links, rates, rho):
    """``L rho`` (flat) from the link rates, without assembling ``L``; also ``||L||_F^2``.

    Parameters
    ----------
    links : list of `operator.Link`
    rates : list of (fwd, bwd) arrays, one pair per link
    rho : array (N,)
    """
    n = rho.size
    out = np.zeros(n)
    diag = np.zeros(n)
    frob = 0.0
    for link, (fwd, bwd) in zip(links, rates):
        s = link.stride
        flux = fwd[: n - s] * rho[: n - s] - bwd[: n - s] * rho[s:]   # net flow c -> c + s
        out[: n - s] -= flux
        out[s:] += flux
        diag -= fwd
        diag[s:] -= bwd[: n - s]
        frob += float(fwd @ fwd + bwd @ bwd)
    return out, frob + float(diag @ diag)


def tree_candidate(shape, links, rates):
    """Log-density ``phi`` from the product recursion along axis links (a spanning tree).

    Returns ``None`` when an axis link lacks a positive rate in either direction
    (the recursion is then undefined).
    """
    dim = len(shape)
    phi = np.zeros(shape)
    for i in range(dim):
        offset = tuple(1 if a == i else 0 for a in range(dim))
        found = [r for link, r in zip(links, rates) if link.offset == offset]
        if not found:
            return None
        fwd, bwd = found[0]
        fwd, bwd = fwd.reshape(shape), bwd.reshape(shape)
        # cells with index 0 on every axis after i; phi is known where axis i is 0
        sel = tuple(slice(None) if a <= i else 0 for a in range(dim))
        chain = tuple(slice(None, -1) if a == i else slice(None) for a in range(i + 1))
        f, b = fwd[sel][chain], bwd[sel][chain]
        if not (np.all(f > 0) and np.all(b > 0)):
            return None
        step = np.log(f) - np.log(b)
        block = phi[sel]
        first = tuple(slice(0, 1) if a == i else slice(None) for a in range(i + 1))
        rest = tuple(slice(1, None) if a == i else slice(None) for a in range(i + 1))
        block[rest] = block[first] + np.cumsum(step, axis=i)
        phi[sel] = block
    return phi


def closed_form_steady_state(operator, scale=1.0, potential=None, tol=BALANCE_TOL):
    """The steady state in ``O(N)`` when the rates are in detailed balance, else ``None``.

    Parameters
    ----------
    operator : `operator.Operator`
    scale : float
        Diffusion scale (noise schedule) of the generator.
    potential : array of grid.shape, optional
        ``C / T`` when the operator is in the exact-potential mode (``D = T I``,
        ``b = -grad C``): the candidate is then ``exp(-C / T)`` directly.
    tol : float
        Accepted relative residual ``||L rho||_2 / (||L||_F ||rho||_2)``.

    Returns
    -------
    array (N,) with ``max = 1``, or None
    """
    shape = operator.grid.shape
    rates = [link.rates(scale) for link in operator.links]
    if potential is not None:
        phi = -(np.asarray(potential, dtype=float) - np.min(potential))
    else:
        phi = tree_candidate(shape, operator.links, rates)
        if phi is None:
            return None
    if not np.all(np.isfinite(phi)):
        return None
    rho = np.exp(phi - phi.max()).ravel()
    residual, frob2 = apply_generator(operator.links, rates, rho)
    if not np.linalg.norm(residual) <= tol * np.sqrt(frob2) * np.linalg.norm(rho):
        return None
    return rho
