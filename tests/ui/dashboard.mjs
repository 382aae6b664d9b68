// End-to-end check of the dashboard in headless Chromium on a real mesh:
// `switchboard up` on port-0 addresses plus the demo agents (date-service and
// hello, whose greeting depends on the date) as separate processes, so the
// provider can be SIGKILLed and replaced. Screenshots go to SHOTS.
// Env: SWITCHBOARD_BIN, DATE_SERVICE_BIN, HELLO_BIN, and those of harness.mjs.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { SHOTS, loopbackPage, run, start } from "./harness.mjs";

const RED = "rgb(207, 34, 46)";

async function main() {
  const data = mkdtempSync(join(tmpdir(), "sb-ui-"));
  const mesh = start(process.env.SWITCHBOARD_BIN, ["up", "--data-dir", data,
    "--registry-addr", "127.0.0.1:0", "--registry-admin-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0"]);
  const gateway = await mesh.listen("gateway");
  const registry = await mesh.listen("registry-grpc");
  const agentEnv = { SWITCHBOARD_REGISTRY: registry };
  const provider = start(process.env.DATE_SERVICE_BIN, [], agentEnv);
  start(process.env.HELLO_BIN, [], agentEnv);

  const { page, close } = await loopbackPage();
  const base = `http://${gateway}/ui/`;
  await page.goto(`${base}#/topology`);

  // The demo agents appear with their edge.
  const edgesFromHello = '#topology path.edge[data-from^="hello-"]';
  await page.locator(`${edgesFromHello}[data-state="resolved"][data-to^="date-service-"]`).waitFor({ timeout: 15000 });
  const first = await page.locator('#topology g.node[data-agent-id^="date-service-"]').getAttribute("data-agent-id");
  await page.screenshot({ path: `${SHOTS}/1-topology.png`, fullPage: true });

  // SIGKILL the provider: within 2 s its node is degraded and hello's edge
  // is drawn unresolved, dashed red, with no resolved edge left.
  provider.child.kill("SIGKILL");
  await page.locator(`#topology g.node[data-agent-id="${first}"][data-status="degraded"]`).waitFor({ timeout: 2000 });
  const dangling = page.locator(`${edgesFromHello}[data-state="unresolved"]`);
  // "attached": a dangling stub is a horizontal line, whose empty bounding
  // box Playwright would call hidden; its length is checked instead.
  await dangling.waitFor({ state: "attached", timeout: 2000 });
  const drawn = await dangling.evaluate((e) => ({ stroke: getComputedStyle(e).stroke, length: e.getTotalLength() }));
  if (drawn.stroke !== RED) throw new Error(`unresolved edge drawn ${drawn.stroke}, want red ${RED}`);
  if (!(drawn.length > 0)) throw new Error("the unresolved edge has no length");
  const resolved = await page.locator(`${edgesFromHello}[data-state="resolved"]`).count();
  if (resolved !== 0) throw new Error(`${resolved} resolved edge(s) from hello after its provider died`);
  await page.screenshot({ path: `${SHOTS}/2-provider-killed.png`, fullPage: true });

  // A new provider: the edge returns, to it, and the dangling one is gone.
  start(process.env.DATE_SERVICE_BIN, [], agentEnv);
  await page.waitForFunction(([selector, old]) => [...document.querySelectorAll(selector)]
    .some((e) => e.dataset.state === "resolved" && e.dataset.to.startsWith("date-service-") && e.dataset.to !== old),
  [edgesFromHello, first], { timeout: 15000 });
  if (await dangling.count() !== 0) throw new Error("the unresolved edge stayed after a new provider came");
  await page.screenshot({ path: `${SHOTS}/3-provider-replaced.png`, fullPage: true });

  // Filter the agents table by name.
  await page.goto(`${base}#/agents`);
  await page.getByLabel("Name").fill("hello");
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll("#agents tbody tr")];
    return rows.length > 0 && rows.every((r) => r.textContent.includes("hello"));
  }, null, { timeout: 5000 });
  await page.screenshot({ path: `${SHOTS}/4-agents-filtered.png`, fullPage: true });

  // Open an agent's detail with the keyboard: explanation per candidate.
  await page.locator("#agents tbody a").first().focus();
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Dependency resolution" }).waitFor({ timeout: 5000 });
  await page.locator("#agent-detail section.resolution").first().waitFor({ timeout: 5000 });
  await page.screenshot({ path: `${SHOTS}/5-agent-detail.png`, fullPage: true });

  // A narrow window still shows the events table and the topology.
  await page.setViewportSize({ width: 380, height: 700 });
  await page.goto(`${base}#/events`);
  await page.locator("#events tbody tr").first().waitFor({ timeout: 5000 });
  await page.screenshot({ path: `${SHOTS}/6-events-narrow.png`, fullPage: true });
  await page.goto(`${base}#/topology`);
  await page.locator("#topology g.node").first().waitFor({ timeout: 5000 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) throw new Error(`the narrow page scrolls sideways by ${overflow}px: only the topology box should`);
  await page.screenshot({ path: `${SHOTS}/7-topology-narrow.png`, fullPage: true });
  await close();
}

run(main, "dashboard e2e ok");
