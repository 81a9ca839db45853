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
  -- The words of name and content, computed once per row, those of the name weighted higher
  -- (A) for ranking; search filters and ranks on it without re-parsing.
  search_tsv tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', name), 'A') || setweight(to_tsvector('simple', content), 'B')
  ) STORED,
  CONSTRAINT prompts_pkey PRIMARY KEY (id),
  CONSTRAINT prompts_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT prompts_variables_array CHECK (jsonb_typeof(variables) = 'array'),
  CONSTRAINT prompts_name_not_blank CHECK (btrim(name) <> '')
);

CREATE INDEX prompt_user_id_idx ON prompts (user_id);
CREATE INDEX prompt_category_idx ON prompts (category);
CREATE INDEX prompt_is_public_idx ON prompts (is_public);
-- Ranked word search over the public prompts' name and content (a user's own prompts are
-- found through prompt_user_id_idx: a few per user, where the public ones are a tenth of all).
CREATE INDEX prompt_search_idx ON prompts USING gin (search_tsv) WHERE is_public;
-- Public prompts, most recently changed first: the candidates a search for a common word ranks,
-- and the public part of the prompt list.
CREATE INDEX prompt_public_updated_idx ON prompts (updated_at) WHERE is_public;
-- Substring search (ILIKE '%…%') over name and content together: one index the planner
-- takes for a selective word even on a few thousand rows (two per-column indexes it does not).
CREATE INDEX prompt_search_trgm_idx ON prompts
  USING gin ((name || ' ' || content) gin_trgm_ops);

CREATE TRIGGER prompts_set_updated_at BEFORE UPDATE ON prompts
  FOR EACH ROW EXECUTE FUNCTION sambung_set_updated_at();

-- Each earlier text of a prompt (upstream keeps every edit): written by the trigger below
-- whenever a prompt's name, content or category changes, so no writer can forget it.
CREATE TABLE prompt_versions (
  id         uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  prompt_id  uuid        NOT NULL,
  name       text        NOT NULL,
  content    text        NOT NULL,
  category   text        NOT NULL,
  -- When this text was replaced (it had been the prompt's since the one before).
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT prompt_versions_pkey PRIMARY KEY (id),
  CONSTRAINT prompt_versions_prompt_id_fkey FOREIGN KEY (prompt_id) REFERENCES prompts (id) ON DELETE CASCADE
);

CREATE INDEX prompt_version_prompt_id_idx ON prompt_versions (prompt_id, created_at);

CREATE FUNCTION sambung_prompt_keeps_versions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (OLD.name, OLD.content, OLD.category) IS DISTINCT FROM (NEW.name, NEW.content, NEW.category) THEN
    INSERT INTO prompt_versions (prompt_id, name, content, category)
    VALUES (OLD.id, OLD.name, OLD.content, OLD.category);
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER prompts_keep_versions AFTER UPDATE ON prompts
  FOR EACH ROW EXECUTE FUNCTION sambung_prompt_keeps_versions();
