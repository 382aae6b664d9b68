"""The dashboard in headless Chromium, driven by tests/ui/dashboard.mjs (Playwright).

The script starts `switchboard up --demo` on port-0 addresses plus a separate
date-service process, then checks: the demo agents appear with their edge; a
SIGKILLed provider turns degraded within 2 s and loses its resolved edge; a new
provider brings an edge back; the agents table filters; an agent's detail opens
from the keyboard; no request leaves loopback. Screenshots: target/ui-screenshots/.
tests/run installs chromium and playwright-core (cached under ~/.cache/switchboard).
"""

import os
import subprocess
from pathlib import Path

from conftest import REPO_ROOT, switchboard_bin

PLAYWRIGHT = Path.home() / ".cache/switchboard/playwright/node_modules/playwright-core"


def test_dashboard_follows_the_mesh_in_a_browser():
    for needed in (Path("/usr/bin/chromium"), PLAYWRIGHT):
        assert needed.exists(), f"{needed} missing: run tests/run (setup installs it)"
    bin_dir = Path(switchboard_bin()).parent
    env = {
        **os.environ,
        "SWITCHBOARD_BIN": switchboard_bin(),
        "DATE_SERVICE_BIN": str(bin_dir / "date-service"),
        "PLAYWRIGHT_CORE": str(PLAYWRIGHT),
        "SHOTS": str(REPO_ROOT / "target/ui-screenshots"),
    }
    run = subprocess.run(
        ["node", str(REPO_ROOT / "tests/ui/dashboard.mjs")],
        env=env, capture_output=True, text=True, timeout=180, cwd=REPO_ROOT,
    )
    assert run.returncode == 0, f"dashboard e2e failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    assert "dashboard e2e ok" in run.stdout
    for shot in ("1-topology", "2-provider-killed", "3-provider-replaced", "4-agents-filtered", "5-agent-detail"):
        assert (REPO_ROOT / f"target/ui-screenshots/{shot}.png").exists(), shot
