"""Surface water of the sample town: streams, lakes and the coastline.

The streams are the very centre lines the terrain model carved its valleys
along (so they run down the valley floors of the DEM to the sea), clipped at
the shoreline; lakes are the flat lake surfaces of the DEM; the coastline is
the 0 m shoreline of the plan with the harbour basin cut in and the quays and
mole built out.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString, box
from shapely.ops import linemerge

from ingest.sample import plan
from ingest.sample.terrain import TerrainModel


def streams_frame(model: TerrainModel) -> gpd.GeoDataFrame:
    """Stream centre lines from source to the shoreline, in local metres."""
    land = plan.land_outline(0.0)
    rows = []
    for i, stream in enumerate(model.streams):
        line = LineString(stream.line)
        clipped = line.intersection(land)
        parts = [g for g in getattr(clipped, "geoms", [clipped]) if g.length > 0]
        main = max(parts, key=lambda g: g.length)
        s_end = line.project(shapely.get_point(main, -1))
        cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(stream.line, axis=0).T))])
        rows.append(
            {
                "stream_id": f"stream-{i + 1}",
                "name": stream.name,
                "from_lake": stream.lake,
                "flows_to": "sea",
                "length_m": round(main.length, 1),
                "source_bed_level_m": round(float(stream.bed[0]), 3),
                "mouth_bed_level_m": round(float(np.interp(s_end, cum, stream.bed)), 3),
                "geometry": main,
            }
        )
    return gpd.GeoDataFrame(rows, geometry="geometry")


def lakes_frame(model: TerrainModel) -> gpd.GeoDataFrame:
    """Lake outlines with their (flat) water level, in local metres."""
    rows = []
    for i, lake in enumerate(plan.LAKES):
        outline = plan.lake_outline(lake)
        rows.append(
            {
                "lake_id": f"lake-{i + 1}",
                "name": lake.name,
                "water_level_m": round(model.lake_levels[lake.name], 3),
                "area_m2": round(outline.area, 1),
                "geometry": outline,
            }
        )
    return gpd.GeoDataFrame(rows, geometry="geometry")


def coastline_frame() -> gpd.GeoDataFrame:
    """The shoreline (0 m DVR90) inside the extent, in local metres."""
    land = plan.land_outline(0.0).union(box(*plan.HARBOUR_QUAY)).union(box(*plan.HARBOUR_MOLE))
    land = land.difference(box(*plan.HARBOUR_BASIN))
    frame = box(0.0, 0.0, plan.EXTENT_M, plan.EXTENT_M).exterior.buffer(0.5)
    shore = land.boundary.difference(frame)
    merged = linemerge(shore) if shore.geom_type == "MultiLineString" else shore
    lines = list(getattr(merged, "geoms", [merged]))
    return gpd.GeoDataFrame(
        {
            "coastline_id": [f"coast-{i + 1}" for i in range(len(lines))],
            "level_m": 0.0,
            "length_m": [round(g.length, 1) for g in lines],
        },
        geometry=lines,
    )
