"""The exception tree. May import: nothing from bot.

    SelfhealError                 base of every error the bot raises on purpose
    ├── UsageError                the user asked for something impossible (CLI exit 2)
    │   ├── SettingsError         a setting is missing or invalid (names the variable)
    │   ├── IncidentFormatError   an incident file is unreadable or unrecognised
    │   ├── ModelScriptError      a scripted model file is malformed or ran out of turns
    │   └── RepoError             the target is not a usable git repository
    ├── ConfigError               the repo's .github/selfheal.yml is invalid (job -> report)
    ├── SandboxError              the sandbox could not start a command
    ├── ModelError                a model provider refused the call for good (401, 400, ...)
    └── JobFailed                 a job ran and could not produce a fix (CLI exit 1)

Every message is one line saying what is wrong and how to fix it; none contains a secret.
"""

from __future__ import annotations


class SelfhealError(Exception):
    """Base class: the message is shown to the user as is."""

    exit_code = 1


class UsageError(SelfhealError):
    """Bad input from the user: exit code 2."""

    exit_code = 2


class SettingsError(UsageError):
    """A setting is missing or invalid."""


class IncidentFormatError(UsageError):
    """An incident file could not be read or recognised."""


class ModelScriptError(UsageError):
    """A scripted model file is malformed or ran out of turns."""


class RepoError(UsageError):
    """The target path is not a usable git repository."""


class ConfigError(SelfhealError):
    """The repository's selfheal.yml is invalid."""


class SandboxError(SelfhealError):
    """The sandbox could not run a command at all (not: the command failed)."""


class ModelError(SelfhealError):
    """A model call failed for a reason retrying cannot fix, or retries ran out."""


class JobFailed(SelfhealError):
    """The job ran to its end without a fix."""
