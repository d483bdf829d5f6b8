//! zonecopy-ci: the host runner. See `zonecopy-ci --help` and ci/README.md.

mod accel;
mod backend;
mod cli;
mod control;
mod initramfs;
mod junit;
mod kernel;
mod killtest;
mod ktap;
mod lifecycle;
mod lun;
mod ns;
mod peer;
mod proc;
mod qemu;
mod rig;
mod run;
mod sink;
mod suite;
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
        cli::Cmd::Matrix(a) => suite::cmd_matrix(a),
        cli::Cmd::Run(a) => run::cmd_run(a),
        cli::Cmd::Reconnect(a) => lifecycle::cmd_reconnect(a),
        cli::Cmd::Restart(a) => lifecycle::cmd_restart(a),
        cli::Cmd::Kill(a) => killtest::cmd_kill(a),
    };
    std::process::exit(code);
}
