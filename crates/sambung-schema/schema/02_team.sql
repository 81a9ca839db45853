-- Teams (the open-source edition's organisations), members, invites, slug redirects.

CREATE TABLE teams (
  id          uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  name        text        NOT NULL,
  slug        text        NOT NULL,
  description text,
  -- Who made the team; the team is its members', so it outlives its maker's account.
  created_by  uuid,
  settings    jsonb       NOT NULL DEFAULT '{}',
  metadata    jsonb       NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT teams_pkey PRIMARY KEY (id),
  -- The design's team_slug_idx, made the unique index it has to be anyway.
  CONSTRAINT team_slug_idx UNIQUE (slug),
  CONSTRAINT teams_created_by_fkey FOREIGN KEY (created_by) REFERENCES users (id) ON DELETE SET NULL,
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

-- Whether `actor` may use what `owner` or `team` holds (a tag, a model): their own personal
-- one, or one of a team they belong to. One rule for every such table (chats have their
-- richer `sambung_chat_reader`); SQL, so the planner inlines it into each query.
CREATE FUNCTION sambung_usable_by(owner uuid, team uuid, actor uuid) RETURNS boolean
  LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (team IS NULL AND owner = actor)
        OR team IN (SELECT m.team_id FROM team_members m WHERE m.user_id = actor)
  $$;
