//! Suite dispatch: the contract's `zonecopy.suite=NAME` to a suite, with a
//! KTAP plan printed whatever goes wrong first.

use std::{
    io::{self, Write},
    path::Path,
};

use crate::{
    bench,
    cmdline::{self, CmdlineError, Config},
    diff, diffnvme, kcopy, killtest,
    ktap::{Ktap, Outcome},
    nvme, smoke, xcopy, zbc,
};

pub use zonecopy_contract::Suite;

/// Run the suite named by `name_override` or else by the command line.
/// Returns whether every result was `ok`.
pub fn run<W: Write>(
    out: W,
    cfg: Result<Config, CmdlineError>,
    name_override: Option<&str>,
    sys_root: &Path,
) -> io::Result<bool> {
    let mut k = Ktap::new(out)?;
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            k.plan(1)?;
            k.result(
                "config",
                &Outcome::Fail(format!("kernel command line: {e}")),
            )?;
            return Ok(false);
        }
    };
    if let Some(token) = &cfg.control_token {
        crate::control::set_token(token);
    }
    let Some(name) = name_override.or(cfg.suite.as_deref()) else {
        k.plan(1)?;
        k.result(
            "suite",
            &Outcome::Fail("no zonecopy.suite= on the kernel command line".into()),
        )?;
        return Ok(false);
    };
    let suite = match name.parse::<Suite>() {
        Ok(s) => s,
        Err(e) => {
            k.plan(1)?;
            k.result("suite", &Outcome::Fail(e.to_string()))?;
            return Ok(false);
        }
    };
    match suite {
        Suite::Smoke => smoke::run(&mut k, &cfg, sys_root),
        Suite::Xcopy => xcopy::run(&mut k, &cfg, sys_root),
        Suite::Nvme => nvme::run(&mut k, &cfg, sys_root),
        Suite::Kcopy => kcopy::run(&mut k, &cfg, sys_root),
        Suite::Bench => bench::run(&mut k, &cfg, sys_root),
        Suite::Kill => killtest::run(&mut k, &cfg, sys_root),
        Suite::Zbc => zbc::run(&mut k, &cfg, sys_root),
        Suite::DiffNvme => diffnvme::run(&mut k, &cfg, sys_root),
        Suite::Diff => diff::run(&mut k, &cfg, sys_root),
    }
}

/// Parse a command line and run, as `/init` does.
pub fn run_cmdline<W: Write>(
    out: W,
    cmdline: &str,
    name_override: Option<&str>,
) -> io::Result<bool> {
    run(
        out,
        cmdline::parse(cmdline),
        name_override,
        Path::new("/sys"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(cmdline: &str, name: Option<&str>) -> (bool, String) {
        let mut v = Vec::new();
        let ok = run(
            &mut v,
            cmdline::parse(cmdline),
            name,
            Path::new("/nonexistent"),
        )
        .unwrap();
        (ok, String::from_utf8(v).unwrap())
    }

    #[test]
    fn unknown_suite() {
        assert_eq!(
            out("console=ttyS0 zonecopy.suite=bogus", None),
            (
                false,
                "KTAP version 1\n1..1\nnot ok 1 suite # unknown suite bogus\n".into()
            )
        );
        assert_eq!(
            out("zonecopy.suite=smoke", Some("nope")).1,
            "KTAP version 1\n1..1\nnot ok 1 suite # unknown suite nope\n"
        );
    }

    #[test]
    fn missing_or_broken_config() {
        assert_eq!(
            out("console=ttyS0", None).1,
            "KTAP version 1\n1..1\nnot ok 1 suite # no zonecopy.suite= on the kernel command line\n"
        );
        assert_eq!(
            out("zonecopy.suite=smoke zonecopy.lun0=hm:bs=512", None).1,
            "KTAP version 1\n1..1\nnot ok 1 config # kernel command line: \
             zonecopy.lun0=hm:bs=512: size= is missing\n"
        );
        assert_eq!(
            out("zonecopy.suite=smoke", None).1,
            "KTAP version 1\n1..1\nnot ok 1 config # no zonecopy.lun<N>= on the kernel command line\n"
        );
    }
}
