// Layers view: the open catalog, each layer toggleable, with a legend swatch.
import { h, show } from "../lib.js";
import { BASE, baseLayerIds, interactive, rasterTiles, removeSource, setOverlay, vectorTiles } from "../map.js";

const THEME_COLOURS = {
  terrain: "#8c6d31", climate: "#6a3d9a", water: "#1f78b4", energy: "#b15928",
  waste: "#33a02c", utilities: "#e31a1c", analysis: "#08519c",
};

function kindOf(layer) {
  const type = (layer.geometry_type || "").toLowerCase();
  if (layer.kind === "raster") return "raster";
  if (type.includes("point")) return "circle";
  if (type.includes("line")) return "line";
  if (type.includes("polygon")) return "fill";
  return null;
}

function styleLayers(layer, colour) {
  const id = `layer-${layer.id}`;
  const common = { "source-layer": layer.id, metadata: { title: layer.title } };
  switch (kindOf(layer)) {
    case "circle": return [{ id, type: "circle", ...common, paint: { "circle-radius": 4, "circle-color": colour, "circle-stroke-color": "#fff", "circle-stroke-width": 1 } }];
    case "line": return [{ id, type: "line", ...common, paint: { "line-color": colour, "line-width": 2 } }];
    case "fill": return [{ id, type: "fill", ...common, paint: { "fill-color": colour, "fill-opacity": 0.45, "fill-outline-color": colour } }];
    default: return [];
  }
}

function toggle(map, layer, on) {
  const base = BASE.find((b) => b.id === layer.id);
  if (base) {
    baseLayerIds(layer.id).forEach((id) => map.getLayer(id) && map.setLayoutProperty(id, "visibility", on ? "visible" : "none"));
    if (!base.raster) baseLayerIds(layer.id).forEach((id) => (on ? interactive.add(id) : interactive.delete(id)));
    return;
  }
  const sourceId = `layer-${layer.id}`;
  if (!on) {
    removeSource(map, sourceId);
    interactive.delete(sourceId);
    return;
  }
  if (layer.kind === "raster") {
    const style = layer.theme === "terrain" ? "hillshade" : "depth";
    setOverlay(map, "layers", sourceId, { type: "raster", tiles: [rasterTiles(layer.id, style)], tileSize: 256 },
      [{ id: sourceId, type: "raster", paint: { "raster-opacity": 0.8 } }], { before: "base-water_roads-casing" });
    return;
  }
  const colour = THEME_COLOURS[layer.theme] || "#444";
  setOverlay(map, "layers", sourceId, { type: "vector", tiles: [vectorTiles(layer.id)], maxzoom: 16 }, styleLayers(layer, colour));
  interactive.add(sourceId);
}

export function init(ctx) {
  const { map, catalog } = ctx;
  const drawable = catalog.filter((l) => l.kind === "raster" || kindOf(l));
  BASE.forEach((b) => !b.raster && catalog.some((l) => l.id === b.id) && baseLayerIds(b.id).forEach((id) => interactive.add(id)));
  if (!drawable.length) {
    show("layer-list", h("p", {}, "The catalog holds no open layers yet."));
    return;
  }
  const byTheme = Object.groupBy ? Object.groupBy(drawable, (l) => l.theme) : drawable.reduce((acc, l) => ((acc[l.theme] ||= []).push(l), acc), {});
  const sections = Object.entries(byTheme).map(([theme, list]) =>
    h("fieldset", {}, h("legend", {}, theme[0].toUpperCase() + theme.slice(1)),
      list.map((layer) => {
        const inBase = BASE.some((b) => b.id === layer.id);
        const colour = THEME_COLOURS[layer.theme] || "#444";
        const input = h("input", { type: "checkbox", id: `toggle-${layer.id}`, checked: inBase, "data-layer": layer.id,
          onchange: (e) => toggle(map, layer, e.target.checked) });
        const count = layer.row_count !== null && layer.row_count !== undefined ? ` (${layer.row_count.toLocaleString("en")})` : "";
        return h("div", { class: "check" }, input,
          h("label", { for: `toggle-${layer.id}` },
            h("span", { class: "swatch", "aria-hidden": "true", style: { background: inBase ? "#9a9a9a" : colour } }),
            `${layer.title}${count}`));
      })));
  show("layer-list", sections);
}
