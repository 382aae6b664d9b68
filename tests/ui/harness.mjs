// Shared by the dashboard's browser tests: child processes that announce
// `LISTEN name addr` on stdout, headless Chromium allowed to reach loopback
// only, and an exit that stops every child.
// Env: CHROMIUM (default /usr/bin/chromium), SHOTS (default
// target/ui-screenshots), PLAYWRIGHT_CORE (module path).
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT_CORE ?? "playwright-core");
export const SHOTS = process.env.SHOTS ?? "target/ui-screenshots";
mkdirSync(SHOTS, { recursive: true });
const children = [];

/** Starts `bin`; `listen(name)` resolves to the address it announces. */
export function start(bin, args, env = {}) {
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

/** A browser page that fails the run if it asks for anything off loopback. */
export async function loopbackPage(viewport = { width: 1280, height: 800 }) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport });
  const external = [];
  await page.route("**/*", (route) => {
    const host = new URL(route.request().url()).hostname;
    if (host === "127.0.0.1" || host === "localhost") return route.continue();
    external.push(route.request().url());
    return route.abort();
  });
  const close = async () => {
    if (external.length) throw new Error(`the page asked for external assets: ${external.join(", ")}`);
    await browser.close();
  };
  return { page, close };
}

/** Runs `main`, prints `ok` on success, and stops every child either way. */
export function run(main, ok) {
  main().then(() => { console.log(ok); children.forEach((c) => c.kill("SIGTERM")); process.exit(0); },
    (error) => { console.error(error); children.forEach((c) => c.kill("SIGKILL")); process.exit(1); });
}
