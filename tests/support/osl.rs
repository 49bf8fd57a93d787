//! Helpers shared by the OS-layer tests (`osl_files`, `osl_process`,
//! `osl_network`).

use airssys_rt::integration::osl::{
    ActivityLog, MemorySink, NetworkRequest, Osl, ProcessRequest, SecurityContext, SecurityPolicy,
};
use airssys_rt::prelude::*;

/// A layer enforcing `policy`, recording to the returned memory sink.
pub fn layer(policy: SecurityPolicy) -> (Osl, MemorySink) {
    let memory = MemorySink::default();
    let osl = Osl::new(policy, ActivityLog::new().with_sink(memory.clone()));
    (osl, memory)
}

/// A process actor of `osl` acting as `principal`.
pub fn process_actor(system: &ActorSystem, osl: &Osl, principal: &str) -> ActorRef<ProcessRequest> {
    system
        .spawn(osl.process_actor(SecurityContext::new(principal)))
        .expect("the process actor spawns")
}

/// A network actor of `osl` acting as `principal`.
pub fn network_actor(system: &ActorSystem, osl: &Osl, principal: &str) -> ActorRef<NetworkRequest> {
    system
        .spawn(osl.network_actor(SecurityContext::new(principal)))
        .expect("the network actor spawns")
}
