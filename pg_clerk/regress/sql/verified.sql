-- Verified mode: tokens checked inside the database, and a hand-set
-- request.jwt.claims no longer enough to act as someone else.
-- Tokens come from pg_clerk/regress/tokens.sh (signed at test time).

\getenv jwks PG_CLERK_TEST_JWKS
\getenv token PG_CLERK_TEST_TOKEN
\getenv expired PG_CLERK_TEST_TOKEN_EXPIRED
\getenv other_azp PG_CLERK_TEST_TOKEN_OTHER_AZP
\getenv alg_none PG_CLERK_TEST_TOKEN_NONE
\getenv forged PG_CLERK_TEST_TOKEN_FORGED

-- Without keys, verification explains what to configure.
SELECT regress.error_of($$SELECT clerk_authenticate('a.b.c')$$);

-- What a DBA puts in postgresql.conf (here: for this session, as superuser).
SET pg_clerk.jwks = :'jwks';
SET pg_clerk.issuer = 'https://clerk.example.com';
SET pg_clerk.authorized_parties = 'https://app.example.com, https://admin.example.com';
SET pg_clerk.require_verified = on;

CREATE ROLE verified_app NOLOGIN;
CREATE TABLE secrets (user_id clerk_user_id NOT NULL, secret text);
INSERT INTO secrets VALUES ('user_alice', 'alice''s secret'), ('user_bob', 'bob''s secret');
SELECT clerk_enable_rls('secrets');
GRANT SELECT ON secrets TO verified_app;

-- Attack: a client with the database password sets the claims by hand.
BEGIN;
SET LOCAL ROLE verified_app;
SET LOCAL request.jwt.claims = '{"sub": "user_bob"}';
SELECT current_clerk_user() AS hand_set_claims_give, count(*) AS rows_visible FROM secrets;
-- ... or tries to switch verified mode off, or to write the verified claims.
SELECT regress.error_of($$SET pg_clerk.require_verified = off$$);
SELECT regress.error_of($$SET pg_clerk.verified_claims = '{"sub": "user_bob"}'$$);
SELECT regress.error_of($$SELECT set_config('pg_clerk.verified_claims', '{"sub": "user_bob"}', true)$$);
SELECT regress.error_of($$SET pg_clerk.jwks = '{"keys": []}'$$);
COMMIT;

-- Each bad token is refused with SQLSTATE 28000 and a reason.
SET ROLE verified_app;
SELECT name, regress.error_of(format('SELECT clerk_authenticate(%L)', tok)) AS result
  FROM (VALUES ('expired', :'expired'), ('azp not authorized', :'other_azp'),
               ('alg none', :'alg_none'), ('payload edited', :'forged'),
               ('garbage', 'not-a-token')) t(name, tok);
RESET ROLE;

-- A real token: the identity for this transaction only.
BEGIN;
SET LOCAL ROLE verified_app;
SELECT clerk_authenticate(:'token') AS authenticated_as;
SELECT current_clerk_user(), current_clerk_session();
SELECT secret FROM secrets;
-- Parallel workers see the verified identity too (the leader only gathers).
-- force_parallel_mode is called debug_parallel_query from PostgreSQL 16 on.
SELECT CASE WHEN current_setting('server_version_num')::int >= 160000
            THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END AS force_parallel \gset
SET LOCAL :force_parallel = on;
SET LOCAL parallel_leader_participation = off;
SELECT count(*) AS rows_seen_by_worker FROM secrets WHERE user_id = current_clerk_user();
RESET :force_parallel;
RESET parallel_leader_participation;
-- Hand-set claims cannot override a verified identity either.
SET LOCAL request.jwt.claims = '{"sub": "user_bob"}';
SELECT current_clerk_user() AS still;
COMMIT;
SELECT current_clerk_user() IS NULL AS gone_after_commit;

-- A rolled-back savepoint takes the verification with it.
BEGIN;
SAVEPOINT s;
SELECT clerk_authenticate(:'token') IS NOT NULL AS authenticated;
ROLLBACK TO SAVEPOINT s;
SELECT current_clerk_user() IS NULL AS gone_after_rollback_to_savepoint;
COMMIT;

DROP TABLE secrets;
DROP ROLE verified_app;
RESET ALL;
