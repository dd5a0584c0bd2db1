//! The dependency graph of the list-append checker: transactions as
//! nodes, edges of four kinds, strongly connected components (Tarjan)
//! and, inside each, one cycle of the most severe class the edges allow.
//!
//! Classes, from Adya's thesis as Elle names them: G0 (a cycle of write
//! dependencies only), G1c (write and read dependencies), G-single
//! (exactly one anti-dependency), G2 (several). A cycle that needs a
//! real-time edge gets the suffix `-realtime`: serializable, perhaps, but
//! not strictly.

use std::collections::{HashMap, VecDeque};

/// An edge kind, as a bit so one edge can carry several.
pub type Kinds = u8;
/// T1 appended a value, T2 appended the next one to the same key.
pub const WW: Kinds = 1;
/// T2 read a list whose last value T1 appended.
pub const WR: Kinds = 2;
/// T1 read a list, T2 appended the value that comes next in it.
pub const RW: Kinds = 4;
/// T1 completed before T2 was invoked.
pub const REALTIME: Kinds = 8;
const DATA: Kinds = WW | WR | RW;
const ALL: Kinds = DATA | REALTIME;

/// Anti-dependency edges tried as the one rw edge of a G-single cycle,
/// per component, before the search settles for a G2 cycle.
const SINGLE_RW_TRIES_MAX: usize = 256;

/// Edges between transactions `0..nodes`.
#[derive(Debug, Default)]
pub struct Graph {
    successors: Vec<Vec<usize>>,
    kinds: HashMap<(usize, usize), Kinds>,
}

/// A cycle found in the graph: the nodes in order (the last leads back to
/// the first) and the kind chosen for each step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    pub nodes: Vec<usize>,
    pub kinds: Vec<Kinds>,
}

impl Cycle {
    /// Returns the class of the cycle, e.g. `G-single-realtime`.
    pub fn class(&self) -> String {
        let rw = self.kinds.iter().filter(|kind| **kind == RW).count();
        let base = match (rw, self.kinds.contains(&WR)) {
            (0, false) => "G0",
            (0, true) => "G1c",
            (1, _) => "G-single",
            _ => "G2",
        };
        if self.kinds.contains(&REALTIME) {
            format!("{base}-realtime")
        } else {
            base.to_owned()
        }
    }
}

/// Returns the name of one kind, as reports show it.
pub fn kind_name(kind: Kinds) -> &'static str {
    match kind {
        WW => "ww",
        WR => "wr",
        RW => "rw",
        _ => "realtime",
    }
}

impl Graph {
    /// A graph of `nodes` transactions and no edges.
    pub fn new(nodes: usize) -> Self {
        Self {
            successors: vec![Vec::new(); nodes],
            kinds: HashMap::new(),
        }
    }

    /// Adds an edge `from -> to` of `kind`; a transaction never depends
    /// on itself.
    pub fn add(&mut self, from: usize, to: usize, kind: Kinds) {
        if from == to {
            return;
        }
        let kinds = self.kinds.entry((from, to)).or_insert(0);
        if *kinds == 0 {
            self.successors[from].push(to);
        }
        *kinds |= kind;
    }

    /// Returns the kinds of the edge `from -> to` (0: none).
    pub fn kinds(&self, from: usize, to: usize) -> Kinds {
        self.kinds.get(&(from, to)).copied().unwrap_or(0)
    }

    /// Returns the number of (deduplicated) edges.
    pub fn edges(&self) -> usize {
        self.kinds.len()
    }

    /// Returns every strongly connected component of more than one node.
    pub fn cyclic_components(&self) -> Vec<Vec<usize>> {
        let all: Vec<usize> = (0..self.successors.len()).collect();
        components(self, &all, ALL)
    }

    /// Returns one cycle inside `component`, of the most severe class its
    /// edges allow: G0, then G1c, G-single, G2, then the same with
    /// real-time edges.
    pub fn worst_cycle(&self, component: &[usize]) -> Option<Cycle> {
        let realtime = [0, REALTIME];
        realtime.iter().find_map(|&extra| {
            self.cycle_within(component, WW | extra)
                .or_else(|| self.cycle_within(component, WW | WR | extra))
                .or_else(|| self.single_rw_cycle(component, WW | WR | extra))
                .or_else(|| self.cycle_within(component, DATA | extra))
        })
    }

    /// A cycle using only edges of `mask`, among `nodes`.
    fn cycle_within(&self, nodes: &[usize], mask: Kinds) -> Option<Cycle> {
        let component = components(self, nodes, mask).into_iter().next()?;
        let start = *component.first()?;
        let path = self.path(&component, mask, start, start)?;
        Some(self.cycle_from(path, mask))
    }

    /// A cycle of one rw edge closed by edges of `mask` (which has no rw).
    fn single_rw_cycle(&self, nodes: &[usize], mask: Kinds) -> Option<Cycle> {
        let mut tries = 0;
        for &from in nodes {
            for &to in &self.successors[from] {
                if self.kinds(from, to) & RW == 0 || !nodes.contains(&to) {
                    continue;
                }
                tries += 1;
                if tries > SINGLE_RW_TRIES_MAX {
                    return None;
                }
                if let Some(mut path) = self.path(nodes, mask, to, from) {
                    path.push(from);
                    let mut cycle = self.cycle_from(path, mask);
                    // The path ends at `from`; its rw edge closes the cycle.
                    if let Some(last) = cycle.kinds.last_mut() {
                        *last = RW;
                    }
                    return Some(cycle);
                }
            }
        }
        None
    }

    /// Turns a path of nodes (first to last, closed back to the first)
    /// into a cycle, naming each step by the weakest kind in `mask`.
    fn cycle_from(&self, nodes: Vec<usize>, mask: Kinds) -> Cycle {
        let kinds = (0..nodes.len())
            .map(|position| {
                let next = nodes[(position + 1) % nodes.len()];
                let kinds = self.kinds(nodes[position], next) & mask;
                [WW, WR, RW, REALTIME]
                    .into_iter()
                    .find(|kind| kinds & kind != 0)
                    .unwrap_or(REALTIME)
            })
            .collect();
        Cycle { nodes, kinds }
    }

    /// The shortest path from `from` to `to` (one step at least) over
    /// edges of `mask` among `nodes`: every node on it, `from` first,
    /// `to` left out (the caller closes the cycle).
    fn path(&self, nodes: &[usize], mask: Kinds, from: usize, to: usize) -> Option<Vec<usize>> {
        let inside: std::collections::HashSet<usize> = nodes.iter().copied().collect();
        let mut parent: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(node) = queue.pop_front() {
            for &next in &self.successors[node] {
                if self.kinds(node, next) & mask == 0 || !inside.contains(&next) {
                    continue;
                }
                if next == to {
                    let mut path = vec![node];
                    let mut at = node;
                    while at != from {
                        at = parent[&at];
                        path.push(at);
                    }
                    path.reverse();
                    return Some(path);
                }
                if next != from && !parent.contains_key(&next) {
                    parent.insert(next, node);
                    queue.push_back(next);
                }
            }
        }
        None
    }
}

/// Tarjan's strongly connected components of the subgraph of `nodes` and
/// the edges of `mask`, iteratively (a long chain must not overflow the
/// stack); only components of more than one node.
fn components(graph: &Graph, nodes: &[usize], mask: Kinds) -> Vec<Vec<usize>> {
    const UNVISITED: usize = usize::MAX;
    let count = graph.successors.len();
    let mut inside = vec![false; count];
    for &node in nodes {
        inside[node] = true;
    }
    let mut index = vec![UNVISITED; count];
    let mut low = vec![0; count];
    let mut on_stack = vec![false; count];
    let mut stack = Vec::new();
    let mut found = Vec::new();
    let mut next_index = 0;
    for &root in nodes {
        if index[root] != UNVISITED {
            continue;
        }
        // Frames of (node, position of its next successor to look at).
        let mut frames = vec![(root, 0)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (node, ref mut position)) = frames.last_mut() {
            if let Some(&next) = graph.successors[node].get(*position) {
                *position += 1;
                if !inside[next] || graph.kinds(node, next) & mask == 0 {
                    continue;
                }
                if index[next] == UNVISITED {
                    index[next] = next_index;
                    low[next] = next_index;
                    next_index += 1;
                    stack.push(next);
                    on_stack[next] = true;
                    frames.push((next, 0));
                } else if on_stack[next] {
                    low[node] = low[node].min(index[next]);
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                low[parent] = low[parent].min(low[node]);
            }
            if low[node] == index[node] {
                let mut component = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.reverse();
                    found.push(component);
                }
            }
        }
    }
    found
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    type Edge = (usize, usize, Kinds);

    fn graph(nodes: usize, edges: &[Edge]) -> Graph {
        let mut graph = Graph::new(nodes);
        for &(from, to, kind) in edges {
            graph.add(from, to, kind);
        }
        graph
    }

    #[test]
    fn a_chain_has_no_cycle() {
        let edges: Vec<Edge> = (0..10_000).map(|n| (n, n + 1, WW)).collect();
        assert!(graph(10_001, &edges).cyclic_components().is_empty());
    }

    #[test]
    fn finds_each_component_once() {
        let graph = graph(
            6,
            &[
                (0, 1, WW),
                (1, 0, WR),
                (2, 3, WW),
                (3, 4, RW),
                (4, 2, WW),
                (5, 0, WW),
            ],
        );
        let mut found = graph.cyclic_components();
        found.sort();
        assert_eq!(found, [vec![0, 1], vec![2, 3, 4]]);
    }

    #[test]
    fn prefers_the_most_severe_cycle() {
        // 0 -> 1 -> 0 by ww, and 0 -> 2 -> 0 through two rw edges.
        let graph = graph(3, &[(0, 1, WW), (1, 0, WW), (0, 2, RW), (2, 0, RW)]);
        let component = &graph.cyclic_components()[0];
        assert_eq!(graph.worst_cycle(component).unwrap().class(), "G0");
    }

    #[test]
    fn classifies_by_the_edges_a_cycle_needs() {
        let cases: [(&[Edge], &str); 6] = [
            (&[(0, 1, WW), (1, 0, WR)], "G1c"),
            (&[(0, 1, RW), (1, 2, WW), (2, 0, WR)], "G-single"),
            (&[(0, 1, RW), (1, 0, RW)], "G2"),
            (&[(0, 1, WW), (1, 0, REALTIME)], "G0-realtime"),
            (&[(0, 1, RW), (1, 0, REALTIME)], "G-single-realtime"),
            (&[(0, 1, WR | RW), (1, 0, RW)], "G-single"),
        ];
        for (edges, class) in cases {
            let graph = graph(3, edges);
            let component = &graph.cyclic_components()[0];
            let cycle = graph.worst_cycle(component).unwrap();
            assert_eq!(cycle.class(), class, "{edges:?}: {cycle:?}");
            assert_eq!(cycle.nodes.len(), cycle.kinds.len());
        }
    }
}
