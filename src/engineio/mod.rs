//! engineio (work in progress)
