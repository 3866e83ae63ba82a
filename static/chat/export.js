// Export a chat from the page: the server's Markdown or JSON, saved under a name made from the
// chat's title and today's date ("deploy-checklist-2026-12-04.md").
import { ApiError } from "../js/api.js";
import { el } from "../js/dom.js";

export function exportName(title, format, date = new Date()) {
  const slug = (title || "chat").normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
    .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 60) || "chat";
  const pad = (n) => String(n).padStart(2, "0");
  return `${slug}-${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}.${format}`;
}

export async function exportSession(session, format) {
  const response = await fetch(`/api/chat/sessions/${session.id}/export?format=${format}`, { credentials: "same-origin" });
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, body);
  }
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: exportName(session.title, format) });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return link.download;
}

