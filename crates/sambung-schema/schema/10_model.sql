-- The AI models a user has configured (SPEC section 8), personal or for a team (set up by its
-- admins): a provider, one of its models, an optional base URL, and the API key to call it
-- with. The key must be the model owner's own: the foreign key on (api_key_id, user_id)
-- checks it in the database, whoever writes the row.

CREATE TABLE models (
  id          uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  user_id     uuid        NOT NULL,
  team_id     uuid,
  provider    text        NOT NULL,
  model_id    text        NOT NULL,
  name        text        NOT NULL,
  base_url    text,
  api_key_id  uuid,
  settings    jsonb       NOT NULL DEFAULT '{}',
  is_default  boolean     NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT models_pkey PRIMARY KEY (id),
  CONSTRAINT models_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT models_team_id_fkey FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE,
  CONSTRAINT models_api_key_owner_fkey FOREIGN KEY (api_key_id, user_id) REFERENCES api_keys (id, user_id) ON DELETE CASCADE,
  CONSTRAINT models_provider_check CHECK (provider IN ('openai', 'anthropic', 'google', 'groq', 'ollama', 'openrouter', 'custom')),
  CONSTRAINT models_settings_object CHECK (jsonb_typeof(settings) = 'object'),
  CONSTRAINT models_names_not_blank CHECK (btrim(name) <> '' AND btrim(model_id) <> '')
);

CREATE INDEX model_user_id_idx ON models (user_id);
CREATE INDEX model_team_id_idx ON models (team_id);
CREATE INDEX model_api_key_idx ON models (api_key_id, user_id);
-- At most one default model per user (personal) and per team.
CREATE UNIQUE INDEX model_personal_default_idx ON models (user_id) WHERE is_default AND team_id IS NULL;
CREATE UNIQUE INDEX model_team_default_idx ON models (team_id) WHERE is_default AND team_id IS NOT NULL;

CREATE TRIGGER models_set_updated_at BEFORE UPDATE ON models
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();
