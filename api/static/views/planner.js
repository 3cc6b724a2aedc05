// Planner view: run a cloudburst or sea-level scenario, follow its progress, show and compare results.
import { api, fmt, h, legend, message, show, table, tokenField } from "../lib.js";
import { interactive, rasterTiles, removeSource, setOverlay, Sketch, vectorTiles } from "../map.js";

const $ = (id) => document.getElementById(id);
const DEPTH_LEGEND = [["#bdd7ee", "< 5 cm"], ["#6baed6", "5–10 cm"], ["#3182bd", "10–30 cm"], ["#08519c", "30 cm – 1 m"], ["#08306b", "> 1 m"]];
const EXPOSED = ["interpolate", ["linear"], ["coalesce", ["get", "max_depth_m"], 0], 0, "#fdae61", 0.3, "#f46d43", 1, "#a50026"];
const results = []; // {sid, kind, summary, shown}
let token;
let barrierSketch;
const barriers = [];

function kind() { return document.querySelector('input[name="flood-kind"]:checked').value; }
const num = (id) => ($(id).value === "" ? undefined : Number($(id).value));

function parameters() {
  if (kind() === "cloudburst") {
    return { return_period_years: num("cb-return"), duration_min: num("cb-duration"),
      climate_factor: num("cb-factor"), drainage_mm: num("cb-drainage") ?? 0 };
  }
  const level = num("sl-level");
  return level !== undefined ? { level_m: level } : { year: num("sl-year"), surge_return_period: num("sl-surge") };
}

function setDrawing(on, ctx) {
  barrierSketch.active = on;
  ctx.sketch = on ? barrierSketch : null;
  $("barrier-draw").setAttribute("aria-pressed", String(on));
  $("barrier-finish").disabled = !on;
}

function drawBarriers(map) {
  setOverlay(map, "planner", "flood-barriers", { type: "geojson", data: { type: "FeatureCollection", features: barriers } }, [
    { id: "flood-barriers-line", type: "line", metadata: { title: "Barrier" }, paint: { "line-color": "#5b2a86", "line-width": 4 } },
  ]);
  interactive.add("flood-barriers-line");
  $("barrier-count").textContent = barriers.length ? `${barriers.length} barrier${barriers.length > 1 ? "s" : ""}.` : "No barriers.";
}

async function run(event, ctx) {
  event.preventDefault();
  const out = $("flood-message");
  if (!token()) {
    show(out, message("Enter your planner token.", "error"));
    return;
  }
  const body = { kind: kind(), parameters: JSON.parse(JSON.stringify(parameters())) };
  if (kind() === "sealevel" && barriers.length) body.edits = { barriers };
  $("flood-run").disabled = true;
  try {
    const job = await api("/api/flood/scenarios", { method: "POST", token: token(), body });
    show(out, message(`Scenario ${job.id} started.`));
    const done = await follow(job.id);
    if (done.status !== "successful") throw new Error(`the run ${done.status}: ${done.message || ""}`);
    show(out, message(`Scenario ${done.summary.scenario_id} finished.`));
    addResult(ctx, done);
  } catch (error) {
    show(out, message(`Scenario failed: ${error.message}`, "error"));
  } finally {
    $("flood-run").disabled = false;
    $("flood-progress").hidden = true;
  }
}

async function follow(jobId) {
  $("flood-progress").hidden = false;
  for (;;) {
    const job = await api(`/api/flood/scenarios/${jobId}`);
    $("flood-bar").value = job.progress || 0;
    $("flood-bar-label").textContent = `${job.progress || 0} %: ${job.message || job.status}`;
    if (!["accepted", "running"].includes(job.status)) return job;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function describe(summary) {
  const p = summary.parameters || {};
  if (summary.kind === "cloudburst") {
    const rain = summary.rain || {};
    return p.rain_mm !== undefined ? `${fmt(rain.rain_mm, 1)} mm rain`
      : `${p.return_period_years}-year, ${p.duration_min} min: ${fmt(rain.rain_mm, 1)} mm net`;
  }
  const sea = summary.sea || {};
  return `sea at ${fmt(sea.level_m, 2)} m${summary.edits?.barriers ? `, ${summary.edits.barriers} barrier(s)` : ""}`;
}

function addResult(ctx, job) {
  const summary = job.summary;
  const sid = summary.scenario_id;
  const index = results.findIndex((r) => r.sid === sid);
  if (index >= 0) results.splice(index, 1);
  results.unshift({ sid, kind: summary.kind, summary, label: describe(summary) });
  results.forEach((r) => { r.shown = r.sid === sid; });
  render(ctx);
  api(`/ogc/collections/${summary.terrain_layer || "terrain_dtm"}?f=json`).then((doc) => {
    const box = doc.extent?.spatial?.bbox?.[0];
    if (box) ctx.map.fitBounds([[box[0], box[1]], [box[2], box[3]]], { padding: 20, duration: 0 });
  }).catch(() => { /* the results stay listed without a fit */ });
}

function drawResult(map, result, on) {
  const depth = `flood-depth-${result.sid}`;
  const exposure = `flood-exposure-${result.sid}`;
  if (!on) {
    removeSource(map, depth);
    removeSource(map, exposure);
    interactive.delete(`${exposure}-fill`);
    return;
  }
  setOverlay(map, "planner", depth, { type: "raster", tiles: [rasterTiles(`flood_${result.sid}_depth`, "depth")], tileSize: 256 },
    [{ id: `${depth}-raster`, type: "raster", paint: { "raster-opacity": 0.85 } }], { before: "base-energy_buildings" });
  const layerId = `flood_exposure_${result.sid}`;
  setOverlay(map, "planner", exposure, { type: "vector", tiles: [vectorTiles(layerId)], maxzoom: 16 }, [
    { id: `${exposure}-fill`, type: "fill", "source-layer": layerId, metadata: { title: "Exposed building" },
      filter: ["all", ["==", ["get", "object_class"], "buildings"], ["==", ["get", "flooded"], true]],
      paint: { "fill-color": EXPOSED, "fill-outline-color": "#67001f" } },
    { id: `${exposure}-roads`, type: "line", "source-layer": layerId,
      filter: ["all", ["==", ["get", "object_class"], "roads"], ["==", ["get", "flooded"], true]],
      paint: { "line-color": EXPOSED, "line-width": 3 } },
  ]);
  interactive.add(`${exposure}-fill`);
}

function totals(summary) {
  const e = summary.exposure || {};
  return {
    buildings: e.buildings?.count, roads_m: e.roads?.flooded_length_m, assets: e.assets?.count,
    wet_area_m2: summary.wet_area_m2, max_depth_m: summary.max_depth_m,
  };
}

function render(ctx) {
  for (const r of results) drawResult(ctx.map, r, r.shown);
  const cards = results.map((r) => {
    const t = totals(r.summary);
    const box = h("input", { type: "checkbox", id: `show-${r.sid}`, checked: r.shown,
      onchange: (e) => { r.shown = e.target.checked; drawResult(ctx.map, r, r.shown); } });
    return h("section", { class: "result", "aria-label": `Scenario ${r.sid}`, "data-scenario": r.sid },
      h("h4", {}, `${r.kind} ${r.sid}`),
      h("p", {}, r.label),
      h("div", { class: "check" }, box, h("label", { for: `show-${r.sid}` }, "Show on the map")),
      h("dl", { class: "props" },
        h("dt", {}, "Exposed buildings"), h("dd", { class: "exposed-buildings" }, fmt(t.buildings)),
        h("dt", {}, "Flooded roads"), h("dd", {}, `${fmt(t.roads_m)} m`),
        h("dt", {}, "Buried assets"), h("dd", {}, fmt(t.assets)),
        h("dt", {}, "Wet area"), h("dd", {}, `${fmt(t.wet_area_m2)} m²`),
        h("dt", {}, "Max depth"), h("dd", {}, `${fmt(t.max_depth_m, 2)} m`)));
  });
  const compared = results.slice(0, 2);
  const comparison = compared.length === 2 ? h("div", { class: "compare" }, table("Comparison of the last two runs", [
    { label: "", value: (row) => row.label },
    ...compared.map((r) => ({ label: r.sid, num: true, value: (row) => row.value(totals(r.summary)) })),
  ], [
    { label: "Exposed buildings", value: (t) => fmt(t.buildings) },
    { label: "Flooded roads (m)", value: (t) => fmt(t.roads_m) },
    { label: "Buried assets", value: (t) => fmt(t.assets) },
    { label: "Wet area (m²)", value: (t) => fmt(t.wet_area_m2) },
    { label: "Max depth (m)", value: (t) => fmt(t.max_depth_m, 2) },
  ])) : null;
  show("flood-results", comparison, cards);
}

export function init(ctx) {
  token = tokenField($("flood-token"), "geoby.token.planner");
  barrierSketch = new Sketch(ctx.map, "barrier-sketch", { closed: false, colour: "#5b2a86" });
  document.querySelectorAll('input[name="flood-kind"]').forEach((radio) => radio.addEventListener("change", () => {
    $("flood-cloudburst").hidden = kind() !== "cloudburst";
    $("flood-sealevel").hidden = kind() !== "sealevel";
  }));
  $("barrier-draw").addEventListener("click", () => setDrawing(!barrierSketch.active, ctx));
  $("barrier-finish").addEventListener("click", () => {
    if (barrierSketch.points.length >= 2) {
      barriers.push({ type: "Feature", geometry: { type: "LineString", coordinates: barrierSketch.points },
        properties: { crest_height_m: num("sl-crest") ?? 3 } });
      drawBarriers(ctx.map);
    }
    barrierSketch.clear();
    setDrawing(false, ctx);
  });
  $("barrier-clear").addEventListener("click", () => { barriers.length = 0; drawBarriers(ctx.map); });
  $("flood-form").addEventListener("submit", (e) => run(e, ctx));
  show("flood-legend", legend([...DEPTH_LEGEND, ["#f46d43", "Exposed building"]]));
}

export function deactivate(ctx) { if (barrierSketch?.active) setDrawing(false, ctx); }
