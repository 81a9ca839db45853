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
  -- Better Auth's admin plugin: the instance role (`user`, `admin`; Better Auth allows a
  -- comma-separated list), and a ban with its reason and end (none: until lifted).
  role           text        NOT NULL DEFAULT 'user',
  banned         boolean     NOT NULL DEFAULT false,
  ban_reason     text,
  ban_expires    timestamptz,
  -- Whether an admin let the account in (the `approval` sign-up policy); true otherwise.
  approved       boolean     NOT NULL DEFAULT true,
  -- The UI's theme the user chose (`system` follows the device), and their language (none:
  -- the browser's Accept-Language decides).
  theme          text        NOT NULL DEFAULT 'system',
  locale         text,
  -- Better Auth's two-factor plugin: set once a TOTP secret is confirmed by a first code.
  two_factor_enabled boolean NOT NULL DEFAULT false,
  CONSTRAINT users_pkey PRIMARY KEY (id),
  CONSTRAINT users_email_key UNIQUE (email),
  CONSTRAINT users_email_normalised CHECK (email = lower(btrim(email)) AND email LIKE '_%@_%'),
  CONSTRAINT users_theme_known CHECK (theme IN ('system', 'light', 'dark')),
  CONSTRAINT users_locale_known CHECK (locale IN ('en', 'id')),
  CONSTRAINT users_role_format CHECK (role ~ '^[a-z][a-z0-9_-]{0,31}(,[a-z][a-z0-9_-]{0,31}){0,7}$')
);

-- The admins, found at once (the last-admin rule, the first account).
CREATE INDEX user_admin_idx ON users (id) WHERE role ~ '(^|,)admin(,|$)';

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
  -- The admin acting as this session's user (Better Auth's impersonation); ends with them.
  impersonated_by uuid,
  CONSTRAINT sessions_pkey PRIMARY KEY (id),
  CONSTRAINT sessions_token_hash_key UNIQUE (token_hash),
  CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT sessions_impersonated_by_fkey FOREIGN KEY (impersonated_by) REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX session_user_id_idx ON sessions (user_id);
CREATE INDEX session_expires_at_idx ON sessions (expires_at);
CREATE INDEX session_impersonated_by_idx ON sessions (impersonated_by) WHERE impersonated_by IS NOT NULL;

CREATE TRIGGER sessions_set_updated_at BEFORE UPDATE ON sessions
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();

-- Whether a session is live: not expired, and its user not banned now. The one rule: every
-- request's session lookup (`auth::authenticate`) and the statements that check a request's
-- session themselves (`sambung_session_user`) read it. SQL, so the planner inlines it.
CREATE FUNCTION sambung_session_live(expires_at timestamptz, banned boolean, ban_expires timestamptz)
  RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT expires_at > now() AND NOT (banned AND (ban_expires IS NULL OR ban_expires > now()))
  $$;

-- The user of the live session whose token hashes to `token_hash`, when that user may use the
-- API as it is (their account approved) and the session need not be renewed first (it
-- outlives `renew_if_before`; NULL: it is never renewed); no row otherwise. A statement that
-- serves a request reads it once (a scalar subquery) instead of the request looking its
-- session up in a round trip of its own; on none the server asks the long way, which says
-- why (expired, banned, not approved) and renews. A set of (at most one) rows, read in FROM,
-- so that PostgreSQL inlines it into the statement: a scalar SQL function with a FROM is
-- run apart on every call, which cost a fifth of the chat list's time in PostgreSQL.
CREATE FUNCTION sambung_session_user(token_hash text, renew_if_before timestamptz)
  RETURNS SETOF uuid LANGUAGE sql STABLE PARALLEL SAFE ROWS 1 AS $$
    SELECT s.user_id FROM sessions s JOIN users u ON u.id = s.user_id
     WHERE s.token_hash = sambung_session_user.token_hash AND u.approved
       AND sambung_session_live(s.expires_at, u.banned, u.ban_expires)
       AND (renew_if_before IS NULL OR s.impersonated_by IS NOT NULL
            OR s.expires_at > renew_if_before)
  $$;

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
-- A one-time link's token is looked up by its hash.
CREATE INDEX verification_value_idx ON verifications (value);

CREATE TRIGGER verifications_set_updated_at BEFORE UPDATE ON verifications
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();

-- Better Auth's two-factor plugin's `twoFactor`, one row a user: the TOTP secret sealed under
-- the master key (AES-256-GCM, the user's id as associated data), the unused backup codes as
-- SHA-256 hex (each shown once), whether a first code confirmed it, the last time step a code
-- was accepted for (a code is used once), and failures in a row with the lock they lead to.
CREATE TABLE two_factors (
  user_id         uuid        NOT NULL,
  secret          bytea       NOT NULL,
  backup_codes    text[]      NOT NULL,
  verified        boolean     NOT NULL DEFAULT false,
  last_used_step  bigint,
  failed_attempts integer     NOT NULL DEFAULT 0,
  locked_until    timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT two_factors_pkey PRIMARY KEY (user_id),
  CONSTRAINT two_factors_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT two_factors_backup_codes_bounded CHECK (cardinality(backup_codes) <= 20)
);

CREATE TRIGGER two_factors_set_updated_at BEFORE UPDATE ON two_factors
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();

-- Identity providers an admin set up in the UI (those of `OIDC_PROVIDERS` are not stored):
-- the provider's settings as `sambung-sso` reads them, without its client secret, which is
-- sealed under the master key (AES-256-GCM, the provider's id as associated data).
CREATE TABLE identity_providers (
  id            text        NOT NULL,
  config        jsonb       NOT NULL,
  client_secret bytea       NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT identity_providers_pkey PRIMARY KEY (id),
  CONSTRAINT identity_providers_id_format CHECK (id ~ '^[a-z0-9-]{1,32}$'),
  CONSTRAINT identity_providers_config_object CHECK (jsonb_typeof(config) = 'object')
);

CREATE TRIGGER identity_providers_set_updated_at BEFORE UPDATE ON identity_providers
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();
