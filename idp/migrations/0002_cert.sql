-- Certificate login hook: a user may be bound to the SHA-256 fingerprint of a client
-- certificate that the gateway verified (mTLS).
ALTER TABLE users ADD COLUMN cert_fingerprint TEXT;
CREATE UNIQUE INDEX users_cert_fingerprint ON users(cert_fingerprint);

-- TOTP replay protection (RFC 6238 §5.2): the last accepted time step per user.
ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
