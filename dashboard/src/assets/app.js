// Switchboard dashboard: plain DOM and SVG, no framework, no build step.
// State comes from /ui/events (the registry's Watch); wiring per agent from
// /ui/api/agents/{id}, refetched when a provider it could depend on changes.

const agents = new Map();    // id -> agent, as the Watch reports it
const wiring = new Map();    // id -> [{tool, capability, providers: [agent_id]}]
const recent = [];           // newest last, bounded
const RECENT_MAX = 500;
const flashed = new Set();
let staging = null;          // snapshot being received
let paused = false, pausedCount = 0;
let sort = { key: "name", dir: 1 };

const $ = (sel) => document.querySelector(sel);
const svgNs = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS(svgNs, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

const capabilities = (a) => [...new Set(a.tools.map((t) => t.capability).filter(Boolean))];
const tags = (a) => [...new Set(a.tools.flatMap((t) => t.tags))];
const hasDeps = (a) => a.tools.some((t) => t.dependencies.length > 0);
const statusText = (a) => a.status === "degraded" && a.status_cause !== "unspecified"
  ? `degraded (${a.status_cause.replace(/_/g, " ")})` : a.status;

function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.floor(s / 60)}m ago` : `${Math.floor(s / 3600)}h ago`;
}

// === events ===

function connect() {
  const source = new EventSource("/ui/events");
  const status = $("#connection");
  source.onopen = () => { status.textContent = "live"; };
  source.onerror = () => { status.textContent = "reconnecting…"; };
  source.addEventListener("watch_error", (e) => { status.textContent = JSON.parse(e.data).error; });
  source.addEventListener("snapshot", (e) => {
    const event = JSON.parse(e.data);
    (staging ??= new Map()).set(event.agent.id, event.agent);
  });
  source.addEventListener("resync_required", () => { staging = new Map(); });
  source.addEventListener("end_of_snapshot", (e) => {
    agents.clear();
    for (const [id, a] of staging ?? []) agents.set(id, a);
    staging = null;
    wiring.clear();
    for (const a of agents.values()) if (hasDeps(a)) fetchWiring(a.id);
    record(JSON.parse(e.data));
    render();
  });
  for (const type of ["added", "changed", "status_changed", "removed"]) {
    source.addEventListener(type, (e) => apply(JSON.parse(e.data)));
  }
}

function apply(event) {
  const a = event.agent;
  if (event.type === "removed") { agents.delete(a.id); wiring.delete(a.id); }
  else agents.set(a.id, a);
  flash(a.id);
  if (event.type !== "removed" && hasDeps(a)) fetchWiring(a.id);
  // Consumers of what changed may now be wired differently.
  const caps = new Set(capabilities(a));
  for (const other of agents.values()) {
    if (other.id !== a.id && other.tools.some((t) => t.dependencies.some((d) => caps.has(d.capability)))) {
      fetchWiring(other.id);
    }
  }
  record(event);
  render();
}

function flash(id) {
  flashed.add(id);
  setTimeout(() => { flashed.delete(id); }, 1500);
}

function record(event) {
  recent.push(event);
  if (recent.length > RECENT_MAX) recent.shift();
  if (paused) { pausedCount += 1; $("#paused-count").textContent = `${pausedCount} new while paused`; }
  else renderEvents();
}

const inFlight = new Map();
function fetchWiring(id) {
  if (inFlight.has(id)) { inFlight.set(id, true); return; }
  inFlight.set(id, false);
  fetch(`/ui/api/agents/${encodeURIComponent(id)}`)
    .then((r) => (r.ok ? r.json() : null))
    .then((detail) => {
      if (detail && agents.has(id)) {
        wiring.set(id, detail.resolutions.flatMap((r) => r.dependencies.map((d) => ({
          tool: r.tool, capability: d.spec?.capability ?? "",
          providers: d.providers.map((p) => p.agent_id),
        }))));
        render();
      }
    })
    .catch(() => {})
    .finally(() => {
      const again = inFlight.get(id);
      inFlight.delete(id);
      if (again) fetchWiring(id);
    });
}

// === views ===

function currentView() {
  const [, view, id] = location.hash.split("/");
  return { view: view || "topology", id: id ? decodeURIComponent(id) : null };
}

function route() {
  const { view, id } = currentView();
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== `view-${view}`;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (view === "agent" && id) loadDetail(id);
  if (view === "gateway") pollGateway();
  if (view === "events") renderEvents();
  if (view === "agents") { secondsSincePoll = 0; refreshHeartbeats(); }
  render();
}

function render() {
  const { view } = currentView();
  if (view === "topology") renderTopology();
  if (view === "agents") renderAgents();
}

// Topology layout: one column per capability (consumers without one in
// their own column), one slot per agent. A place, once given, is kept: a new
// agent takes a free slot that fits or goes below the others, a new
// capability gets a column on the right, and a leaving agent frees its slot
// without moving anyone, so an operator's eye finds a node where it was.
const W = 210, GAP = 70, ROW = 18, HEAD = 40, VGAP = 16;
const layout = { columns: [], byId: new Map() };  // byId: id -> {column, slot}

const nodeHeight = (a) => 44 + ROW * a.tools.length;
const columnKey = (a) => capabilities(a)[0] ?? "";

function release(id) {
  const placed = layout.byId.get(id);
  if (!placed) return;
  placed.slot.id = null;
  const slots = placed.column.slots;
  while (slots.length && slots[slots.length - 1].id === null) slots.pop();
  layout.byId.delete(id);
}

function place(a) {
  const key = columnKey(a), h = nodeHeight(a);
  const placed = layout.byId.get(a.id);
  if (placed && placed.column.key === key && placed.slot.h >= h) return;
  release(a.id);
  let column = layout.columns.find((c) => c.key === key);
  if (!column) {
    column = { key, x: 10 + layout.columns.length * (W + GAP), slots: [] };
    layout.columns.push(column);
  }
  let slot = column.slots.find((s) => s.id === null && s.h >= h);
  if (!slot) {
    const last = column.slots[column.slots.length - 1];
    slot = { y: last ? last.y + last.h + VGAP : HEAD, h, id: null };
    column.slots.push(slot);
  }
  slot.id = a.id;
  layout.byId.set(a.id, { column, slot });
}

// Agents not yet placed go in by column then name, so a first snapshot is
// laid out alphabetically and a reload of the same mesh looks the same.
function syncLayout() {
  for (const id of [...layout.byId.keys()]) if (!agents.has(id)) release(id);
  const byKeyThenName = (x, y) => columnKey(x).localeCompare(columnKey(y))
    || x.name.localeCompare(y.name) || x.id.localeCompare(y.id);
  for (const a of [...agents.values()].sort(byKeyThenName)) place(a);
  const where = new Map();
  for (const [id, { column, slot }] of layout.byId) where.set(id, { x: column.x, y: slot.y, h: nodeHeight(agents.get(id)) });
  return where;
}

function renderTopology() {
  const where = syncLayout();
  const height = Math.max(HEAD, ...layout.columns.flatMap((c) => c.slots.map((s) => s.y + s.h)));
  const svg = $("#topology");
  const width = Math.max(300, 20 + layout.columns.length * (W + GAP));
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 20}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height + 20);
  const parts = [];
  for (const c of layout.columns) parts.push(el("svg:text", { class: "column", x: c.x, y: 20 }, c.key || "(consumers)"));
  for (const a of agents.values()) {
    const p = where.get(a.id);
    a.tools.forEach((t, i) => {
      if (!t.dependencies.length) return;
      const wires = (wiring.get(a.id) ?? []).filter((w) => w.tool === t.name);
      const x1 = p.x + W, y1 = p.y + 44 + ROW * i - 5;
      const targets = wires.flatMap((w) => w.providers).filter((id) => where.has(id));
      const live = targets.filter((id) => agents.get(id)?.status === "healthy");
      if (!live.length) {
        const end = targets.length ? where.get(targets[0]) : null;
        const d = end ? edge(p, y1, end) : `M${x1},${y1} h40`;
        parts.push(el("svg:path", { class: "edge", d, "data-from": a.id, "data-tool": t.name,
          "data-to": targets[0] ?? "", "data-state": "unresolved" },
          el("svg:title", {}, `${t.name}: ${t.dependencies.map((d) => d.capability).join(", ")} unresolved`)));
      }
      for (const id of live) {
        const q = where.get(id);
        parts.push(el("svg:path", { class: "edge", d: edge(p, y1, q), "data-from": a.id,
          "data-tool": t.name, "data-to": id, "data-state": "resolved" },
          el("svg:title", {}, `${t.name} → ${agents.get(id).name}`)));
      }
    });
  }
  for (const a of agents.values()) {
    const p = where.get(a.id);
    const cause = a.status === "degraded" ? a.status_cause.replace(/_/g, " ") : a.status;
    parts.push(el("svg:g", { class: flashed.has(a.id) ? "node flash" : "node", "data-agent-id": a.id, "data-status": a.status },
      el("svg:a", { href: `#/agent/${encodeURIComponent(a.id)}`, "aria-label": `${a.name} ${a.id}, ${statusText(a)}` },
        el("svg:rect", { class: "box", x: p.x, y: p.y, width: W, height: p.h, rx: 6 }),
        el("svg:text", { class: "name", x: p.x + 8, y: p.y + 16 }, nodeLabel(a)),
        el("svg:text", { class: a.status === "degraded" ? "cause" : "", x: p.x + 8, y: p.y + 32 }, cause),
        a.tools.map((t, i) => el("svg:text", { x: p.x + 8, y: p.y + 44 + ROW * i + 4 },
          `${t.name}${t.capability ? ` [${t.capability} ${t.version}]` : ""}${t.dependencies.length ? " →" : ""}`)))));
  }
  svg.replaceChildren(...parts);
}

// An id is usually `<name>-<8 hex>`: it says both, and fits in a node.
function nodeLabel(a) {
  const label = a.id.startsWith(`${a.name}-`) ? a.id : `${a.name} (${a.id})`;
  return label.length > 28 ? `${label.slice(0, 27)}…` : label;
}

// From the consumer's tool row to the provider's near side: rightwards
// from the right edge, or leftwards from the left edge when the provider's
// column is to the left (right edge to right edge within one column), so an
// edge never crosses its own node.
function edge(from, y1, to) {
  const same = to.x === from.x, forward = to.x > from.x;
  const out = forward || same ? 1 : -1, into = forward ? 1 : -1;
  const x1 = out > 0 ? from.x + W : from.x, x2 = into > 0 ? to.x : to.x + W, y2 = to.y + 20;
  const dx = Math.max(30, Math.abs(x2 - x1) / 2);
  return `M${x1},${y1} C${x1 + out * dx},${y1} ${x2 - into * dx},${y2} ${x2},${y2}`;
}

function renderAgents() {
  const f = Object.fromEntries(new FormData($("#filters")));
  const has = (list, q) => list.some((x) => x.toLowerCase().includes(q.toLowerCase()));
  const rows = [...agents.values()].filter((a) =>
    (!f.name || a.name.toLowerCase().includes(f.name.toLowerCase()) || a.id.includes(f.name))
    && (!f.capability || has(capabilities(a), f.capability))
    && (!f.tag || has(tags(a), f.tag))
    && (!f.status || a.status === f.status));
  const value = {
    name: (a) => a.name + a.id, status: (a) => a.status, version: (a) => a.version,
    capabilities: (a) => capabilities(a).join(","), heartbeat: (a) => a.last_heartbeat_at ?? 0,
  }[sort.key];
  rows.sort((x, y) => (value(x) < value(y) ? -1 : value(x) > value(y) ? 1 : 0) * sort.dir);
  $("#agents tbody").replaceChildren(...rows.map((a) => el("tr", { "data-agent-id": a.id },
    el("td", {}, el("a", { href: `#/agent/${encodeURIComponent(a.id)}` }, a.name), el("br"), el("small", {}, a.id)),
    el("td", { class: `status ${a.status}` }, statusText(a)),
    el("td", {}, capabilities(a).join(", ")),
    el("td", {}, a.version),
    el("td", { "data-heartbeat": a.last_heartbeat_at ?? "" }, ago(a.last_heartbeat_at)))));
}

function tickHeartbeats() {
  for (const cell of document.querySelectorAll("td[data-heartbeat]")) {
    cell.textContent = ago(Number(cell.dataset.heartbeat) || 0);
  }
}

// Heartbeats are not Watch events: while the table shows, poll their times.
const HEARTBEAT_POLL_S = 5;
let secondsSincePoll = HEARTBEAT_POLL_S;
async function refreshHeartbeats() {
  const response = await fetch("/ui/api/heartbeats").catch(() => null);
  if (!response?.ok) return;
  const times = await response.json();
  for (const [id, at] of Object.entries(times)) {
    const a = agents.get(id);
    if (a) a.last_heartbeat_at = at;
  }
  for (const row of document.querySelectorAll("#agents tbody tr")) {
    const at = times[row.dataset.agentId];
    if (at !== undefined) row.querySelector("td[data-heartbeat]").dataset.heartbeat = at ?? "";
  }
  tickHeartbeats();
}

function everySecond() {
  secondsSincePoll += 1;
  if (currentView().view === "agents" && secondsSincePoll >= HEARTBEAT_POLL_S) {
    secondsSincePoll = 0;
    refreshHeartbeats();
  }
  tickHeartbeats();
}

function renderEvents() {
  if (currentView().view !== "events") return;
  $("#events tbody").replaceChildren(...recent.slice(-200).reverse().map((e) => el("tr", {},
    el("td", {}, e.revision), el("td", {}, e.type.replace(/_/g, " ")),
    el("td", {}, e.agent ? el("a", { href: `#/agent/${encodeURIComponent(e.agent.id)}` }, e.agent.name) : ""),
    el("td", {}, e.agent ? statusText(e.agent) : ""), el("td", {}, e.reason),
    el("td", {}, e.time ? new Date(e.time).toLocaleTimeString() : ""))));
}

async function loadDetail(id) {
  const box = $("#agent-detail");
  box.replaceChildren(el("p", {}, "loading…"));
  const response = await fetch(`/ui/api/agents/${encodeURIComponent(id)}`);
  const body = await response.json();
  if (!response.ok) { box.replaceChildren(el("p", { role: "alert" }, body.error)); return; }
  const a = body.agent;
  $("#h-agent").textContent = `Agent ${a.name}`;
  const explained = body.explanations ?? [];
  box.replaceChildren(...[
    el("dl", {},
      el("dt", {}, "ID"), el("dd", {}, a.id), el("dt", {}, "Status"),
      el("dd", { class: `status ${a.status}` }, statusText(a), a.status_reason ? ` — ${a.status_reason}` : ""),
      el("dt", {}, "Version"), el("dd", {}, a.version), el("dt", {}, "Endpoint"), el("dd", {}, a.endpoint),
      el("dt", {}, "Labels"), el("dd", {}, Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(", ") || "none")),
    el("h3", {}, "Tools"),
    a.tools.map((t) => el("details", {},
      el("summary", {}, `${t.name}${t.capability ? ` — ${t.capability} ${t.version}` : ""}`),
      el("p", {}, t.description), t.tags.length ? el("p", {}, `tags: ${t.tags.join(", ")}`) : null,
      t.annotations ? el("p", {}, `annotations: ${JSON.stringify(t.annotations)}`) : null,
      el("pre", { "aria-label": `input schema of ${t.name}` }, JSON.stringify(t.input_schema ?? {}, null, 2)))),
    el("h3", {}, "Dependency resolution"),
    explained.length ? explained.map((d) => el("section", { class: "resolution" },
      el("h4", {}, `${d.tool} needs ${d.spec.capability} ${d.spec.version}${d.spec.tags.length ? ` [${d.spec.tags.join(", ")}]` : ""}`),
      d.reason ? el("p", {}, d.reason) : null,
      el("ul", {}, d.candidates.map((c) => el("li", { class: c.chosen ? "chosen" : "excluded" },
        `${c.chosen ? "chosen" : "excluded"}: ${c.provider.agent_name} (${c.provider.agent_id}) ${c.provider.version} — ${c.reason}`))),
      d.candidates.length ? null : el("p", { class: "excluded" }, "no candidates"))) : el("p", {}, "no dependencies"),
    el("h3", {}, "Recent events"),
    el("ul", {}, recent.filter((e) => e.agent?.id === a.id).slice(-20).reverse()
      .map((e) => el("li", {}, `r${e.revision} ${e.type.replace(/_/g, " ")} ${e.agent ? statusText(e.agent) : ""} ${e.reason}`))),
  ].flat(2).filter((n) => n));
}

let lastGateway = null, gatewayTimer = null;
async function pollGateway() {
  clearTimeout(gatewayTimer);
  if (currentView().view !== "gateway") return;
  const box = $("#gateway");
  const response = await fetch("/ui/api/gateway").catch(() => null);
  if (!response) { box.replaceChildren(el("p", {}, "unreachable")); }
  else if (!response.ok) { box.replaceChildren(el("p", {}, (await response.json()).error)); return; }
  else {
    const now = { at: Date.now(), body: await response.json() };
    const before = new Map((lastGateway?.body.tools ?? []).map((t) => [t.tool, t]));
    const secs = lastGateway ? (now.at - lastGateway.at) / 1000 : 0;
    const states = ["closed", "open", "half-open"];
    box.replaceChildren(...[
      el("table", {}, el("caption", {}, "Per tool, over the last poll"),
        el("thead", {}, el("tr", {}, ["Tool", "Calls/s", "Error rate", "Mean latency", "Total calls"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, now.body.tools.map((t) => {
          const p = before.get(t.tool) ?? t;
          const calls = t.calls - p.calls, errors = t.errors - p.errors;
          const n = t.latency_count - p.latency_count;
          return el("tr", {}, el("td", {}, t.tool), el("td", {}, secs ? (calls / secs).toFixed(2) : "…"),
            el("td", {}, calls ? `${((100 * errors) / calls).toFixed(1)}%` : "–"),
            el("td", {}, n ? `${((1000 * (t.latency_sum - p.latency_sum)) / n).toFixed(1)} ms` : "–"),
            el("td", {}, t.calls));
        }))),
      el("h3", {}, "Breakers"),
      now.body.breakers.length ? el("ul", {}, now.body.breakers.map((b) =>
        el("li", {}, `${Object.values(b.labels).join(" ")}: ${states[b.state] ?? b.state}`))) : el("p", {}, "none"),
    ].flat(2).filter((n) => n));
    lastGateway = now;
  }
  gatewayTimer = setTimeout(pollGateway, 2000);
}

// === wiring the page ===

$("#filters").addEventListener("submit", (e) => e.preventDefault());
$("#filters").addEventListener("input", renderAgents);
for (const button of document.querySelectorAll("th button")) {
  button.addEventListener("click", () => {
    const key = button.dataset.sort;
    sort = { key, dir: sort.key === key ? -sort.dir : 1 };
    for (const th of document.querySelectorAll("#agents th")) th.removeAttribute("aria-sort");
    button.parentElement.setAttribute("aria-sort", sort.dir > 0 ? "ascending" : "descending");
    renderAgents();
  });
}
$("#pause").addEventListener("click", (e) => {
  paused = !paused;
  e.target.textContent = paused ? "Resume" : "Pause";
  e.target.setAttribute("aria-pressed", String(paused));
  if (!paused) { pausedCount = 0; $("#paused-count").textContent = ""; renderEvents(); }
});
window.addEventListener("hashchange", route);
setInterval(everySecond, 1000);
route();
connect();
