-- Roles, schemas and PostGIS.
--
-- Three login roles, each with only what it needs:
--   geoby_read    the public API: SELECT on open data (schema data) and the catalog.
--   geoby_ingest  the loaders: owns the data tables it creates, writes the catalog.
--   geoby_admin   platform services: users, tokens, dig requests, audit; reads
--                 restricted data (buried infrastructure) for entitled users.
-- Restricted data lives in schema restricted, which geoby_read cannot read at
-- all: the public API cannot leak buried infrastructure even through a bug in
-- its own access checks. Passwords are set by the migration runner, never here.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['geoby_read', 'geoby_ingest', 'geoby_admin'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE', r);
        END IF;
    END LOOP;
END
$$;

CREATE EXTENSION IF NOT EXISTS postgis;

DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO geoby_read, geoby_ingest, geoby_admin',
                   current_database());
END
$$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- Platform tables (catalog, users, dig requests, audit), owned by the migrating role.
CREATE SCHEMA IF NOT EXISTS geoby;
GRANT USAGE ON SCHEMA geoby TO geoby_read, geoby_ingest, geoby_admin;

-- Open data layers, created by the loaders.
CREATE SCHEMA IF NOT EXISTS data AUTHORIZATION geoby_ingest;
GRANT USAGE ON SCHEMA data TO geoby_read, geoby_admin;
ALTER DEFAULT PRIVILEGES FOR ROLE geoby_ingest IN SCHEMA data
    GRANT SELECT ON TABLES TO geoby_read, geoby_admin;

-- Restricted data layers (buried infrastructure): never readable by geoby_read.
CREATE SCHEMA IF NOT EXISTS restricted AUTHORIZATION geoby_ingest;
REVOKE ALL ON SCHEMA restricted FROM PUBLIC;
GRANT USAGE ON SCHEMA restricted TO geoby_admin;
ALTER DEFAULT PRIVILEGES FOR ROLE geoby_ingest IN SCHEMA restricted
    GRANT SELECT ON TABLES TO geoby_admin;
