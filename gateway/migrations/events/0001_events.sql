-- Attack events and bans (gateway/src/events). Plain SQL types only: a PostgreSQL backend
-- follows (there `id` becomes BIGSERIAL).
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    incident_id TEXT NOT NULL,
    ts_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    action TEXT NOT NULL,
    app TEXT NOT NULL,
    client_ip TEXT,
    -- the client address as 32 hex digits (IPv4 mapped into IPv6): CIDR search is a range
    ip_key TEXT,
    user_name TEXT,
    method TEXT NOT NULL,
    uri TEXT NOT NULL,
    anomaly_score BIGINT NOT NULL,
    status INTEGER,
    -- '|942100|949110|' and '|attack-sqli|paranoia-level/1|': exact matches with LIKE
    rule_ids TEXT NOT NULL,
    tags TEXT NOT NULL,
    messages TEXT NOT NULL,
    false_positive INTEGER NOT NULL DEFAULT 0,
    -- the whole event as JSON (schema in docs/attack-events.md)
    body TEXT NOT NULL
);
CREATE INDEX events_ts ON events (ts_ms);
CREATE INDEX events_incident ON events (incident_id);
CREATE INDEX events_ip ON events (ip_key);

CREATE TABLE event_rules (
    event_id BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    rule_id BIGINT NOT NULL,
    message TEXT NOT NULL,
    -- CRS's anomaly-evaluation rules (949110 …), left out of the top-rules chart
    evaluation INTEGER NOT NULL
);
CREATE INDEX event_rules_event ON event_rules (event_id);
CREATE INDEX event_rules_rule ON event_rules (rule_id);

CREATE TABLE bans (
    network TEXT PRIMARY KEY,
    lo TEXT NOT NULL,
    hi TEXT NOT NULL,
    expires_ms BIGINT,
    reason TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
