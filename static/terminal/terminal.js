// The terminal page: xterm.js on /ws/terminal/<id>/, a session list, a level selector,
// blocked-command notices, and automatic reconnect (the server replays recent output).
// Session data is only ever put into the page as text (see ../js/dom.js), never as HTML.
//
// Arriving with no live session of your own opens a RESTRICTED one, so the page starts at a
// prompt. That session is "unused" until someone types into it; "New session" while it is
// unused ends it and opens the chosen level instead, so the page never leaves behind a shell
// nobody asked for. Sessions the user opened are never ended for them. Reloading reattaches.
import { Terminal } from "../vendor/xterm/xterm.mjs";
import { FitAddon } from "../vendor/xterm/addon-fit.mjs";
import { api, wsUrl } from "../js/api.js";
import { Backoff } from "../js/reconnect.js";
import { Notices } from "./notices.js";
import { SessionList } from "./sessions.js";

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

const notices = new Notices(me);
const backoff = new Backoff({ base: 500, max: 16000 });
let current = null;      // session id
let role = "owner"; // owner | observer | joined (staff on someone else's session)
let socket = null;
let pingTimer = null;
let ended = false;
let busy = false;        // a session is being opened or replaced
let awaitingReplay = false;  // the next output frame starts with the server's replay
let replaying = false;   // xterm.js is parsing the replay right now

function setState(text, kind) {
  $("term-state").textContent = text;
  $("term-dot").className = `dot ${kind || ""}`;
  app.dataset.state = text;
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
  $("term-title").title = info.title;
  $("term-level").value = info.security_level;
  $("term-level").disabled = info.status === "ended";
  const replay = $("term-replay");
  replay.href = `/terminal/sessions/${info.id}/replay/`;
  replay.hidden = false;
  app.dataset.level = info.security_level;
}

// Leave the current socket: nothing it still says (a late "exit", its close) reaches the page.
function disconnect() {
  backoff.cancel();
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
  if (current !== id) backoff.reset();
  current = id;
  ended = false;
  localStorage.setItem(STORE, id);
  history.replaceState(null, "", `#${id}`);
  notices.show(id);
  updateHint();
  setState("connecting…", "warn");
  const ws = new WebSocket(wsUrl(`/ws/terminal/${id}/`));
  socket = ws;
  let attached = false;  // the first "session" frame of a socket precedes the replay
  ws.onopen = () => { backoff.reset(); };
  ws.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "session" && !attached) {
      attached = true;
      onAttached(frame);
    } else onFrame(frame);
  };
  ws.onclose = (event) => {
    clearInterval(pingTimer);
    if (ws !== socket) return;
    if (ended || FINAL_CLOSES.has(event.code)) {
      setState(ended ? "exited" : `closed (${event.code})`, "fail");
      markUsed(id);
      sessions.load();
      return;
    }
    const delay = backoff.schedule(() => connect(id));
    setState(`reconnecting in ${Math.max(1, Math.round(delay / 1000))}s…`, "warn");
  };
}

function onAttached(info) {
  // The server replays recent output next: start from a clean screen.
  term.reset();
  awaitingReplay = true;
  showSession(info);
  role = info.role || "owner";
  setState(role === "owner" ? "connected" : `${role} of ${info.owner}'s session`, role === "observer" ? "warn" : "ok");
  if (role === "observer") {
    notices.add(current, "You are watching read-only; the owner sees you. Press Ctrl-J here to join and type.", "info");
  }
  send({ type: "resize", cols: term.cols, rows: term.rows });
  clearInterval(pingTimer);
  pingTimer = setInterval(() => send({ type: "ping" }), 25000);
  term.focus();
  sessions.load();
}

// The replay holds whatever programs printed, including their terminal queries (device
// attributes, colour queries, DECRQM, cursor reports). xterm.js answers queries as it parses
// them, through onData, as if typed: those answers must not reach the shell. The empty write
// flags the start of the replay's parse and the replay's callback its end; xterm.js parses
// both in one pass, so keys typed meanwhile are not caught.
function writeReplay(data) {
  term.write("", () => { replaying = true; });
  term.write(data, () => { replaying = false; });
}

function onFrame(frame) {
  switch (frame.type) {
    case "session":  // renamed or level changed, by this page or another
      showSession(frame);
      if (frame.role) role = frame.role;
      sessions.load();
      break;
    case "output":
      if (awaitingReplay) {
        awaitingReplay = false;
        writeReplay(frame.data);
      } else term.write(frame.data);
      break;
    case "blocked": {
      // Each reason already names the part of the line it is about ("mkfs.ext4 …: formats …").
      const reasons = frame.reasons || [];
      notices.add(current, `Blocked (${frame.risk}): ${reasons.length ? reasons.join("; ") : frame.command}`, "fail");
      break;
    }
    case "exit":
      ended = true;
      markUsed(current);
      term.write(`\r\n\x1b[33m[session ended with code ${frame.code}]\x1b[0m\r\n`);
      break;
    case "error":
      notices.add(current, `${frame.detail} (${frame.code})`, "info");
      break;
    case "notice":
      notices.add(current, frame.detail, "info");
      break;
    case "watchers":
      // Who else is on this session (staff watching or joined): the owner always knows.
      notices.add(current, frame.watchers.length
        ? `On this session: ${frame.watchers.map((w) => `${w.user} (${w.role})`).join(", ")}`
        : "Nobody else is on this session.", "info");
      break;
    default:
      break;
  }
}

term.onData((data) => {
  if (replaying) return;  // an answer to a query in the replay, not a key
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

const sessions = new SessionList($("session-list"), {
  current: () => current,
  onOpen: (id) => { connect(id); closeDrawer(); },
  onError: showError,
});

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
    closeDrawer();
    if (replaced) {
      notices.add(info.id, `Ended the unused ${replaced.security_level} session opened on arrival; this one is ${info.security_level}.`,
        "info");
    }
  } catch (err) {
    await sessions.load();
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
    notices.add(current, `Security level is now ${info.security_level}.`, "info");
  } catch (err) {
    notices.add(current, err.message, "info");
    event.target.value = app.dataset.level || "RESTRICTED";
  }
});

// Phones: the terminal comes first; the session list is a drawer behind a button.
function closeDrawer() {
  app.classList.remove("drawer-open");
  $("sessions-toggle").setAttribute("aria-expanded", "false");
}
$("sessions-toggle").addEventListener("click", () => {
  const open = app.classList.toggle("drawer-open");
  $("sessions-toggle").setAttribute("aria-expanded", String(open));
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
    await sessions.load();
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
