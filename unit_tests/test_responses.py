"""API answers are checked whole on arrival and decoded as they are read: what a caller sees of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests_mock

from source_jmap.jmap import BasicCredentials, JmapClient, MethodCall, ResultReference
from source_jmap.jmap.errors import JmapServerError

from .fake_jmap import API_URL, SESSION_URL, session_document

QUERY = MethodCall("Email/query", {"accountId": "acc1"}, "q")
GET = MethodCall("Email/get", {"accountId": "acc1", "ids": ResultReference("q", "Email/query", "/ids")}, "g")


@pytest.fixture
def mocker() -> Iterator[requests_mock.Mocker]:
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, json=session_document())
        yield mocker


def call() -> Any:
    client = JmapClient(SESSION_URL, BasicCredentials("alice@jmap.test", "pw-123"), sleep=lambda seconds: None)
    return client.call([QUERY, GET], [])


def answer(get_list: str) -> str:
    return ('{"sessionState": "s0", "methodResponses": [["Email/query", {"ids": ["a", "b", "c"]}, "q"], '
            f'["Email/get", {{"state": "9", "list": {get_list}, "notFound": []}}, "g"]]}}')


def test_objects_come_in_the_order_of_the_ids_whatever_order_the_server_answered_in(
    mocker: requests_mock.Mocker,
) -> None:
    mocker.post(API_URL, text=answer('[{"id": "c", "n": 3}, {"id": "a", "n": 1}, {"id": "b", "n": 2}]'))
    responses = call()
    objects = responses["g"]["list"]
    assert [obj["n"] for obj in objects.in_order(responses["q"]["ids"])] == [1, 2, 3]
    assert objects.last_of(["a", "b", "gone"]) == {"id": "b", "n": 2}
    assert len(objects) == 3 and objects[0] == {"id": "c", "n": 3}
    assert responses["g"]["state"] == "9" and responses["g"]["notFound"] == []


def test_each_read_of_an_object_is_a_new_object_so_records_never_share_one(mocker: requests_mock.Mocker) -> None:
    mocker.post(API_URL, text=answer('[{"id": "a"}]'))
    objects = call()["g"]["list"]
    first = next(iter(objects))
    first["accountId"] = "changed by a stream"
    assert next(iter(objects)) == {"id": "a"}


def test_an_object_that_is_not_utf8_fails_when_reached_after_the_ones_before_it(mocker: requests_mock.Mocker) -> None:
    body = answer('[{"id": "a"}, {"id": "b", "subject": "\xff"}]').encode("latin-1")
    mocker.post(API_URL, content=body, headers={"Content-Type": "application/json"})
    objects = iter(call()["g"]["list"])
    assert next(objects) == {"id": "a"}
    with pytest.raises(JmapServerError, match="not valid JSON text"):
        next(objects)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{"sessionState": "s0", "methodResponses": [["Email/get", {"list": []}]]}', "malformed methodResponses"),
        ('{"sessionState": "s0", "methodResponses": [["Email/get", [], "g"]]}', "malformed methodResponses"),
        ('{"hello": "world"}', "JSON of another kind"),
        ('[1, 2, 3]', "JSON of another kind"),
    ],
    ids=["entry of two", "arguments not an object", "no methodResponses", "an array"],
)
def test_json_that_is_not_a_jmap_answer_is_a_server_error_that_says_what_is_wrong(
    mocker: requests_mock.Mocker, text: str, said: str
) -> None:
    mocker.post(API_URL, text=text, headers={"Content-Type": "application/json"})
    with pytest.raises(JmapServerError) as raised:
        call()
    assert str(raised.value) == f"The JMAP API at {API_URL} answered with {said}"


def test_a_get_list_that_is_not_an_array_is_a_server_error(mocker: requests_mock.Mocker) -> None:
    mocker.post(API_URL, text=answer('{"id": "a"}'))
    with pytest.raises(JmapServerError, match="whose list is not an array"):
        call()["g"]
