-- The whole SambungChat schema, as the schema files of this version describe it.

-- ==== 00_common.sql

-- Shared by every table: the extension for substring search, the id default, the
-- updated_at trigger function.

-- Trigram indexes let substring search (ILIKE '%word%') use an index.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Time-ordered UUIDv7 ids (RFC 9562): 48 bits of Unix milliseconds, then random bits, so new
-- rows land at the right edge of the primary-key index. The application makes its own v7 ids;
-- this default keeps a plain INSERT (Studio, psql) working.
CREATE FUNCTION sambung_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
  SELECT encode(
    set_bit(
      set_bit(
        overlay(uuid_send(gen_random_uuid())
                PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                FROM 1 FOR 6),
        52, 1),
      53, 1),
    'hex')::uuid
$$;

-- Keeps updated_at right for every writer (the app, Studio, raw SQL). A no-op update
-- (nothing changed) keeps the old time.
CREATE FUNCTION sambung_set_updated_at() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF NEW IS DISTINCT FROM OLD THEN
    NEW.updated_at := now();
  END IF;
  RETURN NEW;
END
$$;

-- ==== 01_auth.sql

-- Better Auth's core model (user, session, account, verification), with plural table names.
-- Passwords live in accounts (provider 'credential'); session tokens only as hashes.

CREATE TABLE users (
  id             uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  name           text        NOT NULL,
  email          text        NOT NULL,
  email_verified boolean     NOT NULL DEFAULT false,
  image          text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT users_pkey PRIMARY KEY (id),
  CONSTRAINT users_email_key UNIQUE (email),
  CONSTRAINT users_email_normalised CHECK (email = lower(btrim(email)) AND email LIKE '_%@_%')
);

CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();

CREATE TABLE sessions (
  id         uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  user_id    uuid        NOT NULL,
  -- SHA-256 of the session token; the token itself is shown to the client once, never stored.
  token_hash text        NOT NULL,
  expires_at timestamptz NOT NULL,
  ip_address text,
  user_agent text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT sessions_pkey PRIMARY KEY (id),
  CONSTRAINT sessions_token_hash_key UNIQUE (token_hash),
  CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX session_user_id_idx ON sessions (user_id);
CREATE INDEX session_expires_at_idx ON sessions (expires_at);

CREATE TRIGGER sessions_set_updated_at BEFORE UPDATE ON sessions
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();

CREATE TABLE accounts (
  id                       uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  user_id                  uuid        NOT NULL,
  account_id               text        NOT NULL,
  provider_id              text        NOT NULL,
  access_token             text,
  refresh_token            text,
  id_token                 text,
  access_token_expires_at  timestamptz,
  refresh_token_expires_at timestamptz,
  scope                    text,
  -- Argon2id hash (PHC string) for provider 'credential'.
  password                 text,
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT accounts_pkey PRIMARY KEY (id),
  CONSTRAINT accounts_provider_account_key UNIQUE (provider_id, account_id),
  CONSTRAINT accounts_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT accounts_credential_password CHECK (provider_id <> 'credential' OR password IS NOT NULL)
);

CREATE INDEX account_user_id_idx ON accounts (user_id);

CREATE TRIGGER accounts_set_updated_at BEFORE UPDATE ON accounts
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();

CREATE TABLE verifications (
  id         uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  identifier text        NOT NULL,
  value      text        NOT NULL,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT verifications_pkey PRIMARY KEY (id)
);

CREATE INDEX verification_identifier_idx ON verifications (identifier);

CREATE TRIGGER verifications_set_updated_at BEFORE UPDATE ON verifications
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();

-- ==== 02_team.sql

-- Teams (the open-source edition's organisations), members, invites, slug redirects.

CREATE TABLE teams (
  id          uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  name        text        NOT NULL,
  slug        text        NOT NULL,
  description text,
  created_by  uuid        NOT NULL,
  settings    jsonb       NOT NULL DEFAULT '{}',
  metadata    jsonb       NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT teams_pkey PRIMARY KEY (id),
  -- The design's team_slug_idx, made the unique index it has to be anyway.
  CONSTRAINT team_slug_idx UNIQUE (slug),
  CONSTRAINT teams_created_by_fkey FOREIGN KEY (created_by) REFERENCES users (id) ON DELETE CASCADE,
  -- 3-48 chars of a-z, 0-9 and single inner hyphens; reserved words are refused by the data layer.
  CONSTRAINT team_slug_format CHECK (
    char_length(slug) BETWEEN 3 AND 48 AND slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'
  ),
  CONSTRAINT teams_name_not_blank CHECK (btrim(name) <> ''),
  CONSTRAINT teams_settings_object CHECK (jsonb_typeof(settings) = 'object'),
  CONSTRAINT teams_metadata_object CHECK (jsonb_typeof(metadata) = 'object')
);

CREATE INDEX team_created_by_idx ON teams (created_by);

CREATE TRIGGER teams_set_updated_at BEFORE UPDATE ON teams
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();

CREATE TABLE team_members (
  id        uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  team_id   uuid        NOT NULL,
  user_id   uuid        NOT NULL,
  role      text        NOT NULL DEFAULT 'member',
  joined_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT team_members_pkey PRIMARY KEY (id),
  -- One membership per user and team; also the index of every access check.
  CONSTRAINT team_member_team_user_idx UNIQUE (team_id, user_id),
  CONSTRAINT team_members_team_id_fkey FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE,
  CONSTRAINT team_members_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT team_members_role_check CHECK (role IN ('admin', 'member'))
);

-- (team_id, role) rather than (team_id): the team_user index already serves team_id alone,
-- and this one answers "the admins of a team" (the last-admin rule).
CREATE INDEX team_member_team_id_idx ON team_members (team_id, role);
CREATE INDEX team_member_user_id_idx ON team_members (user_id);

CREATE TABLE team_invites (
  id          uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  team_id     uuid        NOT NULL,
  email       text        NOT NULL,
  role        text        NOT NULL DEFAULT 'member',
  token       text        NOT NULL,
  invited_by  uuid        NOT NULL,
  accepted_at timestamptz,
  expires_at  timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT team_invites_pkey PRIMARY KEY (id),
  CONSTRAINT team_invite_token_idx UNIQUE (token),
  CONSTRAINT team_invites_team_id_fkey FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE,
  CONSTRAINT team_invites_invited_by_fkey FOREIGN KEY (invited_by) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT team_invites_role_check CHECK (role IN ('admin', 'member')),
  CONSTRAINT team_invites_email_normalised CHECK (email = lower(btrim(email)))
);

CREATE INDEX team_invite_email_idx ON team_invites (email);
CREATE INDEX team_invite_team_id_idx ON team_invites (team_id);
CREATE INDEX team_invite_invited_by_idx ON team_invites (invited_by);

CREATE TABLE slug_redirects (
  id         uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  old_slug   text        NOT NULL,
  new_slug   text        NOT NULL,
  team_id    uuid        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT slug_redirects_pkey PRIMARY KEY (id),
  CONSTRAINT slug_redirects_team_id_fkey FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE
);

CREATE INDEX slug_redirect_old_slug_idx ON slug_redirects (old_slug);
CREATE INDEX slug_redirect_team_id_idx ON slug_redirects (team_id);

-- ==== 03_folder.sql

-- Nested folders for chats, personal or team-scoped (never both).

CREATE TABLE folders (
  id         uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  user_id    uuid,
  team_id    uuid,
  name       text        NOT NULL,
  parent_id  uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT folders_pkey PRIMARY KEY (id),
  CONSTRAINT folders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT folders_team_id_fkey FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE,
  CONSTRAINT folders_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES folders (id) ON DELETE CASCADE,
  CONSTRAINT folder_scope_check CHECK (
    (user_id IS NOT NULL AND team_id IS NULL) OR   -- personal folder
    (user_id IS NULL AND team_id IS NOT NULL)      -- team folder
  ),
  CONSTRAINT folders_not_own_parent CHECK (parent_id <> id),
  CONSTRAINT folders_name_not_blank CHECK (btrim(name) <> '')
);

CREATE INDEX folder_user_id_idx ON folders (user_id) WHERE team_id IS NULL;
CREATE INDEX folder_team_id_idx ON folders (team_id) WHERE user_id IS NULL;
CREATE INDEX folder_parent_id_idx ON folders (parent_id);

CREATE TRIGGER folders_set_updated_at BEFORE UPDATE ON folders
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();

-- ==== 04_tag.sql

-- Tags for labelling chats: public (no owner), personal or team-scoped.

CREATE TABLE tags (
  id         uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  name       text        NOT NULL,
  color      text,
  user_id    uuid,
  team_id    uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT tags_pkey PRIMARY KEY (id),
  CONSTRAINT tags_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT tags_team_id_fkey FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE,
  CONSTRAINT tag_scope_check CHECK (
    (user_id IS NULL AND team_id IS NULL) OR       -- public tag
    (user_id IS NOT NULL AND team_id IS NULL) OR   -- personal tag
    (user_id IS NULL AND team_id IS NOT NULL)      -- team tag
  ),
  CONSTRAINT tags_color_hex CHECK (color ~ '^#[0-9a-fA-F]{6}$'),
  CONSTRAINT tags_name_not_blank CHECK (btrim(name) <> '')
);

CREATE INDEX tag_user_id_idx ON tags (user_id) WHERE team_id IS NULL;
CREATE INDEX tag_team_id_idx ON tags (team_id) WHERE user_id IS NULL;
CREATE INDEX tag_name_idx ON tags (name);

-- ==== 05_chat.sql

-- Chats: personal (team_id NULL) or team chats, optionally in a folder, optionally shared.

CREATE TABLE chats (
  id           uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  user_id      uuid        NOT NULL,
  team_id      uuid,
  folder_id    uuid,
  title        text        NOT NULL,
  model        text        NOT NULL,
  provider     text        NOT NULL,
  settings     jsonb       NOT NULL DEFAULT '{}',
  metadata     jsonb       NOT NULL DEFAULT '{}',
  public_token text,
  is_public    boolean     NOT NULL DEFAULT false,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT chats_pkey PRIMARY KEY (id),
  CONSTRAINT chats_public_token_key UNIQUE (public_token),
  CONSTRAINT chats_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT chats_team_id_fkey FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE,
  CONSTRAINT chats_folder_id_fkey FOREIGN KEY (folder_id) REFERENCES folders (id) ON DELETE SET NULL,
  -- A public chat is reachable only through its token.
  CONSTRAINT chats_public_has_token CHECK (NOT is_public OR public_token IS NOT NULL),
  CONSTRAINT chats_title_not_blank CHECK (btrim(title) <> ''),
  CONSTRAINT chats_settings_object CHECK (jsonb_typeof(settings) = 'object'),
  CONSTRAINT chats_metadata_object CHECK (jsonb_typeof(metadata) = 'object')
);

CREATE INDEX chat_user_id_idx ON chats (user_id);
CREATE INDEX chat_team_id_idx ON chats (team_id);
CREATE INDEX chat_user_team_idx ON chats (user_id, team_id);
CREATE INDEX chat_folder_id_idx ON chats (folder_id);
CREATE INDEX chat_updated_at_idx ON chats (updated_at);
CREATE INDEX chat_public_token_idx ON chats (public_token) WHERE is_public = true;

CREATE TRIGGER chats_set_updated_at BEFORE UPDATE ON chats
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();

-- ==== 06_chat_tag.sql

-- Chats and tags, many to many.

CREATE TABLE chat_tags (
  chat_id    uuid        NOT NULL,
  tag_id     uuid        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT chat_tags_pkey PRIMARY KEY (chat_id, tag_id),
  CONSTRAINT chat_tags_chat_id_fkey FOREIGN KEY (chat_id) REFERENCES chats (id) ON DELETE CASCADE,
  CONSTRAINT chat_tags_tag_id_fkey FOREIGN KEY (tag_id) REFERENCES tags (id) ON DELETE CASCADE
);

CREATE INDEX chat_tag_chat_id_idx ON chat_tags (chat_id);
CREATE INDEX chat_tag_tag_id_idx ON chat_tags (tag_id);

-- ==== 07_message.sql

-- Messages of a chat. (The design declared chat_id as serial referencing a uuid: fixed.)

CREATE TABLE messages (
  id         uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  chat_id    uuid        NOT NULL,
  role       text        NOT NULL,
  content    text        NOT NULL,
  -- {"model": …, "tokens": …, "finishReason": …}
  metadata   jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT messages_pkey PRIMARY KEY (id),
  CONSTRAINT messages_chat_id_fkey FOREIGN KEY (chat_id) REFERENCES chats (id) ON DELETE CASCADE,
  CONSTRAINT messages_role_check CHECK (role IN ('user', 'assistant', 'system')),
  CONSTRAINT messages_metadata_object CHECK (jsonb_typeof(metadata) = 'object')
);

-- (chat_id, created_at) rather than (chat_id): a chat's messages come out in order from it.
CREATE INDEX message_chat_id_idx ON messages (chat_id, created_at);
CREATE INDEX message_created_at_idx ON messages (created_at);
-- Word search over message text; 'simple' because chats are in any language.
CREATE INDEX message_content_search_idx ON messages USING gin (to_tsvector('simple', content));

-- ==== 08_prompt.sql

-- Prompt templates with {name} placeholders.

CREATE TABLE prompts (
  id         uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  user_id    uuid        NOT NULL,
  name       text        NOT NULL,
  content    text        NOT NULL,
  variables  jsonb       NOT NULL DEFAULT '[]',
  category   text        NOT NULL DEFAULT 'general',
  is_public  boolean     NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT prompts_pkey PRIMARY KEY (id),
  CONSTRAINT prompts_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT prompts_variables_array CHECK (jsonb_typeof(variables) = 'array'),
  CONSTRAINT prompts_name_not_blank CHECK (btrim(name) <> '')
);

CREATE INDEX prompt_user_id_idx ON prompts (user_id);
CREATE INDEX prompt_category_idx ON prompts (category);
CREATE INDEX prompt_is_public_idx ON prompts (is_public);
-- Ranked word search over name and content.
CREATE INDEX prompt_search_idx ON prompts
  USING gin (to_tsvector('simple', name || ' ' || content));
-- Substring search (ILIKE '%…%') over name and content together: one index the planner
-- takes for a selective word even on a few thousand rows (two per-column indexes it does not).
CREATE INDEX prompt_search_trgm_idx ON prompts
  USING gin ((name || ' ' || content) gin_trgm_ops);

CREATE TRIGGER prompts_set_updated_at BEFORE UPDATE ON prompts
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();

-- ==== 09_api_key.sql

-- AI-provider API keys, encrypted with AES-256-GCM under ENCRYPTION_KEY; never plaintext.

CREATE TABLE api_keys (
  id            uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  user_id       uuid        NOT NULL,
  provider      text        NOT NULL,
  -- 12-byte nonce || ciphertext || 16-byte tag.
  encrypted_key bytea       NOT NULL,
  -- Which master key encrypted it, so the master key can be rotated.
  key_version   integer     NOT NULL DEFAULT 1,
  key_last4     text        NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT api_keys_pkey PRIMARY KEY (id),
  CONSTRAINT api_keys_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT api_keys_provider_check CHECK (provider IN ('openai', 'anthropic', 'google', 'groq', 'ollama')),
  -- Nonce and tag alone are 28 bytes: anything shorter cannot be a sealed key.
  CONSTRAINT api_keys_encrypted_shape CHECK (octet_length(encrypted_key) > 28),
  CONSTRAINT api_keys_key_version_positive CHECK (key_version > 0),
  CONSTRAINT api_keys_key_last4_length CHECK (char_length(key_last4) <= 4)
);

CREATE INDEX api_key_user_id_idx ON api_keys (user_id);
CREATE INDEX api_key_provider_idx ON api_keys (provider);

CREATE TRIGGER api_keys_set_updated_at BEFORE UPDATE ON api_keys
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();
