//! Dropping root once the listening ports are bound.

use super::error::ServiceError;
use nix::unistd::{Gid, Uid, User, geteuid, initgroups, setgid, setuid};
use std::ffi::CString;

/// What [`drop_privileges`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivilegeDrop {
    /// Not running as root: nothing to drop (systemd's `User=` already did it, or a shell user).
    NotRoot,
    /// Now running as this uid/gid with the user's supplementary groups (e.g. `video`, `audio`).
    Dropped {
        /// The user's uid.
        uid: u32,
        /// The user's primary gid.
        gid: u32,
    },
}

/// Switches from root to `user` (its groups from `/etc/group`, then gid, then uid) and checks
/// that root cannot be regained. Call it after binding the listening sockets and before
/// handling any client. Does nothing when not running as root.
pub fn drop_privileges(user: &str) -> Result<PrivilegeDrop, ServiceError> {
    if !geteuid().is_root() {
        return Ok(PrivilegeDrop::NotRoot);
    }
    let fail = |call| {
        move |source| ServiceError::Drop {
            user: user.to_owned(),
            call,
            source,
        }
    };
    let entry = User::from_name(user)
        .map_err(fail("getpwnam"))?
        .ok_or_else(|| ServiceError::UnknownUser(user.to_owned()))?;
    if entry.uid.is_root() {
        return Err(ServiceError::UserIsRoot(user.to_owned()));
    }
    let c_name = CString::new(user).map_err(|_| ServiceError::UnknownUser(user.to_owned()))?;
    initgroups(&c_name, entry.gid).map_err(fail("initgroups"))?;
    setgid(entry.gid).map_err(fail("setgid"))?;
    setuid(entry.uid).map_err(fail("setuid"))?;
    if setuid(Uid::from_raw(0)).is_ok() || setgid(Gid::from_raw(0)).is_ok() {
        return Err(ServiceError::StillRoot(user.to_owned()));
    }
    Ok(PrivilegeDrop::Dropped {
        uid: entry.uid.as_raw(),
        gid: entry.gid.as_raw(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs in a child process (see `drops_root_to_an_unprivileged_user`): dropping changes the
    /// whole process, which must not be the test harness running the other tests.
    #[test]
    #[ignore = "run only as a child of drops_root_to_an_unprivileged_user"]
    fn privilege_drop_child() {
        let Ok(user) = std::env::var("SIOEDGE_DROP_TO") else {
            return;
        };
        let entry = User::from_name(&user)
            .expect("getpwnam")
            .expect("user exists");
        let got = drop_privileges(&user).expect("drop");
        assert_eq!(
            got,
            PrivilegeDrop::Dropped {
                uid: entry.uid.as_raw(),
                gid: entry.gid.as_raw()
            }
        );
        assert_eq!(nix::unistd::getuid(), entry.uid);
        assert_eq!(nix::unistd::geteuid(), entry.uid);
        assert_eq!(nix::unistd::getegid(), entry.gid);
        let groups = nix::unistd::getgroups().expect("getgroups");
        assert!(!groups.contains(&Gid::from_raw(0)), "{groups:?}");
        assert!(std::fs::read("/etc/shadow").is_err());
        println!("SIOEDGE_DROP_OK");
    }

    #[test]
    fn drops_root_to_an_unprivileged_user() {
        if !geteuid().is_root() {
            assert_eq!(drop_privileges("nobody").ok(), Some(PrivilegeDrop::NotRoot));
            return;
        }
        assert!(matches!(
            drop_privileges("no-such-user-sioedge"),
            Err(ServiceError::UnknownUser(_))
        ));
        assert!(matches!(
            drop_privileges("root"),
            Err(ServiceError::UserIsRoot(_))
        ));
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "service::privileges::tests::privilege_drop_child",
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SIOEDGE_DROP_TO", "nobody")
            .output()
            .expect("spawn the child test");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("SIOEDGE_DROP_OK"),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
