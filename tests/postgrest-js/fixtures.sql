-- Fixtures of the postgrest-js suite beyond the reference schema: column
-- types the filter operators apply to. Applied by scripts/test.sh to the
-- suite's database (as the superuser), after the Rust end-to-end tests.
DROP TABLE IF EXISTS public.pgjs_items;
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
