"""A dig answer as a map sheet (PDF or PNG), drawn with matplotlib.

One A4 landscape page: the map on the left, a title block on the right. The
map shows the dig area (solid outline), the answer buffer (dashed), and the
assets coloured by utility type; the title block holds the request, the
package (one owner or all), the counts per owner, the legend and a key.

Decisions where the issue is silent:

- Colours follow the common utility marking convention (APWA / DS 475
  practice): electricity red, gas amber (yellow does not read on white
  paper), water blue, sewer brown, district heating purple, telecom green,
  oil and chemicals magenta, other grey.
- Hazard class sets the line width (not dangerous thin, dangerous medium,
  very dangerous thick with a black casing); an unknown depth draws the
  line dashed, so the digger sees it on the map as well as in the counts.
- No basemap: nothing is fetched over the network, and the page prints the
  same everywhere. Coordinates on the frame are EPSG:25832 metres; the
  north arrow is grid north (UTM 32N grid convergence in Denmark is under
  2 degrees).
- The scale bar is the largest 1, 2 or 5 x 10^n metres that fits a quarter
  of the map width.
- The figure is a :class:`matplotlib.figure.Figure` built without pyplot
  (no global state, safe in a threaded server); the assets of one hazard
  class are one ``LineCollection``, so 500 assets draw as fast as five.
"""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime

import numpy as np
from matplotlib.collections import LineCollection, PatchCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import PathPatch, Rectangle
from matplotlib.path import Path
from matplotlib.patheffects import Normal, Stroke
from shapely.geometry.base import BaseGeometry

from dig_coordination.model import Answer, Conflict
from dig_coordination.render_gml import packages
from ingest.utilities.model import UTILITY_TYPES
from layers.crs import STORAGE_EPSG
from layers.errors import InvalidInput

FORMATS = ("pdf", "png")
MEDIA_TYPES = {"pdf": "application/pdf", "png": "image/png"}
PAGE_SIZE_IN = (297 / 25.4, 210 / 25.4)  # A4 landscape
PNG_DPI = 150
NO_ASSETS = "No registered assets in the area"
UTILITY_COLOURS = {
    "electricity": "#d7191c",
    "gas": "#f0a000",
    "water": "#1f5fbf",
    "sewer": "#8c510a",
    "district_heating": "#7b3294",
    "telecom": "#1a9641",
    "oil_chemicals": "#e7298a",
    "other": "#7f7f7f",
}
UTILITY_LABELS = {
    "electricity": "Electricity",
    "gas": "Gas",
    "water": "Water",
    "sewer": "Sewer",
    "district_heating": "District heating",
    "telecom": "Telecom",
    "oil_chemicals": "Oil and chemicals",
    "other": "Other",
}
HAZARD_WIDTHS = {"not_dangerous": 1.0, "dangerous": 2.0, "very_dangerous": 3.0, None: 2.0}
HAZARD_LABELS = {
    "not_dangerous": "not dangerous",
    "dangerous": "dangerous",
    "very_dangerous": "very dangerous (cased)",
    None: "hazard unknown",
}
_CASING = [Stroke(linewidth=HAZARD_WIDTHS["very_dangerous"] + 2.0, foreground="black"), Normal()]
_DEPTH_UNKNOWN_STYLE = (0, (4.0, 2.0))
_MAP_BOX = (0.06, 0.08, 0.60, 0.86)
_PANEL_BOX = (0.70, 0.04, 0.28, 0.92)
_OWNER_LINES = 8


def _colour(utility_type: str) -> str:
    return UTILITY_COLOURS.get(utility_type, UTILITY_COLOURS["other"])


def _parts(geom: BaseGeometry) -> list[BaseGeometry]:
    """The simple parts of any geometry (collections and multi-geometries opened)."""
    out, stack = [], [geom]
    while stack:
        g = stack.pop()
        if g.is_empty:
            continue
        if hasattr(g, "geoms"):
            stack.extend(g.geoms)
        else:
            out.append(g)
    return out


def _polygon_path(polygon) -> Path:
    vertices, codes = [], []
    for ring in (polygon.exterior, *polygon.interiors):
        xy = np.asarray(ring.coords)[:, :2]
        code = np.full(len(xy), Path.LINETO, dtype=Path.code_type)
        code[0], code[-1] = Path.MOVETO, Path.CLOSEPOLY
        vertices.append(xy)
        codes.append(code)
    return Path(np.concatenate(vertices), np.concatenate(codes))


def _area_path(geom: BaseGeometry) -> Path:
    polygons = [p for p in _parts(geom) if p.geom_type == "Polygon"]
    return Path.make_compound_path(*(_polygon_path(p) for p in polygons))


def scale_bar_length(width_m: float) -> float:
    """The largest 1, 2 or 5 x 10^n metres no longer than a quarter of ``width_m``.

    Examples
    --------
    >>> scale_bar_length(90.0)
    20.0
    >>> scale_bar_length(4000.0)
    1000.0
    """
    target = max(width_m / 4.0, 1e-9)
    power = 10.0 ** math.floor(math.log10(target))
    return max(step * power for step in (1.0, 2.0, 5.0) if step * power <= target)


def _extent(answer: Answer) -> tuple[float, float, float, float]:
    """Map limits around the answer area and assets, with the map box's aspect ratio."""
    r = answer.request
    bounds = [r.geometry.buffer(r.buffer_m).bounds] + [
        c.geometry.bounds for c in answer.conflicts if not c.geometry.is_empty
    ]
    minx, miny = min(b[0] for b in bounds), min(b[1] for b in bounds)
    maxx, maxy = max(b[2] for b in bounds), max(b[3] for b in bounds)
    pad = max(5.0, 0.08 * max(maxx - minx, maxy - miny))
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    box_ratio = (_MAP_BOX[2] * PAGE_SIZE_IN[0]) / (_MAP_BOX[3] * PAGE_SIZE_IN[1])
    width, height = maxx - minx, maxy - miny
    if width / height < box_ratio:
        grow = (height * box_ratio - width) / 2
        minx, maxx = minx - grow, maxx + grow
    else:
        grow = (width / box_ratio - height) / 2
        miny, maxy = miny - grow, maxy + grow
    return minx, miny, maxx, maxy


# -- the map ------------------------------------------------------------------------


def _draw_request(ax, answer: Answer) -> None:
    r = answer.request
    buffered = r.geometry.buffer(r.buffer_m, quad_segs=16)
    ax.add_patch(
        PathPatch(
            _area_path(buffered),
            facecolor="none",
            edgecolor="#555555",
            linewidth=1.0,
            linestyle="--",
            zorder=2,
        )
    )
    ax.add_patch(
        PathPatch(
            _area_path(r.geometry),
            facecolor=(0, 0, 0, 0.06),
            edgecolor="black",
            linewidth=1.8,
            zorder=3,
        )
    )


def _draw_lines(ax, conflicts: list[Conflict]) -> None:
    """One LineCollection per hazard class: colour by type, dashed where depth is unknown."""
    by_hazard: dict[str | None, tuple[list, list, list]] = {}
    for c in conflicts:
        lines = [p for p in _parts(c.geometry) if p.geom_type in ("LineString", "LinearRing")]
        hazard = c.hazard_class if c.hazard_class in HAZARD_WIDTHS else None
        segments, colours, styles = by_hazard.setdefault(hazard, ([], [], []))
        for line in lines:
            segments.append(np.asarray(line.coords)[:, :2])
            colours.append(_colour(c.utility_type))
            styles.append("solid" if c.depth_m is not None else _DEPTH_UNKNOWN_STYLE)
    for hazard, (segments, colours, styles) in by_hazard.items():
        if not segments:
            continue
        lc = LineCollection(
            segments,
            colors=colours,
            linestyles=styles,
            linewidths=HAZARD_WIDTHS[hazard],
            capstyle="round",
            zorder=5,
        )
        if hazard == "very_dangerous":
            lc.set_path_effects(_CASING)
        ax.add_collection(lc)


def _draw_points_and_areas(ax, conflicts: list[Conflict]) -> None:
    xs, ys, colours, sizes, edges, patches, patch_colours = [], [], [], [], [], [], []
    for c in conflicts:
        hazard = c.hazard_class if c.hazard_class in HAZARD_WIDTHS else None
        for part in _parts(c.geometry):
            if part.geom_type == "Point":
                xs.append(part.x)
                ys.append(part.y)
                colours.append(_colour(c.utility_type))
                sizes.append(24.0 + 14.0 * HAZARD_WIDTHS[hazard] ** 2)
                edges.append("black" if hazard == "very_dangerous" else "white")
            elif part.geom_type == "Polygon":
                patches.append(PathPatch(_polygon_path(part)))
                patch_colours.append(_colour(c.utility_type))
    if patches:
        ax.add_collection(
            PatchCollection(
                patches,
                facecolors=patch_colours,
                alpha=0.3,
                edgecolors=patch_colours,
                linewidths=1.0,
                zorder=4,
            )
        )
    if xs:
        ax.scatter(xs, ys, s=sizes, c=colours, edgecolors=edges, linewidths=0.8, zorder=6)


def _draw_scale_bar(ax, extent: tuple[float, float, float, float]) -> None:
    minx, miny, maxx, maxy = extent
    length = scale_bar_length(maxx - minx)
    x0, y0 = minx + 0.04 * (maxx - minx), miny + 0.05 * (maxy - miny)
    height = 0.012 * (maxy - miny)
    ax.add_patch(
        Rectangle(
            (x0 - 0.01 * (maxx - minx), y0 - 0.6 * height),
            length + 0.06 * (maxx - minx),
            4.6 * height,
            facecolor="white",
            edgecolor="none",
            alpha=0.85,
            zorder=8,
        )
    )
    for i in range(4):
        ax.add_patch(
            Rectangle(
                (x0 + i * length / 4, y0),
                length / 4,
                height,
                facecolor="black" if i % 2 == 0 else "white",
                edgecolor="black",
                linewidth=0.6,
                zorder=9,
            )
        )
    label_y = y0 + 1.6 * height
    ax.text(x0, label_y, "0", ha="center", va="bottom", fontsize=7, zorder=9)
    label = ax.text(
        x0 + length, label_y, f"{length:g} m", ha="center", va="bottom", fontsize=7, zorder=9
    )
    label.set_gid("scale-bar-label")


def _draw_north_arrow(ax) -> None:
    ax.annotate(
        "",
        xy=(0.95, 0.93),
        xytext=(0.95, 0.83),
        xycoords="axes fraction",
        arrowprops={
            "facecolor": "black",
            "edgecolor": "black",
            "width": 3,
            "headwidth": 10,
            "headlength": 10,
        },
        zorder=9,
    )
    north = ax.text(
        0.95,
        0.945,
        "N",
        transform=ax.transAxes,
        ha="center",
        va="bottom",
        fontsize=13,
        fontweight="bold",
        zorder=9,
    )
    north.set_gid("north-arrow")


def _draw_map(fig: Figure, answer: Answer) -> None:
    ax = fig.add_axes(_MAP_BOX)
    extent = _extent(answer)
    ax.set_xlim(extent[0], extent[2])
    ax.set_ylim(extent[1], extent[3])
    ax.set_aspect("equal", adjustable="datalim")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=6)
    ax.set_xlabel(f"Easting (m), EPSG:{STORAGE_EPSG}", fontsize=7)
    ax.set_ylabel(f"Northing (m), EPSG:{STORAGE_EPSG}", fontsize=7)
    ax.grid(color="#dddddd", linewidth=0.4, zorder=0)
    _draw_request(ax, answer)
    _draw_lines(ax, answer.conflicts)
    _draw_points_and_areas(ax, answer.conflicts)
    if not answer.conflicts:
        ax.text(
            0.5,
            0.5,
            NO_ASSETS,
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=12,
            bbox={"facecolor": "white", "edgecolor": "#555555"},
            zorder=9,
        )
    _draw_scale_bar(ax, extent)
    _draw_north_arrow(ax)


# -- the title block ----------------------------------------------------------------------


def legend_labels(answer: Answer, owner: str | None = None) -> list[str]:
    """The legend's entries: the utility types present, in the model's order."""
    if owner is not None:
        answer = answer.for_owner(owner)
    present = {c.utility_type for c in answer.conflicts}
    order = [*UTILITY_TYPES, *sorted(present - set(UTILITY_TYPES))]
    return [UTILITY_LABELS.get(t, t) for t in order if t in present]


def _utility_handles(answer: Answer) -> list[Line2D]:
    present = {c.utility_type for c in answer.conflicts}
    order = [*UTILITY_TYPES, *sorted(present - set(UTILITY_TYPES))]
    return [
        Line2D([], [], color=_colour(t), linewidth=2.5, label=UTILITY_LABELS.get(t, t))
        for t in order
        if t in present
    ]


def _key_handles(answer: Answer) -> list[Line2D]:
    r = answer.request
    handles = [
        Line2D([], [], color="black", linewidth=1.8, label="dig area"),
        Line2D(
            [],
            [],
            color="#555555",
            linewidth=1.0,
            linestyle="--",
            label=f"answer buffer {r.buffer_m:g} m",
        ),
    ]
    hazards = {
        c.hazard_class if c.hazard_class in HAZARD_WIDTHS else None for c in answer.conflicts
    }
    for hazard in ("not_dangerous", "dangerous", "very_dangerous", None):
        if hazard in hazards:
            line = Line2D(
                [],
                [],
                color="#444444",
                linewidth=HAZARD_WIDTHS[hazard],
                label=HAZARD_LABELS[hazard],
            )
            if hazard == "very_dangerous":
                line.set_path_effects(_CASING)
            handles.append(line)
    if any(c.depth_m is None for c in answer.conflicts):
        handles.append(
            Line2D(
                [],
                [],
                color="#444444",
                linewidth=1.5,
                linestyle=_DEPTH_UNKNOWN_STYLE,
                label="depth unknown",
            )
        )
    return handles


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="minutes") if value is not None else "-"


def title_lines(answer: Answer, owner: str | None = None) -> list[str]:
    """The title block's text, one line each (the answer already restricted to ``owner``)."""
    r = answer.request
    generated = answer.generated_at or datetime.now(UTC)
    works = ", ".join(w.replace("_", " ") for w in r.work_types)
    depth = f"{r.depth_m:g} m" if r.depth_m is not None else "not given"
    unknown = sum(c.depth_m is None for c in answer.conflicts)
    lines = [
        f"Reference: {r.reference}",
        f"Request: {r.id}",
        f"Organisation: {r.organisation}",
        f"Kind: {r.kind}    Status: {r.status}",
        f"Period: {r.start_date.isoformat()} to {r.end_date.isoformat()}",
        f"Work: {works}",
        f"Planned depth: {depth}    Buffer: {r.buffer_m:g} m",
        f"Package: {owner if owner is not None else 'all owners'}",
        f"Valid until: {_when(r.valid_until)}",
        f"Generated: {_when(generated)}",
        f"Ready to dig{'' if owner is None else ' (this owner)'}: "
        f"{'yes' if answer.ready_to_dig else 'no'}",
    ]
    if not answer.conflicts:
        lines.append(f"Assets: none. {NO_ASSETS}.")
    else:
        lines.append(f"Assets: {len(answer.conflicts)} (depth unknown: {unknown})")
    owned = packages(answer)
    if owned:
        lines.append("Per owner:")
    for name, state, conflicts in owned[:_OWNER_LINES]:
        status = f"{state.status}, " if state is not None else ""
        depthless = sum(c.depth_m is None for c in conflicts)
        lines.append(f"  {name if len(name) <= 44 else name[:43] + '…'}")
        lines.append(f"      {status}{len(conflicts)} assets, {depthless} depth unknown")
    if len(owned) > _OWNER_LINES:
        lines.append(f"  … and {len(owned) - _OWNER_LINES} more owners")
    lines.append(f"Coordinates: EPSG:{STORAGE_EPSG} (ETRS89 / UTM 32N), metres")
    return lines


def _draw_panel(fig: Figure, answer: Answer, owner: str | None) -> None:
    panel = fig.add_axes(_PANEL_BOX)
    panel.set_xticks([])
    panel.set_yticks([])
    panel.text(
        0.04,
        0.985,
        "Dig answer",
        transform=panel.transAxes,
        ha="left",
        va="top",
        fontsize=13,
        fontweight="bold",
    )
    panel.text(
        0.04,
        0.945,
        "\n".join(title_lines(answer, owner)),
        transform=panel.transAxes,
        ha="left",
        va="top",
        fontsize=7,
        linespacing=1.45,
        wrap=True,
    )
    handles = _utility_handles(answer)
    if handles:
        legend = panel.legend(
            handles=handles,
            title="Utility type",
            loc="lower left",
            bbox_to_anchor=(0.0, 0.0),
            fontsize=7,
            title_fontsize=7,
            frameon=False,
        )
        legend.set_gid("utility-legend")
        panel.add_artist(legend)
    key = panel.legend(
        handles=_key_handles(answer),
        title="Key",
        loc="lower right",
        bbox_to_anchor=(1.0, 0.0),
        fontsize=7,
        title_fontsize=7,
        frameon=False,
        handlelength=3.0,
    )
    key.set_gid("key-legend")
    panel.text(
        0.04,
        0.2 if len(handles) < 6 else 0.27,
        "Positions carry their owners' stated accuracy.\n"
        "Mark out and verify on site before digging.",
        transform=panel.transAxes,
        fontsize=6,
        style="italic",
        va="bottom",
    )


def build_figure(answer: Answer, owner: str | None = None) -> Figure:
    """The map sheet as a matplotlib Figure (A4 landscape).

    Parameters
    ----------
    answer
        The answer (geometries in EPSG:25832).
    owner
        Only this owner's assets and state; ``None`` for all owners.

    Returns
    -------
    matplotlib.figure.Figure
        The sheet; its utility legend has gid ``utility-legend``, the scale
        bar's length label ``scale-bar-label`` and the north arrow's "N"
        ``north-arrow``.
    """
    if owner is not None:
        answer = answer.for_owner(owner)
    fig = Figure(figsize=PAGE_SIZE_IN)
    _draw_map(fig, answer)
    _draw_panel(fig, answer, owner)
    return fig


def render_map(answer: Answer, fmt: str = "pdf", owner: str | None = None) -> bytes:
    """The map sheet as PDF (one page) or PNG (``PNG_DPI``).

    Parameters
    ----------
    answer
        The answer (geometries in EPSG:25832).
    fmt
        ``pdf`` or ``png``.
    owner
        Only this owner's package; ``None`` for all owners.

    Returns
    -------
    bytes
        The document.

    Raises
    ------
    InvalidInput
        ``fmt`` is neither ``pdf`` nor ``png``.
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"map format {fmt!r} is not one of {', '.join(FORMATS)}", field="f")
    fig = build_figure(answer, owner)
    title = f"Dig answer {answer.request.reference}"
    metadata = {"Title": title, "Creator" if fmt == "pdf" else "Software": "geoby"}
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=metadata)
    return buffer.getvalue()
