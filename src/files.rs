//! Reading the files a config names (the config itself, tokens, TLS certificates, keys and CA
//! bundles): regular files only, and never more than a bound. A typo such as `/dev/zero`, a FIFO
//! (whose `open` blocks until a writer comes) or a huge file then gives a clear error instead of a
//! hang or an out-of-memory kill. OpenSSH treats `authorized_keys` the same way (open with
//! `O_NONBLOCK`, `fstat`, refuse what is not a regular file: `auth2-pubkeyfile.c`,
//! `auth_openfile`).

use std::fs::{FileType, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The largest file read: a config, a tokens file, a certificate chain or a CA bundle
/// (Debian's whole `/etc/ssl/certs/ca-certificates.crt` is about 220 KB).
pub(crate) const MAX_FILE_SIZE: u64 = 1 << 20;

/// Why a file named in the config was not read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: FileProblem,
}

/// What is wrong with a file (its `Display` names no file: [`FileError`] adds it).
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    /// The OS refused to open it (or to tell what it is).
    #[error("cannot open: {0}")]
    Open(std::io::Error),
    /// The OS refused to read it.
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    /// A directory, FIFO, socket or device.
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    /// Larger than the bound (in bytes).
    #[error("larger than {} MiB", .0 >> 20)]
    TooLarge(u64),
}

/// For callers that report files through `std::io::Error`: the OS error as it was, the others
/// with their message.
impl From<FileProblem> for std::io::Error {
    fn from(p: FileProblem) -> Self {
        use std::io::ErrorKind;
        match p {
            FileProblem::Open(e) | FileProblem::Read(e) => e,
            FileProblem::NotRegular(_) => {
                std::io::Error::new(ErrorKind::InvalidInput, p.to_string())
            }
            FileProblem::TooLarge(_) => std::io::Error::new(ErrorKind::FileTooLarge, p.to_string()),
        }
    }
}

/// The whole content of `path`, refused when it is not a regular file or holds more than
/// [`MAX_FILE_SIZE`] bytes (checked before reading, and again while reading in case it grows).
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, FileError> {
    let error = |problem| FileError {
        path: path.to_owned(),
        problem,
    };
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it changes nothing for a regular file.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| error(FileProblem::Open(e)))?;
    let meta = file.metadata().map_err(|e| error(FileProblem::Open(e)))?;
    check(&meta).map_err(error)?;
    let mut bytes = Vec::new();
    Read::take(&file, MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(FileProblem::Read(e)))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(error(FileProblem::TooLarge(MAX_FILE_SIZE)));
    }
    Ok(bytes)
}

/// Whether a file with this metadata would be read by [`read`]: for checks that must not open
/// the file (it may be readable by the service's user only).
pub(crate) fn check(meta: &Metadata) -> Result<(), FileProblem> {
    if !meta.is_file() {
        return Err(FileProblem::NotRegular(kind(meta.file_type())));
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(FileProblem::TooLarge(MAX_FILE_SIZE));
    }
    Ok(())
}

/// What a file that is not a regular file is, as `stat(1)` names it.
fn kind(t: FileType) -> &'static str {
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sparse(path: &Path, len: u64) {
        std::fs::File::create(path)
            .and_then(|f| f.set_len(len))
            .expect("sparse file");
    }

    #[test]
    fn reads_regular_files_up_to_the_bound_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        sparse(&file, MAX_FILE_SIZE);
        assert_eq!(
            read(&file).map(|b| b.len() as u64).ok(),
            Some(MAX_FILE_SIZE)
        );
        sparse(&file, MAX_FILE_SIZE + 1);
        let e = read(&file).expect_err("one byte too many");
        assert_eq!(
            e.to_string(),
            format!("{}: larger than 1 MiB", file.display())
        );

        let e = read(dir.path()).expect_err("a directory");
        assert_eq!(e.problem.to_string(), "not a regular file (directory)");
        let e = read(Path::new("/dev/zero")).expect_err("a device");
        assert_eq!(
            e.problem.to_string(),
            "not a regular file (character device)"
        );
        let e = read(&dir.path().join("missing")).expect_err("missing");
        assert!(
            matches!(&e.problem, FileProblem::Open(io) if io.kind() == std::io::ErrorKind::NotFound)
        );
        let io = std::io::Error::from(FileProblem::TooLarge(MAX_FILE_SIZE));
        assert_eq!(
            (io.kind(), io.to_string()),
            (std::io::ErrorKind::FileTooLarge, "larger than 1 MiB".into())
        );
    }
}
