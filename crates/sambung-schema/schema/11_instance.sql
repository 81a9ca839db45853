-- The instance an organisation runs (SPEC section 12): its settings, its invitations, which
-- teams its models serve, what replies used, the quotas that bound them, and the audit log.

-- Settings its admins change (the sign-up policy, quotas, ...): one row each, a JSON value.
-- The environment wins over a setting where both exist (the server says so).
CREATE TABLE instance_settings (
  key        text        NOT NULL,
  value      jsonb       NOT NULL,
  updated_by uuid,
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT instance_settings_pkey PRIMARY KEY (key),
  CONSTRAINT instance_settings_updated_by_fkey FOREIGN KEY (updated_by) REFERENCES users (id) ON DELETE SET NULL,
  CONSTRAINT instance_settings_key_format CHECK (key ~ '^[a-z][a-zA-Z0-9]{0,63}$')
);

CREATE TRIGGER instance_settings_set_updated_at BEFORE UPDATE ON instance_settings
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();

-- Links an admin makes to let someone sign up under the `invite` policy: single use, with an
-- end, for one address or anyone with the link. Only the token's hash is kept.
CREATE TABLE instance_invites (
  id         uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  token_hash text        NOT NULL,
  email      text,
  created_by uuid,
  expires_at timestamptz NOT NULL,
  used_at    timestamptz,
  used_by    uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT instance_invites_pkey PRIMARY KEY (id),
  CONSTRAINT instance_invites_token_hash_key UNIQUE (token_hash),
  CONSTRAINT instance_invites_created_by_fkey FOREIGN KEY (created_by) REFERENCES users (id) ON DELETE SET NULL,
  CONSTRAINT instance_invites_used_by_fkey FOREIGN KEY (used_by) REFERENCES users (id) ON DELETE SET NULL,
  CONSTRAINT instance_invites_email_normalised CHECK (email IS NULL OR email = lower(btrim(email)))
);

-- The teams an instance model serves; none listed: everyone.
CREATE TABLE model_teams (
  model_id uuid NOT NULL,
  team_id  uuid NOT NULL,
  CONSTRAINT model_teams_pkey PRIMARY KEY (model_id, team_id),
  CONSTRAINT model_teams_model_id_fkey FOREIGN KEY (model_id) REFERENCES models (id) ON DELETE CASCADE,
  CONSTRAINT model_teams_team_id_fkey FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE
);

CREATE INDEX model_team_team_id_idx ON model_teams (team_id);

-- Whether `actor` may use the instance model `model` in a chat of `team` (none: a personal
-- chat): a model for everyone serves every chat; one for chosen teams serves those teams'
-- chats, to their members (the instance pays for it on their behalf).
CREATE FUNCTION sambung_instance_model_serves(model uuid, team uuid, actor uuid) RETURNS boolean
  LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT NOT EXISTS (SELECT 1 FROM model_teams mt WHERE mt.model_id = model)
        OR EXISTS (SELECT 1 FROM model_teams mt
                     JOIN team_members tm ON tm.team_id = mt.team_id AND tm.user_id = actor
                    WHERE mt.model_id = model AND mt.team_id = team)
  $$;

-- What replies used, per day, user, team and model, added up in each reply's own finishing
-- statement. The model's name and provider are kept as they were (the model may be gone);
-- `cost` from the model's prices at the time.
--
-- Every reply writes a row here, and a turn's one statement reads it (the allowance). A
-- vacuum or analyze that changes the table's size invalidates every cached plan that reads
-- it, on every pooled connection: with the defaults (50 rows + 10 %), a young instance's
-- small table is analyzed every few dozen replies and each connection plans the turn's
-- statement again (2-4 ms, the p95 of a turn's first token). It is only ever read by its
-- keys, so its statistics matter little until it is large, where the scale factors rule.
CREATE TABLE usage_daily (
  day           date        NOT NULL,
  user_id       uuid        NOT NULL,
  -- The team whose chat it was; the nil uuid for a personal chat (part of the key).
  team_id       uuid        NOT NULL,
  model         text        NOT NULL,
  provider      text        NOT NULL,
  connection_id uuid,
  requests      bigint      NOT NULL DEFAULT 0,
  input_tokens  bigint      NOT NULL DEFAULT 0,
  output_tokens bigint      NOT NULL DEFAULT 0,
  duration_ms   bigint      NOT NULL DEFAULT 0,
  cost          numeric(18, 6) NOT NULL DEFAULT 0,
  CONSTRAINT usage_daily_pkey PRIMARY KEY (day, user_id, team_id, model, provider),
  CONSTRAINT usage_daily_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT usage_daily_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES connections (id) ON DELETE SET NULL,
  CONSTRAINT usage_daily_counts_check CHECK (requests >= 0 AND input_tokens >= 0 AND output_tokens >= 0 AND duration_ms >= 0 AND cost >= 0)
) WITH (autovacuum_vacuum_threshold = 10000, autovacuum_analyze_threshold = 10000);

CREATE INDEX usage_daily_user_day_idx ON usage_daily (user_id, day);
CREATE INDEX usage_daily_team_day_idx ON usage_daily (team_id, day);

-- Limits an admin set for one user or one team, over the instance's defaults (settings).
-- NULL leaves the default; 0 allows nothing.
CREATE TABLE quotas (
  id                  uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  user_id             uuid,
  team_id             uuid,
  tokens_per_day      bigint,
  requests_per_day    bigint,
  running_generations integer,
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT quotas_pkey PRIMARY KEY (id),
  CONSTRAINT quotas_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT quotas_team_id_fkey FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE,
  CONSTRAINT quotas_scope_check CHECK ((user_id IS NULL) <> (team_id IS NULL)),
  CONSTRAINT quotas_limits_check CHECK (coalesce(tokens_per_day, 0) >= 0 AND coalesce(requests_per_day, 0) >= 0 AND coalesce(running_generations, 0) >= 0)
);

CREATE UNIQUE INDEX quota_user_idx ON quotas (user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX quota_team_idx ON quotas (team_id) WHERE team_id IS NOT NULL;

CREATE TRIGGER quotas_set_updated_at BEFORE UPDATE ON quotas
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();

-- Security and administrative events: who (and the email they had), when, from where, what,
-- on what; never a secret. Kept for the retention the settings say (180 days by default).
CREATE TABLE audit_events (
  id          uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  at          timestamptz NOT NULL DEFAULT now(),
  actor_id    uuid,
  actor_email text,
  action      text        NOT NULL,
  target_type text,
  target_id   text,
  ip_address  text,
  detail      jsonb       NOT NULL DEFAULT '{}',
  CONSTRAINT audit_events_pkey PRIMARY KEY (id),
  CONSTRAINT audit_events_actor_id_fkey FOREIGN KEY (actor_id) REFERENCES users (id) ON DELETE SET NULL,
  CONSTRAINT audit_events_action_format CHECK (action ~ '^[a-z][a-z0-9_.-]{0,63}$'),
  CONSTRAINT audit_events_detail_object CHECK (jsonb_typeof(detail) = 'object')
);

CREATE INDEX audit_event_at_idx ON audit_events (at DESC, id DESC);
CREATE INDEX audit_event_actor_idx ON audit_events (actor_id, at DESC) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_event_action_idx ON audit_events (action, at DESC);

-- Mail the instance sends (password resets, verifications, invitations): what was sent to
-- whom and whether it went. Without a mail server (`SMTP_URL`), the link is kept so an admin
-- can pass it on, until it expires; a mail that was sent keeps no link.
CREATE TABLE mail_outbox (
  id         uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  recipient  text        NOT NULL,
  kind       text        NOT NULL,
  subject    text        NOT NULL,
  link       text,
  status     text        NOT NULL,
  error      text,
  expires_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT mail_outbox_pkey PRIMARY KEY (id),
  CONSTRAINT mail_outbox_kind_check CHECK (kind IN ('reset-password', 'verify-email', 'team-invite', 'instance-invite')),
  CONSTRAINT mail_outbox_status_check CHECK (status IN ('sent', 'failed', 'unsent')),
  CONSTRAINT mail_outbox_link_unsent CHECK (link IS NULL OR status <> 'sent')
);

CREATE INDEX mail_outbox_created_at_idx ON mail_outbox (created_at DESC, id DESC);
-- One mail a minute per address and kind (`recently_sent`).
CREATE INDEX mail_outbox_recipient_idx ON mail_outbox (recipient, kind, created_at DESC);
