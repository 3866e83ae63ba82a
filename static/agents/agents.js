// The agents page: registry with live status dots, live message feed, send form.
import { api, wsUrl } from "../js/api.js";
import { el } from "../js/dom.js";
import { Backoff } from "../js/reconnect.js";
import { answerData, readable } from "./answer.js";

const $ = (id) => document.getElementById(id);
const agents = new Map();
const messages = new Map();
const MAX_ROWS = 100;

function text(tag, value, className) {
  return el(tag, { class: className }, value ?? "");
}

function when(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "—";
}

function renderAgents() {
  const body = $("agent-rows");
  body.replaceChildren();
  const list = $("agent-ids");
  list.replaceChildren();
  if (!agents.size) body.append(el("tr", {}, el("td", { class: "muted", colSpan: 5 }, "No agents registered.")));
  for (const agent of [...agents.values()].sort((a, b) => a.id.localeCompare(b.id))) {
    const dot = el("span", { class: `dot ${agent.status === "online" ? "ok" : "fail"}`, title: agent.status,
      dataset: { status: agent.status } });
    const name = el("td", {}, dot, text("strong", agent.id),
      agent.name && agent.name !== agent.id ? [" ", text("span", agent.name, "muted")] : null);
    const caps = el("td", { class: "agent-caps" }, (agent.capabilities || []).map((cap) => text("code", cap)));
    body.append(el("tr", { dataset: { agent: agent.id } }, name, text("td", agent.kind), caps,
      text("td", String(agent.in_flight ?? 0)), text("td", when(agent.last_heartbeat))));
    list.append(el("option", { value: agent.id }));
  }
}

function statusBadge(status) {
  const cls = { answered: "ok", delivered: "", failed: "fail", rejected: "fail", timed_out: "warn" }[status] || "";
  return text("span", status, `badge ${cls}`);
}

// The log's order, newest first (GET /api/agents/messages: -created_at, -id). The feed's dates are
// str(datetime) and the API's ISO 8601; Date.parse reads both.
function newer(a, b) {
  const ta = Date.parse(a.created_at), tb = Date.parse(b.created_at);
  return ta !== tb ? ta > tb : a.id > b.id;
}

function renderMessage(item) {
  messages.set(item.message_id, item);
  const body = $("message-rows");
  body.querySelector("tr.empty")?.remove();
  let row = body.querySelector(`tr[data-id="${item.message_id}"]`);
  const fresh = !row;
  if (!row) {
    // In order, not simply on top: rows loaded again after a reconnect can be older than live
    // ones that arrived before that page of the log did.
    row = el("tr", { dataset: { id: item.message_id } });
    const below = [...body.children].find((other) => !newer(messages.get(other.dataset.id), item));
    body.insertBefore(row, below ?? null);
  }
  const to = item.recipient_id || (item.capability ? `cap:${item.capability}` : "*");
  const status = el("td", {}, statusBadge(item.status), item.error ? [" ", text("span", item.error, "muted")] : null);
  row.replaceChildren(text("td", when(item.created_at)), text("td", item.message_type), text("td", item.action),
    text("td", `${item.sender_id} → ${to}`), status,
    text("td", item.latency_ms != null ? `${item.latency_ms.toFixed(1)} ms` : "—"));
  if (fresh) row.classList.add("fresh");
  while (body.children.length > MAX_ROWS) {
    messages.delete(body.lastElementChild.dataset.id);
    body.lastElementChild.remove();
  }
}

// The message log as the page has read it. Every log row up to `cursor` (a row id; null until the
// log was first read) has been shown, or trimmed past MAX_ROWS: a reconnect reads the rows after it.
// Rows from the feed move it on only while the feed is open and caught up (`inSync`): after a catch-up
// that failed half-way, a live row's id must not step over the rows not yet read.
const PAGE = 50;
let cursor = null;
let inSync = false;

function advance(id) {
  if (cursor !== null && id > cursor) cursor = id;
}

// The newest rows (the first open) or, after a reconnect, every row written since `cursor`, then
// the newest rows again (rows shown before may have been answered meanwhile). renderMessage merges:
// a row it has is updated in place, a new one goes to its place in time order.
async function syncLog() {
  try {
    if (cursor === null) cursor = await loadLog();
    else {
      await readAfter(cursor);
      await loadLog();
    }
    inSync = true;
  } catch { /* the feed still works; the next reconnect reads from the same cursor */ }
}

async function loadLog() {
  const page = await api("/api/agents/messages?limit=30");
  for (const item of page.items.reverse()) renderMessage(item);
  return Math.max(0, ...page.items.map((item) => item.id));
}

// Oldest first, a page at a time, each page after the last row of the one before. More rows than
// the table keeps: the oldest of them are skipped (offset), not read only to be trimmed.
async function readAfter(since) {
  const read = (after, offset) => api(`/api/agents/messages?after=${after}&limit=${PAGE}&offset=${offset}`);
  let page = await read(since, 0);
  if (page.count > MAX_ROWS) page = await read(since, page.count - MAX_ROWS);
  for (;;) {
    for (const item of page.items) {
      renderMessage(item);
      advance(item.id);
    }
    if (page.items.length < PAGE) return;
    page = await read(cursor, 0);
  }
}

const feedBackoff = new Backoff({ base: 500, max: 10000 });

function connectFeed() {
  const socket = new WebSocket(wsUrl("/ws/agents/feed/"));
  socket.addEventListener("open", () => {
    $("feed-state").textContent = "live";
    feedBackoff.reset();
    // Read once the socket is in its groups (joined before the server accepts): a row written
    // from here on comes over the feed, one written before (or while the socket was down: a
    // dropped network, the server's close with layer_restarted) from the log.
    syncLog();
  });
  socket.addEventListener("message", (event) => {
    const data = JSON.parse(event.data);
    if (data.type === "agents") {
      agents.clear();
      for (const agent of data.items) agents.set(agent.id, agent);
      renderAgents();
    } else if (data.type === "agent") {
      agents.set(data.item.id, data.item);
      renderAgents();
    } else if (data.type === "message") {
      renderMessage(data.item);
      if (inSync) advance(data.item.id);
    }
  });
  socket.addEventListener("close", () => {
    inSync = false;
    $("feed-state").textContent = "reconnecting…";
    feedBackoff.schedule(connectFeed);
  });
}

function showError(message) {
  $("send-error").textContent = message;
  $("send-error").hidden = !message;
}

async function send(event) {
  event.preventDefault();
  showError("");
  $("send-result").hidden = true; // never leave the previous answer under a new error
  let data;
  try {
    data = JSON.parse($("send-data").value || "{}");
  } catch (err) {
    showError(`Data is not valid JSON: ${err.message}`);
    return;
  }
  const type = $("send-type").value;
  const header = { message_type: type, priority: $("send-priority").value };
  const recipient = $("send-recipient").value.trim();
  const capability = $("send-capability").value.trim();
  if (recipient) header.recipient_id = recipient;
  if (capability) header.capability = capability;
  const body = { header, payload: { action: $("send-action").value.trim(), data } };
  const query = type === "REQUEST" ? "?wait=true&timeout=30" : "";
  $("send-button").disabled = true;
  try {
    const answer = await api(`/api/agents/messages${query}`, { method: "POST", body });
    $("send-status").textContent = answer.header?.message_type || answer.status;
    $("send-status").className = "badge ok";
    $("send-response").textContent = JSON.stringify(answer, null, 2);
    const { data, error } = answerData(answer);
    $("send-readable").replaceChildren(error ? el("p", { class: "error" }, error) : readable(data));
    $("send-result").hidden = false;
  } catch (err) {
    if (err.body?.message) {
      $("send-status").textContent = "ERROR";
      $("send-status").className = "badge fail";
      $("send-response").textContent = JSON.stringify(err.body.message, null, 2);
      $("send-readable").replaceChildren(el("p", { class: "error" }, answerData(err.body.message).error || err.message));
      $("send-result").hidden = false;
    }
    showError(`${err.message} (${err.code})`);
  } finally {
    $("send-button").disabled = false;
  }
}

$("send-form").addEventListener("submit", send);

// One form per built-in action: a REQUEST to that agent, the answer shown readably first.
async function askBuiltin(event) {
  event.preventDefault();
  const form = event.target;
  const data = {};
  for (const input of form.querySelectorAll("input[name]")) {
    const kind = input.dataset.kind;
    if (kind === "bool") data[input.name] = input.checked;
    else if (input.value.trim() === "") continue;  // optional and empty: the agent's default
    else data[input.name] = kind === "str" ? input.value : Number(input.value);
  }
  const body = { header: { message_type: "REQUEST", recipient_id: form.dataset.agent },
    payload: { action: form.dataset.action, data } };
  const answerBox = form.querySelector(".action-answer");
  const errorBox = form.querySelector(".action-error");
  const button = form.querySelector("button[type=submit]");
  errorBox.hidden = true;
  button.disabled = true;
  try {
    const answer = await api("/api/agents/messages?wait=true&timeout=30", { method: "POST", body });
    show(answerBox, answer);
  } catch (err) {
    if (err.body?.message) show(answerBox, err.body.message);
    else answerBox.hidden = true;
    errorBox.textContent = `${err.message} (${err.code})`;
    errorBox.hidden = false;
  } finally {
    button.disabled = false;
  }
}

function show(box, envelope) {
  const { data, error } = answerData(envelope);
  box.querySelector(".readable").replaceChildren(error ? el("p", { class: "error" }, error) : readable(data));
  box.querySelector("pre").textContent = JSON.stringify(envelope, null, 2);
  box.hidden = false;
}

for (const form of document.querySelectorAll(".action-form")) form.addEventListener("submit", askBuiltin);
syncLog();  // the log at once, whether or not the feed can open (its opens read what came since)
connectFeed();
