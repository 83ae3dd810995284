//! Seeded random request sequences.
