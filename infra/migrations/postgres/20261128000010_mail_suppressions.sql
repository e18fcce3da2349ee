-- The mail suppression list: addresses SES reported as bouncing for good, or whose owner complained. No task
-- mails them again (the contacts' read joins it). Written by the mail-feedback function; `jobs suppressions
-- remove` lifts one. No foreign key to users: an address stays suppressed whoever signs up with it.
CREATE TABLE mail_suppressions (
    address     TEXT PRIMARY KEY CHECK (address = lower(address)),
    reason      TEXT NOT NULL CHECK (reason IN ('bounce', 'complaint')),  -- of the latest feedback
    feedback_id TEXT NOT NULL,       -- SES's feedbackId of the latest feedback: a redelivery of it changes nothing
    subtype     TEXT,                -- bounceSubType, or the complaint's feedback type
    first_at    TIMESTAMPTZ NOT NULL,
    last_at     TIMESTAMPTZ NOT NULL,
    count       BIGINT NOT NULL DEFAULT 1 CHECK (count >= 1)  -- distinct feedbacks
);
