-- Reviews through the API role: authors write their text; the verified
-- badge is computed; approval belongs to moderators (reviews:moderate).

INSERT INTO products (product_id, name, slug, price, sku) VALUES
    (9101, 'Review mug', 'review-mug', 10, 'REV-MUG'), (9102, 'Review cup', 'review-cup', 5, 'REV-CUP');
INSERT INTO orders (order_id, user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, payment_status) VALUES
    (9101, 'user_r1', 'R', 'r@example.com', '{}', 10, 10, 'delivered', 'paid'),
    (9102, 'user_r2', 'S', 's@example.com', '{}', 10, 10, 'delivered', 'paid');
INSERT INTO order_items (order_id, product_id, product_name, product_sku, quantity, unit_price, total_price) VALUES
    (9101, 9101, 'Review mug', 'REV-MUG', 1, 10, 10), (9102, 9101, 'Review mug', 'REV-MUG', 1, 10, 10);

BEGIN;
SELECT regress.act_as('{"sub": "user_r1"}');
-- Claiming the badge or approving oneself: column privileges refuse it.
SELECT regress.error_of($$INSERT INTO product_reviews (product_id, rating, is_verified_purchase) VALUES (9101, 5, true)$$) AS forge_badge,
       regress.error_of($$INSERT INTO product_reviews (product_id, rating, is_approved) VALUES (9101, 5, true)$$) AS self_approve;
-- Someone else's order cannot back a review (foreign keys ignore RLS; the guard does not).
SELECT regress.error_of($$INSERT INTO product_reviews (product_id, order_id, rating) VALUES (9101, 9102, 5)$$) AS their_order;
-- One's own paid order with the product: verified; without it: not.
INSERT INTO product_reviews (product_id, order_id, rating, title) VALUES (9101, 9101, 5, 'Great mug'), (9102, 9101, 4, 'Not in the order');
SELECT product_id, is_verified_purchase, is_approved FROM product_reviews WHERE user_id = 'user_r1' ORDER BY product_id;
SELECT regress.error_of($$UPDATE product_reviews SET is_approved = true WHERE product_id = 9101$$) AS approve_own;
COMMIT;

-- A moderator (role manager) approves; nobody else's review is theirs to write.
BEGIN;
SELECT regress.act_as('{"sub": "user_r9", "metadata": {"role": "manager"}}');
UPDATE product_reviews SET is_approved = true WHERE user_id = 'user_r1' AND product_id = 9101;
COMMIT;
SELECT product_id, is_verified_purchase, is_approved FROM product_reviews WHERE user_id = 'user_r1' ORDER BY product_id;

-- The author edits the text: back to moderation; the badge stays.
BEGIN;
SELECT regress.act_as('{"sub": "user_r1"}');
UPDATE product_reviews SET comment = 'Still great' WHERE product_id = 9101;
SELECT product_id, is_verified_purchase, is_approved FROM product_reviews WHERE product_id = 9101;
-- Another customer cannot approve or edit it (0 rows: RLS).
SELECT regress.act_as('{"sub": "user_r2"}');
UPDATE product_reviews SET is_approved = true, title = 'pwned' WHERE user_id = 'user_r1';
COMMIT;
SELECT user_id, title, is_approved FROM product_reviews WHERE product_id = 9101 ORDER BY user_id;

-- A moderator approves or withdraws someone else's review and changes
-- nothing else: the rating, title, comment and order stay the author's.
-- The attack: PATCH /product_reviews?user_id=eq.user_r1 with new text and
-- is_approved true, publishing words the author never wrote.
BEGIN;
SELECT regress.act_as('{"sub": "user_r9", "metadata": {"role": "manager"}}');
SELECT t, regress.error_of(stmt) AS result FROM (VALUES
    ('rewrite and publish', $$UPDATE product_reviews SET rating = 5, title = 'great', comment = 'love it', is_approved = true WHERE user_id = 'user_r1'$$),
    ('edit the comment',    $$UPDATE product_reviews SET comment = 'edited by staff' WHERE user_id = 'user_r1' AND product_id = 9101$$),
    ('change the rating',   $$UPDATE product_reviews SET rating = 1 WHERE user_id = 'user_r1' AND product_id = 9102$$),
    ('detach the order',    $$UPDATE product_reviews SET order_id = NULL WHERE user_id = 'user_r1' AND product_id = 9101$$)
  ) v(t, stmt);
-- Approval alone, or with the author's text sent back unchanged, is moderation.
UPDATE product_reviews SET is_approved = true WHERE user_id = 'user_r1' AND product_id = 9101;
UPDATE product_reviews SET is_approved = true, title = title, rating = rating WHERE user_id = 'user_r1' AND product_id = 9102;
UPDATE product_reviews SET is_approved = false WHERE user_id = 'user_r1' AND product_id = 9102;
COMMIT;
SELECT product_id, rating, title, comment, is_approved FROM product_reviews WHERE user_id = 'user_r1' ORDER BY product_id;
-- The author still edits their own review, which goes back to moderation.
BEGIN;
SELECT regress.act_as('{"sub": "user_r1"}');
UPDATE product_reviews SET rating = 4, comment = 'Great, a bit small' WHERE product_id = 9101;
SELECT product_id, rating, comment, is_approved FROM product_reviews WHERE product_id = 9101;
COMMIT;
