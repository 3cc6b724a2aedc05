-- Raster layers (terrain models, flood depths) registered in PostGIS.
--
-- The rasters themselves stay Cloud-Optimised GeoTIFFs in the data directory;
-- PostGIS holds out-db references to them (as `raster2pgsql -R` does), one row
-- per tile of the COG, so SQL can ask for a value at a point without the
-- pixels being copied into the database. Reading out-db rasters needs two
-- superuser-only settings, set here for this database: new sessions see them.
-- Only the GeoTIFF driver is enabled, so an out-db path can never make the
-- server open other formats.

CREATE EXTENSION IF NOT EXISTS postgis_raster;

DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET postgis.enable_outdb_rasters = true',
                   current_database());
    EXECUTE format('ALTER DATABASE %I SET postgis.gdal_enabled_drivers = %L',
                   current_database(), 'GTiff');
END
$$;

-- One row per tile of a registered (open) raster layer; the tile's extent is
-- kept as a geometry so a point finds its tile through the GiST index.
CREATE TABLE IF NOT EXISTS data.raster_tiles (
    layer_id text NOT NULL REFERENCES geoby.layers (id) ON DELETE CASCADE,
    tile_id  integer NOT NULL CHECK (tile_id >= 0),
    rast     raster NOT NULL,
    extent   geometry(Polygon, 25832) NOT NULL,
    PRIMARY KEY (layer_id, tile_id)
);
CREATE INDEX IF NOT EXISTS raster_tiles_extent_idx ON data.raster_tiles USING gist (extent);

GRANT SELECT ON data.raster_tiles TO geoby_read, geoby_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON data.raster_tiles TO geoby_ingest;

-- The height (band 1 value) of a raster layer at a point in EPSG:25832; NULL
-- outside the raster or on nodata. A point on the border between two tiles
-- belongs to the tile east and south of it, as a pixel owns its west and
-- north edges.
CREATE OR REPLACE FUNCTION geoby.terrain_height(
    layer_id text, x double precision, y double precision
) RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT ST_Value(t.rast, 1, ST_SetSRID(ST_MakePoint(x, y), 25832), true)
    FROM data.raster_tiles AS t
    WHERE t.layer_id = terrain_height.layer_id
      AND t.extent && ST_SetSRID(ST_MakePoint(x, y), 25832)
      AND x >= ST_XMin(t.extent) AND x < ST_XMax(t.extent)
      AND y > ST_YMin(t.extent) AND y <= ST_YMax(t.extent)
    LIMIT 1
$$;

REVOKE ALL ON FUNCTION geoby.terrain_height(text, double precision, double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION geoby.terrain_height(text, double precision, double precision)
    TO geoby_read, geoby_ingest, geoby_admin;
