-- Live bin-sensor readings (MQTT and HTTP): what was refused, and the alerts.
--
-- Accepted readings go to data.waste_readings (the ingest role writes them,
-- idempotent on (bin_id, time)); a refused message is kept here with its
-- reason, so nothing sent is lost and the counts are on /status.

CREATE TABLE IF NOT EXISTS geoby.waste_rejects (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    channel     text NOT NULL CHECK (channel IN ('mqtt', 'http')),
    topic       text,
    payload     text NOT NULL,           -- the first 2,000 characters
    reason      text NOT NULL,
    field       text
);
CREATE INDEX IF NOT EXISTS waste_rejects_received_idx ON geoby.waste_rejects (received_at);

CREATE TABLE IF NOT EXISTS geoby.waste_alerts (
    id          bigserial PRIMARY KEY,
    bin_id      text NOT NULL,
    kind        text NOT NULL CHECK (kind IN
                    ('overflow', 'fire', 'temperature', 'tilt', 'low_battery', 'dead_sensor')),
    time        timestamptz NOT NULL,    -- of the reading that raised it (dead: the last one)
    value       double precision,
    message     text NOT NULL,
    raised_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
-- One open alert per bin and kind; a new reading that clears it resolves it.
CREATE UNIQUE INDEX IF NOT EXISTS waste_alerts_open_idx ON geoby.waste_alerts (bin_id, kind)
    WHERE resolved_at IS NULL;
CREATE INDEX IF NOT EXISTS waste_alerts_time_idx ON geoby.waste_alerts (raised_at DESC);

GRANT SELECT, INSERT, UPDATE ON geoby.waste_alerts TO geoby_ingest, geoby_admin;
GRANT SELECT ON geoby.waste_alerts TO geoby_read;
GRANT SELECT, INSERT ON geoby.waste_rejects TO geoby_ingest, geoby_admin;
GRANT USAGE ON SEQUENCE geoby.waste_alerts_id_seq, geoby.waste_rejects_id_seq
    TO geoby_ingest, geoby_admin;
