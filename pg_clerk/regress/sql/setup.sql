-- Shared by the other tests (pg_regress runs them in order in one database).

-- regress.error_of(statement): the SQLSTATE and message the statement fails
-- with, or 'ok'; lets a test show an error as a row and carry on.
CREATE SCHEMA regress;
GRANT USAGE ON SCHEMA regress TO PUBLIC;
CREATE FUNCTION regress.error_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
