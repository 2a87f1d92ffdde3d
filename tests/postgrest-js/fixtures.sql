-- Fixtures of the postgrest-js suite beyond the reference schema: column
-- types the filter operators apply to. Applied by scripts/test.sh to the
-- suite's database (as the superuser), after the Rust end-to-end tests.
DROP TABLE IF EXISTS public.pgjs_items CASCADE;
CREATE TABLE public.pgjs_items (
    id      integer PRIMARY KEY,
    name    text,
    tags    text[],
    period  int4range,
    doc     jsonb,
    search  tsvector
);
INSERT INTO public.pgjs_items VALUES
    (1, 'Apple',   '{fruit,red}',       '[1,10)',  '{"a": 1}', to_tsvector('english', 'The fat cats ate the rats')),
    (2, 'Banana',  '{fruit,yellow}',    '[10,20)', '{"a": 2}', to_tsvector('english', 'Fat rats, thin cats')),
    (3, 'avocado', '{vegetable,green}', '[30,40)', '{"b": 3}', to_tsvector('english', 'Nothing to see here')),
    (4, NULL,      '{}',                NULL,      NULL,       NULL);
GRANT SELECT ON public.pgjs_items TO anon, authenticated;
NOTIFY pgrst, 'reload schema';
CREATE OR REPLACE FUNCTION public.pgjs_items_named(prefix text) RETURNS SETOF public.pgjs_items
LANGUAGE sql STABLE AS $$ SELECT * FROM public.pgjs_items WHERE name ILIKE prefix || '%' $$;
GRANT EXECUTE ON FUNCTION public.pgjs_items_named(text) TO anon, authenticated;
NOTIFY pgrst, 'reload schema';
-- Functions of every result shape, and a second exposed schema
-- (functions.test.mjs).
CREATE OR REPLACE FUNCTION public.pgjs_username_and_status() RETURNS TABLE (username text, status text)
LANGUAGE sql STABLE AS $$ VALUES ('supabot', 'ONLINE'), ('kiwicopple', 'OFFLINE'), ('awailas', 'ONLINE'), ('dragarcia', 'OFFLINE') $$;
CREATE OR REPLACE FUNCTION public.pgjs_add(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT a + b $$;
CREATE OR REPLACE FUNCTION public.pgjs_numbers() RETURNS SETOF integer LANGUAGE sql IMMUTABLE AS $$ VALUES (1), (2), (3) $$;
CREATE OR REPLACE FUNCTION public.pgjs_noop() RETURNS void LANGUAGE sql IMMUTABLE AS $$ SELECT $$;
GRANT EXECUTE ON FUNCTION public.pgjs_username_and_status(), public.pgjs_add(integer, integer), public.pgjs_numbers(), public.pgjs_noop() TO anon, authenticated;
DROP SCHEMA IF EXISTS pgjs_other CASCADE;
CREATE SCHEMA pgjs_other;
GRANT USAGE ON SCHEMA pgjs_other TO anon, authenticated;
CREATE TABLE pgjs_other.notes (id integer PRIMARY KEY, body text NOT NULL);
INSERT INTO pgjs_other.notes VALUES (1, 'from the other schema');
GRANT SELECT, INSERT ON pgjs_other.notes TO anon, authenticated;
CREATE FUNCTION pgjs_other.note_count() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM pgjs_other.notes $$;
GRANT EXECUTE ON FUNCTION pgjs_other.note_count() TO anon, authenticated;
NOTIFY pgrst, 'reload schema';
