//! A `ZeroCopyMessage` is shared, never copied: cloning it allocates
//! nothing, and the actor that receives it sees the sender's very bytes.
//! (Its own test binary, so no other test allocates concurrently.)

use std::convert::Infallible;
use std::time::Duration;

#[path = "support/counting.rs"]
mod counting;

use airssys_rt::message::ZeroCopyMessage;
use airssys_rt::prelude::*;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

#[derive(Debug)]
enum Frames {
    Frame(ZeroCopyMessage),
    Where(ReplyTo<Vec<usize>>),
}

impl Message for Frames {
    const MESSAGE_TYPE: &'static str = "test.frames";
}

/// Remembers where the bytes of every frame it received live.
struct Keeper(Vec<usize>);

impl Actor for Keeper {
    type Message = Frames;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        msg: Frames,
        _: &mut ActorContext<Frames>,
    ) -> Result<(), Infallible> {
        match msg {
            Frames::Frame(frame) => self.0.push(frame.data().as_ptr() as usize),
            Frames::Where(reply) => {
                let _ = reply.reply(self.0.clone());
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn clones_and_sends_copy_no_bytes() {
    const MIB: usize = 1 << 20;
    let frame = ZeroCopyMessage::new(vec![42u8; MIB]);
    let mut clones = Vec::with_capacity(1_000);
    let before = counting::live();
    for _ in 0..1_000 {
        clones.push(frame.clone());
    }
    assert_eq!(
        counting::live() - before,
        0,
        "a thousand clones of 1 MiB allocate nothing"
    );

    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let keeper = system.spawn(Keeper(Vec::new())).unwrap();
    for clone in clones.drain(..10) {
        keeper.tell(Frames::Frame(clone)).await.unwrap();
    }
    let seen = keeper
        .ask(Frames::Where, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        seen,
        vec![frame.data().as_ptr() as usize; 10],
        "the receiver reads the sender's bytes"
    );
    system.shutdown(Duration::from_secs(5)).await;
}
