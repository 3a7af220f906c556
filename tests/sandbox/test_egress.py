"""The install phase reaches only allow-listed hosts, through the egress proxy."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.errors import SandboxError
from bot.sandbox import Limits, make_sandbox
from bot.sandbox.bwrap import BwrapSandbox
from bot.sandbox.egress import DEFAULT_ALLOW, allowed, parse_allow_list
from bot.settings import load_settings

FETCH = """
import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
except Exception as exc:
    print('FAILED', exc)
"""
TUNNEL = """
import http.client, sys
conn = http.client.HTTPConnection('127.0.0.1', 3128, timeout=5)
conn.set_tunnel(sys.argv[1], int(sys.argv[2]))
try:
    conn.request('GET', '/')
    print(conn.getresponse().read().decode())
except OSError as exc:
    print('FAILED', exc)
"""
RAW = """
import socket, sys
try:
    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2)
    print('CONNECTED')
except OSError as exc:
    print('FAILED', exc)
"""


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"registry says hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def registry() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_allow_list_matching() -> None:
    allow = ("pypi.org", "127.0.0.1:8080")
    assert allowed("files.pypi.org", 443, allow) and allowed("PyPI.org.", 80, allow)
    assert not allowed("evilpypi.org", 443, allow)
    assert not allowed("pypi.org", 22, allow)
    assert allowed("127.0.0.1", 8080, allow) and not allowed("127.0.0.1", 8081, allow)
    assert parse_allow_list(load_settings({}).selfheal_egress_allow) == DEFAULT_ALLOW
    assert parse_allow_list("*") is None
    assert parse_allow_list("a.org, b.org") == ("a.org", "b.org")
    default = make_sandbox(load_settings({}))
    assert isinstance(default, BwrapSandbox) and default.egress_allow == DEFAULT_ALLOW
    open_net = make_sandbox(load_settings({"SELFHEAL_EGRESS_ALLOW": "*"}))
    assert isinstance(open_net, BwrapSandbox) and open_net.egress_allow is None


def test_install_phase_reaches_only_allow_listed_hosts(tmp_path: Path, registry: int) -> None:
    sandbox = BwrapSandbox(egress_allow=(f"127.0.0.1:{registry}",))
    limits = Limits(timeout_s=30)

    def fetch(url: str) -> str:
        result = sandbox.run(
            ["python3", "-c", FETCH, url], workdir=tmp_path, network=True, limits=limits
        )
        assert result.exit_code == 0, result.output
        return result.output

    assert "registry says hello" in fetch(f"http://127.0.0.1:{registry}/simple/")
    denied = fetch(f"http://localhost:{registry}/simple/")
    assert "FAILED" in denied and "403" in denied
    assert f"localhost:{registry}" in sandbox.egress_proxy().denied
    # HTTPS goes through CONNECT: tunnelled for an allowed host, refused for another.
    tunnel = sandbox.run(
        ["python3", "-c", TUNNEL, "127.0.0.1", str(registry)],
        workdir=tmp_path,
        network=True,
        limits=limits,
    )
    assert "registry says hello" in tunnel.output
    refused = sandbox.run(
        ["python3", "-c", TUNNEL, "example.com", "443"],
        workdir=tmp_path,
        network=True,
        limits=limits,
    )
    assert "FAILED" in refused.output and "403" in refused.output
    # Ignoring the proxy variables gives no network at all.
    raw = sandbox.run(
        ["python3", "-c", RAW, str(registry)], workdir=tmp_path, network=True, limits=limits
    )
    assert "CONNECTED" not in raw.output and "FAILED" in raw.output
    # The test phase has no proxy, no bridge, nothing.
    offline = sandbox.run(
        ["python3", "-c", FETCH, f"http://127.0.0.1:{registry}/"], workdir=tmp_path, limits=limits
    )
    assert "registry says hello" not in offline.output and "FAILED" in offline.output


class _SimpleIndex(http.server.BaseHTTPRequestHandler):
    """A PEP 503 package index serving the committed wheelhouse."""

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        from tests.conftest import WHEELS

        parts = [p for p in self.path.split("/") if p]
        if len(parts) == 2 and parts[0] == "simple":
            name = parts[1].lower().replace("_", "-")
            links = "".join(
                f'<a href="/files/{w.name}">{w.name}</a>'
                for w in sorted(WHEELS.glob("*.whl"))
                if w.name.split("-")[0].lower().replace("_", "-") == name
            )
            body = f"<html><body>{links}</body></html>".encode()
            kind = "text/html"
        elif len(parts) == 2 and parts[0] == "files" and (WHEELS / parts[1]).is_file():
            body = (WHEELS / parts[1]).read_bytes()
            kind = "application/octet-stream"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_environment_installs_from_an_allow_listed_registry_through_the_proxy(
    tmp_path: Path,
) -> None:
    from bot.environment import EnvironmentBuilder
    from bot.repo_config import RepoConfig
    from bot.testrun import run_tests
    from bot.toolchain import detect
    from bot.workspace import WorkspaceManager
    from tests.support.gitrepo import make_repo

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SimpleIndex)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        sandbox = BwrapSandbox(egress_allow=(f"127.0.0.1:{port}",))
        source = make_repo(
            tmp_path / "src",
            {"requirements.txt": "pytest\n", "test_ok.py": "def test_ok():\n    assert True\n"},
        )
        ws = WorkspaceManager(tmp_path / "cache").checkout(str(source), None, "job")
        index = ("--no-config", "--index-url", f"http://127.0.0.1:{port}/simple")
        builder = EnvironmentBuilder(tmp_path / "cache", sandbox, uv_index_args=index)
        prepared = builder.prepare(ws.path, detect(ws.path, RepoConfig()), str(source))
        run = run_tests(sandbox, ws.path, prepared.plan, limits=Limits(timeout_s=60))
        assert run.passed == ("test_ok.py::test_ok",)
        assert sandbox.egress_proxy().denied == []
        # The same install with the registry off the allow-list fails, and says why.
        closed = BwrapSandbox(egress_allow=("pypi.org",))
        ws2 = WorkspaceManager(tmp_path / "cache2").checkout(str(source), None, "job")
        with pytest.raises(SandboxError, match="install step"):
            EnvironmentBuilder(tmp_path / "cache2", closed, uv_index_args=index).prepare(
                ws2.path, detect(ws2.path, RepoConfig()), str(source)
            )
        assert f"127.0.0.1:{port}" in closed.egress_proxy().denied
    finally:
        server.shutdown()
