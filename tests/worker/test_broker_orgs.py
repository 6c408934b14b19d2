"""The broker's orgs file: validated whole, one org per identity, credentials by hash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.broker import hash_credential, load_orgs, new_credential
from worker.broker.orgs import parse_orgs
from worker.errors import ConfigError

SA = "system:serviceaccount:realtime-worker:realtime-worker-org-2a"


def entry(org: str, **fields: object) -> dict[str, object]:
    return {"org_id": org, **fields}


def test_looks_orgs_up_by_service_account_and_by_credential() -> None:
    credential = new_credential()
    orgs = parse_orgs({"orgs": [
        entry("org_2a", service_accounts=[SA]),
        entry("org_2b", credential_sha256=hash_credential(credential)),
    ]})  # fmt: skip
    assert orgs.for_service_account(SA).org_id == "org_2a"  # type: ignore[union-attr]
    assert orgs.for_credential(credential).org_id == "org_2b"  # type: ignore[union-attr]
    assert orgs.for_credential(credential + "x") is None
    assert orgs.for_credential("") is None
    assert orgs.for_service_account(SA.replace("2a", "2b")) is None


def test_a_fresh_credential_is_long_and_random_and_only_its_hash_is_stored() -> None:
    first, second = new_credential(), new_credential()
    assert first != second
    assert first.startswith("rwb_")
    assert len(first) >= 40
    assert first not in json.dumps(entry("org_2a", credential_sha256=hash_credential(first)))


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ({"orgs": [entry("org_2a"), entry("org_2a")]}, "org_id appears in more than one"),
        (
            {
                "orgs": [
                    entry("org_2a", service_accounts=[SA]),
                    entry("org_2b", service_accounts=[SA]),
                ]
            },
            "service account appears in more than one",
        ),
        ({"orgs": [entry("org-2a")]}, "org_id is missing or invalid"),
        ({"orgs": [entry("org_2a", service_accounts=["default:sa"])]}, "service_accounts"),
        ({"orgs": [entry("org_2a", credential_sha256="plain-text")]}, "64 lowercase hex"),
        ({"orgs": [entry("org_2a", session_id="session")]}, "session_id"),
        ({"orgs": {}}, "expected"),
    ],
)
def test_every_problem_is_reported(raw: object, complaint: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_orgs(raw)
    assert any(complaint in p for p in info.value.problems), info.value.problems


def test_an_unreadable_or_invalid_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_orgs(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        load_orgs(tmp_path / "bad.json")
