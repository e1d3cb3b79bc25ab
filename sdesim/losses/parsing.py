"""Turning user strings into sympy expressions with every name a real symbol."""

from __future__ import annotations

import ast
import difflib
import re

import sympy
from sympy.parsing.sympy_parser import TokenError, parse_expr, standard_transformations

from sdesim.errors import LossSyntaxError, SymbolError

FUNCTIONS = {
    name: getattr(sympy, name)
    for name in ("exp", "log", "sqrt", "sin", "cos", "tan", "sinh", "cosh", "tanh",
                 "atan", "asin", "acos", "atan2", "erf", "Abs", "Min", "Max", "sign")
}
FUNCTIONS.update(abs=sympy.Abs, Float=sympy.Float, Integer=sympy.Integer, Rational=sympy.Rational)
_GLOBALS = {**FUNCTIONS, "pi": sympy.pi, "Symbol": sympy.Symbol}

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(r"\w+|\*\*|\S")
_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.UAdd, ast.USub)


def parse(text) -> sympy.Expr:
    """Parse ``text`` (a string or sympy expression) into a scalar sympy expression.

    Every identifier that is not a known function becomes a real ``Symbol``, so
    names such as ``E``, ``S``, ``I``, ``beta`` or ``gamma`` mean symbols, not
    sympy constants or functions. A string may use numbers, names, ``+ - * / **``,
    parentheses and calls of the functions in `FUNCTIONS`; anything else raises
    `LossSyntaxError` (a `ParseError`) naming the offending token and its position.
    """
    if isinstance(text, sympy.MatrixBase) or isinstance(text, (list, tuple)):
        raise SymbolError(f"loss must be a scalar expression, got a {type(text).__name__}")
    if isinstance(text, sympy.Basic):
        expr = text
    elif isinstance(text, str):
        _check_syntax(text)
        local = {name: sympy.Symbol(name, real=True)
                 for name in set(_IDENTIFIER.findall(text)) if name not in _GLOBALS}
        try:
            expr = parse_expr(text, local_dict=local, global_dict=dict(_GLOBALS),
                              transformations=standard_transformations)
        except (SyntaxError, TypeError, TokenError, ValueError) as exc:
            raise LossSyntaxError(f"cannot parse loss expression {text!r}: {exc}") from None
    elif isinstance(text, (int, float)):
        expr = sympy.Float(text)
    else:
        raise SymbolError(f"loss must be a string or sympy expression, got {type(text).__name__}")
    if not isinstance(expr, sympy.Expr) or isinstance(expr, sympy.MatrixBase):
        raise SymbolError(f"loss must be a scalar expression, got {expr!r}")
    return _realify(expr)


def _check_syntax(text):
    """Raise `LossSyntaxError` at the first token of ``text`` that is not arithmetic on names and numbers."""
    if "^" in text:
        _fail(text, text.index("^"), "'^' is not a power: write '**' (x**2)")
    body = text.lstrip()
    shift = len(text) - len(body)
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as exc:
        at = _offset(body, exc.lineno, exc.offset - 1) if exc.offset else len(body)
        _fail(text, shift + at, exc.msg)
    for node in ast.walk(tree.body):
        problem = _problem(node)
        if problem:
            _fail(text, shift + _position(body, node), problem)


def _problem(node):
    """Why ``node`` may not appear in a loss expression, or ``None``."""
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        return None if isinstance(node.op, _OPERATORS) else f"operator {ast.unparse(node)!r} is not allowed"
    if isinstance(node, ast.Call):
        return _call_problem(node)
    if isinstance(node, ast.Constant):
        ok = isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
        return None if ok else f"constant {node.value!r} is not a number"
    if isinstance(node, (ast.Name, ast.Load, ast.operator, ast.unaryop)):
        return None
    return f"{ast.unparse(node)!r} is not allowed in a loss expression"


def _call_problem(node):
    name = ast.unparse(node.func)
    if name not in FUNCTIONS:
        close = difflib.get_close_matches(name, FUNCTIONS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown function {name!r} ({hint}known: {', '.join(FUNCTIONS)})"
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        return f"{name}() takes positional arguments only"
    return None


def _position(text, node):
    """Index in ``text`` of ``node``'s operator (after its left operand) or of its start."""
    left = getattr(node, "left", None)
    if left is None:
        return _offset(text, node.lineno, node.col_offset)
    end = _offset(text, left.end_lineno, left.end_col_offset)
    return re.compile(r"[\s)]*").match(text, end).end()


def _offset(text, lineno, col):
    """Index in ``text`` of line ``lineno`` (1-based), column ``col`` (0-based)."""
    lines = text.splitlines(keepends=True)
    return sum(len(line) for line in lines[:lineno - 1]) + max(col, 0)


def _fail(text, pos, reason):
    match = _TOKEN.match(text, pos)
    token = repr(match.group()) if match else "end of string"
    raise LossSyntaxError(f"cannot parse loss expression {text!r} at position {pos} ({token}): {reason}")


def _realify(expr: sympy.Expr) -> sympy.Expr:
    """Replace plain symbols by real symbols of the same name."""
    return expr.xreplace({s: sympy.Symbol(s.name, real=True)
                          for s in expr.free_symbols if not s.is_real})


def symbol(name) -> sympy.Symbol:
    return sympy.Symbol(name if isinstance(name, str) else name.name, real=True)
