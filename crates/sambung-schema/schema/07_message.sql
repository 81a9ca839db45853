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
  -- The message this one follows (none: the chat's first question, or an edit of it). Edits
  -- and regenerations add siblings rather than replace: a chat's messages form a tree.
  -- Left out on insert, it is the last message of the shown path (messages_follow_path).
  parent_id  uuid,
  -- Off the path the chat shows (a branch left by an edit, a regeneration or a switch): not
  -- listed, searched, shared or sent to the model, but kept.
  off_path   boolean     NOT NULL DEFAULT false,
  CONSTRAINT messages_pkey PRIMARY KEY (id),
  CONSTRAINT messages_chat_id_fkey FOREIGN KEY (chat_id) REFERENCES chats (id) ON DELETE CASCADE,
  CONSTRAINT messages_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES messages (id) ON DELETE CASCADE,
  CONSTRAINT messages_role_check CHECK (role IN ('user', 'assistant', 'system')),
  CONSTRAINT messages_metadata_object CHECK (jsonb_typeof(metadata) = 'object')
);

-- (chat_id, off_path, created_at, id) rather than (chat_id): the shown path of a chat comes out in
-- order from it, however many branches the chat keeps beside it.
CREATE INDEX message_chat_id_idx ON messages (chat_id, off_path, created_at, id);
-- A message's children (its siblings' list, and the cascade when a message goes).
CREATE INDEX message_parent_id_idx ON messages (parent_id, chat_id);
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

CREATE TRIGGER messages_set_content_tsv BEFORE INSERT OR UPDATE OF content ON messages
  FOR EACH ROW EXECUTE FUNCTION sambung_message_words();

-- A message inserted without a parent follows the last message of its chat's shown path (the
-- one on it with no child on it), so every writer (a turn, an appended message, a seed, an
-- import) grows the tree the same way; an edit or a regeneration takes the old branch off the
-- path first. The chat's row is locked first, so writers at once take turns and never share
-- a parent (each statement of the function reads anew), and a message is never older than
-- its parent (a transaction's now() can be earlier than the one it waited for).
CREATE FUNCTION sambung_message_follows_path() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  leaf record;
BEGIN
  IF NEW.parent_id IS NULL AND NOT NEW.off_path THEN
    PERFORM 1 FROM chats WHERE id = NEW.chat_id FOR UPDATE;
    SELECT m.id, m.created_at INTO leaf FROM messages m
     WHERE m.chat_id = NEW.chat_id AND NOT m.off_path
       AND NOT EXISTS (SELECT 1 FROM messages c WHERE c.parent_id = m.id AND NOT c.off_path)
     ORDER BY m.created_at DESC, m.id DESC LIMIT 1;
    IF FOUND THEN
      NEW.parent_id := leaf.id;
      IF NEW.created_at <= leaf.created_at THEN
        NEW.created_at := leaf.created_at + interval '1 microsecond';
      END IF;
    END IF;
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER messages_follow_path BEFORE INSERT ON messages
  FOR EACH ROW EXECUTE FUNCTION sambung_message_follows_path();
