"""A GitHub-compatible server on 127.0.0.1 for tests: REST, GraphQL and git smart HTTP.

Start it from any test with `with fake_github(tmp_path) as gh:`; `gh.api_url` is the REST
base (`/api/v3/`, so githubkit sends GraphQL to `/api/graphql` as for GitHub Enterprise
Server), `gh.app_id` / `gh.private_key` authenticate the App, and `gh` is the handle for
setting up repositories and asserting on what the bot did (`gh.calls`, `gh.repos[...]`).

What it checks the way GitHub does:
- `/app/**` routes need an RS256 App JWT signed with the App key (`iss` = app id);
- repository routes need an installation token (`token X` or `Bearer X`) whose installation
  covers the repository; git over HTTP needs Basic `x-access-token:<token>`;
- git clone/fetch/push run through the real `git http-backend` over bare repositories.

Faults are injected per test with `gh.fault(method, path_regex, status, ...)`; with
`apply=True` the request takes effect and only the response is replaced (the ambiguous
write: the merge happened but the answer was lost).
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.gitrepo import GIT_ENV

GIT_BACKEND = (
    subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    + "/git-http-backend"
)


@functools.cache
def _app_key() -> rsa.RSAPrivateKey:
    """One App key per test session: generating RSA keys is the slow part of a fake's start."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(login: str, type_: str = "User", uid: int = 1) -> dict[str, Any]:
    return {
        "login": login,
        "id": uid,
        "node_id": f"U_{uid}",
        "avatar_url": "",
        "gravatar_id": "",
        "url": f"/users/{login}",
        "html_url": f"https://github.example/{login}",
        "type": type_,
        "site_admin": False,
        **{
            f"{k}_url": f"/users/{login}/{k}"
            for k in (
                "followers",
                "following",
                "gists",
                "starred",
                "subscriptions",
                "organizations",
                "repos",
                "events",
                "received_events",
            )
        },
    }


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int
    apply: bool
    delay: float = 0.0


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class Pull:
    number: int
    title: str
    body: str
    head: str
    base: str
    draft: bool
    user: str
    state: str = "open"
    merged: bool = False
    merge_commit_sha: str | None = None
    merged_by: str | None = None
    labels: list[str] = field(default_factory=list)
    auto_merge: dict[str, Any] | None = None
    created_at: str = field(default_factory=_now)


@dataclass
class Repo:
    owner: str
    name: str
    bare: Path
    default_branch: str = "main"
    allow_auto_merge: bool = False
    required_checks: list[str] = field(default_factory=list)
    permissions: dict[str, str] = field(default_factory=dict)  # login -> admin|write|read
    pulls: dict[int, Pull] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    check_runs: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # sha -> statuses
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    merges: list[int] = field(default_factory=list)  # PR numbers, once per real merge
    runs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # run id -> its jobs
    job_logs: dict[int, str] = field(default_factory=dict)  # Actions job id -> its log
    id: int = 0

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def git(self, *args: str) -> str:
        out = subprocess.run(
            ["git", "-C", str(self.bare), *args],
            capture_output=True,
            text=True,
            check=True,
            env={**GIT_ENV, "PATH": "/usr/bin:/bin"},
        )
        return out.stdout.strip()

    def sha(self, ref: str) -> str | None:
        try:
            return self.git("rev-parse", "--verify", "-q", f"refs/heads/{ref}")
        except subprocess.CalledProcessError:
            return None

    def file(self, ref: str, path: str) -> str:
        return self.git("show", f"{ref}:{path}")


class FakeGitHub:
    """State and assertions; the HTTP server delegates every request here."""

    def __init__(self, root: Path, bot_login: str = "selfheal[bot]") -> None:
        self.root = root
        self.bot_login = bot_login
        self.app_id = 4242
        self.app_slug = bot_login.removesuffix("[bot]")
        key = _app_key()
        self.private_key = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self._public_key = key.public_key()
        self.repos: dict[str, Repo] = {}
        self.installations: dict[int, set[str]] = {}
        self.tokens: dict[str, tuple[int, datetime]] = {}
        self.token_ttl = timedelta(hours=1)
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.deliveries: list[dict[str, Any]] = []
        self.redelivered: list[int] = []
        self.manifest_codes: dict[str, dict[str, Any]] = {}
        self.lock = threading.RLock()
        self.base_url = ""  # set when the server starts
        self.server_log: list[str] = []  # the HTTP server's access log
        self._ids = itertools.count(1000)

    # --- setup helpers -------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v3/"

    def clone_url(self, repo: str) -> str:
        return f"{self.base_url}/{repo}.git"

    def add_repo(
        self,
        full_name: str,
        files: dict[str, str],
        installation_id: int = 1,
        *,
        default_branch: str = "main",
        allow_auto_merge: bool = False,
        required_checks: list[str] | None = None,
        permissions: dict[str, str] | None = None,
    ) -> Repo:
        owner, name = full_name.split("/")
        bare = self.root / "git" / owner / f"{name}.git"
        bare.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "--bare", "-b", default_branch, str(bare)], check=True)
        work = self.root / "seed" / full_name
        work.mkdir(parents=True)
        env = {**GIT_ENV, "PATH": "/usr/bin:/bin"}
        subprocess.run(["git", "init", "-q", "-b", default_branch, str(work)], check=True, env=env)
        for path, content in files.items():
            target = work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        for args in (
            ["add", "-A"],
            ["commit", "-q", "-m", "initial"],
            ["push", "-q", str(bare), "HEAD"],
        ):
            subprocess.run(["git", "-C", str(work), *args], check=True, env=env)
        repo = Repo(
            owner,
            name,
            bare,
            default_branch,
            allow_auto_merge,
            list(required_checks or []),
            dict(permissions or {}),
            id=next(self._ids),
        )
        with self.lock:
            self.repos[full_name] = repo
            self.installations.setdefault(installation_id, set()).add(full_name)
        return repo

    def fault(
        self,
        method: str,
        path: str,
        status: int,
        body: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        apply: bool = False,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` requests matching `method` and `path` (a regex) with `status`."""
        with self.lock:
            self.faults.append(
                Fault(
                    method.upper(),
                    re.compile(path),
                    status,
                    body or {"message": "Server Error"},
                    headers or {},
                    times,
                    apply,
                    delay,
                )
            )

    def calls_to(self, method: str, path_regex: str) -> list[Call]:
        rx = re.compile(path_regex)
        return [c for c in self.calls if c.method == method and rx.search(c.path)]

    def complete_check(self, repo: str, sha: str, name: str, conclusion: str = "success") -> None:
        """CI finished on `sha`: record a check run and run auto-merge if it is now satisfied."""
        with self.lock:
            r = self.repos[repo]
            r.check_runs.append(
                self._check_run(
                    r,
                    {
                        "name": name,
                        "head_sha": sha,
                        "status": "completed",
                        "conclusion": conclusion,
                    },
                    app="ci",
                )
            )
            for pull in list(r.pulls.values()):
                ready = self._checks_state(r, sha) == "success"
                if ready and pull.auto_merge and pull.state == "open" and r.sha(pull.head) == sha:
                    self._merge(r, pull, pull.auto_merge["merge_method"].lower(), self.bot_login)

    def add_issue(self, repo: str, number: int, title: str = "Crash", user: str = "alice") -> None:
        with self.lock:
            self.repos[repo].issues[number] = {"number": number, "title": title, "user": user}

    def add_comment(
        self, repo: str, number: int, body: str, user: str, type_: str = "User"
    ) -> dict[str, Any]:
        with self.lock:
            return self._comment(self.repos[repo], number, body, user, type_)

    def add_manifest_code(self, code: str, name: str = "selfheal") -> dict[str, Any]:
        """Make `code` redeemable once at POST /app-manifests/{code}/conversions."""
        conversion = {
            "id": self.app_id,
            "slug": name,
            "node_id": f"A_{self.app_id}",
            "client_id": "Iv1.fake",
            "client_secret": secrets.token_hex(20),
            "webhook_secret": secrets.token_hex(20),
            "pem": self.private_key,
            "owner": _user("acme", "Organization", 7),
            "name": name,
            "description": "",
            "external_url": "https://selfheal.example",
            "html_url": f"{self.base_url}/apps/{name}",
            "created_at": _now(),
            "updated_at": _now(),
            "permissions": {"contents": "write", "pull_requests": "write", "issues": "write"},
            "events": ["issues", "issue_comment", "pull_request"],
        }
        with self.lock:
            self.manifest_codes[code] = conversion
        return conversion

    def add_workflow_run(
        self, repo: str, run_id: int, head_sha: str, jobs: list[tuple[str, str, str]]
    ) -> list[int]:
        """A GitHub Actions run with jobs (name, conclusion, log text); returns the job ids."""
        with self.lock:
            r = self.repos[repo]
            ids = []
            for name, conclusion, log in jobs:
                jid = next(self._ids)
                ids.append(jid)
                r.job_logs[jid] = log
                r.runs.setdefault(run_id, []).append(
                    {
                        "id": jid,
                        "run_id": run_id,
                        "node_id": f"J_{jid}",
                        "head_sha": head_sha,
                        "name": name,
                        "status": "completed",
                        "conclusion": conclusion,
                        "html_url": f"{self.base_url}/{repo}/actions/runs/{run_id}/job/{jid}",
                        "started_at": _now(),
                        "completed_at": _now(),
                        "steps": [],
                    }
                )
            return ids

    def add_delivery(
        self, guid: str, status: str = "OK", event: str = "issues", installation_id: int = 1
    ) -> int:
        with self.lock:
            did = next(self._ids)
            self.deliveries.append(
                {
                    "id": did,
                    "guid": guid,
                    "delivered_at": _now(),
                    "redelivery": False,
                    "duration": 0.1,
                    "status": status,
                    "status_code": 200 if status == "OK" else 502,
                    "event": event,
                    "action": "opened",
                    "installation_id": installation_id,
                    "repository_id": None,
                    "throttled_at": None,
                }
            )
            return did

    # --- JSON shapes -----------------------------------------------------------------------

    def _repo_json(self, r: Repo) -> dict[str, Any]:
        return {
            "id": r.id,
            "node_id": f"R_{r.id}",
            "name": r.name,
            "full_name": r.full_name,
            "private": False,
            "owner": _user(r.owner, "Organization", r.id + 1),
            "html_url": f"{self.base_url}/{r.full_name}",
            "clone_url": self.clone_url(r.full_name),
            "url": f"{self.api_url}repos/{r.full_name}",
            "default_branch": r.default_branch,
            "allow_auto_merge": r.allow_auto_merge,
            "allow_squash_merge": True,
            "allow_merge_commit": True,
            "allow_rebase_merge": True,
            "archived": False,
            "disabled": False,
            "fork": False,
        }

    def _pull_json(self, r: Repo, p: Pull) -> dict[str, Any]:
        head_sha = r.sha(p.head) or ""
        checks = self._checks_state(r, head_sha) if head_sha else "pending"
        state = "clean" if checks == "success" or not r.required_checks else "blocked"
        return {
            "id": 100000 + p.number,
            "node_id": f"PR_{r.id}_{p.number}",
            "number": p.number,
            "url": f"{self.api_url}repos/{r.full_name}/pulls/{p.number}",
            "html_url": f"{self.base_url}/{r.full_name}/pull/{p.number}",
            "state": p.state,
            "locked": False,
            "title": p.title,
            "body": p.body,
            "draft": p.draft,
            "user": _user(p.user, "Bot" if p.user.endswith("[bot]") else "User"),
            "labels": [
                {
                    "id": i,
                    "node_id": f"L_{i}",
                    "name": n,
                    "color": "ededed",
                    "default": False,
                    "description": None,
                    "url": "",
                }
                for i, n in enumerate(p.labels)
            ],
            "head": {
                "ref": p.head,
                "sha": head_sha,
                "label": f"{r.owner}:{p.head}",
                "repo": self._repo_json(r),
                "user": _user(r.owner),
            },
            "base": {
                "ref": p.base,
                "sha": r.sha(p.base) or "",
                "label": f"{r.owner}:{p.base}",
                "repo": self._repo_json(r),
                "user": _user(r.owner),
            },
            "merged": p.merged,
            "merged_at": _now() if p.merged else None,
            "merge_commit_sha": p.merge_commit_sha,
            "merged_by": _user(p.merged_by) if p.merged_by else None,
            "mergeable": None if p.merged else True,
            "mergeable_state": "unknown" if p.merged else state,
            "auto_merge": p.auto_merge,
            "created_at": p.created_at,
            "updated_at": _now(),
            "closed_at": None if p.state == "open" else _now(),
        }

    def _comment(
        self, r: Repo, number: int, body: str, user: str, type_: str = "User"
    ) -> dict[str, Any]:
        cid = next(self._ids)
        comment = {
            "id": cid,
            "node_id": f"IC_{cid}",
            "body": body,
            "user": _user(user, type_),
            "html_url": f"{self.base_url}/{r.full_name}/issues/{number}#issuecomment-{cid}",
            "url": f"{self.api_url}repos/{r.full_name}/issues/comments/{cid}",
            "issue_url": f"{self.api_url}repos/{r.full_name}/issues/{number}",
            "created_at": _now(),
            "updated_at": _now(),
            "author_association": "NONE",
        }
        r.comments.setdefault(number, []).append(comment)
        return comment

    def _check_run(self, r: Repo, body: dict[str, Any], app: str = "selfheal") -> dict[str, Any]:
        cid = next(self._ids)
        return {
            "id": cid,
            "node_id": f"CR_{cid}",
            "name": body["name"],
            "head_sha": body["head_sha"],
            "status": body.get("status", "queued"),
            "conclusion": body.get("conclusion"),
            "output": body.get("output") or {},
            "details_url": body.get("details_url"),
            "html_url": f"{self.base_url}/{r.full_name}/runs/{cid}",
            "app": {"slug": app, "id": self.app_id if app == "selfheal" else 1},
            "started_at": _now(),
            "completed_at": _now() if body.get("status") == "completed" else None,
        }

    def _checks_state(self, r: Repo, sha: str) -> str:
        runs = [c for c in r.check_runs if c["head_sha"] == sha]
        latest: dict[str, dict[str, Any]] = {}
        for c in runs:
            latest[c["name"]] = c
        for name in r.required_checks:
            if name not in latest:
                return "pending"
        for c in latest.values():
            if c["status"] != "completed":
                return "pending"
            if c["conclusion"] not in ("success", "neutral", "skipped"):
                return "failure"
        return "success"

    def _merge(self, r: Repo, p: Pull, method: str, by: str) -> str:
        head = r.sha(p.head)
        base = r.sha(p.base)
        assert head and base
        if method == "merge":
            new = r.git(
                "commit-tree",
                f"{head}^{{tree}}",
                "-p",
                base,
                "-p",
                head,
                "-m",
                f"Merge pull request #{p.number}",
            )
        else:
            new = r.git(
                "commit-tree", f"{head}^{{tree}}", "-p", base, "-m", f"{p.title} (#{p.number})"
            )
        r.git("update-ref", f"refs/heads/{p.base}", new, base)
        p.merged, p.state, p.merge_commit_sha, p.merged_by = True, "closed", new, by
        p.auto_merge = None
        r.merges.append(p.number)
        return new

    # --- auth ------------------------------------------------------------------------------

    def _jwt_ok(self, header: str) -> bool:
        if not header.lower().startswith("bearer "):
            return False
        try:
            claims = jwt.decode(header[7:], self._public_key, algorithms=["RS256"])
        except jwt.PyJWTError:
            return False
        return str(claims.get("iss")) == str(self.app_id)

    def _token_installation(self, header: str) -> int | None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            user, _, value = base64.b64decode(value).decode(errors="replace").partition(":")
            if user != "x-access-token":
                return None
        elif scheme.lower() not in ("token", "bearer"):
            return None
        entry = self.tokens.get(value)
        if entry is None or entry[1] <= datetime.now(UTC):
            return None
        return entry[0]

    def _can_access(self, header: str, repo: str) -> bool:
        inst = self._token_installation(header)
        return inst is not None and repo in self.installations.get(inst, set())

    # --- dispatch --------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
    ) -> tuple[int, Any, dict[str, str]]:
        status, data, extra, delay = self._handle(method, path, query, headers, body)
        if delay:
            time.sleep(delay)  # a slow answer (the client may time out first)
        return status, data, extra

    def _handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
    ) -> tuple[int, Any, dict[str, str], float]:
        with self.lock:
            call = Call(method, path, query, headers, body)
            self.calls.append(call)
            fault = next(
                (
                    f
                    for f in self.faults
                    if f.method == method and f.path.search(path) and f.times > 0
                ),
                None,
            )
            if fault is not None:
                fault.times -= 1
                if fault.apply:
                    self._route(method, path, query, headers, body)
                call.status = fault.status
                return fault.status, fault.body, fault.headers, fault.delay
            status, data, extra = self._route(method, path, query, headers, body)
            call.status = status
            return status, data, extra, 0.0

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
    ) -> tuple[int, Any, dict[str, str]]:
        auth = headers.get("authorization", "")
        q = {k: v[0] for k, v in query.items()}
        if path == "/api/graphql":
            return self._graphql(auth, body)
        if not path.startswith("/api/v3/"):
            return 404, {"message": "Not Found"}, {}
        p = path[len("/api/v3") :]
        m = re.fullmatch(r"/app-manifests/([^/]+)/conversions", p)
        if m and method == "POST":
            conv = self.manifest_codes.pop(m.group(1), None)
            if conv is None:
                return 404, {"message": "Not Found"}, {}
            return 201, conv, {}
        if p.startswith("/app") or re.fullmatch(r"/repos/[^/]+/[^/]+/installation", p):
            if not self._jwt_ok(auth):
                return 401, {"message": "A JSON web token could not be decoded"}, {}
            return self._app_route(method, p, q)
        m = re.match(r"/repos/([^/]+)/([^/]+)(/.*)?$", p)
        if not m:
            return 404, {"message": "Not Found"}, {}
        full = f"{m.group(1)}/{m.group(2)}"
        if full not in self.repos:
            return 404, {"message": "Not Found"}, {}
        if not self._can_access(auth, full):
            return 401, {"message": "Bad credentials"}, {}
        return self._repo_route(self.repos[full], method, m.group(3) or "", q, body)

    def _app_route(self, method: str, p: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        m = re.fullmatch(r"/app/installations/(\d+)/access_tokens", p)
        if m and method == "POST":
            inst = int(m.group(1))
            if inst not in self.installations:
                return 404, {"message": "Not Found"}, {}
            token = "ghs_" + secrets.token_urlsafe(30)
            expires = datetime.now(UTC) + self.token_ttl
            self.tokens[token] = (inst, expires)
            return (
                201,
                {
                    "token": token,
                    "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "permissions": {"contents": "write", "pull_requests": "write"},
                    "repository_selection": "all",
                },
                {},
            )
        if p == "/app" and method == "GET":
            return (
                200,
                {
                    "id": self.app_id,
                    "slug": self.app_slug,
                    "name": self.app_slug,
                    "owner": _user("acme", "Organization"),
                },
                {},
            )
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/installation", p)
        if m:
            for inst, repos in self.installations.items():
                if m.group(1) in repos:
                    return (
                        200,
                        {
                            "id": inst,
                            "app_id": self.app_id,
                            "account": _user(m.group(1).split("/")[0]),
                        },
                        {},
                    )
            return 404, {"message": "Not Found"}, {}
        if p == "/app/hook/deliveries" and method == "GET":
            items = list(reversed(self.deliveries))  # newest first, as GitHub lists them
            if "status" in q:
                items = [d for d in items if (d["status"] == "OK") == (q["status"] == "success")]
            per_page, start = int(q.get("per_page", 30)), int(q.get("cursor", 0))
            page, extra = items[start : start + per_page], {}
            if start + per_page < len(items):
                nxt = f"{self.api_url}app/hook/deliveries?per_page={per_page}"
                nxt += f"&cursor={start + per_page}"
                if "status" in q:
                    nxt += f"&status={q['status']}"
                extra["Link"] = f'<{nxt}>; rel="next"'
            return 200, page, extra
        m = re.fullmatch(r"/app/hook/deliveries/(\d+)(/attempts)?", p)
        if m:
            found = [d for d in self.deliveries if d["id"] == int(m.group(1))]
            if not found:
                return 404, {"message": "Not Found"}, {}
            if m.group(2) and method == "POST":
                self.redelivered.append(found[0]["id"])
                return 202, {}, {}
            return (
                200,
                {
                    **found[0],
                    "request": {"headers": {}, "payload": {}},
                    "response": {"headers": {}, "payload": ""},
                },
                {},
            )
        return 404, {"message": "Not Found"}, {}

    def _repo_route(
        self, r: Repo, method: str, p: str, q: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        body = body if isinstance(body, dict) else {}
        if p == "" and method == "GET":
            return 200, self._repo_json(r), {}
        if p == "/pulls" and method == "GET":
            pulls = list(r.pulls.values())
            if "head" in q:
                owner, _, ref = q["head"].partition(":")
                pulls = [x for x in pulls if x.head == ref and owner == r.owner]
            state = q.get("state", "open")
            if state != "all":
                pulls = [x for x in pulls if x.state == state]
            return 200, [self._pull_json(r, x) for x in sorted(pulls, key=lambda x: -x.number)], {}
        if p == "/pulls" and method == "POST":
            head = str(body.get("head", "")).split(":")[-1]
            if r.sha(head) is None:
                return (
                    422,
                    {
                        "message": "Validation Failed",
                        "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}],
                    },
                    {},
                )
            if any(x.head == head and x.state == "open" for x in r.pulls.values()):
                return (
                    422,
                    {
                        "message": "Validation Failed",
                        "errors": [
                            {
                                "resource": "PullRequest",
                                "code": "custom",
                                "message": f"A pull request already exists for {r.owner}:{head}.",
                            }
                        ],
                    },
                    {},
                )
            number = max([*r.pulls, *r.issues, 0]) + 1
            pull = Pull(
                number,
                body["title"],
                body.get("body") or "",
                head,
                body["base"],
                bool(body.get("draft")),
                self.bot_login,
            )
            r.pulls[number] = pull
            return 201, self._pull_json(r, pull), {}
        m = re.fullmatch(r"/pulls/(\d+)(/merge)?", p)
        if m:
            pull = r.pulls.get(int(m.group(1)))
            if pull is None:
                return 404, {"message": "Not Found"}, {}
            if m.group(2) and method == "PUT":
                if pull.merged or pull.state != "open":
                    return 405, {"message": "Pull Request is not mergeable"}, {}
                if body.get("sha") and body["sha"] != r.sha(pull.head):
                    return (
                        409,
                        {"message": "Head branch was modified. Review and try the merge again."},
                        {},
                    )
                if self._checks_state(r, r.sha(pull.head) or "") != "success":
                    return 405, {"message": "Required status check is expected."}, {}
                sha = self._merge(r, pull, body.get("merge_method", "merge"), self.bot_login)
                return (
                    200,
                    {"sha": sha, "merged": True, "message": "Pull Request successfully merged"},
                    {},
                )
            if m.group(2) and method == "GET":
                return (204, None, {}) if pull.merged else (404, {"message": "Not Found"}, {})
            if method == "PATCH":
                for key in ("title", "body", "state"):
                    if key in body:
                        setattr(pull, key, body[key])
            return 200, self._pull_json(r, pull), {}
        m = re.fullmatch(r"/issues/(\d+)(/comments|/labels)?", p)
        if m:
            number = int(m.group(1))
            if number not in r.issues and number not in r.pulls:
                return 404, {"message": "Not Found"}, {}
            if m.group(2) == "/comments" and method == "POST":
                return (
                    201,
                    self._comment(r, number, body.get("body", ""), self.bot_login, "Bot"),
                    {},
                )
            if m.group(2) == "/comments":
                return 200, r.comments.get(number, []), {}
            if m.group(2) == "/labels" and method == "POST":
                target = (
                    r.pulls[number].labels
                    if number in r.pulls
                    else r.issues[number].setdefault("labels", [])
                )
                for name in body.get("labels", []):
                    if name not in target:
                        target.append(name)
                return (
                    200,
                    [
                        {
                            "id": i,
                            "node_id": f"L_{i}",
                            "name": n,
                            "color": "ededed",
                            "default": False,
                            "description": None,
                            "url": "",
                        }
                        for i, n in enumerate(target)
                    ],
                    {},
                )
            issue = r.issues.get(number) or {
                "title": r.pulls[number].title,
                "user": r.pulls[number].user,
            }
            data = {
                "number": number,
                "title": issue["title"],
                "state": "open",
                "user": _user(issue["user"]),
                "html_url": f"{self.base_url}/{r.full_name}/"
                f"{'pull' if number in r.pulls else 'issues'}/{number}",
            }
            if number in r.pulls:
                data["pull_request"] = {"url": f"{self.api_url}repos/{r.full_name}/pulls/{number}"}
            return 200, data, {}
        m = re.fullmatch(r"/issues/comments/(\d+)", p)
        if m:
            for comments in r.comments.values():
                for c in comments:
                    if c["id"] == int(m.group(1)):
                        if method == "PATCH":
                            c["body"] = body.get("body", c["body"])
                            c["updated_at"] = _now()
                        return 200, c, {}
            return 404, {"message": "Not Found"}, {}
        if p == "/check-runs" and method == "POST":
            output = body.get("output") or {}
            for key in ("summary", "text"):
                if len(output.get(key) or "") > 65535:
                    return (
                        422,
                        {
                            "message": f"Invalid request. output.{key} is too long"
                            " (maximum is 65535 characters)"
                        },
                        {},
                    )
            run = self._check_run(r, body)
            r.check_runs.append(run)
            return 201, run, {}
        m = re.fullmatch(r"/commits/([^/]+)/(check-runs|status)", p)
        if m:
            sha = (
                m.group(1)
                if re.fullmatch(r"[0-9a-f]{40}", m.group(1))
                else (r.sha(m.group(1)) or "")
            )
            if m.group(2) == "check-runs":
                runs = [c for c in reversed(r.check_runs) if c["head_sha"] == sha]  # newest first
                return 200, {"total_count": len(runs), "check_runs": runs}, {}
            statuses = r.statuses.get(sha, [])
            state = (
                "pending"
                if not statuses
                else ("success" if all(s["state"] == "success" for s in statuses) else "failure")
            )
            return (
                200,
                {"state": state, "statuses": statuses, "sha": sha, "total_count": len(statuses)},
                {},
            )
        m = re.fullmatch(r"/contents/(.+)", p)
        if m and method == "GET":
            ref = q.get("ref", r.default_branch)
            try:
                text = r.git("show", f"{ref}:{unquote(m.group(1))}")
            except subprocess.CalledProcessError:
                return 404, {"message": "Not Found"}, {}
            encoded = base64.b64encode((text + "\n").encode()).decode()
            return (
                200,
                {"type": "file", "encoding": "base64", "path": m.group(1), "content": encoded},
                {},
            )
        m = re.fullmatch(r"/branches/([^/]+)", p)
        if m and method == "GET":
            sha = r.sha(m.group(1))
            if sha is None:
                return 404, {"message": "Branch not found"}, {}
            protected = m.group(1) == r.default_branch and bool(r.required_checks)
            checks = {
                "enforcement_level": "non_admins",
                "contexts": list(r.required_checks),
                "checks": [{"context": c, "app_id": None} for c in r.required_checks],
            }
            return (
                200,
                {
                    "name": m.group(1),
                    "commit": {"sha": sha},
                    "protected": protected,
                    "protection": {"enabled": protected, "required_status_checks": checks},
                },
                {},
            )
        m = re.fullmatch(r"/actions/runs/(\d+)/jobs", p)
        if m and method == "GET":
            run_jobs = r.runs.get(int(m.group(1)))
            if run_jobs is None:
                return 404, {"message": "Not Found"}, {}
            return 200, {"total_count": len(run_jobs), "jobs": run_jobs}, {}
        m = re.fullmatch(r"/actions/jobs/(\d+)/logs", p)
        if m and method == "GET":
            log = r.job_logs.get(int(m.group(1)))
            if log is None:
                return 404, {"message": "Not Found"}, {}
            # GitHub answers with a redirect to the log file; the client follows it.
            location = f"{self.base_url}/_logs/{r.full_name}/{m.group(1)}"
            return 302, None, {"Location": location}
        m = re.fullmatch(r"/collaborators/([^/]+)/permission", p)
        if m:
            login = unquote(m.group(1))
            perm = r.permissions.get(login)
            if perm is None:
                return 404, {"message": f"{login} is not a user"}, {}
            legacy = {"maintain": "write", "triage": "read"}.get(perm, perm)
            return 200, {"permission": legacy, "role_name": perm, "user": _user(login)}, {}
        return 404, {"message": "Not Found"}, {}

    def _graphql(self, auth: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        inst = self._token_installation(auth)
        if inst is None:
            return 401, {"message": "Bad credentials"}, {}
        query = str((body or {}).get("query", ""))
        variables = (body or {}).get("variables") or {}
        flag = re.search(
            r"(disablePullRequestAutoMerge|markPullRequestReadyForReview|convertPullRequestToDraft)",
            query,
        )
        if flag:
            return self._graphql_flag(inst, flag.group(1), str(variables.get("id", "")))
        if "enablePullRequestAutoMerge" not in query:
            return (
                200,
                {"errors": [{"message": "this fake answers enablePullRequestAutoMerge only"}]},
                {},
            )
        m = re.fullmatch(r"PR_(\d+)_(\d+)", str(variables.get("id", "")))
        repo = next((r for r in self.repos.values() if m and r.id == int(m.group(1))), None)
        if (
            repo is None
            or m is None
            or int(m.group(2)) not in repo.pulls
            or repo.full_name not in self.installations.get(inst, set())
        ):
            return (
                200,
                {
                    "data": {"enablePullRequestAutoMerge": None},
                    "errors": [
                        {
                            "type": "NOT_FOUND",
                            "path": ["enablePullRequestAutoMerge"],
                            "message": "Could not resolve to a node with the global id of "
                            f"'{variables.get('id')}'",
                        }
                    ],
                },
                {},
            )
        pull = repo.pulls[int(m.group(2))]

        def err(msg: str) -> tuple[int, Any, dict[str, str]]:
            return (
                200,
                {
                    "data": {"enablePullRequestAutoMerge": None},
                    "errors": [
                        {
                            "type": "UNPROCESSABLE",
                            "path": ["enablePullRequestAutoMerge"],
                            "message": msg,
                        }
                    ],
                },
                {},
            )

        if not repo.allow_auto_merge:
            return err("Pull request Auto merge is not allowed for this repository")
        head = repo.sha(pull.head)
        if variables.get("sha") and variables["sha"] != head:
            return err("Pull request head ref has changed")
        if not repo.required_checks or self._checks_state(repo, head or "") == "success":
            return err("Pull request Pull request is in clean status")
        method_match = re.search(r"mergeMethod:\s*(\w+)", query)
        method = variables.get("method") or (method_match.group(1) if method_match else "MERGE")
        pull.auto_merge = {
            "enabled_by": _user(self.bot_login, "Bot"),
            "merge_method": str(method).lower(),
            "commit_title": None,
            "commit_message": None,
        }
        return (
            200,
            {
                "data": {
                    "enablePullRequestAutoMerge": {
                        "pullRequest": {
                            "number": pull.number,
                            "autoMergeRequest": {
                                "enabledAt": _now(),
                                "mergeMethod": str(method).upper(),
                            },
                        }
                    }
                }
            },
            {},
        )

    def _graphql_flag(self, inst: int, mutation: str, node: str) -> tuple[int, Any, dict[str, str]]:
        m = re.fullmatch(r"PR_(\d+)_(\d+)", node)
        repo = next((r for r in self.repos.values() if m and r.id == int(m.group(1))), None)
        if repo is None or m is None or int(m.group(2)) not in repo.pulls:
            return (
                200,
                {
                    "data": {mutation: None},
                    "errors": [
                        {
                            "type": "NOT_FOUND",
                            "message": f"Could not resolve to a node with the id '{node}'",
                        }
                    ],
                },
                {},
            )
        if repo.full_name not in self.installations.get(inst, set()):
            return (
                200,
                {
                    "data": {mutation: None},
                    "errors": [
                        {"type": "FORBIDDEN", "message": "Resource not accessible by integration"}
                    ],
                },
                {},
            )
        pull = repo.pulls[int(m.group(2))]
        if mutation == "disablePullRequestAutoMerge":
            pull.auto_merge = None
        else:
            pull.draft = mutation == "convertPullRequestToDraft"
        return (
            200,
            {"data": {mutation: {"pullRequest": {"number": pull.number, "isDraft": pull.draft}}}},
            {},
        )


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        self.server.log.append(format % args)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        raw = self._body()
        fake = self.server.fake
        if re.search(r"\.git/(info/refs|git-upload-pack|git-receive-pack)$", url.path):
            self._git(url.path, url.query, raw)
            return
        m = re.fullmatch(r"/_logs/([^/]+/[^/]+)/(\d+)", url.path)
        if m is not None:
            with fake.lock:
                repo_obj = fake.repos.get(m.group(1))
                log = repo_obj.job_logs.get(int(m.group(2))) if repo_obj else None
            data = (log or "").encode()
            self.send_response(200 if log is not None else 404)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            self._send(400, {"message": "Problems parsing JSON"}, {})
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, data, extra = fake.handle(
            self.command, url.path, parse_qs(url.query), headers, body
        )
        self._send(status, data, extra)

    def _send(self, status: int, data: Any, extra: dict[str, str]) -> None:
        payload = b"" if data is None else json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-GitHub-Request-Id", secrets.token_hex(8))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def _git(self, path: str, query: str, raw: bytes) -> None:
        fake = self.server.fake
        m = re.match(r"/([^/]+/[^/]+?)\.git/", path)
        repo = m.group(1) if m else ""
        auth = self.headers.get("Authorization", "")
        with fake.lock:
            fake.calls.append(
                Call(
                    self.command,
                    path,
                    parse_qs(query),
                    {k.lower(): v for k, v in self.headers.items()},
                    None,
                )
            )
            known = repo in fake.repos
            allowed = known and fake._can_access(auth, repo)
        if not allowed:
            self.send_response(401 if known or not auth else 404)
            self.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        env = {
            "PATH": "/usr/bin:/bin",
            "GIT_PROJECT_ROOT": str(fake.root / "git"),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(raw)),
            "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        proc = subprocess.run([GIT_BACKEND], input=raw, capture_output=True, env=env, check=False)
        head, _, body = proc.stdout.partition(b"\r\n\r\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeGitHub) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self.log: list[str] = []


@contextmanager
def fake_github(root: Path, bot_login: str = "selfheal[bot]") -> Iterator[FakeGitHub]:
    """Run a fake GitHub on a free port for the duration of the block."""
    fake = FakeGitHub(root, bot_login)
    server = _Server(fake)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    fake.server_log = server.log
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="fake-github", daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
