"""Webhook ingest benchmark: `python -m bench.ingest` (results in bench/results/ingest.*).

Starts a real redis-server and `selfheal serve --bare-route`, then on loopback:
  1. wrk against `POST /bench/bare` (202, no work) and against `POST /webhooks/sentry` with
     signed ~5 KB Sentry event_alert bodies (distinct event ids over 50 issues), same server,
     in alternating pairs (`--rounds`, default 5, of `--duration` 6 s each); the pair with the
     median ratio is reported, every pair's ratio is kept, since a shared machine's speed
     drifts between runs;
  2. a paced open-loop client at a fixed 200 req/s, latency measured from each request's
     scheduled send time (no coordinated omission);
  3. an alert storm: 10,000 signed events over 50 Sentry issues, which must make exactly 50 jobs.
"""
