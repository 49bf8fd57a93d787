//! `#[derive(Message)]`: what each attribute produces.

use airssys_rt::prelude::*;

mod billing {
    use airssys_rt::prelude::*;

    /// No attributes: every default.
    #[derive(Debug, Message)]
    pub struct Invoice {
        pub cents: u64,
    }
}

#[derive(Debug, Message)]
#[message(name = "orders.placed")]
struct Placed;

#[derive(Debug, Message)]
#[message(priority = "critical")]
enum Alarm {
    Fire,
}

#[derive(Debug, Message)]
#[message(priority = Low, version = 3)]
struct Tick(u64);

#[derive(Debug, Message)]
#[message(routing_key = customer)]
struct Order {
    customer: String,
    cents: u64,
}

#[derive(Debug, Message)]
#[message(routing_key = 1, name = "keyed")]
struct Keyed(u64, &'static str);

/// Generic messages keep their parameters and bounds.
#[derive(Debug, Message)]
#[message(name = "wrapped")]
struct Wrapped<T: std::fmt::Debug + Send + 'static>(T);

#[test]
fn without_attributes_the_type_names_itself_by_its_path() {
    let invoice = billing::Invoice { cents: 1 };
    assert_eq!(
        billing::Invoice::MESSAGE_TYPE,
        "derive_message::billing::Invoice"
    );
    assert_eq!(invoice.priority(), MessagePriority::Normal);
    assert_eq!(invoice.version(), 1);
    assert_eq!(invoice.routing_key(), None);
    assert_eq!(invoice.cents, 1);
}

#[test]
fn name_sets_the_message_type() {
    assert_eq!(Placed::MESSAGE_TYPE, "orders.placed");
    assert_eq!(Placed.routing_key(), None);
}

#[test]
fn priority_is_fixed_for_the_type_and_accepts_a_string_or_a_name() {
    assert_eq!(Alarm::Fire.priority(), MessagePriority::Critical);
    assert_eq!(Tick(0).priority(), MessagePriority::Low);
    assert_eq!(Tick(0).0, 0);
}

#[test]
fn version_sets_the_schema_version() {
    assert_eq!(Tick(1).version(), 3);
    assert_eq!(Alarm::Fire.version(), 1);
}

#[test]
fn routing_key_returns_the_named_or_numbered_field() {
    let order = Order {
        customer: "c-42".into(),
        cents: 5,
    };
    assert_eq!(order.routing_key(), Some("c-42"));
    assert_eq!(order.cents, 5);
    let keyed = Keyed(7, "k");
    assert_eq!(
        (Keyed::MESSAGE_TYPE, keyed.routing_key()),
        ("keyed", Some("k"))
    );
    assert_eq!(keyed.0, 7);
}

#[test]
fn generic_messages_derive_too() {
    assert_eq!(<Wrapped<u8> as Message>::MESSAGE_TYPE, "wrapped");
    assert_eq!(Wrapped(5u8).0, 5);
}

/// A derived message goes through an actor like a hand-written one.
#[tokio::test]
async fn a_derived_message_is_delivered() {
    struct Billing(tokio::sync::mpsc::UnboundedSender<(String, u64)>);
    impl Actor for Billing {
        type Message = Order;
        type Error = std::convert::Infallible;
        async fn handle_message(
            &mut self,
            order: Order,
            _: &mut ActorContext<Order>,
        ) -> Result<(), Self::Error> {
            let _ = self.0.send((order.customer, order.cents));
            Ok(())
        }
    }
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let (seen, mut orders) = tokio::sync::mpsc::unbounded_channel();
    let billing = system.spawn(Billing(seen)).unwrap();
    let order = Order {
        customer: "a".into(),
        cents: 5,
    };
    billing.tell(order).await.unwrap();
    assert_eq!(orders.recv().await, Some(("a".to_string(), 5)));
}
