//! Unit tests of the operator's tools on the outbox.
