//! A counterexample's Explorer link opens its path only in the model it was found in
//! (`raft_model::link`): under other flags it is refused with the flags that differ, and a link
//! whose steps lead elsewhere is refused by the fingerprint of the state they end in.

use raft_impl::Mutation;
use raft_model::catalog::Bug;
use raft_model::check::{self, CheckOptions, Strategy, Until};
use raft_model::link::{Link, LinkError, Mismatch};
use raft_model::{probes, Action, Bounds, RaftModel, State};
use stateright::Path;

fn bug() -> Bug {
    probes::configuration(Mutation::VoteNotPersisted).expect("a catalog entry")
}

/// The shortest counterexample in `model` (symmetry reduction on, as `raftcheck check` runs).
fn counterexample(model: &RaftModel) -> Path<State, Action> {
    let options = CheckOptions {
        strategy: Strategy::Bfs,
        threads: 1,
        until: Until::AnyViolation,
        max_states: None,
        progress: None,
    };
    let report = check::run(model.clone(), &options);
    let (_, path) = report.first_violation().expect("the bug is caught");
    path.clone()
}

/// The query of a link's URL, what the Explorer's front reads.
fn query(url: &str) -> &str {
    url.split_once('?').expect("a query").1
}

/// The Explorer runs without symmetry reduction (`raftcheck explore`).
fn explorer_model(bounds: Bounds) -> RaftModel {
    RaftModel::with_kv(bounds, bug().kv).without_symmetry()
}

#[test]
fn a_counterexample_link_opens_in_the_explorer_of_its_model() {
    let model = bug().model();
    assert!(model.symmetry);
    let path = counterexample(&model);
    let url = Link::of(&model, &path).url("127.0.0.1:3000");
    assert!(
        url.starts_with("http://127.0.0.1:3000/path?servers=3&"),
        "{url}"
    );
    assert!(url.contains("&bug=vote-not-persisted&"), "{url}");
    let link = Link::parse(query(&url)).expect("the link reads back");
    assert_eq!(link, Link::of(&model, &path));
    assert_eq!(link.check(&explorer_model(bug().bounds())), Ok(()));
    assert_eq!(link.fragment(), format!("#/steps/{}", path.encode(&model)));
}

#[test]
fn a_link_under_other_flags_is_refused_naming_them() {
    let model = bug().model();
    let link = Link::of(&model, &counterexample(&model));
    let without_bug = explorer_model(bug().config);
    assert_eq!(
        link.check(&without_bug),
        Err(Mismatch::Flags(vec![(
            "bug".to_string(),
            vec!["vote-not-persisted".to_string()],
            vec![]
        )]))
    );
    let more_terms = explorer_model(Bounds {
        max_term: 2,
        ..bug().bounds()
    });
    let refused = link.check(&more_terms).unwrap_err();
    assert_eq!(
        refused,
        Mismatch::Flags(vec![(
            "max-term".to_string(),
            vec!["1".to_string()],
            vec!["2".to_string()]
        )])
    );
    assert_eq!(
        refused.to_string(),
        "the link was made under other flags: --max-term 1 in the link, 2 here"
    );
}

/// Same flags, other steps: only the fingerprint of the last state tells.
#[test]
fn a_link_whose_steps_lead_elsewhere_is_refused() {
    let model = bug().model();
    let url = Link::of(&model, &counterexample(&model)).url("a");
    let here = explorer_model(bug().bounds());
    let (before, state) = query(&url).rsplit_once("&state=").unwrap();
    let (flags, steps) = before.rsplit_once("&steps=").unwrap();
    let (head, last) = steps.rsplit_once('/').unwrap();
    let last: usize = last.parse().unwrap();
    let with_last = |index: usize| format!("{flags}&steps={head}/{index}&state={state}");
    // Another action at the last step: a run of the same length, in the same model.
    let other = (0..last).chain(last + 1..last + 20).any(|index| {
        let link = Link::parse(&with_last(index)).unwrap();
        matches!(link.check(&here), Err(Mismatch::State { .. }))
    });
    assert!(other, "no other action at the last step of {steps}");
    let past = Link::parse(&with_last(999)).unwrap();
    assert!(
        matches!(
            past.check(&here),
            Err(Mismatch::NoAction { index: 999, .. })
        ),
        "{:?}",
        past.check(&here)
    );
}

#[test]
fn flags_in_any_order_are_the_same_flags() {
    let model = bug().model();
    let url = Link::of(&model, &counterexample(&model)).url("a");
    let mut pairs: Vec<&str> = query(&url).split('&').collect();
    pairs.reverse();
    let link = Link::parse(&pairs.join("&")).unwrap();
    assert_eq!(link.check(&explorer_model(bug().bounds())), Ok(()));
}

#[test]
fn a_link_that_cannot_be_read_says_why() {
    assert_eq!(Link::parse("servers=3"), Err(LinkError::Missing("steps")));
    assert_eq!(
        Link::parse("steps=0/1&state=1&steps=0"),
        Err(LinkError::Twice("steps"))
    );
    assert_eq!(
        Link::parse("steps=0/x&state=1"),
        Err(LinkError::Steps("0/x".to_string()))
    );
    assert_eq!(
        Link::parse("steps=&state=1"),
        Err(LinkError::Steps(String::new()))
    );
    assert_eq!(
        Link::parse("steps=0&state=12345678901234567"),
        Err(LinkError::State("12345678901234567".to_string()))
    );
    assert_eq!(
        Link::parse("steps=0&state=%41"),
        Err(LinkError::State("%41".to_string()))
    );
}
