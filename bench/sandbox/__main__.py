"""`python -m bench.sandbox [--runs N]`."""

from bench.sandbox.run import main

main()
