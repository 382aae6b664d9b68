// End-to-end check of the dashboard in headless Chromium on a real mesh:
// `switchboard up` on port-0 addresses plus the demo agents (date-service and
// hello, whose greeting depends on the date) as separate processes, so the
// provider can be SIGKILLed and replaced. Screenshots go to SHOTS.
// Env: SWITCHBOARD_BIN, DATE_SERVICE_BIN, HELLO_BIN, and those of harness.mjs.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { SHOTS, loopbackPage, lowContrast, run, start } from "./harness.mjs";

const RED = "rgb(207, 34, 46)";

async function readable(page, view) {
  const failures = await lowContrast(page);
  if (failures.length) throw new Error(`${view}: text below 4.5:1 contrast: ${failures.join("; ")}`);
}

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
  // Read from the page itself, again until it holds: the topology may be
  // redrawn (the element replaced) between finding the edge and reading it.
  const selector = `${edgesFromHello}[data-state="unresolved"]`;
  const drawn = await page
    .waitForFunction(([sel, red]) => {
      const edge = document.querySelector(sel);
      if (!edge) return null;
      const seen = { stroke: getComputedStyle(edge).stroke, length: edge.getTotalLength() };
      return seen.stroke === red && seen.length > 0 ? seen : null;
    }, [selector, RED], { timeout: 2000 })
    .then((handle) => handle.jsonValue())
    .catch(() => dangling.evaluate((e) => ({ stroke: getComputedStyle(e).stroke, length: e.getTotalLength() })));
  if (drawn.stroke !== RED) throw new Error(`unresolved edge drawn ${drawn.stroke}, want red ${RED}`);
  if (!(drawn.length > 0)) throw new Error("the unresolved edge has no length");
  const resolved = await page.locator(`${edgesFromHello}[data-state="resolved"]`).count();
  if (resolved !== 0) throw new Error(`${resolved} resolved edge(s) from hello after its provider died`);
  await page.screenshot({ path: `${SHOTS}/2-provider-killed.png`, fullPage: true });
  await readable(page, "topology");

  // The keyboard reaches a node from the top of the page, and Enter opens it.
  let focusedNode = null;
  for (let tab = 0; tab < 12 && !focusedNode; tab++) {
    await page.keyboard.press("Tab");
    focusedNode = await page.evaluate(() => document.activeElement?.closest?.("g.node")?.dataset.agentId ?? null);
  }
  if (!focusedNode) throw new Error("Tab never reached a topology node");
  await page.keyboard.press("Enter");
  await page.locator("#h-agent", { hasText: "Agent " }).waitFor({ timeout: 5000 });
  await page.goto(`${base}#/topology`);

  // A new provider: its node appears highlighted, the edge returns, to it,
  // and the dangling one is gone.
  const highlighted = page.locator(`#topology g.node.flash[data-agent-id^="date-service-"]:not([data-agent-id="${first}"])`)
    .waitFor({ state: "attached", timeout: 15000 });
  const replacement = start(process.env.DATE_SERVICE_BIN, [], agentEnv);
  await highlighted;
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
  // The last heartbeat ticks and stays recent (agents heartbeat every 5 s).
  const heartbeat = page.locator("#agents tbody tr td[data-heartbeat]").first();
  await page.waitForFunction(() => {
    const text = document.querySelector("#agents tbody td[data-heartbeat]")?.textContent ?? "";
    return /^\d+s ago$/.test(text);
  }, null, { timeout: 5000 });
  const seen = await heartbeat.textContent();
  await page.waitForFunction((seen) => document.querySelector("#agents tbody td[data-heartbeat]").textContent !== seen,
    seen, { timeout: 5000 });
  // The time itself is refreshed from the registry, not only counted up.
  const at = await heartbeat.getAttribute("data-heartbeat");
  await page.waitForFunction((at) => Number(document.querySelector("#agents tbody td[data-heartbeat]").dataset.heartbeat) > Number(at),
    at, { timeout: 15000 });
  const age = Number((await heartbeat.textContent()).match(/^(\d+)s ago$/)?.[1] ?? Infinity);
  if (!(age <= 12)) throw new Error(`last heartbeat ${await heartbeat.textContent()}: the column is stale`);
  await page.screenshot({ path: `${SHOTS}/4-agents-filtered.png`, fullPage: true });
  await readable(page, "agents");

  // Open an agent's detail with the keyboard: explanation per candidate.
  await page.locator("#agents tbody a").first().focus();
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Dependency resolution" }).waitFor({ timeout: 5000 });
  await page.locator("#agent-detail section.resolution").first().waitFor({ timeout: 5000 });
  await page.screenshot({ path: `${SHOTS}/5-agent-detail.png`, fullPage: true });
  await readable(page, "agent detail");

  // A narrow window still shows the events table and the topology.
  await page.setViewportSize({ width: 380, height: 700 });
  await page.goto(`${base}#/events`);
  await page.locator("#events tbody tr").first().waitFor({ timeout: 5000 });
  await page.screenshot({ path: `${SHOTS}/6-events-narrow.png`, fullPage: true });
  await readable(page, "events");
  // Pause holds the table still and counts what arrives; Resume shows it.
  const topRevision = () => page.locator("#events tbody tr td").first().textContent();
  const shown = Number(await topRevision());
  await page.getByRole("button", { name: "Pause" }).click();
  replacement.child.kill("SIGKILL");
  await page.locator("#paused-count", { hasText: /^\d+ new while paused$/ }).waitFor({ timeout: 5000 });
  if (Number(await topRevision()) !== shown) throw new Error("the events table changed while paused");
  await page.getByRole("button", { name: "Resume" }).click();
  await page.waitForFunction((shown) => Number(document.querySelector("#events tbody tr td").textContent) > shown,
    shown, { timeout: 5000 });
  await page.goto(`${base}#/topology`);
  await page.locator("#topology g.node").first().waitFor({ timeout: 5000 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) throw new Error(`the narrow page scrolls sideways by ${overflow}px: only the topology box should`);
  await page.screenshot({ path: `${SHOTS}/7-topology-narrow.png`, fullPage: true });
  await close();
}

run(main, "dashboard e2e ok");
