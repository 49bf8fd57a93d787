//! Helpers shared by the OS-layer tests (`osl_files`, `osl_process`,
//! `osl_network`).

use airssys_rt::integration::osl::{ActivityLog, MemorySink, Osl, SecurityPolicy};

/// A layer enforcing `policy`, recording to the returned memory sink.
pub fn layer(policy: SecurityPolicy) -> (Osl, MemorySink) {
    let memory = MemorySink::default();
    let osl = Osl::new(policy, ActivityLog::new().with_sink(memory.clone()));
    (osl, memory)
}
