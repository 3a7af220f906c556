"""Fixtures for the agent team: sample repositories checked out as real job workspaces."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.agent.messages import Message, ModelReply, ToolSpec
from bot.sandbox import Sandbox, make_sandbox
from bot.toolchain import TestPlan
from bot.workspace import Workspace, WorkspaceManager
from tests.support.agent_samples import SHOP, Sample, sample_plan


class ReplyQueue:
    """A ChatModel test double at the provider seam: returns scripted replies in order and
    records every conversation it was shown."""

    provider = "scripted"

    def __init__(self, replies: list[ModelReply], model: str = "test-model") -> None:
        self.replies = list(replies)
        self.model = model
        self.seen: list[list[Message]] = []
        self.tools_seen: list[list[str]] = []

    def complete(self, messages: list[Message], tools: list[ToolSpec], *, role: str) -> ModelReply:
        self.seen.append(list(messages))
        self.tools_seen.append([t.name for t in tools])
        if not self.replies:
            raise RuntimeError(f"script for {role} ran out of turns")
        return self.replies.pop(0)


@pytest.fixture
def plan() -> TestPlan:
    return sample_plan()


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    """Real bubblewrap; the interpreter running the tests is mounted read-only for pytest."""
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is not installed: apt-get install bubblewrap")
    return make_sandbox("bwrap", ro_paths=(Path(sys.prefix), Path(sys.base_prefix)))


@pytest.fixture
def checkout(tmp_path: Path) -> Callable[[Sample], Workspace]:
    """Build a sample repository and check it out as a job workspace."""

    def make(sample: Sample = SHOP) -> Workspace:
        origin = sample.build(tmp_path / f"origin-{sample.name}")
        manager = WorkspaceManager(tmp_path / "cache")
        return manager.checkout(str(origin), None, f"job-{sample.name}")

    return make
