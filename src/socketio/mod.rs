//! socketio (work in progress)
