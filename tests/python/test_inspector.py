"""The MCP Inspector CLI (pinned, DESIGN.md §11) against the gateway of `switchboard up --demo`:
what a developer types to poke at the mesh.

    npx -y @modelcontextprotocol/inspector@2.12.0 --cli http://ADDR/mcp --method tools/list
    npx -y @modelcontextprotocol/inspector@2.12.0 --cli http://ADDR/mcp --method tools/call \
        --tool-name greet --tool-arg name=Ada

The first run downloads the package (allow minutes). Skipped, loudly, only when npm or its registry
is unreachable; any other failure of the Inspector fails the test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from conftest import eventually
from test_gateway_mcp import Up

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
# The first npx run downloads the Inspector and its dependencies.
FIRST_RUN_TIMEOUT = 180.0
RUN_TIMEOUT = 120.0
# What npm prints when it cannot reach its registry (no network, DNS, proxy).
UNREACHABLE = re.compile(
    r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH"
    r"|network request to .* failed|request to https?://\S+ failed|getaddrinfo|socket hang up",
    re.I,
)


def skip_loudly(reason: str) -> None:
    print(f"\n!!! SKIPPING the MCP Inspector test: {reason}", file=sys.stderr, flush=True)
    pytest.skip(reason)


def inspector(*args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["npx", "-y", INSPECTOR, "--cli", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def describe(result: subprocess.CompletedProcess) -> str:
    return (
        f"exit {result.returncode}\n--- stdout ---\n{result.stdout}\n"
        f"--- stderr ---\n{result.stderr[-4000:]}"
    )


@pytest.fixture(scope="module")
def inspector_ready():
    """The Inspector installed in npx's cache (downloaded on first use), or a loud skip."""
    if shutil.which("npx") is None:
        skip_loudly("npx is not installed (Node.js/npm missing)")
    try:
        result = inspector("--help", timeout=FIRST_RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        skip_loudly(f"npx could not fetch {INSPECTOR} within {FIRST_RUN_TIMEOUT:.0f}s")
    if result.returncode != 0 and UNREACHABLE.search(result.stderr):
        skip_loudly(f"the npm registry is unreachable: {UNREACHABLE.search(result.stderr).group(0)}")
    assert result.returncode == 0, f"the Inspector CLI does not start: {describe(result)}"
    assert "--method" in result.stdout, describe(result)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, inspector_ready):
    workdir = tmp_path_factory.mktemp("up")
    up = Up(workdir / "data", workdir)
    try:
        yield up
    finally:
        up.stop()


@pytest.fixture
def url(demo, request) -> str:
    request.node._switchboard_processes = [demo]
    return demo.url


def test_inspector_lists_the_mesh_tools(url):
    def listed():
        result = inspector(url, "--method", "tools/list")
        assert result.returncode == 0, describe(result)
        names = {tool["name"] for tool in json.loads(result.stdout)["tools"]}
        return names if {"greet", "get_date"} <= names else None

    names = eventually(listed, timeout=60)
    assert {"greet", "get_date"} <= names


def test_inspector_calls_greet_through_the_gateway(url):
    eventually(lambda: "greet" in inspector(url, "--method", "tools/list").stdout, timeout=60)
    result = inspector(url, "--method", "tools/call", "--tool-name", "greet", "--tool-arg", "name=Ada")
    assert result.returncode == 0, describe(result)
    answer = json.loads(result.stdout)
    assert answer.get("isError") is False, answer
    text = answer["content"][0]["text"]
    assert text.startswith("Hello, Ada! Today is "), text
    assert re.search(r"\d{4}-\d{2}-\d{2}", text), text


def test_inspector_shows_the_agents_own_error_for_a_bad_argument(url):
    eventually(lambda: "greet" in inspector(url, "--method", "tools/list").stdout, timeout=60)
    result = inspector(
        url, "--method", "tools/call", "--tool-name", "greet", "--tool-args-json", '{"name": 5}'
    )
    # The Inspector exits non-zero on a tool error, and prints the result.
    assert result.returncode != 0, describe(result)
    answer = json.loads(result.stdout)
    assert answer.get("isError") is True, answer
    assert "invalid type" in answer["content"][0]["text"], answer
