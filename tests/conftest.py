"""Fixtures shared by the simulator tests: one loss of each kind."""

import numpy as np
import pytest

import sdesim as sd


@pytest.fixture(scope="session")
def sym():
    return sd.Loss("(x**2 - 1)**2 + 2*y**2 + 0.5*x*y")


@pytest.fixture(scope="session")
def fs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=12)
    y = 0.7 * x + 0.3 * rng.normal(size=12)
    # nonlinear in the parameters, so minibatch gradients depend on the state
    return sd.FiniteSumLoss("0.5*(a*x - y)**2 + 0.1*b**2*(a - 1)**2 + 0.5*(b - y)**2",
                            params=("a", "b"), data={"x": x, "y": y})


@pytest.fixture(scope="session")
def qm():
    # S does not commute with H
    return sd.QuadraticModel(hessian=[[2.0, 0.3], [0.3, 0.5]], noise_covariance=[[1.0, 0.4], [0.4, 0.6]],
                             w_star=[0.1, -0.2])


@pytest.fixture(scope="session")
def losses(sym, fs, qm):
    return {"symbolic": sym, "finite_sum": fs, "quadratic": qm}
