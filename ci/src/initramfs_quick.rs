//! The runner's own check that a cached initramfs is current, before it
//! runs `build-initramfs.sh` (issue 17: the script's check hashes the
//! guest binary's and busybox's contents and lists the module tree from
//! bash, ~0.15 s of set-up before every boot).
//!
//! After a build (or the script's own up-to-date check) the runner writes
//! `<image>.quick`: a fingerprint of the script's inputs by file metadata
//! (length, modification time, inode) rather than content, the module
//! tree's listing as the script takes it (path, length, modification
//! time), the options, and the image's own metadata. While that still
//! matches, the script is not run. Any change to an input (cargo and
//! `make modules_install` write new files) or to the image changes the
//! fingerprint, and the script then decides by content as before.

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use crate::{initramfs::BuildRequest, util::Fnv};

/// Where the fingerprint of `image` is kept.
fn stamp_path(image: &Path) -> PathBuf {
    let mut p = image.as_os_str().to_owned();
    p.push(".quick");
    PathBuf::from(p)
}

/// Adds `path`'s metadata (not following a final symlink when `link`).
fn add_meta(h: &mut Fnv, path: &Path, link: bool) {
    let m = if link {
        fs::symlink_metadata(path)
    } else {
        fs::metadata(path)
    };
    h.add(path.as_os_str().as_encoded_bytes());
    match m {
        Ok(m) => {
            h.add(format!("{} {} {} {}", m.len(), m.mtime(), m.mtime_nsec(), m.ino()).as_bytes())
        }
        Err(_) => h.add(b"missing"),
    };
}

/// Every regular file and symlink under `dir` with its length and
/// modification time, sorted (the script's `find -printf '%p %s %T@'`).
fn add_tree(h: &mut Fnv, dir: &Path) {
    let mut rows = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            rows.push(format!("unreadable {}", d.display()));
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            let p = e.path();
            if m.is_dir() {
                stack.push(p);
            } else {
                rows.push(format!(
                    "{} {} {}.{}",
                    p.display(),
                    m.len(),
                    m.mtime(),
                    m.mtime_nsec()
                ));
            }
        }
    }
    rows.sort();
    for r in rows {
        h.add(r.as_bytes());
    }
}

/// The fingerprint of `req`'s inputs and output, `None` when the image
/// is not there.
fn fingerprint(req: &BuildRequest<'_>) -> Option<String> {
    fs::metadata(req.out).ok().filter(|m| m.is_file())?;
    let mut h = Fnv::default();
    h.add(b"zonecopy-initramfs-quick 1");
    let busybox =
        std::env::var_os("BUSYBOX").map_or_else(|| PathBuf::from("/bin/busybox"), PathBuf::from);
    // The script's INIT_SRC: `init` beside it.
    let init = req.script.with_file_name("init");
    for p in [req.script, &init, &busybox, req.guest_bin, req.out] {
        add_meta(&mut h, p, false);
    }
    h.add(req.modules.unwrap_or_default().as_bytes());
    if let Some(dir) = req.modules_dir {
        h.add(dir.as_os_str().as_encoded_bytes());
        add_tree(&mut h, dir);
    }
    Some(h.hex())
}

/// Whether the image is current by the fingerprint written last.
pub fn is_current(req: &BuildRequest<'_>) -> bool {
    let Some(now) = fingerprint(req) else {
        return false;
    };
    fs::read_to_string(stamp_path(req.out)).is_ok_and(|s| s.trim() == now)
}

/// Records the fingerprint after the script found or made the image
/// current; best effort (without it the script runs next time).
pub fn record(req: &BuildRequest<'_>) {
    let Some(now) = fingerprint(req) else { return };
    let path = stamp_path(req.out);
    let tmp = path.with_extension(format!("quick.{}", std::process::id()));
    if fs::write(&tmp, format!("{now}\n")).is_ok() && fs::rename(&tmp, &path).is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_follows_inputs_and_image() {
        let dir = tempfile::tempdir().unwrap();
        let f = |n: &str| dir.path().join(n);
        for n in ["build.sh", "init", "guest", "out.img"] {
            fs::write(f(n), n).unwrap();
        }
        fs::create_dir_all(f("mods/kernel")).unwrap();
        fs::write(f("mods/kernel/a.ko"), b"a").unwrap();
        let (script, guest, out, mods) = (f("build.sh"), f("guest"), f("out.img"), f("mods"));
        let req = BuildRequest {
            script: &script,
            guest_bin: &guest,
            out: &out,
            modules_dir: Some(&mods),
            modules: Some("a"),
            log: &out,
        };
        assert!(!is_current(&req), "no fingerprint yet");
        record(&req);
        assert!(is_current(&req));
        // A module rewritten (a new file, as an install writes it).
        fs::remove_file(f("mods/kernel/a.ko")).unwrap();
        fs::write(f("mods/kernel/a.ko"), b"ab").unwrap();
        assert!(!is_current(&req), "module tree changed");
        record(&req);
        assert!(is_current(&req));
        // Another module list.
        let other = BuildRequest {
            modules: Some("a b"),
            ..req
        };
        assert!(!is_current(&other));
        // The image replaced.
        fs::remove_file(&out).unwrap();
        assert!(!is_current(&req), "image gone");
        fs::write(&out, b"new image").unwrap();
        assert!(!is_current(&req), "image rewritten");
    }
}
