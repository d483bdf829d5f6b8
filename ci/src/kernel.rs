//! Kernel resolution: a short name (`6.1`, `6.12`) from the cache, or a
//! user's own image.

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
}

/// A bootable kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// Short label for reports and directory names (`6.1`, or the file name).
    pub label: String,
    /// The image given to `-kernel` (vmlinux or bzImage).
    pub image: PathBuf,
    /// `lib/modules/<version>` directory, `None` = everything built in.
    pub modules: Option<PathBuf>,
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

/// Resolves `--kernel SPEC` (+ `--modules-dir`) against `cache`.
pub fn resolve(
    spec: &str,
    modules_dir: Option<&Path>,
    cache: &Path,
) -> Result<Kernel, KernelError> {
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
        return Ok(Kernel {
            label,
            image,
            modules: modules_dir.map(Path::to_path_buf),
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
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn names_resolve_in_the_cache_vmlinux_first() {
        let cache = tempfile::tempdir().unwrap();
        let k = cache.path().join("kernels/6.1");
        fs::create_dir_all(k.join("modules")).unwrap();
        fs::write(k.join("bzImage"), b"bz").unwrap();
        let got = resolve("6.1", None, cache.path()).unwrap();
        assert_eq!(got.image, k.join("bzImage"));
        assert_eq!(got.modules, Some(k.join("modules")));
        assert_eq!(got.label, "6.1");
        fs::write(k.join("vmlinux"), b"elf").unwrap();
        assert_eq!(
            resolve("6.1", None, cache.path()).unwrap().image,
            k.join("vmlinux")
        );
        assert!(matches!(
            resolve("6.12", None, cache.path()),
            Err(KernelError::NotCached { .. })
        ));
    }

    #[test]
    fn paths_are_used_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("bzImage");
        fs::write(&img, b"bz").unwrap();
        let got = resolve(img.to_str().unwrap(), None, Path::new("/nonexistent")).unwrap();
        assert_eq!(got.image, img);
        assert_eq!(got.modules, None);
        assert_eq!(got.label, "bzImage");
        assert!(matches!(
            resolve(
                img.to_str().unwrap(),
                Some(&dir.path().join("nope")),
                dir.path()
            ),
            Err(KernelError::NoModules(_))
        ));
        assert!(matches!(
            resolve("/no/such/bzImage", None, dir.path()),
            Err(KernelError::NoSuchFile(_))
        ));
    }
}
