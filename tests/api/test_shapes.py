"""The task and semaphore shapes (stepd.shapes) are what the API sends, to the byte, and
what it sent before they existed (the original STEP clients read these keys)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Api
from pydantic import BaseModel

from stepd import shapes
from stepd.errors import InvalidInput

# `GET /api/v1/tasks/{id}` of a task made by hand, as the server answered before the
# shapes module: every key in its order, and the JSON types of its values.
OLD_TASK_DETAIL: list[tuple[str, tuple[type, ...]]] = [
    ("id", (int,)),
    ("sandbox_task_id", (int,)),
    ("type", (str,)),
    ("params", (dict,)),
    ("status", (str,)),
    ("author", (str,)),
    ("priority", (int,)),
    ("semaphores", (list,)),
    ("kill_timeout", (int,)),
    ("max_retries", (int,)),
    ("attempts", (int,)),
    ("config_id", (type(None),)),
    ("config_version", (type(None),)),
    ("event_id", (type(None),)),
    ("created", (str,)),
    ("updated", (str,)),
    ("started", (type(None),)),
    ("finished", (type(None),)),
    ("output", (type(None),)),
    ("error", (type(None),)),
    ("attempt_history", (list,)),
    ("emitted_event_ids", (list,)),
]
# ... and its bytes (recorded from the code before stepd.shapes, times replaced by "T").
OLD_TASK_DETAIL_JSON = (
    '{"result":{"id":1,"sandbox_task_id":1,"type":"SHAPE_TASK","params":{"date":"2020-01-01",'
    '"n":1.5,"ü":[1,null]},"status":"ENQUEUED","author":"robot-crypta","priority":3,'
    '"semaphores":[{"name":"shape-sem","weight":2},{"name":"other","weight":1}],'
    '"kill_timeout":60,"max_retries":1,"attempts":0,"config_id":null,"config_version":null,'
    '"event_id":null,"created":"T","updated":"T","started":null,"finished":null,"output":null,'
    '"error":null,"attempt_history":[],"emitted_event_ids":[]}}'
)
OLD_SEMAPHORE = ["name", "capacity", "used", "auto", "owner", "updated"]


def _wire(body: object) -> str:
    # What Starlette's JSONResponse writes.
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _result(text: str) -> Any:
    # The `result` of an answer, re-written exactly as the server wrote it.
    return json.loads(text)["result"]


def _exactly(model: type[BaseModel], value: dict[str, Any]) -> None:
    """`value` has the model's keys, no others, in the model's order, and the model writes
    it back to the same bytes."""
    parsed = model.model_validate(value)
    assert list(value)[: len(model.model_fields)] == list(model.model_fields)
    assert not parsed.model_extra, parsed.model_extra
    assert _wire(parsed.model_dump(mode="json")) == _wire(value)


def _make_task(api: Api) -> dict[str, Any]:
    api.client.put("/api/v1/semaphores/shape-sem", json={"capacity": 2}, headers=api.auth)
    response = api.client.post(
        "/api/v1/tasks",
        json={
            "type": "SHAPE_TASK",
            "params": {"date": "2020-01-01", "n": 1.5, "ü": [1, None]},
            "priority": 3,
            "semaphores": [{"name": "shape-sem", "weight": 2}, "other"],
            "kill_timeout": 60,
            "max_retries": 1,
        },
        headers=api.auth,
    )
    assert response.status_code == 200, response.text
    created: dict[str, Any] = _result(response.text)
    _exactly(shapes.TaskOut, created)
    return created


def test_one_task_is_the_json_it_was_before_the_shapes(api: Api) -> None:
    task_id = _make_task(api)["id"]

    response = api.client.get(f"/api/v1/tasks/{task_id}")

    assert response.status_code == 200, response.text
    body = _result(response.text)
    assert [(k, type(body[k])) for k in body] == [
        (k, next(t for t in types if isinstance(body.get(k), t))) for k, types in OLD_TASK_DETAIL
    ]
    assert "trigger" not in body  # made by hand: no key, not null, as before
    assert body["semaphores"] == [
        {"name": "shape-sem", "weight": 2},
        {"name": "other", "weight": 1},
    ]
    assert body["status"] == "ENQUEUED" and body["author"] == "robot-crypta"
    # The model renders exactly these bytes back.
    detail = shapes.TaskDetail.model_validate(body)
    assert _wire(detail.wire()) == _wire(body)
    assert response.text == _wire({"result": body})
    masked = response.text.replace(body["created"], "T").replace(body["updated"], "T")
    assert masked == OLD_TASK_DETAIL_JSON.replace(
        '"id":1,"sandbox_task_id":1', f'"id":{task_id},"sandbox_task_id":{task_id}'
    )


def test_every_task_answer_is_its_model_exactly(api: Api) -> None:
    task_id = _make_task(api)["id"]

    listed = _result(api.client.get("/api/v1/tasks").text)
    logs = _result(api.client.get(f"/api/v1/tasks/{task_id}/logs").text)
    stopped = _result(api.client.post(f"/api/v1/tasks/{task_id}/stop", headers=api.auth).text)
    restarted = _result(api.client.post(f"/api/v1/tasks/{task_id}/restart", headers=api.auth).text)

    assert [t["id"] for t in listed] == [task_id]
    _exactly(shapes.TaskOut, listed[0])
    _exactly(shapes.TaskLog, logs)
    assert stopped == {"id": task_id, "status": "STOPPED", "stop_requested": True}
    _exactly(shapes.TaskStopped, stopped)
    assert restarted == {"id": task_id, "status": "ENQUEUED"}
    _exactly(shapes.TaskRestarted, restarted)


def test_semaphores_are_their_model_exactly(api: Api) -> None:
    _make_task(api)

    one = _result(api.client.get("/api/v1/semaphores/shape-sem").text)
    every = _result(api.client.get("/api/v1/semaphores").text)

    # The old keys first, unchanged; who holds it and who waits are added after them.
    assert list(one)[: len(OLD_SEMAPHORE)] == OLD_SEMAPHORE
    assert list(one)[len(OLD_SEMAPHORE) :] == [
        "holders", "holder_count", "waiting", "waiting_count", "waiting_at_least",
    ]  # fmt: skip
    assert one["capacity"] == 2 and one["auto"] is False
    _exactly(shapes.SemaphoreDetail, one)
    assert "shape-sem" in [s["name"] for s in every]
    for semaphore in every:
        _exactly(shapes.SemaphoreOut, semaphore)


def test_the_story_names_the_type_task_type_from_the_same_rendering(api: Api) -> None:
    created = _make_task(api)
    from stepd.store import tasks as task_store

    with api.store.read() as conn:
        task = task_store.get_task(conn, created["id"])
    assert task is not None

    produced = shapes.ProducedTask.of(task, "cfg").model_dump(mode="json")

    assert list(produced) == [
        "sandbox_task_id", "config_id", "config_name", "task_type", "params", "status",
    ]  # fmt: skip
    assert produced["task_type"] == created["type"] and produced["params"] == created["params"]
    assert produced["sandbox_task_id"] == created["id"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"type": "X", "priority": "high"}, "priority", "priority must be an integer"),
        ({"type": "X", "bogus": 1}, "bogus", "unknown field 'bogus'"),
        ({"params": {}}, "type", "type is required"),
        ({"type": "X", "params": [1]}, "params", "params must be an object"),
        ({"type": "X", "kill_timeout": 0}, "kill_timeout", "kill_timeout must be an integer"),
        ({"type": "X", "semaphores": [{"name": ""}]}, "semaphores[0].name", "semaphores[0]"),
    ],
)
def test_a_bad_task_body_is_refused_by_the_model_as_before(
    api: Api, body: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        shapes.TaskIn.model_validate(body)
    assert raised.value.field == field and raised.value.message.startswith(message)

    response = api.client.post("/api/v1/tasks", json=body, headers=api.auth)

    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert response.json()["message"].startswith(message)


def test_task_filters_are_typed_once() -> None:
    query = shapes.TaskQuery.parse({"status": "ENQUEUED,FAILURE", "skip": "5", "limit": "7"})

    assert query.status == (shapes.TaskStatus.ENQUEUED, shapes.TaskStatus.FAILURE)
    assert (query.skip, query.limit, query.sort) == (5, 7, "-id")
    for bad, field in (({"limit": "1001"}, "limit"), ({"skip": "x"}, "skip"), ({"q": ""}, "q")):
        with pytest.raises(InvalidInput) as raised:
            shapes.TaskQuery.parse(bad)
        assert raised.value.field == field


def test_the_openapi_document_names_the_shapes_of_the_answers(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]

    def answer(method: str, path: str) -> dict[str, Any]:
        content = doc["paths"][path][method]["responses"]["200"]["content"]
        ref: str = content["application/json"]["schema"]["$ref"]
        return dict(schemas[ref.rsplit("/", 1)[1]]["properties"]["result"])

    detail = answer("get", "/api/v1/tasks/{task_id}")
    assert detail == {"$ref": "#/components/schemas/TaskDetail"}
    assert list(schemas["TaskDetail"]["properties"]) == list(shapes.TaskDetail.model_fields)
    assert "trigger" not in schemas["TaskDetail"]["required"]
    assert answer("get", "/api/v1/tasks")["items"] == {"$ref": "#/components/schemas/TaskOut"}
    assert answer("put", "/api/v1/semaphores/{name}") == {
        "$ref": "#/components/schemas/SemaphoreOut"
    }
    assert schemas["Error"]["properties"].keys() == shapes.ErrorOut.model_fields.keys()


# --- events: the hot paths render by hand; what they write is the models' JSON exactly ---

EVENT_BATCH = {
    "request_id": "shapes-1",
    "source_type": "task",
    "source": {"task_id": 123, "ok": True, "w": 0.1},
    "events": [
        {"name": "shapes.ev", "params": {"date": "2020-01-01", "n": 3, "x": 1.5e300}},
        {"name": "shapes.ev", "params": {"ü": "snow ☃", "t": True, "z": None, "f": -0.0}},
        {"name": "shapes:other", "params": {"big": 2**70, "e": "", "q": '"quoted"\n'}},
        {"name": "shapes.ev"},
    ],
}


def test_the_event_hot_paths_write_exactly_the_models_json(api: Api) -> None:
    posted = api.client.post("/api/v1/events", json=EVENT_BATCH, headers=api.auth)
    assert posted.status_code == 200, posted.text
    ids = shapes.IdsOut.model_validate_json(posted.content)
    assert posted.content == ids.model_dump_json().encode()

    listed = api.client.get("/api/v1/events", params={"limit": 10, "sort": "_id"})
    one = api.client.get(f"/api/v1/events/{ids.ids[2]}")

    assert listed.status_code == 200 and one.status_code == 200
    events = shapes.Result[list[shapes.EventOut]].model_validate_json(listed.content)
    assert [e.id for e in events.result] == ids.ids
    assert listed.content == events.model_dump_json().encode()
    single = shapes.Result[shapes.EventOut].model_validate_json(one.content)
    assert one.content == single.model_dump_json().encode()
    for event in json.loads(listed.content)["result"]:
        assert list(event) == [
            "_id", "name", "params", "state", "created", "author", "request_id",
            "source_type", "source",
        ]  # fmt: skip
        assert not shapes.EventOut.model_validate(event).model_extra


def test_the_event_shapes_are_those_of_the_openapi_document(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    content = doc["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"]
    ref = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    result = doc["components"]["schemas"][ref]["properties"]["result"]
    assert result["items"] == {"$ref": "#/components/schemas/EventOut"}
    assert "_id" in doc["components"]["schemas"]["EventOut"]["properties"]
    assert "EventIn" in doc["components"]["schemas"]


# --- configs: the domain renders them; ConfigOut is that rendering's shape exactly ------


def test_a_config_answer_is_its_model_exactly(api: Api) -> None:
    config = {
        "name": "shapes-config",
        "event_deps": [{"name": "shapes.ev", "params": {"date": "~", "env": "stable"}}],
        "task_type": "SHAPE_TASK",
        "task_params": {"day": "{{ date }}", "n": 2},
        "semaphores": ["shape-sem"],
        "kill_timeout": 30,
        "window": "7d",
    }
    created = api.client.post("/api/v1/configs", json=config, headers=api.auth)
    assert created.status_code == 200, created.text
    config_id = created.json()["id"]

    one = api.client.get(f"/api/v1/configs/{config_id}")
    every = api.client.get("/api/v1/configs")

    parsed = shapes.Result[shapes.ConfigOut].model_validate_json(one.content)
    assert parsed.result.id == config_id and parsed.result.window == "7d"
    assert one.content == parsed.model_dump_json().encode()
    assert (
        every.content
        == (
            shapes.Result[list[shapes.ConfigOut]]
            .model_validate_json(every.content)
            .model_dump_json()
        ).encode()
    )
    body = one.json()["result"]
    assert list(body) == ["_id", *list(shapes.ConfigOut.model_fields)[1:]]
    assert not shapes.ConfigOut.model_validate(body).model_extra
    doc = api.client.get("/openapi.json").json()
    content = doc["paths"]["/api/v1/configs/{config_id}"]["get"]["responses"]["200"]["content"]
    ref = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert doc["components"]["schemas"][ref]["properties"]["result"] == {
        "$ref": "#/components/schemas/ConfigOut"
    }
