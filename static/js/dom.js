// DOM building for every page module: one helper, so that data from the server or a user is
// only ever put into the page as text or as properties, never parsed as HTML.
//
//   el("button", { class: "danger", type: "button", onclick: () => … }, "End")
//
// attrs: "class" sets className; "dataset"/"style" objects are merged in; a function is an event
// listener (onclick → "click"); a name the element has as a property (textContent, href, value,
// hidden, disabled …) is set as that property; anything else (aria-*, data-*, for) as an attribute.
// null, undefined and false attrs or children are skipped; strings become text nodes.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if ((key === "dataset" || key === "style") && typeof value === "object") Object.assign(node[key], value);
    else if (typeof value === "function") node.addEventListener(key.replace(/^on/, ""), value);
    else if (key in node && !key.includes("-")) node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child);
  }
}

// "2026-12-04 16:05:09" in the browser's time zone: times to the second, sortable, unambiguous.
export function formatTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
