// The /knowledge/ page: search as you type, entries (view, edit, delete), notes, uploads, crawls.
import { api, wsUrl } from "../js/api.js";
import { el } from "../js/dom.js";
import { Backoff } from "../js/reconnect.js";

const $ = (id) => document.getElementById(id);
const root = $("kb");
const BASE = "/api/knowledge";
const PAGE = 20;
const state = { offset: 0, count: 0, current: null, searchAbort: null, socket: null, crawlId: null };

function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

function tags(text) {
  return (text || "").split(/[\s,]+/).filter(Boolean);
}

function message(form, text, isError = false) {
  const out = form.querySelector(".kb-msg");
  out.textContent = text;
  out.classList.toggle("error", isError);
}

// The server escapes snippets and adds only <mark>; keep it that way even if that ever changed.
function snippetNode(html) {
  const tpl = document.createElement("template");
  tpl.innerHTML = html;
  const out = el("p", { className: "kb-snippet" });
  for (const node of tpl.content.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) out.append(node.textContent);
    else out.append(node.nodeName === "MARK" ? el("mark", { textContent: node.textContent }) : node.textContent);
  }
  return out;
}

// --- search ---------------------------------------------------------------------------------

async function runSearch() {
  const q = $("kb-q").value;
  const status = $("kb-search-state");
  const list = $("kb-results");
  state.searchAbort?.abort();
  if (!q.trim()) { list.replaceChildren(); status.textContent = ""; return; }
  // Words of one or two letters match almost everything or nothing: ask for more first.
  if (q.trim().length < 3) {
    list.replaceChildren();
    status.textContent = "Type at least 3 characters to search.";
    return;
  }
  const controller = new AbortController();
  state.searchAbort = controller;
  const started = performance.now();
  try {
    const params = new URLSearchParams({ q, limit: "10", prefix: /\s$/.test(q) ? "false" : "true" });
    const data = await api(`${BASE}/search?${params}`, { signal: controller.signal });
    const ms = Math.round(performance.now() - started);
    status.textContent = data.count ? `${data.count} result${data.count === 1 ? "" : "s"} · ${ms} ms` : "No matches.";
    list.replaceChildren(...data.items.map(resultItem));
  } catch (err) {
    if (err.name !== "AbortError") status.textContent = err.message;
  }
}

function resultItem(hit) {
  const item = el("li", { tabIndex: 0 },
    el("div", { className: "kb-result-title", textContent: hit.title }),
    el("div", { className: "kb-result-path", textContent: [hit.source_type, hit.heading_path, hit.source].filter(Boolean).join(" · ") }),
    snippetNode(hit.snippet || ""));
  item.dataset.entryId = hit.entry_id;
  const open = () => showEntry(hit.entry_id);
  item.addEventListener("click", open);
  item.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
  return item;
}

// --- entries --------------------------------------------------------------------------------

async function loadEntries() {
  const params = new URLSearchParams({ limit: PAGE, offset: state.offset });
  if ($("kb-filter-type").value) params.set("source_type", $("kb-filter-type").value);
  if ($("kb-filter-category").value.trim()) params.set("category", $("kb-filter-category").value.trim());
  const data = await api(`${BASE}/entries?${params}`);
  state.count = data.count;
  $("kb-entries").replaceChildren(...data.items.map((entry) => {
    const item = el("li", {},
      el("span", { className: "kb-entry-title", textContent: entry.title }),
      el("span", { className: "badge", textContent: entry.source_type }),
      entry.shared ? el("span", { className: "badge ok", textContent: "shared" }) : "");
    item.addEventListener("click", () => showEntry(entry.id));
    return item;
  }));
  if (!data.items.length) {
    const filtered = $("kb-filter-type").value || $("kb-filter-category").value.trim();
    $("kb-entries").append(el("li", { className: "muted kb-empty", textContent: filtered
      ? "No entries match these filters. Clear them to see everything."
      : "Nothing here yet. Write a note, upload a document (Markdown, text, PDF) or crawl a site to start your knowledge base." }));
  }
  const last = Math.min(state.offset + PAGE, data.count);
  $("kb-page").textContent = data.count ? `${state.offset + 1}–${last} of ${data.count}` : "";
  $("kb-prev").disabled = state.offset === 0;
  $("kb-next").disabled = last >= data.count;
}

async function loadStats() {
  const s = await api(`${BASE}/stats`);
  $("kb-stats").textContent = `${s.entries} entries · ${s.chunks} chunks · ${s.by_source_type.web} web pages`;
}

async function showEntry(id) {
  const entry = await api(`${BASE}/entries/${id}`);
  state.current = entry;
  $("kb-detail").hidden = false;
  $("kb-edit").hidden = true;
  $("kb-detail-content").hidden = false;
  $("kb-detail-title").textContent = entry.title;
  const source = entry.source ? ` · ${entry.source}` : "";
  const tagText = entry.tags.length ? ` · #${entry.tags.join(" #")}` : "";
  $("kb-detail-meta").textContent = `${entry.source_type}${source} · by ${entry.owner}${entry.category ? " · " + entry.category : ""}${tagText}`;
  $("kb-detail-content").textContent = entry.content;  // at once; the rendered Markdown follows
  renderContent(entry);
  $("kb-detail-actions").hidden = !entry.can_edit;
  $("kb-detail").scrollIntoView({ block: "nearest" });
}

// The entry's Markdown as the server renders and sanitizes it (nh3 allow-list, as chat replies).
async function renderContent(entry) {
  try {
    const response = await fetch(`/knowledge/entries/${entry.id}/html`, { credentials: "same-origin" });
    if (response.ok && state.current?.id === entry.id) $("kb-detail-content").innerHTML = await response.text();
  } catch { /* the plain text stays */ }
}

function startEdit() {
  const form = $("kb-edit");
  const entry = state.current;
  form.title.value = entry.title;
  form.category.value = entry.category;
  form.tags.value = entry.tags.join(" ");
  form.shared.checked = entry.shared;
  form.content.value = entry.content;
  form.hidden = false;
  $("kb-detail-content").hidden = true;
  $("kb-detail-actions").hidden = true;
}

async function saveEdit(event) {
  event.preventDefault();
  const form = event.target;
  try {
    await api(`${BASE}/entries/${state.current.id}`, { method: "PATCH", body: {
      title: form.title.value, category: form.category.value, tags: tags(form.tags.value),
      shared: form.shared.checked, content: form.content.value,
    } });
    await Promise.all([showEntry(state.current.id), loadEntries(), runSearch()]);
  } catch (err) { alert(err.message); }
}

async function deleteEntry() {
  if (!confirm(`Delete "${state.current.title}"?`)) return;
  await api(`${BASE}/entries/${state.current.id}`, { method: "DELETE" });
  $("kb-detail").hidden = true;
  state.current = null;
  await Promise.all([loadEntries(), loadStats(), runSearch()]);
}

async function addNote(event) {
  event.preventDefault();
  const form = event.target;
  try {
    const entry = await api(`${BASE}/entries`, { method: "POST", body: {
      title: form.title.value, content: form.content.value, category: form.category.value,
      tags: tags(form.tags.value), shared: form.shared.checked,
    } });
    form.reset();
    message(form, `Saved "${entry.title}".`);
    await Promise.all([loadEntries(), loadStats()]);
  } catch (err) { message(form, err.message, true); }
}

// --- uploads --------------------------------------------------------------------------------

async function uploadFiles(files) {
  const max = Number(root.dataset.maxUpload);
  for (const file of files) {
    const line = el("li", { textContent: `${file.name}: uploading…` });
    $("kb-uploads").prepend(line);
    if (file.size > max) { line.textContent = `${file.name}: too large (limit ${max} bytes)`; continue; }
    const body = new FormData();
    body.append("file", file);
    try {
      const result = await api(`${BASE}/documents`, { method: "POST", body });
      line.textContent = `${file.name}: ${result.outcome} (${result.entry.chunk_count} chunks)`;
    } catch (err) {
      line.textContent = `${file.name}: ${err.message}`;
      line.classList.add("error");
    }
  }
  await Promise.all([loadEntries(), loadStats()]);
}

function wireDrop() {
  const zone = $("kb-drop");
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.remove("over"); });
  }
  zone.addEventListener("drop", (e) => uploadFiles([...e.dataTransfer.files]));
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("kb-file").click(); });
  $("kb-file").addEventListener("change", (e) => { uploadFiles([...e.target.files]); e.target.value = ""; });
}

// --- crawls ---------------------------------------------------------------------------------

async function startCrawl(event) {
  event.preventDefault();
  const form = event.target;
  try {
    const job = await api(`${BASE}/crawls`, { method: "POST", body: {
      url: form.url.value, max_pages: Number(form.max_pages.value), max_depth: Number(form.max_depth.value),
      same_domain: form.same_domain.checked, include: tags(form.include.value), exclude: tags(form.exclude.value),
    } });
    message(form, `Crawl ${job.id} started.`);
    watchCrawl(job);
    loadCrawls();
  } catch (err) { message(form, err.message, true); }
}

const crawlBackoff = new Backoff({ base: 500, max: 10000 });

function watchCrawl(job) {
  const previous = state.socket;
  state.socket = null;
  previous?.close();
  crawlBackoff.cancel();
  state.crawlId = job.id;
  renderCrawl(job);
  if (!(job.status === "queued" || job.status === "running")) return;
  const socket = new WebSocket(wsUrl(`/ws/knowledge/crawls/${job.id}/`));
  state.socket = socket;
  socket.addEventListener("open", () => crawlBackoff.reset());
  // A dropped socket while the crawl runs (a server restart, a network blip) comes back.
  socket.addEventListener("close", () => {
    if (state.socket === socket) crawlBackoff.schedule(() => { if (state.socket === socket) watchCrawl(job); });
  });
  socket.addEventListener("message", (event) => {
    const data = JSON.parse(event.data);
    if (data.type === "progress" && data.crawl.id === state.crawlId) { job = data.crawl; renderCrawl(job); }
    if (data.type === "error") $("kb-crawl-status").textContent = data.detail;
  });
}

function renderCrawl(job) {
  $("kb-crawl-progress").hidden = false;
  $("kb-crawl-url").textContent = job.url;
  $("kb-crawl-status").textContent = job.status;
  const processed = job.pages_ingested + job.pages_unchanged + job.pages_skipped + job.pages_failed;
  const total = Math.max(1, Math.min(job.pages_found, job.max_pages));
  const bar = $("kb-crawl-bar");
  const active = job.status === "queued" || job.status === "running";
  bar.max = total;
  bar.value = active ? Math.min(processed, total) : total;
  $("kb-crawl-counts").textContent = `${job.pages_found} found · ${job.pages_fetched} fetched · ` +
    `${job.pages_ingested} new or changed · ${job.pages_unchanged} unchanged · ${job.pages_skipped} skipped · ` +
    `${job.pages_failed} failed` + (job.detail ? ` · ${job.detail}` : "");
  $("kb-crawl-cancel").hidden = !active;
  $("kb-crawl-errors").replaceChildren(...job.errors.map((e) => el("li", { textContent: `${e.url}: ${e.error}` })));
  if (!active) {
    const socket = state.socket;
    state.socket = null;
    socket?.close();
    loadEntries(); loadStats(); loadCrawls();
  }
}

async function cancelCrawl() {
  if (state.crawlId) renderCrawl(await api(`${BASE}/crawls/${state.crawlId}/cancel`, { method: "POST" }));
}

async function loadCrawls() {
  const data = await api(`${BASE}/crawls?limit=5`);
  $("kb-crawls").replaceChildren(...data.items.map((job) => {
    const item = el("li", { textContent: `#${job.id} ${job.url} · ${job.status} · ${job.pages_ingested} stored` });
    item.addEventListener("click", () => watchCrawl(job));
    return item;
  }));
  return data.items;
}

// --- wiring ---------------------------------------------------------------------------------

$("kb-q").addEventListener("input", debounce(runSearch, 200));
$("kb-filter-type").addEventListener("change", () => { state.offset = 0; loadEntries(); });
$("kb-filter-category").addEventListener("input", debounce(() => { state.offset = 0; loadEntries(); }, 300));
$("kb-prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadEntries(); });
$("kb-next").addEventListener("click", () => { state.offset += PAGE; loadEntries(); });
$("kb-close").addEventListener("click", () => { $("kb-detail").hidden = true; });
$("kb-edit-btn").addEventListener("click", startEdit);
$("kb-edit-cancel").addEventListener("click", () => showEntry(state.current.id));
$("kb-edit").addEventListener("submit", saveEdit);
$("kb-delete-btn").addEventListener("click", deleteEntry);
$("kb-note").addEventListener("submit", addNote);
$("kb-crawl").addEventListener("submit", startCrawl);
$("kb-crawl-cancel").addEventListener("click", cancelCrawl);
wireDrop();
// Chat citations link to /knowledge/#entry-<id>: open that entry.
function openFromHash() {
  const match = /^#entry-(\d+)$/.exec(location.hash);
  if (match) showEntry(match[1]).catch((err) => { $("kb-search-state").textContent = err.message; });
}
window.addEventListener("hashchange", openFromHash);
openFromHash();
loadEntries();
loadStats();
loadCrawls().then((jobs) => {
  const active = jobs.find((job) => job.status === "queued" || job.status === "running");
  if (active) watchCrawl(active);  // a crawl started earlier keeps reporting after a reload
});
