//! The checked-in CRD and rendered manifests under deploy/ stay in step
//! with the code: each example resource renders exactly its manifests.yaml.
//! `SPOOR_UPDATE_GOLDEN=1 cargo test -p spoor-operator` rewrites them.
use std::path::{Path, PathBuf};

/// Read when the test runs, not when it compiles: a test binary built for
/// another checkout sharing the target directory must not read that one.
fn deploy() -> PathBuf {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    Path::new(&dir).join("../../deploy")
}

fn check(path: &Path, rendered: &str) {
    if std::env::var("SPOOR_UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(path, rendered).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == rendered,
        "{} is out of date: run SPOOR_UPDATE_GOLDEN=1 cargo test -p spoor-operator",
        path.display()
    );
}

#[test]
fn the_crd_is_generated_from_the_types() {
    check(
        &deploy().join("operator/crd.yaml"),
        &spoor_operator::crd_yaml(),
    );
}

#[test]
fn every_example_renders_its_checked_in_manifests() {
    for strategy in ["all-in-one", "production", "streaming"] {
        let dir = deploy().join("kubernetes/base").join(strategy);
        let spoor =
            spoor_operator::parse(&std::fs::read_to_string(dir.join("spoor.yaml")).unwrap())
                .unwrap_or_else(|e| panic!("{strategy}/spoor.yaml: {e}"));
        let objects = spoor_operator::render::render(&spoor)
            .unwrap_or_else(|e| panic!("{strategy}/spoor.yaml: {e}"));
        check(
            &dir.join("manifests.yaml"),
            &spoor_operator::render::to_yaml(&objects),
        );
    }
}
