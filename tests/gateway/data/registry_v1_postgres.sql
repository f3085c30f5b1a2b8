-- The registry as the gateway made it before the control plane moved to Alembic (PostgreSQL,
-- the registry's own schema version 1), with rows a migration must keep. The keys' hashes are
-- the SHA-256 of sk_LegacyServerKeyOfShop0000000000000000000000 (shop, server),
-- pk_LegacySiteKeyOfShop000000000000000000000000 (shop, site) and
-- sk_LegacyRevokedKeyOfCafe000000000000000000000 (cafe, revoked).
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY,
    secret BYTEA NOT NULL,
    channels TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    hash BYTEA NOT NULL UNIQUE,
    project TEXT NOT NULL REFERENCES projects(id),
    kind TEXT NOT NULL CHECK (kind IN ('site', 'server')),
    channels TEXT NOT NULL,
    origins TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);
CREATE TABLE IF NOT EXISTS email_secrets (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL REFERENCES projects(id),
    secret BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);
CREATE TABLE IF NOT EXISTS rate_usage (
    what TEXT NOT NULL,
    name TEXT NOT NULL,
    second BIGINT NOT NULL,
    replica TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (what, name, second, replica)
);
CREATE TABLE IF NOT EXISTS voxloop_schema (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
INSERT INTO voxloop_schema VALUES ('registry', 1);
INSERT INTO projects VALUES
    ('shop', '\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'::bytea, '["app", "email", "kiosk", "web"]', 1795435200000),
    ('cafe', '\x202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f'::bytea, '["app", "email", "web"]', 1795435200001);
INSERT INTO keys VALUES
    ('sk_LegacySe', '\xe697cc891a318793610be29aa1057d282506d5edf4199e270fe60b31bbc97731'::bytea, 'shop', 'server', '["app", "email", "kiosk", "web"]', '[]', 1795435200002, NULL),
    ('pk_LegacySi', '\xc40d0c7829aa382066d234050e33cd62b75f18ada089d813e89a7dbca72450ee'::bytea, 'shop', 'site', '["web"]', '["https://shop.example.com"]', 1795435200002, NULL),
    ('sk_LegacyRe', '\x95b64e378f41771aa861a8490f007ed1fe0de8c77c18a9c3f0a3395fb10a4861'::bytea, 'cafe', 'server', '["app", "email", "web"]', '[]', 1795435200002, 1795435300000);
INSERT INTO email_secrets VALUES
    ('es_0a0b0c0d', 'shop', '\x404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f'::bytea, 1795435200003, NULL),
    ('es_deadbeef', 'shop', '\x606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f'::bytea, 1795435200004, 1795435300001);
