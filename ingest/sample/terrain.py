"""The terrain of Egevig as a function of position.

:class:`TerrainModel` gives the DVR90 height at any local position ``(u, v)``
(metres east and north of the sample's south-west corner). Heights come from
the fixed plan (:mod:`ingest.sample.plan`) plus seeded value-noise fields that
live on coarse lattices and are interpolated at the requested positions, so a
DEM tile at any resolution, a single manhole rim and a neighbouring tile all
read the same surface and tiles mosaic without seams.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ingest.sample import plan
from ingest.sample.seeding import rng_for

# (lattice spacing m, amplitude m) of the inland hills, from broad to fine.
_HILL_OCTAVES = ((900.0, 7.0), (380.0, 3.0), (150.0, 1.0))
# Micro-relief everywhere on land: visible at fine resolutions only.
_MICRO_OCTAVES = ((50.0, 0.15), (14.0, 0.04))
_LOW_ZONE_OCTAVE = (240.0, 0.35)
_VALLEY_SLOPE = 0.04
_VALLEY_MAX_HALF_WIDTH = 350.0
_MARGIN = 400.0  # lattices reach this far outside the extent


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class _Lattice:
    spacing: float
    amplitude: float
    values: np.ndarray

    def __call__(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        fx = (np.asarray(u) + _MARGIN) / self.spacing
        fy = (np.asarray(v) + _MARGIN) / self.spacing
        ny, nx = self.values.shape
        ix = np.clip(np.floor(fx).astype(np.intp), 0, nx - 2)
        iy = np.clip(np.floor(fy).astype(np.intp), 0, ny - 2)
        tx = np.clip(fx - ix, 0.0, 1.0)
        ty = np.clip(fy - iy, 0.0, 1.0)
        tx = tx * tx * (3.0 - 2.0 * tx)
        ty = ty * ty * (3.0 - 2.0 * ty)
        lat = self.values
        a, b = lat[iy, ix], lat[iy, ix + 1]
        c, d = lat[iy + 1, ix], lat[iy + 1, ix + 1]
        return self.amplitude * (a + (b - a) * tx + (c - a) * ty + (a - b - c + d) * tx * ty)


def _lattice(rng: np.random.Generator, spacing: float, amplitude: float) -> _Lattice:
    n = int(np.ceil((plan.EXTENT_M + 2 * _MARGIN) / spacing)) + 2
    return _Lattice(spacing, amplitude, rng.uniform(-1.0, 1.0, size=(n, n)))


def _chaikin(points: np.ndarray, iterations: int = 3) -> np.ndarray:
    for _ in range(iterations):
        q = 0.75 * points[:-1] + 0.25 * points[1:]
        r = 0.25 * points[:-1] + 0.75 * points[1:]
        inner = np.empty((2 * len(q), 2))
        inner[0::2], inner[1::2] = q, r
        points = np.vstack([points[:1], inner, points[-1:]])
    return points


@dataclass(frozen=True)
class Stream:
    """A stream's centre line (source first) and its bed height at each vertex."""

    name: str
    line: np.ndarray
    bed: np.ndarray
    lake: str | None


@dataclass
class TerrainModel:
    """Seeded terrain of the sample town; see :meth:`height_local`.

    Build it with :meth:`build`; the fields are derived, not chosen.
    """

    seed: int
    hills: list[_Lattice]
    micro: list[_Lattice]
    low_zone: _Lattice
    group_levels: list[float] = field(default_factory=list)
    lake_levels: dict[str, float] = field(default_factory=dict)
    streams: list[Stream] = field(default_factory=list)

    @classmethod
    def build(cls, seed: int) -> TerrainModel:
        """Draw the random fields for ``seed`` and derive levels and stream beds."""
        rng = rng_for(seed, "terrain.fields")
        model = cls(
            seed=seed,
            hills=[_lattice(rng, s, a) for s, a in _HILL_OCTAVES],
            micro=[_lattice(rng, s, a) for s, a in _MICRO_OCTAVES],
            low_zone=_lattice(rng, *_LOW_ZONE_OCTAVE),
        )
        for group in plan.BOWL_GROUPS:
            pu, pv = np.array([group.u]), np.array([group.v])
            level = model._base(pu, pv, model._micro(pu, pv))[0]
            model.group_levels.append(float(level))
        for lake in plan.LAKES:
            t = np.linspace(0.0, 2.0 * np.pi, 90, endpoint=False)
            ring_u = lake.u + (lake.a + 20.0) * np.cos(t)
            ring_v = lake.v + (lake.b + 20.0) * np.sin(t)
            model.lake_levels[lake.name] = float(model._designed(ring_u, ring_v).min() - 0.5)
        jitter = rng_for(seed, "terrain.streams")
        for sp in plan.STREAMS:
            model.streams.append(model._stream(sp, jitter))
        return model

    def _stream(self, sp: plan.StreamPlan, rng: np.random.Generator) -> Stream:
        ctrl = np.array(sp.points, dtype=np.float64)
        for i in range(1, len(ctrl) - 2):
            step = ctrl[i + 1] - ctrl[i - 1]
            normal = np.array([-step[1], step[0]]) / np.hypot(*step)
            ctrl[i] += normal * rng.uniform(-35.0, 35.0)
        # End the stream just past the shoreline, so it carves no sea floor.
        ctrl[-1, 0] = float(plan.coast_u(ctrl[-1, 1])) + 25.0
        line = _chaikin(ctrl, 3)
        seg = np.hypot(*np.diff(line, axis=0).T)
        s = np.concatenate([[0.0], np.cumsum(seg)])
        # Sample the land every ~5 m to keep the bed under it all the way.
        fine_s = np.linspace(0.0, s[-1], int(s[-1] // 5.0) + 2)
        fine_u = np.interp(fine_s, s, line[:, 0])
        fine_v = np.interp(fine_s, s, line[:, 1])
        land = self._designed(fine_u, fine_v)
        # Deep valleys inland, a shallow channel across the low coastal zone.
        ground = land - np.clip(0.5 + 0.12 * land, 0.8, 2.5)
        if sp.lake is not None:
            start = self.lake_levels[sp.lake] - 0.3
        else:
            start = ground[0]
        linear = start + (-0.6 - start) * fine_s / fine_s[-1]
        fine_bed = np.minimum.accumulate(np.minimum(linear, ground)) - 1e-4 * fine_s
        bed = fine_bed[np.searchsorted(fine_s, s, side="right") - 1]
        return Stream(sp.name, line, bed, sp.lake)

    # -- the surface, built up in layers ------------------------------------

    def _base(self, u: np.ndarray, v: np.ndarray, micro: np.ndarray) -> np.ndarray:
        """Coastal profile, low coastal zone and inland hills."""
        d = plan.coast_u(v) - u
        sea = plan.SEA_FLOOR_M * (1.0 - np.exp(np.minimum(d, 0.0) / 250.0))
        beach = (np.clip(d, 0.0, plan.BEACH_WIDTH_M) / plan.BEACH_WIDTH_M) ** 0.8
        low_span = plan.LOW_ZONE_WIDTH_M - plan.BEACH_WIDTH_M
        low = 1.2 * np.clip((d - plan.BEACH_WIDTH_M) / low_span, 0.0, 1.0)
        rise = np.clip(d - plan.LOW_ZONE_WIDTH_M, 0.0, None)
        inland = 33.0 * (1.0 - np.exp(-rise / 1500.0)) ** 1.2
        h = np.where(d < 0.0, sea, beach + low + inland)
        town = 1.0 - 0.6 * np.exp(-((u - 2300.0) ** 2 + (v - 2200.0) ** 2) / 900.0**2)
        hill_mask = _smoothstep(350.0, 1800.0, d) * town
        hills = sum(lat(u, v) for lat in self.hills)
        land = _smoothstep(0.0, plan.BEACH_WIDTH_M, d)
        seabed = _smoothstep(0.0, -80.0, d)
        low_noise = self.low_zone(u, v)
        return h + hill_mask * hills + land * (low_noise + micro) + 0.6 * seabed * low_noise

    def _micro(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return sum(lat(u, v) for lat in self.micro)

    def _designed(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Base plus bluespots, polder and harbour (everything but water)."""
        micro = self._micro(u, v)
        h = self._base(u, v, micro)
        for group, level in zip(plan.BOWL_GROUPS, self.group_levels, strict=True):
            r = np.hypot(u - group.u, v - group.v)
            w = 1.0 - _smoothstep(group.level_radius, group.level_radius + 90.0, r)
            h = h * (1.0 - w) + (level + 0.2 * micro) * w
            for bowl in group.bowls:
                rb = np.hypot(u - bowl.u, v - bowl.v) / bowl.radius
                h = h - bowl.depth * np.clip(1.0 - rb * rb, 0.0, None) ** 2
        h = self._polder(u, v, h, micro)
        return self._harbour(u, v, h)

    def _polder(self, u: np.ndarray, v: np.ndarray, h: np.ndarray, micro: np.ndarray) -> np.ndarray:
        cu, cv = plan.POLDER_CENTRE
        a, b = plan.POLDER_AXES
        t, rho = _radial(u - cu, v - cv, a, b)
        inside = plan.POLDER_LEVEL_M - 0.2 * (1.0 - np.minimum(rho, 1.0) ** 2) + 0.6 * micro
        crest = plan.DIKE_CREST_M
        dike = np.where(
            t < 8.0,
            plan.POLDER_LEVEL_M + (crest - plan.POLDER_LEVEL_M) * np.clip(t, 0.0, 8.0) / 8.0,
            np.where(t < 14.0, crest, crest - (t - 14.0) * 0.3),
        )
        out = np.where(t < 14.0, dike, np.maximum(h, dike))
        return np.where(t < 0.0, inside, out)

    def _harbour(self, u: np.ndarray, v: np.ndarray, h: np.ndarray) -> np.ndarray:
        def inside(rect: tuple[float, float, float, float]) -> np.ndarray:
            return (u >= rect[0]) & (u <= rect[2]) & (v >= rect[1]) & (v <= rect[3])

        h = np.where(inside(plan.HARBOUR_QUAY), plan.QUAY_LEVEL_M, h)
        h = np.where(inside(plan.HARBOUR_MOLE), plan.QUAY_LEVEL_M + 0.5, h)
        return np.where(inside(plan.HARBOUR_BASIN), np.minimum(h, plan.HARBOUR_FLOOR_M), h)

    def _valleys(self, u: np.ndarray, v: np.ndarray, h: np.ndarray) -> np.ndarray:
        grid = u.ndim == 2 and u.shape[0] == 1 and v.shape[1] == 1
        for stream in self.streams:
            p, bed = stream.line, stream.bed
            for i in range(len(p) - 1):
                (u0, v0), (u1, v1) = p[i], p[i + 1]
                w = _VALLEY_MAX_HALF_WIDTH
                lo_u, hi_u = min(u0, u1) - w, max(u0, u1) + w
                lo_v, hi_v = min(v0, v1) - w, max(v0, v1) + w
                if grid:
                    cols = np.flatnonzero((u[0] >= lo_u) & (u[0] <= hi_u))
                    rows = np.flatnonzero((v[:, 0] >= lo_v) & (v[:, 0] <= hi_v))
                    if cols.size == 0 or rows.size == 0:
                        continue
                    sl = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
                    uu, vv = u[:, sl[1]], v[sl[0], :]
                    h[sl] = np.minimum(h[sl], _carve(uu, vv, p[i], p[i + 1], bed[i], bed[i + 1]))
                else:
                    h = np.minimum(h, _carve(u, v, p[i], p[i + 1], bed[i], bed[i + 1]))
        return h

    def _lakes(self, u: np.ndarray, v: np.ndarray, h: np.ndarray) -> np.ndarray:
        for lake in plan.LAKES:
            level = self.lake_levels[lake.name]
            t, rho = _radial(u - lake.u, v - lake.v, lake.a, lake.b)
            h = np.where(rho <= 1.0, level, np.minimum(h, level + 0.3 + 0.08 * t))
        return h

    def height_local(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Height (m DVR90) at local positions.

        Parameters
        ----------
        u, v
            Local easting and northing in metres. Either arrays of one shape
            (scattered points) or a row ``(1, nx)`` and a column ``(ny, 1)``
            (a grid, evaluated window by window for speed).

        Returns
        -------
        numpy.ndarray
            Heights in metres, float64, broadcast shape of ``u`` and ``v``.
        """
        u = np.asarray(u, dtype=np.float64)
        v = np.asarray(v, dtype=np.float64)
        h = np.array(np.broadcast_to(self._designed(u, v), np.broadcast_shapes(u.shape, v.shape)))
        h = self._valleys(u, v, h)
        return self._lakes(u, v, h)

    def height(self, e: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Height (m DVR90) at EPSG:25832 positions ``(e, n)``; see :meth:`height_local`."""
        return self.height_local(np.asarray(e) - plan.ORIGIN_E, np.asarray(n) - plan.ORIGIN_N)


def _radial(du: np.ndarray, dv: np.ndarray, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Distance outside an ellipse along the ray from its centre, and rho."""
    rho = np.sqrt((du / a) ** 2 + (dv / b) ** 2)
    r = np.hypot(du, dv)
    t = np.where(rho > 1e-9, r * (1.0 - 1.0 / np.maximum(rho, 1e-9)), -min(a, b))
    return t, rho


def _carve(
    u: np.ndarray,
    v: np.ndarray,
    p0: np.ndarray,
    p1: np.ndarray,
    b0: float,
    b1: float,
) -> np.ndarray:
    """Valley surface around one stream segment: channel plus side slopes."""
    du, dv = p1[0] - p0[0], p1[1] - p0[1]
    length2 = du * du + dv * dv
    t = np.clip(((u - p0[0]) * du + (v - p0[1]) * dv) / length2, 0.0, 1.0)
    d = np.hypot(u - (p0[0] + t * du), v - (p0[1] + t * dv))
    bank = 0.8 * np.minimum(d / 4.0, 1.0) ** 2
    return b0 + (b1 - b0) * t + bank + _VALLEY_SLOPE * np.maximum(d - 4.0, 0.0)
