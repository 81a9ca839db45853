-- Removes everything 0001_initial created, dependents first.

DROP TABLE api_keys;
DROP TABLE prompts;
DROP TABLE messages;
DROP TABLE chat_tags;
DROP TABLE chats;
DROP TABLE tags;
DROP TABLE folders;
DROP TABLE slug_redirects;
DROP TABLE team_invites;
DROP TABLE team_members;
DROP TABLE teams;
DROP TABLE verifications;
DROP TABLE accounts;
DROP TABLE sessions;
DROP TABLE users;
DROP FUNCTION sambung_set_updated_at();
DROP FUNCTION sambung_uuid_v7();
DROP EXTENSION pg_trgm;
