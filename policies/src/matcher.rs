//! IAM-style wildcard patterns (`*`, `?`), compiled once.
//!
//! INTERFACE STUB: being written.
