"""Fixtures for the sandbox and workspace tests: real bwrap, real git, real packages."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from bot.environment import EnvironmentBuilder
from bot.sandbox import Sandbox
from bot.sandbox.bwrap import BwrapSandbox
from tests.conftest import OFFLINE_UV, WHEELS
from tests.support.gitrepo import make_repo

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def repo_from_archive(archive: Path, dest: Path, extra: dict[str, str] | None = None) -> Path:
    """A git repository holding the unpacked sdist or npm tarball (its single top folder)."""
    unpack = dest.with_name(dest.name + "-unpack")
    with tarfile.open(archive) as tar:
        tar.extractall(unpack, filter="data")
    (top,) = list(unpack.iterdir())
    files = {
        str(p.relative_to(top)): p.read_text(errors="replace")
        for p in sorted(top.rglob("*"))
        if p.is_file()
    }
    shutil.rmtree(unpack)
    return make_repo(dest, {**files, **(extra or {})})


@pytest.fixture(scope="session")
def bwrap() -> Sandbox:
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is not installed: apt-get install bubblewrap")
    return BwrapSandbox()


@pytest.fixture
def builder(tmp_path: Path, bwrap: Sandbox) -> EnvironmentBuilder:
    return EnvironmentBuilder(
        tmp_path / "cache", bwrap, uv_index_args=OFFLINE_UV, extra_ro_paths=(WHEELS,)
    )
