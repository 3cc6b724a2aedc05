// Status view: the operating status of every component, from /status.
import { api, h, message, show } from "../lib.js";

const text = (v) => (v === null || v === undefined ? "none" : typeof v === "boolean" ? (v ? "yes" : "no") : String(v));

export function init() {}

export async function activate() {
  try {
    const doc = await api("/status");
    show("status-body",
      h("p", {}, "Overall: ", h("span", { class: `badge ${doc.status}` }, doc.status)),
      Object.entries(doc.components).map(([name, c]) => h("section", { "aria-label": name },
        h("h3", {}, `${name[0].toUpperCase()}${name.slice(1)} `, h("span", { class: `badge ${c.status}` }, c.status.replace(/_/g, " "))),
        h("dl", { class: "props" }, Object.entries(c).filter(([k]) => k !== "status")
          .flatMap(([k, v]) => [h("dt", {}, k.replace(/_/g, " ")), h("dd", {}, text(v))])))));
  } catch (error) {
    show("status-body", message(`Status: ${error.message}`, "error"));
  }
}
