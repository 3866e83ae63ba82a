// The terminal page: xterm.js on /ws/terminal/<id>/, a session list, a level selector,
// blocked-command notices, and automatic reconnect (the server replays recent output).
// Session data is only ever put into the page as text (textContent), never as HTML.
//
// Arriving with no live session of your own opens a RESTRICTED one, so the page starts at a
// prompt. That session is "unused" until someone types into it; "New session" while it is
// unused ends it and opens the chosen level instead, so the page never leaves behind a shell
// nobody asked for. Sessions the user opened are never ended for them. Reloading reattaches.
import { Terminal } from "../vendor/xterm/xterm.mjs";
import { FitAddon } from "../vendor/xterm/addon-fit.mjs";
import { api, wsUrl } from "../js/api.js";

const $ = (id) => document.getElementById(id);
const app = $("term-app");
const me = app.dataset.user;
// Per user: another account logging in on this browser must not inherit either.
const STORE = `autobot.terminal.current.${me}`;  // the session this user was last on
const UNUSED = `autobot.terminal.unused.${me}`;  // the session the page opened by itself, untouched
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
let role = "owner"; // owner | observer | joined (staff on someone else's session)
let socket = null;
let retry = 0;
let retryTimer = null;
let pingTimer = null;
let ended = false;
let busy = false;        // a session is being opened or replaced

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

function setBusy(on) {
  busy = on;
  $("new-session-button").disabled = on;
  $("new-session").setAttribute("aria-busy", String(on));
}

function unused() {
  return localStorage.getItem(UNUSED);
}

function updateHint() {
  $("new-hint").hidden = !(current && !ended && unused() === current);
}

function markUsed(id) {
  if (id && unused() === id) localStorage.removeItem(UNUSED);
  updateHint();
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

// Leave the current socket: nothing it still says (a late "exit", its close) reaches the page.
function disconnect() {
  clearTimeout(retryTimer);
  clearInterval(pingTimer);
  if (socket) {
    socket.onmessage = null;
    socket.onclose = null;
    socket.close();
    socket = null;
  }
  setState("disconnected");
}

function connect(id) {
  disconnect();
  current = id;
  ended = false;
  localStorage.setItem(STORE, id);
  history.replaceState(null, "", `#${id}`);
  updateHint();
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
      markUsed(id);
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
      role = frame.role || "owner";
      setState(role === "owner" ? "connected" : `${role} of ${frame.owner}'s session`, role === "observer" ? "warn" : "ok");
      if (role === "observer") notice("You are watching read-only; the owner sees you. Press Ctrl-J here to join and type.", "info");
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
      markUsed(current);
      term.write(`\r\n\x1b[33m[session ended with code ${frame.code}]\x1b[0m\r\n`);
      break;
    case "error":
      notice(`${frame.detail} (${frame.code})`, "info");
      break;
    case "notice":
      notice(frame.detail, "info");
      break;
    case "watchers":
      // Who else is on this session (staff watching or joined): the owner always knows.
      notice(frame.watchers.length
        ? `On this session: ${frame.watchers.map((w) => `${w.user} (${w.role})`).join(", ")}`
        : "Nobody else is on this session.", "info");
      break;
    default:
      break;
  }
}

term.onData((data) => {
  if (role === "observer") {
    // Typing into someone else's session is an explicit, audited join (Ctrl-J).
    if (data === "\n") { send({ type: "join" }); role = "joined"; setState("joined", "ok"); }
    return;
  }
  markUsed(current);
  send({ type: "input", data });
});
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
      try {
        await api(`/api/terminal/sessions/${info.id}`, { method: "DELETE" });
        await loadSessions();
      } catch (err) {
        await loadSessions();
        showError(err.message);
      }
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

function openSession(level) {
  return api("/api/terminal/sessions", {
    method: "POST", body: { security_level: level, cols: term.cols, rows: term.rows },
  });
}

// Ends the session the page opened by itself if it is still unused: nothing typed into it in
// this browser and no command run in it from anywhere (its history is empty). Returns the
// ended session, or null when there was none to end.
async function endUnused() {
  const id = unused();
  if (!id) return null;
  localStorage.removeItem(UNUSED);
  let info, commands;
  try {
    [info, commands] = await Promise.all([
      api(`/api/terminal/sessions/${id}`), api(`/api/terminal/sessions/${id}/history?limit=1`),
    ]);
  } catch {
    return null;  // gone: nothing to end
  }
  if (info.status === "ended" || commands.count > 0) return null;
  const attached = id === current;
  if (attached) disconnect();
  try {
    return await api(`/api/terminal/sessions/${id}`, { method: "DELETE" });
  } catch (err) {
    if (attached) connect(id);
    throw err;
  }
}

async function newSession(level) {
  if (busy) return;
  setBusy(true);
  showError("");
  try {
    const replaced = await endUnused();
    const info = await openSession(level);
    connect(info.id);
    if (replaced) {
      notice(`Ended the unused ${replaced.security_level} session opened on arrival; this one is ${info.security_level}.`,
        "info");
    }
  } catch (err) {
    await loadSessions();
    showError(err.message);
  } finally {
    setBusy(false);
  }
}

$("new-session").addEventListener("submit", (event) => {
  event.preventDefault();
  newSession($("new-level").value);
});
window.addEventListener("storage", (event) => { if (event.key === UNUSED) updateHint(); });

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

// Reattach to the session in the address (or the last one this browser used) if it is live,
// else to your newest live session; open one only when you have none. Staff see everyone's
// sessions and may open one by its address, but arriving never attaches them to someone else's.
async function start() {
  setBusy(true);
  try {
    const query = new URLSearchParams({ status: "live", owner: me, limit: "200" });
    const mine = (await api(`/api/terminal/sessions?${query}`)).items;
    if (!mine.some((s) => s.id === unused())) localStorage.removeItem(UNUSED);
    const wanted = location.hash.slice(1) || localStorage.getItem(STORE);
    if (wanted && (mine.some((s) => s.id === wanted) || await isLive(wanted))) connect(wanted);
    else if (mine.length) connect(mine[0].id);
    else {
      const info = await openSession("RESTRICTED");
      localStorage.setItem(UNUSED, info.id);
      connect(info.id);
    }
  } catch (err) {
    await loadSessions();
    showError(err.message);
  } finally {
    setBusy(false);
  }
}

async function isLive(id) {
  try {
    return (await api(`/api/terminal/sessions/${encodeURIComponent(id)}`)).status !== "ended";
  } catch {
    return false;
  }
}

start();
