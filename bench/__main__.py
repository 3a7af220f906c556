"""`python -m bench NAME [ARGS...]` runs bench/NAME; `python -m bench all` runs every benchmark."""

from __future__ import annotations

import pkgutil
import runpy
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
        sys.argv = [f"bench.{name}", *(argv[1:] if argv[0] != "all" else [])]
        try:
            runpy.run_module(f"bench.{name}", run_name="__main__", alter_sys=True)
        except SystemExit as exit_:
            status |= int(exit_.code or 0) if isinstance(exit_.code, int) else 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
