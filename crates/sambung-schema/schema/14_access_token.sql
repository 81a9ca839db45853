-- Personal access tokens (SPEC section 16): a person's programs reach the OpenAI-compatible
-- endpoint (scope `chat`) and the JSON API (`read`, `write`) as them. Shown once as
-- `sk-sambung-…`; only the SHA-256 is kept. Revoking one deletes its row (the audit log keeps
-- that it was).
CREATE TABLE access_tokens (
  id           uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  user_id      uuid        NOT NULL,
  name         text        NOT NULL,
  token_hash   text        NOT NULL,
  -- The token's last four characters, to tell tokens apart in a list.
  last_four    text        NOT NULL,
  scopes       text[]      NOT NULL,
  -- None: until revoked.
  expires_at   timestamptz,
  last_used_at timestamptz,
  last_used_ip text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT access_tokens_pkey PRIMARY KEY (id),
  CONSTRAINT access_tokens_token_hash_key UNIQUE (token_hash),
  CONSTRAINT access_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT access_tokens_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
  CONSTRAINT access_tokens_scopes_known CHECK (cardinality(scopes) BETWEEN 1 AND 3 AND scopes <@ ARRAY['chat', 'read', 'write'])
);

CREATE INDEX access_token_user_id_idx ON access_tokens (user_id, created_at);
