-- Order numbers: ORD-<year>-<n>, at least 6 digits, never truncated,
-- assigned BEFORE INSERT.

SELECT clerk_order_number(2026, 1) AS first, clerk_order_number(2026, 123) AS padded,
       clerk_order_number(2026, 999999) AS six_digits, clerk_order_number(2026, 1000000) AS seven_digits,
       clerk_order_number(2026, 12345678901) AS eleven_digits;
SELECT regress.error_of($$SELECT clerk_order_number(2026, 0)$$), regress.error_of($$SELECT clerk_order_number(10000, 1)$$);

-- The trigger assigns the number from the order's creation year, and
-- ignores a number the client tried to choose.
INSERT INTO orders (user_id, order_number, billing_name, billing_email, billing_address, subtotal, total_amount, created_at)
VALUES ('user_on1', 'ORD-1999-000001', 'N', 'n@example.com', '{}', 1, 1, '2031-06-01 12:00+00');
SELECT order_number ~ '^ORD-2031-[0-9]{6,}$' AS assigned, order_number <> 'ORD-1999-000001' AS client_value_ignored
  FROM orders WHERE user_id = 'user_on1';

-- Across the 999999 → 1000000 boundary: seven digits, nothing cut, still unique.
SELECT setval('order_number_seq', 999998);
INSERT INTO orders (user_id, billing_name, billing_email, billing_address, subtotal, total_amount, created_at)
SELECT 'user_on1', 'N', 'n@example.com', '{}', 1, 1, '2026-03-01 00:00+00' FROM generate_series(1, 3);
SELECT order_number FROM orders WHERE user_id = 'user_on1' AND created_at = '2026-03-01 00:00+00' ORDER BY order_id;
DELETE FROM orders WHERE user_id = 'user_on1';
