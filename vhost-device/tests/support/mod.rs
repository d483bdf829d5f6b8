//! Helpers shared by the integration tests (not a test target itself).

pub mod lazyfs;
