-- Business primitives the reference schema (sql/) builds on: pure,
-- IMMUTABLE, exact numeric. Each is small enough to read as its own spec.

-- Order number 'ORD-<year>-<n>': n zero-padded to at least 6 digits and
-- never truncated (the well-known LPAD(n, 6) cuts 1000000 to '100000').
CREATE FUNCTION clerk_order_number(order_year integer, n bigint) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    IF order_year NOT BETWEEN 1 AND 9999 THEN
        RAISE EXCEPTION 'order year % is out of range 1..9999', order_year USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF n < 1 THEN
        RAISE EXCEPTION 'order sequence number must be positive, got %', n USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN 'ORD-' || order_year || '-' || lpad(n::text, greatest(6, length(n::text)), '0');
END
$$;
COMMENT ON FUNCTION clerk_order_number(integer, bigint) IS
    'ORD-<year>-<n>, n zero-padded to 6 digits and never truncated';

-- Customer tier from money spent: Bronze < silver <= Silver < gold <= Gold < vip <= VIP.
CREATE FUNCTION clerk_customer_tier(total_spent numeric, silver numeric DEFAULT 100,
                                    gold numeric DEFAULT 500, vip numeric DEFAULT 1000) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF silver IS NULL OR gold IS NULL OR vip IS NULL OR NOT (0 < silver AND silver < gold AND gold < vip) THEN
        RAISE EXCEPTION 'tier thresholds must satisfy 0 < silver < gold < vip, got %, %, %', silver, gold, vip
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN CASE
        WHEN coalesce(total_spent, 0) >= vip THEN 'VIP'
        WHEN total_spent >= gold THEN 'Gold'
        WHEN total_spent >= silver THEN 'Silver'
        ELSE 'Bronze'
    END;
END
$$;
COMMENT ON FUNCTION clerk_customer_tier(numeric, numeric, numeric, numeric) IS
    'Bronze < 100 <= Silver < 500 <= Gold < 1000 <= VIP (thresholds overridable)';

-- Discount a coupon gives on a subtotal: 'percentage' (rounded to cents,
-- capped by maximum_discount) or 'fixed_amount'; never more than the
-- subtotal, never negative.
CREATE FUNCTION clerk_coupon_discount(discount_type text, discount_value numeric, subtotal numeric,
                                      maximum_discount numeric DEFAULT NULL) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    discount numeric;
BEGIN
    IF discount_value IS NULL OR discount_value < 0 THEN
        RAISE EXCEPTION 'discount value must be a non-negative amount, got %', discount_value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF subtotal IS NULL OR subtotal < 0 THEN
        RAISE EXCEPTION 'subtotal must be a non-negative amount, got %', subtotal USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF maximum_discount < 0 THEN
        RAISE EXCEPTION 'maximum discount must be non-negative, got %', maximum_discount USING ERRCODE = 'invalid_parameter_value';
    END IF;
    CASE discount_type
        WHEN 'percentage' THEN
            IF discount_value > 100 THEN
                RAISE EXCEPTION 'a percentage discount is at most 100, got %', discount_value
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            discount := round(subtotal * discount_value / 100, 2);
            IF maximum_discount IS NOT NULL THEN
                discount := least(discount, maximum_discount);
            END IF;
        WHEN 'fixed_amount' THEN
            discount := discount_value;
        ELSE
            RAISE EXCEPTION 'unknown discount type "%"', discount_type
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Use ''percentage'' or ''fixed_amount''.';
    END CASE;
    RETURN round(greatest(0, least(discount, subtotal)), 2);
END
$$;
COMMENT ON FUNCTION clerk_coupon_discount(text, numeric, numeric, numeric) IS
    'Coupon discount on a subtotal: percentage (capped) or fixed_amount, within 0..subtotal';
