"""`python -m bench.agent`: the same as `python -m bench agent`."""

import sys

from bench.agent import main

sys.exit(main(sys.argv[1:]))
