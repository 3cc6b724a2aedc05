-- Both ends of every sewer pipe loaded from one source, in flow direction:
-- the start of the first part is upstream, the end of the last part downstream.
SELECT pipe_id, _record, 'upstream' AS side, upstream_invert_m AS invert,
       ST_X(ST_StartPoint(ST_GeometryN(geom, 1))) AS x,
       ST_Y(ST_StartPoint(ST_GeometryN(geom, 1))) AS y
FROM data.water_sewer_pipes
WHERE _source = %(source)s AND upstream_invert_m IS NOT NULL
UNION ALL
SELECT pipe_id, _record, 'downstream', downstream_invert_m,
       ST_X(ST_EndPoint(ST_GeometryN(geom, ST_NumGeometries(geom)))),
       ST_Y(ST_EndPoint(ST_GeometryN(geom, ST_NumGeometries(geom))))
FROM data.water_sewer_pipes
WHERE _source = %(source)s AND downstream_invert_m IS NOT NULL;
