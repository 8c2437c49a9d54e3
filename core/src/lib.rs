//! `lws-core`: every LeaderWorkerSet decision, as pure functions.
//!
//! No I/O, no clock, no randomness: the same input bytes give the same output bytes, so the
//! controller, the browser preview and the admission policy all agree.
