-- Files people attach to their messages (SPEC section 14), kept in PostgreSQL so that every
-- server, replica, `db backup` and `db restore` has them with nothing more to set up.

-- A file: who uploaded it (whose storage it counts against), what it is (its media type is
-- decided by its bytes, never by its name), and its SHA-256: one owner keeps one copy of the
-- same bytes. The bytes are in `file_chunks`.
CREATE TABLE files (
  id         uuid        NOT NULL DEFAULT sambung_uuid_v7(),
  user_id    uuid        NOT NULL,
  sha256     bytea       NOT NULL,
  media_type text        NOT NULL,
  size       bigint      NOT NULL,
  name       text        NOT NULL,
  -- An image's width and height in pixels (none for other files).
  width      integer,
  height     integer,
  -- A small PNG of an image, made once its decoding passed the limits.
  thumbnail  bytea,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- A PDF's text, page by page, read once when it was kept, for models that read no PDFs
  -- (none: not a PDF, or its text could not be read). Last, where migration 0017 added it.
  text       text,
  CONSTRAINT files_pkey PRIMARY KEY (id),
  CONSTRAINT files_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT files_user_id_sha256_key UNIQUE (user_id, sha256),
  CONSTRAINT files_sha256_length CHECK (length(sha256) = 32),
  CONSTRAINT files_size_check CHECK (size >= 0),
  CONSTRAINT files_name_length CHECK (length(name) BETWEEN 1 AND 255),
  CONSTRAINT files_media_type_check CHECK (media_type IN ('image/png', 'image/jpeg', 'image/webp', 'image/gif', 'application/pdf', 'text/plain', 'text/markdown', 'text/csv', 'application/json'))
);

-- A file's bytes, a megabyte a row: written and read a piece at a time, so that neither an
-- upload nor a download holds a whole file in the server's memory.
CREATE TABLE file_chunks (
  file_id uuid    NOT NULL,
  seq     integer NOT NULL,
  data    bytea   NOT NULL,
  CONSTRAINT file_chunks_pkey PRIMARY KEY (file_id, seq),
  CONSTRAINT file_chunks_file_id_fkey FOREIGN KEY (file_id) REFERENCES files (id) ON DELETE CASCADE,
  CONSTRAINT file_chunks_seq_check CHECK (seq >= 0)
);

-- Which files a message carries, in the order they were attached. Whoever may read the chat
-- may read them.
CREATE TABLE message_files (
  message_id uuid     NOT NULL,
  file_id    uuid     NOT NULL,
  position   smallint NOT NULL,
  CONSTRAINT message_files_pkey PRIMARY KEY (message_id, file_id),
  CONSTRAINT message_files_message_id_fkey FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE,
  CONSTRAINT message_files_file_id_fkey FOREIGN KEY (file_id) REFERENCES files (id) ON DELETE CASCADE,
  CONSTRAINT message_files_position_check CHECK (position >= 0)
);

CREATE INDEX message_file_file_id_idx ON message_files (file_id);

-- A file goes with the last message that carried it: when its chat or message is deleted, a
-- file no message carries any more is deleted too (an upload never sent is swept after a day
-- by the server's housekeeping). A file another transaction holds a lock on is being given
-- to a message that this one cannot see yet (an import's, the same bytes uploaded again):
-- it is left (SKIP LOCKED), neither waited for nor deleted from under that message; if that
-- message never comes, the sweep takes it.
CREATE FUNCTION sambung_file_follows_messages() RETURNS trigger
  LANGUAGE plpgsql AS $$
  BEGIN
    DELETE FROM files f
     WHERE f.id IN (SELECT l.id FROM files l
                     WHERE l.id = OLD.file_id
                       AND NOT EXISTS (SELECT 1 FROM message_files mf WHERE mf.file_id = OLD.file_id)
                       FOR UPDATE SKIP LOCKED);
    RETURN NULL;
  END
  $$;

CREATE TRIGGER message_files_free_files AFTER DELETE ON message_files
  FOR EACH ROW EXECUTE FUNCTION sambung_file_follows_messages();
