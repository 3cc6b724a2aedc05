// The map: an offline base style from geoby's own tiles, overlay groups per view, a sketch tool.
import { api } from "./lib.js";

const origin = window.location.origin;
export const vectorTiles = (id) =>
  `${origin}/ogc/collections/${id}/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt`;
export const rasterTiles = (id, style) =>
  `${origin}/api/raster-tiles/${id}/{z}/{x}/{y}.png${style ? `?style=${style}` : ""}`;

/** The base map: hillshade, water, buildings and roads, each drawn only if the catalog has it. */
export const BASE = [
  { id: "terrain_dtm", raster: "hillshade", layers: [{ type: "raster", paint: { "raster-opacity": 0.35 } }] },
  { id: "water_lakes", layers: [{ type: "fill", paint: { "fill-color": "#9cc3e6" } }] },
  { id: "water_coastline", layers: [{ type: "line", paint: { "line-color": "#4f86c6", "line-width": 1.5 } }] },
  { id: "water_streams", layers: [{ type: "line", paint: { "line-color": "#4f86c6", "line-width": 1.2 } }] },
  { id: "energy_buildings", layers: [{ type: "fill", paint: { "fill-color": "#d8cfc4", "fill-outline-color": "#a39584" } }] },
  { id: "water_roads", layers: [
    { type: "line", suffix: "casing", paint: { "line-color": "#9a9a9a", "line-width": ["interpolate", ["linear"], ["zoom"], 12, 1.5, 17, 9] } },
    { type: "line", paint: { "line-color": "#ffffff", "line-width": ["interpolate", ["linear"], ["zoom"], 12, 0.8, 17, 7] } }] },
];
export const baseLayerIds = (id) =>
  (BASE.find((b) => b.id === id)?.layers || []).map((l) => `base-${id}${l.suffix ? `-${l.suffix}` : ""}`);

function baseStyle(available) {
  const style = {
    version: 8, sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#f2efe9" } }],
  };
  for (const base of BASE) {
    if (!available.has(base.id)) continue;
    style.sources[`base-${base.id}`] = base.raster
      ? { type: "raster", tiles: [rasterTiles(base.id, base.raster)], tileSize: 256, maxzoom: 18 }
      : { type: "vector", tiles: [vectorTiles(base.id)], maxzoom: 16 };
    for (const layer of base.layers) {
      style.layers.push({
        id: `base-${base.id}${layer.suffix ? `-${layer.suffix}` : ""}`, type: layer.type,
        source: `base-${base.id}`, ...(base.raster ? {} : { "source-layer": base.id }), paint: layer.paint,
      });
    }
  }
  return style;
}

/** Where the town is: the CRS84 extent of the first of these collections the OGC API has. */
async function townBounds(ids) {
  for (const id of ids) {
    try {
      const doc = await api(`/ogc/collections/${id}?f=json`);
      const box = doc.extent?.spatial?.bbox?.[0];
      if (box) return [[box[0], box[1]], [box[2], box[3]]];
    } catch { /* try the next */ }
  }
  return [[8, 54.5], [13, 57.8]]; // Denmark
}

/** Create the map in `container` with the catalog's open layers; resolves once loaded. */
export async function createMap(container, catalog) {
  maplibregl.setWorkerUrl(`${origin}/static/vendor/maplibre-gl-csp-worker.js`);
  const available = new Set(catalog.map((l) => l.id));
  const bounds = await townBounds(["water_roads", "energy_buildings", "terrain_dtm"].filter((id) => available.has(id)));
  const map = new maplibregl.Map({
    container, style: baseStyle(available), bounds, fitBoundsOptions: { padding: 20 },
    maxZoom: 20, attributionControl: { compact: true }, preserveDrawingBuffer: true,
  });
  map.addControl(new maplibregl.NavigationControl({ visualizePitch: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
  await new Promise((resolve) => map.once("load", resolve));
  map.getCanvas().setAttribute("aria-label", "Map; use the arrow keys to pan, + and - to zoom");
  return map;
}

/** Overlays by group (a view's layers): replaced as a whole, shown with their view. */
const groups = new Map();

export function setOverlay(map, group, sourceId, source, layers, { before } = {}) {
  removeSource(map, sourceId);
  map.addSource(sourceId, source);
  const ids = [];
  for (const layer of layers) {
    map.addLayer({ ...layer, source: sourceId }, before && map.getLayer(before) ? before : undefined);
    ids.push(layer.id);
  }
  const entry = groups.get(group) || { visible: true, sources: new Map() };
  entry.sources.set(sourceId, ids);
  groups.set(group, entry);
  if (!entry.visible) ids.forEach((id) => map.setLayoutProperty(id, "visibility", "none"));
  return ids;
}

export function removeSource(map, sourceId) {
  for (const entry of groups.values()) {
    const ids = entry.sources.get(sourceId);
    if (!ids) continue;
    ids.forEach((id) => map.getLayer(id) && map.removeLayer(id));
    entry.sources.delete(sourceId);
  }
  if (map.getSource(sourceId)) {
    map.getStyle().layers.filter((l) => l.source === sourceId).forEach((l) => map.removeLayer(l.id));
    map.removeSource(sourceId);
  }
}

export function showGroup(map, group, visible) {
  const entry = groups.get(group) || { visible, sources: new Map() };
  entry.visible = visible;
  groups.set(group, entry);
  for (const ids of entry.sources.values()) {
    ids.forEach((id) => map.getLayer(id) && map.setLayoutProperty(id, "visibility", visible ? "visible" : "none"));
  }
}

/** Layers that answer a click with their attributes. */
export const interactive = new Set();

/** Fit the map to GeoJSON coordinates. */
export function fitTo(map, geojson) {
  const box = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c) => {
    if (typeof c[0] === "number") {
      box[0] = Math.min(box[0], c[0]); box[1] = Math.min(box[1], c[1]);
      box[2] = Math.max(box[2], c[0]); box[3] = Math.max(box[3], c[1]);
    } else c.forEach(walk);
  };
  const features = geojson.type === "FeatureCollection" ? geojson.features : [geojson];
  features.forEach((f) => f.geometry && walk(f.geometry.coordinates));
  if (Number.isFinite(box[0])) map.fitBounds([[box[0], box[1]], [box[2], box[3]]], { padding: 40, maxZoom: 18, duration: 0 });
}

/** A sketch on the map: click points (or add the map centre) to draw a polygon or a line. */
export class Sketch {
  constructor(map, id, { closed, colour = "#c24e00", onChange = () => {} }) {
    Object.assign(this, { map, id, closed, colour, onChange, points: [], active: false });
    setOverlay(map, "sketch", id, { type: "geojson", data: this.geojson() }, [
      ...(closed ? [{ id: `${id}-fill`, type: "fill", paint: { "fill-color": colour, "fill-opacity": 0.15 } }] : []),
      { id: `${id}-line`, type: "line", paint: { "line-color": colour, "line-width": 2.5, "line-dasharray": [2, 1] } },
      { id: `${id}-points`, type: "circle", paint: { "circle-radius": 4, "circle-color": colour, "circle-stroke-color": "#fff", "circle-stroke-width": 1 } },
    ]);
  }

  geojson() {
    const features = this.points.map((p) => ({ type: "Feature", geometry: { type: "Point", coordinates: p }, properties: {} }));
    const ring = this.closed && this.points.length >= 3 ? [...this.points, this.points[0]] : this.points;
    if (ring.length >= 2) features.push({ type: "Feature", geometry: { type: "LineString", coordinates: ring }, properties: {} });
    if (this.closed && this.points.length >= 3) features.push({ type: "Feature", geometry: { type: "Polygon", coordinates: [ring] }, properties: {} });
    return { type: "FeatureCollection", features };
  }

  add(lngLat) {
    this.points.push([Number(lngLat.lng.toFixed(7)), Number(lngLat.lat.toFixed(7))]);
    this.redraw();
  }

  set(points) {
    this.points = points.map((p) => [p[0], p[1]]);
    this.redraw();
  }

  clear() { this.points = []; this.redraw(); }

  redraw() {
    this.map.getSource(this.id)?.setData(this.geojson());
    this.onChange(this.points);
  }
}
