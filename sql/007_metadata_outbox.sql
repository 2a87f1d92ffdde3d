-- Database → Clerk: each customer's public metadata (totalOrders,
-- totalSpent, customerTier), so apps read them from the session token.
-- A transactional outbox: the row is written in the same transaction as
-- the order change that moved the numbers, one row per user (later changes
-- overwrite a pending one: only the latest state is sent), and a worker
-- delivers it to Clerk's Backend API. Safe to re-run.

CREATE TABLE IF NOT EXISTS clerk_metadata_outbox (
    user_id          clerk_user_id PRIMARY KEY,
    public_metadata  jsonb NOT NULL,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status      integer,
    last_error       text,
    queued_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);
CREATE INDEX IF NOT EXISTS clerk_metadata_outbox_due_idx ON clerk_metadata_outbox (next_attempt_at) WHERE state = 'pending';
REVOKE ALL ON clerk_metadata_outbox FROM PUBLIC;
ALTER TABLE clerk_metadata_outbox ENABLE ROW LEVEL SECURITY;

-- What Clerk should hold for a customer, from orders that count
-- (paid, not cancelled or refunded).
CREATE OR REPLACE FUNCTION clerk_customer_metadata(customer clerk_user_id) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT jsonb_build_object('totalOrders', count(*), 'totalSpent', coalesce(sum(total_amount), 0),
                              'customerTier', clerk_customer_tier(coalesce(sum(total_amount), 0)))
      FROM orders
     WHERE user_id = customer AND payment_status = 'paid' AND status NOT IN ('cancelled', 'refunded')
$$;
REVOKE EXECUTE ON FUNCTION clerk_customer_metadata(clerk_user_id) FROM PUBLIC;

-- Queues the customer's metadata when it differs from what was last queued.
CREATE OR REPLACE FUNCTION queue_clerk_metadata() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    customer clerk_user_id := CASE TG_OP WHEN 'DELETE' THEN OLD.user_id ELSE NEW.user_id END;
    metadata jsonb;
BEGIN
    IF customer::text LIKE 'user_erased%' THEN
        RETURN NULL;  -- an erased customer has no Clerk account to update
    END IF;
    metadata := clerk_customer_metadata(customer);
    INSERT INTO clerk_metadata_outbox AS q (user_id, public_metadata) VALUES (customer, metadata)
    ON CONFLICT (user_id) DO UPDATE
       SET public_metadata = EXCLUDED.public_metadata, state = 'pending', attempts = 0, next_attempt_at = now(),
           last_status = NULL, last_error = NULL, queued_at = now(), delivered_at = NULL
     WHERE q.public_metadata IS DISTINCT FROM EXCLUDED.public_metadata;
    RETURN NULL;
END
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'orders'::regclass AND tgname = 'orders_queue_clerk_metadata') THEN
        CREATE TRIGGER orders_queue_clerk_metadata AFTER INSERT OR DELETE OR UPDATE OF status, payment_status, total_amount ON orders
            FOR EACH ROW EXECUTE FUNCTION queue_clerk_metadata();
    END IF;
END
$$;

-- The worker's side, for role clerk_sync. In one transaction: claim a batch
-- (FOR UPDATE SKIP LOCKED, so several workers never take the same row; a
-- worker that dies releases its rows with its transaction), call Clerk,
-- mark each row, commit.
CREATE OR REPLACE FUNCTION clerk_outbox_claim(batch integer DEFAULT 20)
RETURNS TABLE (user_id clerk_user_id, public_metadata jsonb, attempts integer)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT q.user_id, q.public_metadata, q.attempts FROM clerk_metadata_outbox q
     WHERE q.state = 'pending' AND q.next_attempt_at <= now()
     ORDER BY q.next_attempt_at
     LIMIT batch
       FOR UPDATE SKIP LOCKED
$$;

CREATE OR REPLACE FUNCTION clerk_outbox_delivered(customer clerk_user_id, status integer) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE clerk_metadata_outbox
       SET state = 'delivered', delivered_at = now(), last_status = status, last_error = NULL, attempts = attempts + 1
     WHERE user_id = customer
$$;

-- A failed call: 4xx other than 429 is final (dead, response kept); 429
-- waits retry_after; anything else backs off exponentially (2^n s, capped
-- at an hour).
CREATE OR REPLACE FUNCTION clerk_outbox_failed(customer clerk_user_id, status integer, error text,
                                               retry_after interval DEFAULT NULL) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE clerk_metadata_outbox
       SET attempts = attempts + 1, last_status = status, last_error = left(error, 2000),
           state = CASE WHEN status BETWEEN 400 AND 499 AND status <> 429 THEN 'dead' ELSE 'pending' END,
           next_attempt_at = now() + CASE
               WHEN status = 429 AND retry_after IS NOT NULL THEN retry_after
               ELSE least(interval '1 second' * power(2, least(attempts, 12)), interval '1 hour') END
     WHERE user_id = customer
$$;

REVOKE EXECUTE ON FUNCTION clerk_outbox_claim(integer), clerk_outbox_delivered(clerk_user_id, integer),
    clerk_outbox_failed(clerk_user_id, integer, text, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION clerk_outbox_claim(integer), clerk_outbox_delivered(clerk_user_id, integer),
    clerk_outbox_failed(clerk_user_id, integer, text, interval) TO clerk_sync;

-- For DBAs: the outbox at a glance.
CREATE OR REPLACE VIEW clerk_metadata_outbox_status AS
SELECT state, count(*) AS users, min(queued_at) AS oldest_queued_at, max(attempts) AS max_attempts,
       count(*) FILTER (WHERE state = 'pending' AND next_attempt_at > now()) AS waiting_for_retry
  FROM clerk_metadata_outbox GROUP BY state;
REVOKE ALL ON clerk_metadata_outbox_status FROM PUBLIC;
GRANT SELECT ON clerk_metadata_outbox_status TO clerk_sync;  -- for clerk-proxy's /metrics
