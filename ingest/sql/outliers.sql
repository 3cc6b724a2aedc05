-- Staged features far from all the others: likely a wrong coordinate (a point
-- at a grid's false origin, a swapped axis). Distance of each centroid from the
-- median centre, flagged beyond max(50 km, 10 x the 90th percentile distance).
WITH c AS (
    SELECT _record, ST_PointOnSurface(geom) AS p FROM {stage} WHERE geom IS NOT NULL
), centre AS (
    SELECT ST_SetSRID(ST_MakePoint(
               percentile_cont(0.5) WITHIN GROUP (ORDER BY ST_X(p)),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY ST_Y(p))), 25832) AS m
    FROM c
), d AS (
    SELECT _record, ST_Distance(p, m) AS dist, ST_X(p) AS x, ST_Y(p) AS y FROM c, centre
), limit_ AS (
    SELECT greatest(50000, 10 * percentile_cont(0.9) WITHIN GROUP (ORDER BY dist)) AS lim FROM d
)
SELECT _record, round(dist)::bigint, x, y
FROM d, limit_
WHERE dist > lim
ORDER BY dist DESC
LIMIT 20;
