//! Pools: each strategy's distribution, members supervised and restarted,
//! resizing, addressing through the registry and the broker, and a stress
//! run that kills members under load and loses no message.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use airssys_rt::address::{ActorAddress, PoolError, PoolSpec, PoolStrategy};
use airssys_rt::broker::{InMemoryMessageBroker, MessageBroker, RegistryError};
use airssys_rt::prelude::*;
use airssys_rt::supervisor::SupervisionEvent;
use airssys_rt::util::ActorId;
use tokio::sync::oneshot;

/// Hang guard for waits that must end; never reached in a passing run.
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Debug)]
enum Job {
    /// Counted.
    Hit,
    /// How many `Hit`s this member handled.
    Count(ReplyTo<u64>),
    /// Which member this is.
    Who(ReplyTo<ActorId>),
    /// Routed by `key`; answers with the member.
    Keyed(String, ReplyTo<ActorId>),
    /// Says it started, then holds the member until released.
    Hold {
        started: oneshot::Sender<()>,
        release: oneshot::Receiver<()>,
    },
}

impl Message for Job {
    const MESSAGE_TYPE: &'static str = "test.job";
    fn routing_key(&self) -> Option<&str> {
        match self {
            Job::Keyed(key, _) => Some(key),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Member {
    hits: u64,
    handled: Arc<AtomicU64>,
}

impl Actor for Member {
    type Message = Job;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        job: Job,
        ctx: &mut ActorContext<Job>,
    ) -> Result<(), Infallible> {
        match job {
            Job::Hit => {
                self.hits += 1;
                self.handled.fetch_add(1, Ordering::Relaxed);
            }
            Job::Count(reply) => drop(reply.reply(self.hits)),
            Job::Who(reply) | Job::Keyed(_, reply) => drop(reply.reply(ctx.id())),
            Job::Hold { started, release } => {
                let _ = started.send(());
                let _ = release.await;
            }
        }
        Ok(())
    }
}

fn system() -> ActorSystem {
    ActorSystem::new(SystemConfig::default()).expect("inside a runtime")
}

async fn hits(member: &ActorRef<Job>) -> u64 {
    member.ask(Job::Count, PATIENCE).await.unwrap()
}

#[tokio::test]
async fn round_robin_gives_every_member_exactly_its_turn() {
    let system = system();
    let pool = system
        .start_pool(PoolSpec::new("rr", 4, Member::default))
        .await
        .unwrap();
    for _ in 0..40 {
        pool.tell(Job::Hit).await.unwrap();
    }
    for member in pool.members() {
        assert_eq!(hits(&member).await, 10);
    }
}

#[tokio::test]
async fn least_connections_prefers_the_idle_member() {
    let system = system();
    let pool = system
        .start_pool(
            PoolSpec::new("lc", 3, Member::default).strategy(PoolStrategy::LeastConnections),
        )
        .await
        .unwrap();
    let members = pool.members();
    let mut releases = Vec::new();
    // Members 0 and 1 are busy with a held job and have one more queued.
    for busy in &members[..2] {
        let (started, started_rx) = oneshot::channel();
        let (release_tx, release) = oneshot::channel();
        busy.tell(Job::Hold { started, release }).await.unwrap();
        started_rx.await.unwrap();
        busy.tell(Job::Hit).await.unwrap();
        releases.push(release_tx);
    }
    for _ in 0..10 {
        assert_eq!(pool.route(&Job::Hit).unwrap(), members[2]);
    }
    // Once member 2 has more queued than the others, it is passed over.
    let (started, started_rx) = oneshot::channel();
    let (release_tx, release) = oneshot::channel();
    members[2]
        .tell(Job::Hold { started, release })
        .await
        .unwrap();
    started_rx.await.unwrap();
    for _ in 0..2 {
        members[2].tell(Job::Hit).await.unwrap();
    }
    let chosen = pool.route(&Job::Hit).unwrap();
    assert_ne!(chosen, members[2]);
    for release in releases.into_iter().chain([release_tx]) {
        let _ = release.send(());
    }
}

/// A one-member pool whose mailbox holds one message and applies `backpressure`.
async fn one_slot_pool(
    system: &ActorSystem,
    name: &str,
    backpressure: Backpressure,
) -> airssys_rt::address::ActorPool<Job> {
    system
        .start_pool(
            PoolSpec::new(name, 1, Member::default)
                .mailbox(MailboxConfig::bounded(1, backpressure)),
        )
        .await
        .unwrap()
}

/// Holds a one-member pool's member inside a `Hold` until the returned
/// sender is dropped or used.
async fn hold(pool: &airssys_rt::address::ActorPool<Job>) -> oneshot::Sender<()> {
    let (started, running) = oneshot::channel();
    let (release, held) = oneshot::channel();
    pool.tell(Job::Hold {
        started,
        release: held,
    })
    .await
    .unwrap();
    running.await.unwrap();
    release
}

#[tokio::test]
async fn a_full_member_is_reported_or_waited_for_by_its_backpressure() {
    let system = system();
    // `Reject`: the pool reports the full member and gives the message back.
    let rejecting = one_slot_pool(&system, "full-reject", Backpressure::Reject).await;
    let release = hold(&rejecting).await;
    rejecting.tell(Job::Hit).await.unwrap();
    let refused = rejecting.tell(Job::Hit).await.unwrap_err();
    let member = rejecting.members()[0].id();
    assert!(
        matches!(refused.error(), PoolError::MailboxFull { member: m, .. } if m == &member),
        "{refused:?}"
    );
    assert!(matches!(refused.into_message(), Job::Hit));
    drop(release);

    // `Block`: the pool's tell waits for room, then delivers.
    let blocking = one_slot_pool(&system, "full-block", Backpressure::Block).await;
    let release = hold(&blocking).await;
    blocking.tell(Job::Hit).await.unwrap();
    let mut waiting = std::pin::pin!(blocking.tell(Job::Hit));
    assert!(
        futures::poll!(waiting.as_mut()).is_pending(),
        "waits for room"
    );
    drop(release);
    tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("room appeared")
        .unwrap();
    assert_eq!(hits(&blocking.members()[0]).await, 2);
}

#[tokio::test]
async fn random_reaches_every_member() {
    let system = system();
    let pool = system
        .start_pool(PoolSpec::new("rand", 4, Member::default).strategy(PoolStrategy::Random))
        .await
        .unwrap();
    for _ in 0..400 {
        pool.tell(Job::Hit).await.unwrap();
    }
    let mut total = 0;
    for member in pool.members() {
        let hits = hits(&member).await;
        // Missing a member in 400 fair draws has probability 4·(3/4)^400.
        assert!(hits > 0, "a member got nothing");
        total += hits;
    }
    assert_eq!(total, 400);
}

async fn owners(pool: &airssys_rt::address::ActorPool<Job>, keys: usize) -> Vec<ActorId> {
    let mut owners = Vec::with_capacity(keys);
    for key in 0..keys {
        let (port, _reply) = oneshot::channel();
        let job = Job::Keyed(format!("user-{key}"), port.into());
        owners.push(pool.route(&job).unwrap().id());
    }
    owners
}

#[tokio::test]
async fn consistent_hash_keeps_keys_in_place_when_a_member_is_added() {
    const KEYS: usize = 4_000;
    let system = system();
    let pool = system
        .start_pool(
            PoolSpec::new("ch", 4, Member::default)
                .strategy(PoolStrategy::ConsistentHash("users".into())),
        )
        .await
        .unwrap();
    let before = owners(&pool, KEYS).await;
    // The member that answers is the one the ring names, every time.
    for key in [0, 7, 99] {
        let id = pool
            .ask(|r| Job::Keyed(format!("user-{key}"), r), PATIENCE)
            .await
            .unwrap();
        assert_eq!(id, before[key]);
    }
    pool.resize(5).await.unwrap();
    let newcomer = pool.members()[4].id();
    let after = owners(&pool, KEYS).await;
    let moved: Vec<usize> = (0..KEYS).filter(|&k| before[k] != after[k]).collect();
    assert!(
        moved.iter().all(|&k| after[k] == newcomer),
        "a key moved between old members"
    );
    let share = KEYS / 5;
    assert!(
        moved.len() > share / 2 && moved.len() < share * 2,
        "{} keys moved; an even share is {share}",
        moved.len()
    );
    // A message without a key cannot be hashed; it comes back.
    let refused = pool.tell(Job::Hit).await.unwrap_err();
    assert!(
        matches!(refused.error(), PoolError::NoRoutingKey { .. }),
        "{refused}"
    );
    assert!(matches!(refused.into_message(), Job::Hit));
}

async fn next_restart(events: &mut airssys_rt::supervisor::SupervisionEvents) -> ActorId {
    loop {
        match tokio::time::timeout(PATIENCE, events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            SupervisionEvent::ChildRestarted { actor, .. } => return actor,
            _ => continue,
        }
    }
}

#[tokio::test]
async fn a_failed_member_is_restarted_and_takes_its_slot_back() {
    let system = system();
    let mut events = system.supervision_events();
    let pool = system
        .start_pool(PoolSpec::new("heal", 2, Member::default))
        .await
        .unwrap();
    let old = pool.members();
    old[0].kill();
    let restarted = next_restart(&mut events).await;
    let now = pool.members();
    assert_eq!(now[0].id(), restarted);
    assert_eq!(now[1], old[1]);
    let mut answered = HashSet::new();
    for _ in 0..4 {
        answered.insert(pool.ask(Job::Who, PATIENCE).await.unwrap());
    }
    assert_eq!(answered, HashSet::from([restarted, old[1].id()]));
}

#[tokio::test]
async fn while_a_member_is_down_its_turns_go_to_the_live_ones() {
    let system = system();
    let pool = system
        .start_pool(PoolSpec::new("down", 3, Member::default))
        .await
        .unwrap();
    let members = pool.members();
    pool.supervisor().terminate_child("down/1").await.unwrap();
    for _ in 0..30 {
        pool.tell(Job::Hit).await.unwrap();
    }
    let live = [hits(&members[0]).await, hits(&members[2]).await];
    assert_eq!(live.iter().sum::<u64>(), 30, "{live:?}");
    pool.supervisor().restart_child("down/1").await.unwrap();
    let back = pool.members()[1].clone();
    assert_ne!(back, members[1]);
    for _ in 0..3 {
        pool.tell(Job::Hit).await.unwrap();
    }
    assert!(
        hits(&back).await > 0,
        "the restarted member gets turns again"
    );
}

#[tokio::test]
async fn resizing_starts_and_stops_supervised_members() {
    let system = system();
    let pool = system
        .start_pool(PoolSpec::new("elastic", 2, Member::default))
        .await
        .unwrap();
    pool.resize(5).await.unwrap();
    assert_eq!(pool.len(), 5);
    assert_eq!(pool.supervisor().count_children().await.unwrap().active, 5);
    let removed = pool.members()[3..].to_vec();
    pool.resize(1).await.unwrap();
    assert_eq!(pool.len(), 1);
    assert_eq!(pool.supervisor().count_children().await.unwrap().specs, 1);
    for member in removed {
        assert_eq!(member.wait_for_exit().await, ExitReason::Shutdown);
    }
    let names: Vec<String> = system
        .registry()
        .names()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["elastic/0"]);
    for _ in 0..3 {
        pool.tell(Job::Hit).await.unwrap();
    }
    assert_eq!(hits(&pool.members()[0]).await, 3);
    pool.resize(0).await.unwrap();
    let refused = pool.tell(Job::Hit).await.unwrap_err();
    assert!(
        matches!(refused.error(), PoolError::NoLiveMember { .. }),
        "{refused}"
    );
}

#[tokio::test]
async fn a_pool_is_found_by_address_and_its_name_is_released_on_shutdown() {
    let system = system();
    let pool = system
        .start_pool(PoolSpec::new("svc", 2, Member::default))
        .await
        .unwrap();
    let taken = system
        .start_pool(PoolSpec::new("svc", 1, Member::default))
        .await
        .unwrap_err();
    assert!(matches!(taken, PoolError::NameTaken { .. }), "{taken}");
    assert_eq!(pool.len(), 2, "the refused pool left the first alone");

    let address = ActorAddress::Pool {
        pool: "svc".into(),
        strategy: PoolStrategy::RoundRobin,
    };
    let members: HashSet<ActorId> = pool.members().iter().map(ActorRef::id).collect();
    let mut reached = HashSet::new();
    for _ in 0..2 {
        reached.insert(system.registry().resolve::<Job>(&address).unwrap().id());
    }
    assert_eq!(
        reached, members,
        "round robin through the address reaches both"
    );
    assert!(matches!(
        system.registry().resolve::<u64>(&address),
        Err(RegistryError::WrongMessageType { .. })
    ));

    let broker = InMemoryMessageBroker::<Job, ()>::new(&system);
    broker
        .send(MessageEnvelope::new(address.clone(), Job::Hit))
        .await
        .unwrap();

    pool.shutdown().await;
    assert!(matches!(
        system.registry().resolve::<Job>(&address),
        Err(RegistryError::UnknownPool { .. })
    ));
    let again = system
        .start_pool(PoolSpec::new("svc", 1, Member::default))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
}

/// Senders on two threads keep telling while members are killed and
/// restarted: every message is handled, dead-lettered (queued at a killed
/// member) or handed back — none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_members_under_load_loses_no_message() {
    const SENDERS: u64 = 4;
    const EACH: u64 = 2_000;
    let system = system();
    let mut letters = system.dead_letters().subscribe();
    let handled = Arc::new(AtomicU64::new(0));
    let counter = handled.clone();
    let pool = system
        .start_pool(
            PoolSpec::new("load", 4, move || Member {
                hits: 0,
                handled: counter.clone(),
            })
            .strategy(PoolStrategy::LeastConnections)
            .intensity(1_000, Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut returned = 0u64;
                for _ in 0..EACH {
                    if pool.tell(Job::Hit).await.is_err() {
                        returned += 1;
                    }
                }
                returned
            })
        })
        .collect();
    let killer = {
        let pool = pool.clone();
        tokio::spawn(async move {
            for round in 0..50 {
                let members = pool.members();
                members[round % members.len()].kill();
                tokio::task::yield_now().await;
            }
        })
    };
    let mut returned = 0;
    for sender in senders {
        returned += sender.await.unwrap();
    }
    killer.await.unwrap();
    // Shutting down hands what is still queued to the dead letters.
    pool.shutdown().await;
    let mut dead = 0;
    while let Some(letter) = letters.try_recv() {
        // Only jobs count (a supervisor may also miss a late exit notice).
        dead += u64::from(letter.message_type == Job::MESSAGE_TYPE);
    }
    let total = handled.load(Ordering::Relaxed) + dead + returned;
    assert_eq!(total, SENDERS * EACH, "handled + dead letters + returned");
    assert!(handled.load(Ordering::Relaxed) > 0);
}

/// A pool whose supervisor gave up says so, in the send error and in its
/// status; one that was shut down says that instead.
#[tokio::test]
async fn a_pool_that_gave_up_says_so_and_a_stopped_one_says_stopped() {
    use airssys_rt::address::PoolStatus;

    let system = system();
    let pool = system
        .start_pool(
            PoolSpec::new("fragile", 2, Member::default).intensity(1, Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert_eq!(
        pool.status(),
        PoolStatus::Running {
            members: 2,
            live: 2
        }
    );
    // Two crashes within the window: one restart more than it allows.
    for member in pool.members() {
        member.kill();
    }
    pool.supervisor().wait_for_exit().await;
    let PoolStatus::GaveUp(failure) = pool.status() else {
        panic!("{:?}", pool.status());
    };
    assert_eq!(failure.supervisor, pool.supervisor().id());
    let refused = pool.tell(Job::Hit).await.unwrap_err();
    assert!(
        matches!(refused.error(), PoolError::GaveUp { pool, .. } if pool == "fragile"),
        "{refused}"
    );
    assert!(refused.to_string().contains("gave up"), "{refused}");
    assert!(
        matches!(refused.into_message(), Job::Hit),
        "the job comes back"
    );

    let calm = system
        .start_pool(PoolSpec::new("calm", 1, Member::default))
        .await
        .unwrap();
    calm.shutdown().await;
    assert_eq!(calm.status(), PoolStatus::Stopped);
    let refused = calm.tell(Job::Hit).await.unwrap_err();
    assert!(
        matches!(refused.error(), PoolError::Stopped { .. }),
        "{refused}"
    );
}

/// A pool can be a child of a user's supervisor: when it gives up, its
/// parent starts it again under the same name, and a handle to the old
/// pool forwards to the new one.
#[tokio::test]
async fn a_pool_under_a_supervisor_is_started_again_when_it_gives_up() {
    use airssys_rt::address::PoolStatus;
    use airssys_rt::supervisor::{ChildKind, SupervisorSpec};

    let system = system();
    let mut events = system.supervision_events();
    let handled = Arc::new(AtomicU64::new(0));
    let counter = handled.clone();
    let app = system
        .start_supervisor(
            SupervisorSpec::one_for_one().name("app").child(
                PoolSpec::new("nested", 2, move || Member {
                    hits: 0,
                    handled: counter.clone(),
                })
                .intensity(0, Duration::from_secs(60)),
            ),
        )
        .await
        .unwrap();
    let children = app.which_children().await.unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(
        (children[0].id.as_str(), children[0].kind),
        ("nested", ChildKind::Supervisor)
    );
    let first = system.registry().pool::<Job>("nested").unwrap();
    // One crash is more than an intensity of 0 allows: the pool gives up.
    first.members()[0].kill();
    let restarted = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(SupervisionEvent::ChildRestarted {
                supervisor, child, ..
            }) = events.recv().await
                && supervisor == app.id()
            {
                return child;
            }
        }
    })
    .await
    .expect("the parent restarts the pool");
    assert_eq!(restarted, "nested");
    let second = system.registry().pool::<Job>("nested").unwrap();
    assert_ne!(
        second.supervisor().id(),
        first.supervisor().id(),
        "a new pool"
    );
    assert!(!first.supervisor().is_alive());
    // The old handle forwards to the new pool.
    assert!(matches!(
        first.status(),
        PoolStatus::Running { members: 2, .. }
    ));
    first.tell(Job::Hit).await.unwrap();
    let who = first.ask(Job::Who, PATIENCE).await.unwrap();
    assert!(second.members().iter().any(|m| m.id() == who));
    let mut hits = 0;
    for member in second.members() {
        hits += member.ask(Job::Count, PATIENCE).await.unwrap();
    }
    assert_eq!(hits, 1, "the job told to the old handle was handled once");
    assert_eq!(handled.load(Ordering::Relaxed), 1);
    system.shutdown(PATIENCE).await;
}

/// A job for the work-sharing tests: `Poison` makes its member panic.
#[derive(Debug)]
enum Task {
    Work(u32),
    Poison(u32),
    /// Holds its member until released.
    Hold(oneshot::Sender<()>, oneshot::Receiver<()>),
}

impl Message for Task {
    const MESSAGE_TYPE: &'static str = "test.task";
}

/// Reports each `Work` it finishes.
struct Worker(tokio::sync::mpsc::UnboundedSender<u32>);

impl Actor for Worker {
    type Message = Task;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        task: Task,
        _: &mut ActorContext<Task>,
    ) -> Result<(), Infallible> {
        match task {
            Task::Work(n) => drop(self.0.send(n)),
            Task::Poison(n) => panic!("poison job {n}"),
            Task::Hold(started, release) => {
                let _ = started.send(());
                let _ = release.await;
            }
        }
        Ok(())
    }
}

/// A work-sharing pool of `members` workers over a `queue`, and the
/// stream of the jobs they finish.
async fn work_sharing_pool(
    system: &ActorSystem,
    name: &str,
    members: usize,
    queue: MailboxConfig,
) -> (
    airssys_rt::address::ActorPool<Task>,
    tokio::sync::mpsc::UnboundedReceiver<u32>,
) {
    let (done, finished) = tokio::sync::mpsc::unbounded_channel();
    let spec = PoolSpec::new(name.to_owned(), members, move || Worker(done.clone()))
        .strategy(PoolStrategy::WorkSharing)
        .mailbox(queue)
        .intensity(1_000, Duration::from_secs(60));
    (system.start_pool(spec).await.unwrap(), finished)
}

/// The new user's pipeline: 300 jobs, 4 members, a `bounded(4, Block)`
/// queue, 8 poison jobs. Every good job is handled exactly once; each
/// poison job is one dead letter that names the crash; nothing else is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_sharing_pool_loses_only_the_jobs_that_crashed_a_member() {
    const JOBS: u32 = 300;
    let system = system();
    let mut letters = system.dead_letters().subscribe();
    let (pool, mut finished) = work_sharing_pool(
        &system,
        "pipeline",
        4,
        MailboxConfig::bounded(4, Backpressure::Block),
    )
    .await;
    let poison = |n: u32| n % 37 == 5; // 8 of 300
    for n in 0..JOBS {
        let task = if poison(n) {
            Task::Poison(n)
        } else {
            Task::Work(n)
        };
        pool.tell(task).await.unwrap();
    }
    let good = (0..JOBS).filter(|&n| !poison(n)).count();
    let mut handled = HashSet::new();
    while handled.len() < good {
        let n = tokio::time::timeout(PATIENCE, finished.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(handled.insert(n), "job {n} handled twice");
    }
    let mut crashed = Vec::new();
    while crashed.len() < 8 {
        let letter = tokio::time::timeout(PATIENCE, letters.recv())
            .await
            .unwrap()
            .unwrap();
        if letter.message_type == Task::MESSAGE_TYPE {
            assert_eq!(
                letter.reason,
                airssys_rt::mailbox::DeadLetterReason::ActorCrashed
            );
            crashed.push(letter.exit.expect("names the crash").to_string());
        }
    }
    assert!(
        crashed
            .iter()
            .all(|exit| exit.starts_with("panic: poison job")),
        "{crashed:?}"
    );
    assert!(handled.iter().all(|&n| !poison(n)));
    pool.shutdown().await;
    while let Some(letter) = letters.try_recv() {
        assert_ne!(letter.message_type, Task::MESSAGE_TYPE, "lost: {letter}");
    }
}

/// An idle member always gets the next job: while one member is held by a
/// long job, the others handle everything queued behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_member_takes_the_next_job_while_another_is_busy() {
    let system = system();
    let (pool, mut finished) =
        work_sharing_pool(&system, "busy", 2, MailboxConfig::unbounded()).await;
    let (started, is_started) = oneshot::channel();
    let (release, released) = oneshot::channel();
    pool.tell(Task::Hold(started, released)).await.unwrap();
    is_started.await.unwrap();
    for n in 0..20 {
        pool.tell(Task::Work(n)).await.unwrap();
    }
    for n in 0..20 {
        let got = tokio::time::timeout(PATIENCE, finished.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, n, "one free member: in queue order");
    }
    release.send(()).unwrap();
}

/// Shutting a work-sharing pool down records what its queue still held
/// (as `ActorStopped`), and later sends are refused with `Stopped`.
#[tokio::test(start_paused = true)]
async fn a_work_sharing_pool_shut_down_records_its_queue_and_refuses_more() {
    let system = system();
    let (pool, _finished) =
        work_sharing_pool(&system, "closing", 1, MailboxConfig::unbounded()).await;
    let (started, is_started) = oneshot::channel();
    let (_release, released) = oneshot::channel::<()>();
    pool.tell(Task::Hold(started, released)).await.unwrap();
    is_started.await.unwrap();
    for n in 0..5 {
        pool.tell(Task::Work(n)).await.unwrap();
    }
    let before = system.dead_letters().total();
    // The held member ignores the shutdown until killed; its job is the one
    // being handled (killed with it, as for any actor).
    pool.shutdown().await;
    let dead = system.dead_letters().total() - before;
    assert_eq!(dead, 5, "the queued jobs");
    let refused = pool.tell(Task::Work(9)).await.unwrap_err();
    assert!(
        matches!(refused.error(), PoolError::Stopped { .. }),
        "{refused}"
    );
}

/// A job of the conservation property: `poison` crashes its member.
#[derive(Debug)]
struct Numbered {
    id: u32,
    poison: bool,
    key: String,
}

impl Message for Numbered {
    const MESSAGE_TYPE: &'static str = "test.numbered";
    fn routing_key(&self) -> Option<&str> {
        Some(&self.key)
    }
}

/// Reports each good job it handles; panics on poison.
struct Handler(tokio::sync::mpsc::UnboundedSender<u32>);

impl Actor for Handler {
    type Message = Numbered;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        job: Numbered,
        _: &mut ActorContext<Numbered>,
    ) -> Result<(), Infallible> {
        assert!(!job.poison, "poison job {}", job.id);
        let _ = self.0.send(job.id);
        Ok(())
    }
}

fn any_strategy() -> impl proptest::strategy::Strategy<Value = PoolStrategy> {
    use proptest::prelude::*;
    prop_oneof![
        Just(PoolStrategy::RoundRobin),
        Just(PoolStrategy::LeastConnections),
        Just(PoolStrategy::Random),
        Just(PoolStrategy::ConsistentHash("keys".into())),
        Just(PoolStrategy::WorkSharing),
    ]
}

fn any_mailbox() -> impl proptest::strategy::Strategy<Value = MailboxConfig> {
    use proptest::prelude::*;
    let bounded = (1usize..6, 0..4usize).prop_map(|(capacity, strategy)| {
        let backpressure = [
            Backpressure::Block,
            Backpressure::Reject,
            Backpressure::DropOldest,
            Backpressure::DropNewest,
        ][strategy];
        MailboxConfig::bounded(capacity, backpressure)
    });
    prop_oneof![Just(MailboxConfig::unbounded()), bounded].prop_flat_map(|config| {
        prop_oneof![
            Just(config),
            Just(config.with_kind(airssys_rt::mailbox::MailboxKind::Priority))
        ]
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(40))]

    /// Conservation, exactly: every job is handled, dead-lettered once (by
    /// value, or as the job a member crashed on), or handed back to its
    /// sender. A work-sharing pool, or a keyed pool whose members keep their
    /// mailboxes, with room for everything (or a wait for it) loses exactly
    /// the poison jobs.
    #[test]
    fn every_job_is_handled_dead_lettered_once_or_handed_back(
        strategy in any_strategy(),
        mailbox in any_mailbox(),
        poison in proptest::collection::vec(proptest::bool::weighted(0.1), 10..60),
        members in 1usize..4,
        keep_mailboxes in proptest::bool::ANY,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let system = system();
            let mut reclaimed = system.dead_letters().reclaim::<Numbered>();
            let (done, mut handled_ids) = tokio::sync::mpsc::unbounded_channel();
            let pool = system
                .start_pool(
                    PoolSpec::new("conserve", members, move || Handler(done.clone()))
                        .strategy(strategy.clone())
                        .mailbox(mailbox)
                        .keep_mailboxes(keep_mailboxes)
                        .intensity(1_000, Duration::from_secs(60)),
                )
                .await
                .unwrap();
            let mut letters = system.dead_letters().subscribe();
            let mut handed_back = HashSet::new();
            for (id, &poison) in poison.iter().enumerate() {
                let id = id as u32;
                let job = Numbered { id, poison, key: format!("k{}", id % 7) };
                if let Err(refused) = pool.tell(job).await {
                    assert!(handed_back.insert(refused.into_message().id));
                }
            }
            // Every job settles without a shutdown: handled, dead-lettered
            // (by value, or as the job a member crashed on), or handed back.
            // A job lost silently never settles (the wait fails).
            let (mut handled, mut dead, mut crashed_in_handler) = (HashSet::new(), HashSet::new(), 0);
            while handled.len() + dead.len() + handed_back.len() + crashed_in_handler < poison.len() {
                let settled = tokio::time::timeout(PATIENCE, async {
                    tokio::select! {
                        Some(id) = handled_ids.recv() => assert!(handled.insert(id), "{id} handled twice"),
                        Some(letter) = reclaimed.recv() => {
                            assert!(dead.insert(letter.message.id), "{} dead-lettered twice", letter.message.id);
                        }
                        Some(letter) = letters.recv() => {
                            if letter.message.starts_with("(being handled") {
                                crashed_in_handler += 1;
                            }
                        }
                    }
                })
                .await;
                assert!(
                    settled.is_ok(),
                    "{strategy} {mailbox:?}: a job never settled (handled {} dead {} back {} crashed {crashed_in_handler})",
                    handled.len(), dead.len(), handed_back.len()
                );
            }
            pool.shutdown().await;
            assert!(handled_ids.try_recv().is_err() && reclaimed.try_recv().is_none(), "nothing more");
            let poisoned: HashSet<u32> =
                (0..poison.len() as u32).filter(|&id| poison[id as usize]).collect();
            assert!(handled.is_disjoint(&dead) && handled.is_disjoint(&handed_back) && dead.is_disjoint(&handed_back));
            assert!(handled.is_disjoint(&poisoned), "a poison job was handled");
            assert!(crashed_in_handler <= poisoned.len());
            let shares_or_keeps = strategy == PoolStrategy::WorkSharing || keep_mailboxes;
            let room = mailbox.capacity.is_none() || mailbox.backpressure == Backpressure::Block;
            if shares_or_keeps && room {
                // Only the jobs that crashed a member are lost.
                assert!(dead.is_empty() && handed_back.is_empty(), "dead {dead:?} back {handed_back:?}");
                assert_eq!(crashed_in_handler, poisoned.len());
            }
        });
    }
}
