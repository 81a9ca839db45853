-- Chats and tags, many to many.

CREATE TABLE chat_tags (
  chat_id    uuid        NOT NULL,
  tag_id     uuid        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT chat_tags_pkey PRIMARY KEY (chat_id, tag_id),
  CONSTRAINT chat_tags_chat_id_fkey FOREIGN KEY (chat_id) REFERENCES chats (id) ON DELETE CASCADE,
  CONSTRAINT chat_tags_tag_id_fkey FOREIGN KEY (tag_id) REFERENCES tags (id) ON DELETE CASCADE
);

CREATE INDEX chat_tag_chat_id_idx ON chat_tags (chat_id);
CREATE INDEX chat_tag_tag_id_idx ON chat_tags (tag_id);
