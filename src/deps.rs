//! The dependency graph of a config's services: start order, shutdown
//! waves, dependents, and cycles. Pure: services are indices into the
//! config's service list (file order), and nothing here starts or stops
//! anything.
//!
//! An edge goes from a service to a dependency it waits for, with the
//! condition it waits for (`depends_on = { db = "healthy" }`).

use crate::config::{Condition, Config};
use std::collections::{BTreeSet, VecDeque};
use std::fmt;

/// The services in file order and the edges to what each depends on.
/// Acyclic, and every edge names a known service (see [`Graph::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    names: Vec<String>,
    /// `deps[i]`: what service `i` waits for, in the order written,
    /// each dependency once.
    deps: Vec<Vec<(usize, Condition)>>,
    /// `rdeps[i]`: the services that wait for `i`, in file order.
    rdeps: Vec<Vec<usize>>,
}

/// Why a set of services makes no graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// Service `service` depends on `name`, which is not a service.
    Unknown { service: usize, name: String },
    /// The services, in order, each depending on the next and the last on
    /// the first. One service: it depends on itself.
    Cycle {
        services: Vec<usize>,
        names: Vec<String>,
    },
}

impl GraphError {
    /// `"a -> b -> c -> a"`, for a cycle.
    pub fn cycle_text(names: &[String]) -> String {
        let mut all: Vec<&str> = names.iter().map(String::as_str).collect();
        if let Some(first) = names.first() {
            all.push(first);
        }
        all.join(" -> ")
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::Unknown { name, .. } => write!(f, "unknown service \"{name}\""),
            GraphError::Cycle { names, .. } if names.len() == 1 => {
                write!(f, "\"{}\" depends on itself", names[0])
            }
            GraphError::Cycle { names, .. } => {
                write!(f, "dependency cycle: {}", GraphError::cycle_text(names))
            }
        }
    }
}

impl Graph {
    /// The graph of `services` (name, dependencies with conditions), in
    /// file order. Every problem is returned: each unknown dependency, each
    /// service that depends on itself, and one cycle per group of services
    /// that depend on each other (a strongly connected component), starting
    /// at its service first in the file. A dependency listed twice counts
    /// once (its first condition).
    pub fn new(services: &[(String, Vec<(String, Condition)>)]) -> Result<Graph, Vec<GraphError>> {
        let names: Vec<String> = services.iter().map(|(n, _)| n.clone()).collect();
        let mut errors = Vec::new();
        let mut deps: Vec<Vec<(usize, Condition)>> = Vec::with_capacity(services.len());
        for (i, (_, wants)) in services.iter().enumerate() {
            let mut edges: Vec<(usize, Condition)> = Vec::new();
            for (name, cond) in wants {
                match names.iter().position(|n| n == name) {
                    Some(j) if edges.iter().any(|&(k, _)| k == j) => {}
                    Some(j) => edges.push((j, *cond)),
                    None => errors.push(GraphError::Unknown {
                        service: i,
                        name: name.clone(),
                    }),
                }
            }
            deps.push(edges);
        }
        let targets: Vec<Vec<usize>> = deps
            .iter()
            .map(|e| e.iter().map(|&(j, _)| j).collect())
            .collect();
        for cycle in find_cycles(&targets) {
            errors.push(GraphError::Cycle {
                names: cycle.iter().map(|&i| names[i].clone()).collect(),
                services: cycle,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut rdeps = vec![Vec::new(); names.len()];
        for (i, edges) in deps.iter().enumerate() {
            for &(j, _) in edges {
                rdeps[j].push(i);
            }
        }
        Ok(Graph { names, deps, rdeps })
    }

    /// The graph of a validated config (which `config::load` has already
    /// checked for unknown services and cycles).
    pub fn of(config: &Config) -> Result<Graph, Vec<GraphError>> {
        let services: Vec<(String, Vec<(String, Condition)>)> = config
            .services
            .iter()
            .map(|(n, s)| (n.clone(), s.lifecycle.depends_on.clone()))
            .collect();
        Graph::new(&services)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    #[cfg(test)]
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    #[cfg(test)]
    /// The index of service `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// What service `i` waits for, in the order written.
    pub fn dependencies(&self, i: usize) -> &[(usize, Condition)] {
        &self.deps[i]
    }

    #[cfg(test)]
    /// The services that wait for `i` directly, in file order.
    pub fn dependents(&self, i: usize) -> Vec<usize> {
        self.rdeps[i].clone()
    }

    /// Every service that waits for `i`, directly or through others (not
    /// `i` itself), in start order: what a restart of `i` with
    /// `propagate = true` restarts.
    #[cfg(test)]
    pub fn dependents_transitive(&self, i: usize) -> Vec<usize> {
        let mut seen = vec![false; self.len()];
        let mut queue: VecDeque<usize> = self.rdeps[i].iter().copied().collect();
        while let Some(j) = queue.pop_front() {
            if !seen[j] {
                seen[j] = true;
                queue.extend(self.rdeps[j].iter().copied());
            }
        }
        self.start_order()
            .into_iter()
            .filter(|&j| seen[j])
            .collect()
    }

    /// Every service, each after all it depends on; among those free to
    /// go, file order.
    pub fn start_order(&self) -> Vec<usize> {
        let mut waiting: Vec<usize> = self.deps.iter().map(Vec::len).collect();
        let mut free: BTreeSet<usize> = (0..self.len()).filter(|&i| waiting[i] == 0).collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(i) = free.pop_first() {
            order.push(i);
            for &j in &self.rdeps[i] {
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    free.insert(j);
                }
            }
        }
        order
    }

    #[cfg(test)]
    /// Shutdown in waves: first the services nothing depends on, then
    /// those only they depended on, ..., last the deepest dependencies.
    /// The services of one wave can stop in parallel; each wave is in file
    /// order.
    pub fn stop_waves(&self) -> Vec<Vec<usize>> {
        let mut waiting: Vec<usize> = self.rdeps.iter().map(Vec::len).collect();
        let mut wave: Vec<usize> = (0..self.len()).filter(|&i| waiting[i] == 0).collect();
        let mut waves = Vec::new();
        while !wave.is_empty() {
            let mut next = Vec::new();
            for &i in &wave {
                for &(j, _) in &self.deps[i] {
                    waiting[j] -= 1;
                    if waiting[j] == 0 {
                        next.push(j);
                    }
                }
            }
            next.sort_unstable();
            waves.push(std::mem::replace(&mut wave, next));
        }
        waves
    }
}

#[cfg(test)]
/// A cycle in `edges` (`edges[i]`: the nodes `i` points to), in order,
/// starting at its node first in the list; None if there is none.
pub fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    find_cycles(edges).into_iter().min_by_key(|c| c[0])
}

/// The cycles worth reporting in `edges`: each self-loop (`[i]`), and for
/// each group of two or more nodes that reach each other, its shortest
/// cycle through its first node, following edges in their order. Sorted
/// by first node.
pub fn find_cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut cycles: Vec<Vec<usize>> = Vec::new();
    for (i, out) in edges.iter().enumerate() {
        if out.contains(&i) {
            cycles.push(vec![i]);
        }
    }
    for component in strongly_connected(edges) {
        if component.len() < 2 {
            continue;
        }
        let start = component[0];
        let inside = |n: usize| component.binary_search(&n).is_ok();
        // Breadth first from `start` back to it, within the component.
        let mut parent: Vec<Option<usize>> = vec![None; edges.len()];
        let mut queue = VecDeque::from([start]);
        let mut last = None;
        'search: while let Some(n) = queue.pop_front() {
            for &m in &edges[n] {
                if m == start {
                    last = Some(n);
                    break 'search;
                }
                if m != n && inside(m) && parent[m].is_none() {
                    parent[m] = Some(n);
                    queue.push_back(m);
                }
            }
        }
        // A component of two or more always has a way back to its start.
        let Some(mut n) = last else { continue };
        let mut cycle = vec![n];
        while n != start {
            match parent[n] {
                Some(p) => n = p,
                None => break,
            }
            cycle.push(n);
        }
        cycle.reverse();
        cycles.push(cycle);
    }
    cycles.sort_by_key(|c| c[0]);
    cycles
}

/// Tarjan's strongly connected components (iteratively), each sorted.
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut components = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, next edge to look at)
        let mut calls: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut e)) = calls.last_mut() {
            if let Some(&w) = edges[v].get(*e) {
                *e += 1;
                if w >= n {
                    continue;
                }
                if index[w] == usize::MAX {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(parent, _)) = calls.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                component.sort_unstable();
                components.push(component);
            }
        }
    }
    components
}

#[cfg(test)]
mod tests {
    use super::*;
    use Condition::*;

    /// `("web", "db:healthy cache")`: dependencies written `name:condition`
    /// (`ready` when left out).
    fn graph(spec: &[(&str, &str)]) -> Result<Graph, Vec<GraphError>> {
        let services: Vec<(String, Vec<(String, Condition)>)> = spec
            .iter()
            .map(|(name, deps)| {
                let deps = deps
                    .split_whitespace()
                    .map(|d| {
                        let (n, c) = d.split_once(':').unwrap_or((d, "ready"));
                        let c = match c {
                            "started" => Started,
                            "ready" => Ready,
                            "healthy" => Healthy,
                            "completed" => Completed,
                            other => panic!("{other}"),
                        };
                        (n.to_string(), c)
                    })
                    .collect();
                (name.to_string(), deps)
            })
            .collect();
        Graph::new(&services)
    }

    fn ok(spec: &[(&str, &str)]) -> Graph {
        graph(spec).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn names(g: &Graph, list: &[usize]) -> Vec<String> {
        list.iter().map(|&i| g.name(i).to_string()).collect()
    }

    fn waves(g: &Graph) -> Vec<Vec<String>> {
        g.stop_waves().iter().map(|w| names(g, w)).collect()
    }

    /// The text of each problem.
    fn errors(spec: &[(&str, &str)]) -> Vec<String> {
        graph(spec)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn independent_services_keep_file_order() {
        let g = ok(&[("c", ""), ("a", ""), ("b", "")]);
        assert_eq!(names(&g, &g.start_order()), ["c", "a", "b"]);
        assert_eq!(waves(&g), [["c", "a", "b"]]);
        assert!(g.dependents_transitive(0).is_empty());
    }

    #[test]
    fn a_chain_starts_from_its_end_and_stops_from_its_start() {
        // web -> migrate -> db, written in the "wrong" order.
        let g = ok(&[("web", "migrate:completed"), ("migrate", "db"), ("db", "")]);
        assert_eq!(names(&g, &g.start_order()), ["db", "migrate", "web"]);
        assert_eq!(waves(&g), [["web"], ["migrate"], ["db"]]);
        assert_eq!(g.dependencies(0), [(1, Completed)]);
        assert_eq!(g.dependents(2), [1]);
        assert_eq!(names(&g, &g.dependents_transitive(2)), ["migrate", "web"]);
        assert_eq!(names(&g, &g.dependents_transitive(1)), ["web"]);
    }

    #[test]
    fn a_diamond() {
        //      app
        //     /   \
        //  cache  api
        //     \   /
        //      db
        let g = ok(&[
            ("app", "cache api"),
            ("db", ""),
            ("api", "db:healthy"),
            ("cache", "db:started"),
            ("tool", ""),
        ]);
        assert_eq!(
            names(&g, &g.start_order()),
            ["db", "api", "cache", "app", "tool"]
        );
        assert_eq!(
            waves(&g),
            vec![vec!["app", "tool"], vec!["api", "cache"], vec!["db"]]
        );
        assert_eq!(names(&g, &g.dependents(1)), ["api", "cache"]);
        assert_eq!(
            names(&g, &g.dependents_transitive(1)),
            ["api", "cache", "app"]
        );
        assert_eq!(g.dependencies(0), [(3, Ready), (2, Ready)]);
        assert_eq!(g.index("cache"), Some(3));
    }

    #[test]
    fn stop_waves_are_the_start_order_reversed_by_depth() {
        // A dependency stops only after everything that depends on it,
        // even through a longer path: d waits for b (wave 1) and c (wave 2).
        let g = ok(&[("a", "b c"), ("b", "d"), ("c", "b"), ("d", "")]);
        assert_eq!(names(&g, &g.start_order()), ["d", "b", "c", "a"]);
        assert_eq!(waves(&g), [["a"], ["c"], ["b"], ["d"]]);
        let order = g.start_order();
        let stopped: Vec<usize> = g.stop_waves().concat();
        for i in 0..g.len() {
            for &(j, _) in g.dependencies(i) {
                let pos = |list: &[usize], x| list.iter().position(|&y| y == x).unwrap();
                assert!(pos(&order, j) < pos(&order, i));
                assert!(pos(&stopped, i) < pos(&stopped, j));
            }
        }
    }

    #[test]
    fn a_dependency_listed_twice_counts_once() {
        let g = ok(&[("a", "b:started b:healthy"), ("b", "")]);
        assert_eq!(g.dependencies(0), [(1, Started)]);
        assert_eq!(g.dependents(1), [0]);
    }

    #[test]
    fn cycles_are_named_in_order_from_their_first_service() {
        assert_eq!(errors(&[("a", "a")]), ["\"a\" depends on itself"]);
        assert_eq!(
            errors(&[("x", ""), ("a", "b"), ("b", "a")]),
            ["dependency cycle: a -> b -> a"]
        );
        assert_eq!(
            errors(&[("b", "c"), ("a", "b"), ("c", "a")]),
            ["dependency cycle: b -> c -> a -> b"]
        );
        assert_eq!(
            errors(&[("a", "b"), ("b", "c"), ("c", "d"), ("d", "a"), ("e", "a")]),
            ["dependency cycle: a -> b -> c -> d -> a"]
        );
    }

    #[test]
    fn each_cycle_once_and_the_shortest_through_its_first_service() {
        // Two separate cycles, a self-loop, and a component with a short
        // way back (a -> c -> a) beside a long one (a -> b -> c -> a).
        assert_eq!(
            errors(&[
                ("a", "b c"),
                ("b", "c"),
                ("c", "a"),
                ("s", "s"),
                ("x", "y"),
                ("y", "x"),
            ]),
            [
                "dependency cycle: a -> c -> a",
                "\"s\" depends on itself",
                "dependency cycle: x -> y -> x",
            ]
        );
        let err = graph(&[("p", ""), ("a", "b"), ("b", "c"), ("c", "a")]).unwrap_err();
        assert_eq!(
            err,
            [GraphError::Cycle {
                services: vec![1, 2, 3],
                names: vec!["a".into(), "b".into(), "c".into()],
            }]
        );
    }

    #[test]
    fn unknown_dependencies_are_named_and_cycles_still_found() {
        let err = graph(&[("web", "dbb"), ("a", "b nope"), ("b", "a")]).unwrap_err();
        assert_eq!(
            err,
            [
                GraphError::Unknown {
                    service: 0,
                    name: "dbb".into()
                },
                GraphError::Unknown {
                    service: 1,
                    name: "nope".into()
                },
                GraphError::Cycle {
                    services: vec![1, 2],
                    names: vec!["a".into(), "b".into()],
                },
            ]
        );
        assert_eq!(err[0].to_string(), "unknown service \"dbb\"");
    }

    #[test]
    fn find_cycle_on_raw_edges() {
        assert_eq!(find_cycle(&[vec![1], vec![2], vec![]]), None);
        assert_eq!(find_cycle(&[vec![], vec![1]]), Some(vec![1]));
        assert_eq!(
            find_cycle(&[vec![], vec![2], vec![3], vec![4], vec![1]]),
            Some(vec![1, 2, 3, 4])
        );
        assert_eq!(find_cycle(&[]), None);
    }

    #[test]
    fn a_long_chain_does_not_overflow_the_stack() {
        let n = 100_000;
        let edges: Vec<Vec<usize>> = (0..n).map(|i| vec![(i + 1) % n]).collect();
        let cycle = find_cycle(&edges).unwrap();
        assert_eq!(cycle.len(), n);
        assert_eq!(cycle[..3], [0, 1, 2]);
    }
}
