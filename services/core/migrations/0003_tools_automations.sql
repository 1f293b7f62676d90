-- Tools (function calling) with approvals, scheduled tasks and reminders, workflow runs.

-- What a chat user may do with tools (API keys carry their own role).
ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'user'
  CHECK (role IN ('admin', 'operator', 'auditor', 'user'));

-- A call the model made during a turn. The key (message/round/index) lets a re-run after a crash reuse
-- a finished call's result instead of running a command or a request a second time.
CREATE TABLE tool_calls (
  id               bigserial PRIMARY KEY,
  call_key         text NOT NULL UNIQUE,
  message_id       bigint REFERENCES messages(id) ON DELETE CASCADE,
  conversation_id  uuid,
  user_id          bigint REFERENCES users(id) ON DELETE SET NULL,
  tool             text NOT NULL,
  arguments        jsonb NOT NULL,
  -- running (recorded before it runs); ok; error (the tool failed); refused (role, allowlist, bad
  -- arguments); denied (not approved)
  status           text NOT NULL CHECK (status IN ('running', 'ok', 'error', 'refused', 'denied')),
  result           text NOT NULL,
  duration_ms      integer NOT NULL,
  approved_by      text,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tool_calls_message ON tool_calls(message_id);

-- A call waiting for a yes: from the user in their chat, or from an operator through the API/console.
CREATE TABLE approvals (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tool             text NOT NULL,
  arguments        jsonb NOT NULL,
  summary          text NOT NULL,
  requested_of     text NOT NULL CHECK (requested_of IN ('user', 'operator')),
  user_id          bigint REFERENCES users(id) ON DELETE CASCADE,
  conversation_id  uuid,
  scope            text,
  platform         text,
  chat_id          text,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
  created_at       timestamptz NOT NULL DEFAULT now(),
  expires_at       timestamptz NOT NULL,
  decided_at       timestamptz,
  decided_by       text
);
CREATE INDEX approvals_pending_scope ON approvals(scope, created_at) WHERE status = 'pending';
CREATE INDEX approvals_created ON approvals(created_at DESC);

-- Reminders (run once) and recurring tasks (cron with a time zone). Postgres is the record; the BullMQ
-- jobs that fire them are rebuilt from here at start.
CREATE TABLE tasks (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- workflows.yaml schedules: the workflow's name (one active task each)
  name             text,
  user_id          bigint REFERENCES users(id) ON DELETE CASCADE,
  -- where it reports: the chat it was made in (null for API-made tasks without a chat)
  platform         text,
  chat_id          text,
  chat_type        text CHECK (chat_type IN ('direct', 'group')),
  thread_id        text,
  kind             text NOT NULL CHECK (kind IN ('once', 'cron')),
  run_at           timestamptz,
  cron             text,
  timezone         text NOT NULL,
  -- remind: send the text; prompt: ask the model the text and send the answer; workflow: run it
  action           text NOT NULL CHECK (action IN ('remind', 'prompt', 'workflow')),
  text             text NOT NULL DEFAULT '',
  workflow         text,
  status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'done', 'cancelled', 'failed')),
  created_by       text NOT NULL,
  runs             integer NOT NULL DEFAULT 0,
  last_run_at      timestamptz,
  next_run_at      timestamptz,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'once' AND run_at IS NOT NULL) OR (kind = 'cron' AND cron IS NOT NULL))
);
CREATE INDEX tasks_user ON tasks(user_id, created_at DESC);
CREATE INDEX tasks_created ON tasks(created_at DESC);
CREATE INDEX tasks_active ON tasks(status) WHERE status = 'active';
CREATE UNIQUE INDEX tasks_config_name ON tasks(name) WHERE name IS NOT NULL AND status = 'active';

-- One firing of a task: the slot (the time it was due) makes a second delivery of the same firing a no-op.
CREATE TABLE task_runs (
  task_id          uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  slot             text NOT NULL,
  status           text NOT NULL CHECK (status IN ('running', 'ok', 'failed')),
  attempts         integer NOT NULL DEFAULT 1,
  error            text,
  started_at       timestamptz NOT NULL DEFAULT now(),
  -- a running firing is renewed while it runs; past this, its process is taken for dead and it may run again
  lease_until      timestamptz,
  finished_at      timestamptz,
  PRIMARY KEY (task_id, slot)
);

CREATE TABLE workflow_runs (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  workflow         text NOT NULL,
  -- api, schedule or route
  trigger          text NOT NULL,
  started_by       text NOT NULL,
  -- the same start asked for twice (a re-delivered task firing or chat message) is one run
  dedup_key        text UNIQUE,
  input            jsonb NOT NULL DEFAULT '{}',
  -- the chat that started it (route trigger): where message steps without `to` go
  chat             jsonb,
  status           text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  -- one entry per step: id, kind, status (ok, failed, skipped), output (cut), error, duration_ms
  steps            jsonb NOT NULL DEFAULT '[]',
  error            text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  -- renewed while a process runs it (see task_runs.lease_until)
  lease_until      timestamptz,
  finished_at      timestamptz
);
CREATE INDEX workflow_runs_created ON workflow_runs(workflow, created_at DESC);
CREATE INDEX workflow_runs_recent ON workflow_runs(created_at DESC);
