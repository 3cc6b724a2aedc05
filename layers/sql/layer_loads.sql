-- The last successful load of every layer in the catalog (for /status and backups):
-- how many sources it has, when the newest was loaded, and what that load rejected.
-- Layers never loaded from a file (analysis results) have no load time.
SELECT l.id, l.title, l.theme, l.kind, l.access, l.row_count, l.updated_at,
       s.sources, s.last_loaded_at, newest.row_count AS last_load_rows,
       newest.rows_rejected AS last_load_rejected, newest.mode AS last_load_mode
FROM geoby.layers AS l
LEFT JOIN LATERAL (
    SELECT count(*) AS sources, max(loaded_at) AS last_loaded_at
    FROM geoby.layer_sources WHERE layer_id = l.id
) AS s ON true
LEFT JOIN LATERAL (
    SELECT row_count, rows_rejected, mode
    FROM geoby.layer_sources WHERE layer_id = l.id
    ORDER BY loaded_at DESC, id DESC LIMIT 1
) AS newest ON true
ORDER BY l.id
