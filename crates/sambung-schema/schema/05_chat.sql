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
  -- Set when the user pins the chat to the top of their list.
  pinned_at    timestamptz,
  -- Set when the user archives the chat: out of the list, kept, found by search.
  archived_at  timestamptz,
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

-- Who may do what with a chat: the one place the rule is written, used by every query that
-- decides access. A row for each user who may read a chat (and post in it); can_change for
-- those who may also change, delete or share it. A personal chat is its owner's alone. A team
-- chat is read and written to by every member of its team; its creator and the team's admins
-- change it. (A plain view: the planner pushes a chat or a user down into both branches.)
CREATE VIEW chat_permissions AS
  SELECT c.id AS chat_id, c.user_id, true AS can_change
    FROM chats c
   WHERE c.team_id IS NULL
  UNION ALL
  SELECT c.id AS chat_id, m.user_id, (m.user_id = c.user_id OR m.role = 'admin') AS can_change
    FROM chats c
    JOIN team_members m ON m.team_id = c.team_id;
