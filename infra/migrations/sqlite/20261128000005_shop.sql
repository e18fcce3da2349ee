-- The shop: products, subscriptions, the orders the subscriptions turn into, their charges, and the events the
-- orders publish. As in the PostgreSQL migration, whose comments say why each column is there.

-- Order notices are a kind of message of their own: SQLite cannot alter a check, so the table is rebuilt.
CREATE TABLE preferences_new (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind    TEXT NOT NULL CHECK (kind IN ('reports', 'reminders', 'challenges', 'orders')),
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    allowed INTEGER NOT NULL,
    PRIMARY KEY (user_id, kind, channel)
);
INSERT INTO preferences_new SELECT user_id, kind, channel, allowed FROM preferences;
DROP TABLE preferences;
ALTER TABLE preferences_new RENAME TO preferences;

CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    currency    TEXT NOT NULL,
    stock       INTEGER NOT NULL CHECK (stock >= 0),
    deleted_at  TEXT
);

CREATE TABLE subscriptions (
    id                 INTEGER PRIMARY KEY,
    user_id            INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    product_id         INTEGER NOT NULL,
    quantity           INTEGER NOT NULL,
    frequency          TEXT NOT NULL,
    interval_days      INTEGER,
    anchor_day         INTEGER,
    next_delivery_date TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'cancelled')),
    payment_method     TEXT NOT NULL,
    created_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);
CREATE INDEX subscriptions_active_due ON subscriptions (next_delivery_date, id) WHERE status = 'active';

CREATE TABLE orders (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL,
    subscription_id INTEGER REFERENCES subscriptions (id) ON DELETE SET NULL,
    delivery_date   TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN
                        ('pending_payment', 'paid', 'payment_failed', 'skipped', 'cancelled', 'shipped')),
    total_cents     INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    failed_on       TEXT,
    retry_on        TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (subscription_id, delivery_date)
);
CREATE INDEX orders_open ON orders (subscription_id) WHERE status IN ('pending_payment', 'payment_failed');

CREATE TABLE order_items (
    order_id         INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id       INTEGER NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents INTEGER NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

CREATE TABLE payments (
    id                 INTEGER PRIMARY KEY,
    order_id           INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    attempt            INTEGER NOT NULL,
    idempotency_key    TEXT NOT NULL UNIQUE,
    amount_cents       INTEGER NOT NULL,
    currency           TEXT NOT NULL,
    method             TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'declined')),
    provider_reference TEXT,
    decline_reason     TEXT,
    claimed_until      TEXT,
    created_at         TEXT NOT NULL,
    settled_at         TEXT,
    UNIQUE (order_id, attempt)
);
CREATE UNIQUE INDEX payments_one_success ON payments (order_id) WHERE status = 'succeeded';
CREATE INDEX payments_pending ON payments (order_id) WHERE status = 'pending';

CREATE TABLE order_events (
    id           INTEGER PRIMARY KEY,
    order_id     INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    at           TEXT NOT NULL,
    published_at TEXT,
    UNIQUE (order_id, kind)
);
CREATE INDEX order_events_unpublished ON order_events (order_id) WHERE published_at IS NULL;
