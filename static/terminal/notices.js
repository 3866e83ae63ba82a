// Notices of the terminal page (blocked commands, level changes, errors): one line above the
// terminal that always takes the same room, so the terminal never moves, and a panel that
// lists them all over the terminal. Each can be dismissed. They are kept per session in this
// browser, so a reload or a resume from another tab still shows them.
import { el, formatTime } from "../js/dom.js";

const MAX_PER_SESSION = 50;
const MAX_SESSIONS = 20;

export class Notices {
  constructor(user) {
    this.key = `autobot.terminal.notices.${user}`;
    this.session = null;
    this.latest = document.getElementById("term-latest");
    this.list = document.getElementById("term-notices");
    this.panel = document.getElementById("notices-panel");
    this.toggle = document.getElementById("notices-toggle");
    this.toggle.addEventListener("click", () => this.setOpen(this.panel.hidden));
    document.getElementById("notices-close").addEventListener("click", () => this.setOpen(false));
    document.getElementById("notices-clear").addEventListener("click", () => this.dismissAll());
    document.getElementById("term-latest-dismiss").addEventListener("click", () => {
      const shown = this.items().at(-1);
      if (shown) this.dismiss(shown.id);
    });
    window.addEventListener("storage", (event) => { if (event.key === this.key) this.render(); });
  }

  load() {
    try {
      return JSON.parse(localStorage.getItem(this.key)) || {};
    } catch {
      return {};
    }
  }

  save(all) {
    const ids = Object.keys(all);
    // Oldest sessions first out (insertion order is the order they were first noticed).
    for (const id of ids.slice(0, Math.max(0, ids.length - MAX_SESSIONS))) delete all[id];
    localStorage.setItem(this.key, JSON.stringify(all));
  }

  items() {
    return (this.session && this.load()[this.session]) || [];
  }

  show(session) {
    this.session = session;
    this.render();
  }

  add(session, text, kind = "info") {
    if (!session) return;
    const all = this.load();
    const list = all[session] || [];
    list.push({ id: `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`, text, kind, at: new Date().toISOString() });
    all[session] = list.slice(-MAX_PER_SESSION);
    this.save(all);
    if (session === this.session) this.render();
  }

  dismiss(id) {
    const all = this.load();
    all[this.session] = (all[this.session] || []).filter((n) => n.id !== id);
    this.save(all);
    this.render();
  }

  dismissAll() {
    const all = this.load();
    delete all[this.session];
    this.save(all);
    this.render();
    this.setOpen(false);
  }

  setOpen(open) {
    this.panel.hidden = !open;
    this.toggle.setAttribute("aria-expanded", String(open));
  }

  render() {
    const items = this.items();
    const last = items.at(-1);
    this.latest.textContent = last ? last.text : "No notices for this session.";
    this.latest.className = `term-latest ${last ? last.kind : "none"}`;
    this.latest.title = last ? last.text : "";
    document.getElementById("term-latest-dismiss").hidden = !last;
    this.toggle.textContent = `Notices (${items.length})`;
    this.toggle.disabled = !items.length && this.panel.hidden;
    this.list.replaceChildren(...items.slice().reverse().map((n) => el("li", { class: n.kind, dataset: { id: n.id } },
      el("span", { class: "when" }, formatTime(n.at)),
      el("span", { class: "text" }, n.text),
      el("button", { type: "button", class: "dismiss", "aria-label": "Dismiss", title: "Dismiss", onclick: () => this.dismiss(n.id) }, "×"),
    )));
    if (!items.length) this.list.append(el("li", { class: "empty muted" }, "Nothing to show."));
  }
}
