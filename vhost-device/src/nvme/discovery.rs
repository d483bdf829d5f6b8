//! The discovery subsystem (NQN nqn.2014-08.org.nvmexpress.discovery):
//! its Discovery Log Page (70h) lists one entry per NVM subsystem, so
//! `nvme discover` finds them (NVMe Base 2.1, 5.16.1.23).

use super::{controller::Controller, put16, put64, put_ascii, put_nul};

/// Discovery log header and entry sizes (NVMe Base 2.1 Figures 294, 295).
pub const HEADER_LEN: usize = 1024;
pub const ENTRY_LEN: usize = 1024;

/// Generation counter: the configuration never changes while serving.
pub const GENCTR: u64 = 1;

/// The Discovery Log Page of a discovery controller.
pub fn log(ctrl: &Controller) -> Vec<u8> {
    let subs = &ctrl.discoverable;
    let mut d = vec![0u8; HEADER_LEN + ENTRY_LEN * subs.len()];
    put64(&mut d, 0, GENCTR); // GENCTR
    put64(&mut d, 8, subs.len() as u64); // NUMREC
    put16(&mut d, 16, 0); // RECFMT
    for (i, s) in subs.iter().enumerate() {
        let e = HEADER_LEN + i * ENTRY_LEN;
        let cfg = s.config();
        d[e] = 3; // TRTYPE: TCP
        d[e + 1] = 1; // ADRFAM: IPv4
        d[e + 2] = 2; // SUBTYPE: NVM subsystem
        d[e + 3] = 0b10; // TREQ: secure channel not required
        put16(&mut d, e + 4, 1); // PORTID
        put16(&mut d, e + 6, 0xFFFF); // CNTLID: dynamic
        put16(&mut d, e + 8, 32); // ASQSZ
        put_ascii(&mut d, e + 32, 32, &cfg.trsvcid); // TRSVCID
        put_nul(&mut d, e + 256, 256, &cfg.nqn); // SUBNQN
        put_ascii(&mut d, e + 512, 256, &cfg.traddr); // TRADDR
        d[e + 768] = 0; // TSAS (TCP): SECTYPE none
    }
    d
}
