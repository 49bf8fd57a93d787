//! [`FileActor`]: file-system operations as messages, checked and logged.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Access, Operation, Osl, OslError, SecurityContext};
use crate::actor::{Actor, ActorContext, ReplyTo};
use crate::message::Message;

/// What a [`FileActor`] can be asked to do. Each request carries its reply
/// port; the answer is `Ok` or the [`OslError`] that refused or failed it.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileRequest {
    /// Reads a whole file (at most `max_output_bytes`).
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
    /// Reads metadata (following symlinks).
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
#[derive(Debug)]
pub struct FileActor {
    osl: Osl,
    context: SecurityContext,
}

impl FileActor {
    pub(crate) fn new(osl: Osl, context: SecurityContext) -> Self {
        Self { osl, context }
    }

    async fn read(&self, path: PathBuf) -> Result<Vec<u8>, OslError> {
        let audit = self
            .osl
            .audit(&self.context, Operation::FileRead, path.display());
        let result = async {
            let resolved = audit.path(Access::Read, &path)?;
            let limit = audit.limits().max_output_bytes as u64;
            let too_big = || {
                audit.denied(super::DenyRule::Limit {
                    name: "max_output_bytes",
                    value: limit,
                })
            };
            let file = tokio::fs::File::open(&resolved)
                .await
                .map_err(|e| audit.io(&e))?;
            let len = file.metadata().await.map_err(|e| audit.io(&e))?.len();
            if len > limit {
                return Err(too_big());
            }
            // The size is only a hint (a FIFO, a device, a file still
            // growing): read one byte past the limit to tell.
            let mut data = Vec::with_capacity(len as usize);
            file.take(limit + 1)
                .read_to_end(&mut data)
                .await
                .map_err(|e| audit.io(&e))?;
            if data.len() as u64 > limit {
                return Err(too_big());
            }
            Ok(data)
        }
        .await;
        audit.finish(result)
    }

    async fn write(&self, path: PathBuf, data: Vec<u8>, append: bool) -> Result<(), OslError> {
        let operation = if append {
            Operation::FileAppend
        } else {
            Operation::FileWrite
        };
        let audit = self.osl.audit(&self.context, operation, path.display());
        let result = async {
            let resolved = audit.path(Access::Write, &path)?;
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(&resolved)
                .await
                .map_err(|e| audit.io(&e))?;
            file.write_all(&data).await.map_err(|e| audit.io(&e))?;
            file.flush().await.map_err(|e| audit.io(&e))
        }
        .await;
        audit.finish(result)
    }

    async fn list(&self, path: PathBuf) -> Result<Vec<DirEntryInfo>, OslError> {
        let audit = self
            .osl
            .audit(&self.context, Operation::ListDir, path.display());
        let result = async {
            let resolved = audit.path(Access::Read, &path)?;
            let mut entries = tokio::fs::read_dir(&resolved)
                .await
                .map_err(|e| audit.io(&e))?;
            let mut listed = Vec::new();
            while let Some(entry) = entries.next_entry().await.map_err(|e| audit.io(&e))? {
                let is_dir = entry.file_type().await.map_err(|e| audit.io(&e))?.is_dir();
                listed.push(DirEntryInfo {
                    name: entry.file_name().to_string_lossy().into_owned(),
                    is_dir,
                });
            }
            listed.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(listed)
        }
        .await;
        audit.finish(result)
    }

    async fn metadata(&self, path: PathBuf) -> Result<FileInfo, OslError> {
        let audit = self
            .osl
            .audit(&self.context, Operation::Metadata, path.display());
        let result = async {
            let resolved = audit.path(Access::Read, &path)?;
            let meta = tokio::fs::metadata(&resolved)
                .await
                .map_err(|e| audit.io(&e))?;
            Ok(FileInfo {
                len: meta.len(),
                is_dir: meta.is_dir(),
                read_only: meta.permissions().readonly(),
                modified: meta.modified().ok(),
            })
        }
        .await;
        audit.finish(result)
    }

    async fn create_dir(&self, path: PathBuf) -> Result<(), OslError> {
        let audit = self
            .osl
            .audit(&self.context, Operation::CreateDir, path.display());
        let result = async {
            let resolved = audit.path(Access::Write, &path)?;
            tokio::fs::create_dir_all(&resolved)
                .await
                .map_err(|e| audit.io(&e))
        }
        .await;
        audit.finish(result)
    }

    async fn remove(&self, path: PathBuf) -> Result<(), OslError> {
        let audit = self
            .osl
            .audit(&self.context, Operation::Remove, path.display());
        let result = async {
            // The entry itself: removing a symlink removes the link.
            let resolved = audit.entry(Access::Write, &path)?;
            let meta = tokio::fs::symlink_metadata(&resolved)
                .await
                .map_err(|e| audit.io(&e))?;
            if meta.is_dir() {
                tokio::fs::remove_dir(&resolved).await
            } else {
                tokio::fs::remove_file(&resolved).await
            }
            .map_err(|e| audit.io(&e))
        }
        .await;
        audit.finish(result)
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
