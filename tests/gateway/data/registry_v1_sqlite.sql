-- The registry as the gateway made it before the control plane moved to Alembic (SQLite,
-- the registry's own schema version 1), with rows a migration must keep. The keys' hashes are
-- the SHA-256 of sk_LegacyServerKeyOfShop0000000000000000000000 (shop, server),
-- pk_LegacySiteKeyOfShop000000000000000000000000 (shop, site) and
-- sk_LegacyRevokedKeyOfCafe000000000000000000000 (cafe, revoked).
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY,
    secret BLOB NOT NULL,
    channels TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    project TEXT NOT NULL REFERENCES projects(id),
    kind TEXT NOT NULL CHECK (kind IN ('site', 'server')),
    channels TEXT NOT NULL,
    origins TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
CREATE TABLE IF NOT EXISTS email_secrets (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL REFERENCES projects(id),
    secret BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
INSERT INTO projects VALUES
    ('shop', X'000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', '["app", "email", "kiosk", "web"]', 1795435200000),
    ('cafe', X'202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f', '["app", "email", "web"]', 1795435200001);
INSERT INTO keys VALUES
    ('sk_LegacySe', X'e697cc891a318793610be29aa1057d282506d5edf4199e270fe60b31bbc97731', 'shop', 'server', '["app", "email", "kiosk", "web"]', '[]', 1795435200002, NULL),
    ('pk_LegacySi', X'c40d0c7829aa382066d234050e33cd62b75f18ada089d813e89a7dbca72450ee', 'shop', 'site', '["web"]', '["https://shop.example.com"]', 1795435200002, NULL),
    ('sk_LegacyRe', X'95b64e378f41771aa861a8490f007ed1fe0de8c77c18a9c3f0a3395fb10a4861', 'cafe', 'server', '["app", "email", "web"]', '[]', 1795435200002, 1795435300000);
INSERT INTO email_secrets VALUES
    ('es_0a0b0c0d', 'shop', X'404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f', 1795435200003, NULL),
    ('es_deadbeef', 'shop', X'606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f', 1795435200004, 1795435300001);
PRAGMA user_version = 1;
