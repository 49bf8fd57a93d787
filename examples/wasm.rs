//! A WebAssembly counter under a supervisor, surviving a trap.
//!
//! ```text
//! cargo run --example wasm --features wasm
//! ```

use std::time::Duration;

use airssys_rt::integration::wasm::{WasmActor, WasmMessage, WasmSpec};
use airssys_rt::prelude::*;
use airssys_rt::supervisor::SupervisionEvent;

/// Counts the first byte of each message; byte 255 makes it trap.
const COUNTER: &str = include_str!("../tests/wasm/trap.wat");

async fn add(counter: &ActorRef<WasmMessage>, n: u8) -> Result<u64, Box<dyn std::error::Error>> {
    let answer = counter
        .ask(
            |reply| WasmMessage::Ask(vec![n], reply),
            Duration::from_secs(5),
        )
        .await??;
    let bytes: [u8; 8] = answer.as_slice().try_into()?;
    Ok(u64::from_le_bytes(bytes))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let system = ActorSystem::new(SystemConfig::default())?;
    let spec = WasmSpec::from_wat(COUNTER)?;
    let mut events = system.supervision_events();
    let supervisor = system
        .start_supervisor(
            SupervisorSpec::one_for_one()
                .intensity(3, Duration::from_secs(5))
                .child(ChildSpec::worker("counter", move || {
                    WasmActor::new(spec.clone())
                })),
        )
        .await?;
    let counter = supervisor
        .child::<WasmMessage>("counter")
        .await?
        .ok_or("running")?;
    println!("add 2 -> total {}", add(&counter, 2).await?);
    println!("add 3 -> total {}", add(&counter, 3).await?);
    println!(
        "add 255 (the guest traps): {:?}",
        add(&counter, 255).await.map_err(|e| e.to_string())
    );
    while let Some(event) = events.recv().await {
        println!("supervisor: {event}");
        if matches!(event, SupervisionEvent::ChildRestarted { .. }) {
            break;
        }
    }
    let counter = supervisor
        .child::<WasmMessage>("counter")
        .await?
        .ok_or("running")?;
    println!("fresh instance: add 4 -> total {}", add(&counter, 4).await?);
    system.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
