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
