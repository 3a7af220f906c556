"""`python -m bench.ingest [--duration S] [--connections N]`."""

from bench.ingest.run import main

main()
