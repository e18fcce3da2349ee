//! The maintenance tasks: the app's own rows deleted once they are old enough (carts, tokens, sessions, audit
//! logs, temporary uploads), all five by one generic cleanup.

pub mod cleanup;
