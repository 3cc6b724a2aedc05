-- Layers in the catalog with their extent as a box in the storage CRS.
SELECT id, title, description, theme, kind, table_schema, table_name, raster_path,
       geometry_type, storage_srid, vertical_datum, owner_org, licence, attribution,
       access, keywords, row_count, properties, created_at, updated_at,
       CASE WHEN extent IS NULL THEN NULL
            ELSE ARRAY[ST_XMin(extent), ST_YMin(extent), ST_XMax(extent), ST_YMax(extent)]
       END AS bbox
FROM geoby.layers
WHERE (%(theme)s::text IS NULL OR theme = %(theme)s)
  AND (%(access)s::text IS NULL OR access = %(access)s)
  AND (%(ids)s::text[] IS NULL OR id = ANY (%(ids)s::text[]))
ORDER BY theme, id;
