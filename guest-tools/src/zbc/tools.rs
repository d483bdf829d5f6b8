//! Host tools' output as the suite reads it: `blkzone report`
//! (util-linux), `sg_rep_zones` (sg3_utils), the control socket's
//! `devices` answer; and the fio job of the zoned write test.

use serde_json::Value;

use super::model::{Cond, KZone, Zone, ZoneType};

fn hex_u64(s: &str) -> Option<u64> {
    let s = s.trim().trim_end_matches(',');
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    u64::from_str_radix(h, 16).ok()
}

fn leading_number(s: &str) -> Option<u64> {
    let d: String = s.chars().take_while(char::is_ascii_digit).collect();
    d.parse().ok()
}

/// Parse `blkzone report` (util-linux 2.3x): one line per zone,
/// `start: 0x..., len 0x..., [cap 0x...,] wptr 0x... reset:N non-seq:N,
/// zcond:NN(xx) [type: N(NAME)]`, the write pointer relative to the zone
/// start. Returns the zones and whether capacities were printed.
pub fn parse_blkzone(out: &str) -> Result<(Vec<KZone>, bool), String> {
    let mut zones = Vec::new();
    let mut with_cap = false;
    for line in out.lines().filter(|l| l.contains("start:")) {
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .collect();
        let after = |key: &str| {
            words
                .iter()
                .position(|w| *w == key)
                .and_then(|i| words.get(i + 1))
                .copied()
        };
        let prefixed = |key: &str| -> Option<&str> {
            let i = words.iter().position(|w| w.starts_with(key))?;
            let rest = &words[i][key.len()..];
            if rest.is_empty() {
                words.get(i + 1).copied()
            } else {
                Some(rest)
            }
        };
        let bad = || format!("blkzone: cannot parse {line:?}");
        let start = after("start:").and_then(hex_u64).ok_or_else(bad)?;
        let len = after("len").and_then(hex_u64).ok_or_else(bad)?;
        let cap = after("cap").and_then(hex_u64);
        with_cap |= cap.is_some();
        let wptr = after("wptr").and_then(hex_u64).ok_or_else(bad)?;
        let reset = prefixed("reset:")
            .and_then(leading_number)
            .ok_or_else(bad)?;
        let non_seq = prefixed("non-seq:")
            .and_then(leading_number)
            .ok_or_else(bad)?;
        let cond = prefixed("zcond:")
            .and_then(leading_number)
            .ok_or_else(bad)?;
        let type_ = prefixed("[type:")
            .and_then(leading_number)
            .ok_or_else(bad)?;
        zones.push(KZone {
            start,
            len,
            capacity: cap.unwrap_or(len),
            wp: Some(start + wptr),
            type_: u8::try_from(type_).map_err(|_| bad())?,
            cond: u8::try_from(cond).map_err(|_| bad())?,
            non_seq: non_seq != 0,
            reset: reset != 0,
        });
    }
    if zones.is_empty() {
        return Err(format!("blkzone: no zones in {:?}", out.trim()));
    }
    Ok((zones, with_cap))
}

fn sg_type(name: &str) -> Option<ZoneType> {
    match name.trim() {
        "Conventional" => Some(ZoneType::Conventional),
        "Sequential write required" => Some(ZoneType::SeqRequired),
        "Sequential write preferred" => Some(ZoneType::SeqPreferred),
        "Gap" | "Reserved [0x5]" => Some(ZoneType::Gap),
        _ => None,
    }
}

fn sg_cond(name: &str) -> Option<Cond> {
    match name.trim() {
        "Not write pointer" => Some(Cond::NotWp),
        "Empty" => Some(Cond::Empty),
        "Implicitly opened" => Some(Cond::ImpOpen),
        "Explicitly opened" => Some(Cond::ExpOpen),
        "Closed" => Some(Cond::Closed),
        "Read only" => Some(Cond::ReadOnly),
        "Full" => Some(Cond::Full),
        "Offline" => Some(Cond::Offline),
        _ => None,
    }
}

/// Parse `sg_rep_zones DEVICE` (sg3_utils 1.4x): the MAXIMUM LBA and one
/// block per zone descriptor (`Zone descriptor: N`, then `Zone type:`,
/// `Zone condition:`, `Non_seq:`, `Reset:`, `Zone Length:`, `Zone start
/// LBA:`, `Write pointer LBA:`).
pub fn parse_sg_rep_zones(out: &str) -> Result<(u64, Vec<Zone>), String> {
    let mut max_lba = None;
    let mut zones: Vec<Zone> = Vec::new();
    let mut cur: Option<(Option<ZoneType>, Option<Cond>, Zone)> = None;
    let finish = |cur: Option<(Option<ZoneType>, Option<Cond>, Zone)>,
                  zones: &mut Vec<Zone>|
     -> Result<(), String> {
        if let Some((t, c, mut z)) = cur {
            z.ztype = t.ok_or("sg_rep_zones: a descriptor without a known zone type")?;
            z.cond = c.ok_or("sg_rep_zones: a descriptor without a known zone condition")?;
            zones.push(z);
        }
        Ok(())
    };
    for line in out.lines() {
        let l = line.trim();
        let Some((key, val)) = l.split_once(':') else {
            continue;
        };
        let val = val.trim();
        let num = || {
            hex_u64(val)
                .or_else(|| val.parse::<u64>().ok())
                .ok_or_else(|| format!("sg_rep_zones: cannot parse {l:?}"))
        };
        match key.trim() {
            "Maximum LBA" => {
                let v = val.split_whitespace().next().unwrap_or("");
                max_lba = hex_u64(v);
            }
            "Zone descriptor" => {
                finish(cur.take(), &mut zones)?;
                cur = Some((
                    None,
                    None,
                    Zone {
                        start: 0,
                        len: 0,
                        ztype: ZoneType::Gap,
                        cond: Cond::NotWp,
                        wp: u64::MAX,
                        non_seq: false,
                        reset: false,
                        wp_known: true,
                    },
                ));
            }
            k => {
                let Some((t, c, z)) = cur.as_mut() else {
                    continue;
                };
                match k {
                    "Zone type" => {
                        *t = Some(
                            sg_type(val)
                                .ok_or_else(|| format!("sg_rep_zones: zone type {val:?}"))?,
                        )
                    }
                    "Zone condition" => {
                        *c = Some(
                            sg_cond(val)
                                .ok_or_else(|| format!("sg_rep_zones: zone condition {val:?}"))?,
                        )
                    }
                    "Non_seq" => z.non_seq = num()? != 0,
                    "Reset" => z.reset = num()? != 0,
                    "Zone Length" => z.len = num()?,
                    "Zone start LBA" => z.start = num()?,
                    "Write pointer LBA" => z.wp = if val == "-1" { u64::MAX } else { num()? },
                    _ => {}
                }
            }
        }
    }
    finish(cur.take(), &mut zones)?;
    let max_lba = max_lba.ok_or("sg_rep_zones: no Maximum LBA line")?;
    Ok((max_lba, zones))
}

/// The open and active limits of device `name` in the control socket's
/// `devices` answer (0 there: no limit).
pub fn control_limits(reply: &str, name: &str) -> Result<(Option<u32>, Option<u32>), String> {
    let v: Value =
        serde_json::from_str(reply.trim()).map_err(|e| format!("control devices: {e}"))?;
    let dev = v["devices"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == name))
        .ok_or_else(|| format!("control devices: no device {name:?}"))?;
    let z = &dev["zones"];
    let lim = |k: &str| {
        z[k].as_u64()
            .ok_or_else(|| format!("control devices: {name}: no zones.{k}"))
            .and_then(|n| u32::try_from(n).map_err(|_| format!("{name}: {k} {n}")))
            .map(|n| (n != 0).then_some(n))
    };
    Ok((lim("max_open")?, lim("max_active")?))
}

/// fio arguments for a zoned sequential write with CRC32C verify of
/// `io_size` bytes over `size` bytes from `offset` of `dev` (psync,
/// O_DIRECT, zonemode=zbd).
pub fn fio_args(dev: &str, offset: u64, size: u64, io_size: u64, bs: u64) -> Vec<String> {
    [
        "--name=zbc".to_string(),
        format!("--filename={dev}"),
        "--zonemode=zbd".into(),
        "--direct=1".into(),
        "--ioengine=psync".into(),
        "--rw=write".into(),
        format!("--bs={bs}"),
        format!("--offset={offset}"),
        format!("--size={size}"),
        format!("--io_size={io_size}"),
        "--verify=crc32c".into(),
        "--do_verify=1".into(),
        "--verify_fatal=1".into(),
        "--verify_state_save=0".into(),
        "--group_reporting=1".into(),
    ]
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkzone_lines() {
        let out = "  start: 0x000000000, len 0x004000, cap 0x004000, wptr 0x000000 reset:0 non-seq:0, zcond: 0(nw) [type: 1(CONVENTIONAL)]\n\
                   \x20 start: 0x000008000, len 0x004000, cap 0x003000, wptr 0x000010 reset:0 non-seq:1, zcond: 2(oi) [type: 2(SEQ_WRITE_REQUIRED)]\n\
                   \x20 start: 0x00000c000, len 0x004000, cap 0x003000, wptr 0x004000 reset:1 non-seq:0, zcond:14(fu) [type: 2(SEQ_WRITE_REQUIRED)]\n";
        let (z, cap) = parse_blkzone(out).unwrap();
        assert!(cap);
        assert_eq!(z.len(), 3);
        assert_eq!(
            z[1],
            KZone {
                start: 0x8000,
                len: 0x4000,
                capacity: 0x3000,
                wp: Some(0x8010),
                type_: 2,
                cond: 2,
                non_seq: true,
                reset: false
            }
        );
        assert_eq!((z[2].cond, z[2].reset, z[2].wp), (14, true, Some(0x10000)));
        let nocap = "  start: 0x000000000, len 0x004000, wptr 0x000000 reset:0 non-seq:0, zcond: 1(em) [type: 2(SEQ_WRITE_REQUIRED)]";
        let (z, cap) = parse_blkzone(nocap).unwrap();
        assert!(!cap);
        assert_eq!(z[0].capacity, 0x4000);
        assert!(parse_blkzone("").is_err());
        assert!(parse_blkzone("  start: nope").is_err());
    }

    #[test]
    fn sg_rep_zones_output() {
        let out = "Report zones response:\n  Same=0: zone type and length may differ in each descriptor\n  Maximum LBA: 0x3fff (16383)\n Zone descriptor: 0\n   Zone type: Conventional\n   Zone condition: Not write pointer\n   Non_seq: 0\n   Reset: 0\n   Zone Length: 0x200\n   Zone start LBA: 0x0\n   Write pointer LBA: -1\n Zone descriptor: 1\n   Zone type: Sequential write required\n   Zone condition: Implicitly opened\n   Non_seq: 0\n   Reset: 0\n   Zone Length: 0x180\n   Zone start LBA: 0x200\n   Write pointer LBA: 0x202\n Zone descriptor: 2\n   Zone type: Gap\n   Zone condition: Not write pointer\n   Non_seq: 0\n   Reset: 0\n   Zone Length: 0x80\n   Zone start LBA: 0x380\n   Write pointer LBA: 0xffffffffffffffff\n";
        let (max, z) = parse_sg_rep_zones(out).unwrap();
        assert_eq!(max, 0x3fff);
        assert_eq!(z.len(), 3);
        assert_eq!(z[0].ztype, ZoneType::Conventional);
        assert_eq!(
            (z[1].ztype, z[1].cond, z[1].start, z[1].len, z[1].wp),
            (ZoneType::SeqRequired, Cond::ImpOpen, 0x200, 0x180, 0x202)
        );
        assert_eq!(z[2].ztype, ZoneType::Gap);
        assert!(parse_sg_rep_zones("Zone descriptor: 0\n Zone type: Weird\n").is_err());
        assert!(parse_sg_rep_zones("nothing").is_err());
    }

    #[test]
    fn control_devices() {
        let r = r#"{"devices":[{"name":"lun0","block_size":4096,"blocks":16384,"zones":{"zone_blocks":512,"zone_cap_blocks":384,"conventional":2,"max_open":4,"max_active":0}},{"name":"lun1","zones":null}],"ok":true}"#;
        assert_eq!(control_limits(r, "lun0").unwrap(), (Some(4), None));
        assert!(control_limits(r, "lun1").is_err());
        assert!(control_limits(r, "lun7").is_err());
        assert!(control_limits("{", "lun0").is_err());
    }

    #[test]
    fn fio_job() {
        let a = fio_args("/dev/sda", 1 << 20, 4 << 20, 3 << 20, 65536);
        assert!(a.contains(&"--zonemode=zbd".to_string()));
        assert!(a.contains(&"--offset=1048576".to_string()));
        assert!(a.contains(&"--io_size=3145728".to_string()));
    }
}
