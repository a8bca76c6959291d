//! What every test that runs other programs shares: a child process killed and reaped when
//! dropped, a free port for one to bind, and a `$NOTIFY_SOCKET` to hear what it tells systemd.
#![allow(dead_code)] // each test binary uses a subset

use std::ops::{Deref, DerefMut};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// A child process killed (SIGKILL) and reaped when dropped, so no test leaves one behind.
pub struct ChildGuard(pub Child);

impl Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl ChildGuard {
    /// Its exit status once it exits by itself, if it does so before `deadline`.
    pub fn exit_before(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Some(status) = self.0.try_wait().expect("wait for the child") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released for the child to bind right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A `$NOTIFY_SOCKET` for a child under test: what it sends systemd (`READY=1`, `WATCHDOG=1`, …).
pub struct NotifySocket {
    sock: UnixDatagram,
    path: String,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    /// A socket in a fresh directory; each read waits at most 10 s.
    pub fn new() -> NotifySocket {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let path = path.to_str().expect("utf-8 temp path").to_owned();
        NotifySocket {
            sock,
            path,
            _dir: dir,
        }
    }

    /// Its path, the value of `$NOTIFY_SOCKET`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The next notification, if one comes within 10 s.
    pub fn next(&self) -> Option<String> {
        let mut buf = [0u8; 1024];
        let n = self.sock.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// The next notification that is not a watchdog ping.
    pub fn next_but_pings(&self) -> String {
        loop {
            let msg = self.next().expect("a notification within 10 s");
            if msg != "WATCHDOG=1" {
                return msg;
            }
        }
    }
}
