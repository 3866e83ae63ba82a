// An agent's answer as a person reads it: results as a list, text as text, a command's output
// as a terminal block, other fields as a short table. The raw envelope stays one click away.
import { el } from "../js/dom.js";

const SKIP = new Set(["results", "content", "stdout", "stderr", "output", "citations", "reasons", "verdicts", "parsed"]);

function results(items) {
  if (!items.length) return el("p", { class: "muted" }, "No results.");
  return el("ol", {}, items.map((item) => el("li", {},
    el("strong", {}, item.title || item.name || item.id || "Untitled"),
    item.heading_path ? el("span", { class: "muted" }, ` — ${item.heading_path}`) : null,
    item.snippet ? el("div", { class: "muted" }, String(item.snippet).replace(/<\/?mark>/g, "")) : null)));
}

function fields(data) {
  const rows = Object.entries(data).filter(([key, value]) => !SKIP.has(key) && (value === null || typeof value !== "object"));
  if (!rows.length) return null;
  return el("table", { class: "kv" }, rows.map(([key, value]) => el("tr", {},
    el("th", {}, key.replaceAll("_", " ")), el("td", {}, value === null ? "—" : String(value)))));
}

export function readable(data) {
  const parts = [];
  if (data === null || typeof data !== "object") return el("div", { class: "text" }, String(data ?? ""));
  if (Array.isArray(data.results)) parts.push(results(data.results));
  if (typeof data.content === "string") parts.push(el("div", { class: "text" }, data.content));
  if (Array.isArray(data.citations) && data.citations.length) {
    parts.push(el("p", { class: "muted" }, `Sources: ${data.citations.map((c) => c.title || "Untitled").join(", ")}`));
  }
  for (const key of ["output", "stdout", "stderr"]) {
    if (typeof data[key] === "string" && data[key]) parts.push(el("div", {}, el("div", { class: "muted" }, key), el("pre", {}, data[key])));
  }
  if (Array.isArray(data.reasons) && data.reasons.length) parts.push(el("p", {}, `Reasons: ${data.reasons.join("; ")}`));
  const table = fields(data);
  if (table) parts.push(table);
  return el("div", {}, parts.length ? parts : el("p", { class: "muted" }, "The answer carries no data."));
}

// The data of an answer envelope, or its error as words.
export function answerData(envelope) {
  const payload = envelope?.payload || {};
  if (envelope?.header?.message_type === "ERROR" || payload.action === "error") {
    const error = payload.data || {};
    return { error: `${error.message || error.detail || "The agent answered with an error."}${error.code ? ` (${error.code})` : ""}` };
  }
  return { data: payload.data ?? envelope };
}
