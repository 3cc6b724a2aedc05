-- The layer catalog: one row per dataset, and the provenance of every load.

CREATE TABLE IF NOT EXISTS geoby.layers (
    id             text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_]{0,62}$'),
    title          text NOT NULL CHECK (title <> ''),
    description    text NOT NULL DEFAULT '',
    theme          text NOT NULL CHECK (theme IN
                       ('terrain', 'climate', 'water', 'energy', 'waste', 'utilities', 'analysis')),
    kind           text NOT NULL CHECK (kind IN ('vector', 'raster', 'table')),
    table_schema   text,
    table_name     text,
    raster_path    text,
    geometry_type  text,
    storage_srid   integer NOT NULL DEFAULT 25832,
    vertical_datum text,
    extent         geometry(Polygon, 25832),
    owner_org      text,
    licence        text NOT NULL DEFAULT 'unknown',
    attribution    text,
    access         text NOT NULL DEFAULT 'open' CHECK (access IN ('open', 'restricted')),
    keywords       text[] NOT NULL DEFAULT '{}',
    row_count      bigint CHECK (row_count >= 0),
    properties     jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT layers_raster_has_path CHECK ((kind = 'raster') = (raster_path IS NOT NULL)),
    CONSTRAINT layers_table_has_name CHECK (kind = 'raster' OR table_name IS NOT NULL),
    CONSTRAINT layers_restricted_schema CHECK (
        kind = 'raster' OR (access = 'restricted') = (table_schema = 'restricted'))
);

CREATE TABLE IF NOT EXISTS geoby.layer_sources (
    id            bigserial PRIMARY KEY,
    layer_id      text NOT NULL REFERENCES geoby.layers (id) ON DELETE CASCADE,
    source_file   text NOT NULL,
    checksum      text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    mode          text NOT NULL CHECK (mode IN ('insert', 'upsert', 'replace')),
    row_count     bigint NOT NULL CHECK (row_count >= 0),
    rows_repaired bigint NOT NULL DEFAULT 0,
    rows_rejected bigint NOT NULL DEFAULT 0,
    loaded_by     text NOT NULL DEFAULT current_user,
    loaded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (layer_id, checksum)
);
CREATE INDEX IF NOT EXISTS layer_sources_checksum_idx ON geoby.layer_sources (checksum);

GRANT SELECT ON geoby.layers, geoby.layer_sources TO geoby_read;
GRANT SELECT, INSERT, UPDATE, DELETE ON geoby.layers, geoby.layer_sources
    TO geoby_ingest, geoby_admin;
GRANT USAGE ON SEQUENCE geoby.layer_sources_id_seq TO geoby_ingest, geoby_admin;
