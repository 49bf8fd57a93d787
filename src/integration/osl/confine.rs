//! Kernel-enforced use of checked paths.
//!
//! The policy resolves a requested path in userland (every symlink followed,
//! `..` applied where the path has got to) and checks the result, which holds
//! no symlinks, against the grants. Between that check and the operation
//! another process can swap a directory for a symlink. So the operation does
//! not hand the path to a path-based call: it opens it with `openat2` and
//! `RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`, and works on the
//! descriptor (`fstat`, `read`, `ftruncate`, `getdents`) or relative to the
//! opened parent (`mkdirat`, `unlinkat`). The kernel walks exactly the checked
//! components; a symlink that appeared in the meantime fails the walk with
//! `ELOOP` instead of being followed, and [`checked`] checks the path again.
//!
//! Everything here blocks; callers run it on tokio's blocking pool.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;
use nix::unistd::UnlinkatFlags;

use super::DenyRule;

/// Why a confined operation did not happen: the policy's rule, or the OS's
/// error.
#[derive(Debug)]
pub(super) enum Refused {
    Denied(DenyRule),
    Io(io::Error),
}

impl From<io::Error> for Refused {
    fn from(error: io::Error) -> Self {
        Refused::Io(error)
    }
}

impl From<Errno> for Refused {
    fn from(errno: Errno) -> Self {
        Refused::Io(errno.into())
    }
}

impl From<DenyRule> for Refused {
    fn from(rule: DenyRule) -> Self {
        Refused::Denied(rule)
    }
}

/// Times a path is checked again after a symlink appeared in it between the
/// check and the use.
const ATTEMPTS: usize = 3;

/// Checks a path with `check` and uses the checked path with `use_it`;
/// when a symlink appeared in the path meanwhile (the kernel refused to
/// follow it), checks again, at most [`ATTEMPTS`] times, then refuses with
/// [`DenyRule::PathChanged`]. A swap that leads out of the grants is caught
/// by the next check; one that stays inside simply succeeds.
pub(super) fn checked<T>(
    mut check: impl FnMut() -> Result<PathBuf, DenyRule>,
    mut use_it: impl FnMut(&Path) -> Result<T, Refused>,
) -> Result<T, Refused> {
    for _ in 0..ATTEMPTS {
        match use_it(&check()?) {
            Err(refused) if is_swapped(&refused) => continue,
            done => return done,
        }
    }
    Err(Refused::Denied(DenyRule::PathChanged))
}

/// Whether `refused` says a symlink appeared in a checked path.
fn is_swapped(refused: &Refused) -> bool {
    matches!(refused, Refused::Io(error) if error.raw_os_error() == Some(Errno::ELOOP as i32))
}

/// The resolution every open here uses: no symlinks, no `/proc` magic links.
fn no_links() -> ResolveFlag {
    ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

/// Opens the checked path `path` (absolute, symlink-free) with `flags`
/// (close-on-exec always added), following no symlink on the way.
pub(super) fn open(path: &Path, flags: OFlag, mode: Mode) -> Result<OwnedFd, Refused> {
    open_at(nix::fcntl::AT_FDCWD, path, flags, mode)
}

/// A handle (`O_PATH`) on the checked directory `path`, for the `*at` calls
/// and `fchdir`.
pub(super) fn open_directory(path: &Path) -> Result<OwnedFd, Refused> {
    open(path, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
}

/// [`open`] of `path` relative to the directory `dir`.
fn open_at<Fd: AsFd>(dir: Fd, path: &Path, flags: OFlag, mode: Mode) -> Result<OwnedFd, Refused> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(mode)
        .resolve(no_links());
    loop {
        match openat2(&dir, path, how) {
            // The kernel retries a walk that raced a rename up to a point,
            // then asks the caller to.
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            other => return other.map_err(Refused::from),
        }
    }
}

/// Opens a regular file with `flags` and checks what was opened: a FIFO,
/// socket or device is refused (`O_NONBLOCK`, so opening one never waits for
/// a peer), and so is a file with more than one hard link. The file and its
/// size.
pub(super) fn open_regular(path: &Path, flags: OFlag) -> Result<(File, u64), Refused> {
    // openat2 refuses a mode without O_CREAT.
    let mode = if flags.contains(OFlag::O_CREAT) {
        Mode::from_bits_truncate(0o666)
    } else {
        Mode::empty()
    };
    let opened = open(path, flags | OFlag::O_NONBLOCK | OFlag::O_NOCTTY, mode);
    let file = match opened {
        Ok(fd) => File::from(fd),
        // Opening a FIFO with no reader for writing, or a socket.
        Err(Refused::Io(error)) if error.raw_os_error() == Some(Errno::ENXIO as i32) => {
            return Err(Refused::Denied(DenyRule::NotRegularFile {
                kind: "a FIFO or socket".into(),
            }));
        }
        Err(refused) => return Err(refused),
    };
    let meta = file.metadata()?;
    check_regular(&meta)?;
    // O_NONBLOCK stays: it changes nothing for a regular file.
    Ok((file, meta.len()))
}

/// Refuses anything but a regular file with one link.
pub(super) fn check_regular(meta: &std::fs::Metadata) -> Result<(), Refused> {
    if !meta.is_file() {
        return Err(Refused::Denied(DenyRule::NotRegularFile {
            kind: kind_of(meta).into(),
        }));
    }
    if meta.nlink() > 1 {
        return Err(Refused::Denied(DenyRule::HardLinked {
            links: meta.nlink(),
        }));
    }
    Ok(())
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

/// Metadata of the checked path itself (no file is opened for reading, so
/// a FIFO is safe to stat).
pub(super) fn metadata(path: &Path) -> Result<std::fs::Metadata, Refused> {
    let fd = open(path, OFlag::O_PATH, Mode::empty())?;
    Ok(File::from(fd).metadata()?)
}

/// Opens the checked directory `path` for listing.
pub(super) fn open_dir(path: &Path) -> Result<nix::dir::Dir, Refused> {
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())?;
    Ok(nix::dir::Dir::from_fd(fd)?)
}

/// The entries of an opened directory (without `.` and `..`): name, and
/// whether it is a directory (a symlink to one is not).
pub(super) fn entries(dir: &mut nix::dir::Dir) -> Result<Vec<(Vec<u8>, bool)>, Refused> {
    use nix::dir::Type;
    let parent = nix::unistd::dup(dir.as_fd())?;
    let mut listed = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            Some(kind) => kind == Type::Directory,
            // The file system does not say: ask without following a link.
            None => nix::sys::stat::fstatat(
                &parent,
                entry.file_name(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .is_ok_and(|stat| stat.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR),
        };
        listed.push((name.to_vec(), is_dir));
    }
    Ok(listed)
}

/// Creates the checked directory `path` and any missing parents, one
/// component at a time from `/`: each is created (`mkdirat`) and opened
/// relative to the one before, so none can be a symlink.
pub(super) fn create_dir_all(path: &Path) -> Result<(), Refused> {
    let mut dir = open_directory(Path::new("/"))?;
    for component in path.components() {
        let name = match component {
            Component::RootDir => continue,
            Component::Normal(name) => name,
            // A checked path holds neither `.` nor `..`.
            _ => return Err(Refused::Io(io::Error::from(io::ErrorKind::InvalidInput))),
        };
        dir = match open_subdir(&dir, name) {
            Err(Refused::Io(error)) if error.kind() == io::ErrorKind::NotFound => {
                match nix::sys::stat::mkdirat(&dir, name, Mode::from_bits_truncate(0o777)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(errno) => return Err(errno.into()),
                }
                open_subdir(&dir, name)?
            }
            other => other?,
        };
    }
    Ok(())
}

fn open_subdir(dir: &OwnedFd, name: &OsStr) -> Result<OwnedFd, Refused> {
    open_at(
        dir,
        Path::new(name),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
}

/// Removes the entry `path` (its parent checked and symlink-free; the entry
/// itself may be a symlink, which is removed, not followed): a file, a
/// symlink or an empty directory.
pub(super) fn remove(path: &Path) -> Result<(), Refused> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Refused::Io(io::Error::from(io::ErrorKind::InvalidInput)));
    };
    let parent = open_directory(parent)?;
    match nix::unistd::unlinkat(&parent, name, UnlinkatFlags::NoRemoveDir) {
        Err(Errno::EISDIR) => {
            nix::unistd::unlinkat(&parent, name, UnlinkatFlags::RemoveDir)?;
            Ok(())
        }
        other => Ok(other?),
    }
}
