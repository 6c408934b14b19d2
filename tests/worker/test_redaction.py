"""Redaction beyond word boundaries: a JWT glued to a word or after a percent-escape, a JWT
whose dots are escaped, Supabase secret keys; and uncaught exceptions logged through the
redacting formatter. Properties with Hypothesis: whatever surrounds a token, none of its
signature survives, and the JSON line stays valid."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import string
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.worker.fakes import claims_v2, sign
from worker.observe.logs import (
    JsonFormatter,
    install_uncaught_logging,
    log_asyncio_exception,
    redact,
)

TOKEN = sign(claims_v2(1_800_000_000))
SIGNATURE = TOKEN.rsplit(".", maxsplit=1)[-1]
DOTS = [".", "\\u002e", "\\u002E", "%2E", "%2e", "\\."]


def escaped(token: str, dot: str) -> str:
    return token.replace(".", dot)


@pytest.mark.parametrize("prefix", ["abc", "x%20", "%22", "key=", "_", "9", "\\\\"])
def test_a_jwt_glued_to_a_word_or_after_a_percent_escape_is_masked(prefix: str) -> None:
    text = redact(f"token {prefix}{TOKEN} end")
    assert SIGNATURE not in text
    assert "[redacted-jwt]" in text


@pytest.mark.parametrize("dot", DOTS)
def test_a_jwt_with_escaped_dots_is_masked_raw_and_json_encoded(dot: str) -> None:
    token = escaped(TOKEN, dot)
    assert SIGNATURE not in redact(f"a {token} b")
    line = json.dumps({"msg": f"x{token}"})
    masked = redact(line)
    assert SIGNATURE not in masked
    assert json.loads(masked)["msg"] == "x[redacted-jwt]"


@pytest.mark.parametrize("prefix", ["", "x", "x%20", "\\n"])
def test_supabase_secret_keys_are_masked(prefix: str) -> None:
    key = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"
    assert "N7UND0Ugj" not in redact(f"key {prefix}{key}")


def test_a_clerk_key_after_a_percent_escape_is_masked_but_not_inside_a_word() -> None:
    assert "AbCdEf01" not in redact("k=x%20sk_live_AbCdEf0123456789")
    assert redact("task_test_results") == "task_test_results"


def test_a_bearer_credential_with_percent_encoded_spaces_is_masked() -> None:
    assert "opaque-credential" not in redact("Authorization:%20Bearer%20opaque-credential")


surroundings = st.text(alphabet=string.printable + "\u00a0é", max_size=12)


@given(before=surroundings, after=surroundings, dot=st.sampled_from(DOTS))
def test_no_part_of_a_token_signature_survives_whatever_surrounds_it(
    before: str, after: str, dot: str
) -> None:
    token = escaped(TOKEN, dot)
    assert SIGNATURE not in redact(before + token + after)
    line = json.dumps({"msg": before + token + after})
    masked = redact(line)
    assert SIGNATURE not in masked
    json.loads(masked)  # still one valid JSON object


@given(text=st.text(alphabet=string.ascii_letters + string.digits + "._:-/ ", max_size=60))
def test_text_without_a_token_shape_is_left_alone(text: str) -> None:
    if "ey" not in text and "sk_" not in text and "bearer" not in text.lower():
        assert redact(text) == text


# -- uncaught exceptions -------------------------------------------------------------------


@pytest.fixture
def uncaught() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter({"org_id": "org_2abc"}))
    logger = logging.getLogger("worker.uncaught")
    logger.addHandler(handler)
    logger.propagate = False
    hooks = (sys.excepthook, threading.excepthook)
    yield stream
    sys.excepthook, threading.excepthook = hooks
    logger.removeHandler(handler)
    logger.propagate = True


def test_importing_the_cli_installs_no_hook() -> None:
    code = (
        "import sys, threading; import worker.cli; "
        "same = sys.excepthook is sys.__excepthook__ "
        "and threading.excepthook is threading.__excepthook__; "
        "sys.exit(0 if same else 1)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def fail_with_token() -> None:
    raise ValueError(f"bad token x{TOKEN}")


def test_an_uncaught_exception_is_one_redacted_json_line(uncaught: io.StringIO) -> None:
    install_uncaught_logging()
    try:
        fail_with_token()
    except ValueError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    [line] = [json.loads(raw) for raw in uncaught.getvalue().splitlines()]
    assert line["level"] == "CRITICAL"
    assert "ValueError" in str(line["exc"])
    assert SIGNATURE not in uncaught.getvalue()


def test_an_uncaught_exception_in_a_thread_is_logged_redacted(uncaught: io.StringIO) -> None:
    install_uncaught_logging()

    def crash() -> None:
        raise RuntimeError(f"thread saw {TOKEN}")

    thread = threading.Thread(target=crash)
    thread.start()
    thread.join()
    assert "RuntimeError" in uncaught.getvalue()
    assert SIGNATURE not in uncaught.getvalue()


def test_the_asyncio_handler_logs_a_redacted_line(uncaught: io.StringIO) -> None:
    loop = asyncio.new_event_loop()
    try:
        error = RuntimeError(f"task saw {TOKEN}")
        log_asyncio_exception(
            loop, {"message": "Task exception was never retrieved", "exception": error}
        )
        log_asyncio_exception(loop, {"message": f"no exception, a token {TOKEN}"})
    finally:
        loop.close()
    lines = [json.loads(raw) for raw in uncaught.getvalue().splitlines()]
    assert [line["level"] for line in lines] == ["ERROR", "ERROR"]
    assert SIGNATURE not in uncaught.getvalue()
