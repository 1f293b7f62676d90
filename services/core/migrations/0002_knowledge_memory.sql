-- Knowledge base and long-term memory.

-- pgvector when the server has it (the compose image does); without it core scans vectors itself.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
    CREATE EXTENSION IF NOT EXISTS vector;
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  -- pgvector is not a trusted extension: a role that may not create it gets the in-process scan
  RAISE NOTICE 'pgvector is installed but this role may not create the extension; vectors will be scanned by core';
END
$$;

CREATE TABLE kb_documents (
  id              bigserial PRIMARY KEY,
  title           text NOT NULL,
  -- 'text' (posted as JSON) or 'file' (uploaded); the original bytes are kept for re-ingestion
  source          text NOT NULL CHECK (source IN ('text', 'file')),
  filename        text,
  mime            text,
  format          text NOT NULL,
  metadata        jsonb NOT NULL DEFAULT '{}',
  original        bytea NOT NULL,
  bytes           integer NOT NULL,
  sha256          text NOT NULL,
  -- queued → extracting → embedding → ready, or failed (error says why)
  status          text NOT NULL DEFAULT 'queued',
  error           text,
  -- the ingestion being built, and the one queries see (null until the first one is ready)
  version         integer NOT NULL DEFAULT 1,
  active_version  integer,
  chunks_total    integer NOT NULL DEFAULT 0,
  chunks_done     integer NOT NULL DEFAULT 0,
  chunk_count     integer NOT NULL DEFAULT 0,
  characters      integer NOT NULL DEFAULT 0,
  embedding_model text,
  created_by      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  ingested_at     timestamptz
);
CREATE INDEX kb_documents_created ON kb_documents (created_at DESC, id DESC);

CREATE TABLE kb_chunks (
  id              bigserial PRIMARY KEY,
  document_id     bigint NOT NULL REFERENCES kb_documents(id) ON DELETE CASCADE,
  version         integer NOT NULL,
  position        integer NOT NULL,
  heading         text NOT NULL DEFAULT '',
  content         text NOT NULL,
  tokens          integer NOT NULL,
  -- to_tsvector('simple', segmented text): Chinese as character bigrams (see packages/knowledge)
  fts             tsvector NOT NULL,
  embedding_model text,
  dims            integer,
  -- float32 little-endian, for the in-process scan (and re-indexing)
  embedding       bytea,
  UNIQUE (document_id, version, position)
);
CREATE INDEX kb_chunks_fts ON kb_chunks USING gin (fts);
-- ranking reads every matching chunk's lexemes: keep them in the row (half the cost of fetching them
-- from TOAST); the vectors are read only when a process loads them, so they go out of line
ALTER TABLE kb_chunks ALTER COLUMN fts SET STORAGE MAIN, ALTER COLUMN embedding SET STORAGE EXTERNAL;

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
    -- dimensionless here; core adds an HNSW index per embedding size it uses (see knowledge repository)
    ALTER TABLE kb_chunks ADD COLUMN vec vector;
  END IF;
END
$$;

-- how many active chunks hold each lexeme, kept with every activation and delete: a search leaves
-- out the query's most common terms rather than have Postgres rank most of the knowledge base
CREATE TABLE kb_lexemes (
  lexeme  text PRIMARY KEY,
  chunks  integer NOT NULL
);

-- bumped by every change queries can see, so each core process knows when to refresh its vectors
CREATE TABLE kb_state (
  id          boolean PRIMARY KEY DEFAULT true CHECK (id),
  generation  bigint NOT NULL DEFAULT 0
);
INSERT INTO kb_state DEFAULT VALUES;

CREATE TABLE memories (
  id                bigserial PRIMARY KEY,
  user_id           bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  content           text NOT NULL,
  -- lower-cased, punctuation and spacing folded: the same fact said twice is stored once
  normalized        text NOT NULL,
  source            text NOT NULL CHECK (source IN ('user', 'extracted')),
  fts               tsvector NOT NULL,
  source_message_id bigint REFERENCES messages(id) ON DELETE SET NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, normalized)
);
CREATE INDEX memories_user ON memories (user_id, id);

-- the last message of the user whose exchange the extraction job has read
ALTER TABLE users ADD COLUMN memory_extracted_upto bigint NOT NULL DEFAULT 0;
-- a user's own messages, newest first (the extraction reads those after its watermark)
CREATE INDEX messages_user ON messages (user_id, id) WHERE role = 'user';
