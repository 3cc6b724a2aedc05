// Contractor view: draw or upload a dig area, file the request, see the answer, download it.
import { addDays, api, fmt, h, isoDay, legend, message, saveBlob, show, table, tokenField } from "../lib.js";
import { fitTo, interactive, setOverlay, Sketch } from "../map.js";

const WORK_TYPES = ["machine_excavation", "hand_digging", "directional_drilling", "pile_driving",
  "sheet_piling", "ploughing", "soil_investigation"];
const HAZARD = [["very_dangerous", "#b2182b", "Very dangerous"], ["dangerous", "#d6604d", "Dangerous"],
  ["not_dangerous", "#2166ac", "Not dangerous"], ["unknown", "#555555", "Hazard unknown"]];
const hazardColour = ["match", ["coalesce", ["get", "hazard_class"], "unknown"], ...HAZARD.flatMap(([k, c]) => [k, c]), "#555555"];
const $ = (id) => document.getElementById(id);
let token;
let sketch;
let current = null; // {id, reference}
let context;

function areaFromInput() {
  const text = $("dig-geojson").value.trim();
  if (text) {
    let doc = JSON.parse(text);
    if (doc.type === "FeatureCollection") doc = doc.features[0];
    if (doc.type === "Feature") doc = doc.geometry;
    if (!doc || !["Polygon", "LineString"].includes(doc.type)) throw new Error("the GeoJSON must be a Polygon (or a Feature holding one)");
    return doc;
  }
  if (sketch.points.length < 3) throw new Error("draw the dig area: at least three points");
  return { type: "Polygon", coordinates: [[...sketch.points, sketch.points[0]]] };
}

function setDrawing(on, ctx) {
  sketch.active = on;
  ctx.sketch = on ? sketch : null;
  $("dig-draw").setAttribute("aria-pressed", String(on));
  $("dig-add-centre").disabled = !on;
  $("dig-finish").disabled = !on;
  ctx.map.getCanvas().style.cursor = on ? "crosshair" : "";
}

async function submit(event, ctx) {
  event.preventDefault();
  const out = $("dig-message");
  try {
    const geometry = areaFromInput();
    const workTypes = [...document.querySelectorAll('#dig-work-types input:checked')].map((i) => i.value);
    const body = {
      geometry, kind: $("dig-kind").value, start_date: $("dig-start").value, end_date: $("dig-end").value,
      work_types: workTypes, depth_m: $("dig-depth").value ? Number($("dig-depth").value) : null,
      contact: { name: $("dig-contact").value.trim(), phone: $("dig-phone").value.trim() || null,
        email: $("dig-email").value.trim() || null },
    };
    if (!token()) throw new Error("enter your contractor token");
    if (!body.contact.name) throw new Error("enter the contact on site");
    show(out, message("Filing the request…"));
    setDrawing(false, ctx);
    const filed = await api("/api/dig-requests", { method: "POST", token: token(), body });
    show(out, message(`Request ${filed.reference || filed.id} filed: ${filed.status}.`));
    await showAnswer(ctx, filed.id);
    listMine();
  } catch (error) {
    show(out, message(`Not filed: ${error.message}`, "error"));
  }
}

async function showAnswer(ctx, id) {
  const doc = await api(`/api/dig-requests/${id}/answer?f=geojson`, { token: token() });
  current = { id, reference: doc.request.reference };
  const { map } = ctx;
  setOverlay(map, "contractor", "dig-request", { type: "geojson", data: { type: "Feature", geometry: doc.request.geometry, properties: { reference: doc.request.reference } } }, [
    { id: "dig-request-line", type: "line", paint: { "line-color": "#c24e00", "line-width": 3 } },
  ]);
  setOverlay(map, "contractor", "dig-answer", { type: "geojson", data: doc }, [
    { id: "dig-answer-lines", type: "line", filter: ["==", ["geometry-type"], "LineString"], metadata: { title: "Buried asset" },
      paint: { "line-color": hazardColour, "line-width": ["match", ["get", "hazard_class"], "very_dangerous", 5, "dangerous", 4, 3] } },
    { id: "dig-answer-points", type: "circle", filter: ["==", ["geometry-type"], "Point"], metadata: { title: "Buried asset" },
      paint: { "circle-color": hazardColour, "circle-radius": 5, "circle-stroke-color": "#fff", "circle-stroke-width": 1 } },
    { id: "dig-answer-areas", type: "fill", filter: ["==", ["geometry-type"], "Polygon"], metadata: { title: "Buried asset" },
      paint: { "fill-color": hazardColour, "fill-opacity": 0.35 } },
  ]);
  ["dig-answer-lines", "dig-answer-points", "dig-answer-areas"].forEach((l) => interactive.add(l));
  sketch.clear();
  fitTo(map, { type: "Feature", geometry: doc.request.geometry });
  $("dig-answer").hidden = false;
  show("dig-summary",
    h("p", {}, h("strong", {}, doc.request.reference), ` · ${doc.request.kind} · ${doc.request.start_date} to ${doc.request.end_date} · valid until ${doc.request.valid_until.slice(0, 10)}`),
    h("p", { id: "dig-conflicts" }, `${doc.numberReturned} buried assets in the area plus ${fmt(doc.request.buffer_m)} m; `,
      doc.ready_to_dig ? h("strong", {}, "ready to dig") : h("strong", {}, "not yet ready to dig")),
    doc.coordination?.length ? h("p", {}, `Coordination: ${doc.coordination.length} overlapping dig(s) nearby.`) : null);
  show("dig-legend", legend(HAZARD.map(([, c, label]) => [c, label])));
  const owners = doc.owners.map((owner) => {
    const assets = doc.features.filter((f) => f.properties.owner === owner.owner);
    const actions = [...new Set(assets.flatMap((f) => f.properties.required_actions.map((a) => a.text)))];
    const byHazard = HAZARD.map(([k, , label]) => [label, assets.filter((f) => (f.properties.hazard_class || "unknown") === k).length]).filter(([, n]) => n);
    return h("section", { class: "owner", "aria-label": owner.owner },
      h("h4", {}, owner.owner),
      h("p", {}, `Status: ${owner.status.replace(/_/g, " ")}`, owner.due_at ? ` · answer due ${owner.due_at.replace("T", " ").slice(0, 16)}` : "",
        ` · ${owner.assets_in_answer} assets (${byHazard.map(([l, n]) => `${n} ${l.toLowerCase()}`).join(", ") || "none"})`),
      actions.length ? h("ul", {}, actions.map((a) => h("li", {}, a))) : h("p", { class: "hint" }, "No precautions required."));
  });
  show("dig-owners", h("h4", {}, "Owners"), owners.length ? owners : h("p", {}, "No owner concerned."));
}

async function download(format) {
  if (!current) return;
  const out = $("dig-message");
  try {
    const blob = await api(`/api/dig-requests/${current.id}/answer?f=${format}`, { token: token(), blob: true });
    saveBlob(blob, `${current.reference}.${format}`);
    show(out, message(`Downloaded ${current.reference}.${format}.`));
  } catch (error) {
    show(out, message(`Download failed: ${error.message}`, "error"));
  }
}

async function listMine() {
  if (!token()) {
    show("dig-mine", h("p", { class: "hint" }, "Enter your token to see your requests."));
    return;
  }
  try {
    const doc = await api("/api/dig-requests", { token: token() });
    show("dig-mine", doc.requests.length ? table(null, [
      { label: "Request", value: (r) => h("button", { type: "button", onclick: () => showAnswer(context, r.id).catch((e) => show("dig-message", message(e.message, "error"))) }, r.reference || r.id) },
      { label: "Status", value: (r) => r.status },
      { label: "Period", value: (r) => `${r.start_date} – ${r.end_date}` },
      { label: "Valid until", value: (r) => (r.valid_until || "").slice(0, 10) },
    ], doc.requests) : h("p", {}, "No requests yet."));
  } catch (error) {
    show("dig-mine", message(error.message, "error"));
  }
}

export function init(ctx) {
  context = ctx;
  token = tokenField($("dig-token"), "geoby.token.contractor");
  sketch = new Sketch(ctx.map, "dig-sketch", { closed: true, onChange: (points) => {
    $("dig-vertices").textContent = points.length ? `${points.length} point${points.length > 1 ? "s" : ""} drawn.` : "No area drawn.";
  } });
  show("dig-work-types", h("legend", {}, "Work types"), WORK_TYPES.map((w, i) => h("div", { class: "check" },
    h("input", { type: "checkbox", id: `work-${w}`, value: w, checked: i === 0 }),
    h("label", { for: `work-${w}` }, w.replace(/_/g, " ")))));
  const today = new Date();
  $("dig-start").value = isoDay(addDays(today, 3));
  $("dig-end").value = isoDay(addDays(today, 10));
  $("dig-draw").addEventListener("click", () => setDrawing(!sketch.active, ctx));
  $("dig-add-centre").addEventListener("click", () => sketch.add(ctx.map.getCenter()));
  $("dig-finish").addEventListener("click", () => setDrawing(false, ctx));
  $("dig-clear").addEventListener("click", () => { sketch.clear(); $("dig-geojson").value = ""; });
  $("dig-file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (file) $("dig-geojson").value = await file.text();
  });
  $("dig-form").addEventListener("submit", (e) => submit(e, ctx));
  $("dig-downloads").addEventListener("click", (e) => e.target.dataset.format && download(e.target.dataset.format));
  $("dig-refresh").addEventListener("click", () => listMine());
  $("dig-token").addEventListener("change", () => listMine());
}

export function activate() { listMine(); }
export function deactivate(ctx) { if (sketch?.active) setDrawing(false, ctx); }
