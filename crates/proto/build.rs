//! Compiles the Jaeger api_v2 and api_v3 and Zipkin v2 IDL in the workspace's proto/ folder. protox parses
//! the files in Rust, so no system protoc is needed.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"))
        .join("../../proto/api_v2");
    let files = [
        "model.proto",
        "collector.proto",
        "query.proto",
        "sampling.proto",
    ];
    let paths: Vec<PathBuf> = files.iter().map(|f| root.join(f)).collect();
    for path in &paths {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let descriptors = protox::compile(&paths, [&root])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;

    let zipkin_root =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"))
            .join("../../proto/zipkin");
    let zipkin = zipkin_root.join("zipkin.proto");
    println!("cargo:rerun-if-changed={}", zipkin.display());
    let descriptors = protox::compile([&zipkin], [&zipkin_root])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .compile_fds(descriptors)?;

    // api_v3 streams OTLP's TracesData: the opentelemetry-proto crate's type
    // (proto/api_v3/opentelemetry only names it)
    let v3_root =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"))
            .join("../../proto/api_v3");
    let v3 = v3_root.join("query_service.proto");
    println!("cargo:rerun-if-changed={}", v3.display());
    let descriptors = protox::compile([&v3], [&v3_root])?;
    tonic_prost_build::configure()
        .extern_path(
            ".opentelemetry.proto.trace.v1",
            "::opentelemetry_proto::tonic::trace::v1",
        )
        .compile_fds(descriptors)?;
    Ok(())
}
