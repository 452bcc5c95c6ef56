"""User regexes, run by Google RE2: time linear in the text and bounded memory, whatever the
pattern.

Python's `re` backtracks: `^(a+)+$` against thirty `a`s and a `!` takes minutes, and one
stored config or one `POST /configs/test` would hold a server's worker that long. RE2 never
backtracks, so it lacks the constructs that need it (backreferences, lookaround, possessive
quantifiers and atomic groups, conditionals): a pattern that uses one is refused when it is
saved, with a message that says so, rather than run by another engine.
"""

from __future__ import annotations

import re

import re2

MAX_PATTERN_LENGTH = 1000
"""The longest pattern taken (in characters)."""

MAX_MEMORY = 2 << 20
"""RE2's memory budget per pattern (bytes): its compiled program and its DFA cache.

RE2's default is 8 MiB; 2 MiB takes `.{1000}` or `\\pL{100}`, and refuses what would need
more ("pattern too large") instead of letting a few configs take the server's memory."""

UNSUPPORTED = (
    "not supported by RE2 (linear-time) matching, which has no backreferences,"
    " lookahead/lookbehind, possessive quantifiers, atomic groups or conditionals"
)


class RegexRefused(ValueError):
    """A pattern is not taken; the message says why, for a person."""


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = MAX_MEMORY
    options.log_errors = False  # a refused pattern is the caller's 400, not a log line
    return options


_OPTIONS = _options()


def _reason(error: re2.error) -> str:
    """RE2's message as text (it raises bytes)."""
    (raw,) = error.args or (b"",)
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


class UserRegex:
    """A pattern a user wrote, compiled by RE2 once and matched many times."""

    __slots__ = ("_compiled", "pattern")

    def __init__(self, pattern: str) -> None:
        """Compile `pattern`; RegexRefused says why it cannot be taken."""
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise RegexRefused(f"a regex is at most {MAX_PATTERN_LENGTH} characters")
        try:
            encoded = pattern.encode("utf-8")
        except UnicodeEncodeError:
            raise RegexRefused("a regex must be valid Unicode (no lone surrogates)") from None
        try:
            self._compiled = re2.compile(encoded, _OPTIONS)
        except re2.error as exc:
            raise RegexRefused(_refusal(pattern, _reason(exc))) from None
        self.pattern = pattern

    def fullmatch(self, text: str) -> bool:
        """Whether the whole of `text` matches."""
        # Bytes in, bytes pattern: the str path of the binding re-maps offsets, 4x slower.
        # surrogatepass: a lone surrogate in a value then matches nothing, rather than raise.
        return self._compiled.fullmatch(text.encode("utf-8", "surrogatepass")) is not None

    def search(self, text: str) -> bool:
        """Whether some part of `text` matches."""
        return self._compiled.search(text.encode("utf-8", "surrogatepass")) is not None


def _refusal(pattern: str, reason: str) -> str:
    """Why RE2 refused `pattern`: a construct it lacks, a size it will not take, or a typo."""
    if "too large" in reason:
        return f"regex too large for RE2's {MAX_MEMORY >> 20} MiB budget: {reason}"
    try:
        # Only compiled, to tell the two kinds of refusal apart; Python's engine never runs it.
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"invalid regex: {exc}"
    construct = reason.rpartition(": ")[2] or reason  # RE2 ends its message with the construct
    if "repetition size" in reason:  # Python takes a{1001}; RE2 would unroll it
        return f"`{construct}` repeats more than the 1000 times RE2 takes (RE2: {reason})"
    return f"`{construct}` is {UNSUPPORTED} (RE2: {reason})"
