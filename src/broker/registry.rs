//! [`ActorRegistry`]: names and services, so actors can be found without
//! holding their [`ActorRef`].
//!
//! A name belongs to one live actor at a time; a service groups any number
//! of actors, one of which is picked by key. Entries are released when their
//! actor exits, on every exit path (a failed `pre_start` and a kill
//! included), so a name can be taken again at once. Lookups take a read lock
//! on a hash map: concurrent and cheap. Handles are stored typed (as
//! `ActorRef<M>` behind `Any`), and a lookup with the wrong message type is
//! an error that names both types.

use std::any::Any;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};

use parking_lot::{Mutex, RwLock};

use crate::actor::ActorRef;
use crate::actor::cell::ActorControl;
use crate::address::{ActorPool, PoolError};
use crate::message::{Message, route_by_key};
use crate::util::ActorId;
use crate::util::hash::{IdHasher, NameHasher};

/// What can go wrong registering or resolving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The name belongs to another live actor.
    #[error("the name '{name}' is taken by {holder}; pick another name or stop {holder} first")]
    NameTaken {
        /// The name.
        name: String,
        /// Its current holder.
        holder: ActorId,
    },
    /// The actor has stopped; it cannot be registered.
    #[error("{actor} has stopped and cannot be registered; register its replacement")]
    ActorStopped {
        /// The actor.
        actor: ActorId,
    },
    /// Nothing is registered under this name.
    #[error("no live actor is registered as '{name}'")]
    UnknownName {
        /// The name asked for.
        name: String,
    },
    /// No live member in this service.
    #[error("the service '{service}' has no live members")]
    UnknownService {
        /// The service asked for.
        service: String,
    },
    /// The actor is not registered under any name or service, so its id
    /// cannot be resolved.
    #[error("{actor} is not registered; keep its ActorRef, or register it under a name")]
    NotRegistered {
        /// The id asked for.
        actor: ActorId,
    },
    /// No pool with this name.
    #[error("no pool is registered as '{pool}'; start it with ActorSystem::start_pool")]
    UnknownPool {
        /// The pool asked for.
        pool: String,
    },
    /// The pool could not pick a member.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The registered actor takes another message type.
    #[error("'{name}' takes {registered} messages, not {expected}")]
    WrongMessageType {
        /// The name or service.
        name: String,
        /// The type the caller asked for.
        expected: &'static str,
        /// The type the actor takes.
        registered: &'static str,
    },
}

/// One registered actor.
#[derive(Clone)]
struct Entry {
    id: ActorId,
    message_type: &'static str,
    handle: Arc<dyn Any + Send + Sync>,
    control: Arc<dyn ActorControl>,
}

impl Entry {
    fn of<M: Message>(actor: &ActorRef<M>) -> Self {
        Self {
            id: actor.id(),
            message_type: M::MESSAGE_TYPE,
            handle: Arc::new(actor.clone()),
            control: actor.control(),
        }
    }

    fn is_live(&self) -> bool {
        !self.control.is_closed()
    }

    fn typed<M: Message>(&self, name: &str) -> Result<ActorRef<M>, RegistryError> {
        self.handle
            .downcast_ref::<ActorRef<M>>()
            .cloned()
            .ok_or_else(|| self.wrong_type::<M>(name))
    }

    fn wrong_type<M: Message>(&self, name: &str) -> RegistryError {
        RegistryError::WrongMessageType {
            name: name.to_owned(),
            expected: M::MESSAGE_TYPE,
            registered: self.message_type,
        }
    }
}

/// What one actor holds, to release it all when it exits.
struct Holdings {
    entry: Entry,
    names: Vec<Arc<str>>,
    services: Vec<Arc<str>>,
    pools: Vec<Arc<str>>,
}

/// A registered pool, held by its supervisor.
struct PoolEntry {
    supervisor: Entry,
    message_type: &'static str,
    pool: Arc<dyn Any + Send + Sync>,
}

type ByName<V> = HashMap<Arc<str>, V, BuildHasherDefault<NameHasher>>;

/// Names and services of one [`ActorSystem`](crate::system::ActorSystem)
/// (see [`ActorSystem::registry`](crate::system::ActorSystem::registry)).
///
/// ```
/// use std::convert::Infallible;
/// use airssys_rt::prelude::*;
///
/// struct Billing;
/// impl Actor for Billing {
///     type Message = u64;
///     type Error = Infallible;
///     async fn handle_message(&mut self, _: u64, _: &mut ActorContext<u64>) -> Result<(), Infallible> { Ok(()) }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = ActorSystem::new(SystemConfig::default())?;
/// let billing = system.spawn_builder().register("billing").spawn(Billing)?;
/// let found = system.registry().lookup::<u64>("billing")?;
/// assert_eq!(found, billing);
/// billing.stop();
/// billing.wait_for_exit().await;
/// assert!(system.registry().lookup::<u64>("billing").is_err(), "released on exit");
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct ActorRegistry {
    names: RwLock<ByName<Entry>>,
    services: RwLock<ByName<Vec<Entry>>>,
    pools: RwLock<ByName<PoolEntry>>,
    holdings: Mutex<HashMap<ActorId, Holdings, BuildHasherDefault<IdHasher>>>,
}

impl std::fmt::Debug for ActorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorRegistry")
            .field("names", &self.names.read().len())
            .field("services", &self.services.read().len())
            .field("pools", &self.pools.read().len())
            .finish()
    }
}

impl ActorRegistry {
    /// Registers `actor` as `name`. Fails if another live actor holds it or
    /// `actor` has stopped.
    pub fn register_name<M: Message>(
        &self,
        name: impl Into<Arc<str>>,
        actor: &ActorRef<M>,
    ) -> Result<(), RegistryError> {
        let name = name.into();
        {
            let mut names = self.names.write();
            if let Some(holder) = names.get(&name)
                && holder.is_live()
                && holder.id != actor.id()
            {
                return Err(RegistryError::NameTaken {
                    name: name.to_string(),
                    holder: holder.id,
                });
            }
            let entry = self.hold(actor, |held| held.names.push(name.clone()));
            names.insert(name, entry);
        }
        self.settle(actor)
    }

    /// Adds `actor` to `service` (an actor may be in several services).
    pub fn register_service<M: Message>(
        &self,
        service: impl Into<Arc<str>>,
        actor: &ActorRef<M>,
    ) -> Result<(), RegistryError> {
        let service = service.into();
        {
            let mut services = self.services.write();
            let members = services.entry(service.clone()).or_default();
            if !members.iter().any(|member| member.id == actor.id()) {
                let entry = self.hold(actor, |held| held.services.push(service.clone()));
                members.push(entry);
            }
        }
        self.settle(actor)
    }

    /// Records what `actor` holds and marks it so its exit releases it.
    fn hold<M: Message>(&self, actor: &ActorRef<M>, add: impl FnOnce(&mut Holdings)) -> Entry {
        actor.cell().mark_registered();
        let mut holdings = self.holdings.lock();
        let held = holdings.entry(actor.id()).or_insert_with(|| Holdings {
            entry: Entry::of(actor),
            names: Vec::new(),
            services: Vec::new(),
            pools: Vec::new(),
        });
        add(held);
        held.entry.clone()
    }

    /// After registering: if the actor exited meanwhile, its exit may have
    /// missed the registration, so release it here (one of the two sides
    /// always sees the other).
    fn settle<M: Message>(&self, actor: &ActorRef<M>) -> Result<(), RegistryError> {
        fence(Ordering::SeqCst);
        if actor.exit_reason().is_some() {
            self.release(actor.id());
            return Err(RegistryError::ActorStopped { actor: actor.id() });
        }
        Ok(())
    }

    /// Removes `name`; `true` if it was registered.
    pub fn unregister_name(&self, name: &str) -> bool {
        let Some(entry) = self.names.write().remove(name) else {
            return false;
        };
        let mut holdings = self.holdings.lock();
        if let Some(held) = holdings.get_mut(&entry.id) {
            held.names.retain(|held| &**held != name);
            if held.names.is_empty() && held.services.is_empty() && held.pools.is_empty() {
                holdings.remove(&entry.id);
            }
        }
        true
    }

    /// The live actor registered as `name`.
    pub fn lookup<M: Message>(&self, name: &str) -> Result<ActorRef<M>, RegistryError> {
        self.with_named(name, (), |actor, ()| actor.clone())
            .map_err(|(error, ())| error)
    }

    /// Whether a live actor taking `M` is registered as `name` (no handle
    /// cloned, no error built: the distributed broker asks this per
    /// message).
    #[cfg(feature = "nats")]
    pub(crate) fn holds_name<M: Message>(&self, name: &str) -> bool {
        self.names.read().get(name).is_some_and(|entry| {
            entry.is_live() && entry.handle.downcast_ref::<ActorRef<M>>().is_some()
        })
    }

    /// Runs `f` on the live actor registered as `name` and `value`, while
    /// the name is held and without cloning the handle (the broker's fast
    /// path); `value` comes back if the name does not resolve.
    pub(crate) fn with_named<M: Message, T, R>(
        &self,
        name: &str,
        value: T,
        f: impl FnOnce(&ActorRef<M>, T) -> R,
    ) -> Result<R, (RegistryError, T)> {
        let names = self.names.read();
        let Some(entry) = names.get(name).filter(|entry| entry.is_live()) else {
            let unknown = RegistryError::UnknownName {
                name: name.to_owned(),
            };
            return Err((unknown, value));
        };
        match entry.handle.downcast_ref::<ActorRef<M>>() {
            Some(actor) => Ok(f(actor, value)),
            None => Err((entry.wrong_type::<M>(name), value)),
        }
    }

    /// The live members of `service`, in registration order.
    pub fn service_members<M: Message>(
        &self,
        service: &str,
    ) -> Result<Vec<ActorRef<M>>, RegistryError> {
        let services = self.services.read();
        let members = services.get(service).map(Vec::as_slice).unwrap_or_default();
        let live: Vec<_> = members
            .iter()
            .filter(|m| m.is_live())
            .map(|m| m.typed(service))
            .collect::<Result<_, _>>()?;
        if live.is_empty() {
            return Err(RegistryError::UnknownService {
                service: service.to_owned(),
            });
        }
        Ok(live)
    }

    /// The member of `service` for `key`: the same key picks the same member
    /// while membership stays the same; no key picks the first.
    pub fn service_member<M: Message>(
        &self,
        service: &str,
        key: Option<&str>,
    ) -> Result<ActorRef<M>, RegistryError> {
        let mut members = self.service_members::<M>(service)?;
        let at = key
            .and_then(|key| route_by_key(key, members.len()))
            .unwrap_or(0);
        Ok(members.swap_remove(at))
    }

    /// Registers `pool` as `name`, held by its supervisor: released when
    /// the supervisor exits.
    pub(crate) fn register_pool<M: Message, S: Message>(
        &self,
        name: &Arc<str>,
        pool: &ActorPool<M>,
        supervisor: &ActorRef<S>,
    ) -> Result<(), RegistryError> {
        {
            let mut pools = self.pools.write();
            if let Some(holder) = pools.get(name)
                && holder.supervisor.is_live()
            {
                return Err(RegistryError::NameTaken {
                    name: name.to_string(),
                    holder: holder.supervisor.id,
                });
            }
            let entry = self.hold(supervisor, |held| held.pools.push(name.clone()));
            pools.insert(
                name.clone(),
                PoolEntry {
                    supervisor: entry,
                    message_type: M::MESSAGE_TYPE,
                    pool: Arc::new(pool.clone()),
                },
            );
        }
        self.settle(supervisor)
    }

    /// The live pool registered as `name`.
    pub fn pool<M: Message>(&self, name: &str) -> Result<ActorPool<M>, RegistryError> {
        let pools = self.pools.read();
        match pools.get(name) {
            Some(entry) if entry.supervisor.is_live() => entry
                .pool
                .downcast_ref::<ActorPool<M>>()
                .cloned()
                .ok_or_else(|| RegistryError::WrongMessageType {
                    name: name.to_owned(),
                    expected: M::MESSAGE_TYPE,
                    registered: entry.message_type,
                }),
            _ => Err(RegistryError::UnknownPool {
                pool: name.to_owned(),
            }),
        }
    }

    /// The live actor with `id`, if it holds a name or service.
    pub fn registered<M: Message>(&self, id: ActorId) -> Result<ActorRef<M>, RegistryError> {
        let holdings = self.holdings.lock();
        match holdings.get(&id) {
            Some(held) if held.entry.is_live() => held.entry.typed(&id.to_string()),
            _ => Err(RegistryError::NotRegistered { actor: id }),
        }
    }

    /// Every registered name with its holder, sorted by name.
    pub fn names(&self) -> Vec<(String, ActorId)> {
        let mut names: Vec<_> = self
            .names
            .read()
            .iter()
            .filter(|(_, entry)| entry.is_live())
            .map(|(name, entry)| (name.to_string(), entry.id))
            .collect();
        names.sort();
        names
    }

    /// Releases everything `actor` holds (called when it exits).
    pub(crate) fn release(&self, actor: ActorId) {
        let Some(held) = self.holdings.lock().remove(&actor) else {
            return;
        };
        if !held.names.is_empty() {
            let mut names = self.names.write();
            for name in &held.names {
                if names.get(name).is_some_and(|entry| entry.id == actor) {
                    names.remove(name);
                }
            }
        }
        if !held.pools.is_empty() {
            let mut pools = self.pools.write();
            for pool in &held.pools {
                if pools
                    .get(pool)
                    .is_some_and(|entry| entry.supervisor.id == actor)
                {
                    pools.remove(pool);
                }
            }
        }
        if !held.services.is_empty() {
            let mut services = self.services.write();
            for service in &held.services {
                if let Some(members) = services.get_mut(service) {
                    members.retain(|member| member.id != actor);
                    if members.is_empty() {
                        services.remove(service);
                    }
                }
            }
        }
    }
}
