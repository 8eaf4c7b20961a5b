-- govgate-idp schema v1. Kept portable (SQLite now, PostgreSQL later): INTEGER unix seconds for
-- times, INTEGER 0/1 for flags, TEXT for ids and JSON. Secrets are never stored in clear:
-- passwords are argon2id hashes, codes / refresh tokens / session ids are SHA-256 hashes.

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,            -- citizen | legal_person | staff
    display_name    TEXT NOT NULL,
    id_number       TEXT,                     -- GB 11643 resident identity number (citizens)
    uscc            TEXT,                     -- GB 32100 unified social credit code (legal persons)
    mobile          TEXT,
    email           TEXT,
    real_name_level INTEGER NOT NULL DEFAULT 1,
    roles           TEXT NOT NULL DEFAULT '[]',
    password_hash   TEXT NOT NULL,
    totp_secret     TEXT,
    locked          INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    sid         TEXT NOT NULL UNIQUE,
    user_id     TEXT NOT NULL REFERENCES users(id),
    auth_time   INTEGER NOT NULL,
    acr         TEXT NOT NULL,
    amr         TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    ended       INTEGER NOT NULL DEFAULT 0
);

-- Pending authorization requests (between /authorize and the login/consent forms).
CREATE TABLE auth_requests (
    id          TEXT PRIMARY KEY,
    params      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE auth_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    sid            TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    auth_time      INTEGER NOT NULL,
    acr            TEXT NOT NULL,
    amr            TEXT NOT NULL,
    family_id      TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
);

-- A token family: everything issued from one authorization code (or one client_credentials grant).
CREATE TABLE token_families (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    user_id     TEXT,
    sid         TEXT,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES token_families(id),
    client_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    scope       TEXT NOT NULL,
    auth_time   INTEGER NOT NULL,
    acr         TEXT NOT NULL,
    amr         TEXT NOT NULL,
    sid         TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

-- Access tokens are self-contained JWTs carrying their family id (`fid`): they die with their
-- family (token_families.revoked_at). Individually revoked access tokens (RFC 7009) are listed
-- here until they expire. Nothing is written per issued access token.
CREATE TABLE revoked_access (
    jti         TEXT PRIMARY KEY,
    expires_at  INTEGER NOT NULL
);

-- Single-use jti of private_key_jwt client assertions (RFC 7523 §3 item 7).
CREATE TABLE assertion_jtis (
    jti         TEXT PRIMARY KEY,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE consents (
    user_id     TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    scope       TEXT NOT NULL,
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Brute-force throttling, keyed "user:<id>" or "ip:<addr>".
CREATE TABLE login_throttle (
    key           TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL,
    last_failure  INTEGER NOT NULL,
    next_allowed  INTEGER NOT NULL
);

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    event       TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    actor       TEXT,
    subject     TEXT,
    client_id   TEXT,
    ip          TEXT,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_at ON audit(at);
