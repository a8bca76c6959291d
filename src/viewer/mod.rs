//! viewer (work in progress)
