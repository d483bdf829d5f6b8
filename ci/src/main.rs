//! zonecopy-ci: the host runner. See `zonecopy-ci --help` and ci/README.md.

mod accel;
mod backend;
mod bench;
mod benchsum;
mod bisect;
mod cli;
mod control;
mod coverage;
mod hosttsc;
mod initramfs;
mod initramfs_quick;
mod junit;
mod kcidb;
mod kernel;
mod killtest;
mod ktap;
mod lifecycle;
mod lun;
mod matrix;
mod needs;
mod ns;
mod peer;
mod proc;
mod progress;
mod qemu;
mod replay;
mod report;
mod report_html;
mod rig;
mod run;
mod shard;
mod sink;
mod suite;
mod tapnet;
mod timing;
mod util;
mod vm;

use clap::Parser as _;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(e) = proc::install_signal_handlers() {
        eprintln!("zonecopy-ci: cannot install signal handlers: {e}");
        std::process::exit(2);
    }
    let code = match &cli.command {
        cli::Cmd::Suite(a) => suite::cmd_suite(a),
        cli::Cmd::Matrix(a) => matrix::cmd_matrix(a),
        cli::Cmd::Report(a) => report::cmd_report(a),
        cli::Cmd::Bisect(a) => bisect::cmd_bisect(a),
        cli::Cmd::BisectStep(a) => bisect::cmd_step(a),
        cli::Cmd::Run(a) => run::cmd_run(a),
        cli::Cmd::Reconnect(a) => lifecycle::cmd_reconnect(a),
        cli::Cmd::Restart(a) => lifecycle::cmd_restart(a),
        cli::Cmd::Kill(a) => killtest::cmd_kill(a),
        cli::Cmd::Replay(a) => replay::cmd_replay(a),
        cli::Cmd::BenchSummary(a) => benchsum::cmd_bench_summary(a),
    };
    std::process::exit(code);
}
