//! [`ProcessActor`]: programs run as messages, checked, limited and logged.
//!
//! A request names a program granted by that name or path; it runs from the
//! file the grant found (opened once, executed through its descriptor) under
//! the granted `argv[0]`, with an empty environment plus the keys its grant
//! allows, no stdin, and no descriptor of the host beyond stdout and stderr.
//!
//! A process never outlives the actor that started it: each runs in its own
//! process group, and when the actor stops, fails or is restarted (or the
//! process times out or is killed), the group is killed and the process
//! reaped. If the host process dies, the kernel kills its programs
//! (`PR_SET_PDEATHSIG`; see the `launcher` module for why one thread forks
//! them all).

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::activity::escape_path;
use super::confine::{self, Refused};
use super::{
    Access, DenyRule, GrantedProgram, Operation, Osl, OslError, SecurityContext, launcher,
};
use crate::actor::{Actor, ActorContext, ActorRef, ReplyTo};
use crate::message::Message;

/// Identifies a process started by a [`ProcessActor`] (not the OS pid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProcessId(u64);

impl ProcessId {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The raw number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "process#{}", self.0)
    }
}

/// What to run.
///
/// ```
/// use std::time::Duration;
/// use airssys_rt::integration::osl::ProcessSpec;
/// let spec = ProcessSpec::new("echo").arg("hello").env("LANG", "C").timeout(Duration::from_secs(5));
/// assert_eq!(spec.to_string(), "echo hello");
/// ```
#[derive(Clone)]
pub struct ProcessSpec {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    timeout: Option<Duration>,
    stream_to: Option<ActorRef<OutputLine>>,
}

impl ProcessSpec {
    /// Runs `program` (a path, or a name looked up on `PATH`).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            timeout: None,
            stream_to: None,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable. The process gets only the variables
    /// set here (its environment starts empty), and only those its program
    /// grant names ([`Grant::allow_env`](super::Grant::allow_env)); values
    /// are never logged.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs in `dir` (which must be readable under the policy; the child
    /// enters the directory the layer opened and checked, by descriptor).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Kills it after `timeout` (never later than the policy's
    /// `max_duration`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Also sends each output line to `recipient` as it appears.
    pub fn stream_to(mut self, recipient: ActorRef<OutputLine>) -> Self {
        self.stream_to = Some(recipient);
        self
    }
}

impl fmt::Debug for ProcessSpec {
    /// Environment values are left out: they may hold secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ProcessSpec")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env_keys", &keys)
            .field("cwd", &self.cwd)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl fmt::Display for ProcessSpec {
    /// The command line (no environment), one unambiguous line: a program
    /// or argument that is empty or holds spaces, quotes, backslashes,
    /// control or invisible characters is quoted and escaped, so `echo "a b"`
    /// and `echo a b` read differently and nothing can start a new line.
    ///
    /// ```
    /// use airssys_rt::integration::osl::ProcessSpec;
    /// assert_eq!(ProcessSpec::new("echo").args(["a b", "c"]).to_string(), r#"echo "a b" c"#);
    /// assert_eq!(ProcessSpec::new("echo").arg("x\ny").to_string(), r#"echo "x\ny""#);
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_word(f, self.program.as_os_str())?;
        for arg in &self.args {
            f.write_str(" ")?;
            write_word(f, std::ffi::OsStr::new(arg))?;
        }
        Ok(())
    }
}

/// One word of a logged command line: as it is if it is plain, else quoted
/// and escaped (`Debug`: quotes, backslashes, control and invisible
/// characters, bytes that are not UTF-8).
fn write_word(f: &mut fmt::Formatter<'_>, word: &std::ffi::OsStr) -> fmt::Result {
    let plain = word.to_str().filter(|text| {
        !text.is_empty()
            && text.chars().all(|c| {
                c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '\'') || c.is_alphanumeric()
            })
    });
    match plain {
        Some(text) => f.write_str(text),
        None => write!(f, "{word:?}"),
    }
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of a running process's output (without its newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// The process.
    pub process: ProcessId,
    /// Which stream.
    pub stream: Stream,
    /// The text (invalid UTF-8 replaced).
    pub line: String,
}

impl Message for OutputLine {
    const MESSAGE_TYPE: &'static str = "airssys.osl.output_line";
}

/// How a process ended and what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessOutput {
    /// Its id here.
    pub process: ProcessId,
    /// Its OS process id.
    pub pid: u32,
    /// Its exit code, if it exited (not killed by a signal).
    pub code: Option<i32>,
    /// The signal that killed it, if any (Unix).
    pub signal: Option<i32>,
    /// Standard output, at most `max_output_bytes`.
    pub stdout: Vec<u8>,
    /// Standard error, at most `max_output_bytes`.
    pub stderr: Vec<u8>,
    /// Whether standard output was cut at the limit.
    pub stdout_truncated: bool,
    /// Whether standard error was cut at the limit.
    pub stderr_truncated: bool,
    /// How long it ran.
    pub duration: Duration,
}

impl ProcessOutput {
    /// Whether it exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// What a [`ProcessActor`] can be asked to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProcessRequest {
    /// Runs a program to its end (or its timeout) and answers with its
    /// output.
    Run {
        /// What to run.
        spec: ProcessSpec,
        /// Its output.
        reply: ReplyTo<Result<ProcessOutput, OslError>>,
    },
    /// Starts a program and answers at once with its id and OS pid. Its
    /// outcome is kept until a `Wait` asks for it.
    Start {
        /// What to run.
        spec: ProcessSpec,
        /// Its ids.
        reply: ReplyTo<Result<(ProcessId, u32), OslError>>,
    },
    /// Waits for a started process to end (answers at once if it has).
    Wait {
        /// The process.
        process: ProcessId,
        /// Its output.
        reply: ReplyTo<Result<ProcessOutput, OslError>>,
    },
    /// Kills a started process (its `Wait` then reports the signal).
    Kill {
        /// The process.
        process: ProcessId,
        /// Done (the kill was sent).
        reply: ReplyTo<Result<(), OslError>>,
    },
}

impl Message for ProcessRequest {
    const MESSAGE_TYPE: &'static str = "airssys.osl.process";
}

type Finished = Option<Result<ProcessOutput, OslError>>;

/// A process this actor started.
struct Running {
    kill: Option<oneshot::Sender<()>>,
    finished: watch::Receiver<Finished>,
    /// A `Wait` (or the `Run`) has asked for its outcome: the entry can go
    /// once the process has ended. Until then an ended process's outcome is
    /// kept for the `Wait` still to come.
    awaited: bool,
}

/// Runs programs as one [`SecurityContext`]. Make it with
/// [`Osl::process_actor`].
pub struct ProcessActor {
    osl: Osl,
    context: SecurityContext,
    running: HashMap<ProcessId, Running>,
    /// The supervising tasks; dropping them (the actor stopped, failed or
    /// was killed) kills their processes.
    tasks: JoinSet<()>,
}

impl fmt::Debug for ProcessActor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessActor")
            .field("context", &self.context)
            .field("running", &self.running.len())
            .finish()
    }
}

impl ProcessActor {
    pub(crate) fn new(osl: Osl, context: SecurityContext) -> Self {
        Self {
            osl,
            context,
            running: HashMap::new(),
            tasks: JoinSet::new(),
        }
    }

    /// Checks and starts `spec`; a task watches it until it ends.
    async fn start(&mut self, spec: ProcessSpec) -> Result<(ProcessId, u32), OslError> {
        self.running
            .retain(|_, running| !running.awaited || running.finished.borrow().is_none());
        let audit = self
            .osl
            .audit(&self.context, Operation::ProcessSpawn, &spec);
        let limits = audit.limits();
        let kept = self.running.len();
        let ProcessSpec {
            program,
            args,
            env,
            cwd,
            timeout,
            stream_to,
        } = spec;
        let started = async {
            let granted = audit.program(&program, env.iter().map(|(k, _)| k.as_str()))?;
            if kept >= limits.max_processes {
                return Err(audit.denied(DenyRule::Limit {
                    name: "max_processes",
                    value: limits.max_processes as u64,
                }));
            }
            let (osl, context) = (self.osl.clone(), self.context.clone());
            let GrantedProgram { file, argv0 } = granted;
            // Files are opened on the blocking pool, bounded in time: a hung
            // file system must not hold the one launcher thread.
            let opened = audit
                .blocking(move || Opened::open(&osl, &context, cwd, &file))
                .await?;
            let launch = Launch {
                opened,
                argv0,
                args,
                env,
            };
            let launched = launcher::run(move || launch.spawn());
            match tokio::time::timeout(limits.max_duration, launched).await {
                Err(_) => Err(audit.timed_out(limits.max_duration)),
                Ok(Ok(Ok(started))) => Ok(started),
                Ok(Ok(Err(error)) | Err(error)) => Err(audit.io(&error)),
            }
        }
        .await;
        let target = audit.target().to_owned();
        let (group, child) = audit.finish(started)?;
        let pid = group.leader;
        let process = ProcessId::next();
        let timeout = timeout
            .unwrap_or(limits.max_duration)
            .min(limits.max_duration);
        let (kill, killed) = oneshot::channel();
        let (report, finished) = watch::channel(None);
        let watch = Watch {
            process,
            pid,
            target,
            timeout,
            cap: limits.max_output_bytes,
            stream_to,
        };
        self.tasks.spawn(async move {
            let outcome = watch.run(child, group, killed).await;
            report.send_replace(Some(outcome));
        });
        self.running.insert(
            process,
            Running {
                kill: Some(kill),
                finished,
                awaited: false,
            },
        );
        Ok((process, pid))
    }

    /// Answers `reply` when `process` ends, without blocking the actor.
    fn wait(&mut self, process: ProcessId, reply: ReplyTo<Result<ProcessOutput, OslError>>) {
        let Some(running) = self.running.get_mut(&process) else {
            drop(reply.reply(Err(OslError::UnknownProcess {
                id: process.as_u64(),
            })));
            return;
        };
        running.awaited = true;
        let mut finished = running.finished.clone();
        tokio::spawn(async move {
            let outcome = match finished.wait_for(Option::is_some).await {
                Ok(done) => done.clone(),
                Err(_) => None,
            };
            // The watching task was dropped with the actor: the process was
            // killed with it.
            let outcome = outcome.unwrap_or(Err(OslError::UnknownProcess {
                id: process.as_u64(),
            }));
            drop(reply.reply(outcome));
        });
    }

    fn kill(&mut self, process: ProcessId) -> Result<(), OslError> {
        let audit = self
            .osl
            .audit(&self.context, Operation::ProcessKill, process);
        let result = match self.running.get_mut(&process) {
            Some(running) if running.finished.borrow().is_none() => {
                if let Some(kill) = running.kill.take() {
                    let _ = kill.send(());
                }
                Ok(())
            }
            _ => Err(OslError::UnknownProcess {
                id: process.as_u64(),
            }),
        };
        audit.finish(result)
    }
}

impl Actor for ProcessActor {
    type Message = ProcessRequest;
    type Error = std::convert::Infallible;

    async fn handle_message(
        &mut self,
        request: ProcessRequest,
        _: &mut ActorContext<ProcessRequest>,
    ) -> Result<(), Self::Error> {
        match request {
            ProcessRequest::Run { spec, reply } => match self.start(spec).await {
                Ok((process, _)) => self.wait(process, reply),
                Err(error) => drop(reply.reply(Err(error))),
            },
            ProcessRequest::Start { spec, reply } => drop(reply.reply(self.start(spec).await)),
            ProcessRequest::Wait { process, reply } => self.wait(process, reply),
            ProcessRequest::Kill { process, reply } => drop(reply.reply(self.kill(process))),
        }
        Ok(())
    }

    /// Kills every process still running and waits until each is reaped.
    async fn post_stop(&mut self, _: &ActorContext<ProcessRequest>) -> Result<(), Self::Error> {
        for running in self.running.values_mut() {
            if let Some(kill) = running.kill.take() {
                let _ = kill.send(());
            }
        }
        while self.tasks.join_next().await.is_some() {}
        Ok(())
    }
}

/// The files a start needs, opened (on the blocking pool) before the fork.
struct Opened {
    executable: Executable,
    /// The checked working directory.
    cwd: Option<OwnedFd>,
}

impl Opened {
    fn open(
        osl: &Osl,
        context: &SecurityContext,
        cwd: Option<PathBuf>,
        program: &Path,
    ) -> Result<Self, Refused> {
        let cwd = match &cwd {
            Some(dir) => Some(confine::checked(
                || osl.policy().check_path(context, Access::Read, dir),
                confine::open_directory,
            )?),
            None => None,
        };
        Ok(Self {
            executable: Executable::open(program)?,
            cwd,
        })
    }
}

/// A checked request with its files open, ready to start on the launcher
/// thread.
struct Launch {
    opened: Opened,
    argv0: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Launch {
    /// Starts the program from the opened file. Runs on the launcher thread.
    fn spawn(self) -> std::io::Result<(Group, tokio::process::Child)> {
        let Opened { executable, cwd } = &self.opened;
        let mut command = Command::new(executable.proc_path());
        command
            .arg0(&self.argv0)
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so a kill reaches what it started too.
            .process_group(0);
        let child_setup = ChildSetup {
            parent: nix::unistd::getpid().as_raw(),
            cwd: cwd.as_ref().map(AsRawFd::as_raw_fd),
            keep_open: executable.is_script.then(|| executable.fd.as_raw_fd()),
        };
        // SAFETY: `ChildSetup::apply` makes only async-signal-safe system
        // calls and does not allocate, as required between fork and exec;
        // the descriptors it names (`cwd`, `executable`) stay open until
        // `spawn` returns, after the exec.
        unsafe {
            command.pre_exec(move || child_setup.apply());
        }
        let child = command.spawn()?;
        let group = Group {
            leader: child.id().unwrap_or(0),
        };
        // Dropped unclaimed (the actor is gone), the group is killed first,
        // while its leader cannot have been reaped yet.
        Ok((group, child))
    }
}

/// The program file, opened once: the child executes this very file
/// (through `/proc/self/fd`), whatever the path names by then.
struct Executable {
    fd: File,
    /// Starts with `#!`: its interpreter reopens it by the descriptor's
    /// path, so the descriptor must stay open across the exec.
    is_script: bool,
}

impl Executable {
    fn open(path: &Path) -> Result<Self, Refused> {
        // A granted name that was found nowhere on `PATH` is left as the bare
        // name: never open it relative to the working directory.
        if !path.is_absolute() {
            return Err(Refused::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "program {} is not in any absolute directory on PATH",
                    escape_path(path)
                ),
            )));
        }
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags((OFlag::O_NOCTTY | OFlag::O_NONBLOCK).bits())
            .open(path);
        match opened {
            Ok(fd) => {
                let mut magic = [0u8; 2];
                let read = fd.read_at(&mut magic, 0).unwrap_or(0);
                Ok(Self {
                    is_script: read == 2 && magic == *b"#!",
                    fd,
                })
            }
            // Execute-only: not a script (an interpreter could not read it).
            Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => Ok(Self {
                fd: File::from(nix::fcntl::open(
                    path,
                    OFlag::O_PATH | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?),
                is_script: false,
            }),
            Err(error) => Err(error.into()),
        }
    }

    fn proc_path(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }
}

/// What the child does between fork and exec.
#[derive(Clone, Copy)]
struct ChildSetup {
    /// The host's pid: if the child's parent is already someone else, the
    /// host died before the death signal was set.
    parent: i32,
    /// The checked working directory, opened.
    cwd: Option<RawFd>,
    /// A script's descriptor, kept open for its interpreter.
    keep_open: Option<RawFd>,
}

impl ChildSetup {
    /// Dies with the host (`PR_SET_PDEATHSIG`), enters the working
    /// directory by its descriptor, and marks every descriptor above stderr
    /// close-on-exec (`close_range`), so the program inherits none of the
    /// host's files or sockets.
    fn apply(self) -> std::io::Result<()> {
        use nix::libc;
        // SAFETY: plain system calls on integers and descriptors this
        // process owns; no memory is shared or allocated.
        unsafe {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != self.parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            if let Some(dir) = self.cwd
                && libc::fchdir(dir) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The raw system call: glibc's wrapper is 2.34+ and musl has none.
            if libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(fd) = self.keep_open
                && libc::fcntl(fd, libc::F_SETFD, 0) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// A child's process group, killed as a whole while its leader (the child)
/// is not yet reaped, so the group id cannot belong to anyone else.
struct Group {
    /// The leader's pid; 0 once it is reaped.
    leader: u32,
}

impl Group {
    fn kill(&self) {
        #[cfg(unix)]
        if let Ok(leader) = i32::try_from(self.leader)
            && leader > 0
        {
            // ESRCH (already gone) is fine.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(leader),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One output stream as kept: at most the cap, and whether more came.
#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

/// Watches one child process: output, timeout, kill requests.
struct Watch {
    process: ProcessId,
    pid: u32,
    target: String,
    timeout: Duration,
    cap: usize,
    stream_to: Option<ActorRef<OutputLine>>,
}

impl Watch {
    /// Watches `child` until it ends; `group` kills its process group if
    /// this task is dropped (its actor was killed) before the child is
    /// reaped.
    async fn run(
        self,
        mut child: tokio::process::Child,
        mut group: Group,
        mut killed: oneshot::Receiver<()>,
    ) -> Result<ProcessOutput, OslError> {
        let began = Instant::now();
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let (mut out, mut err) = (Captured::default(), Captured::default());
        let (status, timed_out) = {
            let outputs = async {
                tokio::join!(
                    self.collect(stdout, Stream::Stdout, &mut out),
                    self.collect(stderr, Stream::Stderr, &mut err)
                )
            };
            tokio::pin!(outputs);
            let deadline = tokio::time::sleep(self.timeout);
            tokio::pin!(deadline);
            let (mut outputs_done, mut timed_out, mut kill_sent) = (false, false, false);
            let status = loop {
                tokio::select! {
                    _ = &mut outputs, if !outputs_done => outputs_done = true,
                    status = child.wait() => break status,
                    _ = &mut deadline, if !timed_out => {
                        timed_out = true;
                        group.kill();
                        let _ = child.start_kill();
                    }
                    // A kill request, or the actor that owns the kill
                    // handle is gone.
                    _ = &mut killed, if !kill_sent => {
                        kill_sent = true;
                        group.kill();
                        let _ = child.start_kill();
                    }
                }
            };
            // Reaped: its pid (the group's id) may be reused from now on.
            group.leader = 0;
            // The readers end with the pipes; a grandchild holding a pipe
            // open cannot hold the report past the deadline, nor a stop
            // (or kill) of the actor at all.
            if !outputs_done && !timed_out && !kill_sent {
                tokio::select! {
                    _ = &mut outputs => {}
                    _ = &mut deadline => {}
                    _ = &mut killed => {}
                }
            }
            (status, timed_out)
        };
        if timed_out {
            return Err(OslError::TimedOut {
                operation: Operation::ProcessSpawn,
                target: self.target.clone(),
                after: self.timeout,
            });
        }
        let status = status.map_err(|e| OslError::io(Operation::ProcessSpawn, &self.target, &e))?;
        #[cfg(unix)]
        let signal = std::os::unix::process::ExitStatusExt::signal(&status);
        #[cfg(not(unix))]
        let signal = None;
        Ok(ProcessOutput {
            process: self.process,
            pid: self.pid,
            code: status.code(),
            signal,
            stdout: out.bytes,
            stderr: err.bytes,
            stdout_truncated: out.truncated,
            stderr_truncated: err.truncated,
            duration: began.elapsed(),
        })
    }

    /// Reads a stream to its end, keeping at most `cap` bytes (the rest is
    /// read and dropped so the child never blocks on a full pipe), and
    /// streams its lines if asked: at most `cap` bytes of them in all, the
    /// line the cap falls in cut there. A recipient whose mailbox is full
    /// (and blocks) holds the reading, and so the child, back.
    async fn collect<R: AsyncRead + Unpin>(
        &self,
        stream: Option<R>,
        which: Stream,
        into: &mut Captured,
    ) {
        let Some(mut stream) = stream else {
            return;
        };
        let mut line = Vec::new();
        let mut stream_room = if self.stream_to.is_some() {
            self.cap
        } else {
            0
        };
        let mut chunk = vec![0u8; 8 * 1024];
        loop {
            let read = match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            let bytes = &chunk[..read];
            let room = self.cap.saturating_sub(into.bytes.len());
            into.truncated |= bytes.len() > room;
            into.bytes
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
            let streamed = &bytes[..bytes.len().min(stream_room)];
            stream_room -= streamed.len();
            for piece in streamed.split_inclusive(|&b| b == b'\n') {
                line.extend_from_slice(piece);
                if piece.ends_with(b"\n") {
                    self.send_line(&mut line, which).await;
                }
            }
            if stream_room == 0 && !line.is_empty() {
                self.send_line(&mut line, which).await;
            }
        }
        if !line.is_empty() {
            self.send_line(&mut line, which).await;
        }
    }

    async fn send_line(&self, line: &mut Vec<u8>, which: Stream) {
        if let Some(recipient) = &self.stream_to {
            let text = String::from_utf8_lossy(line);
            // A recipient that stopped just misses the rest.
            let _ = recipient
                .tell(OutputLine {
                    process: self.process,
                    stream: which,
                    line: text.trim_end_matches(['\n', '\r']).to_owned(),
                })
                .await;
        }
        line.clear();
    }
}
