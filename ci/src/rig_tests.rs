use super::*;

#[test]
fn owner_tag_of_self() {
    let tag = owner_tag(std::process::id()).unwrap();
    assert!(tag.starts_with(&format!("{} ", std::process::id())));
}

#[test]
fn sweeps_only_dead_owners() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("zonecopy-ci.live");
    let dead = root.path().join("zonecopy-ci.dead");
    let fresh = root.path().join("zonecopy-ci.fresh");
    let other = root.path().join("other.dead");
    for d in [&live, &dead, &fresh, &other] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(
        live.join(OWNER_FILE),
        owner_tag(std::process::id()).unwrap(),
    )
    .unwrap();
    // Our PID with a different start time: a reused PID, owner gone.
    std::fs::write(dead.join(OWNER_FILE), format!("{} 1\n", std::process::id())).unwrap();
    std::fs::write(other.join(OWNER_FILE), "1 1\n").unwrap();
    sweep_stale_temp_dirs(root.path());
    assert!(live.exists());
    assert!(!dead.exists());
    assert!(fresh.exists());
    assert!(other.exists());
}

#[test]
fn free_ports_are_distinct() {
    let p = free_ports(2).unwrap();
    assert_eq!(p.len(), 2);
    assert_ne!(p[0], p[1]);
    // Closed again: bindable (barring a race with another process).
    for port in p {
        std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }
}
