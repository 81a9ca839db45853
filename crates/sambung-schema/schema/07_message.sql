-- Messages of a chat. (The design declared chat_id as serial referencing a uuid: fixed.)

CREATE TABLE messages (
  id         uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  chat_id    uuid        NOT NULL,
  role       text        NOT NULL,
  content    text        NOT NULL,
  -- {"model": …, "tokens": …, "finishReason": …}
  metadata   jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- The words of content, computed once per row (by messages_set_content_tsv): searching
  -- filters on it without re-parsing. Written by a trigger, not GENERATED, so that a bulk load
  -- (`db seed --scale`) can compute it where that is cheapest and send it along.
  -- (Last, where migration 0002 added it.)
  content_tsv tsvector,
  CONSTRAINT messages_pkey PRIMARY KEY (id),
  CONSTRAINT messages_chat_id_fkey FOREIGN KEY (chat_id) REFERENCES chats (id) ON DELETE CASCADE,
  CONSTRAINT messages_role_check CHECK (role IN ('user', 'assistant', 'system')),
  CONSTRAINT messages_metadata_object CHECK (jsonb_typeof(metadata) = 'object')
);

-- (chat_id, created_at) rather than (chat_id): a chat's messages come out in order from it.
CREATE INDEX message_chat_id_idx ON messages (chat_id, created_at);
CREATE INDEX message_created_at_idx ON messages (created_at);
-- Word search over message text; 'simple' because chats are in any language.
CREATE INDEX message_content_search_idx ON messages USING gin (content_tsv);
-- Replies being written (a handful at any time): what a server reads when it looks for replies
-- whose server died (sambung_db::lease).
CREATE INDEX message_streaming_idx ON messages (chat_id) WHERE (metadata->>'status') = 'streaming';

-- content_tsv is always to_tsvector('simple', content): computed on every insert and update,
-- whatever the statement wrote there.
CREATE FUNCTION sambung_message_words() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.content_tsv := to_tsvector('simple', NEW.content);
  RETURN NEW;
END $$;

CREATE TRIGGER messages_set_content_tsv BEFORE INSERT OR UPDATE ON messages
  FOR EACH ROW EXECUTE FUNCTION sambung_message_words();
