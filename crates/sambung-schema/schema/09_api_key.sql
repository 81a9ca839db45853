-- AI-provider API keys, encrypted with AES-256-GCM under ENCRYPTION_KEY; never plaintext: a
-- user's own (`api_keys`), and the instance's connections its admins set up (`connections`).

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
  -- The user's label for the key ("work", "personal").
  name          text        NOT NULL DEFAULT 'default',
  CONSTRAINT api_keys_pkey PRIMARY KEY (id),
  -- What a model's (api_key_id, user_id) refers to: a key of the model's owner.
  CONSTRAINT api_keys_id_user_key UNIQUE (id, user_id),
  CONSTRAINT api_keys_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT api_keys_provider_check CHECK (provider IN ('openai', 'anthropic', 'google', 'groq', 'ollama', 'openrouter', 'custom')),
  -- Nonce and tag alone are 28 bytes: anything shorter cannot be a sealed key.
  CONSTRAINT api_keys_name_not_blank CHECK (btrim(name) <> ''),
  CONSTRAINT api_keys_encrypted_shape CHECK (octet_length(encrypted_key) > 28),
  CONSTRAINT api_keys_key_version_positive CHECK (key_version > 0),
  CONSTRAINT api_keys_key_last4_length CHECK (char_length(key_last4) <= 4)
);

CREATE INDEX api_key_user_id_idx ON api_keys (user_id);
CREATE INDEX api_key_provider_idx ON api_keys (provider);

CREATE TRIGGER api_keys_set_updated_at BEFORE UPDATE ON api_keys
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();

-- A provider the instance's admins set up once for everyone (or chosen teams): where it is and
-- the key to call it with, sealed like a user's key. Users use its models without seeing it.
CREATE TABLE connections (
  id            uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  name          text        NOT NULL,
  provider      text        NOT NULL,
  base_url      text,
  -- 12-byte nonce || ciphertext || 16-byte tag; none for a local Ollama.
  encrypted_key bytea,
  key_version   integer     NOT NULL DEFAULT 1,
  key_last4     text,
  created_by    uuid,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT connections_pkey PRIMARY KEY (id),
  CONSTRAINT connections_created_by_fkey FOREIGN KEY (created_by) REFERENCES users (id) ON DELETE SET NULL,
  CONSTRAINT connections_provider_check CHECK (provider IN ('openai', 'anthropic', 'google', 'groq', 'ollama', 'openrouter', 'custom')),
  CONSTRAINT connections_name_not_blank CHECK (btrim(name) <> ''),
  CONSTRAINT connections_encrypted_shape CHECK (encrypted_key IS NULL OR octet_length(encrypted_key) > 28),
  CONSTRAINT connections_key_version_positive CHECK (key_version > 0),
  CONSTRAINT connections_key_last4_length CHECK (char_length(key_last4) <= 4)
);

CREATE TRIGGER connections_set_updated_at BEFORE UPDATE ON connections
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();
