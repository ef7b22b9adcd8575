// views/workflows.js — the registered workflows, each with a launch form
// built from the inputs it declares (`inputSchema` in its file); a
// workflow that declares none takes its input as a JSON object.

import { h, replace, notice, errorText } from "../dom.js";

function fieldControl(wf, f) {
  const id = `in-${wf.key}-${f.name}`.replace(/[^A-Za-z0-9_-]/g, "_");
  const required = !f.optional;
  const label = h("label", { for: id }, f.name, required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null);
  const hint = f.description ? h("small", { id: `${id}-hint` }, f.description) : null;
  const describedBy = hint ? `${id}-hint` : null;
  let control;
  if (Array.isArray(f.enum)) {
    // An empty first choice, so a required enum is chosen, not defaulted.
    control = h("select", { id, name: f.name, required, "aria-describedby": describedBy },
      h("option", { value: "" }, required ? "choose…" : "—"),
      f.enum.map((v) => h("option", { value: JSON.stringify(v) }, String(v))));
    control.dataset.kind = "enum";
  } else if (f.type === "boolean" && required) {
    control = h("input", { id, name: f.name, type: "checkbox", "aria-describedby": describedBy });
    control.dataset.kind = "boolean";
  } else if (f.type === "boolean") {
    // Optional: leaving it out is a third answer a checkbox cannot give.
    control = h("select", { id, name: f.name, "aria-describedby": describedBy },
      h("option", { value: "" }, "—"), h("option", { value: "true" }, "true"), h("option", { value: "false" }, "false"));
    control.dataset.kind = "enum";
  } else if (f.type === "number" || f.type === "integer") {
    control = h("input", { id, name: f.name, type: "number", step: "any", required, "aria-describedby": describedBy });
    control.dataset.kind = "number";
  } else if (f.type === "string") {
    control = h("input", { id, name: f.name, type: "text", required, "aria-describedby": describedBy, autocomplete: "off" });
    control.dataset.kind = "string";
  } else {
    control = h("textarea", { id, name: f.name, rows: 3, required, "aria-describedby": describedBy, placeholder: `${f.type} as JSON` });
    control.dataset.kind = "json";
  }
  return { field: f, control, el: h("div", { class: "field" }, label, control, hint) };
}

// The input object from the form; throws with the field's name on bad JSON.
function readInput(controls, raw) {
  if (raw) {
    const text = raw.value.trim() || "{}";
    let v;
    try { v = JSON.parse(text); } catch (e) { throw new Error(`Input is not JSON: ${e.message}`); }
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("Input must be a JSON object");
    return v;
  }
  // No prototype: a field may be named __proto__.
  const input = Object.create(null);
  for (const { field, control } of controls) {
    const k = control.dataset.kind;
    if (k === "boolean") { input[field.name] = control.checked; continue; }
    if (control.value === "") { if (!field.optional) input[field.name] = ""; continue; }
    if (k === "enum") input[field.name] = JSON.parse(control.value);
    else if (k === "number") input[field.name] = Number(control.value);
    else if (k === "string") input[field.name] = control.value;
    else {
      try { input[field.name] = JSON.parse(control.value); } catch (e) { throw new Error(`${field.name}: not JSON: ${e.message}`); }
    }
  }
  return input;
}

function workflowCard(ctx, wf) {
  const fields = wf.inputSchema?.fields ?? null;
  const controls = fields ? fields.map((f) => fieldControl(wf, f)) : [];
  const rawId = `in-${wf.key}-json`.replace(/[^A-Za-z0-9_-]/g, "_");
  const raw = fields ? null : h("textarea", { id: rawId, name: "input", rows: 3, value: "{}" });
  const status = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "submit" }, `Launch ${wf.key}`);
  const form = h("form", { class: "launch", "aria-label": `Launch ${wf.key}` },
    fields && !fields.length ? h("p", { class: "meta" }, "This workflow takes no input.") : null,
    controls.map((c) => c.el),
    raw ? h("div", { class: "field" }, h("label", { for: rawId }, "Input (JSON object)"), raw) : null,
    button, status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let input;
    try { input = readInput(controls, raw); } catch (e) { replace(status, notice(e.message, "error")); return; }
    button.disabled = true;
    replace(status, notice("Launching…"));
    try {
      const r = await ctx.rpc("launchRun", { workflow: wf.key, input });
      ctx.go(`#/runs/${encodeURIComponent(r.runId)}`);
    } catch (e) {
      replace(status, notice(`Launch refused: ${errorText(e)}`, "error"));
      button.disabled = false;
    }
  });
  return h("article", { class: "card", "data-workflow": wf.key },
    h("h3", {}, wf.readableName && wf.readableName !== wf.key ? `${wf.readableName} (${wf.key})` : wf.key),
    wf.description ? h("p", {}, wf.description) : null,
    // A new tab without an opener: the UI's scripts share this origin, and
    // a tab opened this way does not get a copy of the console's session
    // storage, where the token is.
    wf.hasUi && wf.uiPath ? h("p", {}, h("a", { href: wf.uiPath, target: "_blank", rel: "noopener noreferrer" }, "Open its UI")) : null,
    form);
}

export function renderWorkflows(ctx, main) {
  const body = h("div", { class: "cards" });
  main.append(h("div", { class: "bar" }, h("h2", {}, "Workflows")), body);
  ctx.rpc("listWorkflows").then(
    (list) => replace(body, list.length ? list.map((wf) => workflowCard(ctx, wf)) : notice("No workflows are registered.")),
    (e) => replace(body, notice(`Could not list workflows: ${errorText(e)}`, "error")));
  return null;
}
