//! Pure-Rust protocol core: no I/O, no clock, no JS types.
