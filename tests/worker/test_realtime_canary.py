"""The canary for the pinned ``realtime`` client: every private member the adapter uses is
still there, with the signature the adapter calls it with (worker/realtime/adapter.py lists
them). A failure names the member: re-read the adapter against the new client before
moving the pin in pyproject.toml."""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from realtime import AsyncRealtimeChannel, AsyncRealtimeClient
from realtime._async.push import AsyncPush
from realtime.message import ServerMessageAdapter

from worker.realtime.frames import deliver

ROOT = Path(__file__).resolve().parents[2]
URL = "ws://127.0.0.1:1/realtime/v1"

#: (class, method, parameters, coroutine?) the adapter wraps or calls.
METHODS = [
    (AsyncRealtimeClient, "_reconnect", ["self", "error"], True),
    (AsyncRealtimeClient, "_on_connect", ["self"], True),
    (AsyncRealtimeChannel, "_handle_message", ["self", "message"], False),
    (AsyncPush, "update_payload", ["self", "payload"], False),
]
#: Instance attributes the adapter reads or sets, per object.
CLIENT_ATTRS = ["_listen_task", "_ws_connection", "channels", "access_token", "auto_reconnect"]
CHANNEL_ATTRS = ["join_push", "broadcast_callbacks"]
PUSH_ATTRS = ["ref"]


def _version() -> str:
    return importlib.metadata.version("realtime")


def test_the_installed_client_is_the_pinned_one() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    [pin] = [d for d in project["dependencies"] if re.match(r"realtime\b", d)]
    assert pin == f"realtime=={_version()}", (
        f"pyproject pins {pin!r} but realtime {_version()} is installed: the adapter is "
        "checked against one exact release"
    )


@pytest.mark.parametrize(("cls", "name", "params", "is_coroutine"), METHODS)
def test_each_private_method_the_adapter_uses_is_unchanged(
    cls: type, name: str, params: list[str], is_coroutine: bool
) -> None:
    where = f"{cls.__name__}.{name} (realtime {_version()}, used by worker/realtime)"
    method = getattr(cls, name, None)
    assert method is not None, f"{where} is gone"
    assert list(inspect.signature(method).parameters) == params, f"{where} changed signature"
    assert inspect.iscoroutinefunction(method) is is_coroutine, f"{where} changed sync/async"


def _channel() -> tuple[AsyncRealtimeClient, AsyncRealtimeChannel]:
    client = AsyncRealtimeClient(URL, token="anon")  # builds objects only: no connection
    channel = client.channel("org:org_a:events", {"config": {"private": True}})
    return client, channel


@pytest.mark.parametrize("name", CLIENT_ATTRS)
def test_each_client_attribute_the_adapter_uses_exists(name: str) -> None:
    client, _ = _channel()
    assert hasattr(client, name), f"AsyncRealtimeClient.{name} is gone (realtime {_version()})"


@pytest.mark.parametrize("name", CHANNEL_ATTRS)
def test_each_channel_attribute_the_adapter_uses_exists(name: str) -> None:
    _, channel = _channel()
    assert hasattr(channel, name), f"AsyncRealtimeChannel.{name} is gone (realtime {_version()})"


@pytest.mark.parametrize("name", PUSH_ATTRS)
def test_each_join_push_attribute_the_adapter_uses_exists(name: str) -> None:
    _, channel = _channel()
    push = channel.join_push
    assert hasattr(push, name), f"AsyncPush.{name} is gone (realtime {_version()})"


def test_the_adapter_routes_a_broadcast_exactly_as_the_client_would() -> None:
    # frames.deliver replaces the client's own routing of broadcasts; both must hand the
    # channel's broadcast callbacks the same value.
    client, channel = _channel()
    got: list[Any] = []
    channel.on_broadcast("*", got.append)
    frame = json.dumps(
        {
            "topic": channel.topic,
            "event": "broadcast",
            "payload": {"event": "task.created", "payload": {"n": 1}, "type": "broadcast"},
            "ref": None,
        }
    )
    channel._handle_message(ServerMessageAdapter.validate_json(frame))
    assert deliver(client, frame, sink=None) is True
    assert len(got) == 2
    assert got[0] == got[1], "the adapter delivers a different value than the client"
