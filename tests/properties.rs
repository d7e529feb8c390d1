//! Property tests (issue 7): parsing a formatted reference gives back the same reference,
//! and normalisation is idempotent.

use imagegate::image_ref::ImageRef;
use proptest::prelude::*;

fn component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,8}([._-][a-z0-9]{1,6}){0,2}"
}

/// A first component that cannot be read as a registry host (no `.` or `:`).
fn first_component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,8}([_-][a-z0-9]{1,6}){0,2}"
}

fn domain() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        "[a-z]{1,8}\\.(io|com|example)".prop_map(Some),
        "(localhost|registry)(:[0-9]{2,5})".prop_map(Some),
        "[a-z]{1,6}\\.[a-z]{2,3}:[0-9]{2,5}".prop_map(Some),
        Just(Some("[::1]:5000".to_string())),
    ]
}

fn tag() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}".prop_map(Some)
    ]
}

fn digest() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        "[a-f0-9]{64}".prop_map(|h| Some(format!("sha256:{h}")))
    ]
}

proptest! {
    #[test]
    fn a_formatted_reference_parses_back(d in domain(), first in first_component(), rest in prop::collection::vec(component(), 0..3), t in tag(), dg in digest()) {
        let mut s = String::new();
        if let Some(d) = &d { s.push_str(d); s.push('/'); }
        s.push_str(&first);
        for c in &rest { s.push('/'); s.push_str(c); }
        if let Some(t) = &t { s.push(':'); s.push_str(t); }
        if let Some(dg) = &dg { s.push('@'); s.push_str(dg); }
        let r = ImageRef::parse(&s).unwrap();
        prop_assert_eq!(&r.tag, &t);
        prop_assert_eq!(&r.digest, &dg);
        let again = ImageRef::parse(&r.canonical()).unwrap();
        prop_assert_eq!(again.canonical(), r.canonical());
        prop_assert_eq!(again.pull_reference(), r.pull_reference());
        prop_assert_eq!((&again.domain, &again.path), (&r.domain, &r.path));
    }

    #[test]
    fn normalisation_is_idempotent(s in "\\PC{0,60}") {
        if let Ok(r) = ImageRef::parse(&s) {
            let once = r.canonical();
            let twice = ImageRef::parse(&once).unwrap().canonical();
            prop_assert_eq!(once, twice);
        }
    }
}
