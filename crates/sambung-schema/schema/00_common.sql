-- Shared by every table: the extension for substring search, the id default, the
-- updated_at trigger function.

-- Trigram indexes let substring search (ILIKE '%word%') use an index.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Time-ordered UUIDv7 ids (RFC 9562): 48 bits of Unix milliseconds, then random bits, so new
-- rows land at the right edge of the primary-key index. The application makes its own v7 ids;
-- this default keeps a plain INSERT (Studio, psql) working.
CREATE FUNCTION sambung_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
  SELECT encode(
    set_bit(
      set_bit(
        overlay(uuid_send(gen_random_uuid())
                PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                FROM 1 FOR 6),
        52, 1),
      53, 1),
    'hex')::uuid
$$;

-- Keeps updated_at right for every writer (the app, Studio, raw SQL). A no-op update
-- (nothing changed) keeps the old time.
CREATE FUNCTION sambung_set_updated_at() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF NEW IS DISTINCT FROM OLD THEN
    NEW.updated_at := now();
  END IF;
  RETURN NEW;
END
$$;
