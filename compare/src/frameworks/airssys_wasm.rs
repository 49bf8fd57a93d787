//! airssys-rt's WebAssembly actors (feature `wasm`) against native actors
//! doing the same work: a counter that adds the first byte of each message,
//! answers requests with its total (8 little-endian bytes) and fails on the
//! poison byte 255. Both sides take the same message type ([`WasmMessage`]),
//! so what differs is only where the behaviour runs.

use std::fmt;
use std::sync::Once;
use std::time::{Duration, Instant};

use airssys_rt::integration::wasm::{WasmActor, WasmMessage, WasmSpec};
use airssys_rt::prelude::*;
use tokio::sync::mpsc;

use super::airssys::Airssys;
use crate::workload::Sample;

const PATIENCE: Duration = Duration::from_secs(60);

/// The byte that makes either counter fail.
const POISON: u8 = 255;

/// The native counter's panic message (kept off stderr by [`quiet_poison`]).
const POISONED: &str = "compare: poison message";

/// The guest (`tests/wasm/trap.wat`, also run by `examples/wasm.rs`): adds the first byte of each
/// message to its total and answers with the total; traps (`unreachable`)
/// on byte 255.
const COUNTER_WAT: &str = include_str!("../../../tests/wasm/trap.wat");

/// The compiled guest. Identical bytes compile once per process, so only
/// the first call (in a warm-up, never inside a timed section) compiles.
fn counter_spec() -> WasmSpec {
    WasmSpec::from_wat(COUNTER_WAT).expect("the counter guest compiles")
}

/// Which counter a workload runs, and how it fails on the poison byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Native; `panic!`s on the poison byte (caught by the runtime: exit
    /// reason `Panic`).
    NativePanic,
    /// Native; returns `Err` on the poison byte, escalated to the
    /// supervisor: the path a guest trap takes.
    NativeError,
    /// A [`WasmActor`] running [`COUNTER_WAT`]; the guest traps.
    Wasm,
}

/// The native counter's failure.
#[derive(Debug)]
pub struct Poisoned;

impl fmt::Display for Poisoned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(POISONED)
    }
}

impl std::error::Error for Poisoned {}

/// The guest's behaviour written in Rust.
struct NativeCounter {
    total: u64,
    panics: bool,
}

impl Actor for NativeCounter {
    type Message = WasmMessage;
    type Error = Poisoned;

    async fn handle_message(
        &mut self,
        message: WasmMessage,
        _: &mut ActorContext<WasmMessage>,
    ) -> Result<(), Poisoned> {
        let (bytes, reply) = match message {
            WasmMessage::Tell(bytes) => (bytes, None),
            WasmMessage::Ask(bytes, reply) => (bytes, Some(reply)),
        };
        let byte = bytes.first().copied().unwrap_or(0);
        if byte == POISON {
            if self.panics {
                std::panic::panic_any(POISONED);
            }
            return Err(Poisoned);
        }
        self.total += u64::from(byte);
        if let Some(reply) = reply {
            let _ = reply.reply(Ok(self.total.to_le_bytes().to_vec()));
        }
        Ok(())
    }
}

/// Any actor, announcing each new instance from `pre_start` once the inner
/// actor has started (for the guest: once it is instantiated), the way the
/// side-by-side restart workload's `Fragile` does.
struct Announced<A: Actor> {
    inner: A,
    announce: mpsc::UnboundedSender<ActorRef<A::Message>>,
}

impl<A: Actor> Actor for Announced<A> {
    type Message = A::Message;
    type Error = A::Error;

    async fn pre_start(&mut self, ctx: &mut ActorContext<A::Message>) -> Result<(), A::Error> {
        self.inner.pre_start(ctx).await?;
        let _ = self.announce.send(ctx.myself().clone());
        Ok(())
    }

    async fn handle_message(
        &mut self,
        message: A::Message,
        ctx: &mut ActorContext<A::Message>,
    ) -> Result<(), A::Error> {
        self.inner.handle_message(message, ctx).await
    }

    async fn post_stop(&mut self, ctx: &ActorContext<A::Message>) -> Result<(), A::Error> {
        self.inner.post_stop(ctx).await
    }

    async fn on_error(&mut self, error: A::Error, ctx: &ActorContext<A::Message>) -> ErrorAction {
        self.inner.on_error(error, ctx).await
    }
}

/// Keeps the native counter's deliberate panics off stderr (every other
/// panic still reaches the previous hook). Installed once per process.
fn quiet_poison() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let poisoned = payload.downcast_ref::<&str>() == Some(&POISONED)
                || payload.downcast_ref::<String>().map(String::as_str) == Some(POISONED);
            if !poisoned {
                previous(info);
            }
        }));
    });
}

/// Adds `byte` to `counter` by an ask; the total it answers.
async fn add(counter: &ActorRef<WasmMessage>, byte: u8) -> u64 {
    let answer = counter
        .ask(|reply| WasmMessage::Ask(vec![byte], reply), PATIENCE)
        .await
        .expect("ask")
        .expect("the counter answered");
    u64::from_le_bytes(answer.as_slice().try_into().expect("an 8-byte total"))
}

fn system() -> ActorSystem {
    ActorSystem::new(SystemConfig::named("compare")).expect("inside a runtime")
}

/// The airssys-rt-only Wasm workloads (see [`crate::internal`]).
impl Airssys {
    /// `n` sequential asks to a counter (native or Wasm; how it fails does
    /// not matter here), each checked for the right total; per-ask latency.
    pub async fn counter_ask(counter: Counter, n: u64) -> Sample {
        let system = system();
        let actor = match counter {
            Counter::Wasm => system.spawn(WasmActor::new(counter_spec())),
            Counter::NativePanic | Counter::NativeError => system.spawn(NativeCounter {
                total: 0,
                panics: counter == Counter::NativePanic,
            }),
        }
        .expect("spawn");
        let mut latencies = Vec::with_capacity(n as usize);
        for i in 0..n {
            let start = Instant::now();
            let total = add(&actor, 1).await;
            latencies.push(start.elapsed().as_nanos() as u64);
            assert_eq!(total, i + 1, "wrong total");
        }
        system.shutdown(PATIENCE).await;
        Sample::latencies(latencies)
    }

    /// `n` times: tell the supervised counter the poison byte, take its
    /// replacement's handle (announced from its start hook), ask it once
    /// and check that it starts from zero (a fresh instance); per failure,
    /// the time from the poison being sent to the answer. One-for-one,
    /// unlimited intensity, no backoff (the side-by-side restart workload).
    pub async fn counter_restart(counter: Counter, n: u64) -> Sample {
        let system = system();
        let (announce, mut announced) = mpsc::unbounded_channel();
        let supervisor = SupervisorSpec::one_for_one().intensity(u32::MAX, Duration::from_secs(1));
        let supervisor = match counter {
            Counter::Wasm => {
                let spec = counter_spec();
                supervisor.child(ChildSpec::worker("counter", move || Announced {
                    inner: WasmActor::new(spec.clone()),
                    announce: announce.clone(),
                }))
            }
            Counter::NativePanic | Counter::NativeError => {
                quiet_poison();
                let panics = counter == Counter::NativePanic;
                supervisor.child(ChildSpec::worker("counter", move || Announced {
                    inner: NativeCounter { total: 0, panics },
                    announce: announce.clone(),
                }))
            }
        };
        let supervisor = system
            .start_supervisor(supervisor)
            .await
            .expect("supervisor");
        let mut current = announced.recv().await.expect("first instance");
        assert_eq!(add(&current, 1).await, 1, "the first instance answers");
        let mut latencies = Vec::with_capacity(n as usize);
        let failures = async {
            for _ in 0..n {
                let start = Instant::now();
                current
                    .tell(WasmMessage::Tell(vec![POISON]))
                    .await
                    .expect("poison");
                current = announced.recv().await.expect("replacement");
                let total = add(&current, 1).await;
                latencies.push(start.elapsed().as_nanos() as u64);
                assert_eq!(total, 1, "the replacement starts from a fresh instance");
            }
        };
        // One timer for the whole run (none per failure): a replacement that
        // never comes fails the run, naming where it stopped, instead of
        // hanging it.
        if tokio::time::timeout(PATIENCE, failures).await.is_err() {
            panic!(
                "{counter:?}: no replacement after {} failures within {PATIENCE:?}; \
                 the last instance is {:?} (exit: {:?}); supervisor alive: {}, children: {:?}",
                latencies.len(),
                current.state(),
                current.exit_reason(),
                supervisor.is_alive(),
                tokio::time::timeout(Duration::from_secs(1), supervisor.which_children()).await,
            );
        }
        supervisor.shutdown().await;
        system.shutdown(PATIENCE).await;
        Sample::latencies(latencies)
    }
}
