//! SPEC §10 against a real `nats-server` with JetStream: the test servers
//! themselves, `mcpwatch forward` and `mcpwatch run --input nats://…`.

use std::time::Duration;

use async_nats::jetstream;

use crate::support::nats::{NatsCluster, NatsServer};

/// A current-thread runtime for the test's own NATS client.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_three_node_cluster_keeps_a_replicated_stream_when_a_node_dies() {
    let mut cluster = NatsCluster::start();
    let url = cluster.url();
    rt().block_on(async {
        let client = async_nats::connect(url.split(',').collect::<Vec<_>>())
            .await
            .unwrap();
        let js = jetstream::new(client);
        // The cluster's meta leader may take a moment to be elected.
        let mut created = None;
        for _ in 0..100 {
            match js
                .create_stream(jetstream::stream::Config {
                    name: "T".into(),
                    subjects: vec!["t.>".into()],
                    num_replicas: 3,
                    ..Default::default()
                })
                .await
            {
                Ok(s) => {
                    created = Some(s);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        assert!(created.is_some(), "no stream on the cluster");
        js.publish("t.a", "1".into()).await.unwrap().await.unwrap();
    });
    cluster.nodes[0].kill();
    let url = cluster.nodes[1].url();
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(url).await.unwrap());
        let mut ack = None;
        for _ in 0..100 {
            if let Ok(f) = js.publish("t.a", "2".into()).await
                && let Ok(a) = f.await
            {
                ack = Some(a);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(ack.expect("publish after a node died").sequence, 2);
    });
}

#[test]
fn a_single_node_restarts_on_its_store() {
    let mut server = NatsServer::start();
    let url = server.url();
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(&url).await.unwrap());
        js.create_stream(jetstream::stream::Config {
            name: "T".into(),
            subjects: vec!["t.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        js.publish("t.a", "1".into()).await.unwrap().await.unwrap();
    });
    server.restart();
    rt().block_on(async {
        let js = jetstream::new(async_nats::connect(&url).await.unwrap());
        let mut s = js.get_stream("T").await.unwrap();
        assert_eq!(s.info().await.unwrap().state.messages, 1);
    });
    assert!(server.store().join("jetstream").is_dir());
}
