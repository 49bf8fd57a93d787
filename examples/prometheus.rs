//! Exports the runtime's metrics in Prometheus text format.
//!
//! Installs `metrics-exporter-prometheus` as the `metrics` recorder, runs a
//! little traffic (broker requests, a pool, a dead letter, a supervised
//! restart) and prints what a Prometheus scrape would see.
//!
//! ```text
//! cargo run --example prometheus
//! ```

use std::convert::Infallible;
use std::time::Duration;

use airssys_rt::address::{ActorAddress, PoolSpec, PoolStrategy};
use airssys_rt::broker::{InMemoryMessageBroker, MessageBroker};
use airssys_rt::prelude::*;
use airssys_rt::supervisor::SupervisionEvent;
use metrics_exporter_prometheus::PrometheusBuilder;

#[derive(Debug, Message)]
#[message(name = "square")]
struct Square(u64);

/// Squares numbers, answering through the broker.
struct Squarer(InMemoryMessageBroker<Square, u64>);

impl Actor for Squarer {
    type Message = Square;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        Square(n): Square,
        ctx: &mut ActorContext<Square>,
    ) -> Result<(), Infallible> {
        if let Some(request) = ctx.envelope_id() {
            let _ = self.0.reply(request, n * n);
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prometheus = PrometheusBuilder::new().install_recorder()?;

    let system = ActorSystem::new(SystemConfig::default())?;
    let broker = InMemoryMessageBroker::<Square, u64>::new(&system);

    // Requests to a pool behind one address.
    let factory = broker.clone();
    let pool = system
        .start_pool(PoolSpec::new("squarers", 3, move || {
            Squarer(factory.clone())
        }))
        .await?;
    let address = ActorAddress::Pool {
        pool: "squarers".into(),
        strategy: PoolStrategy::RoundRobin,
    };
    for n in 0..200 {
        let request = MessageEnvelope::new(address.clone(), Square(n));
        broker.request(request, Duration::from_secs(1)).await?;
    }

    // An envelope that expires before it is handled becomes a dead letter.
    let expired = MessageEnvelope::new(address.clone(), Square(0)).with_ttl(Duration::ZERO);
    broker.send(expired).await?;

    // A member that dies is restarted by the pool's supervisor.
    let mut events = system.supervision_events();
    pool.members()[0].kill();
    while let Some(event) = events.recv().await {
        if matches!(event, SupervisionEvent::ChildRestarted { .. }) {
            break;
        }
    }

    system.shutdown(Duration::from_secs(1)).await;
    println!("{}", prometheus.render());
    Ok(())
}
