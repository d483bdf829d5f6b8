//! Verify (0Ch, NVM Command Set 1.1 3.2.5) through I/O passthrough
//! (`NVME_IOCTL_IO64_CMD` on the namespace device): the controller reads
//! the range from its medium and moves no data. A range inside the
//! namespace completes successfully; one that ends past it is LBA Out of
//! Range (SCT 0h, SC 80h, NVMe Base 2.1 Figure 102). The controller must
//! advertise Verify (Identify Controller ONCS bit 7) first.

use super::{
    ensure,
    passthru::{self, Command, Data, Done},
    Ctx, Step,
};
use crate::ktap::Verdict;

/// Verify opcode (NVM Command Set 1.1, Figure "Opcodes for NVM Command
/// Set Commands").
const VERIFY: u8 = 0x0C;

/// Verify of `blocks` (> 0) blocks at `slba`: CDW10-11 SLBA, CDW12 NLB
/// (0's based).
fn verify(nsid: u32, slba: u64, blocks: u32) -> Command {
    Command::new(VERIFY, nsid).qw(10, slba).dw(12, blocks - 1)
}

/// Every namespace: a good range verifies, a range past the end is LBA
/// Out of Range.
pub fn t_verify(c: &mut Ctx<'_>) -> Step {
    c.needs("connect/namespaces")?;
    let oncs = c
        .id_ctrl
        .as_ref()
        .map(|id| id.oncs)
        .ok_or_else(|| Verdict::skip("needs identify/controller"))?;
    ensure(oncs & (1 << 7) != 0, || {
        format!("ONCS {oncs:#x}: Verify (bit 7) not advertised")
    })?;
    let nsids: Vec<u32> = c.ns.keys().copied().collect();
    for nsid in nsids {
        let (nsze, good, past) = verify_ends(c, nsid)?;
        let blocks = nsze.min(8);
        c.diag(format!(
            "ns{nsid}: Verify of LBAs 0-{}: {}",
            blocks - 1,
            good.status
        ));
        c.diag(format!(
            "ns{nsid}: Verify of LBAs {}-{nsze}: {}",
            nsze - 1,
            past.status
        ));
        ensure(good.status.is_success(), || {
            format!(
                "ns{nsid}: Verify of {blocks} blocks at LBA 0: {}",
                good.status
            )
        })?;
        ensure((past.status.sct(), past.status.sc()) == (0, 0x80), || {
            format!(
                "ns{nsid}: Verify of the last block and the one after it (SLBA {}, NSZE {nsze}): \
                 {}, expected LBA Out of Range",
                nsze - 1,
                past.status
            )
        })?;
    }
    Ok(())
}

/// NSZE of namespace `nsid`, then Verify of its first (up to 8) blocks and
/// of its last block plus one.
fn verify_ends(c: &Ctx<'_>, nsid: u32) -> Result<(u64, Done, Done), Verdict> {
    let ns = c.ns(nsid)?;
    let nsze = ns
        .id
        .as_ref()
        .map(|id| id.nsze)
        .filter(|&n| n > 0)
        .ok_or_else(|| Verdict::skip(format!("needs Identify Namespace of ns{nsid}")))?;
    let f = ns.file()?;
    let send = |cmd: Command| {
        passthru::io(f, &cmd, Data::None)
            .map_err(|e| Verdict::fail(format!("ns{nsid}: Verify passthrough: {e}")))
    };
    let blocks = u32::try_from(nsze.min(8)).unwrap_or(8);
    let good = send(verify(nsid, 0, blocks))?;
    let past = send(verify(nsid, nsze - 1, 2))?;
    Ok((nsze, good, past))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_dwords_are_slba_and_zero_based_nlb() {
        let c = verify(2, 0x1_0000_0010, 8);
        assert_eq!((c.opcode, c.nsid), (0x0C, 2));
        // CDW10-11 SLBA, CDW12 NLB 7 (0's based), nothing else.
        assert_eq!(c.cdw, [0x10, 0x1, 7, 0, 0, 0]);
        // Verify moves no data either way.
        assert!(!c.writes_data() && c.opcode & 0b11 == 0);
    }
}
