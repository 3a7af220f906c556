"""Verified webhook payloads -> what to do: start a job, record something, or ignore it.

`signatures` checks HMACs on raw bytes; `github`, `sentry`, `pagerduty` read the few fields
routing needs from the payload dict (never a strict model: real payloads fail them) and return
a `Route`; `enrich` is the worker-side fetch of what webhooks leave out.
May import: bot.incident, bot.jobs, bot.settings, bot.errors.
"""
