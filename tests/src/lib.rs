//! End-to-end and integration tests against real servers; helpers live here.
