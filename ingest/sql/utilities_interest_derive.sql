-- Derived interest areas of one owner (ingest/utilities/interest.py): each of the
-- owner's lines and points buffered by the width its position accuracy class calls
-- for, each area by 1 m, dissolved per utility type into one multipolygon. {assets}
-- is the union of the owner's assets with their buffer width (buffer_m).
INSERT INTO {areas} (area_id, owner, utility_type, origin, buffer_rule, asset_count, area_m2,
                     attributes, geom, _source, _record)
SELECT 'derived:' || utility_type, %(owner)s, utility_type, 'derived', %(rule)s, n,
       ST_Area(u), jsonb_build_object('sources', sources), ST_Multi(u),
       'derived from utilities assets', 'derived:' || utility_type
FROM (
    SELECT utility_type, count(*) AS n, array_agg(DISTINCT _source) AS sources,
           ST_CollectionExtract(ST_UnaryUnion(ST_Collect(
               ST_Buffer(ST_Force2D(geom), buffer_m, 'quad_segs=4'))), 3) AS u
    FROM ({assets}) AS a
    WHERE geom IS NOT NULL
    GROUP BY utility_type
) AS s
WHERE NOT ST_IsEmpty(u);
