-- Demo data for `make demo`: a small catalogue, two customers with carts
-- and orders, and coupons in each state. Not part of sql/ (production).
-- Alice: user_2demoAlice (Gold: 618.30 paid); Bob: user_2demoBob (Bronze).

INSERT INTO categories (category_id, name, slug, description) VALUES
    (1, 'Coffee', 'coffee', 'Single-origin beans, roasted weekly'),
    (2, 'Brewing', 'brewing', 'Grinders, kettles and filters'),
    (3, 'Cups', 'cups', 'Ceramic and glass')
ON CONFLICT DO NOTHING;

INSERT INTO products (product_id, name, slug, description, price, compare_price, sku, stock_quantity, category_id, attributes) VALUES
    (1, 'Ethiopia Yirgacheffe 250 g', 'ethiopia-yirgacheffe-250', 'Floral, bergamot, lemon', 14.50, NULL, 'COF-ETH-250', 120, 1, '{"roast": "light"}'),
    (2, 'Colombia Huila 1 kg', 'colombia-huila-1kg', 'Caramel, red apple', 42.00, 48.00, 'COF-COL-1000', 35, 1, '{"roast": "medium"}'),
    (3, 'Espresso Blend 500 g', 'espresso-blend-500', 'Chocolate, hazelnut', 19.90, NULL, 'COF-ESP-500', 80, 1, '{"roast": "dark"}'),
    (4, 'Conical Burr Grinder', 'conical-burr-grinder', '40 mm steel burrs', 189.00, 229.00, 'BRW-GRD-40', 8, 2, NULL),
    (5, 'Gooseneck Kettle 1 L', 'gooseneck-kettle', 'Temperature control', 79.00, NULL, 'BRW-KTL-1', 15, 2, NULL),
    (6, 'Paper Filters (100)', 'paper-filters-100', 'Size 02', 6.50, NULL, 'BRW-FLT-100', 400, 2, NULL),
    (7, 'Stoneware Cup', 'stoneware-cup', '250 ml, glazed', 18.00, NULL, 'CUP-STN-250', 60, 3, '{"colors": ["sand", "slate"]}'),
    (8, 'Double-wall Glass (2)', 'double-wall-glass', '200 ml, pair', 24.00, NULL, 'CUP-GLS-200', 0, 3, NULL)
ON CONFLICT DO NOTHING;
SELECT setval(pg_get_serial_sequence('categories', 'category_id'), 100);
SELECT setval(pg_get_serial_sequence('products', 'product_id'), 100);

INSERT INTO coupons (code, description, discount_type, discount_value, minimum_amount, maximum_discount, usage_limit, used_count, is_active, starts_at, expires_at) VALUES
    ('SPRING', '10% off, up to 20', 'percentage', 10, 0, 20, 100, 0, true, now() - interval '7 days', now() + interval '60 days'),
    ('WELCOME10', '10 off orders from 50', 'fixed_amount', 10, 50, NULL, NULL, 0, true, NULL, NULL),
    ('WINTER', 'Expired last season', 'percentage', 15, 0, NULL, NULL, 0, true, now() - interval '120 days', now() - interval '30 days'),
    ('LAUNCH', 'First 3 customers only', 'fixed_amount', 5, 0, NULL, 3, 3, true, NULL, NULL)
ON CONFLICT (code) DO NOTHING;

-- An unpaid order keeps its stock for pending_order_ttl, then
-- expire_pending_orders() (or any place_order) cancels it. Production's
-- default is 30 minutes; a day here, so Bob's pending order 3 stays
-- payable while you try the API.
UPDATE shop_settings SET pending_order_ttl = interval '1 day';

-- Orders as they would have been placed (payment states set by staff).
INSERT INTO orders (order_id, user_id, billing_name, billing_email, billing_address, subtotal, total_amount, status, payment_status, created_at) VALUES
    (1, 'user_2demoAlice', 'Alice Martin', 'alice@example.com', '{"line1": "12 rue des Lilas", "city": "Lyon", "postcode": "69003", "country": "FR"}', 378.00, 378.00, 'delivered', 'paid', now() - interval '40 days'),
    (2, 'user_2demoAlice', 'Alice Martin', 'alice@example.com', '{"line1": "12 rue des Lilas", "city": "Lyon", "postcode": "69003", "country": "FR"}', 240.30, 240.30, 'shipped', 'paid', now() - interval '5 days'),
    (3, 'user_2demoBob', 'Bob Dupont', 'bob@example.com', '{"line1": "3 quai Voltaire", "city": "Paris", "postcode": "75007", "country": "FR"}', 61.90, 61.90, 'pending', 'pending', now() - interval '1 hour')
ON CONFLICT DO NOTHING;
SELECT setval(pg_get_serial_sequence('orders', 'order_id'), 100);

INSERT INTO order_items (order_id, product_id, product_name, product_sku, quantity, unit_price, total_price) VALUES
    (1, 4, 'Conical Burr Grinder', 'BRW-GRD-40', 2, 189.00, 378.00),
    (2, 5, 'Gooseneck Kettle 1 L', 'BRW-KTL-1', 2, 79.00, 158.00),
    (2, 7, 'Stoneware Cup', 'CUP-STN-250', 2, 18.00, 36.00),
    (2, 3, 'Espresso Blend 500 g', 'COF-ESP-500', 2, 19.90, 39.80),
    (2, 6, 'Paper Filters (100)', 'BRW-FLT-100', 1, 6.50, 6.50),
    (3, 2, 'Colombia Huila 1 kg', 'COF-COL-1000', 1, 42.00, 42.00),
    (3, 3, 'Espresso Blend 500 g', 'COF-ESP-500', 1, 19.90, 19.90)
ON CONFLICT DO NOTHING;

INSERT INTO cart (user_id, product_id, quantity, selected_attributes) VALUES
    ('user_2demoAlice', 1, 2, NULL),
    ('user_2demoAlice', 7, 1, '{"color": "slate"}'),
    ('user_2demoBob', 6, 3, NULL)
ON CONFLICT DO NOTHING;

INSERT INTO wishlist (user_id, product_id) VALUES ('user_2demoAlice', 2), ('user_2demoBob', 4) ON CONFLICT DO NOTHING;

INSERT INTO product_reviews (product_id, user_id, order_id, rating, title, comment, is_verified_purchase, is_approved) VALUES
    (4, 'user_2demoAlice', 1, 5, 'Consistent grind', 'Great for pour-over.', true, true)
ON CONFLICT DO NOTHING;

INSERT INTO projects (project_id, org_id, name, created_by) VALUES
    (1, 'org_2demoAcme', 'Office coffee subscription', 'user_2demoAlice'),
    (2, 'org_2demoGlobex', 'Barista training', 'user_2demoBob')
ON CONFLICT DO NOTHING;
SELECT setval(pg_get_serial_sequence('projects', 'project_id'), 100);
