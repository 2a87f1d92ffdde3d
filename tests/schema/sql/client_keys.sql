-- Generated keys are not the client's to choose (issue 15, finding 2): a
-- customer who inserted cart rows with cart_id values just above the
-- sequence made every other customer's next insert fail with a unique
-- violation, one per id taken. Same for wishlist, reviews and projects.

INSERT INTO products (product_id, name, slug, price, stock_quantity) VALUES
    (9651, 'Key mug', 'ck-mug', 10, 10), (9652, 'Key cup', 'ck-cup', 5, 10);

-- The attack, as the proxy runs POST /cart with {"cart_id": ...}: refused.
BEGIN;
SELECT regress.act_as('{"sub": "user_ck1"}');
SELECT t, regress.error_of(stmt) AS result FROM (VALUES
    ('cart',             $$INSERT INTO cart (cart_id, product_id) VALUES (990001, 9651)$$),
    ('wishlist',         $$INSERT INTO wishlist (wishlist_id, product_id) VALUES (990001, 9651)$$),
    ('product_reviews',  $$INSERT INTO product_reviews (review_id, product_id, rating) VALUES (990001, 9651, 5)$$),
    ('projects',         $$INSERT INTO projects (project_id, org_id, name) VALUES (990001, 'org_ck', 'x')$$),
    -- PUT /wishlist?wishlist_id=eq.990001 (an upsert on the key)
    ('wishlist upsert',  $$INSERT INTO wishlist (wishlist_id, product_id) VALUES (990001, 9651) ON CONFLICT (wishlist_id) DO UPDATE SET product_id = EXCLUDED.product_id$$)
  ) v(t, stmt);
ROLLBACK;

-- Moving one's own row to a high key is refused too.
BEGIN;
SELECT regress.act_as('{"sub": "user_ck1", "org_id": "org_ck", "org_role": "org:member"}');
INSERT INTO cart (product_id) VALUES (9651);
INSERT INTO wishlist (product_id) VALUES (9651);
INSERT INTO product_reviews (product_id, rating) VALUES (9651, 4);
INSERT INTO projects (name) VALUES ('Key project');
SELECT t, regress.error_of(stmt) AS result FROM (VALUES
    ('cart',             $$UPDATE cart SET cart_id = 990002$$),
    ('wishlist',         $$UPDATE wishlist SET wishlist_id = 990002$$),
    ('product_reviews',  $$UPDATE product_reviews SET review_id = 990002$$),
    ('projects',         $$UPDATE projects SET project_id = 990002$$)
  ) v(t, stmt);
-- Normal writes work, keys come from the sequences, and upserts on the
-- natural keys still do (PostgREST on_conflict=user_id,product_id,...).
UPDATE cart SET quantity = 2;
INSERT INTO cart (product_id, quantity) VALUES (9651, 5)
    ON CONFLICT (user_id, product_id, selected_attributes) DO UPDATE SET quantity = EXCLUDED.quantity;
INSERT INTO wishlist (product_id) VALUES (9651) ON CONFLICT (user_id, product_id) DO NOTHING;
SELECT (SELECT count(*) FROM cart) AS cart_lines, (SELECT quantity FROM cart) AS quantity,
       (SELECT count(*) FROM wishlist) AS wishlist_rows, (SELECT count(*) FROM cart WHERE cart_id < 990000) AS generated_keys;
COMMIT;

-- Another customer's inserts are not blocked.
BEGIN;
SELECT regress.act_as('{"sub": "user_ck2", "org_id": "org_ck", "org_role": "org:member"}');
SELECT regress.error_of($$INSERT INTO cart (product_id) VALUES (9652)$$) AS cart,
       regress.error_of($$INSERT INTO wishlist (product_id) VALUES (9652)$$) AS wishlist,
       regress.error_of($$INSERT INTO product_reviews (product_id, rating) VALUES (9652, 3)$$) AS review,
       regress.error_of($$INSERT INTO projects (name) VALUES ('Another project')$$) AS project;
ROLLBACK;

DELETE FROM projects WHERE org_id = 'org_ck';
DELETE FROM product_reviews WHERE product_id IN (9651, 9652);
DELETE FROM products WHERE product_id IN (9651, 9652);
