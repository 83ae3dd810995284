//! Persistence: the storage trait and its backends.
