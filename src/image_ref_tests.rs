//! Unit tests of `image_ref.rs`, kept beside it so the module itself stays short.
use super::*;

const H64: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

/// A case's text with each `{c*n}` written out as `n` times the character `c`, so that
/// long names, tags and digests stay readable in the tables below.
fn expand(case: &str) -> String {
    let mut out = String::new();
    let mut rest = case;
    while let Some((before, after)) = rest.split_once('{') {
        let (run, after) = after.split_once('}').expect("a `{` is closed");
        let (c, n) = run.split_once('*').expect("a run is `{c*n}`");
        out += before;
        out += &c.repeat(n.parse().expect("a run's length is a number"));
        rest = after;
    }
    out + rest
}

/// Valid references and their canonical form. Cases follow distribution/reference's
/// `reference_test.go` and `normalize_test.go`.
const VALID: &[(&str, &str)] = &[
    ("nginx", "docker.io/library/nginx:latest"),
    ("nginx:1.25", "docker.io/library/nginx:1.25"),
    ("library/nginx", "docker.io/library/nginx:latest"),
    ("docker.io/nginx", "docker.io/library/nginx:latest"),
    ("index.docker.io/nginx", "docker.io/library/nginx:latest"),
    ("index.docker.io/user/app:v1", "docker.io/user/app:v1"),
    ("docker.io/library/nginx:1", "docker.io/library/nginx:1"),
    ("user/app", "docker.io/user/app:latest"),
    ("user/team/app:1", "docker.io/user/team/app:1"),
    ("ghcr.io/acme/web:v1.5.0", "ghcr.io/acme/web:v1.5.0"),
    ("localhost/app", "localhost/app:latest"),
    ("localhost:5000/app:dev", "localhost:5000/app:dev"),
    ("127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c"),
    ("[::1]:5000/app:1", "[::1]:5000/app:1"),
    ("[2001:db8::1]/app", "[2001:db8::1]/app:latest"),
    ("registry:5000/app", "registry:5000/app:latest"),
    (
        "my-registry.example.com/a",
        "my-registry.example.com/a:latest",
    ),
    ("Example.com/app", "Example.com/app:latest"),
    ("a.b.c/d/e/f/g", "a.b.c/d/e/f/g:latest"),
    ("app_1:tag", "docker.io/library/app_1:tag"),
    ("app__x", "docker.io/library/app__x:latest"),
    ("app---x", "docker.io/library/app---x:latest"),
    ("app.x-y_z", "docker.io/library/app.x-y_z:latest"),
    (
        "nginx:TAG_Upper.1-x",
        "docker.io/library/nginx:TAG_Upper.1-x",
    ),
    ("nginx:_under", "docker.io/library/nginx:_under"),
    ("nginx:{t*128}", "docker.io/library/nginx:{t*128}"),
    (
        "nginx@sha256:{f*64}",
        "docker.io/library/nginx@sha256:{f*64}",
    ),
    (
        "nginx:1.25@sha256:{f*64}",
        "docker.io/library/nginx:1.25@sha256:{f*64}",
    ),
    ("ghcr.io/a/b@sha512:{a*128}", "ghcr.io/a/b@sha512:{a*128}"),
    (
        "localhost:5000/x:y@sha256:{f*64}",
        "localhost:5000/x:y@sha256:{f*64}",
    ),
    (
        "quay.io/jetstack/cert-manager-controller:v1.14.4",
        "quay.io/jetstack/cert-manager-controller:v1.14.4",
    ),
    (
        "registry-1.docker.io/library/nginx",
        "registry-1.docker.io/library/nginx:latest",
    ),
    (
        "xn--bcher-kva.example/app",
        "xn--bcher-kva.example/app:latest",
    ),
    ("foo.com:8080/bar:1.0", "foo.com:8080/bar:1.0"),
    ("a/b", "docker.io/a/b:latest"),
    ("0/1", "docker.io/0/1:latest"),
    ("{a*63}/x", "docker.io/{a*63}/x:latest"),
    ("{e*63}g", "docker.io/library/{e*63}g:latest"),
];

#[test]
fn valid_references_normalise_like_docker() {
    for &(case, want) in VALID {
        let got = ImageRef::parse(&expand(case)).unwrap_or_else(|e| panic!("case {case}: {e}"));
        assert_eq!(got.canonical(), expand(want), "case {case}");
    }
    assert!(VALID.len() >= 35);
}

/// Invalid references refused with an error that names no part of them.
const REFUSED: &[(&str, RefError)] = &[
    ("", RefError::Empty),
    (" nginx", RefError::Whitespace),
    ("nginx\n", RefError::Whitespace),
    ("ngi nx", RefError::Whitespace),
    ("{f*64}", RefError::HexIdentifier),
    ("nginx:{t*129}", RefError::TagTooLong),
    // 256 counts the path only: 255 passes (below).
    ("ghcr.io/{a*256}", RefError::NameTooLong),
    ("nginx@sha256:{a*63}", SHA256_LENGTH),
    ("nginx@sha256:{a*65}", SHA256_LENGTH),
    ("nginx@sha256:{A*64}", SHA256_LENGTH),
    ("nginx@sha512:{a*64}", SHA512_LENGTH),
];

const SHA256_LENGTH: RefError = RefError::DigestLength {
    algorithm: "sha256",
    expected: 64,
};
const SHA512_LENGTH: RefError = RefError::DigestLength {
    algorithm: "sha512",
    expected: 128,
};

/// An error that names the part of the input at fault, and inputs with the part each names.
type Named = (
    fn(String) -> RefError,
    &'static [(&'static str, &'static str)],
);

/// Invalid references refused with an error naming the part at fault.
const NAMED: &[Named] = &[
    (
        RefError::Uppercase,
        &[
            ("Nginx", "Nginx"),
            ("docker.io/Foo/bar", "Foo/bar"),
            ("ghcr.io/Acme/web:v1", "Acme/web"),
        ],
    ),
    (
        RefError::InvalidPath,
        &[
            ("-nginx", "-nginx"),
            ("nginx-", "nginx-"),
            ("ng..inx", "ng..inx"),
            ("ng___inx", "ng___inx"),
            ("ng._inx", "ng._inx"),
            ("a//b", "a//b"),
            ("ghcr.io/", ""),
            ("ghcr.io/a/", "a/"),
            ("/nginx", "/nginx"),
            ("ghcr.io/a+b", "a+b"),
        ],
    ),
    (
        RefError::InvalidTag,
        &[
            ("nginx:", ""),
            ("nginx:-x", "-x"),
            ("nginx:.x", ".x"),
            ("nginx:a+b", "a+b"),
        ],
    ),
    (
        RefError::InvalidDomain,
        &[
            ("nginx:a/b", "nginx:a"),
            ("foo_bar.com:8080/x", "foo_bar.com:8080"),
            ("-foo.com/x", "-foo.com"),
            ("foo..com/x", "foo..com"),
            ("foo.com:/x", "foo.com:"),
            ("foo.com:abc/x", "foo.com:abc"),
            ("foo..com/x", "foo..com"),
            ("[::1/x", "[::1"),
            ("[]:5000/x", "[]:5000"),
            ("[zz::1]/x", "[zz::1]"),
            ("[::1]5000/x", "[::1]5000"),
        ],
    ),
    (
        RefError::InvalidDigest,
        &[
            ("nginx@sha256", "sha256"),
            ("nginx@sha256:abc", "sha256:abc"),
            ("nginx@sha256:{g*64}", "sha256:{g*64}"),
            ("nginx@1sha:{a*64}", "1sha:{a*64}"),
            (
                "nginx@sha256:{f*64}@sha256:{f*64}",
                "sha256:{f*64}@sha256:{f*64}",
            ),
        ],
    ),
    (RefError::UnsupportedDigest, &[("nginx@md5:{a*32}", "md5")]),
];

#[test]
fn invalid_references_say_why() {
    let refused = REFUSED.iter().map(|(case, want)| (*case, want.clone()));
    let named = NAMED.iter().flat_map(|&(error, cases)| {
        cases
            .iter()
            .map(move |&(case, part)| (case, error(expand(part))))
    });
    let cases: Vec<(&str, RefError)> = refused.chain(named).collect();
    for (case, want) in &cases {
        let got = ImageRef::parse(&expand(case));
        assert_eq!(got.as_ref(), Err(want), "case {case:?}");
    }
    assert!(cases.len() >= 40);
    assert!(
        ImageRef::parse(&expand("ghcr.io/{a*255}")).is_ok(),
        "255 counts the path only"
    );
}

/// Regression (issue 7, fuzzing): a 250-character Docker Hub name is too long once
/// `library/` is added, as Docker counts it; it must not parse and then fail to reparse.
#[test]
fn the_length_limit_counts_the_library_prefix() {
    let name = "a".repeat(250);
    assert_eq!(ImageRef::parse(&name), Err(RefError::NameTooLong));
    assert!(ImageRef::parse(&"a".repeat(247)).is_ok());
    assert!(ImageRef::parse(&format!("user/{}", "a".repeat(250))).is_ok());
}

#[test]
fn pulled_reference_prefers_digest() {
    let d = format!("sha256:{H64}");
    let r = ImageRef::parse(&format!("nginx:1.25@{d}")).unwrap();
    assert_eq!(r.pull_reference(), d);
    assert_eq!(
        r.pulled().canonical(),
        format!("docker.io/library/nginx@{d}")
    );
    let r = ImageRef::parse("nginx").unwrap();
    assert_eq!(r.pull_reference(), "latest");
    assert_eq!(r.api_host(), DOCKER_HUB_API);
    assert_eq!(
        ImageRef::parse("ghcr.io/a/b").unwrap().api_host(),
        "ghcr.io"
    );
}

#[test]
fn canonical_form_reparses_to_itself() {
    for s in [
        "nginx",
        "user/app:1",
        "localhost:5000/x",
        "[::1]:5000/a/b:c",
    ] {
        let r = ImageRef::parse(s).unwrap();
        let again = ImageRef::parse(&r.canonical()).unwrap();
        assert_eq!(again.canonical(), r.canonical());
    }
}

#[test]
fn variables_are_detected() {
    assert!(has_variable("ghcr.io/a:${TAG}"));
    assert!(has_variable("$(REGISTRY)/a"));
    assert!(has_variable("{{ .Values.image }}"));
    assert!(!has_variable("ghcr.io/a:v$1"));
}

#[test]
fn the_written_domain_is_the_one_before_normalisation() {
    assert_eq!(written_domain("ghcr.io/a/b:1"), Some("ghcr.io"));
    assert_eq!(
        written_domain("localhost:5000/a@sha256:00"),
        Some("localhost:5000")
    );
    assert_eq!(written_domain("nginx:1.27"), None);
    assert_eq!(written_domain("library/nginx"), None);
    assert_eq!(written_domain("docker.io/library/nginx"), Some("docker.io"));
}
