//! Address resolution: from an [`ActorAddress`] to the live actor that
//! should receive a message, through the system's registry.

use super::ActorAddress;
use crate::actor::ActorRef;
use crate::broker::{ActorRegistry, RegistryError};
use crate::message::Message;

impl ActorRegistry {
    /// Resolves an address to a live actor: a registered id, a name, a
    /// service member by key, or a pool member by the address's strategy.
    /// A consistent-hash pool address needs the message's routing key; use
    /// [`resolve_for`](Self::resolve_for) for it.
    pub fn resolve<M: Message>(
        &self,
        address: &ActorAddress,
    ) -> Result<ActorRef<M>, RegistryError> {
        self.resolve_inner(address, None)
    }

    /// Resolves an address for `message` (pools route by its content).
    pub fn resolve_for<M: Message>(
        &self,
        address: &ActorAddress,
        message: &M,
    ) -> Result<ActorRef<M>, RegistryError> {
        self.resolve_inner(address, Some(message))
    }

    fn resolve_inner<M: Message>(
        &self,
        address: &ActorAddress,
        message: Option<&M>,
    ) -> Result<ActorRef<M>, RegistryError> {
        match address {
            ActorAddress::Id(id) => self.registered(*id),
            ActorAddress::Named(name) => self.lookup(name),
            ActorAddress::Service { service, key } => self.service_member(service, key.as_deref()),
            ActorAddress::Pool { pool, strategy } => {
                Ok(self.pool::<M>(pool)?.route_with(strategy, message)?)
            }
            ActorAddress::Entity { kind, key } => {
                self.lookup(&ActorAddress::entity_name(kind, key))
            }
        }
    }
}
