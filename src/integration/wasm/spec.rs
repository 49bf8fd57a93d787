//! [`WasmSpec`]: a compiled guest module with its limits and capabilities.
//! Cheap to clone, so a supervisor's factory can make fresh instances from
//! it without recompiling.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig,
};

use super::WasmError;
use super::host::{self, Host};
use crate::integration::osl::{ActivityLog, SecurityContext};

/// Per-instance limits. Exceeding one traps the guest (except an oversized
/// incoming message, which is refused before the guest sees it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WasmLimits {
    /// Fuel (roughly, Wasm instructions) one message may use.
    pub fuel_per_message: u64,
    /// Largest the guest's linear memory may grow, in bytes (at most
    /// [`MAX_GUEST_MEMORY_BYTES`]).
    pub max_memory_bytes: usize,
    /// Largest message in or out (requests, replies, sends), in bytes.
    pub max_message_bytes: usize,
}

impl Default for WasmLimits {
    /// 10 million fuel per message, 16 MiB of memory, 64 KiB messages.
    fn default() -> Self {
        Self {
            fuel_per_message: 10_000_000,
            max_memory_bytes: 16 << 20,
            max_message_bytes: 64 << 10,
        }
    }
}

/// What a guest may do beyond computing: deny by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Names the guest may `send` to.
    pub send_to: Vec<String>,
    /// Whether the guest may read the wall clock.
    pub clock: bool,
}

/// A guest module, compiled once, with what its instances may do and use.
///
/// ```
/// use airssys_rt::integration::wasm::WasmSpec;
/// let spec = WasmSpec::from_wat("(module (memory (export \"memory\") 1)
///     (func (export \"alloc\") (param i32) (result i32) (i32.const 0))
///     (func (export \"handle\") (param i32 i32) (result i32) (i32.const 0)))")
///     .unwrap()
///     .grant_send("logger");
/// assert_eq!(spec.capabilities().send_to, ["logger"]);
/// ```
#[derive(Clone)]
pub struct WasmSpec {
    pub(crate) compiled: Arc<Compiled>,
    pub(crate) limits: WasmLimits,
    pub(crate) capabilities: Arc<Capabilities>,
    pub(crate) context: SecurityContext,
    pub(crate) log: ActivityLog,
}

impl std::fmt::Debug for WasmSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmSpec")
            .field("limits", &self.limits)
            .field("capabilities", &self.capabilities)
            .field("principal", &self.context.principal())
            .finish()
    }
}

impl WasmSpec {
    /// Compiles a module from its binary form (or its WAT text); identical
    /// bytes compile once per process.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WasmError> {
        Ok(Self {
            compiled: compiled(bytes)?,
            limits: WasmLimits::default(),
            capabilities: Arc::default(),
            context: SecurityContext::new("wasm"),
            log: ActivityLog::new(),
        })
    }

    /// Compiles a module from WAT text.
    pub fn from_wat(wat: &str) -> Result<Self, WasmError> {
        Self::from_bytes(wat.as_bytes())
    }

    /// Sets the limits; a memory limit above [`MAX_GUEST_MEMORY_BYTES`] is
    /// lowered to it.
    pub fn limits(mut self, limits: WasmLimits) -> Self {
        self.limits = WasmLimits {
            max_memory_bytes: limits.max_memory_bytes.min(MAX_GUEST_MEMORY_BYTES),
            ..limits
        };
        self
    }

    /// Lets the guest send to the actor registered as `name`.
    pub fn grant_send(mut self, name: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.capabilities)
            .send_to
            .push(name.into());
        self
    }

    /// Lets the guest read the wall clock.
    pub fn grant_clock(mut self) -> Self {
        Arc::make_mut(&mut self.capabilities).clock = true;
        self
    }

    /// Who the guest acts as, and where its refused calls are recorded
    /// (the OS layer's activity log).
    pub fn audited(mut self, context: SecurityContext, log: ActivityLog) -> Self {
        self.context = context;
        self.log = log;
        self
    }

    /// The capabilities granted.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// The limits.
    pub fn current_limits(&self) -> WasmLimits {
        self.limits
    }

    /// Whether `other` runs the same compiled module (identical bytes are
    /// compiled once).
    pub fn same_module(&self, other: &WasmSpec) -> bool {
        Module::same(&self.compiled.module, &other.compiled.module)
    }
}

/// Instances the pooled engine holds at once; more run on the overflow
/// engine (slower to start, otherwise the same).
const POOLED_INSTANCES: u32 = 1_000;

/// The most linear memory any guest may have, whatever its
/// [`WasmLimits::max_memory_bytes`] says: the size of a pool slot.
pub const MAX_GUEST_MEMORY_BYTES: usize = 64 << 20;

/// Settings both engines share: fuel metering (guests run through the async
/// API, so a busy guest yields to tokio between fuel slices) and small
/// per-instance reservations (256 KiB of Wasm stack; memory beyond the
/// reservation is bounds checked rather than guard-paged).
fn base_config() -> Config {
    let mut config = Config::new();
    config.consume_fuel(true);
    config.max_wasm_stack(256 << 10);
    config.async_stack_size(512 << 10);
    config.memory_reservation(MAX_GUEST_MEMORY_BYTES as u64);
    config.memory_guard_size(64 << 10);
    config
}

/// The engine guests normally run on. Its instances live in a pool of
/// pre-mapped slots (memory, tables, fiber stacks) that are reset and
/// reused rather than unmapped: a restart after a trap maps nothing, and on
/// several workers it causes no cross-CPU TLB flush.
pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = base_config();
        let mut pool = PoolingAllocationConfig::new();
        // A fiber stack per running call, and twice as many stacks as
        // instances so instances starting never starve ones running.
        pool.total_core_instances(POOLED_INSTANCES)
            .total_memories(POOLED_INSTANCES)
            .total_tables(POOLED_INSTANCES)
            .total_stacks(2 * POOLED_INSTANCES)
            .max_memory_size(MAX_GUEST_MEMORY_BYTES)
            .linear_memory_keep_resident(64 << 10)
            .table_keep_resident(16 << 10)
            .async_stack_keep_resident(64 << 10);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // Reserving the pool can fail where address space is limited
        // (`ulimit -v`): then every instance is allocated on demand.
        Engine::new(&config).unwrap_or_else(|_| overflow_engine().clone())
    })
}

/// The engine for instances beyond the pool: each maps its own memory.
pub(crate) fn overflow_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        // An engine with these settings always builds; fall back to the
        // default rather than panic if a future wasmtime refuses one.
        Engine::new(&base_config()).unwrap_or_default()
    })
}

/// A module compiled for both engines: for the pooled one at once, for the
/// overflow one the first time the pool is full.
pub(crate) struct Compiled {
    bytes: Arc<[u8]>,
    pub(crate) module: Module,
    /// The module linked against the host's imports, once: every instance
    /// (each restart) starts from it. An error (an import the host does not
    /// offer) surfaces when an actor starts.
    pub(crate) linked: Result<InstancePre<Host>, String>,
    overflow: OnceLock<Result<InstancePre<Host>, String>>,
}

impl Compiled {
    /// The module linked for the overflow engine, compiled on first use.
    pub(crate) fn overflow(&self) -> Result<&InstancePre<Host>, String> {
        self.overflow
            .get_or_init(|| {
                let module =
                    Module::new(overflow_engine(), &self.bytes).map_err(|e| format!("{e:#}"))?;
                link(overflow_engine(), &module)
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// `module` linked against the host's imports.
fn link(engine: &Engine, module: &Module) -> Result<InstancePre<Host>, String> {
    let mut linker = Linker::new(engine);
    host::link(&mut linker).map_err(|e| format!("{e:#}"))?;
    linker.instantiate_pre(module).map_err(|e| format!("{e:#}"))
}

/// The compiled module for `bytes`, compiled on first use.
fn compiled(bytes: &[u8]) -> Result<Arc<Compiled>, WasmError> {
    /// Modules by a hash of their bytes (the bytes are kept to rule out
    /// collisions).
    type Modules = HashMap<u64, Vec<Arc<Compiled>>>;
    type Cache = Mutex<Modules>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    let key = hasher.finish();
    let cache = CACHE.get_or_init(Mutex::default);
    let cached = |modules: &Modules| {
        modules
            .get(&key)
            .and_then(|same| same.iter().find(|c| &*c.bytes == bytes))
            .cloned()
    };
    if let Some(hit) = cached(&cache.lock()) {
        return Ok(hit);
    }
    // Compiled without the lock (other modules need not wait); if another
    // thread compiled the same bytes meanwhile, its module is the one kept,
    // so identical bytes still give one module.
    let module = Module::new(engine(), bytes).map_err(|e| WasmError::Compile(format!("{e:#}")))?;
    let linked = link(engine(), &module);
    let mut modules = cache.lock();
    if let Some(first) = cached(&modules) {
        return Ok(first);
    }
    let fresh = Arc::new(Compiled {
        bytes: Arc::from(bytes),
        module,
        linked,
        overflow: OnceLock::new(),
    });
    modules.entry(key).or_default().push(fresh.clone());
    Ok(fresh)
}
