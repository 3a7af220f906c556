"""Turn incident files and payloads into `Incident`s.

`read_incident(path)` and `parse_incident(content)` recognise the format by content. The
per-format readers take already-parsed payloads (the webhook receiver calls
`from_sentry_webhook` and `from_pagerduty_webhook` directly). Every reader raises
`bot.errors.IncidentFormatError` with one line on bad input; docs/incident-formats.md lists
the accepted formats. May import: bot.errors, bot.incident, bot.readers.*.
"""

from __future__ import annotations

from bot.readers.common import ACCEPTED_FORMATS, MAX_FILE_BYTES, MAX_FRAMES, MAX_MESSAGE_BYTES
from bot.readers.detect import parse_incident, read_incident
from bot.readers.node_stack import from_node_stack
from bot.readers.pagerduty import from_pagerduty_alerts, from_pagerduty_webhook
from bot.readers.python_traceback import from_python_traceback
from bot.readers.sentry import (
    SENTRY_RESOURCES,
    from_sentry_event,
    from_sentry_issue,
    from_sentry_webhook,
)

__all__ = [
    "ACCEPTED_FORMATS",
    "MAX_FILE_BYTES",
    "MAX_FRAMES",
    "MAX_MESSAGE_BYTES",
    "SENTRY_RESOURCES",
    "from_node_stack",
    "from_pagerduty_alerts",
    "from_pagerduty_webhook",
    "from_python_traceback",
    "from_sentry_event",
    "from_sentry_issue",
    "from_sentry_webhook",
    "parse_incident",
    "read_incident",
]
