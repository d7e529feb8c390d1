//! Unit tests of `image_ref.rs`, kept beside it so the module itself stays short.
use super::*;

const H64: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

/// Valid references and their canonical form. Cases follow distribution/reference's
/// `reference_test.go` and `normalize_test.go`.
#[test]
fn valid_references_normalise_like_docker() {
    let d = format!("sha256:{H64}");
    let d512 = format!("sha512:{}", "a".repeat(128));
    let cases: Vec<(String, String)> = vec![
        ("nginx".into(), "docker.io/library/nginx:latest".into()),
        ("nginx:1.25".into(), "docker.io/library/nginx:1.25".into()),
        (
            "library/nginx".into(),
            "docker.io/library/nginx:latest".into(),
        ),
        (
            "docker.io/nginx".into(),
            "docker.io/library/nginx:latest".into(),
        ),
        (
            "index.docker.io/nginx".into(),
            "docker.io/library/nginx:latest".into(),
        ),
        (
            "index.docker.io/user/app:v1".into(),
            "docker.io/user/app:v1".into(),
        ),
        (
            "docker.io/library/nginx:1".into(),
            "docker.io/library/nginx:1".into(),
        ),
        ("user/app".into(), "docker.io/user/app:latest".into()),
        ("user/team/app:1".into(), "docker.io/user/team/app:1".into()),
        (
            "ghcr.io/acme/web:v1.5.0".into(),
            "ghcr.io/acme/web:v1.5.0".into(),
        ),
        ("localhost/app".into(), "localhost/app:latest".into()),
        (
            "localhost:5000/app:dev".into(),
            "localhost:5000/app:dev".into(),
        ),
        ("127.0.0.1:5000/a/b:c".into(), "127.0.0.1:5000/a/b:c".into()),
        ("[::1]:5000/app:1".into(), "[::1]:5000/app:1".into()),
        (
            "[2001:db8::1]/app".into(),
            "[2001:db8::1]/app:latest".into(),
        ),
        (
            "registry:5000/app".into(),
            "registry:5000/app:latest".into(),
        ),
        (
            "my-registry.example.com/a".into(),
            "my-registry.example.com/a:latest".into(),
        ),
        ("Example.com/app".into(), "Example.com/app:latest".into()),
        ("a.b.c/d/e/f/g".into(), "a.b.c/d/e/f/g:latest".into()),
        ("app_1:tag".into(), "docker.io/library/app_1:tag".into()),
        ("app__x".into(), "docker.io/library/app__x:latest".into()),
        ("app---x".into(), "docker.io/library/app---x:latest".into()),
        (
            "app.x-y_z".into(),
            "docker.io/library/app.x-y_z:latest".into(),
        ),
        (
            "nginx:TAG_Upper.1-x".into(),
            "docker.io/library/nginx:TAG_Upper.1-x".into(),
        ),
        (
            "nginx:_under".into(),
            "docker.io/library/nginx:_under".into(),
        ),
        (
            format!("nginx:{}", "t".repeat(128)),
            format!("docker.io/library/nginx:{}", "t".repeat(128)),
        ),
        (format!("nginx@{d}"), format!("docker.io/library/nginx@{d}")),
        (
            format!("nginx:1.25@{d}"),
            format!("docker.io/library/nginx:1.25@{d}"),
        ),
        (format!("ghcr.io/a/b@{d512}"), format!("ghcr.io/a/b@{d512}")),
        (
            format!("localhost:5000/x:y@{d}"),
            format!("localhost:5000/x:y@{d}"),
        ),
        (
            "quay.io/jetstack/cert-manager-controller:v1.14.4".into(),
            "quay.io/jetstack/cert-manager-controller:v1.14.4".into(),
        ),
        (
            "registry-1.docker.io/library/nginx".into(),
            "registry-1.docker.io/library/nginx:latest".into(),
        ),
        (
            "xn--bcher-kva.example/app".into(),
            "xn--bcher-kva.example/app:latest".into(),
        ),
        ("foo.com:8080/bar:1.0".into(), "foo.com:8080/bar:1.0".into()),
        ("a/b".into(), "docker.io/a/b:latest".into()),
        ("0/1".into(), "docker.io/0/1:latest".into()),
        (
            format!("{}/x", "a".repeat(63)),
            format!("docker.io/{}/x:latest", "a".repeat(63)),
        ),
        (
            format!("{}g", "e".repeat(63)),
            format!("docker.io/library/{}g:latest", "e".repeat(63)),
        ),
    ];
    for (input, want) in &cases {
        let got = ImageRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(&got.canonical(), want, "input {input}");
    }
    assert!(cases.len() >= 35);
}

#[test]
fn invalid_references_say_why() {
    let length = |algorithm, expected| RefError::DigestLength {
        algorithm,
        expected,
    };
    let long_path = format!("ghcr.io/{}", "a".repeat(256));
    let path_255 = format!("ghcr.io/{}", "a".repeat(255));
    assert!(
        ImageRef::parse(&path_255).is_ok(),
        "255 counts the path only"
    );
    let cases: Vec<(String, RefError)> = vec![
        ("".into(), RefError::Empty),
        (" nginx".into(), RefError::Whitespace),
        ("nginx\n".into(), RefError::Whitespace),
        ("ngi nx".into(), RefError::Whitespace),
        (H64.into(), RefError::HexIdentifier),
        ("Nginx".into(), RefError::Uppercase("Nginx".into())),
        (
            "docker.io/Foo/bar".into(),
            RefError::Uppercase("Foo/bar".into()),
        ),
        (
            "ghcr.io/Acme/web:v1".into(),
            RefError::Uppercase("Acme/web".into()),
        ),
        ("-nginx".into(), RefError::InvalidPath("-nginx".into())),
        ("nginx-".into(), RefError::InvalidPath("nginx-".into())),
        ("ng..inx".into(), RefError::InvalidPath("ng..inx".into())),
        ("ng___inx".into(), RefError::InvalidPath("ng___inx".into())),
        ("ng._inx".into(), RefError::InvalidPath("ng._inx".into())),
        ("a//b".into(), RefError::InvalidPath("a//b".into())),
        ("ghcr.io/".into(), RefError::InvalidPath("".into())),
        ("ghcr.io/a/".into(), RefError::InvalidPath("a/".into())),
        ("/nginx".into(), RefError::InvalidPath("/nginx".into())),
        ("ghcr.io/a+b".into(), RefError::InvalidPath("a+b".into())),
        ("nginx:".into(), RefError::InvalidTag("".into())),
        ("nginx:-x".into(), RefError::InvalidTag("-x".into())),
        ("nginx:.x".into(), RefError::InvalidTag(".x".into())),
        ("nginx:a+b".into(), RefError::InvalidTag("a+b".into())),
        (
            "nginx:a/b".into(),
            RefError::InvalidDomain("nginx:a".into()),
        ),
        (format!("nginx:{}", "t".repeat(129)), RefError::TagTooLong),
        (long_path, RefError::NameTooLong),
        (
            "foo_bar.com:8080/x".into(),
            RefError::InvalidDomain("foo_bar.com:8080".into()),
        ),
        (
            "-foo.com/x".into(),
            RefError::InvalidDomain("-foo.com".into()),
        ),
        (
            "foo-.com/x".into(),
            RefError::InvalidDomain("foo-.com".into()),
        ),
        (
            "foo.com:/x".into(),
            RefError::InvalidDomain("foo.com:".into()),
        ),
        (
            "foo.com:abc/x".into(),
            RefError::InvalidDomain("foo.com:abc".into()),
        ),
        (
            "foo..com/x".into(),
            RefError::InvalidDomain("foo..com".into()),
        ),
        ("[::1/x".into(), RefError::InvalidDomain("[::1".into())),
        (
            "[]:5000/x".into(),
            RefError::InvalidDomain("[]:5000".into()),
        ),
        (
            "[zz::1]/x".into(),
            RefError::InvalidDomain("[zz::1]".into()),
        ),
        (
            "[::1]5000/x".into(),
            RefError::InvalidDomain("[::1]5000".into()),
        ),
        (
            "nginx@sha256".into(),
            RefError::InvalidDigest("sha256".into()),
        ),
        (
            "nginx@sha256:abc".into(),
            RefError::InvalidDigest("sha256:abc".into()),
        ),
        (
            format!("nginx@sha256:{}", "g".repeat(64)),
            RefError::InvalidDigest(format!("sha256:{}", "g".repeat(64))),
        ),
        (
            format!("nginx@sha256:{}", "a".repeat(63)),
            length("sha256", 64),
        ),
        (
            format!("nginx@sha256:{}", "a".repeat(65)),
            length("sha256", 64),
        ),
        (
            format!("nginx@sha256:{}", "A".repeat(64)),
            length("sha256", 64),
        ),
        (
            format!("nginx@sha512:{}", "a".repeat(64)),
            length("sha512", 128),
        ),
        (
            format!("nginx@md5:{}", "a".repeat(32)),
            RefError::UnsupportedDigest("md5".into()),
        ),
        (
            format!("nginx@1sha:{}", "a".repeat(64)),
            RefError::InvalidDigest(format!("1sha:{}", "a".repeat(64))),
        ),
        (
            format!("nginx@sha256:{H64}@sha256:{H64}"),
            RefError::InvalidDigest(format!("sha256:{H64}@sha256:{H64}")),
        ),
    ];
    for (input, want) in &cases {
        assert_eq!(
            ImageRef::parse(input).as_ref(),
            Err(want),
            "input {input:?}"
        );
    }
    assert!(cases.len() >= 40);
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
