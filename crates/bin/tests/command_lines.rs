//! Every binary starts through `spoor_bin::main`: its flags parse and it
//! does its job, whether or not it has a `--config-file`.
use std::process::Command;

fn run(binary: &str, args: &[&str]) -> String {
    let out = Command::new(binary).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{binary} {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_operator_prints_its_crd() {
    let crd = run(env!("CARGO_BIN_EXE_spoor-operator"), &["crd"]);
    assert!(crd.contains("kind: CustomResourceDefinition"), "{crd}");
}

#[test]
fn a_tool_reads_its_options_from_a_config_file() {
    let file = std::env::temp_dir().join(format!("spoor-schema-{}.yaml", std::process::id()));
    std::fs::write(&file, "cassandra:\n  keyspace: from_the_file\n").unwrap();
    let cql = run(
        env!("CARGO_BIN_EXE_spoor-cassandra-schema"),
        &["--print", &format!("--config-file={}", file.display())],
    );
    std::fs::remove_file(&file).unwrap();
    assert!(
        cql.contains("CREATE KEYSPACE IF NOT EXISTS from_the_file"),
        "{cql}"
    );
}
