//! Embeds the web UI: every file under `ui/` becomes an entry of
//! `ASSETS` (path relative to `ui/`, bytes), compiled into the binary.
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("ui entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"))
        .join("ui");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut code = String::from("pub static ASSETS: &[(&str, &[u8])] = &[\n");
    for path in &all {
        println!("cargo:rerun-if-changed={}", path.display());
        let rel = path.strip_prefix(&root).expect("under ui/");
        let name = rel.to_str().expect("utf-8 path").replace('\\', "/");
        code.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("ui_assets.rs");
    std::fs::write(out, code).expect("write ui_assets.rs");
}
