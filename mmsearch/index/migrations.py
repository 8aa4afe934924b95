"""The SQLite catalog's schema as numbered migrations (PostgreSQL's twin: `catalog_pg.PG_MIGRATIONS`)."""

from __future__ import annotations

# Each entry is applied once, in order, and recorded in schema_migrations; never edit a released one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        raw_path BLOB UNIQUE NOT NULL,
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        duration REAL,
        has_audio INTEGER NOT NULL DEFAULT 0,
        indexed_at TEXT NOT NULL
    );
    CREATE INDEX files_sha256 ON files (sha256);
    CREATE TABLE segments (
        id INTEGER PRIMARY KEY,
        file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        start REAL,
        "end" REAL,
        text TEXT
    );
    CREATE INDEX segments_file ON segments (file_id);
    """,
    # 2: shots found by shot boundary detection, one row per shot of a video: [start, end) between cuts.
    """
    CREATE TABLE shots (
        file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        start REAL NOT NULL,
        "end" REAL NOT NULL,
        PRIMARY KEY (file_id, start)
    );
    """,
    # 3: which ASR transcribed a file's audio (NULL: not transcribed), so a later run with ASR can add speech.
    """
    ALTER TABLE files ADD COLUMN asr TEXT;
    """,
    # 4: vectors of the extra spaces (sentence text, audio), one row per (space, segment); the CLIP vectors stay in
    # the vector store. Which model built each space is in the manifest (`space.NAME.model`, `space.NAME.dim`).
    """
    CREATE TABLE space_vectors (
        space TEXT NOT NULL,
        segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
        vector BLOB NOT NULL,
        PRIMARY KEY (space, segment_id)
    );
    """,
    # 5: files that failed to decode (crash, timeout, unreadable), with their content hash: not retried until
    # their content changes or `index --retry-failed`.
    """
    CREATE TABLE failed_files (
        raw_path BLOB PRIMARY KEY,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        reason TEXT NOT NULL,
        failed_at TEXT NOT NULL
    );
    """,
    # 6: PostgreSQL's claims table (work shared between several writers, `catalog_pg.py`); one SQLite writer holds
    # the directory lock and needs none. Kept as a number so both catalogs count their versions alike.
    """
    SELECT 1;
    """,
    # 7: what was heard where: a speech segment's stereo channel (NULL: the mix) and language, a subtitle cue's
    # language; the language of each file's speech (the most spoken, or --language).
    """
    ALTER TABLE segments ADD COLUMN channel INTEGER;
    ALTER TABLE segments ADD COLUMN language TEXT;
    ALTER TABLE files ADD COLUMN language TEXT;
    """,
    # 8: people (see people.py): identities found by clustering face tracks, and each face track's person, its
    # largest face's width and that face's aligned crop (JPEG). The tracks' descriptors are the `face` space's.
    """
    CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, first_seen TEXT NOT NULL);
    CREATE TABLE face_tracks (
        segment_id INTEGER PRIMARY KEY REFERENCES segments (id) ON DELETE CASCADE,
        person_id INTEGER REFERENCES people (id) ON DELETE SET NULL,
        size INTEGER NOT NULL,
        crop BLOB
    );
    CREATE INDEX face_tracks_person ON face_tracks (person_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
# The migration that added the shots table.
SHOTS_SCHEMA = 2
ASR_SCHEMA = 3
# The migration that added segments.channel, segments.language and files.language.
LANGUAGE_SCHEMA = 7
SPACES_SCHEMA = 4
FAILED_SCHEMA = 5
PEOPLE_SCHEMA = 8
