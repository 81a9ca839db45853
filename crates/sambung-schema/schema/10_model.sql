-- The AI models configured (SPEC sections 8 and 12): a user's own, a team's (set up by its
-- admins), or the instance's (on one of its connections, set up by its admins, for everyone or
-- for chosen teams: `model_teams`). A provider, one of its models, an optional base URL, and
-- the key to call it with: a user's or team's model uses its owner's own key (the foreign key
-- on (api_key_id, user_id) checks it in the database, whoever writes the row); an instance
-- model, its connection's.

CREATE TABLE models (
  id          uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  -- Who set it up; none for the instance's models.
  user_id     uuid,
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
  -- An instance model's connection.
  connection_id uuid,
  -- What a million tokens cost, in the instance's currency (optional: usage shows cost).
  input_price  numeric(12, 4),
  output_price numeric(12, 4),
  CONSTRAINT models_pkey PRIMARY KEY (id),
  CONSTRAINT models_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES connections (id) ON DELETE CASCADE,
  -- A user's or team's model, or an instance model: never both, never neither.
  CONSTRAINT models_owner_check CHECK (
    (user_id IS NOT NULL AND connection_id IS NULL)
    OR (user_id IS NULL AND team_id IS NULL AND connection_id IS NOT NULL AND api_key_id IS NULL)
  ),
  CONSTRAINT models_prices_check CHECK (coalesce(input_price, 0) >= 0 AND coalesce(output_price, 0) >= 0),
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
CREATE INDEX model_connection_id_idx ON models (connection_id) WHERE connection_id IS NOT NULL;
-- At most one default model per user (personal), per team, and for the instance.
CREATE UNIQUE INDEX model_personal_default_idx ON models (user_id) WHERE is_default AND team_id IS NULL;
CREATE UNIQUE INDEX model_team_default_idx ON models (team_id) WHERE is_default AND team_id IS NOT NULL;
CREATE UNIQUE INDEX model_instance_default_idx ON models ((true)) WHERE is_default AND connection_id IS NOT NULL;

CREATE TRIGGER models_set_updated_at BEFORE UPDATE ON models
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();
