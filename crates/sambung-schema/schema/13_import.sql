-- What an import made of what: a conversation of another service (or a row of an upstream
-- SambungChat database) and the row it became, so that importing the same file or database
-- again adds only what is new. Kept per user: the same conversation imported by two users is
-- two chats.

CREATE TABLE imported_rows (
  user_id    uuid        NOT NULL,
  -- chatgpt, claude, openwebui, sambung (our own export), upstream (a database).
  source     text        NOT NULL,
  -- chat, message, folder, prompt, model, api_key, user, account.
  kind       text        NOT NULL,
  source_id  text        NOT NULL,
  target_id  uuid        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT imported_rows_pkey PRIMARY KEY (user_id, source, kind, source_id),
  CONSTRAINT imported_rows_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT imported_rows_source_id_length CHECK (length(source_id) BETWEEN 1 AND 512)
);
