// Small helpers shared by the views: DOM building, calls to geoby's API, tokens.

/** Build an element: h("p", {class: "hint"}, "text", child). Styles go through the CSSOM
 * (the page's Content-Security-Policy forbids inline style attributes). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "style") Object.assign(el.style, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace the content of an element (by id or node). */
export function show(target, ...children) {
  const el = typeof target === "string" ? document.getElementById(target) : target;
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  return el;
}

export const message = (text, kind = "ok") => h("p", { class: `message-${kind}` }, text);

/** An error from the API: the problem detail's message, and the HTTP status. */
export class ApiError extends Error {
  constructor(status, text) {
    super(text);
    this.status = status;
  }
}

/** Call the API. Returns parsed JSON (or a Blob with `blob: true`); throws ApiError with the
 * problem detail's message. */
export async function api(path, { method = "GET", token, body, blob = false } = {}) {
  const headers = { Accept: blob ? "*/*" : "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let text = `${response.status} ${response.statusText}`;
    try {
      const problem = await response.json();
      text = problem.detail || problem.title || text;
    } catch { /* not JSON */ }
    throw new ApiError(response.status, text);
  }
  if (response.status === 204) return null;
  return blob ? response.blob() : response.json();
}

/** A token field kept in sessionStorage (gone when the tab closes). */
export function tokenField(input, key) {
  input.value = sessionStorage.getItem(key) || "";
  input.addEventListener("change", () => sessionStorage.setItem(key, input.value.trim()));
  return () => {
    const value = input.value.trim();
    sessionStorage.setItem(key, value);
    return value;
  };
}

/** Save a Blob as a file (an object URL clicked as a download link). */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename, class: "visually-hidden" }, filename);
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export const fmt = (value, digits = 0) =>
  value === null || value === undefined || Number.isNaN(value)
    ? "–" : Number(value).toLocaleString("en", { maximumFractionDigits: digits, minimumFractionDigits: 0 });

/** A table: columns [{label, value: row => text|Node, num}], rows. */
export function table(caption, columns, rows) {
  return h("table", {},
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : null }, c.label)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.num ? "num" : null }, c.value(row)))))));
}

/** A legend: [[colour, label], ...]. */
export function legend(items) {
  return items.map(([colour, label]) =>
    h("span", {}, h("span", { class: "swatch", "aria-hidden": "true", style: { background: colour } }), label));
}

export const isoDay = (date) => date.toISOString().slice(0, 10);
export const addDays = (date, n) => new Date(date.getTime() + n * 86400000);
