//! The OS layer's `ProcessActor` against real processes: arguments, a
//! cleared environment, working directories, captured and streamed output,
//! output caps, timeouts, kills, children dying with their actor (reaped,
//! never left as zombies), and denials with their activity records.
#![cfg(all(feature = "osl", target_os = "linux"))]

mod support;

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use airssys_rt::integration::osl::*;
use airssys_rt::prelude::*;
use airssys_rt::supervisor::SupervisionEvent;
use support::osl::{layer, process_actor};
use support::{PATIENCE, system};
use tokio::sync::mpsc;

/// A fresh, empty directory for one test, canonicalised.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("osl-process-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir writable");
    std::fs::canonicalize(&dir).expect("just created")
}

/// A program's full path (for scripts, whose environment has no `PATH`).
fn which(program: &str) -> String {
    let path = std::env::var_os("PATH").expect("PATH set");
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{program} not on PATH"))
        .display()
        .to_string()
}

async fn run(
    actor: &ActorRef<ProcessRequest>,
    spec: ProcessSpec,
) -> Result<ProcessOutput, OslError> {
    actor
        .ask(|reply| ProcessRequest::Run { spec, reply }, PATIENCE)
        .await
        .expect("the process actor answers")
}

async fn start(actor: &ActorRef<ProcessRequest>, spec: ProcessSpec) -> (ProcessId, u32) {
    actor
        .ask(|reply| ProcessRequest::Start { spec, reply }, PATIENCE)
        .await
        .expect("the process actor answers")
        .expect("the process starts")
}

async fn wait(
    actor: &ActorRef<ProcessRequest>,
    process: ProcessId,
) -> Result<ProcessOutput, OslError> {
    actor
        .ask(|reply| ProcessRequest::Wait { process, reply }, PATIENCE)
        .await
        .expect("the process actor answers")
}

async fn kill(actor: &ActorRef<ProcessRequest>, process: ProcessId) -> Result<(), OslError> {
    actor
        .ask(|reply| ProcessRequest::Kill { process, reply }, PATIENCE)
        .await
        .expect("the process actor answers")
}

// ---------------------------------------------------------------------------
// Watching OS processes through /proc
// ---------------------------------------------------------------------------

/// `/proc/<pid>/stat`: (state, start time in ticks), if the pid exists.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 of the whole line (starttime) is the 20th after the state.
    let started = fields.get(19)?.parse().ok()?;
    Some((state, started))
}

/// A live OS process, told apart from a later one reusing its pid.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    pid: u32,
    started: u64,
}

impl Tracked {
    /// Starts tracking `pid`, which must be alive (not a zombie).
    fn alive(pid: u32) -> Self {
        let (state, started) =
            proc_stat(pid).unwrap_or_else(|| panic!("pid {pid} should be running"));
        assert_ne!(state, 'Z', "pid {pid} should be running, not a zombie");
        Self { pid, started }
    }

    /// Whether it is gone: no such pid (or a new process under it). A zombie
    /// (exited but not reaped) is *not* gone.
    fn is_gone(self) -> bool {
        match proc_stat(self.pid) {
            None => true,
            Some((_, started)) => started != self.started,
        }
    }

    /// Asserts it is gone now: for paths that reap before they report.
    fn assert_gone(self) {
        assert!(
            self.is_gone(),
            "pid {} still exists (state {:?})",
            self.pid,
            proc_stat(self.pid).map(|(state, _)| state)
        );
    }

    /// Waits until it is gone: for paths that kill and reap in the
    /// background (there is no event to await). Polls /proc, failing after
    /// [`PATIENCE`] instead of hanging.
    async fn wait_gone(self) {
        let give_up = Instant::now() + PATIENCE;
        while !self.is_gone() {
            assert!(
                Instant::now() < give_up,
                "pid {} never went away (state {:?})",
                self.pid,
                proc_stat(self.pid).map(|(state, _)| state)
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Receiving streamed lines
// ---------------------------------------------------------------------------

/// Forwards every streamed line to a channel the test reads.
struct Collector(mpsc::UnboundedSender<OutputLine>);

impl Actor for Collector {
    type Message = OutputLine;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        line: OutputLine,
        _: &mut ActorContext<OutputLine>,
    ) -> Result<(), Infallible> {
        let _ = self.0.send(line);
        Ok(())
    }
}

fn collector(system: &ActorSystem) -> (ActorRef<OutputLine>, mpsc::UnboundedReceiver<OutputLine>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (system.spawn(Collector(tx)).expect("spawned"), rx)
}

async fn next_line(lines: &mut mpsc::UnboundedReceiver<OutputLine>) -> OutputLine {
    tokio::time::timeout(PATIENCE, lines.recv())
        .await
        .expect("hung waiting for a streamed line")
        .expect("the collector is alive")
}

/// One record of `operation` on `target` with `outcome`, exactly.
fn assert_recorded(memory: &MemorySink, operation: Operation, target: &str, outcome: &Outcome) {
    let matching = memory
        .records()
        .into_iter()
        .filter(|r| r.operation == operation && r.target == target && &r.outcome == outcome)
        .count();
    assert_eq!(
        matching,
        1,
        "one {operation} {target} {outcome:?} record expected in {:#?}",
        memory.records()
    );
}

// ---------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------

/// Arguments (unexpanded), an environment variable, the working directory,
/// both streams, the exit code and the pid all come out as they should.
#[tokio::test]
async fn run_reports_output_exit_code_and_pid() {
    let dir = scratch("run");
    let (osl, memory) = layer(
        SecurityPolicy::deny_all()
            .grant(Grant::program("sh").allow_env(["GREETING"]))
            .grant(Grant::read(&dir)),
    );
    let system = system();
    let actor = process_actor(&system, &osl, "runner");
    let script = r#"printf '%s|%s|%s\n' "$1" "$2" "$GREETING"; echo $$; pwd -P; echo "to stderr" >&2; exit 3"#;
    let spec = ProcessSpec::new("sh")
        .args(["-c", script, "name", "first arg", "*"])
        .env("GREETING", "hello world")
        .current_dir(&dir);
    let out = run(&actor, spec).await.expect("allowed and run");

    assert!(out.pid > 0);
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let expected = format!("first arg|*|hello world\n{}\n{}\n", out.pid, dir.display());
    assert_eq!(stdout, expected);
    assert_eq!(out.stderr, b"to stderr\n");
    assert_eq!(out.code, Some(3));
    assert_eq!(out.signal, None);
    assert!(!out.success());
    assert!(!out.stdout_truncated && !out.stderr_truncated);
    assert_recorded(
        &memory,
        Operation::ProcessSpawn,
        // Arguments that need it are quoted: argv boundaries stay visible.
        &format!("sh -c {script:?} name \"first arg\" *"),
        &Outcome::Succeeded,
    );
    assert!(
        memory.records().iter().all(|r| r.principal == "runner"),
        "{:#?}",
        memory.records()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The child's environment is exactly the variables set on the spec: none
/// of the test process's own (`PATH`, `HOME`, ...) leak through.
#[tokio::test]
async fn the_child_gets_only_the_environment_given() {
    assert!(std::env::var_os("PATH").is_some(), "the parent has a PATH");
    let (osl, _) =
        layer(SecurityPolicy::deny_all().grant(Grant::program("env").allow_env(["ALPHA", "BETA"])));
    let system = system();
    let actor = process_actor(&system, &osl, "env");
    let out = run(
        &actor,
        ProcessSpec::new("env")
            .env("ALPHA", "1")
            .env("BETA", "two words"),
    )
    .await
    .unwrap();
    assert!(out.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "ALPHA=1\nBETA=two words\n"
    );

    let out = run(&actor, ProcessSpec::new("env")).await.unwrap();
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, b"", "an empty environment");
}

/// The program gets the name it was asked for as `argv[0]`, not the path it
/// resolved to (multi-call binaries such as busybox dispatch on it).
#[tokio::test]
async fn argv0_is_the_program_as_named() {
    let (osl, _) = layer(SecurityPolicy::deny_all().grant(Grant::program("sh")));
    let system = system();
    let actor = process_actor(&system, &osl, "argv0");
    let out = run(&actor, ProcessSpec::new("sh").args(["-c", "echo \"$0\""]))
        .await
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "sh\n");
}

/// Output lines reach the `stream_to` actor in order, per stream, each
/// tagged with the process, the last one even without a final newline.
#[tokio::test]
async fn output_lines_are_streamed_in_order() {
    let (osl, _) = layer(SecurityPolicy::deny_all().grant(Grant::program("sh")));
    let system = system();
    let actor = process_actor(&system, &osl, "stream");
    let (recipient, mut lines) = collector(&system);
    let script = r#"i=1; while [ $i -le 500 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done; printf 'no newline'"#;
    let spec = ProcessSpec::new("sh")
        .args(["-c", script])
        .stream_to(recipient.clone());
    let out = run(&actor, spec).await.unwrap();
    assert!(out.success(), "{out:?}");
    // Every line was handed to the collector before the run reported; a
    // second run's line marks the end of the first one's.
    let end = run(
        &actor,
        ProcessSpec::new("sh")
            .args(["-c", "echo end"])
            .stream_to(recipient),
    )
    .await
    .unwrap();

    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    loop {
        let line = next_line(&mut lines).await;
        if line.process == end.process {
            assert_eq!((line.stream, line.line.as_str()), (Stream::Stdout, "end"));
            break;
        }
        assert_eq!(line.process, out.process);
        match line.stream {
            Stream::Stdout => stdout.push(line.line),
            Stream::Stderr => stderr.push(line.line),
        }
    }
    let mut expected_out: Vec<String> = (1..=500).map(|i| format!("out {i}")).collect();
    expected_out.push("no newline".into());
    let expected_err: Vec<String> = (1..=500).map(|i| format!("err {i}")).collect();
    assert_eq!(stdout, expected_out);
    assert_eq!(stderr, expected_err);
    // The captured output is the same text.
    let captured = String::from_utf8(out.stdout).unwrap();
    assert_eq!(captured, expected_out.join("\n"));
}

/// A layer that runs `sh` and keeps at most `cap` bytes of each output
/// stream.
fn sh_with_output_cap(cap: usize) -> Osl {
    layer(
        SecurityPolicy::deny_all()
            .grant(Grant::program("sh"))
            .limits(Limits {
                max_output_bytes: cap,
                ..Limits::default()
            }),
    )
    .0
}

/// Output beyond `max_output_bytes` is cut, per stream, and reported as
/// truncated; output of exactly the cap is not.
#[tokio::test]
async fn output_over_the_cap_is_cut_and_flagged() {
    const CAP: usize = 1000;
    let system = system();
    let actor = process_actor(&system, &sh_with_output_cap(CAP), "cap");
    let head = which("head");
    let emit = |out: usize, err: usize| {
        ProcessSpec::new("sh").args([
            "-c".to_owned(),
            format!("{head} -c {out} /dev/zero; {head} -c {err} /dev/zero >&2; echo done >&2"),
        ])
    };

    // Far over the cap on stdout (the child is not blocked by the cut: it
    // runs to its end and exits 0); stderr under it.
    let out = run(&actor, emit(200_000, 10)).await.unwrap();
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout.len(), CAP);
    assert!(out.stdout.iter().all(|&b| b == 0));
    assert!(out.stdout_truncated);
    assert_eq!(out.stderr.len(), 15);
    assert!(out.stderr.ends_with(b"done\n"));
    assert!(!out.stderr_truncated);

    // Exactly at the cap: kept whole, not truncated. One byte over: cut.
    let exact = run(&actor, emit(CAP, 0)).await.unwrap();
    assert_eq!(exact.stdout.len(), CAP);
    assert!(!exact.stdout_truncated);
    let over = run(&actor, emit(CAP + 1, 0)).await.unwrap();
    assert_eq!(over.stdout.len(), CAP);
    assert!(over.stdout_truncated);

    // Stderr is capped on its own.
    let err = run(&actor, emit(0, 3 * CAP)).await.unwrap();
    assert_eq!((err.stdout.len(), err.stdout_truncated), (0, false));
    assert_eq!(err.stderr.len(), CAP);
    assert!(err.stderr_truncated);
}

// ---------------------------------------------------------------------------
// Timeouts and kills
// ---------------------------------------------------------------------------

/// A process past its timeout is killed and reaped: `Run` reports
/// `TimedOut`, and so does `Wait` on a started one, whose pid is gone by
/// then.
#[tokio::test]
async fn a_process_past_its_timeout_is_killed() {
    let (osl, memory) = layer(SecurityPolicy::deny_all().grant(Grant::program("sleep")));
    let system = system();
    let actor = process_actor(&system, &osl, "slow");
    let limit = Duration::from_millis(50);

    let spec = ProcessSpec::new("sleep").arg("600").timeout(limit);
    match run(&actor, spec).await {
        Err(OslError::TimedOut {
            operation, after, ..
        }) => {
            assert_eq!(operation, Operation::ProcessSpawn);
            assert_eq!(after, limit);
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }

    let spec = ProcessSpec::new("sleep").arg("601").timeout(limit);
    let (process, pid) = start(&actor, spec).await;
    let child = Tracked::alive(pid);
    let waited = wait(&actor, process).await;
    assert!(
        matches!(waited, Err(OslError::TimedOut { .. })),
        "{waited:?}"
    );
    // Reaped before the report.
    child.assert_gone();
    // The timeout never exceeds the policy's max_duration.
    let capped = Osl::new(
        SecurityPolicy::deny_all()
            .grant(Grant::program("sleep"))
            .limits(Limits {
                max_duration: limit,
                ..Limits::default()
            }),
        ActivityLog::new(),
    );
    let capped = process_actor(&system, &capped, "capped");
    let spec = ProcessSpec::new("sleep")
        .arg("602")
        .timeout(Duration::from_secs(3600));
    match run(&capped, spec).await {
        Err(OslError::TimedOut { after, .. }) => assert_eq!(after, limit),
        other => panic!("expected TimedOut, got {other:?}"),
    }
    assert!(
        memory
            .records()
            .iter()
            .all(|r| r.operation == Operation::ProcessSpawn && r.outcome == Outcome::Succeeded),
        "{:#?}",
        memory.records()
    );
}

/// Start answers with ids while the process runs (its output streams
/// meanwhile); Kill ends it; Wait reports SIGKILL, with the output so far,
/// and the pid is gone.
#[tokio::test]
async fn start_kill_wait_reports_the_signal() {
    let (osl, memory) = layer(SecurityPolicy::deny_all().grant(Grant::program("sh")));
    let system = system();
    let actor = process_actor(&system, &osl, "killer");
    let (recipient, mut lines) = collector(&system);
    let script = format!("echo started; exec {} 600", which("sleep"));
    let spec = ProcessSpec::new("sh")
        .args(["-c", &script])
        .stream_to(recipient);
    let (process, pid) = start(&actor, spec).await;
    let child = Tracked::alive(pid);

    // The line arrives while the process still runs.
    let line = next_line(&mut lines).await;
    assert_eq!(
        (line.process, line.stream, line.line.as_str()),
        (process, Stream::Stdout, "started")
    );
    assert!(!child.is_gone());

    kill(&actor, process).await.expect("a running process");
    let out = wait(&actor, process).await.expect("it ended");
    assert_eq!((out.process, out.pid), (process, pid));
    assert_eq!(out.signal, Some(9));
    assert_eq!(out.code, None);
    assert!(!out.success());
    assert_eq!(out.stdout, b"started\n");
    child.assert_gone();
    assert_recorded(
        &memory,
        Operation::ProcessKill,
        &process.to_string(),
        &Outcome::Succeeded,
    );

    // Once ended, it is no longer running: a second Kill is refused.
    assert_eq!(
        kill(&actor, process).await,
        Err(OslError::UnknownProcess {
            id: process.as_u64()
        })
    );
}

/// Kill and Wait name processes this actor started; others are unknown.
#[tokio::test]
async fn unknown_processes_are_reported() {
    let (osl, _) = layer(SecurityPolicy::deny_all().grant(Grant::program("sh")));
    let system = system();
    let first = process_actor(&system, &osl, "a");
    let second = process_actor(&system, &osl, "b");
    let (process, _) = start(&first, ProcessSpec::new("sh").args(["-c", "exit 7"])).await;
    let unknown = OslError::UnknownProcess {
        id: process.as_u64(),
    };
    assert_eq!(kill(&second, process).await, Err(unknown.clone()));
    assert_eq!(wait(&second, process).await.map(|o| o.code), Err(unknown));
    assert_eq!(wait(&first, process).await.unwrap().code, Some(7));
}

/// A started process's outcome waits for its `Wait`, even when the process
/// ended before the Wait and other processes were started meanwhile.
#[tokio::test]
async fn a_finished_process_can_still_be_waited_for() {
    let (osl, _) = layer(SecurityPolicy::deny_all().grant(Grant::program("sh")));
    let system = system();
    let actor = process_actor(&system, &osl, "waiter");
    let (first, pid) = start(
        &actor,
        ProcessSpec::new("sh").args(["-c", "echo first; exit 5"]),
    )
    .await;
    // It has ended (and been reaped) before anything else is asked.
    if let Some((_, started)) = proc_stat(pid) {
        Tracked { pid, started }.wait_gone().await;
    }
    let quick = run(&actor, ProcessSpec::new("sh").args(["-c", "exit 0"]))
        .await
        .unwrap();
    assert!(quick.success());
    let (second, _) = start(&actor, ProcessSpec::new("sh").args(["-c", "exit 6"])).await;

    let out = wait(&actor, first).await.expect("its outcome was kept");
    assert_eq!(
        (out.code, out.stdout.as_slice()),
        (Some(5), &b"first\n"[..])
    );
    assert_eq!(wait(&actor, second).await.unwrap().code, Some(6));
}

// ---------------------------------------------------------------------------
// Processes die with their actor
// ---------------------------------------------------------------------------

/// Stopping the actor kills its running processes and reaps them before it
/// has exited.
#[tokio::test]
async fn stopping_the_actor_kills_and_reaps_its_processes() {
    let (osl, _) = layer(SecurityPolicy::deny_all().grant(Grant::program("sleep")));
    let system = system();
    let actor = process_actor(&system, &osl, "owner");
    let (first, pid_a) = start(&actor, ProcessSpec::new("sleep").arg("600")).await;
    // A Wait pending when the actor stops is answered, not left hanging.
    // Polled once, it is queued; the next Start's answer shows it handled.
    let waiter = actor.ask(
        |reply| ProcessRequest::Wait {
            process: first,
            reply,
        },
        PATIENCE,
    );
    let mut waiter = std::pin::pin!(waiter);
    assert!(futures::poll!(waiter.as_mut()).is_pending());
    let (_, pid_b) = start(&actor, ProcessSpec::new("sleep").arg("601")).await;
    let children = [Tracked::alive(pid_a), Tracked::alive(pid_b)];

    assert!(actor.stop());
    let reason = tokio::time::timeout(PATIENCE, actor.wait_for_exit())
        .await
        .expect("the actor stops");
    assert_eq!(reason, ExitReason::Normal);
    for child in children {
        child.assert_gone();
    }
    let answered = waiter.await.expect("answered").expect("it ended");
    assert_eq!((answered.pid, answered.signal), (pid_a, Some(9)));
}

/// `ActorRef::kill` skips `post_stop`; the processes still die with the
/// actor (killed on drop) and are reaped, leaving no zombie.
#[tokio::test]
async fn killing_the_actor_kills_and_reaps_its_processes() {
    let (osl, _) = layer(SecurityPolicy::deny_all().grant(Grant::program("sleep")));
    let system = system();
    let actor = process_actor(&system, &osl, "owner");
    let (_, pid) = start(&actor, ProcessSpec::new("sleep").arg("600")).await;
    let child = Tracked::alive(pid);
    actor.kill();
    let reason = tokio::time::timeout(PATIENCE, actor.wait_for_exit())
        .await
        .expect("the actor stops");
    assert_eq!(reason, ExitReason::Killed);
    child.wait_gone().await;
}

/// A test worker that panics when told to.
struct Crasher;

#[derive(Debug)]
struct Crash;

impl Message for Crash {
    const MESSAGE_TYPE: &'static str = "test.crash";
}

impl Actor for Crasher {
    type Message = Crash;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        _: Crash,
        _: &mut ActorContext<Crash>,
    ) -> Result<(), Infallible> {
        panic!("told to crash");
    }
}

/// Under a one-for-all supervisor, a sibling's panic restarts the process
/// actor too: its processes die with the old instance, shut down gracefully
/// or brutally killed, and the new instance runs programs again.
#[tokio::test]
async fn a_supervised_restart_kills_the_old_instances_processes() {
    for shutdown in [ChildShutdown::Timeout(PATIENCE), ChildShutdown::BrutalKill] {
        let (osl, _) = layer(
            SecurityPolicy::deny_all()
                .grant(Grant::program("sleep"))
                .grant(Grant::program("sh")),
        );
        let system = system();
        let mut events = system.supervision_events();
        let factory = osl.clone();
        let spec = SupervisorSpec::one_for_all()
            .child(
                ChildSpec::worker("proc", move || {
                    factory.process_actor(SecurityContext::new("supervised"))
                })
                .shutdown(shutdown),
            )
            .child(ChildSpec::worker("crasher", || Crasher));
        let supervisor = system.start_supervisor(spec).await.unwrap();
        let old = supervisor
            .child::<ProcessRequest>("proc")
            .await
            .unwrap()
            .expect("running");
        let (_, pid) = start(&old, ProcessSpec::new("sleep").arg("600")).await;
        let child = Tracked::alive(pid);

        let crasher = supervisor
            .child::<Crash>("crasher")
            .await
            .unwrap()
            .expect("running");
        crasher.tell(Crash).await.unwrap();
        loop {
            let event = tokio::time::timeout(PATIENCE, events.recv())
                .await
                .expect("the supervisor restarts its children")
                .expect("events flow");
            if matches!(&event, SupervisionEvent::ChildRestarted { child, .. } if child == "proc") {
                break;
            }
        }
        assert!(!old.is_alive());
        match shutdown {
            // post_stop ran: killed and reaped before the old instance exited.
            ChildShutdown::Timeout(_) => child.assert_gone(),
            // Killed without post_stop: killed on drop, reaped in the
            // background.
            _ => child.wait_gone().await,
        }
        let new = supervisor
            .child::<ProcessRequest>("proc")
            .await
            .unwrap()
            .expect("restarted");
        let out = run(&new, ProcessSpec::new("sh").args(["-c", "echo again"]))
            .await
            .unwrap();
        assert_eq!(out.stdout, b"again\n", "{shutdown:?}");
        system.shutdown(PATIENCE).await;
    }
}

// ---------------------------------------------------------------------------
// Denials
// ---------------------------------------------------------------------------

/// A program with no grant is refused with `NoGrant("program")`, nothing
/// runs, and the refusal is recorded.
#[tokio::test]
async fn a_program_not_granted_is_denied_and_recorded() {
    let dir = scratch("denied-program");
    let (osl, memory) = layer(
        SecurityPolicy::deny_all()
            .grant(Grant::program("sleep"))
            .grant(Grant::read(&dir)),
    );
    let system = system();
    let actor = process_actor(&system, &osl, "intruder");
    let marker = dir.join("ran");
    let script = format!(": > {}", marker.display());
    let spec = ProcessSpec::new("sh").args(["-c", &script]);
    let target = spec.to_string();
    match run(&actor, spec.clone()).await {
        Err(OslError::Denied {
            operation,
            target: denied,
            principal,
            rule,
        }) => {
            assert_eq!(operation, Operation::ProcessSpawn);
            assert_eq!(denied, target);
            assert_eq!(principal, "intruder");
            assert_eq!(rule, DenyRule::NoGrant("program".into()));
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    // Start is checked the same way.
    let started = actor
        .ask(|reply| ProcessRequest::Start { spec, reply }, PATIENCE)
        .await
        .unwrap();
    assert!(started.unwrap_err().is_denied());
    // By full path as well.
    let by_path = ProcessSpec::new(which("sh")).args(["-c", &script]);
    let by_path_target = by_path.to_string();
    assert!(run(&actor, by_path).await.unwrap_err().is_denied());
    assert!(!marker.exists(), "a denied program must not run");

    let denied = Outcome::Denied(DenyRule::NoGrant("program".into()).to_string());
    let records = memory.records();
    assert_eq!(records.len(), 3, "{records:#?}");
    for (record, target) in records.iter().zip([&target, &target, &by_path_target]) {
        assert_eq!(record.operation, Operation::ProcessSpawn);
        assert_eq!(&record.target, target);
        assert_eq!(record.principal, "intruder");
        assert_eq!(record.outcome, denied);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A working directory outside the read grants is refused before anything
/// runs, also when reached through a symlink inside a granted directory.
#[tokio::test]
async fn a_working_directory_outside_the_read_grants_is_denied() {
    let granted = scratch("cwd-granted");
    let outside = scratch("cwd-outside");
    let link = granted.join("escape");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let (osl, memory) = layer(
        SecurityPolicy::deny_all()
            .grant(Grant::program("sh"))
            .grant(Grant::read(&granted)),
    );
    let system = system();
    let actor = process_actor(&system, &osl, "wanderer");
    let in_cwd = |dir: &Path| {
        ProcessSpec::new("sh")
            .args(["-c", ": > ran"])
            .current_dir(dir)
    };

    let rule_of = |result: Result<ProcessOutput, OslError>| match result {
        Err(OslError::Denied { rule, .. }) => rule,
        other => panic!("expected a denial, got {other:?}"),
    };
    assert_eq!(
        rule_of(run(&actor, in_cwd(&outside)).await),
        DenyRule::NoGrant("read".into())
    );
    assert_eq!(
        rule_of(
            run(
                &actor,
                in_cwd(&granted.join("..").join(outside.file_name().unwrap()))
            )
            .await
        ),
        DenyRule::NoGrant("read".into())
    );
    assert_eq!(
        rule_of(run(&actor, in_cwd(&link)).await),
        DenyRule::PathEscapes {
            resolved: outside.clone()
        }
    );
    assert!(!outside.join("ran").exists(), "nothing ran outside");
    let records = memory.records();
    assert_eq!(records.len(), 3, "{records:#?}");
    assert!(
        records
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Denied(_))
                && r.operation == Operation::ProcessSpawn),
        "{records:#?}"
    );

    // The granted directory itself is fine.
    let out = run(&actor, in_cwd(&granted)).await.unwrap();
    assert!(out.success(), "{out:?}");
    assert!(granted.join("ran").exists());
    let _ = std::fs::remove_dir_all(&granted);
    let _ = std::fs::remove_dir_all(&outside);
}

// ---------------------------------------------------------------------------
// Grandchildren: a program's own children die with it
// ---------------------------------------------------------------------------

/// Whether `pid` no longer runs: gone, reused, or a zombie. A killed
/// grandchild is reparented to PID 1, which in some containers never reaps
/// it, so a zombie here means "killed", not "leaked".
fn has_stopped(process: Tracked) -> bool {
    process.is_gone() || matches!(proc_stat(process.pid), Some(('Z', _)))
}

async fn wait_stopped(process: Tracked) {
    let give_up = Instant::now() + PATIENCE;
    while !has_stopped(process) {
        assert!(Instant::now() < give_up, "pid {} still runs", process.pid);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Starts `sh` that starts a background `sleep 600` and prints its pid;
/// returns the sh process and the tracked grandchild.
async fn start_with_grandchild(
    system: &ActorSystem,
    actor: &ActorRef<ProcessRequest>,
    timeout: Duration,
) -> (ProcessId, Tracked) {
    let (lines, mut received) = collector(system);
    let spec = ProcessSpec::new("sh")
        .args(["-c", "sleep 600 & echo $!; wait"])
        .timeout(timeout)
        .stream_to(lines);
    let (process, _) = start(actor, spec).await;
    let grandchild: u32 = next_line(&mut received).await.line.parse().unwrap();
    (process, Tracked::alive(grandchild))
}

fn grandchild_layer() -> Osl {
    layer(
        SecurityPolicy::deny_all()
            .grant(Grant::program("sh"))
            .grant(Grant::program("sleep")),
    )
    .0
}

#[tokio::test]
async fn stopping_the_actor_kills_its_processes_children_too() {
    let system = system();
    let actor = process_actor(&system, &grandchild_layer(), "owner");
    let (_, grandchild) = start_with_grandchild(&system, &actor, PATIENCE).await;
    actor.stop();
    tokio::time::timeout(PATIENCE, actor.wait_for_exit())
        .await
        .expect("the actor stops without waiting for the grandchild's pipes");
    wait_stopped(grandchild).await;
}

#[tokio::test]
async fn a_timeout_kills_the_processes_children_too() {
    let system = system();
    let actor = process_actor(&system, &grandchild_layer(), "owner");
    let (process, grandchild) =
        start_with_grandchild(&system, &actor, Duration::from_millis(200)).await;
    let waited = wait(&actor, process).await;
    assert!(
        matches!(waited, Err(OslError::TimedOut { .. })),
        "{waited:?}"
    );
    wait_stopped(grandchild).await;
}

#[tokio::test]
async fn killing_the_actor_kills_its_processes_children_too() {
    let system = system();
    let actor = process_actor(&system, &grandchild_layer(), "owner");
    let (_, grandchild) = start_with_grandchild(&system, &actor, PATIENCE).await;
    actor.kill();
    tokio::time::timeout(PATIENCE, actor.wait_for_exit())
        .await
        .expect("the actor stops");
    wait_stopped(grandchild).await;
}

// ---------------------------------------------------------------------------
// Hardening: what a guest holding a few grants must not be able to do
// ---------------------------------------------------------------------------

/// Builds a shared object whose constructor creates `marker` (a program it
/// is preloaded into then runs code the guest chose).
fn preload_library(dir: &Path, marker: &Path) -> PathBuf {
    let source = dir.join("evil.c");
    let library = dir.join("evil.so");
    std::fs::write(
        &source,
        format!(
            "#include <fcntl.h>\n#include <unistd.h>\n\
             __attribute__((constructor)) static void evil(void) {{\n\
             int fd = open(\"{}\", O_CREAT | O_WRONLY, 0600); if (fd >= 0) close(fd); }}\n",
            marker.display()
        ),
    )
    .unwrap();
    let built = std::process::Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&source)
        .status()
        .expect("gcc runs (CI installs it)");
    assert!(built.success(), "the preload library builds");
    library
}

/// A request may set only the environment keys its program grant allows:
/// `LD_PRELOAD` (which runs a library's code inside the granted program) is
/// refused and recorded (`LD_*` is a name, not a pattern); only
/// its exact name admits it, and then the library really is loaded (which
/// shows the refusal is what kept it out).
#[tokio::test]
async fn loader_environment_keys_are_refused_unless_named_exactly() {
    let dir = scratch("ld-preload");
    let marker = dir.join("preloaded");
    let library = preload_library(&dir, &marker);
    let (osl, memory) =
        layer(SecurityPolicy::deny_all().grant(Grant::program("echo").allow_env(["LANG", "LD_*"])));
    let system = system();
    let actor = process_actor(&system, &osl, "guest");
    let spec = || {
        ProcessSpec::new("echo")
            .arg("harmless")
            .env("LANG", "C")
            .env("LD_PRELOAD", library.display().to_string())
    };
    let refused = run(&actor, spec()).await;
    let rule = DenyRule::EnvNotAllowed {
        key: "LD_PRELOAD".into(),
    };
    match &refused {
        Err(OslError::Denied { rule: denied, .. }) => assert_eq!(denied, &rule),
        other => panic!("expected a denial, got {other:?}"),
    }
    assert!(!marker.exists(), "the library's code did not run");
    assert_recorded(
        &memory,
        Operation::ProcessSpawn,
        "echo harmless",
        &Outcome::Denied(rule.to_string()),
    );
    // A key the grant does not name at all.
    let other = run(&actor, ProcessSpec::new("echo").env("HOME", "/root")).await;
    assert!(
        matches!(&other, Err(OslError::Denied { rule: DenyRule::EnvNotAllowed { key }, .. }) if key == "HOME"),
        "{other:?}"
    );

    let (trusting, _) = layer(
        SecurityPolicy::deny_all().grant(Grant::program("echo").allow_env(["LANG", "LD_PRELOAD"])),
    );
    let trusting = process_actor(&system, &trusting, "operator");
    let out = run(&trusting, spec()).await.unwrap();
    assert!(out.success(), "{out:?}");
    assert!(marker.exists(), "named exactly, the key is passed on");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Granting `xzcat` grants that name only: `xz`, `unxz` and `lzma` (the same
/// binary, which compresses and deletes by name), its full path, and a link
/// the guest made to it are all refused; `xzcat` runs as `xzcat` (it
/// decompresses to stdout and leaves the file alone).
#[tokio::test]
async fn a_program_grant_admits_its_name_only_and_runs_under_it() {
    let dir = scratch("aliases");
    let data = dir.join("data.txt");
    std::fs::write(&data, b"payload\n").unwrap();
    let packed = dir.join("packed.xz");
    let packing = std::process::Command::new("xz")
        .args(["-k", "-c"])
        .arg(&data)
        .output()
        .expect("xz runs (CI installs xz-utils)");
    std::fs::write(&packed, packing.stdout).unwrap();
    let alias = dir.join("anything");
    std::os::unix::fs::symlink(which("xz"), &alias).unwrap();
    let (osl, memory) = layer(SecurityPolicy::deny_all().grant(Grant::program("xzcat")));
    let system = system();
    let actor = process_actor(&system, &osl, "guest");

    let data_arg = data.display().to_string();
    for name in [
        "xz".to_owned(),
        "unxz".to_owned(),
        "lzma".to_owned(),
        which("xz"),
        which("xzcat"),
        alias.display().to_string(),
    ] {
        let refused = run(&actor, ProcessSpec::new(&name).arg(&data_arg)).await;
        assert!(
            matches!(
                &refused,
                Err(OslError::Denied {
                    rule: DenyRule::NoGrant(_),
                    ..
                })
            ),
            "{name}: {refused:?}"
        );
    }
    assert_eq!(std::fs::read(&data).unwrap(), b"payload\n", "nothing ran");
    assert!(!dir.join("data.txt.xz").exists());

    let out = run(
        &actor,
        ProcessSpec::new("xzcat").arg(packed.display().to_string()),
    )
    .await
    .unwrap();
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, b"payload\n");
    assert!(packed.exists(), "xzcat leaves its input alone");
    let denials = memory
        .records()
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Denied(_)))
        .count();
    assert_eq!(denials, 6);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A granted script (`#!`) runs: the interpreter reads it through the
/// descriptor the layer opened and checked.
#[tokio::test]
async fn a_granted_script_runs_from_the_opened_file() {
    let dir = scratch("script");
    let script = dir.join("hello.sh");
    std::fs::write(&script, format!("#!{}\necho \"hello $1\"\n", which("sh"))).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (osl, _) = layer(SecurityPolicy::deny_all().grant(Grant::program(&script)));
    let system = system();
    let actor = process_actor(&system, &osl, "scripter");
    let out = run(&actor, ProcessSpec::new(&script).arg("world"))
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, b"hello world\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The child inherits stdin, stdout and stderr only: a descriptor the host
/// holds open without close-on-exec (as a library might) is not passed on.
#[tokio::test]
async fn children_inherit_no_descriptor_beyond_the_standard_three() {
    let dir = scratch("fds");
    let leaky = nix::fcntl::open(
        &dir.join("host-secret"),
        nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_RDWR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let leaky_fd = std::os::fd::AsRawFd::as_raw_fd(&leaky);
    let (osl, _) = layer(SecurityPolicy::deny_all().grant(Grant::program("sh")));
    let system = system();
    let actor = process_actor(&system, &osl, "fds");
    let out = run(
        &actor,
        ProcessSpec::new("sh").args(["-c", "ls /proc/$$/fd"]),
    )
    .await
    .unwrap();
    assert!(out.success(), "{out:?}");
    let open: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(open, ["0", "1", "2"], "the host's fd {leaky_fd} leaked");
    drop(leaky);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Stopping the actor does not wait for a grandchild that moved to its own
/// session and keeps the output pipes open after its parent exited (it used
/// to wait out the whole process time limit).
#[tokio::test]
async fn stopping_does_not_wait_for_a_grandchild_holding_the_pipes() {
    let (osl, _) = layer(
        SecurityPolicy::deny_all()
            .grant(Grant::program("sh"))
            .limits(Limits {
                // Far past the test's patience: waiting for it fails the test.
                max_duration: Duration::from_secs(3600),
                ..Limits::default()
            }),
    );
    let system = system();
    let actor = process_actor(&system, &osl, "owner");
    let (lines, mut received) = collector(&system);
    let spec = ProcessSpec::new("sh")
        .args(["-c", "setsid sleep 600 & echo $!; exit 0"])
        .stream_to(lines);
    let (_, sh) = start(&actor, spec).await;
    let grandchild: u32 = next_line(&mut received).await.line.parse().unwrap();
    let grandchild = Tracked::alive(grandchild);
    // `sh` has exited; only the grandchild holds the pipes now.
    exited(sh).await;

    assert!(actor.stop());
    tokio::time::timeout(PATIENCE, actor.wait_for_exit())
        .await
        .expect("the actor stops without waiting for the pipes to close");
    // Out of reach of the layer (its own session): clean up by hand.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(grandchild.pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Forwards lines to a channel, like [`Collector`], but through a bounded
/// mailbox that blocks senders when full.
fn slow_collector(
    system: &ActorSystem,
) -> (ActorRef<OutputLine>, mpsc::UnboundedReceiver<OutputLine>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let recipient = system
        .spawn_builder()
        .bounded(16, Backpressure::Block)
        .spawn(Collector(tx))
        .expect("spawned");
    (recipient, rx)
}

/// Streamed output obeys the output cap too: `yes` streamed to a recipient
/// delivers at most `max_output_bytes` bytes of lines (it used to deliver
/// hundreds of megabytes), and the run reports stdout truncated.
#[tokio::test]
async fn streamed_output_obeys_the_output_cap() {
    const CAP: usize = 16 * 1024;
    let system = system();
    let actor = process_actor(&system, &sh_with_output_cap(CAP), "streamer");
    for (recipient, mut lines) in [collector(&system), slow_collector(&system)] {
        let yes = format!("{} | {} -n 200000", which("yes"), which("head"));
        let out = run(
            &actor,
            ProcessSpec::new("sh")
                .args(["-c", &yes])
                .stream_to(recipient.clone()),
        )
        .await
        .unwrap();
        assert!(out.stdout_truncated && out.stdout.len() == CAP, "{out:?}");
        // Every line was handed over before the run reported: a line told
        // now comes after the last of them.
        let end = OutputLine {
            process: out.process,
            stream: Stream::Stderr,
            line: "end of test".into(),
        };
        recipient.tell(end.clone()).await.unwrap();
        let mut streamed = 0;
        loop {
            let line = next_line(&mut lines).await;
            if line == end {
                break;
            }
            streamed += line.line.len() + 1;
            assert!(
                streamed <= CAP + 1,
                "streamed {streamed} bytes past the cap"
            );
        }
        assert!(streamed >= CAP, "streamed only {streamed} bytes");
    }
}

// ---------------------------------------------------------------------------
// The host dies: its children die with it
// ---------------------------------------------------------------------------

/// Set to `exit` or `wait` in the environment of a host process this test
/// binary starts (see [`host_process`]).
const HOST_MODE: &str = "AIRSSYS_OSL_TEST_HOST";

/// Not a test on its own: the body of a separate host process that the
/// tests below start from this test binary. It starts `sleep 600` through a
/// `ProcessActor`, prints the sleep's pid, then exits with
/// `std::process::exit` (no destructor runs) or waits to be killed.
#[test]
#[ignore = "the host process of the host-death tests; they run it"]
fn host_process() {
    let Ok(mode) = std::env::var(HOST_MODE) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (osl, _) = layer(SecurityPolicy::deny_all().grant(Grant::program("sleep")));
        let system = system();
        let actor = process_actor(&system, &osl, "host");
        let (_, pid) = start(&actor, ProcessSpec::new("sleep").arg("600")).await;
        // After libtest's own "test host_process ... " on the same line.
        println!("child-pid={pid}");
        use std::io::Write as _;
        std::io::stdout().flush().unwrap();
        if mode == "exit" {
            std::process::exit(0);
        }
        std::future::pending::<()>().await;
    });
}

/// Waits until the process `pid` has exited (a zombie counts), through a
/// pidfd: an event, not a poll.
async fn exited(pid: u32) {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; nothing else is touched.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid as i32, 0) };
    if fd < 0 {
        // Already gone (reaped): nothing to wait for.
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(nix::libc::ESRCH)
        );
        return;
    }
    // SAFETY: `fd` was just returned by pidfd_open and is owned here.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: the AsyncFd owns the descriptor, so it stays open while
    // registered.
    let fd = unsafe { tokio::io::unix::AsyncFd::register(fd) }
        .map_err(|e| e.to_string())
        .unwrap();
    let ready = tokio::time::timeout(PATIENCE, fd.readable())
        .await
        .unwrap_or_else(|_| panic!("pid {pid} is still running"));
    drop(ready.unwrap());
}

/// Starts this test binary as a host in `mode`; the pid of the child it
/// started, and the host.
fn start_host(mode: &str) -> (std::process::Child, u32) {
    use std::io::BufRead as _;
    let mut host = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "host_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOST_MODE, mode)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = host.stdout.take().unwrap();
    let child = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            let (_, pid) = line.split_once("child-pid=")?;
            Some(pid.parse().unwrap())
        })
        .expect("the host reports its child");
    (host, child)
}

/// A host that ends with `std::process::exit` takes its running programs
/// with it (the parent-death signal), instead of leaving them to PID 1.
#[tokio::test]
async fn children_die_when_the_host_exits_abruptly() {
    let (mut host, child) = start_host("exit");
    assert!(host.wait().unwrap().success());
    // (It may be gone already: the host exited right after reporting it.)
    exited(child).await;
}

/// The same when the host is terminated by a signal it does not handle.
#[tokio::test]
async fn children_die_when_the_host_is_killed_by_sigterm() {
    let (mut host, child) = start_host("wait");
    let child_tracked = Tracked::alive(child);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(host.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(!host.wait().unwrap().success());
    exited(child_tracked.pid).await;
}

/// A process actor keeps at most `max_processes` processes (running, or
/// ended and not yet waited for): a guest that starts and never waits
/// cannot pile up outputs. Waiting for one makes room.
#[tokio::test]
async fn processes_not_waited_for_are_bounded() {
    let (osl, _) = layer(
        SecurityPolicy::deny_all()
            .grant(Grant::program("sleep"))
            .limits(Limits {
                max_processes: 2,
                ..Limits::default()
            }),
    );
    let system = system();
    let actor = process_actor(&system, &osl, "hoarder");
    let (first, _) = start(&actor, ProcessSpec::new("sleep").arg("0")).await;
    let (second, _) = start(&actor, ProcessSpec::new("sleep").arg("600")).await;
    let refused = actor
        .ask(
            |reply| ProcessRequest::Start {
                spec: ProcessSpec::new("sleep").arg("600"),
                reply,
            },
            PATIENCE,
        )
        .await
        .unwrap();
    assert!(
        matches!(
            &refused,
            Err(OslError::Denied {
                rule: DenyRule::Limit {
                    name: "max_processes",
                    value: 2
                },
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(wait(&actor, first).await.unwrap().success());
    let (third, _) = start(&actor, ProcessSpec::new("sleep").arg("600")).await;
    for process in [second, third] {
        kill(&actor, process).await.unwrap();
        assert_eq!(wait(&actor, process).await.unwrap().signal, Some(9));
    }
}

/// A bare name granted but found in no absolute `PATH` directory is not
/// looked for anywhere else (not in the working directory): the run fails
/// with "not found".
#[tokio::test]
async fn a_granted_name_not_on_path_is_not_found() {
    let (osl, _) = layer(SecurityPolicy::deny_all().grant(Grant::program("airssys-no-such-tool")));
    let system = system();
    let actor = process_actor(&system, &osl, "runner");
    let failed = run(&actor, ProcessSpec::new("airssys-no-such-tool")).await;
    assert!(
        matches!(
            &failed,
            Err(OslError::Io {
                kind: std::io::ErrorKind::NotFound,
                ..
            })
        ),
        "{failed:?}"
    );
}
