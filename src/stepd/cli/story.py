"""`stepd story EVENT_ID`: what an event fired and why not, as a tree a person can read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.text import Text
from rich.tree import Tree

from stepd.cli.common import DEFAULT_URL, TokenOption, UrlOption
from stepd.cli.render import (
    JsonOption,
    client,
    compact,
    console,
    dep_text,
    joined,
    outcome,
    print_json,
    status,
)
from stepd.display import value_text, when


def story(
    event_id: Annotated[str, typer.Argument(metavar="EVENT_ID", help="The event's _id.")],
    depth: Annotated[
        int | None,
        typer.Option(
            "--depth",
            min=0,
            help="Follow the chain this many events deep (0: this event only). Default: all.",
            show_default=False,
        ),
    ] = None,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Show every config in full, the unrelated ones too (by default they are "
            "one line per param they differ in).",
        ),
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Show what an event fired, what waits and what did not match, and the tasks' chain.

    Configs that fired come first, then the waiting ones, then the near misses (one param
    differs); the rest are one line per param they differ in, unless --all."""
    with client(url, token) as c:
        result = c.story(event_id)
    if as_json:
        print_json(result)
        return
    console().print(story_tree(result, depth, show_all=show_all))


def story_tree(
    story: Mapping[str, Any], depth: int | None = None, *, show_all: bool = False
) -> Tree:
    """The story as a tree: event -> configs (outcome, why) -> tasks -> the events they emitted.

    `show_all`: every config in full; otherwise those the summary collapses are one line
    per group (a story from a server without a summary is shown whole)."""
    tree = Tree(_event_label(story), guide_style="bright_black")
    _fill(tree, story, depth, show_all)
    return tree


def _event_label(story: Mapping[str, Any]) -> Text:
    event = story.get("event") or {}
    label = joined(
        Text("event", style="bold"),
        str(event.get("_id")),
        Text(str(event.get("name")), style="bold"),
        compact(event.get("params")),
        _state(event.get("state")),
        Text(when(event.get("created")), style="dim"),
    )
    if not story.get("evaluated", True):
        label.append("  (the reactor has not evaluated it yet)", style="blue")
    return label


def _state(state: object) -> Text:
    text = str(state)
    return Text(text, style={"REJECTED": "red", "PROCESSED": "green"}.get(text, "yellow"))


def _fill(node: Tree, story: Mapping[str, Any], depth: int | None, show_all: bool) -> None:
    event = story.get("event") or {}
    configs: list[dict[str, Any]] = story.get("configs") or []
    if not configs:
        node.add(Text(f"no config depends on {event.get('name')}", style="dim"))
    summary = story.get("summary")
    collapse = not show_all and isinstance(summary, Mapping) and "shown" in summary
    shown = configs[: int(summary["shown"])] if collapse and summary else configs
    for config in shown:
        _config(node.add(_config_label(config)), config)
    if collapse and summary:
        for group in summary.get("groups") or []:
            node.add(_group_line(group))

    tasks: list[dict[str, Any]] = story.get("produced_tasks") or []
    chain: list[dict[str, Any]] = story.get("chain") or []
    seen: set[object] = set()
    for task in tasks:
        task_id = task.get("sandbox_task_id")
        seen.add(task_id)
        branch = node.add(_task_label(task))
        _chain(branch, [c for c in chain if c.get("task_id") == task_id], depth, show_all)
    orphans = [c for c in chain if c.get("task_id") not in seen]
    if orphans:
        _chain(node.add(Text("emitted by other tasks", style="dim")), orphans, depth, show_all)


def _chain(node: Tree, chain: list[dict[str, Any]], depth: int | None, show_all: bool) -> None:
    if not chain:
        return
    if depth is not None and depth <= 0:
        count = len(chain)
        node.add(
            Text(
                f"... {count} event{'s' if count > 1 else ''} emitted (raise --depth to see)",
                style="dim",
            )
        )
        return
    for sub in chain:
        branch = node.add(_event_label(sub))
        _fill(branch, sub, None if depth is None else depth - 1, show_all)


def _group_line(group: Mapping[str, Any]) -> Text:
    """One line for configs the story collapsed: '27 configs expect another taskType'."""
    line = Text(str(group.get("text")), style="dim")
    expected = [_expected(v) for v in group.get("expected") or []]
    if expected:
        more = int(group.get("count") or 0) > len(expected)
        line.append(": " + ", ".join(expected) + (", ..." if more else ""), style="dim")
    line.append(" (--all shows them)", style="dim")
    return line


def _config_label(config: Mapping[str, Any]) -> Text:
    label = joined(
        Text("config", style="bold"),
        str(config.get("config_id")),
        Text(str(config.get("config_name")), style="bold"),
        Text(f"{config.get('task_type')} by {config.get('author')} v{config.get('version')}:"),
        outcome(config.get("outcome")),
    )
    if config.get("near_miss"):
        label.append("  (near miss: one param differs)", style="yellow")
    if config.get("deleted"):
        gone = f"  (deleted by {config.get('deleted_by')} {when(config.get('deleted_at'))})"
        label.append(gone, style="red")
    return label


def _config(node: Tree, config: Mapping[str, Any]) -> None:
    for fired in config.get("fired") or []:
        line = joined("binding", _binding(fired.get("binding")), "->")
        if fired.get("task_id") is not None:
            line.append(" ")
            line.append_text(
                joined(
                    Text("task", style="bold"),
                    str(fired["task_id"]),
                    str(config.get("task_type")),
                    status(fired.get("task_status")),
                )
            )
        else:
            line.append(" no task", style="red")
        branch = node.add(line)
        deps = [d for d in fired.get("dep_event_ids") or [] if d]
        if deps:
            branch.add(Text("deps: " + " ".join(deps), style="dim"))
        if fired.get("error"):
            branch.add(Text(f"error: {fired['error']}", style="red"))

    for waiting in config.get("waiting") or []:
        branch = node.add(joined("binding", _binding(waiting.get("binding")), "waits for:"))
        for dep in waiting.get("missing") or []:
            branch.add(joined(Text(f"dep {dep.get('dep_index')}", style="yellow"), dep_text(dep)))
    for later in config.get("completed_later_by") or []:
        node.add(
            joined(
                Text("completed later by", style="dim"),
                "event",
                str(later.get("event_id")),
                _binding(later.get("binding")),
                "-> task",
                value_text(later.get("task_id")),
            )
        )

    # A disabled config says too what the event lacks for it (`differs`), if anything.
    for miss in config.get("not_matched") or config.get("differs") or []:
        line = joined(
            Text(f"dep {miss.get('dep_index')}", style="dim red"),
            f"{miss.get('param')}:",
            "expected",
            Text(_expected(miss.get("expected")), style="green"),
            "got",
            Text(_actual(miss.get("actual"), miss.get("reason")), style="red"),
        )
        if miss.get("reason"):
            line.append(f" ({miss['reason']})", style="dim")
        node.add(line)

    if config.get("note"):
        node.add(Text(str(config["note"]), style="dim"))


def _task_label(task: Mapping[str, Any]) -> Text:
    line = joined(
        Text("task", style="bold"),
        str(task.get("sandbox_task_id")),
        str(task.get("task_type")),
        status(task.get("status")),
        compact(task.get("params")),
    )
    if task.get("config_name"):
        line.append(f"  from {task['config_name']} {task.get('config_id')}", style="dim")
    if task.get("waiting"):
        line.append(f"\n  {task['waiting']}", style="yellow")
    return line


def _binding(binding: object) -> str:
    if not isinstance(binding, Mapping) or not binding:
        return "{}"
    return compact(binding)


def _expected(value: object) -> str:
    if value is None:
        return "~"
    return value_text(value)


def _actual(value: object, reason: object) -> str:
    if value is None:
        return "nothing (no such param)" if reason == "missing" else "null"
    return value_text(value)
