//! `zonecopy-ci replay DIR`: replay the trace a run kept, without booting
//! anything, through the backend's own trace tool.

use std::{path::PathBuf, process::Command};

use crate::{backend, cli::ReplayArgs};

/// The trace file of `dir`: `dir/trace/backend.trace`, `dir/backend.trace`,
/// or `dir` itself when it is a file.
fn trace_file(dir: &std::path::Path) -> Option<PathBuf> {
    [dir.join("trace/backend.trace"), dir.join("backend.trace")]
        .into_iter()
        .chain(dir.is_file().then(|| dir.to_path_buf()))
        .find(|p| p.is_file())
}

pub fn cmd_replay(a: &ReplayArgs) -> i32 {
    let Some(trace) = trace_file(&a.dir) else {
        eprintln!(
            "zonecopy-ci replay: no trace in {} (a run keeps trace/backend.trace when it fails, \
             or with --keep-trace)",
            a.dir.display()
        );
        return 2;
    };
    let bin = match backend::locate(a.backend.as_deref()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("zonecopy-ci replay: {e}");
            return 2;
        }
    };
    println!("replaying {}", trace.display());
    match Command::new(&bin)
        .arg("trace")
        .arg("replay")
        .arg(&trace)
        .status()
    {
        Ok(s) => s.code().unwrap_or(2),
        Err(e) => {
            eprintln!("zonecopy-ci replay: {}: {e}", bin.display());
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_kept_trace_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(trace_file(dir.path()), None);
        std::fs::create_dir(dir.path().join("trace")).unwrap();
        let t = dir.path().join("trace/backend.trace");
        std::fs::write(&t, b"x").unwrap();
        assert_eq!(trace_file(dir.path()), Some(t.clone()));
        assert_eq!(trace_file(&t), Some(t));
    }
}
