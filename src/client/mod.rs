//! The connection to the service.
