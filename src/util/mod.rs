//! Small shared building blocks: cheap identifiers, time helpers and the
//! counters the runtime keeps about itself.

pub(crate) mod deadlines;
pub(crate) mod hash;
pub mod ids;
pub mod metrics;
pub(crate) mod once_box;
pub(crate) mod subscribers;
pub(crate) mod sync;
pub mod time;
pub(crate) mod write_once;

pub use ids::{ActorId, MessageId};
pub use metrics::{RuntimeMetrics, RuntimeMetricsSnapshot};
