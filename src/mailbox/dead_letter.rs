//! Dead letters: messages that were accepted but will never be handled.
//!
//! Every such message is recorded here with its reason, so nothing vanishes
//! silently. The office keeps exact counts per reason and the most recent
//! letters (a bounded ring), streams each letter to its subscribers, and
//! emits a `tracing` event and a `metrics` counter (labelled by reason) for
//! each.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::undelivered::{Reclaimed, Reclaimers};
use crate::actor::ExitReason;
use crate::message::Message;
use crate::util::subscribers::Subscribers;
use crate::util::{ActorId, RuntimeMetrics, time};

/// Why a message became a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadLetterReason {
    /// Still queued when its actor stopped.
    ActorStopped,
    /// Still queued when its actor was killed.
    ActorKilled,
    /// Still queued when its actor crashed (a panic, an error, an
    /// escalation), or the message whose handler panicked; the letter's
    /// `exit` says how.
    ActorCrashed,
    /// Dropped by a full `DropOldest` mailbox to make room.
    DroppedOldest,
    /// Dropped by a full `DropNewest` mailbox on arrival.
    DroppedNewest,
    /// Its envelope's time-to-live ran out before it was handled.
    Expired,
    /// Kept for a replacement of its actor (a kept mailbox) that was never
    /// started: the restart failed, or its supervisor gave up or stopped
    /// first. The letter's `exit` says how the actor had exited.
    NotRestarted,
}

impl DeadLetterReason {
    /// Every reason, in declaration order.
    pub const ALL: [DeadLetterReason; 7] = [
        DeadLetterReason::ActorStopped,
        DeadLetterReason::ActorKilled,
        DeadLetterReason::ActorCrashed,
        DeadLetterReason::DroppedOldest,
        DeadLetterReason::DroppedNewest,
        DeadLetterReason::Expired,
        DeadLetterReason::NotRestarted,
    ];

    /// The reason for what is still queued when an actor exits with
    /// `exit`, and the exit itself when that was a crash.
    pub(crate) fn for_exit(exit: &ExitReason) -> (Self, Option<&ExitReason>) {
        match exit {
            ExitReason::Killed => (DeadLetterReason::ActorKilled, None),
            exit if exit.is_normal() => (DeadLetterReason::ActorStopped, None),
            crash => (DeadLetterReason::ActorCrashed, Some(crash)),
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// A short stable name, for metric labels.
    pub fn label(self) -> &'static str {
        match self {
            DeadLetterReason::ActorStopped => "actor_stopped",
            DeadLetterReason::ActorKilled => "actor_killed",
            DeadLetterReason::ActorCrashed => "actor_crashed",
            DeadLetterReason::DroppedOldest => "dropped_oldest",
            DeadLetterReason::DroppedNewest => "dropped_newest",
            DeadLetterReason::Expired => "expired",
            DeadLetterReason::NotRestarted => "not_restarted",
        }
    }
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeadLetterReason::ActorStopped => "actor stopped before handling it",
            DeadLetterReason::ActorKilled => "actor was killed before handling it",
            DeadLetterReason::ActorCrashed => "actor crashed before handling it",
            DeadLetterReason::DroppedOldest => "dropped as the oldest message of a full mailbox",
            DeadLetterReason::DroppedNewest => "dropped on arrival at a full mailbox",
            DeadLetterReason::Expired => "time-to-live expired before delivery",
            DeadLetterReason::NotRestarted => {
                "kept for its actor's replacement, which was never started"
            }
        })
    }
}

/// One recorded dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The actor it was addressed to.
    pub recipient: ActorId,
    /// The message's `MESSAGE_TYPE`.
    pub message_type: &'static str,
    /// The message rendered with `Debug`, cut to
    /// [`DeadLetter::SUMMARY_BYTES`] (then ending in `…`): the office keeps
    /// a summary, never a copy of a large message.
    pub message: String,
    /// Why it was not handled.
    pub reason: DeadLetterReason,
    /// For [`DeadLetterReason::ActorCrashed`] and
    /// [`DeadLetterReason::NotRestarted`]: how the actor exited.
    pub exit: Option<ExitReason>,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

impl DeadLetter {
    /// The most bytes of a message's `Debug` text a letter keeps (plus the
    /// `…` that marks a cut).
    pub const SUMMARY_BYTES: usize = 256;
}

/// A message's `Debug` text, at most [`DeadLetter::SUMMARY_BYTES`] long.
/// The writer refuses everything past the bound, so a large message is
/// never rendered whole (an 8 MiB `Vec<u8>` would be 25 MB of text); a
/// `Debug` impl still walks its fields, and a hand-written one that prints
/// a length instead of every element makes even that cheap.
fn summary(message: &dyn fmt::Debug) -> String {
    let mut text = BoundedText(String::new());
    if fmt::write(&mut text, format_args!("{message:?}")).is_err() {
        text.0.push('…');
    }
    text.0
}

/// A `fmt::Write` that takes [`DeadLetter::SUMMARY_BYTES`] and then fails,
/// which makes `Debug` impls stop writing.
struct BoundedText(String);

impl fmt::Write for BoundedText {
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        let room = DeadLetter::SUMMARY_BYTES - self.0.len();
        if piece.len() <= room {
            self.0.push_str(piece);
            return Ok(());
        }
        let mut end = room;
        while !piece.is_char_boundary(end) {
            end -= 1;
        }
        self.0.push_str(&piece[..end]);
        Err(fmt::Error)
    }
}

impl fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dead letter to {} ({}): {} — {}",
            self.recipient, self.message_type, self.message, self.reason
        )?;
        match &self.exit {
            Some(exit) => write!(f, " ({exit})"),
            None => Ok(()),
        }
    }
}

/// Where dead letters are recorded; one per actor system.
///
/// ```
/// use airssys_rt::mailbox::{DeadLetterOffice, DeadLetterReason};
/// use airssys_rt::util::ActorId;
/// let office = DeadLetterOffice::new(2);
/// office.record(ActorId::from_raw(1), "u64", &5u64, DeadLetterReason::Expired);
/// assert_eq!(office.total(), 1);
/// assert_eq!(office.count(DeadLetterReason::Expired), 1);
/// assert_eq!(office.recent()[0].message, "5");
/// ```
pub struct DeadLetterOffice {
    counts: [AtomicU64; 7],
    recent: Mutex<VecDeque<DeadLetter>>,
    keep: usize,
    metrics: Option<Arc<RuntimeMetrics>>,
    subscribers: Subscribers<DeadLetter>,
    reclaimers: Reclaimers,
}

/// A subscription to dead letters from the moment it was made
/// ([`DeadLetterOffice::subscribe`]). Dropping it unsubscribes.
#[derive(Debug)]
pub struct DeadLetterStream {
    receiver: mpsc::UnboundedReceiver<DeadLetter>,
}

impl DeadLetterStream {
    /// The next dead letter; `None` once the office is gone.
    pub async fn recv(&mut self) -> Option<DeadLetter> {
        self.receiver.recv().await
    }

    /// The next dead letter if one is waiting.
    pub fn try_recv(&mut self) -> Option<DeadLetter> {
        self.receiver.try_recv().ok()
    }
}

impl fmt::Debug for DeadLetterOffice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetterOffice")
            .field("total", &self.total())
            .field("keep", &self.keep)
            .finish()
    }
}

impl DeadLetterOffice {
    /// An office that keeps the `keep` most recent letters.
    pub fn new(keep: usize) -> Self {
        Self {
            counts: Default::default(),
            recent: Mutex::new(VecDeque::new()),
            keep,
            metrics: None,
            subscribers: Subscribers::default(),
            reclaimers: Reclaimers::default(),
        }
    }

    pub(crate) fn with_metrics(keep: usize, metrics: Arc<RuntimeMetrics>) -> Self {
        Self {
            metrics: Some(metrics),
            ..Self::new(keep)
        }
    }

    /// Records `message` as undeliverable to `recipient`.
    pub fn record(
        &self,
        recipient: ActorId,
        message_type: &'static str,
        message: &dyn fmt::Debug,
        reason: DeadLetterReason,
    ) {
        self.record_with_exit(recipient, message_type, message, reason, None);
    }

    /// [`record`](Self::record), with the exit of the actor that crashed.
    fn record_with_exit(
        &self,
        recipient: ActorId,
        message_type: &'static str,
        message: &dyn fmt::Debug,
        reason: DeadLetterReason,
        exit: Option<&ExitReason>,
    ) {
        self.counts[reason.index()].fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.dead_letter();
        }
        tracing::debug!(%recipient, message_type, %reason, "dead letter");
        metrics::counter!("airssys_rt_dead_letters_total", "reason" => reason.label()).increment(1);
        if self.keep == 0 && !self.subscribers.is_watched() {
            return;
        }
        let letter = DeadLetter {
            recipient,
            message_type,
            message: summary(message),
            reason,
            exit: exit.cloned(),
            at: time::now(),
        };
        self.subscribers.send(&letter);
        if self.keep == 0 {
            return;
        }
        let mut recent = self.recent.lock();
        if recent.len() == self.keep {
            recent.pop_front();
        }
        recent.push_back(letter);
    }

    /// Records `message` as undeliverable to `recipient`, then hands it to
    /// its type's reclaimer ([`reclaim`](Self::reclaim)) or drops it.
    pub(crate) fn record_owned<M: Message>(
        &self,
        recipient: ActorId,
        message: M,
        reason: DeadLetterReason,
        exit: Option<&ExitReason>,
    ) {
        self.record_with_exit(recipient, M::MESSAGE_TYPE, &message, reason, exit);
        self.reclaimers.hand_back(recipient, message, reason);
    }

    /// Records the message an actor was handling when it crashed: it is
    /// gone (the handler owned it), so the letter says so instead of its text.
    pub(crate) fn record_crashed_in_handler(
        &self,
        recipient: ActorId,
        message_type: &'static str,
        exit: &ExitReason,
    ) {
        /// Stands in for the message's text.
        struct InHandler;
        impl fmt::Debug for InHandler {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("(being handled when its actor crashed)")
            }
        }
        self.record_with_exit(
            recipient,
            message_type,
            &InHandler,
            DeadLetterReason::ActorCrashed,
            Some(exit),
        );
    }

    /// Hands back every dead letter of type `M` recorded from now on, by
    /// value, to resubmit or inspect (the ring and [`subscribe`](Self::subscribe)
    /// keep only a summary). One reclaimer per type: a newer call takes
    /// over and the older stream ends. Letters wait in the stream until
    /// read; dropping it stops the reclaiming.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use airssys_rt::mailbox::DeadLetterReason;
    /// use airssys_rt::prelude::*;
    ///
    /// #[derive(Debug, PartialEq)]
    /// struct Job(u32);
    /// impl Message for Job {
    ///     const MESSAGE_TYPE: &'static str = "job";
    /// }
    ///
    /// struct Worker;
    /// impl Actor for Worker {
    ///     type Message = Job;
    ///     type Error = std::convert::Infallible;
    ///     async fn handle_message(&mut self, _: Job, _: &mut ActorContext<Job>) -> Result<(), Self::Error> {
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let system = ActorSystem::new(SystemConfig::default()).unwrap();
    /// let mut lost_jobs = system.dead_letters().reclaim::<Job>();
    /// let worker = system.spawn(Worker).unwrap();
    /// worker.stop(); // served before the job, which is still queued at the exit
    /// worker.tell(Job(7)).await.unwrap();
    /// worker.wait_for_exit().await;
    /// let lost = lost_jobs.recv().await.unwrap();
    /// assert_eq!((lost.message, lost.reason), (Job(7), DeadLetterReason::ActorStopped));
    /// # }
    /// ```
    pub fn reclaim<M: Message>(&self) -> Reclaimed<M> {
        self.reclaimers.reclaim()
    }

    /// Streams every dead letter recorded from now on.
    ///
    /// ```
    /// use airssys_rt::mailbox::{DeadLetterOffice, DeadLetterReason};
    /// use airssys_rt::util::ActorId;
    ///
    /// let office = DeadLetterOffice::new(0);
    /// let mut letters = office.subscribe();
    /// office.record(ActorId::from_raw(3), "u64", &7u64, DeadLetterReason::DroppedNewest);
    /// let letter = letters.try_recv().expect("streamed");
    /// assert_eq!((letter.message.as_str(), letter.reason), ("7", DeadLetterReason::DroppedNewest));
    /// ```
    pub fn subscribe(&self) -> DeadLetterStream {
        DeadLetterStream {
            receiver: self.subscribers.subscribe(),
        }
    }

    /// All dead letters recorded so far.
    pub fn total(&self) -> u64 {
        DeadLetterReason::ALL.iter().map(|r| self.count(*r)).sum()
    }

    /// Dead letters recorded for `reason`.
    pub fn count(&self, reason: DeadLetterReason) -> u64 {
        self.counts[reason.index()].load(Ordering::Relaxed)
    }

    /// The most recent letters, oldest first.
    pub fn recent(&self) -> Vec<DeadLetter> {
        self.recent.lock().iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_only_the_newest_but_counts_all() {
        let office = DeadLetterOffice::new(2);
        for i in 0..5u64 {
            office.record(
                ActorId::from_raw(9),
                "u64",
                &i,
                DeadLetterReason::ActorStopped,
            );
        }
        office.record(
            ActorId::from_raw(9),
            "u64",
            &99u64,
            DeadLetterReason::DroppedNewest,
        );
        assert_eq!(office.total(), 6);
        assert_eq!(office.count(DeadLetterReason::ActorStopped), 5);
        let recent: Vec<_> = office.recent().into_iter().map(|l| l.message).collect();
        assert_eq!(recent, vec!["4", "99"]);
    }

    #[test]
    fn a_long_message_is_cut_to_the_summary_bound_on_a_char_boundary() {
        let office = DeadLetterOffice::new(1);
        let long = "é".repeat(1_000);
        office.record(
            ActorId::from_raw(1),
            "text",
            &long,
            DeadLetterReason::Expired,
        );
        let kept = &office.recent()[0].message;
        assert!(kept.len() <= DeadLetter::SUMMARY_BYTES + '…'.len_utf8());
        assert!(kept.starts_with("\"éé") && kept.ends_with("é…"), "{kept}");
        office.record(
            ActorId::from_raw(1),
            "u64",
            &7u64,
            DeadLetterReason::Expired,
        );
        assert_eq!(office.recent()[0].message, "7", "a short one is whole");
    }

    #[test]
    fn display_names_recipient_and_reason() {
        let office = DeadLetterOffice::new(1);
        office.record(
            ActorId::from_raw(3),
            "ping",
            &"hi",
            DeadLetterReason::Expired,
        );
        let text = office.recent()[0].to_string();
        assert!(
            text.contains("actor#3") && text.contains("time-to-live"),
            "{text}"
        );
    }

    #[test]
    fn subscribers_get_every_letter_and_dropped_ones_are_forgotten() {
        let office = DeadLetterOffice::new(0);
        let mut first = office.subscribe();
        let second = office.subscribe();
        drop(second);
        for i in 0..3u64 {
            office.record(ActorId::from_raw(1), "u64", &i, DeadLetterReason::Expired);
        }
        let seen: Vec<_> = std::iter::from_fn(|| first.try_recv())
            .map(|l| l.message)
            .collect();
        assert_eq!(seen, ["0", "1", "2"]);
        assert_eq!(office.subscribers.len(), 1);
        drop(first);
        office.record(
            ActorId::from_raw(1),
            "u64",
            &9u64,
            DeadLetterReason::Expired,
        );
        assert!(!office.subscribers.is_watched(), "nobody listens any more");
        assert!(office.recent().is_empty(), "keep = 0 keeps nothing");
    }
}
