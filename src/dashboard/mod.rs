//! The dashboard loop.
