"""A real MCP client (the official Python `mcp` SDK) against the gateway of `switchboard up --demo`.

Both protocol eras on the one endpoint: `mode="legacy"` does the `initialize` handshake and keeps a
session; `mode="auto"` probes `server/discover` and speaks the stateless 2026-07-28 revision.

Contract relied on (DESIGN.md §9): `switchboard up --demo --data-dir D --registry-addr 127.0.0.1:0
--registry-admin-addr 127.0.0.1:0 --gateway-addr 127.0.0.1:0` prints `LISTEN registry-grpc A`,
`LISTEN registry-admin A`, `LISTEN gateway A` and `LISTEN agent-mcp A` once per demo agent
(date-service, then hello); MCP is served at http://<gateway>/mcp.
"""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.request

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from conftest import Process, eventually, switchboard_bin

CALL_TIMEOUT = 60.0
MODES = ["legacy", "auto"]
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class Up(Process):
    """`switchboard up --demo` on ephemeral loopback ports."""

    def __init__(self, data_dir, workdir):
        args = [
            switchboard_bin(), "up", "--demo",
            "--data-dir", str(data_dir),
            "--registry-addr", "127.0.0.1:0",
            "--registry-admin-addr", "127.0.0.1:0",
            "--gateway-addr", "127.0.0.1:0",
        ]
        super().__init__(args, workdir, ("registry-grpc", "registry-admin", "gateway"))
        eventually(lambda: len(self.agent_addrs()) == 2, timeout=30)
        self.gateway_addr = self.listeners["gateway"]
        self.url = f"http://{self.gateway_addr}/mcp"

    def agent_addrs(self) -> list[str]:
        return [line.split()[2] for line in self.stdout_lines if line.startswith("LISTEN agent-mcp ")]


def run(coroutine):
    """Runs one client interaction, bounded: a hang fails the test instead of stalling it."""
    return asyncio.run(asyncio.wait_for(coroutine, CALL_TIMEOUT))


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


def tool_names(url: str, mode: str) -> list[str]:
    async def names():
        async with Client(url, mode=mode) as client:
            return sorted(tool.name for tool in (await client.list_tools()).tools)

    return run(names())


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One demo mesh for the module; the gateway lists both demo tools before any test runs."""
    workdir = tmp_path_factory.mktemp("up")
    up = Up(workdir / "data", workdir)
    try:
        eventually(lambda: {"greet", "get_date"} <= set(tool_names(up.url, "auto")), timeout=30)
        yield up
    finally:
        up.stop()


@pytest.fixture
def url(demo, request) -> str:
    request.node._switchboard_processes = [demo]
    return demo.url


@pytest.mark.parametrize("mode", MODES)
def test_client_lists_and_calls_greet_through_the_gateway(url, mode):
    async def session():
        async with Client(url, mode=mode) as client:
            listed = await client.list_tools()
            greet = await client.call_tool("greet", {"name": "Ada"})
            date = await client.call_tool("get_date", {})
            return client.protocol_version, client.server_info, listed, greet, date

    version, server, listed, greet, date = run(session())
    if mode == "legacy":
        assert version in HANDSHAKE_PROTOCOL_VERSIONS, version
    else:
        assert version == "2026-07-28", "auto picks the stateless revision the gateway serves"
    assert server.name == "switchboard-gateway"

    tools = {tool.name: tool for tool in listed.tools}
    assert {"greet", "get_date"} <= set(tools), sorted(tools)
    assert tools["greet"].input_schema["properties"]["name"]["type"] == "string"
    assert listed.next_cursor is None

    assert not greet.is_error, text_of(greet)
    text = text_of(greet)
    assert text.startswith("Hello, Ada! Today is "), text
    # The date comes from date-service, the greet tool's dependency, through the mesh.
    assert DATE.search(text), text
    assert not date.is_error and DATE.fullmatch(text_of(date)), text_of(date)


@pytest.mark.parametrize("mode", MODES)
def test_unknown_tool_is_invalid_params(url, mode):
    async def call():
        async with Client(url, mode=mode) as client:
            with pytest.raises(MCPError) as raised:
                await client.call_tool("no_such_tool", {})
            return raised.value

    error = run(call())
    assert error.code == -32602, error
    assert "no_such_tool" in error.message


@pytest.mark.parametrize("mode", MODES)
def test_wrong_argument_type_comes_back_from_the_agent(url, mode):
    async def call():
        async with Client(url, mode=mode) as client:
            bad = await client.call_tool("greet", {"name": 5})
            good = await client.call_tool("greet", {"name": "Grace"})
            return bad, good

    bad, good = run(call())
    assert bad.is_error, text_of(bad)
    assert "invalid type" in text_of(bad), text_of(bad)
    assert not good.is_error and text_of(good).startswith("Hello, Grace!"), "same session still serves"


def test_probes_and_metrics_share_the_mcp_port(demo):
    base = f"http://{demo.gateway_addr}"
    for path in ("/healthz", "/readyz"):
        with urllib.request.urlopen(base + path, timeout=10) as response:
            assert response.status == 200, path
    run(_call_greet(demo.url))
    with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
        metrics = response.read().decode()
    ok = r'^switchboard_gateway_requests_total\{tool="greet",outcome="ok"\} [1-9]'
    assert re.search(ok, metrics, re.M), metrics
    families = ("upstream_duration_seconds_count", "breaker_state", "table_revision", "sessions", "tools")
    for family in families:
        assert re.search(rf"^switchboard_gateway_{family}\b", metrics, re.M), family


async def _call_greet(url: str):
    async with Client(url, mode="auto") as client:
        return await client.call_tool("greet", {"name": "Ada"})


def test_origin_not_allowed_is_403(demo):
    request = urllib.request.Request(
        demo.url,
        data=b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}',
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "Origin": "http://evil.example",
        },
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 403
