use super::*;

fn registries(list: &str) -> Registries {
    Registries::new(RegistryAddrs::parse(list).unwrap()).unwrap()
}

#[tokio::test]
async fn a_failure_moves_to_the_next_replica_and_wraps_around() {
    let registries = registries("127.0.0.1:1,127.0.0.1:2,127.0.0.1:3");
    let first = registries.current();
    let second = registries.failed(&first).await;
    let third = registries.failed(&second).await;
    let fourth = registries.failed(&third).await;
    let seen = [&first, &second, &third].map(|c| c.address.clone());
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, ["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"]);
    assert_eq!(fourth.address, first.address, "after the last comes the first again");
}

#[tokio::test]
async fn users_of_one_failed_replica_move_on_once() {
    let registries = registries("127.0.0.1:1,127.0.0.1:2,127.0.0.1:3");
    let failed = registries.current();
    let one = registries.failed(&failed).await;
    let other = registries.clone().failed(&failed).await;
    assert_eq!(one.address, other.address);
    assert_ne!(one.address, failed.address);
}

#[tokio::test]
async fn a_fleet_does_not_all_start_on_the_first_address() {
    let starts: std::collections::HashSet<String> =
        (0..64).map(|_| registries("127.0.0.1:1,127.0.0.1:2").current().address).collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
}

#[tokio::test]
async fn a_call_tries_each_replica_while_unavailable() {
    let registries = registries("127.0.0.1:1,127.0.0.1:2,127.0.0.1:3");
    let tried = Mutex::new(Vec::new());
    let answer: Result<(), tonic::Status> = registries
        .call(|_| {
            tried.lock().push(registries.current().address);
            async { Err(tonic::Status::unavailable("down")) }
        })
        .await;
    assert_eq!(answer.unwrap_err().code(), tonic::Code::Unavailable);
    let mut tried = tried.into_inner();
    tried.sort();
    tried.dedup();
    assert_eq!(tried.len(), 3, "every replica once: {tried:?}");

    let calls = Mutex::new(0);
    let refused: Result<(), tonic::Status> = registries
        .call(|_| {
            *calls.lock() += 1;
            async { Err(tonic::Status::not_found("agent \"a\"")) }
        })
        .await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::NotFound);
    assert_eq!(*calls.lock(), 1, "an answer that is not UNAVAILABLE is final");
}

#[tokio::test]
async fn no_replica_answering_names_every_address_tried() {
    // Ports 1 and 2 on loopback: nothing listens there.
    let one = connect_any(&RegistryAddrs::parse("127.0.0.1:1").unwrap()).await.unwrap_err();
    let text = one.to_string();
    assert!(text.starts_with("cannot reach the registry at 127.0.0.1:1: "), "{text}");
    assert!(!text.contains("http://"), "one address is named once: {text}");
    let two = connect_any(&RegistryAddrs::parse("127.0.0.1:1,127.0.0.1:2").unwrap()).await;
    let text = two.unwrap_err().to_string();
    assert!(
        text.starts_with(
            "cannot reach the registry at 127.0.0.1:1,127.0.0.1:2: http://127.0.0.1:1: "
        ),
        "{text}"
    );
    assert!(text.contains("; http://127.0.0.1:2: "), "{text}");
}
