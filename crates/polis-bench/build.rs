//! Compiles the etcd client protocol with a vendored protoc, so no system
//! protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_protos(&["proto/etcd_kv.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/etcd_kv.proto");
    Ok(())
}
