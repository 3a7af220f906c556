"""Helpers shared by the tests: real services started on 127.0.0.1, git repositories."""
