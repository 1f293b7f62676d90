-- Core schema: users and identities, conversations and messages, keys, pairing, audit.

CREATE TABLE users (
  id            bigserial PRIMARY KEY,
  display_name  text NOT NULL DEFAULT '',
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- A platform sender; (platform, external_id) maps to exactly one user.
CREATE TABLE identities (
  platform      text NOT NULL,
  external_id   text NOT NULL,
  user_id       bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  display_name  text NOT NULL DEFAULT '',
  username      text,
  -- granted by an approved pairing request or an admin (for direct: allowlist/pairing policies)
  approved      boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform, external_id)
);
CREATE INDEX identities_user ON identities(user_id);

-- One active conversation per scope (a direct chat, a group, or a group member: see core.group_conversations).
CREATE TABLE conversations (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  scope         text NOT NULL,
  platform      text NOT NULL,
  chat_id       text NOT NULL,
  chat_type     text NOT NULL CHECK (chat_type IN ('direct', 'group')),
  user_id       bigint REFERENCES users(id) ON DELETE SET NULL,
  title         text NOT NULL DEFAULT '',
  model         text,
  active        boolean NOT NULL DEFAULT true,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX conversations_active_scope ON conversations(scope) WHERE active;
CREATE INDEX conversations_user ON conversations(user_id, updated_at DESC);
CREATE INDEX conversations_updated ON conversations(updated_at DESC);

CREATE TABLE messages (
  id                  bigserial PRIMARY KEY,
  conversation_id     uuid NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  role                text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
  content             text NOT NULL,
  user_id             bigint REFERENCES users(id) ON DELETE SET NULL,
  -- inbound: the platform message; a redelivered message is the same row (message ids are
  -- unique only within a chat on Telegram)
  platform            text,
  chat_id             text,
  platform_message_id text,
  order_key           double precision,
  -- user messages: queued until answered (or handled by a command); assistant: how generation ended
  status              text NOT NULL CHECK (status IN ('queued', 'answered', 'handled', 'skipped', 'complete', 'stopped', 'failed')),
  -- user messages: how many times answering was started (a message that keeps failing is given up)
  attempts            integer NOT NULL DEFAULT 0,
  -- assistant messages: the user message they answer, and what producing them cost
  reply_to            bigint REFERENCES messages(id) ON DELETE CASCADE,
  model               text,
  prompt_tokens       integer,
  completion_tokens   integer,
  latency_ms          integer,
  ttft_ms             integer,
  sent_at             timestamptz,
  -- user messages: the routing rule chosen on arrival, and what a reply needs (thread, platform ids)
  action              text,
  meta                jsonb,
  created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX messages_platform_id ON messages(platform, chat_id, platform_message_id) WHERE platform_message_id IS NOT NULL;
CREATE UNIQUE INDEX messages_one_reply ON messages(reply_to) WHERE reply_to IS NOT NULL;
CREATE INDEX messages_conversation ON messages(conversation_id, id);
CREATE INDEX messages_queued ON messages(conversation_id, order_key, id) WHERE status = 'queued';
CREATE INDEX messages_search ON messages USING gin (to_tsvector('simple', content));

CREATE TABLE api_keys (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name          text NOT NULL,
  key_hash      text NOT NULL UNIQUE,
  role          text NOT NULL CHECK (role IN ('admin', 'operator', 'auditor', 'user')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz,
  revoked_at    timestamptz
);

CREATE TABLE pairing_requests (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  platform      text NOT NULL,
  external_id   text NOT NULL,
  display_name  text NOT NULL DEFAULT '',
  code          text NOT NULL,
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  decided_at    timestamptz,
  decided_by    text
);
CREATE UNIQUE INDEX pairing_one_pending ON pairing_requests(platform, external_id) WHERE status = 'pending';
CREATE UNIQUE INDEX pairing_code_pending ON pairing_requests(code) WHERE status = 'pending';

CREATE TABLE audit_log (
  id                bigserial PRIMARY KEY,
  at                timestamptz NOT NULL DEFAULT now(),
  kind              text NOT NULL,
  actor             text,
  user_id           bigint,
  platform          text,
  conversation_id   uuid,
  model             text,
  duration_ms       integer,
  prompt_tokens     integer,
  completion_tokens integer,
  outcome           text NOT NULL,
  detail            jsonb,
  content           text
);
CREATE INDEX audit_at ON audit_log(at);
CREATE INDEX audit_user ON audit_log(user_id, at);
