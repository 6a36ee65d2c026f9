//! JSON line → [`Event`] (SPEC §1). TODO(foundation issue).
