//! The runner's own check that a cached initramfs is current, before it
//! runs `build-initramfs.sh` (issue 17: the script's check hashes the
//! guest binary's and busybox's contents and lists the module tree from
//! bash: ~0.28 s of set-up before every boot, images/README.md).
//!
//! After a build (or the script's own up-to-date check) the runner writes
//! `<image>.quick`: a fingerprint of the script's inputs by file metadata
//! (length, modification and change times, inode) rather than content, the module
//! tree's listing as the script takes it (path, length, modification
//! time), the options, and the image's own metadata. While that still
//! matches, the script is not run. Any change to an input (cargo and
//! `make modules_install` write new files) or to the image changes the
//! fingerprint, and the script then decides by content as before. The
//! inputs are fingerprinted before the script starts and again after it:
//! an input that changed meanwhile (a `cargo build` during a run) may not
//! be in the image, so nothing is recorded and the next run asks the
//! script again.

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
            // The change time too: `cp -p` over a file keeps its inode and
            // may restore its length and mtime, but no tool sets ctime.
            let (mtime, ctime) = ((m.mtime(), m.mtime_nsec()), (m.ctime(), m.ctime_nsec()));
            h.add(format!("{} {mtime:?} {ctime:?} {}", m.len(), m.ino()).as_bytes())
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

/// The fingerprint of `req`'s inputs (the script, `init`, busybox, the
/// guest binary, the module list and tree).
pub fn inputs(req: &BuildRequest<'_>) -> String {
    let mut h = Fnv::default();
    h.add(b"zonecopy-initramfs-quick 2");
    let busybox =
        std::env::var_os("BUSYBOX").map_or_else(|| PathBuf::from("/bin/busybox"), PathBuf::from);
    // The script's INIT_SRC: `init` beside it.
    let init = req.script.with_file_name("init");
    for p in [req.script, &init, &busybox, req.guest_bin] {
        add_meta(&mut h, p, false);
    }
    h.add(req.modules.unwrap_or_default().as_bytes());
    if let Some(dir) = req.modules_dir {
        h.add(dir.as_os_str().as_encoded_bytes());
        add_tree(&mut h, dir);
    }
    h.hex()
}

/// The fingerprint of inputs `inputs` and the image as it is now, `None`
/// when the image is not there.
fn fingerprint(req: &BuildRequest<'_>, inputs: &str) -> Option<String> {
    fs::metadata(req.out).ok().filter(|m| m.is_file())?;
    let mut h = Fnv::default();
    h.add(inputs.as_bytes());
    add_meta(&mut h, req.out, false);
    Some(h.hex())
}

/// Whether the image is current by the fingerprint written last, with
/// `inputs` (from [`inputs`]) the inputs' fingerprint now.
pub fn is_current(req: &BuildRequest<'_>, inputs: &str) -> bool {
    let Some(now) = fingerprint(req, inputs) else {
        return false;
    };
    fs::read_to_string(stamp_path(req.out)).is_ok_and(|s| s.trim() == now)
}

/// Records the fingerprint after the script found or made the image
/// current from the inputs it started with, `before` (from [`inputs`]).
/// If they changed while it ran, the stale record is removed instead.
/// Best effort: without a record the script runs next time.
pub fn record(req: &BuildRequest<'_>, before: &str) {
    let path = stamp_path(req.out);
    let now = (inputs(req) == before)
        .then(|| fingerprint(req, before))
        .flatten();
    let Some(now) = now else {
        let _ = fs::remove_file(&path);
        return;
    };
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
        assert!(!is_current(&req, &inputs(&req)), "no fingerprint yet");
        record(&req, &inputs(&req));
        assert!(is_current(&req, &inputs(&req)));
        // A module rewritten (a new file, as an install writes it).
        fs::remove_file(f("mods/kernel/a.ko")).unwrap();
        fs::write(f("mods/kernel/a.ko"), b"ab").unwrap();
        assert!(!is_current(&req, &inputs(&req)), "module tree changed");
        record(&req, &inputs(&req));
        assert!(is_current(&req, &inputs(&req)));
        // Another module list.
        let other = BuildRequest {
            modules: Some("a b"),
            ..req
        };
        assert!(!is_current(&other, &inputs(&other)));
        // The image replaced.
        fs::remove_file(&out).unwrap();
        assert!(!is_current(&req, &inputs(&req)), "image gone");
        fs::write(&out, b"new image").unwrap();
        assert!(!is_current(&req, &inputs(&req)), "image rewritten");
        // An input that changed while the script ran: nothing recorded.
        let before = inputs(&req);
        fs::write(f("guest"), b"rebuilt guest").unwrap();
        record(&req, &before);
        assert!(
            !is_current(&req, &inputs(&req)),
            "guest binary changed during the build"
        );
        assert!(!stamp_path(&out).exists());
        record(&req, &inputs(&req));
        assert!(is_current(&req, &inputs(&req)));
        // Rewritten in place with the same length and mtime (`cp -p`):
        // the change time still tells.
        let mtime = fs::metadata(f("guest")).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(f("guest"), b"rebuilt gueSt").unwrap();
        fs::File::options()
            .write(true)
            .open(f("guest"))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert!(
            !is_current(&req, &inputs(&req)),
            "same length and mtime, new ctime"
        );
    }
}
