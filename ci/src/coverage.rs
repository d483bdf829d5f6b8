//! Did the shards cover the matrix? `matrix` writes `matrix.json` (its
//! axes, the expansion's size, its shard and its cells' directories)
//! before it runs; `report` checks that every shard of each matrix is
//! there and every cell left a result, so a CI job that died without
//! uploading anything shows as a gap instead of a smaller, green table.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::shard::Shard;

pub const FILE: &str = "matrix.json";

/// The document `matrix` writes.
pub fn document(
    axes: [&[String]; 4],
    expanded: usize,
    shard: Option<Shard>,
    cells: &[String],
) -> Value {
    json!({
        "axes": {"kernels": axes[0], "suites": axes[1], "personalities": axes[2], "transports": axes[3]},
        "expanded": expanded,
        "shard": shard.map(|s| json!({"index": s.index, "count": s.count})),
        "cells": cells,
    })
}

/// Axes, shard count, cells expanded, shard indexes seen, cells without
/// a result.
type Group = (Value, usize, usize, Vec<usize>, Vec<String>);

/// One line per matrix found under the report's directories: complete, or
/// which shards and cells are missing.
pub fn check(files: &[PathBuf]) -> Vec<String> {
    let mut groups: Vec<Group> = Vec::new();
    for f in files {
        let Some(doc) = std::fs::read_to_string(f)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        else {
            continue;
        };
        let dir = f.parent().unwrap_or(Path::new("."));
        let count = doc["shard"]["count"].as_u64().unwrap_or(1) as usize;
        let index = doc["shard"]["index"].as_u64().unwrap_or(1) as usize;
        let missing: Vec<String> = doc["cells"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|c| !dir.join(c).join("kcidb.json").is_file())
            .map(str::to_owned)
            .collect();
        let expanded = doc["expanded"].as_u64().unwrap_or(0) as usize;
        match groups
            .iter_mut()
            .find(|g| g.0 == doc["axes"] && g.1 == count)
        {
            Some(g) => {
                g.3.push(index);
                g.4.extend(missing);
            }
            None => groups.push((doc["axes"].clone(), count, expanded, vec![index], missing)),
        }
    }
    groups
        .into_iter()
        .map(|(axes, count, expanded, mut seen, missing)| {
            let name = ["suites", "kernels", "personalities", "transports"]
                .iter()
                .filter_map(|k| {
                    let v: Vec<&str> = axes[k]
                        .as_array()?
                        .iter()
                        .filter_map(Value::as_str)
                        .collect();
                    (!v.is_empty()).then(|| v.join(","))
                })
                .collect::<Vec<_>>()
                .join(" x ");
            seen.sort_unstable();
            seen.dedup();
            let absent: Vec<String> = (1..=count)
                .filter(|k| !seen.contains(k))
                .map(|k| format!("{k}/{count}"))
                .collect();
            let mut line = format!("matrix {name} ({expanded} cells");
            if count > 1 {
                line.push_str(&format!(", {} of {count} shards", seen.len()));
            }
            line.push_str("): ");
            if absent.is_empty() && missing.is_empty() {
                line.push_str("complete");
            } else {
                let mut gaps = Vec::new();
                if !absent.is_empty() {
                    gaps.push(format!("shard {} missing", absent.join(", ")));
                }
                if !missing.is_empty() {
                    gaps.push(format!("no result from {}", missing.join(", ")));
                }
                line.push_str(&format!("INCOMPLETE: {}", gaps.join("; ")));
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_missing_shards_and_cells() {
        let t = tempfile::tempdir().unwrap();
        let k: Vec<String> = vec!["6.1".into(), "6.12".into(), "7.2".into()];
        let s: Vec<String> = vec!["smoke".into()];
        let write = |dir: &str, index: usize, cells: &[&str], done: &[&str]| {
            let d = t.path().join(dir);
            std::fs::create_dir_all(&d).unwrap();
            let cells: Vec<String> = cells.iter().map(|c| (*c).to_owned()).collect();
            let doc = document(
                [&k, &s, &[], &[]],
                3,
                Some(Shard { index, count: 3 }),
                &cells,
            );
            std::fs::write(d.join(FILE), doc.to_string()).unwrap();
            for c in done {
                std::fs::create_dir_all(d.join(c)).unwrap();
                std::fs::write(d.join(c).join("kcidb.json"), "{}").unwrap();
            }
            d.join(FILE)
        };
        let a = write("s1", 1, &["smoke-6.1"], &["smoke-6.1"]);
        let b = write("s2", 2, &["smoke-6.12"], &[]);
        assert_eq!(
            check(&[a.clone(), b.clone()]),
            ["matrix smoke x 6.1,6.12,7.2 (3 cells, 2 of 3 shards): INCOMPLETE: shard 3/3 missing; no result from smoke-6.12"]
        );
        let c = write("s3", 3, &["smoke-7.2"], &["smoke-7.2"]);
        std::fs::create_dir_all(t.path().join("s2/smoke-6.12")).unwrap();
        std::fs::write(t.path().join("s2/smoke-6.12/kcidb.json"), "{}").unwrap();
        assert_eq!(
            check(&[c, a, b]),
            ["matrix smoke x 6.1,6.12,7.2 (3 cells, 3 of 3 shards): complete"]
        );
    }
}
