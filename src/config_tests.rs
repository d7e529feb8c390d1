//! Unit tests of `config.rs`, kept beside it so the module itself stays short.
use super::*;

fn err(text: &str) -> String {
    parse(Path::new(".imagegate.yaml"), text)
        .unwrap_err()
        .to_string()
}

#[test]
fn keys_are_read() {
    let c = parse(
        Path::new("c.yaml"),
        "include: ['clusters/**/*.yaml']\nexclude: [vendor/**]\nstrict: true\ninsecure-registries: [registry.lan:5000]\n\
         skip: ['registry.internal/**']\npolicy:\n  deny-latest: true\n  platforms: [linux/amd64]\n\
         registries:\n  docker.io:\n    mirrors: [mirror.lan/hub]\n    concurrency: 4\n    requests-per-second: 2.5\n    credentials:\n      env: HUB_AUTH\n\
         cache:\n  tag-ttl: 60\n",
    )
    .unwrap();
    assert_eq!(c.include, ["clusters/**/*.yaml"]);
    assert_eq!(c.exclude, ["vendor/**"]);
    assert!(c.strict);
    assert_eq!(c.insecure_registries, ["registry.lan:5000"]);
    assert_eq!(c.skip, ["registry.internal/**"]);
    assert!(c.policy.deny_latest && !c.policy.require_digest);
    assert_eq!(c.policy.platforms, ["linux/amd64"]);
    let hub = &c.registries["docker.io"];
    assert_eq!(hub.mirrors, ["mirror.lan/hub"]);
    assert_eq!(hub.concurrency, Some(4));
    assert_eq!(hub.requests_per_second, Some(2.5));
    assert_eq!(
        hub.credentials,
        Some(CredentialSource::Env("HUB_AUTH".into()))
    );
    assert_eq!(c.cache.tag_ttl, Some(60));
    let empty = parse(Path::new("c.yaml"), "").unwrap();
    assert_eq!(empty.path.as_deref(), Some(Path::new("c.yaml")));
    assert_eq!(
        Config {
            path: None,
            text: None,
            ..empty
        },
        Config::default()
    );
    // Issue 13, row 1: a helper is a bare name, never a path into the repository.
    let e = err("registries:\n  ghcr.io:\n    credentials:\n      helper: x/pwn\n");
    assert!(e.starts_with(".imagegate.yaml:4:15:"), "{e}");
    assert!(e.contains("not a bare helper name"), "{e}");
    assert!(is_bare_helper_name("ecr-login") && is_bare_helper_name("gcloud"));
    assert!(!is_bare_helper_name("../x") && !is_bare_helper_name(""));
}

#[test]
fn errors_point_into_the_file_and_suggest() {
    assert_eq!(
        err("include: [a]\nexlcude: [b]\n"),
        ".imagegate.yaml:2:1: unknown key `exlcude`; did you mean `exclude`?"
    );
    assert_eq!(
        err("policy:\n  deny-latest: true\n  require-digets: true\n"),
        ".imagegate.yaml:3:3: unknown key `require-digets`; did you mean `require-digest`?"
    );
    assert_eq!(
        err("registries:\n  ghcr.io:\n    concurrency: many\n"),
        ".imagegate.yaml:3:18: `registries.ghcr.io.concurrency`: invalid type: string \"many\", expected usize"
    );
    assert_eq!(
        err("strict: maybe\n"),
        ".imagegate.yaml:1:9: `strict`: invalid type: string \"maybe\", expected a boolean"
    );
    assert_eq!(
        err("include: a\n"),
        ".imagegate.yaml:1:10: `include`: invalid type: string \"a\", expected a sequence"
    );
    assert_eq!(
        err("exclude: [a, 3]\n"),
        ".imagegate.yaml:1:14: `exclude[1]`: invalid type: integer `3`, expected a string"
    );
    assert!(err("include: [\n").starts_with(".imagegate.yaml:2:1: invalid YAML"));
    let colour = err("colour: red\n");
    assert!(
        colour.contains("known keys: ") && colour.contains("include"),
        "{colour}"
    );
    // Nested and `oneOf` objects are checked against the published schema too.
    assert_eq!(
        err("registries:\n  ghcr.io:\n    credentials:\n      helpr: x\n"),
        ".imagegate.yaml:4:7: unknown key `helpr`; did you mean `helper`?"
    );
    assert_eq!(
        err("cache:\n  ttl: 1\n"),
        ".imagegate.yaml:2:3: unknown key `ttl` (known keys: enabled, tag-ttl)"
    );
    assert!(err("- a\n").contains("must be a mapping"));
}

#[test]
fn the_published_schema_is_current() {
    let published = include_str!("../imagegate.schema.json");
    assert_eq!(
        published,
        schema_json(),
        "imagegate.schema.json is stale: run `imagegate config-schema > imagegate.schema.json`"
    );
}
