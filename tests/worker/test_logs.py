"""JSON log lines and the redaction of tokens and secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from tests.worker.fakes import claims_v2, sign
from worker.observe.logs import JsonFormatter, configure_logging, redact

SECRET = "sk_live_AbCdEf0123456789"
# Module-level switches configure_logging turns off (caller, thread and process lookups).
_GLOBAL_FLAGS = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter({"org_id": "org_2abc"}))
    logger = logging.getLogger("tests.worker.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def fail_with_secret() -> None:
    raise RuntimeError(f"failed with {SECRET}")


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_line_with_the_standard_and_extra_fields(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("handled %s", "ping", extra={"topic": "events", "event": "ping", "event_id": 7})
    [line] = lines(stream)
    assert line["msg"] == "handled ping"
    assert (line["level"], line["logger"], line["org_id"]) == ("INFO", logger.name, "org_2abc")
    assert (line["topic"], line["event"], line["event_id"]) == ("events", "ping", 7)
    assert str(line["ts"]).endswith("+00:00")


def test_jwts_and_clerk_secrets_are_masked_in_messages_args_and_extras(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    token = sign(claims_v2(1_800_000_000))
    logger.warning("got %s with key %s", token, SECRET, extra={"detail": f"Bearer {token}"})
    text = stream.getvalue()
    assert token not in text
    assert SECRET not in text
    assert token.split(".")[1] not in text
    [line] = lines(stream)
    assert "[redacted-jwt]" in str(line["msg"])
    assert "[redacted-secret]" in str(line["msg"])


def test_exceptions_are_included_and_redacted(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    try:
        fail_with_secret()
    except RuntimeError:
        logger.exception("boom")
    [line] = lines(stream)
    assert "RuntimeError" in str(line["exc"])
    assert SECRET not in stream.getvalue()


@pytest.mark.parametrize(
    "text",
    ["worker.tokens.manager", "org:org_2abc:events", "1.2.3", "a.b.c", "user_2abc"],
)
def test_ordinary_dotted_names_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_configure_logging_installs_one_redacting_json_handler_on_root() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_flags = {name: getattr(logging, name) for name in _GLOBAL_FLAGS}
    stream = io.StringIO()
    try:
        configure_logging("debug", "org_2abc", stream=stream)
        logging.getLogger("third.party").info("key %s", SECRET)
        [line] = lines(stream)
        assert line["org_id"] == "org_2abc"
        assert SECRET not in stream.getvalue()
        assert root.level == logging.DEBUG
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        logging.getLogger("httpx").setLevel(logging.NOTSET)
        for name, value in saved_flags.items():
            setattr(logging, name, value)


def test_tokens_nested_in_structured_extras_are_masked_and_the_line_stays_json(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    token = sign(claims_v2(1_800_000_000))
    logger.info("frame", extra={"payload": {"access_token": token, "n": 1}})
    [line] = lines(stream)
    assert line["payload"] == {"access_token": "[redacted-jwt]", "n": 1}


@pytest.mark.parametrize("separator", ["\n", "\t", "\r", "\u00a0", '"', "\\"])
def test_secrets_right_after_a_character_json_escapes_are_still_masked(
    captured: tuple[logging.Logger, io.StringIO], separator: str
) -> None:
    # The line is redacted after JSON encoding, where "\n" becomes a backslash and an "n":
    # a word character, so a plain word boundary would no longer precede the secret.
    logger, stream = captured
    token = sign(claims_v2(1_800_000_000))
    logger.info("a%s%s", separator, token, extra={"detail": f"b{separator}{SECRET}"})
    logger.info("c", extra={"auth": f"x{separator}Bearer opaque-credential"})
    text = stream.getvalue()
    assert token.split(".")[1] not in text
    assert SECRET not in text
    assert "opaque-credential" not in text
    assert len(lines(stream)) == 2


def test_a_line_without_secrets_is_returned_unchanged() -> None:
    line = json.dumps(
        {"msg": "event handled", "idempotency_key": "org_2abc:events:7", "logger": "a.b.c"}
    )
    assert redact(line) == line


@pytest.mark.parametrize("space", ["\t", "\n", "\u00a0", " \r\n "])
def test_a_bearer_credential_after_escaped_whitespace_is_masked(
    captured: tuple[logging.Logger, io.StringIO], space: str
) -> None:
    logger, stream = captured
    logger.info("header Bearer%sopaque-credential", space)
    assert "opaque-credential" not in stream.getvalue()
    assert "Bearer [redacted]" in str(lines(stream)[0]["msg"])
