"""Hypothesis fuzz of random headers and bodies, signed and unsigned: never a 5xx, and
nothing enqueued for anything unsigned."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from bot.settings import Settings
from bot.web import create_app
from tests.intake.conftest import signed_headers
from tests.support.services import job_keys, queue_length

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=6)
    ),
    max_leaves=30,
)
# Plausible shapes: the real top-level keys with random contents, so routing code is reached.
shaped = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["created", "labeled", "triggered", "completed", "x"])
        | json_values,
        "installation": st.fixed_dictionaries({}, optional={"id": json_values, "uuid": json_values})
        | json_values,
        "data": json_values,
        "event": st.fixed_dictionaries(
            {},
            optional={
                "event_type": st.sampled_from(["incident.triggered", "pagey.ping"]) | json_values,
                "data": json_values,
                "id": json_values,
            },
        ),
        "issue": json_values,
        "label": json_values,
        "comment": json_values,
        "repository": json_values,
        "sender": json_values,
        "check_run": json_values,
        "workflow_run": json_values,
        "pull_request": json_values,
    },
)
bodies = st.binary(max_size=300) | shaped.map(lambda d: __import__("json").dumps(d).encode())
header_names = st.sampled_from(
    [
        "X-GitHub-Event",
        "X-GitHub-Delivery",
        "Sentry-Hook-Resource",
        "X-Webhook-Id",
        "Content-Type",
        "Content-Length",
        "X-Hub-Signature-256",
        "Sentry-Hook-Signature",
        "X-PagerDuty-Signature",
    ]
)
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
events = st.sampled_from(
    [
        "issues",
        "issue_comment",
        "check_run",
        "workflow_run",
        "pull_request_review_comment",
        "installation",
        "installation_repositories",
        "ping",
        "push",
    ]
)
resources = st.sampled_from(["issue", "event_alert", "error", "comment", "installation"])


@pytest.fixture
def fuzz_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def test_fuzz_never_5xx(fuzz_client: TestClient, rdb: redis.Redis) -> None:
    statuses: list[int] = []

    @settings(
        max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    @given(
        source=st.sampled_from(["github", "sentry", "pagerduty"]),
        body=bodies,
        sign=st.booleans(),
        junk=st.dictionaries(header_names, header_values, max_size=4),
        event=events,
        resource=resources,
    )
    def one(
        source: str, body: bytes, sign: bool, junk: dict[str, str], event: str, resource: str
    ) -> None:
        headers = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": "d",
            "Sentry-Hook-Resource": resource,
        }
        headers.update(junk)
        headers.pop("Content-Length", None)
        if sign:
            headers.update(
                {k: v for k, v in signed_headers(source, body).items() if k != "Content-Type"}
            )
            headers.setdefault("Content-Type", "application/json")
        before = queue_length(rdb)
        response = fuzz_client.post(f"/webhooks/{source}", content=body, headers=headers)
        statuses.append(response.status_code)
        assert response.status_code < 500, response.text
        assert response.headers["content-type"] == "application/json"
        if not sign:
            assert response.status_code == 401
            assert queue_length(rdb) == before

    one()
    assert 401 in statuses and 400 in statuses
    # Every job that exists was created by a signed request and has a message.
    assert len(job_keys(rdb)) == queue_length(rdb)
