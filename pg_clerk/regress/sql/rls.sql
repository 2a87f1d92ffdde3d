-- clerk_enable_rls / clerk_enable_org_rls: two users, one table, and each
-- sees, changes and creates only their own rows.

CREATE ROLE rls_app NOLOGIN;
CREATE SCHEMA app;
GRANT USAGE ON SCHEMA app TO rls_app;

CREATE TABLE app.notes (id serial PRIMARY KEY, user_id clerk_user_id NOT NULL, body text);
GRANT SELECT, INSERT, UPDATE, DELETE ON app.notes TO rls_app;
GRANT USAGE ON SEQUENCE app.notes_id_seq TO rls_app;
INSERT INTO app.notes (user_id, body) VALUES
    ('user_alice', 'alice 1'), ('user_alice', 'alice 2'), ('user_bob', 'bob 1');

SELECT clerk_enable_rls('app.notes', 'user_id');
-- Idempotent: a second call leaves the same four policies.
SELECT clerk_enable_rls('app.notes');
SELECT policyname, cmd, qual, with_check FROM pg_policies WHERE tablename = 'notes' ORDER BY policyname;
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'app.notes'::regclass;

BEGIN;
SET LOCAL ROLE rls_app;
SELECT set_config('request.jwt.claims', '{"sub": "user_alice"}', true) IS NOT NULL AS as_alice;
SELECT user_id, body FROM app.notes ORDER BY id;
-- Bob's row cannot be changed or deleted: zero rows affected.
WITH u AS (UPDATE app.notes SET body = 'hacked' WHERE body = 'bob 1' RETURNING 1) SELECT count(*) AS updated FROM u;
WITH d AS (DELETE FROM app.notes WHERE body = 'bob 1' RETURNING 1) SELECT count(*) AS deleted FROM d;
WITH u AS (UPDATE app.notes SET body = 'alice 1 (edited)' WHERE body = 'alice 1' RETURNING 1) SELECT count(*) AS updated_own FROM u;
-- Inserting a row owned by Bob, or moving a row to him, is refused.
SELECT regress.error_of($$INSERT INTO app.notes (user_id, body) VALUES ('user_bob', 'forged')$$) AS insert_for_bob;
SELECT regress.error_of($$UPDATE app.notes SET user_id = 'user_bob' WHERE body = 'alice 2'$$) AS give_to_bob;
INSERT INTO app.notes (user_id, body) VALUES ('user_alice', 'alice 3');
COMMIT;

BEGIN;
SET LOCAL ROLE rls_app;
SELECT set_config('request.jwt.claims', '{"sub": "user_bob"}', true) IS NOT NULL AS as_bob;
SELECT user_id, body FROM app.notes ORDER BY id;
WITH d AS (DELETE FROM app.notes WHERE body LIKE 'alice%' RETURNING 1) SELECT count(*) AS deleted_alices FROM d;
WITH d AS (DELETE FROM app.notes WHERE body = 'bob 1' RETURNING 1) SELECT count(*) AS deleted_own FROM d;
COMMIT;

BEGIN;
SET LOCAL ROLE rls_app;
-- Anonymous sees nothing.
SELECT count(*) AS anonymous_sees FROM app.notes;
COMMIT;

-- As superuser (RLS does not apply): the rows are as each user left them.
SELECT user_id, body FROM app.notes ORDER BY id;

-- Organization-scoped rows.
CREATE TABLE app.projects (id serial PRIMARY KEY, org_id clerk_org_id NOT NULL, name text);
GRANT SELECT ON app.projects TO rls_app;
INSERT INTO app.projects (org_id, name) VALUES ('org_acme', 'rocket'), ('org_globex', 'laser');
SELECT clerk_enable_org_rls('app.projects');
BEGIN;
SET LOCAL ROLE rls_app;
SELECT set_config('request.jwt.claims', '{"sub": "user_alice", "org_id": "org_acme", "org_role": "org:member"}', true) IS NOT NULL;
SELECT org_id, name FROM app.projects;
COMMIT;

-- Text owner columns work too; other types and missing columns are errors.
CREATE TABLE app.legacy (owner text, other int);
SELECT clerk_enable_rls('app.legacy', 'owner');
SELECT qual FROM pg_policies WHERE tablename = 'legacy' AND cmd = 'SELECT';
SELECT regress.error_of($$SELECT clerk_enable_rls('app.legacy', 'other')$$);
SELECT regress.error_of($$SELECT clerk_enable_rls('app.legacy', 'nope')$$);
SELECT regress.error_of($$SELECT clerk_enable_rls('app.no_such_table')$$);

DROP SCHEMA app CASCADE;
DROP ROLE rls_app;
