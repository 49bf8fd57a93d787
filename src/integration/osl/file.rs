//! [`FileActor`]: file-system operations as messages, checked, confined by
//! the kernel to what was checked, bounded in time, and logged.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use nix::fcntl::OFlag;
use serde::{Deserialize, Serialize};

use super::activity::escape_path;
use super::confine::{self, Refused};
use super::{Access, DenyRule, Operation, Osl, OslError, SecurityContext};
use crate::actor::{Actor, ActorContext, ReplyTo};
use crate::message::Message;

/// What a [`FileActor`] can be asked to do. Each request carries its reply
/// port; the answer is `Ok` or the [`OslError`] that refused or failed it.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileRequest {
    /// Reads a whole regular file (at most `max_output_bytes`).
    Read {
        /// The file.
        path: PathBuf,
        /// Its bytes.
        reply: ReplyTo<Result<Vec<u8>, OslError>>,
    },
    /// Creates or replaces a file with `data`.
    Write {
        /// The file.
        path: PathBuf,
        /// Its new contents.
        data: Vec<u8>,
        /// Done.
        reply: ReplyTo<Result<(), OslError>>,
    },
    /// Appends `data` to a file, creating it if needed.
    Append {
        /// The file.
        path: PathBuf,
        /// What to add.
        data: Vec<u8>,
        /// Done.
        reply: ReplyTo<Result<(), OslError>>,
    },
    /// Lists a directory, sorted by name.
    ListDir {
        /// The directory.
        path: PathBuf,
        /// Its entries.
        reply: ReplyTo<Result<Vec<DirEntryInfo>, OslError>>,
    },
    /// Reads metadata (following symlinks). A regular file with more than
    /// one hard link is refused, as for reads.
    Metadata {
        /// The path.
        path: PathBuf,
        /// What it is.
        reply: ReplyTo<Result<FileInfo, OslError>>,
    },
    /// Creates a directory and any missing parents.
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Done.
        reply: ReplyTo<Result<(), OslError>>,
    },
    /// Removes a file or an empty directory.
    Remove {
        /// The path.
        path: PathBuf,
        /// Done.
        reply: ReplyTo<Result<(), OslError>>,
    },
}

impl Message for FileRequest {
    const MESSAGE_TYPE: &'static str = "airssys.osl.file";
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntryInfo {
    /// Its file name.
    pub name: String,
    /// Whether it is a directory.
    pub is_dir: bool,
}

/// What [`FileRequest::Metadata`] reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Size in bytes.
    pub len: u64,
    /// Whether it is a directory.
    pub is_dir: bool,
    /// Whether it is read-only for its owner.
    pub read_only: bool,
    /// Last modification, if the platform reports it.
    pub modified: Option<SystemTime>,
}

/// Performs [`FileRequest`]s as one [`SecurityContext`]. Make it with
/// [`Osl::file_actor`].
///
/// Each request is checked against the policy and then performed on tokio's
/// blocking pool, confined by the kernel to the checked path (see the
/// `confine` module's docs: `openat2` with no symlinks), bounded by the
/// policy's `max_duration`. Only regular files with one link are read,
/// written or appended to.
///
/// A system call cannot be interrupted: an operation that runs out of time
/// (a hung network file system) is answered `TimedOut` and recorded so, but
/// its call may still complete later, and the actor's next request may then
/// run beside it.
#[derive(Debug)]
pub struct FileActor {
    osl: Osl,
    context: Arc<SecurityContext>,
}

/// How a checked path is resolved.
#[derive(Debug, Clone, Copy)]
enum Resolve {
    /// Every symlink followed, the last one too.
    Follow,
    /// The last component itself (a removal removes a link, not its target).
    Entry,
}

impl FileActor {
    pub(crate) fn new(osl: Osl, context: SecurityContext) -> Self {
        Self {
            osl,
            context: Arc::new(context),
        }
    }

    /// Checks `path` for `access` and runs `op` on the checked path, all on
    /// the blocking pool (checking again if a symlink appeared in the path
    /// meanwhile, see [`confine::checked`]); records the outcome.
    async fn confined<T, F>(
        &self,
        operation: Operation,
        path: PathBuf,
        access: Access,
        resolve: Resolve,
        op: F,
    ) -> Result<T, OslError>
    where
        T: Send + 'static,
        F: FnMut(&Path) -> Result<T, Refused> + Send + 'static,
    {
        let audit = self.osl.audit(&self.context, operation, escape_path(&path));
        let (osl, context) = (self.osl.clone(), self.context.clone());
        let result = audit
            .blocking(move || {
                let policy = osl.policy();
                let check = || match resolve {
                    Resolve::Follow => policy.check_path(&context, access, &path),
                    Resolve::Entry => policy.check_entry(&context, access, &path),
                };
                confine::checked(check, op)
            })
            .await;
        audit.finish(result)
    }

    async fn read(&self, path: PathBuf) -> Result<Vec<u8>, OslError> {
        let limit = self.osl.policy().current_limits().max_output_bytes as u64;
        let too_big = move || {
            Refused::Denied(DenyRule::Limit {
                name: "max_output_bytes",
                value: limit,
            })
        };
        self.confined(
            Operation::FileRead,
            path,
            Access::Read,
            Resolve::Follow,
            move |checked| {
                let (file, len) = confine::open_regular(checked, OFlag::O_RDONLY)?;
                if len > limit {
                    return Err(too_big());
                }
                // The size is only a hint (the file may still grow): read one
                // byte past the limit to tell.
                let mut data = Vec::with_capacity(len as usize);
                file.take(limit + 1).read_to_end(&mut data)?;
                if data.len() as u64 > limit {
                    return Err(too_big());
                }
                Ok(data)
            },
        )
        .await
    }

    async fn write(&self, path: PathBuf, data: Vec<u8>, append: bool) -> Result<(), OslError> {
        let (operation, mode) = if append {
            (Operation::FileAppend, OFlag::O_APPEND)
        } else {
            (Operation::FileWrite, OFlag::empty())
        };
        self.confined(
            operation,
            path,
            Access::Write,
            Resolve::Follow,
            move |checked| {
                // Not O_TRUNC: what was opened is checked before it changes.
                let (mut file, _) =
                    confine::open_regular(checked, OFlag::O_WRONLY | OFlag::O_CREAT | mode)?;
                if !append {
                    file.set_len(0)?;
                }
                file.write_all(&data)?;
                Ok(())
            },
        )
        .await
    }

    async fn list(&self, path: PathBuf) -> Result<Vec<DirEntryInfo>, OslError> {
        self.confined(
            Operation::ListDir,
            path,
            Access::Read,
            Resolve::Follow,
            |checked| {
                let mut dir = confine::open_dir(checked)?;
                let mut listed: Vec<DirEntryInfo> = confine::entries(&mut dir)?
                    .into_iter()
                    .map(|(name, is_dir)| DirEntryInfo {
                        name: String::from_utf8_lossy(&name).into_owned(),
                        is_dir,
                    })
                    .collect();
                listed.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(listed)
            },
        )
        .await
    }

    async fn metadata(&self, path: PathBuf) -> Result<FileInfo, OslError> {
        self.confined(
            Operation::Metadata,
            path,
            Access::Read,
            Resolve::Follow,
            |checked| {
                let meta = confine::metadata(checked)?;
                if meta.is_file() {
                    confine::check_regular(&meta)?;
                }
                Ok(FileInfo {
                    len: meta.len(),
                    is_dir: meta.is_dir(),
                    read_only: meta.permissions().readonly(),
                    modified: meta.modified().ok(),
                })
            },
        )
        .await
    }

    async fn create_dir(&self, path: PathBuf) -> Result<(), OslError> {
        self.confined(
            Operation::CreateDir,
            path,
            Access::Write,
            Resolve::Follow,
            confine::create_dir_all,
        )
        .await
    }

    async fn remove(&self, path: PathBuf) -> Result<(), OslError> {
        self.confined(
            Operation::Remove,
            path,
            Access::Write,
            Resolve::Entry,
            confine::remove,
        )
        .await
    }
}

impl Actor for FileActor {
    type Message = FileRequest;
    type Error = std::convert::Infallible;

    async fn handle_message(
        &mut self,
        request: FileRequest,
        _: &mut ActorContext<FileRequest>,
    ) -> Result<(), Self::Error> {
        // A requester that gave up has dropped its port; nothing to do then.
        match request {
            FileRequest::Read { path, reply } => drop(reply.reply(self.read(path).await)),
            FileRequest::Write { path, data, reply } => {
                drop(reply.reply(self.write(path, data, false).await));
            }
            FileRequest::Append { path, data, reply } => {
                drop(reply.reply(self.write(path, data, true).await));
            }
            FileRequest::ListDir { path, reply } => drop(reply.reply(self.list(path).await)),
            FileRequest::Metadata { path, reply } => {
                drop(reply.reply(self.metadata(path).await));
            }
            FileRequest::CreateDir { path, reply } => {
                drop(reply.reply(self.create_dir(path).await));
            }
            FileRequest::Remove { path, reply } => drop(reply.reply(self.remove(path).await)),
        }
        Ok(())
    }
}
