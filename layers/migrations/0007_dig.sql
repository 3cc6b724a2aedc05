-- Dig-request coordination (dig_coordination/): organisations, users and
-- tokens, dig requests and their answers, owners' responses, precaution
-- rules, coordination links, damage reports, the notification outbox and the
-- audit log.
--
-- Written only by geoby_admin (the platform services); geoby_read sees none
-- of it except the public view data.planned_works (location, period, work
-- types, contact; never asset data). The audit log is append-only for every
-- role the application uses: geoby_admin may INSERT and SELECT, nothing else.
-- Asset detail disclosed in an answer is a snapshot kept in schema
-- restricted (dig_conflicts), which geoby_read cannot read at all.

CREATE TABLE IF NOT EXISTS geoby.organisations (
    id             bigserial PRIMARY KEY,
    name           text NOT NULL UNIQUE CHECK (name <> ''),
    email          text,
    webhook_url    text,
    -- The HMAC key that signs this organisation's webhooks. It must be
    -- readable to sign with, so it is a shared secret, not a password hash.
    webhook_secret text,
    answers_manually boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS geoby.users (
    id          bigserial PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES geoby.organisations (id),
    name        text NOT NULL CHECK (name <> ''),
    email       text,
    role        text NOT NULL CHECK (role IN ('contractor', 'utility', 'planner', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz,
    UNIQUE (org_id, name)
);

-- Tokens are 256-bit random strings; only their SHA-256 is stored.
CREATE TABLE IF NOT EXISTS geoby.tokens (
    id           bigserial PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES geoby.users (id),
    token_sha256 bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
    prefix       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

CREATE SEQUENCE IF NOT EXISTS geoby.dig_request_number;
CREATE TABLE IF NOT EXISTS geoby.dig_requests (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    number         bigint NOT NULL UNIQUE DEFAULT nextval('geoby.dig_request_number'),
    reference      text NOT NULL UNIQUE,
    org_id         bigint NOT NULL REFERENCES geoby.organisations (id),
    user_id        bigint NOT NULL REFERENCES geoby.users (id),
    kind           text NOT NULL CHECK (kind IN ('normal', 'planning', 'emergency')),
    status         text NOT NULL CHECK (status IN ('pending', 'answered', 'cancelled')),
    geom           geometry(Polygon, 25832) NOT NULL,
    input_geom     geometry(Geometry, 25832) NOT NULL,
    line_width_m   double precision,
    start_date     date NOT NULL,
    end_date       date NOT NULL CHECK (end_date >= start_date),
    work_types     text[] NOT NULL CHECK (cardinality(work_types) > 0),
    depth_m        double precision,
    description    text NOT NULL DEFAULT '',
    contact        jsonb NOT NULL,
    buffer_m       double precision NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    answered_at    timestamptz,
    valid_until    timestamptz NOT NULL,
    cancelled_at   timestamptz,
    renewed_from   uuid REFERENCES geoby.dig_requests (id)
);
CREATE INDEX IF NOT EXISTS dig_requests_geom_idx ON geoby.dig_requests USING gist (geom);
CREATE INDEX IF NOT EXISTS dig_requests_org_idx ON geoby.dig_requests (org_id, created_at DESC);

-- What the answer disclosed: one row per asset within the area plus buffer,
-- geometry clipped to it, as it was when the request was answered.
CREATE TABLE IF NOT EXISTS restricted.dig_conflicts (
    request_id       uuid NOT NULL REFERENCES geoby.dig_requests (id) ON DELETE CASCADE,
    layer            text NOT NULL,
    asset_fid        bigint NOT NULL,
    asset_id         text NOT NULL,
    owner            text NOT NULL,
    utility_type     text NOT NULL,
    subtype          text,
    asset_kind       text,
    hazard_class     text,
    status           text,
    depth_m          double precision,
    depth_reference  text,
    accuracy_class   text,
    diameter_mm      double precision,
    voltage_kv       double precision,
    pressure_bar     double precision,
    distance_m       double precision NOT NULL,
    required_actions jsonb NOT NULL,
    blocks           boolean NOT NULL,
    geom             geometry(Geometry, 25832) NOT NULL,
    PRIMARY KEY (request_id, layer, asset_fid)
);
CREATE INDEX IF NOT EXISTS dig_conflicts_owner_idx ON restricted.dig_conflicts (request_id, owner);
GRANT SELECT, INSERT, DELETE ON restricted.dig_conflicts TO geoby_admin;

-- One row per owner concerned by a request (its interest area is touched or
-- its assets lie within the area plus buffer).
CREATE TABLE IF NOT EXISTS geoby.dig_owner_responses (
    request_id        uuid NOT NULL REFERENCES geoby.dig_requests (id) ON DELETE CASCADE,
    owner             text NOT NULL,
    mode              text NOT NULL CHECK (mode IN ('automatic', 'manual')),
    status            text NOT NULL CHECK (status IN ('pending', 'answered')),
    asset_count       integer NOT NULL DEFAULT 0,
    notified_at       timestamptz,
    due_at            timestamptz,
    answered_at       timestamptz,
    reminded_at       timestamptz,
    remarks           text NOT NULL DEFAULT '',
    marking_required  boolean NOT NULL DEFAULT false,
    marking_booked_for timestamptz,
    marking_done_at   timestamptz,
    precautions_agreed_at timestamptz,
    PRIMARY KEY (request_id, owner)
);
CREATE INDEX IF NOT EXISTS dig_owner_responses_due_idx ON geoby.dig_owner_responses (due_at)
    WHERE status = 'pending';

-- Precaution rules: (utility type, subtype, hazard class, work type,
-- distance band) -> required action. owner NULL: a default for everyone;
-- an owner's own rules add to the defaults for its assets.
CREATE TABLE IF NOT EXISTS geoby.precaution_rules (
    id             bigserial PRIMARY KEY,
    owner          text,
    utility_type   text,
    subtype        text,
    hazard_class   text CHECK (hazard_class IN ('not_dangerous', 'dangerous', 'very_dangerous')),
    work_types     text[],
    min_distance_m double precision NOT NULL DEFAULT 0 CHECK (min_distance_m >= 0),
    max_distance_m double precision NOT NULL CHECK (max_distance_m > min_distance_m),
    action         text NOT NULL CHECK (action IN
                       ('on_site_marking', 'hand_dig', 'contact_owner', 'supervision', 'stop')),
    text           text NOT NULL CHECK (text <> ''),
    notice_working_days integer CHECK (notice_working_days >= 0),
    blocks         boolean NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS geoby.dig_links (
    request_a  uuid NOT NULL REFERENCES geoby.dig_requests (id) ON DELETE CASCADE,
    request_b  uuid NOT NULL REFERENCES geoby.dig_requests (id) ON DELETE CASCADE,
    distance_m double precision NOT NULL,
    overlap_start date NOT NULL,
    overlap_end   date NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_a, request_b),
    CHECK (request_a < request_b)
);
CREATE INDEX IF NOT EXISTS dig_links_b_idx ON geoby.dig_links (request_b);

CREATE TABLE IF NOT EXISTS geoby.damage_reports (
    id           bigserial PRIMARY KEY,
    request_id   uuid NOT NULL REFERENCES geoby.dig_requests (id),
    user_id      bigint NOT NULL REFERENCES geoby.users (id),
    owner        text,
    utility_type text,
    occurred_at  timestamptz NOT NULL,
    description  text NOT NULL CHECK (description <> ''),
    geom         geometry(Point, 25832),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox: written in the transaction that decides to notify,
-- delivered by the worker (dig_coordination/notify.py). The idempotency key
-- makes a second enqueue of the same notice a no-op; receivers get it as the
-- delivery id so a redelivery after a crash can be recognised.
CREATE TABLE IF NOT EXISTS geoby.outbox (
    id              bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    channel         text NOT NULL CHECK (channel IN ('webhook', 'email')),
    target          text NOT NULL,
    org_id          bigint REFERENCES geoby.organisations (id),
    event           text NOT NULL,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    last_error      text
);
CREATE INDEX IF NOT EXISTS outbox_due_idx ON geoby.outbox (next_attempt_at) WHERE status = 'pending';

CREATE TABLE IF NOT EXISTS geoby.outbox_attempts (
    id          bigserial PRIMARY KEY,
    outbox_id   bigint NOT NULL REFERENCES geoby.outbox (id),
    attempted_at timestamptz NOT NULL DEFAULT now(),
    ok          boolean NOT NULL,
    status_code integer,
    error       text,
    duration_ms double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_attempts_outbox_idx ON geoby.outbox_attempts (outbox_id);

CREATE TABLE IF NOT EXISTS geoby.audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    user_id     bigint REFERENCES geoby.users (id),
    org_id      bigint REFERENCES geoby.organisations (id),
    action      text NOT NULL,
    object_type text NOT NULL,
    object_id   text,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_log_at_idx ON geoby.audit_log (at DESC);
CREATE INDEX IF NOT EXISTS audit_log_object_idx ON geoby.audit_log (object_type, object_id);

GRANT SELECT, INSERT, UPDATE ON geoby.organisations, geoby.users, geoby.tokens,
    geoby.dig_requests, geoby.dig_owner_responses, geoby.outbox TO geoby_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON geoby.precaution_rules TO geoby_admin;
GRANT SELECT, INSERT ON geoby.dig_links, geoby.damage_reports, geoby.outbox_attempts,
    geoby.audit_log TO geoby_admin;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA geoby TO geoby_admin;
REVOKE UPDATE, DELETE, TRUNCATE ON geoby.audit_log FROM PUBLIC;

-- The public "planned works" layer (EU Gigabit Infrastructure Act art. 6):
-- where and when digging is planned, by whom and how to reach them. No asset
-- data, no personal contact beyond what the contractor gave as its contact.
CREATE OR REPLACE VIEW data.planned_works AS
SELECT r.number AS fid,
       r.reference,
       r.kind,
       r.start_date,
       r.end_date,
       array_to_string(r.work_types, ', ') AS work_types,
       o.name AS organisation,
       r.contact ->> 'name' AS contact_name,
       r.contact ->> 'phone' AS contact_phone,
       r.geom
  FROM geoby.dig_requests r
  JOIN geoby.organisations o ON o.id = r.org_id
 WHERE r.status <> 'cancelled'
   AND r.end_date >= current_date;
GRANT SELECT ON data.planned_works TO geoby_read, geoby_admin;

INSERT INTO geoby.layers (id, title, description, theme, kind, table_schema, table_name,
                          geometry_type, access, licence, keywords)
VALUES ('planned_works', 'Planned works',
        'Digs filed with geoby that are not cancelled and not yet over: where, when, what '
        'kind of work and whom to contact, so works in the same street can be coordinated '
        '(EU Gigabit Infrastructure Act art. 6). No data on buried assets.',
        'utilities', 'vector', 'data', 'planned_works', 'Polygon', 'open', 'CC-BY-4.0',
        ARRAY['dig', 'planned works', 'coordination'])
ON CONFLICT (id) DO NOTHING;
