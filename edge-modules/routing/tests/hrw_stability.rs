//! Rendezvous hashing moves only what it must: adding a node moves about
//! 1/(N+1) of the streams, all to the new node; removing one moves only
//! its streams. Measured over 10,000 stream names.

mod common;

use common::{FRANKFURT, node};
use livestack_routing::{ClientGeo, OriginNode, Policy, pick};

const STREAMS: usize = 10_000;

fn assignment(nodes: &[OriginNode]) -> Vec<String> {
    let client = ClientGeo::default();
    let policy = Policy::default();
    (0..STREAMS)
        .map(|i| {
            pick(&format!("live/cam-{i}"), &client, nodes, None, &policy)
                .expect("healthy nodes")
                .node_id
                .to_owned()
        })
        .collect()
}

fn region(n: usize) -> Vec<OriginNode> {
    (0..n)
        .map(|i| node(&format!("origin-{i}"), "eu-central", FRANKFURT))
        .collect()
}

#[test]
fn balanced_over_nodes() {
    let before = assignment(&region(10));
    for i in 0..10 {
        let share = before
            .iter()
            .filter(|id| **id == format!("origin-{i}"))
            .count();
        // 1,000 expected; binomial σ ≈ 30.
        assert!((880..=1_120).contains(&share), "origin-{i}: {share}");
    }
}

#[test]
fn adding_a_node_moves_about_one_in_n_plus_one_all_to_it() {
    let before = assignment(&region(10));
    let after = assignment(&region(11));
    let moved: Vec<usize> = (0..STREAMS).filter(|&i| before[i] != after[i]).collect();
    assert!(
        moved.iter().all(|&i| after[i] == "origin-10"),
        "only to the new node"
    );
    let fraction = moved.len() as f64 / STREAMS as f64;
    // Ideal 1/11 ≈ 0.0909.
    assert!((0.08..=0.10).contains(&fraction), "moved {fraction}");
}

#[test]
fn removing_a_node_moves_only_its_streams() {
    let nodes = region(10);
    let before = assignment(&nodes);
    let without: Vec<OriginNode> = nodes
        .iter()
        .filter(|n| n.id != "origin-3")
        .cloned()
        .collect();
    let after = assignment(&without);
    let mut moved = 0;
    for i in 0..STREAMS {
        if before[i] == "origin-3" {
            moved += 1;
            assert_ne!(after[i], "origin-3");
        } else {
            assert_eq!(
                before[i], after[i],
                "stream {i} moved although its node stayed"
            );
        }
    }
    let fraction = moved as f64 / STREAMS as f64;
    assert!((0.088..=0.112).contains(&fraction), "moved {fraction}");
}

#[test]
fn an_unhealthy_node_is_the_same_as_a_removed_one() {
    let mut nodes = region(10);
    let without: Vec<OriginNode> = nodes
        .iter()
        .filter(|n| n.id != "origin-7")
        .cloned()
        .collect();
    nodes[7].healthy = false;
    assert_eq!(assignment(&nodes), assignment(&without));
}
