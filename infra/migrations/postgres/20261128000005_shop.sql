-- The shop: products, subscriptions, the orders the subscriptions turn into, their charges, and the events the
-- orders publish. products and subscriptions are the app's; here so the jobs can be run and tested alone.

-- Order notices are a kind of message of their own (transactional: see shared::ports::Kind::Orders).
ALTER TABLE preferences DROP CONSTRAINT preferences_kind_check;
ALTER TABLE preferences ADD CONSTRAINT preferences_kind_check
    CHECK (kind IN ('reports', 'reminders', 'challenges', 'orders'));

CREATE TABLE products (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL,
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    currency    TEXT NOT NULL,
    -- Taken by a conditional update (stock >= quantity): the check is the last line should a writer forget it.
    stock       BIGINT NOT NULL CHECK (stock >= 0),
    deleted_at  TIMESTAMPTZ                 -- the app stopped selling it
);

-- No check on frequency, quantity or anchor_day, and no foreign key to products: the app's rows may be wrong
-- (a product hard-deleted, a frequency this code does not know), and the processing records why it cannot
-- deliver them rather than fail on them.
CREATE TABLE subscriptions (
    id                 BIGSERIAL PRIMARY KEY,
    user_id            BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    product_id         BIGINT NOT NULL,
    quantity           BIGINT NOT NULL,
    frequency          TEXT NOT NULL,       -- weekly, every_n_days (interval_days), monthly (anchor_day)
    interval_days      INTEGER,
    anchor_day         INTEGER,
    next_delivery_date DATE NOT NULL,
    status             TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'cancelled')),
    payment_method     TEXT NOT NULL,       -- the gateway's reference to the customer's saved card
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_active_due ON subscriptions (next_delivery_date, id) WHERE status = 'active';

CREATE TABLE orders (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT NOT NULL,
    subscription_id BIGINT REFERENCES subscriptions (id) ON DELETE SET NULL,
    -- The delivery the order is for: a subscription's scheduled date, whatever day it was processed on.
    delivery_date   DATE NOT NULL,
    status          TEXT NOT NULL CHECK (status IN
                        ('pending_payment', 'paid', 'payment_failed', 'skipped', 'cancelled', 'shipped')),
    total_cents     BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    failed_on       DATE,                   -- the day of the first declined charge: the dunning counts from it
    retry_on        DATE,                   -- the next dunning retry; NULL once none is left
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    -- One order per delivery, whoever creates it and however often.
    UNIQUE (subscription_id, delivery_date)
);
CREATE INDEX orders_open ON orders (subscription_id) WHERE status IN ('pending_payment', 'payment_failed');

CREATE TABLE order_items (
    order_id         BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id       BIGINT NOT NULL,
    quantity         BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

-- Every charge attempt of an order, by its idempotency key: the gateway charges a key once.
CREATE TABLE payments (
    id                 BIGSERIAL PRIMARY KEY,
    order_id           BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    attempt            INTEGER NOT NULL,
    idempotency_key    TEXT NOT NULL UNIQUE,
    amount_cents       BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    method             TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'declined')),
    provider_reference TEXT,
    decline_reason     TEXT,
    -- A worker asking the gateway holds the attempt until then; after, another may ask again, with the same key.
    claimed_until      TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL,
    settled_at         TIMESTAMPTZ,
    UNIQUE (order_id, attempt)
);
-- The database itself refuses a second successful charge of an order.
CREATE UNIQUE INDEX payments_one_success ON payments (order_id) WHERE status = 'succeeded';
CREATE INDEX payments_pending ON payments (order_id) WHERE status = 'pending';

-- The outbox of order events: written in the transaction that changes the order, published to the bus after
-- it, so a crash in between loses none. One event of a kind per order.
CREATE TABLE order_events (
    id           BIGSERIAL PRIMARY KEY,
    order_id     BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ,
    UNIQUE (order_id, kind)
);
CREATE INDEX order_events_unpublished ON order_events (order_id) WHERE published_at IS NULL;
