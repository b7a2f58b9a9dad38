-- The first schema of a vexil SQLite database.
--
-- Timestamps are RFC 3339 text in UTC with exactly nine fractional digits
-- (`2026-01-15T10:00:00.000000000Z`), so comparing them as text compares them as times.
-- JSON is stored as text. Versions and revisions count from 1; revision 0 is the empty store.

-- The global revision: exactly one row.
CREATE TABLE meta (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL CHECK (revision >= 0)
) STRICT;

INSERT INTO meta (id, revision) VALUES (1, 0);

-- Environments, in the order they were created.
CREATE TABLE environments (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL UNIQUE
) STRICT;

-- Every version of every flag, append-only. A NULL definition records a deletion.
CREATE TABLE flag_versions (
    key        TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1),
    definition TEXT,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    revision   INTEGER NOT NULL CHECK (revision >= 1),
    PRIMARY KEY (key, version)
) STRICT;

-- The live flags. Each row is a copy of its latest, non-deleted version in `flag_versions`,
-- which the foreign key makes sure exists.
CREATE TABLE flags (
    key        TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    definition TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    FOREIGN KEY (key, version) REFERENCES flag_versions (key, version)
) STRICT;

-- The same two tables for segments.
CREATE TABLE segment_versions (
    key        TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1),
    definition TEXT,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    revision   INTEGER NOT NULL CHECK (revision >= 1),
    PRIMARY KEY (key, version)
) STRICT;

CREATE TABLE segments (
    key        TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    definition TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    FOREIGN KEY (key, version) REFERENCES segment_versions (key, version)
) STRICT;

-- API keys, by a hash of their secret; revoked keys stay.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('admin', 'server', 'client')),
    environment TEXT,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
) STRICT;

-- The audit log: exactly one event per commit, never rewritten.
CREATE TABLE audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    revision INTEGER NOT NULL UNIQUE CHECK (revision >= 1),
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    before   TEXT,
    after    TEXT,
    comment  TEXT
) STRICT;

-- For `audit(flag = …)` and `audit(since = …)`, newest first.
CREATE INDEX audit_by_target ON audit (target, id);
CREATE INDEX audit_by_at ON audit (at);
