"""The real Python MCP client sees the gateway as a full MCP server: resources, resource templates,
prompts and logging are served (federated from the agents) in both protocol eras, not refused."""

from __future__ import annotations

import pytest
from mcp import Client

from test_gateway_mcp import MODES, demo, run, text_of, url  # noqa: F401  (fixtures)


@pytest.mark.parametrize("mode", MODES)
def test_lists_of_every_kind_are_served_and_calls_still_work(url, mode):
    async def session():
        async with Client(url, mode=mode) as client:
            resources = await client.list_resources()
            templates = await client.list_resource_templates()
            prompts = await client.list_prompts()
            greeting = await client.call_tool("greet", {"name": "Ada"})
            return resources, templates, prompts, greeting

    resources, templates, prompts, greeting = run(session())
    # The demo agents serve no resources or prompts: empty lists, not "method not found".
    assert resources.resources == []
    assert templates.resource_templates == []
    assert prompts.prompts == []
    assert text_of(greeting).startswith("Hello, Ada!")


def test_logging_set_level_is_accepted_on_a_session(url):
    async def session():
        async with Client(url, mode="legacy") as client:
            await client.set_logging_level("debug")
            return await client.call_tool("greet", {"name": "Grace"})

    assert text_of(run(session())).startswith("Hello, Grace!")
