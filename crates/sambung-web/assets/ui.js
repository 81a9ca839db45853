// What every page of the UI shares: finding and building elements, and calling the JSON API
// with errors as values that say what the server said.

import { t, locale, number } from "./i18n.js";

export const $ = (css) => document.querySelector(css);

/** Build an element: `el("li", {class: "x"}, "text", child)`; strings become text nodes. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else if (value !== false && value != null) node.setAttribute(name, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || t("error.status", { status: String(status) }));
    this.status = status;
    this.code = body && body.code;
    this.body = body;
  }
}

/** Call the JSON API; the server answers (its errors too) in the UI's language. */
export async function api(method, path, body) {
  const headers = { "accept-language": locale };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { message: text.slice(0, 200) };
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

/** Run `action` for a form, saying in its own status line how it went: its answer, or the
 * error where it happened. What the user typed stays in the form when it fails. */
export async function within(status, action) {
  status.classList.remove("error");
  status.textContent = "…";
  try {
    status.textContent = (await action()) ?? "";
    return true;
  } catch (error) {
    status.textContent = error.message;
    status.classList.add("error");
    // The error shows where it happened, even when that is below the fold.
    status.scrollIntoView({ block: "nearest" });
    return false;
  }
}

/** `n` and its noun, as people say it: "1 reply", "3 replies" (English only: `plural` in
 * i18n.js says it in the UI's language). */
export const count = (n, one, many) => `${number(n)} ${n === 1 ? one : many}`;

/** A date for people, in the UI's language. */
export { when } from "./i18n.js";
