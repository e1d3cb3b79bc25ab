"""Named loss landscapes from the SGD-dynamics literature, with their critical points.

Every function returns a :class:`Landscape`: the loss (``landscape.loss``, pass it to
``sd.simulate`` or ``sd.FokkerPlanck``), its known critical points (locations refined
by Newton's method to ``|grad C| < 1e-10`` or exact), a plotting box and a citation.

>>> from sdesim import catalog
>>> mb = catalog.muller_brown()
>>> [round(p.value, 2) for p in mb.minima]
[-146.7, -108.17, -80.77]
>>> catalog.names()[:3]
['double_well_1d', 'tilted_double_well_1d', 'double_well_2d']

Parameters are bound by keyword (``catalog.get("tilted_double_well_1d", c=0.4)``);
critical points of parametrised landscapes are recomputed for the values given.
The sympy-based classes are imported only when a landscape is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np

from sdesim.errors import ConfigError
from sdesim.losses.base import BaseLoss

__all__ = ["CriticalPoint", "Landscape", "MinimaManifold", "names", "get", "double_well",
           "double_well_1d", "tilted_double_well_1d", "double_well_2d", "tilted_double_well_2d",
           "muller_brown", "rosenbrock", "himmelblau", "six_hump_camel", "styblinski_tang",
           "saddle", "monkey_saddle", "factorisation", "sharp_flat", "linear_regression",
           "logistic_regression"]


@dataclass(frozen=True)
class CriticalPoint:
    """A point where ``grad C = 0``.

    Attributes
    ----------
    location : tuple of float
        Coordinates, in the order of the loss variables.
    value : float
        ``C(location)``.
    index : int or None
        Number of negative Hessian eigenvalues: 0 for a minimum, ``dim`` for a
        maximum, in between for a saddle. ``None`` for a degenerate point that is
        neither a minimum nor a maximum but whose Hessian does not show it (monkey saddle).
    name : str
        Short label, e.g. ``"minimum A"``.
    degenerate : bool
        ``True`` when the Hessian is singular there (non-isolated minima, higher-order saddles).
    """

    location: tuple
    value: float
    index: int | None
    name: str
    degenerate: bool = False

    @property
    def kind(self) -> str:
        """``"minimum"``, ``"saddle"`` or ``"maximum"``."""
        if self.index == 0:
            return "minimum"
        if self.index == len(self.location):
            return "maximum"
        return "saddle"


@dataclass(frozen=True)
class MinimaManifold:
    """A connected set of non-isolated minima, parametrised by one coordinate ``s``.

    Attributes
    ----------
    description : str
        The set as an equation, e.g. ``"x * y = 1"``.
    point : callable
        ``s -> location`` (tuple) on the manifold.
    sharpness : callable
        ``s -> `` largest Hessian eigenvalue at ``point(s)``.
    """

    description: str
    point: Callable[[float], tuple]
    sharpness: Callable[[float], float]


@dataclass(frozen=True, eq=False)
class Landscape(BaseLoss):
    """A named loss with its critical points.

    Attributes
    ----------
    name : str
    loss : sdesim.Loss or sdesim.FiniteSumLoss
        The loss to simulate; ``value``, ``grad``, ``hessian`` and ``dim`` are forwarded.
    critical_points : tuple of CriticalPoint
    bounds : tuple of (float, float)
        A plotting box, one ``(low, high)`` per variable, containing the critical points.
    description : str
        Formula and what the landscape is for.
    reference : str
        Where it comes from / is used.
    params : Mapping
        The parameter values it was built with.
    minima_manifold : MinimaManifold or None
        For landscapes with non-isolated minima.
    """

    name: str
    loss: object
    critical_points: tuple
    bounds: tuple
    description: str
    reference: str
    params: Mapping = field(default_factory=dict)
    minima_manifold: MinimaManifold | None = None

    def __post_init__(self):
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @property
    def dim(self) -> int:
        return self.loss.dim

    @property
    def minima(self) -> tuple:
        """Critical points of index 0, in stored order."""
        return tuple(p for p in self.critical_points if p.kind == "minimum")

    @property
    def saddles(self) -> tuple:
        """Saddles, including degenerate ones (``index=None``)."""
        return tuple(p for p in self.critical_points if p.kind == "saddle")

    @property
    def maxima(self) -> tuple:
        return tuple(p for p in self.critical_points if p.kind == "maximum")

    @property
    def global_minimum(self) -> CriticalPoint:
        """The stored minimum of lowest value."""
        return min(self.minima, key=lambda p: p.value)

    @property
    def kind(self) -> str:
        return self.loss.kind

    @property
    def per_sample_noise(self) -> bool:
        return self.loss.per_sample_noise

    @property
    def names(self) -> tuple[str, ...]:
        return self.loss.names

    def value(self, W, t: float = 0.0):
        """``loss.value(W, t)``: (..., dim) -> (...)."""
        return self.loss.value(W, t)

    def grad(self, W, t: float = 0.0):
        """``loss.grad(W, t)``: (..., dim) -> (..., dim)."""
        return self.loss.grad(W, t)

    def hessian(self, W, t: float = 0.0):
        """``loss.hessian(W, t)``: (..., dim) -> (..., dim, dim)."""
        return self.loss.hessian(W, t)

    def noise_covariance_at(self, W, t: float = 0.0):
        return self.loss.noise_covariance_at(W, t)


# -- helpers --------------------------------------------------------------------------------------

def _loss(expr, vars, **params):
    from sdesim.losses.symbolic import Loss

    return Loss(expr, vars=vars, **params)


def _index(hess) -> int:
    return int(np.sum(np.linalg.eigvalsh(np.atleast_2d(hess)) < 0))


def _real_roots(coeffs) -> np.ndarray:
    """Real roots of a polynomial (highest degree first), polished by Newton's method, ascending."""
    coeffs = np.asarray(coeffs, dtype=float)
    deriv = np.polyder(coeffs)
    roots = np.roots(coeffs)
    scale = max(1.0, float(np.abs(roots).max(initial=0.0)))
    out = []
    for r in roots[np.abs(roots.imag) < 1e-7 * scale].real:
        for _ in range(50):
            d = np.polyval(deriv, r)
            if d == 0:
                break
            step = np.polyval(coeffs, r) / d
            r -= step
            if abs(step) <= 1e-16 * max(1.0, abs(r)):
                break
        if not any(abs(r - q) < 1e-9 * scale for q in out):
            out.append(float(r))
    return np.array(sorted(out))


def _points(entries):
    """CriticalPoints from ``(location, value, index, name)`` rows."""
    return tuple(CriticalPoint(tuple(float(v) for v in loc), float(val), idx, name)
                 for loc, val, idx, name in entries)


# -- double wells ---------------------------------------------------------------------------------

_DW_REF = ("Symmetric bistable potential of Kramers escape theory (Kramers 1940; Risken, "
           "The Fokker-Planck Equation, 1989; Haenggi, Talkner & Borkovec, Rev. Mod. Phys. 62, 251, 1990).")


def double_well_1d() -> Landscape:
    """``C(x) = (x^2 - 1)^2``: minima at ``x = +-1`` (``C = 0``, ``C'' = 8``), maximum at 0 (``C = 1``, ``C'' = -4``)."""
    cps = _points([((-1.0,), 0.0, 0, "left minimum"), ((1.0,), 0.0, 0, "right minimum"),
                   ((0.0,), 1.0, 1, "barrier")])
    return Landscape("double_well_1d", _loss("(x**2 - 1)**2", ("x",)), cps, ((-2.0, 2.0),),
                     "C(x) = (x^2 - 1)^2: symmetric double well, barrier height 1.", _DW_REF)


def tilted_double_well_1d(c: float = 0.25) -> Landscape:
    """``C(x) = (x^2 - 1)^2 + c x``: for ``|c| < 8 / (3 sqrt 3)`` two minima of different depth and a barrier.

    Critical points are the real roots of ``4x^3 - 4x + c = 0``, polished to machine precision.
    """
    roots = _real_roots([4.0, 0.0, -4.0, c])
    entries = []
    for r in roots:
        idx = _index(12 * r * r - 4)
        label = "barrier" if idx else ("left minimum" if r < 0 else "right minimum")
        entries.append(((r,), (r * r - 1) ** 2 + c * r, idx, label))
    return Landscape("tilted_double_well_1d", _loss("(x**2 - 1)**2 + c*x", ("x",), c=c), _points(entries),
                     ((-2.0, 2.0),), f"C(x) = (x^2 - 1)^2 + c x with c = {c}: asymmetric double well "
                     "(metastable and stable minimum).", _DW_REF, {"c": c})


def _dw2d_points(c):
    # dC/dy = 4y + x/2 = 0 gives y = -x/8; then dC/dx = 4x^3 - (4 + 1/16) x + c = 0.
    entries = []
    for r in _real_roots([4.0, 0.0, -4.0 - 1.0 / 16.0, c]):
        y = -r / 8.0
        val = (r * r - 1) ** 2 + 2 * y * y + 0.5 * r * y + c * r
        idx = _index([[12 * r * r - 4, 0.5], [0.5, 4.0]])
        label = "saddle" if idx else ("left minimum" if r < 0 else "right minimum")
        entries.append(((r, y), val, idx, label))
    return _points(entries)


def double_well_2d() -> Landscape:
    """sdesim's demo loss ``C(x, y) = (x^2 - 1)^2 + 2 y^2 + x y / 2``.

    Minima at ``+-(sqrt(65)/8, -sqrt(65)/64)`` with ``C = -129/4096``; saddle at the
    origin with ``C = 1`` (exact). The coupling ``x y / 2`` tilts the valley axis.
    """
    x = np.sqrt(65.0) / 8.0
    cps = _points([((-x, x / 8), -129 / 4096, 0, "left minimum"), ((x, -x / 8), -129 / 4096, 0, "right minimum"),
                   ((0.0, 0.0), 1.0, 1, "saddle")])
    return Landscape("double_well_2d", _loss("(x**2 - 1)**2 + 2*y**2 + 0.5*x*y", ("x", "y")), cps,
                     ((-2.0, 2.0), (-1.5, 1.5)),
                     "C = (x^2 - 1)^2 + 2 y^2 + 0.5 x y: 2D double well with coupled directions "
                     "(the sdesim demo loss).", _DW_REF)


def tilted_double_well_2d(c: float = 0.25) -> Landscape:
    """``C(x, y) = (x^2 - 1)^2 + 2 y^2 + x y / 2 + c x``: the demo loss tilted so one minimum is metastable.

    Critical points: ``y = -x / 8`` and ``4 x^3 - (65/16) x + c = 0``, polished to machine precision.
    """
    return Landscape("tilted_double_well_2d",
                     _loss("(x**2 - 1)**2 + 2*y**2 + 0.5*x*y + c*x", ("x", "y"), c=c), _dw2d_points(c),
                     ((-2.0, 2.0), (-1.5, 1.5)),
                     f"C = (x^2 - 1)^2 + 2 y^2 + 0.5 x y + c x with c = {c}: asymmetric 2D double well.",
                     _DW_REF, {"c": c})


def double_well(dim: int = 2) -> Landscape:
    """The untilted double well: :func:`double_well_2d` (``dim=2``, the demo loss) or :func:`double_well_1d`."""
    if dim == 1:
        return double_well_1d()
    if dim == 2:
        return double_well_2d()
    raise ConfigError(f"double_well has dim 1 or 2, got {dim}")


# -- chemistry and optimisation test functions ------------------------------------------------------

_MB = {"A": (-200, -100, -170, 15), "a": (-1, -1, -6.5, 0.7), "b": (0, 0, 11, 0.6),
       "c": (-10, -10, -6.5, 0.7), "x0": (1, 0, -0.5, -1), "y0": (0, 0.5, 1.5, 1)}


def muller_brown() -> Landscape:
    """Mueller-Brown potential, the standard test of minimum-energy paths.

    .. math:: C = \\sum_{k=1}^4 A_k \\exp\\big(a_k (x - x_k)^2 + b_k (x - x_k)(y - y_k) + c_k (y - y_k)^2\\big)

    with ``A = (-200, -100, -170, 15)``, ``a = (-1, -1, -6.5, 0.7)``, ``b = (0, 0, 11, 0.6)``,
    ``c = (-10, -10, -6.5, 0.7)``, ``x_k = (1, 0, -0.5, -1)``, ``y_k = (0, 0.5, 1.5, 1)``.
    Three minima (-146.70, -108.17, -80.77) and two saddles (-72.25, -40.66),
    located by 40-digit Newton solves.
    """
    p = _MB
    terms = [f"({p['A'][k]})*exp(({p['a'][k]})*(x - ({p['x0'][k]}))**2 + ({p['b'][k]})*(x - ({p['x0'][k]}))"
             f"*(y - ({p['y0'][k]})) + ({p['c'][k]})*(y - ({p['y0'][k]}))**2)" for k in range(4)]
    cps = _points([
        ((-0.5582236346330243, 1.4417258418046686), -146.69951720995402, 0, "minimum A"),
        ((0.6234994049308765, 0.028037758528685664), -108.16672411685235, 0, "minimum B"),
        ((-0.050010822998206056, 0.4666941048719721), -80.76781812965903, 0, "minimum C"),
        ((0.212486582000662, 0.2929883251073678), -72.24894011232522, 1, "saddle B-C"),
        ((-0.8220015587327321, 0.6243128028148713), -40.664843508657405, 1, "saddle A-C"),
    ])
    return Landscape("muller_brown", _loss(" + ".join(terms), ("x", "y")), cps, ((-1.5, 1.2), (-0.2, 2.0)),
                     "Mueller-Brown potential: three minima joined by two saddles along a curved path.",
                     "K. Mueller and L. D. Brown, Theor. Chim. Acta 53, 75 (1979); the benchmark of nudged "
                     "elastic band methods (Jonsson, Mills & Jacobsen 1998).")


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Landscape:
    """``C = (a - x)^2 + b (y - x^2)^2``: one minimum at ``(a, a^2)`` at the end of a curved narrow valley (``b > 0``)."""
    if b <= 0:
        raise ConfigError(f"rosenbrock needs b > 0, got b={b}")
    cps = _points([((a, a * a), 0.0, 0, "minimum")])
    return Landscape("rosenbrock", _loss("(a - x)**2 + b*(y - x**2)**2", ("x", "y"), a=a, b=b), cps,
                     ((a - 2.5, a + 1.5), (min(-1.0, a * a - 2.0), a * a + 2.0)),
                     f"Rosenbrock banana valley with a = {a}, b = {b}: ill-conditioned, curved minimum valley.",
                     "H. H. Rosenbrock, Comput. J. 3, 175 (1960).", {"a": a, "b": b})


def himmelblau() -> Landscape:
    """``C = (x^2 + y - 11)^2 + (x + y^2 - 7)^2``: four global minima (``C = 0``), four saddles, one maximum."""
    cps = _points([
        ((3.0, 2.0), 0.0, 0, "minimum (3)"),
        ((-2.805118086952745, 3.131312518250573), 0.0, 0, "minimum (-2.81, 3.13)"),
        ((-3.779310253377747, -3.2831859912861696), 0.0, 0, "minimum (-3.78, -3.28)"),
        ((3.5844283403304917, -1.8481265269644036), 0.0, 0, "minimum (3.58, -1.85)"),
        ((3.385154183607021, 0.07385187983774928), 13.31192627040559, 1, "saddle (3.39, 0.07)"),
        ((0.08667750455539636, 2.884254701174776), 67.71915008752615, 1, "saddle (0.09, 2.88)"),
        ((-3.0730257507643897, -0.08135304428796751), 104.0151629175581, 1, "saddle (-3.07, -0.08)"),
        ((-0.12796134673068008, -1.9537149802445763), 178.33723920192747, 1, "saddle (-0.13, -1.95)"),
        ((-0.2708445906673476, -0.9230385564799815), 181.6165215225827, 2, "maximum"),
    ])
    return Landscape("himmelblau", _loss("(x**2 + y - 11)**2 + (x + y**2 - 7)**2", ("x", "y")), cps,
                     ((-5.0, 5.0), (-5.0, 5.0)),
                     "Himmelblau's function: four equal global minima, a test of which basin a dynamic selects.",
                     "D. M. Himmelblau, Applied Nonlinear Programming, McGraw-Hill (1972).")


def six_hump_camel() -> Landscape:
    """``C = (4 - 2.1 x^2 + x^4 / 3) x^2 + x y + (4 y^2 - 4) y^2``: 15 critical points.

    Six minima (global ``C = -1.0316`` at ``+-(0.0898, -0.7126)``), seven saddles, two maxima.
    """
    rows = [
        ((0.08984201310031806, -0.7126564030207396), -1.0316284534898774, 0, "global minimum"),
        ((-0.08984201310031806, 0.7126564030207396), -1.0316284534898774, 0, "global minimum"),
        ((-1.703606714969981, 0.7960835686726251), -0.21546382438371764, 0, "minimum"),
        ((1.703606714969981, -0.7960835686726251), -0.21546382438371764, 0, "minimum"),
        ((-1.6071047529201972, -0.5686514548841314), 2.1042503103112584, 0, "minimum"),
        ((1.6071047529201972, 0.5686514548841314), 2.1042503103112584, 0, "minimum"),
        ((0.0, 0.0), 0.0, 1, "saddle"),
        ((1.1092053368047865, -0.7682680925095399), 0.5437186009781851, 1, "saddle"),
        ((-1.1092053368047865, 0.7682680925095399), 0.5437186009781851, 1, "saddle"),
        ((-1.6380679841897785, -0.22867406904439408), 2.2293571975307147, 1, "saddle"),
        ((1.6380679841897785, 0.22867406904439408), 2.2293571975307147, 1, "saddle"),
        ((-1.2960702671671092, -0.6050843880386585), 2.22947081802986, 1, "saddle"),
        ((1.2960702671671092, 0.6050843880386585), 2.22947081802986, 1, "saddle"),
        ((-1.2302298765166526, -0.16233458445899496), 2.496295351023577, 2, "maximum"),
        ((1.2302298765166526, 0.16233458445899496), 2.496295351023577, 2, "maximum"),
    ]
    return Landscape("six_hump_camel",
                     _loss("(4 - 2.1*x**2 + x**4/3)*x**2 + x*y + (4*y**2 - 4)*y**2", ("x", "y")),
                     _points(rows), ((-2.0, 2.0), (-1.1, 1.1)),
                     "Six-hump camel function: six minima of three depths, many saddles.",
                     "L. C. W. Dixon and G. P. Szegoe, Towards Global Optimisation 2, North-Holland (1978).")


def styblinski_tang() -> Landscape:
    """``C = 1/2 sum_i (x_i^4 - 16 x_i^2 + 5 x_i)`` in 2D: separable, 9 critical points.

    Per coordinate the roots of ``4 t^3 - 32 t + 5 = 0`` (two minima, one maximum); the
    global minimum is at ``x_i = -2.9035`` with ``C = -78.33``.
    """
    roots = _real_roots([4.0, 0.0, -32.0, 5.0])
    f = 0.5 * (roots ** 4 - 16 * roots ** 2 + 5 * roots)
    is_max = 12 * roots ** 2 - 32 < 0
    rows = []
    for i, r in enumerate(roots):
        for j, s in enumerate(roots):
            idx = int(is_max[i]) + int(is_max[j])
            rows.append(((r, s), f[i] + f[j], idx, ("minimum", "saddle", "maximum")[idx]))
    rows.sort(key=lambda row: (row[2], row[1]))
    rows[0] = rows[0][:3] + ("global minimum",)
    return Landscape("styblinski_tang", _loss("(x**4 - 16*x**2 + 5*x + y**4 - 16*y**2 + 5*y)/2", ("x", "y")),
                     _points(rows), ((-5.0, 5.0), (-5.0, 5.0)),
                     "Styblinski-Tang function in 2D: four minima of different depths on a grid.",
                     "M. A. Styblinski and T.-S. Tang, Neural Networks 3, 467 (1990).")


# -- saddles and symmetries --------------------------------------------------------------------------

def saddle() -> Landscape:
    """``C = x^2 - y^2``: a non-degenerate saddle at the origin (Hessian ``diag(2, -2)``)."""
    return Landscape("saddle", _loss("x**2 - y**2", ("x", "y")), _points([((0.0, 0.0), 0.0, 1, "saddle")]),
                     ((-1.0, 1.0), (-1.0, 1.0)),
                     "C = x^2 - y^2: strict saddle; noise lets SGD leave it along y.",
                     "Dauphin et al., NeurIPS 2014; Ge, Huang, Jin & Yuan, COLT 2015 (escaping saddles).")


def monkey_saddle() -> Landscape:
    """``C = x^3 - 3 x y^2``: degenerate saddle at the origin (zero Hessian, three descending valleys).

    Stored with ``index=None`` and ``degenerate=True``.
    """
    cp = (CriticalPoint((0.0, 0.0), 0.0, None, "monkey saddle", degenerate=True),)
    return Landscape("monkey_saddle", _loss("x**3 - 3*x*y**2", ("x", "y")), cp, ((-1.0, 1.0), (-1.0, 1.0)),
                     "C = x^3 - 3 x y^2: higher-order saddle that second-order methods cannot identify.",
                     "Anandkumar & Ge, COLT 2016 (escaping higher-order saddle points).")


def _fact_point(s, a):
    return (float(s), float(a / s))


def _fact_sharpness(s, a):
    return float(s * s + (a / s) ** 2)


def factorisation(a: float = 1.0) -> Landscape:
    """Scalar factorisation ``C = 1/2 (x y - a)^2``: a hyperbola of minima whose sharpness varies.

    On the manifold ``x y = a`` the Hessian is ``(y, x)^T (y, x)``: eigenvalues 0 (along the
    manifold) and ``x^2 + y^2 = s^2 + a^2 / s^2`` at ``(s, a / s)``, smallest (``2|a|``) at the
    balanced points ``|x| = |y|``. The origin is a saddle (eigenvalues ``+-a``, ``C = a^2 / 2``).
    ``landscape.minima_manifold`` gives points and sharpness along the manifold; the stored
    minima (``degenerate=True``) are representatives at ``s = +-sqrt|a|, +-2 sqrt|a|, +-sqrt|a|/2``.
    """
    if a <= 0:
        raise ConfigError(f"factorisation needs a > 0, got a={a}")
    r = np.sqrt(a)
    cps = [CriticalPoint(_fact_point(s, a), 0.0, 0, f"minimum s={s:.4g}", degenerate=True)
           for s in (r, -r, 2 * r, -2 * r, r / 2, -r / 2)]
    cps.append(CriticalPoint((0.0, 0.0), 0.5 * a * a, 1, "saddle"))
    manifold = MinimaManifold(f"x * y = {a}", partial(_fact_point, a=a), partial(_fact_sharpness, a=a))
    box = 2.5 * r
    return Landscape("factorisation", _loss("(x*y - a)**2/2", ("x", "y"), a=a), tuple(cps),
                     ((-box, box), (-box, box)),
                     f"C = (x y - a)^2 / 2 with a = {a}: rescaling symmetry (x, y) -> (k x, y / k) gives "
                     "a manifold of minima of varying sharpness; SGD noise drifts towards the flattest.",
                     "Two-layer scalar linear network (Saxe, McClelland & Ganguli, ICLR 2014); implicit "
                     "regularisation towards flat minima (Barrett & Dherin, ICLR 2021; Li, Wang & Arora, ICLR 2022).",
                     {"a": a}, manifold)


def sharp_flat(sharp: float = 16.0, flat: float = 2.0) -> Landscape:
    """1D loss with a sharp and a flat minimum of exactly equal depth.

    .. math:: C(x) = (x^2 - 1)^2 \\, g(x), \\quad g(x) = c_0 (1 + x^2) + c_1 x,
        \\quad c_0 = \\frac{k_s + k_f}{32}, \\ c_1 = \\frac{k_f - k_s}{16}.

    ``g > 0`` everywhere, so the minima are exactly ``x = -1`` (curvature ``C'' = 8 g(-1) = sharp``)
    and ``x = +1`` (``C'' = flat``), both with ``C = 0``; one barrier in between.
    """
    if not (sharp > 0 and flat > 0):
        raise ConfigError(f"sharp_flat needs positive curvatures, got sharp={sharp}, flat={flat}")
    c0, c1 = (sharp + flat) / 32.0, (flat - sharp) / 16.0
    # C' = (x^2 - 1) [4 x g + (x^2 - 1) g'] = (x^2 - 1) (6 c0 x^3 + 5 c1 x^2 + 2 c0 x - c1)
    rows = [((-1.0,), 0.0, 0, "sharp minimum"), ((1.0,), 0.0, 0, "flat minimum")]
    for r in _real_roots([6 * c0, 5 * c1, 2 * c0, -c1]):
        g = c0 * (1 + r * r) + c1 * r
        g1, g2 = 2 * c0 * r + c1, 2 * c0
        u = r * r - 1
        curv = (12 * r * r - 4) * g + 2 * (4 * r * u) * g1 + u * u * g2
        rows.append(((r,), u * u * g, _index(curv), "barrier"))
    expr = "(x**2 - 1)**2*(c0*(1 + x**2) + c1*x)"
    return Landscape("sharp_flat", _loss(expr, ("x",), c0=c0, c1=c1), _points(rows), ((-2.0, 2.0),),
                     f"Equal-depth minima at x = -1 (curvature {sharp}) and x = +1 (curvature {flat}): "
                     "the noise of SGD, not the loss value, decides where mass ends up.",
                     "Sharp versus flat minima: Hochreiter & Schmidhuber 1997; Keskar et al., ICLR 2017; "
                     "escape rates Zhu et al., ICML 2019; Xie, Sato & Sugiyama, ICLR 2021.",
                     {"sharp": sharp, "flat": flat})


# -- finite sums ---------------------------------------------------------------------------------------

def _regression_names(d):
    return tuple(f"w{j}" for j in range(d)), tuple(f"x{j}" for j in range(d))


def linear_regression(n: int = 64, d: int = 2, noise: float = 0.5, seed: int = 0) -> Landscape:
    """Least squares ``C(w) = 1/n sum_i 1/2 (w . x_i - y_i)^2`` on synthetic data (a FiniteSumLoss).

    Data from ``numpy.random.default_rng(seed)``: ``x_i ~ N(0, I_d)``, ``w_true ~ N(0, I_d)``,
    ``y_i = w_true . x_i + noise * N(0, 1)``. Variables ``w0 .. w{d-1}``; data ``{"x": X, "y": y}``
    (``X`` of shape (n, d) binds ``x0 .. x{d-1}``). The stored minimum is the exact least-squares
    solution; the Hessian is ``X^T X / n``.
    """
    from sdesim.losses.finite_sum import FiniteSumLoss

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w_true = rng.normal(size=d)
    y = X @ w_true + noise * rng.normal(size=n)
    w_hat = np.linalg.lstsq(X, y, rcond=None)[0]
    value = 0.5 * float(np.mean((X @ w_hat - y) ** 2))
    wn, xn = _regression_names(d)
    expr = f"({' + '.join(f'{w}*{x}' for w, x in zip(wn, xn))} - y)**2/2"
    loss = FiniteSumLoss(expr, params=wn, data={"x": X, "y": y})
    half = 3.0 * max(1.0, float(np.abs(w_hat).max()))
    return Landscape("linear_regression", loss, (CriticalPoint(tuple(map(float, w_hat)), value, 0, "least squares"),),
                     tuple((-half, half) for _ in range(d)),
                     f"Linear regression, n = {n}, d = {d}, noise = {noise}: quadratic loss with "
                     "state-dependent SGD noise Sigma_1(w).",
                     "Mandt, Hoffman & Blei, JMLR 18 (2017) (SGD as approximate Bayesian inference).",
                     {"n": n, "d": d, "noise": noise, "seed": seed, "w_true": tuple(map(float, w_true))})


def logistic_regression(n: int = 64, d: int = 2, seed: int = 0, l2: float = 0.01) -> Landscape:
    """L2-regularised logistic regression on synthetic data (a FiniteSumLoss).

    .. math:: C(w) = \\frac1n \\sum_i \\log(1 + e^{-y_i w \\cdot x_i}) + \\frac{\\lambda}{2} |w|^2,
        \\quad y_i \\in \\{-1, +1\\}.

    Data from ``numpy.random.default_rng(seed)``: ``x_i ~ N(0, I_d)``, ``w_true ~ N(0, 4 I_d)``,
    ``P(y_i = 1) = sigmoid(w_true . x_i)``. The regulariser ``l2 > 0`` makes the minimiser
    exist and be unique; it is stored after Newton's method converges to ``|grad C| < 1e-13``.
    """
    from sdesim.losses.finite_sum import FiniteSumLoss

    if l2 <= 0:
        raise ConfigError(f"logistic_regression needs l2 > 0 for a minimiser to exist, got l2={l2}")
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w_true = 2.0 * rng.normal(size=d)
    y = np.where(rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-X @ w_true)), 1.0, -1.0)
    w = np.zeros(d)
    for _ in range(100):
        m = y * (X @ w)
        p = 0.5 * (1.0 - np.tanh(0.5 * m))  # sigmoid(-m), stable
        grad = -(X * (y * p)[:, None]).mean(axis=0) + l2 * w
        hess = (X.T * (p * (1 - p))) @ X / n + l2 * np.eye(d)
        w = w - np.linalg.solve(hess, grad)
        if np.linalg.norm(grad) < 1e-13:
            break
    value = float(np.mean(np.logaddexp(0.0, -y * (X @ w))) + 0.5 * l2 * w @ w)
    wn, xn = _regression_names(d)
    dot = " + ".join(f"{a}*{b}" for a, b in zip(wn, xn))
    expr = f"log(1 + exp(-y*({dot}))) + l2/2*({' + '.join(f'{a}**2' for a in wn)})"
    loss = FiniteSumLoss(expr, params=wn, data={"x": X, "y": y}, l2=l2)
    half = 3.0 * max(1.0, float(np.abs(w).max()))
    return Landscape("logistic_regression", loss, (CriticalPoint(tuple(map(float, w)), value, 0, "minimiser"),),
                     tuple((-half, half) for _ in range(d)),
                     f"Logistic regression, n = {n}, d = {d}, l2 = {l2}: convex, non-quadratic finite sum.",
                     "Standard convex finite-sum benchmark of SGD analyses (e.g. Mandt, Hoffman & Blei, JMLR 2017).",
                     {"n": n, "d": d, "seed": seed, "l2": l2, "w_true": tuple(map(float, w_true))})


# -- registry ------------------------------------------------------------------------------------------

_REGISTRY = {f.__name__: f for f in (
    double_well_1d, tilted_double_well_1d, double_well_2d, tilted_double_well_2d, muller_brown, rosenbrock,
    himmelblau, six_hump_camel, styblinski_tang, saddle, monkey_saddle, factorisation, sharp_flat,
    linear_regression, logistic_regression)}


def names() -> list[str]:
    """Names accepted by :func:`get`, in catalog order."""
    return list(_REGISTRY)


def get(name: str, **params) -> Landscape:
    """Build the landscape ``name`` with keyword parameters, e.g. ``get("rosenbrock", b=10)``."""
    try:
        build = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown landscape {name!r}; known: {', '.join(_REGISTRY)}") from None
    return build(**params)
