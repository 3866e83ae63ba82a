// The chat page's session list: grouped by the day of each chat's last activity (Today,
// Yesterday, then dates), each with its time, newest first.
import { el } from "../js/dom.js";

function dayKey(date) {
  return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
}

export function dayLabel(date, now = new Date()) {
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (dayKey(date) === dayKey(now)) return "Today";
  if (dayKey(date) === dayKey(yesterday)) return "Yesterday";
  const sameYear = date.getFullYear() === now.getFullYear();
  return date.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short", year: sameYear ? undefined : "numeric" });
}

function timeOf(date) {
  return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

// items: the API's sessions; item(session, when) builds one <li>. Returns the list's children.
export function groupedByDay(items, item, { searching = false } = {}) {
  const nodes = [];
  let last = null;
  for (const session of items) {
    const updated = new Date(session.updated);
    const label = dayLabel(updated);
    if (label !== last) {
      nodes.push(el("li", { class: "day", role: "presentation" }, label));
      last = label;
    }
    nodes.push(item(session, timeOf(updated)));
  }
  if (!items.length) {
    nodes.push(el("li", { class: "none muted" },
      searching ? "No chat titles match your search." : "No chats yet: type a message to start one."));
  }
  return nodes;
}
