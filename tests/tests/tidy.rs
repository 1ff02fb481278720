//! Repository hygiene checks that run with the tests: no leftover debugging macros or
//! fix-later markers in the sources, and no line longer than the formatter's width.

use std::path::{Path, PathBuf};

/// The widest line rustfmt is configured for; comments and strings must fit too.
const LINE_WIDTH_MAX: usize = 120;

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("readable folder entry").path();
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_sources(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn sources_have_no_leftovers_or_long_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let mut files = Vec::new();
    rust_sources(root, &mut files);
    assert!(!files.is_empty(), "no Rust sources under {}", root.display());

    let fixme = ["FIX", "ME"].concat();
    let dbg = ["dbg", "!("].concat();
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source file");
        for (number, line) in text.lines().enumerate() {
            let place = format!("{}:{}", file.display(), number + 1);
            if line.contains(&fixme) {
                problems.push(format!("{place}: {fixme} marker"));
            }
            if line.contains(&dbg) {
                problems.push(format!("{place}: {dbg} macro"));
            }
            if line.chars().count() > LINE_WIDTH_MAX {
                problems.push(format!("{place}: line longer than {LINE_WIDTH_MAX} characters"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
