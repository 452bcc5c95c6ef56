"""Reading request bodies: JSON, or form data where the original's users sent it."""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request

from stepd.errors import BodyTooLarge, InvalidInput, MalformedBody

MAX_DEPTH = 64
"""How deep a body may nest objects and arrays. Deeper, Python's recursive walks
(the JSON encoder, templates, pydantic) hit their recursion limit; no stepd body
needs more than a handful of levels."""


async def read_bytes(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {declared} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type == "application/x-www-form-urlencoded"


async def read_object(
    request: Request, limit: int, *, allow_form: bool = False, max_depth: int = MAX_DEPTH
) -> dict[str, object]:
    """The body as a JSON object (or, when allowed, a flat form), or a 400 saying why not.

    `max_depth` bounds the nesting; 0 leaves it unchecked, for a route that walks
    nothing recursively and refuses any nesting beyond its fixed shape itself.
    """
    raw = await read_bytes(request, limit)
    # `curl -d '{...}'` labels JSON as a form: a body that starts like JSON is read as JSON.
    if allow_form and is_form(request) and not raw.lstrip().startswith(b"{"):
        try:
            form = dict(parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError as exc:
            raise MalformedBody("the form body is not UTF-8") from exc
        _check_text(form)
        return dict(form)
    if not raw.strip():
        raise MalformedBody("the body is empty; send a JSON object")
    value = parse_json(raw, max_depth=max_depth)
    if not isinstance(value, dict):
        raise MalformedBody("the body must be a JSON object")
    return value


# 19 digits in a row may be an integer beyond 64 bits, which orjson reads as a float.
# Found by mapping every digit to 0 and looking for 19 zeros: a regex takes 15x longer.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19

_NUL_ESCAPE = b"\\u0000"  # JSON cannot hold a raw NUL byte in a string, only this escape


def parse_json(raw: bytes, *, max_depth: int = MAX_DEPTH) -> object:
    """A JSON document as the standard parser reads it, refusing what is not JSON or not
    text: NaN, Infinity, numbers out of range, integers of more than 4,300 digits,
    nesting deeper than `max_depth` (unless 0), NUL characters and lone UTF-16
    surrogates (a MalformedBody, or an InvalidInput naming the field).

    orjson reads a small body several times faster than the json module. Whatever it
    accepts (except long integers, kept for the standard parser) it reads to the same
    value, and it refuses NaN, Infinity and lone surrogates itself; anything it refuses
    goes to the standard parser, whose answer (a value or the error) stands.
    """
    value = _fast(raw)
    surrogates = False
    if value is _MISSING:
        value = _standard(raw)
        # Only a \u escape can smuggle in a lone surrogate, which no database can store.
        surrogates = b"\\u" in raw
    # Cheap tests first: fewer brackets than MAX_DEPTH cannot nest deeper, and a NUL can
    # only come from its escape. The costlier checks run only when these cannot rule it out.
    if (
        max_depth
        and raw.count(b"[") + raw.count(b"{") > max_depth
        and _nests_deeper(raw, max_depth)
    ):
        raise MalformedBody(f"the body nests objects or arrays deeper than {max_depth} levels")
    if surrogates or _NUL_ESCAPE in raw:
        _check_text(value)
    return value


_MISSING = object()


def _fast(raw: bytes) -> object:
    """orjson's reading of `raw`, or _MISSING when it is not the standard one or refused."""
    if _LONG_RUN in raw.translate(_DIGITS_TO_ZERO):
        return _MISSING
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _MISSING


def _standard(raw: bytes) -> object:
    try:
        return json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise MalformedBody(
            f"the body nests objects or arrays deeper than {MAX_DEPTH} levels"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc}") from exc
    except ValueError as exc:  # int() refuses more than sys.get_int_max_str_digits() digits
        raise MalformedBody(
            f"the body holds an integer of more than {sys.get_int_max_str_digits()} digits"
        ) from exc


def _no_constant(name: str) -> object:
    raise MalformedBody(f"the body is not valid JSON: {name} is not a number in JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise MalformedBody(f"the body is not valid JSON: {text} is out of range")
    return number


def text_problem(text: str) -> str | None:
    """Why no store can keep `text` (a NUL character, a lone surrogate), or None."""
    if "\x00" in text:
        return "holds a NUL character (\\u0000), which no store can keep"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone UTF-16 surrogate (\\ud800-\\udfff): not text"
    return None


# What `_nests_deeper` keeps of a body (quotes and brackets), and each bracket's step.
_NOT_STRUCTURE = bytes(set(range(256)) - set(b'"[]{}'))
_STRING = re.compile(rb'"[^"]*"')
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def _nests_deeper(raw: bytes, limit: int) -> bool:
    """True when the valid JSON `raw` nests objects and arrays more than `limit` deep.

    At C speed, since a batch of events has thousands of brackets and walking the parsed
    value in Python costs five times more than parsing it. Keep only quotes and brackets;
    a string without brackets or escaped quotes then reads `""`, and removing those pairs
    from the left leaves no quote at all exactly when every string was such a one. Else
    drop escaped backslashes and quotes first (backslashes only occur in strings, so
    pairing them from the left is how JSON reads them) and the strings by a regex. The
    depth is then the highest running sum of +1 per opening and -1 per closing bracket.
    """
    bare = raw.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in bare or b'\\"' in raw:
        unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
        bare = _STRING.sub(b"", unescaped.translate(None, _NOT_STRUCTURE))
    return max(itertools.accumulate(map(_STEP.__getitem__, bare)), default=0) > limit


def _check_text(value: object) -> None:
    """Refuse a string or a key in `value` that no store can keep, naming where.
    Iterative, with each node's path built only for the one refused."""
    stack: list[tuple[object, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict | list):
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str) and (problem := text_problem(key)):
                    where = _path((*path, key))
                    raise InvalidInput(f"the key {where} {problem}", field=where)
                stack.append((child, (*path, key)))
        elif isinstance(item, str) and (problem := text_problem(item)):
            where = _path(path)
            raise InvalidInput(f"{where} {problem}", field=where)


def _path(keys: tuple[str | int, ...]) -> str:
    """`events[0].params.x` for those keys (`the body` for none)."""
    text = ""
    for key in keys:
        if isinstance(key, int):
            text += f"[{key}]"
        else:
            # Written as JSON escapes: the answer itself must be text a store could keep.
            shown = key.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode()
            text += f".{shown}" if text else shown
    return text or "the body"
