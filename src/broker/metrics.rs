//! The broker's metrics, reported through the [`metrics`] facade (install
//! any exporter — Prometheus, StatsD, … — to collect them; without one they
//! cost a relaxed load each).
//!
//! | name | kind | meaning |
//! |---|---|---|
//! | `airssys_rt_broker_delivered_total` | counter | envelopes accepted by a mailbox |
//! | `airssys_rt_broker_undelivered_total{cause}` | counter | envelopes handed back (`unresolved`, `actor_stopped`, `mailbox_full`, `remote`) |
//! | `airssys_rt_broker_request_seconds` | histogram | request → reply latency, sampled one request in 8 |
//! | `airssys_rt_broker_request_timeouts_total` | counter | requests that got no reply in time |
//! | `airssys_rt_broker_unknown_replies_total` | counter | replies to unknown or expired requests |
//!
//! Every envelope given to `send` or `request` ends up delivered or
//! undelivered, so envelopes sent = delivered + undelivered (summed over
//! causes); the broker does not pay for a third counter.

use super::DeliveryFailure;

pub(crate) fn delivered() {
    metrics::counter!("airssys_rt_broker_delivered_total").increment(1);
}

pub(crate) fn undelivered(cause: &DeliveryFailure) {
    let cause = match cause {
        DeliveryFailure::Unresolved(_) => "unresolved",
        DeliveryFailure::ActorStopped => "actor_stopped",
        DeliveryFailure::MailboxFull => "mailbox_full",
        DeliveryFailure::Remote(_) => "remote",
    };
    metrics::counter!("airssys_rt_broker_undelivered_total", "cause" => cause).increment(1);
}

pub(crate) fn replied(latency: std::time::Duration) {
    metrics::histogram!("airssys_rt_broker_request_seconds").record(latency.as_secs_f64());
}

pub(crate) fn timed_out() {
    metrics::counter!("airssys_rt_broker_request_timeouts_total").increment(1);
}

pub(crate) fn unknown_reply() {
    metrics::counter!("airssys_rt_broker_unknown_replies_total").increment(1);
}
