"""One local HTTP server speaking the bits of GitHub, OpenAI and Anthropic that operators touch.

GitHub under /github: POST /app-manifests/{code}/conversions (201 once per issued code, else
404) and GET /app (checks the RS256 JWT against the App's public key). OpenAI under /openai:
GET /v1/models with `Authorization: Bearer`. Anthropic under /anthropic: GET /v1/models with
`x-api-key`. Every request is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.http import send_json, serving


def new_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


@dataclass
class Vendors:
    base: str = ""
    app_id: int = 424242
    slug: str = "selfheal-acme"
    private_key: str = field(default_factory=new_private_key)
    codes: set[str] = field(default_factory=set)
    openai_key: str = "sk-test-" + "o" * 32
    anthropic_key: str = "sk-ant-test-" + "a" * 32
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    # OAuth (user sign-in): code -> login, and the tokens handed out for them.
    oauth_codes: dict[str, str] = field(default_factory=dict)
    user_tokens: dict[str, str] = field(default_factory=dict)
    client_id: str = "Iv23liAbCdEfGhIjKlMn"
    client_secret: str = "0123456789abcdef0123456789abcdef01234567"

    @property
    def github_api(self) -> str:
        return f"{self.base}/github"

    def conversion(self) -> dict[str, Any]:
        return {
            "id": self.app_id,
            "slug": self.slug,
            "node_id": "A_kwHOAAAAAc4ABnpC",
            "name": "Selfheal (acme)",
            "description": "Turns production errors and CI failures into validated fixes.",
            "owner": {"login": "acme", "id": 1, "type": "Organization"},
            "external_url": "https://selfheal.acme.test",
            "html_url": f"https://github.com/apps/{self.slug}",
            "created_at": "2026-12-04T20:00:00Z",
            "updated_at": "2026-12-04T20:00:00Z",
            "permissions": {"contents": "write", "metadata": "read"},
            "events": ["issues", "workflow_run"],
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "webhook_secret": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4",
            "pem": self.private_key,
        }


@contextmanager
def fake_vendors() -> Iterator[Vendors]:
    vendors = Vendors()
    public_key = (
        serialization.load_pem_private_key(vendors.private_key.encode(), None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    class Handler(BaseHTTPRequestHandler):
        def reply(self, status: int, body: Any) -> None:
            send_json(self, status, body)

        def record(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            vendors.requests.append((self.command, self.path, dict(self.headers.items())))
            return body

        def do_POST(self) -> None:
            body = self.record()
            if self.path == "/login/oauth/access_token":
                # GitHub answers 200 with an error object for a bad code.
                data = json.loads(body or b"{}")
                login = vendors.oauth_codes.pop(str(data.get("code")), None)
                if (
                    login is None
                    or data.get("client_id") != vendors.client_id
                    or data.get("client_secret") != vendors.client_secret
                ):
                    self.reply(
                        200,
                        {
                            "error": "bad_verification_code",
                            "error_description": "The code passed is incorrect or expired.",
                        },
                    )
                    return
                token = "ghu_" + login.replace("-", "") + "x" * 30
                vendors.user_tokens[token] = login
                self.reply(200, {"access_token": token, "token_type": "bearer", "scope": ""})
                return
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[:2] == ["github", "app-manifests"] and parts[-1] == "conversions":
                code = parts[2]
                if code in vendors.codes:
                    vendors.codes.discard(code)
                    self.reply(201, vendors.conversion())
                    return
            self.reply(404, {"message": "Not Found", "status": "404"})

        def do_GET(self) -> None:
            self.record()
            path = self.path.split("?")[0].rstrip("/")
            auth = self.headers.get("Authorization", "")
            if path == "/github/user":
                token = auth.split(" ", 1)[-1]
                if token not in vendors.user_tokens:
                    self.reply(401, {"message": "Bad credentials"})
                    return
                self.reply(200, {"login": vendors.user_tokens[token], "id": 7, "type": "User"})
            elif path == "/github/app":
                try:
                    claims = jwt.decode(
                        auth.removeprefix("Bearer ").strip(), public_key, algorithms=["RS256"]
                    )
                except jwt.PyJWTError as exc:
                    self.reply(401, {"message": f"A JSON web token could not be decoded: {exc}"})
                    return
                if str(claims.get("iss")) != str(vendors.app_id):
                    self.reply(401, {"message": "Integration not found"})
                    return
                self.reply(
                    200,
                    {
                        "id": vendors.app_id,
                        "slug": vendors.slug,
                        "name": "Selfheal (acme)",
                        "owner": {"login": "acme"},
                    },
                )
            elif path == "/openai/v1/models":
                if auth != f"Bearer {vendors.openai_key}":
                    self.reply(
                        401,
                        {
                            "error": {
                                "message": "Incorrect API key provided",
                                "type": "invalid_request_error",
                                "code": "invalid_api_key",
                            }
                        },
                    )
                    return
                self.reply(
                    200,
                    {
                        "object": "list",
                        "data": [
                            {
                                "id": "gpt-4.1-mini",
                                "object": "model",
                                "created": 0,
                                "owned_by": "openai",
                            }
                        ],
                    },
                )
            elif path == "/anthropic/v1/models":
                # The SDK sends the key as x-api-key (1.x) or as a Bearer token (2.x).
                given = self.headers.get("x-api-key") or auth.removeprefix("Bearer ")
                if given != vendors.anthropic_key:
                    self.reply(
                        401,
                        {
                            "type": "error",
                            "error": {
                                "type": "authentication_error",
                                "message": "invalid x-api-key",
                            },
                        },
                    )
                    return
                self.reply(
                    200,
                    {
                        "data": [
                            {
                                "type": "model",
                                "id": "claude-sonnet-4-5",
                                "display_name": "Claude Sonnet 4.5",
                                "created_at": "2025-09-29T00:00:00Z",
                            }
                        ],
                        "has_more": False,
                        "first_id": "claude-sonnet-4-5",
                        "last_id": "claude-sonnet-4-5",
                    },
                )
            else:
                self.reply(404, {"message": "Not Found"})

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    vendors.base = f"http://127.0.0.1:{server.server_address[1]}"
    with serving(server):
        yield vendors
