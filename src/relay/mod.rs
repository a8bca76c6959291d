//! relay (work in progress)
