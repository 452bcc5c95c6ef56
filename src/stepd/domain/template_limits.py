"""A Jinja2 sandbox whose templates cannot take the memory or the CPU of the server.

Jinja's own sandbox stops a template from reaching code, not from computing too much:
`{{ 'a' * 150000000 }}` allocates 150 MB, `{{ 10 ** 5000000 }}` takes minutes of CPU,
and two nested loops over `range(100000)` run ten billion iterations. Here every way
a template makes a large value is checked *before* the value is made, against the cap
on a rendered value (`MAX_OUTPUT`):

- the operators `*`, `**`, `+`, `%` (intercepted: Jinja's `intercepted_binops`) and `~`
  (the code generator's concatenation);
- the filters and the string methods that widen their input (`center`, `indent`,
  `replace`, `join`, `format`, `ljust`, ...), whose arguments are checked, and every
  filter's and method's result;
- `range()` (at most `MAX_RANGE` items) and the iterations of all the `for` loops of one
  render together (`MAX_ITERATIONS`);
- integers: at most `MAX_INT_BITS` bits from any operator.

A value counts by the size of its text (a list by its items'), walked only up to the
cap: a list that repeats one string many times is as large as its text would be.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import wraps
from string import Formatter
from typing import Any

from jinja2 import Environment, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

MAX_OUTPUT = 100_000  # characters of one rendered value, and of any value made on the way
# characters of a value handed to a filter or a call: larger than MAX_OUTPUT, so that an
# event's long param can still be measured (`|length`), but bounded, because a list that
# holds one list many times has a text far larger than its memory
MAX_INPUT = 10 * MAX_OUTPUT
MAX_RANGE = 10_000  # items of one range()
MAX_ITERATIONS = 100_000  # loop iterations of one render, every loop together
MAX_INT_BITS = 14_000  # ~4,200 decimal digits: what Python still prints (4,300 digits)


class LimitExceeded(ArithmeticError):
    """A template asked for more than the limits allow; the message says which."""


def text_size(value: object, limit: int = MAX_OUTPUT) -> int:
    """About how many characters `value` takes as text; any number over `limit` once it
    is known to be larger (the walk stops there, so it costs at most `limit` steps)."""
    if type(value) is str:  # the common case, without the walk
        return len(value)
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, bool) or item is None or isinstance(item, float | Undefined):
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            stack.extend(item)
        elif isinstance(item, Namespace):
            stack.append(object.__getattribute__(item, "_Namespace__attrs"))
        else:
            total += 16  # a loop, a cycler, a range: small
        if total > limit:
            return total
    return total


def _refuse(what: str) -> LimitExceeded:
    return LimitExceeded(f"{what} would be over the limit of {MAX_OUTPUT} characters")


def _check_size(value: object, what: str, limit: int = MAX_OUTPUT) -> None:
    if text_size(value, limit) > limit:
        raise LimitExceeded(f"{what} would be over the limit of {limit} characters")


def _check_int(value: object) -> None:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise LimitExceeded(f"an integer would be over {MAX_INT_BITS} bits")


def _count(value: object, what: str) -> int:
    """An argument that says how many characters or items to make."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OUTPUT:
        raise _refuse(what)
    return value if isinstance(value, int) else 0


# A printf or str.format width or precision: the digits that follow '%' flags, ':' or '.'.
_PRINTF_SPEC = re.compile(r"%[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")
_FORMAT_NUMBER = re.compile(r"\d+")


def _check_printf(fmt: str, args: object) -> None:
    for match in _PRINTF_SPEC.finditer(fmt):
        for part in match.groups():
            if part and part != "*" and int(part) > MAX_OUTPUT:
                raise _refuse("a formatted value")
    if "*" in fmt:  # widths taken from the arguments
        for arg in args if isinstance(args, tuple) else (args,):
            _count(arg, "a formatted value")


def _check_format(fmt: str) -> None:
    try:
        fields = list(Formatter().parse(fmt))
    except ValueError:
        return  # str.format will refuse it itself
    for _, _, spec, _ in fields:
        if spec and any(int(n) > MAX_OUTPUT for n in _FORMAT_NUMBER.findall(spec)):
            raise _refuse("a formatted value")


def _check_replace(text: object, old: object, new: object, count: object = -1) -> None:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    times = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    if len(text) + times * (len(new) - len(old)) > MAX_OUTPUT:
        raise _refuse("a replaced string")


def _check_join(separator: object, items: Iterable[object]) -> list[object]:
    listed = list(items)
    size = text_size(listed) + (len(separator) if isinstance(separator, str) else 0) * len(listed)
    if size > MAX_OUTPUT:
        raise _refuse("a joined string")
    return listed


# What each widening filter or string method would make, checked from its arguments.
def _pre_filter(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    value, rest = (args[0], args[1:]) if args else (None, ())
    if name == "center":
        _count(rest[0] if rest else kwargs.get("width", 80), "a centred string")
    elif name == "indent":
        width = rest[0] if rest else kwargs.get("width", 4)
        per_line = len(width) if isinstance(width, str) else _count(width, "an indented string")
        lines = value.count("\n") + 1 if isinstance(value, str) else 1
        if lines * per_line > MAX_OUTPUT:
            raise _refuse("an indented string")
    elif name in ("batch", "slice"):
        _count(rest[0] if rest else 0, f"the {name} filter's lists")
    elif name == "round":
        _count(rest[0] if rest else kwargs.get("precision", 0), "a rounded number")
    elif name == "replace" and len(rest) >= 2:
        _check_replace(value, rest[0], rest[1], rest[2] if len(rest) > 2 else -1)
    elif name == "join" and value is not None and not isinstance(value, str):
        separator = rest[0] if rest else kwargs.get("d", "")
        args = (_check_join(separator, value), *rest)
    elif name == "format" and isinstance(value, str):
        _check_printf(value, tuple(rest))
    elif name == "wordwrap":
        _count(rest[0] if rest else kwargs.get("width", 79), "a wrapped string")
    return args


def _pre_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    wrapped = getattr(method, "__wrapped__", None)  # the sandbox's str.format wrapper
    if wrapped is not None and isinstance(getattr(wrapped, "__self__", None), str):
        _check_format(wrapped.__self__)
        return args
    if not isinstance(owner, str):
        return args
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _count(args[0], "a padded string")
    elif name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        if owner.count("\t") * _count(tab, "an expanded string") > MAX_OUTPUT:
            raise _refuse("an expanded string")
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
    elif name == "join" and args:
        return (_check_join(owner, args[0]), *args[1:])
    elif name in ("translate", "maketrans"):
        raise LimitExceeded(f"str.{name} is not available in templates")
    return args


_budget: contextvars.ContextVar[list[int]] = contextvars.ContextVar("stepd_template_loops")


def loop_budget() -> contextvars.Token[list[int]]:
    """Start counting one render's loop iterations (undo with `_budget.reset`)."""
    return _budget.set([MAX_ITERATIONS])


def end_loop_budget(token: contextvars.Token[list[int]]) -> None:
    _budget.reset(token)


def _bounded_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    left = _budget.get([MAX_ITERATIONS])
    for item in iterable:
        left[0] -= 1
        if left[0] < 0:
            raise LimitExceeded(f"the loops of one template ran over {MAX_ITERATIONS} times")
        yield item


def _safe_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise LimitExceeded(f"range() would have {len(numbers)} items; at most {MAX_RANGE}")
    return numbers


def _bounded_join(parts: Iterable[object]) -> str:
    listed = list(parts)
    if sum(text_size(p) for p in listed) > MAX_OUTPUT:
        raise _refuse("a joined string (~)")
    return "".join(map(str, listed))


class _Generator(CodeGenerator):
    """Jinja's code generator, with `~` and `for` going through the environment's limits."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        node.iter = nodes.Call(
            nodes.EnvironmentAttribute("bounded_iter"), [node.iter], [], None, None
        )
        super().visit_For(node, frame)


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        # Filters given the environment or the context get it first: the value follows.
        lead = 1 if args and isinstance(args[0], Environment | Context | EvalContext) else 0
        for arg in (*args[lead:], *kwargs.values()):
            _check_size(arg, f"the {name} filter's input", MAX_INPUT)
        args = (*args[:lead], *_pre_filter(name, args[lead:], kwargs))
        result = function(*args, **kwargs)
        _check_size(result, f"the {name} filter's result")
        return result

    return bounded


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every way to make a large value bounded (see module)."""

    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options, finalize=self._finalize)
        self.globals["range"] = _safe_range
        self.globals.pop("lipsum", None)  # lorem ipsum on demand: CPU, and no use here
        self.filters = {n: _bounded_filter(n, f) for n, f in self.filters.items()}
        self.bounded_join = _bounded_join
        self.bounded_iter = _bounded_iter

    @staticmethod
    def _finalize(value: object) -> object:
        _check_size(value, "a printed value")
        return value

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """`left operator right`, refused before it is computed when too large."""
        if operator == "*":
            for times, seq in ((left, right), (right, left)):
                if (
                    isinstance(times, int)
                    and not isinstance(seq, int | float)
                    and max(times, 0) * text_size(seq) > MAX_OUTPUT
                ):
                    raise _refuse("a repeated value")
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and left.bit_length() + right.bit_length() > MAX_INT_BITS
            ):
                raise LimitExceeded(f"a product would be over {MAX_INT_BITS} bits")
        elif operator == "**":
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and right > 0
                and abs(left) > 1
                and min(right, MAX_INT_BITS + 1) * left.bit_length() > MAX_INT_BITS
            ):
                raise LimitExceeded(f"a power would be over {MAX_INT_BITS} bits")
        elif operator == "+":
            if not isinstance(left, int | float) and text_size(left) + text_size(right) > (
                MAX_OUTPUT
            ):
                raise _refuse("a sum")
        elif operator == "%" and isinstance(left, str):
            _check_size(right, "a formatted value's arguments")
            _check_printf(left, right)
        result = super().call_binop(context, operator, left, right)
        _check_int(result)
        return result

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """A call from a template (a method, a global), its arguments and result bounded."""
        if __obj is _bounded_iter:  # a `for` loop (see _Generator): counted, not sized
            return _bounded_iter(*args)
        for arg in (*args, *kwargs.values()):
            _check_size(arg, "an argument", MAX_INPUT)
        args = _pre_method(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        if not isinstance(result, Iterator):  # a generator is sized where it is used
            _check_size(result, "a call's result")
        return result
