// Waste view: bins by fill level, alerts, tomorrow's collection list, truck routes, coverage gaps.
import { api, ApiError, fmt, h, legend, message, show, table, tokenField } from "../lib.js";
import { fitTo, interactive, setOverlay } from "../map.js";

const $ = (id) => document.getElementById(id);
const FILL = [["#1a9641", "Under 50 %"], ["#a6611a", "50–80 %"], ["#d7191c", "80 % or more"], ["#7f7f7f", "No reading"]];
const fillColour = ["case", ["==", ["get", "fill_level"], null], FILL[3][0],
  [">=", ["get", "fill_level"], 0.8], FILL[2][0], [">=", ["get", "fill_level"], 0.5], FILL[1][0], FILL[0][0]];
const TRUCKS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#386cb0", "#666666"];
let token;
let loaded = false;
const where = new Map(); // bin_id -> [lon, lat]
const pct = (v) => (v === null || v === undefined ? "–" : `${fmt(100 * v)} %`);
const dayQuery = () => ($("waste-day").value ? `?day=${$("waste-day").value}` : "");

const points = (rows, props) => ({
  type: "FeatureCollection",
  features: rows.filter((r) => r.lon !== null && r.lat !== null).map((r) => ({
    type: "Feature", geometry: { type: "Point", coordinates: [r.lon, r.lat] }, properties: props(r) })),
});

async function loadBins(ctx) {
  try {
    const { bins } = await api("/api/waste/bins?limit=10000");
    bins.forEach((b) => where.set(b.bin_id, [b.lon, b.lat]));
    setOverlay(ctx.map, "waste", "waste-bins", { type: "geojson", data: points(bins, (b) => ({
      bin_id: b.bin_id, fraction: b.fraction, fill_level: b.fill_level, address: b.address, last_reading: b.last_reading })) }, [
      { id: "waste-bins-circles", type: "circle", metadata: { title: "Bin" },
        paint: { "circle-radius": 5, "circle-color": fillColour, "circle-stroke-color": "#ffffff", "circle-stroke-width": 1 } },
    ]);
    interactive.add("waste-bins-circles");
    fitTo(ctx.map, points(bins, () => ({})));
    const full = bins.filter((b) => b.fill_level >= 0.8).length;
    const read = bins.filter((b) => b.fill_level !== null && b.fill_level !== undefined).length;
    show("waste-bins", h("p", { id: "waste-bin-count" }, `${bins.length} bins, ${read} with a reading, ${full} at 80 % or more.`));
  } catch (error) {
    show("waste-bins", message(`Bins: ${error.message}`, "error"));
  }
  try {
    const { alerts } = await api("/api/waste/alerts?limit=50");
    show("waste-alerts", alerts.length ? table(null, [
      { label: "Bin", value: (a) => a.bin_id }, { label: "Alert", value: (a) => a.kind.replace(/_/g, " ") },
      { label: "Since", value: (a) => a.raised_at.replace("T", " ").slice(0, 16) },
    ], alerts) : h("p", {}, "No open alerts."));
  } catch (error) {
    show("waste-alerts", message(`Alerts: ${error.message}`, "error"));
  }
}

// A 404 of the route itself ("Not found") means this server has no such endpoint yet.
const notThere = (error, what) => error instanceof ApiError && error.status === 404
  ? h("p", { class: "hint" }, /^(not found$|nothing at )/i.test(error.message.trim()) ? `${what} is not available on this server yet.` : error.message)
  : null;

async function loadPlan(ctx) {
  try {
    const plan = await api(`/api/waste/plan${dayQuery()}`);
    const located = plan.bins.map((b) => ({ ...b, lon: b.lon ?? where.get(b.bin_id)?.[0] ?? null, lat: b.lat ?? where.get(b.bin_id)?.[1] ?? null }));
    setOverlay(ctx.map, "waste", "waste-plan", { type: "geojson", data: points(located, (b) => ({ bin_id: b.bin_id, fraction: b.fraction, reason: b.reason })) }, [
      { id: "waste-plan-ring", type: "circle", metadata: { title: "Bin to empty" },
        paint: { "circle-radius": 9, "circle-color": "rgba(0,0,0,0)", "circle-stroke-color": "#111111", "circle-stroke-width": 2 } },
    ], { before: "waste-bins-circles" });
    interactive.add("waste-plan-ring");
    const kpis = Object.entries(plan.kpis || {}).concat(Object.entries(plan.by_fraction || {}).map(([f, n]) => [f, Object.entries(n).map(([k, v]) => `${v} ${k}`).join(", ")]));
    show("waste-plan",
      h("p", {}, `${plan.bins.length} bins to empty on ${plan.day}.`),
      kpis.length ? h("dl", { class: "props" }, kpis.flatMap(([k, v]) => [h("dt", {}, k.replace(/_/g, " ")), h("dd", {}, typeof v === "number" ? fmt(v, 2) : String(v))])) : null,
      table(null, [
        { label: "Bin", value: (b) => b.bin_id }, { label: "Fraction", value: (b) => b.fraction },
        { label: "Fill now", num: true, value: (b) => pct(b.fill_now) },
        { label: "At visit", num: true, value: (b) => pct(b.fill_at_visit) },
        { label: "Next visit", num: true, value: (b) => pct(b.fill_at_next_visit) },
        { label: "Why", value: (b) => String(b.reason).replace(/_/g, " ") },
      ], plan.bins));
  } catch (error) {
    show("waste-plan", notThere(error, "Collection planning") || message(`Plan: ${error.message}`, "error"));
  }
}

function drawRoutes(ctx, doc) {
  const routes = doc.routes.features;
  const trucks = [...new Set(routes.map((f) => String(f.properties.truck_id)))];
  const colour = ["match", ["to-string", ["get", "truck_id"]], ...trucks.flatMap((t, i) => [t, TRUCKS[i % TRUCKS.length]]), "#333333"];
  setOverlay(ctx.map, "waste", "waste-routes", { type: "geojson", data: doc.routes }, [
    { id: "waste-routes-casing", type: "line", paint: { "line-color": "#ffffff", "line-width": 6 } },
    { id: "waste-routes-line", type: "line", metadata: { title: "Route" }, paint: { "line-color": trucks.length ? colour : "#333333", "line-width": 3.5 } },
  ]);
  setOverlay(ctx.map, "waste", "waste-stops", { type: "geojson", data: doc.stops }, [
    { id: "waste-stops-circles", type: "circle", metadata: { title: "Stop" },
      paint: { "circle-radius": 6, "circle-color": trucks.length ? colour : "#333333", "circle-stroke-color": "#ffffff", "circle-stroke-width": 2 } },
  ]);
  interactive.add("waste-routes-line");
  interactive.add("waste-stops-circles");
  if (routes.length) fitTo(ctx.map, doc.routes);
  const stopsOf = (r) => doc.stops.features.filter((s) => s.properties.truck_id === r.truck_id && (r.trip === undefined || s.properties.trip === r.trip) && (s.properties.bin_id))
    .sort((a, b) => a.properties.order - b.properties.order).map((s) => s.properties.bin_id);
  show("waste-routes",
    h("p", { id: "waste-route-count" }, `${routes.length} routes on ${doc.day}, ${doc.stops.features.filter((s) => s.properties.bin_id).length} bins emptied.`),
    h("div", { class: "legend" }, legend(trucks.map((t, i) => [TRUCKS[i % TRUCKS.length], `Truck ${t}`]))),
    table(null, [
      { label: "Truck", value: (r) => (r.trip !== undefined ? `${r.truck_id} / trip ${r.trip}` : `${r.truck_id} (${r.trips ?? 1} trip${r.trips > 1 ? "s" : ""})`) }, { label: "Fraction", value: (r) => r.fraction },
      { label: "km", num: true, value: (r) => fmt(r.distance_km, 1) }, { label: "min", num: true, value: (r) => fmt(r.duration_min) },
      { label: "Load (kg)", num: true, value: (r) => fmt(r.load_kg) },
      { label: "Stops in order", value: (r) => { const s = stopsOf(r); return s.length ? s.join(" → ") : String(r.stops ?? ""); } },
    ], routes.map((f) => f.properties)));
}

async function loadRoutes(ctx, optimise) {
  const day = $("waste-day").value || undefined;
  try {
    if (optimise && !token()) throw new Error("enter a planner token to optimise routes");
    if (optimise) show("waste-routes", message("Optimising routes…"));
    const doc = optimise
      ? await api("/api/waste/routes", { method: "POST", token: token(), body: { day, seconds: 5 } })
      : await api(`/api/waste/routes${dayQuery()}`);
    drawRoutes(ctx, doc);
  } catch (error) {
    show("waste-routes", notThere(error, "Route planning") || message(`Routes: ${error.message}`, "error"));
  }
}

async function loadGaps(ctx) {
  show("waste-coverage", message("Computing coverage…"));
  try {
    const doc = await api("/api/waste/coverage?gaps=true");
    const features = Object.entries(doc.gaps || {}).flatMap(([fraction, fc]) =>
      fc.features.map((f) => ({ ...f, properties: { ...f.properties, fraction } })));
    setOverlay(ctx.map, "waste", "waste-gaps", { type: "geojson", data: { type: "FeatureCollection", features } }, [
      { id: "waste-gaps-fill", type: "fill", filter: ["==", ["geometry-type"], "Polygon"], metadata: { title: "Home outside walking distance" }, paint: { "fill-color": "#b2182b", "fill-opacity": 0.5 } },
      { id: "waste-gaps-points", type: "circle", filter: ["==", ["geometry-type"], "Point"], metadata: { title: "Home outside walking distance" }, paint: { "circle-radius": 3, "circle-color": "#b2182b" } },
    ], { before: "waste-bins-circles" });
    interactive.add("waste-gaps-fill");
    interactive.add("waste-gaps-points");
    show("waste-coverage", table(`Homes within ${fmt(doc.walk_m)} m walk of a station`, [
      { label: "Fraction", value: (f) => f.fraction },
      ...Object.keys(doc.fractions[0] || {}).filter((k) => k !== "fraction").map((k) => ({ label: k.replace(/_/g, " "), num: true, value: (f) => (typeof f[k] === "number" ? fmt(f[k], 2) : String(f[k])) })),
    ], doc.fractions));
  } catch (error) {
    show("waste-coverage", message(`Coverage: ${error.message}`, "error"));
  }
}

export function init(ctx) {
  token = tokenField($("waste-token"), "geoby.token.planner");
  show("waste-legend", legend(FILL));
  $("waste-plan-load").addEventListener("click", () => loadPlan(ctx));
  $("waste-routes-load").addEventListener("click", () => loadRoutes(ctx, false));
  $("waste-routes-run").addEventListener("click", () => loadRoutes(ctx, true));
  $("waste-gaps").addEventListener("click", () => loadGaps(ctx));
}

export function activate(ctx) {
  if (loaded) return;
  loaded = true;
  loadBins(ctx).then(() => loadRoutes(ctx, false));
}
