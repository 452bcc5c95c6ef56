"""User regexes run in RE2 (issue 9, item 2): `^(a+)+$` against `a`s and a `!` backtracks
for hours in Python's engine, and one stored config or one trial froze the server. Each test
here would hang on that engine: timeouts (pytest's, or the client's of a live server), not
a measured time, are what fail."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Api, served, server_token
from reactor_helpers import config_body, config_entry, create_config, dep, post_config, react, send
from reactor_helpers import story as story_of
from sqlalchemy import select, update

from stepd.domain.matching import DependencySpecError, RegexNotRunnable, parse_dependencies
from stepd.domain.params import Params
from stepd.domain.regex import MAX_PATTERN_LENGTH, UserRegex
from stepd.store.schema import configs

EVIL = "^(a+)+$"  # nested quantifiers: exponential backtracking in a backtracking engine
NEAR_MISS = "a" * 100 + "!"  # Python's re would need about 2**100 steps to refuse it
HIT = "a" * 100


@pytest.mark.timeout(5)
def test_a_nested_quantifier_is_linear_in_the_value() -> None:
    regex = UserRegex(EVIL)
    assert not regex.fullmatch(NEAR_MISS)
    assert regex.fullmatch(HIT)
    # A value a thousand times longer costs about a thousand times more, not 2**100000.
    assert not regex.fullmatch("a" * 100_000 + "!")


@pytest.mark.timeout(20)
def test_a_stored_config_with_that_regex_is_evaluated_by_the_reactor_at_once(api: Api) -> None:
    config_id = create_config(api, dep("build", status={"regex": EVIL}), name="evil")
    missed = send(api, "build", status=NEAR_MISS)
    fired = send(api, "build", status=HIT)
    assert react(api.store) == 2
    [why] = config_entry(story_of(api, missed), config_id)["not_matched"]
    assert (why["param"], why["reason"]) == ("status", "no regex match")
    assert config_entry(story_of(api, fired), config_id)["outcome"] == "fired"


UNSUPPORTED = [
    (r"(a)\1", r"\1"),  # a backreference
    ("a(?=b)", "(?="),  # lookahead
    ("(?<=a)b", "(?<="),  # lookbehind
    ("(?<!a)b", "(?<!"),  # negative lookbehind
    ("a++", "++"),  # a possessive quantifier
    ("(?>a)", "(?>"),  # an atomic group
]


@pytest.mark.parametrize(("pattern", "construct"), UNSUPPORTED)
def test_a_construct_re2_lacks_is_refused_at_save_naming_the_field(
    api: Api, pattern: str, construct: str
) -> None:
    body = config_body(dep("build", kind="x"), dep("build", taskType={"regex": pattern}))
    response = post_config(api, body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["field"] == "event_deps[1].params.taskType"
    assert f"`{construct}` is not supported by RE2 (linear-time) matching" in error["message"]
    assert error["message"].startswith("event_deps[1].params.taskType: regex: ")
    # Nor does a trial or a replace take it, and nothing was stored.
    good = create_config(api, dep("build", kind="x"), name="good")
    trial = api.client.post(
        "/api/v1/configs/test",
        json={"config": body, "event": {"name": "build", "params": {"kind": "x"}}},
        headers=api.auth,
    )
    assert trial.status_code == 400 and "RE2" in trial.json()["message"], trial.text
    put = api.client.put(f"/api/v1/configs/{good}", json=body, headers=api.auth)
    assert put.status_code == 400 and put.json()["field"] == "event_deps[1].params.taskType"
    [stored] = api.client.get("/api/v1/configs").json()["result"]
    assert stored["event_deps"] == [dep("build", kind="x")]


def test_a_pattern_too_long_or_too_large_for_re2_memory_is_refused(api: Api) -> None:
    cases = {
        "x" * (MAX_PATTERN_LENGTH + 1): f"at most {MAX_PATTERN_LENGTH} characters",
        r"\pL{1000}": "too large for RE2's",  # a 1,000-fold Unicode class: megabytes of program
        "(unclosed": "invalid regex",
    }
    for pattern, said in cases.items():
        response = post_config(api, config_body(dep("build", status={"regex": pattern})))
        assert response.status_code == 400, (pattern, response.text)
        assert response.json()["field"] == "event_deps[0].params.status"
        assert said in response.json()["message"], response.json()
    assert api.client.get("/api/v1/configs").json()["result"] == []
    # The longest pattern allowed is taken.
    create_config(api, dep("build", status={"regex": "a" * MAX_PATTERN_LENGTH}))


def test_a_config_stored_before_regexes_ran_in_re2_still_loads_and_says_why_not(
    api: Api,
) -> None:
    # A config saved by an older stepd, whose regex RE2 refuses: written into the store.
    config_id = create_config(api, dep("build", status={"regex": "a"}), name="legacy")
    with api.store.write() as conn:
        body = json.loads(conn.execute(select(configs.c.body)).scalar_one())
        body["event_deps"][0]["params"]["status"] = {"regex": "a(?=b)"}
        conn.execute(update(configs).values(body=json.dumps(body)))
    # It lists and shows as stored, instead of breaking every read of the configs.
    [listed] = api.client.get("/api/v1/configs").json()["result"]
    assert listed["event_deps"] == [dep("build", status={"regex": "a(?=b)"})]
    assert api.client.get(f"/api/v1/configs/{config_id}").status_code == 200
    # Evaluating it is a clear error naming the param, not a wrong answer.
    tried = api.client.post(
        "/api/v1/configs/test",
        json={"config_id": config_id, "event": {"name": "build", "params": {"status": "a"}}},
        headers=api.auth,
    )
    assert tried.status_code == 400, tried.text
    assert tried.json()["field"] == "status"
    assert (
        "the regex of param 'status' cannot run: `(?=` is not supported by RE2"
        in (tried.json()["message"])
    )
    # Its owner fixes it as any config, and then it runs.
    fixed = config_body(dep("build", status={"regex": "a+"}), name="legacy")
    put = api.client.put(f"/api/v1/configs/{config_id}", json=fixed, headers=api.auth)
    assert put.status_code == 200, put.text
    again = api.client.post(
        "/api/v1/configs/test",
        json={"config_id": config_id, "event": {"name": "build", "params": {"status": "aa"}}},
        headers=api.auth,
    )
    assert again.json()["result"]["events"][0]["outcome"] == "fired", again.text


def test_only_a_stored_dependency_takes_a_regex_re2_refuses() -> None:
    deps = [dep("build", status={"regex": r"(a)\1"})]
    with pytest.raises(DependencySpecError, match="not supported by RE2"):
        parse_dependencies(deps)
    [stored] = parse_dependencies(deps, stored=True)
    params: Params = {"status": "aa"}
    with pytest.raises(RegexNotRunnable, match="save the config again"):
        stored.matches(params)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_healthz_answers_while_a_server_matches_that_regex(store: str, tmp_path: Path) -> None:
    with served(store, tmp_path, "--executor", "none", "--no-clock") as server:
        auth = {"Authorization": f"OAuth {server_token(server)}"}
        api = httpx.Client(base_url=server.url, headers=auth, timeout=30)
        body = config_body(dep("build", status={"regex": EVIL}), name="evil")
        assert api.post("/api/v1/configs", json=body).status_code in (200, 201)
        # A stored config: the reactor evaluates the near miss and, after it, the hit.
        for value in (NEAR_MISS, HIT):
            sent = api.post(
                "/api/v1/events", json={"events": [{"name": "build", "params": {"status": value}}]}
            )
            assert sent.status_code == 200, sent.text
        # Trials of the near miss, from four clients at once, while /healthz is asked.
        # (In-process, a test could not even time out: the match holds the GIL in a thread.)
        trial = {"config": body, "event": {"name": "build", "params": {"status": NEAR_MISS}}}
        answers: list[str] = []

        def try_it() -> None:
            with httpx.Client(base_url=server.url, headers=auth, timeout=30) as own:
                response = own.post("/api/v1/configs/test", json=trial)
                assert response.status_code == 200, response.text
                answers.extend(e["outcome"] for e in response.json()["result"]["events"])

        trials = [threading.Thread(target=try_it) for _ in range(4)]
        for t in trials:
            t.start()
        for _ in range(10):
            assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        for t in trials:
            t.join(30)
        assert answers == ["not_matched"] * 4
        hit = {**trial, "event": {"name": "build", "params": {"status": HIT}}}
        [entry] = api.post("/api/v1/configs/test", json=hit).json()["result"]["events"]
        assert entry["outcome"] == "fired"

        def fired() -> list[Any]:
            found: list[Any] = api.get("/api/v1/tasks").json()["result"]
            return found

        deadline = time.monotonic() + 30
        while not fired() and time.monotonic() < deadline:
            time.sleep(0.1)
        [task] = fired()  # the hit fired, once, after the reactor refused the near miss
        assert task["params"] == {}
        api.close()
