// Chat page: sessions, live tokens over /ws/chat/<id>/, stop, citations, model picker.
// Replies arrive as plain text while streaming and are swapped for the server's sanitized
// HTML when done; nothing from the model is ever inserted as HTML on this side.
// Sending with no chat open starts one. Per-message actions live in actions.js, the grouped
// session list in sessions.js, export in export.js.
// A dropped socket reconnects with backoff, a banner saying the page may be behind meanwhile; the
// server replays the answer still running, and the page reads every stored message newer than
// what it shows, finishing the answers that ended while it was away (catchUp).
import { api, wsUrl } from "../js/api.js";
import { el } from "../js/dom.js";
import { Backoff } from "../js/reconnect.js";
import { markLast, messageActions } from "./actions.js";
import { exportSession } from "./export.js";
import { groupedByDay } from "./sessions.js";
import { bindToolsSwitch, handleOperatorFrame, operatorIdle, renderToolCalls } from "./operator.js";

const $ = (id) => document.getElementById(id);
const els = {
  list: $("session-list"), search: $("session-search"), title: $("chat-title"), models: $("model-picker"),
  conn: $("conn-state"), banner: $("banner"), stale: $("stale"), messages: $("messages"), prompt: $("prompt"),
  send: $("send"), stop: $("stop"), knowledge: $("use-knowledge"), count: $("char-count"), form: $("composer"),
  tools: $("use-tools"),
  exports: $("chat-export"),
};
const EMPTY = "Type a message below to start a chat, or pick one from your chats.";
const maxChars = Number($("chat").dataset.maxChars || 0);
const state = { session: null, socket: null, generating: false, streams: new Map(), defaultModel: "", posted: 0 };
const backoff = new Backoff({ base: 500, max: 10000 });
const PAGE = 200; // the API's largest page
// A catch-up reads at most this many pages (10,000 messages); a page away for longer is told to
// reopen the chat rather than fetch without end.
const CATCH_UP_PAGES = 50;
const STALE = "Reconnecting to the server… what this chat shows may be out of date until it is back.";

// ---------------------------------------------------------------- helpers

function showBanner(text) {
  els.banner.textContent = text;
  els.banner.hidden = !text;
}

// Apart from the error banner: the socket coming back clears this one, never an error.
function showStale(text) {
  els.stale.textContent = text;
  els.stale.hidden = !text;
}

function setConnection(kind, text) {
  els.conn.className = `conn ${kind}`;
  els.conn.querySelector(".conn-text").textContent = text;
}

function setGenerating(on) {
  state.generating = on;
  els.stop.hidden = !on;
  els.send.disabled = on;
}

function scrollDown() {
  els.messages.scrollTop = els.messages.scrollHeight;
}

// ---------------------------------------------------------------- sessions
async function loadSessions() {
  const q = els.search.value.trim();
  const data = await api(`/api/chat/sessions?limit=200&q=${encodeURIComponent(q)}`);
  els.list.replaceChildren(...groupedByDay(data.items, sessionItem, { searching: Boolean(q) }));
  // The server titles a chat from its first message: keep the heading in step with the list.
  const current = data.items.find((s) => s.id === state.session?.id);
  if (current) els.title.textContent = current.title || "New chat";
}

function sessionItem(session, when) {
  const li = el("li", { "data-id": session.id, class: state.session?.id === session.id ? "active" : "" },
    el("button", { type: "button", class: "open", title: session.title, onclick: () => { closeDrawer(); openSession(session.id); } },
      el("span", { class: "name" }, session.title || "New chat"), el("span", { class: "when" }, when)),
    el("button", { type: "button", class: "act", title: "Rename", "aria-label": "Rename", onclick: () => renameSession(session) }, "✎"),
    el("button", { type: "button", class: "act", title: "Delete", "aria-label": "Delete", onclick: () => deleteSession(session) }, "✕"));
  return li;
}

async function newSession() {
  const session = await api("/api/chat/sessions", { method: "POST", body: { model: els.models.value || "" } });
  await loadSessions();
  await openSession(session.id);
  closeDrawer();
  els.prompt.focus();
  return session;
}

async function renameSession(session) {
  const title = prompt("Rename chat", session.title);
  if (title === null) return;
  await api(`/api/chat/sessions/${session.id}`, { method: "PATCH", body: { title } });
  if (state.session?.id === session.id) els.title.textContent = title || "New chat";
  await loadSessions();
}

async function deleteSession(session) {
  if (!confirm(`Delete "${session.title || "New chat"}"?`)) return;
  await api(`/api/chat/sessions/${session.id}`, { method: "DELETE" });
  if (state.session?.id === session.id) closeSession();
  await loadSessions();
}

function closeSession() {
  state.session = null;
  state.socket?.close(1000);
  state.socket = null;
  history.replaceState(null, "", location.pathname);
  els.title.textContent = "Chat";
  els.messages.replaceChildren(el("p", { class: "muted empty" }, EMPTY));
  setGenerating(false);
  setConnection("", "not connected");
  showStale("");
  els.exports.hidden = true;
}

async function openSession(id) {
  let session;
  try {
    session = await api(`/api/chat/sessions/${id}`);
  } catch (err) {
    showBanner(err.message);
    closeSession();
    return;
  }
  state.socket?.close(1000);
  state.session = session;
  state.streams.clear();
  history.replaceState(null, "", `?session=${session.id}`);
  els.title.textContent = session.title || "New chat";
  els.models.value = session.model || state.defaultModel;
  els.tools.checked = session.tools;
  for (const li of els.list.children) li.classList.toggle("active", li.dataset.id === session.id);
  showBanner("");
  showStale("");
  // All of it (bounded as a catch-up is), so that a catch-up reads only what came after.
  const data = await messagesAfter(session.id, 0);
  els.messages.replaceChildren(...data.items.map(renderMessage));
  if (!data.items.length) els.messages.append(el("p", { class: "muted empty" }, "Type a message below to start."));
  markLast(els.messages);
  setGenerating(data.items.some((m) => m.status === "streaming"));
  els.exports.hidden = false;
  if (!data.complete) showBanner("This chat is too long to show whole here: export it to read all of it.");
  scrollDown();
  connect();
}

// ---------------------------------------------------------------- messages
function renderMessage(message) {
  const node = el("article", { class: `msg ${message.role} ${message.status}`, "data-id": message.id });
  const body = el("div", { class: "body" });
  node.append(body);
  if (message.role === "assistant" && message.status === "streaming") {
    body.textContent = message.content;
    state.streams.set(message.id, { node, body, text: message.content });
    return node;
  }
  if (message.role === "assistant") {
    body.innerHTML = message.html; // sanitized on the server (markdown-it + nh3)
    addCopyButtons(body);
    renderToolCalls(message, node);
    if (message.citations?.length) node.append(renderCitations(message.citations));
  } else {
    body.textContent = message.content;
  }
  const meta = metaLine(message);
  if (meta) node.append(meta);
  node.append(messageActions(message, { onRegenerate: regenerate, onEdit: editLast }));
  return node;
}

function metaLine(message) {
  if (message.role !== "assistant") return null;
  const parts = [message.model];
  if (message.status === "cancelled") parts.push("stopped");
  if (message.completion_tokens) parts.push(`${message.completion_tokens} tokens`);
  if (message.total_ms) parts.push(`${(message.total_ms / 1000).toFixed(1)} s`);
  const meta = el("div", { class: "meta" }, parts.filter(Boolean).join(" · "));
  if (message.status === "failed") meta.append(el("div", { class: "failure" }, message.error || "The answer failed."));
  return meta;
}

// Each source as a quotation: its title (a link) and the quoted passage, as text.
function renderCitations(citations) {
  const list = el("ol", { class: "citations", "aria-label": "Sources" });
  for (const cite of citations) {
    const href = /^https?:\/\//.test(cite.source || "") ? cite.source : `/knowledge/#entry-${cite.entry_id}`;
    const snippet = (cite.snippet || "").replace(/\s+/g, " ").trim();
    list.append(el("li", {},
      el("a", { href, target: "_blank", rel: "noopener noreferrer" }, cite.title || "Untitled"),
      snippet ? el("blockquote", { cite: href }, snippet) : null));
  }
  return list;
}

function addCopyButtons(root) {
  for (const pre of root.querySelectorAll("pre")) {
    const button = el("button", { type: "button", class: "copy", "aria-label": "Copy code" }, "Copy");
    button.addEventListener("click", async () => {
      await navigator.clipboard?.writeText(pre.querySelector("code")?.innerText ?? pre.innerText);
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
    pre.append(button);
  }
}

function streamFor(messageId) {
  let stream = state.streams.get(messageId);
  if (!stream) {
    const node = renderMessage({ id: messageId, role: "assistant", status: "streaming", content: "" });
    els.messages.querySelector(".empty")?.remove();
    els.messages.append(node);
    stream = state.streams.get(messageId);
  }
  return stream;
}

function onToken(frame) {
  const stream = streamFor(frame.message_id);
  // Offsets make replays idempotent: a snapshot after a reconnect overwrites, never duplicates.
  const offset = frame.offset ?? stream.text.length;
  stream.text = stream.text.slice(0, Math.min(offset, stream.text.length)) + frame.data;
  stream.body.textContent = stream.text;
  setGenerating(true);
  scrollDown();
}

function onDone(message, { quiet = false } = {}) {
  const fresh = renderMessage(message);
  const old = els.messages.querySelector(`.msg.assistant[data-id="${message.id}"]`);
  if (old) old.replaceWith(fresh);
  else els.messages.append(fresh);
  state.streams.delete(message.id);
  markLast(els.messages);
  setGenerating(false);
  operatorIdle();
  scrollDown();
  if (!quiet) loadSessions(); // the title may have been set and the order changed
}

// ---------------------------------------------------------------- socket
// The server closes the socket (1011) after these, and the page reconnects on its own: the
// connection label says so, a banner would only alarm.
const LAYER_ERRORS = new Set(["layer_restarted", "redis_unavailable"]);

function connect({ reconnecting = false } = {}) {
  const session = state.session;
  if (!session) return;
  setConnection("warn", "connecting…");
  const socket = new WebSocket(wsUrl(`/ws/chat/${session.id}/`));
  state.socket = socket;
  socket.addEventListener("open", () => {
    backoff.reset();
    setConnection("ok", "connected");
    if (reconnecting) catchUp(session.id);
  });
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "token") onToken(frame);
    else if (frame.type === "done") onDone(frame.message);
    else if (handleOperatorFrame(frame, operatorContext)) setGenerating(true);
    else if (frame.type === "error") {
      if (LAYER_ERRORS.has(frame.code) && !frame.message_id) return;
      showBanner(frame.detail);
      if (!frame.message_id) setGenerating(false);
    }
  });
  socket.addEventListener("close", (event) => {
    if (state.socket !== socket) return; // replaced by another session's socket
    if ([4401, 4403, 4404].includes(event.code)) {
      setConnection("fail", "closed");
      return;
    }
    // Answers keep going on the server; reconnecting picks up where the stream is now.
    setConnection("warn", "reconnecting…");
    showStale(STALE);
    backoff.schedule(() => { if (state.socket === socket) connect({ reconnecting: true }); });
  });
}

// An answer that ended while the socket was down sends no frame again (the server's snapshot
// holds only the answer still running), so its node would stay "streaming" and sending blocked;
// and messages stored meanwhile (a question from another tab, an answer whose first token never
// reached this page) were never shown. Read every message newer than what this page holds, page
// by page: finish what it still streams, add what it lacks. One still running is left to the
// socket's snapshot and frames.
async function catchUp(sessionId) {
  const posted = state.posted;
  let read;
  try {
    read = await messagesAfter(sessionId, catchUpFrom());
  } catch (err) {
    showBanner(`The chat could not be brought up to date: ${err.message}`);
    return; // the stale banner stays: the next reconnect tries again
  }
  if (state.session?.id !== sessionId) return; // another chat was opened meanwhile
  for (const message of read.items) caughtUp(message);
  markLast(els.messages);
  if (read.items.length) loadSessions(); // titles and order may have changed
  // Nothing streams here nor runs there: no answer is coming. Unless a message was sent during
  // the fetch, whose answer the list may predate.
  const running = state.streams.size > 0 || read.items.some((m) => m.status === "streaming");
  if (!running && state.posted === posted) setGenerating(false);
  showStale(read.complete ? "" : "This chat has more new messages than the page reads at once: reopen it to see them all.");
  scrollDown();
}

// The id after which to read: the newest message shown, or just before the oldest answer this
// page still streams (it may have ended meanwhile).
function catchUpFrom() {
  let from = 0;
  for (const node of els.messages.querySelectorAll(".msg")) from = Math.max(from, Number(node.dataset.id) || 0);
  for (const id of state.streams.keys()) from = Math.min(from, Number(id) - 1);
  return from;
}

async function messagesAfter(sessionId, after) {
  const items = [];
  for (let page = 0; page < CATCH_UP_PAGES; page += 1) {
    const data = await api(`/api/chat/sessions/${sessionId}/messages?after=${after}&limit=${PAGE}`);
    items.push(...data.items);
    if (data.items.length < PAGE) return { items, complete: true };
    after = data.items[data.items.length - 1].id;
  }
  return { items, complete: false };
}

function caughtUp(message) {
  if (els.messages.querySelector(`.msg[data-id="${message.id}"]`)) {
    // A `done` that came during the fetch has already removed its stream: nothing to undo.
    if (message.status !== "streaming" && state.streams.has(message.id)) onDone(message, { quiet: true });
    return;
  }
  if (message.role === "user") {
    // This page's own question, shown when it was sent, before the server gave it an id.
    const sent = [...els.messages.querySelectorAll('.msg.user[data-id=""]')]
      .find((node) => node.querySelector(".body").textContent === message.content);
    if (sent) {
      sent.dataset.id = message.id;
      return;
    }
  }
  els.messages.querySelector(".empty")?.remove();
  insertInOrder(renderMessage(message), message.id);
}

// Before the first message with a greater id: a stream the socket opened meanwhile may already
// follow where this one belongs.
function insertInOrder(node, id) {
  const later = [...els.messages.querySelectorAll(".msg")].find((other) => Number(other.dataset.id) > id);
  els.messages.insertBefore(node, later ?? null);
}

// Resolves once the socket is open (or at once if it is), rejects if it closes first.
function socketOpen(socket, ms = 10000) {
  if (socket?.readyState === WebSocket.OPEN) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const fail = () => reject(new Error("Not connected yet: your message was not sent."));
    const timer = setTimeout(fail, ms);
    socket?.addEventListener("open", () => { clearTimeout(timer); resolve(); }, { once: true });
    socket?.addEventListener("close", () => { clearTimeout(timer); fail(); }, { once: true });
    if (!socket) fail();
  });
}

async function send(event) {
  event?.preventDefault();
  const content = els.prompt.value.trim();
  if (!content || state.generating || sending) return;
  sending = true;
  try {
    if (!state.session) await newSession();  // typing first starts a chat
    await postMessage(content);
    els.prompt.value = "";
    updateCount();
  } catch (err) {
    showBanner(err.message);
  } finally {
    sending = false;
  }
}
let sending = false;

async function postMessage(content) {
  await socketOpen(state.socket);
  showBanner("");
  state.socket.send(JSON.stringify({ type: "message", content, use_knowledge: els.knowledge.checked }));
  state.posted += 1;
  els.messages.querySelector(".empty")?.remove();
  els.messages.append(renderMessage({ id: "", role: "user", status: "complete", content }));
  markLast(els.messages);
  setGenerating(true);
  scrollDown();
}

// The same question again: the server answers its last question afresh; the new answer arrives
// below, the old one stays, and the question is not stored twice.
async function regenerate() {
  if (state.generating || !els.messages.querySelector(".msg.user")) return;
  try {
    await socketOpen(state.socket);
    showBanner("");
    state.socket.send(JSON.stringify({ type: "message", regenerate: true, use_knowledge: els.knowledge.checked }));
    state.posted += 1;
    setGenerating(true);
    scrollDown();
  } catch (err) {
    showBanner(err.message);
  }
}

function editLast(message) {
  els.prompt.value = message.content;
  updateCount();
  els.prompt.focus();
  els.prompt.setSelectionRange(els.prompt.value.length, els.prompt.value.length);
}

function updateCount() {
  const n = els.prompt.value.length;
  els.count.textContent = n > maxChars * 0.8 ? `${n} / ${maxChars}` : "";
}

// ---------------------------------------------------------------- models
async function loadModels() {
  try {
    const data = await api("/api/chat/models");
    state.defaultModel = data.default;
    els.models.replaceChildren(...data.items.filter((m) => m.model).map((m) => {
      const label = `${m.provider} · ${m.model}${m.available ? "" : " (unavailable)"}`;
      return el("option", { value: m.id }, label);
    }));
    els.models.value = state.session?.model || data.default;
  } catch (err) {
    showBanner(`Models could not be listed: ${err.message}`);
  }
}

async function changeModel() {
  if (!state.session) return;
  try {
    state.session = await api(`/api/chat/sessions/${state.session.id}`, { method: "PATCH", body: { model: els.models.value } });
  } catch (err) {
    showBanner(err.message);
  }
}

const operatorContext = {
  messages: els.messages,
  messageNode: (id) => streamFor(id).node,
  send: (frame) => state.socket?.send(JSON.stringify(frame)),
  terminalId: () => state.session?.operator_terminal,
};

// ---------------------------------------------------------------- wiring
bindToolsSwitch(els.tools, () => state.session, showBanner);
els.form.addEventListener("submit", send);
els.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) send(event);
});
els.prompt.addEventListener("input", updateCount);
els.stop.addEventListener("click", () => state.socket?.send(JSON.stringify({ type: "cancel" })));
$("new-session").addEventListener("click", () => newSession().catch((err) => showBanner(err.message)));
let searchTimer;
els.search.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => loadSessions().catch((err) => showBanner(err.message)), 200);
});
els.models.addEventListener("change", changeModel);
for (const button of els.exports.querySelectorAll("button[data-format]")) {
  button.addEventListener("click", async () => {
    if (!state.session) return;
    try {
      await exportSession({ ...state.session, title: els.title.textContent }, button.dataset.format);
    } catch (err) {
      showBanner(`Export failed: ${err.message}`);
    }
  });
}

// Phones: the conversation comes first; the chat list is a drawer behind a button.
function closeDrawer() {
  $("chat").classList.remove("drawer-open");
  $("chats-toggle").setAttribute("aria-expanded", "false");
}
$("chats-toggle").addEventListener("click", () => {
  const open = $("chat").classList.toggle("drawer-open");
  $("chats-toggle").setAttribute("aria-expanded", String(open));
});

(async () => {
  await Promise.all([loadModels(), loadSessions()]);
  const wanted = new URLSearchParams(location.search).get("session");
  if (wanted) await openSession(wanted);
})().catch((err) => showBanner(err.message));
