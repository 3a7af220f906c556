"""One SENTRY_PROJECT_REPOS lookup for the CLI and the webhooks."""

from __future__ import annotations

import pytest

from bot.readers.sentry import sentry_project_repo

MAPPING = {
    "acme/backend": "acme/backend-api",
    "web": "acme/web",
    "4501": "acme/ids",
    "x/solo": "acme/solo",
}


@pytest.mark.parametrize(
    ("org", "slug", "project_id", "expected"),
    [
        ("acme", "backend", None, "acme/backend-api"),  # org/slug
        ("other", "web", None, "acme/web"),  # bare slug
        ("acme", "unmapped", "4501", "acme/ids"),  # numeric project id
        (None, "solo", None, "acme/solo"),  # org unknown: the one */slug key
        ("y", "solo", None, None),  # org known and different: no guess
        (None, "nothing", None, None),
    ],
)
def test_lookup_order(
    org: str | None, slug: str, project_id: str | None, expected: str | None
) -> None:
    assert sentry_project_repo(MAPPING, org, slug, project_id) == expected


def test_ambiguous_suffix_is_not_guessed() -> None:
    assert sentry_project_repo({"a/app": "acme/a", "b/app": "acme/b"}, None, "app") is None
