// The file manager page: browse, upload (XHR for per-file progress + cancel), new folder,
// rename, delete, preview. All data comes from /api/files/; user content is only ever put into
// the page as text (textContent) or as an <img> from the inline-safe preview endpoint.
import { api, ApiError, csrfToken } from "../js/api.js";
import { el } from "../js/dom.js";

const PAGE = 100;
const zone = document.getElementById("drop-zone");
const area = zone.dataset.area || "";
const $ = (id) => document.getElementById(id);
let current = new URLSearchParams(location.search).get("path") || "";
let offset = 0;

function query(params) {
  const q = new URLSearchParams(params);
  if (area) q.set("user", area);
  return q.toString();
}

function join(folder, name) {
  return folder ? `${folder}/${name}` : name;
}

function humanSize(bytes) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) { value /= 1024; i += 1; }
  return i === 0 ? `${value} B` : `${value.toFixed(1)} ${units[i]}`;
}

function showError(err) {
  const box = $("files-error");
  if (!err) { box.hidden = true; box.textContent = ""; return; }
  box.hidden = false;
  box.textContent = err instanceof ApiError ? err.message : String(err);
}

function renderBreadcrumbs() {
  const nav = $("breadcrumbs");
  nav.replaceChildren();
  const parts = current ? current.split("/") : [];
  const crumbs = [["Home", ""], ...parts.map((p, i) => [p, parts.slice(0, i + 1).join("/")])];
  crumbs.forEach(([label, path], i) => {
    if (i) nav.append(el("span", { class: "sep", "aria-hidden": "true" }, "/"));
    if (i === crumbs.length - 1) nav.append(el("span", { "aria-current": "location" }, label));
    else {
      const link = el("a", { href: `?${query({ path })}` }, label);
      link.addEventListener("click", (e) => { e.preventDefault(); navigate(path); });
      nav.append(link);
    }
  });
}

function entryRow(entry) {
  const row = el("tr", { "data-name": entry.name });
  const nameCell = el("td", { class: "name" });
  const isDir = entry.type === "dir";
  const link = el("a", { href: isDir ? `?${query({ path: entry.path })}` : "#", class: isDir ? "dir" : "file" },
    entry.name + (isDir ? "/" : ""));
  link.addEventListener("click", (e) => {
    e.preventDefault();
    if (isDir) navigate(entry.path); else showPreview(entry);
  });
  nameCell.append(link);
  row.append(nameCell,
    el("td", { class: "num" }, isDir ? "" : humanSize(entry.size)),
    el("td", { class: "modified" }, new Date(entry.modified).toLocaleString()),
    el("td", { class: "muted type" }, isDir ? "folder" : entry.mime_type));
  const actions = el("td", { class: "row-actions" });
  if (entry.type === "file") {
    actions.append(el("a", { class: "button", href: `/api/files/download?${query({ path: entry.path })}`,
      download: entry.name }, "Download"));
  }
  const move = el("button", { type: "button", class: "move", onclick: () => moveEntry(entry) }, "Move");
  const rename = el("button", { type: "button" }, "Rename");
  rename.addEventListener("click", () => renameEntry(entry));
  const remove = el("button", { type: "button", class: "danger" }, "Delete");
  remove.addEventListener("click", () => deleteEntry(entry));
  actions.append(move, rename, remove);
  row.append(actions);
  return row;
}

async function load() {
  renderBreadcrumbs();
  try {
    const data = await api(`/api/files/?${query({ path: current, limit: PAGE, offset })}`);
    // Dot files (.bashrc, .cache …) are hidden unless asked for: they are rarely what a person is after.
    const shown = showHidden() ? data.items : data.items.filter((entry) => !entry.name.startsWith("."));
    $("entries").replaceChildren(...shown.map(entryRow));
    const hiddenCount = data.items.length - shown.length;
    $("hidden-note").hidden = hiddenCount === 0;
    $("hidden-note").textContent = `${hiddenCount} hidden file${hiddenCount === 1 ? "" : "s"} (names starting with a dot) not shown.`;
    $("empty").hidden = shown.length > 0 || hiddenCount > 0;
    $("pager").hidden = data.count <= PAGE;
    $("page-info").textContent = `${offset + 1}–${Math.min(offset + PAGE, data.count)} of ${data.count}`;
    $("prev-page").disabled = offset === 0;
    $("next-page").disabled = offset + PAGE >= data.count;
    showError(null);
  } catch (err) {
    $("entries").replaceChildren();
    showError(err);
  }
}

function navigate(path, push = true) {
  current = path;
  offset = 0;
  if (push) history.pushState({ path }, "", `?${query({ path })}`);
  hidePreview();
  load();
}

function hidePreview() {
  $("preview").hidden = true;
  $("preview-body").replaceChildren();
}

function showHidden() {
  return $("show-hidden").checked;
}

function isPdf(entry, data) {
  return entry.mime_type === "application/pdf" || /\.pdf$/i.test(entry.name) || data?.text?.startsWith("%PDF-");
}

async function showPreview(entry) {
  $("preview").hidden = false;
  $("preview-title").textContent = entry.name;
  $("preview-meta").textContent = `${humanSize(entry.size)} · ${entry.mime_type}`;
  $("preview-body").replaceChildren(el("p", { class: "muted" }, "Loading…"));
  try {
    const data = await api(`/api/files/preview?${query({ path: entry.path })}`);
    const body = $("preview-body");
    const download = () => el("a", { class: "button primary", href: `/api/files/download?${query({ path: entry.path })}`,
      download: entry.name }, "Download the PDF");
    if (data.kind === "text" && data.encoding === "pdf-text") {
      // The server extracted the PDF's text; its bytes are never shown.
      body.replaceChildren(el("p", { class: "muted" }, `Text extracted from the PDF${data.truncated ? " · first 64 KiB" : ""}`),
        el("pre", { class: "preview-text" }, data.text), download());
    } else if (isPdf(entry, data)) {
      body.replaceChildren(el("p", { class: "muted" }, "No text could be extracted from this PDF (is it a scan?). Open it in your browser's PDF viewer."),
        download());
    } else if (data.kind === "text") {
      const note = `${data.encoding}${data.truncated ? " · first 64 KiB" : ""}`;
      body.replaceChildren(el("p", { class: "muted" }, note), el("pre", { class: "preview-text" }, data.text));
    } else if (data.kind === "image") {
      body.replaceChildren(el("img", { src: data.url, alt: entry.name, class: "preview-image" }));
    } else {
      body.replaceChildren(el("p", { class: "muted" }, "No preview for this type of file. Download it instead."));
    }
  } catch (err) {
    $("preview-body").replaceChildren(el("p", { class: "error" }, err.message));
  }
}

async function renameEntry(entry) {
  const name = prompt(`Rename "${entry.name}" to:`, entry.name);
  if (!name || name === entry.name) return;
  const folder = entry.path.includes("/") ? entry.path.slice(0, entry.path.lastIndexOf("/")) : "";
  try {
    await api(`/api/files/move?${query({})}`, { method: "POST", body: { src: entry.path, dst: join(folder, name) } });
    hidePreview();
    await load();
  } catch (err) { showError(err); }
}

// The move dialog: browse folders from the area's root and move the entry into the chosen one.
async function moveEntry(entry) {
  const dialog = $("move-dialog");
  let folder = "";
  const from = entry.path.includes("/") ? entry.path.slice(0, entry.path.lastIndexOf("/")) : "";
  $("move-what").textContent = entry.name;
  const show = async (path) => {
    folder = path;
    $("move-where").textContent = `/${path}`;
    $("move-up").disabled = !path;
    $("move-error").hidden = true;
    $("move-confirm").disabled = path === from || path === entry.path || path.startsWith(`${entry.path}/`);
    $("move-folders").replaceChildren(el("li", { class: "muted" }, "Loading…"));
    try {
      const data = await api(`/api/files/?${query({ path, limit: 500 })}`);
      const dirs = data.items.filter((e) => e.type === "dir" && e.path !== entry.path);
      $("move-folders").replaceChildren(...dirs.map((dir) => el("li", {},
        el("button", { type: "button", class: "link-button", onclick: () => show(dir.path) }, `${dir.name}/`))));
      if (!dirs.length) $("move-folders").append(el("li", { class: "muted" }, "No folders inside."));
    } catch (err) {
      $("move-folders").replaceChildren(el("li", { class: "error" }, err.message));
    }
  };
  $("move-up").onclick = () => show(folder.includes("/") ? folder.slice(0, folder.lastIndexOf("/")) : "");
  $("move-cancel").onclick = () => dialog.close();
  $("move-confirm").onclick = async () => {
    try {
      await api(`/api/files/move?${query({})}`, { method: "POST", body: { src: entry.path, dst: join(folder, entry.name) } });
      dialog.close();
      hidePreview();
      await load();
    } catch (err) {
      $("move-error").textContent = err.message;
      $("move-error").hidden = false;
    }
  };
  dialog.showModal();
  await show(from);
}

async function deleteEntry(entry) {
  const what = entry.type === "dir" ? `the folder "${entry.name}" and everything in it` : `"${entry.name}"`;
  if (!confirm(`Delete ${what}? This cannot be undone.`)) return;
  try {
    await api(`/api/files/?${query({ path: entry.path, recursive: entry.type === "dir" })}`, { method: "DELETE" });
    hidePreview();
    await load();
  } catch (err) { showError(err); }
}

async function makeFolder() {
  const name = prompt("New folder name:");
  if (!name) return;
  try {
    await api(`/api/files/mkdir?${query({})}`, { method: "POST", body: { path: join(current, name) } });
    await load();
  } catch (err) { showError(err); }
}

// --- uploads: one XHR per file, so each has its own progress bar and cancel button --------

function uploadFile(file, folder, overwrite = false) {
  const item = el("li", { class: "upload" });
  const label = el("span", { class: "upload-name" }, file.name);
  const bar = el("progress", { max: "100", value: "0" });
  const status = el("span", { class: "upload-status muted" }, "0%");
  const cancel = el("button", { type: "button" }, "Cancel");
  item.append(label, bar, status, cancel);
  $("uploads").append(item);

  const form = new FormData();
  form.append("path", folder);
  form.append("overwrite", overwrite ? "true" : "false");
  form.append("files", file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/api/files/upload?${query({})}`);
  xhr.setRequestHeader("X-CSRFToken", csrfToken());
  xhr.setRequestHeader("Accept", "application/json");
  xhr.upload.addEventListener("progress", (e) => {
    if (!e.lengthComputable) return;
    const pct = Math.floor((e.loaded / e.total) * 100);
    bar.value = pct;
    status.textContent = `${pct}%`;
  });
  const finish = (text, ok) => {
    status.textContent = text;
    item.classList.add(ok ? "done" : "failed");
    if (!ok) bar.remove();  // a refused upload shows why, not a full bar
    cancel.remove();
    if (ok) setTimeout(() => item.remove(), 4000);
  };
  xhr.addEventListener("load", () => {
    let data = null;
    try { data = JSON.parse(xhr.responseText); } catch { data = null; }
    if (xhr.status === 201) {
      bar.value = 100;
      finish("Uploaded", true);
      if (folder === current) load();
    } else if (xhr.status === 409 && !overwrite && confirm(`"${file.name}" already exists. Replace it?`)) {
      item.remove();
      uploadFile(file, folder, true);
    } else {
      finish(data?.detail || `Failed (HTTP ${xhr.status})`, false);
    }
  });
  xhr.addEventListener("error", () => finish("Failed: the connection was lost", false));
  xhr.addEventListener("abort", () => finish("Cancelled", false));
  cancel.addEventListener("click", () => xhr.abort());
  xhr.send(form);
}

function uploadAll(files) {
  for (const file of files) uploadFile(file, current);
}

$("upload-button").addEventListener("click", () => $("file-input").click());
$("file-input").addEventListener("change", (e) => { uploadAll(e.target.files); e.target.value = ""; });
$("mkdir-button").addEventListener("click", makeFolder);
$("show-hidden").checked = localStorage.getItem("autobot.files.show-hidden") === "1";
$("show-hidden").addEventListener("change", () => {
  localStorage.setItem("autobot.files.show-hidden", showHidden() ? "1" : "0");
  load();
});
$("preview-close").addEventListener("click", hidePreview);
$("prev-page").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
$("next-page").addEventListener("click", () => { offset += PAGE; load(); });
zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dragging"); });
zone.addEventListener("dragleave", (e) => { if (!zone.contains(e.relatedTarget)) zone.classList.remove("dragging"); });
zone.addEventListener("drop", (e) => {
  e.preventDefault();
  zone.classList.remove("dragging");
  if (e.dataTransfer?.files?.length) uploadAll(e.dataTransfer.files);
});
window.addEventListener("popstate", () => navigate(new URLSearchParams(location.search).get("path") || "", false));

load();
