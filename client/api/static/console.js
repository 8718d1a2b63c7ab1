// The console's only script: form to JSON, live run status over SSE, control buttons.
"use strict";

async function postJSON(url, body) {
  const response = await fetch(url, {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({}));
  return {response, data};
}

function readField(el) {
  const kind = el.dataset.kind;
  if (kind === "checkbox") return el.checked;
  if (kind === "tristate") return el.value === "" ? undefined : el.value === "true";  // unset stays unset
  if (el.value === "") return undefined;  // an empty optional field is "not given"
  if (kind === "integer" || kind === "number") return Number(el.value);
  if (kind === "json") {
    try { return JSON.parse(el.value); } catch (e) { throw {field: el.name, message: "not valid JSON: " + e.message}; }
  }
  return el.value;
}

function fillForm(form, sample) {
  for (const el of form.querySelectorAll("[data-kind]")) {
    // A field the sample leaves out gets its default, not the previous sample's value.
    const value = el.name in sample ? sample[el.name] : JSON.parse(el.dataset.default || "null");
    if (el.dataset.kind === "checkbox") el.checked = Boolean(value);
    else if (el.dataset.kind === "tristate") el.value = value === true ? "true" : value === false ? "false" : "";
    else if (value === undefined || value === null) el.value = "";
    else el.value = el.dataset.kind === "json" ? JSON.stringify(value, null, 2) : String(value);
  }
}

function showError(form, field, message, out = document.getElementById("form-message")) {
  for (const label of form.querySelectorAll(".field")) {
    const hit = field && (field === label.dataset.name || field.startsWith(label.dataset.name + "."));
    label.classList.toggle("invalid", Boolean(hit));
    label.querySelector(".field-error").textContent = hit ? message : "";
  }
  out.textContent = message;
}

function readForm(form) {
  // The body a form of form_fields() sends; an empty required field is asked for first.
  const body = {};
  for (const el of form.querySelectorAll("[data-kind]")) {
    const value = readField(el);
    if (value !== undefined) body[el.name] = value;
    else if (el.closest(".field")?.hasAttribute("data-required")) throw {field: el.name, message: "required"};
  }
  return body;
}

function setupStartForm(form) {
  const samples = JSON.parse(document.getElementById("samples")?.textContent || "[]");
  for (const button of document.querySelectorAll("[data-sample]")) {
    button.addEventListener("click", () => fillForm(form, samples[Number(button.dataset.sample)]));
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try { body = readForm(form); } catch (bad) { showError(form, bad.field, bad.field + ": " + bad.message); return; }
    showError(form, null, "Starting...");
    const {response, data} = await postJSON("/api/workflows/" + form.dataset.family, body);
    if (response.status === 201) { window.location.href = data.links.console; return; }
    const error = data.error || {message: response.statusText};
    showError(form, error.field, error.message);
  });
}

const PENDING = ["pending", "escalated"];

function setupApproval(id, form) {
  const message = document.getElementById("approval-message");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const update = event.submitter.dataset.update;
    const approver = form.approver.value.trim();
    const reason = form.reason.value.trim();
    // The workflow's validator checks these too; saying so here spares a round trip.
    if (!approver) { message.textContent = "approver: a name is required"; return; }
    if (update === "reject" && !reason) { message.textContent = "reason: a rejection needs a reason"; return; }
    message.textContent = update === "approve" ? "Approving..." : "Rejecting...";
    const body = reason ? {approver, reason} : {approver};
    const {response, data} = await postJSON(`/api/workflows/${encodeURIComponent(id)}/updates/${update}`, body);
    // A refusal (not pending any more, an approver outside the group) is the validator's own words.
    message.textContent = response.ok
      ? `${data.result.decision} by ${data.result.approver}`
      : "Refused: " + ((data.error || {}).message || response.statusText);
  });
}

function showApproval(progress) {
  const section = document.getElementById("approval");
  if (!section) return;
  section.hidden = !PENDING.includes(progress.approval);
  if (progress.approvers && progress.approvers.length) {
    document.getElementById("approvers").textContent = "by one of " + progress.approvers.join(", ");
  }
  if (progress.deadline) {
    // What a missed deadline does is the family's own declaration.
    document.getElementById("approval-deadline").textContent = `until ${progress.deadline} (then ${section.dataset.escalation})`;
  }
  document.getElementById("approval-escalation").textContent = progress.escalation || "";
}

function setupInteraction(id, form) {
  // An Update or signal form generated from its input model: the same fields as a start form.
  const message = form.querySelector(".form-message");
  const mark = (name, text) => showError(form, name, text, message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try { body = readForm(form); } catch (bad) { mark(bad.field, bad.field + ": " + bad.message); return; }
    mark(null, "Sending...");
    const kind = form.dataset.handler === "signal" ? "signals" : "updates";
    const {response, data} = await postJSON(`/api/workflows/${encodeURIComponent(id)}/${kind}/${form.dataset.name}`, body);
    if (response.ok) { window.location.reload(); return; }
    const error = data.error || {message: response.statusText};
    // A validator's refusal comes back in the workflow's own words.
    mark(error.field, "Refused: " + error.message);
  });
}

function setupRestart(id, section) {
  const confirmBox = document.getElementById("restart-confirm");
  const warning = document.getElementById("restart-warning");
  const message = document.getElementById("restart-message");
  let pending = null;
  const ask = (step, text) => { pending = step; warning.textContent = text; confirmBox.hidden = false; message.textContent = ""; };
  async function restart(step, force) {
    confirmBox.hidden = true;
    message.textContent = `Restarting from ${step}...`;
    const url = `/api/workflows/${encodeURIComponent(id)}/restart?from_stage=${encodeURIComponent(step)}${force ? "&force=true" : ""}`;
    const {response, data} = await postJSON(url);
    if (response.status === 201) { window.location.href = data.links.console; return; }
    const error = data.error || {message: response.statusText};
    // The server has the last word on what a restart would reuse: asked again if it says so.
    if (error.type === "RestartNeedsForce" && !force) { ask(step, error.message); return; }
    message.textContent = "Refused: " + error.message;
  }
  for (const button of section.querySelectorAll("[data-restart]")) {
    button.addEventListener("click", () => {
      const step = button.dataset.restart;
      const undone = button.dataset.undone;
      // Said before anything is sent: reusing results whose effects were compensated.
      if (undone) ask(step, `This run compensated ${undone}: their effects were undone, and a restart from ${step} `
        + "would reuse their results as if they still held. Restart anyway?");
      else restart(step, false);
    });
  }
  document.getElementById("restart-force").addEventListener("click", () => restart(pending, true));
  document.getElementById("restart-cancel").addEventListener("click", () => { confirmBox.hidden = true; pending = null; });
}

function setupRun(section) {
  const id = section.dataset.workflowId;
  const message = document.getElementById("control-message");
  for (const button of section.querySelectorAll("[data-action]")) {
    button.addEventListener("click", async () => {
      const {response, data} = await postJSON(`/api/workflows/${encodeURIComponent(id)}/${button.dataset.action}`);
      message.textContent = response.ok ? `${button.dataset.action} sent` : (data.error || {}).message;
    });
  }
  const approval = document.getElementById("approval-form");
  if (approval) setupApproval(id, approval);
  for (const form of document.querySelectorAll("form.interaction")) setupInteraction(id, form);
  const restartSection = document.getElementById("restart");
  if (restartSection) setupRestart(id, restartSection);
  if (section.dataset.status !== "RUNNING") return;
  const events = new EventSource(`/api/workflows/${encodeURIComponent(id)}/events`);
  events.addEventListener("status", (event) => {
    const run = JSON.parse(event.data);
    const status = document.getElementById("status");
    status.textContent = run.status;
    status.className = "status " + run.status;
    const p = typeof run.progress === "object" && run.progress ? run.progress : {};
    document.getElementById("state").textContent = p.state || "";
    document.getElementById("current-step").textContent = p.current_step || "-";
    document.getElementById("done").textContent = p.done ?? "?";
    document.getElementById("total").textContent = p.total ?? "?";
    const bar = document.getElementById("progress");
    bar.max = p.total || 1; bar.value = p.done || 0;
    document.getElementById("raw-progress").textContent = JSON.stringify(run.progress, null, 2);
    showApproval(p);
  });
  // The run closed: the server renders the result (tables, Markdown, images) and compensations.
  events.addEventListener("result", () => { events.close(); window.location.reload(); });
}

function setupLogin(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const {response, data} = await postJSON("/login", {token: form.token.value});
    if (response.ok) {
      // The server sends only console paths; the browser's own parser has the last word.
      const next = new URL(form.dataset.next, window.location.origin);
      window.location.href = next.origin === window.location.origin ? next.href : "/";
    }
    else document.getElementById("form-message").textContent = (data.error || {}).message;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const start = document.getElementById("start-form");
  if (start) setupStartForm(start);
  const run = document.getElementById("run");
  if (run) setupRun(run);
  const login = document.getElementById("login-form");
  if (login) setupLogin(login);
});
