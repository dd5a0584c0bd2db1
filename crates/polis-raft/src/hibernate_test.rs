#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use std::sync::Arc;

use polis_types::NodeId;

use super::*;
use crate::beats::Leadership;

const GROUP: GroupId = GroupId(7);

fn settings() -> HibernationSettings {
    HibernationSettings {
        enabled: true,
        idle_before_park: Duration::from_secs(2),
        election_timeout_max: Duration::from_secs(2),
    }
}

/// Node 1 hosts replica 11, node 2 replica 12, node 3 replica 13.
fn view(me: u64, state: ServerState, leader: u64) -> GroupView {
    GroupView {
        group: GROUP,
        replica: ReplicaId(10 + me),
        state,
        term: 4,
        leader: Some(ReplicaId(10 + leader)),
        last_log_index: 20,
        committed: 20,
        applied: 20,
        members: (1..=3)
            .map(|node| (ReplicaId(10 + node), NodeId(node), true))
            .collect(),
        matched: (1..=3).map(|node| (ReplicaId(10 + node), 20)).collect(),
        joint: false,
    }
}

fn claim(leader: u64, term: u64, parked: bool, last_log_index: u64) -> Leadership {
    Leadership {
        group: GROUP,
        replica: ReplicaId(10 + leader),
        term,
        parked,
        last_log_index,
        committed: last_log_index,
        applied: last_log_index,
        items: 0,
        bytes: 0,
        version: 0,
        matched: Vec::new(),
    }
}

fn hibernation(me: u64) -> (Hibernation, Arc<Beats>) {
    let beats = Arc::new(Beats::new(NodeId(me), Duration::from_secs(1)));
    let hibernation = Hibernation::new(settings(), beats.clone());
    hibernation.add(GROUP);
    (hibernation, beats)
}

fn park(hibernation: &Hibernation) {
    hibernation.lock().get_mut(&GROUP).unwrap().parked = true;
}

#[tokio::test(start_paused = true)]
async fn an_idle_quiescent_leader_parks_and_a_busy_or_lagging_one_does_not() {
    let (hibernation, beats) = hibernation(1);
    beats.record(NodeId(2), Vec::new());
    beats.record(NodeId(3), Vec::new());
    let leader = view(1, ServerState::Leader, 1);
    assert_eq!(
        hibernation.decide(&leader),
        Decision::Keep,
        "active just now"
    );
    tokio::time::advance(Duration::from_millis(2100)).await;
    beats.record(NodeId(2), Vec::new());
    beats.record(NodeId(3), Vec::new());
    assert_eq!(hibernation.decide(&leader), Decision::Park);

    let mut lagging = leader.clone();
    lagging.matched.insert(ReplicaId(13), 19);
    assert_eq!(
        hibernation.decide(&lagging),
        Decision::Keep,
        "a follower lags"
    );
    let mut uncommitted = leader.clone();
    uncommitted.committed = 19;
    assert_eq!(hibernation.decide(&uncommitted), Decision::Keep);
    let mut joint = leader.clone();
    joint.joint = true;
    assert_eq!(
        hibernation.decide(&joint),
        Decision::Keep,
        "membership change"
    );

    tokio::time::advance(Duration::from_millis(1100)).await;
    beats.record(NodeId(2), Vec::new());
    assert_eq!(
        hibernation.decide(&leader),
        Decision::Keep,
        "node 3 stopped beating: its replica may be behind when it comes back"
    );
}

#[tokio::test(start_paused = true)]
async fn a_follower_parks_only_behind_a_parked_leader_with_the_same_log() {
    let (hibernation, beats) = hibernation(2);
    let follower = view(2, ServerState::Follower, 1);
    beats.record(NodeId(1), vec![claim(1, 4, false, 20)]);
    assert_eq!(
        hibernation.decide(&follower),
        Decision::Keep,
        "leader awake"
    );
    beats.record(NodeId(1), vec![claim(1, 4, true, 21)]);
    assert_eq!(hibernation.decide(&follower), Decision::Keep, "log differs");
    beats.record(NodeId(1), vec![claim(1, 3, true, 20)]);
    assert_eq!(hibernation.decide(&follower), Decision::Keep, "older term");
    beats.record(NodeId(1), vec![claim(1, 4, true, 20)]);
    assert_eq!(hibernation.decide(&follower), Decision::Park);
}

#[tokio::test(start_paused = true)]
async fn when_the_leader_falls_silent_one_successor_wakes_at_once_the_other_later() {
    // Group 7 among live voters {12, 13}: 7 % 2 = 1 picks replica 13.
    let (on_node_2, beats_2) = hibernation(2);
    let (on_node_3, beats_3) = hibernation(3);
    for (hibernation, beats, other) in [(&on_node_2, &beats_2, 3), (&on_node_3, &beats_3, 2)] {
        park(hibernation);
        beats.record(NodeId(1), vec![claim(1, 4, true, 20)]);
        beats.record(NodeId(other), Vec::new());
    }
    let on_2 = view(2, ServerState::Follower, 1);
    let on_3 = view(3, ServerState::Follower, 1);
    assert_eq!(on_node_2.decide(&on_2), Decision::Keep, "leader beats");
    assert_eq!(on_node_3.decide(&on_3), Decision::Keep, "leader beats");

    tokio::time::advance(Duration::from_millis(1100)).await;
    beats_2.record(NodeId(3), Vec::new());
    beats_3.record(NodeId(2), Vec::new());
    assert_eq!(on_node_3.decide(&on_3), Decision::Wake, "the successor");
    assert_eq!(on_node_2.decide(&on_2), Decision::Keep, "waits its turn");
    tokio::time::advance(Duration::from_millis(1000)).await;
    beats_2.record(NodeId(3), Vec::new());
    assert_eq!(
        on_node_2.decide(&on_2),
        Decision::Keep,
        "still within the wait"
    );
    tokio::time::advance(Duration::from_millis(1100)).await;
    assert_eq!(
        on_node_2.decide(&on_2),
        Decision::Wake,
        "no new leader woke it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_disabled_hibernation_never_parks() {
    let beats = Arc::new(Beats::new(NodeId(1), Duration::from_secs(1)));
    let hibernation = Hibernation::new(
        HibernationSettings {
            enabled: false,
            ..settings()
        },
        beats,
    );
    hibernation.add(GROUP);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(
        hibernation.decide(&view(1, ServerState::Leader, 1)),
        Decision::Keep
    );
}
