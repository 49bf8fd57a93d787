//! The OS layer's `FileActor` on real files: every request's success path,
//! every way out of a grant (`..`, absolute paths, symlinks, dangling
//! symlinks, read-only and role-bound grants) refused with the rule that
//! refused it, the read-size limit, and the activity log (one record per
//! operation, JSON lines that parse back, no file contents).
//!
//! Each test works in its own directory under the system temp dir (process
//! id and a counter in its name), removed when the test ends. Nothing waits
//! for time: an ask's reply comes after the record of its operation.
#![cfg(all(target_os = "linux", feature = "osl"))]

mod support;

use std::fmt::Debug;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use airssys_rt::integration::osl::{
    ActivityLog, ActivityRecord, DenyRule, DirEntryInfo, FileRequest, Grant, JsonLinesSink, Limits,
    MemorySink, Operation, Osl, OslError, Outcome, SecurityContext, SecurityPolicy,
};
use airssys_rt::prelude::*;
use support::PATIENCE;

/// A fresh directory under the system temp dir, removed with everything in
/// it when dropped (also when the test fails).
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "airssys-osl-files-{}-{}-{test}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // A leftover from an earlier run that had the same process id.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir writable");
        // Canonical, so that resolved paths in denials compare equal.
        Self(std::fs::canonicalize(&dir).expect("just created"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Does not follow symlinks: links into `outside` are removed, not
        // their targets (which are in here anyway).
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A granted directory, a directory next to it that no grant covers (with a
/// `secret.txt`), and the layer's records.
struct Sandbox {
    scratch: Scratch,
    granted: PathBuf,
    outside: PathBuf,
    memory: MemorySink,
    system: ActorSystem,
}

const OUTSIDE_SECRET: &[u8] = b"outside-secret: must never be read through the layer";

impl Sandbox {
    fn new(test: &str) -> Self {
        let scratch = Scratch::new(test);
        let granted = scratch.0.join("granted");
        let outside = scratch.0.join("outside");
        std::fs::create_dir(&granted).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret.txt"), OUTSIDE_SECRET).unwrap();
        Self {
            scratch,
            granted,
            outside,
            memory: MemorySink::default(),
            system: ActorSystem::new(SystemConfig::default()).expect("inside a runtime"),
        }
    }

    /// A layer with `policy`, recording to this sandbox's memory sink.
    fn osl(&self, policy: SecurityPolicy) -> Osl {
        Osl::new(policy, ActivityLog::new().with_sink(self.memory.clone()))
    }

    /// Read and write on the granted directory.
    fn read_write(&self) -> Osl {
        self.osl(
            SecurityPolicy::deny_all()
                .grant(Grant::read(&self.granted))
                .grant(Grant::write(&self.granted)),
        )
    }

    fn files(&self, osl: &Osl, principal: &str) -> Files {
        self.files_as(osl, SecurityContext::new(principal))
    }

    fn files_as(&self, osl: &Osl, context: SecurityContext) -> Files {
        Files(
            self.system
                .spawn(osl.file_actor(context))
                .expect("file actor spawns"),
        )
    }

    fn records(&self) -> Vec<ActivityRecord> {
        self.memory.records()
    }

    fn last_record(&self) -> ActivityRecord {
        self.records().pop().expect("at least one record")
    }

    /// Asserts `result` is a denial of `operation` on `path` for
    /// `principal` by `rule`, and that the latest record says the same.
    #[track_caller]
    fn assert_denied<T: Debug>(
        &self,
        result: Result<T, OslError>,
        operation: Operation,
        path: &Path,
        principal: &str,
        rule: DenyRule,
    ) {
        let expected = OslError::Denied {
            operation,
            target: path.display().to_string(),
            principal: principal.to_owned(),
            rule: rule.clone(),
        };
        match result {
            Err(error) => assert_eq!(error, expected),
            Ok(value) => panic!("{operation} {} allowed: {value:?}", path.display()),
        }
        let record = self.last_record();
        assert_eq!(record.operation, operation);
        assert_eq!(record.target, path.display().to_string());
        assert_eq!(record.principal, principal);
        assert_eq!(record.outcome, Outcome::Denied(rule.to_string()));
    }
}

/// A spawned `FileActor`, one method per request.
struct Files(ActorRef<FileRequest>);

impl Files {
    async fn ask<R: Send>(&self, request: impl FnOnce(ReplyTo<R>) -> FileRequest) -> R {
        self.0
            .ask(request, PATIENCE)
            .await
            .expect("the file actor answers")
    }

    async fn read(&self, path: impl Into<PathBuf>) -> Result<Vec<u8>, OslError> {
        let path = path.into();
        self.ask(|reply| FileRequest::Read { path, reply }).await
    }

    async fn write(&self, path: impl Into<PathBuf>, data: &[u8]) -> Result<(), OslError> {
        let (path, data) = (path.into(), data.to_vec());
        self.ask(|reply| FileRequest::Write { path, data, reply })
            .await
    }

    async fn append(&self, path: impl Into<PathBuf>, data: &[u8]) -> Result<(), OslError> {
        let (path, data) = (path.into(), data.to_vec());
        self.ask(|reply| FileRequest::Append { path, data, reply })
            .await
    }

    async fn list(&self, path: impl Into<PathBuf>) -> Result<Vec<DirEntryInfo>, OslError> {
        let path = path.into();
        self.ask(|reply| FileRequest::ListDir { path, reply }).await
    }

    async fn metadata(
        &self,
        path: impl Into<PathBuf>,
    ) -> Result<airssys_rt::integration::osl::FileInfo, OslError> {
        let path = path.into();
        self.ask(|reply| FileRequest::Metadata { path, reply })
            .await
    }

    async fn create_dir(&self, path: impl Into<PathBuf>) -> Result<(), OslError> {
        let path = path.into();
        self.ask(|reply| FileRequest::CreateDir { path, reply })
            .await
    }

    async fn remove(&self, path: impl Into<PathBuf>) -> Result<(), OslError> {
        let path = path.into();
        self.ask(|reply| FileRequest::Remove { path, reply }).await
    }
}

fn entry(name: &str, is_dir: bool) -> DirEntryInfo {
    DirEntryInfo {
        name: name.to_owned(),
        is_dir,
    }
}

fn escapes(resolved: impl Into<PathBuf>) -> DenyRule {
    DenyRule::PathEscapes {
        resolved: resolved.into(),
    }
}

fn no_grant(access: &str) -> DenyRule {
    DenyRule::NoGrant(access.to_owned())
}

// ---------------------------------------------------------------------------
// Success paths
// ---------------------------------------------------------------------------

#[tokio::test]
async fn write_replaces_and_append_extends_real_files() {
    let sandbox = Sandbox::new("write");
    let osl = sandbox.read_write();
    let files = sandbox.files(&osl, "writer");
    let note = sandbox.granted.join("note.txt");

    files.write(&note, b"first, longer contents").await.unwrap();
    assert_eq!(std::fs::read(&note).unwrap(), b"first, longer contents");
    // Replacing truncates: nothing of the longer first version is left.
    files.write(&note, b"second").await.unwrap();
    assert_eq!(std::fs::read(&note).unwrap(), b"second");
    files.append(&note, b" + more").await.unwrap();
    assert_eq!(std::fs::read(&note).unwrap(), b"second + more");

    // Append creates a missing file.
    let fresh = sandbox.granted.join("fresh.log");
    files.append(&fresh, b"line 1\n").await.unwrap();
    files.append(&fresh, b"line 2\n").await.unwrap();
    assert_eq!(std::fs::read(&fresh).unwrap(), b"line 1\nline 2\n");

    let ops: Vec<_> = sandbox.records().iter().map(|r| r.operation).collect();
    assert_eq!(
        ops,
        [
            Operation::FileWrite,
            Operation::FileWrite,
            Operation::FileAppend,
            Operation::FileAppend,
            Operation::FileAppend,
        ]
    );
    assert!(
        sandbox
            .records()
            .iter()
            .all(|r| r.outcome == Outcome::Succeeded && r.principal == "writer")
    );
}

#[tokio::test]
async fn read_returns_the_bytes_on_disk() {
    let sandbox = Sandbox::new("read");
    let files = sandbox.files(&sandbox.read_write(), "reader");
    let binary: Vec<u8> = (0..=255).collect();
    let path = sandbox.granted.join("bytes.bin");
    std::fs::write(&path, &binary).unwrap();
    assert_eq!(files.read(&path).await.unwrap(), binary);

    let empty = sandbox.granted.join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(files.read(&empty).await.unwrap(), b"");

    // A relative spelling inside the grant is fine: `.` and `..` that stay
    // inside are resolved away.
    let roundabout = sandbox.granted.join("./sub/../bytes.bin");
    std::fs::create_dir(sandbox.granted.join("sub")).unwrap();
    assert_eq!(files.read(&roundabout).await.unwrap(), binary);

    let record = sandbox.last_record();
    assert_eq!(record.operation, Operation::FileRead);
    assert_eq!(record.target, roundabout.display().to_string());
    assert_eq!(record.outcome, Outcome::Succeeded);
}

#[tokio::test]
async fn list_dir_is_sorted_and_tells_directories_apart() {
    let sandbox = Sandbox::new("list");
    let files = sandbox.files(&sandbox.read_write(), "lister");
    let dir = &sandbox.granted;
    // Created out of order, so a sorted answer is not the creation order.
    for name in ["zeta.txt", "alpha.txt", "Mid.txt"] {
        std::fs::write(dir.join(name), name).unwrap();
    }
    for name in ["m-dir", "b-dir"] {
        std::fs::create_dir(dir.join(name)).unwrap();
    }
    // A symlink is listed as itself (not a directory), even to a directory.
    symlink(&sandbox.outside, dir.join("link-to-dir")).unwrap();

    assert_eq!(
        files.list(dir).await.unwrap(),
        [
            entry("Mid.txt", false),
            entry("alpha.txt", false),
            entry("b-dir", true),
            entry("link-to-dir", false),
            entry("m-dir", true),
            entry("zeta.txt", false),
        ]
    );
    assert_eq!(files.list(dir.join("b-dir")).await.unwrap(), []);
    assert_eq!(sandbox.last_record().operation, Operation::ListDir);
}

#[tokio::test]
async fn metadata_reports_size_kind_and_permissions() {
    let sandbox = Sandbox::new("metadata");
    let files = sandbox.files(&sandbox.read_write(), "stat");
    let file = sandbox.granted.join("ten.bytes");
    std::fs::write(&file, b"0123456789").unwrap();

    let info = files.metadata(&file).await.unwrap();
    assert_eq!(info.len, 10);
    assert!(!info.is_dir);
    assert!(!info.read_only);
    assert_eq!(
        info.modified,
        Some(std::fs::metadata(&file).unwrap().modified().unwrap())
    );

    let mut permissions = std::fs::metadata(&file).unwrap().permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(&file, permissions).unwrap();
    assert!(files.metadata(&file).await.unwrap().read_only);

    let dir = files.metadata(&sandbox.granted).await.unwrap();
    assert!(dir.is_dir);

    // Metadata follows a symlink that stays inside the grant.
    symlink(&file, sandbox.granted.join("alias")).unwrap();
    let via_link = files.metadata(sandbox.granted.join("alias")).await.unwrap();
    assert_eq!((via_link.len, via_link.is_dir), (10, false));
    assert_eq!(sandbox.last_record().operation, Operation::Metadata);
}

#[tokio::test]
async fn create_dir_makes_missing_parents() {
    let sandbox = Sandbox::new("mkdir");
    let files = sandbox.files(&sandbox.read_write(), "builder");
    let deep = sandbox.granted.join("a/b/c");
    files.create_dir(&deep).await.unwrap();
    assert!(deep.is_dir());
    // Again: already there is fine.
    files.create_dir(&deep).await.unwrap();
    // The new directories are usable through the actor.
    files.write(deep.join("leaf.txt"), b"leaf").await.unwrap();
    assert_eq!(std::fs::read(deep.join("leaf.txt")).unwrap(), b"leaf");
    let ops: Vec<_> = sandbox.records().iter().map(|r| r.operation).collect();
    assert_eq!(
        ops,
        [
            Operation::CreateDir,
            Operation::CreateDir,
            Operation::FileWrite
        ]
    );
}

#[tokio::test]
async fn remove_takes_files_and_empty_directories() {
    let sandbox = Sandbox::new("remove");
    let files = sandbox.files(&sandbox.read_write(), "cleaner");
    let file = sandbox.granted.join("gone.txt");
    let dir = sandbox.granted.join("empty-dir");
    std::fs::write(&file, b"x").unwrap();
    std::fs::create_dir(&dir).unwrap();

    files.remove(&file).await.unwrap();
    assert!(!file.exists());
    files.remove(&dir).await.unwrap();
    assert!(!dir.exists());

    // A directory with something in it stays: the removal fails (it is
    // allowed, so the record says failed, not denied).
    let full = sandbox.granted.join("full-dir");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep.txt"), b"keep").unwrap();
    let error = files.remove(&full).await.unwrap_err();
    assert!(
        matches!(
            &error,
            OslError::Io {
                operation: Operation::Remove,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(full.join("keep.txt").exists());
    assert!(matches!(sandbox.last_record().outcome, Outcome::Failed(_)));

    // Removing what is not there fails too.
    let error = files.remove(&file).await.unwrap_err();
    assert!(
        matches!(&error, OslError::Io { kind, .. } if *kind == std::io::ErrorKind::NotFound),
        "{error:?}"
    );
}

#[tokio::test]
async fn removing_a_symlink_removes_the_link_not_its_target() {
    let sandbox = Sandbox::new("remove-link");
    let files = sandbox.files(&sandbox.read_write(), "cleaner");

    // To a file inside the grant.
    let target = sandbox.granted.join("target.txt");
    std::fs::write(&target, b"still here").unwrap();
    let link = sandbox.granted.join("link");
    symlink(&target, &link).unwrap();
    files.remove(&link).await.unwrap();
    assert!(std::fs::symlink_metadata(&link).is_err(), "link removed");
    assert_eq!(std::fs::read(&target).unwrap(), b"still here");

    // To a file and to a directory outside the grant: the links are in the
    // grant, so they may be removed; what they point at is untouched.
    let secret = sandbox.outside.join("secret.txt");
    let to_file = sandbox.granted.join("to-secret");
    let to_dir = sandbox.granted.join("to-outside");
    symlink(&secret, &to_file).unwrap();
    symlink(&sandbox.outside, &to_dir).unwrap();
    files.remove(&to_file).await.unwrap();
    files.remove(&to_dir).await.unwrap();
    assert!(std::fs::symlink_metadata(&to_file).is_err());
    assert!(std::fs::symlink_metadata(&to_dir).is_err());
    assert_eq!(std::fs::read(&secret).unwrap(), OUTSIDE_SECRET);
    assert!(sandbox.outside.is_dir());

    // A dangling link is removed as well.
    let dangling = sandbox.granted.join("dangling");
    symlink(sandbox.outside.join("nothing-here"), &dangling).unwrap();
    files.remove(&dangling).await.unwrap();
    assert!(std::fs::symlink_metadata(&dangling).is_err());
    assert!(
        sandbox
            .records()
            .iter()
            .all(|r| r.outcome == Outcome::Succeeded)
    );
}

// ---------------------------------------------------------------------------
// Denials
// ---------------------------------------------------------------------------

#[tokio::test]
async fn dot_dot_out_of_the_grant_is_denied_by_default() {
    let sandbox = Sandbox::new("dotdot");
    let files = sandbox.files(&sandbox.read_write(), "climber");
    let secret = sandbox.outside.join("secret.txt");

    // `..` that leads out textually: with it removed, the path is outside
    // every grant, so no grant covers it (it is not an escape from one).
    let up = sandbox.granted.join("../outside/secret.txt");
    let result = files.read(&up).await;
    sandbox.assert_denied(
        result,
        Operation::FileRead,
        &up,
        "climber",
        no_grant("read"),
    );

    // Deeper: through an existing subdirectory and back up twice.
    std::fs::create_dir(sandbox.granted.join("sub")).unwrap();
    let twice = sandbox.granted.join("sub/../../outside/secret.txt");
    let result = files.read(&twice).await;
    sandbox.assert_denied(
        result,
        Operation::FileRead,
        &twice,
        "climber",
        no_grant("read"),
    );

    // Up to a sibling of the grant that does not exist yet: not created.
    let planted = sandbox.granted.join("../planted.txt");
    let result = files.write(&planted, b"planted").await;
    sandbox.assert_denied(
        result,
        Operation::FileWrite,
        &planted,
        "climber",
        no_grant("write"),
    );
    assert!(!sandbox.scratch.0.join("planted.txt").exists());

    // Up through a directory that does not exist.
    let ghost = sandbox.granted.join("no-such-dir/../../outside/secret.txt");
    let result = files.read(&ghost).await;
    sandbox.assert_denied(
        result,
        Operation::FileRead,
        &ghost,
        "climber",
        no_grant("read"),
    );

    // The parent of the grant.
    let parent = sandbox.granted.join("..");
    let result = files.list(&parent).await;
    sandbox.assert_denied(
        result,
        Operation::ListDir,
        &parent,
        "climber",
        no_grant("read"),
    );
    let result = files.remove(&parent).await;
    sandbox.assert_denied(
        result,
        Operation::Remove,
        &parent,
        "climber",
        no_grant("write"),
    );
    assert_eq!(std::fs::read(&secret).unwrap(), OUTSIDE_SECRET);
    assert!(sandbox.granted.is_dir());
}

#[tokio::test]
async fn dot_dot_after_a_symlink_leaves_from_where_the_link_leads() {
    let sandbox = Sandbox::new("link-dotdot");
    let files = sandbox.files(&sandbox.read_write(), "climber");
    // granted/jump -> outside/deeper, so granted/jump/.. is outside (as the
    // OS resolves it), not granted.
    let deeper = sandbox.outside.join("deeper");
    std::fs::create_dir(&deeper).unwrap();
    symlink(&deeper, sandbox.granted.join("jump")).unwrap();
    // A decoy where a textual `..` would land instead.
    std::fs::write(sandbox.granted.join("secret.txt"), b"decoy in the grant").unwrap();

    let sneaky = sandbox.granted.join("jump/../secret.txt");
    // What the OS itself makes of the path.
    assert_eq!(std::fs::read(&sneaky).unwrap(), OUTSIDE_SECRET);
    let result = files.read(&sneaky).await;
    sandbox.assert_denied(
        result,
        Operation::FileRead,
        &sneaky,
        "climber",
        escapes(sandbox.outside.join("secret.txt")),
    );

    let write = sandbox.granted.join("jump/../dropped.txt");
    let result = files.write(&write, b"dropped").await;
    sandbox.assert_denied(
        result,
        Operation::FileWrite,
        &write,
        "climber",
        escapes(sandbox.outside.join("dropped.txt")),
    );
    assert!(!sandbox.outside.join("dropped.txt").exists());
    assert!(!sandbox.granted.join("dropped.txt").exists());
}

#[tokio::test]
async fn absolute_paths_outside_every_grant_are_denied_by_default() {
    let sandbox = Sandbox::new("absolute");
    let files = sandbox.files(&sandbox.read_write(), "wanderer");
    let secret = sandbox.outside.join("secret.txt");

    let result = files.read(&secret).await;
    sandbox.assert_denied(
        result,
        Operation::FileRead,
        &secret,
        "wanderer",
        no_grant("read"),
    );
    let result = files.metadata(&secret).await;
    sandbox.assert_denied(
        result,
        Operation::Metadata,
        &secret,
        "wanderer",
        no_grant("read"),
    );
    let result = files.list(&sandbox.outside).await;
    sandbox.assert_denied(
        result,
        Operation::ListDir,
        &sandbox.outside,
        "wanderer",
        no_grant("read"),
    );
    let result = files.write(&secret, b"overwritten").await;
    sandbox.assert_denied(
        result,
        Operation::FileWrite,
        &secret,
        "wanderer",
        no_grant("write"),
    );
    let result = files.remove(&secret).await;
    sandbox.assert_denied(
        result,
        Operation::Remove,
        &secret,
        "wanderer",
        no_grant("write"),
    );
    let new_dir = sandbox.outside.join("new-dir");
    let result = files.create_dir(&new_dir).await;
    sandbox.assert_denied(
        result,
        Operation::CreateDir,
        &new_dir,
        "wanderer",
        no_grant("write"),
    );
    assert_eq!(std::fs::read(&secret).unwrap(), OUTSIDE_SECRET);
    assert!(!new_dir.exists());

    // A sibling whose name merely starts with the granted one: prefixes are
    // compared by path component, not by text.
    let sibling = sandbox.scratch.0.join("granted-evil");
    std::fs::create_dir(&sibling).unwrap();
    std::fs::write(sibling.join("x.txt"), b"x").unwrap();
    let result = files.read(sibling.join("x.txt")).await;
    sandbox.assert_denied(
        result,
        Operation::FileRead,
        &sibling.join("x.txt"),
        "wanderer",
        no_grant("read"),
    );
}

#[tokio::test]
async fn symlinks_inside_the_grant_that_lead_out_are_escapes() {
    let sandbox = Sandbox::new("symlink");
    let files = sandbox.files(&sandbox.read_write(), "linker");
    let secret = sandbox.outside.join("secret.txt");
    let to_file = sandbox.granted.join("innocent.txt");
    let to_dir = sandbox.granted.join("innocent-dir");
    symlink(&secret, &to_file).unwrap();
    symlink(&sandbox.outside, &to_dir).unwrap();

    let result = files.read(&to_file).await;
    sandbox.assert_denied(
        result,
        Operation::FileRead,
        &to_file,
        "linker",
        escapes(&secret),
    );
    let result = files.metadata(&to_file).await;
    sandbox.assert_denied(
        result,
        Operation::Metadata,
        &to_file,
        "linker",
        escapes(&secret),
    );
    let result = files.write(&to_file, b"overwritten").await;
    sandbox.assert_denied(
        result,
        Operation::FileWrite,
        &to_file,
        "linker",
        escapes(&secret),
    );
    let result = files.append(&to_file, b"appended").await;
    sandbox.assert_denied(
        result,
        Operation::FileAppend,
        &to_file,
        "linker",
        escapes(&secret),
    );
    let result = files.list(&to_dir).await;
    sandbox.assert_denied(
        result,
        Operation::ListDir,
        &to_dir,
        "linker",
        escapes(&sandbox.outside),
    );
    let through = to_dir.join("secret.txt");
    let result = files.read(&through).await;
    sandbox.assert_denied(
        result,
        Operation::FileRead,
        &through,
        "linker",
        escapes(&secret),
    );
    let planted = to_dir.join("planted.txt");
    let result = files.write(&planted, b"planted").await;
    sandbox.assert_denied(
        result,
        Operation::FileWrite,
        &planted,
        "linker",
        escapes(sandbox.outside.join("planted.txt")),
    );
    let made = to_dir.join("made/deeper");
    let result = files.create_dir(&made).await;
    sandbox.assert_denied(
        result,
        Operation::CreateDir,
        &made,
        "linker",
        escapes(sandbox.outside.join("made/deeper")),
    );
    // Removing a file through a linked directory is removing it outside.
    let result = files.remove(&through).await;
    sandbox.assert_denied(
        result,
        Operation::Remove,
        &through,
        "linker",
        escapes(&secret),
    );

    assert_eq!(std::fs::read(&secret).unwrap(), OUTSIDE_SECRET);
    assert!(!sandbox.outside.join("planted.txt").exists());
    assert!(!sandbox.outside.join("made").exists());
}

#[tokio::test]
async fn a_dangling_symlink_cannot_create_a_file_outside_the_grant() {
    let sandbox = Sandbox::new("dangling");
    let files = sandbox.files(&sandbox.read_write(), "linker");
    // The link exists, its target does not (yet): opening the link to write
    // would create the target, outside the grant.
    let target = sandbox.outside.join("created-through-link.txt");
    let link = sandbox.granted.join("dangling");
    symlink(&target, &link).unwrap();

    let result = files.write(&link, b"escaped").await;
    sandbox.assert_denied(
        result,
        Operation::FileWrite,
        &link,
        "linker",
        escapes(&target),
    );
    let result = files.append(&link, b"escaped").await;
    sandbox.assert_denied(
        result,
        Operation::FileAppend,
        &link,
        "linker",
        escapes(&target),
    );
    assert!(!target.exists(), "nothing created outside the grant");

    // A chain: granted/hop -> granted/dangling -> outside/…
    let hop = sandbox.granted.join("hop");
    symlink(&link, &hop).unwrap();
    let result = files.write(&hop, b"escaped").await;
    sandbox.assert_denied(
        result,
        Operation::FileWrite,
        &hop,
        "linker",
        escapes(&target),
    );
    assert!(!target.exists(), "nothing created outside the grant");

    // A relative dangling link, resolved against its own directory.
    let relative = sandbox.granted.join("relative");
    symlink("../outside/relative-target.txt", &relative).unwrap();
    let result = files.write(&relative, b"escaped").await;
    sandbox.assert_denied(
        result,
        Operation::FileWrite,
        &relative,
        "linker",
        escapes(sandbox.outside.join("relative-target.txt")),
    );
    assert!(!sandbox.outside.join("relative-target.txt").exists());

    // A dangling link that stays inside the grant is followed like the OS
    // would: writing through it creates its target.
    let inner_target = sandbox.granted.join("inner-target.txt");
    let inner = sandbox.granted.join("inner");
    symlink(&inner_target, &inner).unwrap();
    files.write(&inner, b"inside").await.unwrap();
    assert_eq!(std::fs::read(&inner_target).unwrap(), b"inside");
}

#[tokio::test]
async fn links_too_deep_to_follow_are_refused() {
    let sandbox = Sandbox::new("deep-links");
    let files = sandbox.files(&sandbox.read_write(), "linker");

    // A loop leads nowhere; it is refused, naming the path itself.
    let loop_a = sandbox.granted.join("loop-a");
    let loop_b = sandbox.granted.join("loop-b");
    symlink(&loop_b, &loop_a).unwrap();
    symlink(&loop_a, &loop_b).unwrap();
    let result = files.write(&loop_a, b"loop").await;
    sandbox.assert_denied(
        result,
        Operation::FileWrite,
        &loop_a,
        "linker",
        escapes(&loop_a),
    );

    // A chain of 60 links in the grant whose last one leads out. Following
    // only some of them and handing the rest to the OS would give the OS a
    // fresh budget of links, and the write would land outside.
    let target = sandbox.outside.join("end-of-chain.txt");
    let link = |i: usize| sandbox.granted.join(format!("chain-{i}"));
    symlink(&target, link(59)).unwrap();
    for i in 0..59 {
        symlink(link(i + 1), link(i)).unwrap();
    }
    // The tail of the chain is short enough to follow: an escape.
    let result = files.write(link(30), b"escaped").await;
    sandbox.assert_denied(
        result,
        Operation::FileWrite,
        &link(30),
        "linker",
        escapes(&target),
    );
    // The whole chain is too deep.
    let result = files.write(link(0), b"escaped").await;
    sandbox.assert_denied(
        result,
        Operation::FileWrite,
        &link(0),
        "linker",
        escapes(link(0)),
    );
    assert!(!target.exists(), "nothing created outside the grant");
}

#[tokio::test]
async fn a_read_only_grant_refuses_every_change() {
    let sandbox = Sandbox::new("read-only");
    let osl = sandbox.osl(SecurityPolicy::deny_all().grant(Grant::read(&sandbox.granted)));
    let files = sandbox.files(&osl, "viewer");
    let existing = sandbox.granted.join("existing.txt");
    std::fs::write(&existing, b"original").unwrap();

    // Reading is what it was granted.
    assert_eq!(files.read(&existing).await.unwrap(), b"original");

    let result = files.write(&existing, b"changed").await;
    sandbox.assert_denied(
        result,
        Operation::FileWrite,
        &existing,
        "viewer",
        no_grant("write"),
    );
    let result = files.append(&existing, b"more").await;
    sandbox.assert_denied(
        result,
        Operation::FileAppend,
        &existing,
        "viewer",
        no_grant("write"),
    );
    let fresh = sandbox.granted.join("fresh.txt");
    let result = files.write(&fresh, b"new").await;
    sandbox.assert_denied(
        result,
        Operation::FileWrite,
        &fresh,
        "viewer",
        no_grant("write"),
    );
    let dir = sandbox.granted.join("new-dir");
    let result = files.create_dir(&dir).await;
    sandbox.assert_denied(
        result,
        Operation::CreateDir,
        &dir,
        "viewer",
        no_grant("write"),
    );
    let result = files.remove(&existing).await;
    sandbox.assert_denied(
        result,
        Operation::Remove,
        &existing,
        "viewer",
        no_grant("write"),
    );

    assert_eq!(std::fs::read(&existing).unwrap(), b"original");
    assert!(!fresh.exists());
    assert!(!dir.exists());
}

#[tokio::test]
async fn a_write_only_grant_refuses_reads() {
    let sandbox = Sandbox::new("write-only");
    let osl = sandbox.osl(SecurityPolicy::deny_all().grant(Grant::write(&sandbox.granted)));
    let files = sandbox.files(&osl, "dropbox");
    let drop_file = sandbox.granted.join("drop.txt");
    files.write(&drop_file, b"dropped").await.unwrap();

    let result = files.read(&drop_file).await;
    sandbox.assert_denied(
        result,
        Operation::FileRead,
        &drop_file,
        "dropbox",
        no_grant("read"),
    );
    let result = files.list(&sandbox.granted).await;
    sandbox.assert_denied(
        result,
        Operation::ListDir,
        &sandbox.granted,
        "dropbox",
        no_grant("read"),
    );
    let result = files.metadata(&drop_file).await;
    sandbox.assert_denied(
        result,
        Operation::Metadata,
        &drop_file,
        "dropbox",
        no_grant("read"),
    );
}

#[tokio::test]
async fn role_bound_grants_need_the_role() {
    let sandbox = Sandbox::new("roles");
    let osl = sandbox.osl(
        SecurityPolicy::deny_all()
            .grant(Grant::read(&sandbox.granted).for_role("auditor"))
            .grant(Grant::write(&sandbox.granted).for_role("ops")),
    );
    let report = sandbox.granted.join("report.txt");
    std::fs::write(&report, b"figures").unwrap();

    let nobody = sandbox.files(&osl, "nobody");
    let result = nobody.read(&report).await;
    sandbox.assert_denied(
        result,
        Operation::FileRead,
        &report,
        "nobody",
        no_grant("read"),
    );
    let result = nobody.write(&report, b"changed").await;
    sandbox.assert_denied(
        result,
        Operation::FileWrite,
        &report,
        "nobody",
        no_grant("write"),
    );

    // The auditor reads, but the ops grant is not theirs.
    let auditor = sandbox.files_as(&osl, SecurityContext::new("alice").with_role("auditor"));
    assert_eq!(auditor.read(&report).await.unwrap(), b"figures");
    let result = auditor.write(&report, b"changed").await;
    sandbox.assert_denied(
        result,
        Operation::FileWrite,
        &report,
        "alice",
        no_grant("write"),
    );

    // Ops writes, but cannot read.
    let ops = sandbox.files_as(&osl, SecurityContext::new("bob").with_role("ops"));
    ops.write(&report, b"revised").await.unwrap();
    let result = ops.read(&report).await;
    sandbox.assert_denied(
        result,
        Operation::FileRead,
        &report,
        "bob",
        no_grant("read"),
    );

    // Both roles, both grants.
    let both = sandbox.files_as(
        &osl,
        SecurityContext::new("carol")
            .with_role("ops")
            .with_role("auditor"),
    );
    both.append(&report, b" + notes").await.unwrap();
    assert_eq!(both.read(&report).await.unwrap(), b"revised + notes");
}

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

fn small_reads(sandbox: &Sandbox, max_output_bytes: usize) -> Osl {
    sandbox.osl(
        SecurityPolicy::deny_all()
            .grant(Grant::read(&sandbox.granted))
            .limits(Limits {
                max_output_bytes,
                ..Limits::default()
            }),
    )
}

#[tokio::test]
async fn a_file_over_max_output_bytes_is_not_read() {
    let sandbox = Sandbox::new("limit");
    let files = sandbox.files(&small_reads(&sandbox, 16), "reader");
    let limit = DenyRule::Limit {
        name: "max_output_bytes",
        value: 16,
    };

    let exact = sandbox.granted.join("exact.bin");
    std::fs::write(&exact, [7u8; 16]).unwrap();
    assert_eq!(files.read(&exact).await.unwrap(), [7u8; 16]);

    let over = sandbox.granted.join("over.bin");
    std::fs::write(&over, [7u8; 17]).unwrap();
    let result = files.read(&over).await;
    sandbox.assert_denied(result, Operation::FileRead, &over, "reader", limit.clone());

    let big = sandbox.granted.join("big.bin");
    std::fs::write(&big, vec![0u8; 1 << 20]).unwrap();
    let result = files.read(&big).await;
    sandbox.assert_denied(result, Operation::FileRead, &big, "reader", limit);
}

/// A FIFO in a grant is refused at once for `Read`, `Write` and `Append`
/// (nothing writes to it: a reader that opened it would wait forever, and
/// with it the actor and the process's exit), each refusal is recorded, and
/// the actor goes on serving. Its metadata is still readable.
#[tokio::test]
async fn a_fifo_is_refused_at_once_and_the_actor_goes_on() {
    let sandbox = Sandbox::new("fifo");
    let files = sandbox.files(&sandbox.read_write(), "reader");
    let fifo = sandbox.granted.join("stream");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let not_regular = DenyRule::NotRegularFile {
        kind: "a FIFO".into(),
    };

    let read = files.read(&fifo).await;
    sandbox.assert_denied(read, Operation::FileRead, &fifo, "reader", not_regular);
    // Opening a FIFO for writing with no reader fails at once (O_NONBLOCK).
    let fifo_or_socket = DenyRule::NotRegularFile {
        kind: "a FIFO or socket".into(),
    };
    let written = files.write(&fifo, b"x").await;
    sandbox.assert_denied(
        written,
        Operation::FileWrite,
        &fifo,
        "reader",
        fifo_or_socket.clone(),
    );
    let appended = files.append(&fifo, b"x").await;
    sandbox.assert_denied(
        appended,
        Operation::FileAppend,
        &fifo,
        "reader",
        fifo_or_socket,
    );
    assert!(!files.metadata(&fifo).await.unwrap().is_dir);

    let plain = sandbox.granted.join("plain.txt");
    std::fs::write(&plain, b"still serving").unwrap();
    assert_eq!(files.read(&plain).await.unwrap(), b"still serving");
    assert_eq!(sandbox.records().len(), 5, "{:#?}", sandbox.records());
}

/// A hard link inside the grant to a file outside it reaches the outside
/// file's data, which no path check can see: a regular file with more than
/// one link is refused for reading, writing, appending and metadata. The
/// link itself may be removed (that removes only the inside name).
#[tokio::test]
async fn a_hard_link_to_a_file_outside_the_grant_is_refused() {
    let sandbox = Sandbox::new("hard-link");
    let files = sandbox.files(&sandbox.read_write(), "linker");
    let secret = sandbox.outside.join("secret.txt");
    let link = sandbox.granted.join("innocent.txt");
    std::fs::hard_link(&secret, &link).unwrap();
    let two_links = DenyRule::HardLinked { links: 2 };

    let read = files.read(&link).await;
    sandbox.assert_denied(
        read,
        Operation::FileRead,
        &link,
        "linker",
        two_links.clone(),
    );
    let meta = files.metadata(&link).await;
    sandbox.assert_denied(
        meta,
        Operation::Metadata,
        &link,
        "linker",
        two_links.clone(),
    );
    let appended = files.append(&link, b"tampered").await;
    sandbox.assert_denied(
        appended,
        Operation::FileAppend,
        &link,
        "linker",
        two_links.clone(),
    );
    let written = files.write(&link, b"tampered").await;
    sandbox.assert_denied(written, Operation::FileWrite, &link, "linker", two_links);
    assert_eq!(std::fs::read(&secret).unwrap(), OUTSIDE_SECRET);

    files.remove(&link).await.unwrap();
    assert!(!link.exists());
    assert_eq!(std::fs::read(&secret).unwrap(), OUTSIDE_SECRET);
}

// ---------------------------------------------------------------------------
// Races with another local process
// ---------------------------------------------------------------------------

/// Swaps two entries of `dir` back and forth (`renameat2(RENAME_EXCHANGE)`)
/// until dropped: another local process racing the layer's checks.
struct Swapper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Swapper {
    fn start(a: PathBuf, b: PathBuf) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut swaps = 0;
            while !stopping.load(Ordering::Relaxed) {
                nix::fcntl::renameat2(
                    nix::fcntl::AT_FDCWD,
                    &a,
                    nix::fcntl::AT_FDCWD,
                    &b,
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                )
                .expect("exchange");
                swaps += 1;
            }
            swaps
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops swapping; how many swaps were made.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// While another thread keeps exchanging a granted directory `d` with a
/// symlink to the outside (and a granted file with a symlink to an outside
/// file), every operation lands inside the grant or is refused: the outside
/// secret is never read or listed, nothing is created, overwritten or removed
/// outside. Rounds are a fixed count (a few seconds at most).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_symlink_mid_operation_never_leads_out() {
    const ROUNDS: usize = 400;
    let sandbox = Sandbox::new("swap-race");
    let files = sandbox.files(&sandbox.read_write(), "racer");
    let (granted, outside) = (&sandbox.granted, &sandbox.outside);
    let inside_dir = granted.join("d");
    let link = granted.join("link");
    std::fs::create_dir(&inside_dir).unwrap();
    std::fs::write(inside_dir.join("secret.txt"), b"inside").unwrap();
    symlink(outside, &link).unwrap();
    let victim_outside = outside.join("victim");
    std::fs::write(&victim_outside, b"keep me").unwrap();
    // A granted file exchanged with a symlink to an outside file.
    let file = granted.join("file.txt");
    let file_link = granted.join("file-link");
    let target_outside = outside.join("target.txt");
    std::fs::write(&file, b"inside file").unwrap();
    std::fs::write(&target_outside, b"untouched").unwrap();
    symlink(&target_outside, &file_link).unwrap();

    // The real `d`, whatever its name is at the moment.
    let d = nix::fcntl::open(
        &inside_dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let dir_swapper = Swapper::start(inside_dir.clone(), link.clone());
    let file_swapper = Swapper::start(file.clone(), file_link.clone());
    let mut allowed = 0;
    for round in 0..ROUNDS {
        let _ = files.write(inside_dir.join("written"), b"w").await;
        if let Ok(data) = files.read(inside_dir.join("secret.txt")).await {
            assert_ne!(data, OUTSIDE_SECRET, "round {round}: read an outside file");
            allowed += 1;
        }
        let _ = files.create_dir(inside_dir.join("made")).await;
        // Something to remove inside `d`, for the next remove.
        drop(nix::fcntl::openat(
            &d,
            "victim",
            nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_WRONLY,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        ));
        let _ = files.remove(inside_dir.join("victim")).await;
        if let Ok(listed) = files.list(&inside_dir).await {
            assert!(
                !listed.iter().any(|e| e.name == "target.txt"),
                "round {round}: listed the outside directory: {listed:?}"
            );
        }
        let _ = files.write(&file, b"overwritten").await;
    }
    let (dir_swaps, file_swaps) = (dir_swapper.finish(), file_swapper.finish());
    assert!(dir_swaps > 0 && file_swaps > 0);
    assert!(allowed > 0, "some reads landed while `d` was a directory");

    let mut left_outside: Vec<String> = std::fs::read_dir(outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left_outside.sort();
    assert_eq!(left_outside, ["secret.txt", "target.txt", "victim"]);
    assert_eq!(
        std::fs::read(outside.join("secret.txt")).unwrap(),
        OUTSIDE_SECRET
    );
    assert_eq!(std::fs::read(&victim_outside).unwrap(), b"keep me");
    assert_eq!(std::fs::read(&target_outside).unwrap(), b"untouched");
    // Every operation was recorded once: six per round.
    assert_eq!(sandbox.records().len(), ROUNDS * 6);
}

// ---------------------------------------------------------------------------
// The activity log
// ---------------------------------------------------------------------------

const SECRET: &str = "TOP-SECRET-7f3a9c-do-not-log";

/// What one line of the log must say.
struct Expected<'a> {
    principal: &'a str,
    operation: Operation,
    target: PathBuf,
    outcome: Outcome,
}

#[tokio::test]
async fn the_json_lines_log_has_one_parsable_line_per_operation_and_no_contents() {
    let sandbox = Sandbox::new("jsonl");
    let log_path = sandbox.scratch.0.join("activity.jsonl");
    let osl = Osl::new(
        SecurityPolicy::deny_all()
            .grant(Grant::read(&sandbox.granted))
            .grant(Grant::write(&sandbox.granted).for_role("writer")),
        ActivityLog::new()
            .with_sink(JsonLinesSink::open(&log_path).expect("log file opens"))
            .with_sink(sandbox.memory.clone()),
    );
    let writer = sandbox.files_as(&osl, SecurityContext::new("wendy").with_role("writer"));
    let reader = sandbox.files(&osl, "rex");
    let secret_file = sandbox.granted.join("secret.txt");
    let outside_secret = sandbox.outside.join("secret.txt");
    let escape = sandbox.granted.join("../outside/secret.txt");
    let link = sandbox.granted.join("link-out");
    symlink(&outside_secret, &link).unwrap();
    let missing = sandbox.granted.join("missing.txt");
    let sub = sandbox.granted.join("sub");
    let secret = SECRET.as_bytes();

    writer.write(&secret_file, secret).await.unwrap();
    writer.append(&secret_file, secret).await.unwrap();
    assert_eq!(
        reader.read(&secret_file).await.unwrap(),
        [secret, secret].concat()
    );
    // Denied writes carry the secret too; it must not be logged either.
    let denied_write = reader.write(&secret_file, secret).await.unwrap_err();
    let read_outside = reader.read(&outside_secret).await.unwrap_err();
    let read_escape = reader.read(&escape).await.unwrap_err();
    let read_link = reader.read(&link).await.unwrap_err();
    let failed = reader.read(&missing).await.unwrap_err();
    writer.create_dir(&sub).await.unwrap();
    assert_eq!(reader.list(&sandbox.granted).await.unwrap().len(), 3);
    reader.metadata(&secret_file).await.unwrap();
    writer.remove(&sub).await.unwrap();

    let rule = |error: &OslError| match error {
        OslError::Denied { rule, .. } => rule.to_string(),
        other => panic!("not a denial: {other:?}"),
    };
    let expected = [
        (
            "wendy",
            Operation::FileWrite,
            &secret_file,
            Outcome::Succeeded,
        ),
        (
            "wendy",
            Operation::FileAppend,
            &secret_file,
            Outcome::Succeeded,
        ),
        ("rex", Operation::FileRead, &secret_file, Outcome::Succeeded),
        (
            "rex",
            Operation::FileWrite,
            &secret_file,
            Outcome::Denied(rule(&denied_write)),
        ),
        (
            "rex",
            Operation::FileRead,
            &outside_secret,
            Outcome::Denied(rule(&read_outside)),
        ),
        (
            "rex",
            Operation::FileRead,
            &escape,
            Outcome::Denied(rule(&read_escape)),
        ),
        (
            "rex",
            Operation::FileRead,
            &link,
            Outcome::Denied(rule(&read_link)),
        ),
        (
            "rex",
            Operation::FileRead,
            &missing,
            Outcome::Failed(failed.to_string()),
        ),
        ("wendy", Operation::CreateDir, &sub, Outcome::Succeeded),
        (
            "rex",
            Operation::ListDir,
            &sandbox.granted,
            Outcome::Succeeded,
        ),
        ("rex", Operation::Metadata, &secret_file, Outcome::Succeeded),
        ("wendy", Operation::Remove, &sub, Outcome::Succeeded),
    ]
    .map(|(principal, operation, target, outcome)| Expected {
        principal,
        operation,
        target: target.clone(),
        outcome,
    });
    // The denials are the ones the policy should give.
    assert_eq!(
        expected[3].outcome,
        Outcome::Denied(no_grant("write").to_string())
    );
    assert_eq!(
        expected[4].outcome,
        Outcome::Denied(no_grant("read").to_string())
    );
    assert_eq!(
        expected[5].outcome,
        Outcome::Denied(no_grant("read").to_string())
    );
    assert_eq!(
        expected[6].outcome,
        Outcome::Denied(escapes(&outside_secret).to_string())
    );

    // Every record was written before its reply was sent, so the file is
    // complete now.
    let text = std::fs::read_to_string(&log_path).expect("log readable");
    assert!(text.ends_with('\n'), "every line is terminated");
    assert!(!text.contains(SECRET), "file contents leaked into the log");
    assert!(
        !text.contains(std::str::from_utf8(OUTSIDE_SECRET).unwrap()),
        "file contents leaked into the log"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        expected.len(),
        "one line per operation:\n{text}"
    );
    let mut parsed = Vec::new();
    for (number, (line, want)) in lines.iter().zip(&expected).enumerate() {
        let record: ActivityRecord = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("line {number} is not a record ({e}): {line}"));
        assert_eq!(record.principal, want.principal, "line {number}: {line}");
        assert_eq!(record.operation, want.operation, "line {number}: {line}");
        assert_eq!(
            record.target,
            want.target.display().to_string(),
            "line {number}: {line}"
        );
        assert_eq!(record.outcome, want.outcome, "line {number}: {line}");
        // The stable wire names, as other tools would read them.
        let raw: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(raw["operation"], want.operation.as_str(), "line {number}");
        let status = match want.outcome {
            Outcome::Succeeded => "succeeded",
            Outcome::Denied(_) => "denied",
            Outcome::Failed(_) => "failed",
            Outcome::Cancelled(_) => "cancelled",
        };
        assert_eq!(raw["outcome"]["status"], status, "line {number}: {line}");
        parsed.push(record);
    }
    // The file says exactly what the other sink saw.
    assert_eq!(parsed, sandbox.records());
}

#[tokio::test]
async fn the_json_lines_sink_appends_to_an_existing_log() {
    let sandbox = Sandbox::new("jsonl-append");
    let log_path = sandbox.scratch.0.join("activity.jsonl");
    std::fs::write(&log_path, "").unwrap();
    for round in 0..2 {
        let osl = Osl::new(
            SecurityPolicy::deny_all().grant(Grant::read(&sandbox.granted)),
            ActivityLog::new().with_sink(JsonLinesSink::open(&log_path).unwrap()),
        );
        let files = sandbox.files(&osl, &format!("round-{round}"));
        files.list(&sandbox.granted).await.unwrap();
    }
    let text = std::fs::read_to_string(&log_path).unwrap();
    let principals: Vec<String> = text
        .lines()
        .map(|line| {
            serde_json::from_str::<ActivityRecord>(line)
                .unwrap()
                .principal
        })
        .collect();
    assert_eq!(principals, ["round-0", "round-1"]);
}

#[tokio::test]
async fn every_operation_allowed_denied_or_failed_yields_exactly_one_record() {
    let sandbox = Sandbox::new("one-record");
    let osl = sandbox.read_write();
    let files = sandbox.files(&osl, "counter");
    let g = |name: &str| sandbox.granted.join(name);
    let outside = sandbox.outside.join("secret.txt");
    symlink(&outside, g("out-link")).unwrap();

    let mut seen = 0;
    let mut one_more = |operation: Operation, target: &Path, status: &str| {
        let records = sandbox.records();
        assert_eq!(
            records.len(),
            seen + 1,
            "{operation} {}: {records:#?}",
            target.display()
        );
        seen += 1;
        let record = records.last().unwrap();
        assert_eq!(record.operation, operation);
        assert_eq!(record.target, target.display().to_string());
        assert_eq!(record.principal, "counter");
        let actual = match record.outcome {
            Outcome::Succeeded => "succeeded",
            Outcome::Denied(_) => "denied",
            Outcome::Failed(_) => "failed",
            Outcome::Cancelled(_) => "cancelled",
        };
        assert_eq!(actual, status, "{record:?}");
    };

    // Allowed and done.
    files.write(g("a.txt"), b"a").await.unwrap();
    one_more(Operation::FileWrite, &g("a.txt"), "succeeded");
    files.append(g("a.txt"), b"b").await.unwrap();
    one_more(Operation::FileAppend, &g("a.txt"), "succeeded");
    files.read(g("a.txt")).await.unwrap();
    one_more(Operation::FileRead, &g("a.txt"), "succeeded");
    files.list(&sandbox.granted).await.unwrap();
    one_more(Operation::ListDir, &sandbox.granted, "succeeded");
    files.metadata(g("a.txt")).await.unwrap();
    one_more(Operation::Metadata, &g("a.txt"), "succeeded");
    files.create_dir(g("d/e")).await.unwrap();
    one_more(Operation::CreateDir, &g("d/e"), "succeeded");
    files.remove(g("d/e")).await.unwrap();
    one_more(Operation::Remove, &g("d/e"), "succeeded");

    // Denied.
    files.write(&outside, b"x").await.unwrap_err();
    one_more(Operation::FileWrite, &outside, "denied");
    files.append(&outside, b"x").await.unwrap_err();
    one_more(Operation::FileAppend, &outside, "denied");
    files.read(g("out-link")).await.unwrap_err();
    one_more(Operation::FileRead, &g("out-link"), "denied");
    files.list(&sandbox.outside).await.unwrap_err();
    one_more(Operation::ListDir, &sandbox.outside, "denied");
    files.metadata(&outside).await.unwrap_err();
    one_more(Operation::Metadata, &outside, "denied");
    files.create_dir(g("../made")).await.unwrap_err();
    one_more(Operation::CreateDir, &g("../made"), "denied");
    files.remove(&outside).await.unwrap_err();
    one_more(Operation::Remove, &outside, "denied");

    // Allowed, but failed.
    files.read(g("missing")).await.unwrap_err();
    one_more(Operation::FileRead, &g("missing"), "failed");
    files.write(g("no-dir/x"), b"x").await.unwrap_err();
    one_more(Operation::FileWrite, &g("no-dir/x"), "failed");
    files.append(g("no-dir/x"), b"x").await.unwrap_err();
    one_more(Operation::FileAppend, &g("no-dir/x"), "failed");
    files.list(g("a.txt")).await.unwrap_err();
    one_more(Operation::ListDir, &g("a.txt"), "failed");
    files.metadata(g("missing")).await.unwrap_err();
    one_more(Operation::Metadata, &g("missing"), "failed");
    files.create_dir(g("a.txt/sub")).await.unwrap_err();
    one_more(Operation::CreateDir, &g("a.txt/sub"), "failed");
    files.remove(g("missing")).await.unwrap_err();
    one_more(Operation::Remove, &g("missing"), "failed");

    assert_eq!(seen, 21);
    assert_eq!(std::fs::read(&outside).unwrap(), OUTSIDE_SECRET);
}

/// Every field of every OS-layer tracing event, `name=value`, one string
/// per event.
#[derive(Clone, Default)]
struct EventText(std::sync::Arc<parking_lot::Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for EventText {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn Debug) {
                self.0.push_str(&format!(" {}={value:?}", field.name()));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.push_str(&format!(" {}={value}", field.name()));
            }
        }
        if event.metadata().target() != "airssys_rt::osl" {
            return;
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0.lock().push(fields.0);
    }
}

/// A path or argument cannot forge a log line: control characters are
/// escaped in the record's target, its `Display` and the `tracing` events;
/// bytes that are not UTF-8 stay distinguishable from the replacement
/// character; argument boundaries show.
#[tokio::test]
async fn paths_and_arguments_cannot_forge_log_lines() {
    use std::os::unix::ffi::OsStrExt;
    use tracing_subscriber::layer::SubscriberExt;
    let events = EventText::default();
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(events.clone()));
    let sandbox = Sandbox::new("forge");
    let osl = Osl::new(
        SecurityPolicy::deny_all().grant(Grant::read(&sandbox.granted)),
        ActivityLog::new()
            .with_sink(sandbox.memory.clone())
            .with_sink(airssys_rt::integration::osl::TracingSink),
    );
    let files = sandbox.files(&osl, "guest");
    let forged = sandbox
        .granted
        .join("x\n12:00:00.000 admin file.read shadow: ok in 1 µs\r");
    std::fs::write(&forged, b"data").unwrap();
    assert_eq!(files.read(&forged).await.unwrap(), b"data");
    let invalid = sandbox
        .granted
        .join(std::ffi::OsStr::from_bytes(b"name-\xff"));
    let replacement = sandbox.granted.join("name-\u{fffd}");
    let _ = files.read(&invalid).await;
    let _ = files.read(&replacement).await;

    let records = sandbox.records();
    assert_eq!(records.len(), 3);
    for record in &records {
        let line = record.to_string();
        assert!(!line.contains(['\n', '\r']), "{line:?}");
        assert!(!record.target.contains(['\n', '\r']), "{record:?}");
    }
    assert!(
        records[0]
            .target
            .ends_with("x\\n12:00:00.000 admin file.read shadow: ok in 1 µs\\r")
    );
    assert!(
        records[1].target.ends_with("name-\\xff"),
        "{:?}",
        records[1].target
    );
    assert!(records[2].target.ends_with("name-\u{fffd}"));
    let events = events.0.lock().clone();
    assert_eq!(events.len(), 3, "{events:#?}");
    assert!(
        events.iter().all(|e| !e.contains(['\n', '\r'])),
        "{events:#?}"
    );

    // Argument boundaries: `echo "a b"` is not `echo a b`.
    use airssys_rt::integration::osl::ProcessSpec;
    assert_ne!(
        ProcessSpec::new("echo").arg("a b").to_string(),
        ProcessSpec::new("echo").args(["a", "b"]).to_string()
    );
    assert_eq!(
        ProcessSpec::new("echo").arg("x\nINFO").to_string(),
        "echo \"x\\nINFO\""
    );
}
