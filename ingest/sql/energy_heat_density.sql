-- Heat demand density for heat planning: buildings (by a point on their surface)
-- aggregated to square grid cells of %(cell)s m aligned to EPSG:25832 multiples of
-- the cell size, ids in the Danish grid style (100m_NNNNN_EEEE: northing and
-- easting of the south-west corner divided by the cell size).
-- dominant_heat_installation: the installation with the most heat demand in the
-- cell (most buildings where no demand is known); share_not_district_heating: share
-- of the known heat demand of buildings whose installation is known and is not
-- district heating. The table is emptied and refilled on every run.
CREATE TABLE IF NOT EXISTS {density} (
    fid bigserial PRIMARY KEY,
    cell_id text NOT NULL UNIQUE,
    heat_demand_mwh double precision,
    heat_density_mwh_ha double precision,
    building_count integer NOT NULL,
    buildings_without_data integer NOT NULL,
    floor_area_m2 double precision,
    dominant_heat_installation text,
    share_not_district_heating double precision,
    geom geometry(Polygon, 25832) NOT NULL
);
CREATE INDEX IF NOT EXISTS energy_heat_density_geom_idx ON {density} USING gist (geom);
DELETE FROM {density};

WITH b AS (
    SELECT heat_installation, floor_area_m2, annual_heat_kwh,
           floor(ST_X(p) / %(cell)s) * %(cell)s AS x0,
           floor(ST_Y(p) / %(cell)s) * %(cell)s AS y0
    FROM (SELECT *, ST_PointOnSurface(geom) AS p FROM {buildings}) s
), per_kind AS (
    SELECT x0, y0, heat_installation, sum(annual_heat_kwh) AS heat, count(*) AS n
    FROM b WHERE heat_installation IS NOT NULL
    GROUP BY x0, y0, heat_installation
), dominant AS (
    SELECT DISTINCT ON (x0, y0) x0, y0, heat_installation
    FROM per_kind
    ORDER BY x0, y0, heat DESC NULLS LAST, n DESC, heat_installation
), cells AS (
    SELECT x0, y0,
           sum(annual_heat_kwh) / 1000.0 AS mwh,
           count(*) AS n,
           count(*) FILTER (WHERE annual_heat_kwh IS NULL) AS nodata,
           sum(floor_area_m2) AS floor_area,
           coalesce(sum(annual_heat_kwh) FILTER (WHERE heat_installation <> %(district)s), 0)
               / nullif(sum(annual_heat_kwh) FILTER (WHERE heat_installation IS NOT NULL), 0)
               AS share
    FROM b
    GROUP BY x0, y0
)
INSERT INTO {density} (cell_id, heat_demand_mwh, heat_density_mwh_ha, building_count,
                       buildings_without_data, floor_area_m2, dominant_heat_installation,
                       share_not_district_heating, geom)
SELECT %(cell)s::int || 'm_' || (c.y0 / %(cell)s)::bigint || '_' || (c.x0 / %(cell)s)::bigint,
       c.mwh,
       c.mwh / (%(cell)s * %(cell)s / 10000.0),
       c.n, c.nodata, c.floor_area, d.heat_installation, c.share,
       ST_MakeEnvelope(c.x0, c.y0, c.x0 + %(cell)s, c.y0 + %(cell)s, 25832)
FROM cells c
LEFT JOIN dominant d USING (x0, y0);
