// views/signin.js — the token form. The token goes to session storage
// (this tab only, gone when it closes), never into the URL or a cookie.

import { h, replace, notice, errorText } from "../dom.js";

export function renderSignIn(root, message, submit) {
  const input = h("input", {
    id: "token", name: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false",
  });
  const status = h("div", { "aria-live": "polite" }, message ? notice(message) : null);
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Anvil console"),
    h("p", {}, "Sign in with a bearer token issued for this gateway."),
    h("label", { for: "token" }, "Token"),
    input, button, status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    replace(status, notice("Checking the token…"));
    try {
      await submit(input.value.trim());
    } catch (e) {
      replace(status, notice(`Sign-in failed: ${errorText(e)}`, "error"));
      button.disabled = false;
      input.focus();
    }
  });
  replace(root, h("main", { id: "main", class: "center" }, form));
  input.focus();
}
