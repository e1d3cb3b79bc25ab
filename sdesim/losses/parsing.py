"""Turning user strings into sympy expressions with every name a real symbol."""

from __future__ import annotations

import re

import sympy
from sympy.parsing.sympy_parser import TokenError, parse_expr, standard_transformations

from sdesim.errors import SymbolError

FUNCTIONS = {
    name: getattr(sympy, name)
    for name in ("exp", "log", "sqrt", "sin", "cos", "tan", "sinh", "cosh", "tanh",
                 "atan", "asin", "acos", "atan2", "erf", "Abs", "Min", "Max", "sign")
}
FUNCTIONS.update(abs=sympy.Abs, pi=sympy.pi, Float=sympy.Float, Integer=sympy.Integer,
                 Rational=sympy.Rational, Symbol=sympy.Symbol)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse(text) -> sympy.Expr:
    """Parse ``text`` (a string or sympy expression) into a scalar sympy expression.

    Every identifier that is not a known function becomes a real ``Symbol``, so
    names such as ``E``, ``S``, ``I``, ``beta`` or ``gamma`` mean symbols, not
    sympy constants or functions.
    """
    if isinstance(text, sympy.MatrixBase) or isinstance(text, (list, tuple)):
        raise SymbolError(f"loss must be a scalar expression, got a {type(text).__name__}")
    if isinstance(text, sympy.Basic):
        expr = text
    elif isinstance(text, str):
        local = {name: sympy.Symbol(name, real=True)
                 for name in set(_IDENTIFIER.findall(text)) if name not in FUNCTIONS}
        try:
            expr = parse_expr(text, local_dict=local, global_dict=dict(FUNCTIONS),
                              transformations=standard_transformations)
        except (SyntaxError, TypeError, TokenError, ValueError) as exc:
            raise SymbolError(f"cannot parse loss expression {text!r}: {exc}") from None
    elif isinstance(text, (int, float)):
        expr = sympy.Float(text)
    else:
        raise SymbolError(f"loss must be a string or sympy expression, got {type(text).__name__}")
    if not isinstance(expr, sympy.Expr) or isinstance(expr, sympy.MatrixBase):
        raise SymbolError(f"loss must be a scalar expression, got {expr!r}")
    return _realify(expr)


def _realify(expr: sympy.Expr) -> sympy.Expr:
    """Replace plain symbols by real symbols of the same name."""
    return expr.xreplace({s: sympy.Symbol(s.name, real=True)
                          for s in expr.free_symbols if not s.is_real})


def symbol(name) -> sympy.Symbol:
    return sympy.Symbol(name if isinstance(name, str) else name.name, real=True)
