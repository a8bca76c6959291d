//! hub (work in progress)
