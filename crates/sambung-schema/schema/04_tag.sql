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
