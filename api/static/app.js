// geoby's web map: the view switcher, the map, feature information on click.
import { api, h, show } from "./lib.js";
import { createMap, interactive, showGroup } from "./map.js";
import * as layers from "./views/layers.js";
import * as contractor from "./views/contractor.js";
import * as planner from "./views/planner.js";
import * as waste from "./views/waste.js";
import * as status from "./views/status.js";

const VIEWS = { layers, contractor, planner, waste, status };

function setupTabs(onSelect) {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const select = (tab, focus = false) => {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) tab.focus();
    onSelect(tab.id.replace("tab-", ""));
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      select(tabs[(moves[event.key] + tabs.length) % tabs.length], true);
    });
  });
  const wanted = tabs.find((t) => t.id === `tab-${location.hash.slice(1)}`);
  return () => select(wanted || tabs[0]);
}

function featureInfo(map, event, ctx) {
  const ids = [...interactive].filter((id) => map.getLayer(id) && map.getLayoutProperty(id, "visibility") !== "none");
  const found = ids.length ? map.queryRenderedFeatures(event.point, { layers: ids }) : [];
  const target = document.getElementById(`${ctx.current}-info`) || document.getElementById("feature-info");
  if (!found.length) {
    show(target, h("p", { class: "hint" }, "No feature here."));
    return;
  }
  const feature = found[0];
  const rows = Object.entries(feature.properties).filter(([k]) => !k.startsWith("__"));
  const title = feature.layer.metadata?.title || feature.sourceLayer || feature.layer.source;
  const body = h("div", {},
    h("p", {}, h("strong", {}, title)),
    h("dl", { class: "props" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))])));
  show(target, body);
  new maplibregl.Popup({ maxWidth: "320px" }).setLngLat(event.lngLat).setDOMContent(body.cloneNode(true)).addTo(map);
}

async function main() {
  const catalog = await api("/api/layers");
  const map = await createMap(document.getElementById("map"), catalog);
  window.geobyMap = map; // for the end-to-end tests and the browser console
  const ctx = { map, catalog, current: "layers", sketch: null };
  map.on("click", (event) => (ctx.sketch?.active ? ctx.sketch.add(event.lngLat) : featureInfo(map, event, ctx)));
  for (const view of Object.values(VIEWS)) view.init(ctx);
  const start = setupTabs((name) => {
    ctx.current = name;
    for (const [other, view] of Object.entries(VIEWS)) {
      showGroup(map, other, other === name || other === "layers");
      if (other !== name) view.deactivate?.(ctx);
    }
    VIEWS[name].activate?.(ctx);
    history.replaceState(null, "", `#${name}`);
  });
  start();
  document.body.dataset.ready = "true";
}

main().catch((error) => {
  console.error(error);
  document.body.dataset.ready = "error";
  show("layer-list", h("p", { class: "message-error", role: "alert" }, `The map could not start: ${error.message}`));
});
