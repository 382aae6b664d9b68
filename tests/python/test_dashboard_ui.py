"""The dashboard in headless Chromium, driven by Playwright scripts under tests/ui/.

dashboard.mjs starts `switchboard up` on port-0 addresses plus the demo agents (date-service and
hello) as separate processes, then checks: the agents appear with their edge; a SIGKILLed provider
turns degraded within 2 s and hello's edge is drawn unresolved (dashed red); a new provider brings
the edge back, the new node highlighted; the agents table filters and its last heartbeat stays
recent; an agent's detail opens from the keyboard (from the table and from a node); text meets
WCAG AA contrast; a narrow window works; Pause holds the events table and Resume shows what came;
no request leaves loopback.

layout.mjs serves the dashboard from `switchboard registry`'s admin port with 300 agents: all are
drawn, none overlap, and nodes keep their places when an agent joins or leaves.

Screenshots: target/ui-screenshots/. tests/run installs chromium and playwright-core (cached under
~/.cache/switchboard).
"""

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT, switchboard_bin

PLAYWRIGHT = Path.home() / ".cache/switchboard/playwright/node_modules/playwright-core"
SHOTS = REPO_ROOT / "target/ui-screenshots"


def run_script(name: str, ok: str) -> None:
    for needed in (Path("/usr/bin/chromium"), PLAYWRIGHT):
        assert needed.exists(), f"{needed} missing: run tests/run (setup installs it)"
    bin_dir = Path(switchboard_bin()).parent
    env = {
        **os.environ,
        "SWITCHBOARD_BIN": switchboard_bin(),
        "DATE_SERVICE_BIN": str(bin_dir / "date-service"),
        "HELLO_BIN": str(bin_dir / "hello"),
        "PYTHON": sys.executable,
        "PLAYWRIGHT_CORE": str(PLAYWRIGHT),
        "SHOTS": str(SHOTS),
    }
    run = subprocess.run(
        ["node", str(REPO_ROOT / "tests/ui" / name)],
        env=env, capture_output=True, text=True, timeout=180, cwd=REPO_ROOT,
    )
    assert run.returncode == 0, f"{name} failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    assert ok in run.stdout


def test_dashboard_follows_the_mesh_in_a_browser():
    run_script("dashboard.mjs", "dashboard e2e ok")
    for shot in ("1-topology", "2-provider-killed", "3-provider-replaced", "4-agents-filtered",
                 "5-agent-detail", "6-events-narrow", "7-topology-narrow"):
        assert (SHOTS / f"{shot}.png").exists(), shot


def test_topology_of_300_agents_is_stable_on_the_registry_admin_port():
    run_script("layout.mjs", "dashboard layout ok")
    for shot in ("layout-1-300-agents", "layout-2-after-join-and-leave"):
        assert (SHOTS / f"{shot}.png").exists(), shot
