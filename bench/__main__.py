"""`python -m bench NAME [ARGS...]` runs bench/NAME; `python -m bench all` runs every benchmark."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    names = available()
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: python -m bench {{{'|'.join([*names, 'all'])}}} [ARGS...]")
        return 0 if argv else 2
    chosen = names if argv[0] == "all" else [argv[0]]
    status = 0
    for name in chosen:
        if name not in names:
            print(f"unknown benchmark {name!r}; available: {', '.join(names)}", file=sys.stderr)
            return 2
        module = importlib.import_module(f"bench.{name}")
        status |= int(module.main(argv[1:] if argv[0] != "all" else []) or 0)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
