-- Records refused by a load run with --skip-invalid: kept, never lost.
-- Readable by the loaders and admins only (a reject may be buried infrastructure).

CREATE TABLE IF NOT EXISTS geoby.load_rejects (
    id          bigserial PRIMARY KEY,
    layer_id    text NOT NULL,
    source_file text NOT NULL,
    checksum    text NOT NULL,
    record      text NOT NULL,
    reason      text NOT NULL,
    field       text,
    rejected_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS load_rejects_layer_idx ON geoby.load_rejects (layer_id, checksum);

GRANT SELECT, INSERT, DELETE ON geoby.load_rejects TO geoby_ingest;
GRANT SELECT ON geoby.load_rejects TO geoby_admin;
GRANT USAGE ON SEQUENCE geoby.load_rejects_id_seq TO geoby_ingest;
