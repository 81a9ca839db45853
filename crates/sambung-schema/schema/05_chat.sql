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
-- decides access. The chat `chat` as `reader` may use it (read it and post in it), with its
-- own columns, `reader_id` (= `reader`) and `can_change` when they may also change, delete or
-- share it; no row when they may not read it (or it does not exist: the two are not told
-- apart). A personal chat is its owner's alone. A team chat is read and written to by every
-- member of its team; its creator and the team's admins change it. Shaped like the question
-- asked on every request, "may this user use this chat": the chat probed once and the team's
-- membership of the user at most once, in one join. It is a function, not a view, because a
-- view cannot be asked for one reader: the view it replaced (`chat_readers`) listed every
-- reader in a `LATERAL` `UNION ALL`, whose extra executor nodes cost a tenth of the
-- decision's throughput. One SQL `SELECT`, `STABLE`, so the planner inlines it into each
-- query (its arguments must be plain values or columns: a subquery there stops the
-- inlining). From a user to their chats no index leads here: `sambung_chats_of` goes that way.
CREATE FUNCTION sambung_chat_reader(chat uuid, reader uuid)
  RETURNS TABLE (id uuid, user_id uuid, team_id uuid, folder_id uuid, title text, model text,
                 provider text, settings jsonb, metadata jsonb, public_token text,
                 is_public boolean, created_at timestamptz, updated_at timestamptz,
                 pinned_at timestamptz, archived_at timestamptz, reader_id uuid,
                 can_change boolean)
  LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT c.id, c.user_id, c.team_id, c.folder_id, c.title, c.model, c.provider, c.settings,
           c.metadata, c.public_token, c.is_public, c.created_at, c.updated_at, c.pinned_at,
           c.archived_at, reader, (c.team_id IS NULL OR m.role = 'admin' OR c.user_id = reader)
      FROM chats c
      LEFT JOIN team_members m ON m.team_id = c.team_id AND m.user_id = reader
     WHERE c.id = chat AND ((c.team_id IS NULL AND c.user_id = reader) OR m.user_id IS NOT NULL)
  $$;

-- The chats `actor` may read, found from the user's side by index (their own personal chats,
-- their teams' chats): the rule of `sambung_chat_reader` in the shape the other direction needs,
-- written beside it. The access tests hold the two to the same rows for every user.
CREATE FUNCTION sambung_chats_of(actor uuid) RETURNS SETOF chats
  LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT c.* FROM chats c WHERE c.user_id = actor AND c.team_id IS NULL
    UNION ALL
    SELECT c.* FROM team_members m JOIN chats c ON c.team_id = m.team_id WHERE m.user_id = actor
  $$;
