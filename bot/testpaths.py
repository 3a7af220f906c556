"""Which repository paths are test files, by the usual conventions of pytest, unittest,
jest/vitest/mocha and go: validation splits a patch by it, localization ranks by it.
May import: nothing from bot.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

_TEST_DIR = re.compile(r"(^|/)(tests?|__tests__|spec|specs)/")
_TEST_NAME = re.compile(r"(_test\.(py|go)|\.(test|spec)\.[cm]?[jt]sx?)$")


def is_test_path(path: str) -> bool:
    """Whether `path` (relative to the repository, `/`-separated) is a test file."""
    name = PurePosixPath(path).name
    return bool(
        _TEST_DIR.search(path)
        or name.startswith("test_")
        or _TEST_NAME.search(name)
        or name == "conftest.py"
    )
