"""Signature checks against the vendors' published test vectors and near misses."""

from __future__ import annotations

import hashlib
import hmac
import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.ingest import signatures
from tests.intake.conftest import PAGERDUTY_SECRET, fixture_bytes

GH_SECRET = "It's a Secret to Everybody"
GH_SIG = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
PD_SIG = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd"
PD_MISMATCH = "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5"
SENTRY_BODY = (
    b'{"action":"created","installation":{"uuid":"a8e5d37a-696c-4c54-adb5-b3f28d64c7de"},'
    b'"data":{"issue":{"id":"1170820242","shortId":"FRONT-END-9","project":{"slug":"front-end"}}},'
    b'"actor":{"type":"application","id":"sentry","name":"Sentry"}}'
)
SENTRY_SIG = "4c4909366a823bf52f9ebe828b178e8b4bb95fbd688fb8f38cf3a3e2eeffbce1"


def test_github_docs_vector() -> None:
    assert signatures.github_valid(GH_SECRET, b"Hello, World!", GH_SIG)
    assert signatures.github_signature(GH_SECRET, b"Hello, World!") == GH_SIG


def test_github_near_misses_are_refused() -> None:
    body = b"Hello, World!"
    for header in (
        None,
        "",
        GH_SIG[:-1],  # truncated
        GH_SIG.upper(),  # upper-case hex and prefix
        "sha256=" + GH_SIG[7:].upper(),
        GH_SIG.replace("sha256=", "sha1="),
        GH_SIG[7:],  # no prefix
        GH_SIG + "00",
        "sha256=" + "0" * 64,
    ):
        assert not signatures.github_valid(GH_SECRET, body, header), header
    assert not signatures.github_valid("", body, GH_SIG)  # an empty secret accepts nothing
    assert not signatures.github_valid("other", body, GH_SIG)


def test_sentry_signs_raw_bytes_not_reserialized_json() -> None:
    assert signatures.sentry_valid("example-client-secret", SENTRY_BODY, SENTRY_SIG)
    reserialized = json.dumps(json.loads(SENTRY_BODY)).encode()
    assert not signatures.sentry_valid("example-client-secret", reserialized, SENTRY_SIG)
    assert not signatures.sentry_valid("example-client-secret", SENTRY_BODY, SENTRY_SIG.upper())


def test_pagerduty_vector_and_rotation() -> None:
    body = fixture_bytes("pagerduty-webhook-signed.incident.priority_updated.json")
    assert signatures.pagerduty_valid(PAGERDUTY_SECRET, body, PD_SIG)
    assert not signatures.pagerduty_valid(PAGERDUTY_SECRET, body, PD_MISMATCH)
    # Two secrets during rotation: any matching entry is enough, in either position.
    assert signatures.pagerduty_valid(PAGERDUTY_SECRET, body, f"{PD_MISMATCH},{PD_SIG}")
    assert signatures.pagerduty_valid(PAGERDUTY_SECRET, body, f"{PD_SIG}, {PD_MISMATCH}")
    assert not signatures.pagerduty_valid(PAGERDUTY_SECRET, body, PD_SIG[3:])  # no v1=
    assert not signatures.pagerduty_valid(PAGERDUTY_SECRET, body, "v0=" + PD_SIG[3:])
    assert not signatures.pagerduty_valid(PAGERDUTY_SECRET, body + b"\n", PD_SIG)


def test_prepared_keys_check_the_vendor_vectors() -> None:
    """The receiver verifies with keys prepared once per process; they give the same answers."""
    assert signatures.github_valid(signatures.HmacKey(GH_SECRET), b"Hello, World!", GH_SIG)
    assert not signatures.github_valid(signatures.HmacKey("other"), b"Hello, World!", GH_SIG)
    key = signatures.HmacKey("example-client-secret")
    assert signatures.sentry_valid(key, SENTRY_BODY, SENTRY_SIG)
    assert not signatures.sentry_valid(key, SENTRY_BODY + b" ", SENTRY_SIG)
    body = fixture_bytes("pagerduty-webhook-signed.incident.priority_updated.json")
    assert signatures.pagerduty_valid(signatures.HmacKey(PAGERDUTY_SECRET), body, PD_SIG)
    assert "example" not in repr(key)


@settings(max_examples=300, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=200) | st.text(min_size=1, max_size=120),
    body=st.binary(max_size=3000),
)
@example(secret=b"k" * 64, body=b"")
@example(secret=b"k" * 65, body=b"x" * 64)
def test_a_prepared_key_is_hmac_sha256_for_any_key_and_body(
    secret: bytes | str, body: bytes
) -> None:
    """Keys shorter than, equal to and longer than SHA-256's 64-byte block (hashed first)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    expected = hmac.digest(raw, body, hashlib.sha256).hex()
    key = signatures.HmacKey(secret)
    assert key.hexdigest(body) == expected
    assert key.hexdigest(body) == expected  # the prepared states are copied, never consumed
