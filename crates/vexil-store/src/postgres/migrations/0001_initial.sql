-- The first schema of a vexil PostgreSQL database: the same tables as SQLite's.
--
-- Timestamps are `timestamptz` (microseconds). JSON is `json`, which keeps the document's
-- text as written (key order included). Keys and names sort bytewise (`COLLATE "C"`), as they
-- do in SQLite and in Rust, whatever the database's collation. Versions and revisions count
-- from 1; revision 0 is the empty store.

-- The global revision: exactly one row. Every commit locks it first, which serialises
-- commits across every instance sharing the database.
CREATE TABLE meta (
    id       smallint PRIMARY KEY CHECK (id = 1),
    revision bigint NOT NULL CHECK (revision >= 0)
);

INSERT INTO meta (id, revision) VALUES (1, 0);

-- Environments, in the order they were created.
CREATE TABLE environments (
    name     text COLLATE "C" PRIMARY KEY,
    position bigint NOT NULL UNIQUE
);

-- Every version of every flag, append-only. A NULL definition records a deletion.
CREATE TABLE flag_versions (
    key        text COLLATE "C" NOT NULL,
    version    bigint NOT NULL CHECK (version >= 1),
    definition json,
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL,
    revision   bigint NOT NULL CHECK (revision >= 1),
    PRIMARY KEY (key, version)
);

-- The live flags. Each row is a copy of its latest, non-deleted version in `flag_versions`,
-- which the foreign key makes sure exists.
CREATE TABLE flags (
    key        text COLLATE "C" PRIMARY KEY,
    version    bigint NOT NULL,
    definition json NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL,
    FOREIGN KEY (key, version) REFERENCES flag_versions (key, version)
);

-- The same two tables for segments.
CREATE TABLE segment_versions (
    key        text COLLATE "C" NOT NULL,
    version    bigint NOT NULL CHECK (version >= 1),
    definition json,
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL,
    revision   bigint NOT NULL CHECK (revision >= 1),
    PRIMARY KEY (key, version)
);

CREATE TABLE segments (
    key        text COLLATE "C" PRIMARY KEY,
    version    bigint NOT NULL,
    definition json NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL,
    FOREIGN KEY (key, version) REFERENCES segment_versions (key, version)
);

-- API keys, by a hash of their secret; revoked keys stay. `position` keeps creation order
-- (commits are serialised, so the sequence follows them).
CREATE TABLE api_keys (
    position    bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id          text COLLATE "C" PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('admin', 'server', 'client')),
    environment text,
    secret_hash text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

-- The audit log: exactly one event per commit, never rewritten.
CREATE TABLE audit (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    revision bigint NOT NULL UNIQUE CHECK (revision >= 1),
    at       timestamptz NOT NULL,
    actor    text NOT NULL,
    action   text NOT NULL,
    target   text NOT NULL,
    before   json,
    after    json,
    comment  text
);

-- For `audit(flag = …)` and `audit(since = …)`, newest first.
CREATE INDEX audit_by_target ON audit (target, id);
CREATE INDEX audit_by_at ON audit (at);
