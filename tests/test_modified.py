"""Backward error analysis of GD: symbolic terms and the convergence orders of the
modified flows (docs/theory.md#backward-error-analysis).

Convergence test. GD with step ``lr`` for ``k = t / lr`` steps is compared, at the
same time ``t = 1``, with the flow of the order-``p`` modified field integrated by
DOP853 (rtol 1e-12, atol 1e-14, so the ODE error is ~1e-12, far below the smallest
difference measured, ~1e-9). The error is ``O(lr^(p+1))``: the fitted log-log
slope over ``lr`` in [1/200, 1/25] must be ``p + 1`` within 0.15.
"""

import numpy as np
import pytest
import sympy
from scipy.integrate import solve_ivp

import sdesim as sd
from sdesim.losses.modified import LR, bea_terms

LOSS_2D = "(x**2 - 1)**2 + 2*y**2 + 0.5*x*y + 0.3*sin(x + y)"
W0 = np.array([0.3, 0.8])
T_END = 1.0
STEPS = np.array([25, 32, 40, 50, 64, 80, 100, 128, 160, 200])   # lr = T_END / steps
SLOPE_TOL = 0.15


def _numeric(exprs, variables):
    f = sympy.lambdify(variables, list(exprs), "numpy")
    return lambda w: np.array(f(*w), dtype=float)


def _jac(F, variables):
    return sympy.Matrix([[sympy.diff(Fi, v) for v in variables] for Fi in F])


def test_f2_f3_identities():
    """f_2 = -1/2 f'f and f_3 = 1/12 f''(f,f) + 1/3 f'f'f on a non-polynomial 2D loss."""
    loss = sd.Loss("exp(-x**2)*cos(y) + 0.1*x**2*y**2 + log(1 + x**2 + y**2)")
    v = loss.variables
    f1, f2, f3 = bea_terms(loss.expr, v, 2)
    f = sympy.Matrix([-sympy.diff(loss.expr, s) for s in v])
    J = _jac(f, v)
    assert list(f1) == list(f)
    f2_ref = -J * f / 2
    # f''(f, f)_i = sum_jk d^2 f_i / dw_j dw_k f_j f_k
    fpp = sympy.Matrix([sum(sympy.diff(f[i], v[j], v[k]) * f[j] * f[k]
                            for j in range(2) for k in range(2)) for i in range(2)])
    f3_ref = fpp / 12 + J * J * f / 3
    rng = np.random.default_rng(0)
    pts = rng.uniform(-1.5, 1.5, size=(25, 2))
    for got, ref in [(f2, f2_ref), (f3, f3_ref)]:
        a, b = _numeric(got, v), _numeric(list(ref), v)
        for w in pts:
            np.testing.assert_allclose(a(w), b(w), rtol=1e-12, atol=1e-12)
    # f_2 is the gradient field -grad(1/4 |grad C|^2)
    reg = sum(sympy.diff(loss.expr, s) ** 2 for s in v) / 4
    assert all(sympy.simplify(a + sympy.diff(reg, s)) == 0 for a, s in zip(f2, v))


def test_general_recursion_on_linear_field():
    """For C = 1/2 w^T A w, GD is w -> (I - h A) w, exactly the time-h flow of
    B w with B = log(I - h A)/h = -sum_k h^k A^(k+1)/(k+1): f_{k+1} = -A^(k+1) w/(k+1)."""
    loss = sd.Loss("1.5*x**2 + 0.5*x*y + y**2")
    A = sympy.Matrix([[3, sympy.Rational(1, 2)], [sympy.Rational(1, 2), 2]])
    w = sympy.Matrix(loss.variables)
    terms = bea_terms(loss.expr, loss.variables, 5)
    assert len(terms) == 6
    for k, term in enumerate(terms):
        ref = -(A ** (k + 1)) * w / (k + 1)
        diff = [sympy.nsimplify(sympy.expand(a - b), tolerance=1e-12, rational=True)
                for a, b in zip(term, ref)]
        assert diff == [0, 0], (k, term, ref)


def test_modified_field_evaluates_the_series():
    loss = sd.Loss(LOSS_2D)
    lr = 0.07
    field = loss.modified_field(lr, 2)
    assert field.order == 2 and len(field.terms) == 3
    rng = np.random.default_rng(1)
    W = rng.uniform(-1, 1, size=(4, 3, 2))
    out = field(W)
    assert out.shape == W.shape
    ref = sum(lr**i * np.stack([_numeric(t, loss.variables)(w) for w in W.reshape(-1, 2)])
              for i, t in enumerate(field.terms))
    np.testing.assert_allclose(out.reshape(-1, 2), ref, rtol=1e-12, atol=1e-12)
    # order 0 is gradient flow
    np.testing.assert_allclose(loss.modified_field(lr, 0)(W), -loss.grad(W), rtol=1e-14)
    # the lr symbol is a runtime argument: another lr reuses the same kernels
    assert loss.modified_field(0.01, 2).kernels is field.kernels
    assert LR in field.components[0].free_symbols
    with pytest.raises(ValueError, match="order"):
        loss.modified_field(lr, -1)


def _gd(loss, lr, steps):
    w = W0.copy()
    for _ in range(steps):
        w = w - lr * loss.grad(w)
    return w


def _flow(rhs):
    sol = solve_ivp(lambda t, w: rhs(w), (0.0, T_END), W0, method="DOP853", rtol=1e-12, atol=1e-14)
    assert sol.success
    return sol.y[:, -1]


def _slope(lrs, errors):
    return np.polyfit(np.log(lrs), np.log(errors), 1)[0]


@pytest.mark.parametrize("order", [0, 1, 2])
def test_modified_flow_convergence_order(order):
    loss = sd.Loss(LOSS_2D)
    lrs = T_END / STEPS
    errors = []
    for lr, k in zip(lrs, STEPS):
        field = loss.modified_field(lr, order)
        errors.append(np.linalg.norm(_gd(loss, lr, k) - _flow(field)))
    slope = _slope(lrs, errors)
    assert abs(slope - (order + 1)) < SLOPE_TOL, (slope, errors)


def test_modified_loss_gradient_flow_is_second_order():
    """Gradient flow on C + lr/4 |grad C|^2 (``Loss.modified``) tracks GD to O(lr^2)."""
    loss = sd.Loss(LOSS_2D)
    steps = STEPS[::3]                       # 4 points: each lr compiles its own loss
    lrs = T_END / steps
    errors = []
    for lr, k in zip(lrs, steps):
        m = loss.modified(lr)
        errors.append(np.linalg.norm(_gd(loss, lr, k) - _flow(lambda w: -m.grad(w))))
    slope = _slope(lrs, errors)
    assert abs(slope - 2) < SLOPE_TOL, (slope, errors)
