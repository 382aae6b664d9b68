// The topology of a few hundred agents in headless Chromium, served on the
// registry's admin port (`switchboard registry`, dashboard on by default):
// every agent is drawn, no two nodes overlap, and the nodes already on the
// page keep their places when an agent joins or leaves. The Gateway view
// says no gateway is served there. Agents are registered by mesh_agents.py.
// Env: SWITCHBOARD_BIN, PYTHON, and those of harness.mjs.
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { SHOTS, loopbackPage, run, start } from "./harness.mjs";

const COUNT = 300;
const AGENTS = join(dirname(fileURLToPath(import.meta.url)), "mesh_agents.py");

async function main() {
  const data = mkdtempSync(join(tmpdir(), "sb-ui-layout-"));
  const registry = start(process.env.SWITCHBOARD_BIN, ["registry", "--data-dir", data,
    "--registry-addr", "127.0.0.1:0", "--registry-admin-addr", "127.0.0.1:0"]);
  const grpc = await registry.listen("registry-grpc");
  const admin = await registry.listen("registry-admin");
  const agents = (...args) => execFileSync(process.env.PYTHON ?? "python3", [AGENTS, grpc, ...args]);
  agents("register", "0", String(COUNT), "2");

  const { page, close } = await loopbackPage();
  await page.goto(`http://${admin}/ui/#/topology`);
  const count = (n) => page.waitForFunction((n) => document.querySelectorAll("#topology g.node").length === n,
    n, { timeout: 30000 });
  await count(COUNT);
  const boxes = () => page.evaluate(() => Object.fromEntries([...document.querySelectorAll("#topology g.node")]
    .map((g) => { const b = g.querySelector("rect.box").getBBox(); return [g.dataset.agentId, [b.x, b.y, b.width, b.height]]; })));
  const before = await boxes();
  const ids = Object.keys(before);
  for (let i = 0; i < ids.length; i++) {
    for (let j = i + 1; j < ids.length; j++) {
      const [a, b] = [before[ids[i]], before[ids[j]]];
      if (a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3]) {
        throw new Error(`nodes ${ids[i]} and ${ids[j]} overlap: ${a} and ${b}`);
      }
    }
  }
  // A window as wide as the drawing, so the screenshot shows all of it.
  const width = await page.evaluate(() => document.querySelector("#topology").getBBox().width);
  await page.setViewportSize({ width: Math.ceil(width) + 60, height: 900 });
  await page.screenshot({ path: `${SHOTS}/layout-1-${COUNT}-agents.png`, fullPage: true });

  const unmoved = async (what) => {
    const after = await boxes();
    for (const [id, box] of Object.entries(after)) {
      if (before[id] && String(before[id]) !== String(box)) throw new Error(`${what}: ${id} moved from ${before[id]} to ${box}`);
    }
  };
  // One joins, named to sort in the middle of a column: nobody moves.
  agents("register", "151", "1");
  await count(COUNT + 1);
  await unmoved("after one joined");
  // One leaves from the middle: nobody else moves, and a newcomer may take its slot.
  agents("deregister", "agent-0150");
  await count(COUNT);
  await unmoved("after one left");
  await page.screenshot({ path: `${SHOTS}/layout-2-after-join-and-leave.png`, fullPage: true });

  // The Gateway view on a registry says there is no gateway here.
  await page.goto(`http://${admin}/ui/#/gateway`);
  await page.locator("#gateway", { hasText: "no gateway is served here" }).waitFor({ timeout: 5000 });
  await close();
}

run(main, "dashboard layout ok");
