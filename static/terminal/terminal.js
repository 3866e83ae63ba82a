// The terminal page: xterm.js on /ws/terminal/<id>/, a session list, a level selector,
// blocked-command notices, and automatic reconnect (the server replays recent output).
// Session data is only ever put into the page as text (textContent), never as HTML.
import { Terminal } from "../vendor/xterm/xterm.mjs";
import { FitAddon } from "../vendor/xterm/addon-fit.mjs";
import { api, wsUrl } from "../js/api.js";

const $ = (id) => document.getElementById(id);
const app = $("term-app");
const STORE = "autobot.terminal.current";
const FINAL_CLOSES = new Set([4401, 4403, 4404, 4409]);

const term = new Terminal({
  cursorBlink: true, convertEol: false, scrollback: 5000, fontSize: 14,
  fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace',
  theme: { background: "#111111" },
});
const fit = new FitAddon();
term.loadAddon(fit);
term.open($("terminal"));
fit.fit();

let current = null;      // session id
let socket = null;
let retry = 0;
let retryTimer = null;
let pingTimer = null;
let ended = false;

function setState(text, kind) {
  $("term-state").textContent = text;
  $("term-dot").className = `dot ${kind || ""}`;
  app.dataset.state = text;
}

function notice(text, kind = "") {
  const li = document.createElement("li");
  li.textContent = text;
  if (kind) li.className = kind;
  $("term-notices").prepend(li);
  while ($("term-notices").children.length > 20) $("term-notices").lastChild.remove();
}

function showError(text) {
  $("term-error").textContent = text;
  $("term-error").hidden = !text;
}

function send(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
}

function showSession(info) {
  $("term-title").textContent = info.title;
  $("term-level").value = info.security_level;
  $("term-level").disabled = info.status === "ended";
  const replay = $("term-replay");
  replay.href = `/terminal/sessions/${info.id}/replay/`;
  replay.hidden = false;
  app.dataset.level = info.security_level;
}

function connect(id) {
  if (socket) { socket.onclose = null; socket.close(); }
  clearTimeout(retryTimer);
  current = id;
  ended = false;
  localStorage.setItem(STORE, id);
  history.replaceState(null, "", `#${id}`);
  setState("connecting…", "warn");
  const ws = new WebSocket(wsUrl(`/ws/terminal/${id}/`));
  socket = ws;
  ws.onopen = () => { retry = 0; };
  ws.onmessage = (event) => onFrame(JSON.parse(event.data));
  ws.onclose = (event) => {
    clearInterval(pingTimer);
    if (ws !== socket) return;
    if (ended || FINAL_CLOSES.has(event.code)) {
      setState(ended ? "exited" : `closed (${event.code})`, "fail");
      loadSessions();
      return;
    }
    retry = Math.min(retry + 1, 5);
    const delay = 500 * 2 ** retry;
    setState(`reconnecting in ${Math.round(delay / 1000)}s…`, "warn");
    retryTimer = setTimeout(() => connect(id), delay);
  };
}

function onFrame(frame) {
  switch (frame.type) {
    case "session":
      // The server replays recent output next: start from a clean screen.
      term.reset();
      showSession(frame);
      setState("connected", "ok");
      send({ type: "resize", cols: term.cols, rows: term.rows });
      clearInterval(pingTimer);
      pingTimer = setInterval(() => send({ type: "ping" }), 25000);
      term.focus();
      loadSessions();
      break;
    case "output":
      term.write(frame.data);
      break;
    case "blocked":
      // Each reason already names the part of the line it is about ("mkfs.ext4 …: formats …").
      const reasons = frame.reasons || [];
      notice(`Blocked (${frame.risk}): ${reasons.length ? reasons.join("; ") : frame.command}`);
      break;
    case "exit":
      ended = true;
      term.write(`\r\n\x1b[33m[session ended with code ${frame.code}]\x1b[0m\r\n`);
      break;
    case "error":
      notice(`${frame.detail} (${frame.code})`, "info");
      break;
    default:
      break;
  }
}

term.onData((data) => send({ type: "input", data }));
term.onResize(({ cols, rows }) => send({ type: "resize", cols, rows }));
new ResizeObserver(() => { try { fit.fit(); } catch { /* hidden */ } }).observe($("terminal"));

function sessionItem(info) {
  const li = document.createElement("li");
  li.dataset.id = info.id;
  if (info.id === current) li.className = "current";
  const title = document.createElement("div");
  title.textContent = info.title;
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = `${info.security_level} · ${info.status} · ${new Date(info.created).toLocaleString()}`;
  const actions = document.createElement("div");
  actions.className = "actions";
  if (info.status !== "ended") {
    const open = document.createElement("button");
    open.type = "button";
    open.textContent = info.id === current ? "Reattach" : "Resume";
    open.onclick = () => connect(info.id);
    const close = document.createElement("button");
    close.type = "button";
    close.className = "danger";
    close.textContent = "End";
    close.onclick = async () => {
      try { await api(`/api/terminal/sessions/${info.id}`, { method: "DELETE" }); } catch (err) { showError(err.message); }
      loadSessions();
    };
    actions.append(open, close);
  }
  const replay = document.createElement("a");
  replay.href = `/terminal/sessions/${info.id}/replay/`;
  replay.textContent = "replay";
  actions.append(replay);
  li.append(title, meta, actions);
  return li;
}

async function loadSessions() {
  try {
    const data = await api("/api/terminal/sessions?limit=30");
    $("session-list").replaceChildren(...data.items.map(sessionItem));
    showError("");
    return data.items;
  } catch (err) {
    showError(err.message);
    return [];
  }
}

async function openSession(level) {
  try {
    const info = await api("/api/terminal/sessions", {
      method: "POST", body: { security_level: level, cols: term.cols, rows: term.rows },
    });
    connect(info.id);
  } catch (err) {
    showError(err.message);
  }
}

$("new-session").addEventListener("submit", (event) => {
  event.preventDefault();
  openSession($("new-level").value);
});

$("term-level").addEventListener("change", async (event) => {
  const level = event.target.value;
  try {
    const info = await api(`/api/terminal/sessions/${current}`, { method: "PATCH", body: { security_level: level } });
    showSession(info);
    notice(`Security level is now ${info.security_level}.`, "info");
  } catch (err) {
    notice(err.message, "info");
    event.target.value = app.dataset.level || "RESTRICTED";
  }
});

async function start() {
  const items = await loadSessions();
  const live = items.filter((s) => s.status !== "ended").map((s) => s.id);
  const wanted = location.hash.slice(1) || localStorage.getItem(STORE);
  if (wanted && live.includes(wanted)) connect(wanted);
  else if (live.length) connect(live[0]);
  else openSession("RESTRICTED");
}

start();
