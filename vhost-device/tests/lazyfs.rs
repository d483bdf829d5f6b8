//! The semantics of the test file system `support::lazyfs`: what survives
//! a power cut is exactly what was synced, in the ways the storage core
//! writes its files (pwrite/pread, set_len, fallocate punch, sync_all /
//! sync_data, copy_file_range, SEEK_DATA, directory fsync).

#[allow(dead_code)]
mod support;

use std::{
    fs::{File, OpenOptions},
    io,
    os::unix::{fs::FileExt, io::AsRawFd},
    path::Path,
};

use support::lazyfs::{punch_hole, LazyFs};

/// A mounted lazyfs, or None (with the reason printed) without /dev/fuse.
fn mount() -> Option<LazyFs> {
    if let Some(why) = LazyFs::unavailable() {
        eprintln!("SKIP: lazyfs needs FUSE: {why}");
        return None;
    }
    Some(LazyFs::mount().expect("mount lazyfs"))
}

fn rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .expect("open")
}

/// Create `name`, make its entry durable, and return it open.
fn durable_file(fs: &LazyFs, name: &str) -> File {
    let f = rw(&fs.path().join(name));
    f.sync_all().unwrap();
    File::open(fs.path()).unwrap().sync_all().unwrap();
    f
}

fn read(path: &Path) -> io::Result<Vec<u8>> {
    std::fs::read(path)
}

fn punch(f: &File, off: u64, len: u64) {
    punch_hole(f, off, len).expect("punch a hole");
}

#[test]
fn unsynced_write_is_gone_after_a_cut() {
    let Some(fs) = mount() else { return };
    let f = durable_file(&fs, "a");
    f.write_all_at(b"hello", 0).unwrap();
    assert_eq!(read(&fs.path().join("a")).unwrap(), b"hello");
    fs.power_cut().unwrap();
    // The old handle died with the power.
    assert!(f.write_all_at(b"x", 0).is_err());
    assert_eq!(read(&fs.path().join("a")).unwrap(), b"");
}

#[test]
fn synced_write_survives_and_later_ones_do_not() {
    let Some(fs) = mount() else { return };
    let f = durable_file(&fs, "a");
    f.write_all_at(&[1u8; 10000], 0).unwrap();
    f.sync_data().unwrap();
    f.write_all_at(&[2u8; 100], 5000).unwrap();
    f.set_len(20000).unwrap();
    fs.power_cut().unwrap();
    assert_eq!(read(&fs.path().join("a")).unwrap(), vec![1u8; 10000]);
    assert_eq!(read(&fs.backing().join("a")).unwrap(), vec![1u8; 10000]);
}

#[test]
fn create_and_rename_need_a_directory_fsync() {
    let Some(fs) = mount() else { return };
    let dir = fs.path();
    // Synced data, unsynced entry: gone.
    let f = rw(&dir.join("new"));
    f.write_all_at(b"data", 0).unwrap();
    f.sync_all().unwrap();
    drop(f);
    fs.power_cut().unwrap();
    assert!(!dir.join("new").exists());

    // Entry synced, then renamed over another without a directory fsync.
    let a = durable_file(&fs, "a");
    a.write_all_at(b"A", 0).unwrap();
    a.sync_all().unwrap();
    let b = durable_file(&fs, "b");
    b.write_all_at(b"B", 0).unwrap();
    b.sync_all().unwrap();
    std::fs::rename(dir.join("a"), dir.join("b")).unwrap();
    assert_eq!(read(&dir.join("b")).unwrap(), b"A");
    assert!(!dir.join("a").exists());
    fs.power_cut().unwrap();
    assert_eq!(read(&dir.join("a")).unwrap(), b"A");
    assert_eq!(read(&dir.join("b")).unwrap(), b"B");

    // The same rename with a directory fsync sticks, and so does an
    // unlink; data synced after the rename lands under the new name.
    std::fs::rename(dir.join("a"), dir.join("b")).unwrap();
    let b = rw(&dir.join("b"));
    b.write_all_at(b"C", 1).unwrap();
    b.sync_data().unwrap();
    File::open(dir).unwrap().sync_all().unwrap();
    fs.power_cut().unwrap();
    assert!(!dir.join("a").exists());
    assert_eq!(read(&dir.join("b")).unwrap(), b"AC");
    std::fs::remove_file(dir.join("b")).unwrap();
    File::open(dir).unwrap().sync_all().unwrap();
    fs.power_cut().unwrap();
    assert!(!dir.join("b").exists());
    let names: Vec<_> = std::fs::read_dir(fs.backing()).unwrap().collect();
    assert!(
        names.is_empty(),
        "backing dir not the durable state: {names:?}"
    );
}

#[test]
fn truncate_and_punch_follow_sync() {
    let Some(fs) = mount() else { return };
    let path = fs.path().join("t");
    let f = durable_file(&fs, "t");
    f.write_all_at(&[7u8; 3 * 4096], 0).unwrap();
    f.sync_all().unwrap();
    // Shrink then grow without sync: the cut restores the synced bytes.
    f.set_len(100).unwrap();
    f.set_len(3 * 4096).unwrap();
    assert_eq!(read(&path).unwrap()[100..200], [0u8; 100]);
    punch(&f, 4096, 4096);
    fs.power_cut().unwrap();
    assert_eq!(read(&path).unwrap(), vec![7u8; 3 * 4096]);

    // Synced: a whole-page punch and a partial one, size kept.
    let f = rw(&path);
    punch(&f, 4096, 4096);
    punch(&f, 10, 20);
    f.sync_data().unwrap();
    fs.power_cut().unwrap();
    let got = read(&path).unwrap();
    assert_eq!(got.len(), 3 * 4096);
    assert_eq!(got[..10], [7u8; 10]);
    assert_eq!(got[10..30], [0u8; 20]);
    assert_eq!(got[4096..8192], [0u8; 4096]);
    assert_eq!(got[8192..], [7u8; 4096]);

    // A synced shrink sticks.
    let f = rw(&path);
    f.set_len(5).unwrap();
    f.sync_all().unwrap();
    fs.power_cut().unwrap();
    assert_eq!(read(&path).unwrap(), [7u8; 5]);
}

#[test]
fn seek_data_sees_holes_and_copies_are_unsynced_writes() {
    let Some(fs) = mount() else { return };
    let f = durable_file(&fs, "s");
    f.set_len(16 * 4096).unwrap();
    f.write_all_at(&[1u8; 4096], 8 * 4096).unwrap();
    // SAFETY: lseek only reads its integer arguments; the fd is open.
    let data = unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_DATA) };
    assert_eq!(data, 8 * 4096);
    // SAFETY: as above.
    let hole = unsafe { libc::lseek(f.as_raw_fd(), data, libc::SEEK_HOLE) };
    assert_eq!(hole, 9 * 4096);
    f.sync_data().unwrap();

    let g = durable_file(&fs, "d");
    let (mut off_in, mut off_out): (libc::loff_t, libc::loff_t) = (8 * 4096, 0);
    // SAFETY: both fds are open; the offsets point to live locals.
    let n = unsafe {
        libc::copy_file_range(
            f.as_raw_fd(),
            &mut off_in,
            g.as_raw_fd(),
            &mut off_out,
            4096,
            0,
        )
    };
    assert_eq!(n, 4096, "{}", io::Error::last_os_error());
    assert_eq!(read(&fs.path().join("d")).unwrap(), vec![1u8; 4096]);
    fs.power_cut().unwrap();
    assert_eq!(read(&fs.path().join("d")).unwrap(), b"");
    assert_eq!(
        read(&fs.path().join("s")).unwrap()[8 * 4096..9 * 4096],
        [1u8; 4096]
    );
}

#[test]
fn an_armed_cut_lands_between_two_requests() {
    let Some(fs) = mount() else { return };
    let f = durable_file(&fs, "c");
    fs.arm_cut(3);
    f.write_all_at(b"1", 0).unwrap();
    f.sync_data().unwrap();
    // The third mutating request meets the cut.
    assert!(f.write_all_at(b"2", 1).is_err());
    assert!(!fs.armed());
    assert_eq!(read(&fs.path().join("c")).unwrap(), b"1");
    assert_eq!(fs.counts().cuts, 1);
}
