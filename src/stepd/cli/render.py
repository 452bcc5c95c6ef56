"""What the API commands share: the client and its errors as one line, params, Rich output.

The client is imported when a command runs, so that `stepd --help` stays quick.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from stepd.cli.common import fail, load_settings, out
from stepd.display import value_text
from stepd.domain.params import Scalar

T = TypeVar("T")

if TYPE_CHECKING:
    from stepd.client import Client

PIPE_WIDTH = 10_000  # the width of output written to a pipe or a file: never wrap

JsonOption = Annotated[bool, typer.Option("--json", help="Print the server's JSON (for scripts).")]

STATUS_STYLES = {
    "SUCCESS": "green",
    "FAILURE": "red",
    "EXCEPTION": "bold red",
    "TIMEOUT": "magenta",
    "STOPPED": "bright_black",
    "EXECUTING": "cyan",
    "ENQUEUED": "blue",
    "WAIT_MUTEX": "yellow",
}

OUTCOME_STYLES = {
    "fired": "bold green",
    "waiting": "yellow",
    "not_matched": "dim red",
    "disabled": "bright_black",
    "pending": "blue",
    "not_fired": "magenta",
}


def console() -> Console:
    """stdout: the terminal as it is; a pipe or a file never wraps (one row, one line)."""
    return out if out.is_terminal else Console(width=PIPE_WIDTH, highlight=False)


def parse_param(arg: str) -> tuple[str, Scalar]:
    """`key=value` (a string) or `key:=json` (a JSON scalar, e.g. `count:=3`), as httpie has them.

    Raises ValueError saying what is wrong with `arg`.
    """
    cut = arg.find("=")
    if cut < 0:
        raise ValueError(f"{arg!r} is not key=value or key:=json")
    is_json = cut > 0 and arg[cut - 1] == ":"
    key = arg[: cut - 1] if is_json else arg[:cut]
    text = arg[cut + 1 :]
    if not key:
        raise ValueError(f"{arg!r} has no key before '='; write key=value")
    if not is_json:
        return key, text
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(
            f"{arg!r}: {text!r} is not JSON; write {key}={text} for a string"
        ) from None
    if isinstance(value, dict | list):
        kind = "an object" if isinstance(value, dict) else "a list"
        raise ValueError(f"{arg!r}: a param must be a JSON scalar, not {kind}")
    return key, value


def params_argument(help: str) -> Any:
    """The `KEY=VALUE ...` argument of a command that takes params (`parse_params` reads
    them): `key=value` for a string, `key:=json` for a JSON scalar."""
    return typer.Argument(metavar="KEY=VALUE", help=help, show_default=False)


def parse_params(args: list[str] | None, what: str) -> dict[str, Scalar]:
    """`key=value` arguments as params; a malformed one is a usage error (exit 2)."""
    return parse_pairs(args, what, parse_param)


def parse_pairs(
    args: list[str] | None, what: str, parse: Callable[[str], tuple[str, T]]
) -> dict[str, T]:
    """`key=...` arguments, each read by `parse` (a ValueError saying what is wrong), as a
    mapping; a malformed one or a key given twice is a usage error (exit 2)."""
    params: dict[str, T] = {}
    for arg in args or []:
        try:
            key, value = parse(arg)
        except ValueError as exc:
            raise fail(f"{what}: {exc}", code=2) from None
        if key in params:
            raise fail(f"{what}: param {key!r} is given twice", code=2)
        params[key] = value
    return params


def parse_when(value: str | None, what: str) -> str | None:
    """A `--since`/`--until`: a time ago (`2h`, `30m`, `7d`) or an ISO 8601 date or time
    (`2019-01-01`, `2019-01-01T06:00Z`), as the API's ISO 8601 in UTC; else exit 2."""
    from stepd.timeutil import iso
    from stepd.timeutil import parse_when as parse

    if value is None:
        return None
    try:
        return iso(parse(value))
    except ValueError as exc:
        raise fail(f"{what}: {exc}", code=2) from None


@contextmanager
def client(url: str | None, token: str | None) -> Iterator[Client]:
    """A client of the server at --url (or STEPD_URL) with --token (or STEPD_TOKEN), whose
    failures become one red line that says what to do next, and exit 1."""
    from stepd.client import ApiError, Client, ServerUnreachable

    settings = load_settings(url=url, token=token)
    url, token = settings.url, settings.token
    try:
        with Client(url, token) as c:
            yield c
    except ServerUnreachable as exc:
        cause = exc.__cause__
        why = (str(cause) or type(cause).__name__) if cause is not None else exc.message
        raise fail(
            f"cannot reach stepd at {url}: is `stepd serve` running? "
            f"set STEPD_URL or pass --url ({why})"
        ) from None
    except ApiError as exc:
        if exc.status_code == 401:
            message = f"{exc.message} (then set STEPD_TOKEN or pass --token)"
        elif exc.status_code == 403:
            message = f"{exc.message} (this token's user may not do this)"
        else:
            message = exc.message
        raise fail(message) from None


def print_json(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def compact(params: Mapping[str, Any] | None) -> str:
    """`{"date": "2019-01-01", "n": 3}` as `date=2019-01-01 n:=3` (what the CLI accepts)."""
    return " ".join(
        f"{k}={v}" if isinstance(v, str) else f"{k}:={json.dumps(v, ensure_ascii=False)}"
        for k, v in (params or {}).items()
    )


def dep_text(dep: Mapping[str, Any]) -> str:
    """A dependency as `name(key=value, free=~)`."""
    params = dep.get("params") or {}
    inner = ", ".join(f"{k}={_condition(v)}" for k, v in params.items())
    return f"{dep.get('name')}({inner})"


def _condition(value: object) -> str:
    if value is None:
        return "~"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value_text(value)


def status(value: object) -> Text:
    text = "-" if value is None else str(value)
    return Text(text, style=STATUS_STYLES.get(text, ""))


def outcome(value: object) -> Text:
    text = str(value)
    return Text(text.replace("_", " "), style=OUTCOME_STYLES.get(text, ""))


def joined(*parts: str | Text) -> Text:
    """Parts separated by spaces; str parts stay plain text (never read as markup)."""
    result = Text()
    for part in parts:
        if not part:
            continue
        if result:
            result.append(" ")
        result.append(part)
    return result
