"""Templates run with bounded output, arithmetic and loops (issue 9, item 2, templates).

Each template below, on the sandbox Jinja gives, takes hundreds of megabytes or
minutes of CPU; here it is refused with a TemplateProblem before the value is made.
Memory is measured with tracemalloc (a bound, not a timing, is what is asserted).
"""

from __future__ import annotations

import time
import tracemalloc

import pytest

from stepd.domain.templates import MAX_RENDERED_LENGTH, TemplateProblem, render_task_params

CONTEXT = {"x": "xy", "n": 3, "event": {"name": "e", "params": {"day": "1"}}}

REFUSED = {
    "string_repetition": ("{{ 'a' * 150000000 }}", "repeated value"),
    "list_repetition": ("{{ [1] * 150000000 }}", "repeated value"),
    "repetition_by_the_left": ("{{ 150000000 * 'a' }}", "repeated value"),
    "huge_power": ("{{ 10 ** 5000 }}", "a power would be over"),
    "power_of_a_power": ("{{ (2 ** 4000) ** 4000 }}", "a power would be over"),
    "huge_product": ("{% set a = 2 ** 7000 %}{{ a * a }}", "a product would be over"),
    "huge_range": ("{{ range(100001) | list }}", "range() would have"),
    "nested_loops": (
        "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
        "loops of one template ran over",
    ),
    "doubling_by_concatenation": (
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
        "joined string",
    ),
    "doubling_by_recursion": (
        "{% macro f(s, n) %}{{ f(s ~ s, n - 1) if n else s | length }}{% endmacro %}"
        "{{ f('a', 40) }}",
        "joined string",
    ),
    "doubling_by_addition": (
        "{% set ns = namespace(s=[1]) %}{% for i in range(40) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
        "a sum",
    ),
    "shared_lists_printed": (
        "{% set a = ['x' * 1000] * 90 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}{{ [b, b] }}",
        "printed value",
    ),
    "padding_method": ("{{ 'a'.ljust(10 ** 9) }}", "padded string"),
    "center_filter": ("{{ 'a' | center(10 ** 9) }}", "centred string"),
    "printf_width": ("{{ '%999999999s' % 'a' }}", "formatted value"),
    "format_width": ("{{ '{:>999999999}'.format(1) }}", "formatted value"),
    "chained_replace": (
        "{{ ('a' * 10) .replace('a', 'a' * 10).replace('a', 'a' * 10).replace('a', 'a' * 10)"
        ".replace('a', 'a' * 10).replace('a', 'a' * 10) }}",
        "replaced string",
    ),
    "join_of_a_long_separator": ("{{ range(10000) | join('x' * 1000) }}", "joined string"),
    "round_to_minus_a_billion_digits": ("{{ 10 | round(-1000000000) }}", "rounded number"),
    "printing_too_much": ("{% for i in range(10000) %}{{ 'x' * 100 }}{% endfor %}", "over"),
    "a_raising_expression": ("{{ 1 / 0 }}", "ZeroDivisionError"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_template_that_would_make_too_much_is_refused_before_it_makes_it(name: str) -> None:
    source, why = REFUSED[name]
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(TemplateProblem) as raised:
            render_task_params({"v": source}, CONTEXT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"{name}: {(time.perf_counter() - started) * 1000:.1f} ms, peak {peak / 1e6:.2f} MB")
    assert raised.value.field == "task_params.v"
    assert why in raised.value.message, raised.value.message
    assert peak < 50_000_000, f"{name} took {peak / 1e6:.0f} MB before it was refused"


ALLOWED = {
    "{{ x * 3 }}": "xyxyxy",
    "{{ '-' * 20 }}": "-" * 20,
    "{{ 2 ** 100 }}": str(2**100),
    "{{ n * 7 + 1 }}": "22",
    "{{ '%s-%05d' % (x, n) }}": "xy-00003",
    "{{ '{}/{:>4}'.format(x, n) }}": "xy/   3",
    "{{ event.name ~ '-' ~ x }}": "e-xy",
    "{{ range(3) | join(',') }}": "0,1,2",
    "{{ 'a,b'.split(',') | join('-') }}": "a-b",
    "{% for i in range(3) %}{{ i }}{% endfor %}": "012",
    "{{ (range(3) | list) + [9] }}": "[0, 1, 2, 9]",
    "{{ event.params.day | int + 1 }}": "2",
    "{{ x | upper | center(6) }}": "  XY  ",
    "{{ x | replace('y', 'zz') }}": "xzz",
    "{{ 'ab' | indent(2) }}": "ab",
    "{% set ns = namespace(t=0) %}{% for i in range(5) %}{% set ns.t = ns.t + i %}"
    "{% endfor %}{{ ns.t }}": "10",
    "{{ ('y' * " + str(MAX_RENDERED_LENGTH - 1) + ") | length }}": str(MAX_RENDERED_LENGTH - 1),
}


@pytest.mark.parametrize("source", sorted(ALLOWED))
def test_ordinary_templates_render_as_before(source: str) -> None:
    assert render_task_params({"v": source}, CONTEXT) == {"v": ALLOWED[source]}


def test_lorem_ipsum_is_not_offered() -> None:
    with pytest.raises(TemplateProblem, match="'lipsum' is undefined"):
        render_task_params({"v": "{{ lipsum(1000000) }}"}, CONTEXT)
