//! The registry: names and services, released on every exit path, typed
//! lookups, address resolution, and register/unregister races.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use airssys_rt::address::{ActorAddress, PoolStrategy};
use airssys_rt::broker::RegistryError;
use airssys_rt::prelude::*;

fn system() -> ActorSystem {
    ActorSystem::new(SystemConfig::default()).expect("inside a runtime")
}

/// Counts its starts; answers with its own id.
struct Named {
    starts: Arc<AtomicU32>,
}

#[derive(Debug)]
struct WhoAreYou(ReplyTo<u64>);
impl Message for WhoAreYou {
    const MESSAGE_TYPE: &'static str = "test.who";
}

impl Actor for Named {
    type Message = WhoAreYou;
    type Error = Infallible;
    async fn pre_start(&mut self, _: &mut ActorContext<WhoAreYou>) -> Result<(), Infallible> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn handle_message(
        &mut self,
        WhoAreYou(reply): WhoAreYou,
        ctx: &mut ActorContext<WhoAreYou>,
    ) -> Result<(), Infallible> {
        let _ = reply.reply(ctx.id().as_u64());
        Ok(())
    }
}

fn named() -> Named {
    Named {
        starts: Arc::default(),
    }
}

#[tokio::test]
async fn a_taken_name_is_refused_before_the_second_actor_runs() {
    let system = system();
    let first = system
        .spawn_builder()
        .register("billing")
        .spawn(named())
        .unwrap();
    assert_eq!(first.name(), Some("billing"));
    let starts = Arc::new(AtomicU32::new(0));
    let refused = system
        .spawn_builder()
        .register("billing")
        .spawn(Named {
            starts: starts.clone(),
        })
        .unwrap_err();
    assert_eq!(
        refused,
        SystemError::Registry(RegistryError::NameTaken {
            name: "billing".into(),
            holder: first.id()
        })
    );
    assert!(refused.to_string().contains("taken by"), "{refused}");
    assert_eq!(
        system.actor_count(),
        1,
        "the refused actor was never started"
    );
    assert_eq!(starts.load(Ordering::SeqCst), 0);
    assert_eq!(
        system.registry().lookup::<WhoAreYou>("billing").unwrap(),
        first
    );
    assert_eq!(
        system.registry().lookup::<u64>("billing").unwrap_err(),
        RegistryError::WrongMessageType {
            name: "billing".into(),
            expected: "u64",
            registered: "test.who"
        }
    );
}

/// A child whose `pre_start` fails.
struct Broken;
impl Actor for Broken {
    type Message = u64;
    type Error = std::io::Error;
    async fn pre_start(&mut self, _: &mut ActorContext<u64>) -> Result<(), std::io::Error> {
        Err(std::io::Error::other("no config"))
    }
    async fn handle_message(
        &mut self,
        _: u64,
        _: &mut ActorContext<u64>,
    ) -> Result<(), std::io::Error> {
        Ok(())
    }
}

#[tokio::test]
async fn a_name_is_free_again_after_a_stop_a_kill_and_a_failed_start() {
    let system = system();
    let stopped = system
        .spawn_builder()
        .register("svc")
        .spawn(named())
        .unwrap();
    stopped.stop();
    stopped.wait_for_exit().await;
    assert!(matches!(
        system.registry().lookup::<WhoAreYou>("svc"),
        Err(RegistryError::UnknownName { .. })
    ));

    let killed = system
        .spawn_builder()
        .register("svc")
        .spawn(named())
        .unwrap();
    killed.kill();
    killed.wait_for_exit().await;

    let broken = system
        .spawn_builder()
        .register("svc")
        .spawn(Broken)
        .unwrap();
    assert!(matches!(broken.wait_for_exit().await, ExitReason::Error(_)));

    let last = system
        .spawn_builder()
        .register("svc")
        .spawn(named())
        .unwrap();
    assert_eq!(system.registry().lookup::<WhoAreYou>("svc").unwrap(), last);
    assert_eq!(system.registry().names(), [("svc".to_owned(), last.id())]);
    assert!(system.registry().unregister_name("svc"));
    assert!(!system.registry().unregister_name("svc"));
    assert!(system.registry().names().is_empty());
}

#[tokio::test]
async fn services_pick_members_by_key_and_forget_stopped_ones() {
    let system = system();
    let members: Vec<_> = (0..3).map(|_| system.spawn(named()).unwrap()).collect();
    for member in &members {
        system
            .registry()
            .register_service("shards", member)
            .unwrap();
    }
    let registry = system.registry();
    let pick = |key: &str| {
        registry
            .service_member::<WhoAreYou>("shards", Some(key))
            .unwrap()
    };
    let chosen: Vec<_> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|k| pick(k))
        .collect();
    let again: Vec<_> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|k| pick(k))
        .collect();
    assert_eq!(chosen, again, "a key keeps its member");
    let address = ActorAddress::Service {
        service: "shards".into(),
        key: Some("alice".into()),
    };
    assert_eq!(registry.resolve::<WhoAreYou>(&address).unwrap(), chosen[0]);

    for member in &members {
        member.stop();
        member.wait_for_exit().await;
    }
    assert_eq!(
        registry.service_members::<WhoAreYou>("shards").unwrap_err(),
        RegistryError::UnknownService {
            service: "shards".into()
        }
    );
}

#[tokio::test]
async fn addresses_resolve_to_registered_actors_only() {
    let system = system();
    let registry = system.registry();
    let named_actor = system
        .spawn_builder()
        .register("db")
        .spawn(named())
        .unwrap();
    let anonymous = system.spawn(named()).unwrap();
    assert_eq!(
        registry
            .resolve::<WhoAreYou>(&ActorAddress::named("db"))
            .unwrap(),
        named_actor
    );
    assert_eq!(
        registry
            .resolve::<WhoAreYou>(&ActorAddress::Id(named_actor.id()))
            .unwrap(),
        named_actor
    );
    assert_eq!(
        registry
            .resolve::<WhoAreYou>(&ActorAddress::Id(anonymous.id()))
            .unwrap_err(),
        RegistryError::NotRegistered {
            actor: anonymous.id()
        }
    );
    let pool = ActorAddress::Pool {
        pool: "workers".into(),
        strategy: PoolStrategy::RoundRobin,
    };
    assert!(matches!(
        registry.resolve::<WhoAreYou>(&pool),
        Err(RegistryError::UnknownPool { .. })
    ));
}

#[tokio::test]
async fn a_supervised_child_registered_by_name_is_found_after_each_restart() {
    let system = system();
    let mut events = system.supervision_events();
    let spec = SupervisorSpec::one_for_one()
        .intensity(10, Duration::from_secs(60))
        .child(ChildSpec::worker("db", named).register("db"));
    let _supervisor = system.start_supervisor(spec).await.unwrap();
    for _ in 0..3 {
        let db = system.registry().lookup::<WhoAreYou>("db").unwrap();
        let id = db.ask(WhoAreYou, Duration::from_secs(30)).await.unwrap();
        assert_eq!(id, db.id().as_u64());
        db.kill();
        loop {
            match events.recv().await.unwrap() {
                airssys_rt::supervisor::SupervisionEvent::ChildRestarted { .. } => break,
                _ => continue,
            }
        }
        let replacement = system.registry().lookup::<WhoAreYou>("db").unwrap();
        assert_ne!(
            replacement.id(),
            db.id(),
            "the name leads to the new instance"
        );
    }
}

/// Many tasks race to register, use and release the same few names. A name
/// never has two live holders, a lookup never returns a stopped actor's
/// successor by mistake, and nothing is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_register_and_release_never_double_books_a_name() {
    let system = system();
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let system = system.clone();
            tokio::spawn(async move {
                let mut held = 0;
                for round in 0..300 {
                    let name = format!("name-{}", (task + round) % 3);
                    match system.spawn_builder().register(name.clone()).spawn(named()) {
                        Ok(actor) => {
                            held += 1;
                            // While it lives, the name is its own.
                            let found = system.registry().lookup::<WhoAreYou>(&name).unwrap();
                            assert_eq!(found, actor, "{name} double-booked");
                            if round % 2 == 0 {
                                actor.stop();
                            } else {
                                actor.kill();
                            }
                            actor.wait_for_exit().await;
                        }
                        Err(SystemError::Registry(RegistryError::NameTaken { holder, .. })) => {
                            assert_ne!(holder.as_u64(), 0);
                        }
                        Err(other) => panic!("unexpected {other}"),
                    }
                }
                held
            })
        })
        .collect();
    let mut held = 0;
    for task in tasks {
        held += task.await.unwrap();
    }
    assert!(held > 0);
    assert!(system.registry().names().is_empty(), "every name released");
    assert_eq!(system.actor_count(), 0);
}
