//! [`WasmActor`]: an actor whose behaviour is a guest module instance.

use std::fmt;

use wasmtime::{Instance, InstancePre, Memory, PoolConcurrencyLimitError, Store, Trap, TypedFunc};

use super::host::Host;
use super::{WasmLimits, WasmSpec};
use crate::actor::{Actor, ActorContext, ReplyTo};
use crate::message::Message;

/// Fuel between two yields to the executor: a busy guest never holds its
/// worker thread longer than this much work.
const YIELD_EVERY: u64 = 10_000;

/// Why an instance could not start, as the error a caller sees.
fn instantiate_failed(e: wasmtime::Error) -> WasmError {
    WasmError::Instantiate(format!("{e:#}"))
}

/// A message to a Wasm actor: bytes for the guest's `handle`.
#[derive(Debug)]
pub enum WasmMessage {
    /// Handle these bytes.
    Tell(Vec<u8>),
    /// Handle these bytes and answer with what the guest passes to `reply`.
    Ask(Vec<u8>, ReplyTo<Result<Vec<u8>, WasmError>>),
}

impl Message for WasmMessage {
    const MESSAGE_TYPE: &'static str = "airssys.wasm";
}

impl WasmMessage {
    fn kind(&self) -> &'static str {
        match self {
            WasmMessage::Tell(_) => "a tell",
            WasmMessage::Ask(..) => "a request",
        }
    }
}

/// Which limit a guest ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmLimit {
    /// Its fuel per message ran out.
    Fuel(u64),
    /// It tried to grow memory past the limit (bytes).
    Memory(usize),
    /// It passed a message over the size limit (bytes).
    MessageSize(usize),
}

impl fmt::Display for WasmLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WasmLimit::Fuel(fuel) => write!(f, "out of fuel ({fuel} per message)"),
            WasmLimit::Memory(bytes) => write!(f, "memory limit of {bytes} bytes reached"),
            WasmLimit::MessageSize(bytes) => write!(f, "message over {bytes} bytes"),
        }
    }
}

/// What can go wrong with a Wasm actor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WasmError {
    /// The module does not compile.
    #[error("the module does not compile: {0}")]
    Compile(String),
    /// The module does not instantiate (missing export, bad import).
    #[error("the module does not instantiate: {0} (see the guest ABI in integration::wasm)")]
    Instantiate(String),
    /// The guest hit a limit while handling a message.
    #[error("wasm guest stopped: {limit}, while handling {kind} ({message_type})")]
    Limit {
        /// Which limit.
        limit: WasmLimit,
        /// `a tell` or `a request`.
        kind: &'static str,
        /// The message type.
        message_type: &'static str,
    },
    /// The guest trapped (`unreachable`, a guest panic, a bad memory access…).
    #[error("wasm guest trapped: {trap}, while handling {kind} ({message_type})")]
    Trap {
        /// What the engine reported.
        trap: String,
        /// `a tell` or `a request`.
        kind: &'static str,
        /// The message type.
        message_type: &'static str,
    },
    /// The guest's `handle` returned a non-zero status.
    #[error("wasm guest returned error code {0}")]
    Guest(i32),
    /// A message over the size limit was refused before the guest saw it.
    #[error("message of {len} bytes refused: the guest takes at most {max}")]
    MessageTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// The instance and its entry points, created in `pre_start`.
struct Running {
    store: Store<Host>,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    handle: TypedFunc<(i32, i32), i32>,
}

/// An actor running a guest module: each message is handed to the guest's
/// `handle` export as bytes (see the module docs for the ABI). A trap or a
/// limit fails the actor; under a supervisor it restarts with a fresh
/// instance of the already compiled module.
pub struct WasmActor {
    spec: WasmSpec,
    running: Option<Running>,
}

impl fmt::Debug for WasmActor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmActor")
            .field("spec", &self.spec)
            .field("instantiated", &self.running.is_some())
            .finish()
    }
}

impl WasmActor {
    /// An actor for `spec`; the instance is created when it starts.
    pub fn new(spec: WasmSpec) -> Self {
        Self {
            spec,
            running: None,
        }
    }

    async fn instantiate(&self, system: &crate::system::ActorSystem) -> Result<Running, WasmError> {
        let compiled = &self.spec.compiled;
        let linked = compiled
            .linked
            .as_ref()
            .map_err(|e| WasmError::Instantiate(e.clone()))?;
        let (mut store, instance) = match self.start(system, linked).await {
            Err(e) if e.is::<PoolConcurrencyLimitError>() => {
                // Every pool slot is taken: this instance maps its own.
                let linked = compiled.overflow().map_err(WasmError::Instantiate)?;
                self.start(system, linked).await
            }
            started => started,
        }
        .map_err(instantiate_failed)?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| WasmError::Instantiate("the guest exports no \"memory\"".into()))?;
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, "alloc")
            .map_err(instantiate_failed)?;
        let handle = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, "handle")
            .map_err(instantiate_failed)?;
        Ok(Running {
            store,
            memory,
            alloc,
            handle,
        })
    }

    /// A store on `linked`'s engine and a fresh instance in it.
    async fn start(
        &self,
        system: &crate::system::ActorSystem,
        linked: &InstancePre<Host>,
    ) -> Result<(Store<Host>, Instance), wasmtime::Error> {
        let host = Host {
            system: system.clone(),
            capabilities: self.spec.capabilities.clone(),
            limits: self.spec.limits,
            context: self.spec.context.clone(),
            log: self.spec.log.clone(),
            reply: None,
            answering: false,
            memory_refused: false,
            oversized: false,
        };
        let mut store = Store::new(linked.module().engine(), host);
        store.limiter(|host| host);
        store.fuel_async_yield_interval(Some(YIELD_EVERY))?;
        store.set_fuel(self.spec.limits.fuel_per_message)?;
        let instance = linked.instantiate_async(&mut store).await?;
        Ok((store, instance))
    }
}

impl Running {
    /// Copies `bytes` into the guest and runs its `handle`; the reply, if
    /// the guest gave one.
    async fn deliver(
        &mut self,
        bytes: &[u8],
        answering: bool,
        kind: &'static str,
        limits: WasmLimits,
    ) -> Result<Option<Vec<u8>>, WasmError> {
        let host = self.store.data_mut();
        host.answering = answering;
        host.reply = None;
        host.memory_refused = false;
        host.oversized = false;
        let fail =
            |running: &Running, error: wasmtime::Error| running.classify(error, kind, limits);
        if let Err(e) = self.store.set_fuel(limits.fuel_per_message) {
            return Err(fail(self, e));
        }
        let len = bytes.len() as i32;
        let ptr = match self.alloc.call_async(&mut self.store, len).await {
            Ok(ptr) => ptr,
            Err(e) => return Err(fail(self, e)),
        };
        let start = ptr as u32 as usize;
        let written = start
            .checked_add(bytes.len())
            .and_then(|end| self.memory.data_mut(&mut self.store).get_mut(start..end))
            .map(|target| target.copy_from_slice(bytes));
        if written.is_none() {
            return Err(WasmError::Trap {
                trap: "alloc returned an out-of-bounds pointer".into(),
                kind,
                message_type: WasmMessage::MESSAGE_TYPE,
            });
        }
        match self.handle.call_async(&mut self.store, (ptr, len)).await {
            Ok(0) => Ok(self.store.data_mut().reply.take()),
            Ok(code) => Err(WasmError::Guest(code)),
            Err(e) => Err(fail(self, e)),
        }
    }

    /// Names the limit or trap behind an engine error.
    fn classify(
        &self,
        error: wasmtime::Error,
        kind: &'static str,
        limits: WasmLimits,
    ) -> WasmError {
        let host = self.store.data();
        let limit = if error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
            Some(WasmLimit::Fuel(limits.fuel_per_message))
        } else if host.memory_refused {
            Some(WasmLimit::Memory(limits.max_memory_bytes))
        } else if host.oversized {
            Some(WasmLimit::MessageSize(limits.max_message_bytes))
        } else {
            None
        };
        match limit {
            Some(limit) => WasmError::Limit {
                limit,
                kind,
                message_type: WasmMessage::MESSAGE_TYPE,
            },
            None => WasmError::Trap {
                // The trap's own words ("wasm `unreachable` instruction
                // executed"), else the error without its backtrace.
                trap: error
                    .downcast_ref::<Trap>()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| error.root_cause().to_string()),
                kind,
                message_type: WasmMessage::MESSAGE_TYPE,
            },
        }
    }
}

impl Actor for WasmActor {
    type Message = WasmMessage;
    type Error = WasmError;

    async fn pre_start(&mut self, ctx: &mut ActorContext<WasmMessage>) -> Result<(), WasmError> {
        self.running = Some(self.instantiate(ctx.system()).await?);
        Ok(())
    }

    async fn handle_message(
        &mut self,
        message: WasmMessage,
        _: &mut ActorContext<WasmMessage>,
    ) -> Result<(), WasmError> {
        let limits = self.spec.limits;
        let kind = message.kind();
        let (bytes, reply) = match message {
            WasmMessage::Tell(bytes) => (bytes, None),
            WasmMessage::Ask(bytes, reply) => (bytes, Some(reply)),
        };
        if bytes.len() > limits.max_message_bytes {
            let refused = WasmError::MessageTooLarge {
                len: bytes.len(),
                max: limits.max_message_bytes,
            };
            tracing::warn!(target: "airssys_rt::wasm", error = %refused, "message refused");
            if let Some(reply) = reply {
                let _ = reply.reply(Err(refused));
            }
            return Ok(());
        }
        let Some(running) = self.running.as_mut() else {
            return Err(WasmError::Instantiate("the actor has no instance".into()));
        };
        match running.deliver(&bytes, reply.is_some(), kind, limits).await {
            Ok(answer) => {
                if let (Some(reply), Some(answer)) = (reply, answer) {
                    let _ = reply.reply(Ok(answer));
                }
                Ok(())
            }
            Err(error) => {
                if let Some(reply) = reply {
                    let _ = reply.reply(Err(error.clone()));
                }
                // The instance may be half-updated: fail, so a supervisor
                // starts a fresh one.
                Err(error)
            }
        }
    }
}
