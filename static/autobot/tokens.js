// The API tokens page: create (the raw token is shown once), list, revoke.
import { api } from "../js/api.js";
import { el, formatTime } from "../js/dom.js";

const $ = (id) => document.getElementById(id);

function showError(text) {
  $("token-error").textContent = text;
  $("token-error").hidden = !text;
}

function state(token) {
  if (token.revoked_at) return ["revoked", "fail"];
  if (token.expires_at && new Date(token.expires_at) < new Date()) return ["expired", "warn"];
  return ["active", "ok"];
}

function row(token) {
  const [word, kind] = state(token);
  const revoke = word === "active"
    ? el("button", { type: "button", class: "danger", onclick: () => revokeToken(token) }, "Revoke")
    : "";
  return el("tr", { dataset: { id: token.id } },
    el("td", {}, token.name || "—"),
    el("td", {}, el("code", {}, `${token.prefix}…`)),
    el("td", {}, token.scope === "read" ? "read-only" : "full"),
    el("td", {}, formatTime(token.created)),
    el("td", {}, token.expires_at ? formatTime(token.expires_at) : "never"),
    el("td", {}, token.last_used_at ? formatTime(token.last_used_at) : "never"),
    el("td", {}, el("span", { class: `badge ${kind}` }, word)),
    el("td", {}, revoke));
}

async function load() {
  try {
    const data = await api("/api/tokens?limit=200");
    $("token-rows").replaceChildren(...data.items.map(row));
    if (!data.items.length) {
      $("token-rows").append(el("tr", {}, el("td", { colSpan: 8, class: "muted" },
        "No tokens yet. Create one above to call the API from a script or an agent.")));
    }
  } catch (err) {
    showError(err.message);
  }
}

async function revokeToken(token) {
  if (!confirm(`Revoke "${token.name || token.prefix}"? Anything using it stops working.`)) return;
  try {
    await api(`/api/tokens/${token.id}`, { method: "DELETE" });
    showError("");
  } catch (err) {
    showError(err.message);
  }
  await load();
}

$("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const days = form.expires_days.value;
  try {
    const created = await api("/api/tokens", {
      method: "POST", body: { name: form.name.value.trim(), expires_days: days === "" ? null : Number(days),
        scope: form.scope.value },
    });
    $("token-raw").textContent = created.token;
    $("token-new").hidden = false;
    form.reset();
    showError("");
  } catch (err) {
    showError(err.message);
  }
  await load();
});

$("token-copy").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText($("token-raw").textContent);
    $("token-copy").textContent = "Copied";
  } catch {
    $("token-copy").textContent = "Select and copy it";
  }
});

load();
