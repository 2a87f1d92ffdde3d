-- The audit trail: written by triggers with the acting Clerk user and the
-- client's address and user agent from request.headers; append-only.

BEGIN;
SELECT regress.act_as('{"sub": "user_mgr", "org_id": "org_shop", "org_role": "org:manager"}');
SELECT set_config('request.headers', '{"x-forwarded-for": "203.0.113.7, 10.0.0.1", "user-agent": "postgrest-js/1.0"}', true) IS NOT NULL;
UPDATE products SET price = 11.00 WHERE slug = 'po-mug';
COMMIT;
SELECT user_id, action, resource_type, old_data ->> 'price' AS old_price, new_data ->> 'price' AS new_price,
       ip_address, user_agent
  FROM audit_log WHERE resource_type = 'products' ORDER BY audit_id DESC LIMIT 1;

-- Malformed headers do not block the change; they are just not recorded.
BEGIN;
SELECT regress.act_as('{"sub": "user_mgr", "org_id": "org_shop", "org_role": "org:manager"}');
SELECT set_config('request.headers', '{"x-forwarded-for": "not an ip"', true) IS NOT NULL;
UPDATE products SET price = 11.50 WHERE slug = 'po-mug';
COMMIT;
SELECT user_id, ip_address, user_agent FROM audit_log WHERE resource_type = 'products' ORDER BY audit_id DESC LIMIT 1;

-- Orders created by place_order() and coupon changes are audited too.
SELECT resource_type, action, count(*) > 0 AS audited FROM audit_log
 WHERE resource_type IN ('orders', 'coupons') GROUP BY 1, 2 ORDER BY 1, 2;

-- Nobody but the owner changes the log: not customers, not even admins.
BEGIN;
SELECT regress.act_as('{"sub": "user_adm", "metadata": {"role": "admin"}}');
SELECT count(*) > 0 AS admin_reads FROM audit_log;
SELECT regress.error_of($$UPDATE audit_log SET user_id = NULL$$) AS admin_update;
SELECT regress.error_of($$DELETE FROM audit_log$$) AS admin_delete;
SELECT regress.error_of($$INSERT INTO audit_log (action, resource_type) VALUES ('INSERT', 'forged')$$) AS admin_insert;
ROLLBACK;
BEGIN;
SELECT regress.act_as('{"sub": "user_p1"}');
SELECT count(*) AS customer_reads FROM audit_log;
ROLLBACK;

-- B2B: members of the active organization share its projects.
INSERT INTO projects (org_id, name) VALUES ('org_acme', 'Rocket'), ('org_globex', 'Laser');
BEGIN;
SELECT regress.act_as('{"sub": "user_a", "org_id": "org_acme", "org_role": "org:member"}');
SELECT org_id, name FROM projects ORDER BY name;
INSERT INTO projects (name) VALUES ('Rocket 2');
SELECT regress.error_of($$INSERT INTO projects (org_id, name) VALUES ('org_globex', 'Sabotage')$$) AS other_org;
ROLLBACK;
BEGIN;
SELECT regress.act_as('{"sub": "user_a"}');
SELECT count(*) AS without_active_org FROM projects;
ROLLBACK;
