//! The fuzz targets' committed corpora (`fuzz/corpus/`) replayed through the same code the
//! fuzzers run: every input that ever mattered stays a regression test.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the {target} corpus is empty");
    files
}

#[test]
fn event_decode_corpus_replays_without_a_panic() {
    for (name, data) in corpus("event_decode") {
        let outcome =
            std::panic::catch_unwind(|| session_buddy_server::fuzzing::event_decode(&data));
        assert!(outcome.is_ok(), "corpus input {name} panics");
    }
}

#[test]
fn query_params_corpus_replays_without_a_panic() {
    for (name, data) in corpus("query_params") {
        let outcome =
            std::panic::catch_unwind(|| session_buddy_server::fuzzing::query_params(&data));
        assert!(outcome.is_ok(), "corpus input {name} panics");
    }
}

#[test]
fn jwt_corpus_replays_without_a_panic() {
    for (name, data) in corpus("jwt") {
        let outcome = std::panic::catch_unwind(|| session_buddy_server::fuzzing::jwt(&data));
        assert!(outcome.is_ok(), "corpus input {name} panics");
    }
    // The seed `valid` exercises the verified path; `alg-none` must not verify.
    let verifier = session_buddy_server::auth::TokenVerifier::new(
        session_buddy_server::fuzzing::FUZZ_SECRET,
        None,
    );
    let read = |n: &str| {
        String::from_utf8(
            std::fs::read(
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../fuzz/corpus/jwt")
                    .join(n),
            )
            .unwrap(),
        )
        .unwrap()
    };
    assert!(verifier.verify(&read("valid")).is_ok());
    assert!(verifier.verify(&read("alg-none")).is_err());
}
