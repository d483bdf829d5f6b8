//! `zonecopy-guest`: the guest side of zonecopy, run by the initramfs'
//! `/init` as `zonecopy-guest suite`.

use std::{
    io::{self, Write},
    path::Path,
    process::ExitCode,
};

use zonecopy_guest::{cmdline, suite, sysfs};

const USAGE: &str = "\
usage: zonecopy-guest suite [NAME] [--cmdline FILE]
           run the suite named NAME, or by zonecopy.suite= on the kernel
           command line (/proc/cmdline, or FILE); print KTAP on stdout;
           exit 0 if every result is ok, 1 otherwise
       zonecopy-guest disks
           list the SCSI disks sysfs shows, with what the suites check
       zonecopy-guest help | --help | --version
suites: ";

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("zonecopy-guest: {msg}\n{USAGE}{}", suite::Suite::names());
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("suite") => {
            let mut name = None;
            let mut cmdline_path = "/proc/cmdline".to_string();
            let mut it = args[1..].iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--cmdline" => match it.next() {
                        Some(p) => cmdline_path = p.clone(),
                        None => return usage_error("--cmdline needs a FILE"),
                    },
                    s if s.starts_with('-') => return usage_error(&format!("unknown option {s}")),
                    s if name.is_none() => name = Some(s.to_string()),
                    s => return usage_error(&format!("unexpected argument {s}")),
                }
            }
            // An unreadable command line is a failed config, reported in KTAP.
            let cfg = std::fs::read_to_string(&cmdline_path)
                .map_err(|e| cmdline::CmdlineError {
                    word: cmdline_path.clone(),
                    reason: e.to_string(),
                })
                .and_then(|s| cmdline::parse(&s));
            let stdout = io::stdout().lock();
            match suite::run(stdout, cfg, name.as_deref(), Path::new("/sys")) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("zonecopy-guest: writing KTAP: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Some("disks") => match sysfs::scsi_disks(Path::new("/sys")) {
            Ok((disks, errors)) => {
                let mut out = io::stdout().lock();
                for d in disks {
                    let _ = writeln!(out, "{d}");
                }
                for e in errors {
                    let _ = writeln!(out, "error: {e}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("zonecopy-guest: /sys/block: {e}");
                ExitCode::from(1)
            }
        },
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}{}", suite::Suite::names());
            ExitCode::SUCCESS
        }
        Some("--version") => {
            println!("zonecopy-guest {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) => usage_error(&format!("unknown command {other}")),
        None => usage_error("missing command"),
    }
}
