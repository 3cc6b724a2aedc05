-- Register a COG as out-db tiles of tile x tile cells (as `raster2pgsql -R -t`):
-- the server opens the file to check each tile, so it must be readable by it.
INSERT INTO data.raster_tiles (layer_id, tile_id, rast, extent)
SELECT %(layer)s, r.i * %(across)s + c.j, t.rast, ST_Envelope(t.rast)
FROM generate_series(0, %(down)s - 1) AS r (i)
CROSS JOIN generate_series(0, %(across)s - 1) AS c (j)
CROSS JOIN LATERAL (
    SELECT ST_AddBand(
        ST_MakeEmptyRaster(
            LEAST(%(tile)s, %(width)s - c.j * %(tile)s),
            LEAST(%(tile)s, %(height)s - r.i * %(tile)s),
            %(x0)s + c.j * %(tile)s * %(scale_x)s,
            %(y0)s + r.i * %(tile)s * %(scale_y)s,
            %(scale_x)s, %(scale_y)s, 0, 0, 25832),
        1, %(path)s, ARRAY[1], %(nodata)s) AS rast
) AS t
