//! The PDUs of a 4 KiB read and write over NVMe/TCP, with SQ flow control
//! on (the kernel's default) and off (`disable_sqflow` in the fabrics
//! options: Connect CATTR bit 2, NVMe over Fabrics 1.1 Connect command).
//!
//! - SQ flow control on: a read is a C2HData PDU (LAST_PDU) and a
//!   CapsuleResp carrying the SQ head.
//! - Off: the controller may set SUCCESS on the read's last C2HData PDU
//!   and send no CapsuleResp (NVMe/TCP Transport Specification 1.0,
//!   3.6.2.9 C2HData PDU, FLAGS bit 3 SUCCESS); Linux's host completes
//!   the command on it (drivers/nvme/host/tcp.c, NVME_TCP_F_DATA_SUCCESS).
//! - Either way a 4 KiB write fits the command capsule (the controller's
//!   IOCCSZ allows 8 KiB in-capsule): one CapsuleCmd with the data, one
//!   CapsuleResp, no R2T and no H2CData.
//!
//! Each test writes [`BLOCKS`] stamped 4 KiB blocks one pwrite each and
//! reads each back (O_DIRECT), verifies the data, and checks the PDU
//! header bytes the backend's counters (control `stats` -> `fabric`)
//! charged to those reads and writes. `sqflow_on` runs on the suite's
//! connection; `sqflow_off` connects again after `disconnect`, with
//! `disable_sqflow`, and disconnects at its end.

use std::{
    fs::File,
    thread,
    time::{Duration, Instant},
};

use super::{
    connect::{self, Connected},
    ensure, fail, is_pcie, Ctx, Step, CONNECT_TIMEOUT, DISCONNECT_TIMEOUT, FABRICS_ONLY,
};
use crate::{blockio, cmdline::NsKind, control, ktap::Verdict, stamp::BLOCK_SIZE};

/// 4 KiB writes and reads each test does.
const BLOCKS: u64 = 16;
/// CapsuleCmd header: common header (8) and SQE (64), no digests.
const CAPSULE_CMD_HEADER: u64 = 72;
/// CapsuleResp: common header (8) and CQE (16).
const CAPSULE_RESP: u64 = 24;
/// C2HData header (HLEN 24, PDO 24 with HPDA 0 and no header digest).
const C2H_DATA_HEADER: u64 = 24;

/// One command class's counters in the backend's `fabric` stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Class {
    commands: u64,
    data_h2c: u64,
    data_c2h: u64,
    header_h2c: u64,
    header_c2h: u64,
}

impl Class {
    fn minus(self, b: Class) -> Class {
        Class {
            commands: self.commands.wrapping_sub(b.commands),
            data_h2c: self.data_h2c.wrapping_sub(b.data_h2c),
            data_c2h: self.data_c2h.wrapping_sub(b.data_c2h),
            header_h2c: self.header_h2c.wrapping_sub(b.header_h2c),
            header_c2h: self.header_c2h.wrapping_sub(b.header_c2h),
        }
    }
}

/// `fabric.<name>` of a `stats` reply (a class without traffic may be
/// absent or have absent keys: zeros).
fn parse_class(reply: &str, name: &str) -> Option<Class> {
    let fabric = control::find_value(reply, "fabric")?;
    let Some(sect) = control::find_value(fabric, name) else {
        return Some(Class::default());
    };
    let num = |k: &str| {
        control::find_value(sect, k)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some(Class {
        commands: num("commands"),
        data_h2c: num("data_h2c"),
        data_c2h: num("data_c2h"),
        header_h2c: num("header_h2c"),
        header_c2h: num("header_c2h"),
    })
}

/// (read, write) counters now.
fn classes(c: &mut Ctx<'_>) -> Result<(Class, Class), Verdict> {
    let reply = c
        .control()?
        .request(r#"{"cmd":"stats"}"#)
        .map_err(Verdict::Fail)?;
    match (parse_class(&reply, "read"), parse_class(&reply, "write")) {
        (Some(r), Some(w)) => Ok((r, w)),
        _ => Err(Verdict::fail(format!("no fabric section in {reply}"))),
    }
}

/// Wait until no read or write reaches the backend for 1 s (the kernel's
/// partition scans of namespaces that just appeared, or rescans after an
/// earlier test's events; 6.9 and later scan namespaces in parallel), at
/// most 20 s. The counters count every namespace on the listener.
fn settle(c: &mut Ctx<'_>) -> Step {
    let start = Instant::now();
    let mut last = classes(c)?;
    while start.elapsed() < Duration::from_secs(20) {
        thread::sleep(Duration::from_secs(1));
        let now = classes(c)?;
        if now == last {
            return Ok(());
        }
        last = now;
    }
    Err(Verdict::fail("reads and writes did not stop within 20 s"))
}

/// Write [`BLOCKS`] stamped blocks at the end of `f` (`size` bytes) one
/// per pwrite, read each back and verify it; return what the backend
/// counted for those (read, write) commands.
fn io(c: &mut Ctx<'_>, f: &File, size: u64, gen: u64) -> Result<(Class, Class), Verdict> {
    let at = size - BLOCKS * BLOCK_SIZE as u64;
    let (r0, w0) = classes(c)?;
    blockio::write_stamped(f, at, BLOCKS, gen, 1).map_err(fail("write"))?;
    for i in 0..BLOCKS {
        blockio::read_verify(f, at + i * BLOCK_SIZE as u64, 1, gen).map_err(Verdict::Fail)?;
    }
    let (r1, w1) = classes(c)?;
    Ok((r1.minus(r0), w1.minus(w0)))
}

/// Each write one in-capsule CapsuleCmd and one CapsuleResp; each read
/// one C2HData and, with SQ flow control, one CapsuleResp.
fn check(c: &mut Ctx<'_>, read: Class, write: Class, sqflow: bool) -> Step {
    c.diag(format!("reads: {read:?}"));
    c.diag(format!("writes: {write:?}"));
    let bytes = BLOCKS * BLOCK_SIZE as u64;
    ensure(
        (write.commands, write.data_h2c) == (BLOCKS, bytes)
            && (read.commands, read.data_c2h) == (BLOCKS, bytes),
        || format!("expected {BLOCKS} reads and {BLOCKS} writes of 4096 bytes"),
    )?;
    ensure(
        (write.header_h2c, write.header_c2h)
            == (BLOCKS * CAPSULE_CMD_HEADER, BLOCKS * CAPSULE_RESP),
        || {
            format!(
                "4 KiB writes: {} header bytes host to controller, {} back: expected \
                 {CAPSULE_CMD_HEADER} and {CAPSULE_RESP} each (in-capsule data, no R2T)",
                write.header_h2c, write.header_c2h
            )
        },
    )?;
    let per_read = C2H_DATA_HEADER + if sqflow { CAPSULE_RESP } else { 0 };
    ensure(read.header_c2h == BLOCKS * per_read, || {
        format!(
            "4 KiB reads: {} header bytes to the host, expected {per_read} each ({})",
            read.header_c2h,
            if sqflow {
                "C2HData and CapsuleResp"
            } else {
                "C2HData with SUCCESS, no CapsuleResp"
            }
        )
    })
}

/// The first nvm namespace: (NSID, size, generation).
fn nvm(c: &Ctx<'_>) -> Result<(u32, u64, u64), Verdict> {
    let nsid = c.first(NsKind::Nvm)?;
    let n = c.ns(nsid)?;
    Ok((nsid, n.spec.size, n.gen))
}

/// On the suite's connection (SQ flow control on).
pub(super) fn t_sqflow_on(c: &mut Ctx<'_>) -> Step {
    if is_pcie(c) {
        return Err(Verdict::skip(FABRICS_ONLY));
    }
    c.needs("connect/namespaces")?;
    let (nsid, size, gen) = nvm(c)?;
    let f = c
        .ns(nsid)?
        .file()?
        .try_clone()
        .map_err(fail("dup the namespace"))?;
    settle(c)?;
    let (read, write) = io(c, &f, size, gen)?;
    check(c, read, write, true)
}

/// A connection of its own with `disable_sqflow`, after `disconnect`.
pub(super) fn t_sqflow_off(c: &mut Ctx<'_>) -> Step {
    if is_pcie(c) {
        return Err(Verdict::skip(FABRICS_ONLY));
    }
    c.needs("/disconnect")?;
    let t = c
        .cfg
        .nvme
        .clone()
        .ok_or_else(|| Verdict::skip("no target"))?;
    let (nsid, size, gen) = nvm(c)?;
    let opts = format!(
        "{},{}",
        connect::connect_options(&t, &t.nqn, &c.host),
        connect::DISABLE_SQFLOW
    );
    c.diag(format!("{} <- {opts}", connect::FABRICS_DEV));
    let conn = connect::fabrics_connect(&opts).map_err(fail("connect with disable_sqflow"))?;
    let result = on_connection(c, conn, nsid, size, gen);
    let gone = connect::delete_controller(&c.sys, conn.instance, DISCONNECT_TIMEOUT)
        .map_err(fail("delete_controller"));
    result.and(gone.map(|_| ()))
}

fn on_connection(c: &mut Ctx<'_>, conn: Connected, nsid: u32, size: u64, gen: u64) -> Step {
    // Every namespace, so that none is still being scanned when the
    // counters are read.
    let want: Vec<u32> = c.ns.keys().copied().collect();
    let (found, took) =
        connect::wait_for_namespaces(&c.sys, &c.dev_root, conn.instance, &want, CONNECT_TIMEOUT);
    let ns = found
        .into_iter()
        .find(|n| n.nsid == nsid)
        .ok_or_else(|| Verdict::fail(format!("ns{nsid} did not appear within {took:?}")))?;
    let path = c.dev_root.join(&ns.block);
    let f = blockio::open_direct(&path).map_err(fail(&format!("open {}", path.display())))?;
    settle(c)?;
    let (read, write) = io(c, &f, size, gen)?;
    drop(f);
    check(c, read, write, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_counters() {
        let r = r#"{"devices":{},"fabric":{"admin":{"commands":3},"read":{"commands":2,"data_h2c":0,"data_c2h":8192,"header_h2c":144,"header_c2h":48},"connection_h2c":128},"ok":true}"#;
        assert_eq!(
            parse_class(r, "read"),
            Some(Class {
                commands: 2,
                data_h2c: 0,
                data_c2h: 8192,
                header_h2c: 144,
                header_c2h: 48
            })
        );
        assert_eq!(parse_class(r, "write"), Some(Class::default()));
        assert_eq!(parse_class(r#"{"devices":{}}"#, "read"), None);
        let a = Class {
            commands: 5,
            header_c2h: 100,
            ..Class::default()
        };
        assert_eq!(
            a.minus(Class {
                commands: 2,
                header_c2h: 52,
                ..Class::default()
            }),
            Class {
                commands: 3,
                header_c2h: 48,
                ..Class::default()
            }
        );
    }
}
