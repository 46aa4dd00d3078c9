//! Finding the running service, and starting one in the background.
