-- The request identity, read from request.jwt.claims (PostgREST/Supabase
-- convention) for Clerk v1 and v2 session tokens.

-- Anonymous: no claims at all.
SELECT current_clerk_user(), current_clerk_org(), current_clerk_session(),
       current_clerk_org_role(), current_clerk_claims(), clerk_has_permission('org:a:b');

BEGIN;
-- A v1 session token's claims.
SELECT set_config('request.jwt.claims', '{
    "sub": "user_2abc", "sid": "sess_2xyz", "iss": "https://clerk.example.com",
    "org_id": "org_2acme", "org_role": "org:admin", "org_slug": "acme",
    "org_permissions": ["org:invoices:read", "org:invoices:create"]
}', true) IS NOT NULL AS claims_set;
SELECT current_clerk_user(), current_clerk_org(), current_clerk_session(), current_clerk_org_role();
SELECT clerk_has_permission('org:invoices:create') AS can_create,
       clerk_has_permission('org:invoices:delete') AS can_delete,
       clerk_has_permission(NULL) AS null_permission;
SELECT current_clerk_claims() ->> 'org_slug' AS slug, pg_typeof(current_clerk_claims());
COMMIT;

-- The setting was transaction-local: anonymous again.
SELECT current_clerk_user() IS NULL AS anonymous_after_commit;

BEGIN;
-- A v2 token: compact "o" claim; permissions from fea × o.per via o.fpm.
SELECT set_config('request.jwt.claims', '{
    "v": 2, "sub": "user_2abc", "sid": "sess_2xyz", "fea": "o:dashboard,o:teams",
    "o": {"id": "org_2acme", "rol": "admin", "slg": "acme", "per": "manage,read", "fpm": "3,2"}
}', true) IS NOT NULL AS claims_set;
SELECT current_clerk_org(), current_clerk_org_role();
SELECT p, clerk_has_permission(p)
  FROM unnest(ARRAY['org:dashboard:manage', 'org:dashboard:read', 'org:teams:read', 'org:teams:manage']) p;
COMMIT;

BEGIN;
-- A token without an active organization.
SELECT set_config('request.jwt.claims', '{"sub": "user_solo", "sid": "sess_1"}', true) IS NOT NULL AS claims_set;
SELECT current_clerk_user(), current_clerk_org(), current_clerk_org_role();
COMMIT;

-- Malformed claims are an error (28000), never a silent anonymous.
SELECT claims, regress.error_of(format(
           $$SELECT set_config('request.jwt.claims', %L, true), current_clerk_user()$$, claims)) AS result
  FROM (VALUES ('{"sub": "usr_1"}'), ('{"sub": "user_1", "org_id": "user_2"}'),
               ('{"sub": 42}'), ('not json'), ('[1]')) t(claims);

-- Parallel workers see the same identity as the leader.
CREATE TABLE par AS SELECT g AS n, CASE WHEN g % 3 = 0 THEN 'user_2abc' ELSE 'user_other' END::clerk_user_id AS user_id
  FROM generate_series(1, 30000) g;
ANALYZE par;
BEGIN;
-- force_parallel_mode is called debug_parallel_query from PostgreSQL 16 on.
SELECT CASE WHEN current_setting('server_version_num')::int >= 160000
            THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END AS force_parallel \gset
SET LOCAL :force_parallel = on;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
-- The leader only gathers: every row is filtered in a worker.
SET LOCAL parallel_leader_participation = off;
SELECT set_config('request.jwt.claims', '{"sub": "user_2abc"}', true) IS NOT NULL AS claims_set;
EXPLAIN (COSTS OFF) SELECT count(*) FROM par WHERE user_id = current_clerk_user();
SELECT count(*) FROM par WHERE user_id = current_clerk_user();
COMMIT;
DROP TABLE par;
