// End-to-end check of the dashboard in headless Chromium: a real mesh
// (`switchboard up --demo` on port-0 addresses) plus a separate date-service
// process that is SIGKILLed and replaced. Screenshots go to SHOTS.
// Env: SWITCHBOARD_BIN, DATE_SERVICE_BIN, CHROMIUM (default /usr/bin/chromium),
// SHOTS (default target/ui-screenshots), PLAYWRIGHT_CORE (module path).
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT_CORE ?? "playwright-core");
const SHOTS = process.env.SHOTS ?? "target/ui-screenshots";
mkdirSync(SHOTS, { recursive: true });
const children = [];

function start(bin, args, env = {}) {
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const listens = new Map();
  const waiters = [];
  let buffer = "";
  child.stdout.on("data", (chunk) => {
    buffer += chunk;
    for (const m of buffer.matchAll(/^LISTEN (\S+) (\S+)$/gm)) listens.set(m[1], m[2]);
    waiters.forEach((w) => w());
  });
  const listen = (name) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no LISTEN ${name} from ${bin}`)), 60000);
    const check = () => { if (listens.has(name)) { clearTimeout(timer); resolve(listens.get(name)); } };
    waiters.push(check); check();
  });
  return { child, listen };
}

async function main() {
  const data = mkdtempSync(join(tmpdir(), "sb-ui-"));
  const mesh = start(process.env.SWITCHBOARD_BIN, ["up", "--demo", "--data-dir", data,
    "--registry-addr", "127.0.0.1:0", "--registry-admin-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0"]);
  const gateway = await mesh.listen("gateway");
  const registry = await mesh.listen("registry-grpc");
  const provider = start(process.env.DATE_SERVICE_BIN, [], { SWITCHBOARD_REGISTRY: registry });

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  // Only loopback is reachable: any other request fails the run.
  const external = [];
  await page.route("**/*", (route) => {
    const host = new URL(route.request().url()).hostname;
    if (host === "127.0.0.1" || host === "localhost") return route.continue();
    external.push(route.request().url());
    return route.abort();
  });
  const base = `http://${gateway}/ui/`;
  await page.goto(`${base}#/topology`);

  // The demo agents appear with their edge.
  const node = (name) => page.locator(`#topology g.node:has(text.name:text-matches("^${name} "))`);
  await node("hello").first().waitFor({ timeout: 15000 });
  await page.locator('#topology path.edge[data-state="resolved"]').first().waitFor({ timeout: 15000 });
  await page.screenshot({ path: `${SHOTS}/1-topology.png`, fullPage: true });

  // SIGKILL the separate provider: its node turns degraded within 2 s.
  const dates = page.locator('#topology g.node:has(text.name:text-matches("^date-service "))');
  await page.waitForFunction(() => document.querySelectorAll('#topology g.node[data-agent-id^="date-service"]').length >= 2, null, { timeout: 15000 });
  const before = await dates.evaluateAll((ns) => ns.map((n) => n.dataset.agentId));
  provider.child.kill("SIGKILL");
  await page.waitForFunction((ids) => ids.some((id) => document.querySelector(`g.node[data-agent-id="${id}"]`)?.dataset.status === "degraded"),
    before, { timeout: 2000 });
  const killed = await page.evaluate((ids) => ids.find((id) => document.querySelector(`g.node[data-agent-id="${id}"]`).dataset.status === "degraded"), before);
  const resolvedToKilled = await page.locator(`#topology path.edge[data-state="resolved"][data-to="${killed}"]`).count();
  if (resolvedToKilled !== 0) throw new Error(`edge to killed provider ${killed} still drawn as resolved`);
  await page.screenshot({ path: `${SHOTS}/2-provider-killed.png`, fullPage: true });

  // A new provider: an edge to it comes back.
  start(process.env.DATE_SERVICE_BIN, [], { SWITCHBOARD_REGISTRY: registry });
  await page.waitForFunction((ids) => [...document.querySelectorAll('#topology path.edge[data-state="resolved"]')]
    .some((e) => e.dataset.to.startsWith("date-service") && !ids.includes(e.dataset.to)), before, { timeout: 15000 });
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
  await page.screenshot({ path: `${SHOTS}/5-agent-detail.png`, fullPage: true });
  await page.locator("#agent-detail section.resolution").first().waitFor({ timeout: 5000 });
  await page.screenshot({ path: `${SHOTS}/5-agent-detail.png`, fullPage: true });

  // A narrow window still shows the table.
  await page.setViewportSize({ width: 380, height: 700 });
  await page.goto(`${base}#/events`);
  await page.locator("#events tbody tr").first().waitFor({ timeout: 5000 });
  await page.screenshot({ path: `${SHOTS}/6-events-narrow.png`, fullPage: true });

  if (external.length) throw new Error(`the page asked for external assets: ${external.join(", ")}`);
  await browser.close();
  console.log("dashboard e2e ok");
}

main().then(() => { children.forEach((c) => c.kill("SIGTERM")); process.exit(0); },
  (error) => { console.error(error); children.forEach((c) => c.kill("SIGKILL")); process.exit(1); });
