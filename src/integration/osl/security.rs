//! Who asks ([`SecurityContext`]) and what they may do ([`SecurityPolicy`]):
//! deny by default, grants by path prefix, program, host and port, and
//! limits. Paths are checked after they are resolved as the OS resolves them,
//! so `..` and symlinks (dangling ones too) cannot lead out of a granted
//! prefix.

use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who performs an operation: a principal and its roles.
///
/// ```
/// use airssys_rt::integration::osl::SecurityContext;
/// let ctx = SecurityContext::new("backup-job").with_role("ops");
/// assert!(ctx.has_role("ops"));
/// assert_eq!(ctx.principal(), "backup-job");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityContext {
    principal: String,
    roles: Vec<String>,
}

impl SecurityContext {
    /// A principal with no roles.
    pub fn new(principal: impl Into<String>) -> Self {
        Self {
            principal: principal.into(),
            roles: Vec::new(),
        }
    }

    /// Adds a role.
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// The principal's name (recorded in the activity log).
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// Whether the context has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// Whether an operation reads or changes the file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Read, list, metadata.
    Read,
    /// Write, append, create, remove.
    Write,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Write => "write",
        })
    }
}

/// What a grant allows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allows {
    Path(Access, PathBuf),
    Program(ProgramGrant),
    Connect(String, RangeInclusive<u16>),
    Listen(RangeInclusive<u16>),
}

/// One permission in a [`SecurityPolicy`], optionally only for a role.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a grant does nothing until added to a policy"]
pub struct Grant {
    allows: Allows,
    role: Option<String>,
}

impl Grant {
    /// Read (and list, and stat) anything under `prefix`.
    pub fn read(prefix: impl Into<PathBuf>) -> Self {
        Self::new(Allows::Path(
            Access::Read,
            canonical_or_lexical(&prefix.into()),
        ))
    }

    /// Write, append, create and remove anything under `prefix`.
    pub fn write(prefix: impl Into<PathBuf>) -> Self {
        Self::new(Allows::Path(
            Access::Write,
            canonical_or_lexical(&prefix.into()),
        ))
    }

    /// Run `program`: a bare name (looked up on `PATH` now) or a path.
    ///
    /// The grant admits requests for exactly that name or that path, not
    /// other names or links that lead to the same file (multi-call binaries
    /// such as `xz`/`xzcat` or busybox change behaviour by name). The
    /// program runs under the granted name as `argv[0]`, from the file the
    /// grant found, opened once and executed by its descriptor. Its
    /// environment starts empty; the request may set only the keys allowed
    /// with [`allow_env`](Self::allow_env).
    ///
    /// ```
    /// use airssys_rt::integration::osl::{Grant, SecurityPolicy};
    /// let policy = SecurityPolicy::deny_all()
    ///     .grant(Grant::program("sort").allow_env(["LC_ALL", "TMPDIR"]));
    /// assert_eq!(policy.grants().len(), 1);
    /// ```
    pub fn program(program: impl AsRef<Path>) -> Self {
        let program = program.as_ref();
        Self::new(Allows::Program(ProgramGrant {
            file: find_program(program),
            named: program_name(program),
            env: Vec::new(),
        }))
    }

    /// For a [`program`](Self::program) grant: the environment variables a
    /// request may set, each by its exact name. There are no patterns: a
    /// list of "dangerous" keys is never complete (`LD_PRELOAD`,
    /// `GCONV_PATH`, `OPENSSL_CONF`, `GIT_SSH_COMMAND`, `PYTHONPATH`, ...
    /// each make some program load or run code the caller chose), so only
    /// the keys named here pass. Any other key is refused with
    /// [`DenyRule::EnvNotAllowed`]. No effect on other grants.
    pub fn allow_env<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        if let Allows::Program(program) = &mut self.allows {
            program.env.extend(keys.into_iter().map(Into::into));
        }
        self
    }

    /// Connect to `host` (a name or an IP address) on `ports`.
    pub fn connect(host: impl Into<String>, ports: RangeInclusive<u16>) -> Self {
        Self::new(Allows::Connect(host.into().to_ascii_lowercase(), ports))
    }

    /// Listen on `ports`.
    pub fn listen(ports: RangeInclusive<u16>) -> Self {
        Self::new(Allows::Listen(ports))
    }

    /// Applies only to contexts with `role`.
    pub fn for_role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    fn new(allows: Allows) -> Self {
        Self { allows, role: None }
    }

    fn applies_to(&self, context: &SecurityContext) -> bool {
        self.role
            .as_deref()
            .is_none_or(|role| context.has_role(role))
    }
}

/// Caps on what operations may consume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of stdout (and, separately, stderr) kept from a process; more
    /// is cut and reported as truncated. Also the largest file `Read` returns.
    pub max_output_bytes: usize,
    /// Longest a process may run before it is killed, and longest a file
    /// operation may take before it is reported as timed out.
    pub max_duration: Duration,
    /// Open network connections (accepted and connected) at once, per
    /// principal: one principal's listener cannot use up another's.
    pub max_connections: usize,
    /// Open network connections at once, all principals together.
    pub max_connections_total: usize,
    /// Processes one `ProcessActor` keeps at once: running, or ended with
    /// an outcome no `Wait` has asked for yet (each holds its output).
    pub max_processes: usize,
}

impl Default for Limits {
    /// 1 MiB of output, 30 s per process or file operation, 64 connections
    /// per principal, 1024 in all, 64 processes per process actor.
    fn default() -> Self {
        Self {
            max_output_bytes: 1 << 20,
            max_duration: Duration::from_secs(30),
            max_connections: 64,
            max_connections_total: 1024,
            max_processes: 64,
        }
    }
}

/// Why an operation was refused: the rule that refused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DenyRule {
    /// Nothing granted it (the policy denies by default).
    #[error("deny-by-default: no {0} grant covers it")]
    NoGrant(String),
    /// The path names a granted prefix, but leads out of it once `..` and
    /// symlinks are resolved (or through more symlinks than are followed, a
    /// loop for one; `resolved` is then the path with `..` removed textually).
    #[error("path escapes its grant once resolved to {resolved} (`..` or a symlink)")]
    PathEscapes {
        /// Where the path really leads.
        resolved: PathBuf,
    },
    /// A symlink appeared in the path between its check and its use, each
    /// of the times it was checked again (another process is changing the
    /// tree); nothing was done.
    #[error(
        "the path kept changing while in use (a symlink appeared between the check and the use); nothing was done"
    )]
    PathChanged,
    /// Not a regular file (a FIFO, socket, device or directory): reading or
    /// writing one could block or have side effects.
    #[error("{kind} is not a regular file; only regular files are read, written or appended to")]
    NotRegularFile {
        /// What it is.
        kind: String,
    },
    /// The file has more than one hard link: another name, possibly outside
    /// every grant, reaches the same data, so a path grant cannot confine it.
    #[error(
        "the file has {links} hard links (another name, maybe outside every grant, reaches the same data); remove the extra links to use it"
    )]
    HardLinked {
        /// Its link count.
        links: u64,
    },
    /// The program grant does not allow the request to set this environment
    /// variable.
    #[error(
        "environment variable {key} is not allowed for this program (name it in Grant::program(..).allow_env([..]) to allow it)"
    )]
    EnvNotAllowed {
        /// The refused key.
        key: String,
    },
    /// A limit is reached.
    #[error("limit {name} = {value} reached")]
    Limit {
        /// The limit.
        name: &'static str,
        /// Its value.
        value: u64,
    },
}

/// The deny-by-default rules for one [`Osl`](super::Osl) layer.
///
/// ```
/// use airssys_rt::integration::osl::{Grant, SecurityPolicy};
/// let policy = SecurityPolicy::deny_all()
///     .grant(Grant::read("/usr/share"))
///     .grant(Grant::program("echo"))
///     .grant(Grant::connect("127.0.0.1", 1024..=65535).for_role("net"));
/// assert_eq!(policy.grants().len(), 3);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SecurityPolicy {
    grants: Vec<Grant>,
    limits: Limits,
}

impl SecurityPolicy {
    /// A policy that allows nothing, with default [`Limits`].
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// Adds a grant.
    pub fn grant(mut self, grant: Grant) -> Self {
        self.grants.push(grant);
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The grants, in the order added.
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// The limits.
    pub fn current_limits(&self) -> Limits {
        self.limits
    }

    /// Resolves `path` and checks it against the `access` grants of
    /// `context`; returns the resolved path to operate on.
    pub fn check_path(
        &self,
        context: &SecurityContext,
        access: Access,
        path: &Path,
    ) -> Result<PathBuf, DenyRule> {
        let written = absolute(path);
        self.check_resolved(context, access, &clean(&written), resolve(&written))
    }

    /// Like [`check_path`](Self::check_path), but a symlink as the last
    /// component is not followed: the entry itself is checked (and is what
    /// a removal removes).
    pub fn check_entry(
        &self,
        context: &SecurityContext,
        access: Access,
        path: &Path,
    ) -> Result<PathBuf, DenyRule> {
        let written = absolute(path);
        let resolved = match (written.parent(), written.file_name()) {
            (Some(parent), Some(name)) => resolve(parent).map(|parent| parent.join(name)),
            _ => resolve(&written),
        };
        self.check_resolved(context, access, &clean(&written), resolved)
    }

    /// Allows `resolved` if a prefix covers it; otherwise refuses, as an
    /// escape if the `lexical` path (`..` removed textually) names a granted
    /// prefix.
    fn check_resolved(
        &self,
        context: &SecurityContext,
        access: Access,
        lexical: &Path,
        resolved: Option<PathBuf>,
    ) -> Result<PathBuf, DenyRule> {
        let prefixes = || {
            self.grants
                .iter()
                .filter(|g| g.applies_to(context))
                .filter_map(move |g| match &g.allows {
                    Allows::Path(granted, prefix) if *granted == access => Some(prefix),
                    _ => None,
                })
        };
        if let Some(resolved) = resolved.as_ref()
            && prefixes().any(|prefix| resolved.starts_with(prefix))
        {
            return Ok(resolved.clone());
        }
        if prefixes().any(|prefix| lexical.starts_with(prefix)) {
            return Err(DenyRule::PathEscapes {
                resolved: resolved.unwrap_or_else(|| lexical.to_path_buf()),
            });
        }
        Err(DenyRule::NoGrant(access.to_string()))
    }

    /// Checks that `program` (a bare name, or a path) is granted by that
    /// very name or path, and that each of `env_keys` may be set for it;
    /// returns what to run and under which `argv[0]`.
    pub fn check_program<'k>(
        &self,
        context: &SecurityContext,
        program: &Path,
        env_keys: impl IntoIterator<Item = &'k str> + Clone,
    ) -> Result<GrantedProgram, DenyRule> {
        let requested = program_name(program);
        let mut refused_key = None;
        for grant in self.grants.iter().filter(|g| g.applies_to(context)) {
            let Allows::Program(granted) = &grant.allows else {
                continue;
            };
            if granted.named != requested {
                continue;
            }
            match env_keys
                .clone()
                .into_iter()
                .find(|key| !granted.admits_env(key))
            {
                Some(key) => refused_key = Some(key.to_owned()),
                None => {
                    let file = granted
                        .file
                        .clone()
                        .or_else(|| find_program(&granted.named))
                        .unwrap_or_else(|| granted.named.clone());
                    return Ok(GrantedProgram {
                        file,
                        argv0: granted.named.clone(),
                    });
                }
            }
        }
        Err(match refused_key {
            Some(key) => DenyRule::EnvNotAllowed { key },
            None => DenyRule::NoGrant("program".into()),
        })
    }

    /// Checks a connection to `host` (as written, and as resolved to `ip`)
    /// on `port`.
    pub fn check_connect(
        &self,
        context: &SecurityContext,
        host: &str,
        ip: std::net::IpAddr,
        port: u16,
    ) -> Result<(), DenyRule> {
        self.check_connect_grants(context, host, port, |granted| granted == ip)
    }

    /// Checks, before any name is looked up, that a connection to `host`
    /// on `port` could be granted: a grant names `host` for the port, or
    /// names an IP address for it (the resolved address is then checked by
    /// [`check_connect`](Self::check_connect)). Refusing here keeps a
    /// principal with no such grant from making DNS queries of its choosing.
    pub fn check_connect_before_lookup(
        &self,
        context: &SecurityContext,
        host: &str,
        port: u16,
    ) -> Result<(), DenyRule> {
        self.check_connect_grants(context, host, port, |_| true)
    }

    /// Whether a connect grant of `context` covers `port` and names `host`,
    /// or names an IP address that `ip_matches`.
    fn check_connect_grants(
        &self,
        context: &SecurityContext,
        host: &str,
        port: u16,
        ip_matches: impl Fn(std::net::IpAddr) -> bool,
    ) -> Result<(), DenyRule> {
        let host = host.to_ascii_lowercase();
        let granted = self
            .grants
            .iter()
            .filter(|g| g.applies_to(context))
            .any(|g| {
                matches!(&g.allows, Allows::Connect(allowed, ports)
                if ports.contains(&port)
                    && (*allowed == host
                        || allowed.parse::<std::net::IpAddr>().is_ok_and(&ip_matches)))
            });
        if granted {
            Ok(())
        } else {
            Err(DenyRule::NoGrant("connect".into()))
        }
    }

    /// Checks listening on `port`.
    pub fn check_listen(&self, context: &SecurityContext, port: u16) -> Result<(), DenyRule> {
        let granted = self
            .grants
            .iter()
            .filter(|g| g.applies_to(context))
            .any(|g| matches!(&g.allows, Allows::Listen(ports) if ports.contains(&port)));
        if granted {
            Ok(())
        } else {
            Err(DenyRule::NoGrant("listen".into()))
        }
    }
}

/// A program grant: the name or path it admits, the file that runs, and the
/// environment keys a request may set.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProgramGrant {
    /// The bare name, or the path made absolute (not resolved).
    named: PathBuf,
    /// Where the name was found on `PATH` (or the path) when granted.
    file: Option<PathBuf>,
    /// The keys a request may set, by exact name.
    env: Vec<String>,
}

impl ProgramGrant {
    fn admits_env(&self, key: &str) -> bool {
        self.env.iter().any(|allowed| allowed == key)
    }
}

/// What a [`Grant::program`] runs for a request it admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedProgram {
    /// The file to execute (opened once, executed by its descriptor).
    pub file: PathBuf,
    /// The name it runs under: the granted name or path.
    pub argv0: PathBuf,
}

/// How a program is named, by a grant or a request: a bare name as it is,
/// a path made absolute (not resolved). Grants and requests compare these.
fn program_name(program: &Path) -> PathBuf {
    if is_bare_name(program) {
        program.to_path_buf()
    } else {
        lexical_absolute(program)
    }
}

/// Whether `program` is a bare name (no directory part): looked up on
/// `PATH`.
fn is_bare_name(program: &Path) -> bool {
    program.components().count() == 1 && !program.is_absolute()
}

/// `path` made absolute (against the working directory) with `.` and `..`
/// removed textually; symlinks are not followed.
fn lexical_absolute(path: &Path) -> PathBuf {
    clean(&absolute(path))
}

/// `path` made absolute against the working directory, as written otherwise.
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    }
}

/// `path` with `.` and `..` removed textually.
fn clean(path: &Path) -> PathBuf {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    clean
}

/// Symlinks followed while resolving one path (Linux's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// Where the absolute `path` really leads, resolved as the OS resolves it:
/// component by component, each symlink followed (a dangling one too: writing
/// through it creates its target) and each `..` taken from where the path has
/// got to, not textually. Components that do not exist are kept as written.
/// The result holds no symlinks, so using it cannot lead anywhere else.
/// `None` past [`MAX_SYMLINKS`] links (a loop, say).
fn resolve(path: &Path) -> Option<PathBuf> {
    let mut links_left = MAX_SYMLINKS;
    resolve_onto(PathBuf::new(), path, &mut links_left)
}

/// [`resolve`] for `path` taken from the symlink-free directory `real`.
fn resolve_onto(mut real: PathBuf, path: &Path, links_left: &mut usize) -> Option<PathBuf> {
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => real.push(component),
            Component::CurDir => {}
            Component::ParentDir => {
                real.pop();
            }
            Component::Normal(name) => {
                let next = real.join(name);
                match std::fs::read_link(&next) {
                    // A relative target starts from the link's directory.
                    Ok(target) => {
                        *links_left = links_left.checked_sub(1)?;
                        real = resolve_onto(real, &target, links_left)?;
                    }
                    // Not a symlink, or not there.
                    Err(_) => real = next,
                }
            }
        }
    }
    Some(real)
}

fn canonical_or_lexical(path: &Path) -> PathBuf {
    resolve(&absolute(path)).unwrap_or_else(|| lexical_absolute(path))
}

/// The file `program` names: a path as written (made absolute), or a bare
/// name found in an absolute directory on `PATH`. Symlinks are not
/// resolved: the name a link gives is the name the program runs under.
fn find_program(program: &Path) -> Option<PathBuf> {
    if !is_bare_name(program) {
        return Some(program_name(program));
    }
    let path = std::env::var_os("PATH")?;
    // A relative entry (or an empty one, meaning `.`) would find a file in
    // whatever the working directory is.
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .map(|found| lexical_absolute(&found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anyone() -> SecurityContext {
        SecurityContext::new("tester")
    }

    #[test]
    fn lexical_form_drops_dots() {
        assert_eq!(
            lexical_absolute(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(lexical_absolute(Path::new("/../..")), PathBuf::from("/"));
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        let policy = SecurityPolicy::deny_all();
        assert_eq!(
            policy.check_path(&anyone(), Access::Read, Path::new("/tmp")),
            Err(DenyRule::NoGrant("read".into()))
        );
        assert!(
            policy
                .check_program(&anyone(), Path::new("sh"), [])
                .is_err()
        );
        assert!(policy.check_listen(&anyone(), 8080).is_err());
    }

    #[test]
    fn grants_apply_by_kind_and_role() {
        let policy = SecurityPolicy::deny_all()
            .grant(Grant::listen(9000..=9010).for_role("net"))
            .grant(Grant::connect("LocalHost", 80..=80));
        let ops = anyone().with_role("net");
        assert!(policy.check_listen(&ops, 9005).is_ok());
        assert!(
            policy.check_listen(&anyone(), 9005).is_err(),
            "role required"
        );
        assert!(
            policy.check_listen(&ops, 9011).is_err(),
            "port outside range"
        );
        let lo = std::net::IpAddr::from([127, 0, 0, 1]);
        assert!(policy.check_connect(&anyone(), "localhost", lo, 80).is_ok());
        assert!(
            policy
                .check_connect(&anyone(), "localhost", lo, 81)
                .is_err()
        );
    }

    #[test]
    fn environment_keys_are_admitted_by_exact_name_only() {
        let policy = SecurityPolicy::deny_all()
            .grant(Grant::program("env").allow_env(["LANG", "LC_ALL", "LC_*", "LD_AUDIT"]));
        let check =
            |keys: &[&str]| policy.check_program(&anyone(), Path::new("env"), keys.iter().copied());
        assert!(check(&["LANG", "LC_ALL", "LD_AUDIT"]).is_ok());
        // "LC_*" is a (strange) name, not a pattern.
        for refused in ["HOME", "LD_PRELOAD", "LC_TIME", "LC_ALL=C", "LANG\0", ""] {
            let refused_key = match check(&[refused]) {
                Err(DenyRule::EnvNotAllowed { key }) => key,
                other => panic!("{refused:?}: {other:?}"),
            };
            assert_eq!(refused_key, refused);
        }
    }

    #[test]
    fn a_program_grant_admits_its_name_only() {
        let policy = SecurityPolicy::deny_all().grant(Grant::program("xzcat"));
        let granted = policy
            .check_program(&anyone(), Path::new("xzcat"), [])
            .expect("the granted name");
        assert_eq!(granted.argv0, PathBuf::from("xzcat"));
        for other in ["xz", "unxz", "/usr/bin/xzcat", "./xzcat"] {
            assert_eq!(
                policy.check_program(&anyone(), Path::new(other), []),
                Err(DenyRule::NoGrant("program".into())),
                "{other}"
            );
        }
    }

    #[test]
    fn a_write_grant_does_not_allow_reads() {
        let dir = std::env::temp_dir();
        let policy = SecurityPolicy::deny_all().grant(Grant::write(&dir));
        assert!(
            policy
                .check_path(&anyone(), Access::Write, &dir.join("x"))
                .is_ok()
        );
        assert!(
            policy
                .check_path(&anyone(), Access::Read, &dir.join("x"))
                .is_err()
        );
    }
}
