//! What the host gives a guest: its imports (`send`, `reply`, `log`,
//! `clock_ms`, module `"airssys"`), each checked against the guest's
//! capabilities and limits, and the memory limiter.

use std::sync::Arc;

use wasmtime::{Caller, Linker, ResourceLimiter};

use super::{Capabilities, WasmLimits, WasmMessage};
use crate::actor::ActorRef;
use crate::integration::osl::{ActivityLog, ActivityRecord, Operation, Outcome, SecurityContext};
use crate::system::ActorSystem;

/// `send`: delivered.
pub const SENT: i32 = 0;
/// `send`/`clock_ms`: the capability was not granted (the refusal is logged).
pub const DENIED: i32 = -1;
/// `send`: no live actor taking Wasm messages has that name.
pub const UNKNOWN_ADDRESS: i32 = -2;
/// `send`: the recipient refused (stopped, or its mailbox is full).
pub const REFUSED: i32 = -3;
/// `reply`: there is no request to answer (a tell, or already answered).
pub const NO_REQUEST: i32 = -1;

/// The guest's side of the store.
pub(crate) struct Host {
    pub(crate) system: ActorSystem,
    pub(crate) capabilities: Arc<Capabilities>,
    pub(crate) limits: WasmLimits,
    pub(crate) context: SecurityContext,
    pub(crate) log: ActivityLog,
    /// The answer to the request being handled, once the guest replies.
    pub(crate) reply: Option<Vec<u8>>,
    /// Whether the message being handled is a request.
    pub(crate) answering: bool,
    /// Set when the guest tried to grow memory past the limit.
    pub(crate) memory_refused: bool,
    /// Set when the guest passed a message over the size limit.
    pub(crate) oversized: bool,
}

impl ResourceLimiter for Host {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.max_memory_bytes {
            self.memory_refused = true;
            return Err(wasmtime::Error::msg("memory limit reached"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 10_000)
    }
}

impl Host {
    fn record(&self, operation: Operation, target: &str, outcome: Outcome) {
        self.log.record(&ActivityRecord {
            at: crate::util::time::now(),
            principal: self.context.principal().to_owned(),
            operation,
            target: target.to_owned(),
            outcome,
            duration_us: 0,
        });
    }
}

/// Reads `len` bytes at `ptr` from the guest's exported memory; traps on a
/// bad pointer or a message over the size limit.
fn read_guest(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> wasmtime::Result<Vec<u8>> {
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    if len > caller.data().limits.max_message_bytes {
        caller.data_mut().oversized = true;
        return Err(wasmtime::Error::msg("message over the size limit"));
    }
    let memory = caller
        .get_export("memory")
        .and_then(|export| export.into_memory())
        .ok_or_else(|| wasmtime::Error::msg("the guest exports no memory"))?;
    let data = memory.data(&caller);
    ptr.checked_add(len)
        .and_then(|end| data.get(ptr..end))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| wasmtime::Error::msg("the guest passed an out-of-bounds pointer"))
}

/// Defines the imports every guest may link against (module `"airssys"`).
pub(crate) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "airssys",
        "send",
        |mut caller: Caller<'_, Host>, to: i32, to_len: i32, msg: i32, msg_len: i32| {
            let name = String::from_utf8_lossy(&read_guest(&mut caller, to, to_len)?).into_owned();
            let bytes = read_guest(&mut caller, msg, msg_len)?;
            let host = caller.data();
            if !host.capabilities.send_to.contains(&name) {
                host.record(
                    Operation::WasmSend,
                    &name,
                    Outcome::Denied(format!("no send grant covers '{name}'")),
                );
                return Ok(DENIED);
            }
            let Ok(recipient) = host.system.registry().lookup::<WasmMessage>(&name) else {
                return Ok(UNKNOWN_ADDRESS);
            };
            Ok(send_now(&recipient, bytes))
        },
    )?;
    linker.func_wrap(
        "airssys",
        "reply",
        |mut caller: Caller<'_, Host>, ptr: i32, len: i32| {
            let bytes = read_guest(&mut caller, ptr, len)?;
            let host = caller.data_mut();
            if !host.answering || host.reply.is_some() {
                return Ok(NO_REQUEST);
            }
            host.reply = Some(bytes);
            Ok(SENT)
        },
    )?;
    linker.func_wrap(
        "airssys",
        "log",
        |mut caller: Caller<'_, Host>, level: i32, ptr: i32, len: i32| {
            let text = String::from_utf8_lossy(&read_guest(&mut caller, ptr, len)?).into_owned();
            let guest = caller.data().context.principal().to_owned();
            match level {
                0 => tracing::error!(target: "airssys_rt::wasm", %guest, "{text}"),
                1 => tracing::warn!(target: "airssys_rt::wasm", %guest, "{text}"),
                2 => tracing::info!(target: "airssys_rt::wasm", %guest, "{text}"),
                3 => tracing::debug!(target: "airssys_rt::wasm", %guest, "{text}"),
                _ => tracing::trace!(target: "airssys_rt::wasm", %guest, "{text}"),
            }
            Ok(())
        },
    )?;
    linker.func_wrap("airssys", "clock_ms", |caller: Caller<'_, Host>| {
        let host = caller.data();
        if !host.capabilities.clock {
            host.record(
                Operation::WasmClock,
                "wall clock",
                Outcome::Denied("no clock grant".into()),
            );
            return Ok(i64::from(DENIED));
        }
        Ok(crate::util::time::now().timestamp_millis())
    })?;
    Ok(())
}

/// Delivers without waiting (a guest cannot block its host thread).
fn send_now(recipient: &ActorRef<WasmMessage>, bytes: Vec<u8>) -> i32 {
    match recipient.try_tell(WasmMessage::Tell(bytes)) {
        Ok(()) => SENT,
        Err(_) => REFUSED,
    }
}
