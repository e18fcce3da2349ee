-- The app's tables the cleanup tasks delete from (shared::tasks::maintenance::cleanup). All of them are the
-- app's, not the jobs': here so the jobs can be run and tested alone. Each is keyed by id BIGINT, which the
-- cleanups range over, and has an index on its age column with the id, from which a plan cuts its ranges.

-- The app sets updated_at on any change to the cart or its items (an item added, removed or its quantity
-- changed), in the same transaction: cart-cleanup reads a cart's age from it alone, and re-checks it in every
-- delete, so a cart changed after the plan is kept.
CREATE TABLE carts (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT REFERENCES users (id) ON DELETE CASCADE,  -- NULL: a guest's cart
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX carts_updated_at ON carts (updated_at, id);

-- A cart's lines go with it. The index serves the cascade and the cleanups' "has items" test.
CREATE TABLE cart_items (
    id         BIGSERIAL PRIMARY KEY,
    cart_id    BIGINT NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id BIGINT NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    added_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX cart_items_cart ON cart_items (cart_id);

-- Tokens and codes the app mails or texts, kept as hashes; token-cleanup deletes those expired.
CREATE TABLE password_reset_tokens (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX password_reset_tokens_expires_at ON password_reset_tokens (expires_at, id);

CREATE TABLE email_verification_tokens (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX email_verification_tokens_expires_at ON email_verification_tokens (expires_at, id);

CREATE TABLE otp_codes (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX otp_codes_expires_at ON otp_codes (expires_at, id);

-- The app sets last_seen_at when a session is used; session-cleanup deletes those idle too long.
CREATE TABLE sessions (
    id           BIGSERIAL PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sessions_last_seen_at ON sessions (last_seen_at, id);

-- Who did what, kept for the retention period; no foreign key, as a log outlives the user it names.
CREATE TABLE audit_logs (
    id         BIGSERIAL PRIMARY KEY,
    actor_id   BIGINT,
    action     TEXT NOT NULL,
    details    JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_created_at ON audit_logs (created_at, id);

-- Uploads in progress: object_key names the file under tmp/ in the uploads bucket, whose lifecycle rule
-- expires it a day after it was written; temp-data-cleanup deletes the row, never the file.
CREATE TABLE temp_uploads (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT REFERENCES users (id) ON DELETE CASCADE,
    object_key TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX temp_uploads_created_at ON temp_uploads (created_at, id);
