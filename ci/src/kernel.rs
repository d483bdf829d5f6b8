//! Kernel resolution: a short name from the cache (`6.1`, `6.12`) or from
//! the shared copy-offload kernels (`7.2-series`, `7.2-fixed`), or a user's
//! own image; and the table of known bugs of the kernels we ship names for.

use std::path::{Path, PathBuf};

/// Errors resolving `--kernel`.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(
        "kernel `{name}` not found: neither {vmlinux} nor {bzimage} exists \
         (run scripts/setup.sh, or pass --kernel PATH)"
    )]
    NotCached {
        name: String,
        vmlinux: String,
        bzimage: String,
    },
    #[error("kernel image {0} does not exist")]
    NoSuchFile(String),
    #[error("modules directory {0} does not exist")]
    NoModules(String),
    #[error(
        "kernel `{name}` not found: {path} does not exist (the shared kernels are looked up \
         in $ZONECOPY_SHARED, default <workspace>/../shared)"
    )]
    NotShared { name: String, path: String },
    #[error("building the kernel tree {tree} failed ({status}); see {log}")]
    TreeBuild {
        tree: String,
        status: String,
        log: String,
    },
}

/// Is `dir` the top of a Linux source tree (or a tree whose
/// [`TREE_KERNEL_MARKER`] names its kernel)?
pub fn is_kernel_tree(dir: &Path) -> bool {
    dir.join(TREE_KERNEL_MARKER).is_file()
        || (dir.join("Kconfig").is_file()
            && dir.join("Makefile").is_file()
            && dir.join("arch/x86").is_dir())
}

/// A file at the top of a `--kernel-tree` that names the kernel to boot
/// instead of building one: its first line that is not blank or a `#`
/// comment is a kernel name (`6.1`, `6.12`, `7.2-fixed`, ...) or an image
/// path relative to the tree. Lets a repository's commits select among
/// ready kernels (e.g. to test `bisect` or a harness change) at no build
/// cost; a name that does not resolve fails like a failed build.
pub const TREE_KERNEL_MARKER: &str = ".zonecopy-kernel";

/// The kernel a marker tree names, checked to resolve (`None`: no marker).
pub fn marker_kernel(tree: &Path, modules_dir: Option<&Path>) -> Option<Result<String, String>> {
    let spec = tree_marker(tree)?;
    let why = |e: KernelError| format!("{}'s {TREE_KERNEL_MARKER}: {e}", tree.display());
    Some(spec.map_err(why).and_then(|spec| {
        let shared = shared_dir(&crate::rig::workspace_root());
        resolve(&spec, modules_dir, &cache_dir(), &shared)
            .map(|_| spec)
            .map_err(why)
    }))
}

/// The kernel spec a tree's [`TREE_KERNEL_MARKER`] names (`None`: no
/// marker; a relative path comes back joined to the tree).
pub fn tree_marker(tree: &Path) -> Option<Result<String, KernelError>> {
    let file = tree.join(TREE_KERNEL_MARKER);
    let text = std::fs::read_to_string(&file).ok()?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    Some(match line {
        None => Err(KernelError::TreeBuild {
            tree: tree.display().to_string(),
            status: format!("{TREE_KERNEL_MARKER} names no kernel"),
            log: file.display().to_string(),
        }),
        Some(l) if l.contains('/') => Ok(tree.join(l).display().to_string()),
        Some(l) => Ok(l.to_owned()),
    })
}

/// Where a tree's out-of-tree build goes: one directory per tree path
/// under the cache, so the user's tree stays clean and rebuilds are
/// incremental.
pub fn tree_build_dir(cache: &Path, tree: &Path) -> PathBuf {
    let canon = std::fs::canonicalize(tree).unwrap_or_else(|_| tree.to_path_buf());
    // FNV-1a of the path: stable across runs, no extra dependency.
    let hash = canon
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let name = canon
        .file_name()
        .map_or_else(|| "tree".into(), |n| n.to_string_lossy().into_owned());
    cache
        .join("kernel-builds")
        .join(format!("{name}-{hash:016x}"))
}

/// The `image:` and `modules:` lines scripts/build-kernel.sh ends with.
pub fn parse_build_output(stdout: &str) -> Option<(PathBuf, Option<PathBuf>)> {
    let field = |key: &str| {
        stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(key).map(|v| PathBuf::from(v.trim())))
    };
    Some((field("image:")?, field("modules:")))
}

/// Configure (images/config-fragment merged in) and build the Linux tree
/// `tree` out of tree under the cache with scripts/build-kernel.sh; its
/// output goes to `log`. Returns the kernel to boot.
pub fn build_tree(
    tree: &Path,
    workspace: &Path,
    cache: &Path,
    log: &Path,
) -> Result<Kernel, KernelError> {
    if let Some(spec) = tree_marker(tree) {
        let shared = shared_dir(workspace);
        return resolve(&spec?, None, cache, &shared).map_err(|e| KernelError::TreeBuild {
            tree: tree.display().to_string(),
            status: e.to_string(),
            log: tree.join(TREE_KERNEL_MARKER).display().to_string(),
        });
    }
    let out = tree_build_dir(cache, tree);
    let failed = |status: String| KernelError::TreeBuild {
        tree: tree.display().to_string(),
        status,
        log: log.display().to_string(),
    };
    std::fs::create_dir_all(&out).map_err(|e| failed(format!("mkdir {}: {e}", out.display())))?;
    let stderr = std::fs::File::create(log).map_err(|e| failed(e.to_string()))?;
    eprintln!(
        "building kernel tree {} in {} (log: {})",
        tree.display(),
        out.display(),
        log.display()
    );
    let result = std::process::Command::new("bash")
        .arg(workspace.join("scripts/build-kernel.sh"))
        .arg(tree)
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .stderr(stderr)
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !result.status.success() {
        return Err(failed(result.status.to_string()));
    }
    let stdout = String::from_utf8_lossy(&result.stdout);
    let (image, modules) =
        parse_build_output(&stdout).ok_or_else(|| failed("no image: line".into()))?;
    Ok(Kernel {
        label: tree
            .file_name()
            .map_or_else(|| "tree".into(), |n| n.to_string_lossy().into_owned()),
        image,
        modules,
        known_bugs: &[],
    })
}

/// A bug of a kernel the runner knows by name, by id. The id goes to the
/// guest as `zonecopy.xfail=<id>,...`; a test that hits it reports XFAIL
/// naming it, and XPASS (a failure) if the bug is no longer there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownBug {
    pub id: &'static str,
    /// One line: what goes wrong.
    pub what: &'static str,
}

/// The known bugs of each kernel name: the one place to keep them. Only the
/// named kernels (and their images given as a path) get these; for your own
/// kernels pass `--xfail ID`.
pub const KNOWN_BUGS: &[(&str, &[KnownBug])] = &[
    ("7.2-series", &COPY_SERIES_BUGS),
    // The fixed series keeps every bug of the series but the first.
    ("7.2-fixed", COPY_SERIES_BUGS.split_at(1).1),
    (
        "6.12",
        &[KnownBug {
            id: "zwplug-error-stuck",
            what:
                "on an NVMe (multipath head) zoned namespace, after one write is refused by zone \
                   write plugging, every later write at the correct write pointer fails with EIO \
                   without reaching the device, even after a zone report (6.1 and 7.2 recover)",
        }],
    ),
];

/// The copy-offload series' bugs; the fixed series fixed the first.
const COPY_SERIES_BUGS: [KnownBug; 7] = [
    COPY_ERROR_LOST,
    COPY_TCP_R2T,
    COPY_MERGE_OOPS,
    COPY_DM_CRYPT_OOPS,
    COPY_IGNORES_OCFS,
    COPY_IGNORES_MCL,
    COPY_XNS_WRONG_NS,
];

const COPY_ERROR_LOST: KnownBug = KnownBug {
    id: "copy-error-lost",
    what: "the copy-offload series as posted loses a failed copy's error: copy_file_range() \
           reports success and the destination is never written (against a spec-following \
           controller: Copy format 2 sent with CDFE=0; shared/kernels/linux-7.2-copy-offload; \
           over PCIe, where the Copy reaches the device, a single-range copy, a copy into a ZNS \
           zone, a copy through dm-linear and a copy over a media error all lose it)",
};

const COPY_TCP_R2T: KnownBug = KnownBug {
    id: "copy-tcp-r2t",
    what: "the series' copy request (REQ_OP_COPY_SRC) is read-direction, so nvme-tcp sends the \
           Copy's source range descriptors neither in-capsule nor on R2T ('unexpected r2t for a \
           non-write command'): no copy is ever offloaded over NVMe/TCP",
};

const COPY_DM_CRYPT_OOPS: KnownBug = KnownBug {
    id: "copy-dm-crypt-oops",
    what: "dm-crypt keeps the copy limits stacked from the device below (copy_max_bytes 16 MiB \
           over dm-linear over NVMe) though it cannot pass a copy through its encryption; \
           copy_file_range on it sends copy bios into dm-crypt, which oopses in crypt_convert \
           (NULL pointer dereference, kcryptd_crypt)",
};

const COPY_IGNORES_OCFS: KnownBug = KnownBug {
    id: "copy-ignores-ocfs",
    what: "every NVMe Copy is built with descriptor format 2 whatever the controller offers: \
           sent to controllers without format 2 in OCFS (nvme-2.0-fmt0, -fmt01) and, on the \
           series as posted, without enabling it in Host Behavior Support CDFE; a correct \
           kernel uses a supported, enabled format or does not offload",
};

const COPY_XNS_WRONG_NS: KnownBug = KnownBug {
    id: "copy-xns-wrong-ns",
    what: "a copy from one namespace to another is sent to the source namespace, with the \
           destination LBA as its SDLBA: once its descriptors arrive it overwrites the source \
           namespace (hidden over nvme-tcp by copy-tcp-r2t; over PCIe on 7.2-fixed the Copy runs \
           on the source namespace, overwriting it at the destination's LBAs, and the \
           destination is never written)",
};

const COPY_IGNORES_MCL: KnownBug = KnownBug {
    id: "copy-ignores-mcl",
    what: "copy_max_hw_bytes comes from MSSRL only (MCL and MSRC not consulted): with MCL < \
           MSSRL the kernel sends Copies longer than MCL, which a controller refuses with \
           Command Size Limit Exceeded",
};

const COPY_MERGE_OOPS: KnownBug = KnownBug {
    id: "copy-merge-oops",
    what: "with queue/copy_max_bytes below a copy's length, the split copy bios are merged by \
           bio_attempt_back_merge and bio_get_last_bvec dereferences a NULL bvec (oops); a copy \
           beyond copy_max_hw_bytes oopses the same way once its Copies reach the device (over \
           PCIe: NULL pointer dereference in bio_will_gap from blk_mq_sched_try_merge in \
           blkdev_copy_offload)",
};

/// Known bugs that only NVMe/TCP shows: over PCIe (`--nvme-transport
/// pcie`) they are not passed to the guest, since a test that does not
/// hit them would report XPASS. Measured on 7.2-fixed over PCIe: a
/// single-range copy_file_range of 256 KiB and a copy into a ZNS zone at
/// its write pointer are offloaded as one Copy each (32 bytes of
/// descriptors over the host interface, the device copied all 262144
/// bytes). zwplug-error-stuck needs the multipath head the fabrics
/// controller gets; over PCIe 6.12's write_after_error tests pass.
pub const TCP_ONLY_BUGS: &[&str] = &["copy-tcp-r2t", "zwplug-error-stuck"];

/// Known bugs of a kernel name (empty for names not in [`KNOWN_BUGS`]).
pub fn known_bugs(name: &str) -> &'static [KnownBug] {
    KNOWN_BUGS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[], |(_, b)| b)
}

/// Kernels built in `shared/kernels/`: name -> image path under the shared
/// dir. Everything is built in (no modules); boot the bzImage (the vmlinux
/// has no PVH note, so qboot cannot start it).
pub const SHARED_KERNELS: &[(&str, &str)] = &[
    (
        "7.2-series",
        "kernels/linux-7.2-copy-offload/bzImage-series",
    ),
    ("7.2-fixed", "kernels/linux-7.2-copy-offload/bzImage-fixed"),
];

/// A bootable kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// Short label for reports and directory names (`6.1`, or the file name).
    pub label: String,
    /// The image given to `-kernel` (vmlinux or bzImage).
    pub image: PathBuf,
    /// `lib/modules/<version>` directory, `None` = everything built in.
    pub modules: Option<PathBuf>,
    /// Known bugs ([`KNOWN_BUGS`]) of this kernel.
    pub known_bugs: &'static [KnownBug],
}

/// The shared dir: `$ZONECOPY_SHARED`, default `<workspace>/../shared`
/// (a CI clone has `shared/` as its sibling, like /work/main and
/// /work/shared).
pub fn shared_dir(workspace: &Path) -> PathBuf {
    std::env::var_os("ZONECOPY_SHARED")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || workspace.parent().unwrap_or(workspace).join("shared"),
            PathBuf::from,
        )
}

/// The cache root: `$ZONECOPY_CACHE`, default `/var/cache/zonecopy`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("ZONECOPY_CACHE")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/var/cache/zonecopy"), PathBuf::from)
}

/// Is `spec` a path rather than a cached kernel name?
fn looks_like_path(spec: &str) -> bool {
    spec.contains('/') || Path::new(spec).is_file()
}

/// The name of the shared kernel `image` is, if any (so a path to
/// bzImage-series gets that kernel's known bugs too).
fn shared_name(image: &Path, shared: &Path) -> Option<&'static str> {
    let canon = std::fs::canonicalize(image).ok()?;
    SHARED_KERNELS
        .iter()
        .find(|(_, rel)| std::fs::canonicalize(shared.join(rel)).is_ok_and(|p| p == canon))
        .map(|(n, _)| *n)
}

/// Resolves `--kernel SPEC` (+ `--modules-dir`) against `cache` and the
/// `shared` dir.
pub fn resolve(
    spec: &str,
    modules_dir: Option<&Path>,
    cache: &Path,
    shared: &Path,
) -> Result<Kernel, KernelError> {
    if let Some((name, rel)) = SHARED_KERNELS.iter().find(|(n, _)| *n == spec) {
        let image = shared.join(rel);
        if !image.is_file() {
            return Err(KernelError::NotShared {
                name: (*name).to_owned(),
                path: image.display().to_string(),
            });
        }
        if let Some(m) = modules_dir {
            if !m.is_dir() {
                return Err(KernelError::NoModules(m.display().to_string()));
            }
        }
        return Ok(Kernel {
            label: (*name).to_owned(),
            image,
            modules: modules_dir.map(Path::to_path_buf),
            known_bugs: known_bugs(name),
        });
    }
    if looks_like_path(spec) {
        let image = PathBuf::from(spec);
        if !image.is_file() {
            return Err(KernelError::NoSuchFile(spec.to_owned()));
        }
        if let Some(m) = modules_dir {
            if !m.is_dir() {
                return Err(KernelError::NoModules(m.display().to_string()));
            }
        }
        let label = image
            .file_name()
            .map_or_else(|| "kernel".into(), |n| n.to_string_lossy().into_owned());
        let known_bugs = shared_name(&image, shared).map_or(&[][..], known_bugs);
        return Ok(Kernel {
            label,
            image,
            modules: modules_dir.map(Path::to_path_buf),
            known_bugs,
        });
    }
    let dir = cache.join("kernels").join(spec);
    let vmlinux = dir.join("vmlinux");
    let bzimage = dir.join("bzImage");
    // Uncompressed first: it boots faster under TCG.
    let image = if vmlinux.is_file() {
        vmlinux
    } else if bzimage.is_file() {
        bzimage
    } else {
        return Err(KernelError::NotCached {
            name: spec.to_owned(),
            vmlinux: vmlinux.display().to_string(),
            bzimage: bzimage.display().to_string(),
        });
    };
    let modules = match modules_dir {
        Some(m) if !m.is_dir() => return Err(KernelError::NoModules(m.display().to_string())),
        Some(m) => Some(m.to_path_buf()),
        None => Some(dir.join("modules")).filter(|m| m.is_dir()),
    };
    Ok(Kernel {
        label: spec.to_owned(),
        image,
        modules,
        known_bugs: known_bugs(spec),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernel_tree_detection_and_build_output() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("linux");
        assert!(!is_kernel_tree(&t));
        std::fs::create_dir_all(t.join("arch/x86")).unwrap();
        std::fs::write(t.join("Kconfig"), "").unwrap();
        std::fs::write(t.join("Makefile"), "").unwrap();
        assert!(is_kernel_tree(&t));
        let cache = Path::new("/c");
        let b = tree_build_dir(cache, &t);
        assert!(b.starts_with("/c/kernel-builds"), "{b:?}");
        assert!(b
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("linux-"));
        assert_eq!(b, tree_build_dir(cache, &t), "stable");
        assert_ne!(b, tree_build_dir(cache, dir.path()));
        let out = "noise\nmodules: /o/zonecopy-modules/lib/modules/6.1.0\nimage: /o/arch/x86/boot/bzImage\n";
        assert_eq!(
            parse_build_output(out),
            Some((
                PathBuf::from("/o/arch/x86/boot/bzImage"),
                Some(PathBuf::from("/o/zonecopy-modules/lib/modules/6.1.0"))
            ))
        );
        assert_eq!(
            parse_build_output("image: /x/bzImage\n"),
            Some((PathBuf::from("/x/bzImage"), None))
        );
        assert_eq!(parse_build_output("make: error\n"), None);
    }

    #[test]
    fn marker_trees_name_their_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        assert!(tree_marker(t).is_none());
        fs::write(t.join(TREE_KERNEL_MARKER), "# which kernel\n\n 6.12 \n").unwrap();
        assert!(is_kernel_tree(t));
        assert_eq!(tree_marker(t).unwrap().unwrap(), "6.12");
        fs::write(t.join(TREE_KERNEL_MARKER), "img/bzImage\n").unwrap();
        assert_eq!(
            tree_marker(t).unwrap().unwrap(),
            t.join("img/bzImage").display().to_string()
        );
        fs::write(t.join(TREE_KERNEL_MARKER), "# nothing\n").unwrap();
        assert!(tree_marker(t).unwrap().is_err());
        // A name that does not resolve fails like a build.
        let cache = tempfile::tempdir().unwrap();
        fs::write(t.join(TREE_KERNEL_MARKER), "9.9\n").unwrap();
        let log = t.join("log");
        assert!(matches!(
            build_tree(t, t, cache.path(), &log),
            Err(KernelError::TreeBuild { .. })
        ));
        let k = cache.path().join("kernels/6.12");
        fs::create_dir_all(&k).unwrap();
        fs::write(k.join("vmlinux"), b"elf").unwrap();
        fs::write(t.join(TREE_KERNEL_MARKER), "6.12\n").unwrap();
        let got = build_tree(t, t, cache.path(), &log).unwrap();
        assert_eq!(
            (got.label.as_str(), got.known_bugs),
            ("6.12", known_bugs("6.12"))
        );
    }

    use std::fs;

    use super::*;

    #[test]
    fn names_resolve_in_the_cache_vmlinux_first() {
        let cache = tempfile::tempdir().unwrap();
        let k = cache.path().join("kernels/6.1");
        fs::create_dir_all(k.join("modules")).unwrap();
        fs::write(k.join("bzImage"), b"bz").unwrap();
        let got = resolve("6.1", None, cache.path(), Path::new("/nonexistent")).unwrap();
        assert_eq!(got.image, k.join("bzImage"));
        assert_eq!(got.modules, Some(k.join("modules")));
        assert_eq!(got.label, "6.1");
        fs::write(k.join("vmlinux"), b"elf").unwrap();
        assert_eq!(
            resolve("6.1", None, cache.path(), Path::new("/nonexistent"))
                .unwrap()
                .image,
            k.join("vmlinux")
        );
        assert!(matches!(
            resolve("6.12", None, cache.path(), Path::new("/nonexistent")),
            Err(KernelError::NotCached { .. })
        ));
    }

    #[test]
    fn paths_are_used_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("bzImage");
        fs::write(&img, b"bz").unwrap();
        let got = resolve(
            img.to_str().unwrap(),
            None,
            Path::new("/nonexistent"),
            dir.path(),
        )
        .unwrap();
        assert_eq!(got.image, img);
        assert_eq!(got.modules, None);
        assert_eq!(got.label, "bzImage");
        assert!(matches!(
            resolve(
                img.to_str().unwrap(),
                Some(&dir.path().join("nope")),
                dir.path(),
                dir.path()
            ),
            Err(KernelError::NoModules(_))
        ));
        assert!(matches!(
            resolve("/no/such/bzImage", None, dir.path(), dir.path()),
            Err(KernelError::NoSuchFile(_))
        ));
    }

    #[test]
    fn shared_kernels_resolve_with_their_known_bugs() {
        let shared = tempfile::tempdir().unwrap();
        let k = shared.path().join("kernels/linux-7.2-copy-offload");
        fs::create_dir_all(&k).unwrap();
        fs::write(k.join("bzImage-series"), b"bz").unwrap();
        fs::write(k.join("bzImage-fixed"), b"bz2").unwrap();
        let nocache = Path::new("/nonexistent");
        let s = resolve("7.2-series", None, nocache, shared.path()).unwrap();
        assert_eq!(s.image, k.join("bzImage-series"));
        assert_eq!((s.label.as_str(), s.modules.as_ref()), ("7.2-series", None));
        let ids: Vec<&str> = s.known_bugs.iter().map(|b| b.id).collect();
        assert_eq!(
            ids,
            vec![
                "copy-error-lost",
                "copy-tcp-r2t",
                "copy-merge-oops",
                "copy-dm-crypt-oops",
                "copy-ignores-ocfs",
                "copy-ignores-mcl",
                "copy-xns-wrong-ns"
            ]
        );
        let f = resolve("7.2-fixed", None, nocache, shared.path()).unwrap();
        assert_eq!(f.image, k.join("bzImage-fixed"));
        // The fixed series: every bug of the series but copy-error-lost.
        assert_eq!(f.known_bugs, &s.known_bugs[1..]);
        // The same image given as a path keeps its known bugs.
        let p = resolve(
            k.join("bzImage-series").to_str().unwrap(),
            None,
            nocache,
            shared.path(),
        )
        .unwrap();
        assert_eq!(p.label, "bzImage-series");
        assert_eq!(p.known_bugs, s.known_bugs);
        assert!(matches!(
            resolve("7.2-fixed", None, nocache, Path::new("/nonexistent")),
            Err(KernelError::NotShared { .. })
        ));
    }

    /// The Debian kernels `scripts/setup.sh` fetches into the cache.
    const DEBIAN_KERNELS: &[&str] = &["6.1", "6.12", "7.2"];

    #[test]
    fn known_bugs_table() {
        assert_eq!(known_bugs("7.2-series")[0].id, "copy-error-lost");
        assert!(known_bugs("7.2-fixed")
            .iter()
            .all(|b| b.id != "copy-error-lost"));
        assert!(known_bugs("6.1").is_empty());
        assert_eq!(known_bugs("6.12")[0].id, "zwplug-error-stuck");
        // Every named kernel in the table exists, ids are xfail-safe words.
        for (name, bugs) in KNOWN_BUGS {
            assert!(
                SHARED_KERNELS.iter().any(|(n, _)| n == name) || DEBIAN_KERNELS.contains(name),
                "{name}"
            );
            for b in *bugs {
                assert!(b
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
            }
        }
    }

    #[test]
    fn shared_dir_defaults_to_the_workspaces_sibling() {
        // Not touching the environment (tests run in parallel): only the
        // default, when ZONECOPY_SHARED is unset in the test environment.
        if std::env::var_os("ZONECOPY_SHARED").is_none() {
            assert_eq!(
                shared_dir(Path::new("/work/main")),
                PathBuf::from("/work/shared")
            );
        }
    }
}
