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

/**
 * Text on the page below WCAG AA contrast (4.5:1), as descriptions: HTML
 * text against the first opaque background up its ancestors, SVG text in a
 * topology node against the node's box.
 */
export function lowContrast(page) {
  return page.evaluate(() => {
    const rgb = (c) => (c.match(/[\d.]+/g) ?? []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => { const c = v / 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
    const background = (node) => {
      for (let n = node; n && n.nodeType === 1; n = n.parentElement) {
        const c = rgb(getComputedStyle(n).backgroundColor);
        if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const failures = [];
    const visible = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
    for (const e of document.querySelectorAll("body *:not(svg *)")) {
      const own = [...e.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim());
      if (!own || !visible(e)) continue;
      const r = ratio(rgb(getComputedStyle(e).color), background(e));
      if (r < 4.5) failures.push(`${e.tagName.toLowerCase()} "${e.textContent.trim().slice(0, 30)}": ${r.toFixed(2)}`);
    }
    for (const t of document.querySelectorAll("#topology g.node text")) {
      if (!visible(t)) continue;
      const box = t.closest("g.node").querySelector("rect.box");
      // The flash animation tints the box for a moment: judge the box's own fill.
      const fill = rgb(getComputedStyle(box).fill);
      const r = ratio(rgb(getComputedStyle(t).fill), fill);
      if (r < 4.5) failures.push(`node text "${t.textContent.slice(0, 30)}": ${r.toFixed(2)}`);
    }
    return failures;
  });
}
