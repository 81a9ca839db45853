//! Embeds the schema files and the migrations in the binary, so that a self-hoster's `sambung`
//! needs no source tree: every `schema/*.sql` in name order, and every
//! `migrations/NNNN_name/{up,down}.sql`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    // Read when the script runs, not when it was compiled: two checkouts sharing a target
    // directory may share this script's binary, which must not read the other's schema.
    // (They still share its output and cargo's check of whether to run it again: build a
    // baseline from another checkout in a target directory of its own.)
    let root = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    println!("cargo:rerun-if-changed=schema");
    println!("cargo:rerun-if-changed=migrations");

    let mut out = String::new();
    out.push_str("/// The declarative schema files, in the order they are applied.\n");
    out.push_str("pub static SCHEMA_FILES: &[(&str, &str)] = &[\n");
    for name in sorted_names(&root.join("schema"), |n| n.ends_with(".sql")) {
        let path = root.join("schema").join(&name);
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n\n");

    out.push_str("/// The migrations: (directory name, up SQL, down SQL), in version order.\n");
    out.push_str("pub static MIGRATIONS: &[(&str, &str, &str)] = &[\n");
    for name in sorted_names(&root.join("migrations"), |_| true) {
        let dir = root.join("migrations").join(&name);
        for file in ["up.sql", "down.sql"] {
            assert!(dir.join(file).is_file(), "migration {name} has no {file}");
            println!("cargo:rerun-if-changed={}", dir.join(file).display());
        }
        writeln!(
            out,
            "    ({name:?}, include_str!({:?}), include_str!({:?})),",
            dir.join("up.sql").display().to_string(),
            dir.join("down.sql").display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");

    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("embedded.rs");
    std::fs::write(dest, out).unwrap();
}

fn sorted_names(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| !name.starts_with('.') && keep(name))
        .collect();
    names.sort();
    names
}
