// The operator's part of the chat page: each tool call (name, arguments, rating, status,
// result; collapsible), approve/deny for calls waiting on the owner, pause/resume, and the
// session's tools switch. Everything from the model or a tool is shown as text, never HTML.
// chat.js hands it socket frames (handleOperatorFrame) and finished messages (renderToolCalls).
import { api } from "../js/api.js";
import { el } from "../js/dom.js";

function argsText(args) {
  return typeof args === "string" ? args : JSON.stringify(args, null, 2);
}

function callsBox(messageNode) {
  let box = messageNode.querySelector(":scope > .tool-calls");
  if (!box) {
    box = el("div", { class: "tool-calls" });
    messageNode.querySelector(":scope > .body").before(box);
  }
  return box;
}

function callNode(box, call) {
  let node = box.querySelector(`:scope > [data-call="${CSS.escape(call.id)}"]`);
  if (!node) {
    node = el("details", { class: "tool-call", "data-call": call.id },
      el("summary", {}, el("span", { class: "tool-name" }), el("span", { class: "tool-risk" }),
        el("span", { class: "tool-status" })),
      el("pre", { class: "tool-args" }), el("div", { class: "tool-reasons" }), el("div", { class: "tool-approval" }),
      el("pre", { class: "tool-output", hidden: true }));
    box.append(node);
  }
  return node;
}

function updateCall(node, call) {
  node.querySelector(".tool-name").textContent = call.name;
  node.querySelector(".tool-risk").textContent = call.risk || "";
  node.querySelector(".tool-risk").className = `tool-risk risk-${(call.risk || "").toLowerCase()}`;
  node.querySelector(".tool-status").textContent = call.status.replace("_", " ");
  node.className = `tool-call ${call.status}`;
  node.querySelector(".tool-args").textContent = argsText(call.arguments);
  node.querySelector(".tool-reasons").textContent = (call.reasons || []).join("; ");
  if (call.status === "awaiting_approval") node.open = true;
  if (call.status !== "awaiting_approval") node.querySelector(".tool-approval").replaceChildren();
}

function showResult(node, { output, exit_code: exitCode, data }) {
  const terminal = data?.terminal_session_id;
  if (terminal) node.querySelector(".tool-reasons").append(
    " ", el("a", { href: `/terminal/#${terminal}`, target: "_blank", rel: "noopener" }, "terminal"));
  const pre = node.querySelector(".tool-output");
  pre.textContent = (exitCode === null || exitCode === undefined ? "" : `exit ${exitCode}\n`) + (output || "");
  pre.hidden = false;
}

function approvalControls(node, approval, ctx) {
  const reason = el("input", { type: "text", placeholder: "Reason (optional)", "aria-label": "Reason" });
  const decide = (type) => () => {
    const frame = { type, approval_id: approval.id };
    if (type === "deny") frame.reason = reason.value;
    ctx.send(frame);
  };
  const where = approval.cwd ? ` in ${approval.cwd}` : "";
  node.querySelector(".tool-approval").replaceChildren(
    el("p", {}, "Waiting for your approval (", approval.risk, `) until ${new Date(approval.expires).toLocaleTimeString()}:`),
    el("pre", { class: "tool-command" }, approval.command + where),
    el("div", { class: "approval-bar" },
      el("button", { type: "button", class: "primary", onclick: decide("approve") }, "Approve"),
      el("button", { type: "button", class: "danger", onclick: decide("deny") }, "Deny"), reason));
}

function pauseBar(ctx) {
  let bar = document.getElementById("operator-bar");
  if (!bar) {
    const button = el("button", { type: "button", id: "operator-pause" }, "Pause operator");
    button.addEventListener("click", () => ctx.send({ type: button.dataset.paused ? "resume" : "pause" }));
    bar = el("div", { id: "operator-bar", class: "operator-bar" }, button,
      el("a", { href: "/terminal/", target: "_blank", rel: "noopener", id: "operator-terminal" }, "Watch its terminal"));
    ctx.messages.after(bar);
  }
  return bar;
}

// Returns true when the frame was the operator's.
export function handleOperatorFrame(frame, ctx) {
  if (frame.type === "tool_call") {
    const node = callNode(callsBox(ctx.messageNode(frame.message_id)), frame.call);
    updateCall(node, frame.call);
    pauseBar(ctx).hidden = false;
    const terminal = ctx.terminalId?.();
    if (terminal) document.getElementById("operator-terminal").href = `/terminal/#${terminal}`;
    return true;
  }
  if (frame.type === "approval") {
    const node = document.querySelector(`.tool-call[data-call="${CSS.escape(frame.approval.call_id)}"]`);
    if (node) approvalControls(node, frame.approval, ctx);
    return true;
  }
  if (frame.type === "tool_result") {
    const node = document.querySelector(`.tool-call[data-call="${CSS.escape(frame.call_id)}"]`);
    if (node) showResult(node, frame);
    return true;
  }
  if (frame.type === "tool_output") {
    // The terminal's output while the command runs; tool_result replaces it when it ends.
    const pre = document.querySelector(`.tool-call[data-call="${CSS.escape(frame.call_id)}"] .tool-output`);
    if (pre) {
      pre.hidden = false;
      pre.textContent = (pre.textContent + frame.data).slice(-20000);
      pre.closest("details").open = true;
    }
    return true;
  }
  if (frame.type === "operator") {
    const button = pauseBar(ctx).querySelector("button");
    button.dataset.paused = frame.paused ? "1" : "";
    button.textContent = frame.paused ? "Resume operator" : "Pause operator";
    return true;
  }
  return false;
}

export function operatorIdle() {
  const bar = document.getElementById("operator-bar");
  if (bar) bar.hidden = true;
}

// The stored calls of a finished message, collapsed.
export function renderToolCalls(message, node) {
  if (!message.tool_calls?.length) return;
  const box = callsBox(node);
  for (const call of message.tool_calls) {
    const item = callNode(box, call);
    updateCall(item, call);
    item.open = false;
    if (call.output || call.exit_code !== null) showResult(item, call);
  }
}

// The "let it act" switch for the open session: PATCH {"tools": bool}.
export function bindToolsSwitch(input, getSession, onError) {
  input.addEventListener("change", async () => {
    const session = getSession();
    if (!session) return;
    try {
      const updated = await api(`/api/chat/sessions/${session.id}`, { method: "PATCH", body: { tools: input.checked } });
      input.checked = updated.tools;
    } catch (err) {
      input.checked = false;
      onError(err.message);
    }
  });
}
