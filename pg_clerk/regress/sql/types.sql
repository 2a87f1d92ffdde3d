-- The Clerk id types: validation, casts, operators, indexes, storage.

-- Valid ids of each type.
SELECT 'user_2NNEqL2nrIRdJ194ndJqAHwEfxC'::clerk_user_id,
       'org_2abc'::clerk_org_id,
       'sess_9xyz'::clerk_session_id;

-- What a user sees for a bad id: the type, the value and why.
SELECT 'user_a b'::clerk_user_id;

-- Every malformed input is SQLSTATE 22P02 (invalid_text_representation).
SELECT input, regress.error_of(format('SELECT %L::clerk_user_id', input)) AS result
  FROM (VALUES ('usr_1'), ('user_'), ('user_a b'), ('USER_a'), ('user_a-b'),
               ('org_abc'), (''), ('user_' || repeat('a', 60))) AS t(input);

-- 64 bytes is the limit.
SELECT length(('user_' || repeat('a', 59))::clerk_user_id) AS longest_accepted;

-- Each type takes only its own prefix.
SELECT regress.error_of($$SELECT 'user_1'::clerk_org_id$$),
       regress.error_of($$SELECT 'org_1'::clerk_session_id$$),
       regress.error_of($$SELECT 'org_1'::clerk_org_id::clerk_user_id$$);

-- Casts: to text returns the same bytes; from text validates.
SELECT 'user_1'::clerk_user_id::text, pg_typeof('user_1'::clerk_user_id::text);
SELECT regress.error_of($$SELECT 'user_x!'::text::clerk_user_id$$),
       regress.error_of($$SELECT 'org_1'::varchar::clerk_user_id$$),
       clerk_user_id('user_fn') AS function_form;
SELECT 'user_1'::clerk_user_id LIKE 'user_%' AS text_functions_work;

-- Comparison is byte-wise: upper case sorts before lower case on every locale.
SELECT array_agg(v ORDER BY v) AS sorted
  FROM (VALUES ('user_b'::clerk_user_id), ('user_B'), ('user_a'), ('user_A1'), ('user_10'), ('user_9')) t(v);
SELECT 'user_a'::clerk_user_id = 'user_a', 'user_a'::clerk_user_id <> 'user_b',
       'user_a'::clerk_user_id < 'user_b', 'user_b'::clerk_user_id <= 'user_b',
       'user_c'::clerk_user_id > 'user_b', 'user_c'::clerk_user_id >= 'user_d';

-- Stored as plain text: the same bytes on disk as varchar (10 + 1-byte header).
CREATE TABLE sizes (id clerk_user_id, v varchar(255));
INSERT INTO sizes VALUES ('user_Bob42', 'user_Bob42');
SELECT pg_column_size(id) AS id_size, pg_column_size(v) AS varchar_size FROM sizes;
DROP TABLE sizes;

-- Binary send is the text bytes.
SELECT clerk_user_id_send('user_1');

-- As a primary key, UNIQUE, indexed, joined.
CREATE TABLE members (
    user_id clerk_user_id PRIMARY KEY,
    org_id clerk_org_id NOT NULL,
    session_id clerk_session_id UNIQUE
);
INSERT INTO members VALUES ('user_1', 'org_1', 'sess_1'), ('user_2', 'org_1', 'sess_2');
SELECT regress.error_of($$INSERT INTO members VALUES ('user_1', 'org_2', 'sess_3')$$) AS duplicate_key;
SELECT regress.error_of($$INSERT INTO members VALUES ('user_3', 'org_2', 'sess_1')$$) AS duplicate_unique;
SELECT regress.error_of($$INSERT INTO members VALUES ('usr_3', 'org_2', 'sess_3')$$) AS bad_insert;
-- Text parameters are validated on assignment too.
SELECT regress.error_of($$INSERT INTO members VALUES ('user_4'::text, 'org_2'::text, 'sess_4!'::text)$$) AS bad_text_insert;
-- Text patterns over an indexed id column: the cast is a function, so the
-- planner does not try the id's index for LIKE (PostgreSQL 18 failed with
-- "cache lookup failed for collation 0" on a binary-coercible cast).
SELECT count(*) AS like_prefix FROM members WHERE user_id::text LIKE 'user_%';
SELECT count(*) AS like_implicit FROM members WHERE user_id LIKE 'user_1%';
SELECT count(*) AS like_varchar FROM members WHERE session_id::varchar LIKE 'sess_%';
CREATE TABLE orders (id int PRIMARY KEY, user_id clerk_user_id NOT NULL);
CREATE INDEX ON orders (user_id);
INSERT INTO orders SELECT g, CASE WHEN g % 2 = 0 THEN 'user_1' ELSE 'user_2' END FROM generate_series(1, 1000) g;
ANALYZE members, orders;

SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM orders WHERE user_id = 'user_1';
RESET enable_seqscan;

SET enable_mergejoin = off;
SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM orders o JOIN members m USING (user_id);
SELECT m.user_id, count(*) FROM orders o JOIN members m USING (user_id) GROUP BY m.user_id ORDER BY 1;
RESET enable_mergejoin;
RESET enable_nestloop;

-- Hash aggregation and hash partitioning use the hash opclass.
SET enable_sort = off;
EXPLAIN (COSTS OFF) SELECT user_id, count(*) FROM orders GROUP BY user_id;
SELECT user_id, count(*) FROM orders GROUP BY user_id ORDER BY user_id;
RESET enable_sort;
CREATE TABLE events (user_id clerk_user_id, n int) PARTITION BY HASH (user_id);
CREATE TABLE events_0 PARTITION OF events FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE events_1 PARTITION OF events FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO events SELECT 'user_' || g, g FROM generate_series(1, 100) g;
SELECT count(*) > 0 AS both_partitions_used FROM events_0 HAVING (SELECT count(*) FROM events_1) > 0;

DROP TABLE members, orders, events;
