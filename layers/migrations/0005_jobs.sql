-- Jobs of the OGC API - Processes (api/ogc/jobs.py, pygeoapi's process manager).
--
-- One row per execution, synchronous or asynchronous. A small JSON result is
-- kept in `result`; any other result is a file under the data directory's
-- jobs folder named by `location`. A dismissed job keeps its row (status
-- 'dismissed', result and file removed) as a record of what was run; the API
-- no longer shows it.
--
-- Written by geoby_admin only: the API's process manager uses the admin pool,
-- so geoby_read stays read-only (a bug in the public read path can never
-- write anything). The processes themselves choose their own role for data.

CREATE TABLE IF NOT EXISTS geoby.jobs (
    identifier text PRIMARY KEY CHECK (identifier ~ '^[0-9a-f-]{1,64}$'),
    process_id text NOT NULL CHECK (process_id <> ''),
    job_type   text NOT NULL DEFAULT 'process',
    status     text NOT NULL CHECK (status IN
                   ('accepted', 'running', 'successful', 'failed', 'dismissed')),
    message    text NOT NULL DEFAULT '',
    progress   integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    created    timestamptz NOT NULL DEFAULT now(),
    started    timestamptz,
    finished   timestamptz,
    updated    timestamptz NOT NULL DEFAULT now(),
    location   text,
    mimetype   text,
    result     jsonb,
    inputs     jsonb,
    error      text,
    CONSTRAINT jobs_one_result CHECK (result IS NULL OR location IS NULL)
);

-- Listing (newest first) and the restart recovery (unfinished jobs by age).
CREATE INDEX IF NOT EXISTS jobs_created_idx ON geoby.jobs (created DESC);
CREATE INDEX IF NOT EXISTS jobs_unfinished_idx ON geoby.jobs (updated)
    WHERE status IN ('accepted', 'running');

GRANT SELECT, INSERT, UPDATE, DELETE ON geoby.jobs TO geoby_admin;
