//! The connection state machine driven by generated PDU sequences, exactly
//! as `run` feeds it (header check, decode, `State::handle`), without a
//! socket so that the long mode can run a million sequences.

use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;
use crate::{
    nvme::{
        fabrics::{CONNECT_DATA_LEN, FCTYPE_CONNECT, OPCODE as OPC_FABRICS},
        Subsystem, SubsystemConfig,
    },
    storage::{Device, DeviceConfig},
};

const SUBNQN: &str = "nqn.2026-11.dev.zonecopy:prop";

/// One 1 MiB namespace shared by every case (opened once).
fn device() -> Arc<Device> {
    static DEV: OnceLock<(tempfile::TempDir, Arc<Device>)> = OnceLock::new();
    let (_, d) = DEV.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let dev = Device::open(&DeviceConfig {
            path: dir.path().join("ns.img"),
            size: 1 << 20,
            block_size: 4096,
            zoned: None,
        })
        .unwrap();
        (dir, Arc::new(dev))
    });
    Arc::clone(d)
}

/// What a host may send, valid or not.
#[derive(Clone, Debug)]
enum Step {
    IcReq {
        dgst: u8,
    },
    Connect {
        qid: u16,
        cntlid: u16,
        sgl_len: u32,
        in_capsule: bool,
    },
    Command {
        sqe: [u8; 64],
        icd: usize,
    },
    /// A well-formed Write of `nlb + 1` blocks, its data by R2T.
    Write {
        cid: u16,
        slba: u8,
        nlb: u8,
    },
    H2cData {
        ttag: u16,
        cccid: u16,
        datao: u32,
        len: usize,
        last: bool,
    },
    TermReq,
    Garbage(Vec<u8>),
}

/// Opcodes worth sending: every admin and NVM row, Fabrics, and one
/// nothing implements.
fn fuzz_opcodes() -> Vec<u8> {
    let named = crate::nvme::commands::ADMIN
        .iter()
        .chain(crate::nvme::commands::NVM)
        .map(|c| c.opcode);
    named.chain([OPC_FABRICS, u8::MAX]).collect()
}

fn step() -> impl Strategy<Value = Step> {
    let sqe = (
        prop::sample::select(fuzz_opcodes()),
        any::<[u8; 63]>(),
        prop::sample::select(vec![0u32, 512, 4096, 32 * 1024, 64 * 1024, u32::MAX]),
        any::<bool>(),
    )
        .prop_map(|(op, rest, len, nsid1)| {
            let mut s = [0u8; 64];
            s[0] = op;
            s[1..].copy_from_slice(&rest);
            s[1] = 0x40; // SGL, as NVMe/TCP requires
            if nsid1 {
                s[4..8].copy_from_slice(&1u32.to_le_bytes());
            }
            if len != u32::MAX {
                // A plausible data length (SGL1 length, bytes 35:32).
                s[32..36].copy_from_slice(&len.to_le_bytes());
            }
            s
        });
    prop_oneof![
        (0u8..4).prop_map(|dgst| Step::IcReq { dgst }),
        (
            0u16..3,
            any::<u16>(),
            prop::sample::select(vec![0u32, 512, 1024, 4096, 32 << 20]),
            any::<bool>()
        )
            .prop_map(|(qid, cntlid, sgl_len, in_capsule)| Step::Connect {
                qid,
                cntlid,
                sgl_len,
                in_capsule
            }),
        (sqe, 0usize..2048).prop_map(|(sqe, icd)| Step::Command { sqe, icd }),
        (
            0u16..4,
            any::<u16>(),
            0u32..(1 << 21),
            0usize..8192,
            any::<bool>()
        )
            .prop_map(|(ttag, cccid, datao, len, last)| Step::H2cData {
                ttag,
                cccid,
                datao,
                len,
                last
            }),
        (0u16..12, any::<u8>(), 0u8..8).prop_map(|(cid, slba, nlb)| Step::Write { cid, slba, nlb }),
        Just(Step::TermReq),
        proptest::collection::vec(any::<u8>(), 0..160).prop_map(Step::Garbage),
    ]
}

/// An admin queue of a new controller, enabled (CC.EN) with one I/O
/// queue, and its controller ID.
fn enabled_controller(targets: &Targets) -> (Queue, u16) {
    let mut s = [0u8; 64];
    s[0] = OPC_FABRICS;
    s[4] = FCTYPE_CONNECT;
    s[44..46].copy_from_slice(&31u16.to_le_bytes());
    let mut d = vec![0u8; 1024];
    d[16..18].copy_from_slice(&0xffffu16.to_le_bytes());
    d[256..256 + SUBNQN.len()].copy_from_slice(SUBNQN.as_bytes());
    d[512..515].copy_from_slice(b"nqn");
    let ConnectOutcome::Connected(admin, c) = targets.connect(&Sqe(s), &d) else {
        panic!("admin Connect refused");
    };
    let mut out = Vec::new();
    // Property Set CC = EN | IOSQES 6 | IOCQES 4.
    let mut p = [0u8; 64];
    p[0] = OPC_FABRICS;
    p[44..48].copy_from_slice(&0x14u32.to_le_bytes());
    p[48..52].copy_from_slice(&0x0046_0001u32.to_le_bytes());
    assert_eq!(
        admin.execute(&Sqe(p), &[], &mut out).map(|c| c.status),
        Some(0)
    );
    // Set Features Number of Queues.
    let mut f = [0u8; 64];
    f[0] = crate::nvme::commands::opcode("Set Features");
    f[1] = 0x40; // SGL (PSDT 01b), as Fabrics requires
    f[39] = 0x5a;
    f[40] = 0x07;
    assert_eq!(
        admin.execute(&Sqe(f), &[], &mut out).map(|c| c.status),
        Some(0)
    );
    (admin, c.dw0 as u16)
}

fn encode(step: &Step, digests: Digests) -> Vec<u8> {
    let mut b = Vec::new();
    match step {
        Step::IcReq { dgst } => {
            pdu::IcReq {
                pfv: 0,
                hpda: 0,
                dgst: *dgst,
                maxr2t: 0,
            }
            .encode(&mut b);
        }
        Step::Connect {
            qid,
            cntlid,
            sgl_len,
            in_capsule,
        } => {
            let mut s = [0u8; 64];
            s[0] = OPC_FABRICS;
            s[1] = 0x40;
            s[4] = FCTYPE_CONNECT;
            s[32..36].copy_from_slice(&sgl_len.to_le_bytes());
            s[39] = if *in_capsule { 0x01 } else { 0x5a };
            s[42..44].copy_from_slice(&qid.to_le_bytes());
            s[44..46].copy_from_slice(&31u16.to_le_bytes());
            let mut d = vec![0u8; if *in_capsule { 1024 } else { 0 }];
            if *in_capsule {
                d[16..18].copy_from_slice(&cntlid.to_le_bytes());
                d[256..256 + SUBNQN.len()].copy_from_slice(SUBNQN.as_bytes());
                d[512..515].copy_from_slice(b"nqn");
            }
            pdu::encode_capsule_cmd(&mut b, &Sqe(s), &d, digests);
        }
        Step::Command { sqe, icd } => {
            pdu::encode_capsule_cmd(&mut b, &Sqe(*sqe), &vec![0xa5; *icd], digests);
        }
        Step::H2cData {
            ttag,
            cccid,
            datao,
            len,
            last,
        } => {
            pdu::encode_h2c_data(
                &mut b,
                *cccid,
                *ttag,
                *datao,
                &vec![0x5a; *len],
                *last,
                digests,
            );
        }
        Step::Write { cid, slba, nlb } => {
            let mut s = [0u8; 64];
            s[0] = crate::nvme::commands::opcode("Write");
            s[1] = 0x40;
            s[2..4].copy_from_slice(&cid.to_le_bytes());
            s[4..8].copy_from_slice(&1u32.to_le_bytes());
            let len = (u32::from(*nlb) + 1) * 4096;
            s[32..36].copy_from_slice(&len.to_le_bytes());
            s[39] = 0x5a;
            s[40..48].copy_from_slice(&u64::from(*slba).to_le_bytes());
            s[48..52].copy_from_slice(&u32::from(*nlb).to_le_bytes());
            pdu::encode_capsule_cmd(&mut b, &Sqe(s), &[], digests);
        }
        Step::TermReq => {
            pdu::encode_term_req(&mut b, PduType::H2cTermReq, 1, 0, &[0; 8]);
        }
        Step::Garbage(g) => b.extend_from_slice(g),
    }
    b
}

proptest! {
        #![proptest_config(crate::testing::cases(256))]

        /// Whatever a host sends, in whatever order: no panic, and the
        /// memory the connection holds stays within its limits (pending
        /// commands, R2T data, each buffer no larger than its command).
        #[test]
        fn pdu_sequences_keep_the_limits(
            connected: bool,
            dgst in 0u8..4,
            tail in proptest::collection::vec(step(), 1..24),
        ) {
            let sub = Subsystem::new(
                SubsystemConfig { nqn: SUBNQN.into(), ..Default::default() },
                vec![device()],
            );
            let targets = Targets { subsystems: vec![Arc::new(sub)] };
            // Half the sequences run on an I/O queue of an enabled
            // controller (handshake and Connect first), so the command and
            // R2T/H2CData paths are reached too.
            let mut steps = Vec::new();
            let _admin = if connected {
                let (admin, cntlid) = enabled_controller(&targets);
                steps.push(Step::IcReq { dgst });
                steps.push(Step::Connect { qid: 1, cntlid, sgl_len: 1024, in_capsule: true });
                Some(admin)
            } else {
                None
            };
            steps.extend(tail);
            let stats = FabricStats::new();
            let limits = Limits {
                max_pending_commands: 3,
                max_pending_data: 16 * 1024,
                max_command_data: 32 * 1024,
                ..Limits::default()
            };
            let mut st = State::new(&targets, &stats, &limits);
            for s in &steps {
                let bytes = encode(s, st.digests());
                let Some(ch) = bytes.get(..CH_LEN).and_then(|h| <&[u8; CH_LEN]>::try_from(h).ok()) else {
                    continue;
                };
                let ctx = RxContext {
                    digests: st.ic.map(|n| n.digests),
                    max_icd: limits.max_icd,
                    max_h2c_data: limits.max_h2c_data,
                };
                let ch = CommonHeader::parse(ch);
                let Ok(layout) = check_common_header(&ch, &ctx) else { break };
                let Some(pdu) = bytes.get(..layout.plen) else { continue };
                let end = decode_host_pdu(pdu, &layout).and_then(|p| st.handle(p, pdu));
                st.tx.clear();
                prop_assert!(st.pending.len() <= limits.max_pending_commands);
// R2T data outstanding stays in the budget, except that one
                // command may always be in flight, whatever its size.
                let started = st.pending.values().filter(|p| p.started).count();
                prop_assert!(st.pending_bytes <= limits.max_pending_data || started == 1);
                for p in st.pending.values() {
                    prop_assert!(p.expected <= limits.max_command_data || p.kind == PendingKind::Connect);
                    // A kept buffer may be larger than its command, never
                    // than the largest transfer.
                    prop_assert!(p.buf.capacity() <= (p.expected as usize).max(limits.max_command_data as usize));
                    prop_assert!(p.kind != PendingKind::Connect || p.expected as usize == CONNECT_DATA_LEN);
                }
                if !matches!(end, Ok(None)) {
                    break;
                }
            }
        }
    }
