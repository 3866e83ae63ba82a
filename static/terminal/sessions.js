// The terminal page's session list: what each session really is now (live, detached with the
// time left before it ends, ended and why), resume/end/replay, and renaming in place.
import { api } from "../js/api.js";
import { el, formatTime } from "../js/dom.js";

function timeLeft(iso) {
  const seconds = Math.max(0, Math.round((new Date(iso) - Date.now()) / 1000));
  if (seconds >= 120) return `${Math.round(seconds / 60)} min`;
  return `${seconds} s`;
}

// The words a person reads: the API's running/detached/ended with what they mean now.
export function statusText(info) {
  if (info.status === "ended") {
    const why = info.end_reason ? ` (${info.end_reason.replaceAll("_", " ")})` : "";
    return { text: `ended${why}`, kind: "ended" };
  }
  if (info.status === "detached") {
    return { text: info.grace_ends ? `detached · ends in ${timeLeft(info.grace_ends)} unless resumed` : "detached", kind: "detached" };
  }
  return { text: info.attached > 1 ? `live · ${info.attached} tabs` : "live", kind: "live" };
}

export class SessionList {
  constructor(root, { current, onOpen, onError }) {
    this.root = root;
    this.current = current;
    this.onOpen = onOpen;
    this.onError = onError;
    this.items = [];
    // Detached sessions count down; refresh the words without asking the server each time.
    setInterval(() => { if (this.items.some((s) => s.status === "detached")) this.render(); }, 15000);
  }

  async load() {
    try {
      const data = await api("/api/terminal/sessions?limit=30");
      this.items = data.items;
      this.render();
      this.onError("");
    } catch (err) {
      this.onError(err.message);
    }
    return this.items;
  }

  render() {
    this.root.replaceChildren(...this.items.map((info) => this.item(info)));
    if (!this.items.length) this.root.append(el("li", { class: "muted empty" }, "No sessions yet."));
  }

  item(info) {
    const status = statusText(info);
    const isCurrent = info.id === this.current();
    const title = el("div", { class: "title", title: info.title }, info.title);
    const li = el("li", { class: isCurrent ? "current" : "", dataset: { id: info.id, status: info.status } },
      title,
      el("div", { class: "meta" },
        el("span", { class: `state ${status.kind}` }, status.text),
        ` · ${info.security_level} · ${formatTime(info.created)}`,
        info.owner && document.getElementById("term-app").dataset.user !== info.owner ? ` · ${info.owner}` : ""),
    );
    const actions = el("div", { class: "actions" });
    if (info.status !== "ended") {
      actions.append(
        el("button", { type: "button", onclick: () => this.onOpen(info.id) }, isCurrent ? "Reattach" : "Resume"),
        el("button", { type: "button", class: "danger", onclick: () => this.end(info.id) }, "End"),
      );
    }
    actions.append(
      el("button", { type: "button", class: "rename", onclick: () => this.rename(li, info) }, "Rename"),
      el("a", { href: `/terminal/sessions/${info.id}/replay/` }, "replay"),
    );
    li.append(actions);
    return li;
  }

  async end(id) {
    try {
      await api(`/api/terminal/sessions/${id}`, { method: "DELETE" });
    } catch (err) {
      this.onError(err.message);
    }
    await this.load();
  }

  rename(li, info) {
    const input = el("input", { type: "text", value: info.title, maxLength: 200, "aria-label": "Session name" });
    const form = el("form", { class: "rename-form" }, input,
      el("button", { type: "submit", class: "primary" }, "Save"),
      el("button", { type: "button", onclick: () => this.render() }, "Cancel"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const title = input.value.trim();
      if (!title) return input.focus();
      try {
        await api(`/api/terminal/sessions/${info.id}`, { method: "PATCH", body: { title } });
        if (info.id === this.current()) document.getElementById("term-title").textContent = title;
      } catch (err) {
        this.onError(err.message);
      }
      await this.load();
    });
    li.querySelector(".title").replaceWith(form);
    input.focus();
    input.select();
  }
}
