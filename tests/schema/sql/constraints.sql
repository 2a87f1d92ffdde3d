-- The seed guide's schema, corrected.

INSERT INTO categories (name, slug) VALUES ('Tea', 'tea');
INSERT INTO products (name, slug, price, stock_quantity, category_id)
    VALUES ('Sencha', 'sencha', 9.90, 5, (SELECT category_id FROM categories WHERE slug = 'tea'));

-- User ids are clerk_user_id: a malformed one is refused.
SELECT regress.error_of($$INSERT INTO cart (user_id, product_id) VALUES ('usr_1', (SELECT product_id FROM products WHERE slug = 'sencha'))$$);

-- The cart holds one line per product and variant, also when the variant is NULL
-- (the seed's UNIQUE(user_id, product_id, selected_attributes) let NULL rows repeat).
INSERT INTO cart (user_id, product_id) VALUES ('user_c1', (SELECT product_id FROM products WHERE slug = 'sencha'));
SELECT regress.error_of($$INSERT INTO cart (user_id, product_id) VALUES ('user_c1', (SELECT product_id FROM products WHERE slug = 'sencha'))$$);
INSERT INTO cart (user_id, product_id, selected_attributes) VALUES ('user_c1', (SELECT product_id FROM products WHERE slug = 'sencha'), '{"size": "L"}');
SELECT regress.error_of($$INSERT INTO cart (user_id, product_id, selected_attributes) VALUES ('user_c1', (SELECT product_id FROM products WHERE slug = 'sencha'), '{"size": "L"}')$$);
DELETE FROM cart WHERE user_id = 'user_c1';

-- Money and quantities are checked.
SELECT regress.error_of($$INSERT INTO products (name, slug, price) VALUES ('Bad', 'bad', -1)$$) AS negative_price;
SELECT regress.error_of($$INSERT INTO cart (user_id, product_id, quantity) VALUES ('user_c1', (SELECT product_id FROM products WHERE slug = 'sencha'), 0)$$) AS zero_quantity;
SELECT regress.error_of($$INSERT INTO product_reviews (product_id, user_id, rating) VALUES ((SELECT product_id FROM products WHERE slug = 'sencha'), 'user_c1', 6)$$) AS rating_6;
SELECT regress.error_of($$INSERT INTO coupons (code, discount_type, discount_value) VALUES ('X1', 'bogo', 5)$$) AS bad_discount_type;
SELECT regress.error_of($$INSERT INTO coupons (code, discount_type, discount_value) VALUES ('X2', 'percentage', 150)$$) AS percentage_over_100;
SELECT regress.error_of($$INSERT INTO coupons (code, discount_type, discount_value) VALUES ('lower', 'percentage', 5)$$) AS lower_case_code;

-- updated_at follows changes; timestamps are timestamptz.
UPDATE products SET updated_at = '2000-01-01' WHERE slug = 'sencha';
UPDATE products SET price = 10.50 WHERE slug = 'sencha';
SELECT updated_at > now() - interval '1 minute' AS updated_at_maintained FROM products WHERE slug = 'sencha';
SELECT DISTINCT data_type FROM information_schema.columns
 WHERE table_schema = 'public' AND column_name IN ('created_at', 'updated_at', 'used_at');

-- Every user_id and foreign key column leads some index.
SELECT c.conrelid::regclass AS table_name, a.attname AS unindexed_column
  FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
 WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
   AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])
UNION ALL
SELECT a.attrelid::regclass, a.attname FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid
 WHERE r.relnamespace = 'public'::regnamespace AND r.relkind = 'r' AND a.attname = 'user_id'
   AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indkey[0] = a.attnum);
