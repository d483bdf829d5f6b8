//! The lines of bench logs the summary reads, parsed once into
//! [`Record`]s: `# bench NAME key=value ...` lines (guest console logs,
//! cargo bench output), the copy engine's result rows, the per-copy
//! ledger blocks and the runner's own `SUITE on KERNEL: ...` lines.
//!
//! The rules are the ones `scripts/bench.sh` applied with awk (fields are
//! split at spaces and tabs, a value is everything after a key's first
//! `=`), so the summary of a log stays what it was.

/// The suffix of a cell's range field: `KEY=<median> KEY_range=<min>..<max>`
/// (guest-tools `bench::stats::RANGE_SUFFIX`, which writes it).
pub const RANGE_SUFFIX: &str = "_range";

/// What a field missing from a `# bench` line is shown as.
pub const MISSING: &str = "-";

/// One line of a log that the summary uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A result row of `cargo bench copy_engine` (`  copy_file_range ...`,
    /// `  engine ...`, `  read+write ...`), as printed.
    Engine(String),
    /// The runner's summary of one suite run, `SUITE on KERNEL: ... (boot
    /// SECS s, ...)`.
    Run(RunLine),
    /// A line of a per-copy ledger block (guest-tools `bench::ledger`):
    /// `# ledger ...` and the `#   ...` rows right after it, without the
    /// leading `# `.
    Ledger(String),
    /// A `# bench NAME key=value ...` line.
    Bench(BenchLine),
}

/// The runner's `SUITE on KERNEL: N passed, ... (boot SECS s, total ...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLine {
    pub suite: String,
    pub kernel: String,
    /// The seconds to the first KTAP line, as printed.
    pub boot: String,
}

/// `# bench NAME key=value ...`: the name and the fields in line order (a
/// word without `=` is a key with an empty value).
#[derive(Debug, Clone, PartialEq)]
pub struct BenchLine {
    pub name: String,
    pub fields: Vec<(String, String)>,
}

/// A cell measured in rounds: `KEY=<median> KEY_range=<min>..<max>`
/// (guest-tools `bench::stats`); without a range, min and max are the
/// median.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell<'a> {
    pub median: &'a str,
    /// `(min, max)` as printed, when the line has a range.
    pub range: Option<(&'a str, &'a str)>,
}

impl Cell<'_> {
    pub fn lo(&self) -> &str {
        self.range.map_or(self.median, |r| r.0)
    }

    pub fn hi(&self) -> &str {
        self.range.map_or(self.median, |r| r.1)
    }
}

impl BenchLine {
    /// The value of the first field `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, [`MISSING`] when the line has none.
    pub fn field(&self, key: &str) -> &str {
        self.get(key).unwrap_or(MISSING)
    }

    /// The cell `key` with its range. A range field that is not
    /// `<min>..<max>` (e.g. [`MISSING`]) is no range.
    pub fn cell(&self, key: &str) -> Cell<'_> {
        let range = self
            .get(&format!("{key}{RANGE_SUFFIX}"))
            .and_then(|r| r.split_once(".."));
        Cell {
            median: self.field(key),
            range,
        }
    }
}

/// What a `# bench` line measured, from its name (the first rule that
/// matches, in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    /// `timing-PROFILE`: copies on a modeled device class.
    Timing(&'a str),
    /// `KIND-cfr-64MiB`: copy_file_range offload vs fallback vs read+write.
    Cfr,
    /// `NAME-64MiB`: an offloaded copy vs guest read+write.
    Copy,
    /// `fio-DEVICE`: one device's fio cells.
    FioDevice(&'a str),
    /// `trace_overhead` (cargo bench): the cost of recording.
    TraceOverhead,
    /// `A-vs-B`: the per-round ratios of two devices' fio cells.
    FioRatio,
    /// `fio`: the rounds and seconds per job.
    FioPlan,
    /// `guest-net`: the guest's network path.
    GuestNet,
    /// `boot`: where a guest's boot went.
    Boot,
    /// `usernet`: raw TCP throughput between guest and host.
    Usernet,
    /// `nvme-vs-usernet`: NVMe/TCP's sequential numbers against raw TCP.
    NvmeVsUsernet,
    /// `startup` (cargo bench): the large zoned device's start-up.
    Startup,
    Other,
}

impl BenchLine {
    pub fn kind(&self) -> Kind<'_> {
        let n = self.name.as_str();
        if let Some(profile) = n.strip_prefix("timing-") {
            Kind::Timing(profile)
        } else if n.ends_with("-cfr-64MiB") {
            Kind::Cfr
        } else if n.ends_with("-64MiB") {
            Kind::Copy
        } else if let Some(dev) = n.strip_prefix("fio-") {
            Kind::FioDevice(dev)
        } else if n == "trace_overhead" {
            Kind::TraceOverhead
        } else if n.contains("-vs-") && n != "nvme-vs-usernet" {
            Kind::FioRatio
        } else {
            match n {
                "fio" => Kind::FioPlan,
                "guest-net" => Kind::GuestNet,
                "boot" => Kind::Boot,
                "usernet" => Kind::Usernet,
                "nvme-vs-usernet" => Kind::NvmeVsUsernet,
                "startup" => Kind::Startup,
                _ => Kind::Other,
            }
        }
    }
}

/// Splits like awk's default field separator: at runs of spaces and tabs.
fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split([' ', '\t']).filter(|w| !w.is_empty())
}

/// `^[a-z-]+ on [^ ]+: .*\(boot [0-9.]+ s`, the runner's summary line.
fn run_line(line: &str) -> Option<RunLine> {
    let suite_len = line
        .find(|c: char| !(c.is_ascii_lowercase() || c == '-'))
        .unwrap_or(line.len());
    let rest = line[suite_len..]
        .strip_prefix(" on ")
        .filter(|_| suite_len > 0)?;
    // [^ ]+ then ": ": the kernel word ends with the colon.
    let (kernel_word, after) = rest.split_once(' ')?;
    if kernel_word.len() < 2 || !kernel_word.ends_with(':') {
        return None;
    }
    let has_boot = after.match_indices("(boot ").any(|(i, m)| {
        let t = &after[i + m.len()..];
        let digits = t.len()
            - t.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
                .len();
        digits > 0 && t[digits..].starts_with(" s")
    });
    if !has_boot {
        return None;
    }
    // The text after the last "(boot " up to the first " s".
    let t = &line[line.rfind("(boot ")? + "(boot ".len()..];
    let boot = t.find(" s").map_or(t, |i| &t[..i]);
    let mut w = words(line);
    let suite = w.next()?.to_owned();
    let kernel = w.nth(1)?;
    Some(RunLine {
        suite,
        kernel: kernel.strip_suffix(':').unwrap_or(kernel).to_owned(),
        boot: boot.to_owned(),
    })
}

/// `# bench NAME key=value ...`, after leading blanks.
fn bench_line(line: &str) -> Option<BenchLine> {
    let mut w = words(line);
    if w.next() != Some("#") || w.next() != Some("bench") {
        return None;
    }
    let name = w.next().unwrap_or_default().to_owned();
    let fields = w
        .map(|x| {
            let (k, v) = x.split_once('=').unwrap_or((x, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    Some(BenchLine { name, fields })
}

/// The records of `text`, the logs concatenated; carriage returns are
/// dropped wherever they are (serial consoles end lines with CRLF).
pub fn parse(text: &str) -> Vec<Record> {
    let text = text.replace('\r', "");
    let mut out = Vec::new();
    let mut in_ledger = false;
    for line in text.lines() {
        let was_ledger = std::mem::take(&mut in_ledger);
        if ["  copy_file_range", "  engine", "  read+write"]
            .iter()
            .any(|p| line.starts_with(p))
        {
            out.push(Record::Engine(line.to_owned()));
        } else if let Some(r) = run_line(line) {
            out.push(Record::Run(r));
        } else if line.starts_with("# ledger ") || (was_ledger && line.starts_with("#   ")) {
            out.push(Record::Ledger(line["# ".len()..].to_owned()));
            in_ledger = true;
        } else if let Some(b) = bench_line(line) {
            out.push(Record::Bench(b));
        }
    }
    out
}

/// The number at the start of `s` as awk reads a string (C `strtod`):
/// leading blanks, a decimal or hexadecimal number, `inf` or `nan`; 0
/// when there is none.
pub fn num(s: &str) -> f64 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (sign, t) = match t.as_bytes().first() {
        Some(b'-') => (-1.0, &t[1..]),
        Some(b'+') => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    let lower = t.get(..3).map(str::to_ascii_lowercase);
    match lower.as_deref() {
        Some("inf") => return sign * f64::INFINITY,
        Some("nan") => return f64::NAN.copysign(sign),
        _ => {}
    }
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        let end = h.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(h.len());
        if end > 0 {
            // Digits beyond u64 are rare enough to read as their prefix.
            let v = u64::from_str_radix(&h[..end.min(16)], 16).unwrap_or(0);
            return sign * v as f64;
        }
    }
    let b = t.as_bytes();
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let int = digits(0);
    let mut end = int;
    let mut frac = 0;
    if b.get(end) == Some(&b'.') {
        frac = digits(end + 1);
        end += 1 + frac;
    }
    if int + frac == 0 {
        return 0.0;
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let sign_len = usize::from(matches!(b.get(end + 1), Some(b'+' | b'-')));
        let exp = digits(end + 1 + sign_len);
        if exp > 0 {
            end += 1 + sign_len + exp;
        }
    }
    sign * t[..end].parse::<f64>().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reads_a_bench_line_with_its_cells() {
        let r = parse(
            "  # bench fio-scsi dev=lun0 a=1 a_range=0.5..2 b=x=y flag c_range=- flag_range=3\r\n",
        );
        let [Record::Bench(b)] = r.as_slice() else {
            panic!("{r:?}")
        };
        assert_eq!(b.name, "fio-scsi");
        assert_eq!(b.field("dev"), "lun0");
        assert_eq!(b.field("b"), "x=y", "the value is all after the first =");
        assert_eq!(b.get("flag"), Some(""));
        assert_eq!(b.field("nope"), "-");
        let a = b.cell("a");
        assert_eq!((a.median, a.lo(), a.hi()), ("1", "0.5", "2"));
        let d = b.cell("dev");
        assert_eq!((d.lo(), d.hi(), d.range), ("lun0", "lun0", None));
        assert_eq!(b.cell("c").range, None, "a range of - is none");
        assert_eq!(b.cell("flag").range, None);
    }

    #[test]
    fn tells_the_other_lines_apart() {
        let text = "# benchmark x=1\n\
                    # bench\n\
                    bench on 6.12: 20 passed (boot 2.3 s, total 300.0 s)\n\
                    smoke on 6.12 20 passed (boot 2.3 s)\n\
                    Smoke on 6.12: (boot 2.3 s)\n\
                    smoke on 7.2-fixed: x (boot 1 s) (boot 9.5 s, total 1 s)\n  \
                    copy_file_range (baseline) 40.0 ms\n  \
                    copyist\n\
                    # ledger a: b\n\
                    #   row 1\n\
                    #   row 2\n\
                    ok 1 x\n\
                    #   not a row\n";
        let got = parse(text);
        let run = |suite: &str, kernel: &str, boot: &str| {
            Record::Run(RunLine {
                suite: suite.into(),
                kernel: kernel.into(),
                boot: boot.into(),
            })
        };
        assert_eq!(
            got,
            vec![
                Record::Bench(BenchLine {
                    name: String::new(),
                    fields: vec![]
                }),
                run("bench", "6.12", "2.3"),
                run("smoke", "7.2-fixed", "9.5"),
                Record::Engine("  copy_file_range (baseline) 40.0 ms".into()),
                Record::Ledger("ledger a: b".into()),
                Record::Ledger("  row 1".into()),
                Record::Ledger("  row 2".into()),
            ]
        );
    }

    #[test]
    fn reads_numbers_as_awk_does() {
        for (s, want) in [
            ("1.5", 1.5),
            (" 1.5e3x", 1500.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("-.5e-1", -0.05),
            ("1e", 1.0),
            ("1e+", 1.0),
            ("+3", 3.0),
            ("0x10", 16.0),
            ("e5", 0.0),
            ("n/a", 0.0),
            ("-", 0.0),
            ("", 0.0),
            ("1,5", 1.0),
            ("-inf", f64::NEG_INFINITY),
            ("Infinity", f64::INFINITY),
        ] {
            assert_eq!(num(s), want, "{s:?}");
        }
        assert!(num("nan").is_nan());
    }

    proptest! {
        #[test]
        fn never_panics(text in "(\\PC|[\r\n\t ]|# bench |# ledger |#   |=|\\.\\.|_range| on |: |\\(boot | s)*") {
            for r in parse(&text) {
                if let Record::Bench(b) = r {
                    for (k, _) in &b.fields {
                        let c = b.cell(k);
                        let _ = (c.lo(), c.hi(), num(c.median));
                    }
                }
            }
            let _ = num(&text);
        }

        #[test]
        fn bench_lines_round_trip(
            name in "[a-z0-9-]{1,20}",
            fields in proptest::collection::vec(("[a-z_]{1,10}", "[0-9.a-z/-]{0,10}"), 0..8),
        ) {
            let line: String = fields.iter().fold(format!("# bench {name}"), |l, (k, v)| format!("{l} {k}={v}"));
            let r = parse(&format!("{line}\r\n"));
            prop_assert_eq!(r, vec![Record::Bench(BenchLine {
                name,
                fields: fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            })]);
        }
    }
}
