"""``sd.Loss``: compiled derivatives against central finite differences, shapes,
parameters, the modified loss, and bad input.

Finite-difference tolerances. A central difference of a smooth ``f`` with step
``h`` has truncation error ``h^2/6 |f'''|`` and roundoff about ``eps |f| / h``
(``eps = 2.2e-16``). With ``h = 1e-5`` and the derivatives of these test losses
bounded by ~1e3 on the sampled boxes (Mueller-Brown-like values ~1e2) both are
below ~1e-8 relative to the scale of the values, so ``rtol = 1e-6`` of
``1 + max|reference|`` leaves a margin of 100 over the estimate. The Hessian is
checked by differencing the compiled gradient, the third derivative by
differencing the compiled Hessian along ``V``: each level is tested against
the level below it, which is tested against ``value``.
"""

import numpy as np
import pytest
import sympy

import sdesim as sd
from sdesim.errors import NonFiniteError, ShapeError, SymbolError

H = 1e-5
RTOL = 1e-6

MUELLER_LIKE = (
    "-200*exp(-(x - 1)**2 - 10*y**2)"
    " - 100*exp(-x**2 - 10*(y - 0.5)**2)"
    " - 170*exp(-6.5*(x + 0.5)**2 + 11*(x + 0.5)*(y - 1.5) - 6.5*(y - 1.5)**2)"
    " + 15*exp(0.7*(x + 1)**2 + 0.6*(x + 1)*(y - 1) + 0.7*(y - 1)**2)"
)

# (expression, vars or None, box half-width, box centre)
CASES = {
    "poly2d": ("(x**2 - 1)**2 + 2*y**2 + 0.5*x*y", None, 1.5, 0.0),
    "trig3d": ("exp(-x**2)*sin(y) + log(1 + z**2) + cos(x*y*z) + tanh(x - z) + x**2*y**3/6", None, 1.5, 0.0),
    "mueller": (MUELLER_LIKE, None, 0.8, np.array([-0.4, 0.7])),
    "poly1d": ("x**4 - x**2 + 0.3*x + sqrt(1 + x**2)", None, 1.5, 0.0),
    "given_vars": ("(b - a**2)**2 + 0.1*(1 - a)**2 + atan(a*b)", ("b", "a"), 1.5, 0.0),
}


def central(f, W, h=H):
    """Central differences of ``f`` along each coordinate: shape ``(..., dim, *f.shape)``,
    axis ``-len(fshape)-1`` indexing the differentiation variable."""
    dim = W.shape[-1]
    cols = []
    for j in range(dim):
        e = np.zeros(dim)
        e[j] = h
        cols.append((f(W + e) - f(W - e)) / (2 * h))
    return np.stack(cols, axis=W.ndim - 1)


def close(a, b):
    scale = 1.0 + np.max(np.abs(b))
    np.testing.assert_allclose(a, b, rtol=0, atol=RTOL * scale)


def points(case, shape, seed=0):
    expr, vars_, half, centre = CASES[case]
    loss = sd.Loss(expr, vars=vars_)
    rng = np.random.default_rng(seed)
    return loss, centre + rng.uniform(-half, half, size=shape + (loss.dim,))


@pytest.mark.parametrize("case", sorted(CASES))
def test_derivatives_against_finite_differences(case):
    loss, W = points(case, (20,))
    g = loss.grad(W)
    close(g, central(loss.value, W))
    Hs = loss.hessian(W)
    close(Hs, central(loss.grad, W))           # H[..., j, i] = d grad_i / d w_j (symmetric)
    np.testing.assert_allclose(Hs, np.swapaxes(Hs, -1, -2), rtol=0, atol=0)
    rng = np.random.default_rng(1)
    U, V = rng.normal(size=(2,) + W.shape)
    T = loss.third(W, U, V)
    dH = (loss.hessian(W + H * V) - loss.hessian(W - H * V)) / (2 * H)
    close(T, np.einsum("...ij,...j->...i", dH, U))


def test_third_is_symmetric_in_directions_and_broadcasts():
    loss, W = points("trig3d", (7,))
    rng = np.random.default_rng(2)
    U, V = rng.normal(size=(2,) + W.shape)
    np.testing.assert_allclose(loss.third(W, U, V), loss.third(W, V, U), rtol=1e-12, atol=1e-12)
    # one direction for every point broadcasts against W
    np.testing.assert_allclose(loss.third(W, U[0], V[0]),
                               loss.third(W, np.broadcast_to(U[0], W.shape),
                                          np.broadcast_to(V[0], W.shape)), rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 1, 3)])
def test_any_leading_batch_shape(shape):
    loss, W = points("trig3d", shape, seed=3)
    flat = W.reshape(-1, loss.dim)
    assert loss.value(W).shape == shape
    assert loss.grad(W).shape == shape + (3,)
    assert loss.hessian(W).shape == shape + (3, 3)
    assert loss.third(W, W, W).shape == shape + (3,)
    expected = np.array([loss.value(w) for w in flat]).reshape(shape)
    np.testing.assert_array_equal(loss.value(W), expected)
    np.testing.assert_array_equal(loss.grad(W).reshape(-1, 3), loss.grad(flat))
    np.testing.assert_array_equal(loss.hessian(W).reshape(-1, 3, 3), loss.hessian(flat))


def test_values_match_sympy_and_accept_lists_and_ints():
    loss = sd.Loss("(x**2 - 1)**2 + 2*y**2 + 0.5*x*y")
    assert loss.value([1, 2]) == pytest.approx(0.0 + 8.0 + 1.0)
    x, y = loss.variables
    for w in [(0.3, -1.2), (2.0, 0.5)]:
        assert loss.value(w) == pytest.approx(float(loss.expr.subs({x: w[0], y: w[1]})), rel=1e-14)


def test_variables_sorted_or_given():
    assert sd.Loss("z*a + b**2 + a").names == ("a", "b", "z")
    loss = sd.Loss("z*a + b**2 + a", vars=("z", "b", "a"))
    assert loss.names == ("z", "b", "a") and loss.dim == 3
    assert loss.grad([1.0, 2.0, 3.0]) == pytest.approx([3.0, 4.0, 2.0])
    assert sd.Loss("x**2", vars="x").names == ("x",)
    x, y = sympy.symbols("x y")
    assert sd.Loss(x**2 + y, vars=[y, x]).grad([0.0, 3.0]) == pytest.approx([1.0, 6.0])


def test_parameters_bound_by_keyword():
    loss = sd.Loss("(x**2 - 1)**2 + c*x + y**2", c=0.25)
    assert loss.names == ("x", "y")
    assert "c" not in {s.name for s in loss.expr.free_symbols}
    assert loss.value([2.0, 1.0]) == pytest.approx(9.0 + 0.5 + 1.0)
    assert loss.grad([2.0, 1.0]) == pytest.approx([24.0 + 0.25, 2.0])


def test_time_dependent_parameter():
    loss = sd.Loss("(x - c)**2 + y**2", c=lambda t: 2.0 * t)
    assert loss.names == ("x", "y")
    W = np.array([[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(loss.value(W, t=0.5), [1.0 + 1.0, 0.0])
    np.testing.assert_allclose(loss.value(W), [1.0, 1.0])              # t = 0 by default
    np.testing.assert_allclose(loss.grad(W, t=1.0), [[-4.0, 2.0], [-2.0, 0.0]])
    assert loss.parameter_values(0.25) == (0.5,)
    # the modified loss keeps the time dependence
    m = loss.modified(0.1)
    np.testing.assert_allclose(m.value(W, t=0.5), loss.value(W, t=0.5)
                               + 0.1 / 4 * np.sum(loss.grad(W, t=0.5) ** 2, axis=-1), rtol=1e-13)


def test_bind():
    loss = sd.Loss("(x - c)**2 + k*y**2", c=lambda t: t, k=2.0)
    bound = loss.bind(c=0.5)
    assert bound.time_parameters == ()
    assert bound.value([0.0, 1.0]) == pytest.approx(0.25 + 2.0)
    assert loss.value([0.0, 1.0], t=0.5) == pytest.approx(bound.value([0.0, 1.0]))
    rebound = loss.bind(c=lambda t: 3 * t)
    assert rebound.value([0.0, 0.0], t=1.0) == pytest.approx(9.0)
    with pytest.raises(SymbolError, match="zz"):
        loss.bind(zz=1.0)
    with pytest.raises(SymbolError, match="k"):               # numeric: already substituted
        loss.bind(k=3.0)
    with pytest.raises(NonFiniteError, match="c"):
        loss.bind(c=float("nan"))


@pytest.mark.parametrize("name", ["E", "S", "I", "beta", "gamma", "N", "Q", "O", "pi_"])
def test_sympy_names_are_plain_symbols(name):
    loss = sd.Loss(f"{name}**2 + 3*{name}*x")
    assert set(loss.names) == {name, "x"}
    i = loss.names.index(name)
    w = np.array([0.0, 0.0])
    w[i] = 2.0
    w[1 - i] = 1.0
    assert loss.value(w) == pytest.approx(4.0 + 6.0)
    assert sd.Loss(f"(x - {name})**2", **{name: 1.5}).value([0.5]) == pytest.approx(1.0)


def test_modified_loss_is_definition(lr=0.3):
    loss, W = points("trig3d", (4, 5), seed=4)
    m = loss.modified(lr)
    assert isinstance(m, sd.Loss) and m.names == loss.names
    g = loss.grad(W)
    np.testing.assert_allclose(m.value(W), loss.value(W) + lr / 4 * np.sum(g**2, axis=-1),
                               rtol=1e-12, atol=1e-12)
    # gradient of the modified loss: grad C + lr/2 H grad C
    np.testing.assert_allclose(m.grad(W), g + lr / 2 * np.einsum("...ij,...j->...i", loss.hessian(W), g),
                               rtol=1e-11, atol=1e-11)


# --- bad input ------------------------------------------------------------------------

def test_unbound_symbol_is_named():
    with pytest.raises(SymbolError, match=r"\bc\b"):
        sd.Loss("(x - c)**2", vars=("x",))
    with pytest.raises(SymbolError, match="q"):
        sd.Loss("x**2 + q*w", vars=("x", "w"))


def test_parameter_not_in_expression():
    with pytest.raises(SymbolError, match="c"):
        sd.Loss("x**2 + y**2", c=1.0)


def test_variable_given_as_parameter():
    with pytest.raises(SymbolError, match="x"):
        sd.Loss("x**2 + y**2", vars=("x", "y"), x=1.0)


def test_non_scalar_expression():
    x, y = sympy.symbols("x y")
    with pytest.raises(SymbolError, match="scalar"):
        sd.Loss(sympy.Matrix([x**2, y**2]))
    with pytest.raises(SymbolError):
        sd.Loss([x**2, y])


def test_unparsable_string():
    with pytest.raises(SymbolError, match="parse"):
        sd.Loss("x**2 + (y")
    with pytest.raises(SymbolError, match="parse"):
        sd.Loss("x ** * 2")


def test_wrong_trailing_dimension():
    loss = sd.Loss("(x**2 - 1)**2 + 2*y**2")
    with pytest.raises(ShapeError) as info:
        loss.grad(np.zeros((5, 3)))
    msg = str(info.value)
    assert "2" in msg and "(5, 3)" in msg
    with pytest.raises(ShapeError, match="trailing dimension 2"):
        loss.value(1.0)
    with pytest.raises(ShapeError, match="direction"):
        loss.third(np.zeros((4, 2)), np.zeros((4, 3)), np.zeros((4, 2)))


def test_nan_input_names_index():
    loss = sd.Loss("(x**2 - 1)**2 + 2*y**2")
    W = np.zeros((4, 2))
    W[2, 1] = np.nan
    with pytest.raises(NonFiniteError, match=r"\(2, 1\)"):
        loss.grad(W)
    W[2, 1] = np.inf
    with pytest.raises(NonFiniteError, match=r"\(2, 1\)"):
        loss.value(W)


def test_non_finite_parameter():
    with pytest.raises(NonFiniteError, match="c"):
        sd.Loss("(x - c)**2", c=float("nan"))
    with pytest.raises(NonFiniteError, match="c"):
        sd.Loss("(x - c)**2", c=float("inf"))


def test_abs_loss_compiles():
    """Derivatives of Abs contain DiracDelta; kernels use the a.e. value 0."""
    loss = sd.Loss("Abs(x - y) + x**2")
    W = np.array([[1.0, 2.0], [3.0, -1.0]])
    np.testing.assert_allclose(loss.value(W), [2.0, 13.0])
    np.testing.assert_allclose(loss.grad(W), [[1.0, 1.0], [7.0, -1.0]])
    np.testing.assert_allclose(loss.hessian(W), [[[2.0, 0.0], [0.0, 0.0]]] * 2)


@pytest.mark.parametrize("name", ["out", "W", "u", "math", "np"])
def test_time_parameter_names_do_not_clash_with_kernel_arguments(name):
    loss = sd.Loss(f"(x - {name})**2 + y**2", **{name: lambda t: 2 * t})
    np.testing.assert_allclose(loss.value([1.0, 1.0], t=0.25), 1.25)
    np.testing.assert_allclose(loss.grad([1.0, 1.0], t=0.25), [1.0, 2.0])
    np.testing.assert_allclose(loss.third([1.0, 1.0], [1.0, 0.0], [1.0, 0.0], t=0.25), [0.0, 0.0])


def test_non_finite_time_parameter_value():
    loss = sd.Loss("(x - c)**2", c=lambda t: 1.0 / t)
    assert loss.value([0.0], t=0.5) == pytest.approx(4.0)
    with pytest.raises(NonFiniteError, match=r"c\(t=0.0\)"):
        sd.Loss("(x - c)**2", c=lambda t: np.inf * t).value([0.0])


def test_pickle_after_compiling():
    """Losses travel to worker processes (sweeps): compiled modules are dropped and re-imported."""
    import pickle
    loss = sd.Loss("(x**2 - 1)**2 + 2*y**2 + 0.5*x*y")
    W = np.array([[0.5, 1.0], [1.0, -2.0]])
    g = loss.grad(W)
    U = np.ones_like(W)
    T = loss.third(W, U, U)
    copy = pickle.loads(pickle.dumps(loss))
    np.testing.assert_array_equal(copy.grad(W), g)
    np.testing.assert_array_equal(copy.third(W, U, U), T)
    field = loss.modified_field(0.1, 1)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(field))(W), field(W))


def test_parameter_table_matches_pointwise_values():
    """Vectorising and scalar-only callables give the table of parameter_values, row by row."""
    import math

    loss = sd.Loss("(x**2 - 1)**2 + c*x + d*x**2", c=lambda t: 0.5 * np.sin(4 * t), d=lambda t: math.cos(t))
    times = np.linspace(0.0, 2.0, 11)
    table = loss.parameter_table(times)
    assert table.shape == (11, 2)
    np.testing.assert_array_equal(table, [loss.parameter_values(t) for t in times])
    bad = sd.Loss("x**2 + c*x", c=lambda t: np.where(t > 1.0, np.nan, t))
    with pytest.raises(NonFiniteError, match="c"):
        bad.parameter_table(times)
