// Per-message actions: copy any message; regenerate the last answer (asks the same question
// again, so the new answer is kept below the old one); edit the last question and send it anew.
import { el } from "../js/dom.js";

async function copyText(button, text) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Copy failed";
  }
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
}

export function messageActions(message, { onRegenerate, onEdit }) {
  const bar = el("div", { class: "msg-actions" });
  const copy = el("button", { type: "button", class: "copy-message", title: "Copy this message" }, "Copy");
  copy.addEventListener("click", () => copyText(copy, message.content));
  bar.append(copy);
  if (message.role === "assistant") {
    bar.append(el("button", { type: "button", class: "regenerate", title: "Ask the same question again; this answer stays",
      onclick: () => onRegenerate(message) }, "Regenerate"));
  } else if (message.role === "user") {
    bar.append(el("button", { type: "button", class: "edit", title: "Put this question in the box to change and send again",
      onclick: () => onEdit(message) }, "Edit & resend"));
  }
  return bar;
}

// Only the last question and the last answer offer regenerate/edit: earlier ones would change
// a conversation that has already moved on.
export function markLast(container) {
  const last = (role) => [...container.querySelectorAll(`.msg.${role}`)].at(-1);
  for (const node of container.querySelectorAll(".msg")) node.classList.remove("last");
  last("user")?.classList.add("last");
  last("assistant")?.classList.add("last");
}
