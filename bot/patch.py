"""The patch record: a unified diff and what it touches. May import: nothing from bot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError


@dataclass(frozen=True)
class Patch:
    """A unified diff (git format) with its changed files and line counts."""

    diff: str
    files: tuple[str, ...]
    added: int
    removed: int

    @classmethod
    def from_diff(cls, diff: str) -> Patch:
        if not diff.strip():
            return cls(diff="", files=(), added=0, removed=0)
        try:
            patch_set = PatchSet(diff)
        except UnidiffParseError:
            return cls(diff=diff, files=(), added=0, removed=0)
        files = tuple(
            (f.target_file if not f.is_removed_file else f.source_file)
            .removeprefix("b/")
            .removeprefix("a/")
            for f in patch_set
        )
        return cls(
            diff=diff,
            files=files,
            added=sum(f.added for f in patch_set),
            removed=sum(f.removed for f in patch_set),
        )

    @property
    def empty(self) -> bool:
        return not self.diff.strip()

    @property
    def changed_lines(self) -> int:
        return self.added + self.removed

    def to_dict(self) -> dict[str, Any]:
        return {"files": list(self.files), "added": self.added, "removed": self.removed}
